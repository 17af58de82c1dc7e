# shellcheck shell=bash
# enroll_lib.sh - set-up shared by the enrollment tests: a sandbox, a config pointing at it, a
# private state directory, and helpers to read jobs and tokens. Source after common.sh,
# softhsm.sh (or tpm2.sh) and cc_lib.sh.
#
#   enroll_setup MODULE          sandbox + config in $CFG, state dir $STATE
#   pa ARGS...                   run pkio-agent with that config
#   job_field JOB FIELD          a field of `status JOB --json`
#   only_job_id                  the id of the single job (fails if there is not exactly one)
#   token_count LABEL TYPE       number of objects of TYPE (privkey|pubkey|cert) on a token
#   token_cert_matches_key LABEL the token's certificate carries its key (by ID)

enroll_setup()
{
    local module=$1
    cc_start_sandbox "${@:2}"
    STATE=$(pkio_tmpdir)/state
    CFG=$PKIO_ROOT/config.json
    cat >"$CFG" <<JSON
{"api": {"url": "$CC_URL", "key_file": "$CC_KEY_FILE", "ca_bundle": "$SB/tls-ca.pem",
         "timeout_s": 3, "connect_timeout_s": 2, "order_settle_s": 4},
 "token": {"module": "$module", "allow_software": true},
 "trust": {"anchors": "$SB/root.pem"},
 "poll": {"initial_s": 0.05, "max_s": 0.2, "timeout_s": 60},
 "state_dir": "$STATE"}
JSON
}

pa() { "$PKIO_AGENT" --config "$CFG" "$@"; }

job_field()
{
    "$PKIO_AGENT" --config "$CFG" status "$1" --json |
        python3 -c 'import json,sys; v=json.load(sys.stdin)["job"].get(sys.argv[1]); print("" if v is None else v)' "$2"
}

only_job_id()
{
    "$PKIO_AGENT" --config "$CFG" status --json |
        python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"]; assert len(j)==1, j; print(j[0]["id"])'
}

token_count()
{
    pkcs11-tool --module "$TOKEN_MODULE" --token-label "$1" --login --pin "$TOKEN_PIN" \
        -O --type "$2" 2>/dev/null | grep -c "Object;" || true
}

token_cert_matches_key()
{
    local label=$1 d
    d=$(pkio_tmpdir)
    pkcs11-tool --module "$TOKEN_MODULE" --token-label "$label" --login --pin "$TOKEN_PIN" \
        -O --type privkey 2>/dev/null | awk '/ID:/ {print $2; exit}' >"$d/id"
    [[ -s $d/id ]] || fail "no private key on token $label"
    pkcs11-tool --module "$TOKEN_MODULE" --token-label "$label" --read-object --type cert \
        --id "$(cat "$d/id")" -o "$d/cert.der" >/dev/null 2>&1 || fail "no certificate under the key's ID on $label"
    pkcs11-tool --module "$TOKEN_MODULE" --token-label "$label" --read-object --type pubkey \
        --id "$(cat "$d/id")" -o "$d/pub.der" >/dev/null 2>&1 || fail "no public key under the key's ID on $label"
    cmp -s <(openssl x509 -inform DER -in "$d/cert.der" -noout -pubkey | openssl pkey -pubin -outform DER) \
        <(openssl pkey -pubin -inform DER -in "$d/pub.der" -outform DER) ||
        fail "certificate on $label does not carry the token key"
}
