# shellcheck shell=bash
# cardsim.sh - simulated smart cards (../shared/cardsim: jcardsim + IsoApplet or PivApplet) in a
# private pcscd, seen by OpenSC's opensc-pkcs11.so exactly as a USB token would be.
#
#   source "$PKIO_SRC/tests/lib/common.sh"; source "$PKIO_SRC/tests/lib/cardsim.sh"
#   cardsim_setup isoapplet            # or: cardsim_setup isoapplet PIN | cardsim_setup pivapplet
#
# cardsim_setup APPLET [PIN]   (call it directly, not inside $(...): it registers teardown)
#   APPLET is isoapplet (PKCS#15, on-card RSA-2048 / EC keygen through PKCS#11; PIN default
#   12345678, 4-16 digits) or pivapplet (PIV; PIN 123456, no keygen through PKCS#11).
#   1. Finds the cardsim directory: $PKIO_CARDSIM, else $PKIO_SRC/../shared/cardsim. When it is
#      missing the test prints "SKIP: ../shared/cardsim not found: simulated-card tests need it"
#      and exits 77 (ctest's skip code, SKIP_RETURN_CODE in tests/CMakeLists.txt).
#   2. Builds the cards once per build tree into $PKIO_BUILD/cardsim (build.sh, ~15 s; a
#      flock on $PKIO_BUILD/cardsim.lock makes concurrent tests wait for one build and reuse
#      it). Without PKIO_BUILD (a script run by hand): ${TMPDIR:-/tmp}/pkio-cardsim-UID.
#   3. Starts a private pcscd: socket-activated on a socket in the test's directory
#      (PCSCLITE_CSOCK_NAME, exported), a private reader configuration (-c DIR, so no reader of
#      the machine's /etc/reader.conf.d) with one vpcd entry on a port picked at random (never
#      the package default 35963/35964). pcscd runs in its own network and mount namespaces
#      (unshare): vpcd's TCP listener and jcardsim's fixed "reloader" port 8099 (which it binds
#      on all interfaces) exist only inside that namespace, so parallel tests cannot collide and
#      nothing listens on the machine's interfaces; a tmpfs on /run keeps pcscd's
#      /run/pcscd/pcscd.pid away from a system pcscd. The machine's pcscd is never used.
#   4. Inserts a card (cardsim_insert): run.sh APPLET PORT inside pcscd's network namespace
#      (nsenter), install.sh APPLET 0 [PIN], then waits (bounded) until `pkcs11-tool -L` on
#      opensc-pkcs11.so shows the token.
#   OpenSC's file cache goes to a private XDG_CACHE_HOME (exported), emptied at every insert.
#   Exports:
#     CARD_MODULE   path of opensc-pkcs11.so        CARD_APPLET  isoapplet | pivapplet
#     CARD_PIN  CARD_PIN_FILE (0600)  CARD_PUK       CARD_LABEL  CARD_SERIAL
#     CARD_URI="pkcs11:token=LABEL;serial=SERIAL"   CARD_READER  reader name (slot description)
#     CARD_PID      the card's java process          CARD_PORT    its vpcd port
#     CARD_PIV_MGMT_KEY   PivApplet's 3DES management key (pivapplet only)
#     CARDSIM_DIR CARDSIM_OUT CARDSIM_PCSCD_PID PCSCLITE_CSOCK_NAME XDG_CACHE_HOME
#     CARDSIM_SETUP_MS  wall time of cardsim_setup in milliseconds
#     TOKEN_MODULE TOKEN_LABEL TOKEN_SERIAL TOKEN_URI TOKEN_PIN TOKEN_PIN_FILE   (same values,
#     so helpers written for softhsm.sh/tpm2.sh, e.g. enroll_lib.sh's token_count, work)
#   Note: every IsoApplet card has serial 0000 and every PivApplet card 0000000000000000, so a
#   fresh card is indistinguishable by serial + label from the one it replaced.
#
# cardsim_remove               take the card out: stop its java process, wait until the reader
#                              is empty. CARD_PID becomes empty.
# cardsim_insert APPLET [PIN]  insert a fresh, empty card (new process, applet installed anew).
# cardsim_swap [APPLET [PIN]]  cardsim_remove, then cardsim_insert (default: the same applet/PIN).
# cardsim_p11 ARGS...          pkcs11-tool --module "$CARD_MODULE" ARGS...
# cardsim_teardown             stop the card and pcscd now (normally left to the exit trap).
#
# Needs: pcscd, vsmartcard-vpcd, systemd (systemd-socket-activate), util-linux (unshare,
# nsenter, flock), iproute2 (ip), opensc + opensc-pkcs11, and for build.sh a JDK with
# libbcprov-java libkryo-java libasm-java libobjenesis-java libminlog-java (tests/scripts/deps.sh).
# Timing (2 cores): pcscd + card + install + token visible ~8-10 s; RSA-2048 or EC keygen on
# the card 4-6 s each.

CARDSIM_VPCD_LIB=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
_CARDSIM_WAIT_SECS=30
_CARDSIM_READER_NAME="PKIo Card Sim"

# Sets CARDSIM_DIR, or skips the test (exit 77) when the directory is not there.
cardsim_locate()
{
    local d=${PKIO_CARDSIM:-${PKIO_SRC:-}/../shared/cardsim}
    if [[ -z ${PKIO_CARDSIM:-} && -z ${PKIO_SRC:-} ]]; then
        fail "neither PKIO_CARDSIM nor PKIO_SRC is set (run from ctest)"
    fi
    if [[ ! -x $d/run.sh || ! -x $d/build.sh || ! -x $d/install.sh ]]; then
        echo "SKIP: ../shared/cardsim not found: simulated-card tests need it (looked in $d)"
        exit 77
    fi
    CARDSIM_DIR=$(cd "$d" && pwd) || fail "cannot enter $d"
    export CARDSIM_DIR
}

# Builds the cards once per build tree; sets CARDSIM_OUT.
cardsim_build()
{
    local base=${PKIO_BUILD:-${TMPDIR:-/tmp}/pkio-cardsim-$(id -u)} fd out
    [[ -n ${CARDSIM_DIR:-} ]] || cardsim_locate
    mkdir -p "$base" || fail "cannot create $base"
    CARDSIM_OUT=$base/cardsim
    exec {fd}>"$base/cardsim.lock" || fail "cannot open $base/cardsim.lock"
    # build.sh starts with rm -rf OUT: only one build at a time, and nobody runs a card from
    # a half-built tree. 600 s covers a first build that installs a JDK.
    flock -w 600 "$fd" || fail "waited 600 s for another test's cardsim build ($base/cardsim.lock)"
    out=$("$CARDSIM_DIR/build.sh" "$CARDSIM_OUT" 2>"$PKIO_ROOT/cardsim-build.log") || {
        exec {fd}>&-
        fail "cardsim build.sh failed: $(tail -n 20 "$PKIO_ROOT/cardsim-build.log")"
    }
    exec {fd}>&-
    [[ $out == "$CARDSIM_OUT" ]] || fail "cardsim build.sh printed '$out', expected $CARDSIM_OUT"
    export CARDSIM_OUT
}

_cardsim_module_path()
{
    local m
    for m in /usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so \
        /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so; do
        if [[ -e $m ]]; then
            printf '%s\n' "$m"
            return 0
        fi
    done
    return 1
}

# "Yes" / "No" for reader 0 of our pcscd as opensc-tool -l shows it; empty if not listed.
_cardsim_reader0_state()
{
    opensc-tool -l 2>/dev/null | awk -v want="$_CARDSIM_READER_NAME 00 00" '
        $1 == "0" { name = $0; sub(/^[^A-Za-z]*(Yes|No)[[:space:]]+/, "", name)
                    if (index(name, want) == 1) { print $2; exit } }'
}

_cardsim_reader_listed() { [[ -n $(_cardsim_reader0_state) ]]; }
_cardsim_card_present() { [[ $(_cardsim_reader0_state) == Yes ]]; }
_cardsim_card_absent() { [[ $(_cardsim_reader0_state) == No ]]; }

# A random even port away from the package defaults; the namespace is ours, so it is free.
_cardsim_pick_port()
{
    local p
    while :; do
        p=$((20000 + (RANDOM % 10000) * 2))
        [[ $p -ne 35962 && $p -ne 35964 ]] && break
    done
    printf '%s\n' "$p"
}

_cardsim_start_pcscd()
{
    local dir=$1 sockdir=$2 i
    local -a user=()
    [[ $EUID -eq 0 ]] || user=(--user --map-root-user)
    CARD_PORT=$(_cardsim_pick_port)
    mkdir -p "$dir/readers" || fail "cannot create $dir/readers"
    printf 'FRIENDLYNAME "%s"\nDEVICENAME   /dev/null:0x%X\nLIBPATH      %s\nCHANNELID    0x%X\n' \
        "$_CARDSIM_READER_NAME" "$CARD_PORT" "$CARDSIM_VPCD_LIB" "$CARD_PORT" >"$dir/readers/vpcd"
    export PCSCLITE_CSOCK_NAME=$sockdir/pcscd.comm
    rm -f "$PCSCLITE_CSOCK_NAME"
    # Same PID from unshare to bash to systemd-socket-activate to pcscd (each execs the next).
    # systemd-socket-activate clears the environment and starts pcscd at the first connection.
    # shellcheck disable=SC2016 # $1 and $2 belong to the inner bash
    unshare "${user[@]}" --net --mount --propagation private -- bash -c '
        ip link set lo up || { echo "cardsim: cannot bring up lo in the private netns"; exit 97; }
        mount -t tmpfs -o mode=0755 pkio-cardsim-run /run ||
            { echo "cardsim: cannot mount a tmpfs on /run in the private namespace"; exit 98; }
        exec systemd-socket-activate -l "$1" pcscd --foreground --info -c "$2"' \
        cardsim-pcscd "$PCSCLITE_CSOCK_NAME" "$dir/readers" >"$dir/pcscd.log" 2>&1 &
    CARDSIM_PCSCD_PID=$!
    export CARDSIM_PCSCD_PID CARD_PORT
    for ((i = 0; i < _CARDSIM_WAIT_SECS * 50; i++)); do
        grep -q '^Listening on' "$dir/pcscd.log" 2>/dev/null && break
        kill -0 "$CARDSIM_PCSCD_PID" 2>/dev/null ||
            fail "private pcscd did not start: $(cat "$dir/pcscd.log")"
        sleep 0.02
    done
    grep -q '^Listening on' "$dir/pcscd.log" ||
        fail "private pcscd not listening after ${_CARDSIM_WAIT_SECS}s: $(cat "$dir/pcscd.log")"
    # The first client starts pcscd, which loads vpcd; vpcd listens once the readers exist, and
    # jcardsim does not retry its connection: wait for the readers before any card starts.
    pkio_wait_until "$_CARDSIM_WAIT_SECS" "the vpcd readers of the private pcscd" _cardsim_reader_listed
}

# Prints "LABEL<TAB>SERIAL" of the token in the first slot that has one (pkcs11-tool -L on stdin).
_cardsim_token_of()
{
    awk '
        /^Slot / { label = ""; have = 0 }
        /^[[:space:]]+token label[[:space:]]*:/ { sub(/^[^:]*:[[:space:]]?/, ""); label = $0; have = 1 }
        /^[[:space:]]+serial num[[:space:]]*:/ {
            sub(/^[^:]*:[[:space:]]?/, "")
            if (have) { printf "%s\t%s\n", label, $0; exit }
        }'
}

_cardsim_token_visible()
{
    pkcs11-tool --module "$CARD_MODULE" -L >"$_cardsim_dir/slots.txt" 2>&1 &&
        [[ -n $(_cardsim_token_of <"$_cardsim_dir/slots.txt") ]]
}

cardsim_p11()
{
    pkcs11-tool --module "$CARD_MODULE" "$@"
}

cardsim_insert()
{
    [[ $# -ge 1 && $# -le 2 ]] || fail "usage: cardsim_insert isoapplet|pivapplet [PIN]"
    local applet=$1 pin=${2:-} tok n
    local -a user=()
    if _pkio_in_subshell; then
        fail "cardsim_insert called in a subshell: its card would never be stopped"
    fi
    [[ -n ${CARDSIM_PCSCD_PID:-} ]] || fail "cardsim_insert: run cardsim_setup first"
    [[ -z ${CARD_PID:-} ]] || fail "cardsim_insert: a card is in the reader already (cardsim_remove)"
    case $applet in
    isoapplet)
        pin=${pin:-12345678}
        [[ $pin =~ ^[0-9]{4,16}$ ]] || fail "IsoApplet PIN must be 4-16 digits, not '$pin'"
        CARD_PUK=0123456789abcdef
        unset CARD_PIV_MGMT_KEY
        ;;
    pivapplet)
        [[ -z $pin || $pin == 123456 ]] || fail "PivApplet's PIN is fixed at 123456"
        pin=123456
        CARD_PUK=12345678
        export CARD_PIV_MGMT_KEY=010203040506070801020304050607080102030405060708
        ;;
    *) fail "cardsim_insert: unknown applet '$applet' (isoapplet or pivapplet)" ;;
    esac
    _cardsim_n=$((${_cardsim_n:-0} + 1))
    n=$_cardsim_n
    # A fresh card may carry the serial of the one before it: never let OpenSC's file cache
    # answer for it.
    rm -rf -- "${XDG_CACHE_HOME:?}/opensc"
    # A simple command in the background, so that $! is the card itself: nsenter execs run.sh,
    # which execs java. run.sh writes its jcardsim config with mktemp under TMPDIR.
    [[ $EUID -eq 0 ]] || user=(--user)
    env TMPDIR="$_cardsim_dir" CARDSIM_OUT="$CARDSIM_OUT" \
        nsenter --target "$CARDSIM_PCSCD_PID" "${user[@]}" --net -- \
        "$CARDSIM_DIR/run.sh" "$applet" "$CARD_PORT" 127.0.0.1 >"$_cardsim_dir/card$n.log" 2>&1 &
    CARD_PID=$!
    export CARD_PID
    _cardsim_wait_card_present "$_cardsim_dir/card$n.log"
    "$CARDSIM_DIR/install.sh" "$applet" 0 ${pin:+"$pin"} >"$_cardsim_dir/install$n.log" 2>&1 ||
        fail "cardsim install.sh $applet failed: $(cat "$_cardsim_dir/install$n.log")"
    pkio_wait_until "$_CARDSIM_WAIT_SECS" "OpenSC to show the $applet token" _cardsim_token_visible
    tok=$(_cardsim_token_of <"$_cardsim_dir/slots.txt")
    CARD_APPLET=$applet CARD_PIN=$pin
    CARD_LABEL=${tok%%$'\t'*} CARD_SERIAL=${tok#*$'\t'}
    CARD_READER=$(awk '/^Slot [0-9]+ \(0x[0-9a-f]+\): / { sub(/^Slot [0-9]+ \(0x[0-9a-f]+\): /, ""); print; exit }' \
        "$_cardsim_dir/slots.txt")
    write_secret_file "$_cardsim_dir/pin" "$pin"
    CARD_PIN_FILE=$_cardsim_dir/pin
    CARD_URI="pkcs11:token=$(pkio_uri_encode "$CARD_LABEL");serial=$(pkio_uri_encode "$CARD_SERIAL")"
    export CARD_APPLET CARD_PIN CARD_PIN_FILE CARD_PUK CARD_LABEL CARD_SERIAL CARD_URI CARD_READER
    export TOKEN_MODULE=$CARD_MODULE TOKEN_LABEL=$CARD_LABEL TOKEN_SERIAL=$CARD_SERIAL
    export TOKEN_URI=$CARD_URI TOKEN_PIN=$CARD_PIN TOKEN_PIN_FILE=$CARD_PIN_FILE
}

_cardsim_wait_card_present()
{
    local log=$1 i
    # jcardsim sleeps 3 s after connecting to vpcd before it answers; ~3-4 s in all.
    for ((i = 0; i < _CARDSIM_WAIT_SECS * 10; i++)); do
        _cardsim_card_present && return 0
        kill -0 "$CARD_PID" 2>/dev/null || fail "the simulated card exited: $(cat "$log")"
        sleep 0.1
    done
    fail "no card in '$_CARDSIM_READER_NAME 00 00' ${_CARDSIM_WAIT_SECS}s after run.sh: $(cat "$log")"
}

cardsim_remove()
{
    [[ -n ${CARD_PID:-} ]] || return 0
    pkio_stop_pid "$CARD_PID" "simulated card"
    CARD_PID=
    export CARD_PID
    pkio_wait_until "$_CARDSIM_WAIT_SECS" "the reader to report the card removed" _cardsim_card_absent
}

cardsim_swap()
{
    local applet=${1:-${CARD_APPLET:-}} pin=${2:-}
    [[ -n $applet ]] || fail "usage: cardsim_swap [APPLET [PIN]]"
    if [[ -z $pin && $applet == "${CARD_APPLET:-}" ]]; then
        pin=$CARD_PIN
    fi
    cardsim_remove
    cardsim_insert "$applet" ${pin:+"$pin"}
}

cardsim_teardown()
{
    if [[ -n ${CARD_PID:-} ]]; then
        pkio_stop_pid "$CARD_PID" "simulated card"
        CARD_PID=
    fi
    if [[ -n ${CARDSIM_PCSCD_PID:-} ]]; then
        pkio_stop_pid "$CARDSIM_PCSCD_PID" "private pcscd"
        CARDSIM_PCSCD_PID=
    fi
}

cardsim_setup()
{
    [[ $# -ge 1 && $# -le 2 ]] || fail "usage: cardsim_setup isoapplet|pivapplet [PIN]"
    local t0 sockdir
    t0=${EPOCHREALTIME/./}
    if _pkio_in_subshell; then
        fail "cardsim_setup called in a subshell: its daemons would never be stopped"
    fi
    cardsim_locate
    require_cmd pcscd opensc-tool pkcs11-tool pkcs15-init
    local c
    for c in unshare nsenter flock; do
        command -v "$c" >/dev/null || fail "required command '$c' not found (apt-get install util-linux)"
    done
    command -v ip >/dev/null || fail "required command 'ip' not found (apt-get install iproute2)"
    command -v systemd-socket-activate >/dev/null ||
        fail "required command 'systemd-socket-activate' not found (apt-get install systemd)"
    [[ -e $CARDSIM_VPCD_LIB ]] || fail "$CARDSIM_VPCD_LIB missing (apt-get install vsmartcard-vpcd)"
    CARD_MODULE=$(_cardsim_module_path) || fail "opensc-pkcs11.so missing (apt-get install opensc-pkcs11)"
    export CARD_MODULE

    cardsim_build

    _cardsim_dir=$(pkio_tmpdir)
    # AF_UNIX paths are limited to 108 bytes; a deep TMPDIR gets a short socket dir in /tmp.
    sockdir=$_cardsim_dir
    if ((${#sockdir} > 80)); then
        sockdir=$(mktemp -d /tmp/pkio-card.XXXXXXXX) || fail "mktemp -d /tmp/pkio-card failed"
        pkio_on_exit "rm -rf -- '$sockdir'"
    fi
    export XDG_CACHE_HOME=$_cardsim_dir/cache
    mkdir -p "$XDG_CACHE_HOME" || fail "cannot create $XDG_CACHE_HOME"
    pkio_on_exit cardsim_teardown
    CARD_PID=
    _cardsim_start_pcscd "$_cardsim_dir" "$sockdir"
    cardsim_insert "$@"
    CARDSIM_SETUP_MS=$(((${EPOCHREALTIME/./} - t0) / 1000))
    export CARDSIM_SETUP_MS
    echo "note: cardsim_setup $1 ready in ${CARDSIM_SETUP_MS} ms (pcscd $CARDSIM_PCSCD_PID," \
        "card $CARD_PID on vpcd port $CARD_PORT in a private netns; token '$CARD_LABEL'" \
        "serial $CARD_SERIAL)" >&2
}
