#!/usr/bin/env bash
# Token layer on SoftHSM2 (a private token directory): tokens, keygen RSA/EC with custody,
# CSR PKCS#1 / PSS / ECDSA checked by openssl, certificate write-back read by pkcs11-tool, and
# that PSS is signed on the token with CKM_RSA_PKCS_PSS (seen through pkcs11-spy).
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/lib/spy.sh"
source "$PKIO_SRC/tests/integration/token_flow.sh"
require_cmd openssl pkcs11-tool python3

softhsm_setup "$(pkio_tmpdir)"
token_flow

for t in rsa:3072 ec:p384; do
    token_keygen "$t" "key-$t"
done

# PSS goes through the token's PSS mechanism, not raw RSA (many cards forbid raw RSA).
spy_wrap "$SOFTHSM_MODULE" "$PKIO_ROOT/spy.log"
token_keygen rsa:2048 spy-key
spy_uri=$KEY_URI
: >"$PKIO_ROOT/spy.log"
"$PKIO_AGENT" --module "$SPY_MODULE" csr --key "$spy_uri?pin-source=$TOKEN_PIN_FILE" \
    --subject "/CN=Spy Test" --pss -o "$PKIO_ROOT/spy.csr" || fail "csr through pkcs11-spy"
spy_mechanisms "$PKIO_ROOT/spy.log" C_SignInit | grep -qx "CKM_RSA_PKCS_PSS" ||
    fail "PSS CSR not signed with CKM_RSA_PKCS_PSS: $(spy_mechanisms "$PKIO_ROOT/spy.log" C_SignInit)"
if spy_mechanisms "$PKIO_ROOT/spy.log" C_SignInit | grep -qx "CKM_RSA_X_509"; then
    fail "PSS CSR used raw RSA"
fi
[[ $(spy_count "$PKIO_ROOT/spy.log" C_Login) -eq 1 ]] || fail "expected exactly one C_Login"
pass "RSASSA-PSS signed on the token with CKM_RSA_PKCS_PSS, one C_Login"
