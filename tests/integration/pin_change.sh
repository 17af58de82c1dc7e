#!/usr/bin/env bash
# First-use PINs: a token whose user PIN must be changed (a transport PIN) gets a new PIN before
# the one C_Login. A SoftHSM2 token behind the transport shim (tests/fake-p11/transport_shim.c,
# which reports CKF_USER_PIN_TO_BE_CHANGED until a C_SetPIN through it succeeds) is changed at a
# terminal (tmux): transport PIN, then the new PIN twice - a mismatch, a too-short one, a good one
# - one C_SetPIN, the key generated, and afterwards the real token takes the new PIN and not the
# old. Without a terminal and without a new PIN it is refused on one line with no C_SetPIN and no
# C_Login (pkcs11-spy); the --pin-fd protocol (transport PIN, new PIN) works and is checked before
# the token is touched. The fake module shows what SoftHSM2 cannot: a final try or locked PIN is
# refused before any C_SetPIN, and a PIN-pad token changes its PIN on the pad (C_SetPIN(NULL...)).
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/lib/spy.sh"
require_cmd setsid tmux pkcs11-tool
[[ -n ${FAKEP11_MODULE:-} && -e $FAKEP11_MODULE ]] || fail "FAKEP11_MODULE not built"
[[ -n ${TRANSPORT_SHIM:-} && -e $TRANSPORT_SHIM ]] || fail "TRANSPORT_SHIM not built"

dir=$(pkio_tmpdir)
softhsm_setup "$dir" transport-1
export TRANSPORT_SHIM_MODULE=$SOFTHSM_MODULE TRANSPORT_SHIM_STATE=$dir/shim.state
spy_wrap "$TRANSPORT_SHIM" "$PKIO_ROOT/spy.log"
transport=$TOKEN_PIN # 1234: SoftHSM2's user PIN is the transport PIN

# Does the real token (no shim) take this PIN? Lists its private keys.
real_login() { pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$1" --login --pin "$2" -O --type privkey 2>&1 || true; }
opens() { [[ $(real_login "$1" "$2") == *"Private Key Object"* ]]; }   # the PIN opens it (a key is there)
rejects() { [[ $(real_login "$1" "$2") == *CKR_PIN_INCORRECT* ]]; } # the token rejects the PIN
calls() { spy_count "$PKIO_ROOT/spy.log" "$1"; }

expect_exit 0 -- "$PKIO_AGENT" --module "$TRANSPORT_SHIM" tokens
grep -q "transport-1.*PIN must be changed" "$OUT" || fail "the shim does not report a PIN to change: $(cat "$OUT")"
pass "the transport shim makes a SoftHSM2 token report that its PIN must be changed"

# --- (a) at a terminal: transport PIN, new PIN twice (mismatch, too short, good) ------------------
# A private tmux server: a shared one would hand our session another environment.
tmux() { command tmux -S "$PKIO_ROOT/tmux.sock" "$@"; }
pkio_on_exit "tmux -S '$PKIO_ROOT/tmux.sock' kill-server 2>/dev/null || true"
screen() { tmux capture-pane -p -t "$sess"; }
screen_has() { screen | grep -q -- "$1"; }
# Type a line once the prompt is there (the prompt flushes what was typed before it). The pane
# shows no trailing blanks: match prompts without theirs.
type_at() {
    pkio_wait_until 20 "prompt '$1'" screen_has "$1"
    sleep 0.3
    tmux send-keys -t "$sess" -l "$2"
    tmux send-keys -t "$sess" Enter
}
new_pin=Nieuw-2468
: >"$PKIO_ROOT/spy.log"
sess=pkio-desk-$$
tmux new-session -d -s "$sess" -x 160 -y 40 \
    "'$PKIO_AGENT' --module '$SPY_MODULE' keygen --token '$TOKEN_URI'; echo EXIT=\$?; sleep 600"
type_at 'Transport PIN:' "$transport"
type_at 'New PIN (4-255 characters):' "$new_pin"
type_at 'New PIN again:' "Nieuw-2469"
pkio_wait_until 20 "mismatch said" screen_has 'The two entries differ'
[[ $(calls C_SetPIN) -eq 0 ]] || fail "the token was touched after a mismatch"
type_at 'The two entries differ' "ab"
pkio_wait_until 20 "too short said" screen_has 'The new PIN is too short'
type_at 'The new PIN is too short' "$new_pin"
sleep 0.3
pkio_wait_until 20 "asked again" sh -c "[ \$(tmux -S '$PKIO_ROOT/tmux.sock' capture-pane -p -t '$sess' | grep -c 'New PIN again:') -eq 2 ]"
tmux send-keys -t "$sess" -l "$new_pin"
tmux send-keys -t "$sess" Enter
pkio_wait_until 60 "keygen finished" screen_has 'EXIT='
screen_has 'EXIT=0' || fail "keygen after the PIN change failed: $(screen)"
screen_has 'PIN changed' || fail "the change was not reported: $(screen)"
screen_has "$new_pin" && fail "a PIN was echoed: $(screen)"
screen_has "Nieuw-2469" && fail "a PIN was echoed: $(screen)"
[[ $(calls C_SetPIN) -eq 1 ]] || fail "expected one C_SetPIN, saw $(calls C_SetPIN)"
[[ $(spy_returns "$PKIO_ROOT/spy.log" C_SetPIN) == CKR_OK ]] || fail "C_SetPIN: $(spy_returns "$PKIO_ROOT/spy.log" C_SetPIN)"
[[ $(calls C_Login) -eq 1 ]] || fail "expected one C_Login, saw $(calls C_Login)"
[[ $(calls C_GenerateKeyPair) -eq 1 ]] || fail "the flow did not continue to key generation"
# C_SetPIN came before the C_Login, in a session that was not logged in.
[[ $(spy_calls "$PKIO_ROOT/spy.log" | grep -E '^C_(SetPIN|Login)$' | tr '\n' ' ') == "C_SetPIN C_Login " ]] ||
    fail "order: $(spy_calls "$PKIO_ROOT/spy.log" | grep -E '^C_(SetPIN|Login)$' | tr '\n' ' ')"
grep -qx "$TOKEN_SERIAL" "$TRANSPORT_SHIM_STATE" || fail "the shim did not record the change"
opens transport-1 "$new_pin" || fail "the new PIN does not open the token (or no key)"
rejects transport-1 "$transport" || fail "the transport PIN still opens the token"
pass "terminal: transport PIN, new PIN twice (mismatch and too short asked again, token untouched), one C_SetPIN, then one C_Login and the key; new PIN works on the real token, the old does not"

# The change persists: another process logs in with the new PIN and changes nothing.
write_secret_file "$dir/newpin" "$new_pin"
: >"$PKIO_ROOT/spy.log"
expect_exit 0 -- setsid -w "$PKIO_AGENT" --module "$SPY_MODULE" keygen --token "$TOKEN_URI?pin-source=$dir/newpin" --label second </dev/null
[[ $(calls C_SetPIN) -eq 0 && $(calls C_Login) -eq 1 ]] || fail "second run: $(calls C_SetPIN) C_SetPIN, $(calls C_Login) C_Login"
pass "after the change the token is an ordinary one: pin-source with the new PIN, no C_SetPIN"

# --- (b) no terminal, no new PIN: refused on one line, nothing called -----------------------------
softhsm_add_token "$dir" transport-2 >/dev/null
uri2="pkcs11:token=transport-2"
refused() { # what the refusal must look like; no C_SetPIN, no C_Login
    [[ $(wc -l <"$ERR") -eq 1 ]] || fail "$1: not one line: $(cat "$ERR")"
    grep -q "'transport-2'.*PIN must be changed first" "$ERR" && grep -q "at a terminal" "$ERR" &&
        grep -q "kiosk" "$ERR" || fail "$1: unclear refusal: $(cat "$ERR")"
    [[ $(calls C_SetPIN) -eq 0 && $(calls C_Login) -eq 0 ]] ||
        fail "$1: $(calls C_SetPIN) C_SetPIN, $(calls C_Login) C_Login"
}
: >"$PKIO_ROOT/spy.log"
expect_exit 7 -- setsid -w "$PKIO_AGENT" --module "$SPY_MODULE" keygen --token "$uri2?pin-source=$dir/pin" </dev/null
refused "pin-source, no terminal"
: >"$PKIO_ROOT/spy.log"
expect_exit 7 -- setsid -w "$PKIO_AGENT" --module "$SPY_MODULE" keygen --token "$uri2" </dev/null
refused "no PIN source, no terminal"
: >"$PKIO_ROOT/spy.log"
expect_exit 7 -- setsid -w "$PKIO_AGENT" --module "$SPY_MODULE" --pin-fd 3 keygen --token "$uri2" </dev/null 3< <(printf '%s\n' "$transport")
refused "--pin-fd with the transport PIN only"
pass "no terminal and no new PIN: exit 7, one line saying the PIN must be changed first and how; no C_SetPIN, no C_Login"

# --- the --pin-fd protocol: line 1 transport PIN, line 2 new PIN ---------------------------------
pinfd() { # expected exit, what the descriptor carries (printf format and arguments)
    local want=$1
    shift
    : >"$PKIO_ROOT/spy.log"
    # shellcheck disable=SC2059
    expect_exit "$want" -- setsid -w "$PKIO_AGENT" --module "$SPY_MODULE" --pin-fd 3 keygen --token "$uri2" </dev/null 3< <(printf "$@")
}
pinfd 6 '%s\nab\n' "$transport"
grep -q "too short (4-255 characters)" "$ERR" || fail "short new PIN: $(cat "$ERR")"
[[ $(calls C_SetPIN) -eq 0 && $(calls C_Login) -eq 0 ]] || fail "a too-short new PIN reached the token"
pinfd 6 '%s\n%s\n' "$transport" "$transport"
grep -q "must differ from the transport PIN" "$ERR" || fail "same PIN: $(cat "$ERR")"
pinfd 6 '%s\nNew-PIN-1\nthird\n' "$transport"
[[ $(calls C_SetPIN) -eq 0 && $(calls C_Login) -eq 0 ]] || fail "three lines reached the token"
pass "--pin-fd: a bad new PIN (too short, same as the transport PIN) or a third line is refused before the token is touched (exit 6)"

pinfd 6 '9999\nNew-PIN-1\n'
[[ $(calls C_SetPIN) -eq 1 && $(calls C_Login) -eq 0 ]] || fail "wrong transport PIN: $(calls C_SetPIN) C_SetPIN, $(calls C_Login) C_Login"
grep -q "rejected the current (transport) PIN" "$ERR" || fail "wrong transport PIN: $(cat "$ERR")"
pass "a wrong transport PIN: exactly one C_SetPIN, no retry, no C_Login (exit 6)"

pinfd 0 '%s\nNew-PIN-1\n' "$transport"
[[ $(calls C_SetPIN) -eq 1 && $(calls C_Login) -eq 1 ]] || fail "pipe change: $(calls C_SetPIN) C_SetPIN, $(calls C_Login) C_Login"
opens transport-2 New-PIN-1 || fail "the new PIN from the pipe does not open the token"
pinfd 6 '%s\nNew-PIN-2\n' "New-PIN-1"
grep -q "does not ask for its PIN to be changed" "$ERR" || fail "a new PIN for a changed token: $(cat "$ERR")"
[[ $(calls C_SetPIN) -eq 0 && $(calls C_Login) -eq 0 ]] || fail "a second line for a changed token reached it"
pass "--pin-fd: transport PIN + new PIN change the PIN and log in once; a new PIN for a token that needs none is refused untried"

# --- (d) the fake module: final try / locked with a PIN to change: refused before any C_SetPIN ---
fake_log=$PKIO_ROOT/fake.log
for flags in to_be_changed,final_try to_be_changed,locked; do
    : >"$fake_log"
    FAKEP11_FLAGS=$flags FAKEP11_LOG=$fake_log expect_exit 7 -- setsid -w "$PKIO_AGENT" --module "$FAKEP11_MODULE" \
        --pin-fd 3 keygen --token "pkcs11:token=fake-token" </dev/null 3< <(printf '1234\nNew-PIN-5\n')
    [[ ! -s $fake_log ]] || fail "$flags: the token was called: $(cat "$fake_log")"
    [[ $(wc -l <"$ERR") -eq 1 ]] && grep -q "fake-token" "$ERR" || fail "$flags: $(cat "$ERR")"
done
grep -q locked "$ERR" || fail "locked not said: $(cat "$ERR")"
pass "a PIN to change on its final try or locked: exit 7 before any C_SetPIN or C_Login, even with a new PIN at hand"

: >"$fake_log"
FAKEP11_FLAGS=to_be_changed FAKEP11_LOG=$fake_log expect_exit 8 -- setsid -w "$PKIO_AGENT" --module "$FAKEP11_MODULE" \
    --pin-fd 3 keygen --token "pkcs11:token=fake-token" </dev/null 3< <(printf '1234\nNew-PIN-5\n')
[[ $(tr '\n' ' ' <"$fake_log") == "C_SetPIN ok C_Login user=user ok " ]] || fail "fake change: $(cat "$fake_log")"
: >"$fake_log"
FAKEP11_FLAGS=to_be_changed FAKEP11_LOG=$fake_log expect_exit 6 -- setsid -w "$PKIO_AGENT" --module "$FAKEP11_MODULE" \
    --pin-fd 3 keygen --token "pkcs11:token=fake-token" </dev/null 3< <(printf '9999\nNew-PIN-5\n')
[[ $(tr '\n' ' ' <"$fake_log") == "C_SetPIN incorrect " ]] || fail "fake wrong transport PIN: $(cat "$fake_log")"
pass "fake module: C_SetPIN then C_Login with the new PIN; a rejected transport PIN is one C_SetPIN and nothing more"

# --- (e) a PIN-pad token: the pad changes the PIN (C_SetPIN(NULL, 0, NULL, 0)) -------------------
: >"$fake_log"
FAKEP11_FLAGS=protected_auth,to_be_changed FAKEP11_LOG=$fake_log expect_exit 8 -- \
    setsid -w "$PKIO_AGENT" --module "$FAKEP11_MODULE" keygen --token "pkcs11:token=fake-token" </dev/null
[[ $(tr '\n' ' ' <"$fake_log") == "C_SetPIN pinpad C_Login user=user pinpad " ]] || fail "PIN pad change: $(cat "$fake_log")"
grep -q "PIN pad" "$ERR" || fail "the enrollee was not sent to the PIN pad: $(cat "$ERR")"
: >"$fake_log"
FAKEP11_FLAGS=protected_auth,to_be_changed,final_try FAKEP11_LOG=$fake_log expect_exit 7 -- \
    setsid -w "$PKIO_AGENT" --module "$FAKEP11_MODULE" keygen --token "pkcs11:token=fake-token" </dev/null
[[ ! -s $fake_log ]] || fail "PIN pad on its final try was called: $(cat "$fake_log")"
pass "PIN pad: C_SetPIN(NULL...) on the pad, then the pad login; on the final try nothing"

# --- a token without a user PIN (C_InitToken only, no C_InitPIN): its issuer must initialise it ---
free_slot=$(softhsm2-util --show-slots | awk '/^Slot /{s=$2} /Initialized: *no/{print s; exit}')
[[ -n $free_slot ]] || fail "no free SoftHSM2 slot"
pkcs11-tool --module "$SOFTHSM_MODULE" --slot "$free_slot" --init-token --label no-user-pin \
    --so-pin "$TOKEN_SO_PIN" >"$PKIO_ROOT/init.log" 2>&1 || fail "init-token: $(cat "$PKIO_ROOT/init.log")"
for module in "$SOFTHSM_MODULE" "$TRANSPORT_SHIM"; do
    : >"$PKIO_ROOT/spy.log"
    PKCS11SPY=$module expect_exit 7 -- setsid -w "$PKIO_AGENT" --module "$SPY_MODULE" \
        --pin-fd 3 keygen --token "pkcs11:token=no-user-pin" </dev/null 3< <(printf '1234\nNew-PIN-7\n')
    [[ $(wc -l <"$ERR") -eq 1 ]] && grep -q "no user PIN set" "$ERR" && grep -q "issuer" "$ERR" ||
        fail "no user PIN ($module): $(cat "$ERR")"
    [[ $(calls C_SetPIN) -eq 0 && $(calls C_Login) -eq 0 && $(calls C_InitPIN) -eq 0 ]] ||
        fail "a token without a user PIN was touched"
done
pass "a token without a user PIN: exit 7, one line saying its issuer must initialise it; nothing tried"
