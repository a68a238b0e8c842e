#!/usr/bin/env bash
# Cross-builds the kernels for aarch64 and runs kiln_kernel_tests under qemu: once for plain
# armv8-a (NEON fallback for int8 dots) and once with +dotprod (the sdot path).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jobs="${JOBS:-2}"

run_variant() {
    local dir="$1" march="$2"
    cmake -S "$root" -B "$root/$dir" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-toolchain.cmake" \
        -DKILN_KERNELS_ONLY=ON -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-march=$march" > /dev/null
    cmake --build "$root/$dir" --target kiln_kernel_tests -j "$jobs"
    echo "== qemu-aarch64, -march=$march"
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$root/$dir/kernels/tests/kiln_kernel_tests" "$@"
}

run_variant build-arm armv8-a
run_variant build-arm-dotprod armv8.2-a+dotprod
