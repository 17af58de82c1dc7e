#!/usr/bin/env bash
# SIGTERM during a rate-budget wait (agent/base/stop.c, certcentral.c budget_wait): a stop ends the
# wait at once and nothing is sent afterwards.
#   A station budget file (STATE_DIR/ratebudget) is filled with the last three minutes' worth
#   of requests for api.rate_share 0.01 (10 / 3 min of DigiCert's 1000 / 3 min), so the first
#   request of `pkio-agent -vv enroll` on a SoftHSM2 token (its CertCentral check, before
#   anything is generated) has to wait about 180 s. Once its debug log says "rate budget:
#   waiting" (and it is still running a second later: it really waits), SIGTERM: it must exit
#   within 5 s (normally well under 1 s), say that it stopped before the request was sent, and
#   the sandbox must have received no API request at all; no key, no job. With an empty budget
#   the same enroll then places exactly one order.
# `enroll` is the command whose stop handler (stop_handle_signals) is installed; order and
# order-status keep SIGTERM's default action and simply die.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd python3 pkcs11-tool

softhsm_setup "$(pkio_tmpdir)"
enroll_setup "$SOFTHSM_MODULE"
mkdir -p "$STATE"
python3 - "$CFG" <<'EOF' || fail "cannot set api.rate_share"
import json, sys
c = json.load(open(sys.argv[1])); c["api"]["rate_share"] = 0.01
json.dump(c, open(sys.argv[1], "w"))
EOF

# The budget file (agent/ca/ratebudget.c): header "PKIORB01", slots, entry size; then RB_SLOTS
# entries {double t (CLOCK_REALTIME), uint32 pid, uint32 state (2 = completed)}. Ten requests
# completed just now fill the long window (10 / 180 s at this share) for three minutes.
fill_budget()
{
    python3 - "$STATE/ratebudget" <<'EOF'
import os, struct, sys, time
slots, now = 1024, time.time()
img = bytearray(b"PKIORB01" + struct.pack("=II", slots, 16) + bytes(16 * slots))
for i in range(10):
    struct.pack_into("=dII", img, 16 + 16 * i, now - 0.01 * i, 1, 2)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, img)
os.close(fd)
EOF
}
# API requests the sandbox received (its control requests not counted).
api_requests()
{
    [[ -e $SB/requests.log ]] || {
        echo 0
        return 0
    }
    python3 - "$SB/requests.log" <<'EOF'
import json, sys
print(sum(1 for line in open(sys.argv[1]) if not json.loads(line).get("control")))
EOF
}

fill_budget || fail "cannot write $STATE/ratebudget"
[[ $(api_requests) == 0 ]] || fail "the sandbox already has API requests"
req=$PKIO_SRC/tests/data/requests/valid-prof.json
log=$PKIO_ROOT/enroll.err
"$PKIO_AGENT" --config "$CFG" -vv enroll --token "$TOKEN_URI?pin-source=$TOKEN_PIN_FILE" \
    --request "$req" --key-type rsa:2048 >"$PKIO_ROOT/enroll.out" 2>"$log" &
pid=$!
pkio_on_exit "pkio_stop_pid $pid enroll"
waiting() { grep -q 'rate budget: waiting' "$log"; }
pkio_wait_until 60 "enroll's debug line 'rate budget: waiting'" waiting
wait_s=$(sed -n 's/.*rate budget: waiting \([0-9.]*\) s.*/\1/p' "$log" | head -n 1)
python3 -c 'import sys; sys.exit(not float(sys.argv[1]) > 120)' "${wait_s:-0}" ||
    fail "enroll waits only '${wait_s}' s: the filled budget file did not hold it back"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "enroll is not waiting any more: $(tail -n 5 "$log")"
[[ $(api_requests) == 0 ]] || fail "enroll sent a request before the budget allowed it"

t0=${EPOCHREALTIME/./}
kill -TERM "$pid"
for ((i = 0; i < 250; i++)); do # 5 s
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
done
kill -0 "$pid" 2>/dev/null &&
    fail "enroll still running 5 s after SIGTERM (stuck in the rate-budget wait?): $(tail -n 5 "$log")"
rc=0
wait "$pid" || rc=$?
stop_ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
[[ $rc -ne 0 && $rc -lt 128 ]] ||
    fail "enroll exited $rc after SIGTERM: it must stop by itself (not die of the signal), with an error"
grep -qE "stopped \(SIGTERM or SIGINT\) before (GET|POST) [^ ]+ was sent" "$log" ||
    fail "enroll does not say it stopped before sending: $(tail -n 5 "$log")"
[[ $(api_requests) == 0 ]] ||
    fail "the sandbox received $(api_requests) API request(s) after the stop: $(cat "$SB/requests.log")"
[[ $(cc_state "len(s['orders'])") == 0 ]] || fail "an order was placed"
python3 - "$STATE/ratebudget" "$pid" <<'EOF' || fail "the budget file holds an entry of the stopped process"
import struct, sys
data, pid = open(sys.argv[1], "rb").read(), int(sys.argv[2])
sys.exit(any(struct.unpack_from("=dII", data, 16 + 16 * i)[1] == pid for i in range(1024)))
EOF
[[ $(token_count "$TOKEN_LABEL" privkey) == 0 ]] || fail "a key was generated before the stop"
[[ -z $(find "$STATE/jobs" -type f 2>/dev/null) ]] || fail "a job record was written: $(ls "$STATE/jobs")"
pass "SIGTERM during a ${wait_s} s rate-budget wait: enroll exits $rc in ${stop_ms} ms, nothing sent" \
    "(no API request at the sandbox, no order, no budget entry, no key, no job)"

# Nothing was lost: with the budget free again the same enroll places exactly one order.
: >"$STATE/ratebudget"
expect_exit 0 -- "$PKIO_AGENT" --config "$CFG" enroll --token "$TOKEN_URI?pin-source=$TOKEN_PIN_FILE" \
    --request "$req" --key-type rsa:2048 --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["state"] != "done")' "$OUT" ||
    fail "enroll after the stop did not finish: $(cat "$OUT" "$ERR")"
[[ $(cc_state "len(s['orders'])") == 1 ]] || fail "expected exactly one order, sandbox has $(cc_state "len(s['orders'])")"
[[ $(api_requests) -gt 0 ]] || fail "the sandbox's request log counts nothing: the 'no request' check above was blind"
pass "afterwards, with the budget free, the same enroll places exactly one order"
