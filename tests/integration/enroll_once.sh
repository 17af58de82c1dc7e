#!/usr/bin/env bash
# Exactly one paid order, and the right person's certificate on the right token, against a
# sandbox that does not answer the way our code expects (issue #8). Real SoftHSM2 tokens, the
# bundled CertCentral sandbox with its variations (CSR presentation in order info, list lag,
# requests acted on after the client gave up, known individuals, forced order states):
#   - --replaces with another person's certificate: refused, nothing generated/ordered/revoked
#   - --replaces of an expired or revoked certificate, and a rerun that changes --replaces
#   - a re-key whose revoke answer is lost: one revocation, recorded as a pending request
#   - configuration errors caught before key generation (trust anchors, API key)
#   - a failure after issuance (wrong trust anchors) then the officer's rerun: one order, one key
#   - a lost order answer under every CSR presentation: one order; undecodable/absent: stop
#   - orders listed late, and an order POST acted on after the client gave up: one order
#   - two enrollments started at the same moment on one token, 5 times: one key, one order
#   - a corrupt job record is set aside and blocks nothing
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool

tokdir=$(pkio_tmpdir)
softhsm_setup "$tokdir" once-a
enroll_setup "$SOFTHSM_MODULE"
req=$PKIO_SRC/tests/data/requests/valid-prof.json
pin=$TOKEN_PIN_FILE
uri() { echo "pkcs11:token=$1?pin-source=$pin"; }
orders_for_job() { cc_state "s['orders_per_key'].get('$(job_field "$1" spki_sha256)', 0)"; }
total_orders() { cc_state "len(s['orders'])"; }
revocations() { cc_state "len(s['revocations'])"; }
job_of_token()
{
    pa status --json | python3 -c 'import json,sys; j=[x["id"] for x in json.load(sys.stdin)["jobs"] if x["token_label"]==sys.argv[1]]; print(j[-1] if j else "")' "$1"
}
jobs_of_token()
{
    pa status --json | python3 -c 'import json,sys; print(len([x for x in json.load(sys.stdin)["jobs"] if x["token_label"]==sys.argv[1]]))' "$1"
}
behave() { cc_sandbox_post /__sandbox/behavior "$1"; }
# A request for another person (a typo in a certificate id at the desk picks their certificate).
other_req()
{
    python3 - "$req" "$1" "$2" "$3" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
i = r["certificate"]["individual"]
i["first_name"], i["last_name"], i["email"] = sys.argv[2], sys.argv[3], sys.argv[4]
json.dump(r, sys.stdout)
EOF
}
rdir=$(pkio_tmpdir)
other_req Pieter Bakker p.bakker@example.nl >"$rdir/bakker.json"
other_req Karin Smit k.smit@example.nl >"$rdir/smit.json"
# The same person as valid-prof.json, written the way another desk would type it.
other_req "  JOHANNA   maria" "De Vries" "J.DeVries@Notariaat-DeVries.example.nl" >"$rdir/devries-typed.json"

# --- the certificate a re-key would replace -----------------------------------------------------
behave '{"behavior":"issue","issue_after_polls":1}'
expect_exit 0 -- pa enroll --token "$(uri once-a)" --request "$req" --json
job_a=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job"])' "$OUT")
cert_a=$(job_field "$job_a" certificate_id)
[[ -n $cert_a ]] || fail "no certificate id for job a"

# --- --replaces with another person's certificate -------------------------------------------------
softhsm_add_token "$tokdir" once-b >/dev/null
n0=$(total_orders)
expect_exit 16 -- pa enroll --token "$(uri once-b)" --request "$rdir/bakker.json" --replaces "$cert_a"
grep -q "Johanna Maria de Vries" "$ERR" && grep -q "Pieter Bakker" "$ERR" ||
    fail "the refusal does not name both people: $(cat "$ERR")"
[[ $(wc -l <"$ERR") -eq 1 ]] || fail "the refusal is not one line: $(cat "$ERR")"
[[ $(total_orders) -eq $n0 && $(revocations) -eq 0 ]] || fail "something was ordered or revoked"
[[ $(token_count once-b privkey) -eq 0 && $(token_count once-b pubkey) -eq 0 ]] || fail "a key was generated"
[[ $(jobs_of_token once-b) -eq 0 ]] || fail "a job was created"
# the same through the order id
expect_exit 16 -- pa enroll --token "$(uri once-b)" --request "$rdir/bakker.json" \
    --replaces "order:$(job_field "$job_a" order_id)"
[[ $(total_orders) -eq $n0 && $(revocations) -eq 0 ]] || fail "order: form ordered or revoked"
pass "--replaces another person's certificate: exit 16 naming both, nothing generated, ordered or revoked"

# --- the replaced certificate must be in force -----------------------------------------------------
softhsm_add_token "$tokdir" once-x >/dev/null
expect_exit 0 -- pa enroll --token "$(uri once-x)" --request "$rdir/smit.json" --json
job_x=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job"])' "$OUT")
cc_sandbox_post "/__sandbox/order/$(job_field "$job_x" order_id)" '{"status":"expired","valid_till":"2020-01-31"}'
softhsm_add_token "$tokdir" once-y >/dev/null
expect_exit 16 -- pa enroll --token "$(uri once-y)" --request "$rdir/smit.json" --replaces "$(job_field "$job_x" certificate_id)"
grep -q "expired" "$ERR" || fail "expired certificate not named: $(cat "$ERR")"
cc_sandbox_post "/__sandbox/order/$(job_field "$job_x" order_id)" '{"status":"revoked"}'
expect_exit 16 -- pa enroll --token "$(uri once-y)" --request "$rdir/smit.json" --replaces "$(job_field "$job_x" certificate_id)"
grep -q "revoked" "$ERR" || fail "revoked certificate not named: $(cat "$ERR")"
[[ $(token_count once-y privkey) -eq 0 ]] || fail "a key was generated for a refused re-key"
pass "--replaces of an expired or a revoked certificate: refused before anything is generated"

# --- a re-key of the same person, typed differently; a rerun may not change --replaces; -----------
# --- the revoke's answer is lost: one revocation request, and the job says it is pending ------------
softhsm_add_token "$tokdir" once-c >/dev/null
behave '{"behavior":"never","name_presentation":"upper"}'
expect_exit 13 -- pa enroll --token "$(uri once-c)" --request "$rdir/devries-typed.json" --replaces "$cert_a" --no-wait
job_c=$(job_of_token once-c)
[[ -n $job_c ]] || fail "the same person's re-key was not started: $(cat "$ERR")"
expect_exit 16 -- pa enroll --token "$(uri once-c)" --request "$rdir/devries-typed.json" --replaces 999999 --no-wait
grep -q "same certificate to replace" "$ERR" || fail "a changed --replaces not explained: $(cat "$ERR")"
expect_exit 16 -- pa enroll --token "$(uri once-c)" --request "$rdir/devries-typed.json" --no-wait
[[ $(job_field "$job_c" replaces_certificate_id) == "$cert_a" ]] || fail "the job's --replaces changed"
behave '{"behavior":"issue","issue_after_polls":0,"name_presentation":"as_sent"}'
cc_fault PUT /services/v2/certificate/ lost 1
expect_exit 0 -- pa enroll --token "$(uri once-c)" --request "$rdir/devries-typed.json" --replaces "$cert_a"
[[ $(revocations) -eq 1 ]] || fail "lost revoke answer: $(revocations) revocations"
[[ $(job_field "$job_c" revoke_status) == pending ]] || fail "revoke status: $(job_field "$job_c" revoke_status)"
[[ $(job_field "$job_c" old_revoked) != True ]] || fail "a pending request recorded as revoked"
grep -q "NOT revoked yet" "$OUT" || fail "the officer is not told the revoke is pending: $(cat "$OUT")"
expect_exit 0 -- pa resume "$job_c" --pin-source "$pin"
[[ $(revocations) -eq 1 ]] || fail "resume sent the revoke again"
pass "re-key of the same person (typed differently): a changed --replaces is refused; lost revoke answer: one request, recorded as pending"

# --- configuration errors stop the run before the key is generated ---------------------------------
softhsm_add_token "$tokdir" once-d >/dev/null
bad=$PKIO_ROOT/bad.json
python3 - "$CFG" "$bad" 'trust' 'anchors' "$PKIO_ROOT/no-such-roots.pem" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c[sys.argv[3]][sys.argv[4]] = sys.argv[5]; json.dump(c, open(sys.argv[2], "w"))
EOF
n0=$(total_orders)
expect_exit 3 -- "$PKIO_AGENT" --config "$bad" enroll --token "$(uri once-d)" --request "$req"
grep -q "before anything is generated" "$ERR" || fail "missing anchors not caught early: $(cat "$ERR")"
write_secret_file "$PKIO_ROOT/wrong.key" "sandbox-wrong-key-000000"
python3 - "$CFG" "$bad" 'api' 'key_file' "$PKIO_ROOT/wrong.key" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c[sys.argv[3]][sys.argv[4]] = sys.argv[5]; json.dump(c, open(sys.argv[2], "w"))
EOF
expect_exit 11 -- "$PKIO_AGENT" --config "$bad" enroll --token "$(uri once-d)" --request "$req"
[[ $(token_count once-d privkey) -eq 0 && $(total_orders) -eq $n0 ]] || fail "a key or an order despite a config error"
pass "missing trust anchors (exit 3) and a refused API key (exit 11) stop enroll before key generation"

# --- a failure after issuance, then the officer's rerun: the same order and key --------------------
python3 - "$CFG" "$bad" 'trust' 'anchors' "$SB/tls-ca.pem" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c[sys.argv[3]][sys.argv[4]] = sys.argv[5]; json.dump(c, open(sys.argv[2], "w"))
EOF
expect_exit 9 -- "$PKIO_AGENT" --config "$bad" enroll --token "$(uri once-d)" --request "$req"
job_d=$(job_of_token once-d)
[[ $(job_field "$job_d" state) != failed ]] || fail "a verification failure after ordering made the job a dead end"
grep -q "nothing is ordered twice" "$ERR" || fail "the officer is not told what to do: $(cat "$ERR")"
expect_exit 0 -- pa enroll --token "$(uri once-d)" --request "$req" --json
grep -q "\"job\":\"$job_d\"" "$OUT" || fail "the rerun started a new job"
[[ $(orders_for_job "$job_d") -eq 1 && $(token_count once-d privkey) -eq 1 && $(total_orders) -eq $((n0 + 1)) ]] ||
    fail "the rerun paid twice or made a second key"
token_cert_matches_key once-d
expect_exit 0 -- pa enroll --token "$(uri once-d)" --request "$req"
grep -q "already done" "$OUT" || fail "a rerun of a finished enrollment is not told so: $(cat "$OUT")"
[[ $(total_orders) -eq $((n0 + 1)) ]] || fail "a rerun of a finished enrollment ordered again"
pass "wrong trust anchors after issuance: job kept (exit 9); the officer's rerun continues it, one order, one key; a third run orders nothing"

# --- a lost order answer under every CSR presentation ----------------------------------------------
for mode in as_sent rewrapped one_line bare; do
    t=once-p-${mode//_/-}
    softhsm_add_token "$tokdir" "$t" >/dev/null
    behave "{\"csr_presentation\":\"$mode\"}"
    cc_fault POST /services/v2/order/certificate/ lost 1
    expect_exit 12 -- pa enroll --token "$(uri "$t")" --request "$req"
    expect_exit 0 -- pa enroll --token "$(uri "$t")" --request "$req"
    j=$(job_of_token "$t")
    [[ $(orders_for_job "$j") -eq 1 ]] || fail "CSR shown $mode: $(orders_for_job "$j") orders"
done
for mode in absent undecodable; do
    t=once-u-$mode
    softhsm_add_token "$tokdir" "$t" >/dev/null
    behave "{\"csr_presentation\":\"$mode\"}"
    cc_fault POST /services/v2/order/certificate/ lost 1
    expect_exit 12 -- pa enroll --token "$(uri "$t")" --request "$req"
    expect_exit 14 -- pa enroll --token "$(uri "$t")" --request "$req"
    grep -q "cannot tell" "$ERR" || fail "CSR $mode: not told why recovery stopped: $(cat "$ERR")"
    j=$(job_of_token "$t")
    [[ $(orders_for_job "$j") -eq 1 ]] || fail "CSR $mode: ordered again ($(orders_for_job "$j") orders)"
done
behave '{"csr_presentation":"rewrapped"}'
expect_exit 0 -- pa resume "$j" --pin-source "$pin"
[[ $(orders_for_job "$j") -eq 1 ]] || fail "resume after the CSR became readable ordered again"
pass "lost order answer: matched by key under as_sent, rewrapped, one_line and bare; absent or undecodable CSR stops (exit 14), never a second order"

# --- orders listed late; an order acted on after the client gave up -----------------------------
slow=$PKIO_ROOT/slow.json
python3 - "$CFG" "$slow" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["api"]["order_settle_s"] = 9; json.dump(c, open(sys.argv[2], "w"))
EOF
softhsm_add_token "$tokdir" once-lag >/dev/null
behave '{"list_lag_s":3}'
cc_fault POST /services/v2/order/certificate/ lost 1
expect_exit 12 -- "$PKIO_AGENT" --config "$slow" enroll --token "$(uri once-lag)" --request "$req"
expect_exit 0 -- "$PKIO_AGENT" --config "$slow" enroll --token "$(uri once-lag)" --request "$req"
[[ $(orders_for_job "$(job_of_token once-lag)") -eq 1 ]] || fail "list lag: ordered twice"
behave '{"list_lag_s":0}'
softhsm_add_token "$tokdir" once-late >/dev/null
cc_fault POST /services/v2/order/certificate/ late:5 1
expect_exit 12 -- "$PKIO_AGENT" --config "$slow" enroll --token "$(uri once-late)" --request "$req"
expect_exit 0 -- "$PKIO_AGENT" --config "$slow" enroll --token "$(uri once-late)" --request "$req"
[[ $(orders_for_job "$(job_of_token once-late)") -eq 1 ]] || fail "late order: ordered twice"
pass "an order listed 3 s late, and one acted on 5 s after the client gave up: found, one order each"

# --- two enrollments started at the same moment on one token ---------------------------------------
behave '{"behavior":"issue","issue_after_polls":1}'
for i in 1 2 3 4 5; do
    t=once-race-$i
    softhsm_add_token "$tokdir" "$t" >/dev/null
    pa enroll --token "$(uri "$t")" --request "$req" >"$PKIO_ROOT/race1.out" 2>&1 &
    p1=$!
    pa enroll --token "$(uri "$t")" --request "$req" >"$PKIO_ROOT/race2.out" 2>&1 &
    p2=$!
    rc1=0 rc2=0
    wait "$p1" || rc1=$?
    wait "$p2" || rc2=$?
    # 0: did it or found it done; 15: busy. SoftHSM2 (files, no cross-process locking) can also
    # fail the other process's token calls while one process writes to the token (no token
    # found, CKR_GENERAL_ERROR): exit 5, one line, nothing done. A real token serialises this.
    for rc in "$rc1" "$rc2"; do
        [[ $rc -eq 0 || $rc -eq 15 || $rc -eq 5 ]] && continue
        fail "race $i: exits $rc1 $rc2: $(cat "$PKIO_ROOT"/race?.out)"
    done
    [[ $rc1 -eq 0 || $rc2 -eq 0 ]] || fail "race $i: neither run enrolled: $(cat "$PKIO_ROOT"/race?.out)"
    [[ $(jobs_of_token "$t") -eq 1 ]] || fail "race $i: $(jobs_of_token "$t") jobs"
    [[ $(token_count "$t" privkey) -eq 1 && $(orders_for_job "$(job_of_token "$t")") -eq 1 ]] ||
        fail "race $i: $(token_count "$t" privkey) keys, $(orders_for_job "$(job_of_token "$t")") orders"
done
pass "two enrollments at the same moment on one token, 5 times: one job, one key, one order each"

# --- a corrupt job record is set aside, and blocks nothing ---------------------------------------------
printf '{"id": "garbage' >"$STATE/jobs/0123456789abcdef0123456789abcdef.json"
expect_exit 0 -- pa status
grep -q "corrupt" "$ERR" || fail "corrupt record not reported: $(cat "$ERR")"
[[ -e $STATE/jobs/0123456789abcdef0123456789abcdef.json.corrupt ]] || fail "corrupt record not set aside"
softhsm_add_token "$tokdir" once-after >/dev/null
expect_exit 0 -- pa enroll --token "$(uri once-after)" --request "$req"
expect_exit 0 -- pa audit verify
pass "a corrupt job record is reported and set aside; status and enroll go on"
