#!/usr/bin/env bash
# README's first command: build pkio-agent and run its main job on the embedded default — a
# fresh SoftHSM2 token in a private directory (_demo/ in the source tree).
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

echo "== tokens present =="
"$agent" --module "$module" tokens
echo "== key pair generated on the token =="
key=$("$agent" --module "$module" keygen --token "pkcs11:token=demo-token?pin-source=$demo/pin" \
    --key-type rsa:2048 --label demo-key)
echo "$key"
echo "== SHA-256 CSR signed on the token (RSASSA-PSS) =="
"$agent" --module "$module" csr --key "$key?pin-source=$demo/pin" \
    --request "$src/tests/data/requests/valid-prof.json" --pss -o "$demo/demo.csr"
openssl req -in "$demo/demo.csr" -noout -verify -subject 2>&1
echo "== what the token holds =="
pkcs11-tool --module "$module" --token-label demo-token -O 2>/dev/null
echo "demo done: token files in $demo"
