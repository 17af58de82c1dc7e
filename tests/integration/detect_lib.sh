# shellcheck shell=bash
# detect_lib.sh - shared by detect_pcsc.sh and detect_udev.sh (agent/core/detect.c).
#
# Source it FIRST, call detect_enter_ns "$@", then source common.sh:
#
#   source "$PKIO_SRC/tests/integration/detect_lib.sh"
#   detect_enter_ns "$@"
#   source "$PKIO_SRC/tests/lib/common.sh"
#
# Both tests run in a private mount namespace with a tmpfs on /run:
#  - pcscd writes /run/pcscd/pcscd.pid even when socket-activated; the tmpfs keeps that away
#    from the machine (and from a system pcscd);
#  - libudev says "udevd runs" when /run/udev/control exists; there is no udevd here (umockdev
#    plays its part), so the tests create that file in their own /run only;
#  - detect_pcsc.sh bind-mounts a private driver directory over /usr/lib/pcsc/drivers.
# Everything dies with the namespace; nothing on the machine changes.
#
# Env from ctest: DETECT_DRIVER, DETECT_UDEVBED, DETECT_IFD (tests/integration/detect.cmake).

# Re-exec the calling script inside a private mount namespace (once).
detect_enter_ns()
{
    [[ -n ${PKIO_DETECT_IN_NS:-} ]] && return 0
    export PKIO_DETECT_IN_NS=1
    if ! command -v unshare >/dev/null 2>&1; then
        echo "FAIL: required command 'unshare' not found (apt-get install util-linux)" >&2
        exit 1
    fi
    if [[ $(id -u) -eq 0 ]]; then
        exec unshare --mount --propagation private bash "$0" "$@"
    fi
    exec unshare --user --map-root-user --mount --propagation private bash "$0" "$@"
}

# The private /run (see above). Call after sourcing common.sh.
detect_private_run()
{
    [[ -n ${PKIO_DETECT_IN_NS:-} ]] || fail "not in the private mount namespace"
    mount -t tmpfs -o mode=0755 pkio-test-run /run ||
        fail "cannot mount a tmpfs on /run in the private mount namespace"
    if ! mkdir -p /run/udev || ! : >/run/udev/control; then
        fail "cannot create /run/udev/control in the private /run"
    fi
}

# Fail (never skip) unless the built helpers and the umockdev preload library are there.
detect_require_helpers()
{
    local out
    [[ -x ${DETECT_DRIVER:-} ]] || fail "DETECT_DRIVER not set or not built (run from ctest)"
    [[ -x ${DETECT_UDEVBED:-} ]] ||
        fail "detect_udevbed not built: apt-get install libumockdev-dev and re-run cmake"
    require_cmd umockdev-wrapper ps
    out=$(env LD_PRELOAD=libumockdev-preload.so.0 /bin/true 2>&1) || true
    [[ $out != *"cannot be preloaded"* ]] ||
        fail "libumockdev-preload.so.0 missing (apt-get install umockdev)"
}

# Start the umockdev testbed owner. Sets DETECT_UMOCKDEV_DIR, DETECT_BED_LOG, DETECT_CTL (an fd
# open on its command FIFO) and DETECT_PRELOAD (env assignments for processes that must see
# the testbed).
detect_start_bed()
{
    local w=$1
    mkfifo "$w/bedctl" || fail "mkfifo failed"
    pkio_spawn udevbed env LD_PRELOAD=libumockdev-preload.so.0 "$DETECT_UDEVBED" "$w/bedctl"
    DETECT_BED_LOG=$PKIO_ROOT/udevbed.log
    pkio_wait_until 10 "the umockdev testbed" grep -q '^UMOCKDEV_DIR=' "$DETECT_BED_LOG"
    DETECT_UMOCKDEV_DIR=$(sed -n 's/^UMOCKDEV_DIR=//p' "$DETECT_BED_LOG")
    [[ -d $DETECT_UMOCKDEV_DIR ]] || fail "testbed directory '$DETECT_UMOCKDEV_DIR' missing"
    exec {DETECT_CTL}<>"$w/bedctl"
    # shellcheck disable=SC2034 # used by the scripts that source this file
    DETECT_PRELOAD=(LD_PRELOAD=libumockdev-preload.so.0 "UMOCKDEV_DIR=$DETECT_UMOCKDEV_DIR"
        "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
}

_detect_count()
{
    local n
    n=$(grep -cE -- "$2" "$1" 2>/dev/null) || true
    printf '%s\n' "${n:-0}"
}

_detect_have_n()
{
    (($(_detect_count "$1" "$2") >= $3))
}

# bed_cmd add NAME VID PID CLASS | bed_cmd remove NAME: run one testbed command and wait until
# the testbed says it has sent the uevents.
bed_cmd()
{
    local before
    before=$(_detect_count "$DETECT_BED_LOG" '^(done|error):')
    printf '%s\n' "$*" >&"$DETECT_CTL"
    pkio_wait_until 10 "testbed command '$*'" _detect_have_n "$DETECT_BED_LOG" '^(done|error):' \
        $((before + 1))
    if grep -q '^error:' "$DETECT_BED_LOG"; then
        cat "$DETECT_BED_LOG" >&2
        fail "testbed command '$*' failed"
    fi
}

# wait_line LOG ERE DESC [COUNT]: wait until LOG has COUNT (default 1) lines matching ERE.
# The bound (30 s) only keeps a broken build from hanging: events arrive within a second.
wait_line()
{
    local log=$1 ere=$2 desc=$3 n=${4:-1} i
    for ((i = 0; i < 1500; i++)); do
        _detect_have_n "$log" "$ere" "$n" && return 0
        sleep 0.02
    done
    echo "--- $log:" >&2
    cat "$log" >&2
    fail "no $desc (no line matching '$ere' after 30 s)"
}

# stop_driver PID LOG: SIGTERM; the driver must leave through detect_close() ("stopped", exit 0).
stop_driver()
{
    local pid=$1 log=$2 rc=0 i
    kill -TERM "$pid" || fail "driver $pid is not running"
    for ((i = 0; i < 1500; i++)); do
        [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    kill -0 "$pid" 2>/dev/null && [[ $(ps -o stat= -p "$pid") != Z* ]] &&
        fail "driver $pid did not exit within 30 s of SIGTERM (stuck in detect_close?)"
    wait "$pid" || rc=$?
    [[ $rc -eq 0 ]] || {
        cat "$log" >&2
        fail "driver exited $rc after SIGTERM"
    }
    [[ $(tail -n 1 "$log") == stopped ]] || {
        cat "$log" >&2
        fail "driver did not print 'stopped' last"
    }
}
