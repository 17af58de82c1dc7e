# shellcheck shell=bash
# cc_lib.sh - helpers for the CertCentral client tests (cc_*.sh): sandbox start/stop, fault
# injection, sandbox state queries, a CSR + order body, and running cc_driver.
#
#   source "$PKIO_SRC/tests/integration/cc_lib.sh"
#
#   cc_start_sandbox [sandbox args...]  start a private sandbox; sets SB (its dir), CC_URL (API
#                                       base URL), SB_ROOT (https://127.0.0.1:PORT), CC_KEY_FILE
#   cc_fault METHOD PATH_PREFIX KIND [COUNT]   inject a fault
#   cc_sandbox_post PATH JSON           POST to the control API
#   cc_state EXPR                       evaluate a Python expression over the state JSON `s`
#   cc_log_count METHOD PATH_REGEX      API requests in requests.log matching both
#   cc_make_order_body FILE [CN]        new RSA key + CSR, order body JSON in FILE
#   cc_drv EXIT [driver options...] COMMAND ARGS...   run cc_driver against the sandbox with
#                                       fast retries, expect EXIT; output in $OUT / $ERR
#   out_has STRING / out_value KEY      look at the driver's output

source "$PKIO_SRC/tests/lib/common.sh"

require_cmd python3 openssl curl
[[ -n ${CC_DRIVER:-} && -x ${CC_DRIVER} ]] || fail "CC_DRIVER (the cc_driver binary) not set"

# The sandbox is on loopback: never send its traffic through a proxy from the environment.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

CC_DEFAULT_KEY=sandbox-0123456789abcdef
# shellcheck disable=SC2034 # used by the scripts that source this file
CC_PRODUCT=pkio_organisation_person_prof

cc_start_sandbox()
{
    SB=$(pkio_tmpdir)
    pkio_on_exit "bash '$PKIO_SRC/tests/sandbox/stop.sh' '$SB'"
    CC_URL=$(bash "$PKIO_SRC/tests/sandbox/start.sh" "$SB" "$@") || fail "sandbox did not start"
    [[ $CC_URL =~ ^https://127\.0\.0\.1:[0-9]+/services/v2$ ]] || fail "odd sandbox URL '$CC_URL'"
    SB_ROOT=${CC_URL%/services/v2}
    CC_KEY_FILE=$PKIO_ROOT/api.key
    write_secret_file "$CC_KEY_FILE" "$CC_DEFAULT_KEY"
}

cc_sandbox_post()
{
    curl -sS --fail-with-body --noproxy '*' --cacert "$SB/tls-ca.pem" -X POST \
        -H 'Content-Type: application/json' "$SB_ROOT$1" -d "$2" >/dev/null ||
        fail "sandbox control POST $1 failed"
}

cc_fault()
{
    cc_sandbox_post /__sandbox/faults \
        "{\"faults\":[{\"method\":\"$1\",\"path_prefix\":\"$2\",\"kind\":\"$3\",\"count\":${4:-1}}]}"
}

cc_state()
{
    local json
    json=$(curl -sS --fail-with-body --noproxy '*' --cacert "$SB/tls-ca.pem" \
        "$SB_ROOT/__sandbox/state") || fail "sandbox state query failed"
    python3 -c 'import json, sys; s = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' \
        "$json" "$1"
}

cc_log_count()
{
    [[ -e $SB/requests.log ]] || {
        echo 0
        return 0
    }
    python3 - "$SB/requests.log" "$1" "$2" <<'EOF'
import json, re, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("control"):
        continue
    if e["method"] == sys.argv[2] and re.search(sys.argv[3], e["path"]):
        n += 1
print(n)
EOF
}

cc_make_order_body()
{
    local file=$1 cn=${2:-Jan Jansen} d
    d=$(pkio_tmpdir)
    openssl req -new -newkey rsa:2048 -nodes -keyout "$d/key.pem" -subj "/CN=$cn" \
        -sha256 -out "$d/csr.pem" 2>/dev/null || fail "openssl req failed"
    python3 - "$d/csr.pem" "$file" <<'EOF' || fail "cannot write the order body"
import json, sys
csr = open(sys.argv[1]).read()
body = {
    "certificate": {
        "signature_hash": "sha256", "profile_option": "authentication", "csr": csr,
        "individual": {"first_name": "Jan", "last_name": "Jansen", "email": "jan@example.nl",
                       "telephone": "+31 20 123 4567", "country": "NL", "state": "Noord-Holland",
                       "city": "Amsterdam", "professional_title": "Notaris"}},
    "csa_agreed_to": True, "cs_provisioning_method": "token", "payment_method": "balance",
}
open(sys.argv[2], "w").write(json.dumps(body))
EOF
    # shellcheck disable=SC2034 # used by the scripts that source this file
    CC_CSR=$d/csr.pem
}

cc_drv()
{
    local want=$1
    shift
    expect_exit "$want" -- "$CC_DRIVER" --url "$CC_URL" --ca "$SB/tls-ca.pem" \
        --key-file "$CC_KEY_FILE" --base 0.05 --cap 0.2 "$@"
}

out_has()
{
    grep -qF -- "$1" "$OUT" || {
        cat "$OUT" >&2
        fail "driver output lacks '$1'"
    }
}

out_value()
{
    sed -n "s/^.*\\b$1=\\([^ ]*\\).*\$/\\1/p" "$OUT" | head -n1
}
