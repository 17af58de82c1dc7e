#!/usr/bin/env bash
# Crash campaign (issue #4 item 8): 30 enrollments on 30 SoftHSM2 tokens against one sandbox,
# each killed with SIGKILL at the named crash points (PKIO_TEST_CRASH_AT: after-keygen,
# before-post, after-post, after-install, before-revoke) and at random moments, then continued
# by the officer's natural retries (`resume --all` and the same `enroll` again, alternating)
# until done. Afterwards: every token holds exactly one key pair and its certificate, the
# sandbox saw exactly one order per key (0 duplicates), every job is done with an order id
# (0 lost orders, none unfinished) and the audit chain verifies.
#
# Kill times are random (seed printed; PKIO_CRASH_SEED=N repeats the delays), the outcome
# asserted is always the same. Tokens with an odd number are killed at their crash point first,
# so every point is hit at least 3 times; even-numbered ones run their first enroll with the
# crash point armed and a random kill, whichever comes first, and meet the crash point on the
# officer's retry if the job has not passed it. Then 0-3 retries per token (more while the
# campaign lags behind 60 kills) are killed at random too. Every fifth token re-keys (enroll
# --replaces the previous token's certificate), the only way to reach before-revoke.
#
# Random kills land between two PKCS#11 calls, never inside one: the agent loads SoftHSM through
# OpenSC's pkcs11-spy, which writes "N: C_Name" to stderr before each call and "Returned:" after
# it; the harness stops the agent (SIGSTOP), and sends SIGKILL only when the last call has
# returned, else lets it run on for a moment and tries again. That is how a crash-safe token
# behaves (one operation is done or not done). SoftHSM2's file store is not crash-safe: it
# rewrites token.object and object files in place (ftruncate + write) and builds an object
# attribute by attribute, so a SIGKILL inside a call can leave a certificate without a value,
# half a key pair, or a token that no longer loads at all (all seen when this campaign killed
# anywhere). No client can prevent that; the agent's own steps between calls are what this
# test kills. Random kills so land mostly in the agent's own work (HTTP, job record, audit
# log), seldom between two quick token calls; the crash points cover those moments.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
require_cmd python3 openssl pkcs11-tool softhsm2-util

NTOK=30
MIN_KILLS=50
MAX_ATTEMPTS=14 # recovery runs per token before the job counts as stuck
POINTS=(after-keygen before-post after-post after-install before-revoke)
seed=${PKIO_CRASH_SEED:-$((($$ ^ $(date +%s)) & 32767))}
RANDOM=$seed
echo "random seed $seed (PKIO_CRASH_SEED=$seed repeats the kill times)"
t_start=$(date +%s%N)

cc_start_sandbox --issue-after-polls 1
dir=$(pkio_tmpdir)
softhsm_setup "$dir" crash-01
pin=$TOKEN_PIN_FILE
for ((k = 2; k <= NTOK; k++)); do
    softhsm_add_token "$dir" "$(printf 'crash-%02d' "$k")" >/dev/null
done
# The spy forwards to SoftHSM and traces every call to the agent's stderr (unbuffered, one
# write per line): each run's trace is in runs/N.log, next to the agent's own output.
SPY=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so
[[ -e $SPY ]] || fail "$SPY missing (apt-get install opensc-pkcs11)"
export PKCS11SPY=$SOFTHSM_MODULE
unset PKCS11SPY_OUTPUT
# api.timeout_s small: a job killed in ORDERING before its POST arrived waits timeout_s + 1 s
# on resume before it decides that nothing was ordered.
cat >"$dir/config.json" <<JSON
{"api": {"url": "$CC_URL", "key_file": "$CC_KEY_FILE", "ca_bundle": "$SB/tls-ca.pem",
         "timeout_s": 2, "connect_timeout_s": 1, "order_settle_s": 3},
 "token": {"module": "$SPY", "allow_software": true},
 "trust": {"anchors": "$SB/root.pem"},
 "poll": {"initial_s": 0.05, "max_s": 0.2, "timeout_s": 60},
 "state_dir": "$dir/state"}
JSON
req=$PKIO_SRC/tests/data/requests/valid-prof.json
runs=$PKIO_ROOT/runs
mkdir -p "$runs"
nrun=0
declare -A point_kills=() point_passed=() left_in=()
replaced_certs=()
random_kills=0 random_misses=0 crash_kills=0 resumes=0 reenrolls=0

agent() { "$PKIO_AGENT" --config "$dir/config.json" "$@"; }

# The state of the job bound to token $1: none, a state name, or "several:..." (a bug).
job_state()
{
    agent status --json >"$PKIO_ROOT/status.json" 2>"$PKIO_ROOT/status.err" ||
        fail "status --json failed: $(cat "$PKIO_ROOT/status.err")"
    python3 - "$PKIO_ROOT/status.json" "$1" <<'PY'
import json, sys
jobs = [j for j in json.load(open(sys.argv[1]))["jobs"] if j["token_label"] == sys.argv[2]]
print("none" if not jobs else jobs[0]["state"] if len(jobs) == 1
      else "several:" + ",".join(j["id"][:8] + "=" + j["state"] for j in jobs))
PY
}

# Field $2 of the job of token $1.
job_field()
{
    agent status --json >"$PKIO_ROOT/status.json" || fail "status --json failed"
    python3 -c 'import json, sys
print([j for j in json.load(open(sys.argv[1]))["jobs"] if j["token_label"] == sys.argv[2]][0][sys.argv[3]])' \
        "$PKIO_ROOT/status.json" "$1" "$2"
}

# Is the agent (stopped) inside a PKCS#11 call? The last "N: C_Name" line of its trace has no
# "Returned:" after it.
in_p11_call()
{
    awk '/^[0-9]+: C_[A-Za-z]+$/ { open = 1 } /^Returned:/ { open = 0 } END { exit !open }' "$1"
}

# SIGKILL our child $1 at the next moment it is between two PKCS#11 calls (trace in $2).
# KILLED=1 when it was still running, 0 when it had ended by itself. Returns 1 (reason in
# KILL_ERR) when the agent does not stop, or is inside a call at each of 5000 tries.
kill_between_calls()
{
    local pid=$1 log=$2 i j st
    KILLED=0 KILL_ERR=''
    for ((i = 0; i < 5000; i++)); do
        kill -STOP "$pid" 2>/dev/null || return 0
        # SIGSTOP takes effect asynchronously: look at the trace only once it has.
        for ((j = 0; j < 1000; j++)); do
            st=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 0
            [[ $st == T || $st == Z ]] && break
            sleep 0.001
        done
        [[ $st == Z ]] && return 0 # ended by itself
        if [[ $st != T ]]; then
            KILL_ERR="agent $pid does not stop (state $st)"
            return 1
        fi
        if ! in_p11_call "$log"; then
            kill -KILL "$pid" 2>/dev/null || true
            KILLED=1
            return 0
        fi
        kill -CONT "$pid" 2>/dev/null || true
        sleep 0.002
    done
    KILL_ERR="agent $pid was inside a PKCS#11 call at each of 5000 tries"
    return 1
}

# run_agent CRASH_POINT|- KILL_MS|- ARGS...: one agent run (with PKIO_TEST_CRASH_AT set to
# CRASH_POINT), output and PKCS#11 trace in runs/N.log. With KILL_MS, run it in the background
# and SIGKILL it after that many milliseconds, at the next moment between two PKCS#11 calls
# (KILLED=1 if it was still running). Sets RC.
run_agent()
{
    local crash=$1 ms=$2 pid log
    shift 2
    nrun=$((nrun + 1))
    log=$runs/$(printf '%04d' "$nrun").log
    echo "run $nrun: crash=$crash kill_ms=$ms agent $*" >"$log"
    RC=0 KILLED=0
    if [[ $ms == - ]]; then
        { PKIO_TEST_CRASH_AT=${crash#-} "$PKIO_AGENT" --config "$dir/config.json" "$@" \
            </dev/null >>"$log" 2>&1; } 2>/dev/null || RC=$?
    else
        # The shell's own stderr goes to the log here: bash reports a killed background job
        # ("Killed ...") whenever it happens to reap it. Such lines never look like the trace.
        # shellcheck disable=SC2094
        {
            PKIO_TEST_CRASH_AT=${crash#-} "$PKIO_AGENT" --config "$dir/config.json" "$@" \
                </dev/null >>"$log" 2>&1 &
            pid=$!
            sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
            # The agent is our child: until `wait` reaps it its pid cannot be reused, so no
            # other process is ever signalled; if it has ended already the signals do nothing.
            kill_between_calls "$pid" "$log" || kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" || RC=$?
        } 2>>"$log"
        [[ -z $KILL_ERR ]] || fail "$KILL_ERR"
    fi
    echo "exit $RC killed=$KILLED" >>"$log"
}

# The agent's own lines of the last run (its log also holds the PKCS#11 trace).
show_run()
{
    local log
    log=$runs/$(printf '%04d' "$nrun").log
    echo "--- $log (without the PKCS#11 trace):" >&2
    grep -E '^(run |exit |pkio-agent|job |[{])' "$log" | tail -n 20 >&2
}

random_kill() # a run was killed at a random moment; note the state it left the job in
{
    local st
    st=$(job_state "$label")
    random_kills=$((random_kills + 1))
    left_in[$st]=$((${left_in[$st]:-0} + 1))
    line+="$1 ($st); "
}

hit_point() # a run died at its crash point
{
    crash_kills=$((crash_kills + 1))
    point_kills[$point]=$((${point_kills[$point]:-0} + 1))
    line+="killed at $point; "
}

for ((k = 1; k <= NTOK; k++)); do
    label=$(printf 'crash-%02d' "$k")
    point=${POINTS[(k - 1) % ${#POINTS[@]}]}
    enroll=(enroll --token "pkcs11:token=$label?pin-source=$pin" --request "$req")
    replaced=''
    if [[ $point == before-revoke ]]; then
        replaced=$(job_field "$(printf 'crash-%02d' $((k - 1)))" certificate_id)
        enroll+=(--replaces "$replaced")
        replaced_certs+=("$replaced")
    fi
    # CertCentral may show a CSR in order info in another encoding than the one sent: recovery
    # must match orders by key whatever the presentation (it changes with every token).
    presentations=(rewrapped as_sent one_line bare)
    cc_sandbox_post /__sandbox/behavior "{\"csr_presentation\":\"${presentations[k % 4]}\"}"
    line="$label (CSR shown ${presentations[k % 4]}): "
    hit=0

    # First run. Odd tokens: killed at the crash point. Even tokens: a random kill too, whichever
    # comes first (every point lies on a fresh enrollment's path, so one of them always does).
    if ((k % 2 == 1)); then
        run_agent "$point" - "${enroll[@]}"
    else
        ms=$((RANDOM % 401))
        run_agent "$point" "$ms" "${enroll[@]}"
    fi
    if [[ $RC -eq 137 && $KILLED -eq 1 ]]; then
        random_kill "random kill at ${ms}ms"
    elif [[ $RC -eq 137 ]]; then
        hit_point
        hit=1
    else
        show_run
        fail "$label: a fresh enroll with PKIO_TEST_CRASH_AT=$point exited $RC, not by SIGKILL"
    fi
    # Randomly killed first: the officer retries with the crash point still armed, which kills
    # it again unless the job is past that point already.
    if ((!hit)) && [[ $(job_state "$label") != "done" ]]; then
        run_agent "$point" - "${enroll[@]}"
        if [[ $RC -eq 137 ]]; then
            hit_point
        elif [[ $RC -eq 0 || $RC -eq 12 || $RC -eq 13 || $RC -eq 14 ]]; then
            point_passed[$point]=$((${point_passed[$point]:-0} + 1))
            line+="$point already passed (exit $RC); "
        else
            show_run
            fail "$label: enroll exited $RC"
        fi
    fi

    # The officer's retries: resume --all and the same enroll, alternating, until done. The
    # first `extra` of them are killed at a random moment: 0..3 by token, plus what the
    # campaign lags behind a pace of MIN_KILLS + 10 over NTOK tokens (random kills can come
    # after a run has ended).
    kills=$((random_kills + crash_kills))
    lag=$(((MIN_KILLS + 10) * k / NTOK - kills))
    extra=$((k % 4 + (lag > 0 ? (lag > 4 ? 4 : lag) : 0)))
    attempts=0
    while :; do
        st=$(job_state "$label")
        [[ $st == "done" ]] && break
        [[ $st == several:* ]] && fail "$label: more than one job for one token: $st"
        attempts=$((attempts + 1))
        ((attempts <= MAX_ATTEMPTS)) || {
            show_run
            fail "$label: job still '$st' after $MAX_ATTEMPTS retries (stuck job)"
        }
        if [[ $st == none || $((attempts % 2)) -eq 0 ]]; then
            cmd=("${enroll[@]}")
            reenrolls=$((reenrolls + 1))
        else
            cmd=(resume --all --pin-source "$pin")
            resumes=$((resumes + 1))
        fi
        if ((extra > 0)); then
            extra=$((extra - 1))
            ms=$((RANDOM % 401))
            run_agent - "$ms" "${cmd[@]}"
            if [[ $KILLED -eq 1 ]]; then
                [[ $RC -eq 137 ]] || fail "$label: killed agent exited $RC"
                random_kill "${cmd[0]} killed at ${ms}ms"
                continue
            fi
            random_misses=$((random_misses + 1))
        else
            run_agent - - "${cmd[@]}"
        fi
        case $RC in
        0) line+="${cmd[0]} ok" ;;
        # 12: CertCentral busy (the sandbox enforces the per-key rate windows across all of
        # these processes); 13: pending; 14: must wait. The officer retries.
        12 | 13 | 14) line+="${cmd[0]} exit $RC; " ;;
        *)
            show_run
            fail "$label: '${cmd[*]}' exited $RC"
            ;;
        esac
    done
    echo "$line${replaced:+ (re-key of certificate $replaced)}"
done
t_campaign=$(date +%s%N)

# --- the outcome ---------------------------------------------------------------------------------
kills=$((crash_kills + random_kills))
echo "kills: $kills ($crash_kills at crash points, $random_kills at random moments;" \
    "$random_misses random kills came after the run had finished)"
((kills >= MIN_KILLS)) || fail "only $kills kills, want at least $MIN_KILLS"
for p in "${POINTS[@]}"; do
    ((${point_kills[$p]:-0} >= 3)) || fail "crash point $p hit ${point_kills[$p]:-0} times"
done

# Every token: exactly one private key, one public key with the same CKA_ID, the leaf under
# that id whose public key is the token's, and one CA certificate (nothing written twice).
spkis=$PKIO_ROOT/token-spkis
: >"$spkis"
for ((k = 1; k <= NTOK; k++)); do
    label=$(printf 'crash-%02d' "$k")
    p11=(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$label")
    "${p11[@]}" --login --pin "$TOKEN_PIN" -O >"$PKIO_ROOT/objects" 2>"$PKIO_ROOT/p11.err" ||
        fail "$label: pkcs11-tool -O failed: $(cat "$PKIO_ROOT/p11.err")"
    id=$(python3 - "$PKIO_ROOT/objects" "$label" <<'PY'
import sys
objs, cur = [], None
for line in open(sys.argv[1]):
    if line.startswith(("Private Key Object", "Public Key Object", "Certificate Object")):
        cur = {"type": line.split(" Object")[0], "id": ""}
        objs.append(cur)
    elif cur is not None and line.strip().startswith("ID:"):
        cur["id"] = line.split(":", 1)[1].strip()
by = lambda t: [o for o in objs if o["type"] == t]
priv, pub, cert = by("Private Key"), by("Public Key"), by("Certificate")
ok = (len(priv) == 1 and len(pub) == 1 and pub[0]["id"] == priv[0]["id"] and len(cert) == 2
      and [c["id"] for c in cert].count(priv[0]["id"]) == 1)
if not ok:
    sys.exit("%s: want 1 private key, 1 public key with its id, its certificate and one CA "
             "certificate; token holds %s" % (sys.argv[2], objs))
print(priv[0]["id"])
PY
) || fail "objects on token $label are wrong"
    "${p11[@]}" --read-object --type pubkey --id "$id" -o "$PKIO_ROOT/pub.der" >/dev/null 2>&1 ||
        fail "$label: cannot read the public key"
    "${p11[@]}" --read-object --type cert --id "$id" -o "$PKIO_ROOT/cert.der" >/dev/null 2>&1 ||
        fail "$label: cannot read the certificate"
    openssl x509 -inform DER -in "$PKIO_ROOT/cert.der" -noout -pubkey |
        openssl pkey -pubin -outform DER >"$PKIO_ROOT/certpub.der" ||
        fail "$label: cannot parse the certificate"
    openssl pkey -pubin -inform DER -in "$PKIO_ROOT/pub.der" -outform DER >"$PKIO_ROOT/pub2.der" ||
        fail "$label: cannot parse the public key"
    cmp -s "$PKIO_ROOT/certpub.der" "$PKIO_ROOT/pub2.der" ||
        fail "$label: the certificate's public key is not the token key"
    openssl verify -CAfile "$SB/root.pem" -untrusted "$SB/intermediate.pem" \
        <(openssl x509 -inform DER -in "$PKIO_ROOT/cert.der") >/dev/null ||
        fail "$label: the certificate on the token does not verify to the sandbox root"
    echo "$label $(sha256sum <"$PKIO_ROOT/pub2.der" | cut -d' ' -f1)" >>"$spkis"
done
pass "30 tokens: each holds exactly one key pair and the certificate of that key (no orphan key)"

# The sandbox: one order per key, for exactly the 30 token keys; jobs: 30, all done, with the
# order the sandbox holds for the job's key.
agent status --json >"$PKIO_ROOT/status.json" || fail "status --json failed"
curl -sS --fail-with-body --noproxy '*' --cacert "$SB/tls-ca.pem" "$SB_ROOT/__sandbox/state" \
    >"$PKIO_ROOT/sandbox-state.json" || fail "sandbox state query failed"
python3 - "$PKIO_ROOT/sandbox-state.json" "$PKIO_ROOT/status.json" "$spkis" "$NTOK" \
    "${replaced_certs[@]}" <<'PY' || fail "orders or jobs are wrong"
import json, sys
s = json.load(open(sys.argv[1]))
jobs = json.load(open(sys.argv[2]))["jobs"]
tokens = dict(l.split() for l in open(sys.argv[3]))
n = int(sys.argv[4])
replaced = [int(x) for x in sys.argv[5:]]
errors = []
opk = s["orders_per_key"]
if len(opk) != n or any(v != 1 for v in opk.values()):
    dup = {k[:12]: v for k, v in opk.items() if v != 1}
    errors.append("orders_per_key has %d entries, want %d each 1; duplicates: %s"
                  % (len(opk), n, dup))
if set(opk) != set(tokens.values()):
    errors.append("the ordered keys are not the token keys")
if len(s["orders"]) != n or s["requests"]["by_endpoint"].get("order_create") != n:
    errors.append("sandbox holds %d orders after %s order requests, want %d"
                  % (len(s["orders"]), s["requests"]["by_endpoint"].get("order_create"), n))
orders = {o["id"]: o for o in s["orders"]}
if len(jobs) != n:
    errors.append("%d jobs, want %d: %s" % (len(jobs), n,
                  [(j["token_label"], j["state"]) for j in jobs]))
seen = set()
for j in jobs:
    lab = j["token_label"]
    if lab in seen:
        errors.append("%s has several jobs" % lab)
    seen.add(lab)
    if j["state"] != "done" or not j.get("order_id"):
        errors.append("job %s of %s is %s, order %s" % (j["id"], lab, j["state"], j.get("order_id")))
        continue
    o = orders.get(j["order_id"])
    if not o or o["spki_sha256"] != j["spki_sha256"] or tokens.get(lab) != j["spki_sha256"]:
        errors.append("job %s of %s: order %s is not the order of the token key" % (j["id"], lab, j["order_id"]))
    elif o["status"] != "issued" or o["certificate_id"] != j.get("certificate_id"):
        errors.append("order %s: status %s, certificate %s vs job's %s" % (o["id"], o["status"],
                      o["certificate_id"], j.get("certificate_id")))
revoked = [r["certificate_id"] for r in s["revocations"]]
for c in replaced:
    if c not in revoked:
        errors.append("replaced certificate %d was not revoked" % c)
if errors:
    sys.exit("\n".join(errors))
extra = len(revoked) - len(set(revoked))
if extra:
    sys.exit("%d repeated revocation requests: a lost or killed revoke was sent again" % extra)
print("ok: sandbox: %d orders, one per key, each the order of its job's token key; %d re-keys, "
      "each replaced certificate revoked (%d repeated revocation requests); %d API requests, "
      "%d rate-limit violations" % (len(orders), len(replaced), extra, s["requests"]["total"],
                           len(s["rate_limit"]["violations"])))
PY
pass "0 duplicate orders, 0 lost orders, no unfinished job"

expect_exit 0 -- agent audit verify
pass "audit verify: $(cat "$OUT")"

t_end=$(date +%s%N)
echo "summary:"
for p in "${POINTS[@]}"; do
    printf '  %-14s %2d kills, %d times already passed\n' "$p" "${point_kills[$p]:-0}" \
        "${point_passed[$p]:-0}"
done
echo "  random kills   $random_kills (plus $random_misses that came after the run had finished)"
printf '  left the job   '
for st in none new key_ready csr_ready ordering ordered issued installed "done"; do
    printf '%s %d  ' "$st" "${left_in[$st]:-0}"
done
echo
echo "  total kills    $kills"
echo "  retries        $resumes resume --all, $reenrolls enroll again ($nrun agent runs)"
printf '  wall time      %.1f s (campaign %.1f s, checks %.1f s)\n' \
    "$(((t_end - t_start) / 1000000))e-3" "$(((t_campaign - t_start) / 1000000))e-3" \
    "$(((t_end - t_campaign) / 1000000))e-3"
