#!/bin/bash
# CertCentral client TLS policy: a server certificate the CA bundle does not trust is refused
# before any request reaches the server (requests.log stays empty), is not retried, and an order
# is reported as not placed; unreadable CA bundles and non-HTTPS URLs are configuration errors.
source "$PKIO_SRC/tests/integration/cc_lib.sh"

# shellcheck disable=SC2119 # no sandbox options
cc_start_sandbox
work=$(pkio_tmpdir)
cc_make_order_body "$work/order.json"
log_lines() { if [[ -e $SB/requests.log ]]; then wc -l <"$SB/requests.log"; else echo 0; fi; }

drv_ca() { # EXIT CA_ARGS... -- COMMAND...
    local want=$1
    shift
    expect_exit "$want" -- "$CC_DRIVER" --url "$CC_URL" --key-file "$CC_KEY_FILE" \
        --base 0.05 --cap 0.2 "$@"
}

# The issuing root of the sandbox is a real CA, but not the one of its TLS server.
drv_ca 20 --ca "$SB/root.pem" place $CC_PRODUCT "$work/order.json"
out_has "error=TLS certificate of 127.0.0.1 not trusted"
out_has "the order was not placed"
out_has "maybe_placed=0"
out_has "requests=1"
drv_ca 20 --ca "$SB/root.pem" info 100001
out_has "TLS certificate of 127.0.0.1 not trusted"
out_has "requests=1"
out_has "slept=0 "
# Without --ca the system store is used, which does not know the sandbox CA either.
drv_ca 20 info 100001
out_has "not trusted"
[[ $(log_lines) == 0 ]] || fail "a request reached the sandbox despite the untrusted certificate"
pass "untrusted server certificate: refused before any request, not retried, not placed"

drv_ca 5 --ca "$work/missing.pem" info 100001
out_has "cannot read CA bundle $work/missing.pem"
out_has "requests=1"
printf 'not a certificate\n' >"$work/junk.pem"
drv_ca 5 --ca "$work/junk.pem" info 100001
out_has "cannot read CA bundle $work/junk.pem"
expect_exit 5 -- "$CC_DRIVER" --url "http://127.0.0.1:${SB_ROOT##*:}/services/v2" \
    --key-file "$CC_KEY_FILE" info 100001
out_has "error: cc_client_new: configuration error"
[[ $(log_lines) == 0 ]] || fail "a request reached the sandbox"
pass "unreadable CA bundle and http:// URL are configuration errors"

# Sanity: with the right bundle the same sandbox answers, and the log sees that one request.
cc_drv 0 place $CC_PRODUCT "$work/order.json"
[[ $(log_lines) == 1 ]] || fail "expected exactly one logged request"
pass "trusted bundle: one request, logged"
