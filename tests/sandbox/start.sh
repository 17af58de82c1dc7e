#!/bin/bash
# start.sh DIR [sandbox args...] — start the CertCentral sandbox in the background, wait until
# DIR/ready exists (bounded), print the base URL. On failure prints DIR/sandbox.log and exits 1.
set -euo pipefail
dir=${1:?usage: start.sh DIR [--port N] [--api-key K] [--behavior B] ...}
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$dir"
rm -f "$dir/ready"
/usr/bin/python3 "$here/certcentral_sandbox.py" --dir "$dir" "$@" \
  </dev/null >>"$dir/sandbox.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do            # at most ~60 s (first start generates the PKI)
  if [ -e "$dir/ready" ]; then
    echo "https://127.0.0.1:$(cat "$dir/port" | tr -d '[:space:]')/services/v2"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "start.sh: sandbox exited before becoming ready; log follows" >&2
    cat "$dir/sandbox.log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "start.sh: sandbox not ready in time; log follows" >&2
cat "$dir/sandbox.log" >&2
kill "$pid" 2>/dev/null || true
exit 1
