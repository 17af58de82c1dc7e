#!/usr/bin/env bash
# The CertCentral commands end to end: a key on a real SoftHSM2 token, its CSR, validate, order
# at the sandbox, order-status, download, and install the issued chain back on the token.
# Also: invalid requests never reach the network, a refused API key costs one request, a
# group-readable key file is refused, an untrusted TLS server gets nothing, and the API key
# appears in no output.
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
require_cmd openssl python3 curl

cc_start_sandbox
dir=$(pkio_tmpdir)
softhsm_setup "$dir"
key=$(cat "$CC_KEY_FILE")
cat >"$dir/config.json" <<JSON
{"api": {"url": "$CC_URL", "key_file": "$CC_KEY_FILE", "ca_bundle": "$SB/tls-ca.pem"},
 "token": {"module": "$SOFTHSM_MODULE", "allow_software": true},
 "trust": {"anchors": "$SB/root.pem"}}
JSON
agent() { "$PKIO_AGENT" --config "$dir/config.json" "$@"; }
req=$PKIO_SRC/tests/data/requests/valid-prof.json
api_requests() { echo $(($(cc_log_count GET /services/v2/) + $(cc_log_count POST /services/v2/) + $(cc_log_count PUT /services/v2/))); }

# --- validation happens before anything leaves the machine ------------------------------------
expect_exit 0 -- agent validate --request "$req"
expect_exit 4 -- agent validate --request "$PKIO_SRC/tests/data/requests/invalid-individual.json" --json
python3 - "$OUT" <<'PY' || fail "validate --json does not list the field paths"
import json, sys
d = json.load(open(sys.argv[1]))
paths = {e["path"] for e in d["errors"]}
assert not d["valid"] and "certificate.individual.email" in paths and "certificate.individual.telephone" in paths, d
PY
[[ $(wc -l <"$ERR") -eq 1 ]] || fail "validation errors are not one line: $(cat "$ERR")"
pass "validate: valid request accepted, invalid one refused with field paths (exit 4)"

# --- key and CSR on the token (config supplies the module) ------------------------------------
expect_exit 0 -- agent keygen --token "$TOKEN_URI?pin-source=$TOKEN_PIN_FILE" --label enrollee
key_uri=$(cat "$OUT")
expect_exit 0 -- agent csr --key "$key_uri?pin-source=$TOKEN_PIN_FILE" --request "$req" --pss -o "$dir/p.csr"

expect_exit 4 -- agent order --request "$PKIO_SRC/tests/data/requests/invalid-order.json" --csr "$dir/p.csr"
[[ $(api_requests) -eq 0 ]] || fail "an invalid order reached the sandbox"
pass "invalid order refused locally, no HTTP request"

# --- secrets: key file readable by others, wrong key --------------------------------------------
cp "$CC_KEY_FILE" "$dir/key644" && chmod 644 "$dir/key644"
sed "s|$CC_KEY_FILE|$dir/key644|" "$dir/config.json" >"$dir/config644.json"
expect_exit 3 -- "$PKIO_AGENT" --config "$dir/config644.json" order-status 1
grep -q "chmod 600" "$ERR" || fail "no chmod hint: $(cat "$ERR")"
[[ $(api_requests) -eq 0 ]] || fail "a request was sent with a group-readable key file"
pass "API key file mode 0644 refused (exit 3), nothing sent"

write_secret_file "$dir/badkey" "not-the-key-0000"
sed "s|$CC_KEY_FILE|$dir/badkey|" "$dir/config.json" >"$dir/configbad.json"
expect_exit 11 -- "$PKIO_AGENT" --config "$dir/configbad.json" order-status 1
[[ $(api_requests) -eq 1 ]] || fail "a refused key cost $(api_requests) requests"
grep -q "Orders role" "$ERR" || fail "no hint about the key: $(cat "$ERR")"
pass "refused API key: exit 11 after exactly one request, with a hint"

# --- untrusted TLS: nothing is sent ------------------------------------------------------------
sed 's|"ca_bundle": "[^"]*"|"ca_bundle": "/etc/ssl/certs/ca-certificates.crt"|' "$dir/config.json" >"$dir/configtls.json"
before=$(api_requests)
expect_exit 12 -- "$PKIO_AGENT" --config "$dir/configtls.json" order-status 1
[[ $(api_requests) -eq $before ]] || fail "a request reached a server whose certificate is not trusted"
pass "untrusted server certificate: exit 12, no request reached the server"

# --- order, poll, download, install ------------------------------------------------------------
expect_exit 0 -- agent order --request "$req" --csr "$dir/p.csr" --json
order=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["order_id"])' "$OUT")
spki=$(openssl req -in "$dir/p.csr" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
[[ $(cc_state "s['orders_per_key'].get('$spki', 0)") -eq 1 ]] || fail "sandbox does not count one order for the key"
expect_exit 13 -- agent order-status "$order"
grep -q pending "$OUT" || fail "first poll is not pending: $(cat "$OUT")"
expect_exit 0 -- agent order-status "$order" --json
cert=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="issued"; print(d["certificate_id"])' "$OUT")
expect_exit 0 -- agent download "$cert" -o "$dir/issued.pem"
openssl verify -CAfile "$SB/root.pem" -untrusted "$dir/issued.pem" "$dir/issued.pem" >/dev/null ||
    fail "downloaded chain does not verify to the sandbox root"
expect_exit 0 -- agent install --key "$key_uri?pin-source=$TOKEN_PIN_FILE" --cert "$dir/issued.pem" --trust "$SB/root.pem"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN_LABEL" -O --type cert 2>/dev/null |
    grep -q "label:      enrollee" || fail "issued certificate not on the token under the key's label"
pass "order -> pending -> issued -> download -> install: certificate on the token"

# --- the API key appears nowhere but in its file -------------------------------------------------
grep -rqF -- "$key" "$PKIO_ROOT"/*.log "$dir"/*.json "$dir"/*.pem 2>/dev/null && fail "API key found in a file"
grep -qF -- "$key" "$SB/requests.log" && fail "API key in the sandbox log"
for f in "$OUT" "$ERR"; do grep -qF -- "$key" "$f" && fail "API key in output"; done
pass "API key in no output, log or file but the key file"

# --- PKIO_AGENT_API_KEY leaves the environment before anything else runs ---------------------------
cc_fault GET /services/v2/order/certificate/ slow:3 1 >/dev/null
PKIO_AGENT_API_KEY=$key "$PKIO_AGENT" --config "$dir/config.json" order-status "$order" >/dev/null 2>&1 &
apid=$!
sleep 1
[[ -r /proc/$apid/environ ]] || fail "order-status ended before its environment could be read"
tr '\0' '\n' </proc/"$apid"/environ | grep -q '^PKIO_AGENT_API_KEY=' &&
    fail "PKIO_AGENT_API_KEY is still in the running process's environment"
grep -qaF -- "$key" /proc/"$apid"/environ && fail "the API key's bytes are still in /proc/PID/environ"
wait "$apid" || fail "order-status with the key from the environment failed"
pass "PKIO_AGENT_API_KEY is taken out of the environment (and wiped) before any module or child runs"

# --- proxy variables and SSLKEYLOGFILE are ignored unless api.proxy says so ------------------------
expect_exit 0 -- env https_proxy=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 all_proxy=http://127.0.0.1:9 \
    SSLKEYLOGFILE="$dir/keylog" "$PKIO_AGENT" --config "$dir/config.json" order-status "$order"
[[ ! -e $dir/keylog ]] || fail "SSLKEYLOGFILE was honoured: TLS secrets written to $dir/keylog"
python3 - "$dir/config.json" "$dir/proxy.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["api"]["proxy"] = "http://127.0.0.1:9"; json.dump(c, open(sys.argv[2], "w"))
PY
expect_exit 12 -- "$PKIO_AGENT" --config "$dir/proxy.json" order-status "$order"
pass "https_proxy and friends and SSLKEYLOGFILE are ignored; a configured api.proxy is used"
