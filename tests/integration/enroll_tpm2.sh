#!/usr/bin/env bash
# enroll on tpm2-pkcs11 (swtpm + tpm2-abrmd) against the sandbox: the whole flow on the
# stricter token, the certificate under the key's ID, one order, audit intact.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/tpm2.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool

tpm2_setup "$(pkio_tmpdir)"
enroll_setup "$TPM2_MODULE"
for type in rsa:2048 ec:p256; do
    expect_exit 0 -- pa enroll --token "$TOKEN_URI?pin-source=$TOKEN_PIN_FILE" \
        --request "$PKIO_SRC/tests/data/requests/valid-prof.json" --key-type "$type" --json
    job=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="done", d; print(d["job"])' "$OUT")
    [[ $(cc_state "s['orders_per_key'].get('$(job_field "$job" spki_sha256)', 0)") -eq 1 ]] || fail "$type: not one order"
    id=$(job_field "$job" key_id_hex)
    pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" --read-object --type cert \
        --id "$id" -o "$PKIO_ROOT/c.der" >/dev/null 2>&1 || fail "$type: no certificate under the key's ID"
    openssl x509 -inform DER -in "$PKIO_ROOT/c.der" -noout -subject | grep -q "Johanna Maria de Vries" ||
        fail "$type: wrong certificate"
    pass "tpm2-pkcs11 $type: enrolled, certificate under the key's ID, one order"
done
expect_exit 0 -- pa audit verify
pass "audit intact"
