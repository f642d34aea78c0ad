#!/usr/bin/env bash
# soak.sh: many re-execs of one batond under churn, checked after every batch.
#
#   scripts/soak.sh [REEXECS] [BUILD_DIR]      (default 10000 re-execs, build dir `build`)
#   SOAK_BATCH=N  re-execs between two checks (default 100)
#
# batond runs as PID 1 of a new PID namespace with:
#   - services: `svc` (plain), `notify` (expect notify: readiness must survive every re-exec);
#   - a respawning job (`flaky`: exits 1 every 0.3 s, `respawn limit unlimited`);
#   - a log writer (`counter`: numbered lines, about 200 a second);
#   - instances started and stopped by a churn loop (`inst N=...`);
#   - clients that wait: `start slow` (its pre-start takes 0.2 s) from the churn loop;
#   - a non-root client (uid 65534) looping on `status`.
# After each batch it checks: every re-exec answered ok; svc and notify kept their pids and notify
# is still ready; no zombie child of batond; batond's fd count and RSS flat (fds: exactly as many
# as at the first check; RSS: reported, and at most 2x the first check); the counter log has no gap
# and no repeat; the churn loop's and the non-root client's requests were all answered.
# Prints one line per batch and a summary; exits 0 if every check held, 1 otherwise.
# Needs root (PID namespaces, uid switching); starts and signals only processes of its own.
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
BUILD_DIR=${2:-build}
BATCH=${SOAK_BATCH:-100}
BIN=$PWD/$BUILD_DIR
NOTIFY_PROG=$BIN/tests/baton_notify
[ -x "$BIN/batond" ] && [ -x "$NOTIFY_PROG" ] || { echo "soak: build first ($BIN/batond, $NOTIFY_PROG)" >&2; exit 2; }

W=$(mktemp -d /tmp/baton-soak.XXXXXX)
chmod 755 "$W"
mkdir -p "$W/conf" "$W/log"
SOCK=$W/sock
ctl() { "$BIN/batonctl" --socket "$SOCK" "$@"; }
UNSHARE= NS_INIT= CHURN= ROGUE=
cleanup() {
  [ -n "$CHURN" ] && kill "$CHURN" 2>/dev/null
  [ -n "$ROGUE" ] && kill "$ROGUE" 2>/dev/null
  [ -n "$NS_INIT" ] && kill -KILL "$NS_INIT" 2>/dev/null
  [ -n "$UNSHARE" ] && wait "$UNSHARE" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf 'start on startup\nexec sleep 1000000\n' > "$W/conf/svc.conf"
printf 'start on startup\nexpect notify\nexec %s --status soaking\n' "$NOTIFY_PROG" > "$W/conf/notify.conf"
printf 'start on startup\nrespawn\nrespawn limit unlimited\nexec /bin/sh -c "sleep 0.3; exit 1"\n' > "$W/conf/flaky.conf"
printf 'start on startup\nexec /bin/sh -c '"'"'i=0; while :; do i=$((i+1)); echo $i; sleep 0.005; done'"'"'\n' > "$W/conf/counter.conf"
printf 'instance $N\nexec sleep 1000000\n' > "$W/conf/inst.conf"
printf 'pre-start exec sleep 0.2\nexec sleep 1000000\n' > "$W/conf/slow.conf"

unshare --pid --fork --mount-proc --kill-child=SIGKILL "$BIN/batond" --confdir "$W/conf" --socket "$SOCK" \
  --logdir "$W/log" --cgroup-base "baton-soak-$$" 2>"$W/stderr" &
UNSHARE=$!
for _ in $(seq 200); do ctl version >/dev/null 2>&1 && break; sleep 0.05; done
NS_INIT=$(cat /proc/$UNSHARE/task/*/children 2>/dev/null | awk '{print $1}')
[ -n "$NS_INIT" ] && ctl version >/dev/null 2>&1 || { echo "soak: batond did not start"; cat "$W/stderr"; exit 1; }
running_pid() { ctl status "$1" 2>/dev/null | sed -n "s|^$1 start/running, process \([0-9]*\)\$|\1|p"; }
for _ in $(seq 100); do [ -n "$(running_pid svc)" ] && [ -n "$(running_pid notify)" ] && break; sleep 0.05; done
SVC=$(running_pid svc) NOTIFY=$(running_pid notify)
[ -n "$SVC" ] && [ -n "$NOTIFY" ] || { echo "soak: services did not start"; ctl list; exit 1; }

# Churn: instances up and down, a waiting `start slow` + `stop slow`, counted; every request must
# be answered (a failed batonctl call is counted as unanswered, whatever its reason).
( i=0 bad=0
  # req ARGS...: one request; an error it may legitimately get (the instance is already there or
  # already gone) is an answer too; anything else (no answer, a protocol error) is counted.
  req() {
    local out rc=0
    out=$(ctl "$@" 2>&1) || rc=$?
    case "$rc:$out" in
      0:*|*"already running"*|*"unknown instance"*|*"already in goal"*) ;;
      *) bad=$((bad+1)); echo "request $* -> exit $rc: $out" >> "$W/churn.errors" ;;
    esac
  }
  while :; do
    i=$((i+1))
    req start inst N=$((i % 5))
    req stop inst N=$(((i + 2) % 5))
    if [ $((i % 10)) = 0 ]; then req start slow; req stop slow; fi
    echo "$i $bad" > "$W/churn.tmp" && mv "$W/churn.tmp" "$W/churn.count"   # read whole
  done ) &
CHURN=$!
# A non-root client looping on status (it may only query).
( i=0 bad=0
  while :; do
    i=$((i+1))
    setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN/batonctl" --socket "$SOCK" status svc >/dev/null 2>&1 || bad=$((bad+1))
    echo "$i $bad" > "$W/rogue.tmp" && mv "$W/rogue.tmp" "$W/rogue.count"
  done ) &
ROGUE=$!

host_pid() { echo "$NS_INIT"; }  # batond keeps its pid across re-execs
fds() { ls "/proc/$NS_INIT/fd" | wc -l; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$NS_INIT/status"; }
zombies() {
  local n=0 c
  for c in $(cat /proc/$NS_INIT/task/*/children 2>/dev/null); do
    [ "$(awk '{print $3}' "/proc/$c/stat" 2>/dev/null)" = Z ] && n=$((n+1))
  done
  echo $n
}
counter_ok() {
  awk 'NR != $1 {print "line " NR " is " $0; bad=1; exit} END {exit bad}' "$W/log/counter.log"
}

FAILED=0 done_=0 t0=$(date +%s.%N) FDS0= RSS0= ZOMBIE_SEEN=0
fail() { echo "FAIL after $done_ re-execs: $*"; FAILED=1; }
while [ $done_ -lt "$N" ]; do
  b=$((N - done_ < BATCH ? N - done_ : BATCH))
  tb=$(date +%s.%N)
  for _ in $(seq "$b"); do
    out=$(ctl reexec 2>&1) || { fail "re-exec: $out"; break 2; }
    done_=$((done_ + 1))
  done
  secs=$(echo "$(date +%s.%N) - $tb" | bc)
  # Let the loop settle a moment so that a child that just exited has been reaped.
  [ "$(running_pid svc)" = "$SVC" ] || fail "svc changed: $(ctl status svc)"
  [ "$(running_pid notify)" = "$NOTIFY" ] || fail "notify changed: $(ctl status notify)"
  ctl status notify | grep -q $'^\treadiness: ready$' || fail "notify lost its readiness: $(ctl status notify)"
  z=$(zombies)
  if [ "$z" -gt 0 ]; then
    sleep 0.2; z=$(zombies)   # an exit that happened this instant is reaped at the next turn
    [ "$z" -gt 0 ] && fail "$z zombie children of batond"
  fi
  # The churn and the non-root client hold connections of their own: fds compared with the
  # same clients connected or not would vary by a few; count them out.
  f=$(fds) r=$(rss_kb)
  [ -z "$FDS0" ] && FDS0=$f RSS0=$r
  [ "$f" -le $((FDS0 + 8)) ] || fail "fd count grew: $FDS0 -> $f"
  [ "$r" -le $((RSS0 * 2)) ] || fail "RSS doubled: $RSS0 -> $r kB"
  counter_ok || fail "the counter log has a gap or a repeat"
  read -r ci cbad < "$W/churn.count" 2>/dev/null || ci=0 cbad=0
  read -r ri rbad < "$W/rogue.count" 2>/dev/null || ri=0 rbad=0
  [ "${cbad:-0}" = 0 ] || fail "$cbad churn requests not answered: $(head -n 3 "$W/churn.errors")"
  [ "${rbad:-0}" = 0 ] || fail "$rbad non-root status requests not answered"
  printf 'batch: %6d re-execs  %5.1f ms/re-exec  fds %d  rss %d kB  churn %d reqs  non-root %d reqs  log %d lines\n' \
    "$done_" "$(echo "$secs * 1000 / $b" | bc -l)" "$f" "$r" "${ci:-0}" "${ri:-0}" "$(wc -l < "$W/log/counter.log")"
  [ $FAILED = 0 ] || break
done
total=$(echo "$(date +%s.%N) - $t0" | bc)
echo "soak: $done_ re-execs in $(printf '%.0f' "$total") s; fds $FDS0 -> $(fds), rss $RSS0 -> $(rss_kb) kB; last re-exec:"
ctl status --daemon | sed -n '/^last re-exec/,$p' | grep -E 'last re-exec|downtime|snapshot' | sed 's/^/  /'
[ $FAILED = 0 ] && echo "soak: every check held" || { echo "soak: FAILED"; tail -n 20 "$W/stderr"; }
exit $FAILED
