#!/usr/bin/env bash
# Run every benchmark and write the results: bench/results/latest.jsonl (raw), the table in
# bench/results/table.md and the plot bench/results/downtime.png (gnuplot).
#   bench/run-all.sh [--build DIR] [--reexecs R]     full run (about 10-15 minutes)
#   bench/run-all.sh --smoke [--build DIR]           a few seconds: checks that everything runs
# Needs root (PID namespaces). Ratios are measured side by side in one run; this machine is
# noisy, so compare within a run, not across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build SMOKE=0 REEXECS=30
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --reexecs) REEXECS=$2; shift 2 ;;
    *) echo "run-all: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
BUILD=$(readlink -f "$BUILD")
BATOND=$BUILD/batond
if [ $SMOKE = 1 ]; then
  OUT=$(mktemp -d /tmp/baton-bench-smoke.XXXXXX)
  trap 'rm -rf "$OUT"' EXIT
  COUNTS="0 10"; REEXECS=2; TASKS=50; SER_FILTER='/(10|100)$'; MIN_TIME=0.01
else
  OUT=bench/results
  COUNTS="0 100 1000 10000"; TASKS=1000; SER_FILTER='.'; MIN_TIME=0.5
fi
mkdir -p "$OUT"
RAW=$OUT/latest.jsonl
: > "$RAW"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r), $("$BATOND" --version)" | tee "$OUT/machine.txt"

echo "== serialization (Google Benchmark)"
"$BUILD/bench/serialize_bench" --benchmark_filter="$SER_FILTER" --benchmark_min_time=$MIN_TIME \
  --benchmark_format=console --benchmark_out="$OUT/serialize.json" --benchmark_out_format=json

echo "== re-exec downtime"
for n in $COUNTS; do
  k=$((n / 10))
  "$BUILD/bench/reexec_downtime" --batond "$BATOND" --jobs "$n" --inflight "$k" --reexecs "$REEXECS" --json "$RAW"
done
echo "== re-exec downtime, every job touched (a status request each) before each re-exec (the expensive case)"
for n in $([ $SMOKE = 1 ] && echo 10 || echo "1000 10000"); do
  "$BUILD/bench/reexec_downtime" --batond "$BATOND" --jobs "$n" --inflight $((n / 10)) --reexecs "$REEXECS" --touch --json "$RAW"
done
echo "== seen from outside"
for probe in status reap; do
  "$BUILD/bench/reexec_downtime" --batond "$BATOND" --jobs "$([ $SMOKE = 1 ] && echo 10 || echo 100)" \
    --inflight 0 --reexecs "$REEXECS" --probe "$probe" --json "$RAW"
done
echo "== spawn throughput"
"$BUILD/bench/spawn_throughput" --batond "$BATOND" --tasks "$TASKS" --rounds "$([ $SMOKE = 1 ] && echo 1 || echo 3)" --json "$RAW"

if [ $SMOKE = 1 ]; then echo "benchmark smoke run: ok"; exit 0; fi

echo "== systemd --user daemon-reexec (anchor)"
if [ -x bench/compare/systemd-user.sh ]; then
  bench/compare/systemd-user.sh --build "$BUILD" --counts "0 100 1000" --reexecs 10 --json "$RAW" || \
    echo "(systemd comparison failed; see above)"
fi

echo "== table and plot"
bench/report.sh "$OUT"
