#!/bin/bash
# Self-test of the CertCentral sandbox: drives every endpoint, validation rule family, fault
# kind and the control API with curl + the openssl CLI. Private temp dir, port chosen at run
# time, sandbox stopped by PID in the trap. Safe to run in parallel with other tests.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d)
D=$T/sb
export OPENSSL_CONF=/dev/null
cleanup() { bash "$HERE/stop.sh" "$D"; rm -rf "$T"; }
trap cleanup EXIT
KEY=sandbox-0123456789abcdef
PROD=pkio_organisation_person_prof
N=0

fail() { echo "FAIL: $*" >&2; [ -f "$T/body" ] && head -c 2000 "$T/body" >&2 && echo >&2; exit 1; }
ok() { N=$((N + 1)); echo "ok $N - $*"; }

# call METHOD PATH [BODY|@FILE] [KEY] — sets CODE and RC; body in $T/body, headers in $T/hdr.
call() {
  local m=$1 p=$2 data=${3:-} key=${4-$KEY}
  local args=(-g -sS --cacert "$D/tls-ca.pem" -X "$m" -o "$T/body" -D "$T/hdr" -w '%{http_code}'
              -A "pkio-sandbox-selftest/1")
  [ -n "$key" ] && args+=(-H "X-DC-DEVKEY: $key")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  : >"$T/body"; : >"$T/hdr"
  set +e
  CODE=$(curl "${args[@]}" "$URL$p" 2>"$T/curlerr")
  RC=$?
  set -e
}
# expect STATUS — the last call answered STATUS
expect() { [ "$RC" = 0 ] || fail "curl rc=$RC: $(cat "$T/curlerr")"; [ "$CODE" = "$1" ] || fail "want HTTP $1, got $CODE"; }
# j EXPR — evaluate a Python expression over the last JSON body (bound to d)
j() { python3 -S -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$T/body" "$1"; }
state() { curl -sS --cacert "$D/tls-ca.pem" "$URL/__sandbox/state" >"$T/state.json"; python3 -S -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) else v)' "$T/state.json" "$1"; }
ctl() { curl -sS --fail --cacert "$D/tls-ca.pem" -X POST -H 'Content-Type: application/json' --data-binary "$2" "$URL/__sandbox/$1" >/dev/null; }
# mk NAME PYTHON — write $T/NAME.json: the base order body changed by PYTHON (body bound to b)
mk() { python3 -S -c 'import json,sys; b=json.load(open(sys.argv[1])); exec(sys.argv[2]); json.dump(b, open(sys.argv[3], "w"))' "$T/base.json" "$2" "$T/$1.json"; }
# bad NAME PYTHON CODE... — declare: that body is refused with 400 and exactly these codes
# (bodies are generated in one go by run_bad, which then posts them)
BAD_NAMES=(); BAD_ARGS=(); BAD_WANT=()
bad() {
  BAD_NAMES+=("$1"); BAD_ARGS+=("$1" "$2"); shift 2
  BAD_WANT+=("$(printf '%s\n' "$@" | LC_ALL=C sort)")
}
run_bad() {
  python3 -S -c 'import json,sys
t = sys.argv[1]; a = sys.argv[2:]
for name, py in zip(a[0::2], a[1::2]):
    b = json.load(open(t + "/base.json")); exec(py); json.dump(b, open("%s/%s.json" % (t, name), "w"))' "$T" "${BAD_ARGS[@]}"
  local i got
  for i in "${!BAD_NAMES[@]}"; do
    call POST "/services/v2/order/certificate/$PROD" "@$T/${BAD_NAMES[$i]}.json"
    expect 400
    got=$(grep -o '"code": "[^"]*"' "$T/body" | cut -d'"' -f4 | LC_ALL=C sort)
    [ "$got" = "${BAD_WANT[$i]}" ] || fail "${BAD_NAMES[$i]}: want ${BAD_WANT[$i]//$'\n'/ }, got ${got//$'\n'/ }"
    ok "validation: ${BAD_NAMES[$i]} -> ${BAD_WANT[$i]//$'\n'/ }"
  done
}

# ---------------------------------------------------------------- start + key material
BASE_URL=$(bash "$HERE/start.sh" "$D" --burst-limit 100 --burst-window 5 --api-key other-key-42 --api-key "$KEY")
URL=${BASE_URL%/services/v2}
[ -s "$D/root.pem" ] && [ -s "$D/intermediate.pem" ] && [ -s "$D/pid" ] || fail "files missing"
ok "started at $BASE_URL"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa.key" 2>/dev/null
openssl req -new -key "$T/rsa.key" -subj "/CN=ignored" -sha256 -out "$T/rsa.csr"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ec.key"
openssl req -new -key "$T/ec.key" -subj "/CN=ignored" -sha256 -out "$T/ec.csr"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$T/weak.key" 2>/dev/null
openssl req -new -key "$T/weak.key" -subj "/CN=ignored" -sha256 -out "$T/weak.csr"
openssl req -new -key "$T/rsa.key" -subj "/CN=ignored" -sha1 -out "$T/sha1.csr"
openssl req -new -key "$T/rsa.key" -subj "/CN=ignored" -sigopt rsa_padding_mode:pss -sha256 -out "$T/pss.csr"
python3 - "$T" <<'EOF'
import json, sys
t = sys.argv[1]
csr = open(t + "/rsa.csr").read()
body = {
    "certificate": {
        "signature_hash": "sha256", "profile_option": "authentication", "is_rsassa_pss": True,
        "individual": {"first_name": "Jörg", "last_name": "de Vries", "email": "j.devries@example.nl",
                       "telephone": "+31 20 254 7999", "country": "nl", "state": "Noord-Holland",
                       "city": "Amsterdam", "zip": "1013 AA", "professional_title": "Toegevoegd Notaris"},
        "csr": csr},
    "csa_agreed_to": True,
    "cs_provisioning_method": "token",
    "ship_info": {"name": "J. de Vries", "addr1": "Dam 1", "addr2": "", "city": "Amsterdam",
                  "state": "Noord-Holland", "zip": "1012 JS", "country": "NL", "method": "standard"},
    "order_validity": {"years": 1},
    "payment_method": "balance",
}
json.dump(body, open(t + "/base.json", "w"))
EOF

# ---------------------------------------------------------------- auth
call GET /services/v2/order/certificate "" ""
[ "$CODE" = 401 ] && [ "$(j 'd["errors"][0]["code"]')" = "access_denied|invalid_api_key" ] || fail "no key"
call GET /services/v2/order/certificate "" wrong-key
[ "$CODE" = 401 ] || fail "wrong key -> $CODE"
ok "401 without / with a wrong API key"
call GET /services/v2/nope
expect 404; [ "$(j 'd["errors"][0]["code"]')" = "not_found|route" ] || fail route
ok "404 not_found|route"

# ---------------------------------------------------------------- order, poll, download
call POST /services/v2/order/certificate/$PROD "@$T/base.json"
expect 201
grep -qi '^content-type: application/json' "$T/hdr" || fail "content-type"
OID=$(j 'd["id"]'); [ "$(j 'd["requests"][0]["status"]')" = pending ] || fail "201 body"
[ "$(j '"certificate_id" in d')" = false ] || fail "certificate_id while pending"
ok "order placed: id $OID (201 pending)"
call GET /services/v2/order/certificate/$OID
expect 200
[ "$(j 'd["status"]')" = pending ] || fail "first poll not pending"
[ "$(j 'd["certificate"]["csr"] == open("'"$T"'/rsa.csr").read()')" = true ] || fail "order info csr"
CID=$(j 'd["certificate"]["id"]')
call GET /services/v2/certificate/$CID/download/format/pem_all
expect 400; [ "$(j 'd["errors"][0]["code"]')" = cert_unavailable_for_download ] || fail "download pending"
call GET /services/v2/order/certificate/$OID
expect 200
[ "$(j 'd["status"]')" = issued ] && [ "$(j 'd["requests"][0]["status"]')" = approved ] || fail "second poll not issued"
[ "$(j 'd["product"]["name_id"]')" = $PROD ] && [ "$(j 'd["certificate"]["common_name"]')" = "Jörg de Vries" ] || fail "order info fields"
SERIAL=$(j 'd["certificate"]["serial_number"]')
ok "order info pending -> issued (cert $CID, serial $SERIAL)"

call GET /services/v2/certificate/$CID/download/format/pem_all
expect 200
grep -qi '^content-type: application/x-pem-file' "$T/hdr" || fail "pem content-type"
[ "$(grep -c 'BEGIN CERTIFICATE' "$T/body")" = 3 ] || fail "pem_all count"
openssl x509 -in "$T/body" -out "$T/leaf.pem"
openssl verify -CAfile "$D/root.pem" -untrusted "$D/intermediate.pem" "$T/leaf.pem" >/dev/null || fail "chain verify"
[ "$(openssl x509 -in "$T/leaf.pem" -noout -pubkey)" = "$(openssl req -in "$T/rsa.csr" -noout -pubkey)" ] || fail "leaf key != csr key"
openssl x509 -in "$T/leaf.pem" -noout -text | grep -q 'rsassaPss' || fail "not PSS-signed"
openssl x509 -in "$T/leaf.pem" -noout -subject -nameopt utf8,sep_comma_plus | grep -q 'CN=Jörg de Vries' || fail "subject CN"
ok "pem_all: leaf+intermediate+root, verifies to root.pem, leaf key = CSR key, RSASSA-PSS"
call GET /services/v2/certificate/$CID/download/format/pem_noroot
expect 200; [ "$(grep -c 'BEGIN CERTIFICATE' "$T/body")" = 2 ] || fail pem_noroot
call GET /services/v2/certificate/download/order/$OID/format/p7b
expect 200
grep -qi '^content-type: application/x-pkcs7-certificates' "$T/hdr" || fail "p7b type"
[ "$(openssl pkcs7 -in "$T/body" -print_certs | grep -c 'subject=')" = 3 ] || fail "p7b certs"
call GET /services/v2/certificate/download/order/999/format/pem_all
expect 404; [ "$(j 'd["errors"][0]["code"]')" = "not_found|order" ] || fail "download unknown order"
ok "pem_noroot, p7b by order id, 404 for unknown order"
call GET /services/v2/order/certificate/$SERIAL
expect 200; [ "$(j 'd["id"]')" = "$OID" ] || fail "order by serial"
call GET /services/v2/order/certificate/123
expect 404; [ "$(j 'd["errors"][0]["code"]')" = "not_found|order" ] || fail "unknown order"
ok "order info by serial number; 404 not_found|order"

# EC P-256 key, encryption profile, issued at once with issue_after_polls 0
ctl behavior '{"behavior":"issue","issue_after_polls":0}'
mk ec 'b["certificate"]["csr"]=open("'"$T"'/ec.csr").read(); b["certificate"]["profile_option"]="encryption"; b["certificate"]["is_rsassa_pss"]=False; b["provisioning_method"]=b.pop("cs_provisioning_method")'
call POST /services/v2/order/certificate/$PROD "@$T/ec.json"
expect 201
[ "$(j 'd["requests"][0]["status"]')" = approved ] && [ -n "$(j 'd["certificate_id"]')" ] || fail "immediate issue"
ECID=$(j 'd["certificate_id"]'); EOID=$(j 'd["id"]')
call GET /services/v2/certificate/$ECID/download/format/pem_nointermediate
expect 200
openssl x509 -in "$T/body" -noout -text | grep -q 'Key Agreement' || fail "ec encryption key usage"
ok "EC P-256 CSR, provisioning_method alias, issued at once (201 with certificate_id)"
ctl behavior '{"behavior":"issue","issue_after_polls":1}'

# ---------------------------------------------------------------- validation
bad sig_hash 'b["certificate"]["signature_hash"]="sha1"' "invalid_value|certificate.signature_hash"
bad no_email 'del b["certificate"]["individual"]["email"]' "missing_field|certificate.individual.email"
bad email_shape 'b["certificate"]["individual"]["email"]="nope@"' "invalid_value|certificate.individual.email"
bad telephone 'b["certificate"]["individual"]["telephone"]="020 254 7999"' "invalid_value|certificate.individual.telephone"
bad country 'b["certificate"]["individual"]["country"]="NLD"' "invalid_value|certificate.individual.country"
bad no_title 'del b["certificate"]["individual"]["professional_title"]' "missing_field|certificate.individual.professional_title"
bad csa 'b["csa_agreed_to"]=False' "invalid_value|csa_agreed_to"
bad no_csa 'del b["csa_agreed_to"]' "missing_field|csa_agreed_to"
bad profile 'b["certificate"]["profile_option"]="nonrepudiation"' "invalid_value|certificate.profile_option"
bad prov 'b["cs_provisioning_method"]="qscd"' "invalid_value|cs_provisioning_method"
bad no_prov 'del b["cs_provisioning_method"]' "missing_field|cs_provisioning_method"
bad unknown_top 'b["skip_approval"]=True' "unknown_field|skip_approval"
bad unknown_cert 'b["certificate"]["common_name"]="x"' "unknown_field|certificate.common_name"
bad ship_method 'b["ship_info"]["method"]="overnight"' "invalid_value|ship_info.method"
bad ship_zip 'del b["ship_info"]["zip"]' "missing_field|ship_info.zip"
bad years 'b["order_validity"]={"years":4}' "invalid_value|order_validity.years"
bad ced 'b["order_validity"]={"custom_expiration_date":"2099-01-01"}' "invalid_value|order_validity.custom_expiration_date"
bad pay 'b["payment_method"]="cash"' "invalid_value|payment_method"
bad card_missing 'b["payment_method"]="card"' "missing_field|credit_card" "missing_field|billing_address"
bad card_cvv 'b["payment_method"]="card"; b["credit_card"]={"number":"4111111111111111","expiration_month":"12","expiration_year":"2099","cvv":"12345","cardholder_name":"J de Vries","set_as_default":False}; b["billing_address"]={"address":"Dam 1","city":"Amsterdam","country":"NL"}' "invalid_value|credit_card.cvv"
bad ind_id_mix 'b["certificate"]["individual"]={"id":21,"email":"a@b.nl"}' "invalid_value|certificate.individual.email"
bad no_csr 'del b["certificate"]["csr"]' "missing_field|certificate.csr"
bad csr_garbage 'b["certificate"]["csr"]="-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"' "csr_invalid_cannot_parse"
bad csr_weak 'b["certificate"]["csr"]=open("'"$T"'/weak.csr").read()' "invalid_csr|key_size"
bad csr_sha1 'b["certificate"]["csr"]=open("'"$T"'/sha1.csr").read()' "invalid_csr|signature_hash"
run_bad
grep -q '4111111111111111' "$D/requests.log" && fail "card number in requests.log"
grep -q "$KEY" "$D/requests.log" && fail "full API key in requests.log"
ok "requests.log masks card data and the API key"
call POST /services/v2/order/certificate/pkio_nope "@$T/base.json"
expect 404; [ "$(j 'd["errors"][0]["code"]')" = "not_found|product" ] || fail "product"
call POST /services/v2/order/certificate/$PROD '{"certificate": '
expect 400; [ "$(j 'd["errors"][0]["code"]')" = bad_request_format ] || fail "bad json"
ok "404 not_found|product, 400 bad_request_format"
mk burger 'b["certificate"]["individual"].pop("professional_title"); b["certificate"]["csr"]=open("'"$T"'/pss.csr").read()'
call POST /services/v2/order/certificate/pkio_burger "@$T/burger.json"
expect 201
ok "pkio_burger without professional_title, RSASSA-PSS-signed CSR accepted"

# ---------------------------------------------------------------- behaviours, cancel, revoke
ctl behavior '{"behavior":"needs_approval","issue_after_polls":1}'
call POST /services/v2/order/certificate/$PROD "@$T/base.json"; expect 201; NA=$(j 'd["id"]')
call GET /services/v2/order/certificate/$NA; [ "$(j 'd["status"]')" = needs_approval ] || fail needs_approval
call GET /services/v2/order/certificate/$NA; [ "$(j 'd["status"]')" = issued ] || fail "needs_approval -> issued"
ok "needs_approval -> issued"
ctl behavior '{"behavior":"reject"}'
call POST /services/v2/order/certificate/$PROD "@$T/base.json"; expect 201; RJ=$(j 'd["id"]')
call GET /services/v2/order/certificate/$RJ; call GET /services/v2/order/certificate/$RJ
[ "$(j 'd["status"]')" = rejected ] || fail rejected
ok "reject -> rejected"
ctl behavior '{"behavior":"never"}'
call POST /services/v2/order/certificate/$PROD "@$T/base.json"; expect 201; NV=$(j 'd["id"]')
for _ in 1 2 3; do call GET /services/v2/order/certificate/$NV; done
[ "$(j 'd["status"]')" = pending ] || fail never
call PUT /services/v2/order/certificate/$NV/status '{"status":"canceled"}'
expect 400; [ "$(j 'd["errors"][0]["code"]')" = "missing_field|note" ] || fail "cancel without note"
call PUT /services/v2/order/certificate/$NV/status '{"status":"CANCELED","note":"test"}'
expect 204
call PUT /services/v2/order/certificate/$NV/status '{"status":"canceled","note":"again"}'
expect 400
call GET /services/v2/order/certificate/$NV; [ "$(j 'd["status"]')" = canceled ] || fail canceled
ok "never stays pending; cancel 204 (note required), second cancel 400"
ctl behavior '{"behavior":"issue","issue_after_polls":1}'

call PUT /services/v2/certificate/$CID/revoke '{"comments":"selftest","skip_approval":true,"revocation_reason":"superseded"}'
expect 204
call GET /services/v2/order/certificate/$OID; [ "$(j 'd["status"]')" = revoked ] || fail revoked
call PUT /services/v2/certificate/$CID/revoke '{"comments":"again","skip_approval":true}'
expect 400
call PUT /services/v2/order/certificate/$EOID/revoke '{"comments":"needs approval"}'
expect 201; RQ=$(j 'd["id"]'); [ "$(j 'd["type"]+"/"+d["status"]')" = revoke/pending ] || fail "revoke request"
call PUT /services/v2/request/$RQ/status '{"status":"approved","processor_comment":"ok"}'
expect 204
call GET /services/v2/order/certificate/$EOID; [ "$(j 'd["status"]')" = revoked ] || fail "approved revoke"
ok "revoke by certificate (204) and by order (201 request, approved -> revoked)"

# ---------------------------------------------------------------- list orders
call GET "/services/v2/order/certificate?filters[status]=issued&filters[product_name_id]=$PROD&filters[date_created]=>=2000-01-01&limit=10&offset=0"
expect 200
[ "$(j 'd["page"]["total"]')" = 1 ] && [ "$(j 'd["orders"][0]["id"]')" = "$NA" ] || fail "list filters"
[ "$(j 'd["orders"][0]["product"]["name_id"]')" = $PROD ] || fail "list product"
call GET "/services/v2/order/certificate?filters[date_created]=<2000-01-01"
expect 200; [ "$(j 'd["page"]["total"]')" = 0 ] || fail "date filter"
call GET "/services/v2/order/certificate?limit=2&offset=1"
expect 200; [ "$(j 'len(d["orders"])')" = 2 ] && [ "$(j 'd["page"]["total"]')" = 6 ] || fail "paging"
ok "list orders with status/product/date filters and paging"

# ---------------------------------------------------------------- faults
fault() { ctl faults "{\"faults\":[{\"method\":\"$1\",\"path_prefix\":\"$2\",\"kind\":\"$3\",\"count\":1}]}"; }
norders() { state 'len(d["orders"])'; }
O=/services/v2/order/certificate
fault POST "$O/" 429; call POST $O/$PROD "@$T/base.json"; expect 429
grep -qi '^retry-after' "$T/hdr" && fail "429 has Retry-After"
[ "$(j 'd["errors"][0]["code"]')" = request_limit_exceeded ] || fail "429 body"
fault GET "$O/" retry_after:7; call GET $O/$NA; expect 429
grep -qi '^retry-after: 7' "$T/hdr" || fail "Retry-After"
fault GET "$O/" status:503; call GET $O/$NA; expect 503
n0=$(norders); fault POST "$O/" drop; call POST $O/$PROD "@$T/base.json"
[ "$RC" != 0 ] && [ "$(norders)" = "$n0" ] || fail "drop (rc=$RC)"
fault POST "$O/" lost; call POST $O/$PROD "@$T/base.json"
[ "$RC" != 0 ] && [ "$(norders)" = $((n0 + 1)) ] || fail "lost (rc=$RC)"
fault GET "$O/" slow:1; call GET $O/$NA; expect 200
fault GET "$O/" garbage; call GET $O/$NA; expect 200
python3 -S -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/body" 2>/dev/null && fail "garbage is JSON"
fault GET "$O/" truncated; call GET $O/$NA; expect 200
python3 -S -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/body" 2>/dev/null && fail "truncated is JSON"
fault GET "$O/" html; call GET $O/$NA; expect 502; grep -qi '^content-type: text/html' "$T/hdr" || fail html
fault GET "$O/" wrong_type; call GET $O/$NA; expect 200
[ "$(j 'type(d["id"]).__name__')" = str ] || fail "wrong_type"
call GET $O/$NA; expect 200; [ "$(j 'type(d["id"]).__name__')" = int ] || fail "faults not consumed"
[ "$(state 'len(d["faults_fired"])')" = 10 ] || fail "faults_fired"
ok "faults: 429, retry_after, status, drop, lost, slow, garbage, truncated, html, wrong_type"

# ---------------------------------------------------------------- state
SPKI=$(openssl req -in "$T/rsa.csr" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
[ "$(state "d['orders_per_key']['$SPKI']")" = 6 ] || fail "orders_per_key $(state 'd["orders_per_key"]')"
[ "$(state 'len(d["cancellations"])')" = 1 ] && [ "$(state 'len(d["revocations"])')" = 2 ] || fail "state records"
[ "$(state 'd["rate_limit"]["exceeded"]')" = false ] || fail "rate limit flagged"
[ "$(state 'd["requests"]["by_endpoint"]["order_create"] > 25')" = true ] || fail "counts"
ok "state: orders_per_key, cancellations, revocations, request counts"

# ---------------------------------------------------------------- restart (state + PKI reuse) and rate limit flags
PORT=$(cat "$D/port")
bash "$HERE/stop.sh" "$D"
[ ! -e "$D/pid" ] && [ ! -e "$D/ready" ] || fail "stop left pid/ready"
fp1=$(openssl x509 -in "$D/root.pem" -noout -fingerprint)
BASE_URL=$(bash "$HERE/start.sh" "$D" --port "$PORT" --burst-limit 3 --burst-window 600 --api-key "$KEY" --api-key other-key-42)
[ "$(openssl x509 -in "$D/root.pem" -noout -fingerprint)" = "$fp1" ] || fail "PKI not reused"
call GET $O/$OID; expect 200; [ "$(j 'd["status"]')" = revoked ] || fail "state after restart"
call GET $O/$OID; expect 200
call GET $O/$OID; expect 200
call GET $O/$OID; expect 429
grep -qi '^retry-after' "$T/hdr" && fail "rate-limit 429 has Retry-After"
[ "$(j 'd["errors"][0]["message"]')" = "Service unavailable, please limit request volume" ] || fail "429 message"
call GET $O/$OID "" other-key-42; expect 200
[ "$(state 'd["rate_limit"]["exceeded"]')" = true ] || fail "violation not recorded"
ok "restart on the same port keeps orders and PKI; burst limit per key -> 429 recorded"
ctl reset '{}'
[ "$(state 'len(d["orders"])')" = 0 ] || fail reset
ok "reset"
echo "sandbox selftest: all $N checks passed"
