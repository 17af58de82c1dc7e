# Unit tests (cmocka) of the token layer's pure code (test_uri, test_token_flags), the CSR
# (test_csr), secrets (test_secret) and file writes (test_fsutil).
#
# Include from tests/unit/CMakeLists.txt AFTER its loop over test_*.c: that loop already makes
# test_<name> (linked with pkio_core) and the ctest unit_<name>; this file then only adds the
# "token" label. Without such a loop it makes the targets and tests itself.
if(NOT TARGET PkgConfig::CMOCKA)
  pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()

foreach(name uri token_flags csr secret fsutil)
  if(NOT TARGET test_${name})
    add_executable(test_${name} ${CMAKE_CURRENT_LIST_DIR}/test_${name}.c)
    target_link_libraries(test_${name} PRIVATE pkio_core PkgConfig::CMOCKA)
  endif()
  if(NOT TEST unit_${name})
    add_test(NAME unit_${name} COMMAND test_${name})
  endif()
  set_tests_properties(unit_${name} PROPERTIES
      ENVIRONMENT "${PKIO_TEST_ENV}" TIMEOUT 120 LABELS "unit;token")
endforeach()
