#!/usr/bin/env bash
# detect_pcsc.sh - agent/core/detect.c's PC/SC source against a private pcscd (socket activation on
# a socket in the test's directory, PCSCLITE_CSOCK_NAME), with detect_driver as a child process.
#
# Part 1, reader hotplug (the "\\?PnP?\Notification" path): pcscd starts with no reader at all.
#   pcsc-lite 1.9.9 adds readers at run time only through USB hotplug, so pcscd and the driver
#   share a umockdev testbed, and a private driver directory (bind-mounted over
#   /usr/lib/pcsc/drivers) holds a bundle with detect_ifd for the fake device 1050:0407.
#   Plugging the device in and out must show "pcsc: reader added/removed"; stopping pcscd must
#   show "pcsc: service stopped" and leave udev as the only source.
# Part 2, card insertion: the driver starts before pcscd exists (rescan only, 0.2 s); pcscd
#   starts with a private reader.conf holding one vpcd entry on ports picked now; the driver
#   must pick PC/SC up at its next rescan ("pcsc: service available", rescan off). vicc
#   (started and killed by PID) inserts and removes a card: "card inserted/removed".
# Both parts end with SIGTERM to the driver, which must leave through detect_close (SCardCancel
# wakes the waiter thread) and print "stopped".
#
# Needs: pcscd, systemd (systemd-socket-activate), vsmartcard-vpcd, vsmartcard-vpicc,
# python3-virtualsmartcard, python3-pycryptodome, umockdev, libumockdev-dev (build),
# util-linux (unshare), procps, python3.
source "$PKIO_SRC/tests/integration/detect_lib.sh"
detect_enter_ns "$@"
source "$PKIO_SRC/tests/lib/common.sh"

VPCD_LIB=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
VICC_PY=/usr/lib/python3/site-packages/virtualsmartcard
CRYPTODOME=/usr/lib/python3/dist-packages/Cryptodome

detect_require_helpers
require_cmd pcscd python3
command -v systemd-socket-activate >/dev/null ||
    fail "required command 'systemd-socket-activate' not found (apt-get install systemd)"
command -v vicc >/dev/null || fail "required command 'vicc' not found (apt-get install vsmartcard-vpicc)"
[[ -e $VPCD_LIB ]] || fail "$VPCD_LIB missing (apt-get install vsmartcard-vpcd)"
[[ -d $VICC_PY/virtualsmartcard ]] ||
    fail "$VICC_PY/virtualsmartcard missing (apt-get install python3-virtualsmartcard)"
[[ -d $CRYPTODOME ]] || fail "$CRYPTODOME missing (apt-get install python3-pycryptodome)"
[[ -f ${DETECT_IFD:-} ]] || fail "DETECT_IFD not set or not built (run from ctest)"

detect_private_run
W=$(pkio_tmpdir)
cd "$W" || fail "cd $W"

# Private driver directory: vpcd (same path as on the system) plus the fake USB reader bundle.
mkdir -p "$W/drivers/serial" "$W/drivers/pkio-fake.bundle/Contents/Linux"
cp -L "$VPCD_LIB" "$W/drivers/serial/libifdvpcd.so"
cp "$DETECT_IFD" "$W/drivers/pkio-fake.bundle/Contents/Linux/libdetect_ifd.so"
cat >"$W/drivers/pkio-fake.bundle/Contents/Info.plist" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple Computer//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>CFBundleExecutable</key>
	<string>libdetect_ifd.so</string>
	<key>ifdVendorID</key>
	<string>0x1050</string>
	<key>ifdProductID</key>
	<string>0x0407</string>
	<key>ifdFriendlyName</key>
	<string>PKIo Fake Token</string>
</dict>
</plist>
EOF
mount --bind "$W/drivers" /usr/lib/pcsc/drivers ||
    fail "cannot bind-mount the private driver directory over /usr/lib/pcsc/drivers"

# start_pcscd NAME SOCKET CONFDIR [NAME=VALUE...]: socket-activated pcscd (the same PID after
# exec), stopped by PID at exit. systemd-socket-activate clears the environment: the
# assignments reach pcscd through -E.
start_pcscd()
{
    local name=$1 sock=$2 conf=$3 e
    local -a envopt=()
    shift 3
    for e in "$@"; do
        envopt+=(-E "$e")
    done
    pkio_spawn "$name" systemd-socket-activate "${envopt[@]}" -l "$sock" \
        pcscd --foreground --info -c "$conf"
    PCSCD_PID=$PKIO_SPAWN_PID
    pkio_wait_until 10 "$name listening on $sock" grep -q '^Listening on' "$PKIO_ROOT/$name.log"
}

stop_pcscd()
{
    pkio_stop_pid "$1" pcscd
}

# ---- Part 1: no reader at start; a USB reader comes and goes (PnP) ------------------------
detect_start_bed "$W"
mkdir "$W/conf-empty"
start_pcscd pcscd1 "$W/pcscd1.comm" "$W/conf-empty" "${DETECT_PRELOAD[@]:0:2}"
PCSCD1=$PCSCD_PID

# umockdev names each process's fake netlink socket after its fd number; keep the driver's
# fds clear of pcscd's (3..7) so the two monitors do not share one socket.
LOG1=$PKIO_ROOT/driver1.log
# shellcheck disable=SC2016 # $0 and $@ belong to the inner bash
pkio_spawn driver1 env "${DETECT_PRELOAD[@]}" PCSCLITE_CSOCK_NAME="$W/pcscd1.comm" \
    bash -c 'exec "$0" "$@" 3</dev/null 4</dev/null 5</dev/null 6</dev/null 7</dev/null \
        8</dev/null 9</dev/null' "$DETECT_DRIVER"
DRV1=$PKIO_SPAWN_PID
wait_line "$LOG1" '^sources: ' "start-up line from the driver"
[[ $(head -n 1 "$LOG1") == "sources: pcsc,udev" ]] ||
    fail "expected 'sources: pcsc,udev' (pcscd without readers), got '$(head -n 1 "$LOG1")'"
pass "pcscd without any reader is a PC/SC source (PnP only)"

bed_cmd add 1-5 1050 0407 0b
wait_line "$LOG1" "^event: (.*; )?pcsc: reader added: 'PKIo Fake Token[^']*'" \
    "PnP event for the new reader"
wait_line "$LOG1" '^event: .*udev: token added: 1050:0407' "udev event for the new token"
pass "reader arrival seen through \\\\?PnP?\\Notification and through udev"

bed_cmd remove 1-5
wait_line "$LOG1" "^event: (.*; )?pcsc: reader removed: 'PKIo Fake Token[^']*'" \
    "event for the removed reader"
pass "reader removal seen"

stop_pcscd "$PCSCD1"
wait_line "$LOG1" '^event: (.*; )?pcsc: service stopped' "service-stopped event"
wait_line "$LOG1" '^sources: udev$' "sources line without pcsc"
pass "pcscd going away drops the PC/SC source"
stop_driver "$DRV1" "$LOG1"
pass "driver 1 stopped cleanly"

# ---- Part 2: the driver waits before pcscd exists; vicc inserts and removes a card --------
# Two free TCP ports (vpcd listens on PORT for reader 0 and PORT+1 for reader 1), even, away
# from the package default 35963 and from the ports that the kernel hands out.
port_pair_free()
{
    python3 - "$1" <<'EOF'
import socket, sys
p = int(sys.argv[1])
for q in (p, p + 1):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("", q))
    s.close()
EOF
}
PORT=
for _ in $(seq 1 50); do
    p=$((20000 + (RANDOM % 6000) * 2))
    if port_pair_free "$p" 2>/dev/null; then
        PORT=$p
        break
    fi
done
[[ -n $PORT ]] || fail "no free pair of TCP ports found for vpcd"

mkdir "$W/conf-vpcd"
printf 'FRIENDLYNAME "PKIo Test PCD"\nDEVICENAME   /dev/null:0x%X\nLIBPATH      %s\nCHANNELID    0x%X\n' \
    "$PORT" "$VPCD_LIB" "$PORT" >"$W/conf-vpcd/vpcd"

LOG2=$PKIO_ROOT/driver2.log
pkio_spawn driver2 env PCSCLITE_CSOCK_NAME="$W/pcscd2.comm" "$DETECT_DRIVER" --no-udev --rescan 0.2
DRV2=$PKIO_SPAWN_PID
wait_line "$LOG2" '^sources: ' "start-up line from the driver"
[[ $(head -n 1 "$LOG2") == "sources: rescan(0.2s)" ]] ||
    fail "expected 'sources: rescan(0.2s)' without pcscd, got '$(head -n 1 "$LOG2")'"
wait_line "$LOG2" '^event: rescan: periodic$' "a periodic rescan while no source runs"
pass "no pcscd: periodic rescan"

start_pcscd pcscd2 "$W/pcscd2.comm" "$W/conf-vpcd"
PCSCD2=$PCSCD_PID
wait_line "$LOG2" '^event: (.*; )?pcsc: service available$' "PC/SC picked up at a rescan"
wait_line "$LOG2" '^sources: pcsc$' "sources line with pcsc and without rescan"
pass "pcscd appearing is picked up; the periodic rescan stops"

mkdir "$W/pyshim"
ln -s "$CRYPTODOME" "$W/pyshim/Crypto"
pkio_spawn vicc env PYTHONPATH="$VICC_PY:$W/pyshim" PYTHONDONTWRITEBYTECODE=1 \
    vicc -t iso7816 -H 127.0.0.1 -P "$PORT"
VICC=$PKIO_SPAWN_PID
wait_line "$LOG2" "^event: pcsc: card inserted in 'PKIo Test PCD 00 00'$" "card insertion event"
pass "card insertion seen"
pkio_stop_pid "$VICC" vicc
wait_line "$LOG2" "^event: pcsc: card removed from 'PKIo Test PCD 00 00'$" "card removal event"
pass "card removal seen"

if grep -q 'rescan: periodic' <(sed -n '/^sources: pcsc$/,$p' "$LOG2"); then
    cat "$LOG2" >&2
    fail "periodic rescans went on while PC/SC was a source"
fi
stop_driver "$DRV2" "$LOG2"
pass "driver 2 stopped cleanly (SCardCancel woke the waiter)"
stop_pcscd "$PCSCD2"
