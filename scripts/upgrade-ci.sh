#!/usr/bin/env bash
# Re-exec from the newest release in RELEASES into this build and back (baton-upgrade-test, all
# scenarios). The release is built once in a cached worktree (scripts/build-release.sh: about a
# minute on 2 cores the first time, nothing afterwards).
# Usage: scripts/upgrade-ci.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
PREVIOUS=$(awk '!/^#/ && NF >= 3 {v = $1} END {print v}' RELEASES)
if [ -z "$PREVIOUS" ]; then echo "upgrade-ci: no release in RELEASES"; exit 0; fi
echo "== building release $PREVIOUS"
RELEASE_BUILD=$(scripts/build-release.sh "$PREVIOUS")
echo "== baton-upgrade-test: $PREVIOUS <-> this build"
scripts/baton-upgrade-test --from "$RELEASE_BUILD/batond" --to "$PWD/$BUILD_DIR/batond" --ctl "$PWD/$BUILD_DIR/batonctl"
