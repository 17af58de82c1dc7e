#!/usr/bin/env bash
# enroll_matrix.sh - on-demand benchmark (not part of ctest): the wall time and peak RSS of one
# whole `pkio-agent enroll` (key generation on the token, CSR, order, poll, download, write-back)
# on each token stack, against the local CertCentral sandbox, which issues at once:
#   softhsm2      SoftHSM2                                                 rsa:2048, ec:p256
#   tpm2          tpm2-pkcs11 on swtpm + tpm2-abrmd (tests/lib/tpm2.sh)    rsa:2048, ec:p256
#   opencryptoki  opencryptoki's soft token, private namespaces (root)     rsa:2048 (no EC keygen)
#   isoapplet     simulated IsoApplet card, OpenSC + private pcscd         rsa:2048 (no ECDSA-SHA256)
# Every run: a fresh token (a new card for isoapplet), a fresh state directory, an emptied sandbox.
# Usage: tests/bench/enroll_matrix.sh [-n RUNS] [-s "STACKS"] [-a AGENT]
#   -n RUNS    runs per stack and key type (default 5)
#   -s STACKS  which stacks, in this order (default "softhsm2 tpm2 opencryptoki isoapplet")
#   -a AGENT   pkio-agent binary (default: $PKIO_AGENT, else build-bench/agent/pkio-agent)
# The table and one JSON line per stack and key type go to stdout, progress to stderr.
# Exit 0 when every measurable combination succeeded, 1 if one failed, 2 on bad usage/missing tools.
# shellcheck disable=SC2317 # stack_* and prep_* are called by name
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
RUNS=5 STACKS="softhsm2 tpm2 opencryptoki isoapplet"
AGENT=${PKIO_AGENT:-$src/build-bench/agent/pkio-agent}
while getopts "n:s:a:h" o; do
    case $o in
    n) RUNS=$OPTARG ;;
    s) STACKS=$OPTARG ;;
    a) AGENT=$OPTARG ;;
    h) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) exit 2 ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "-n needs a positive number of runs" >&2; exit 2; }
for s in $STACKS; do
    case $s in
    softhsm2 | tpm2 | opencryptoki | isoapplet) ;;
    *) echo "unknown stack '$s' (softhsm2 tpm2 opencryptoki isoapplet)" >&2; exit 2 ;;
    esac
done
if ! AGENT=$(realpath "$AGENT" 2>/dev/null) || [[ ! -x $AGENT ]]; then
    echo "missing: pkio-agent (build it and pass PKIO_AGENT=... or -a; see tests/bench/README.md)" >&2
    exit 2
fi
export PKIO_SRC=$src PKIO_AGENT=$AGENT
# The cards are built once per build tree (as under ctest): the agent's, if it is one.
if [[ -z ${PKIO_BUILD:-} && -f $(dirname "$(dirname "$AGENT")")/CMakeCache.txt ]]; then
    PKIO_BUILD=$(dirname "$(dirname "$AGENT")")
    export PKIO_BUILD
fi

# opencryptoki's pkcsslotd has fixed paths: the whole benchmark then runs in the private mount,
# IPC and PID namespaces of tests/lib/opencryptoki.sh (so every daemon it starts also dies with
# it). That needs root; without root the stack is skipped.
if [[ " $STACKS " == *" opencryptoki "* && $(id -u) -eq 0 ]]; then
    source "$src/tests/lib/opencryptoki.sh"
    ock_enter_ns "$@"
fi

source "$src/tests/lib/common.sh"
source "$src/tests/lib/softhsm.sh"
source "$src/tests/lib/tpm2.sh"
source "$src/tests/lib/cardsim.sh"
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

[[ -x /usr/bin/time ]] || { echo "missing: /usr/bin/time (apt-get install time)" >&2; exit 2; }
for t in python3 curl openssl pkcs11-tool; do
    command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 2; }
done
REQ=$src/tests/data/requests/valid-prof.json

W=$(pkio_tmpdir)
RES=$W/results # RES/STACK.KEY: one "wall_us peak_kib prep_us api_requests cpu_ms" line per run
mkdir "$RES"
declare -A STATUS=() NOTE=()
FAILED=0

# --- the sandbox ---------------------------------------------------------------------------------
SB=$(pkio_tmpdir)
pkio_on_exit "bash '$src/tests/sandbox/stop.sh' '$SB' >/dev/null 2>&1"
URL=$(bash "$src/tests/sandbox/start.sh" "$SB") || fail "the sandbox did not start"
SB_ROOT=${URL%/services/v2}
write_secret_file "$W/api.key" sandbox-0123456789abcdef
sb_get() { curl -sS --fail-with-body --noproxy '*' --cacert "$SB/tls-ca.pem" "$SB_ROOT$1"; }
sb_post()
{
    curl -sS --fail-with-body --noproxy '*' --cacert "$SB/tls-ca.pem" -X POST \
        -H 'Content-Type: application/json' "$SB_ROOT$1" -d "$2" >/dev/null ||
        fail "sandbox control POST $1 failed"
}
sb_post /__sandbox/behavior '{"behavior":"issue","issue_after_polls":0}'

# config FILE MODULE: the agent's configuration for one stack (the integration tests' values).
config()
{
    cat >"$1" <<JSON
{"api": {"url": "$URL", "key_file": "$W/api.key", "ca_bundle": "$SB/tls-ca.pem",
         "timeout_s": 3, "connect_timeout_s": 2, "order_settle_s": 4},
 "token": {"module": "$2", "allow_software": true},
 "trust": {"anchors": "$SB/root.pem"},
 "poll": {"initial_s": 0.05, "max_s": 0.2, "timeout_s": 60},
 "state_dir": "$W/state-unused"}
JSON
}

# ec_capable MODULE LABEL: prints "" when the token can generate P-256 keys and sign ECDSA with
# SHA-256 (raw CKM_ECDSA or CKM_ECDSA_SHA256), else why not.
ec_capable()
{
    local m
    m=$(pkcs11-tool --module "$1" --token-label "$2" -M 2>/dev/null) || true
    if ! grep -qE '^[[:space:]]*(EC|ECDSA)-KEY-PAIR-GEN' <<<"$m"; then
        echo "no EC key-pair generation on the token"
    elif ! grep -qE '^[[:space:]]*ECDSA(-SHA256)?,.*sign' <<<"$m"; then
        echo "cannot sign ECDSA with SHA-256; signs only: $(grep -E '^[[:space:]]*ECDSA[-A-Z0-9]*,.*sign' <<<"$m" |
            grep -oE '^[[:space:]]*ECDSA[-A-Z0-9]*' | tr -d ' ' | paste -sd' ' -)"
    fi
}

# check_run MODULE LABEL STATE KEY: outside the timing, the enrollment must be done, the sandbox
# must hold exactly one order (for the job's key), and the token a certificate under the key's
# CKA_ID that carries that key. Prints what is wrong, if anything.
check_run()
{
    local module=$1 label=$2 state=$3 job id spki n
    job=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["job"] if d.get("state")=="done" else "")' \
        "$W/out.json" 2>/dev/null) || true
    [[ -n $job ]] || { echo "enroll did not end in state done: $(head -c 300 "$W/out.json")"; return; }
    "$PKIO_AGENT" --config "$W/cfg.json" --state-dir "$state" status "$job" --json >"$W/status.json" 2>/dev/null ||
        { echo "status $job failed"; return; }
    read -r id spki < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["job"]
print(j.get("key_id_hex") or "-", j.get("spki_sha256") or "-")' "$W/status.json")
    sb_get /__sandbox/state >"$W/sb.json" || { echo "sandbox state query failed"; return; }
    n=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))
print(len(s["orders"]) if list(s["orders_per_key"].items()) == [(sys.argv[2], 1)] else -1)' "$W/sb.json" "$spki")
    [[ $n == 1 ]] || { echo "the sandbox does not hold exactly one order for key $spki"; return; }
    local p11=(pkcs11-tool --module "$module" --token-label "$label")
    if ! "${p11[@]}" --read-object --type cert --id "$id" -o "$W/c.der" >/dev/null 2>&1 ||
        ! "${p11[@]}" --read-object --type pubkey --id "$id" -o "$W/k.der" >/dev/null 2>&1; then
        echo "cannot read the certificate and public key $id from the token"
        return
    fi
    cmp -s <(openssl x509 -inform DER -in "$W/c.der" -noout -pubkey | openssl pkey -pubin -outform DER) \
        <(openssl pkey -pubin -inform DER -in "$W/k.der" -outform DER) ||
        echo "the certificate under $id does not carry the token's key"
}

# measure STACK KEY PREP_FN: RUNS enrollments; PREP_FN (outside the timing) makes a fresh token
# and sets MODULE, LABEL and URI (with ?pin-source=...).
measure()
{
    local stack=$1 key=$2 prep=$3 i t0 t1 p0 rc state kib cpu why reqs
    : >"$RES/$stack.$key"
    STATUS[$stack.$key]=ok
    for ((i = 1; i <= RUNS; i++)); do
        p0=${EPOCHREALTIME/./}
        "$prep"
        p0=$((${EPOCHREALTIME/./} - p0))
        config "$W/cfg.json" "$MODULE"
        state=$(pkio_tmpdir)/state
        sb_post /__sandbox/reset '{}'
        rc=0
        t0=${EPOCHREALTIME/./} # microseconds
        /usr/bin/time -v -o "$W/time.txt" "$PKIO_AGENT" --config "$W/cfg.json" --state-dir "$state" \
            enroll --token "$URI" --request "$REQ" --key-type "$key" --json \
            >"$W/out.json" 2>"$W/err.txt" || rc=$?
        t1=${EPOCHREALTIME/./}
        kib=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$W/time.txt")
        cpu=$(awk -F': ' '/(User|System) time \(seconds\)/ { t += $2 } END { printf "%.0f", t * 1000 }' "$W/time.txt")
        reqs=$(sb_get /__sandbox/state | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"]["total"])')
        why=''
        if ((rc != 0)); then
            why="enroll exited $rc"
            [[ ! -s $W/err.txt ]] || why+=": $(head -n 3 "$W/err.txt" | tr '\n' ' ')"
        else
            why=$(check_run "$MODULE" "$LABEL" "$state" "$key")
        fi
        if [[ -n $why ]]; then
            echo "FAILED: $stack $key run $i: $why" >&2
            sed 's/^/  stderr: /' "$W/err.txt" >&2
            STATUS[$stack.$key]=failed NOTE[$stack.$key]="run $i: $why"
            FAILED=1
            return 0
        fi
        echo "$((t1 - t0)) $kib $p0 $reqs $cpu" >>"$RES/$stack.$key"
        t1=$(((t1 - t0 + 50) / 100)) # tenths of a millisecond, rounded
        printf '%-12s %-8s run %d/%d: %6d.%d ms  %6d KiB  CPU %4d ms  (fresh token %.1f s, %d API requests)\n' \
            "$stack" "$key" "$i" "$RUNS" "$((t1 / 10))" "$((t1 % 10))" "$kib" "$cpu" \
            "$(((p0 + 50000) / 100000))e-1" "$reqs" >&2
    done
}

not_measured() # STACK KEY STATUS NOTE
{
    STATUS[$1.$2]=$3 NOTE[$1.$2]=$4
    echo "$1 $2: $3 ($4)" >&2
}

# both_keys STACK PREP_FN: rsa:2048, and ec:p256 when the token can do it.
both_keys()
{
    local stack=$1 prep=$2 why
    measure "$stack" rsa:2048 "$prep"
    why=$(ec_capable "$MODULE" "$LABEL")
    if [[ -n $why ]]; then
        not_measured "$stack" ec:p256 n/a "$why"
    else
        measure "$stack" ec:p256 "$prep"
    fi
}

# --- the stacks ----------------------------------------------------------------------------------
declare -A VERSION=()
pkgver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo '?'; }

# SoftHSM2: one token directory; each run deletes the previous token and initialises a new one.
SH_SERIAL=''
prep_softhsm2()
{
    [[ -z $SH_SERIAL ]] || softhsm_delete_token bench "$SH_SERIAL"
    SH_SERIAL=$(softhsm_add_token "$SH_DIR" bench) || exit 1
    MODULE=$SOFTHSM_MODULE LABEL=bench
    URI="pkcs11:token=bench;serial=$SH_SERIAL?pin-source=$SH_DIR/pin"
}
stack_softhsm2()
{
    VERSION[softhsm2]="SoftHSM $(pkgver softhsm2)"
    SH_DIR=$(pkio_tmpdir)
    softhsm_setup "$SH_DIR" bench
    SH_SERIAL=$TOKEN_SERIAL
    both_keys softhsm2 prep_softhsm2
}

# tpm2-pkcs11: one swtpm + abrmd; each run removes the previous token and adds a new one
# (tpm2_ptool addtoken: a new token in the store, under the same primary key).
TPM_N=0 TPM_LABEL=''
prep_tpm2()
{
    [[ -z $TPM_LABEL ]] || tpm2_ptool rmtoken --label="$TPM_LABEL" --path="$TPM2_PKCS11_STORE" \
        >"$TPM_DIR/rmtoken.log" 2>&1 || fail "tpm2_ptool rmtoken failed: $(cat "$TPM_DIR/rmtoken.log")"
    TPM_N=$((TPM_N + 1)) TPM_LABEL=bench-$TPM_N
    tpm2_ptool addtoken --pid=1 --sopin="$TPM2_SO_PIN" --userpin="$TPM2_USER_PIN" \
        --label="$TPM_LABEL" --path="$TPM2_PKCS11_STORE" >"$TPM_DIR/addtoken.log" 2>&1 ||
        fail "tpm2_ptool addtoken failed: $(cat "$TPM_DIR/addtoken.log")"
    MODULE=$TPM2_MODULE LABEL=$TPM_LABEL
    URI="pkcs11:token=$TPM_LABEL?pin-source=$TPM_DIR/pin"
}
stack_tpm2()
{
    VERSION[tpm2]="tpm2-pkcs11 $(pkgver libtpm2-pkcs11-1), swtpm $(pkgver swtpm), tpm2-abrmd $(pkgver tpm2-abrmd)"
    TPM_DIR=$(pkio_tmpdir)
    tpm2_setup "$TPM_DIR" bench-0
    TPM_LABEL=bench-0
    both_keys tpm2 prep_tpm2
}

# opencryptoki: each run resets the soft token (pkcsslotd restarted, token directory emptied,
# token initialised again; the serial is always "123").
prep_opencryptoki()
{
    ock_reset_token
    MODULE=$OCK_MODULE LABEL=$OCK_TOKEN_LABEL
    URI="$OCK_TOKEN_URI?pin-source=$OCK_PIN_FILE"
}
stack_opencryptoki()
{
    VERSION[opencryptoki]="opencryptoki $(pkgver opencryptoki)"
    if [[ -z ${PKIO_OCK_IN_NS:-} ]]; then
        not_measured opencryptoki rsa:2048 skipped "needs root (private namespaces for pkcsslotd)"
        not_measured opencryptoki ec:p256 skipped "needs root"
        return 0
    fi
    ock_setup "$(pkio_tmpdir)" ock-bench
    OCK_PIN_FILE=$TOKEN_PIN_FILE
    both_keys opencryptoki prep_opencryptoki
}

# IsoApplet: a new card in the reader for every run (the first run too, so that every timed run
# follows the same remove + insert); a card holds only about 6 key pairs, and every card has the
# same serial.
prep_isoapplet()
{
    cardsim_swap isoapplet
    MODULE=$CARD_MODULE LABEL=$CARD_LABEL
    URI="$CARD_URI?pin-source=$CARD_PIN_FILE"
}
stack_isoapplet()
{
    local d=${PKIO_CARDSIM:-$src/../shared/cardsim}
    VERSION[isoapplet]="OpenSC $(pkgver opensc-pkcs11), pcscd $(pkgver pcscd), cardsim $(cat "$d/VERSION" 2>/dev/null || echo '?')"
    if [[ ! -x $d/run.sh ]]; then
        not_measured isoapplet rsa:2048 skipped "no cardsim in $d"
        not_measured isoapplet ec:p256 skipped "no cardsim"
        return 0
    fi
    cardsim_setup isoapplet
    both_keys isoapplet prep_isoapplet
}

echo "enroll matrix: $RUNS runs per stack and key type, stacks: $STACKS; sandbox $URL; $AGENT" >&2
for s in $STACKS; do
    "stack_$s"
done

# --- the results ---------------------------------------------------------------------------------
# stats FILE COLUMN -> "median min max" of that column
stats()
{
    awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '{ v[NR] = $1 }
        END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}
declare -A NAME=([softhsm2]=SoftHSM2 [tpm2]="tpm2-pkcs11 (swtpm)" [opencryptoki]="opencryptoki soft token"
    [isoapplet]="IsoApplet card (OpenSC)")
echo
echo "pkio-agent enroll, wall time and peak RSS per run ($(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'))"
for s in $STACKS; do echo "  $s: ${VERSION[$s]:-?}"; done
echo
printf '%-26s %-9s %3s %10s %10s %10s %18s %8s %14s %5s\n' stack key n "median ms" "min ms" "max ms" \
    "peak RSS KiB med/max" "CPU ms" "fresh token s" "reqs"
JSONL=()
for s in $STACKS; do
    for k in rsa:2048 ec:p256; do
        st=${STATUS[$s.$k]:-}
        f=$RES/$s.$k
        n=0
        [[ -s $f ]] && n=$(wc -l <"$f")
        if [[ $st == ok ]]; then
            # ms with one decimal, KiB and request counts whole, fresh-token time in s
            read -r wm wmin wmax < <(stats "$f" 1 | awk 'function ms(x) { t = int((x + 50) / 100)
                return sprintf("%d.%d", int(t / 10), t % 10) } { print ms($1), ms($2), ms($3) }')
            read -r rm _ rmax < <(stats "$f" 2 | awk '{ printf "%.0f %d %d\n", $1, $2, $3 }')
            read -r pm _ < <(stats "$f" 3 | awk '{ printf "%.2f x\n", $1 / 1e6 }')
            read -r qm _ < <(stats "$f" 4 | awk '{ printf "%.0f x\n", $1 }')
            read -r cm _ < <(stats "$f" 5 | awk '{ printf "%.0f x\n", $1 }')
            printf '%-26s %-9s %3d %10s %10s %10s %18s %8s %14.1f %5s\n' "${NAME[$s]}" "$k" "$n" \
                "$wm" "$wmin" "$wmax" "$rm/$rmax" "$cm" "$pm" "$qm"
            JSONL+=("$(printf '{"bench":"enroll_matrix","stack":"%s","key":"%s","status":"ok","n":%d,"median_ms":%s,"min_ms":%s,"max_ms":%s,"peak_rss_kib_median":%s,"peak_rss_kib_max":%s,"cpu_ms_median":%s,"fresh_token_s_median":%s,"api_requests":%s}' \
                "$s" "$k" "$n" "$wm" "$wmin" "$wmax" "$rm" "$rmax" "$cm" "$pm" "$qm")")
        else
            printf '%-26s %-9s %3s %10s   %s\n' "${NAME[$s]}" "$k" "$n" "${st:-?}" "${NOTE[$s.$k]:-}"
            JSONL+=("$(python3 -c 'import json,sys; print(json.dumps({"bench": "enroll_matrix",
                "stack": sys.argv[1], "key": sys.argv[2], "status": sys.argv[3], "n": int(sys.argv[4]),
                "reason": sys.argv[5]}, separators=(",", ":")))' "$s" "$k" "${st:-unknown}" "$n" "${NOTE[$s.$k]:-}")")
        fi
    done
done
echo
printf '%s\n' "${JSONL[@]}"
exit "$FAILED"
