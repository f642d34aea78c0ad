#!/usr/bin/env bash
# Build the Debian package of this tree: scripts/build-deb.sh [BUILD_DIR]   (default: build)
# Configures BUILD_DIR if it is not configured yet, builds the three programs if needed (not the
# tests or benchmarks) and runs CPack's DEB generator (packaging/cpack.cmake); prints the path of
# the .deb on stdout. The version comes from schema/release.h (+gitN.HASH for a commit that is
# not a release; see docs/installing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
fi
cmake --build "$BUILD_DIR" --target batond batonctl baton-state >&2
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
rm -rf "$BUILD_DIR/deb"
(cd "$BUILD_DIR" && cpack -G DEB >&2)
ls "$BUILD_DIR"/deb/baton_*.deb
