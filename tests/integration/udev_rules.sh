#!/usr/bin/env bash
# udev/70-pkio-agent.rules under `udevadm test` (systemd 252 has no `udevadm verify`), with the
# system's own rules, against umockdev devices: a generic CCID reader, three known tokens that
# only their USB ids identify, a token in the raw-USB list (YubiHSM 2: its PKCS#11 module opens
# the USB device itself), and negative cases (a USB stick, a SafeNet device that is not a
# token). Checks: no parse error for our file (and that the error detector works), the
# properties, tags and SYSTEMD_WANTS=smartcard.target on readers and tokens and not on the
# others, the uaccess tag (rule ordering), the device node: left to pcscd (no GROUP/MODE of
# ours) for CCID readers and tokens, pkio-agent:0660 only for the raw-USB list; the "Unknown
# group" warning when the group does not exist yet (why postinst reloads udev).
#
# Isolation: everything runs in a private mount namespace (unshare -m) with tmpfs over
# /etc/udev/rules.d, /run and /dev, and a private copy of /etc/group; `udevadm test` writes its
# udev database and /dev/char links into those, never into the host's.
source "$PKIO_SRC/tests/lib/common.sh"
export LC_ALL=C

for c in udevadm:udev umockdev-run:umockdev unshare:util-linux mount:mount; do
    command -v "${c%%:*}" >/dev/null 2>&1 ||
        fail "required command '${c%%:*}' not found (apt-get install ${c#*:})"
done
[[ $(id -u) -eq 0 ]] || fail "needs root for a private mount namespace (unshare -m)"
RULES=$PKIO_SRC/udev/70-pkio-agent.rules
[[ -f $RULES ]] || fail "$RULES missing"
# 70-uaccess.rules must see the ID_SMARTCARD_READER we set (udev sorts names with strcmp).
[[ $(basename "$RULES") < 70-uaccess.rules ]] || fail "rules file must sort before 70-uaccess.rules"

W=$(pkio_tmpdir)
USB=/devices/pci0000:00/0000:00:14.0/usb1

# A umockdev device description: usb_device with a device node (MAJOR 189, usbfs) and, when
# $6 is set, one interface of that class. $5 is ID_USB_INTERFACES, which udev's usb_id
# builtin computes on real hardware (it cannot read descriptors in umockdev, so the property
# is given directly); empty means "not known", so only the USB id can match.
usb_dev()
{
    local port=$1 minor=$2 vid=$3 pid=$4 ifaces=$5 class=$6 name=$7
    printf 'P: %s/%s\nN: bus/usb/001/%03d\n' "$USB" "$port" "$minor"
    printf 'E: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\nE: DEVNAME=/dev/bus/usb/001/%03d\n' "$minor"
    printf 'E: MAJOR=189\nE: MINOR=%d\nE: PRODUCT=%x/%x/100\n' "$minor" "0x$vid" "0x$pid"
    [[ -z $ifaces ]] || printf 'E: ID_USB_INTERFACES=%s\n' "$ifaces"
    printf 'A: idVendor=%s\nA: idProduct=%s\nA: product=%s\nA: dev=189:%d\n\n' \
        "$vid" "$pid" "$name" "$minor"
    if [[ -n $class ]]; then
        printf 'P: %s/%s/%s:1.0\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_interface\n' "$USB" "$port" "$port"
        printf 'E: INTERFACE=%d/0/0\nA: bInterfaceClass=%s\n' "$((16#$class))" "$class"
        printf 'A: bInterfaceSubClass=00\nA: bInterfaceProtocol=00\n\n'
    fi
}
{
    usb_dev 1-1 1 076b 3021 ":0b0000:" 0b "Fake CCID Reader"
    usb_dev 1-2 2 0529 0620 "" "" "Fake eToken 5110"
    usb_dev 1-3 3 08e6 3438 "" "" "Fake IDBridge K30"
    usb_dev 1-4 4 1050 0407 ":030101:030000:0b0000:" "" "Fake YubiKey 5"
    usb_dev 1-5 5 0781 5567 ":080650:" 08 "Fake USB Stick"
    usb_dev 1-6 6 0529 0001 ":ff0000:" "" "Fake SafeNet HASP dongle"
    usb_dev 1-7 7 1050 0030 ":ff0000:" "" "Fake YubiHSM 2"
} >"$W/devices.umockdev"

# name:sysfs path under $USB
DEVICES=(reader:1-1 reader_if:1-1/1-1:1.0 etoken:1-2 idbridge:1-3 yubikey:1-4
    stick:1-5 stick_if:1-5/1-5:1.0 hasp:1-6 yubihsm:1-7)

# A deliberately broken rules file next to ours proves that this udevadm reports parse errors
# in the form the check below looks for.
printf 'SUBSYSTEM="usb", ENV{PKIO_SELFTEST}="1"\n' >"$W/99-pkio-selftest.rules"

# Runs inside the namespace: $1 = output dir, $2 = yes|no (does group pkio-agent exist).
cat >"$W/inner.sh" <<'EOF'
set -euo pipefail
W=$1 out=$2 with_group=$3 rules=$4 usb=$5
shift 5
mount -t tmpfs -o mode=0755 tmpfs /etc/udev/rules.d
cp "$rules" "$W/99-pkio-selftest.rules" /etc/udev/rules.d/
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p "$W/devkeep"
for n in null zero urandom random; do
    touch "$W/devkeep/$n"
    mount --bind "/dev/$n" "$W/devkeep/$n"
done
mount -t tmpfs -o mode=0755 tmpfs /dev
for n in null zero urandom random; do
    touch "/dev/$n"
    mount --bind "$W/devkeep/$n" "/dev/$n"
done
cp /etc/group "$W/group.$out"
if [[ $with_group == yes ]]; then
    grep -q '^pkio-agent:' "$W/group.$out" || echo 'pkio-agent:x:64999:' >>"$W/group.$out"
else
    sed -i '/^pkio-agent:/d' "$W/group.$out"
fi
mount --bind "$W/group.$out" /etc/group
mkdir -p "$W/$out"
export TMPDIR=$W
script=
for d in "$@"; do
    name=${d%%:*} path=$usb/${d#*:}
    script+="udevadm test -a add /sys$path >$W/$out/$name.props 2>$W/$out/$name.log; "
done
script+="udevadm test -a remove /sys$usb/1-1 >$W/$out/reader-remove.props 2>$W/$out/reader-remove.log"
umockdev-run -d "$W/devices.umockdev" -- bash -c "$script"
EOF

unshare -m bash "$W/inner.sh" "$W" with yes "$RULES" "$USB" "${DEVICES[@]}" ||
    fail "udevadm test in a private namespace failed"
unshare -m bash "$W/inner.sh" "$W" without no "$RULES" "$USB" reader:1-1 ||
    fail "udevadm test without the pkio-agent group failed"

# --- parse errors ---------------------------------------------------------------------------
O=$W/with
grep -qE '^/etc/udev/rules.d/99-pkio-selftest\.rules:1 ' "$O/reader.log" ||
    fail "udevadm did not report the deliberately broken rule; the error check below is blind"
# Every udevadm run parses the rules again: check them all.
if grep -E '^/etc/udev/rules.d/70-pkio-agent\.rules:[0-9]+ ' "$O"/*.log; then
    fail "udevadm reports errors in 70-pkio-agent.rules (above)"
fi
if grep -E '^/[^ ]+\.rules:[0-9]+ ' "$O/reader.log" | grep -v 99-pkio-selftest; then
    echo "note: the system's own rules files have the diagnostics above" >&2
fi
pass "70-pkio-agent.rules parses without errors (udevadm test, systemd $(udevadm --version))"

# --- properties -----------------------------------------------------------------------------
prop()
{
    sed -n "s/^$2=//p" "$O/$1.props" | tail -n 1
}
has_tag()
{
    [[ $(prop "$1" TAGS) == *":$2:"* ]]
}
# Lines where one of our rules did something to the device ("1-5: /etc/...rules:N ...").
acted_on()
{
    grep -E '^[^ ]+: /etc/udev/rules.d/70-pkio-agent\.rules:[0-9]+ ' "$1"
}
# Diagnostics for a failure: the device's node properties and any parse error in its run.
why()
{
    echo "properties: $(grep -E '^(MAJOR|MINOR|DEVNAME|PKIO_AGENT_DEVICE)=' "$O/$1.props" |
        tr '\n' ' ')"
    echo "parse errors: $(grep -E '^/[^ ]+\.rules:[0-9]+ ' "$O/$1.log" | grep -v 99-pkio-selftest |
        tr '\n' ' ')"
}
# GROUP / MODE lines of our own rules in a device's log.
perm_ours()
{
    grep -E '^[^ ]+: /etc/udev/rules.d/70-pkio-agent\.rules:[0-9]+ (GROUP|MODE|OWNER) ' "$1"
}
# The last GROUP / MODE line of the rules log is what udev applies to the node.
last_perm()
{
    grep -E "^[^ ]+: /[^ ]+\.rules:[0-9]+ $2 " "$O/$1.log" | tail -n 1 || true
}

for d in reader etoken idbridge yubikey; do
    kind=token
    [[ $d == reader ]] && kind=reader
    [[ -s $O/$d.props ]] || fail "$d: udevadm test printed no properties: $(tail -n 5 "$O/$d.log")"
    [[ $(prop $d PKIO_AGENT_DEVICE) == "$kind" ]] ||
        fail "$d: PKIO_AGENT_DEVICE='$(prop $d PKIO_AGENT_DEVICE)', expected $kind"
    [[ $(prop $d ID_SMARTCARD_READER) == 1 ]] || fail "$d: ID_SMARTCARD_READER not set"
    [[ $(prop $d SYSTEMD_WANTS) == *smartcard.target* ]] ||
        fail "$d: SYSTEMD_WANTS='$(prop $d SYSTEMD_WANTS)', expected smartcard.target"
    for t in pkio-agent systemd uaccess; do
        has_tag $d $t || fail "$d: tag $t missing (TAGS=$(prop $d TAGS))"
    done
    [[ -z $(prop $d PKIO_AGENT_RAW_USB) ]] || fail "$d: marked PKIO_AGENT_RAW_USB (pcscd drives it)"
    # pcscd opens CCID devices: our rules must not touch the node (no GROUP, no MODE of ours).
    if perm_ours "$O/$d.log"; then
        fail "$d (a CCID device, pcscd's): our rules set the node's permissions: $(perm_ours "$O/$d.log")"
    fi
    [[ $(last_perm $d GROUP) != *" GROUP 64999" ]] ||
        fail "$d: device node given to the pkio-agent group: '$(last_perm $d GROUP)'; $(why $d)"
    [[ $(last_perm $d MODE) == *"50-udev-default.rules:"*" MODE 0664" ]] ||
        fail "$d: device node mode is not 50-udev-default's 0664: '$(last_perm $d MODE)'; $(why $d)"
done
pass "reader and tokens (CCID, pcscd's): PKIO_AGENT_DEVICE, ID_SMARTCARD_READER," \
    "SYSTEMD_WANTS=smartcard.target, tags pkio-agent/systemd/uaccess; node left at root 0664" \
    "(no GROUP/MODE from our rules)"

# The raw-USB list: the module opens the USB device itself, so the group gets the node.
d=yubihsm
[[ -s $O/$d.props ]] || fail "$d: udevadm test printed no properties: $(tail -n 5 "$O/$d.log")"
[[ $(prop $d PKIO_AGENT_DEVICE) == token && $(prop $d PKIO_AGENT_RAW_USB) == 1 ]] ||
    fail "$d: PKIO_AGENT_DEVICE='$(prop $d PKIO_AGENT_DEVICE)'" \
        "PKIO_AGENT_RAW_USB='$(prop $d PKIO_AGENT_RAW_USB)', expected token and 1"
has_tag $d pkio-agent || fail "$d: tag pkio-agent missing (TAGS=$(prop $d TAGS))"
[[ $(last_perm $d GROUP) == *"70-pkio-agent.rules:"*" GROUP 64999" ]] ||
    fail "$d: device node group is not pkio-agent's: '$(last_perm $d GROUP)'; $(why $d)"
[[ $(last_perm $d MODE) == *"70-pkio-agent.rules:"*" MODE 0660" ]] ||
    fail "$d: device node mode is not 0660 from our rules: '$(last_perm $d MODE)'; $(why $d)"
for p in ID_SMARTCARD_READER SYSTEMD_WANTS; do
    [[ -z $(prop $d $p) ]] || fail "$d (not a smart-card reader): $p='$(prop $d $p)'"
done
! has_tag $d uaccess || fail "$d: tag uaccess set (the seat user would get the raw device)"
pass "raw-USB list (YubiHSM 2 1050:0030): PKIO_AGENT_DEVICE=token, PKIO_AGENT_RAW_USB=1," \
    "tag pkio-agent, node pkio-agent:0660; no ID_SMARTCARD_READER, no uaccess"

[[ $(prop reader_if PKIO_AGENT_DEVICE) == reader ]] || fail "CCID interface not marked"
has_tag reader_if pkio-agent || fail "CCID interface: tag pkio-agent missing"
[[ -z $(prop reader_if SYSTEMD_WANTS) ]] ||
    fail "CCID interface: SYSTEMD_WANTS='$(prop reader_if SYSTEMD_WANTS)' (the usb_device has it)"
pass "CCID interface (bInterfaceClass 0b): marked and tagged for the agent's monitor"

for d in stick stick_if hasp; do
    [[ -s $O/$d.props ]] || fail "$d: udevadm test printed no properties"
    for p in PKIO_AGENT_DEVICE ID_SMARTCARD_READER SYSTEMD_WANTS; do
        [[ -z $(prop $d $p) ]] || fail "$d (not a smart card): $p='$(prop $d $p)'"
    done
    for t in pkio-agent uaccess; do
        ! has_tag $d $t || fail "$d (not a smart card): tag $t set"
    done
    if acted_on "$O/$d.log"; then
        fail "$d (not a smart card): our rules acted on it: $(acted_on "$O/$d.log")"
    fi
done
[[ $(last_perm stick MODE) == *" MODE 0664" ]] || fail "USB stick mode: $(last_perm stick MODE)"
pass "USB stick, its interface and a non-token SafeNet device: untouched"

if acted_on "$O/reader-remove.log"; then
    fail "our rules act on remove events: $(acted_on "$O/reader-remove.log")"
fi
pass "remove events: our rules do nothing"

# --- without the group ----------------------------------------------------------------------
grep -qE "^/etc/udev/rules.d/70-pkio-agent\.rules:[0-9]+ Unknown group 'pkio-agent', ignoring" \
    "$W/without/reader.log" ||
    fail "expected udev's 'Unknown group' warning without the group: $(grep -E '\.rules:[0-9]+ ' \
        "$W/without/reader.log" | head -n 3)"
[[ $(sed -n 's/^SYSTEMD_WANTS=//p' "$W/without/reader.props") == *smartcard.target* ]] ||
    fail "without the group the rest of the rules must still apply"
pass "without the pkio-agent group udev warns and ignores only GROUP (postinst creates it" \
    "and reloads udev)"
