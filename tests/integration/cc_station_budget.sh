#!/bin/bash
# One CertCentral rate budget per station (agent/ca/ratebudget.c, STATE_DIR/ratebudget): eight
# processes at once against a sandbox whose limit is exactly the budget cause no 429, and each
# process uses one TLS connection for all its GETs.
#   1. 8 cc_driver processes, budget 10 / 2 s each, sharing a state directory, against a sandbox
#      limited to 10 / 2 s: no violation; the sandbox counts one connection per process.
#   2. 8 `pkio-agent order-status` loops with api.rate_share 0.1 (10 / 5 s of DigiCert's 100 / 5 s)
#      against a sandbox limited to 10 / 5 s: no violation; the budget file is 0600 and its entries
#      are all completed; a bad api.rate_share is a configuration error.
#   3. Control: the same 8 cc_driver processes each with only its own budget do exceed the limit,
#      so the first two results mean something.
source "$PKIO_SRC/tests/integration/cc_lib.sh"

cc_start_sandbox --burst-limit 10 --burst-window 2
work=$(pkio_tmpdir)
cc_make_order_body "$work/order.json"

# run8 PREFIX CMD...: 8 processes of CMD at once; output in PREFIX.N, exit codes in PREFIX.rc
run8()
{
    local pre=$1 i pids=()
    shift
    for i in 1 2 3 4 5 6 7 8; do
        "$@" >"$pre.$i" 2>&1 &
        pids+=($!)
        pkio_on_exit "pkio_stop_pid ${pids[-1]} run8"
    done
    : >"$pre.rc"
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" && echo 0 >>"$pre.rc" || echo $? >>"$pre.rc"
    done
}
drv() { "$CC_DRIVER" --url "$CC_URL" --ca "$SB/tls-ca.pem" --key-file "$CC_KEY_FILE" "$@"; }
violations() { cc_state 'len(s["rate_limit"]["violations"])'; }
limits() { cc_sandbox_post /__sandbox/limits "$1"; }

# --- 1. eight processes, one station budget ---------------------------------------------------
st1=$work/station1
mkdir -p "$st1"
cc_drv 0 --budget 10 2 1000 180 --station "$st1" 1 place "$CC_PRODUCT" "$work/order.json"
order=$(out_value id)
t0=$(date +%s.%N)
run8 "$work/p1" drv --attempts 1 --budget 10 2 1000 180 --station "$st1" 1 info-repeat "$order" 8
t1=$(date +%s.%N)
[[ $(sort -u "$work/p1.rc") == 0 ]] || fail "a process failed: $(cat "$work"/p1.*)"
for i in 1 2 3 4 5 6 7 8; do
    grep -qx "done=8" "$work/p1.$i" && grep -qx "connections=1" "$work/p1.$i" ||
        fail "process $i: $(cat "$work/p1.$i")"
done
[[ $(violations) == 0 ]] || fail "rate-limit violations: $(cc_state 's["rate_limit"]["violations"]')"
python3 -c 'import sys; sys.exit(not float(sys.argv[2]) - float(sys.argv[1]) >= 9)' "$t0" "$t1" ||
    fail "65 requests at 10 / 2 s took less than 9 s: the budget did not hold them back"
# The sandbox's own count: the POST's connection and one per process, each for its 8 GETs.
[[ $(cc_state 's["connections"]["total"]') == 9 ]] ||
    fail "expected 9 TLS connections, sandbox counted $(cc_state 's["connections"]')"
python3 - "$SB/requests.log" "$order" <<'EOF' || fail "not one connection per process"
import collections, json, sys
per_conn = collections.Counter(e["conn"] for e in map(json.loads, open(sys.argv[1]))
                               if not e.get("control") and e["path"].endswith("/" + sys.argv[2]))
sys.exit(not (len(per_conn) == 8 and set(per_conn.values()) == {8}))
EOF
pass "8 processes sharing the station budget: 65 requests, no 429, one TLS connection each"

# --- 2. pkio-agent with api.rate_share --------------------------------------------------------
limits '{"burst_limit": 10, "burst_window": 5}'
sleep 5.1 # part 1's requests leave the sandbox's (now 5 s) window
v0=$(violations)
st2=$work/station2
mkdir -p "$st2"
cfg=$work/agent.json
cat >"$cfg" <<JSON
{"api": {"url": "$CC_URL", "key_file": "$CC_KEY_FILE", "ca_bundle": "$SB/tls-ca.pem",
         "timeout_s": 10, "connect_timeout_s": 5, "rate_share": 0.1},
 "state_dir": "$st2"}
JSON
status_loop() { # 3 order-status runs, one process each: 0 (issued) or 13 (pending) expected
    local i rc
    for i in 1 2 3; do
        "$PKIO_AGENT" --config "$cfg" order-status "$order" && rc=0 || rc=$?
        [[ $rc == 0 || $rc == 13 ]] || return "$rc"
    done
}
run8 "$work/p2" status_loop
[[ $(sort -u "$work/p2.rc") == 0 ]] || fail "an order-status loop failed: $(cat "$work"/p2.*)"
[[ $(violations) == "$v0" ]] || fail "rate-limit violations: $(cc_state 's["rate_limit"]["violations"]')"
[[ $(stat -c %a "$st2/ratebudget") == 600 ]] || fail "ratebudget file mode $(stat -c %a "$st2/ratebudget")"
python3 - "$st2/ratebudget" <<'EOF' || fail "ratebudget file does not hold 24 completed requests"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"PKIORB01" and len(data) == 16 + 1024 * 16, len(data)
states = [struct.unpack_from("=dII", data, 16 + 16 * i)[2] for i in range(1024)]
sys.exit(not (states.count(2) == 24 and states.count(1) == 0))
EOF
for bad in 0 1.5 '"0.5"'; do
    sed "s/\"rate_share\": 0.1/\"rate_share\": $bad/" "$cfg" >"$work/bad.json"
    expect_exit 3 -- "$PKIO_AGENT" --config "$work/bad.json" order-status "$order"
    grep -q "api.rate_share" "$ERR" || fail "no api.rate_share in: $(cat "$ERR")"
done
pass "8 pkio-agent loops with api.rate_share 0.1 against 10 / 5 s: no 429; budget file 0600, 24 entries"

# --- 3. control: per-process budgets only -----------------------------------------------------
limits '{"burst_limit": 10, "burst_window": 2}'
sleep 5.1 # part 2's 5 s window empties
v0=$(violations)
run8 "$work/p3" drv --attempts 1 --budget 10 2 1000 180 info-repeat "$order" 8
[[ $(violations) -gt $v0 ]] || fail "control: 8 separate budgets did not exceed 10 / 2 s"
grep -q "error=request_limit_exceeded" "$work"/p3.* || fail "control: no process met a 429"
pass "control: 8 processes with only their own budgets exceed the key's limit (429)"
