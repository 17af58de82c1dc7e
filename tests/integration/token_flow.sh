# shellcheck shell=bash
# token_flow.sh - the token checks shared by the SoftHSM2 and the tpm2-pkcs11 tests. Source it
# after setting up a token (TOKEN_MODULE, TOKEN_URI, TOKEN_LABEL, TOKEN_SERIAL, TOKEN_PIN_FILE).
# Everything the agent produces is checked with independent tools: pkcs11-tool and openssl.

agent() { "$PKIO_AGENT" --module "$TOKEN_MODULE" "$@"; }

# The public key of a token key as PEM, read by pkcs11-tool (not by us).
token_pubkey_pem()
{
    local id=$1 out=$2
    pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" --read-object \
        --type pubkey --id "$id" -o "$out.der" >/dev/null 2>&1 || fail "pkcs11-tool cannot read public key $id"
    openssl pkey -pubin -inform DER -in "$out.der" -out "$out" 2>/dev/null ||
        fail "public key $id is not a valid SubjectPublicKeyInfo"
}

# keygen TYPE LABEL -> sets KEY_URI, KEY_ID; checks custody with pkcs11-tool.
token_keygen()
{
    local type=$1 label=$2
    expect_exit 0 -- agent keygen --token "$TOKEN_URI?pin-source=$TOKEN_PIN_FILE" \
        --key-type "$type" --label "$label" --json
    KEY_URI=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uri"])' "$OUT")
    KEY_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$OUT")
    [[ $KEY_URI == pkcs11:*"serial=$TOKEN_SERIAL"*";id="* ]] || fail "keygen URI lacks serial/id: $KEY_URI"
    [[ ${#KEY_ID} -eq 40 ]] || fail "CKA_ID is not a 20-byte hash: $KEY_ID"
    # Independent view of the custody attributes (needs login to see private objects).
    pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" --login \
        --pin "$(cat "$TOKEN_PIN_FILE")" -O --type privkey --id "$KEY_ID" >"$PKIO_ROOT/obj.txt" 2>&1 ||
        fail "pkcs11-tool cannot list the new private key: $(cat "$PKIO_ROOT/obj.txt")"
    grep -q "sensitive, always sensitive, never extractable, local" "$PKIO_ROOT/obj.txt" ||
        fail "$type key custody per pkcs11-tool: $(cat "$PKIO_ROOT/obj.txt")"
    pass "$type key generated on the token: sensitive, always sensitive, never extractable, local"
}

# csr KEY_URI OUTFILE [--pss]: CSR verified by openssl, carrying the token key.
token_csr()
{
    local uri=$1 out=$2
    shift 2
    expect_exit 0 -- agent csr --key "$uri?pin-source=$TOKEN_PIN_FILE" --subject "/CN=Jan de Vries/C=NL" "$@" -o "$out"
    openssl req -in "$out" -noout -verify >"$PKIO_ROOT/verify.txt" 2>&1 ||
        fail "openssl req -verify: $(cat "$PKIO_ROOT/verify.txt")"
    grep -q "verify OK" "$PKIO_ROOT/verify.txt" || fail "CSR does not verify"
    openssl req -in "$out" -noout -subject | grep -q "CN = Jan de Vries" || fail "CSR subject"
    token_pubkey_pem "$KEY_ID" "$PKIO_ROOT/tokenpub.pem"
    openssl req -in "$out" -noout -pubkey >"$PKIO_ROOT/csrpub.pem"
    cmp -s <(openssl pkey -pubin -in "$PKIO_ROOT/csrpub.pem" -outform DER) \
        <(openssl pkey -pubin -in "$PKIO_ROOT/tokenpub.pem" -outform DER) ||
        fail "the CSR's public key is not the token key"
}

# The whole token flow for one token.
token_flow()
{
    local ca=$PKIO_ROOT/ca

    expect_exit 0 -- agent tokens --json
    python3 - "$OUT" "$TOKEN_SERIAL" "$TOKEN_LABEL" <<'PY' || fail "tokens --json does not list the token"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == 1
t = [t for t in d["tokens"] if t["serial"] == sys.argv[2] and t["flags"]["token_initialized"]]
assert len(t) == 1 and t[0]["label"] == sys.argv[3], d
assert t[0]["flags"]["user_pin_initialized"] and not t[0]["flags"]["user_pin_locked"]
PY
    pass "tokens --json lists the token"

    token_keygen rsa:2048 rsa-key
    local rsa_uri=$KEY_URI rsa_id=$KEY_ID
    token_csr "$rsa_uri" "$PKIO_ROOT/pss.csr" --pss
    openssl req -in "$PKIO_ROOT/pss.csr" -noout -text >"$PKIO_ROOT/pss.txt"
    grep -q "Signature Algorithm: rsassaPss" "$PKIO_ROOT/pss.txt" || fail "--pss CSR is not RSASSA-PSS"
    grep -q "Hash Algorithm: sha256" "$PKIO_ROOT/pss.txt" || fail "PSS hash is not SHA-256"
    grep -q "Mask Algorithm: mgf1 with sha256" "$PKIO_ROOT/pss.txt" || fail "PSS MGF1 is not SHA-256"
    pass "RSASSA-PSS/SHA-256 CSR verifies and carries the token key"

    token_csr "$rsa_uri" "$PKIO_ROOT/pkcs1.csr"
    openssl req -in "$PKIO_ROOT/pkcs1.csr" -noout -text | grep -q "Signature Algorithm: sha256WithRSAEncryption" ||
        fail "default CSR is not sha256WithRSAEncryption"
    pass "PKCS#1 v1.5/SHA-256 CSR verifies and carries the token key"

    token_keygen ec:p256 ec-key
    token_csr "$KEY_URI" "$PKIO_ROOT/ec.csr"
    openssl req -in "$PKIO_ROOT/ec.csr" -noout -text | grep -q "Signature Algorithm: ecdsa-with-SHA256" ||
        fail "EC CSR is not ecdsa-with-SHA256"
    pass "ECDSA/SHA-256 CSR verifies and carries the token key"
    expect_exit 2 -- agent csr --key "$KEY_URI?pin-source=$TOKEN_PIN_FILE" --subject "/CN=x" --pss
    pass "--pss with an EC key is a usage error"

    # Certificate write-back: sign the PSS CSR with a scratch CA, install, read back.
    mkdir -p "$ca"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$ca/ca.key" -out "$ca/ca.pem" \
        -subj "/CN=pkio-agent test root" -days 2 2>/dev/null
    openssl x509 -req -in "$PKIO_ROOT/pss.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" \
        -set_serial 4242 -out "$ca/leaf.pem" -days 1 2>/dev/null
    cat "$ca/ca.pem" "$ca/leaf.pem" >"$ca/bundle.pem" # leaf deliberately not first
    expect_exit 0 -- agent install --key "$rsa_uri?pin-source=$TOKEN_PIN_FILE" --cert "$ca/bundle.pem" \
        --trust "$ca/ca.pem" --json
    grep -q '"leaf_written":true' "$OUT" || fail "install did not write the leaf: $(cat "$OUT")"
    pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" -O --type cert >"$PKIO_ROOT/certs.txt" 2>&1
    grep -A4 "label:      rsa-key" "$PKIO_ROOT/certs.txt" | grep -qi "ID:         $rsa_id" ||
        fail "leaf not stored under the key's CKA_ID and label: $(cat "$PKIO_ROOT/certs.txt")"
    grep -q "pkio-agent test root" "$PKIO_ROOT/certs.txt" || fail "CA certificate not stored"
    pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" --read-object --type cert \
        --id "$rsa_id" -o "$PKIO_ROOT/back.der" >/dev/null 2>&1 || fail "cannot read the leaf back"
    cmp -s "$PKIO_ROOT/back.der" <(openssl x509 -in "$ca/leaf.pem" -outform DER) ||
        fail "leaf read back differs from the issued one"
    pass "leaf stored under the key's CKA_ID and label, CA as its own object, read back identical"
    expect_exit 0 -- agent install --key "$rsa_uri?pin-source=$TOKEN_PIN_FILE" --cert "$ca/bundle.pem" --json
    grep -q '"leaf_written":false,"ca_written":0,"ca_present":1' "$OUT" || fail "second install wrote again: $(cat "$OUT")"
    [[ $(pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" -O --type cert 2>/dev/null | grep -c "Certificate Object") -eq 2 ]] ||
        fail "identical certificates were written twice"
    pass "an identical certificate is not written again"
    expect_exit 9 -- agent install --key "$KEY_URI?pin-source=$TOKEN_PIN_FILE" --cert "$ca/bundle.pem"
    pass "a certificate for another key is refused"

    # Deleting an abandoned key pair removes both halves and nothing else.
    expect_exit 0 -- agent delete-key --key "$KEY_URI?pin-source=$TOKEN_PIN_FILE"
    pkcs11-tool --module "$TOKEN_MODULE" --token-label "$TOKEN_LABEL" --login \
        --pin "$(cat "$TOKEN_PIN_FILE")" -O >"$PKIO_ROOT/after.txt" 2>&1
    grep -qi "ID:         $KEY_ID" "$PKIO_ROOT/after.txt" && fail "key $KEY_ID still on the token"
    grep -qi "ID:         $rsa_id" "$PKIO_ROOT/after.txt" || fail "delete-key removed another key"
    expect_exit 5 -- agent delete-key --key "$KEY_URI?pin-source=$TOKEN_PIN_FILE"
    pass "delete-key removes exactly that key pair; a second delete finds nothing"
}
