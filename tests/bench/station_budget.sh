#!/usr/bin/env bash
# station_budget.sh - on-demand benchmark (not in ctest): N tokens enrolled at once under
# `pkio-agent watch` against a slow, rate-limited CertCentral sandbox, against 1 token.
# Reports requests per certificate, TLS connections per certificate, 429s met (the sandbox's
# rate-limit violations: all self-inflicted, nothing is injected), jobs done and wall time.
#
# Modes (each with its own sandbox, state directory and SoftHSM2 tokens):
#   1       one token                                   (the station budget)
#   N       N tokens at once                            (the station budget)
#   N-own   N tokens at once, each child with only its own budget: STATE_DIR/ratebudget is made
#           unusable (a directory), which is what every station did before the shared budget
#
# The sandbox's limits are api.rate_share x DigiCert's (100 / 5 s, 1000 / 180 s), the same
# share the agent is configured with, so the station's budget is exactly what the sandbox allows.
# Every API request is slowed by `slow:S` (the sandbox reads it, sleeps S, then answers).
#
# Usage: tests/bench/station_budget.sh [-n TOKENS] [-s SLOW_S] [-r RATE_SHARE] [-p POLLS]
#                                      [-m "MODES"] [-t TIMEOUT_S] [-a AGENT]
#   defaults: -n 8 -s 0.2 -r 0.05 -p 1 -m "1 N N-own" -t 400, AGENT = build/agent/pkio-agent
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
N=8 SLOW=0.2 SHARE=0.05 POLLS=1 MODES="1 N N-own" TIMEOUT=400 AGENT=$src/build/agent/pkio-agent
while getopts "n:s:r:p:m:t:a:" o; do
    case $o in
    n) N=$OPTARG ;; s) SLOW=$OPTARG ;; r) SHARE=$OPTARG ;; p) POLLS=$OPTARG ;;
    m) MODES=$OPTARG ;; t) TIMEOUT=$OPTARG ;; a) AGENT=$OPTARG ;; *) exit 2 ;;
    esac
done
for c in python3 curl softhsm2-util; do
    command -v "$c" >/dev/null || {
        echo "station_budget.sh: $c is missing" >&2
        exit 2
    }
done
[[ -x $AGENT ]] || {
    echo "station_budget.sh: no pkio-agent at $AGENT (-a)" >&2
    exit 2
}
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
W=$(mktemp -d)
wpid='' sbdir=''
cleanup()
{
    if [[ -n $wpid ]]; then
        kill -TERM "$wpid" 2>/dev/null || true
        wait "$wpid" 2>/dev/null || true
    fi
    [[ -z $sbdir ]] || bash "$src/tests/sandbox/stop.sh" "$sbdir" >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT
limits=$(python3 -c 'import math,sys; r=float(sys.argv[1]); print(max(1,math.floor(100*r)), max(1,math.floor(1000*r)))' "$SHARE")
burst=${limits% *} sustained=${limits#* }

state() { curl -sS --cacert "$sbdir/tls-ca.pem" "$(sed 's#/services/v2##' "$sbdir/url")/__sandbox/state"; }
jobs_in() { # CONFIG STATE... -> number of jobs in one of those states
    local cfg=$1
    shift
    "$AGENT" --config "$cfg" status --json 2>/dev/null |
        python3 -c 'import json,sys; print(sum(j["state"] in sys.argv[1:] for j in json.load(sys.stdin)["jobs"]))' "$@"
}

# run MODE TOKENS: one measurement; prints a table row
run()
{
    local mode=$1 n=$2 d=$W/$1 url cfg t0 t1 done_n failed_n
    mkdir -p "$d/tokens" "$d/stage/tokens" "$d/state"
    chmod 0700 "$d/tokens" "$d/stage/tokens"
    sbdir=$d/sb
    url=$(bash "$src/tests/sandbox/start.sh" "$sbdir" --issue-after-polls "$POLLS" \
        --burst-limit "$burst" --burst-window 5 --sustained-limit "$sustained" --sustained-window 180)
    curl -sS --fail --cacert "$sbdir/tls-ca.pem" -X POST -H 'Content-Type: application/json' \
        "${url%/services/v2}/__sandbox/faults" \
        -d "{\"faults\":[{\"path_prefix\":\"/services/v2/\",\"kind\":\"slow:$SLOW\",\"count\":100000}]}" >/dev/null
    for t in live:tokens stage:stage/tokens; do # live: what watch sees; stage: tokens built
        printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
            "$d/${t#*:}" >"$d/${t%%:*}.conf"
    done
    (umask 077 && printf 1234 >"$d/pin" && printf sandbox-0123456789abcdef >"$d/key")
    cfg=$d/config.json
    cat >"$cfg" <<JSON
{"api": {"url": "$url", "key_file": "$d/key", "ca_bundle": "$sbdir/tls-ca.pem", "rate_share": $SHARE},
 "token": {"module": "/usr/lib/softhsm/libsofthsm2.so", "allow_software": true},
 "trust": {"anchors": "$sbdir/root.pem"},
 "poll": {"initial_s": 0.5, "max_s": 2}, "state_dir": "$d/state"}
JSON
    [[ $mode != *-own ]] || mkdir "$d/state/ratebudget" # the station file cannot be opened
    for i in $(seq 1 "$n"); do
        SOFTHSM2_CONF=$d/stage.conf softhsm2-util --init-token --free --label "b$i" \
            --so-pin 12345678 --pin 1234 >/dev/null
    done
    export SOFTHSM2_CONF=$d/live.conf
    "$AGENT" --config "$cfg" watch --detect rescan --rescan 0.2 --pin-source "$d/pin" \
        --retry 1 >"$d/watch.log" 2>&1 &
    wpid=$!
    sleep 1
    for i in $(seq 1 "$n"); do
        "$AGENT" --config "$cfg" queue add --request "$src/tests/data/requests/valid-prof.json" >/dev/null
    done
    t0=$(date +%s.%N)
    mv "$d"/stage/tokens/* "$d/tokens/" # all tokens arrive at once
    while :; do
        done_n=$(jobs_in "$cfg" "done")
        failed_n=$(jobs_in "$cfg" failed)
        [[ $((done_n + failed_n)) -lt $n ]] || break
        if python3 -c 'import sys,time; sys.exit(not time.time() - float(sys.argv[1]) > float(sys.argv[2]))' "$t0" "$TIMEOUT"; then
            echo "mode $mode: timeout after ${TIMEOUT}s ($done_n done, $failed_n failed); watch said:" >&2
            tail -n 20 "$d/watch.log" >&2
            break
        fi
        sleep 0.2
    done
    t1=$(date +%s.%N)
    kill -TERM "$wpid"
    wait "$wpid" 2>/dev/null || true
    wpid=''
    state | python3 -c '
import json, sys
s = json.load(sys.stdin)
mode, n, done, failed, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
certs = sum(o["status"] == "issued" for o in s["orders"])
req = s["requests"]["total"]
conn = s["connections"]["total"]
v = len(s["rate_limit"]["violations"])
per = lambda x: "%.1f" % (x / certs) if certs else "-"
print("| %s | %d | %d / %d | %d | %s | %s | %d | %.1f |" % (mode, n, done, failed, req, per(req), per(conn), v, t1 - t0))
' "$mode" "$n" "$done_n" "$failed_n" "$t0" "$t1"
    bash "$src/tests/sandbox/stop.sh" "$sbdir" >/dev/null 2>&1 || true
    sbdir=''
}

echo "station_budget.sh: tokens=$N slow=${SLOW}s rate_share=$SHARE (sandbox and budget: $burst / 5 s," \
    "$sustained / 180 s) issue_after_polls=$POLLS" >&2
echo "| mode | tokens | jobs done / failed | API requests | requests per cert | TLS connections per cert | 429s met | wall s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for m in $MODES; do
    case $m in
    1) run 1 1 ;;
    N) run "$N" "$N" ;;
    N-own) run "$N-own" "$N" ;;
    *) echo "unknown mode $m" >&2 && exit 2 ;;
    esac
done
