#!/bin/bash
# CertCentral client rate budget: with the sandbox's burst limit lowered to 5 requests / 2 s and
# the client's budget set to match, 12 back-to-back requests cause no rate-limit violation (the
# client sleeps instead). Control: the default budget (100 / 5 s) against the same limit is
# refused with 429 request_limit_exceeded, so the first result means something.
source "$PKIO_SRC/tests/integration/cc_lib.sh"

k1=sandbox-budget-key-1 k2=xxxx-budget-key-2 k3=yyyy-budget-key-3
cc_start_sandbox --api-key "$k1" --api-key "$k2" --api-key "$k3" \
    --burst-limit 5 --burst-window 2
work=$(pkio_tmpdir)
for k in k1 k2 k3; do write_secret_file "$PKIO_ROOT/$k.key" "${!k}"; done

CC_KEY_FILE=$PKIO_ROOT/k1.key
cc_make_order_body "$work/order.json"
cc_drv 0 place $CC_PRODUCT "$work/order.json"
order=$(out_value id)

# Each key has its own windows at the sandbox; k2 and k3 start fresh.
CC_KEY_FILE=$PKIO_ROOT/k2.key
cc_drv 0 --budget 5 2 1000 180 --attempts 1 info-repeat "$order" 12
out_has "done=12"
out_has "requests=12"
grep -Eq '^slept=[1-9]' "$OUT" || fail "the client never waited for its budget"
[[ $(cc_state 's["rate_limit"]["exceeded"]') == False ]] ||
    fail "rate-limit violations: $(cc_state 's["rate_limit"]["violations"]')"
pass "12 requests under a 5 / 2 s limit: client waited, no violation"

CC_KEY_FILE=$PKIO_ROOT/k3.key
cc_drv 20 --attempts 1 info-repeat "$order" 12
out_has "error=request_limit_exceeded: Service unavailable, please limit request volume"
[[ $(cc_state 's["rate_limit"]["exceeded"]') == True ]] || fail "control did not hit the limit"
pass "control: the default budget does exceed the lowered limit (sandbox enforces it)"
