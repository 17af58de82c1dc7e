#!/usr/bin/env bash
# Install the Debian 12 packages pkio-agent needs that are not installed yet (with sudo when not
# root). Usage: deps.sh build|demo|test — each set includes the ones before it.
set -euo pipefail

build_pkgs=(gcc make cmake pkg-config libssl-dev libp11-dev libp11-kit-dev libengine-pkcs11-openssl
            libcurl4-openssl-dev libjson-c-dev libpcsclite-dev libudev-dev opensc openssl
            ca-certificates gettext)
demo_pkgs=(softhsm2 python3 curl procps)
test_pkgs=(libcmocka-dev clang swtpm swtpm-tools tpm2-tools tpm2-abrmd libtss2-tcti-tabrmd0
           libtpm2-pkcs11-1 libtpm2-pkcs11-tools libtss2-tcti-swtpm0 dbus dbus-daemon dbus-bin
           opensc-pkcs11 gnutls-bin valgrind binutils time tmux umockdev udev systemd
           dpkg-dev strace man-db adduser jq pcscd vsmartcard-vpcd vsmartcard-vpicc
           python3-virtualsmartcard python3-pycryptodome libumockdev-dev util-linux
           opencryptoki libopencryptoki0
           # the shape test (tests/scripts/check_shape.sh)
           pmccabe cppcheck clang-format groff-base
           # simulated smart cards (tests/lib/cardsim.sh): ../shared/cardsim/build.sh compiles
           # jcardsim and the applets with these; pcscd runs in a private netns (ip)
           default-jdk-headless libbcprov-java libkryo-java libasm-java libobjenesis-java
           libminlog-java iproute2)

case "${1:-test}" in
build) want=("${build_pkgs[@]}") ;;
demo) want=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${demo_pkgs[@]}" "${test_pkgs[@]}") ;;
*) echo "usage: $0 build|demo|test" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "pkio-agent: installing Debian packages: ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "pkio-agent: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
