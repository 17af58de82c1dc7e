#!/usr/bin/env bash
# First-use PINs at the kiosk: a token that arrives with a transport PIN (SoftHSM2 behind the
# transport shim, tests/fake-p11/transport_shim.c) is enrolled from the queue against the sandbox.
# The kiosk (tmux) says, in Dutch by default, that the token still has its transport PIN, asks for
# it and for the new PIN twice without echo (a mismatch is asked again, the token untouched), hands
# both to the job through the pipe, and the job changes the PIN (one C_SetPIN) and completes; the
# real token then takes the new PIN, not the old. In English (--lang en) with the station's
# transport PIN file (--pin-source) the kiosk asks only for the new PIN, twice.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/lib/spy.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool tmux
[[ -n ${TRANSPORT_SHIM:-} && -e $TRANSPORT_SHIM ]] || fail "TRANSPORT_SHIM not built"

tokdir=$(pkio_tmpdir)
softhsm_setup "$tokdir" officer # the officer's own token, present from the start, ignored
officer_serial=$TOKEN_SERIAL
transport=$TOKEN_PIN
export TRANSPORT_SHIM_MODULE=$SOFTHSM_MODULE TRANSPORT_SHIM_STATE=$tokdir/shim.state
printf '%s\n' "$officer_serial" >"$TRANSPORT_SHIM_STATE" # its PIN was changed long ago
# The stations load the shim through pkcs11-spy, to count what reaches the token.
spy_wrap "$TRANSPORT_SHIM" "$PKIO_ROOT/spy.log"
enroll_setup "$SPY_MODULE"
req=$PKIO_SRC/tests/data/requests/valid-prof.json

real_login() { pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$1" --login --pin "$2" -O --type privkey 2>&1 || true; }
opens() { [[ $(real_login "$1" "$2") == *"Private Key Object"* ]]; }
rejects() { [[ $(real_login "$1" "$2") == *CKR_PIN_INCORRECT* ]]; }
state_of() { # serial -> state of its job ("" if none)
    pa status --json | python3 -c 'import json,sys; s=[j["state"] for j in json.load(sys.stdin)["jobs"] if j["token_serial"]==sys.argv[1]]; print(s[-1] if s else "")' "$1"
}
queued() { pa queue list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["queue"]))'; }
calls() { spy_count "$PKIO_ROOT/spy.log" "$1"; }

# A private tmux server: a shared one would hand our session another environment.
tmux() { command tmux -S "$PKIO_ROOT/tmux.sock" "$@"; }
pkio_on_exit "tmux -S '$PKIO_ROOT/tmux.sock' kill-server 2>/dev/null || true"
screen() { tmux capture-pane -p -t "$sess"; }
screen_has() { screen | grep -q -- "$1"; }
count_on_screen() { [[ $(screen | grep -c -- "$1") -ge $2 ]]; }
# Type a line once the prompt is there (the prompt flushes what was typed before it). The pane
# shows no trailing blanks: match prompts without theirs.
type_line() {
    sleep 0.3
    tmux send-keys -t "$sess" -l "$1"
    tmux send-keys -t "$sess" Enter
}

# --- Dutch kiosk: transport PIN typed, new PIN twice (a mismatch first) --------------------------
new1=Nieuw-2468
sess=pkio-kiosk-$$
tmux new-session -d -s "$sess" -x 110 -y 40 \
    "$PKIO_AGENT --config $CFG watch --kiosk --detect rescan --rescan 0.3 --ignore $officer_serial --retry 0.5"
pkio_wait_until 20 "kiosk asks for a token" screen_has 'Plaats uw token'
pa queue add --request "$req" >/dev/null
: >"$PKIO_ROOT/spy.log"
s1=$(softhsm_add_token "$tokdir" person-1)
pkio_wait_until 30 "kiosk asks for the transport PIN" screen_has 'Transport-PIN (person-1):'
screen_has 'Uw token heeft nog een transport-PIN: kies een nieuwe PIN' || fail "no transport-PIN notice: $(screen)"
screen_has 'Certificaat voor: Johanna Maria de Vries' || fail "whose certificate is not shown: $(screen)"
screen_has "Token: person-1, serienummer $s1" || fail "which token is not shown: $(screen)"
type_line "$transport"
pkio_wait_until 20 "new PIN asked" screen_has 'Nieuwe PIN (4-255 tekens):'
type_line "$new1"
pkio_wait_until 20 "new PIN asked again" screen_has 'Nieuwe PIN nogmaals:'
type_line "Nieuw-2469"
pkio_wait_until 20 "mismatch said" screen_has 'De twee PINs zijn niet gelijk'
[[ $(calls C_SetPIN) -eq 0 && -z $(state_of "$s1") ]] || fail "the token was touched after a mismatch"
type_line "$new1"
pkio_wait_until 20 "new PIN asked again (2)" count_on_screen 'Nieuwe PIN nogmaals:' 2
type_line "$new1"
pkio_wait_until 120 "kiosk says done" screen_has 'Klaar - u kunt het token verwijderen'
[[ $(state_of "$s1") == "done" ]] || fail "job of person-1: $(state_of "$s1")"
for p in "$new1" Nieuw-2469; do
    screen_has "$p" && fail "a PIN was echoed on the kiosk: $(screen)"
done
[[ $(calls C_SetPIN) -eq 1 ]] || fail "expected one C_SetPIN, saw $(calls C_SetPIN)"
[[ $(spy_returns "$PKIO_ROOT/spy.log" C_SetPIN) == CKR_OK ]] || fail "C_SetPIN did not succeed"
grep -qx "$s1" "$TRANSPORT_SHIM_STATE" || fail "the shim did not record the change"
# The kiosk's children speak its language (watch passes --lang nl).
grep -q "Token 'person-1' (serienummer $s1): pincode gewijzigd" "$STATE/watch.log" ||
    fail "the job did not say (in Dutch) it changed the PIN: $(cat "$STATE/watch.log")"
TOKEN_PIN=$new1 token_cert_matches_key person-1
opens person-1 "$new1" || fail "the new PIN does not open person-1"
rejects person-1 "$transport" || fail "the transport PIN still opens person-1"
[[ $(cc_state "len(s['orders'])") -eq 1 ]] || fail "expected one order: $(cc_state "len(s['orders'])")"
pass "kiosk (nl): transport PIN and new PIN twice typed without echo, a mismatch asked again with the token untouched; one C_SetPIN through the pipe, enrolled against the sandbox; the new PIN works, the old does not"

# --- English kiosk with the station's transport PIN file: only the new PIN is typed --------------
tmux kill-session -t "$sess"
new2=Second-1357
sess=pkio-kiosk-en-$$
tmux new-session -d -s "$sess" -x 110 -y 40 \
    "$PKIO_AGENT --config $CFG watch --kiosk --lang en --pin-source $TOKEN_PIN_FILE --detect rescan --rescan 0.3 --ignore $officer_serial --ignore $s1 --retry 0.5"
pkio_wait_until 20 "kiosk asks for a token" screen_has 'Insert your token'
pa queue add --request "$req" >/dev/null
: >"$PKIO_ROOT/spy.log"
s2=$(softhsm_add_token "$tokdir" person-2)
pkio_wait_until 30 "kiosk asks for the new PIN" screen_has 'New PIN (4-255 characters):'
screen_has 'Your token still has its transport PIN: choose a new PIN' || fail "no notice: $(screen)"
screen_has 'Certificate for: Johanna Maria de Vries' || fail "whose certificate is not shown: $(screen)"
screen_has 'Transport PIN' && fail "the transport PIN was asked although the PIN file gives it: $(screen)"
type_line "ab"
pkio_wait_until 20 "too short said" screen_has 'The new PIN is too short'
type_line "$new2"
pkio_wait_until 20 "new PIN asked again" screen_has 'New PIN again:'
type_line "$new2"
pkio_wait_until 120 "kiosk says done" screen_has 'Done - you may remove the token'
[[ $(state_of "$s2") == "done" ]] || fail "job of person-2: $(state_of "$s2")"
[[ $(calls C_SetPIN) -eq 1 ]] || fail "expected one C_SetPIN, saw $(calls C_SetPIN)"
screen_has "$new2" && fail "a PIN was echoed on the kiosk: $(screen)"
TOKEN_PIN=$new2 token_cert_matches_key person-2
opens person-2 "$new2" || fail "the new PIN does not open person-2"
rejects person-2 "$transport" || fail "the transport PIN still opens person-2"
[[ $(queued) -eq 0 ]] || fail "a request is left in the queue"
pass "kiosk (en) with --pin-source: the transport PIN comes from the station's file, the new PIN is typed twice (a too-short one asked again); enrolled; the new PIN works"
