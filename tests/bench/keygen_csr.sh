#!/usr/bin/env bash
# keygen_csr.sh - on-demand benchmark (not part of ctest): on-token keygen + CSR on SoftHSM2,
#   (A) pkio-agent keygen + pkio-agent csr   versus
#   (B) pkcs11-tool --keypairgen + openssl req -engine pkcs11 (the scripted way).
# Each round is one keygen + one CSR; every CSR is checked with `openssl req -verify`.
# Usage: tests/bench/keygen_csr.sh [-n ROUNDS] [-k rsa:2048|ec:p256] [-a AGENT] [-m MODULE]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ROUNDS=15 KTYPE=rsa:2048
AGENT=$here/../../build-bench/agent/pkio-agent
MODULE=/usr/lib/softhsm/libsofthsm2.so
KEYS_PER_TOKEN=50
while getopts "n:k:a:m:h" o; do
    case $o in
    n) ROUNDS=$OPTARG ;;
    k) KTYPE=$OPTARG ;;
    a) AGENT=$OPTARG ;;
    m) MODULE=$OPTARG ;;
    h) sed -n '2,6s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) exit 2 ;;
    esac
done
case $KTYPE in
rsa:2048) P11TYPE=rsa:2048 PSS_A=(--pss)
    PSS_B=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1) ;;
ec:p256) P11TYPE=EC:prime256v1 PSS_A=() PSS_B=() ;; # PSS is RSA-only: ECDSA with SHA-256
*) echo "unsupported key type '$KTYPE' (rsa:2048 or ec:p256)" >&2; exit 2 ;;
esac
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 10 ]] || { echo "-n needs at least 10 rounds" >&2; exit 2; }
for t in "$AGENT" /usr/bin/time "$MODULE"; do
    [[ -e $t ]] || { echo "missing: $t (build pkio-agent; apt-get install time softhsm2)" >&2; exit 2; }
done
for t in softhsm2-util pkcs11-tool openssl; do
    command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 2; }
done
[[ -e /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ]] ||
    echo "warning: engine pkcs11.so not in the usual place (libengine-pkcs11-openssl)" >&2

W=$(mktemp -d /tmp/pkio-bench.XXXXXX)
cleanup() { local rc=$?; rm -rf "$W"; ((rc == 0)) || echo "benchmark aborted (exit $rc)" >&2; }
trap cleanup EXIT
mkdir -m 0700 "$W/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$W/tokens" >"$W/softhsm2.conf"
export SOFTHSM2_CONF=$W/softhsm2.conf
(umask 077 && printf '1234' >"$W/pin")
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

keys=0
new_token() { # a fresh token (outside the timed part), so no token fills up
    rm -rf "${W:?}/tokens/"*
    softhsm2-util --init-token --free --label bench --so-pin 12345678 --pin 1234 >/dev/null
    keys=0
}
# timed CMD...: runs CMD under /usr/bin/time, appends its peak RSS (KiB) to $W/rss
timed() { /usr/bin/time -f %M -o "$W/rss1" "$@" || return; tail -n1 "$W/rss1" >>"$W/rss"; }
# quiet CMD...: hide CMD's chatter on stderr unless it fails
quiet() { "$@" 2>"$W/log" || { cat "$W/log" >&2; return 1; }; }
now() { date +%s%N; }

round_a() { # $1 = round number
    local uri t0 t1
    : >"$W/rss"
    t0=$(now)
    uri=$(timed "$AGENT" --module "$MODULE" keygen --token "pkcs11:token=bench?pin-source=$W/pin" \
        --key-type "$KTYPE" --label "a$1")
    timed "$AGENT" --module "$MODULE" csr --key "$uri?pin-source=$W/pin" \
        --subject "/CN=Bench Person" "${PSS_A[@]}" -o "$W/a$1.csr" >/dev/null
    t1=$(now)
    finish A "$1" "$t0" "$t1"
}
round_b() {
    local id t0 t1
    id=$(printf 'b0%04x' "$1")   # CKA_ID; in the URI as %b0%00%01...
    : >"$W/rss"
    t0=$(now)
    quiet timed pkcs11-tool --module "$MODULE" --token-label bench --login --pin 1234 --keypairgen \
        --key-type "$P11TYPE" --id "$id" --label "b$1" >/dev/null
    OPENSSL_CONF=$W/engine.cnf quiet timed openssl req -new -engine pkcs11 -keyform engine \
        -key "pkcs11:token=bench;id=%${id:0:2}%${id:2:2}%${id:4:2};type=private;pin-value=1234" \
        -sha256 "${PSS_B[@]}" -subj "/CN=Bench Person" -out "$W/b$1.csr"
    t1=$(now)
    finish B "$1" "$t0" "$t1"
}
finish() { # $1 = A|B, $2 = round, $3/$4 = start/end ns: verify, then record ms and max RSS
    local v   # openssl 3.0 `req -verify` exits 0 even on a bad signature: check its message
    v=$(openssl req -verify -noout -in "$W/${1,,}$2.csr" 2>&1) || true
    [[ $v == *"verify OK"* ]] || { echo >&2; echo "round $2 ($1): CSR does not verify: $v" >&2; exit 1; }
    echo "$(( ($4 - $3) / 1000 ))" >>"$W/ms_$1"       # microseconds, printed as ms later
    sort -n "$W/rss" | tail -n1 >>"$W/kib_$1"
    keys=$((keys + 1))
}

new_token
echo "pkio-agent keygen+CSR benchmark: $KTYPE, $ROUNDS rounds each, SoftHSM2 ($MODULE)"
for ((i = 1; i <= ROUNDS; i++)); do
    ((keys + 2 <= KEYS_PER_TOKEN)) || new_token
    if ((i % 2)); then round_a "$i"; round_b "$i"; else round_b "$i"; round_a "$i"; fi
    printf '\rround %d/%d' "$i" "$ROUNDS" >&2
done
echo >&2

# stats FILE -> "median min max" (integers as in FILE)
stats() { sort -n "$1" | awk '{v[NR]=$1} END {m = NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2;
    print m, v[1], v[NR]}'; }
read -r ma mina maxa < <(stats "$W/ms_A")
read -r mb minb maxb < <(stats "$W/ms_B")
read -r ra _ < <(stats "$W/kib_A")
read -r rb _ < <(stats "$W/kib_B")
printf '\n%-34s %10s %10s %10s %16s\n' "path ($KTYPE, n=$ROUNDS)" "median ms" "min ms" \
    "max ms" "median peak KiB"
awk -v a="$ma $mina $maxa $ra" -v b="$mb $minb $maxb $rb" 'BEGIN {
    split(a, A); split(b, B)
    printf "%-34s %10.1f %10.1f %10.1f %16d\n", "A pkio-agent keygen + csr", A[1]/1000, A[2]/1000, A[3]/1000, A[4]
    printf "%-34s %10.1f %10.1f %10.1f %16d\n", "B pkcs11-tool + openssl req", B[1]/1000, B[2]/1000, B[3]/1000, B[4]
    printf "\nratio A/B of medians: %.2f\n", A[1]/B[1] }'
