#!/bin/bash
# fakep11_selftest: libfakep11.so as pkcs11-tool and pkcs11-spy see it, plus the call-by-call
# checks of fakep11_check. Needs FAKEP11_MODULE and FAKEP11_CHECK (set by CMakeLists.txt).
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=../lib/spy.sh
source "$PKIO_LIB/spy.sh"

require_cmd pkcs11-tool
[[ -n ${FAKEP11_MODULE:-} && -f $FAKEP11_MODULE ]] ||
    fail "FAKEP11_MODULE='${FAKEP11_MODULE:-}' is not a file (build the fakep11 target)"
[[ -n ${FAKEP11_CHECK:-} && -x $FAKEP11_CHECK ]] ||
    fail "FAKEP11_CHECK='${FAKEP11_CHECK:-}' is not executable (build fakep11_check)"
M=$FAKEP11_MODULE
W=$(pkio_tmpdir)
unset FAKEP11_TOKENS FAKEP11_FLAGS FAKEP11_PIN FAKEP11_SO_PIN FAKEP11_LOG FAKEP11_LABEL \
    FAKEP11_REMOVE_AFTER FAKEP11_MECHS

# "field : value" of the Nth slot (1-based) in pkcs11-tool -L output.
field()
{
    awk -v n="$2" -v f="$3" '
        /^Slot / { slot++ }
        slot == n && index($0, "  " f) == 1 { sub(/^[^:]*:[[:space:]]?/, ""); print; exit }' "$1"
}

assert_eq()
{
    [[ $1 == "$2" ]] || fail "$3: got '$1', expected '$2'"
}

# Module exports, linkage.
if command -v nm >/dev/null; then
    exports=$(nm -D --defined-only "$M" | awk '$2 == "T" { print $3 }')
    assert_eq "$exports" C_GetFunctionList "exported functions"
fi
libs=$(ldd "$M" | awk '$1 ~ /^lib/ { print $1 }' | sort | tr '\n' ' ')
assert_eq "$libs" "libc.so.6 " "libraries the module links against"
pass "libfakep11.so exports only C_GetFunctionList and links only libc"

# One token, defaults.
expect_exit 0 -- pkcs11-tool --module "$M" -L
assert_eq "$(grep -c '^Slot ' "$OUT")" 1 "slot count"
assert_eq "$(field "$OUT" 1 'token label')" fake-token "label"
assert_eq "$(field "$OUT" 1 'serial num')" FAKE0001 "serial"
assert_eq "$(field "$OUT" 1 'token manufacturer')" pkio-test "manufacturer"
assert_eq "$(field "$OUT" 1 'token model')" fake "model"
assert_eq "$(field "$OUT" 1 'token flags')" \
    "login required, token initialized, PIN initialized" "default flags"
pass "pkcs11-tool -L: one token fake-token / FAKE0001"

# Two identical tokens.
FAKEP11_TOKENS=2 expect_exit 0 -- pkcs11-tool --module "$M" -L
assert_eq "$(grep -c '^Slot ' "$OUT")" 2 "slot count with FAKEP11_TOKENS=2"
assert_eq "$(field "$OUT" 2 'token label')" fake-token "second label"
assert_eq "$(field "$OUT" 2 'serial num')" FAKE0002 "second serial"
pass "FAKEP11_TOKENS=2: two tokens labelled fake-token, FAKE0001 and FAKE0002"

# Flags.
FAKEP11_FLAGS=final_try expect_exit 0 -- pkcs11-tool --module "$M" -L
assert_eq "$(field "$OUT" 1 'token flags')" \
    "login required, token initialized, final user PIN try, PIN initialized" "final_try flags"
FAKEP11_FLAGS=locked,to_be_changed,count_low,protected_auth,no_login_required \
    expect_exit 0 -- pkcs11-tool --module "$M" -L
flags=$(field "$OUT" 1 'token flags')
for want in "PIN pad present" "user PIN count low" "user PIN locked" "user PIN to be changed"; do
    [[ $flags == *"$want"* ]] || fail "flags '$flags' lack '$want'"
done
[[ $flags != *"login required"* ]] || fail "no_login_required still shows 'login required'"
FAKEP11_FLAGS=final_try,typo expect_exit 1 -- pkcs11-tool --module "$M" -L
grep -q 'unknown FAKEP11_FLAGS entry "typo"' "$ERR" || fail "no message for a bad flag"
pass "FAKEP11_FLAGS map to token flags; a typo fails C_Initialize"

# Logins: the log names the outcome, never the PIN.
export FAKEP11_LOG=$W/login.log FAKEP11_PIN=Corr3ct-Pin
expect_exit 0 -- pkcs11-tool --module "$M" --login --pin Corr3ct-Pin -O
expect_exit 1 -- pkcs11-tool --module "$M" --login --pin Wr0ng-Pin -O
grep -q CKR_PIN_INCORRECT "$ERR" || fail "wrong PIN did not give CKR_PIN_INCORRECT"
FAKEP11_FLAGS=locked expect_exit 1 -- pkcs11-tool --module "$M" --login --pin Corr3ct-Pin -O
grep -q CKR_PIN_LOCKED "$ERR" || fail "locked token did not give CKR_PIN_LOCKED"
FAKEP11_FLAGS=protected_auth expect_exit 0 -- pkcs11-tool --module "$M" --login -O </dev/null
printf -v want '%s\n' "C_Login user=user ok" "C_Login user=user incorrect" \
    "C_Login user=user locked" "C_Login user=user pinpad"
assert_eq "$(cat "$FAKEP11_LOG")"$'\n' "$want" "login log"
if grep -qE 'Corr3ct|Wr0ng' "$FAKEP11_LOG"; then
    fail "the login log contains a PIN"
fi
unset FAKEP11_LOG FAKEP11_PIN
pass "C_Login: ok, incorrect, locked and pinpad are logged without the PIN"

# Mechanisms: RSA up to 2048 by default, no EC.
expect_exit 0 -- pkcs11-tool --module "$M" -M
grep -q 'RSA-PKCS-KEY-PAIR-GEN, keySize={1024,2048}' "$OUT" || fail "default mechanisms: $(cat "$OUT")"
if grep -q 'EC' "$OUT"; then
    fail "EC mechanisms listed by default"
fi
expect_exit 1 -- pkcs11-tool --module "$M" --login --pin 1234 --keypairgen --key-type EC:prime256v1
expect_exit 1 -- pkcs11-tool --module "$M" --login --pin 1234 --keypairgen --key-type rsa:2048
grep -q CKR_FUNCTION_NOT_SUPPORTED "$ERR" || fail "RSA keygen: $(cat "$ERR")"
FAKEP11_MECHS=CKM_EC_KEY_PAIR_GEN:256:384,CKM_ECDSA expect_exit 0 -- pkcs11-tool --module "$M" -M
grep -q 'ECDSA-KEY-PAIR-GEN, keySize={256,384}' "$OUT" || fail "FAKEP11_MECHS: $(cat "$OUT")"
pass "FAKEP11_MECHS and the default RSA-only list"

# A pulled token.
FAKEP11_REMOVE_AFTER=0 expect_exit 0 -- pkcs11-tool --module "$M" -L
grep -q '(empty)' "$OUT" || fail "FAKEP11_REMOVE_AFTER=0 still shows a token: $(cat "$OUT")"
FAKEP11_REMOVE_AFTER=1 expect_exit 1 -- pkcs11-tool --module "$M" --login --pin 1234 -O
grep -q CKR_DEVICE_REMOVED "$ERR" || fail "removed token: $(cat "$ERR")"
pass "FAKEP11_REMOVE_AFTER: the token disappears"

# Through pkcs11-spy.
spy_wrap "$M" "$W/spy.log"
expect_exit 0 -- pkcs11-tool --module "$SPY_MODULE" --login --pin 1234 -O
assert_eq "$(spy_count "$W/spy.log" C_Login)" 1 "C_Login calls seen by the spy"
assert_eq "$(spy_returns "$W/spy.log" C_Login)" CKR_OK "C_Login result seen by the spy"
unset PKCS11SPY PKCS11SPY_OUTPUT
pass "pkcs11-spy wraps the fake module"

# Call by call.
expect_exit 0 -- "$FAKEP11_CHECK" "$M" "$W/check.log"
printf -v want '%s\n' "C_Login user=user incorrect" "C_Login user=user incorrect" \
    "C_Login user=user nopin" "C_Login user=user ok" "C_Login user=user incorrect" \
    "C_Login user=user locked" "C_Login user=user pinpad" "C_Login user=user ok"
assert_eq "$(cat "$W/check.log")"$'\n' "$want" "fakep11_check login log"
pass "fakep11_check: $(cat "$OUT")"
