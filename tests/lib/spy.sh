# shellcheck shell=bash
# spy.sh - trace PKCS#11 calls with OpenSC's pkcs11-spy (token-test-recipes.md 2.3).
#
#   spy_wrap "$SOFTHSM_MODULE" "$W/spy.log"
#   "$PKIO_AGENT" --module "$SPY_MODULE" ...          # load the spy instead of the module
#   [[ $(spy_count "$W/spy.log" C_Login) -eq 1 ]] || fail "..."
#
# spy_wrap MODULE LOGFILE   exports SPY_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so,
#                           PKCS11SPY=MODULE and PKCS11SPY_OUTPUT=LOGFILE. The spy appends:
#                           several processes may share one log.
# spy_count LOGFILE FUNC    number of calls of FUNC (e.g. C_Login) in the log.
# spy_mechanisms LOGFILE FUNC
#                           mechanism names passed to FUNC (e.g. C_SignInit), one a line,
#                           each name once, in order of first use (CKM_RSA_PKCS_PSS, ...).
# spy_returns LOGFILE FUNC  the return code name of each call of FUNC, one a line, in order.
# spy_calls LOGFILE         every function called, one a line, in order.
#
# The log format (opensc 0.23): each call starts with a line "<n>: C_Name", followed by
# "[in] ..." / "[out] ..." lines (mechanisms as "[in] pMechanism->type = CKM_..."), and ends
# with "Returned:  <number> CKR_...". The log contains PINs in clear: test PINs only.
# The spy/log functions fail the test if LOGFILE does not exist, because a missing log means
# the spy was never loaded, not that no call happened.

SPY_MODULE_PATH=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so

spy_wrap()
{
    [[ $# -eq 2 ]] || fail "usage: spy_wrap MODULE LOGFILE"
    [[ -e $SPY_MODULE_PATH ]] || fail "$SPY_MODULE_PATH missing (apt-get install opensc-pkcs11)"
    [[ -e $1 ]] || fail "spy_wrap: module $1 does not exist"
    export SPY_MODULE=$SPY_MODULE_PATH PKCS11SPY=$1 PKCS11SPY_OUTPUT=$2
}

_spy_log()
{
    [[ -f $1 ]] || fail "spy log $1 does not exist: was the module loaded through \$SPY_MODULE?"
}

spy_calls()
{
    _spy_log "$1"
    awk '/^[0-9]+: C_[A-Za-z]+[[:space:]]*$/ { print $2 }' "$1"
}

spy_count()
{
    [[ $# -eq 2 ]] || fail "usage: spy_count LOGFILE FUNCTION"
    _spy_log "$1"
    awk -v fn="$2" '/^[0-9]+: C_[A-Za-z]+[[:space:]]*$/ && $2 == fn { n++ } END { print n + 0 }' "$1"
}

spy_mechanisms()
{
    [[ $# -eq 2 ]] || fail "usage: spy_mechanisms LOGFILE FUNCTION"
    _spy_log "$1"
    awk -v fn="$2" '
        /^[0-9]+: C_[A-Za-z]+[[:space:]]*$/ { cur = $2; next }
        cur == fn && /^\[in\] pMechanism->type = / {
            sub(/^\[in\] pMechanism->type = /, ""); sub(/[[:space:]]+$/, "")
            if (!seen[$0]++) print
        }' "$1"
}

spy_returns()
{
    [[ $# -eq 2 ]] || fail "usage: spy_returns LOGFILE FUNCTION"
    _spy_log "$1"
    awk -v fn="$2" '
        /^[0-9]+: C_[A-Za-z]+[[:space:]]*$/ { cur = $2; next }
        cur == fn && /^Returned:/ { print $3; cur = "" }' "$1"
}
