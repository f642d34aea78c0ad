# Scenarios shared by baton-upgrade-test and make-golden-snapshots.sh: each builds a piece of
# state that a re-exec must carry (services, a spawn held in flight, a log writer, a waiting
# client, a pending kill timer, instances, a blocked event).
#   scenario_NAME_jobs    writes job files into $W/conf
#   scenario_NAME_setup   drives batond into the state (returns non-zero if it does not get there)
#   scenario_NAME_finish  lets the scenario complete and checks the outcome
#   scenario_NAME_reexec  (optional) re-execs into $1 (label $2) itself, where the outcome
#                         depends on what the target can hold (the downgrade policy)
#   scenario_NAME_needs   (optional) the snapshot format the starting binary must write
# Callers set CTL (batonctl) and call start_batond BATOND / stop_batond. The notify scenarios run
# NOTIFY_PROG (default: tests/baton_notify of the build CTL comes from).
SCENARIOS="idle spawn-in-flight log-writer waiting-client timers instances blocked-event"
SCENARIOS="$SCENARIOS notify-waiting notify-ready notify-defined"
NOTIFY_PROG=$(readlink -f "${NOTIFY_PROG:-$(dirname "$CTL")/tests/baton_notify}")
FAILED=0
W= NS_INIT= UNSHARE= HOLDER=
ctl() { "$CTL" --socket "$W/sock" "$@"; }
fail() { echo "FAIL $SCEN: $*"; echo "  batond stderr (last lines):"; tail -n 8 "$W/stderr" | sed 's/^/    /'; FAILED=1; return 1; }
# Job states and pids. Readiness lines are left out: a downgrade to a format without readiness
# maps it away on purpose, and the notify scenarios check readiness themselves.
snapshot_list() { ctl list 2>&1 | grep -v -e $'^\treadiness: ' -e $'^\tstatus: '; }
# What a binary says of its snapshot formats: writes_format BATOND, reads_max BATOND.
writes_format() { "$1" --state-formats | awk '/^writes/ {print $2}'; }
reads_max() { "$1" --state-formats | awk '/^reads/ {split($2, r, "-"); print r[2]}'; }

start_batond() {  # $1: the batond binary; runs scenario $SCEN's jobs as PID 1 of a new namespace
  W=$(mktemp -d /tmp/baton-scenario.XXXXXX); mkdir -p "$W/conf" "$W/log"
  "scenario_${SCEN//-/_}_jobs"
  unshare --pid --fork --mount-proc --kill-child=SIGKILL "$1" --confdir "$W/conf" --socket "$W/sock" \
    --logdir "$W/log" --cgroup-base "baton-upgrade-$$" --test-hooks 2>"$W/stderr" &
  UNSHARE=$!
  for _ in $(seq 200); do ctl version >/dev/null 2>&1 && break; sleep 0.05; done
  NS_INIT=$(cat /proc/$UNSHARE/task/*/children 2>/dev/null | awk '{print $1}')
  ctl version >/dev/null 2>&1 || { fail "batond did not start"; return 1; }
}
stop_batond() {
  [ -n "$NS_INIT" ] && kill -KILL "$NS_INIT" 2>/dev/null
  [ -n "$UNSHARE" ] && wait "$UNSHARE" 2>/dev/null
  release
  rm -rf "$W"; NS_INIT= UNSHARE=
}
# Held spawns, under either binary: the jobs set both test hooks. This tree's batond holds a
# job's process asleep on the FIFO $W/hold until its last writer closes (BATON_TEST_HOLD_FIFO);
# 0.1.0's polls until $W/release exists (BATON_TEST_HOLD) and does not know the FIFO hook. One
# path cannot serve both: the FIFO exists from the start, so 0.1.0's children would go at once.
hold_env() { printf 'env BATON_TEST_HOLD=%s\nenv BATON_TEST_HOLD_FIFO=%s\n' "$W/release" "$W/hold"; }
hold() {  # the writer: a sleep with the FIFO open, opened here so that it holds from now on
  local fd
  mkfifo "$W/hold" && exec {fd}<>"$W/hold" || return 1   # read-write: the open does not wait
  sleep 1000000 <&"$fd" &
  HOLDER=$!
  exec {fd}<&-   # batond, batonctl and the rest must not hold it too
}
release() {  # lets every held spawn go, whichever binary forked it
  [ -n "$W" ] && touch "$W/release"
  [ -n "$HOLDER" ] && { kill "$HOLDER"; wait "$HOLDER"; } 2>/dev/null
  HOLDER=
}
reexec_into() {  # $1 binary, $2 label [, more batonctl reexec arguments]
  local out; out=$(ctl reexec --binary "$1" "${@:3}" 2>&1) || { fail "$2 re-exec failed: $out"; return 1; }
  local down; down=$(echo "$out" | awk '/downtime:/ {print $2, $3}')
  local path; path=$(echo "$out" | sed -n 's/^ *format: //p' | paste -sd ';')
  echo "  $2: ok (downtime $down${path:+; format $path})"
  REEXEC_OUT=$out
}
same_state() {  # $1 label; compares with $BEFORE
  local now; now=$(snapshot_list)
  [ "$now" = "$BEFORE" ] || { fail "state changed across the $1:"$'\n'"before: $BEFORE"$'\n'"after:  $now"; return 1; }
}
wait_for() { for _ in $(seq 100); do eval "$1" && return 0; sleep 0.1; done; return 1; }

# ---- scenarios: *_jobs writes job files, *_setup builds the state, *_finish checks the end ----
scenario_idle_jobs() {
  printf 'start on startup\nexec sleep 1000\n' > "$W/conf/svc.conf"
  printf 'start on startup\nscript\n  exec sleep 1000\nend script\n' > "$W/conf/scripted.conf"
}
scenario_idle_setup() { wait_for 'ctl status svc | grep -q running && ctl status scripted | grep -q running'; }
scenario_idle_finish() { ctl stop svc >/dev/null && ctl status svc | grep -q 'stop/waiting'; }

scenario_spawn_in_flight_jobs() {
  { hold_env; printf 'exec sleep 1000\n'; } > "$W/conf/held.conf"
  hold
}
scenario_spawn_in_flight_setup() { ctl start -n held >/dev/null && wait_for 'ctl status held | grep -q spawning'; }
scenario_spawn_in_flight_finish() {
  local pid; pid=$(ctl status held | sed -n 's/.*process \([0-9]*\).*/\1/p')
  release
  wait_for "ctl status held | grep -q 'start/running, process $pid\$'" || { fail "held spawn did not reach running as pid $pid: $(ctl status held)"; return 1; }
}

scenario_log_writer_jobs() {
  printf 'start on startup\nexec /bin/sh -c '"'"'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo $i; sleep 0.002; done; sleep 1000'"'"'\n' > "$W/conf/counter.conf"
}
scenario_log_writer_setup() { wait_for '[ -s "$W/log/counter.log" ]'; }
scenario_log_writer_finish() {
  sleep 0.3
  awk 'NR != $1 {print "line " NR " is " $1; bad=1; exit} END {exit bad}' "$W/log/counter.log" \
    || { fail "log lost or duplicated output"; return 1; }
}

scenario_waiting_client_jobs() {
  { hold_env; printf 'pre-start exec true\nexec sleep 1000\n'; } > "$W/conf/slow.conf"
  hold
}
scenario_waiting_client_setup() {
  (ctl start slow > "$W/client.out" 2>&1; echo $? > "$W/client.rc") &
  wait_for 'ctl status slow | grep -q spawning'
}
scenario_waiting_client_finish() {
  release
  wait_for '[ -s "$W/client.rc" ]' || { fail "the waiting client never got its answer"; return 1; }
  [ "$(cat "$W/client.rc")" = 0 ] || { fail "the waiting client failed: $(cat "$W/client.out")"; return 1; }
  grep -q 'slow start/running' "$W/client.out" || { fail "unexpected answer: $(cat "$W/client.out")"; return 1; }
}

scenario_timers_jobs() {
  printf 'kill timeout 4\nscript\n  trap "" TERM\n  while true; do sleep 0.1; done\nend script\n' > "$W/conf/stubborn.conf"
}
scenario_timers_setup() {
  ctl start stubborn >/dev/null && ctl stop -n stubborn >/dev/null
  STOP_AT=$(date +%s.%N)
  ctl status stubborn | grep -q 'stop/killed'
}
scenario_timers_finish() {
  wait_for "ctl status stubborn | grep -q 'stop/waiting'" || { fail "kill timeout never fired"; return 1; }
  local took; took=$(echo "$(date +%s.%N) - $STOP_AT" | bc)
  # The deadline is absolute: re-execs must neither restart nor lose it (4 s, generous bounds).
  if [ "$(echo "$took < 3.5 || $took > 9" | bc)" = 1 ]; then fail "kill timeout fired after ${took}s, not ~4s"; return 1; fi
}

scenario_instances_jobs() { printf 'instance $N\nexec sleep 1000\n' > "$W/conf/inst.conf"; }
scenario_instances_setup() { ctl start inst N=a >/dev/null && ctl start inst N=b >/dev/null && ctl start inst N=c >/dev/null; }
scenario_instances_finish() {
  ctl stop inst N=b >/dev/null && ! ctl status inst | grep -q '(b)' && [ "$(ctl status inst | grep -c running)" = 2 ] \
    || { fail "instances not intact: $(ctl status inst)"; return 1; }
}

scenario_blocked_event_jobs() {
  { printf 'start on starting main\n'; hold_env; printf 'task\nexec true\n'; } > "$W/conf/gate.conf"
  printf 'exec sleep 1000\n' > "$W/conf/main.conf"
  hold
}
scenario_blocked_event_setup() {
  (ctl start main > "$W/client.out" 2>&1; echo $? > "$W/client.rc") &
  wait_for 'ctl status gate | grep -q spawning && ctl status main | grep -q "start/starting"'
}
scenario_blocked_event_finish() {
  release
  wait_for "ctl status main | grep -q 'start/running'" || { fail "main stayed blocked: $(ctl status main)"; return 1; }
  wait_for '[ -s "$W/client.rc" ]' && [ "$(cat "$W/client.rc")" = 0 ] || { fail "start main client: $(cat "$W/client.out")"; return 1; }
}

# `expect notify` (format 2). Each re-exec into a binary that cannot read format 2 follows the
# downgrade policy of docs/formats.md: a job waiting for readiness is refused (d); a ready one is
# refused without consent and mapped to `expect none` with --allow-downgrade-mapping (c).
notify_prog_missing() {
  [ -x "$NOTIFY_PROG" ] && return 1
  echo "SKIP $SCEN: $NOTIFY_PROG is missing (build this tree's tests)"; return 0
}
scenario_notify_waiting_needs() { echo 2; }
scenario_notify_waiting_jobs() {
  printf 'expect notify\nready timeout 600\nexec %s --wait-file %s\n' "$NOTIFY_PROG" "$W/go" > "$W/conf/slow.conf"
}
scenario_notify_waiting_setup() {
  (ctl start slow > "$W/client.out" 2>&1; echo $? > "$W/client.rc") &
  wait_for 'ctl status slow | grep -q "readiness: waiting"'
}
scenario_notify_waiting_reexec() {  # $1 binary, $2 label
  if [ "$(reads_max "$1")" -ge 2 ]; then reexec_into "$1" "$2"; return; fi
  local out; out=$(ctl reexec --binary "$1" --allow-downgrade-mapping 2>&1) \
    && { fail "$2: a downgrade with a job waiting for readiness was not refused: $out"; return 1; }
  echo "$out" | grep -q "'slow' is still waiting for it" || { fail "$2: refused for another reason: $out"; return 1; }
  ctl status slow | grep -q "readiness: waiting" || { fail "$2: the refusal changed the job: $(ctl status slow)"; return 1; }
  echo "  $2: refused as the downgrade policy says (a job waiting for readiness), old binary serving"
}
scenario_notify_waiting_finish() {
  [ -e "$W/client.rc" ] && { fail "the start returned before the job was ready: $(cat "$W/client.out")"; return 1; }
  touch "$W/go"
  wait_for '[ -s "$W/client.rc" ]' || { fail "the waiting start never got its answer"; return 1; }
  [ "$(cat "$W/client.rc")" = 0 ] && grep -q 'slow start/running' "$W/client.out" \
    || { fail "start slow: $(cat "$W/client.out")"; return 1; }
}

scenario_notify_ready_needs() { echo 2; }
scenario_notify_ready_jobs() {
  printf 'expect notify\nexec %s --status serving\n' "$NOTIFY_PROG" > "$W/conf/up.conf"
  MAPPED=no
}
scenario_notify_ready_setup() { ctl start up >/dev/null && ctl status up | grep -q 'status: serving'; }
# A re-exec of a state with notify job $3 into $1 (label $2): into a format-1 binary it must be
# refused without consent and mapped (and listed) with it.
reexec_mapping_notify_job() {
  if [ "$(reads_max "$1")" -ge 2 ]; then reexec_into "$1" "$2"; return; fi
  local out; out=$(ctl reexec --binary "$1" 2>&1) && { fail "$2: mapped without consent: $out"; return 1; }
  echo "$out" | grep -q -- "--allow-downgrade-mapping" || { fail "$2: refused for another reason: $out"; return 1; }
  reexec_into "$1" "$2 (mapping allowed)" --allow-downgrade-mapping || return 1
  echo "$REEXEC_OUT" | grep -q "mapped: job '$3': \`expect notify\` becomes \`expect none\`" \
    || { fail "$2: the mapping was not listed: $REEXEC_OUT"; return 1; }
  MAPPED=yes
}
scenario_notify_ready_reexec() { reexec_mapping_notify_job "$1" "$2" up; }
scenario_notify_ready_finish() {
  if [ $MAPPED = no ] && ! ctl status up | grep -q 'readiness: ready'; then fail "readiness lost: $(ctl status up)"; return 1; fi
  ctl stop up >/dev/null && ctl status up | grep -q 'stop/waiting' || { fail "stop up: $(ctl status up)"; return 1; }
}

# Row (b) of the downgrade policy: an `expect notify` job defined, no instance. Mapped, it starts
# as `expect none` (no readiness shown); not mapped, it starts ready as before.
scenario_notify_defined_needs() { echo 2; }
scenario_notify_defined_jobs() {
  printf 'expect notify\nexec %s\n' "$NOTIFY_PROG" > "$W/conf/later.conf"
  MAPPED=no
}
scenario_notify_defined_setup() { ctl status later | grep -q 'stop/waiting'; }
scenario_notify_defined_reexec() { reexec_mapping_notify_job "$1" "$2" later; }
scenario_notify_defined_finish() {
  ctl start later >/dev/null || { fail "start later: $(ctl status later)"; return 1; }
  if [ $MAPPED = yes ]; then
    ctl status later | grep -q 'readiness:' && { fail "still a notify job after the mapping: $(ctl status later)"; return 1; }
  else
    ctl status later | grep -q 'readiness: ready' || { fail "not ready: $(ctl status later)"; return 1; }
  fi
  return 0
}
