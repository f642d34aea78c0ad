@0xe7c2a4f19b3d5c08;
# The whole persistent state of batond: exactly the fields of schema/model.h.
#
# This is snapshot format 2 (see serialize/snapshot.h for the container around it; format 1 is
# frozen in schema/state_v1.capnp, and docs/formats.md says what changed). Rules:
# - ordinals are explicit and never reused; fields are only appended;
# - enums are append-only, and a reader that meets an enumerant it does not know refuses the
#   snapshot with a reason (it never guesses);
# - every fd number below is also listed in the snapshot's fd table with its identity.
# A round-trip test (tests/unit/state_codec_test.cpp) guards that model and schema do not drift.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("baton::state");

enum ProcessType { main @0; preStart @1; postStart @2; preStop @3; postStop @4; }
enum Goal { stop @0; start @1; respawn @2; }
enum JobState {
  waiting @0; starting @1; preStarting @2; preStart @3; spawning @4; spawned @5;
  postStarting @6; postStart @7; running @8; preStopping @9; preStop @10; stopping @11;
  killed @12; postStopping @13; postStop @14;
}
enum ConsoleType { log @0; none @1; output @2; owner @3; }
enum ExpectType { none @0; stop @1; fork @2; daemon @3; notify @4; }   # notify: format 2
# Readiness of an `expect notify` run (format 2): what the job said over its NOTIFY_SOCKET.
enum ReadyState { none @0; waiting @1; ready @2; reloading @3; stopping @4; }
enum TraceState { none @0; new @1; newChild @2; normal @3; done @4; }
enum EventProgress { pending @0; handling @1; finished @2; }

struct EventNode {
  enum Type { or @0; and @1; match @2; }
  type @0 :Type;
  name @1 :Text;
  args @2 :List(Text);
  left @3 :Int32;
  right @4 :Int32;
  matched @5 :Bool;
  eventId @6 :UInt64;
}

struct EventExpr {
  nodes @0 :List(EventNode);     # post-order, root last
}

struct ProcessDef {
  script @0 :Bool;
  command @1 :Text;
}

struct RLimitDef {
  resource @0 :Int32;
  soft @1 :UInt64;
  hard @2 :UInt64;
}

struct CgroupSetting {
  key @0 :Text;
  value @1 :Text;
}

struct CgroupDef {
  controller @0 :Text;
  name @1 :Text;
  settings @2 :List(CgroupSetting);
}

struct ProcessDefEntry {
  type @0 :ProcessType;
  def @1 :ProcessDef;
}

struct JobDef {
  name @0 :Text;
  path @1 :Text;
  description @2 :Text;
  author @3 :Text;
  version @4 :Text;
  usage @5 :Text;
  env @6 :List(Text);
  exportVars @7 :List(Text);
  instance @8 :Text;
  startOn @9 :EventExpr;
  stopOn @10 :EventExpr;
  emits @11 :List(Text);
  process @12 :List(ProcessDefEntry);   # one entry per process type, each naming its type
  expect @13 :ExpectType;
  task @14 :Bool;
  killSignal @15 :Int32;
  killTimeoutMs @16 :Int64;
  reloadSignal @17 :Int32;
  respawn @18 :Bool;
  respawnLimit @19 :UInt32;
  respawnIntervalSec @20 :UInt32;
  normalExitCodes @21 :List(Int32);
  normalExitSignals @22 :List(Int32);
  console @23 :ConsoleType;
  umask @24 :UInt32;
  hasNice @25 :Bool;
  nice @26 :Int32;
  hasOomScore @27 :Bool;
  oomScore @28 :Int32;
  limits @29 :List(RLimitDef);
  chroot @30 :Text;
  chdir @31 :Text;
  setuid @32 :Text;
  setgid @33 :Text;
  cgroups @34 :List(CgroupDef);
  unsupported @35 :List(Text);
  contentHash @36 :Text;
  readyTimeoutMs @37 :Int64 = 90000;   # `ready timeout` of an `expect notify` job; 0 = none
}

struct RequestRef {
  connId @0 :UInt64;
  requestId @1 :UInt64;
}

struct Blocked {
  enum Kind { event @0; request @1; }
  kind @0 :Kind;
  eventId @1 :UInt64;
  request @2 :RequestRef;
}

# One process slot, including an in-flight spawn (JobProcessData).
struct ProcessSlot {
  type @0 :ProcessType;
  pid @1 :Int32;
  startTime @2 :UInt64;          # /proc/PID/stat field 22: identity against pid reuse
  spawnValid @3 :Bool;
  statusFd @4 :Int32;            # -1 = none
  pendingScript @5 :Text;
  scriptFd @6 :Int32;            # -1 = none
  earlyExit @7 :Bool;
  earlyExitStatus @8 :Int32;
}

struct Instance {
  name @0 :Text;
  defIndex @1 :UInt32;           # index into JobClass.defs
  goal @2 :Goal;
  state @3 :JobState;
  env @4 :List(Text);
  stopEnv @5 :List(Text);
  stopOn @6 :EventExpr;
  procs @7 :List(ProcessSlot);   # one per process type, each naming its type
  blocker @8 :UInt64;
  blocking @9 :List(Blocked);
  killDeadlineNs @10 :Int64;     # absolute CLOCK_MONOTONIC, 0 = none
  killProcess @11 :ProcessType;
  failed @12 :Bool;
  failedProcess @13 :ProcessType;
  exitStatus @14 :Int32;
  failReason @15 :Text;
  respawnWindowStartNs @16 :Int64;
  respawnCount @17 :UInt32;
  traceState @18 :TraceState;
  traceForks @19 :UInt32;
  # Format 2: readiness notification (`expect notify`).
  readyState @20 :ReadyState;
  readyDeadlineNs @21 :Int64;    # absolute CLOCK_MONOTONIC, 0 = none
  statusText @22 :Text;          # the last STATUS= it sent
  notifyErrno @23 :Int32;        # the last ERRNO= it sent (0 = none)
}

struct JobClass {
  name @0 :Text;
  defs @1 :List(JobDef);         # [0] = the class's newest definition; then older ones still run
  startOn @2 :EventExpr;         # with match state
  deleted @3 :Bool;
  instances @4 :List(Instance);
}

struct Event {
  id @0 :UInt64;
  name @1 :Text;
  env @2 :List(Text);
  progress @3 :EventProgress;
  failed @4 :Bool;
  blockers @5 :UInt32;
  waiters @6 :List(RequestRef);
}

struct LogPipe {
  fd @0 :Int32;
  logName @1 :Text;
  unwritten @2 :Data;
}

struct PendingRequest {
  enum Kind { start @0; stop @1; restart @2; emit @3; reexec @4; }
  requestId @0 :UInt64;
  kind @1 :Kind;
  job @2 :Text;
  instance @3 :Text;
}

struct Connection {
  id @0 :UInt64;
  fd @1 :Int32;
  uid @2 :UInt32;
  pid @3 :Int32;
  inBuf @4 :Data;
  outBuf @5 :Data;
  closing @6 :Bool;
  pending @7 :List(PendingRequest);
}

struct HelperChild {
  pid @0 :Int32;
  startTime @1 :UInt64;
  role @2 :Text;
}

struct Config {
  confDir @0 :Text;
  logDir @1 :Text;
  socketPath @2 :Text;
  cgroupBase @3 :Text;
  cgroupRoot @4 :Text;
  logPriority @5 :Text;
  testHooks @6 :Bool;
  # How long after activity batond encodes the job classes at rest again (0 = never). The default
  # is what a snapshot written before this field existed reads.
  idleEncodeMs @7 :UInt32 = 10000;
}

# The re-exec in progress (written by the old binary, completed by the new one) or the last one.
struct Reexec {
  connId @0 :UInt64;             # client to answer (0 = none, e.g. SIGTERM)
  requestId @1 :UInt64;
  fromBinary @2 :Text;
  toBinary @3 :Text;
  serializeStartNs @4 :Int64;
  serializeNs @5 :Int64;
  preflightNs @6 :Int64;
  execStartNs @7 :Int64;
  loadNs @8 :Int64;
  restoreNs @9 :Int64;
  rearmNs @10 :Int64;
  downtimeNs @11 :Int64;
  ok @12 :Bool;
  rolledBack @13 :Bool;
  message @14 :Text;
  atNs @15 :Int64;
  snapshotBytes @16 :UInt64;
  count @17 :UInt32;             # re-execs since boot
  formatPath @18 :Text;          # e.g. "1 -> 2 (1 upgrade step)", "2 (no migration)"
}

struct Model {
  config @0 :Config;
  classes @1 :List(JobClass);
  events @2 :List(Event);
  nextEventId @3 :UInt64;
  logPipes @4 :List(LogPipe);
  listenFd @5 :Int32;
  connections @6 :List(Connection);
  nextConnId @7 :UInt64;
  helpers @8 :List(HelperChild);
  unclaimedTraceStops @9 :List(Int32);
  configProblems @10 :List(Text);
  reloadPending @11 :Bool;
  daemonUid @12 :UInt32;
  bootTimeNs @13 :Int64;
  reexec @14 :Reexec;
  jobNofileSoft @15 :UInt64;     # RLIMIT_NOFILE soft limit jobs get (batond raises its own);
                                 # 0 = unknown (written by 0.1.0, which raised nothing)
  # Not state but a note of the re-exec that wrote this snapshot: indices into `classes` of the
  # classes copied byte for byte from the pre-flight snapshot the target verified. Only a restore
  # whose handoff says so (--preverified-classes) skips their checks; everything else checks all.
  preverifiedClasses @16 :List(UInt32);
  # Format 2: the datagram socket jobs send readiness notifications to (NOTIFY_SOCKET), -1 = none
  # (a format-1 snapshot: the restore opens it).
  notifyFd @17 :Int32 = -1;
  notifyRefused @18 :UInt64;     # messages from a process that is not a job's (since boot)
  notifyMalformed @19 :UInt64;   # messages dropped as oversized, not UTF-8 or garbage
}
