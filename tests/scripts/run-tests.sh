#!/usr/bin/env bash
# Build pkio-agent and run the whole test suite: once in a normal build, once under
# AddressSanitizer + UndefinedBehaviorSanitizer. Installs the Debian packages it lacks first.
# Usage: tests/scripts/run-tests.sh [--no-sanitize]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

bash "$src/tests/scripts/deps.sh" test

run_suite() { # build-dir cmake-args...
    local dir=$1
    shift
    cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPKIO_TESTS=ON "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
    (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 600)
}

echo "== normal build =="
run_suite "$src/build"
if [ "${1:-}" != "--no-sanitize" ]; then
    echo "== ASan + UBSan build =="
    run_suite "$src/build-asan" -DPKIO_SANITIZE=ON
fi
