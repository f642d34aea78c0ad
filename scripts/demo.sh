#!/usr/bin/env bash
# Set up everything and run the demo: batond as PID 1 of a new PID namespace supervising
# examples/jobs/ (a service, a task, a respawning crasher, an instance job and a broken file).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
scripts/setup.sh "$BUILD_DIR" >/dev/null
BIN=$PWD/$BUILD_DIR
WORK=$(mktemp -d /tmp/baton-demo.XXXXXX)
SOCK=$WORK/control
CTL() { echo "\$ batonctl $*"; "$BIN/batonctl" --socket "$SOCK" "$@" || echo "(exit $?)"; }

cleanup() {
  if [ -n "${HOLDER:-}" ]; then kill "$HOLDER" 2>/dev/null || true; fi
  if [ -n "${NS_INIT:-}" ]; then kill -KILL "$NS_INIT" 2>/dev/null || true; fi
  if [ -n "${UNSHARE_PID:-}" ]; then wait "$UNSHARE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The example jobs, plus one whose main process the demo holds in its setup phase (test hook)
# so that a re-exec happens while it is half-way through being spawned. It is held, asleep on
# the FIFO $WORK/hold, for as long as a writer has it open: a `sleep` (alone) holds it open.
mkdir -p "$WORK/jobs"
cp examples/jobs/*.conf "$WORK/jobs/"
mkfifo "$WORK/hold"
exec {HOLD_FD}<>"$WORK/hold"
sleep 1000000 <&"$HOLD_FD" &
HOLDER=$!
exec {HOLD_FD}<&-
cat > "$WORK/jobs/slowstart.conf" <<JOB
description "held in setup until the demo releases it"
env BATON_TEST_HOLD_FIFO=$WORK/hold
exec /bin/sh -c 'echo "slowstart: exec confirmed, pid \$\$"; exec sleep 3600'
JOB

# A job that says when it is ready (sd_notify, as rsyslogd or sshd do): this tree's test program
# sends READY=1 and a STATUS= two seconds after its exec.
cat > "$WORK/jobs/warmup.conf" <<JOB
description "ready only once it says so (expect notify)"
expect notify
ready timeout 30
exec $BIN/tests/baton_notify --delay 2000 --status "warmed up, serving"
JOB

echo "== starting batond as PID 1 of a new PID namespace (logs in $WORK/log)"
unshare --pid --fork --mount-proc "$BIN/batond" --confdir "$WORK/jobs" --socket "$SOCK" \
  --logdir "$WORK/log" --cgroup-base "baton-demo-$$" --test-hooks 2>"$WORK/batond.stderr" &
UNSHARE_PID=$!
for _ in $(seq 100); do
  "$BIN/batonctl" --socket "$SOCK" version >/dev/null 2>&1 && break
  sleep 0.05
done
NS_INIT=$(cat /proc/$UNSHARE_PID/task/*/children | awk '{print $1}')
echo "batond is pid $NS_INIT on the host, pid 1 inside its namespace"
CTL version
echo
echo "== the broken job file is reported, the others loaded"
CTL check-config
echo
sleep 1.5
echo "== ticker started on 'startup'; report ran once 'started ticker' was emitted"
CTL list
echo
echo "== start the crasher (respawn limit 3 in 60s) and two worker instances"
CTL start crasher
CTL start worker NAME=alpha
CTL start worker NAME=beta
sleep 2
CTL status crasher
CTL status worker
echo
echo "== stop one instance; restart the service"
CTL stop worker NAME=alpha
CTL restart ticker
echo
echo "== readiness notification: start returns once warmup sends READY=1 (about 2 s)"
time_start=$(date +%s.%N)
CTL start warmup
echo "(start took $(printf '%.1f' "$(echo "$(date +%s.%N) - $time_start" | bc)") s)"
CTL status warmup
echo
echo "== show-config of ticker"
CTL show-config ticker
echo
echo "== stateful re-exec while a child is half-way through being spawned"
CTL start -n slowstart
CTL status slowstart
CTL reexec
echo "(the client was answered by the new binary; the spawn is still in flight)"
CTL status slowstart
kill "$HOLDER"   # the last writer is gone: the held child goes on
sleep 0.3
CTL status slowstart
echo
echo "== SIGTERM to PID 1 re-execs too (Upstart's telinit u convention)"
TICKS_BEFORE=$(wc -l < "$WORK/log/ticker.log")
kill -TERM "$NS_INIT"
sleep 2.5
CTL status ticker
echo "ticker log: $TICKS_BEFORE lines before, $(wc -l < "$WORK/log/ticker.log") now, no gap:"
grep -E '^tick [0-9]+$' "$WORK/log/ticker.log" | awk '{n=$2; if (p && n!=p+1 && n!=1) {print "  GAP", p, n; bad=1} p=n}
  END {if (!bad) print "  every tick present once, in order (restarts begin again at 1)"}'
echo
echo "== logs"
for f in "$WORK"/log/*.log; do echo "--- $(basename "$f")"; tail -n 5 "$f"; done
echo
echo "== batond itself"
CTL status --daemon
