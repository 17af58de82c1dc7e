#!/usr/bin/env bash
# insert_to_key.sh - on-demand benchmark (not in ctest): time from a token's arrival to "key
# generated" under `pkio-agent watch`, on SoftHSM2 with the periodic-rescan fallback (SoftHSM2
# has no insertion events; with PC/SC the event arrives 0.2-0.6 s after insertion, see
# docs in ../shared and tests/integration/detect_pcsc.sh). The sandbox issues at once.
# Usage: tests/bench/insert_to_key.sh [-n ROUNDS] [-r RESCAN_S] [-a AGENT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
N=10 RESCAN=0.5 AGENT=$src/build/agent/pkio-agent
while getopts "n:r:a:" o; do
    case $o in n) N=$OPTARG ;; r) RESCAN=$OPTARG ;; a) AGENT=$OPTARG ;; *) exit 2 ;; esac
done
W=$(mktemp -d)
trap 'kill "$wpid" 2>/dev/null; bash "$src/tests/sandbox/stop.sh" "$W/sb" >/dev/null 2>&1; rm -rf "$W"' EXIT
mkdir -p "$W/sb" "$W/tokens"
url=$(bash "$src/tests/sandbox/start.sh" "$W/sb" --issue-after-polls 0)
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$W" >"$W/softhsm2.conf"
export SOFTHSM2_CONF=$W/softhsm2.conf
(umask 077 && printf 1234 >"$W/pin" && printf sandbox-0123456789abcdef >"$W/key")
cat >"$W/config.json" <<JSON
{"api": {"url": "$url", "key_file": "$W/key", "ca_bundle": "$W/sb/tls-ca.pem"},
 "token": {"module": "/usr/lib/softhsm/libsofthsm2.so", "allow_software": true}, "trust": {"anchors": "$W/sb/root.pem"},
 "poll": {"initial_s": 0.05, "max_s": 0.2}, "state_dir": "$W/state"}
JSON
pa() { "$AGENT" --config "$W/config.json" "$@"; }
pa watch --detect rescan --rescan "$RESCAN" --pin-source "$W/pin" >"$W/watch.out" 2>&1 &
wpid=$!
sleep 1
times=()
for i in $(seq 1 "$N"); do
    pa queue add --request "$src/tests/data/requests/valid-prof.json" >/dev/null
    t0=$(date +%s%N)
    softhsm2-util --init-token --free --label "bench-$i" --so-pin 12345678 --pin 1234 >/dev/null
    serial=$(softhsm2-util --show-slots | awk -v l="bench-$i" '/Serial number:/ {s=$3} /Label:/ && $2==l {print s}')
    until grep -lq "\"token_serial\": *\"$serial\"" "$W"/state/jobs/*.json 2>/dev/null &&
        grep -l "\"token_serial\": *\"$serial\"" "$W"/state/jobs/*.json | xargs grep -q '"key_id_hex": *"[0-9a-f]'; do
        sleep 0.01
    done
    t1=$(date +%s%N)
    times+=($(((t1 - t0) / 1000000)))
done
printf '%s\n' "${times[@]}" | sort -n >"$W/t"
echo "insertion -> key generated on SoftHSM2, rescan every ${RESCAN}s, n=$N:" \
    "median $(sed -n "$(((N + 1) / 2))p" "$W/t") ms, min $(head -1 "$W/t") ms, max $(tail -1 "$W/t") ms"
