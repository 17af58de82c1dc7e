#!/usr/bin/env bash
# card_isoapplet.sh - pkio-agent enroll on a simulated IsoApplet smart card (OpenSC PKCS#15, the
# key generated on the card) against the sandbox, then the certificate and key used by OpenSSL
# through libp11's pkcs11 engine for TLS client authentication against a local s_server that
# requires and verifies a client certificate. See docs/cards-findings.md for what the card and
# OpenSC 0.23 report and why this test was pending.
#
# RSA-2048: the whole enrollment must succeed; the card signs with CKM_RSA_PKCS only (no PSS, no
#   raw RSA), so the CSR is PKCS#1 v1.5 and the TLS handshake is TLS 1.2 with rsa_pkcs1_sha256
#   (TLS 1.3 requires RSA-PSS in CertificateVerify).
# EC P-256: when the card offers raw CKM_ECDSA (so SHA-256 can be signed), the same as for RSA
#   (with TLS 1.3). The IsoApplet of ../shared/cardsim (Java Card 2.2.2 line) offers only
#   CKM_ECDSA_SHA1: then enroll must refuse before it generates a key or orders anything, in one
#   line that names ECDSA and SHA-256, and leave the card as it was.
#
# Every simulated IsoApplet card has serial 0000 and the same label, and jcardsim generates the
# same key pair every time: each enrollment gets a fresh card and its own state directory, so
# that the agent does not take the second card for the first ("already done").
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/cardsim.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool

ENGINE_SO=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
[[ -e $ENGINE_SO ]] || fail "$ENGINE_SO missing (apt-get install libengine-pkcs11-openssl)"

cardsim_setup isoapplet
enroll_setup "$CARD_MODULE"
req=$PKIO_SRC/tests/data/requests/valid-prof.json
uri="$CARD_URI?pin-source=$CARD_PIN_FILE"
orders() { cc_state "len(s['orders'])"; }

# A free port on 127.0.0.1 for s_server.
free_port()
{
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# tls_client_auth KEYID TLSVERSION: the card's certificate (and the CA certificates stored on
# the card as its chain) and its key through the pkcs11 engine authenticate to an s_server that
# requires a client certificate verifying to the sandbox root; one line of data goes through.
tls_client_auth()
{
    local keyid=$1 tlsver=$2 d port srv srvin i j idhex pct='' line
    local -a client_sigalgs=()
    d=$(pkio_tmpdir)
    # The certificates on the card: the leaf under the key's CKA_ID, the rest as the chain.
    cardsim_p11 -O --type cert 2>/dev/null | awk '/ID:/ {print $2}' >"$d/ids"
    : >"$d/chain.pem"
    while read -r idhex; do
        cardsim_p11 --read-object --type cert --id "$idhex" -o "$d/c.der" >/dev/null 2>&1 ||
            fail "cannot read certificate $idhex from the card"
        if [[ $idhex == "$keyid" ]]; then
            openssl x509 -inform DER -in "$d/c.der" -out "$d/leaf.pem" || fail "leaf to PEM"
        else
            openssl x509 -inform DER -in "$d/c.der" >>"$d/chain.pem" || fail "CA to PEM"
        fi
    done <"$d/ids"
    [[ -s $d/leaf.pem ]] || fail "no certificate under the key's id $keyid on the card"
    [[ -s $d/chain.pem ]] || fail "no CA certificate on the card"
    openssl verify -CAfile "$SB/root.pem" -untrusted "$d/chain.pem" -purpose sslclient \
        "$d/leaf.pem" >/dev/null || fail "the card's certificate does not verify for client auth"

    # The engine loads the card's module (not the p11-kit proxy) and gets the test PIN from its
    # configuration (a 0600 file under the test's directory).
    for ((i = 0; i < ${#keyid}; i += 2)); do pct+="%${keyid:i:2}"; done
    write_secret_file "$d/engine.cnf" "openssl_conf = init
[init]
engines = engines
[engines]
pkcs11 = pkcs11
[pkcs11]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $CARD_MODULE
PIN = $CARD_PIN
init = 0
"
    # The server: its own throwaway CA and certificate for 127.0.0.1.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/sca.key" \
        -subj "/CN=card test TLS CA" -days 2 -out "$d/sca.pem" 2>/dev/null || fail "server CA"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/srv.key" \
        -subj "/CN=127.0.0.1" 2>/dev/null |
        openssl x509 -req -CA "$d/sca.pem" -CAkey "$d/sca.key" -days 2 -out "$d/srv.pem" \
            -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') \
            2>/dev/null || fail "server certificate"
    if [[ $tlsver == tls1_2 ]]; then
        client_sigalgs=(-client_sigalgs "RSA+SHA256") # the card has no RSA-PSS
    fi
    # s_server quits at EOF on its standard input, even before a client comes: give it a FIFO
    # that stays open instead of /dev/null.
    mkfifo "$d/srv.in" || fail "mkfifo"
    exec {srvin}<>"$d/srv.in"
    for ((i = 0; i < 5; i++)); do
        port=$(free_port)
        openssl s_server -accept "127.0.0.1:$port" -naccept 1 -ign_eof -cert "$d/srv.pem" \
            -key "$d/srv.key" -Verify 2 -verify_return_error -CAfile "$SB/root.pem" \
            "-$tlsver" <&"$srvin" >"$d/server.log" 2>&1 &
        srv=$!
        pkio_on_exit "pkio_stop_pid $srv s_server"
        for ((j = 0; j < 250; j++)); do
            grep -q '^ACCEPT' "$d/server.log" && break
            kill -0 "$srv" 2>/dev/null || break
            sleep 0.02
        done
        grep -q '^ACCEPT' "$d/server.log" && break
        grep -q 'Address already in use' "$d/server.log" || fail "s_server did not start: $(cat "$d/server.log")"
    done
    grep -q '^ACCEPT' "$d/server.log" || fail "s_server: no free port"
    line="pkio-card-tls-ok-$RANDOM"
    printf '%s\n' "$line" | OPENSSL_CONF=$d/engine.cnf openssl s_client -connect "127.0.0.1:$port" \
        -CAfile "$d/sca.pem" -verify_ip 127.0.0.1 -verify_return_error "-$tlsver" \
        -engine pkcs11 -keyform engine -key "pkcs11:serial=$CARD_SERIAL;id=$pct;type=private" \
        -cert "$d/leaf.pem" -cert_chain "$d/chain.pem" "${client_sigalgs[@]}" \
        >"$d/client.log" 2>&1 || {
        cat "$d/client.log" "$d/server.log" >&2
        fail "TLS client authentication with the card's key failed ($tlsver)"
    }
    pkio_stop_pid "$srv" s_server
    exec {srvin}>&-
    grep -q "^$line\$" "$d/server.log" || {
        cat "$d/client.log" "$d/server.log" >&2
        fail "the data did not arrive through the TLS connection ($tlsver)"
    }
    sed -n '/^-----BEGIN CERTIFICATE-----/,/^-----END CERTIFICATE-----/p' "$d/server.log" >"$d/peer.pem"
    if ! grep -q '^Client certificate' "$d/server.log" || [[ ! -s $d/peer.pem ]] ||
        [[ $(openssl x509 -in "$d/peer.pem" -noout -fingerprint -sha256) != \
            "$(openssl x509 -in "$d/leaf.pem" -noout -fingerprint -sha256)" ]]; then
        cat "$d/server.log" >&2
        fail "s_server did not receive the card's certificate ($tlsver)"
    fi
    grep -q 'Verify return code: 0 (ok)' "$d/client.log" || fail "client did not verify the server"
}

# --- RSA-2048 -----------------------------------------------------------------------------------
STATE_RSA=$STATE
expect_exit 0 -- pa --state-dir "$STATE_RSA" enroll --token "$uri" --request "$req" --key-type rsa:2048 --json
job=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="done", d; print(d["job"])' "$OUT")
[[ $(token_count "$CARD_LABEL" privkey) -eq 1 ]] || fail "RSA: not exactly one private key on the card"
[[ $(token_count "$CARD_LABEL" cert) -ge 2 ]] || fail "RSA: leaf and CA certificate not both on the card"
token_cert_matches_key "$CARD_LABEL"
[[ $(orders) -eq 1 ]] || fail "RSA: $(orders) orders, expected 1"
keyid=$(pa --state-dir "$STATE_RSA" status "$job" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["key_id_hex"])')
pass "RSA-2048: enroll on the IsoApplet card done (key on the card, one order, leaf + chain written)"
tls_client_auth "$keyid" tls1_2
pass "RSA-2048: the card's key and certificate authenticate a TLS 1.2 client through the pkcs11 engine"

# --- a card pulled while its job is under way: a clear error, the job parked, nothing lost --------
cardsim_swap isoapplet
STATE_PULL=$(pkio_tmpdir)/state
cc_sandbox_post /__sandbox/behavior '{"behavior":"never"}'
expect_exit 13 -- pa --state-dir "$STATE_PULL" enroll --token "$uri" --request "$req" --key-type rsa:2048 --no-wait --json
jobp=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job"])' "$OUT")
cc_sandbox_post /__sandbox/behavior '{"behavior":"issue","issue_after_polls":0}'
cardsim_remove
expect_exit 5 -- pa --state-dir "$STATE_PULL" resume "$jobp" --pin-source "$CARD_PIN_FILE"
[[ $(wc -l <"$ERR") -eq 1 ]] && grep -q "token" "$ERR" || fail "pulled card: not one clear line: $(cat "$ERR")"
st=$(pa --state-dir "$STATE_PULL" status "$jobp" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["state"])')
[[ $st == issued ]] || fail "pulled card: job is '$st', want it parked at 'issued' with its certificate"
pass "a card pulled after ordering: resume says the token is missing (exit 5); the job waits at 'issued' with its certificate"

# --- EC P-256 -----------------------------------------------------------------------------------
cardsim_swap isoapplet
STATE_EC=$(pkio_tmpdir)/state
orders_before=$(orders)
if cardsim_p11 -M 2>/dev/null | grep -qE '^[[:space:]]+ECDSA, .*sign'; then
    expect_exit 0 -- pa --state-dir "$STATE_EC" enroll --token "$uri" --request "$req" --key-type ec:p256 --json
    job=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="done", d; print(d["job"])' "$OUT")
    token_cert_matches_key "$CARD_LABEL"
    [[ $(orders) -eq $((orders_before + 1)) ]] || fail "EC: not exactly one new order"
    keyid=$(pa --state-dir "$STATE_EC" status "$job" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["key_id_hex"])')
    tls_client_auth "$keyid" tls1_3
    pass "EC P-256: enroll done and TLS 1.3 client authentication with the card's key"
else
    ERR=$PKIO_ROOT/ec-enroll.err
    rc=0
    pa --state-dir "$STATE_EC" enroll --token "$uri" --request "$req" --key-type ec:p256 \
        >"$PKIO_ROOT/ec-enroll.out" 2>"$ERR" || rc=$?
    [[ $rc -ne 0 && $rc -lt 128 ]] || fail "EC: enroll exited $rc, expected a refusal: $(cat "$ERR")"
    [[ $(wc -l <"$ERR") -eq 1 ]] || fail "EC: expected one line on stderr, got: $(cat "$ERR")"
    if ! grep -qi 'ecdsa' "$ERR" || ! grep -qiE 'sha-?256' "$ERR"; then
        fail "EC: the refusal does not say that the card cannot sign ECDSA with SHA-256: $(cat "$ERR")"
    fi
    [[ $(token_count "$CARD_LABEL" privkey) -eq 0 && $(token_count "$CARD_LABEL" pubkey) -eq 0 ]] ||
        fail "EC: the refusal left a key on the card: $(cardsim_p11 --login --pin "$CARD_PIN" -O 2>&1)"
    [[ $(orders) -eq $orders_before ]] || fail "EC: an order was placed for a key the card cannot use"
    pass "EC P-256: the card signs ECDSA only with SHA-1 on the card; enroll refuses up front: $(cat "$ERR")"
fi
