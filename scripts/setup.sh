#!/usr/bin/env bash
# Install baton's build dependencies (Debian 12 packages) and build it.
# Usage: scripts/setup.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
# clang and libclang-rt-14-dev: the fuzzers (scripts/fuzz.sh: libFuzzer and clang's sanitizer
# runtimes); g++ brings its own ASan and UBSan runtimes (scripts/test-sanitized.sh).
PKGS="capnproto libcapnp-dev pkg-config libgtest-dev libbenchmark-dev
      cmake g++ ninja-build util-linux procps bc clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "== installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $missing >/dev/null
fi
echo "== configuring and building in $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD_DIR" -j"$(nproc)"
