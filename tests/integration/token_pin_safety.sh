#!/usr/bin/env bash
# Never lock a token, never guess a token: wrong PIN costs exactly one C_Login (SoftHSM2, counted
# with pkcs11-spy); final try / locked / must-change are refused before any C_Login; PIN files
# readable by others and pin-value on the command line are refused; two matching tokens are
# listed, not guessed; unsupported key types, a missing module and a pulled token give clear
# errors with distinct exit codes.
# The fake module (tests/fake-p11) stands in where no real soft token can be put in the state we
# need (final try, locked, PIN pad, pulled mid-operation): SoftHSM2 cannot report those flags.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/lib/spy.sh"
require_cmd python3 setsid
[[ -n ${FAKEP11_MODULE:-} && -e $FAKEP11_MODULE ]] || fail "FAKEP11_MODULE not built"

dir=$(pkio_tmpdir)
softhsm_setup "$dir"
spy_wrap "$SOFTHSM_MODULE" "$PKIO_ROOT/spy.log"
write_secret_file "$dir/wrong" "9999"

# --- wrong PIN on a real token: one C_Login, a distinct exit, the token named -------------------
for attempt in 1 2; do
    : >"$PKIO_ROOT/spy.log"
    expect_exit 6 -- "$PKIO_AGENT" --module "$SPY_MODULE" keygen --token "$TOKEN_URI?pin-source=$dir/wrong"
    [[ $(spy_count "$PKIO_ROOT/spy.log" C_Login) -eq 1 ]] ||
        fail "wrong PIN (run $attempt): expected exactly 1 C_Login, saw $(spy_count "$PKIO_ROOT/spy.log" C_Login)"
    grep -q "'$TOKEN_LABEL' (serial $TOKEN_SERIAL) rejected the PIN" "$ERR" || fail "message does not name the token: $(cat "$ERR")"
    [[ $(wc -l <"$ERR") -eq 1 ]] || fail "error is not one line: $(cat "$ERR")"
    grep -q 9999 "$ERR" && fail "the PIN appears in the message"
done
pass "wrong PIN: exit 6, exactly one C_Login per run, one line naming the token"

# --- PIN file readable by others: refused before any login ---------------------------------------
cp "$dir/pin" "$dir/pin644" && chmod 644 "$dir/pin644"
: >"$PKIO_ROOT/spy.log"
expect_exit 3 -- "$PKIO_AGENT" --module "$SPY_MODULE" keygen --token "$TOKEN_URI?pin-source=$dir/pin644"
[[ $(spy_count "$PKIO_ROOT/spy.log" C_Login) -eq 0 ]] || fail "a group/world readable PIN file was used"
pass "PIN file mode 0644 refused (exit 3), no C_Login"

# --- pin-value on the command line: refused, and not echoed --------------------------------------
expect_exit 2 -- "$PKIO_AGENT" --module "$SOFTHSM_MODULE" keygen --token "$TOKEN_URI;pin-value=1234"
grep -q "pin-value is not accepted on the command line" "$ERR" || fail "no pin-value message: $(cat "$ERR")"
grep -q 1234 "$ERR" && fail "the PIN was echoed"
pass "pin-value in argv refused (exit 2) without echoing it"

# --- no PIN source and no terminal: refused, no login -------------------------------------------
: >"$PKIO_ROOT/spy.log"
expect_exit 6 -- setsid -w "$PKIO_AGENT" --module "$SPY_MODULE" keygen --token "$TOKEN_URI" </dev/null
[[ $(spy_count "$PKIO_ROOT/spy.log" C_Login) -eq 0 ]] || fail "logged in without a PIN"
pass "no PIN and no terminal: exit 6, no C_Login"

# --- two tokens match: refuse and list both ------------------------------------------------------
second=$(softhsm_add_token "$dir" "$TOKEN_LABEL")
expect_exit 5 -- "$PKIO_AGENT" --module "$SOFTHSM_MODULE" keygen --token "pkcs11:token=$TOKEN_LABEL?pin-source=$dir/pin"
grep -q "2 tokens match" "$ERR" && grep -q "$TOKEN_SERIAL" "$ERR" && grep -q "$second" "$ERR" ||
    fail "ambiguous URI not reported with both serials: $(cat "$ERR")"
[[ $(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN_LABEL" -O 2>/dev/null | grep -c "Object") -eq 0 ]] ||
    fail "a key was generated although the token was ambiguous"
pass "URI matching two tokens: exit 5, both serials listed, nothing generated"

# --- missing module ------------------------------------------------------------------------------
expect_exit 5 -- "$PKIO_AGENT" --module "$PKIO_ROOT/no-such-module.so" tokens
grep -q "no-such-module.so" "$ERR" || fail "missing module not named"
pass "missing module: exit 5, named"

# --- fake module: flags real soft tokens cannot report -------------------------------------------
fake() { FAKEP11_LOG=$PKIO_ROOT/fake.log "$PKIO_AGENT" --module "$FAKEP11_MODULE" "$@"; }
fake_uri="pkcs11:token=fake-token?pin-source=$dir/pin"
# No terminal (setsid, stdin /dev/null): a PIN that must be changed cannot be changed here either.
for flag in final_try locked to_be_changed; do
    : >"$PKIO_ROOT/fake.log"
    FAKEP11_FLAGS=$flag FAKEP11_LOG=$PKIO_ROOT/fake.log expect_exit 7 -- \
        setsid -w "$PKIO_AGENT" --module "$FAKEP11_MODULE" keygen --token "$fake_uri" </dev/null
    [[ ! -s $PKIO_ROOT/fake.log ]] || fail "$flag: C_Login or C_SetPIN was called: $(cat "$PKIO_ROOT/fake.log")"
    grep -q "fake-token" "$ERR" || fail "$flag: token not named: $(cat "$ERR")"
    [[ $(wc -l <"$ERR") -eq 1 ]] || fail "$flag: error is not one line: $(cat "$ERR")"
    pass "token reporting $flag: exit 7, no C_Login, no C_SetPIN"
done
grep -q "must be changed first" "$ERR" && grep -q "terminal" "$ERR" && grep -q "kiosk" "$ERR" ||
    fail "to_be_changed without a terminal: the line does not say what to do: $(cat "$ERR")"

: >"$PKIO_ROOT/fake.log"
FAKEP11_FLAGS=count_low expect_exit 8 -- fake keygen --token "$fake_uri" --key-type rsa:2048
[[ $(grep -c "C_Login" "$PKIO_ROOT/fake.log") -eq 1 ]] || fail "count_low: expected one login"
pass "count low still logs in once (the token keeps one more try than final)"

: >"$PKIO_ROOT/fake.log"
expect_exit 8 -- fake keygen --token "$fake_uri" --key-type rsa:3072
grep -q "rsa\|RSA" "$ERR" || fail "unsupported key size not explained: $(cat "$ERR")"
expect_exit 8 -- fake keygen --token "$fake_uri" --key-type ec:p256
pass "unsupported key types: exit 8 before any generation"

: >"$PKIO_ROOT/fake.log"
FAKEP11_FLAGS=protected_auth FAKEP11_LOG=$PKIO_ROOT/fake.log expect_exit 8 -- \
    setsid -w "$PKIO_AGENT" --module "$FAKEP11_MODULE" keygen --token "pkcs11:token=fake-token" </dev/null
[[ $(grep -c "pinpad" "$PKIO_ROOT/fake.log") -eq 1 ]] || fail "no PIN-pad login: $(cat "$PKIO_ROOT/fake.log")"
grep -q "PIN pad" "$ERR" || fail "officer not told to use the PIN pad: $(cat "$ERR")"
pass "PIN pad token: login through the protected authentication path"

FAKEP11_TOKENS=2 expect_exit 5 -- fake keygen --token "$fake_uri"
grep -q FAKE0001 "$ERR" && grep -q FAKE0002 "$ERR" || fail "fake ambiguity: $(cat "$ERR")"
pass "two identical fake tokens: refused and listed"

FAKEP11_REMOVE_AFTER=2 expect_exit 5 -- fake keygen --token "$fake_uri"
grep -qi "removed\|not present" "$ERR" || fail "pulled token not reported: $(cat "$ERR")"
pass "token pulled mid-operation: exit 5, said so"
