# shellcheck shell=bash
# common.sh - sourced by every shell test: strict mode, a private temp dir, cleanup traps,
# assertions and small helpers.
#
#   source "$PKIO_SRC/tests/lib/common.sh"
#
# Functions (all fail the test with "FAIL: ..." on stderr and exit 1 on errors):
#   pkio_tmpdir              new private dir (0700) under this test's root dir; prints its path:
#                            W=$(pkio_tmpdir). Safe inside $(...): the root dir is created and
#                            registered for removal when common.sh is sourced.
#   pkio_on_exit "cmd"       register a cleanup command; all run in reverse order on EXIT,
#                            on failure too, and on INT/TERM/HUP. Must not be called in $(...).
#   fail "msg"               print "FAIL: msg" to stderr, exit 1.
#   pass "msg"               print "ok: msg".
#   expect_exit CODE -- cmd  run cmd (stdin inherited), stdout -> file $OUT, stderr -> file
#                            $ERR; fail showing both unless the status is CODE. CODE may be
#                            "nonzero". Must not be called in $(...), or OUT/ERR are lost.
#   require_cmd name...      fail (not skip) if a command is missing, naming its Debian package.
#   write_secret_file PATH CONTENT   write CONTENT (exactly, no newline added) with mode 0600.
#   pkio_wait_until SECS DESC cmd... run cmd until it succeeds; fail after SECS seconds. For
#                            readiness only (a daemon's socket), never as a test assertion.
#   pkio_spawn NAME cmd...   start cmd in the background, log to $PKIO_ROOT/NAME.log, set
#                            PKIO_SPAWN_PID, register pkio_stop_pid on exit.
#   pkio_stop_pid PID [NAME] SIGTERM, wait for the process to exit, SIGKILL after 10 s.
#   pkio_uri_encode STRING   percent-encode for a PKCS#11 URI path attribute.
#
# Variables: PKIO_ROOT (this test's root dir), PKIO_LIB (this directory), OUT, ERR.
# common.sh owns the EXIT/INT/TERM/HUP traps: register cleanup with pkio_on_exit instead of
# calling trap. A signal runs the cleanup once the current foreground command returns, so
# wait for long-running things with "cmd & wait $!".
# PKIO_KEEP_TMP=1 keeps PKIO_ROOT after the test for debugging.

set -euo pipefail

if [[ -n ${_PKIO_COMMON_SH:-} ]]; then
    return 0
fi
_PKIO_COMMON_SH=1

PKIO_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PKIO_LIB
_PKIO_MAIN_PID=$BASHPID
_pkio_exit_cmds=()

fail()
{
    echo "FAIL: $*" >&2
    exit 1
}

pass()
{
    echo "ok: $*"
}

_pkio_in_subshell()
{
    [[ $BASHPID != "$_PKIO_MAIN_PID" ]]
}

pkio_on_exit()
{
    [[ $# -eq 1 ]] || fail "pkio_on_exit takes one command string"
    if _pkio_in_subshell; then
        fail "pkio_on_exit '$1' called in a subshell, where it would never run"
    fi
    _pkio_exit_cmds+=("$1")
}

_pkio_run_exit()
{
    local rc=$? i cmd
    set +e
    trap - EXIT INT TERM HUP
    for ((i = ${#_pkio_exit_cmds[@]} - 1; i >= 0; i--)); do
        cmd=${_pkio_exit_cmds[i]}
        eval "$cmd" || echo "warning: cleanup '$cmd' failed" >&2
    done
    exit "$rc"
}

trap _pkio_run_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

PKIO_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/pkio-test.XXXXXXXX") || fail "mktemp -d failed"
chmod 0700 "$PKIO_ROOT"
export PKIO_ROOT

_pkio_remove_root()
{
    if [[ ${PKIO_KEEP_TMP:-0} == 1 ]]; then
        echo "note: kept $PKIO_ROOT" >&2
        return 0
    fi
    rm -rf -- "$PKIO_ROOT"
}
pkio_on_exit _pkio_remove_root

pkio_tmpdir()
{
    local d
    d=$(mktemp -d "$PKIO_ROOT/tmp.XXXXXXXX") || fail "mktemp -d under $PKIO_ROOT failed"
    chmod 0700 "$d"
    printf '%s\n' "$d"
}

expect_exit()
{
    local want=$1 rc=0
    [[ ${2:-} == -- ]] || fail "usage: expect_exit CODE -- command [args...]"
    shift 2
    [[ $# -gt 0 ]] || fail "expect_exit: no command"
    if _pkio_in_subshell; then
        fail "expect_exit called in a subshell: \$OUT and \$ERR would be lost"
    fi
    OUT=$(mktemp "$PKIO_ROOT/out.XXXXXXXX")
    ERR=$(mktemp "$PKIO_ROOT/err.XXXXXXXX")
    "$@" >"$OUT" 2>"$ERR" || rc=$?
    if [[ $want == nonzero && $rc -ne 0 ]] || [[ $want == "$rc" ]]; then
        return 0
    fi
    {
        echo "--- command: $*"
        echo "--- exit status $rc, expected $want"
        echo "--- stdout:"
        cat "$OUT"
        echo "--- stderr:"
        cat "$ERR"
        echo "---"
    } >&2
    fail "'$1' exited $rc, expected $want"
}

# Debian package for each command the tests use.
_pkio_pkg_of()
{
    case $1 in
    softhsm2-util) echo softhsm2 ;;
    pkcs11-tool | opensc-tool) echo opensc ;;
    p11tool) echo gnutls-bin ;;
    swtpm) echo swtpm ;;
    swtpm_setup | swtpm_ioctl) echo swtpm-tools ;;
    tpm2-abrmd) echo tpm2-abrmd ;;
    tpm2_ptool) echo libtpm2-pkcs11-tools ;;
    tpm2_*) echo tpm2-tools ;;
    dbus-daemon) echo dbus-daemon ;;
    dbus-send) echo dbus-bin ;;
    gdbus) echo libglib2.0-bin ;;
    python3) echo python3 ;;
    openssl) echo openssl ;;
    pgrep | pkill | ps) echo procps ;;
    ss) echo iproute2 ;;
    curl) echo curl ;;
    jq) echo jq ;;
    shellcheck) echo shellcheck ;;
    umockdev-run | umockdev-wrapper) echo umockdev ;;
    pcscd) echo pcscd ;;
    pcsc_scan) echo pcsc-tools ;;
    valgrind) echo valgrind ;;
    *) return 1 ;;
    esac
}

require_cmd()
{
    local c pkg
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 && continue
        if pkg=$(_pkio_pkg_of "$c"); then
            fail "required command '$c' not found (apt-get install $pkg)"
        fi
        fail "required command '$c' not found"
    done
}

write_secret_file()
{
    [[ $# -eq 2 ]] || fail "usage: write_secret_file PATH CONTENT"
    (
        umask 077
        printf '%s' "$2" >"$1"
    ) || fail "cannot write $1"
    chmod 0600 "$1" || fail "cannot chmod $1"
}

pkio_wait_until()
{
    local secs=$1 desc=$2 i
    shift 2
    for ((i = 0; i < secs * 50; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.02
    done
    fail "gave up after ${secs}s waiting for $desc"
}

pkio_stop_pid()
{
    local pid=$1 name=${2:-process} i
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 500; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        # A zombie child counts as gone once reaped; `wait` reaps our own children.
        if [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]]; then
            wait "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.02
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "warning: $name ($pid) ignored SIGTERM for 10 s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

pkio_spawn()
{
    local name=$1
    shift
    if _pkio_in_subshell; then
        fail "pkio_spawn $name called in a subshell"
    fi
    "$@" >"$PKIO_ROOT/$name.log" 2>&1 &
    PKIO_SPAWN_PID=$!
    pkio_on_exit "pkio_stop_pid $PKIO_SPAWN_PID $name"
}

pkio_uri_encode()
{
    local s=$1 out='' c i
    local LC_ALL=C
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
        [a-zA-Z0-9._~-]) out+=$c ;;
        *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s\n' "$out"
}
