# Fuzz targets of the CertCentral response parsers (agent/ca/certcentral.c); seed corpora in
# corpus/cc_<name>/. Included from tests/fuzz/CMakeLists.txt.
foreach(t order order_list errors pem)
  pkio_add_fuzz_target(fuzz_cc_${t} ${CMAKE_CURRENT_LIST_DIR}/fuzz_cc_${t}.c
                       ${CMAKE_CURRENT_LIST_DIR}/corpus/cc_${t})
endforeach()
