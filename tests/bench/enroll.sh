#!/usr/bin/env bash
# enroll.sh - on-demand benchmark (not part of ctest): one whole enrollment on a SoftHSM2 token
# against the CertCentral sandbox, which issues at once (--issue-after-polls 0):
#   (A) pkio-agent enroll   versus
#   (B) the scripted way: pkcs11-tool --keypairgen, openssl req -engine pkcs11, jq + curl POST,
#       curl GET order info, curl download, openssl x509 -outform DER, pkcs11-tool --write-object.
# Every round starts on a fresh token; afterwards its certificate must carry the token's key.
# Usage: tests/bench/enroll.sh [-n ROUNDS] [-k rsa:2048|ec:p256] [-a AGENT] [-m MODULE]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
ROUNDS=15 KTYPE=rsa:2048
AGENT=$src/build-bench/agent/pkio-agent
MODULE=/usr/lib/softhsm/libsofthsm2.so
REQ=$src/tests/data/requests/valid-prof.json
PRODUCT=pkio_organisation_person_prof
SUBJ="/C=NL/GN=Johanna Maria/SN=de Vries/CN=Johanna Maria de Vries" # what pkio-agent puts in
while getopts "n:k:a:m:h" o; do
    case $o in
    n) ROUNDS=$OPTARG ;;
    k) KTYPE=$OPTARG ;;
    a) AGENT=$OPTARG ;;
    m) MODULE=$OPTARG ;;
    h) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) exit 2 ;;
    esac
done
case $KTYPE in
rsa:2048) P11TYPE=rsa:2048 ;;
ec:p256) P11TYPE=EC:prime256v1 ;;
*) echo "unsupported key type '$KTYPE' (rsa:2048 or ec:p256)" >&2; exit 2 ;;
esac
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 10 ]] || { echo "-n needs at least 10 rounds" >&2; exit 2; }
for t in "$AGENT" /usr/bin/time "$MODULE" "$REQ"; do
    [[ -e $t ]] || { echo "missing: $t (build pkio-agent; apt-get install time softhsm2)" >&2; exit 2; }
done
for t in softhsm2-util pkcs11-tool openssl curl jq python3; do
    command -v "$t" >/dev/null || { echo "missing: $t (apt-get install opensc openssl curl jq python3)" >&2; exit 2; }
done
[[ -e /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ]] ||
    echo "warning: engine pkcs11.so not in the usual place (libengine-pkcs11-openssl)" >&2

W=$(mktemp -d /tmp/pkio-bench.XXXXXX)
chmod 0700 "$W"
cleanup()
{
    local rc=$?
    [[ -e $W/sb/pid ]] && bash "$src/tests/sandbox/stop.sh" "$W/sb" >/dev/null 2>&1
    rm -rf "$W"
    ((rc == 0)) || echo "benchmark aborted (exit $rc)" >&2
}
trap cleanup EXIT
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

# --- the sandbox, the token directory, configuration -----------------------------------------
URL=$(bash "$src/tests/sandbox/start.sh" "$W/sb" --issue-after-polls 0) ||
    { echo "the sandbox did not start" >&2; exit 1; }
(
    umask 077
    printf 'sandbox-0123456789abcdef' >"$W/api.key"
    printf 'X-DC-DEVKEY: sandbox-0123456789abcdef\n' >"$W/hdr" # curl -H @file: not in argv
    printf '1234' >"$W/pin"
)
mkdir -m 0700 "$W/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$W/tokens" >"$W/softhsm2.conf"
export SOFTHSM2_CONF=$W/softhsm2.conf
cat >"$W/config.json" <<EOF
{"api": {"url": "$URL", "key_file": "$W/api.key", "ca_bundle": "$W/sb/tls-ca.pem"},
 "token": {"module": "$MODULE", "allow_software": true},
 "trust": {"anchors": "$W/sb/root.pem"},
 "state_dir": "$W/state"}
EOF
cat >"$W/engine.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
MODULE_PATH = $MODULE
init = 0
EOF
CURL=(curl -sS --fail-with-body --noproxy '*' --cacert "$W/sb/tls-ca.pem" -H "@$W/hdr")

new_token() { # one fresh token per round, outside the timed part
    rm -rf "${W:?}/tokens/"*
    softhsm2-util --init-token --free --label bench --so-pin 12345678 --pin 1234 >/dev/null
}
# timed CMD...: runs CMD under /usr/bin/time, appends "peak-RSS-KiB command" to $W/rss
timed() {
    /usr/bin/time -f %M -o "$W/rss1" "$@" || return
    echo "$(tail -n1 "$W/rss1") ${1##*/}" >>"$W/rss"
}
# quiet CMD...: hide CMD's chatter on stderr unless it fails
quiet() { "$@" 2>"$W/log" || { cat "$W/log" >&2; return 1; }; }
now() { date +%s%N; }

round_a() { # $1 = round number
    local t0 t1
    : >"$W/rss"
    t0=$(now)
    quiet timed "$AGENT" --config "$W/config.json" enroll --key-type "$KTYPE" \
        --token "pkcs11:token=bench?pin-source=$W/pin" --request "$REQ" >/dev/null
    t1=$(now)
    finish A "$1" "$t0" "$t1"
}
round_b() {
    local id t0 t1 order st cert
    id=$(printf 'b0%04x' "$1") # CKA_ID; in the URI as %b0%00%01...
    : >"$W/rss"
    t0=$(now)
    quiet timed pkcs11-tool --module "$MODULE" --token-label bench --login --pin 1234 --keypairgen \
        --key-type "$P11TYPE" --id "$id" --label "b$1" >/dev/null
    OPENSSL_CONF=$W/engine.cnf quiet timed openssl req -new -engine pkcs11 -keyform engine \
        -key "pkcs11:token=bench;id=%${id:0:2}%${id:2:2}%${id:4:2};type=private;pin-value=1234" \
        -sha256 -subj "$SUBJ" -out "$W/b.csr"
    # shellcheck disable=SC2016 # $csr is jq's variable
    timed jq --rawfile csr "$W/b.csr" '.certificate.csr = $csr' "$REQ" >"$W/b.body"
    quiet timed "${CURL[@]}" -H 'Content-Type: application/json' --data-binary "@$W/b.body" \
        -o "$W/b.order" "$URL/order/certificate/$PRODUCT"
    order=$(timed jq -r .id "$W/b.order")
    quiet timed "${CURL[@]}" -o "$W/b.info" "$URL/order/certificate/$order"
    st=$(timed jq -r '"\(.status) \(.certificate.id)"' "$W/b.info")
    read -r st cert <<<"$st"
    [[ $st == issued ]] || { echo "round $1 (B): order $order is '$st'" >&2; exit 1; }
    quiet timed "${CURL[@]}" -o "$W/b.pem" "$URL/certificate/$cert/download/format/pem_noroot"
    quiet timed openssl x509 -in "$W/b.pem" -outform DER -out "$W/b.der" # the leaf (first)
    quiet timed pkcs11-tool --module "$MODULE" --token-label bench --login --pin 1234 \
        --write-object "$W/b.der" --type cert --id "$id" --label "b$1" >/dev/null
    t1=$(now)
    finish B "$1" "$t0" "$t1"
}
# finish A|B ROUND START_NS END_NS: check the token, then record ms and the round's max RSS.
finish() {
    check_token "$1" "$2"
    echo "$(( ($4 - $3) / 1000 ))" >>"$W/ms_$1" # microseconds, printed as ms later
    sort -n "$W/rss" | tail -n1 | cut -d' ' -f1 >>"$W/kib_$1"
    sort -n "$W/rss" | tail -n1 | cut -d' ' -f2 >>"$W/peak_$1"
    wc -l <"$W/rss" >>"$W/procs_$1"
}
# The token must hold one certificate under a key's CKA_ID whose public key is that key's.
check_token() {
    local p11=(pkcs11-tool --module "$MODULE" --token-label bench) id
    "${p11[@]}" -O --type cert >"$W/objs" 2>/dev/null
    id=$(awk '/^[[:space:]]*ID:/ { print $2 }' "$W/objs")
    [[ $id =~ ^[0-9a-f]+$ ]] || { echo "round $2 ($1): no certificate with an id on the token" >&2; exit 1; }
    if ! "${p11[@]}" --read-object --type cert --id "$id" -o "$W/c.der" >/dev/null 2>&1 ||
        ! "${p11[@]}" --read-object --type pubkey --id "$id" -o "$W/k.der" >/dev/null 2>&1; then
        echo "round $2 ($1): cannot read certificate and key $id" >&2
        exit 1
    fi
    cmp -s <(openssl x509 -inform DER -in "$W/c.der" -noout -pubkey | openssl pkey -pubin -outform DER) \
        <(openssl pkey -pubin -inform DER -in "$W/k.der" -outform DER) ||
        { echo "round $2 ($1): the certificate does not carry the token key" >&2; exit 1; }
}

echo "enrollment benchmark: $KTYPE, $ROUNDS rounds each, SoftHSM2 ($MODULE), sandbox $URL"
for ((i = 1; i <= ROUNDS; i++)); do
    if ((i % 2)); then
        new_token; round_a "$i"; new_token; round_b "$i"
    else
        new_token; round_b "$i"; new_token; round_a "$i"
    fi
    printf '\rround %d/%d' "$i" "$ROUNDS" >&2
done
echo >&2
orders=$(curl -sS --noproxy '*' --cacert "$W/sb/tls-ca.pem" "${URL%/services/v2}/__sandbox/state" |
    jq '[.orders_per_key[]] | select(all(. == 1)) | length')
[[ $orders == $((2 * ROUNDS)) ]] || { echo "sandbox: $orders single orders, want $((2 * ROUNDS))" >&2; exit 1; }

# stats FILE -> "median min max" (integers as in FILE)
stats() { sort -n "$1" | awk '{v[NR]=$1} END {m = NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2;
    print m, v[1], v[NR]}'; }
read -r ma mina maxa < <(stats "$W/ms_A")
read -r mb minb maxb < <(stats "$W/ms_B")
read -r ra _ < <(stats "$W/kib_A")
read -r rb _ < <(stats "$W/kib_B")
read -r pa _ < <(stats "$W/procs_A")
read -r pb _ < <(stats "$W/procs_B")
printf '\n%-40s %10s %10s %10s %16s %6s\n' "path ($KTYPE, n=$ROUNDS)" "median ms" "min ms" \
    "max ms" "median peak KiB" "procs"
awk -v a="$ma $mina $maxa $ra $pa" -v b="$mb $minb $maxb $rb $pb" 'BEGIN {
    split(a, A); split(b, B)
    printf "%-40s %10.1f %10.1f %10.1f %16d %6d\n", "A pkio-agent enroll", A[1]/1000, A[2]/1000, A[3]/1000, A[4], A[5]
    printf "%-40s %10.1f %10.1f %10.1f %16d %6d\n", "B pkcs11-tool + openssl + jq + curl", B[1]/1000, B[2]/1000, B[3]/1000, B[4], B[5]
    printf "\nratio A/B of medians: %.2f\n", A[1]/B[1] }'
for p in A B; do # which process had the round's peak RSS, most often
    echo "largest process in $p: $(sort "$W/peak_$p" | uniq -c | sort -rn | head -n1 | awk '{ print $2 }')"
done
echo "all $((2 * ROUNDS)) certificates carry their token key; the sandbox holds one order per key"
