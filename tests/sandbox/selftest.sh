#!/bin/bash
# Self-test of the CertCentral sandbox: drives every endpoint, validation rule family, fault
# kind and the control API with curl + the openssl CLI; the variations (CSR presentations, list
# lag, late:S, known individuals, name presentation, revoke requests in order info, forced order
# state) in one Python run at the end. Private temp dir, port chosen at run time, sandbox stopped
# by PID in the trap. Safe to run in parallel with other tests.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d)
D=$T/sb
export OPENSSL_CONF=/dev/null
cleanup() { bash "$HERE/stop.sh" "$D"; rm -rf "$T"; }
trap cleanup EXIT
# The interpreter start.sh runs the sandbox with (a PATH python3 may be a slow pyenv shim).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
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
j() { "$PY" -S -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$T/body" "$1"; }
state() { curl -sS --cacert "$D/tls-ca.pem" "$URL/__sandbox/state" >"$T/state.json"; "$PY" -S -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) else v)' "$T/state.json" "$1"; }
ctl() { curl -sS --fail --cacert "$D/tls-ca.pem" -X POST -H 'Content-Type: application/json' --data-binary "$2" "$URL/__sandbox/$1" >/dev/null; }
# mk NAME PYTHON — write $T/NAME.json: the base order body changed by PYTHON (body bound to b)
mk() { "$PY" -S -c 'import json,sys; b=json.load(open(sys.argv[1])); exec(sys.argv[2]); json.dump(b, open(sys.argv[3], "w"))' "$T/base.json" "$2" "$T/$1.json"; }
# bad NAME PYTHON CODE... — declare: that body is refused with 400 and exactly these codes
# (bodies are generated in one go by run_bad, which then posts them)
BAD_NAMES=(); BAD_ARGS=(); BAD_WANT=()
bad() {
  BAD_NAMES+=("$1"); BAD_ARGS+=("$1" "$2"); shift 2
  BAD_WANT+=("$(printf '%s\n' "$@" | LC_ALL=C sort)")
}
run_bad() {
  "$PY" -S -c 'import json,sys
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
openssl req -in "$T/rsa.csr" -outform DER -out "$T/rsa.der"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ec.key"
openssl req -new -key "$T/ec.key" -subj "/CN=ignored" -sha256 -out "$T/ec.csr"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$T/weak.key" 2>/dev/null
openssl req -new -key "$T/weak.key" -subj "/CN=ignored" -sha256 -out "$T/weak.csr"
openssl req -new -key "$T/rsa.key" -subj "/CN=ignored" -sha1 -out "$T/sha1.csr"
openssl req -new -key "$T/rsa.key" -subj "/CN=ignored" -sigopt rsa_padding_mode:pss -sha256 -out "$T/pss.csr"
"$PY" - "$T" <<'EOF'
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
# Default CSR presentation "rewrapped": NEW CERTIFICATE REQUEST armour, 76-char lines, CRLF.
"$PY" -S -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["certificate"]["csr"])' "$T/body" >"$T/shown.csr"
[ "$(j 'd["certificate"]["csr"] != open("'"$T"'/rsa.csr").read() and d["certificate"]["csr"].startswith("-----BEGIN NEW CERTIFICATE REQUEST-----\r\n") and d["certificate"]["csr"].endswith("\r\n-----END NEW CERTIFICATE REQUEST-----\r\n") and max(map(len, d["certificate"]["csr"].split("\r\n"))) == 76 and "\n" not in d["certificate"]["csr"].replace("\r\n", "")')" = true ] || fail "order info csr not rewrapped"
openssl req -in "$T/shown.csr" -outform DER | cmp -s - "$T/rsa.der" || fail "rewrapped csr is not the CSR sent"
CID=$(j 'd["certificate"]["id"]')
call GET /services/v2/certificate/$CID/download/format/pem_all
expect 400; [ "$(j 'd["errors"][0]["code"]')" = cert_unavailable_for_download ] || fail "download pending"
call GET /services/v2/order/certificate/$OID
expect 200
[ "$(j 'd["status"]')" = issued ] && [ "$(j 'd["requests"][0]["status"]')" = approved ] || fail "second poll not issued"
[ "$(j 'd["product"]["name_id"]')" = $PROD ] && [ "$(j 'd["certificate"]["common_name"]')" = "Jörg de Vries" ] || fail "order info fields"
SERIAL=$(j 'd["certificate"]["serial_number"]')
ok "order info pending -> issued (cert $CID, serial $SERIAL); csr shown rewrapped by default"

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
[ "$(j '[r["type"] + "/" + r["status"] for r in d["requests"]]')" = '["new_request/approved", "revoke/approved"]' ] || fail "direct revoke not listed in requests"
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
"$PY" -S -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/body" 2>/dev/null && fail "garbage is JSON"
fault GET "$O/" truncated; call GET $O/$NA; expect 200
"$PY" -S -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/body" 2>/dev/null && fail "truncated is JSON"
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
cat >"$T/individuals.json" <<'EOF'
{"individuals": [{"id": 21, "first_name": "Jan", "last_name": "Jansen", "email": "jan@example.nl",
                  "telephone": "+31 20 123 4567", "country": "NL",
                  "professional_title": "Advocaat"}]}
EOF
BASE_URL=$(bash "$HERE/start.sh" "$D" --port "$PORT" --burst-limit 3 --burst-window 600 --api-key "$KEY" --api-key other-key-42 \
  --csr-presentation one_line --list-lag 0.5 --name-presentation upper --individuals "$T/individuals.json")
[ "$(openssl x509 -in "$D/root.pem" -noout -fingerprint)" = "$fp1" ] || fail "PKI not reused"
call GET $O/$OID; expect 200; [ "$(j 'd["status"]')" = revoked ] || fail "state after restart"
[ "$(j 'd["certificate"]["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----MII") and "\n" not in d["certificate"]["csr"]')" = true ] || fail "--csr-presentation one_line"
[ "$(j 'd["individual"]["first_name"] + "|" + d["individual"]["last_name"]')" = "JÖRG|DE VRIES" ] || fail "--name-presentation upper"
[ "$(state '[d[k] for k in ("csr_presentation", "list_lag_s", "name_presentation")] + [i["id"] for i in d["individuals"]]')" = '["one_line", 0.5, "upper", 21, 500001]' ] || fail "flags not in state: $(cat "$T/state.json")"
call GET $O/$OID; expect 200
call GET $O/$OID; expect 200
call GET $O/$OID; expect 429
grep -qi '^retry-after' "$T/hdr" && fail "rate-limit 429 has Retry-After"
[ "$(j 'd["errors"][0]["message"]')" = "Service unavailable, please limit request volume" ] || fail "429 message"
call GET $O/$OID "" other-key-42; expect 200
[ "$(state 'd["rate_limit"]["exceeded"]')" = true ] || fail "violation not recorded"
ok "restart on the same port keeps orders and PKI; burst limit per key -> 429 recorded; --csr-presentation, --list-lag, --name-presentation, --individuals"
ctl reset '{}'
[ "$(state 'len(d["orders"])')" = 0 ] || fail reset
[ "$(state '[i["id"] for i in d["individuals"]]')" = '[21]' ] || fail "reset: registered individuals should stay, assigned ones go"
ok "reset (registered individuals stay)"

# ---------------------------------------------------------------- variations (one Python run)
# CSR presentations, list lag, late:S, known individuals, name presentation, revoke requests in
# order info, forced order state, control API validation.
ctl limits '{"burst_limit":100,"burst_window":5}'
"$PY" - "$URL" "$D" "$T" "$N" <<'EOF'
import base64, http.client, json, re, socket, ssl, subprocess, sys, time, calendar
url, d, t, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
ctx = ssl.create_default_context(cafile=d + "/tls-ca.pem")
KEY, PROD, O = "sandbox-0123456789abcdef", "pkio_organisation_person_prof", "/services/v2/order/certificate"

def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def ok(msg):
    global n
    n += 1
    print("ok %d - %s" % (n, msg), flush=True)
    open(t + "/n", "w").write(str(n))

def req(method, path, body=None, timeout=15, key=KEY):
    c = http.client.HTTPSConnection(host, port, context=ctx, timeout=timeout)
    h = {"User-Agent": "pkio-sandbox-selftest/1"}
    if key:
        h["X-DC-DEVKEY"] = key
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
    finally:
        c.close()
    return r.status, (json.loads(raw) if raw and r.getheader("Content-Type") == "application/json" else raw)

def want(status, method, path, body=None):
    st, b = req(method, path, body)
    if st != status:
        fail("%s %s: want %d, got %d %r" % (method, path, status, st, b))
    return b

def ctl(what, body, status=200):
    return want(status, "POST", "/__sandbox/" + what, body)

def state():
    return want(200, "GET", "/__sandbox/state")

def codes(b):
    return sorted(e["code"] for e in b["errors"])

base = json.load(open(t + "/base.json"))

def order(mutate=None, status=201, product=PROD):
    b = json.loads(json.dumps(base))
    if mutate:
        mutate(b)
    return want(status, "POST", "%s/%s" % (O, product), b)

def info(oid):
    return want(200, "GET", "%s/%s" % (O, oid))

# --- CSR presentations: each decodes to the same DER (or has none)
der = open(t + "/rsa.der", "rb").read()
sent = open(t + "/rsa.csr").read()
def decode(s):
    m = re.fullmatch(r"\s*(?:-----BEGIN [A-Z ]+-----)?([A-Za-z0-9+/=\s]+?)(?:-----END [A-Z ]+-----)?\s*", s)
    if not m:
        return None
    try:
        return base64.b64decode("".join(m.group(1).split()), validate=True)
    except ValueError:
        return None
ctl("behavior", {"behavior": "issue", "issue_after_polls": 0})
oid = order()["id"]
for mode in ("as_sent", "rewrapped", "one_line", "bare", "absent", "undecodable"):
    if ctl("behavior", {"csr_presentation": mode})["csr_presentation"] != mode:
        fail("behavior did not take csr_presentation " + mode)
    c = info(oid)["certificate"]
    csr = c.get("csr")
    if mode == "absent":
        if "csr" in c:
            fail("absent: csr present")
        continue
    if mode == "undecodable":
        if not isinstance(csr, str) or decode(csr) == der or "-----" in csr:
            fail("undecodable: %r" % csr)
        continue
    if decode(csr) != der:
        fail("%s: does not decode to the DER sent: %r" % (mode, csr))
    if mode == "as_sent" and csr != sent:
        fail("as_sent differs")
    if mode == "rewrapped":
        lines = csr.split("\r\n")
        if lines[0] != "-----BEGIN NEW CERTIFICATE REQUEST-----" or lines[-2:] != ["-----END NEW CERTIFICATE REQUEST-----", ""] \
                or any(len(x) != 76 for x in lines[1:-3]) or not 0 < len(lines[-3]) <= 76 or "\n" in csr.replace("\r\n", ""):
            fail("rewrapped shape: %r" % csr)
        p = subprocess.run(["openssl", "req", "-outform", "DER"], input=csr.encode(), capture_output=True)
        if p.stdout != der:
            fail("openssl does not read the rewrapped CSR: %s" % p.stderr.decode())
    b64 = base64.b64encode(der).decode()
    if mode == "one_line" and csr != "-----BEGIN CERTIFICATE REQUEST-----%s-----END CERTIFICATE REQUEST-----" % b64:
        fail("one_line shape: %r" % csr)
    if mode == "bare" and csr != b64:
        fail("bare shape: %r" % csr)
st, b = req("POST", "/__sandbox/behavior", {"csr_presentation": "pretty"})
if st != 400:
    fail("bad csr_presentation accepted")
st, b = req("POST", "/__sandbox/behavior", {"list_lag": 1})
if st != 400 or b["errors"][0]["code"] != "unknown_field|list_lag":
    fail("unknown behavior field accepted: %r" % (b,))
ctl("behavior", {"csr_presentation": "rewrapped"})
ok("csr presentations as_sent, rewrapped, one_line, bare decode to the DER sent; absent, undecodable; bad values refused")

# --- list lag: hidden from the list for S seconds, order info at once. Only a list answer that
# arrived before S seconds had passed proves anything; on a busy machine, try again with more.
for lag in (1.5, 4.0):
    ctl("behavior", {"list_lag_s": lag})
    t0 = time.monotonic()
    lid = order()["id"]
    lst = lambda: want(200, "GET", "%s?filters[id]=%d" % (O, lid))["page"]["total"]
    hidden = lst()
    if time.monotonic() - t0 < lag:
        break
else:
    fail("too slow to test the list lag")
if hidden != 0:
    fail("order listed before the lag")
info(lid)
if state()["list_lag_s"] != lag:
    fail("list_lag_s not in state")
time.sleep(max(0, t0 + lag + 0.3 - time.monotonic()))
if lst() != 1:
    fail("order not listed after the lag")
ctl("behavior", {"list_lag_s": 0})
ok("list_lag_s %.1f: order hidden from the list, order info at once, listed after the lag" % lag)

# --- late:S: performed S seconds after arrival, answer to a client that gave up
for late in (2, 5):
    n0 = len(state()["orders"])
    ctl("faults", {"faults": [{"method": "POST", "path_prefix": O + "/", "kind": "late:%d" % late}]})
    sent_at = time.time()
    try:
        st, b = req("POST", "%s/%s" % (O, PROD), base, timeout=1)
        fail("late:%d answered within 1 s: %d" % (late, st))
    except (socket.timeout, TimeoutError):
        pass
    early = len(state()["orders"])
    conclusive = time.time() < sent_at + late
    deadline = time.time() + late + 10
    while len(state()["orders"]) == n0:
        if time.time() > deadline:
            fail("late:%d never created the order" % late)
        time.sleep(0.2)
    if conclusive:
        break
else:
    fail("too slow to test late:S")
if early != n0:
    fail("late:%d created the order before the delay" % late)
new = max(state()["orders"], key=lambda o: o["id"])
created = calendar.timegm(time.strptime(new["created"], "%Y-%m-%dT%H:%M:%S+00:00"))
if created < int(sent_at + late):
    fail("late:%d order date_created %s is not after the delay (sent %f)" % (late, new["created"], sent_at))
time.sleep(0.3)
info(new["id"])  # still serving after the undeliverable answer
ok("late:%d: order created only after %d s (date_created then), client gone, server keeps serving" % (late, late))

# --- known individuals
b = ctl("individuals", {"individuals": [{"id": 42, "first_name": "Anna", "last_name": "de Boer",
                                           "email": "anna@example.nl", "country": "BE",
                                           "professional_title": "Advocaat"}]})
if not {21, 42} <= {i["id"] for i in b["individuals"] if i["source"] == "registered"}:
    fail("individuals after POST: %r" % b)
if req("POST", "/__sandbox/individuals", {"individuals": [{"id": 7, "first_name": "X"}]})[0] != 400:
    fail("incomplete individual accepted")
ctl("behavior", {"name_presentation": "as_sent"})
def by_id(i):
    return lambda b: b["certificate"].__setitem__("individual", {"id": i})
r = info(order(by_id(42))["id"])
ind = r["individual"]
if (ind.get("id"), ind.get("first_name"), ind.get("last_name"), ind.get("email")) != (42, "Anna", "de Boer", "anna@example.nl") \
        or r["certificate"]["common_name"] != "Anna de Boer":
    fail("order by known individual id: %r" % r)
leaf = want(200, "GET", "/services/v2/certificate/%d/download/format/pem_noroot" % r["certificate"]["id"]).decode()
subj = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "utf8,sep_comma_plus"],
                      input=leaf.encode(), capture_output=True).stdout.decode()
if "C=BE" not in subj or "CN=Anna de Boer" not in subj or "title=Advocaat" not in subj:
    fail("leaf subject for individual 42: %s" % subj)
b = order(by_id(999), status=400)
if codes(b) != ["invalid_value|certificate.individual.id"]:
    fail("unknown individual id: %r" % b)
ok("order with a known individual id stores its details (order info, CN, subject); unknown id -> 400 invalid_value|certificate.individual.id")

a1 = info(order()["id"])["individual"]
def variant(b):
    i = b["certificate"]["individual"]
    i.update(first_name="  JÖRG ", last_name="de  VRIES", email="J.DeVries@Example.NL")
a2 = info(order(variant)["id"])
def other(b):
    b["certificate"]["individual"]["email"] = "joerg@example.org"
a3 = info(order(other)["id"])["individual"]
def jan(b):
    i = b["certificate"]["individual"]
    i.update(first_name="jan", last_name="JANSEN", email="Jan@Example.nl")
a4 = info(order(jan)["id"])["individual"]
if not (a1["id"] == a2["individual"]["id"] == 500001 and a3["id"] > 500001 and a4["id"] == 21):
    fail("individual ids: %r %r %r %r" % (a1, a2["individual"], a3, a4))
if (a2["individual"]["first_name"], a2["individual"]["email"]) != ("  JÖRG ", "J.DeVries@Example.NL"):
    fail("as_sent names changed: %r" % a2["individual"])
ctl("behavior", {"name_presentation": "upper"})
u = info(a2["id"])["individual"]
if (u["id"], u["first_name"], u["last_name"], u["email"]) != (500001, "JÖRG", "DE  VRIES", "j.devries@example.nl"):
    fail("upper presentation: %r" % u)
ctl("behavior", {"name_presentation": "as_sent"})
ok("full details get an id: reused for the same person (case/whitespace-insensitive, also a registered one), new (%d) otherwise; name_presentation upper" % a3["id"])

# --- revoke requests in order info
def kinds(oid):
    return [(r["type"], r["status"]) for r in info(oid)["requests"]]
o1 = order()["id"]
c1 = info(o1)["certificate"]["id"]
want(204, "PUT", "/services/v2/certificate/%d/revoke" % c1, {"skip_approval": True, "comments": "t"})
r = info(o1)
if r["status"] != "revoked" or kinds(o1) != [("new_request", "approved"), ("revoke", "approved")]:
    fail("direct revoke: %r" % r)
rq = r["requests"][-1]
if want(200, "GET", "/services/v2/request/%d" % rq["id"])["type"] != "revoke" or "date" not in rq:
    fail("direct revoke request not readable")
o2 = order()["id"]
ra = want(201, "PUT", "%s/%d/revoke" % (O, o2), {"comments": "please"})["id"]
r = info(o2)
if r["status"] != "issued" or r["requests"][-1]["id"] != ra or kinds(o2)[-1] != ("revoke", "pending"):
    fail("pending revoke not listed: %r" % r)
want(204, "PUT", "/services/v2/request/%d/status" % ra, {"status": "rejected"})
if info(o2)["status"] != "issued" or kinds(o2)[-1] != ("revoke", "rejected"):
    fail("rejected revoke: %r" % info(o2))
rb = want(201, "PUT", "/services/v2/certificate/%d/revoke" % info(o2)["certificate"]["id"], {})["id"]
if kinds(o2) != [("new_request", "approved"), ("revoke", "rejected"), ("revoke", "pending")] or rb <= ra:
    fail("second revoke: %r" % kinds(o2))
want(204, "PUT", "/services/v2/request/%d/status" % rb, {"status": "approved"})
if info(o2)["status"] != "revoked" or kinds(o2)[-1] != ("revoke", "approved"):
    fail("approved revoke: %r" % info(o2))
ok("order info requests[] lists revoke requests newest last: direct (approved), pending -> rejected, pending -> approved (revoked)")

# --- forced order state
o3 = order()["id"]
b = ctl("order/%d" % o3, {"status": "expired", "valid_till": "2020-01-31"})
r = info(o3)
if (r["status"], r["certificate"]["valid_till"], r["certificate"]["days_remaining"]) != ("expired", "2020-01-31", 0):
    fail("forced expired: %r" % r)
if o3 not in [x["id"] for x in want(200, "GET", O + "?filters[status]=expired")["orders"]]:
    fail("forced expired order not in list by status")
ctl("behavior", {"behavior": "never"})
o4 = order()["id"]
if info(o4)["status"] != "pending":
    fail("never")
ctl("order/%d" % o4, {"status": "issued"})
r = info(o4)
if r["status"] != "issued" or not r["certificate"].get("serial_number"):
    fail("forced issued: %r" % r)
want(200, "GET", "/services/v2/certificate/%d/download/format/pem_all" % r["certificate"]["id"])
ctl("order/999999", {"status": "expired"}, status=404)
ctl("order/%d" % o3, {"valid_till": "2020-02-30"}, status=400)
ctl("order/%d" % o3, {"state": "expired"}, status=400)
ctl("behavior", {"behavior": "issue", "issue_after_polls": 1})
ok("POST /__sandbox/order/{id}: expired + valid_till shown in order info and list; forced issued issues; 404/400")

# --- TLS connections: counted once per connection that carries API requests, by key
c0 = state()["connections"]
for conn_requests in (3, 1):  # three requests on one kept-alive connection, then one on another
    kc = http.client.HTTPSConnection(host, port, context=ctx, timeout=15)
    for _ in range(conn_requests):
        kc.request("GET", O + "?limit=1", headers={"User-Agent": "pkio-sandbox-selftest/1",
                                                   "X-DC-DEVKEY": KEY})
        r = kc.getresponse()
        r.read()
        if r.status != 200:
            fail("keep-alive GET: %d" % r.status)
    kc.close()
c1 = state()["connections"]
k = KEY[:4] + "\u2026"
if (c1["total"] - c0["total"], c1["by_key"].get(k, 0) - c0["by_key"].get(k, 0)) != (2, 2):
    fail("connections: %r -> %r" % (c0, c1))
api = [e for e in map(json.loads, open(d + "/requests.log")) if not e.get("control")][-4:]
if len({e["conn"] for e in api[:3]}) != 1 or api[3]["conn"] == api[0]["conn"]:
    fail("requests.log conn ids: %r" % [e.get("conn") for e in api])
ok("state connections: one per TLS connection with API requests, by key; conn id in requests.log")
EOF
N=$(cat "$T/n")
echo "sandbox selftest: all $N checks passed"
