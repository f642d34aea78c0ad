@0xd3b1a0c8e4f27a61;
# Control messages between batonctl and batond.
#
# Framing (supervisor/control_frame.h): each message is a 4-byte little-endian length N followed
# by N bytes of a single-segment-or-more Cap'n Proto message in standard stream encoding
# (capnp::messageToFlatArray). Requests larger than 1 MiB are refused; responses may be up to
# 256 MiB (a snapshot of a large system). Every Request carries an id;
# batond sends exactly one Response with the same id. Requests that wait (start/stop/restart
# without noWait, emit without noWait) are answered when what they wait for has happened.
#
# Enums and unions are append-only.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("baton::wire");

struct JobRef {
  name @0 :Text;             # job name, e.g. "tty" or "net/dhcp"
  env @1 :List(Text);        # KEY=VALUE: instance variables / job environment for this start
  noWait @2 :Bool;           # answer as soon as the goal is changed
}

struct EmitArgs {
  name @0 :Text;
  env @1 :List(Text);        # KEY=VALUE
  noWait @2 :Bool;
}

struct ReexecArgs {
  binary @0 :Text;           # empty: the path batond was started from
  testRefuseRestore @1 :Bool;   # test hooks only: the new binary refuses to restore (rollback)
  testRefuseRollback @2 :Bool;  # test hooks only: the rolled-back binary refuses too (wait-only)
  # A downgrade to an older snapshot format may map what that format cannot hold to its nearest
  # meaning (docs/formats.md, "Downgrade policy"); without this, such a downgrade is refused.
  allowDowngradeMapping @3 :Bool;
  # The client shows interim `notes` responses (the format path and the mappings of a downgrade,
  # sent before the point of no return: the older binary that answers cannot report them).
  wantsNotes @4 :Bool;
}

struct Request {
  id @0 :UInt64;
  union {
    start @1 :JobRef;
    stop @2 :JobRef;
    restart @3 :JobRef;
    reload @4 :JobRef;               # send the reload signal to the main process
    status @5 :JobRef;               # name empty: every job (like list)
    list @6 :Void;
    emit @7 :EmitArgs;
    showConfig @8 :Text;             # job name, or empty for all
    checkConfig @9 :Void;
    reloadConfiguration @10 :Void;
    logPriority @11 :Text;           # empty: query; otherwise set
    version @12 :Void;
    reexec @13 :ReexecArgs;
    snapshot @14 :Void;
    daemonStatus @15 :Void;
  }
}

# Outcome of a request. batonctl maps these to its exit codes (see docs/batonctl.md, "Exit codes").
enum ResultCode {
  ok @0;
  failed @1;             # the operation was tried and failed (job failed to start, ...)
  usage @2;              # malformed request
  unknownJob @3;
  permissionDenied @4;
  unknownInstance @5;
  alreadyInGoal @6;      # e.g. start of a job that is already running
  unsupported @7;
  internal @8;
}

struct ProcessStatus {
  type @0 :Text;             # "main", "pre-start", ...
  pid @1 :Int32;
  spawning @2 :Bool;         # setup still in flight (status pipe not yet answered)
}

struct JobStatus {
  job @0 :Text;
  instance @1 :Text;
  goal @2 :Text;             # "start" / "stop" / "respawn"
  state @3 :Text;            # "running", "spawned", ...
  processes @4 :List(ProcessStatus);
  failed @5 :Bool;
  failedProcess @6 :Text;
  exitStatus @7 :Int32;      # exit code, or signal number if exitSignal
  exitSignal @8 :Bool;
  reason @9 :Text;           # e.g. "respawn limit reached"
  newerDefinitionPending @10 :Bool;   # file changed; applies to the next start
  task @11 :Bool;
  respawnCount @12 :UInt32;
  readiness @13 :Text;       # `expect notify`: "waiting", "ready", "reloading", "stopping"; empty: none
  statusText @14 :Text;      # the last STATUS= the job sent
  notifyErrno @15 :Int32;    # the last ERRNO= the job sent (0: none)
}

struct JobConfig {
  job @0 :Text;
  path @1 :Text;
  description @2 :Text;
  startOn @3 :Text;          # canonical text of the expression
  stopOn @4 :Text;
  emits @5 :List(Text);
  instance @6 :Text;
  task @7 :Bool;
  respawn @8 :Bool;
  unsupported @9 :List(Text);
}

struct ConfigCheck {
  problems @0 :List(Text);   # FILE:LINE: message (jobs skipped)
  warnings @1 :List(Text);   # FILE:LINE: unsupported stanzas and the like (job loaded)
}

struct ReexecTiming {
  # Durations in nanoseconds.
  serializeNs @0 :Int64;
  preflightNs @1 :Int64;
  execNs @2 :Int64;
  loadNs @3 :Int64;
  restoreNs @4 :Int64;
  rearmNs @5 :Int64;
  downtimeNs @6 :Int64;      # first event handled by the new binary minus serialization start
}

struct ReexecOutcome {
  ok @0 :Bool;
  message @1 :Text;
  fromBinary @2 :Text;
  toBinary @3 :Text;
  timing @4 :ReexecTiming;
  rolledBack @5 :Bool;
  atNs @6 :Int64;
  snapshotBytes @7 :UInt64;
  formatPath @8 :Text;       # e.g. "1 -> 2 (1 upgrade step)"; empty: not known (an older binary)
}

struct DaemonStatus {
  version @0 :Text;
  pid @1 :Int32;
  pid1 @2 :Bool;
  subreaper @3 :Bool;
  jobs @4 :UInt32;
  instances @5 :UInt32;
  pendingEvents @6 :UInt32;
  connections @7 :UInt32;
  confDir @8 :Text;
  logDir @9 :Text;
  socket @10 :Text;
  logPriority @11 :Text;
  lastReexec @12 :ReexecOutcome;      # ok=false and empty message: none yet
  degraded @13 :Text;                 # non-empty: wait-only mode and why
  binary @14 :Text;
  encodedJobs @15 :UInt32;            # jobs held encoded: untouched since a restore or an idle encoding
  notifySocket @16 :Text;             # where `expect notify` jobs send readiness (NOTIFY_SOCKET)
  notifyRefused @17 :UInt64;          # notify messages from a process that is no job's, since boot
  notifyMalformed @18 :UInt64;        # notify messages dropped as oversized or garbage, since boot
  snapshotFormats @19 :Text;          # "writes 2, reads 1-2"
  # Limits on control clients (docs/batonctl.md, "Limits on clients"). maxConnections 0: a batond
  # without them.
  maxConnections @20 :UInt32;         # open at once, in all
  connectionsKeptForRoot @21 :UInt32; # the last of those, for root and batond's own user only
  maxConnectionsPerUid @22 :UInt32;   # per other user
  maxUnanswered @23 :UInt32;          # requests of one connection waiting for their answer
  frameTimeoutMs @24 :UInt32;         # a frame must be complete this long after its first byte; 0: none
  clientWarningBurst @25 :UInt32;     # warnings about clients: at most this many lines ...
  clientWarningIntervalMs @26 :UInt32;  # ... per this long
  # Counters since this image of batond started (CLOCK_MONOTONIC ns); not kept across a re-exec.
  countersSinceNs @27 :Int64;
  refusedPerUid @28 :UInt64;          # connections refused: the user's limit
  refusedTotal @29 :UInt64;           # connections refused: the total limit
  refusedUnanswered @30 :UInt64;      # requests answered with an error: the unanswered limit
  malformedFrames @31 :UInt64;        # bad frames and undecodable requests (connection closed)
  closedMidFrame @32 :UInt64;         # connections closed at the frame timeout
  droppedNotReading @33 :UInt64;      # connections dropped with 16 MiB of answers unread
  suppressedWarnings @34 :UInt64;     # warning lines about clients not written (rate limit)
}

struct Response {
  id @0 :UInt64;
  code @1 :ResultCode;
  message @2 :Text;          # human readable error or note
  union {
    none @3 :Void;
    jobs @4 :List(JobStatus);          # start/stop/restart/status/list
    config @5 :List(JobConfig);        # show-config
    check @6 :ConfigCheck;             # check-config, reload-configuration
    version @7 :Text;
    logPriority @8 :Text;
    daemon @9 :DaemonStatus;
    reexec @10 :ReexecOutcome;
    snapshot @11 :Data;
    emitted @12 :UInt64;               # event id
    # Not the answer: a note on the way to it (only to a client that asked, ReexecArgs.wantsNotes).
    # The answer with the same id follows.
    notes @13 :List(Text);
  }
}
