# shellcheck shell=bash
# opencryptoki.sh - a private IBM opencryptoki soft token (swtok): pkcsslotd started by the test,
# in its own mount, IPC and PID namespaces, so nothing on the machine sees it or gets in its way.
#
#   source "$PKIO_SRC/tests/lib/opencryptoki.sh"
#   ock_enter_ns "$@"                         # FIRST: re-executes the script in the namespaces
#   source "$PKIO_SRC/tests/lib/common.sh"
#   ock_setup "$(pkio_tmpdir)"                # or: ock_setup DIR LABEL
#
# Why namespaces: opencryptoki 3.8.1 (Debian 12) has every path compiled in and no environment
# variable for most of them: /etc/opencryptoki/opencryptoki.conf, the token data in
# /var/lib/opencryptoki/swtok, the locks in /var/lock/opencryptoki (= /run/lock), the daemon's
# socket and PID file /run/pkcsslotd.socket and /run/pkcsslotd.pid, a SysV shared memory segment
# keyed by ftok(/usr/sbin/pkcsslotd) and a POSIX one (/dev/shm) named after the token directory.
# (PKCS_APP_STORE moves the token data only; OCK_CONFIG does not exist before 3.10.) So only one
# pkcsslotd can run per machine, and pkcsslotd always daemonises. Instead of sharing the
# system's instance under a lock, each test gets its own: tmpfs on /run and /dev/shm, DIR/etc
# bind-mounted on /etc/opencryptoki and DIR/lib on /var/lib/opencryptoki, a new IPC namespace
# for the SysV segment, and a new PID namespace so that the daemon dies with the test even if
# the test is killed (the test's bash is PID 1 there; unshare --kill-child). Tests may run in
# parallel. Needs root (pkcsslotd chowns its files to the pkcs11 group; a user namespace cannot
# map that group) and the Debian package opencryptoki (which creates the pkcs11 group).
#
# ock_enter_ns "$@"
#   Re-exec the calling script inside the namespaces (once; a no-op inside them). Must run
#   before common.sh is sourced. Fails (never skips) without root or unshare.
# ock_setup DIR [LABEL]      (call it directly, not inside $(...): it registers teardown)
#   Writes DIR/etc/opencryptoki.conf with one slot (0) on the soft token libpkcs11_sw.so, makes
#   the private mounts, starts pkcsslotd, initialises the token with pkcs11-tool (C_InitToken
#   with the default SO PIN 87654321 and LABEL (default ock-test), C_SetPIN of the SO PIN to
#   12345678, C_InitPIN user PIN 1234), checks that no PIN is flagged "to be changed" and that
#   `pkcs11-tool -L` shows the token, and writes the user PIN to DIR/pin (0600). Exports:
#     OCK_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so
#     TOKEN_MODULE (= OCK_MODULE) TOKEN_LABEL TOKEN_SERIAL (always "123" on swtok)
#     TOKEN_URI="pkcs11:token=LABEL;serial=SERIAL" TOKEN_PIN=1234 TOKEN_SO_PIN=12345678
#     TOKEN_PIN_FILE=DIR/pin   and OCK_TOKEN_LABEL/_SERIAL/_URI (same values)
#     OCK_SLOTD_PID   pkcsslotd's PID (in the test's PID namespace)
#     OCK_SETUP_MS    wall time of ock_setup in milliseconds
# ock_reset_token
#   A blank token again, same label, serial and PINs: stops pkcsslotd, empties the token directory
#   and its shared memory, starts pkcsslotd and initialises the token as ock_setup does (~0.4 s).
#   (C_InitToken alone cannot do it on 3.8.1: after the SO PIN was changed, re-initialising
#   writes the new SO master key under the default SO PIN, and every SO login afterwards fails
#   with CKR_FUNCTION_FAILED, so C_InitPIN can never run.)
# ock_teardown
#   Stops pkcsslotd now (normally left to the exit trap). The mounts go with the namespace.
#
# The soft token of 3.8.1 has RSA (512-4096 bits, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_RSA_X_509)
# but no EC mechanisms at all, and its serial number is the constant "123".

OCK_MODULE_PATH=/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so
OCK_STDLL=/usr/lib/x86_64-linux-gnu/opencryptoki/stdll/libpkcs11_sw.so
OCK_SLOTD=/usr/sbin/pkcsslotd
OCK_DEFAULT_SO_PIN=87654321
OCK_SO_PIN=12345678
OCK_USER_PIN=1234
_OCK_WAIT_SECS=20

ock_enter_ns()
{
    [[ -n ${PKIO_OCK_IN_NS:-} ]] && return 0
    if [[ -n ${_PKIO_COMMON_SH:-} ]]; then
        echo "FAIL: ock_enter_ns must run before common.sh is sourced" >&2
        exit 1
    fi
    if ! command -v unshare >/dev/null 2>&1; then
        echo "FAIL: required command 'unshare' not found (apt-get install util-linux)" >&2
        exit 1
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "FAIL: the opencryptoki test needs root (private mounts for pkcsslotd's fixed paths)" >&2
        exit 1
    fi
    export PKIO_OCK_IN_NS=1
    exec unshare --mount --ipc --pid --fork --kill-child --mount-proc --propagation private \
        bash "$0" "$@"
}

# Prints the serial of the token labelled $1 in `pkcs11-tool -L` output read from stdin.
_ock_serial_of()
{
    awk -v want="$1" '
        /^Slot / { label = ""; have = 0 }
        /^[[:space:]]+token label[[:space:]]*:/ {
            sub(/^[^:]*:[[:space:]]?/, ""); label = $0; have = 1
        }
        /^[[:space:]]+serial num[[:space:]]*:/ {
            sub(/^[^:]*:[[:space:]]?/, "")
            if (have && label == want) { print; exit }
        }'
}

_ock_p11()
{
    local log=$1
    shift
    pkcs11-tool --module "$OCK_MODULE_PATH" --slot 0 "$@" >>"$log" 2>&1 ||
        fail "pkcs11-tool $* failed on opencryptoki: $(cat "$log")"
}

_ock_daemon_ready()
{
    [[ -s /run/pkcsslotd.pid && -S /run/pkcsslotd.socket ]]
}

# Starts pkcsslotd (it forks: the parent exits once the socket listens, the child writes the PID
# file); sets OCK_SLOTD_PID.
_ock_start_daemon()
{
    local log=$1
    # A stopped daemon may leave its PID file and socket behind: readiness would then be read
    # from the old files (the old PID) before the new daemon writes its own. /run is private.
    rm -f /run/pkcsslotd.pid /run/pkcsslotd.socket
    "$OCK_SLOTD" >"$log" 2>&1 </dev/null || fail "pkcsslotd exited $?: $(cat "$log")"
    pkio_wait_until "$_OCK_WAIT_SECS" "pkcsslotd's PID file and socket" _ock_daemon_ready
    OCK_SLOTD_PID=$(cat /run/pkcsslotd.pid)
    [[ $OCK_SLOTD_PID =~ ^[0-9]+$ ]] && kill -0 "$OCK_SLOTD_PID" 2>/dev/null ||
        fail "pkcsslotd is not running (PID file says '$OCK_SLOTD_PID')"
    export OCK_SLOTD_PID
}

# C_InitToken (default SO PIN), SO PIN changed, C_InitPIN; checks the flags; prints the serial.
_ock_init_token()
{
    local dir=$1 label=$2 log=$1/setup.log serial flags
    : >"$log"
    _ock_p11 "$log" --init-token --so-pin "$OCK_DEFAULT_SO_PIN" --label "$label"
    _ock_p11 "$log" --login --login-type so --so-pin "$OCK_DEFAULT_SO_PIN" \
        --change-pin --new-pin "$OCK_SO_PIN"
    _ock_p11 "$log" --login --login-type so --so-pin "$OCK_SO_PIN" --init-pin --pin "$OCK_USER_PIN"
    pkcs11-tool --module "$OCK_MODULE_PATH" -L >"$dir/slots.txt" 2>&1 ||
        fail "pkcs11-tool -L on opencryptoki failed: $(cat "$dir/slots.txt")"
    serial=$(_ock_serial_of "$label" <"$dir/slots.txt")
    [[ -n $serial ]] || fail "pkcs11-tool -L does not show token '$label': $(cat "$dir/slots.txt")"
    flags=$(grep -m1 'token flags' "$dir/slots.txt")
    [[ $flags == *"PIN initialized"* && $flags != *"to be changed"* && $flags != *locked* ]] ||
        fail "opencryptoki token flags after set-up: $flags"
    printf '%s\n' "$serial"
}

ock_reset_token()
{
    [[ -n ${OCK_TOKEN_LABEL:-} && -n ${_OCK_DIR:-} ]] || fail "ock_reset_token: run ock_setup first"
    local serial
    ock_teardown
    rm -rf -- "${_OCK_DIR:?}"/lib/swtok/* /dev/shm/* /run/lock/opencryptoki/swtok/*
    mkdir -p "$_OCK_DIR/lib/swtok/TOK_OBJ" && chown -R root:pkcs11 "$_OCK_DIR/lib" &&
        chmod -R 0770 "$_OCK_DIR/lib" || fail "cannot recreate $_OCK_DIR/lib/swtok"
    _ock_start_daemon "$_OCK_DIR/pkcsslotd.log"
    serial=$(_ock_init_token "$_OCK_DIR" "$OCK_TOKEN_LABEL") || exit 1
    [[ $serial == "$OCK_TOKEN_SERIAL" ]] || fail "the reset token has serial '$serial', not '$OCK_TOKEN_SERIAL'"
}

# LeakSanitizer (the ASan+UBSan run of the suite): libopencryptoki 3.8.1 leaks in C_Initialize
# (DL_Load_and_Init, when it dlopens the token library). Suppress leaks inside the two
# opencryptoki libraries only, on top of the suite's own suppressions file, for this test's
# processes. (The suite's file, tests/lsan.supp, is the natural home for these two lines.)
_ock_lsan()
{
    local supp=$PKIO_ROOT/lsan-opencryptoki.supp old='' opt
    local -a opts=()
    IFS=: read -r -a opts <<<"${LSAN_OPTIONS:-}"
    for opt in "${opts[@]}"; do
        [[ $opt == suppressions=* ]] && old=${opt#suppressions=}
    done
    {
        [[ -n $old && -r $old ]] && cat -- "$old"
        printf '%s\n' "# added by tests/lib/opencryptoki.sh" leak:libopencryptoki.so leak:libpkcs11_sw.so
    } >"$supp"
    local new=()
    for opt in "${opts[@]}"; do
        [[ -n $opt && $opt != suppressions=* ]] && new+=("$opt")
    done
    new+=("suppressions=$supp")
    LSAN_OPTIONS=$(IFS=:; printf '%s' "${new[*]}")
    export LSAN_OPTIONS
}

# 0 when the program $1 links AddressSanitizer. ldd's whole output is read first. Not
# `ldd | grep -q libasan` under pipefail: ld.so writes the list one line at a time, grep -q
# exits at the libasan line (the second), ldd's next write then dies of SIGPIPE and the pipeline
# fails: the ASan build was taken for a normal one (3 tries in 20 on a quiet machine, more often
# under load such as ctest -j2 on 2 cores), ran without the wrapper below, and timed out.
_ock_links_asan()
{
    local out
    out=$(ldd "$1" 2>&1) || fail "ldd $1 failed: $out"
    [[ $out == *libasan.so* ]]
}

# In an ASan build of pkio-agent, also keep libpkcs11_sw.so mapped: libopencryptoki dlcloses it
# in C_Finalize, and LeakSanitizer, at exit, then meets leaked blocks whose stacks point into an
# unmapped library; it re-reads the module list for every such frame and each agent run spends
# tens of seconds to minutes there, on the CPU, not blocked (measured under load: keygen 25 s,
# a csr 100-146 s; the test times out at 120 s; with the wrapper 0.4-0.8 s). Preloading the
# library keeps it mapped, the frames resolve and the suppressions above match. Only then
# PKIO_AGENT becomes a two-line wrapper that sets LD_PRELOAD and execs the real binary.
_ock_asan_agent()
{
    local w=$PKIO_ROOT/pkio-agent-ock
    [[ -n ${PKIO_AGENT:-} && -x $PKIO_AGENT ]] || return 0
    _ock_links_asan "$PKIO_AGENT" || return 0
    cat >"$w" <<EOF
#!/bin/sh
LD_PRELOAD="$OCK_STDLL\${LD_PRELOAD:+:\$LD_PRELOAD}" exec '$PKIO_AGENT' "\$@"
EOF
    chmod 0755 "$w" || fail "cannot write $w"
    export PKIO_AGENT_REAL=$PKIO_AGENT PKIO_AGENT=$w
    echo "note: ASan build: pkio-agent runs with LD_PRELOAD=$OCK_STDLL (see opencryptoki.sh)" >&2
}

ock_teardown()
{
    local pid
    pid=${OCK_SLOTD_PID:-}
    if [[ -z $pid && -s /run/pkcsslotd.pid ]]; then
        pid=$(cat /run/pkcsslotd.pid 2>/dev/null) || pid=''
    fi
    [[ -n $pid ]] || return 0
    pkio_stop_pid "$pid" pkcsslotd
    OCK_SLOTD_PID=''
}

ock_setup()
{
    [[ $# -ge 1 && $# -le 2 ]] || fail "usage: ock_setup DIR [LABEL]"
    local dir=$1 label=${2:-ock-test} t0 serial
    t0=${EPOCHREALTIME/./}
    if _pkio_in_subshell; then
        fail "ock_setup called in a subshell: pkcsslotd would never be stopped"
    fi
    [[ -n ${PKIO_OCK_IN_NS:-} ]] || fail "ock_setup: call ock_enter_ns \"\$@\" first"
    require_cmd pkcs11-tool unshare mount ps
    local f
    for f in "$OCK_SLOTD" "$OCK_MODULE_PATH" "$OCK_STDLL"; do
        [[ -e $f ]] || fail "$f missing (apt-get install opencryptoki)"
    done
    getent group pkcs11 >/dev/null ||
        fail "group pkcs11 missing (the opencryptoki package creates it: apt-get install opencryptoki)"
    [[ -d /etc/opencryptoki && -d /var/lib/opencryptoki ]] ||
        fail "/etc/opencryptoki or /var/lib/opencryptoki missing (apt-get install opencryptoki)"
    [[ -z ${_OCK_DIR:-} ]] || fail "ock_setup: one opencryptoki instance per test (already in $_OCK_DIR)"

    mkdir -p "$dir/etc" "$dir/lib/swtok/TOK_OBJ" || fail "cannot create $dir"
    cat >"$dir/etc/opencryptoki.conf" <<'EOF'
version opencryptoki-3.1

slot 0
{
stdll = libpkcs11_sw.so
description = "pkio-agent test soft token"
}
EOF
    chown -R root:pkcs11 "$dir/lib" && chmod -R 0770 "$dir/lib" || fail "cannot chown $dir/lib"
    chmod 0755 "$dir/etc" && chmod 0644 "$dir/etc/opencryptoki.conf"

    # The private mounts (they exist only in this namespace and vanish with it).
    mount -t tmpfs -o mode=0755 pkio-ock-run /run || fail "cannot mount a tmpfs on /run"
    mount -t tmpfs -o mode=1777 pkio-ock-shm /dev/shm || fail "cannot mount a tmpfs on /dev/shm"
    mkdir -p /run/lock/opencryptoki/swtok || fail "cannot create /run/lock/opencryptoki"
    chmod 1777 /run/lock
    chown -R root:pkcs11 /run/lock/opencryptoki && chmod -R 0770 /run/lock/opencryptoki ||
        fail "cannot chown /run/lock/opencryptoki"
    mount --bind "$dir/etc" /etc/opencryptoki || fail "cannot bind $dir/etc on /etc/opencryptoki"
    mount --bind "$dir/lib" /var/lib/opencryptoki ||
        fail "cannot bind $dir/lib on /var/lib/opencryptoki"

    _ock_lsan
    _ock_asan_agent
    _OCK_DIR=$dir
    pkio_on_exit ock_teardown
    _ock_start_daemon "$dir/pkcsslotd.log"
    serial=$(_ock_init_token "$dir" "$label") || exit 1
    write_secret_file "$dir/pin" "$OCK_USER_PIN"

    export OCK_MODULE=$OCK_MODULE_PATH TOKEN_MODULE=$OCK_MODULE_PATH
    export TOKEN_LABEL=$label TOKEN_SERIAL=$serial
    TOKEN_URI="pkcs11:token=$(pkio_uri_encode "$label");serial=$(pkio_uri_encode "$serial")"
    export TOKEN_URI TOKEN_PIN=$OCK_USER_PIN TOKEN_SO_PIN=$OCK_SO_PIN TOKEN_PIN_FILE=$dir/pin
    export OCK_TOKEN_LABEL=$TOKEN_LABEL OCK_TOKEN_SERIAL=$TOKEN_SERIAL OCK_TOKEN_URI=$TOKEN_URI
    OCK_SETUP_MS=$(((${EPOCHREALTIME/./} - t0) / 1000))
    export OCK_SETUP_MS
    echo "note: ock_setup ready in ${OCK_SETUP_MS} ms (pkcsslotd $OCK_SLOTD_PID)" >&2
}
