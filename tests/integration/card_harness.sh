#!/usr/bin/env bash
# card_harness.sh - proves tests/lib/cardsim.sh with pkcs11-tool only (no pkio-agent): a private
# pcscd with a vpcd reader in its own network namespace, an IsoApplet card that OpenSC's
# opensc-pkcs11.so lists, logs in to, generates RSA-2048 and EC P-256 key pairs on and stores a
# certificate object on; then the card swapped for a PivApplet card, which OpenSC lists as PIV.
# Skips (77) without ../shared/cardsim.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/cardsim.sh"
require_cmd openssl pkcs11-tool ss

cardsim_setup isoapplet
W=$(pkio_tmpdir)
P() { cardsim_p11 "$@"; }
PL() { cardsim_p11 --login --pin "$CARD_PIN" "$@"; }

# --- IsoApplet: listed, login ---------------------------------------------------------------------
P -L >"$W/slots" 2>&1 || fail "pkcs11-tool -L failed: $(cat "$W/slots")"
grep -q "token label *: JavaCard isoApplet (User PIN)" "$W/slots" || fail "no IsoApplet token: $(cat "$W/slots")"
[[ $CARD_LABEL == "JavaCard isoApplet (User PIN)" && $CARD_SERIAL == 0000 ]] ||
    fail "CARD_LABEL/CARD_SERIAL: '$CARD_LABEL' '$CARD_SERIAL'"
grep -q "token flags *: login required, rng, token initialized, PIN initialized" "$W/slots" ||
    fail "IsoApplet token flags: $(cat "$W/slots")"
[[ $(stat -c %a "$CARD_PIN_FILE") == 600 && $(cat "$CARD_PIN_FILE") == "$CARD_PIN" ]] ||
    fail "CARD_PIN_FILE is not a 0600 file holding the PIN"
pass "IsoApplet token '$CARD_LABEL' serial $CARD_SERIAL listed through $CARD_MODULE"

expect_exit nonzero -- P --login --pin 87654321 -O
grep -q CKR_PIN_INCORRECT "$ERR" "$OUT" || fail "wrong PIN not refused with CKR_PIN_INCORRECT: $(cat "$ERR")"
expect_exit 0 -- PL -O
pass "login: a wrong PIN is refused (CKR_PIN_INCORRECT), the card's PIN is accepted"

# The vpcd port and jcardsim's reloader port live in pcscd's network namespace only.
if ss -ltnH "( sport = :$CARD_PORT or sport = :8099 )" | grep -q .; then
    fail "something listens on the machine's port $CARD_PORT or 8099: $(ss -ltnp)"
fi
pass "nothing of the card listens on the machine's interfaces (vpcd port $CARD_PORT, 8099)"

# --- on-card key generation ----------------------------------------------------------------------
t0=$SECONDS
expect_exit 0 -- PL --keypairgen --key-type rsa:2048 --id 01 --label harness-rsa
expect_exit 0 -- PL --keypairgen --key-type EC:prime256v1 --id 02 --label harness-ec
PL -O --type privkey >"$W/priv" 2>&1 || fail "listing private keys failed"
if ! grep -q "label: *harness-rsa" "$W/priv" || ! grep -q "label: *harness-ec" "$W/priv"; then
    fail "generated keys not listed: $(cat "$W/priv")"
fi
P --read-object --type pubkey --id 01 -o "$W/rsa.der" >/dev/null 2>&1 || fail "cannot read the RSA public key"
openssl pkey -pubin -inform DER -in "$W/rsa.der" -noout -text | grep -q "Public-Key: (2048 bit)" ||
    fail "the card's RSA public key is not 2048 bits"
P --read-object --type pubkey --id 02 -o "$W/ec.der" >/dev/null 2>&1 || fail "cannot read the EC public key"
openssl pkey -pubin -inform DER -in "$W/ec.der" -noout -text | grep -q "prime256v1" ||
    fail "the card's EC public key is not on P-256"
pass "RSA-2048 and EC P-256 key pairs generated on the card ($((SECONDS - t0)) s for both)"

# --- a certificate object for the RSA key -------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/ca.key" -subj "/CN=harness CA" -days 2 \
    -out "$W/ca.pem" 2>/dev/null || fail "test CA"
openssl pkey -pubin -inform DER -in "$W/rsa.der" -out "$W/rsa.pub.pem" || fail "public key to PEM"
openssl req -new -key "$W/ca.key" -subj "/CN=harness card holder" 2>/dev/null |
    openssl x509 -req -CA "$W/ca.pem" -CAkey "$W/ca.key" -force_pubkey "$W/rsa.pub.pem" -days 2 \
        -outform DER -out "$W/leaf.der" 2>/dev/null || fail "test certificate"
expect_exit 0 -- PL --write-object "$W/leaf.der" --type cert --id 01 --label harness-cert
P --read-object --type cert --id 01 -o "$W/back.der" >/dev/null 2>&1 || fail "cannot read the certificate back"
cmp -s "$W/leaf.der" "$W/back.der" || fail "the certificate read back differs from the one written"
pass "certificate object written under the RSA key's ID and read back unchanged"

# --- PivApplet ----------------------------------------------------------------------------------
cardsim_swap pivapplet
P -L >"$W/slots-piv" 2>&1 || fail "pkcs11-tool -L failed: $(cat "$W/slots-piv")"
grep -q "token label *: PIV_II" "$W/slots-piv" || fail "no PIV token: $(cat "$W/slots-piv")"
grep -q "token model *: PKCS#15 emulated" "$W/slots-piv" || fail "PIV token model: $(cat "$W/slots-piv")"
[[ $CARD_LABEL == PIV_II && $CARD_PIN == 123456 && $(cat "$CARD_PIN_FILE") == 123456 ]] ||
    fail "CARD_* not updated for the PIV card: '$CARD_LABEL' '$CARD_PIN'"
grep -q "harness-" <(P -O 2>&1) && fail "objects of the removed IsoApplet card still listed"
expect_exit 0 -- P --login --pin "$CARD_PIN" -O
pass "card swapped: PivApplet token '$CARD_LABEL' serial $CARD_SERIAL listed, its PIN accepted"
