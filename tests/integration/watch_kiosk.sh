#!/usr/bin/env bash
# A kiosk that nobody can freeze (tmux, SoftHSM2, the sandbox). The kiosk's prompt is part of the
# daemon's poll loop:
#   - a label with ESC and C1 characters (as a code point) is shown sanitized on the screen and
#     in the daemon's lines;
#   - a PIN prompt nobody answers times out (--pin-timeout) and the request goes back in line;
#   - while one token's PIN prompt is open and untouched, another token is pulled, inserted
#     again and enrolled (its job resumed with the PIN file of its queue entry, no prompt);
#   - SIGTERM while the prompt is open stops the daemon within seconds, the terminal restored
#     (canonical mode, echo) and the request back in the queue;
#   - a token whose certificate (from our job records) expires within 60 days is announced on
#     insertion: one journal line, and on the screen "Certificaat verloopt op DATUM - vraag een
#     medewerker om verlenging";
#   - the kiosk speaks Dutch by default and English with the global --lang en: the same screens
#     (whose certificate to confirm, an order waiting, a certificate about to expire) in both,
#     and the jobs it starts get the same language (--lang in their argv); its own journal lines
#     stay English.
# SoftHSM2 has no insertion events: the daemon rescans (--detect rescan).
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool tmux pgrep

tokdir=$(pkio_tmpdir)
softhsm_setup "$tokdir" officer # the officer's own token, ignored
officer_serial=$TOKEN_SERIAL
stage=$(pkio_tmpdir)
softhsm_stage_setup "$stage"
enroll_setup "$SOFTHSM_MODULE"
req=$PKIO_SRC/tests/data/requests/valid-prof.json
pin=$TOKEN_PIN_FILE
W=$(pkio_tmpdir)

queued() { pa queue list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["queue"]))'; }
job_state_of() { # serial -> state of its newest job ("" if none)
    pa status --json | python3 -c 'import json,sys; s=[j["state"] for j in json.load(sys.stdin)["jobs"] if j["token_serial"]==sys.argv[1]]; print(s[-1] if s else "")' "$1"
}
state_is() { [[ $(job_state_of "$1") == "$2" ]]; }
wait_secs() { # like pkio_wait_until, by the clock
    local end=$((SECONDS + $1)) desc=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || fail "gave up after waiting for $desc: $(screen)"
        sleep 0.2
    done
}

# A private tmux server; the daemon runs under a shell that records the terminal after it ends.
tmux() { command tmux -S "$PKIO_ROOT/tmux.sock" "$@"; }
pkio_on_exit "tmux -S '$PKIO_ROOT/tmux.sock' kill-server 2>/dev/null || true"
screen() { tmux capture-pane -p -t "$sess" 2>/dev/null; }
screen_has() { screen | grep -qF -- "$1"; }
kiosk() { # SESSION ARGS...: start the kiosk; after it exits, its terminal's settings go to a file
    sess=$1
    shift
    tmux new-session -d -s "$sess" -x 110 -y 45 \
        "stty -a >$W/$sess.stty-before; $PKIO_AGENT --config $CFG ${KIOSK_GLOBAL:-} watch --kiosk --detect rescan --rescan 0.3 --ignore $officer_serial --retry 0.5 $*; echo \$? >$W/$sess.rc; stty -a >$W/$sess.stty; sleep 600"
    kiosk_pid=''
    wait_secs 10 "the kiosk's process" kiosk_pid_of
}
kiosk_pid_of() {
    local shell
    shell=$(tmux display -p -t "$sess" '#{pane_pid}') || return 1
    kiosk_pid=$(pgrep -P "$shell" -x pkio-agent | head -1)
    [[ -n $kiosk_pid ]]
}
daemon_lines() { grep '^pkio-agent: watch:' "$STATE/watch.log" || true; }
job_argv() { pgrep -a -f "serial=[${1:0:1}]${1:1}"; } # the job processes of a serial (not pgrep)

# --- session 1: no PIN file, a PIN prompt for blank tokens ---------------------------------------
kiosk one --pin-timeout 4 --idle-timeout 600
wait_secs 20 "kiosk asks for a token" screen_has 'Plaats uw token'

# A label with ESC [31m and U+009B (CSI as a C1 code point): in use (holds a key pair), so the
# daemon also writes a line about it.
evil=$'\e[31mEvil\xc2\x9bX'
evil_serial=$(softhsm_stage_token "$stage" "$evil")
softhsm_stage_run "$stage" pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$evil" --login \
    --pin "$TOKEN_PIN" --keypairgen --key-type EC:prime256v1 --label k >/dev/null 2>&1 ||
    fail "key pair on the evil token"
softhsm_insert_staged "$stage" "$tokdir" "$evil"
wait_secs 20 "the evil token on the screen" screen_has "(token ?[31mEvil?X, serienummer $evil_serial)"
wait_secs 10 "the evil token in the daemon's lines" grep -qF "token '?[31mEvil?X' (serial $evil_serial) is in use" "$STATE/watch.log"
daemon_lines | grep -q $'[\x1b\x80-\x9f]' && fail "a control character in the daemon's lines: $(daemon_lines | cat -v)"
screen_has 'Token is al in gebruik' || fail "the evil token's status: $(screen)"
pass "a label with ESC and C1 (U+009B) is shown as '?[31mEvil?X', on the screen and in the daemon's lines"

# --- a PIN prompt nobody answers times out --------------------------------------------------------
pa queue add --request "$req" >/dev/null
slow=$(softhsm_add_token "$tokdir" slow)
wait_secs 20 "PIN prompt for slow" screen_has 'PIN (slow):'
screen_has "Token: slow, serienummer $slow" || fail "the prompt does not name the serial: $(screen)"
t0=$SECONDS
wait_secs 15 "the prompt to time out" screen_has 'Geen PIN ingevoerd binnen de tijd'
((SECONDS - t0 >= 2)) || fail "the prompt closed too soon"
screen_has 'PIN (slow):' && fail "the prompt is still open: $(screen)"
[[ $(queued) -eq 1 && -z $(job_state_of "$slow") ]] || fail "after the timeout: queued $(queued), job '$(job_state_of "$slow")'"
softhsm_delete_token slow
pass "an unanswered PIN prompt times out (--pin-timeout 4): the request is back in the queue, the token untouched"
# The next part keeps a prompt open while another token is enrolled, which may take long on a
# loaded machine: the same kiosk again, with a prompt that does not time out meanwhile.
kill -TERM "$kiosk_pid"
wait_secs 10 "the first kiosk to exit" test -s "$W/one.rc"
tmux kill-session -t one
kiosk oneb --pin-timeout 600 --idle-timeout 600
wait_secs 20 "the new kiosk shows the evil token" screen_has "(token ?[31mEvil?X, serienummer $evil_serial)"

# --- another token is handled while the PIN prompt is open ----------------------------------------
# 'second' has a request bound to it with the station's PIN file: confirmed with a key, enrolled
# until the order waits, pulled, and its job parks once the certificate is issued. Then 'first'
# (blank) gets the unbound request: a PIN prompt, left open. Meanwhile 'second' comes back and
# its job is finished.
second=$(softhsm_stage_token "$stage" second)
pa queue add --token "pkcs11:serial=$second?pin-source=$pin" --request "$req" >/dev/null
cc_sandbox_post /__sandbox/behavior '{"behavior":"never"}'
softhsm_insert_staged "$stage" "$tokdir" second
wait_secs 20 "confirmation for second" screen_has 'Klopt dit?'
tmux send-keys -t "$sess" j
wait_secs 60 "second's order placed" state_is "$second" ordered
wait_secs 10 "the order on the screen" screen_has 'Certificaat aangevraagd - '
job_argv "$second" | grep -qF -- "--lang nl " || fail "second's job does not speak Dutch: $(job_argv "$second")"
tok2=$(softhsm_token_path "$tokdir" second)
mv "$tok2" "$W/pulled-second"
cc_sandbox_post /__sandbox/behavior '{"behavior":"issue","issue_after_polls":0}'
wait_secs 60 "second's job parked at issued" state_is "$second" issued
no_job_process() { ! pgrep -f "serial=[${second:0:1}]${second:1}" >/dev/null; } # not itself
wait_secs 20 "second's job process to end" no_job_process
screen_has 'Token verwijderd - plaats het opnieuw om verder te gaan' || fail "second's line: $(screen)"
first=$(softhsm_add_token "$tokdir" first)
wait_secs 20 "PIN prompt for first" screen_has 'PIN (first):'
mv "$W/pulled-second" "$tok2"
wait_secs 90 "second enrolled while the prompt is open" state_is "$second" "done"
wait_secs 10 "second done on the screen" screen_has 'Klaar - u kunt het token verwijderen'
screen_has 'PIN (first):' || fail "the prompt for first closed: $(screen)"
[[ -z $(job_state_of "$first") ]] || fail "first got a job without its PIN"
token_cert_matches_key second
grep -q "token 'second' (serial $second): resuming job" "$STATE/watch.log" || fail "second was not resumed"
pass "while first's PIN prompt is open and untouched, second is inserted again and enrolled (resumed with its entry's PIN file)"

# --- SIGTERM while the prompt is open -------------------------------------------------------------
start=$(date +%s%N)
kill -TERM "$kiosk_pid"
wait_secs 5 "the kiosk to exit" test -s "$W/oneb.rc"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
((elapsed_ms < 3000)) || fail "the kiosk took ${elapsed_ms} ms to stop"
[[ $(cat "$W/oneb.rc") == 0 ]] || fail "the kiosk exited $(cat "$W/oneb.rc") on SIGTERM"
flags() { tr ';' ' ' <"$1" | tr ' ' '\n' | grep -xE -- '-?(icanon|echo|isig|ixon|iexten)' | sort; }
if [[ $(flags "$W/oneb.stty") != "$(flags "$W/oneb.stty-before")" ]] ||
    ! grep -qE '(^| )icanon( |$)' "$W/oneb.stty" || ! grep -qE '(^| )echo( |$)' "$W/oneb.stty"; then
    fail "terminal not restored: $(flags "$W/oneb.stty" | tr '\n' ' ') (before: $(flags "$W/oneb.stty-before" | tr '\n' ' '))"
fi
[[ $(queued) -eq 1 ]] || fail "first's request is not back in the queue: $(queued)"
pass "SIGTERM during the PIN prompt: the kiosk exits 0 in ${elapsed_ms} ms, the terminal restored, the request back in the queue"
tmux kill-session -t oneb
softhsm_delete_token first

# --- session 2: a certificate that expires within 60 days ----------------------------------------
python3 - "$req" "$W/short.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["order_validity"] = {"days": 30}
json.dump(r, open(sys.argv[2], "w"), indent=1)
EOF
short=$(softhsm_stage_token "$stage" short)
# bound to it: first's unbound request from above is still in line
pa queue add --serial "$short" --request "$W/short.json" >/dev/null
kiosk two --pin-source "$pin" --idle-timeout 600 --confirm-timeout 30
wait_secs 20 "kiosk two ready" screen_has 'PKIoverheid certificaat op uw token'
softhsm_insert_staged "$stage" "$tokdir" short
wait_secs 20 "confirmation for short" screen_has 'Klopt dit?'
for want in 'Klopt dit? Druk op Enter of j om te bevestigen, n om te stoppen' \
    'Certificaat voor: Johanna Maria de Vries' "Token: short, serienummer $short"; do
    screen_has "$want" || fail "the Dutch confirmation lacks '$want': $(screen)"
done
tmux send-keys -t "$sess" Enter
wait_secs 90 "short enrolled" state_is "$short" "done"
screen_has 'Certificaat verloopt' && fail "announced before it was enrolled"
tokS=$(softhsm_token_path "$tokdir" short)
mv "$tokS" "$W/pulled-short"
sleep 1.5 # several rescans without it
mv "$W/pulled-short" "$tokS"
date_nl=$(date -u -d "+30 days" +%d-%m-%Y)
date_nl_alt=$(date -u -d "+29 days" +%d-%m-%Y)
wait_secs 20 "expiry notice" screen_has 'Certificaat verloopt op'
screen | grep -qE "Certificaat verloopt op ($date_nl|$date_nl_alt) - vraag een medewerker om verlenging" ||
    fail "expiry notice: $(screen)"
[[ $(grep -c "token 'short' (serial $short): the certificate of job .* expires on " "$STATE/watch.log") -eq 1 ]] ||
    fail "expected one journal line: $(grep "expires on" "$STATE/watch.log")"
pass "an inserted token whose certificate expires within 60 days: one journal line, and 'Certificaat verloopt op DATUM - vraag een medewerker om verlenging' on the kiosk"
kill -TERM "$kiosk_pid"
wait_secs 10 "kiosk two to exit" test -s "$W/two.rc"
[[ $(cat "$W/two.rc") == 0 ]] || fail "kiosk two exited $(cat "$W/two.rc")"
tmux kill-session -t two

# --- session 3: the same screens in English (pkio-agent --lang en watch --kiosk) -----------------
# short is still inserted: its line and its expiry notice come first. Then a token with a request
# bound to it: whose certificate to confirm, and the order it places.
KIOSK_GLOBAL="--lang en" kiosk three --pin-source "$pin" --idle-timeout 600 --confirm-timeout 30
date_iso=$(date -u -d "+30 days" +%Y-%m-%d)
date_iso_alt=$(date -u -d "+29 days" +%Y-%m-%d)
wait_secs 20 "kiosk three shows short" screen_has "(token short, serial $short)"
wait_secs 10 "the English expiry notice" screen_has 'Certificate expires on'
screen | grep -qE "Certificate expires on ($date_iso|$date_iso_alt) - ask an officer to renew it" ||
    fail "English expiry notice: $(screen)"
screen_has 'Done - you may remove the token' || fail "short's English status: $(screen)"
screen_has 'PKIoverheid certificate on your token' || fail "the English title: $(screen)"
english=$(softhsm_stage_token "$stage" english)
pa queue add --serial "$english" --request "$req" >/dev/null
cc_sandbox_post /__sandbox/behavior '{"behavior":"never"}'
softhsm_insert_staged "$stage" "$tokdir" english
wait_secs 20 "the English confirmation" screen_has 'Is this right?'
for want in 'Is this right? Press Enter or y to confirm, n to stop' \
    'Certificate for: Johanna Maria de Vries' "Token: english, serial $english" \
    'Check whose certificate this will be'; do
    screen_has "$want" || fail "the English confirmation lacks '$want': $(screen)"
done
tmux send-keys -t "$sess" y
wait_secs 60 "english's order placed" state_is "$english" ordered
wait_secs 10 "the English order on the screen" screen_has 'Certificate requested - '
job_argv "$english" | grep -qF -- "--lang en " || fail "english's job does not speak English: $(job_argv "$english")"
for nl in 'Klaar' 'Certificaat' 'serienummer' 'Klopt dit'; do
    screen_has "$nl" && fail "Dutch ('$nl') on the English kiosk: $(screen)"
done
grep -qF "token 'english' (serial $english): enrolling queued request" "$STATE/watch.log" ||
    fail "the journal line is not English: $(daemon_lines | tail -3)"
pass "English kiosk (global --lang en): the same screens as in Dutch - title, expiry notice '$(screen | grep -o 'Certificate expires on [0-9-]*')', done, whose certificate to confirm, the order waiting - and its job runs with --lang en"
kill -TERM "$kiosk_pid"
wait_secs 20 "kiosk three to exit" test -s "$W/three.rc"
[[ $(cat "$W/three.rc") == 0 ]] || fail "kiosk three exited $(cat "$W/three.rc")"
if grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$STATE/watch.log"; then
    fail "sanitizer report from the daemon or a job (above)"
fi
