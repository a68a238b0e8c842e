#!/usr/bin/env bash
# Installs the Debian packages kiln needs to build and test, only those that are missing.
set -euo pipefail
packages=(cmake ninja-build g++ libtbb-dev libxsimd-dev libcli11-dev doctest-dev libbenchmark-dev
          libxxhash-dev nlohmann-json3-dev libpcre2-dev)
if [ "${1:-}" = "--ci" ]; then
  # What CI also needs: the aarch64 cross compiler and qemu for the NEON tests, clang for sanitizers.
  packages+=(g++-aarch64-linux-gnu qemu-user clang-14 libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "kiln: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
