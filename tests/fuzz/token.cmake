# Fuzz targets of the token layer's URI parser (pkcs11/uri.c) and the CSR subject
# (agent/core/csr.c); seed corpora in corpus/uri/ and corpus/subject/. Included from
# tests/fuzz/CMakeLists.txt.
pkio_add_fuzz_target(fuzz_uri ${CMAKE_CURRENT_LIST_DIR}/fuzz_uri.c
                     ${CMAKE_CURRENT_LIST_DIR}/corpus/uri)
pkio_add_fuzz_target(fuzz_subject ${CMAKE_CURRENT_LIST_DIR}/fuzz_subject.c
                     ${CMAKE_CURRENT_LIST_DIR}/corpus/subject)

# uri.c lives in pkio_pkcs11, which pkio_core_fuzz does not rebuild with coverage, and which
# needs secret_* from pkio_core: compile uri.c into both binaries (instrumented in the fuzz
# build; in the replay its secret_* references are then resolved by pkio_core, which follows).
get_filename_component(_tok_fuzz_src "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
foreach(t replay_uri fuzz_uri)
  if(TARGET ${t})
    target_sources(${t} PRIVATE ${_tok_fuzz_src}/pkcs11/uri.c)
    target_include_directories(${t} PRIVATE ${_tok_fuzz_src}/pkcs11 ${_tok_fuzz_src}/agent)
  endif()
endforeach()
