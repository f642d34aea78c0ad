#!/bin/bash
# Anchor comparison: re-exec downtime of a private `systemd --user` manager (systemd 252 as
# installed) against baton's own harness (bench/reexec_downtime), at the same number of running
# services N.
#
#   bench/compare/systemd-user.sh [--build DIR] [--counts "0 100 1000"] [--reexecs R] [--json FILE]
#                                 [--keep]
#
#   --build DIR    baton build dir holding batond and bench/reexec_downtime (default: <repo>/build)
#   --counts LIST  numbers of running services (default "0 100 1000")
#   --reexecs R    re-execs per measurement, median taken over them (default 10)
#   --json FILE    append one JSON line per N:
#                  {"n":N,"systemd_median_us":..,"baton_median_us":..,"ratio":..,...}
#                  (ratio = systemd median / baton median; extra fields after those four)
#   --keep         keep the work dir (logs, per-N raw results) and say where it is
#
# For every N, in this order (interleaved, same N, back to back):
#   1. baton:   BUILD/bench/reexec_downtime --batond BUILD/batond --jobs N --inflight 0 --reexecs R
#               Its "downtime" median: measured inside batond, from the start of serialization to
#               the moment the new image serves again (see supervisor/reexec.cpp).
#   2. systemd: a fresh, private `systemd --user` manager with N units bench-<i>.service
#               (Type=simple, ExecStart=/bin/sleep infinity, output to /dev/null), all pulled in by
#               bench.target, which is the manager's start unit (--unit=bench.target). Once all N
#               are active and the manager reports "running" (startup done, job queue empty), R
#               re-execs are timed from a client, one every ~0.3 s:
#
#   WHAT IS MEASURED for systemd (per re-exec; median, p90, max over R):
#     t0 = just before the client writes the D-Bus call org.freedesktop.systemd1.Manager.Reexecute
#          (what `systemctl --user daemon-reexec` sends) on a connection to the manager's private
#          socket $XDG_RUNTIME_DIR/systemd/private (connection and auth done before t0);
#     then the client waits for that connection to be closed (the old image drops its bus
#          connections; systemd sends no reply to Reexecute), and from then on, in a loop, opens a
#          NEW connection, authenticates (EXTERNAL), calls
#          org.freedesktop.DBus.Properties.Get("org.freedesktop.systemd1.Manager", "Version")
#          (what `systemctl --user show -p Version` asks) and waits for the answer; a refused or
#          dropped attempt is retried after 100 us;
#     t1 = the first method-return of such a Get.  downtime = t1 - t0.
#   The client is a few lines of Python speaking D-Bus directly (no process spawn per poll, so no
#   systemctl start-up cost in the number). Every Get answered after the old connection was
#   closed comes from the new image (the old one answers nothing more once it drops its
#   connections), and the manager only dispatches bus calls from its main loop, i.e. after
#   generators, unit loading, deserialization and coldplug. The number therefore also contains one
#   client round trip (connect + auth + Get); its idle cost is measured first and printed as
#   "probe rtt" (median of 20 on the idle manager) - subtract it for the pure systemd downtime.
#   baton's number is measured inside batond and contains no client round trip, so the ratio is
#   slightly in baton's favour by that rtt (reported next to it). After the R re-execs the script
#   checks that the manager kept its pid (it re-exec'd, not restarted) and that all N units are
#   still active; otherwise the N fails.
#
# ISOLATION of the systemd manager (the machine is shared):
#   - a child cgroup v2 group with a unique name, baton-sdcmp-<pid>-<n>, created below this
#     script's own cgroup v2 group in the host's cgroup2 hierarchy (here /sys/fs/cgroup/unified;
#     BATON_SDCMP_CGROUP_PARENT=DIR overrides the parent directory). The only process moved into it
#     is a shell this script just started, which then execs unshare; everything of the manager
#     descends from it. Nothing else is created anywhere in the host's hierarchies, and the v1
#     hierarchies are not touched at all.
#   - unshare --mount --propagation private --cgroup --pid --fork --mount-proc --kill-child:
#     private mount namespace; a cgroup namespace whose root is that child group, so systemd sees
#     itself at "/" and all groups it creates (init.scope, app.slice/bench-*.service, ...) land
#     below the child group; a PID namespace whose PID 1 is this script in --inner mode (a plain
#     bash that starts `systemd --user` as a child and drives the measurement). systemd --user
#     runs fine in a PID namespace as long as it is not PID 1 itself (as PID 1 it would take the
#     system-manager path), hence the bash init.
#   - inside: tmpfs over /run (XDG_RUNTIME_DIR=/run/user/0, HOME=/run/sdhome with the generated
#     units in ~/.config/systemd/user, plus an empty /run/systemd/system, which systemd --user
#     requires: "system has not been booted with systemd" otherwise); a fresh cgroup2 mount over
#     /sys/fs/cgroup (shows only the child group, thanks to the cgroup namespace); /dev/console is
#     covered by a regular file and /dev/kmsg by /dev/null, because a root `systemd --user`
#     re-opens /dev/console for its log and its generators log to /dev/kmsg - otherwise it would
#     write into the host's console and kernel log. systemd sees no system bus, no journal.
#   - teardown (also on error/interrupt, trap EXIT): SIGKILL to our namespace's PID 1 and to our
#     unshare, by pid (the PID namespace dies with its PID 1); then cgroup.kill on the child group
#     (contains only our processes) as a safety net, wait until it is empty, remove it and the
#     groups systemd made inside it, deepest first. baton's harness runs its batond in a PID
#     namespace of its own; on interrupt its unshare child and the harness are killed by pid.
#
# Exit status: 0 if every N was measured on both sides; 1 with a message saying what was tried if
# systemd --user cannot be started in isolation here (or baton's harness fails); 2 on usage errors.
set -u

SELF=$(readlink -f "${BASH_SOURCE[0]}")

# ---------------------------------------------------------------------------------------------
# The D-Bus client: probe rtt, R timed re-execs, JSON result on stdout.
write_client() {
  cat > "$1" <<'PY'
import json, os, select, socket, struct, sys, time

SOCK = os.environ["XDG_RUNTIME_DIR"] + "/systemd/private"
PATH = "/org/freedesktop/systemd1"
DEST = "org.freedesktop.systemd1"

def _align(buf, n):
    while len(buf) % n:
        buf.append(0)

def _str(buf, s):
    _align(buf, 4)
    e = s.encode()
    buf += struct.pack("<I", len(e)) + e + b"\0"

def call_msg(iface, member, sig="", body=b""):
    # Little-endian METHOD_CALL, protocol 1, serial 1 (each connection carries one call).
    buf = bytearray(b"l\x01\x00\x01" + struct.pack("<II", len(body), 1) + b"\0\0\0\0")
    fields = [(1, "o", PATH), (2, "s", iface), (3, "s", member), (6, "s", DEST)]
    if sig:
        fields.append((8, "g", sig))
    for code, typ, val in fields:
        _align(buf, 8)
        buf += bytes([code, 1]) + typ.encode() + b"\0"
        if typ == "g":
            buf += bytes([len(val)]) + val.encode() + b"\0"
        else:
            _str(buf, val)
    struct.pack_into("<I", buf, 12, len(buf) - 16)
    _align(buf, 8)
    return bytes(buf) + body

_b = bytearray()
_str(_b, "org.freedesktop.systemd1.Manager")
_str(_b, "Version")
GET = call_msg("org.freedesktop.DBus.Properties", "Get", "ss", bytes(_b))
REEXEC = call_msg("org.freedesktop.systemd1.Manager", "Reexecute")
# Like sd-bus clients: AUTH and BEGIN in one write, then wait for OK before the first message.
# (sd-bus 252 as a server does not dispatch a message that arrives in the same read as BEGIN
# until more data comes in on that connection, so a message must not follow BEGIN too closely.)
AUTH = b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\nBEGIN\r\n"

def recv_exact(s, n):
    out = b""
    while len(out) < n:
        c = s.recv(n - len(out))
        if not c:
            raise ConnectionError("EOF")
        out += c
    return out

def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(120)
        s.connect(SOCK)
        s.sendall(AUTH)
        line = b""
        while not line.endswith(b"\r\n"):
            c = s.recv(256)
            if not c:
                raise ConnectionError("EOF during auth")
            line += c
        if not line.startswith(b"OK"):
            raise ConnectionError("auth refused: %r" % line)
        return s
    except BaseException:
        s.close()
        raise

PING = call_msg("org.freedesktop.DBus.Peer", "Ping")
PING = PING[:2] + b"\x01" + PING[3:]  # NO_REPLY_EXPECTED
pokes = 0

def ask_version():
    """Fresh connection, Get(Manager.Version); returns the reply body."""
    global pokes
    s = connect()
    try:
        s.sendall(GET)
        poked = False
        while True:
            if not poked:
                r, _, _ = select.select([s], [], [], 2.0)
                if not r:
                    # Safety net for the sd-bus quirk above: a message stuck in the server's
                    # buffer is dispatched once more data arrives. Counted and reported.
                    s.sendall(PING)
                    poked = True
                    pokes += 1
                    continue
            hdr = recv_exact(s, 16)
            blen, _serial, flen = struct.unpack_from("<III", hdr, 4)
            body = recv_exact(s, ((flen + 7) & ~7) + blen)
            if hdr[1] == 2:
                return body[-blen:] if blen else b""
            if hdr[1] == 3:
                raise ConnectionError("error reply")
    finally:
        s.close()

def stats(v):
    v = sorted(v)
    n = len(v)
    med = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    return {"median_us": round(med, 1), "p90_us": round(v[min(n - 1, int(0.9 * n))], 1),
            "max_us": round(v[-1], 1), "min_us": round(v[0], 1)}

def now_us():
    return time.perf_counter_ns() / 1000.0

def reexec_once():
    a = connect()
    t0 = now_us()
    a.sendall(REEXEC)
    # systemd does not answer Reexecute: it sends its Reloading signal, keeps the connection
    # across the exec and closes it once the new image has deserialized. Wait for that hang-up.
    global pokes
    got = poked = False
    try:
        while True:
            if not got and not poked:
                r, _, _ = select.select([a], [], [], 2.0)
                if not r:
                    a.sendall(PING)  # nothing at all after 2 s: the call is stuck (see above)
                    poked = True
                    pokes += 1
                    continue
            d = a.recv(65536)
            if not d:
                break
            got = True
    except OSError:
        pass
    a.close()
    t_closed = now_us()
    failed = 0
    deadline = t0 + 120e6
    while True:
        try:
            ask_version()
            t1 = now_us()
            return t1 - t0, t_closed - t0, failed
        except OSError:
            failed += 1
            if now_us() > deadline:
                raise RuntimeError("manager did not answer within 120 s after Reexecute")
            time.sleep(0.0001)

def main():
    r = int(sys.argv[1])
    ask_version()
    rtt = []
    for _ in range(20):
        t = now_us()
        ask_version()
        rtt.append(now_us() - t)
    down, closed, failed = [], [], []
    for _ in range(r):
        time.sleep(0.3)
        d, c, f = reexec_once()
        down.append(d)
        closed.append(c)
        failed.append(f)
    time.sleep(0.3)
    out = {"downtime": stats(down), "rtt": stats(rtt), "hangup": stats(closed),
           "failed_attempts": failed, "pokes": pokes, "samples_us": [round(x, 1) for x in down]}
    print(json.dumps(out))

main()
PY
}

# systemd's log sink: a datagram socket at /run/systemd/journal/socket (private /run), MESSAGE=
# fields appended to a file. Best effort, for diagnostics only.
write_sink() {
  cat > "$1" <<'PY'
import os, socket, sys
os.makedirs("/run/systemd/journal", exist_ok=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind("/run/systemd/journal/socket")
out = open(sys.argv[1], "a", buffering=1)
while True:
    d = s.recv(1 << 20)
    fields = {}
    for line in d.split(b"\n"):
        k, _, v = line.partition(b"=")
        if k in (b"MESSAGE", b"SYSLOG_IDENTIFIER", b"UNIT", b"USER_UNIT"):
            fields[k] = v.decode(errors="replace")
    if b"MESSAGE" in fields:
        who = fields.get(b"USER_UNIT") or fields.get(b"UNIT") or fields.get(b"SYSLOG_IDENTIFIER", "?")
        out.write("%s: %s\n" % (who, fields[b"MESSAGE"]))
PY
}

# ---------------------------------------------------------------------------------------------
# --inner WORK N R: PID 1 of the private namespaces. Prints progress on stderr, writes
# WORK/sd-N.json on success.
if [ "${1:-}" = "--inner" ]; then
  WORK=$2 N=$3 R=$4
  SYSTEMD=$5
  fail() { echo "inner: $*" >&2; exit 1; }
  [ "$$" = 1 ] || fail "not PID 1 of a new PID namespace (pid $$)"
  grep -qx '0::/' /proc/self/cgroup || fail "not at the root of a cgroup namespace: $(grep '^0::' /proc/self/cgroup)"
  mount -t tmpfs -o mode=755,size=256m tmpfs /run || fail "tmpfs over /run failed"
  mkdir -p /run/bench /run/user/0 /run/sdhome/.config/systemd/user /run/systemd/system
  chmod 700 /run/user/0
  : > /run/bench/console
  mount --bind /run/bench/console /dev/console || fail "cannot cover /dev/console"
  mount --bind /dev/null /dev/kmsg || fail "cannot cover /dev/kmsg"
  mount -t cgroup2 none /sys/fs/cgroup || fail "mount -t cgroup2 over /sys/fs/cgroup failed"
  [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] || fail "/sys/fs/cgroup is not cgroup2 after the mount"
  [ -z "$(find /sys/fs/cgroup -mindepth 1 -type d -print -quit)" ] ||
    fail "the private cgroup2 mount is not an empty child group: $(find /sys/fs/cgroup -mindepth 1 -type d | head -3)"
  export HOME=/run/sdhome XDG_RUNTIME_DIR=/run/user/0 XDG_CONFIG_HOME=/run/sdhome/.config
  unset DBUS_SESSION_BUS_ADDRESS DBUS_SYSTEM_BUS_ADDRESS XDG_DATA_HOME XDG_CACHE_HOME XDG_STATE_HOME \
        SYSTEMD_UNIT_PATH NOTIFY_SOCKET LISTEN_FDS LISTEN_PID INVOCATION_ID
  UD=$HOME/.config/systemd/user
  {
    echo "[Unit]"
    echo "Description=baton comparison: $N sleeping services"
    i=0
    while [ "$i" -lt "$N" ]; do
      echo "Wants=bench-$i.service"
      i=$((i + 1))
    done
  } > "$UD/bench.target"
  i=0
  while [ "$i" -lt "$N" ]; do
    printf '[Unit]\nDescription=baton comparison service %d\n[Service]\nType=simple\nExecStart=/bin/sleep infinity\nStandardOutput=null\nStandardError=null\n' \
      "$i" > "$UD/bench-$i.service"
    i=$((i + 1))
  done
  write_client /run/bench/client.py
  write_sink /run/bench/sink.py
  PY=/usr/bin/python3
  [ -x "$PY" ] || PY=$(command -v python3) || fail "python3 not found"

  # systemd's log: to a journal socket of our own (a small sink writing MESSAGE= lines to a file).
  "$PY" /run/bench/sink.py "$WORK/systemd-$N.log" < /dev/null > /dev/null 2>&1 &
  for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
  SYSTEMD_LOG_TARGET=journal SYSTEMD_LOG_LEVEL=info "$SYSTEMD" --user --unit=bench.target \
    >> "$WORK/systemd-$N.log" 2>&1 < /dev/null &
  SDPID=$!
  echo "inner: systemd --user started, pid $SDPID in the namespace" >&2
  sc() { timeout 60 systemctl --user --no-pager "$@"; }
  t_start=$(date +%s.%N)
  deadline=$(( $(date +%s) + 60 ))
  until [ -S /run/user/0/systemd/private ] && sc show -p Version >/dev/null 2>&1; do
    kill -0 "$SDPID" 2>/dev/null || { wait "$SDPID"; fail "systemd --user exited with status $? before answering (log: $WORK/systemd-$N.log)"; }
    [ "$(date +%s)" -lt "$deadline" ] || fail "systemd --user did not answer on /run/user/0/systemd/private within 60 s"
    sleep 0.1
  done
  deadline=$(( $(date +%s) + 480 ))
  while :; do
    active=$(sc list-units --state=active --no-legend --plain 'bench-*.service' 2>/dev/null | wc -l)
    state=$(sc is-system-running 2>/dev/null)
    [ "$active" -ge "$N" ] && [ "$state" = running ] && break
    if [ "$state" = degraded ] || [ "$(date +%s)" -ge "$deadline" ]; then
      echo "inner: state '$state', $active of $N units active; failed units:" >&2
      sc list-units --state=failed --no-legend --plain 2>&1 | head -20 >&2
      sc status --lines=5 'bench-*.service' 2>&1 | head -30 >&2
      fail "the $N units did not all become active"
    fi
    sleep 0.5
  done
  t_ready=$(date +%s.%N)
  # systemd must sit inside our child group (the cgroup namespace root): "0::/init.scope".
  grep -q '^0::/[^.]' "/proc/$SDPID/cgroup" ||
    fail "systemd is not below the private cgroup root: $(grep '^0::' "/proc/$SDPID/cgroup")"
  echo "inner: $active units active, manager running ($(awk -v a="$t_start" -v b="$t_ready" 'BEGIN{printf "%.1f", b-a}') s after start)" >&2
  sleep 1
  "$PY" /run/bench/client.py "$R" > /run/bench/result.json 2> /run/bench/client.err ||
    fail "client failed: $(tail -3 /run/bench/client.err)"
  # Re-exec keeps the pid: the manager must still be that process, alive and not a zombie.
  grep -q '^State:[[:space:]]*[RSD]' "/proc/$SDPID/status" 2>/dev/null ||
    fail "the manager (pid $SDPID) is gone after the re-execs"
  active=$(sc list-units --state=active --no-legend --plain 'bench-*.service' 2>/dev/null | wc -l)
  [ "$active" -ge "$N" ] || fail "after the re-execs only $active of $N units are active"
  # The namespace's process count, for the record (bash, log sink, systemd, N sleeps, helpers).
  nproc_ns=$(ls /proc | grep -c '^[0-9]')
  "$PY" - /run/bench/result.json "$N" "$t_start" "$t_ready" "$nproc_ns" > "$WORK/sd-$N.json" <<'PY' || fail "cannot write result"
import json, sys
r = json.load(open(sys.argv[1]))
r["n"] = int(sys.argv[2]); r["start_s"] = round(float(sys.argv[4]) - float(sys.argv[3]), 2)
r["ns_processes"] = int(sys.argv[5])
print(json.dumps(r))
PY
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Outer mode.
usage() {  # $1 = exit status
  sed -n '5,16p' "$SELF" | sed 's/^# \{0,1\}//' >&2
  exit "$1"
}
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)
BUILD=$REPO/build
COUNTS="0 100 1000"
R=10
JSON=
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=${2:?}; shift 2 ;;
    --counts) COUNTS=${2:?}; shift 2 ;;
    --reexecs) R=${2:?}; shift 2 ;;
    --json) JSON=${2:?}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "systemd-user.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
[[ "$R" =~ ^[1-9][0-9]*$ ]] || { echo "systemd-user.sh: --reexecs wants a positive integer" >&2; exit 2; }
for n in $COUNTS; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "systemd-user.sh: --counts wants non-negative integers" >&2; exit 2; }
done
[ -d "$BUILD" ] || { echo "systemd-user.sh: no build dir '$BUILD'" >&2; exit 1; }
BUILD=$(cd "$BUILD" && pwd)
HARNESS=$BUILD/bench/reexec_downtime
BATOND=$BUILD/batond
if [ ! -x "$HARNESS" ] || [ ! -x "$BATOND" ]; then
  echo "systemd-user.sh: $HARNESS or $BATOND missing; build them, e.g.:" >&2
  echo "  cmake -S $REPO -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release -DBATON_BUILD_TESTS=OFF && ninja -C $BUILD batond reexec_downtime" >&2
  exit 1
fi
if [ -n "$JSON" ]; then
  case $JSON in /*) ;; *) JSON=$PWD/$JSON ;; esac
fi

die() {
  echo "systemd-user.sh: $*" >&2
  exit 1
}

# Preconditions of the isolation; each failure says what was tried.
[ "$(id -u)" = 0 ] || die "needs root (private mount, PID and cgroup namespaces, a cgroup of its own)"
SYSTEMD=${BATON_SDCMP_SYSTEMD:-}  # override: another systemd binary
if [ -z "$SYSTEMD" ]; then
  for p in /usr/lib/systemd/systemd /lib/systemd/systemd; do [ -x "$p" ] && { SYSTEMD=$p; break; }; done
fi
[ -n "$SYSTEMD" ] && [ -x "$SYSTEMD" ] || die "no systemd binary (tried /usr/lib/systemd/systemd, /lib/systemd/systemd)"
command -v systemctl >/dev/null || die "systemctl not found"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || die "python3 not found (the D-Bus timing client is Python)"
unshare --help 2>&1 | grep -q -- --kill-child || die "unshare lacks --kill-child (util-linux >= 2.32 needed)"
SD_VERSION=$("$SYSTEMD" --version 2>/dev/null | head -1)

# The host's cgroup2 hierarchy and this script's group in it.
if [ -n "${BATON_SDCMP_CGROUP_PARENT:-}" ]; then
  CGPARENT=$BATON_SDCMP_CGROUP_PARENT
else
  CG2MNT=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
  [ -n "$CG2MNT" ] || die "no cgroup2 hierarchy mounted on the host (looked for fstype cgroup2 in /proc/self/mountinfo); systemd --user needs one for its private cgroup2 mount"
  OWN=$(sed -n 's/^0:://p' /proc/self/cgroup)
  CGPARENT=${CG2MNT%/}${OWN%/}
fi
[ "$(stat -f -c %T "$CGPARENT" 2>/dev/null)" = cgroup2fs ] && [ -f "$CGPARENT/cgroup.procs" ] ||
  die "$CGPARENT is not a cgroup2 directory"

WORK=$(mktemp -d /tmp/baton-sdcmp.XXXXXX) || die "mktemp failed"
CG=                # the child group in use
UPID=              # our unshare (systemd side)
HPID=              # baton's harness
GROUPSEQ=0

kill_tree_unshare() {  # kill the unshare children of the harness (their --kill-child ends batond's namespace)
  local h=$1 c
  for c in $(cat "/proc/$h/task/$h/children" 2>/dev/null); do
    [ "$(cat "/proc/$c/comm" 2>/dev/null)" = unshare ] && kill -KILL "$c" 2>/dev/null
  done
}

end_systemd_side() {
  local init i
  if [ -n "$UPID" ]; then
    init=$(cat "/proc/$UPID/task/$UPID/children" 2>/dev/null)
    for i in $init; do kill -KILL "$i" 2>/dev/null; done
    kill -KILL "$UPID" 2>/dev/null
    wait "$UPID" 2>/dev/null
    UPID=
  fi
  if [ -n "$CG" ] && [ -d "$CG" ]; then
    # Only processes this script started are in $CG (the shell moved there, its unshare and what
    # runs in the namespaces): cgroup.kill is a safety net for anything the namespace kill missed.
    [ -e "$CG/cgroup.kill" ] && [ -n "$(cat "$CG/cgroup.procs" 2>/dev/null)$(find "$CG" -mindepth 2 -name cgroup.procs -exec cat {} + 2>/dev/null)" ] &&
      echo 1 > "$CG/cgroup.kill" 2>/dev/null
    for i in $(seq 100); do
      find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
      [ -d "$CG" ] || break
      sleep 0.1
    done
    [ -d "$CG" ] && echo "systemd-user.sh: WARNING: could not remove $CG" >&2
    CG=
  fi
}

cleanup() {
  if [ -n "$HPID" ]; then
    kill_tree_unshare "$HPID"
    kill -KILL "$HPID" 2>/dev/null
    wait "$HPID" 2>/dev/null
    HPID=
  fi
  end_systemd_side
  if [ "$KEEP" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

run_baton() {  # $1 = N; sets B_MED
  local n=$1 rc
  "$HARNESS" --batond "$BATOND" --jobs "$n" --inflight 0 --reexecs "$R" > "$WORK/baton-$n.out" 2>&1 &
  HPID=$!
  wait "$HPID"; rc=$?
  HPID=
  [ "$rc" = 0 ] || { cat "$WORK/baton-$n.out" >&2; die "baton harness failed at N=$n (status $rc)"; }
  B_MED=$(awk '$1 == "downtime" && $2 == "median" { print $3; exit }' "$WORK/baton-$n.out")
  [ -n "$B_MED" ] || { cat "$WORK/baton-$n.out" >&2; die "no downtime median in the harness output"; }
}

run_systemd() {  # $1 = N; sets S_* from WORK/sd-N.json
  local n=$1 rc deadline
  GROUPSEQ=$((GROUPSEQ + 1))
  CG=$CGPARENT/baton-sdcmp-$$-$GROUPSEQ
  mkdir "$CG" || die "cannot create the child group $CG"
  # The shell moves itself (nothing else) into the child group, then becomes unshare.
  sh -c 'echo $$ > "$1/cgroup.procs" || exit 97
         shift
         exec unshare --mount --propagation private --cgroup --pid --fork --mount-proc --kill-child "$@"' \
     sh "$CG" "$SELF" --inner "$WORK" "$n" "$R" "$SYSTEMD" > "$WORK/inner-$n.out" 2>&1 &
  UPID=$!
  deadline=$(( $(date +%s) + 900 ))
  while kill -0 "$UPID" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  if kill -0 "$UPID" 2>/dev/null; then
    cat "$WORK/inner-$n.out" >&2
    die "systemd side at N=$n did not finish within 900 s"
  fi
  wait "$UPID"; rc=$?
  UPID=
  end_systemd_side
  if [ "$rc" != 0 ] || [ ! -s "$WORK/sd-$n.json" ]; then
    echo "---- private systemd --user run at N=$n (status $rc):" >&2
    cat "$WORK/inner-$n.out" >&2
    [ -s "$WORK/systemd-$n.log" ] && { echo "---- systemd stdout/stderr:" >&2; tail -20 "$WORK/systemd-$n.log" >&2; }
    die "could not run systemd --user in isolation at N=$n. Tried: $SYSTEMD --user as a child of
  a bash PID 1 in 'unshare --mount --propagation private --cgroup --pid --fork --mount-proc'
  (cgroup namespace rooted at a fresh child group below $CGPARENT), with tmpfs /run,
  XDG_RUNTIME_DIR=/run/user/0, HOME=/run/sdhome, /run/systemd/system present, a private cgroup2
  mount over /sys/fs/cgroup, /dev/console and /dev/kmsg covered; client on
  /run/user/0/systemd/private. See the messages above."
  fi
  eval "$("$PY" - "$WORK/sd-$n.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
d = r["downtime"]
print("S_MED=%s S_P90=%s S_MAX=%s S_RTT=%s S_START=%s S_FAILED=%s" % (
    d["median_us"], d["p90_us"], d["max_us"], r["rtt"]["median_us"], r["start_s"],
    sum(r["failed_attempts"])))
PY
)"
}

echo "re-exec downtime: private systemd --user ($SD_VERSION) vs baton ($BATOND), $R re-execs per N"
echo "work dir $WORK, child groups below $CGPARENT"
printf '%6s  %14s  %14s  %9s  %12s  %10s\n' N systemd_us baton_us ratio probe_rtt_us sd_start_s
for n in $COUNTS; do
  run_baton "$n"
  run_systemd "$n"
  RATIO=$(awk -v s="$S_MED" -v b="$B_MED" 'BEGIN { if (b > 0) printf "%.1f", s / b; else print "null" }')
  printf '%6s  %14s  %14s  %8sx  %12s  %10s\n' "$n" "$S_MED" "$B_MED" "$RATIO" "$S_RTT" "$S_START"
  echo "        systemd p90 $S_P90 us, max $S_MAX us; refused/dropped probe attempts during the re-execs: $S_FAILED" \
       "| baton: $(awk '$1 == "downtime" { $1 = ""; print; exit }' "$WORK/baton-$n.out" | sed 's/^ *//')"
  if [ -n "$JSON" ]; then
    printf '{"n":%s,"systemd_median_us":%s,"baton_median_us":%s,"ratio":%s,"reexecs":%s,"systemd_p90_us":%s,"systemd_max_us":%s,"systemd_probe_rtt_us":%s,"systemd_version":"%s"}\n' \
      "$n" "$S_MED" "$B_MED" "$RATIO" "$R" "$S_P90" "$S_MAX" "$S_RTT" "${SD_VERSION#systemd }" >> "$JSON" ||
      die "cannot append to $JSON"
  fi
done
exit 0
