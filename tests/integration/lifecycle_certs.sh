#!/usr/bin/env bash
# After enrollment, against the sandbox on SoftHSM2 tokens:
#   expiring  two enrolled tokens; one order's valid_till forced near at CertCentral: exactly that
#             one is listed, with the right days and source, exit 17; the window, the configured
#             renew.warn_days, CertCentral unreachable (the certificate's own date, said so),
#             revoked (listed, not due) and expired (listed whatever the window) at CertCentral
#   certs     a token holding our key and certificate plus a foreign key and certificate: ours
#             with job and order and a chain that verifies, the others foreign; without login only
#             public objects (said so), with pin-source the private keys and live custody too;
#             every token when no --token is given
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool

tokdir=$(pkio_tmpdir)
softhsm_setup "$tokdir" lc-a
softhsm_add_token "$tokdir" lc-b >/dev/null
enroll_setup "$SOFTHSM_MODULE"
req=$PKIO_SRC/tests/data/requests/valid-prof.json
pin=$TOKEN_PIN_FILE
uri() { echo "pkcs11:token=$1?pin-source=$pin"; }
# py 'EXPR' [ARGS...]: evaluate a python3 expression on the JSON in $OUT (as d); non-empty output
# is printed, a false assertion fails the test with the JSON shown.
py()
{
    local expr=$1
    shift
    python3 - "$OUT" "$@" <<EOF || fail "check failed: $expr
$(cat "$OUT")"
import json, sys
d = json.load(open(sys.argv[1]))
a = sys.argv[2:]
$expr
EOF
}

# --- two enrollments ---------------------------------------------------------------------------
expect_exit 0 -- pa enroll --token "$(uri lc-a)" --request "$req" --json
job_a=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job"])' "$OUT")
expect_exit 0 -- pa enroll --token "$(uri lc-b)" --request "$req" --json
job_b=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job"])' "$OUT")
order_a=$(job_field "$job_a" order_id)
order_b=$(job_field "$job_b" order_id)
[[ -n $order_a && -n $order_b && $order_a != "$order_b" ]] || fail "orders: '$order_a' '$order_b'"
pass "two tokens enrolled: job $job_a (order $order_a), job $job_b (order $order_b)"

# --- expiring ------------------------------------------------------------------------------------
expect_exit 0 -- pa expiring --within 30 --json
py 'assert d["version"] == 1 and d["checked"] == 2 and d["due"] == 0 and d["certificates"] == [], d
assert d["within_days"] == 30 and d["certcentral"]["used"] is True, d'
expect_exit 0 -- pa expiring
grep -q "^0 of 2 certificates enrolled here listed" "$OUT" || fail "text summary: $(cat "$OUT")"
pass "expiring: nothing due within 30 days (default validity), exit 0"

till=$(date -u -d '+20 days' +%F)
cc_sandbox_post "/__sandbox/order/$order_a" "{\"valid_till\": \"$till\"}"
expect_exit 17 -- pa expiring --within 30 --json
py 'c = d["certificates"]
assert len(c) == 1 and d["due"] == 1 and d["checked"] == 2, c
r = c[0]
assert r["job"] == a[0] and r["order_id"] == int(a[1]), r
assert r["days_left"] == 20 and r["source"] == "certcentral" and r["valid_till"] == a[2], r
assert r["due"] and not r["expired"] and not r["revoked"] and r["replaced_by"] is None, r
assert r["certcentral_status"] == "issued" and r["not_after"].endswith("Z"), r
assert r["token_label"] == "lc-a" and r["expires"].startswith(a[2]), r' "$job_a" "$order_a" "$till"
grep -q "^pkio-agent: expiring: 1 certificate due for renewal (within 30 days)" "$ERR" || fail "no one-line report: $(cat "$ERR")"
expect_exit 17 -- pa expiring --within 30
grep -qE "^${job_a:0:12} +lc-a .* $till +20  certcentral +due" "$OUT" ||
    fail "text row for job a: $(cat "$OUT")"
grep -q "${job_b:0:12}" "$OUT" && fail "job b listed: $(cat "$OUT")"
expect_exit 0 -- pa expiring --within 19 --json
py 'assert d["certificates"] == [] and d["due"] == 0, d'
pass "expiring: the order forced to $till is listed alone, 20 days, from CertCentral, exit 17; not within 19 days"

# renew.warn_days is the default window.
cfg25=$PKIO_ROOT/warn25.json
python3 - "$CFG" "$cfg25" 25 <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["renew"] = {"warn_days": int(sys.argv[3])}; json.dump(c, open(sys.argv[2], "w"))
EOF
expect_exit 17 -- "$PKIO_AGENT" --config "$cfg25" expiring --json
py 'assert d["within_days"] == 25 and len(d["certificates"]) == 1, d'
python3 - "$CFG" "$PKIO_ROOT/warn15.json" 15 <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["renew"] = {"warn_days": int(sys.argv[3])}; json.dump(c, open(sys.argv[2], "w"))
EOF
expect_exit 0 -- "$PKIO_AGENT" --config "$PKIO_ROOT/warn15.json" expiring --json
py 'assert d["within_days"] == 15 and d["certificates"] == [], d'
expect_exit 2 -- pa expiring --within soon
pass "expiring: renew.warn_days (25: listed, 15: not) is the window without --within; a bad --within is a usage error"

# CertCentral unreachable: the certificates' own notAfter, and it says so.
down=$PKIO_ROOT/down.json
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$CFG" "$down" "$port" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["api"]["url"] = "https://127.0.0.1:%s/services/v2" % sys.argv[3]
json.dump(c, open(sys.argv[2], "w"))
EOF
expect_exit 17 -- "$PKIO_AGENT" --config "$down" expiring --within 400 --json
py 'c = d["certificates"]
assert len(c) == 2 and d["due"] == 2 and not d["certcentral"]["used"] and d["certcentral"]["note"], d
for r in c:
    assert r["source"] == "certificate" and r["valid_till"] is None and 360 <= r["days_left"] <= 366, r'
grep -q "warning: CertCentral" "$ERR" || fail "no warning about CertCentral: $(cat "$ERR")"
expect_exit 0 -- "$PKIO_AGENT" --config "$down" expiring --within 30 --json
py 'assert d["certificates"] == [], d'
pass "expiring: CertCentral unreachable: warned once, each certificate's own notAfter (source certificate)"

# Revoked at CertCentral: listed and flagged, not due. Expired: listed whatever the window.
cc_sandbox_post "/__sandbox/order/$order_b" "{\"status\": \"revoked\", \"valid_till\": \"$(date -u -d '+5 days' +%F)\"}"
expect_exit 17 -- pa expiring --within 30 --json
py 'c = {r["job"]: r for r in d["certificates"]}
assert len(c) == 2 and d["due"] == 1, d
assert c[a[1]]["revoked"] and not c[a[1]]["due"] and c[a[1]]["days_left"] == 5, c[a[1]]
assert c[a[1]]["certcentral_status"] == "revoked", c[a[1]]
assert c[a[0]]["due"], c[a[0]]' "$job_a" "$job_b"
cc_sandbox_post "/__sandbox/order/$order_a" '{"status": "expired", "valid_till": "2020-01-31"}'
expect_exit 17 -- pa expiring --within 0 --json
py 'c = {r["job"]: r for r in d["certificates"]}
r = c[a[0]]
assert r["expired"] and r["due"] and r["days_left"] < -2000 and r["valid_till"] == "2020-01-31", r
assert a[1] not in c, c' "$job_a" "$job_b"
expect_exit 17 -- pa expiring --within 0
grep -qE "^${job_a:0:12} .* EXPIRED" "$OUT" || fail "expired row: $(cat "$OUT")"
cc_sandbox_post "/__sandbox/order/$order_b" '{"status": "issued"}'
pass "expiring: revoked at CertCentral is listed but not due; an expired certificate is listed with --within 0"

# --- certs ---------------------------------------------------------------------------------------
# A foreign key pair and a foreign certificate (its own key) on token lc-a, made by other tools.
w=$(pkio_tmpdir)
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label lc-a --login --pin "$TOKEN_PIN" \
    --keypairgen --key-type rsa:2048 --id 0f0e --label foreign-key >"$w/kg.log" 2>&1 ||
    fail "pkcs11-tool --keypairgen: $(cat "$w/kg.log")"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$w/f.key" -subj "/CN=Foreign Person" \
    -days 30 -outform DER -out "$w/f.der" 2>"$w/req.log" || fail "openssl req: $(cat "$w/req.log")"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label lc-a --login --pin "$TOKEN_PIN" \
    --write-object "$w/f.der" --type cert --id 0a0b --label foreign-cert >"$w/wr.log" 2>&1 ||
    fail "pkcs11-tool --write-object: $(cat "$w/wr.log")"
key_a=$(job_field "$job_a" key_id_hex)
cert_a=$(job_field "$job_a" certificate_id)

expect_exit 0 -- pa certs --token "pkcs11:token=lc-a" --json
py 'assert d["version"] == 1 and len(d["tokens"]) == 1, d
t = d["tokens"][0]
assert t["token"]["label"] == "lc-a" and t["private_objects_visible"] is False, t
assert "private objects" in t["note"] and "not visible" in t["note"], t["note"]
keys = {k["id"]: k for k in t["keys"]}
assert set(keys) == {a[0].lower(), "0f0e"}, keys
ours, other = keys[a[0].lower()], keys["0f0e"]
assert ours["role"] == "key" and not ours["foreign"] and ours["job"] == a[1], ours
assert ours["order_id"] == int(a[2]) and ours["job_state"] == "done", ours
assert ours["public_key"] and not ours["private_key"], ours
assert ours["custody"]["source"] == "job" and ours["custody"]["ok"] is True, ours
assert ours["custody"]["evidence"].startswith("generated by this job"), ours
assert other["role"] == "foreign" and other["foreign"] and other["job"] is None, other
assert other["custody"]["source"] == "none" and other["label"] == "foreign-key", other
certs = t["certificates"]
assert len(certs) == 3, certs
leaf = [c for c in certs if c["role"] == "leaf"]
chain = [c for c in certs if c["role"] == "chain"]
alien = [c for c in certs if c["role"] == "foreign"]
assert len(leaf) == 1 and len(chain) == 1 and len(alien) == 1, certs
leaf, chain, alien = leaf[0], chain[0], alien[0]
assert leaf["job"] == a[1] and leaf["order_id"] == int(a[2]) and leaf["certificate_id"] == int(a[3]), leaf
assert leaf["chain_verifies"] is True and leaf["chain_error"] is None and not leaf["foreign"], leaf
assert leaf["id"] == a[0].lower() and not leaf["ca"] and leaf["revocation"] is None, leaf
assert chain["ca"] and chain["chain_verifies"] is True and chain["job"] == a[1] and not chain["foreign"], chain
assert alien["foreign"] and alien["job"] is None and alien["chain_verifies"] is False, alien
assert alien["subject"] == "CN=Foreign Person" and alien["id"] == "0a0b" and alien["chain_error"], alien
assert t["foreign"] == 2 and d["foreign"] == 2 and t["other_objects"] == [], t' \
    "$key_a" "$job_a" "$order_a" "$cert_a"
pass "certs without login: our key (custody from the job record) and leaf with job and order, chain verifies; the foreign key and certificate are foreign; private objects said to be invisible"

expect_exit 0 -- pa certs --token "$(uri lc-a)" --json
py 't = d["tokens"][0]
assert t["private_objects_visible"] is True, t
keys = {k["id"]: k for k in t["keys"]}
ours, other = keys[a[0].lower()], keys["0f0e"]
assert ours["private_key"] and ours["public_key"] and ours["custody"]["source"] == "job", ours
assert other["private_key"] and other["foreign"] and other["custody"]["source"] == "token", other
assert "value_readable=no" in other["custody"]["evidence"] and isinstance(other["custody"]["ok"], bool), other
assert t["foreign"] == 2, t' "$key_a"
pass "certs with pin-source: private keys visible, the foreign key's custody read live from the token"

expect_exit 0 -- pa certs --json
py 'toks = {t["token"]["label"]: t for t in d["tokens"]}
assert set(toks) == {"lc-a", "lc-b"}, toks.keys()
assert toks["lc-b"]["foreign"] == 0 and toks["lc-a"]["foreign"] == 2 and d["foreign"] == 2, d
b = toks["lc-b"]
assert [c["role"] for c in b["certificates"]].count("leaf") == 1 and b["keys"][0]["job"] == a[0], b
assert all(not t["private_objects_visible"] for t in toks.values()), d' "$job_b"
expect_exit 0 -- pa certs
grep -q "^token 'lc-a'" "$OUT" && grep -q "^token 'lc-b'" "$OUT" || fail "text: $(cat "$OUT")"
grep -q "FOREIGN (no job of this station)" "$OUT" || fail "text lacks FOREIGN: $(cat "$OUT")"
grep -q "2 objects no job of this station explains" "$OUT" || fail "text count: $(cat "$OUT")"
grep -q "chain: verifies to trust.anchors" "$OUT" || fail "text chain: $(cat "$OUT")"
expect_exit 5 -- pa certs --token "pkcs11:token=no-such-token"
pass "certs on every token (no login): lc-b has nothing foreign; text output; an unknown token is exit 5"

# Nothing was written: the token still holds exactly what it held.
[[ $(token_count lc-a privkey) -eq 2 && $(token_count lc-a cert) -eq 3 ]] || fail "certs changed token lc-a"
pass "certs and expiring wrote nothing to the tokens"
