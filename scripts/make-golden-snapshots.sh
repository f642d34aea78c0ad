#!/usr/bin/env bash
# Write the golden snapshots of a release: one per scenario (scripts/lib/scenarios.sh), taken with
# `batonctl snapshot` from that release's own batond (built by build-release.sh) in the middle of
# the scenario. Golden snapshots are never regenerated: existing files are left alone.
# Usage: scripts/make-golden-snapshots.sh VERSION [OUTDIR]   (default tests/data/snapshots)
set -uo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:?usage: make-golden-snapshots.sh VERSION [OUTDIR]}
OUT=${2:-tests/data/snapshots}
BUILD=$(scripts/build-release.sh "$VERSION") || exit 1
# The notify scenarios run this tree's test program (a release build has no tests).
NOTIFY_PROG=${NOTIFY_PROG:-$PWD/build/tests/baton_notify}
BATOND=$BUILD/batond
CTL=$BUILD/batonctl
FORMAT=$("$BATOND" --state-formats | awk '/^writes/ {print $2}')
. scripts/lib/scenarios.sh
mkdir -p "$OUT"
for SCEN in $SCENARIOS; do
  needs=scenario_${SCEN//-/_}_needs
  if declare -F "$needs" >/dev/null && [ "$FORMAT" -lt "$($needs)" ]; then continue; fi
  case $SCEN in notify-*) notify_prog_missing && continue ;; esac
  file="$OUT/format$FORMAT-$VERSION-$SCEN.snapshot"
  if [ -e "$file" ]; then echo "keep  $file (golden snapshots are never regenerated)"; continue; fi
  start_batond "$BATOND" || { stop_batond; exit 1; }
  if ! "scenario_${SCEN//-/_}_setup"; then fail "setup failed"; stop_batond; exit 1; fi
  ctl snapshot -o "$file" || { fail "snapshot failed"; stop_batond; exit 1; }
  echo "wrote $file ($(stat -c %s "$file") bytes)"
  stop_batond
done
