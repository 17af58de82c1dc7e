#!/bin/bash
# CertCentral client, happy paths and API refusals against the sandbox: place an order, poll it
# to issued, download pem_noroot/pem_all (leaf key = CSR key), list with filters and paging,
# revoke (awaits approval), cancel, and the terminal/waiting statuses (reject, needs_approval);
# order info fields (holder, valid_till, newest revoke request), find-order and ping.
source "$PKIO_SRC/tests/integration/cc_lib.sh"

# A request to the API itself (what an approver would do in CertCentral), with the sandbox key.
cc_api_put()
{
    curl -sS --fail-with-body --noproxy '*' --cacert "$SB/tls-ca.pem" -X PUT \
        -H "X-DC-DEVKEY: $CC_DEFAULT_KEY" -H 'Content-Type: application/json' \
        "$CC_URL$1" -d "$2" >/dev/null || fail "API PUT $1 failed"
}

cc_start_sandbox --issue-after-polls 1
work=$(pkio_tmpdir)
today=$(date -u +%F)

# --- place + poll + download
cc_make_order_body "$work/order.json"
cc_drv 0 place $CC_PRODUCT "$work/order.json"
order=$(out_value id)
[[ $order =~ ^[0-9]+$ ]] || fail "no order id in: $(cat "$OUT")"
out_has "request_status=pending"
out_has "requests=1"
[[ $(cc_state 'len(s["orders"])') == 1 ]] || fail "sandbox should hold exactly one order"
pass "order $order placed with one request"

cc_drv 0 info "$order"
out_has "status=pending st=WAITING"
out_has "reason=request awaits approval in CertCentral"
out_has "product=$CC_PRODUCT"
out_has "has_csr=1"
cc_drv 0 info "$order"
out_has "status=issued st=ISSUED"
cert=$(out_value certificate_id)
[[ $cert =~ ^[1-9][0-9]*$ ]] || fail "issued order without certificate id"
serial=$(out_value serial_number)
[[ $serial == "$(cc_state "s['orders'][0]['serial_number']")" ]] || fail "serial differs"
pass "order polled to issued, certificate $cert"
ind_id=$(cc_state "s['orders'][0]['individual_id'] or 0")
out_has "individual id=$ind_id first_name=Jan last_name=Jansen email=jan@example.nl"
till=$(out_value valid_till)
[[ $till =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || fail "no valid_till in: $(cat "$OUT")"
[[ $till == "$(cc_state "s['orders'][0]['valid_till']")" ]] || fail "valid_till differs"
out_has "revoke_request_id=0 revoke_request_status=-"
pass "order info: holder, valid_till $till, no revoke request"

cc_drv 0 download "$cert" pem_noroot "$work/noroot.pem"
[[ $(grep -c 'BEGIN CERTIFICATE' "$work/noroot.pem") == 2 ]] || fail "pem_noroot: not 2 certs"
cc_drv 0 download "$cert" pem_all "$work/all.pem"
[[ $(grep -c 'BEGIN CERTIFICATE' "$work/all.pem") == 3 ]] || fail "pem_all: not 3 certs"
leaf_key=$(openssl x509 -in "$work/noroot.pem" -noout -pubkey)
csr_key=$(openssl req -in "$CC_CSR" -noout -pubkey)
[[ $leaf_key == "$csr_key" ]] || fail "leaf key does not match the CSR key"
openssl verify -CAfile "$SB/root.pem" -untrusted "$SB/intermediate.pem" "$work/noroot.pem" \
    >/dev/null || fail "downloaded leaf does not chain to the sandbox root"
pass "downloads hold only certificates; leaf matches the CSR and chains"

# --- list: filters and paging
cc_make_order_body "$work/order2.json" "Piet Pietersen"
cc_drv 0 place $CC_PRODUCT "$work/order2.json"
order2=$(out_value id)
cc_make_order_body "$work/order3.json" "Kees Klaassen"
cc_drv 0 place $CC_PRODUCT "$work/order3.json"
order3=$(out_value id)
cc_drv 0 list $CC_PRODUCT "$today"
out_has "count=3"
out_has "order id=$order status=issued certificate_id=$cert product=$CC_PRODUCT"
out_has "order id=$order2 status=pending"
out_has "requests=1"
cc_drv 0 list - 2099-01-01
out_has "count=0"
cc_drv 0 list pkio_burger -
out_has "count=0"
before=$(cc_log_count GET '^/services/v2/order/certificate\?')
cc_drv 0 --page-size 1 list $CC_PRODUCT "$today"
out_has "count=3"
out_has "requests=3"
for id in "$order" "$order2" "$order3"; do
    [[ $(grep -c "^order id=$id " "$OUT") == 1 ]] || fail "paging lost or repeated order $id"
done
after=$(cc_log_count GET '^/services/v2/order/certificate\?')
[[ $((after - before)) == 3 ]] || fail "paging: expected 3 list requests, sandbox saw $((after - before))"
grep -q 'filters%5Bdate_created%5D=%3E%3D'"$today" "$SB/requests.log" ||
    fail "date filter not sent as filters[date_created]=>=$today"
pass "list: product/date filters, paging of 3 orders one per page"
cc_drv 4 list - 2099-1-1
cc_drv 5 list "bad product" -

# --- find-order: the order that holds a certificate, all products and dates, paging until found
dated=$(cc_log_count GET 'filters%5Bdate_created%5D')
cc_drv 0 find-order "$cert"
out_has "order_id=$order"
by_product=$(cc_log_count GET "filters%5Bproduct_name_id%5D=$CC_PRODUCT")
cc_drv 0 find-order "$cert" $CC_PRODUCT
out_has "order_id=$order"
[[ $(cc_log_count GET "filters%5Bproduct_name_id%5D=$CC_PRODUCT") == $((by_product + 1)) ]] ||
    fail "find-order: product filter not sent"
[[ $(cc_log_count GET 'filters%5Bdate_created%5D') == "$dated" ]] ||
    fail "find-order sent a date filter"
cert3=$(cc_state "[o['certificate_id'] for o in s['orders'] if o['id'] == $order3][0]")
[[ $cert3 =~ ^[1-9][0-9]*$ && $cert3 != "$cert" ]] || fail "no certificate id for order $order3"
# newest first, one per page: the first order is on page 3, the last order on page 1
cc_drv 0 --page-size 1 find-order "$cert"
out_has "order_id=$order"
out_has "requests=3"
cc_drv 0 --page-size 1 find-order "$cert3"
out_has "order_id=$order3"
out_has "requests=1"
cc_drv 18 find-order "$cert" pkio_burger
out_has "error=no order holds certificate $cert"
cc_drv 18 --page-size 1 find-order 399999
out_has "error=no order holds certificate 399999"
out_has "requests=3"
cc_drv 5 find-order "$cert" "bad product"
out_has "requests=0"
cc_drv 2 find-order x
pass "find-order: right order by certificate, stops at the page that holds it, none -> rejected"

# --- revoke: without skip_approval it becomes a pending request
cc_drv 0 revoke "$cert" superseded "replaced token"
out_has "awaits approval in CertCentral"
[[ $(cc_state 's["revocations"][0]["revocation_reason"]') == superseded ]] ||
    fail "revocation reason not sent"
[[ $(cc_state 's["revocations"][0]["comments"]') == "replaced token" ]] ||
    fail "revocation comments not sent"
out_has "pending=1 request_id="
out_has "request_status=pending"
rreq=$(out_value request_id)
[[ $rreq =~ ^[1-9][0-9]*$ ]] || fail "no revocation request id in: $(cat "$OUT")"
[[ $(cc_state 's["revocations"][0]["request_id"]') == "$rreq" ]] || fail "request id differs"
cc_drv 0 info "$order"
out_has "status=issued st=ISSUED"
out_has "revoke_request_id=$rreq revoke_request_status=pending"
cc_drv 18 revoke 399999 superseded -
out_has "error=not_found|certificate"
pass "revoke creates approval request $rreq, order info shows it; unknown certificate refused"

# the approver rejects it; a second revocation request is the newest and the one shown
cc_api_put "/request/$rreq/status" '{"status":"rejected","processor_comment":"not yet"}'
cc_drv 0 info "$order"
out_has "revoke_request_id=$rreq revoke_request_status=rejected"
cc_drv 0 revoke "$cert" superseded -
out_has "pending=1"
rreq2=$(out_value request_id)
[[ $rreq2 =~ ^[1-9][0-9]*$ && $rreq2 != "$rreq" ]] || fail "no second revocation request"
cc_drv 0 info "$order"
out_has "revoke_request_id=$rreq2 revoke_request_status=pending"
cc_api_put "/request/$rreq2/status" '{"status":"approved"}'
cc_drv 0 info "$order"
out_has "status=revoked st=FAILED"
out_has "revoke_request_id=$rreq2 revoke_request_status=approved"
pass "order info follows the newest revocation request ($rreq rejected, $rreq2 approved)"

# --- cancel
cc_drv 0 cancel "$order2" "test cancel"
[[ $(cc_state 's["cancellations"][0]["order_id"]') == "$order2" ]] || fail "cancel not recorded"
cc_drv 0 info "$order2"
out_has "status=canceled st=FAILED"
cc_drv 18 cancel "$order2" "again"
out_has "error=invalid_order_status: An order with status canceled cannot be canceled."
out_has "requests=1"
pass "cancel, and a second cancel is refused once"

# --- refusals: unknown order, not issued yet, invalid order body
cc_drv 18 info 999999
out_has "error=not_found|order: The specified order was not found."
out_has "requests=1"
cc_drv 18 download 399999 pem_noroot "$work/x.pem"
cc_drv 18 place no_such_product "$work/order.json"
out_has "error=not_found|product"
out_has "maybe_placed=0"
out_has "the order was not placed"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); del b["certificate"]["csr"]; b["payment_method"]="cash"; json.dump(b, open(sys.argv[2],"w"))' \
    "$work/order.json" "$work/bad.json"
cc_drv 18 place $CC_PRODUCT "$work/bad.json"
out_has "missing_field|certificate.csr"
out_has "; invalid_value|payment_method"
out_has "maybe_placed=0"
[[ $(cc_state 'len(s["orders"])') == 3 ]] || fail "a refused order was stored"
pass "4xx answers: rejected with code: message, not placed"

# --- terminal and waiting statuses
cc_sandbox_post /__sandbox/behavior '{"behavior":"reject","issue_after_polls":0}'
cc_make_order_body "$work/order4.json"
cc_drv 0 place $CC_PRODUCT "$work/order4.json"
order4=$(out_value id)
cc_drv 0 info "$order4"
out_has "status=rejected st=FAILED"
out_has "reason=rejected by DigiCert"
cc_sandbox_post /__sandbox/behavior '{"behavior":"needs_approval","issue_after_polls":100}'
cc_make_order_body "$work/order5.json"
cc_drv 0 place $CC_PRODUCT "$work/order5.json"
order5=$(out_value id)
cc_drv 0 info "$order5"
out_has "status=needs_approval st=WAITING"
out_has "reason=needs approval in CertCentral"
pass "rejected -> FAILED, needs_approval -> WAITING with reason"

# --- ping: one cheap authenticated GET; a wrong key is an auth failure at once
before=$(cc_log_count GET '^/services/v2/order/certificate\?limit=1$')
cc_drv 0 ping
out_has "ping=ok"
out_has "requests=1"
after=$(cc_log_count GET '^/services/v2/order/certificate\?limit=1$')
[[ $((after - before)) == 1 ]] || fail "ping: expected one GET ?limit=1, sandbox saw $((after - before))"
wrong_key=$PKIO_ROOT/wrong.key
write_secret_file "$wrong_key" "not-the-sandbox-key-42"
expect_exit 19 -- "$CC_DRIVER" --url "$CC_URL" --ca "$SB/tls-ca.pem" --key-file "$wrong_key" \
    --base 0.05 --cap 0.2 ping
out_has "rc=-19"
out_has "HTTP 401; check api.key_file"
out_has "requests=1"
[[ $(cc_log_count GET '^/services/v2/order/certificate\?limit=1$') == $((after + 1)) ]] ||
    fail "ping with a wrong key: not exactly one request"
pass "ping: ok with the key, exit 19 (auth) with a wrong key after one request"

[[ $(cc_state 's["rate_limit"]["exceeded"]') == False ]] || fail "rate limit exceeded"
[[ $(cc_state 'len(s["warnings"])') == 0 ]] || fail "sandbox warnings: $(cc_state 's["warnings"]')"
pass "no rate-limit violations, no protocol warnings"
