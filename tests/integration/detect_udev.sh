#!/usr/bin/env bash
# detect_udev.sh - agent/core/detect.c's udev source: a umockdev testbed plugs fake USB devices in
# and out; detect_driver (a child process, as the agent will be) must report the smart-card
# reader (interface class 0x0b) and the known token id, on add and on remove, and must ignore
# an ordinary USB device. PC/SC points at a socket that does not exist, so udev is the only
# source. Needs: umockdev, libumockdev-dev (build), util-linux (unshare), procps.
source "$PKIO_SRC/tests/integration/detect_lib.sh"
detect_enter_ns "$@"
source "$PKIO_SRC/tests/lib/common.sh"

detect_require_helpers
detect_private_run
W=$(pkio_tmpdir)
detect_start_bed "$W"

# The driver, with the testbed in its environment. No pcscd: its socket path does not exist.
LOG=$PKIO_ROOT/driver.log
pkio_spawn driver env "${DETECT_PRELOAD[@]}" PCSCLITE_CSOCK_NAME="$W/no-pcscd.comm" \
    "$DETECT_DRIVER" --rescan 30
DRV=$PKIO_SPAWN_PID
wait_line "$LOG" '^sources: ' "start-up line from the driver"
[[ $(head -n 1 "$LOG") == "sources: udev" ]] ||
    fail "expected 'sources: udev' (udev on, no pcscd, rescan off), got '$(head -n 1 "$LOG")'"
pass "udev is the only source; no periodic rescan while it runs"

# A generic CCID reader: the usb_device (ID_USB_INTERFACES) and its class-0x0b interface both
# match. Events that arrive together are reported as one (the last), so expect either.
bed_cmd add 1-1 076b 3021 0b
wait_line "$LOG" '^event: udev: reader added: 076b:3021 at 1-1(:1\.0)?$' \
    "add event for the CCID reader"
pass "CCID reader added"

# An ordinary USB mouse, then a YubiKey whose only interface is HID: the known id decides.
bed_cmd add 1-2 046d c077 03
bed_cmd add 1-3 1050 0407 03
wait_line "$LOG" '^event: udev: token added: 1050:0407 \(YubiKey\) at 1-3(:1\.0)?$' \
    "add event for the known token id 1050:0407"
pass "known token id added although its interface is not CCID"

# Removal: remove events carry only properties, no sysfs attributes.
bed_cmd remove 1-1
wait_line "$LOG" '^event: udev: reader removed: 076b:3021 at 1-1(:1\.0)?$' \
    "remove event for the CCID reader"
bed_cmd remove 1-3
wait_line "$LOG" '^event: udev: token removed: 1050:0407 \(YubiKey\) at 1-3(:1\.0)?$' \
    "remove event for the known token"
pass "reader and token removed"

# The mouse goes; then one more known id (Gemalto IDPrime reader). Every uevent reaches the
# driver in order, so once this one is printed, the mouse's four events have been seen too.
bed_cmd remove 1-2
bed_cmd add 1-4 08e6 3437 0b
wait_line "$LOG" '^event: udev: token added: 08e6:3437 \(Gemalto IDPrime reader\) at 1-4' \
    "add event for 08e6:3437"
if grep -q '046d' "$LOG"; then
    cat "$LOG" >&2
    fail "the USB mouse (046d:c077) was reported as a token or reader"
fi
pass "an ordinary USB device is ignored"

stop_driver "$DRV" "$LOG"
pass "driver stopped cleanly on SIGTERM"
