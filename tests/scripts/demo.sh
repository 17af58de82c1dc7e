#!/usr/bin/env bash
# README's first command: build pkio-agent and run its main job on the embedded default — a
# fresh SoftHSM2 token in a private directory (_demo/ in the source tree) and the bundled
# CertCentral sandbox: `pkio-agent enroll` from key generation to the certificate on the token.
# Installs the Debian packages it lacks first.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
bash "$src/tests/scripts/deps.sh" demo

build=$src/build-demo
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPKIO_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
agent=$build/agent/pkio-agent

demo=$src/_demo
rm -rf "$demo"
mkdir -p "$demo/tokens"
chmod 700 "$demo"
cat >"$demo/softhsm2.conf" <<CONF
directories.tokendir = $demo/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF=$demo/softhsm2.conf
module=/usr/lib/softhsm/libsofthsm2.so
(umask 077 && printf '1234\n' >"$demo/pin")
softhsm2-util --init-token --free --label demo-token --so-pin 12345678 --pin 1234 >/dev/null

echo "== the bundled CertCentral sandbox (HTTPS on 127.0.0.1) =="
sb=$demo/sandbox
mkdir -p "$sb"
url=$(bash "$src/tests/sandbox/start.sh" "$sb")
trap 'bash "$src/tests/sandbox/stop.sh" "$sb" >/dev/null 2>&1 || true' EXIT
echo "$url"
(umask 077 && printf 'sandbox-0123456789abcdef' >"$demo/api-key")
cat >"$demo/config.json" <<CONF
{"api": {"url": "$url", "key_file": "$demo/api-key", "ca_bundle": "$sb/tls-ca.pem"},
 "token": {"module": "$module", "allow_software": true}, "trust": {"anchors": "$sb/root.pem"},
 "poll": {"initial_s": 0.5, "max_s": 2}, "state_dir": "$demo/state"}
CONF
pa() { "$agent" --config "$demo/config.json" "$@"; }

echo "== tokens present =="
pa tokens
echo "== enroll: key on the token, CSR, order, poll, download, verify, write back =="
PKIO_PROGRESS=1 pa enroll --token "pkcs11:token=demo-token?pin-source=$demo/pin" \
    --request "$src/tests/data/requests/valid-prof.json" --pss
echo "== the job record and the audit log =="
pa status
pa audit verify
echo "== what the token holds =="
pkcs11-tool --module "$module" --token-label demo-token -O 2>/dev/null
echo "demo done: token, job records and audit log in $demo"
