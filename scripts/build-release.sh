#!/usr/bin/env bash
# Build a released baton (batond, batonctl) from its commit in RELEASES, in a cached git worktree.
# Usage: scripts/build-release.sh VERSION        prints the build directory on stdout
#        scripts/build-release.sh VERSION --deb  also packages it, prints the .deb's path
# --deb packages the release's binaries with THIS tree's packaging (packaging/CMakeLists.txt:
# install rules, maintainer scripts, man pages) and the release's own README and docs, as
# version VERSION: releases before the packaging (0.1.0) had no install rules of their own, and
# an upgrade test needs a package of every earlier release. The package is made again on every
# call (a few seconds), so it always has this tree's maintainer scripts.
# Cache: $BATON_RELEASE_CACHE (default ~/.cache/baton-releases), one directory per version+commit;
# a cached build is reused as it is (a release never changes), so only the first run pays the
# build (about 1-2 minutes on 2 cores for batond + batonctl).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:?usage: build-release.sh VERSION [--deb]}
DEB=no
case "${2:-}" in
  --deb) DEB=yes ;;
  "") ;;
  *) echo "build-release: unknown argument '$2'" >&2; exit 2 ;;
esac
COMMIT=$(awk -v v="$VERSION" '$1 == v {print $3}' RELEASES)
if [ -z "$COMMIT" ]; then echo "build-release: $VERSION is not in RELEASES" >&2; exit 2; fi
CACHE=${BATON_RELEASE_CACHE:-$HOME/.cache/baton-releases}/$VERSION-$COMMIT
mkdir -p "$CACHE"
if [ ! -d "$CACHE/src" ]; then
  git worktree prune
  git worktree add --detach "$CACHE/src" "$COMMIT" >&2
fi
# The programs of the release: batond and batonctl, and baton-state once a release has it.
TARGETS="batond batonctl"
if grep -q 'add_executable(baton-state' "$CACHE/src/CMakeLists.txt"; then TARGETS="$TARGETS baton-state"; fi
built=yes
for t in $TARGETS; do [ -x "$CACHE/build/$t" ] || built=no; done
if [ $built = no ]; then
  cmake -S "$CACHE/src" -B "$CACHE/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBATON_BUILD_TESTS=OFF >&2
  ninja -C "$CACHE/build" -j"$(nproc)" $TARGETS >&2
fi
if [ $DEB = no ]; then echo "$CACHE/build"; exit 0; fi

exec 9>"$CACHE/.deb.lock"
flock 9   # the cache is shared: one packaging of a release at a time
STAGE=$CACHE/prebuilt
rm -rf "$STAGE" "$CACHE/pkg"
mkdir -p "$STAGE"
for t in $TARGETS; do cp "$CACHE/build/$t" "$STAGE/"; done
cmake -S packaging -B "$CACHE/pkg" -DBATON_PREBUILT_DIR="$STAGE" -DBATON_VERSION="$VERSION" \
  -DBATON_DOC_SOURCE="$CACHE/src" >&2
(cd "$CACHE/pkg" && cpack -G DEB >&2)
ls "$CACHE"/pkg/deb/baton_*.deb
