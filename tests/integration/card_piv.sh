#!/usr/bin/env bash
# card_piv.sh - pkio-agent enroll on a simulated PIV card (PivApplet through OpenSC's PIV-II
# driver, what YubiKey-class tokens look like). OpenSC cannot generate keys on a PIV card through
# PKCS#11 (no *_KEY_PAIR_GEN mechanism; PIV keys are made with the card's management key by
# piv-tool / yubico-piv-tool), so enroll must refuse, before anything is generated, ordered or
# written, with one line that says so: it names PIV and key generation, and does not send the
# officer off to try another --key-type (none would work). See docs/cards-findings.md.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/cardsim.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool

cardsim_setup pivapplet
enroll_setup "$CARD_MODULE"
req=$PKIO_SRC/tests/data/requests/valid-prof.json
uri="$CARD_URI?pin-source=$CARD_PIN_FILE"
objects() { cardsim_p11 --login --pin "$CARD_PIN" -O 2>/dev/null | grep -c 'Object;' || true; }

before=$(objects)
for kt in rsa:2048 ec:p256; do
    rc=0
    pa enroll --token "$uri" --request "$req" --key-type "$kt" >"$PKIO_ROOT/out.$kt" \
        2>"$PKIO_ROOT/err.$kt" || rc=$?
    msg=$(cat "$PKIO_ROOT/err.$kt")
    [[ $rc -ne 0 && $rc -lt 128 ]] || fail "$kt: enroll on the PIV card exited $rc: $msg"
    [[ $(wc -l <"$PKIO_ROOT/err.$kt") -eq 1 && $msg == pkio-agent:* ]] ||
        fail "$kt: expected one 'pkio-agent: ...' line on stderr, got: $msg"
    # The token label is PIV_II: PIV must be named as what the card is, not only in its label.
    grep -qE '(^|[^_[:alnum:]])PIV([^_[:alnum:]]|$)' <<<"${msg//\'$CARD_LABEL\'/}" ||
        fail "$kt: the message does not say that this is a PIV card: $msg"
    grep -qiE 'generat' <<<"$msg" || fail "$kt: the message does not mention key generation: $msg"
    grep -qiE 'another (--)?key[- ]type' <<<"$msg" &&
        fail "$kt: the message suggests another key type, but no key type can be generated on PIV: $msg"
    pass "$kt: enroll refused with exit $rc: $msg"
done
[[ $(cc_state "len(s['orders'])") -eq 0 ]] || fail "an order was placed for a PIV card"
[[ $(objects) -eq $before ]] || fail "the refusal changed what the PIV card holds"
pa status --json | python3 -c '
import json, sys
jobs = json.load(sys.stdin)["jobs"]
bad = [j for j in jobs if j.get("order_id") or j["state"] not in ("failed", "canceled")]
assert not bad, bad' || fail "a job with money at stake or still open was left behind: $(pa status)"
pass "nothing ordered, nothing written to the card, no open job left"
