#!/usr/bin/env bash
# Builds kiln (Release, or the build type in $KILN_BUILD_TYPE) in build/ and runs every test.
# Extra arguments are passed to cmake, e.g. -DKILN_SANITIZE=ON; $KILN_BUILD_DIR picks the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${KILN_BUILD_DIR:-build}"
scripts/install-deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${KILN_BUILD_TYPE:-Release}" "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
export KILN_MODELS="${KILN_MODELS:-$(pwd)/../shared/models}"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
