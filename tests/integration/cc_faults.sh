#!/bin/bash
# CertCentral client under injected faults: retries of GET/PUT (429, 5xx, Retry-After, timeouts),
# never for the order POST (lost/dropped answers -> maybe placed), 401 costs one request,
# unreadable answers -> PA_E_CA_PROTOCOL, body cap, and the API key never in any output.
source "$PKIO_SRC/tests/integration/cc_lib.sh"

cc_start_sandbox --issue-after-polls 1
work=$(pkio_tmpdir)
POST_PATH=/services/v2/order/certificate/$CC_PRODUCT
INFO_PREFIX=/services/v2/order/certificate/

cc_make_order_body "$work/order.json"
cc_drv 0 place $CC_PRODUCT "$work/order.json"
order=$(out_value id)
cc_drv 0 info "$order"
cc_drv 0 info "$order"
out_has "st=ISSUED"
cert=$(out_value certificate_id)
orders() { cc_state 'len(s["orders"])'; }
posts() { cc_log_count POST "^$POST_PATH\$"; }
infos() { cc_log_count GET "^$INFO_PREFIX$order\$"; }

# --- GET: 429 without Retry-After is waited out with backoff
n0=$(infos)
cc_fault GET "$INFO_PREFIX$order" 429 2
cc_drv 0 info "$order"
out_has "st=ISSUED"
out_has "requests=3"
out_has "slept=2 "
[[ $(($(infos) - n0)) == 3 ]] || fail "sandbox did not see exactly 3 order-info requests"
[[ $(cc_state 's["rate_limit"]["exceeded"]') == False ]] || fail "rate-limit violation"
pass "429 x2 on GET: waited out, 3 requests, no rate-limit violation"

# --- GET: 500 retried; 502 HTML until the attempts run out
cc_fault GET "$INFO_PREFIX$order" status:500 1
cc_drv 0 info "$order"
out_has "requests=2"
cc_fault GET "$INFO_PREFIX$order" html 3
cc_drv 20 --attempts 3 info "$order"
out_has "error=HTTP 502 from $CC_URL/order/certificate/$order (text/html) (gave up after 3 attempts)"
out_has "requests=3"
pass "5xx on GET retried; HTML 502 reported with URL and content type"

# --- Retry-After is honoured (below the cap)
cc_fault GET "$INFO_PREFIX$order" retry_after:1 1
cc_drv 0 --cap 5 info "$order"
out_has "requests=2"
out_has "slept=1 total=1.000 max=1.000"
pass "Retry-After: 1 honoured"

# --- Retry-After as an HTTP-date (read by libcurl): a fixed 429 answer from openssl s_server
ra_dir=$(pkio_tmpdir)
mkdir -p "$ra_dir/www/services/v2/order/certificate"
ra_answer() { # FILE DATE: a complete HTTP 429 answer with Retry-After: DATE
    local body='{"errors":[{"code":"request_limit_exceeded","message":"Service unavailable, please limit request volume"}]}'
    printf 'HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
        "$2" ${#body} "$body" >"$ra_dir/www/services/v2/order/certificate/$1"
}
ra_answer 12 "$(date -u -d '+3 seconds' '+%a, %d %b %Y %H:%M:%S GMT')"
ra_answer 13 "$(date -u -d '-1 hour' '+%a, %d %b %Y %H:%M:%S GMT')"
pkio_spawn s_server bash -c "cd '$ra_dir/www' && exec openssl s_server -HTTP -accept 127.0.0.1:0 \
    -cert '$SB/pki/server.pem' -key '$SB/pki/server.key'"
pkio_wait_until 20 "s_server listening" grep -q '^ACCEPT' "$PKIO_ROOT/s_server.log"
ra_url=https://127.0.0.1:$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$PKIO_ROOT/s_server.log")/services/v2
expect_exit 20 -- "$CC_DRIVER" --url "$ra_url" --ca "$SB/tls-ca.pem" --key-file "$CC_KEY_FILE" \
    --base 0.05 --cap 10 --attempts 2 info 12
out_has "requests=2"
ra_slept=$(sed -n 's/^slept=1 total=\([0-9.]*\) .*$/\1/p' "$OUT")
[[ -n $ra_slept ]] && python3 -c "import sys; sys.exit(not 1.0 <= float(sys.argv[1]) <= 3.0)" "$ra_slept" ||
    fail "Retry-After date 3 s ahead: expected one wait of 1-3 s, got '$(grep '^slept=' "$OUT")'"
expect_exit 20 -- "$CC_DRIVER" --url "$ra_url" --ca "$SB/tls-ca.pem" --key-file "$CC_KEY_FILE" \
    --base 0.05 --cap 10 --attempts 2 info 13
out_has "slept=1 total=0.050 max=0.050"
pass "Retry-After as an HTTP-date: honoured when ahead, backoff when in the past"

# --- other GET/PUT calls retry too
cc_fault GET "/services/v2/order/certificate?" status:503 1
cc_drv 0 list $CC_PRODUCT -
out_has "count=1"
out_has "requests=2"
cc_fault GET "/services/v2/certificate/$cert/download" 429 1
cc_drv 0 download "$cert" pem_noroot "$work/leaf.pem"
out_has "requests=2"
pass "list and download retried"

# --- timeouts: a slow answer to a GET is retried
n0=$(infos)
cc_fault GET "$INFO_PREFIX$order" slow:4 1
cc_drv 0 --timeout 2 info "$order"
out_has "st=ISSUED"
out_has "requests=2"
# The sandbox logs the slow request when its delay is over; wait for that (not an assertion)
# so that later request counts are not disturbed.
infos_are() { [[ $(infos) == "$1" ]]; }
pkio_wait_until 60 "the sandbox to finish the slow GET" infos_are $((n0 + 2))
pass "GET timed out once, retried"

# --- 401: exactly one request, clear message, for GET and for the order POST
bad_key=$PKIO_ROOT/bad.key
write_secret_file "$bad_key" "not-the-sandbox-key-42"
n0=$(infos)
expect_exit 19 -- "$CC_DRIVER" --url "$CC_URL" --ca "$SB/tls-ca.pem" --key-file "$bad_key" \
    --base 0.05 --cap 0.2 info "$order"
out_has "error=access_denied|invalid_api_key: The X-DC-DEVKEY API key is missing or invalid. (HTTP 401; check api.key_file / PKIO_AGENT_API_KEY; the key needs the Orders role)"
out_has "requests=1"
[[ $(($(infos) - n0)) == 1 ]] || fail "401 on GET cost more than one request"
o0=$(orders) p0=$(posts)
expect_exit 19 -- "$CC_DRIVER" --url "$CC_URL" --ca "$SB/tls-ca.pem" --key-file "$bad_key" \
    place $CC_PRODUCT "$work/order.json"
out_has "maybe_placed=0"
out_has "requests=1"
[[ $(($(posts) - p0)) == 1 && $(orders) == "$o0" ]] || fail "401 on POST: not exactly 1 request"
pass "401: one request, message with hint, nothing placed"

# --- the order POST is never retried
o0=$(orders) p0=$(posts)
cc_fault POST "$POST_PATH" lost 1
cc_drv 20 place $CC_PRODUCT "$work/order.json"
out_has "maybe_placed=1"
out_has "the order may have been placed; run resume/status before ordering again"
out_has "requests=1"
[[ $(($(posts) - p0)) == 1 ]] || fail "lost answer: POST was repeated"
[[ $(($(orders) - o0)) == 1 ]] || fail "lost answer: expected exactly one new order"
pass "lost answer to the POST: maybe placed, exactly one order"

# The same after GETs on the same client: its connection is reused for GETs, but the POST goes
# out on a new one, so libcurl does not silently send it again when the answer is lost.
o0=$(orders) p0=$(posts)
cc_fault POST "$POST_PATH" lost 1
cc_drv 20 info "$order" + info "$order" + place $CC_PRODUCT "$work/order.json"
out_has "maybe_placed=1"
out_has "requests=3"
out_has "connections=2"
[[ $(($(posts) - p0)) == 1 ]] || fail "lost answer after GETs: POST was repeated"
[[ $(($(orders) - o0)) == 1 ]] || fail "lost answer after GETs: expected exactly one new order"
pass "lost answer to a POST after GETs on one connection: not sent again, exactly one order"

o0=$(orders) p0=$(posts)
cc_fault POST "$POST_PATH" drop 1
cc_drv 20 place $CC_PRODUCT "$work/order.json"
out_has "maybe_placed=1"
out_has "requests=1"
[[ $(($(posts) - p0)) == 1 && $(orders) == "$o0" ]] || fail "dropped POST: repeated or stored"
pass "dropped connection on the POST: maybe placed (cannot tell), not repeated"

o0=$(orders) p0=$(posts)
cc_fault POST "$POST_PATH" 429 1
cc_drv 20 place $CC_PRODUCT "$work/order.json"
out_has "maybe_placed=0"
out_has "error=request_limit_exceeded: Service unavailable, please limit request volume; the order was not placed"
out_has "slept=0 "
cc_fault POST "$POST_PATH" status:503 1
cc_drv 20 place $CC_PRODUCT "$work/order.json"
out_has "maybe_placed=1"
out_has "requests=1"
[[ $(($(posts) - p0)) == 2 && $(orders) == "$o0" ]] || fail "429/503 on POST: retried or stored"
pass "429 on the POST: not placed; 503: maybe placed; neither retried"

# cc_place_order_ex (what enroll uses): a 429 is sent again, a 503 is not
o0=$(orders) p0=$(posts)
cc_fault POST "$POST_PATH" 429 2
cc_drv 0 order $CC_PRODUCT "$work/order.json"
out_has "requests=3"
out_has "slept=2 "
[[ $(($(posts) - p0)) == 3 && $(($(orders) - o0)) == 1 ]] ||
    fail "429 twice on the order: not 3 POSTs and one order"
o0=$(orders) p0=$(posts)
cc_fault POST "$POST_PATH" 429 4
cc_drv 20 order $CC_PRODUCT "$work/order.json"
out_has "maybe_placed=0"
out_has "(gave up after 4 attempts); the order was not placed"
[[ $(($(posts) - p0)) == 4 && $(orders) == "$o0" ]] || fail "429 four times: not 4 POSTs"
cc_fault POST "$POST_PATH" status:503 1
cc_drv 20 order $CC_PRODUCT "$work/order.json"
out_has "maybe_placed=1"
out_has "requests=1"
[[ $(($(posts) - p0)) == 5 && $(orders) == "$o0" ]] || fail "503 on the order: sent again"
pass "order policy: 429 sent again (4 sends at most), 503 maybe placed and not sent again"

o0=$(orders) p0=$(posts)
cc_fault POST "$POST_PATH" slow:4 1
cc_drv 20 --timeout 2 place $CC_PRODUCT "$work/order.json"
out_has "maybe_placed=1"
out_has "timed out after 2 s"
out_has "requests=1"
posts_are() { [[ $(posts) == "$1" ]]; }
pkio_wait_until 60 "the sandbox to finish the slow POST" posts_are $((p0 + 1))
[[ $(($(orders) - o0)) == 1 ]] || fail "timed-out POST: expected exactly one new order"
pass "timed-out POST: maybe placed, not repeated"

# --- unreadable answers: PA_E_CA_PROTOCOL, not retried
for kind in garbage truncated wrong_type; do
    n0=$(infos)
    cc_fault GET "$INFO_PREFIX$order" $kind 1
    cc_drv 21 info "$order"
    out_has "error=unreadable order info from $CC_URL/order/certificate/$order"
    out_has "requests=1"
    [[ $(($(infos) - n0)) == 1 ]] || fail "$kind: retried"
done
grep -q '"id" is a string, expected int' "$OUT" || fail "wrong_type: no field in the message"
o0=$(orders)
cc_fault POST "$POST_PATH" truncated 1
cc_drv 21 place $CC_PRODUCT "$work/order.json"
out_has "maybe_placed=1"
out_has "truncated JSON; the order may have been placed"
[[ $(($(orders) - o0)) == 1 ]] || fail "truncated POST answer: order not stored once"
cc_fault POST "$POST_PATH" garbage 1
cc_drv 21 place $CC_PRODUCT "$work/order.json"
out_has "maybe_placed=1"
cc_fault GET "/services/v2/certificate/$cert/download" truncated 1
cc_drv 21 download "$cert" pem_noroot "$work/x.pem"
out_has "is not a bundle of PEM certificates"
cc_fault GET "/services/v2/order/certificate?" wrong_type 1
cc_drv 21 list - -
pass "garbage / truncated / wrong_type -> PA_E_CA_PROTOCOL"

# --- body cap
cc_drv 21 --max-body 200 info "$order"
out_has "response larger than 200 bytes"
out_has "requests=1"
pass "body cap enforced"

# --- PUT (cancel): retried on 429, not on 500 (the server may have acted)
cc_sandbox_post /__sandbox/behavior '{"behavior":"never","issue_after_polls":1}'
cc_drv 0 place $CC_PRODUCT "$work/order.json"
pend=$(out_value id)
cc_fault PUT "$INFO_PREFIX$pend/status" status:500 1
cc_drv 20 cancel "$pend" "test"
out_has "requests=1"
cc_fault PUT "$INFO_PREFIX$pend/status" 429 1
cc_drv 0 cancel "$pend" "test"
out_has "requests=2"
[[ $(cc_state 'len(s["cancellations"])') == 1 ]] || fail "cancel not applied exactly once"
pass "PUT: 500 not retried, 429 retried"

# --- the API key appears in no output, debug included
write_secret_file "$PKIO_ROOT/key2" "$CC_DEFAULT_KEY"
cc_fault GET "$INFO_PREFIX$order" 429 1
expect_exit 0 -- "$CC_DRIVER" --debug --url "$CC_URL" --ca "$SB/tls-ca.pem" \
    --key-file "$PKIO_ROOT/key2" --base 0.05 info "$order"
grep -q 'debug: http: GET' "$ERR" || fail "no debug trace"
if grep -rqF -- "$CC_DEFAULT_KEY" "$PKIO_ROOT"/out.* "$PKIO_ROOT"/err.*; then
    fail "the API key leaked into driver output"
fi
if grep -qF -- "$CC_DEFAULT_KEY" "$SB/requests.log"; then
    fail "requests.log holds the unmasked key (sandbox bug)"
fi
pass "API key in no output"

[[ $(cc_state 's["rate_limit"]["exceeded"]') == False ]] || fail "rate limit exceeded"
[[ $(cc_state 'len(s["faults_pending"])') == 0 ]] || fail "faults left: $(cc_state 's["faults_pending"]')"
pass "all injected faults consumed, no rate-limit violation"
