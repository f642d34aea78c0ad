#!/usr/bin/env bash
# Build a released baton (batond, batonctl) from its commit in RELEASES, in a cached git worktree.
# Usage: scripts/build-release.sh VERSION      prints the build directory on stdout
# Cache: $BATON_RELEASE_CACHE (default ~/.cache/baton-releases), one directory per version+commit;
# a cached build is reused as it is (a release never changes), so only the first run pays the
# build (about 1-2 minutes on 2 cores for batond + batonctl).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:?usage: build-release.sh VERSION}
COMMIT=$(awk -v v="$VERSION" '$1 == v {print $3}' RELEASES)
if [ -z "$COMMIT" ]; then echo "build-release: $VERSION is not in RELEASES" >&2; exit 2; fi
CACHE=${BATON_RELEASE_CACHE:-$HOME/.cache/baton-releases}/$VERSION-$COMMIT
if [ -x "$CACHE/build/batond" ] && [ -x "$CACHE/build/batonctl" ]; then echo "$CACHE/build"; exit 0; fi
mkdir -p "$CACHE"
if [ ! -d "$CACHE/src" ]; then
  git worktree prune
  git worktree add --detach "$CACHE/src" "$COMMIT" >&2
fi
cmake -S "$CACHE/src" -B "$CACHE/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBATON_BUILD_TESTS=OFF >&2
ninja -C "$CACHE/build" -j"$(nproc)" batond batonctl >&2
echo "$CACHE/build"
