# Token detection (agent/core/detect.c): PC/SC against a private pcscd with vpcd/vicc and a fake
# USB reader, udev against a umockdev testbed. Included from tests/integration/CMakeLists.txt.
#
#   detect_driver   runs detect_open/poll/close and prints "sources: ..." and "event: ..." lines
#   detect_udevbed  owns a umockdev testbed; plugs fake USB devices in and out on command
#   detect_ifd      a do-nothing IFD handler (reader driver) that pcscd loads for the fake device
add_executable(detect_driver ${CMAKE_CURRENT_LIST_DIR}/detect_driver.c)
target_link_libraries(detect_driver PRIVATE pkio_core)

# pcscd (not sanitized) dlopen()s the driver: keep sanitizer runtimes out of it.
add_library(detect_ifd MODULE ${CMAKE_CURRENT_LIST_DIR}/detect_ifd.c)
target_include_directories(detect_ifd SYSTEM PRIVATE ${PCSC_INCLUDE_DIRS})
target_compile_options(detect_ifd PRIVATE -fno-sanitize=all)
target_link_options(detect_ifd PRIVATE -fno-sanitize=all)
set_target_properties(detect_ifd PROPERTIES PREFIX "lib" OUTPUT_NAME "detect_ifd")

# Without libumockdev-dev the helper is not built and both tests FAIL, saying why.
pkg_check_modules(UMOCKDEV IMPORTED_TARGET umockdev-1.0)
if(UMOCKDEV_FOUND)
  add_executable(detect_udevbed ${CMAKE_CURRENT_LIST_DIR}/detect_udevbed.c)
  target_link_libraries(detect_udevbed PRIVATE PkgConfig::UMOCKDEV)
  set(PKIO_DETECT_UDEVBED "$<TARGET_FILE:detect_udevbed>")
else()
  set(PKIO_DETECT_UDEVBED "missing-libumockdev-dev")
endif()

set(PKIO_DETECT_ENV
    "DETECT_DRIVER=$<TARGET_FILE:detect_driver>"
    "DETECT_IFD=$<TARGET_FILE:detect_ifd>"
    "DETECT_UDEVBED=${PKIO_DETECT_UDEVBED}")
pkio_add_script_test(detect_pcsc ${CMAKE_CURRENT_LIST_DIR}/detect_pcsc.sh
    LABELS "detect;pcsc" TIMEOUT 180 ENV ${PKIO_DETECT_ENV})
pkio_add_script_test(detect_udev ${CMAKE_CURRENT_LIST_DIR}/detect_udev.sh
    LABELS "detect;udev" TIMEOUT 120 ENV ${PKIO_DETECT_ENV})
