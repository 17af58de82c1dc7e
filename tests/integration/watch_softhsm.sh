#!/usr/bin/env bash
# The hands-free station on SoftHSM2 against the sandbox: with `pkio-agent watch` running and
# requests queued, tokens initialised afterwards get their certificates with no command typed;
# two tokens at once, each with its own job and one order; a token pulled mid-job parks the job
# and the job completes when the same token returns; an ignored token (the officer's own) is
# left alone; SIGTERM stops the daemon cleanly; the kiosk screen (tmux) says what happens, in
# Dutch by default, and before anything is generated shows whose certificate it will be and on
# which token: typing the PIN confirms it, and with a PIN file a key must be pressed (no answer:
# nothing happens). A daemon whose API key comes only from PKIO_AGENT_API_KEY (no key file) hands
# it to its jobs by pipe (--api-key-fd): they enroll, and the key is in no process's environment
# or argv. SoftHSM2 has no insertion events, so the daemon runs with its explicit periodic-rescan
# fallback (--detect rescan); the PC/SC and udev paths have their own tests.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool tmux

tokdir=$(pkio_tmpdir)
softhsm_setup "$tokdir" officer         # the officer's own token, present from the start
officer_serial=$TOKEN_SERIAL
enroll_setup "$SOFTHSM_MODULE"
req=$PKIO_SRC/tests/data/requests/valid-prof.json
pin=$TOKEN_PIN_FILE

jobs_done() { pa status --json | python3 -c 'import json,sys; print(sum(j["state"]=="done" for j in json.load(sys.stdin)["jobs"]))'; }
# Conditions for pkio_wait_until (evaluated on every try, unlike "$(...)" in its arguments).
done_at_least() { [[ $(jobs_done) -ge $1 ]]; }
state_is() { [[ $(job_state_of "$1") == "$2" ]]; }
job_state_of() { # serial -> state of its job ("" if none)
    pa status --json | python3 -c 'import json,sys; s=[j["state"] for j in json.load(sys.stdin)["jobs"] if j["token_serial"]==sys.argv[1]]; print(s[-1] if s else "")' "$1"
}

# --- watch's options (the shared option loop): --help, and usage errors before anything starts ---
out=$("$PKIO_AGENT" --config "$CFG" watch --help) || fail "watch --help exits $?"
[[ $out == "usage: pkio-agent [global options] watch [--kiosk] "* ]] || fail "watch --help: $out"
for bad in "--json" "--bogus" "--rescan 0" "--retry x" "--lang xx" "extra"; do
    # shellcheck disable=SC2086 # each case is several words
    "$PKIO_AGENT" --config "$CFG" watch $bad >/dev/null 2>&1 && fail "watch $bad was accepted"
    rc=$?
    [[ $rc -eq 2 ]] || fail "watch $bad exits $rc, not 2 (usage error)"
done

pa queue add --request "$req" >/dev/null
pa queue add --request "$req" >/dev/null
pa queue add --request "$req" >/dev/null
[[ $(pa queue list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["queue"]))') -eq 3 ]] || fail "queue"

pkio_spawn watch "$PKIO_AGENT" --config "$CFG" watch --detect rescan --rescan 0.3 \
    --pin-source "$pin" --ignore "$officer_serial" --retry 0.5
watch_pid=$PKIO_SPAWN_PID
pkio_wait_until 20 "watch ready" grep -q "ready" "$PKIO_ROOT/watch.log"

# --- two tokens at once, no command typed ---------------------------------------------------------
s1=$(softhsm_add_token "$tokdir" person-1)
s2=$(softhsm_add_token "$tokdir" person-2)
pkio_wait_until 90 "both tokens enrolled" done_at_least 2
for s in "$s1" "$s2"; do
    [[ $(job_state_of "$s") == done ]] || fail "token $s not enrolled"
done
token_cert_matches_key person-1
token_cert_matches_key person-2
[[ -z $(job_state_of "$officer_serial") ]] || fail "the ignored officer token was enrolled"
[[ $(cc_state "len(s['orders'])") -eq 2 && $(cc_state "max(s['orders_per_key'].values())") -eq 1 ]] ||
    fail "expected two orders, one per key: $(cc_state "s['orders_per_key']")"
pass "watch: two tokens initialised while it runs are enrolled from the queue; officer token ignored"

# --- a token pulled mid-job parks the job; it completes when the same token returns ----------------
cc_sandbox_post /__sandbox/behavior '{"behavior":"never"}' >/dev/null
s3=$(softhsm_add_token "$tokdir" person-3)
pkio_wait_until 60 "job ordered" state_is "$s3" ordered
tokpath=$(dirname "$(grep -l "person-3" "$tokdir"/tokens/*/token.object | head -1)")
mv "$tokpath" "$PKIO_ROOT/pulled"
cc_sandbox_post /__sandbox/behavior '{"behavior":"issue","issue_after_polls":0}' >/dev/null
pkio_wait_until 60 "job parked at issued (token gone)" state_is "$s3" issued
sleep 1
[[ $(job_state_of "$s3") == issued ]] || fail "job moved without its token: $(job_state_of "$s3")"
mv "$PKIO_ROOT/pulled" "$tokpath"
pkio_wait_until 60 "job done after the token returned" state_is "$s3" done
token_cert_matches_key person-3
pass "token pulled: the job parks; the same token back: the job completes"

# --- SIGTERM: the daemon stops cleanly -------------------------------------------------------------
kill -TERM "$watch_pid"
pkio_wait_until 30 "watch stopped" sh -c "! kill -0 $watch_pid 2>/dev/null"
wait "$watch_pid" 2>/dev/null && rc=0 || rc=$?
[[ $rc -eq 0 ]] || fail "watch exited $rc on SIGTERM"
expect_exit 0 -- pa audit verify
pass "SIGTERM: watch exits 0; audit intact"

# --- the API key only in the environment: the jobs get it by pipe, never by environment or argv ---
key=$(cat "$CC_KEY_FILE")
CFG_ENV=$PKIO_ROOT/config-env.json
python3 - "$CFG" "$CFG_ENV" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
del c["api"]["key_file"]
json.dump(c, open(sys.argv[2], "w"))
EOF
descendants() { # PID -> its descendants, one per line
    local c
    for c in $(pgrep -P "$1"); do
        echo "$c"
        descendants "$c"
    done
}
# The processes (the daemon and its jobs) whose environment or argv (as /proc shows them) hold
# the key.
key_shown() {
    local p
    for p in "$watch_pid" $(descendants "$watch_pid"); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qF -- "$key" ||
            tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$key"; then
            echo "$p: $(tr '\0' ' ' <"/proc/$p/cmdline")"
        fi
    done
}
pa queue add --request "$req" >/dev/null
cc_sandbox_post /__sandbox/behavior '{"behavior":"never"}' >/dev/null
pkio_spawn watch-envkey env PKIO_AGENT_API_KEY="$key" "$PKIO_AGENT" --config "$CFG_ENV" watch \
    --detect rescan --rescan 0.3 --pin-source "$pin" --ignore "$officer_serial" --retry 0.5
watch_pid=$PKIO_SPAWN_PID
pkio_wait_until 20 "watch (key in the environment) ready" grep -q "ready" "$PKIO_ROOT/watch-envkey.log"
s7=$(softhsm_add_token "$tokdir" person-7)
pkio_wait_until 60 "the job's order placed with the key" state_is "$s7" ordered
jobs=$(descendants "$watch_pid")
[[ -n $jobs ]] || fail "no job process of the daemon to look at"
for p in $jobs; do
    argv=$(tr '\0' ' ' <"/proc/$p/cmdline")
    [[ $argv == *" --api-key-fd 4 "* && $argv == *" --lang en "* ]] ||
        fail "job $p was not given the key by pipe, or the language: $argv"
done
shown=$(key_shown)
[[ -z $shown ]] || fail "the API key in the environment or argv of: $shown"
# shellcheck disable=SC2086 # one PID per word
ps e -ww -p "$watch_pid" $jobs >"$PKIO_ROOT/ps-e.txt" || fail "ps e"
grep -qF -- "$key" "$PKIO_ROOT/ps-e.txt" && fail "the API key in a 'ps e' dump: $(cat "$PKIO_ROOT/ps-e.txt")"
cc_sandbox_post /__sandbox/behavior '{"behavior":"issue","issue_after_polls":0}' >/dev/null
pkio_wait_until 60 "the job done with the key" state_is "$s7" done
token_cert_matches_key person-7
kill -TERM "$watch_pid"
pkio_wait_until 30 "watch (key in the environment) stopped" sh -c "! kill -0 $watch_pid 2>/dev/null"
grep -q "API key" "$PKIO_ROOT/watch-envkey.log" && fail "a job lacked the key: $(grep "API key" "$PKIO_ROOT/watch-envkey.log")"
pass "PKIO_AGENT_API_KEY alone (no key file): the job got the key by pipe (--api-key-fd 4, with --lang en) and enrolled; the key is in no environment or argv of the daemon and its $(wc -w <<<"$jobs") job process(es)"

# --- the kiosk screen ------------------------------------------------------------------------------
# A private tmux server: a shared one would hand our session its own (another test's) environment.
tmux() { command tmux -S "$PKIO_ROOT/tmux.sock" "$@"; }
screen_has() { tmux capture-pane -p -t "$sess" | grep -q "$1"; }
for l in person-1 person-2 person-3 person-7; do softhsm_delete_token "$l" >/dev/null; done # people leave
sess=pkio-kiosk-$$
tmux new-session -d -s "$sess" -x 100 -y 30 \
    "$PKIO_AGENT --config $CFG watch --kiosk --detect rescan --rescan 0.3 --pin-source $pin --ignore $officer_serial --idle-timeout 600 --confirm-timeout 4"
pkio_on_exit "tmux -S '$PKIO_ROOT/tmux.sock' kill-server 2>/dev/null || true"
screen() { tmux capture-pane -p -t "$sess"; }
pkio_wait_until 20 "kiosk asks for a token" screen_has 'Plaats uw token'
tmux send-keys -t "$sess" C-c C-z q Enter
sleep 0.5
screen | grep -q "Plaats uw token" || fail "the kiosk left its screen after Ctrl-C/Ctrl-Z: $(screen)"
s4=$(softhsm_add_token "$tokdir" person-4)
pkio_wait_until 20 "kiosk says no request is queued" screen_has 'Geen aanvraag klaar'
pa queue add --request "$req" >/dev/null
# A PIN file serves: the enrollee must confirm with a key. The keys typed above (q, Enter) came
# before the question and must not count. No answer within --confirm-timeout: nothing happens.
pkio_wait_until 30 "kiosk asks to confirm" screen_has 'Klopt dit?'
for want in 'Certificaat voor: Johanna Maria de Vries' "Token: person-4, serienummer $s4"; do
    screen_has "$want" || fail "the confirmation screen lacks '$want': $(screen)"
done
pkio_wait_until 20 "kiosk says it was not confirmed" screen_has 'Niet bevestigd'
[[ $(pa queue list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["queue"]))') -eq 1 &&
    -z $(job_state_of "$s4") ]] || fail "an unconfirmed enrollment started or its request was not returned"
[[ $(token_count person-4 privkey) -eq 0 ]] || fail "a key was generated without confirmation"
tok4=$(softhsm_token_path "$tokdir" person-4)
mv "$tok4" "$PKIO_ROOT/pulled-4" # re-inserted: asked again
sleep 1
mv "$PKIO_ROOT/pulled-4" "$tok4"
pkio_wait_until 30 "kiosk asks to confirm again" screen_has 'Klopt dit?'
tmux send-keys -t "$sess" j Enter
pkio_wait_until 90 "kiosk says done" screen_has 'Klaar - u kunt het token verwijderen'
pkio_wait_until 10 "kiosk names the token" screen_has "person-4"
pass "kiosk: Dutch status per token ('Plaats uw token' ... 'Klaar - u kunt het token verwijderen'), no escape by keyboard; name, token and serial confirmed with a key first, nothing without"

# --- the kiosk asks for the PIN itself (no PIN file, no PIN pad) and never retries a wrong one ----
tmux kill-session -t "$sess"
softhsm_delete_token person-4 >/dev/null
sess=pkio-kiosk2-$$
tmux new-session -d -s "$sess" -x 100 -y 30 \
    "$PKIO_AGENT --config $CFG watch --kiosk --detect rescan --rescan 0.3 --ignore $officer_serial --retry 0.5"
pkio_on_exit "tmux -S '$PKIO_ROOT/tmux.sock' kill-server 2>/dev/null || true"
pkio_wait_until 20 "kiosk asks for a token" screen_has 'Plaats uw token'
pa queue add --request "$req" >/dev/null
s5=$(softhsm_add_token "$tokdir" person-5)
pkio_wait_until 30 "kiosk asks for the PIN" screen_has 'PIN (person-5):'
# Typing the PIN is the confirmation: whose certificate, and on which token, stand right above it.
screen | awk -v s="serienummer $s5" '
    /Certificaat voor: Johanna Maria de Vries/ { name = NR }
    index($0, s) { serial = NR }
    /PIN \(person-5\):/ { pin = NR }
    END { exit !(name && serial && pin && name < pin && serial < pin && pin - name <= 3) }' ||
    fail "name and serial are not shown right above the PIN prompt: $(screen)"
tmux send-keys -t "$sess" "$TOKEN_PIN" Enter
pkio_wait_until 90 "kiosk says done" screen_has 'Klaar - u kunt het token verwijderen'
screen | grep -q "$TOKEN_PIN" && fail "the PIN was echoed on the kiosk: $(screen)"
token_cert_matches_key person-5
softhsm_delete_token person-5 >/dev/null
pa queue add --request "$req" >/dev/null
softhsm_add_token "$tokdir" person-6 >/dev/null
pkio_wait_until 30 "kiosk asks for the PIN again" screen_has 'Voer de PIN van uw token in'
tmux send-keys -t "$sess" "9999" Enter
pkio_wait_until 30 "kiosk says the PIN was wrong" screen_has 'PIN onjuist of geblokkeerd'
sleep 2 # longer than --retry: a rejected PIN must not be asked for or tried again by itself
screen | grep -q "Voer de PIN" && fail "the kiosk asked for the PIN again after a rejection"
[[ $(pa queue list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["queue"]))') -eq 1 ]] ||
    fail "the request of the enrollment that never started was not returned to the queue"
pass "kiosk PIN entry: name and serial above the prompt, typed without echo, handed over by pipe; a wrong PIN is not retried and the request goes back to the queue"
