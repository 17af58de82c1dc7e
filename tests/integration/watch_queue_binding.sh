#!/usr/bin/env bash
# Queue binding under `pkio-agent watch` on SoftHSM2 against the sandbox: a queued request goes
# only to the token it is bound to, and an unbound one only to a blank token.
#   - bound by --token 'pkcs11:token=alice': enrolled onto alice only, never onto the blank token
#     bob that waits next to it, nor onto carol, a foreign token with someone else's key pair and
#     certificate (and no job record of ours);
#   - bound by --serial: likewise, onto the token with that serial only;
#   - unbound: never onto carol (seen without logging in), never onto dave, whose only object is
#     a private key that is private (only the enroll child's --only-blank check after login sees
#     it: the request goes back to the queue and dave is left alone), but onto erin, which holds
#     only a CA certificate and so counts as blank;
#   - carol's objects are unchanged at the end, and the sandbox holds exactly one order per
#     intended enrollment.
# Tokens that must never be seen half-built are made in a staging directory the daemon does not
# watch and moved in whole. SoftHSM2 has no insertion events: the daemon rescans (--detect rescan).
source "$PKIO_SRC/tests/lib/common.sh"
source "$PKIO_SRC/tests/lib/softhsm.sh"
source "$PKIO_SRC/tests/integration/cc_lib.sh"
source "$PKIO_SRC/tests/integration/enroll_lib.sh"
require_cmd openssl python3 curl pkcs11-tool

tokdir=$(pkio_tmpdir)
softhsm_setup "$tokdir" officer # the officer's own token, ignored by the daemon
officer_serial=$TOKEN_SERIAL
stage=$(pkio_tmpdir)
softhsm_stage_setup "$stage"
enroll_setup "$SOFTHSM_MODULE"
pin=$TOKEN_PIN_FILE
W=$(pkio_tmpdir)

# One request per person, told apart by name (the order's common name and the token's cert).
person_request() { # FILE FIRST LAST
    python3 - "$PKIO_SRC/tests/data/requests/valid-prof.json" "$@" <<'EOF'
import json, sys
src, out, first, last = sys.argv[1:5]
r = json.load(open(src))
r["certificate"]["individual"]["first_name"] = first
r["certificate"]["individual"]["last_name"] = last
json.dump(r, open(out, "w"), indent=1)
EOF
}
person_request "$W/alice.json" Alice Aardema
person_request "$W/frank.json" Frank Fokkema
person_request "$W/uma.json" Uma Uitenbroek

p11() { pkcs11-tool --module "$SOFTHSM_MODULE" "$@"; }
staged_p11() { softhsm_stage_run "$stage" pkcs11-tool --module "$SOFTHSM_MODULE" "$@"; }
# Every object of a token as the user sees it (logged in), in a stable order.
objects_of() { p11 --token-label "$1" --login --pin "$TOKEN_PIN" -O 2>/dev/null | sort; }
count_of() { # LABEL TYPE (privkey|pubkey|cert|secrkey), logged in
    p11 --token-label "$1" --login --pin "$TOKEN_PIN" -O --type "$2" 2>/dev/null | grep -c "Object;" || true
}
orders() { cc_state "len(s['orders'])"; }
order_names() { cc_state "' | '.join(sorted(o['common_name'] for o in s['orders']))"; }
queued() { pa queue list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["queue"]))'; }
job_state_of() { # serial -> state of its newest job ("" if none)
    pa status --json | python3 -c 'import json,sys; s=[j["state"] for j in json.load(sys.stdin)["jobs"] if j["token_serial"]==sys.argv[1]]; print(s[-1] if s else "")' "$1"
}
state_is() { [[ $(job_state_of "$1") == "$2" ]]; }
cert_cn_on() { # LABEL -> subject CN of the certificate under the private key's ID
    local id
    id=$(p11 --token-label "$1" --login --pin "$TOKEN_PIN" -O --type privkey 2>/dev/null | awk '/ID:/ {print $2; exit}')
    [[ -n $id ]] || fail "no private key on token $1"
    p11 --token-label "$1" --read-object --type cert --id "$id" -o "$W/$1.der" >/dev/null 2>&1 ||
        fail "no certificate under the key's ID on $1"
    openssl x509 -inform DER -in "$W/$1.der" -noout -subject -nameopt multiline | awk -F' = ' '/commonName/ {print $2}'
}
log_lines() { grep -c -- "$1" "$PKIO_ROOT/watch.log" || true; }

# --- carol: someone else's key pair and certificate (made outside the token, then imported) -----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/carol.key" -out "$W/carol.pem" -days 30 \
    -subj "/CN=Carol Someone-Else" -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null ||
    fail "openssl req (carol)"
openssl pkey -in "$W/carol.key" -outform DER -out "$W/carol.key.der"
openssl pkey -in "$W/carol.key" -pubout -outform DER -out "$W/carol.pubkey.der"
openssl x509 -in "$W/carol.pem" -outform DER -out "$W/carol.der"
softhsm_stage_token "$stage" carol >/dev/null
for type in privkey pubkey cert; do
    file=$W/carol.$type.der
    [[ $type == privkey ]] && file=$W/carol.key.der
    [[ $type == cert ]] && file=$W/carol.der
    staged_p11 --token-label carol --login --pin "$TOKEN_PIN" --write-object "$file" --type "$type" \
        --id 0c --label "carol's key" >/dev/null 2>&1 || fail "writing carol's $type"
done
softhsm_insert_staged "$stage" "$tokdir" carol
carol_before=$(objects_of carol)
[[ $(count_of carol privkey) -eq 1 && $(count_of carol cert) -eq 1 ]] || fail "carol set-up: $carol_before"

pkio_spawn watch "$PKIO_AGENT" --config "$CFG" watch --detect rescan --rescan 0.3 \
    --pin-source "$pin" --ignore "$officer_serial" --retry 0.5
watch_pid=$PKIO_SPAWN_PID
pkio_wait_until 20 "watch ready" grep -q "ready" "$PKIO_ROOT/watch.log"
pkio_wait_until 10 "carol noted as in use" grep -q "token 'carol' .* is in use" "$PKIO_ROOT/watch.log"

# --- bound by --token 'pkcs11:token=alice' ------------------------------------------------------
expect_exit 0 -- pa queue add --token 'pkcs11:token=alice' --request "$W/alice.json"
grep -q "token=alice" "$OUT" || fail "queue add does not name the binding: $(cat "$OUT")"
pa queue list --json | python3 -c 'import json,sys; q=json.load(sys.stdin)["queue"]; assert len(q)==1 and q[0]["bind"]=={"token":"alice"}, q' ||
    fail "queue list --json lacks the binding"
bob_serial=$(softhsm_add_token "$tokdir" bob) # blank, and first in line
sleep 2                                       # several rescans and retries with bob present
[[ $(orders) -eq 0 && $(queued) -eq 1 ]] || fail "the request bound to alice went elsewhere: orders $(orders), queued $(queued)"
[[ -z $(objects_of bob) && -z $(job_state_of "$bob_serial") ]] || fail "blank token bob was written to"
alice_serial=$(softhsm_add_token "$tokdir" alice)
pkio_wait_until 60 "alice enrolled" state_is "$alice_serial" "done"
token_cert_matches_key alice
[[ $(cert_cn_on alice) == "Alice Aardema" ]] || fail "alice's certificate is for '$(cert_cn_on alice)'"
[[ $(orders) -eq 1 && $(order_names) == "Alice Aardema" ]] || fail "orders after alice: $(order_names)"
[[ -z $(objects_of bob) && $(queued) -eq 0 ]] || fail "bob written to, or the queue not emptied"
pass "bound by --token 'pkcs11:token=alice': enrolled onto alice only; blank bob and foreign carol untouched"

# --- bound by --serial ----------------------------------------------------------------------------
frank_serial=$(softhsm_stage_token "$stage" frank) # serial known before the token arrives
expect_exit 0 -- pa queue add --serial "$frank_serial" --request "$W/frank.json"
pa queue list | grep -q "serial=$frank_serial" || fail "queue list does not show the serial binding: $(pa queue list)"
sleep 1.5
[[ $(orders) -eq 1 && $(queued) -eq 1 && -z $(objects_of bob) ]] ||
    fail "the request bound to serial $frank_serial went elsewhere: $(order_names)"
softhsm_insert_staged "$stage" "$tokdir" frank
pkio_wait_until 60 "frank enrolled" state_is "$frank_serial" "done"
[[ $(cert_cn_on frank) == "Frank Fokkema" ]] || fail "frank's certificate is for '$(cert_cn_on frank)'"
[[ $(orders) -eq 2 && -z $(objects_of bob) && $(queued) -eq 0 ]] || fail "orders after frank: $(order_names)"
pass "bound by --serial: enrolled onto that token only; blank bob untouched"

# --- unbound: never onto carol, nor onto dave (private key only) ----------------------------------
softhsm_delete_token bob # leaves: dave is the one token that looks blank from outside
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -outform DER -out "$W/dave.key.der" 2>/dev/null
dave_serial=$(softhsm_stage_token "$stage" dave)
staged_p11 --token-label dave --login --pin "$TOKEN_PIN" --write-object "$W/dave.key.der" \
    --type privkey --id 0d --label "dave's key" >/dev/null 2>&1 || fail "writing dave's key"
[[ -z $(staged_p11 --token-label dave -O 2>/dev/null) ]] || fail "dave's private key is visible without login"
softhsm_insert_staged "$stage" "$tokdir" dave
dave_before=$(objects_of dave)
sleep 1 # dave seen: no request for it yet
expect_exit 0 -- pa queue add --request "$W/uma.json"
grep -q "first blank token" "$OUT" || fail "an unbound entry is not announced as such: $(cat "$OUT")"
# The sub-case the daemon cannot decide: dave looks blank without login; the enroll child
# (--only-blank, after login) sees the private key and refuses (exit 16).
pkio_wait_until 30 "dave refused by the child's --only-blank check" \
    grep -q "token 'dave' .* refused" "$PKIO_ROOT/watch.log"
sleep 1 # longer than --retry: a refused token is not tried again by itself
[[ $(orders) -eq 2 && $(queued) -eq 1 ]] || fail "unbound request after dave: orders $(order_names), queued $(queued)"
[[ $(objects_of dave) == "$dave_before" ]] || fail "dave was written to: $(objects_of dave)"
[[ -z $(job_state_of "$dave_serial") ]] || fail "a job was started for dave: $(job_state_of "$dave_serial")"
[[ $(log_lines "token 'dave' .* refused") -eq 1 ]] || fail "dave was tried more than once"
grep -q "token 'dave' .*for a blank token" "$PKIO_ROOT/watch.log" || fail "dave's attempt was not logged as unbound"
pass "unbound: not onto foreign carol; dave (a private key only) refused after login, request back in the queue"

# --- unbound: onto erin, which holds only a CA certificate ---------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/ca.key" -out "$W/ca.pem" -days 30 \
    -subj "/CN=Erin Test CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null || fail "openssl req (CA)"
openssl x509 -in "$W/ca.pem" -outform DER -out "$W/ca.der"
erin_serial=$(softhsm_stage_token "$stage" erin)
staged_p11 --token-label erin --login --pin "$TOKEN_PIN" --write-object "$W/ca.der" --type cert \
    --label "Erin Test CA" >/dev/null 2>&1 || fail "writing erin's CA certificate"
softhsm_insert_staged "$stage" "$tokdir" erin
pkio_wait_until 60 "erin enrolled" state_is "$erin_serial" "done"
[[ $(cert_cn_on erin) == "Uma Uitenbroek" ]] || fail "erin's certificate is for '$(cert_cn_on erin)'"
p11 --token-label erin -O --type cert 2>/dev/null | grep -q "Erin Test CA" || fail "erin's CA certificate is gone"
[[ $(queued) -eq 0 ]] || fail "the unbound request is still queued"
pass "unbound: enrolled onto erin (only a CA certificate: blank)"

# --- nothing else happened ------------------------------------------------------------------------
[[ $(objects_of carol) == "$carol_before" ]] || fail "carol's objects changed: $(objects_of carol)"
[[ $(objects_of dave) == "$dave_before" ]] || fail "dave's objects changed"
[[ $(orders) -eq 3 && $(cc_state "max(s['orders_per_key'].values())") -eq 1 ]] ||
    fail "expected 3 orders, one per key: $(order_names)"
[[ $(order_names) == "Alice Aardema | Frank Fokkema | Uma Uitenbroek" ]] || fail "orders: $(order_names)"
[[ -z $(job_state_of "$officer_serial") ]] || fail "the officer's token got a job"
[[ $(log_lines "token 'carol' .* is in use") -eq 1 ]] ||
    fail "carol's 'in use' journal line: $(log_lines "token 'carol' .* is in use") times"
pass "carol unchanged, dave unchanged, 3 orders for 3 intended enrollments, one journal line for carol"

kill -TERM "$watch_pid"
pkio_wait_until 30 "watch stopped" sh -c "! kill -0 $watch_pid 2>/dev/null"
wait "$watch_pid" 2>/dev/null && rc=0 || rc=$?
[[ $rc -eq 0 ]] || fail "watch exited $rc on SIGTERM: $(tail -n 5 "$PKIO_ROOT/watch.log")"
if grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$PKIO_ROOT/watch.log"; then
    fail "sanitizer report from the daemon or a job (above)"
fi
expect_exit 0 -- pa audit verify
