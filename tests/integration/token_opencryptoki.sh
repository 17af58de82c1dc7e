#!/usr/bin/env bash
# pkio-agent on IBM opencryptoki's soft token (a third token stack, started by the test itself:
# pkcsslotd in private namespaces, see tests/lib/opencryptoki.sh): tokens, RSA keygen with
# custody, CSRs checked by openssl (PSS signed with CKM_RSA_PKCS_PSS, seen through pkcs11-spy),
# a clear refusal of EC keys (the 3.8.1 soft token has no EC mechanism at all), the whole enroll
# against the sandbox with the certificate read back by pkcs11-tool, and the software-token
# policy recognising this token.
source "$PKIO_SRC/tests/lib/opencryptoki.sh"
ock_enter_ns "$@"
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/spy.sh"
source "$PKIO_SRC/tests/integration/token_flow.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl pkcs11-tool python3 curl readelf

ock_setup "$(pkio_tmpdir)"

# --- the harness: an ASan build always runs with the LD_PRELOAD wrapper -------------------------
# Without it every agent run spends tens of seconds to minutes in LeakSanitizer's exit check
# (see _ock_asan_agent) and the test times out. The detection must not depend on timing: a slow
# ldd (the libasan line, then the rest after a pause, as ld.so writes it line by line under
# load) must still be recognised.
fake=$(pkio_tmpdir)
cat >"$fake/ldd" <<'EOF'
#!/bin/sh
printf '\tlinux-vdso.so.1 (0x00007ffc00000000)\n'
printf '\tlibasan.so.8 => /lib/x86_64-linux-gnu/libasan.so.8 (0x00007f0000000000)\n'
sleep 0.5
i=0
while [ $i -lt 40 ]; do
    printf '\tlibslow%d.so => /lib/libslow%d.so (0x00007f0000000000)\n' $i $i
    i=$((i + 1))
done
EOF
chmod 0755 "$fake/ldd"
(
    PATH=$fake:$PATH PKIO_ROOT=$fake PKIO_AGENT=/bin/true
    unset PKIO_AGENT_REAL
    _ock_asan_agent 2>/dev/null
    [[ ${PKIO_AGENT_REAL:-} == /bin/true && $PKIO_AGENT == "$fake/pkio-agent-ock" ]]
) || fail "_ock_asan_agent missed libasan in a slowly written ldd output (a pipe that grep -q" \
    "left early): an ASan build would run without the LD_PRELOAD wrapper"
real=${PKIO_AGENT_REAL:-$PKIO_AGENT}
needed=$(readelf -d "$real") || fail "readelf -d $real failed"
if [[ $needed == *"Shared library: [libasan.so"* ]]; then
    [[ -n ${PKIO_AGENT_REAL:-} && $PKIO_AGENT == "$PKIO_ROOT/pkio-agent-ock" ]] ||
        fail "ASan build of $real but PKIO_AGENT=$PKIO_AGENT is not the LD_PRELOAD wrapper"
    pass "ASan build: pkio-agent runs through the LD_PRELOAD wrapper (slow ldd output recognised too)"
else
    pass "normal build: no wrapper; the ASan detection recognises a slowly written ldd output"
fi

p11() { pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" "$@"; }
p11_login() { p11 --login --pin "$(cat "$TOKEN_PIN_FILE")" "$@"; }
nobjects() { p11_login -O 2>/dev/null | grep -c "Object;" || true; }

# --- tokens ------------------------------------------------------------------------------------
expect_exit 0 -- agent tokens --json
python3 - "$OUT" "$TOKEN_SERIAL" "$TOKEN_LABEL" <<'PY' || fail "tokens --json does not list the opencryptoki token: $(cat "$OUT")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == 1
t = [t for t in d["tokens"] if t["serial"] == sys.argv[2]]
assert len(t) == 1 and t[0]["label"] == sys.argv[3], d
f = t[0]["flags"]
assert f["token_initialized"] and f["user_pin_initialized"] and f["login_required"], f
assert not f["user_pin_locked"] and not f["user_pin_to_be_changed"], f
assert t[0]["manufacturer"] == "IBM Corp." and t[0]["model"] == "IBM SoftTok", t[0]
PY
expect_exit 0 -- agent tokens
grep -q "$TOKEN_LABEL" "$OUT" && grep -qF "$TOKEN_URI" "$OUT" || fail "tokens does not show the token: $(cat "$OUT")"
pass "tokens lists the opencryptoki soft token (IBM SoftTok, serial $TOKEN_SERIAL)"

# --- RSA-2048 keygen and CSRs ------------------------------------------------------------------
token_keygen rsa:2048 ock-rsa
rsa_uri=$KEY_URI rsa_id=$KEY_ID
token_csr "$rsa_uri" "$PKIO_ROOT/pkcs1.csr"
openssl req -in "$PKIO_ROOT/pkcs1.csr" -noout -text | grep -q "Signature Algorithm: sha256WithRSAEncryption" ||
    fail "default CSR is not sha256WithRSAEncryption"
pass "PKCS#1 v1.5/SHA-256 CSR verifies (openssl req -verify) and carries the token key"

spy_wrap "$OCK_MODULE" "$PKIO_ROOT/spy.log"
expect_exit 0 -- "$PKIO_AGENT" --module "$SPY_MODULE" csr --key "$rsa_uri?pin-source=$TOKEN_PIN_FILE" \
    --subject "/CN=Jan de Vries/C=NL" --pss -o "$PKIO_ROOT/pss.csr"
openssl req -in "$PKIO_ROOT/pss.csr" -noout -verify 2>&1 | grep -q "verify OK" || fail "PSS CSR does not verify"
openssl req -in "$PKIO_ROOT/pss.csr" -noout -text | grep -q "Signature Algorithm: rsassaPss" ||
    fail "--pss CSR is not RSASSA-PSS"
spy_mechanisms "$PKIO_ROOT/spy.log" C_SignInit | grep -qx CKM_RSA_PKCS_PSS ||
    fail "PSS CSR not signed with CKM_RSA_PKCS_PSS: $(spy_mechanisms "$PKIO_ROOT/spy.log" C_SignInit)"
[[ $(spy_count "$PKIO_ROOT/spy.log" C_Login) -eq 1 ]] || fail "expected exactly one C_Login"
pass "RSASSA-PSS CSR verifies, signed on the token with CKM_RSA_PKCS_PSS, one C_Login"

# --- EC: the 3.8.1 soft token has no EC mechanism; refused before anything is generated --------
before=$(nobjects)
: >"$PKIO_ROOT/spy.log"
expect_exit 8 -- "$PKIO_AGENT" --module "$SPY_MODULE" keygen \
    --token "$TOKEN_URI?pin-source=$TOKEN_PIN_FILE" --key-type ec:p256 --label ock-ec
grep -q "cannot generate ec:p256 keys" "$ERR" && grep -q "$TOKEN_LABEL" "$ERR" ||
    fail "the EC refusal does not say what is missing: $(cat "$ERR")"
# (pkcs11-spy prints "Returned:" on the "[in] type" line when the call fails, so spy_returns
# misses it: read the call's block instead.)
awk '/^[0-9]+: C_/ { cur = $2 } cur == "C_GetMechanismInfo" { print }' "$PKIO_ROOT/spy.log" |
    grep -q "type = CKM_EC_KEY_PAIR_GEN .*CKR_MECHANISM_INVALID" ||
    fail "expected C_GetMechanismInfo(CKM_EC_KEY_PAIR_GEN) = CKR_MECHANISM_INVALID in the spy log"
[[ $(spy_count "$PKIO_ROOT/spy.log" C_GenerateKeyPair) -eq 0 ]] || fail "C_GenerateKeyPair was called for EC"
[[ $(nobjects) -eq $before ]] || fail "the refused EC keygen left objects on the token"
pass "ec:p256 refused with exit 8 ($(head -n1 "$ERR")); no C_GenerateKeyPair, token unchanged"
unset PKCS11SPY PKCS11SPY_OUTPUT

# delete-key, so that the token is blank again for enroll (an unbound request wants a blank token).
expect_exit 0 -- agent delete-key --key "$rsa_uri?pin-source=$TOKEN_PIN_FILE"
p11_login -O >"$PKIO_ROOT/after.txt" 2>&1
grep -qi "ID:[[:space:]]*$rsa_id" "$PKIO_ROOT/after.txt" && fail "key $rsa_id still on the token"
[[ $(nobjects) -eq 0 ]] || fail "objects left after delete-key: $(cat "$PKIO_ROOT/after.txt")"
pass "delete-key removes the key pair"

# --- enroll RSA-2048 against the sandbox -------------------------------------------------------
enroll_setup "$OCK_MODULE"
req=$PKIO_SRC/tests/data/requests/valid-prof.json
t0=${EPOCHREALTIME/./}
expect_exit 0 -- pa enroll --token "$TOKEN_URI?pin-source=$TOKEN_PIN_FILE" --request "$req" \
    --key-type rsa:2048 --json
enroll_ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
job=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="done", d; print(d["job"])' "$OUT") ||
    fail "enroll did not finish: $(cat "$OUT")"
[[ $(cc_state "s['orders_per_key'].get('$(job_field "$job" spki_sha256)', 0)") -eq 1 ]] || fail "not one order"
id=$(job_field "$job" key_id_hex)
[[ $id =~ ^[0-9a-f]{40}$ ]] || fail "odd key id '$id'"
p11 --read-object --type cert --id "$id" -o "$PKIO_ROOT/leaf.der" >/dev/null 2>&1 ||
    fail "no certificate under the key's ID $id"
p11 --read-object --type pubkey --id "$id" -o "$PKIO_ROOT/pub.der" >/dev/null 2>&1 ||
    fail "no public key under the key's ID $id"
openssl x509 -inform DER -in "$PKIO_ROOT/leaf.der" -noout -subject | grep -q "Johanna Maria de Vries" ||
    fail "wrong certificate on the token"
cmp -s <(openssl x509 -inform DER -in "$PKIO_ROOT/leaf.der" -noout -pubkey | openssl pkey -pubin -outform DER) \
    <(openssl pkey -pubin -inform DER -in "$PKIO_ROOT/pub.der" -outform DER) ||
    fail "the certificate on the token does not carry the token key"
[[ $(token_count "$TOKEN_LABEL" privkey) -eq 1 && $(token_count "$TOKEN_LABEL" cert) -eq 2 ]] ||
    fail "expected 1 key and 2 certificates (leaf + CA): $(p11_login -O 2>&1)"
p11_login -O --type privkey --id "$id" 2>/dev/null |
    grep -q "sensitive, always sensitive, never extractable, local" || fail "enrolled key custody per pkcs11-tool"
expect_exit 0 -- pa audit verify
pass "enroll rsa:2048 in ${enroll_ms} ms: one order, leaf (read by pkcs11-tool) under the key's ID carries the token key, CA stored, audit intact"

# --- the software-token policy knows this token ------------------------------------------------
# opencryptoki 3.8.1 reports manufacturer "IBM Corp." and model "IBM SoftTok" for its soft token.
# A fresh state directory: the job above is matched by token serial and label, and every
# opencryptoki soft token has the serial "123", so the blank token would otherwise be taken for
# the one already enrolled ("already done ... nothing ordered").
strict=$PKIO_ROOT/strict.json
python3 - "$CFG" "$strict" "$(pkio_tmpdir)/state" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["token"].pop("allow_software", None); c["state_dir"] = sys.argv[3]
json.dump(c, open(sys.argv[2], "w"))
EOF
ock_reset_token
orders=$(cc_state "len(s['orders'])")
rc=0
"$PKIO_AGENT" --config "$strict" enroll --token "$TOKEN_URI?pin-source=$TOKEN_PIN_FILE" \
    --request "$req" --key-type rsa:2048 >"$PKIO_ROOT/strict.out" 2>"$PKIO_ROOT/strict.err" || rc=$?
[[ $rc -eq 16 ]] ||
    fail "enroll without token.allow_software exited $rc, not 16 (refused by the token policy):" \
        "the software-token policy does not recognise opencryptoki's soft token, whose" \
        "CK_TOKEN_INFO says manufacturer 'IBM Corp.', model 'IBM SoftTok' on Debian 12 (3.8.1)." \
        "stdout: $(cat "$PKIO_ROOT/strict.out") stderr: $(cat "$PKIO_ROOT/strict.err")"
grep -q "opencryptoki" "$PKIO_ROOT/strict.err" && grep -q "allow_software" "$PKIO_ROOT/strict.err" ||
    fail "the software-token refusal does not name opencryptoki: $(cat "$PKIO_ROOT/strict.err")"
[[ $(token_count "$TOKEN_LABEL" privkey) -eq 0 && $(cc_state "len(s['orders'])") -eq $orders ]] ||
    fail "a refused token got a key or an order"
pass "without token.allow_software, enroll refuses the opencryptoki soft token; nothing generated or ordered"
