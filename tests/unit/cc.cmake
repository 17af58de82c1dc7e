# Unit tests of the CertCentral client (agent/ca/http.c, agent/ca/certcentral.c); cmocka.
# tests/unit/CMakeLists.txt already turns every test_*.c into test_<name> / ctest unit_<name>;
# this file only registers test_cc and test_http when that glob did not (e.g. if it is removed).
foreach(t cc http)
  if(NOT TARGET test_${t})
    if(NOT TARGET PkgConfig::CMOCKA)
      pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
    endif()
    add_executable(test_${t} ${CMAKE_CURRENT_LIST_DIR}/test_${t}.c)
    target_link_libraries(test_${t} PRIVATE pkio_core PkgConfig::CMOCKA)
    add_test(NAME unit_${t} COMMAND test_${t})
    set_tests_properties(unit_${t} PROPERTIES LABELS "unit" TIMEOUT 120
                         ENVIRONMENT "${PKIO_TEST_ENV}")
  endif()
endforeach()
