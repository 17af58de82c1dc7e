# CertCentral client (agent/ca/http.c, agent/ca/certcentral.c) against the sandbox in tests/sandbox.
# Included from tests/integration/CMakeLists.txt. cc_driver calls one cc_* function per run.
add_executable(cc_driver ${CMAKE_CURRENT_LIST_DIR}/cc_driver.c)
target_link_libraries(cc_driver PRIVATE pkio_core)

set(PKIO_CC_ENV "CC_DRIVER=$<TARGET_FILE:cc_driver>")
foreach(t cc_flow cc_faults cc_tls cc_budget)
  pkio_add_script_test(${t} ${CMAKE_CURRENT_LIST_DIR}/${t}.sh
      LABELS "certcentral;sandbox" TIMEOUT 300 ENV ${PKIO_CC_ENV})
endforeach()
# One rate budget for the station: 8 processes at once (cc_driver, then pkio-agent order-status
# with api.rate_share) against a sandbox limited to the budget; about 45 s.
pkio_add_script_test(cc_station_budget ${CMAKE_CURRENT_LIST_DIR}/cc_station_budget.sh
    LABELS "certcentral;sandbox" TIMEOUT 180 ENV ${PKIO_CC_ENV})
