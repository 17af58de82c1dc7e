# Packaging tests (included from tests/integration/CMakeLists.txt). Both need root: a private
# mount namespace (udevadm test over tmpfs copies of /etc/udev/rules.d, /run and /dev) and an
# overlay chroot of the host (dpkg -i / -r / -P). Neither writes outside its temp dir.
#   udev_rules   udev/70-pkio-agent.rules under `udevadm test` + umockdev devices
#   deb_package  scratch build + `cpack -G DEB`, contents, unit checks, install/remove/purge
pkio_add_script_test(udev_rules ${CMAKE_CURRENT_SOURCE_DIR}/udev_rules.sh
    LABELS "packaging;udev" TIMEOUT 120)
pkio_add_script_test(deb_package ${CMAKE_CURRENT_SOURCE_DIR}/deb_package.sh
    LABELS "packaging;deb" TIMEOUT 300)
