#!/usr/bin/env bash
# After the first certificate (issue #11): revoke by job, by certificate and by token serial with
# the token absent; a lost revoke answer (one revocation); a pending revocation request said as
# such, settled once approved; renew on the same token and onto a replacement token (the old
# certificate revoked only after the new one is on the token, a certificate that is not due is
# refused, a failed renewal revokes nothing); cancel of a failed job removes its key.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool

tokdir=$(pkio_tmpdir)
softhsm_setup "$tokdir" life-a
enroll_setup "$SOFTHSM_MODULE"
req=$PKIO_SRC/tests/data/requests/valid-prof.json
pin=$TOKEN_PIN_FILE
uri() { echo "pkcs11:token=$1?pin-source=$pin"; }
revocations() { cc_state "len(s['revocations'])"; }
orders() { cc_state "len(s['orders'])"; }
json_get() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$OUT" "$1"; }
enroll_on() # LABEL: a fresh token (unless it exists) enrolled; the job id in $JOB
{
    [[ $1 == life-a ]] || softhsm_add_token "$tokdir" "$1" >/dev/null
    expect_exit 0 -- pa enroll --token "$(uri "$1")" --request "$req" --json
    JOB=$(json_get job)
}
approve()
{
    curl -sS --fail-with-body --noproxy '*' --cacert "$SB/tls-ca.pem" -X PUT \
        -H "X-DC-DEVKEY: $CC_DEFAULT_KEY" -H 'Content-Type: application/json' \
        "$CC_URL/request/$1/status" -d '{"status":"approved"}' >/dev/null || fail "approving request $1"
}
cc_sandbox_post /__sandbox/behavior '{"behavior":"issue","issue_after_polls":1}'

# --- revoke by job: a pending request is not "revoked"; approved, the next run records it --------
enroll_on life-a
job_a=$JOB
cert_a=$(job_field "$job_a" certificate_id)
expect_exit 2 -- pa revoke --job "$job_a" --reason key_compromise </dev/null
[[ $(revocations) -eq 0 ]] || fail "revoked without confirmation"
expect_exit 0 -- pa revoke --job "$job_a" --reason key_compromise --yes --json
[[ $(json_get revocation) == pending ]] || fail "revocation: $(cat "$OUT")"
req_a=$(json_get request_id)
[[ $(job_field "$job_a" cert_revoke_status) == pending ]] || fail "job does not record the pending request"
approve "$req_a"
expect_exit 0 -- pa revoke --job "$job_a" --reason key_compromise --yes --json
[[ $(json_get revocation) == revoked && $(revocations) -eq 1 ]] || fail "approved revocation: $(cat "$OUT"), $(revocations) revocations"
[[ $(job_field "$job_a" cert_revoke_status) == revoked ]] || fail "job does not record the revocation"
grep -q '"event":"revoke-certificate"' "$STATE/audit.log" || fail "revoke not in the audit log"
pass "revoke --job: confirmation needed (exit 2 without a terminal), pending request said as such, recorded as revoked once approved; one revocation"

# --- revoke by token serial, the token gone, the answer lost ------------------------------------------
enroll_on life-b
job_b=$JOB
serial_b=$(job_field "$job_b" token_serial)
softhsm_delete_token life-b >/dev/null
cc_fault PUT /services/v2/certificate/ lost 1
expect_exit 0 -- pa revoke --serial "$serial_b" --reason key_compromise --comment "token lost" --yes --json
[[ $(json_get revocation) == pending && $(revocations) -eq 2 ]] || fail "lost answer: $(cat "$OUT"), $(revocations) revocations"
expect_exit 0 -- pa revoke --serial "$serial_b" --reason key_compromise --yes --json
[[ $(revocations) -eq 2 ]] || fail "a rerun sent the revoke again"
expect_exit 14 -- pa revoke --serial 0000aaaa0000aaaa --reason key_compromise --yes
pass "revoke --serial with the token absent and the answer lost: one revocation request; unknown serial refused"

# --- revoke --cert: a certificate no job of ours explains, named explicitly --------------------------
foreign=$PKIO_ROOT/foreign
mkdir -p "$foreign"
softhsm_add_token "$tokdir" life-f >/dev/null
expect_exit 0 -- "$PKIO_AGENT" --config "$CFG" --state-dir "$foreign" enroll --token "$(uri life-f)" --request "$req" --json
cert_f=$(json_get certificate_id)
expect_exit 0 -- pa revoke --cert "$cert_f" --reason cessation_of_operation --yes --json
[[ $(json_get job) == "" && $(revocations) -eq 3 ]] || fail "revoke --cert of a foreign certificate: $(cat "$OUT")"
pass "revoke --cert revokes a certificate this station did not enroll when it is named explicitly"

# --- renew on the same token --------------------------------------------------------------------------
enroll_on life-c
job_c=$JOB
cert_c=$(job_field "$job_c" certificate_id)
n0=$(orders)
expect_exit 16 -- pa renew --token "$(uri life-c)"
grep -q "not due" "$ERR" || fail "renewal of a certificate that is not due: $(cat "$ERR")"
soon=$(date -u -d '+20 days' +%Y-%m-%d)
cc_sandbox_post "/__sandbox/order/$(job_field "$job_c" order_id)" "{\"valid_till\":\"$soon\"}"
expect_exit 0 -- pa renew --token "$(uri life-c)" --json
job_c2=$(json_get job)
[[ $job_c2 != "$job_c" && $(orders) -eq $((n0 + 1)) ]] || fail "renewal did not order once"
[[ $(job_field "$job_c2" replaces_certificate_id) == "$cert_c" ]] || fail "renewal does not replace $cert_c"
[[ $(job_field "$job_c2" revoke_status) == pending ]] || fail "old certificate not revoked after the new one was installed"
[[ $(token_count life-c privkey) -eq 2 ]] || fail "same-token renewal: want the old and the new key"
expect_exit 16 -- pa renew --token "$(uri life-c)"
[[ $(orders) -eq $((n0 + 1)) ]] || fail "a second renew ordered again"
pass "renew on the same token: refused while not due; due: one new key and order, old certificate revoked after install; a rerun orders nothing"

# --- renew onto a replacement token; a failed renewal revokes nothing -------------------------------
enroll_on life-d
job_d=$JOB
cert_d=$(job_field "$job_d" certificate_id)
softhsm_add_token "$tokdir" life-d2 >/dev/null
expect_exit 0 -- pa renew --token "$(uri life-d2)" --replaces "$cert_d" --early --json
[[ $(job_field "$(json_get job)" revoke_status) == pending ]] || fail "replacement-token renewal"
token_cert_matches_key life-d2
enroll_on life-e
job_e=$JOB
softhsm_add_token "$tokdir" life-e2 >/dev/null
r0=$(revocations)
cc_sandbox_post /__sandbox/behavior '{"behavior":"reject"}'
expect_exit 10 -- pa renew --token "$(uri life-e2)" --replaces "$(job_field "$job_e" certificate_id)" --early
[[ $(revocations) -eq $r0 ]] || fail "a failed renewal revoked the old certificate"
pass "renew onto a replacement token with --early; a rejected renewal revokes nothing"

# --- cancel of a failed job removes its key ----------------------------------------------------------
failed=$(pa status --json | python3 -c 'import json,sys; print([j["id"] for j in json.load(sys.stdin)["jobs"] if j["token_label"]=="life-e2"][0])')
[[ $(job_field "$failed" state) == failed && $(token_count life-e2 privkey) -eq 1 ]] || fail "setup: failed job with a key"
expect_exit 0 -- pa cancel "$failed" --pin-source "$pin"
[[ $(token_count life-e2 privkey) -eq 0 && $(token_count life-e2 pubkey) -eq 0 ]] || fail "cancel left the failed job's key"
expect_exit 0 -- pa audit verify
pass "cancel of a failed (rejected) job removes its key from the token"
