#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz) with clang and run each for SECONDS, one at a time.
# Usage: scripts/fuzz.sh [SECONDS] [BUILD_DIR]   (defaults: 60, build-fuzz)
#   FUZZ_TARGETS="snapshot control jobfile upstart notify"   the targets to run (default: all five)
#   FUZZ_ARGS="..."                                    more libFuzzer flags (e.g. -jobs=1)
#
# Each target starts from its seeds (tests/fuzz/corpus/TARGET, only read) and the corpus it grew
# in earlier runs (BUILD_DIR/fuzz/TARGET/corpus). An input that crashes, leaks, hangs, runs out
# of memory or breaks a property (tests/fuzz/fuzz_checks.h) is copied to tests/data/crashers/ as
# TARGET-HASH.EXT (a snapshot with its checksum filled in, as the fuzzer read it), where the
# crasher tests run it from then on; the script then exits 1.
# Exec counts per target: BUILD_DIR/fuzz/TARGET/log ("stat::number_of_executed_units").
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
BUILD_DIR=${2:-build-fuzz}
TARGETS=${FUZZ_TARGETS:-snapshot control jobfile upstart notify}

declare -A EXT=([snapshot]=snapshot [control]=frame [jobfile]=conf [upstart]=json [notify]=notify)
# Largest input per target: a few times the seeds (snapshots of a few jobs are 2-3 KiB, the
# Upstart seeds up to 8 KiB); longer inputs only slow the search down.
declare -A MAX_LEN=([snapshot]=16384 [control]=4096 [jobfile]=4096 [upstart]=16384 [notify]=8192)

echo "== building the fuzzers in $BUILD_DIR (clang, ASan, UBSan, libFuzzer)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DBATON_FUZZ=ON >/dev/null
ninja -C "$BUILD_DIR" fuzzers

failed=0
for t in $TARGETS; do
  ext=${EXT[$t]:?unknown fuzz target $t}
  work=$BUILD_DIR/fuzz/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  rm -f "$work/artifacts"/*
  status=0
  # UBSan's reports abort (halt_on_error); ASan's leak check runs after every input.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$BUILD_DIR/tests/fuzz/${t}_fuzzer" "$work/corpus" "tests/fuzz/corpus/$t" \
    -max_total_time="$SECS" -max_len="${MAX_LEN[$t]}" -timeout=30 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts/" -print_final_stats=1 ${FUZZ_ARGS:-} >"$work/log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  echo "== $t: ${SECS} s, ${execs:-?} inputs run, corpus $(ls "$work/corpus" | wc -l) files"
  found=0
  for a in "$work/artifacts"/*; do
    [ -f "$a" ] || continue
    dest=tests/data/crashers/$t-$(sha1sum "$a" | cut -c1-12).$ext
    cp "$a" "$dest"
    # What the fuzzer read: its checksum filled in (so batond's and baton-state's readers reach
    # the body too, see tests/integration/crashers_test.cpp).
    if [ "$t" = snapshot ]; then "$BUILD_DIR/tests/fuzz/fuzz_tool" fill-checksum "$dest" || true; fi
    echo "   $(basename "$a") -> $dest"
    found=1
  done
  if [ "$status" != 0 ] || [ "$found" = 1 ]; then
    echo "== $t FAILED (exit $status); the end of $work/log:"
    tail -n 40 "$work/log"
    failed=1
  fi
done
if [ "$failed" != 0 ]; then
  echo "== fuzzing found problems: minimize with '$BUILD_DIR/tests/fuzz/TARGET_fuzzer -minimize_crash=1 -runs=10000 FILE', fix the reader, keep the crasher"
fi
exit "$failed"
