#!/bin/bash
# stop.sh DIR — stop the sandbox started in DIR (SIGTERM by pid, bounded wait, then SIGKILL).
set -u
dir=${1:?usage: stop.sh DIR}
pid=$(cat "$dir/pid" 2>/dev/null | tr -d '[:space:]') || true
[ -n "${pid:-}" ] || exit 0
# Only signal the process if it really is our sandbox (the pid may have been reused).
grep -q certcentral_sandbox.py "/proc/$pid/cmdline" 2>/dev/null || exit 0
# Running = exists and not a zombie (start.sh's child is reaped by init, maybe late).
alive() { local s; s=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1; s=${s##*) }; [ "${s%% *}" != Z ]; }
kill -TERM "$pid" 2>/dev/null || exit 0
for _ in $(seq 1 100); do
  alive || exit 0
  sleep 0.05
done
kill -KILL "$pid" 2>/dev/null || true
exit 0
