#!/usr/bin/env bash
# enroll on SoftHSM2 against the sandbox: the whole flow, the officer's natural retry, --no-wait
# and resume, CertCentral faults during enroll (429, 500, lost and dropped order answers,
# rejection, never issued), cancel, a token pulled mid-enrollment, and a re-key that revokes
# the old certificate only after the new one is on the new token.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool

tokdir=$(pkio_tmpdir)
softhsm_setup "$tokdir" enr-a
enroll_setup "$SOFTHSM_MODULE"
req=$PKIO_SRC/tests/data/requests/valid-prof.json
pin=$TOKEN_PIN_FILE
uri() { echo "pkcs11:token=$1?pin-source=$pin"; }
orders_for_job() { cc_state "s['orders_per_key'].get('$(job_field "$1" spki_sha256)', 0)"; }

# --- the token policy: SoftHSM2 is a software token ----------------------------------------------
strict=$PKIO_ROOT/strict.json
python3 - "$CFG" "$strict" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); del c["token"]["allow_software"]; json.dump(c, open(sys.argv[2], "w"))
EOF
expect_exit 16 -- "$PKIO_AGENT" --config "$strict" enroll --token "$(uri enr-a)" --request "$req"
grep -q "SoftHSM2 is a software token" "$ERR" && grep -q "allow_software" "$ERR" ||
    fail "the policy refusal does not say why: $(cat "$ERR")"
python3 - "$CFG" "$strict" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["token"]["allowed"] = [{"manufacturer": "Yubico"}]; json.dump(c, open(sys.argv[2], "w"))
EOF
expect_exit 16 -- "$PKIO_AGENT" --config "$strict" enroll --token "$(uri enr-a)" --request "$req"
grep -q "not in token.allowed" "$ERR" || fail "token.allowed refusal: $(cat "$ERR")"
[[ $(token_count enr-a privkey) -eq 0 && $(cc_state "len(s['orders'])") -eq 0 ]] || fail "a refused token got a key or an order"
pass "token policy: a software token is refused without token.allow_software, an unlisted one by token.allowed; nothing generated or ordered"

# --- the whole flow ------------------------------------------------------------------------------
expect_exit 0 -- pa enroll --token "$(uri enr-a)" --request "$req" --pss --json
job_a=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="done", d; print(d["job"])' "$OUT")
cert_a=$(job_field "$job_a" certificate_id)
[[ $(token_count enr-a privkey) -eq 1 && $(token_count enr-a cert) -eq 2 ]] || fail "token enr-a: expected 1 key, leaf + CA"
token_cert_matches_key enr-a
[[ $(orders_for_job "$job_a") -eq 1 ]] || fail "job a: not exactly one order"
[[ $(cc_state "len(s['warnings'])") -eq 0 ]] || fail "sandbox warnings: $(cc_state "s['warnings']")"
stat -c %a "$STATE/jobs/$job_a.json" | grep -qx 600 || fail "job record is not mode 0600"
grep -qi '"pin' "$STATE/jobs/$job_a.json" && fail "a PIN field in the job record"
grep -qF "$(cat "$CC_KEY_FILE")" "$STATE"/jobs/*.json "$STATE/audit.log" && fail "API key in the state directory"
expect_exit 0 -- pa audit verify
pass "enroll: key on the token, one order, leaf under the key's ID with its chain, audit intact"

# --- --no-wait, then the officer's natural retry continues the same job ------------------------
softhsm_add_token "$tokdir" enr-b >/dev/null
cc_sandbox_post /__sandbox/behavior '{"behavior":"issue","issue_after_polls":3}' >/dev/null
expect_exit 13 -- pa enroll --token "$(uri enr-b)" --request "$req" --no-wait --json
job_b=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job"])' "$OUT")
expect_exit 0 -- pa enroll --token "$(uri enr-b)" --request "$req" --json
grep -q "\"job\":\"$job_b\"" "$OUT" || fail "retry started a new job instead of continuing $job_b"
[[ $(token_count enr-b privkey) -eq 1 && $(orders_for_job "$job_b") -eq 1 ]] || fail "retry made a second key or order"
pass "--no-wait exits 13; the same enroll again continues the job: one key, one order"

# --- CertCentral faults during enroll --------------------------------------------------------------
softhsm_add_token "$tokdir" enr-c >/dev/null
cc_sandbox_post /__sandbox/behavior '{"behavior":"issue","issue_after_polls":1}' >/dev/null
infos_before=$(cc_state "s['requests']['by_endpoint'].get('order_info', 0)")
cc_fault GET /services/v2/order/certificate/ 429 1 >/dev/null
cc_fault GET /services/v2/order/certificate/ status:500 1 >/dev/null
expect_exit 0 -- pa enroll --token "$(uri enr-c)" --request "$req"
[[ $(cc_state "s['rate_limit']['exceeded']") == False ]] || fail "the client broke the rate limits"
[[ $(cc_state "s['requests']['by_endpoint'].get('order_info', 0)") -ge $((infos_before + 4)) ]] ||
    fail "the 429 and the 500 were not retried: $(cc_state "s['requests']")"
pass "429 and 500 on order info during enroll are retried; the job completes"

softhsm_add_token "$tokdir" enr-r >/dev/null
creates_before=$(cc_state "s['requests']['by_endpoint'].get('order_create', 0)")
cc_fault POST /services/v2/order/certificate/ 429 1 >/dev/null
expect_exit 0 -- pa enroll --token "$(uri enr-r)" --request "$req"
job_r=$(pa status --json | python3 -c 'import json,sys; print([j["id"] for j in json.load(sys.stdin)["jobs"] if j["token_label"]=="enr-r"][0])')
[[ $(orders_for_job "$job_r") -eq 1 ]] || fail "429 on the order: $(orders_for_job "$job_r") orders"
[[ $(cc_state "s['requests']['by_endpoint'].get('order_create', 0)") -eq $((creates_before + 2)) ]] ||
    fail "the refused order was not sent exactly once more"
pass "429 on the order POST (certainly not placed): sent again after a backoff, one order"

softhsm_add_token "$tokdir" enr-d >/dev/null
cc_fault POST /services/v2/order/certificate/ lost 1 >/dev/null
expect_exit 12 -- pa enroll --token "$(uri enr-d)" --request "$req"
grep -q "may have been placed" "$ERR" || fail "lost answer not explained: $(cat "$ERR")"
job_d=$(pa status --json | python3 -c 'import json,sys; print([j["id"] for j in json.load(sys.stdin)["jobs"] if j["state"]=="ordering"][0])')
expect_exit 0 -- pa resume "$job_d" --pin-source "$pin"
[[ $(orders_for_job "$job_d") -eq 1 ]] || fail "lost answer: $(orders_for_job "$job_d") orders"
pass "order answer lost: exit 12 says so; resume finds the order, exactly one order"

softhsm_add_token "$tokdir" enr-e >/dev/null
cc_fault POST /services/v2/order/certificate/ drop 1 >/dev/null
expect_exit 12 -- pa enroll --token "$(uri enr-e)" --request "$req"
job_e=$(pa status --json | python3 -c 'import json,sys; print([j["id"] for j in json.load(sys.stdin)["jobs"] if j["state"]=="ordering"][0])')
expect_exit 0 -- pa resume "$job_e" --pin-source "$pin"
[[ $(orders_for_job "$job_e") -eq 1 ]] || fail "dropped POST: $(orders_for_job "$job_e") orders"
pass "connection dropped before the order was taken: resume looks, finds none, orders once"

softhsm_add_token "$tokdir" enr-f >/dev/null
cc_sandbox_post /__sandbox/behavior '{"behavior":"reject"}' >/dev/null
expect_exit 10 -- pa enroll --token "$(uri enr-f)" --request "$req"
grep -q "rejected" "$ERR" || fail "rejection not reported: $(cat "$ERR")"
pass "rejected order: exit 10, job failed with the reason"

softhsm_add_token "$tokdir" enr-g >/dev/null
cc_sandbox_post /__sandbox/behavior '{"behavior":"never"}' >/dev/null
expect_exit 13 -- pa enroll --token "$(uri enr-g)" --request "$req" --no-wait
job_g=$(python3 -c 'import sys,re; print(re.search(r"job ([0-9a-f]{32})", open(sys.argv[1]).read()).group(1))' "$OUT")
expect_exit 0 -- pa cancel "$job_g" --pin-source "$pin"
[[ $(job_field "$job_g" state) == canceled ]] || fail "job not canceled"
[[ $(cc_state "[o['status'] for o in s['orders'] if o['id']==$(job_field "$job_g" order_id)][0]") == canceled ]] ||
    fail "order not canceled at CertCentral"
[[ $(token_count enr-g privkey) -eq 0 && $(token_count enr-g pubkey) -eq 0 ]] || fail "cancel left the key on the token"
pass "never issued: --no-wait exits 13; cancel cancels the order and removes the key"

# --- a token pulled mid-enrollment, then put back --------------------------------------------------
serial_h=$(softhsm_add_token "$tokdir" enr-h)
cc_sandbox_post /__sandbox/behavior '{"behavior":"issue","issue_after_polls":1}' >/dev/null
expect_exit 13 -- pa enroll --token "$(uri enr-h)" --request "$req" --no-wait
job_h=$(python3 -c 'import sys,re; print(re.search(r"job ([0-9a-f]{32})", open(sys.argv[1]).read()).group(1))' "$OUT")
tokfile=$(grep -l "enr-h" "$tokdir"/tokens/*/token.object | head -1)
tokpath=$(dirname "$tokfile")
mv "$tokpath" "$PKIO_ROOT/pulled"
expect_exit 5 -- pa resume "$job_h" --pin-source "$pin"
grep -q "enr-h" "$ERR" || fail "pulled token not named: $(cat "$ERR")"
[[ $(job_field "$job_h" state) != failed ]] || fail "a pulled token failed the job"
mv "$PKIO_ROOT/pulled" "$tokpath"
expect_exit 0 -- pa resume "$job_h" --pin-source "$pin"
token_cert_matches_key enr-h
pass "token pulled: resume says which token is missing, the job waits; back in: it completes"
: "$serial_h"

# --- interrupted inside key generation: half a pair, or ids set on one half only -----------------
# (SoftHSM2 completes each call, so the states a token in the middle of C_GenerateKeyPair or
# between the two C_SetAttributeValue calls would leave are made with pkcs11-tool after a kill
# at the after-keygen point.)
P() { pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin "$TOKEN_PIN" "$@"; }
softhsm_add_token "$tokdir" enr-half >/dev/null
PKIO_TEST_CRASH_AT=after-keygen expect_exit nonzero -- pa enroll --token "$(uri enr-half)" --request "$req"
hid=$(P --token-label enr-half -O --type privkey 2>/dev/null | awk '/ID:/ {print $2}')
P --token-label enr-half --delete-object --type privkey --id "$hid" >/dev/null 2>&1 || fail "cannot delete the private half"
expect_exit 0 -- pa resume --all --pin-source "$pin"
[[ $(token_count enr-half privkey) -eq 1 && $(token_count enr-half pubkey) -eq 1 ]] ||
    fail "half key pair left behind: $(P --token-label enr-half -O 2>/dev/null | grep -c Object) objects"
token_cert_matches_key enr-half
softhsm_add_token "$tokdir" enr-ids >/dev/null
PKIO_TEST_CRASH_AT=after-keygen expect_exit nonzero -- pa enroll --token "$(uri enr-ids)" --request "$req"
pid_=$(P --token-label enr-ids -O --type pubkey 2>/dev/null | awk '/ID:/ {print $2}')
P --token-label enr-ids --set-id 0102030405 --type pubkey --id "$pid_" >/dev/null 2>&1 ||
    fail "cannot change the public key's id"
expect_exit 0 -- pa resume --all --pin-source "$pin"
token_cert_matches_key enr-ids
pass "interrupted keygen: a lone public half is removed, a public half with another id is realigned"

# --- re-key: the old certificate is revoked only after the new one is on the new token -----------
softhsm_add_token "$tokdir" enr-new >/dev/null
cc_sandbox_post /__sandbox/behavior '{"behavior":"never"}' >/dev/null
expect_exit 13 -- pa enroll --token "$(uri enr-new)" --request "$req" --replaces "$cert_a" --no-wait
job_n=$(python3 -c 'import sys,re; print(re.search(r"job ([0-9a-f]{32})", open(sys.argv[1]).read()).group(1))' "$OUT")
[[ $(cc_state "len(s['revocations'])") -eq 0 ]] || fail "old certificate revoked before the new one was issued"
cc_sandbox_post /__sandbox/behavior '{"behavior":"issue","issue_after_polls":0}' >/dev/null
expect_exit 0 -- pa resume "$job_n" --pin-source "$pin"
[[ $(cc_state "len(s['revocations'])") -eq 1 ]] || fail "old certificate not revoked"
cc_state "s['revocations']" | grep -q "$cert_a" || fail "revoked the wrong certificate: $(cc_state "s['revocations']")"
[[ $(job_field "$job_n" revoke_status) == pending ]] || fail "new job does not record the (pending) revocation: $(job_field "$job_n" revoke_status)"
pa status "$job_a" | grep -q "replaced by job $job_n" || fail "old job does not record the link"
expect_exit 0 -- pa audit verify
pass "re-key: revoke (superseded) only after install; both jobs record the link; audit intact"
