#!/usr/bin/env bash
# Set up everything (dependencies, build) and run the whole test suite with ctest.
# Must run as root: the integration tests start batond as PID 1 of new PID namespaces and use the
# real cgroup mounts (under groups of their own, removed afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
scripts/setup.sh "$BUILD_DIR"
echo "== upgrade test: previous release <-> this build"
scripts/upgrade-ci.sh "$BUILD_DIR"
echo "== benchmark smoke run (checks the benchmarks run, not their speed)"
bench/run-all.sh --smoke --build "$BUILD_DIR"
echo "== running tests"
(cd "$BUILD_DIR" && ctest --output-on-failure -j2 --timeout 300)
echo "== soak: 200 re-execs under churn (scripts/soak.sh; 10,000 once by hand, figures in the README)"
scripts/soak.sh 200 "$BUILD_DIR"
echo "== fuzzers: 20 s of each libFuzzer target (scripts/fuzz.sh; a crash fails the run and is kept)"
scripts/fuzz.sh 20 "$BUILD_DIR-fuzz"
echo "== end-to-end: the Debian package upgraded, re-exec'd and downgraded in a Debian container"
tests/e2e/package-upgrade.sh "$BUILD_DIR"
