#!/usr/bin/env bash
# Re-exec between every pair of adjacent releases in RELEASES, both ways, and between the newest
# release and this build, both ways (baton-upgrade-test, all scenarios): 0.1.0 <-> 0.2.0, then
# 0.2.0 <-> this build, and so on for every later release. Each release is built once in a cached
# worktree (scripts/build-release.sh: a minute or two on 2 cores the first time, nothing after).
# This build's batonctl and tests/baton_notify drive every pair (batonctl speaks to every release).
# Usage: scripts/upgrade-ci.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
HERE=$PWD/$BUILD_DIR
VERSIONS=$(awk '!/^#/ && NF >= 3 {print $1}' RELEASES)
if [ -z "$VERSIONS" ]; then echo "upgrade-ci: no release in RELEASES"; exit 0; fi
pair() {  # FROM_BATOND TO_BATOND
  scripts/baton-upgrade-test --from "$1" --to "$2" --ctl "$HERE/batonctl"
}
prev= prevVersion=
for v in $VERSIONS; do
  echo "== building release $v"
  build=$(scripts/build-release.sh "$v")
  if [ -n "$prev" ]; then
    echo "== baton-upgrade-test: $prevVersion <-> $v"
    pair "$prev/batond" "$build/batond"
    pair "$build/batond" "$prev/batond"
  fi
  prev=$build prevVersion=$v
done
echo "== baton-upgrade-test: $prevVersion <-> this build"
pair "$prev/batond" "$HERE/batond"
pair "$HERE/batond" "$prev/batond"
