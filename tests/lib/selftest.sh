#!/bin/bash
# harness_selftest: the shell harness itself - common.sh, softhsm.sh, tpm2.sh, spy.sh.
# The child scripts below are single-quoted on purpose: they expand in the child.
# shellcheck source-path=SCRIPTDIR disable=SC2016
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=softhsm.sh
source "$PKIO_LIB/softhsm.sh"
# shellcheck source=tpm2.sh
source "$PKIO_LIB/tpm2.sh"
# shellcheck source=spy.sh
source "$PKIO_LIB/spy.sh"

require_cmd pkcs11-tool ps pgrep
W=$(pkio_tmpdir)

# Runs a child bash with the library loaded; $1 is the script body.
child()
{
    local f
    f=$(mktemp "$W/child.XXXXXXXX")
    {
        echo "source '$PKIO_LIB/common.sh'"
        echo "$1"
    } >"$f"
    bash "$f"
}

# --- common.sh -------------------------------------------------------------------------
[[ -d $W && $W == "$PKIO_ROOT"/* && $(stat -c %a "$W") == 700 ]] ||
    fail "pkio_tmpdir gave '$W' (PKIO_ROOT=$PKIO_ROOT)"

expect_exit 3 -- child '
    pkio_on_exit "echo first-registered"
    pkio_on_exit "echo second-registered"
    echo "$PKIO_ROOT" >"'"$W"'/child-root"
    exit 3'
assert_lines=$(cat "$OUT")
[[ $assert_lines == $'second-registered\nfirst-registered' ]] ||
    fail "cleanup order: '$assert_lines'"
child_root=$(cat "$W/child-root")
[[ ! -e $child_root ]] || fail "child root $child_root left behind"

expect_exit 1 -- child 'expect_exit 0 -- sh -c "echo to-out; echo to-err >&2; exit 4"'
for want in 'exit status 4, expected 0' to-out to-err '^FAIL: '; do
    grep -q -- "$want" "$ERR" || fail "expect_exit failure report lacks '$want': $(cat "$ERR")"
done
expect_exit 0 -- child 'expect_exit nonzero -- false; expect_exit 0 -- true'

expect_exit 1 -- child 'require_cmd bash tpm2_surely_missing'
grep -q "FAIL: required command 'tpm2_surely_missing' not found (apt-get install tpm2-tools)" \
    "$ERR" || fail "require_cmd message: $(cat "$ERR")"

write_secret_file "$W/secret" "s3cret"
[[ $(stat -c %a "$W/secret") == 600 && $(cat "$W/secret") == s3cret ]] ||
    fail "write_secret_file"
[[ $(pkio_uri_encode 'my token;x/y') == 'my%20token%3Bx%2Fy' ]] || fail "pkio_uri_encode"
expect_exit 1 -- child 'x=$(pkio_on_exit "true")'
expect_exit 0 -- child '
    pkio_spawn sleeper sleep 1000
    echo "$PKIO_SPAWN_PID" >"'"$W"'/spawn-pid"
    pkio_wait_until 10 "the sleeper" kill -0 "$PKIO_SPAWN_PID"'
if ps -p "$(cat "$W/spawn-pid")" >/dev/null; then
    fail "pkio_spawn: process $(cat "$W/spawn-pid") survived the exit trap"
fi
pass "common.sh: tmpdir, cleanup order on failure, expect_exit, require_cmd, secrets, spawn"

# --- softhsm.sh --------------------------------------------------------------------------
S=$(pkio_tmpdir)
softhsm_setup "$S"
[[ $SOFTHSM2_CONF == "$S/softhsm2.conf" && $SOFTHSM_MODULE == /usr/lib/softhsm/libsofthsm2.so ]] ||
    fail "softhsm_setup exports"
[[ $TOKEN_LABEL == pkio-test && $TOKEN_SERIAL =~ ^[0-9a-f]{16}$ ]] ||
    fail "TOKEN_LABEL='$TOKEN_LABEL' TOKEN_SERIAL='$TOKEN_SERIAL'"
[[ $TOKEN_URI == "pkcs11:token=pkio-test;serial=$TOKEN_SERIAL" ]] || fail "TOKEN_URI=$TOKEN_URI"
[[ $(cat "$S/pin") == 1234 && $(stat -c %a "$S/pin") == 600 ]] || fail "$S/pin"
expect_exit 0 -- pkcs11-tool --module "$SOFTHSM_MODULE" -L
for want in "token label *: pkio-test" "serial num *: $TOKEN_SERIAL"; do
    grep -q "$want" "$OUT" || fail "pkcs11-tool -L does not show '$want': $(cat "$OUT")"
done
first_serial=$TOKEN_SERIAL

second=$(softhsm_add_token "$S" second)
dup=$(softhsm_add_token "$S" pkio-test)
[[ $second != "$first_serial" && $dup != "$first_serial" && $dup != "$second" ]] ||
    fail "serials not distinct: $first_serial $second $dup"
[[ $(softhsm_serials | sort | tr '\n' ' ') == "$(printf '%s\n' "$first_serial" "$second" "$dup" |
    sort | tr '\n' ' ')" ]] || fail "softhsm_serials: $(softhsm_serials)"
softhsm_delete_token pkio-test "$dup"
softhsm_delete_token second
[[ $(softhsm_serials) == "$first_serial" ]] || fail "after delete: $(softhsm_serials)"
pass "softhsm.sh: setup, add_token (duplicate labels too), delete_token"

# --- spy.sh on SoftHSM -------------------------------------------------------------------
spy_wrap "$SOFTHSM_MODULE" "$S/spy.log"
[[ $SPY_MODULE == /usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so ]] || fail "SPY_MODULE"
expect_exit 0 -- pkcs11-tool --module "$SPY_MODULE" --token-label pkio-test --keypairgen \
    --key-type rsa:2048 --login --pin 1234 --label spykey --id 01
printf 'data' >"$S/data"
expect_exit 0 -- pkcs11-tool --module "$SPY_MODULE" --token-label pkio-test --sign \
    -m SHA256-RSA-PKCS --login --pin 1234 --id 01 -i "$S/data" -o "$S/sig"
[[ $(spy_count "$S/spy.log" C_Login) == 2 ]] || fail "spy_count C_Login: $(spy_count "$S/spy.log" C_Login)"
[[ $(spy_count "$S/spy.log" C_Sign) == 1 ]] || fail "spy_count C_Sign"
[[ $(spy_count "$S/spy.log" C_Nonexistent) == 0 ]] || fail "spy_count of an absent call"
[[ $(spy_mechanisms "$S/spy.log" C_GenerateKeyPair) == CKM_RSA_PKCS_KEY_PAIR_GEN ]] ||
    fail "spy_mechanisms C_GenerateKeyPair: $(spy_mechanisms "$S/spy.log" C_GenerateKeyPair)"
[[ $(spy_mechanisms "$S/spy.log" C_SignInit) == CKM_SHA256_RSA_PKCS ]] ||
    fail "spy_mechanisms C_SignInit: $(spy_mechanisms "$S/spy.log" C_SignInit)"
[[ $(spy_returns "$S/spy.log" C_Login | sort -u) == CKR_OK ]] || fail "spy_returns C_Login"
unset PKCS11SPY PKCS11SPY_OUTPUT
expect_exit 1 -- child "source '$PKIO_LIB/spy.sh'; spy_count '$S/no-such.log' C_Login"
pass "spy.sh: count, mechanisms, returns on a SoftHSM keygen + sign"

# --- tpm2.sh, teardown by the exit trap after a failure ----------------------------------
expect_exit 1 -- child "
    source '$PKIO_LIB/tpm2.sh'
    tpm2_setup \"\$(pkio_tmpdir)\"
    echo \"\$TPM2_SWTPM_PID \$TPM2_DBUS_PID \$TPM2_ABRMD_PID\" >'$W/tpm-pids'
    echo \"\$PKIO_ROOT\" >'$W/tpm-root'
    echo \"\$TPM2_SETUP_MS \$TPM2_SWTPM_TCTI\" >'$W/tpm-info'
    [[ \$TOKEN_LABEL == tpm-test && -n \$TOKEN_SERIAL ]] || fail 'TOKEN_LABEL/SERIAL'
    [[ \$TOKEN_URI == \"pkcs11:token=tpm-test;serial=\$TOKEN_SERIAL\" ]] || fail \"\$TOKEN_URI\"
    [[ \$TPM2_MODULE == /usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so ]] || fail TPM2_MODULE
    [[ \$(cat \"\$TOKEN_PIN_FILE\") == 1234 ]] || fail 'pin file'
    pkcs11-tool --module \"\$TPM2_MODULE\" -L | grep -q 'token label *: tpm-test' || fail 'tpm -L'
    pkcs11-tool --module \"\$TPM2_MODULE\" --keypairgen --key-type rsa:2048 --login --pin 1234 \
        --label k1 >\"\$PKIO_ROOT/keygen.out\" 2>&1 || fail \"keygen: \$(cat \"\$PKIO_ROOT/keygen.out\")\"
    pkcs11-tool --module \"\$TPM2_MODULE\" --login --pin 1234 -O --type privkey |
        grep -q 'label: *k1' || fail 'key k1 not listed'
    echo keygen-ok >'$W/tpm-keygen'
    fail 'deliberate failure: the exit trap must still stop the daemons'"
grep -q 'deliberate failure' "$ERR" || fail "tpm2 child failed early: $(cat "$ERR")"
[[ -f $W/tpm-keygen ]] || fail "tpm2 keygen did not run: $(cat "$ERR")"
read -r -a pids <"$W/tpm-pids"
[[ ${#pids[@]} == 3 ]] || fail "tpm2 PIDs: ${pids[*]}"
for p in "${pids[@]}"; do
    if ps -p "$p" -o pid=,stat=,comm= >/dev/null; then
        fail "process $p ($(ps -p "$p" -o comm=)) survived the exit trap"
    fi
done
[[ ! -e $(cat "$W/tpm-root") ]] || fail "tpm2 child left $(cat "$W/tpm-root")"
read -r setup_ms swtpm_tcti <"$W/tpm-info"
pass "tpm2.sh (unix socket): setup ${setup_ms} ms, -L, RSA-2048 keygen; exit trap stopped" \
    "${pids[*]} ($swtpm_tcti)"

# --- tpm2.sh over TCP, explicit teardown ---------------------------------------------------
T=$(pkio_tmpdir)
TPM2_SWTPM_TRANSPORT=tcp tpm2_setup "$T" tpm-tcp
[[ $TPM2_SWTPM_TCTI =~ ^swtpm:host=127\.0\.0\.1,port=[0-9]+$ ]] || fail "$TPM2_SWTPM_TCTI"
expect_exit 0 -- pkcs11-tool --module "$TPM2_MODULE" -L
grep -q 'token label *: tpm-tcp' "$OUT" || fail "tpm-tcp not listed: $(cat "$OUT")"
port=${TPM2_SWTPM_TCTI##*port=}

# A second swtpm offered the same (busy) port must lose the bind and take another pair.
expect_exit 0 -- child "
    source '$PKIO_LIB/tpm2.sh'
    eval \"\$(declare -f _tpm2_free_port_pair | sed '1s/_tpm2_free_port_pair/_real_pair/')\"
    _tpm2_free_port_pair()
    {
        if [[ -e \$PKIO_ROOT/offered ]]; then
            _real_pair
        else
            touch \"\$PKIO_ROOT/offered\"
            echo $port
        fi
    }
    D=\$(pkio_tmpdir)
    TPM2_SWTPM_TRANSPORT=tcp tpm2_setup \"\$D\" tpm-race
    grep -q 'Address already in use' \"\$D/swtpm.1.log\" || fail 'first attempt did not collide'
    [[ \$TPM2_SWTPM_TCTI != *port=$port ]] || fail 'second attempt reused the busy port'
    pkcs11-tool --module \"\$TPM2_MODULE\" -L | grep -q 'token label *: tpm-race' || fail 'tpm-race -L'
    echo \"\$TPM2_SWTPM_TCTI\""
pass "tpm2.sh (tcp): a port taken by another swtpm is retried: port $port -> $(cat "$OUT")"

pids=("$TPM2_SWTPM_PID" "$TPM2_DBUS_PID" "$TPM2_ABRMD_PID")
tpm2_teardown
for p in "${pids[@]}"; do
    if ps -p "$p" >/dev/null; then
        fail "process $p survived tpm2_teardown"
    fi
done
children=$(pgrep -P "$$" -l | grep -E ' (swtpm|dbus-daemon|tpm2-abrmd)$' || true)
[[ -z $children ]] || fail "daemons still running under the test: $children"
pass "tpm2.sh (tcp, $TPM2_SWTPM_TCTI): setup ${TPM2_SETUP_MS} ms; tpm2_teardown stopped ${pids[*]}"
