#!/usr/bin/env bash
# idle_cpu.sh - on-demand benchmark (not part of ctest): what an idle detect_driver (agent/core/detect.c)
# costs. PC/SC watches a private pcscd (socket activation, one vpcd entry = two readers) and udev
# a netlink monitor; nothing happens during the measured windows.
# Usage: tests/bench/idle_cpu.sh [-t "30 60"] [-a DRIVER] [-r] [-S]
#   -t  idle windows in seconds, measured one after the other (default "30 60")
#   -a  detect_driver binary (default: build-bench/tests/integration/detect_driver)
#   -r  also measure the fallback mode without sources (--no-pcsc --no-udev --rescan 1)
#   -S  also count system calls with strace -c -f, in extra windows (strace wakes the process)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
WINDOWS="30 60" DRIVER=$here/../../build-bench/tests/integration/detect_driver RESCAN=0 STRACE=0
while getopts "t:a:rSh" o; do
    case $o in
    t) WINDOWS=$OPTARG ;;
    a) DRIVER=$OPTARG ;;
    r) RESCAN=1 ;;
    S) STRACE=1 ;;
    h) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) exit 2 ;;
    esac
done
for w in $WINDOWS; do
    [[ $w =~ ^[1-9][0-9]*$ ]] || { echo "-t: whole seconds, e.g. \"30 60\"" >&2; exit 2; }
done
if ! DRIVER=$(realpath "$DRIVER" 2>/dev/null) || [[ ! -x $DRIVER ]]; then
    echo "missing: detect_driver (cmake --build build-bench --target detect_driver)" >&2
    exit 2
fi
for t in pcscd systemd-socket-activate unshare python3; do
    command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 2; }
done
VPCD_LIB=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
[[ -e $VPCD_LIB ]] || { echo "missing: $VPCD_LIB (apt-get install vsmartcard-vpcd)" >&2; exit 2; }
HAVE_PERF=0
command -v perf >/dev/null && HAVE_PERF=1
((STRACE == 0)) || command -v strace >/dev/null || { echo "missing: strace" >&2; exit 2; }

# A private mount namespace with a tmpfs on /run: pcscd's /run/pcscd stays private, and
# /run/udev/control (which libudev takes as "udevd runs") exists only here.
if [[ -z ${PKIO_BENCH_IN_NS:-} ]]; then
    export PKIO_BENCH_IN_NS=1
    exec unshare --mount --propagation private bash "$0" "$@"
fi
mount -t tmpfs -o mode=0755 pkio-bench-run /run
mkdir /run/udev && : >/run/udev/control

W=$(mktemp -d /tmp/pkio-bench.XXXXXX)
PIDS=()
cleanup()
{
    local rc=$? i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[i]}" 2>/dev/null || true
        wait "${PIDS[i]}" 2>/dev/null || true
    done
    rm -rf "$W"
    ((rc == 0)) || echo "benchmark aborted (exit $rc)" >&2
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_bg CMD...: run a measurement in the background and wait for it, so that a signal stops
# the benchmark at once and cleanup() stops the measurement too.
run_bg()
{
    "$@" &
    PIDS+=("$!")
    wait "$!" || true
    unset 'PIDS[-1]' # reaped: never signal that PID again
}

wait_for()
{ # wait_for SECS FILE ERE
    local i
    for ((i = 0; i < $1 * 50; i++)); do
        grep -qE "$3" "$2" 2>/dev/null && return 0
        sleep 0.02
    done
    echo "gave up waiting for '$3' in $2:" >&2
    cat "$2" >&2
    exit 1
}

# utime+stime of all threads, in clock ticks (field 14 and 15; comm has no spaces here)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# voluntary and involuntary context switches, summed over the threads
ctxsw()
{
    cat /proc/"$1"/task/*/status |
        awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2}
             END {print v + 0, n + 0}'
}
HZ=$(getconf CLK_TCK)

# measure NAME PID SECS: one idle window; prints a table row
measure()
{
    local name=$1 pid=$2 secs=$3 t0 t1 v0 n0 v1 n1 tc="n/a" cs="n/a" pt0 pt1
    t0=$(ticks "$pid")
    read -r v0 n0 < <(ctxsw "$pid")
    pt0=$(ticks "$PCSCD_PID" 2>/dev/null || echo 0)
    if ((HAVE_PERF)); then
        run_bg perf stat -x, -e task-clock,context-switches -p "$pid" -o "$W/perf.csv" \
            -- sleep "$secs" >/dev/null 2>&1
        tc=$(awk -F, '$3 == "task-clock" {print ($1 ~ /^[0-9.]+$/) ? sprintf("%.3f", $1) : "0.000"}' \
            "$W/perf.csv")
        cs=$(awk -F, '$3 == "context-switches" {print ($1 ~ /^[0-9]+$/) ? $1 : 0}' "$W/perf.csv")
    else
        run_bg sleep "$secs"
    fi
    t1=$(ticks "$pid")
    read -r v1 n1 < <(ctxsw "$pid")
    pt1=$(ticks "$PCSCD_PID" 2>/dev/null || echo 0)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$secs" \
        "$(awk -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}')" "${tc:-n/a}" \
        "$((v1 - v0))" "$((n1 - n0))" "${cs:-n/a}" \
        "$(awk -v t=$((pt1 - pt0)) -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}')"
}

# strace_window NAME PID SECS: system calls of all threads during one window
strace_window()
{
    run_bg timeout -s INT "$3" strace -c -f -p "$2" -o "$W/strace.txt" >/dev/null 2>&1
    echo "strace -c -f, $1, $3 s:"
    if grep -q '^% time' "$W/strace.txt"; then
        sed -n '/^% time/,$p' "$W/strace.txt" | sed 's/^/    /'
    else
        echo "    (no system calls)"
    fi
}

# ---- private pcscd with one vpcd entry (two readers) on a free, even port ---------------
PORT=
for _ in $(seq 1 50); do
    p=$((20000 + (RANDOM % 6000) * 2))
    if python3 -c 'import socket, sys
for q in (int(sys.argv[1]), int(sys.argv[1]) + 1):
    s = socket.socket(); s.bind(("", q)); s.close()' "$p" 2>/dev/null; then
        PORT=$p
        break
    fi
done
[[ -n $PORT ]] || { echo "no free TCP port pair for vpcd" >&2; exit 1; }
mkdir "$W/conf"
printf 'FRIENDLYNAME "PKIo Bench PCD"\nDEVICENAME   /dev/null:0x%X\nLIBPATH      %s\nCHANNELID    0x%X\n' \
    "$PORT" "$VPCD_LIB" "$PORT" >"$W/conf/vpcd"
systemd-socket-activate -l "$W/pcscd.comm" pcscd --foreground -c "$W/conf" >"$W/pcscd.log" 2>&1 &
PCSCD_PID=$!
PIDS+=("$PCSCD_PID")
wait_for 10 "$W/pcscd.log" '^Listening on'

echo "detect_driver idle cost; $(nproc) CPUs, kernel $(uname -r), pcsc-lite $(pcscd --version 2>&1 |
    sed -n 's/.*pcsc-lite version \([0-9][0-9.]*[0-9]\).*/\1/p' | head -n 1), HZ=$HZ" >&2
echo "| mode | window s | CPU s (utime+stime) | task-clock ms (perf) | voluntary ctx sw (wakeups) | involuntary | context-switches (perf) | pcscd CPU s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"

PCSCLITE_CSOCK_NAME=$W/pcscd.comm "$DRIVER" >"$W/driver.log" 2>&1 &
DRV=$!
PIDS+=("$DRV")
wait_for 10 "$W/driver.log" '^sources: '
[[ $(head -n 1 "$W/driver.log") == "sources: pcsc,udev" ]] ||
    { echo "expected 'sources: pcsc,udev', got: $(cat "$W/driver.log")" >&2; exit 1; }
tasks=(/proc/"$DRV"/task/*)
echo "driver threads: ${#tasks[@]}; readers watched: 2 + PnP" >&2
sleep 2 # let start-up settle
for secs in $WINDOWS; do
    measure "pcsc,udev" "$DRV" "$secs"
done
grep -q '^event:' "$W/driver.log" && { echo "unexpected events:" >&2; cat "$W/driver.log" >&2; }
if ((STRACE)); then
    for secs in $WINDOWS; do strace_window "pcsc,udev" "$DRV" "$secs" >&2; done
fi
kill "$DRV"
wait "$DRV" || true

if ((RESCAN)); then
    "$DRIVER" --no-pcsc --no-udev --rescan 1 >"$W/driver-r.log" 2>&1 &
    DRV=$!
    PIDS+=("$DRV")
    wait_for 10 "$W/driver-r.log" '^sources: rescan'
    sleep 2
    for secs in $WINDOWS; do
        measure "rescan(1.0s) only" "$DRV" "$secs"
    done
    if ((STRACE)); then
        for secs in $WINDOWS; do strace_window "rescan(1.0s)" "$DRV" "$secs" >&2; done
    fi
    kill "$DRV"
    wait "$DRV" || true
fi
