// The plain C++ model of batond's state: values only.
//
// Everything batond knows at run time lives in `Model` (below) as plain values: job definitions
// as loaded, instances with goal and state, process slots with pids and their identity, in-flight
// spawns, events and the links between events and jobs, log pipes, control connections and the
// requests that wait on something. File descriptors appear here only as numbers; the resources
// that use them (epoll registrations, cached log-file fds, the signalfd) are re-created from these
// values. This is what makes a stateful re-exec possible: the model is the one thing that has to
// cross `execve`, and schema/state.capnp will describe exactly these fields.
//
// Job classes differ in where they are, not in what: a class may be held encoded (after a
// restore, or by idle encoding) until code decodes it with an explicit call, and is values once
// decoded (JobClass, ClassMap).
//
// This header is a leaf: it includes nothing of baton's and every layer may include it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace baton {

// Process slots of a job instance. Values are stable (they index arrays and will be serialized).
enum class ProcessType : uint8_t { Main = 0, PreStart, PostStart, PreStop, PostStop };
constexpr int kProcessTypes = 5;
const char* processTypeName(ProcessType p);  // "main", "pre-start", ...

// What the job should be doing.
enum class Goal : uint8_t { Stop = 0, Start, Respawn };
const char* goalName(Goal g);

// Where the job is. The state machine is documented in supervisor/job_state.h.
enum class JobState : uint8_t {
  Waiting = 0, Starting, PreStarting, PreStart, Spawning, Spawned, PostStarting, PostStart,
  Running, PreStopping, PreStop, Stopping, Killed, PostStopping, PostStop
};
constexpr int kJobStates = 15;
const char* jobStateName(JobState s);

enum class ConsoleType : uint8_t { Log = 0, None, Output, Owner };
// `expect`: when a started main process counts as started (docs/jobs.md). Notify: format 2.
enum class ExpectType : uint8_t { None = 0, Stop, Fork, Daemon, Notify };
const char* expectTypeName(ExpectType e);

// Readiness of an `expect notify` run: what the job said over its NOTIFY_SOCKET (sd_notify(3)).
//   none       not a notify run (or not spawned yet)
//   waiting    spawned, READY=1 not seen yet: the instance stays in `spawned` (readyDeadlineNs)
//   ready      READY=1 seen
//   reloading  RELOADING=1 seen after ready; READY=1 makes it ready again
//   stopping   STOPPING=1 seen: the job said it is shutting down
enum class ReadyState : uint8_t { None = 0, Waiting, Ready, Reloading, Stopping };
const char* readyStateName(ReadyState r);

// ---------------------------------------------------------------------------------------------
// Event expressions (`start on` / `stop on`).
//
// A tree kept as a flat vector in post-order: children come before their parent and the root is
// the last node. `matched` and `eventId` are match state (an event that satisfied a Match node is
// held, "blocked", until the job it started or stopped reaches its goal).
struct EventNode {
  enum class Type : uint8_t { Or = 0, And, Match };
  Type type = Type::Match;
  std::string name;               // Match: event name (may be a glob)
  std::vector<std::string> args;  // Match: positional VALUE, KEY=VALUE or KEY!=VALUE (may hold $VAR)
  int32_t left = -1, right = -1;  // Or/And: indices of the children in `nodes`
  bool matched = false;           // match state: this subtree is currently true
  uint64_t eventId = 0;           // Match: the event that matched it (0 = none)

  bool operator==(const EventNode&) const = default;
};

struct EventExpr {
  std::vector<EventNode> nodes;  // post-order; empty = no expression
  bool empty() const { return nodes.empty(); }
  bool operator==(const EventExpr&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Job definitions: the parsed content of NAME.conf (+ NAME.override). Immutable once loaded.

struct ProcessDef {
  bool script = false;      // true: `script ... end script` (run by /bin/sh -e); false: `exec`
  std::string command;      // empty = the job has no such process
  bool present() const { return !command.empty(); }
  bool operator==(const ProcessDef&) const = default;
};

struct RLimitDef {
  int resource = 0;             // RLIMIT_* number
  uint64_t soft = 0, hard = 0;  // UINT64_MAX = unlimited (RLIM_INFINITY)
  bool operator==(const RLimitDef&) const = default;
};

struct CgroupSetting {
  std::string key, value;
  bool operator==(const CgroupSetting&) const = default;
};

// One `cgroup` stanza. An empty `name` means the job-specific group `$JOB-$INSTANCE`.
struct CgroupDef {
  std::string controller;  // "cpu", "memory", ... or "unified" for the v2 hierarchy
  std::string name;        // may contain $VARs and $UPSTART_CGROUP / $BATON_CGROUP
  std::vector<CgroupSetting> settings;
  bool operator==(const CgroupDef&) const = default;
};

struct JobDef {
  std::string name;  // "foo" or "dir/foo" (from the path under confdir, without .conf)
  std::string path;  // the .conf file it came from
  std::string description, author, version, usage;
  std::vector<std::string> env;           // KEY=VALUE (KEY alone was resolved from batond's env)
  std::vector<std::string> exportVars;    // names exported into the job's events
  std::string instance;                   // instance name pattern ("" = single instance)
  EventExpr startOn, stopOn;
  std::vector<std::string> emits;
  std::array<ProcessDef, kProcessTypes> process;
  ExpectType expect = ExpectType::None;
  bool task = false;
  int killSignal = 15;                    // SIGTERM
  int64_t killTimeoutMs = 5000;
  int reloadSignal = 1;                   // SIGHUP
  bool respawn = false;
  uint32_t respawnLimit = 10;             // 0 = unlimited
  uint32_t respawnIntervalSec = 5;
  std::vector<int32_t> normalExitCodes;   // exit statuses that are not failures (0 always is)
  std::vector<int32_t> normalExitSignals; // signals that are not failures
  ConsoleType console = ConsoleType::Log;
  uint32_t umask = 022;
  bool hasNice = false;   int32_t nice = 0;
  bool hasOomScore = false; int32_t oomScore = 0;
  std::vector<RLimitDef> limits;
  std::string chroot, chdir, setuid, setgid;
  std::vector<CgroupDef> cgroups;
  std::vector<std::string> unsupported;   // "FILE:LINE: stanza 'apparmor' is not supported"
  std::string contentHash;                // identity of the file contents it was parsed from
  int64_t readyTimeoutMs = 90000;         // `ready timeout`: READY=1 within this (0 = no limit)

  bool operator==(const JobDef&) const = default;
};

// Where a definition that has not been decoded yet lives (the body of a restored snapshot, still
// mapped). Implemented by serialize/; the model only needs to ask for a decode.
class DefSource {
 public:
  virtual ~DefSource() = default;
  // Decode definition `index` into `out`; false with `error` if it cannot be.
  virtual bool decode(uint32_t index, JobDef& out, std::string& error) const = 0;
};

// A shared, immutable job definition (instances share their class's, docs/design.md invariant 9). A restore
// leaves definitions in the snapshot and decodes each on first use: they are most of a snapshot's
// bytes, and nothing in the re-exec window needs them, so the window does not pay for them (and
// a re-exec of a job nobody touched copies its encoded definition across unchanged).
class DefRef {
 public:
  DefRef() = default;
  DefRef(std::shared_ptr<const JobDef> def);  // NOLINT: a decoded definition converts implicitly
  DefRef(std::shared_ptr<JobDef> def) : DefRef(std::shared_ptr<const JobDef>(std::move(def))) {}  // NOLINT
  static DefRef lazy(std::shared_ptr<const DefSource> source, uint32_t index);

  // The definition, decoded now if it was not yet. A definition that cannot be decoded throws
  // (it was decoded in full by the re-exec's pre-flight, so this means memory corruption).
  const JobDef* get() const;
  const JobDef* operator->() const { return get(); }
  const JobDef& operator*() const { return *get(); }
  explicit operator bool() const { return cell_ != nullptr; }

  bool decoded() const { return cell_ && cell_->def; }
  // Where its encoded form is, if it came from a snapshot (decoded or not): copied as it is into
  // the next snapshot instead of being encoded again.
  const DefSource* source() const { return cell_ ? cell_->source.get() : nullptr; }
  uint32_t sourceIndex() const { return cell_ ? cell_->index : 0; }
  // Identity: the same definition object (not equal content; see sameDef).
  // (Decoded: the JobDef itself, so refs made separately from one shared JobDef are the same.)
  const void* identity() const {
    if (!cell_) return nullptr;
    return cell_->def ? static_cast<const void*>(cell_->def.get()) : static_cast<const void*>(cell_.get());
  }
  bool operator==(const DefRef& o) const {
    return cell_ == o.cell_ || (cell_ && o.cell_ && cell_->def && cell_->def == o.cell_->def);
  }
  bool operator!=(const DefRef& o) const { return !(*this == o); }

 private:
  struct Cell {
    mutable std::shared_ptr<const JobDef> def;  // decoded (set once)
    std::shared_ptr<const DefSource> source;    // until then
    uint32_t index = 0;
  };
  std::shared_ptr<Cell> cell_;
};

// ---------------------------------------------------------------------------------------------
// Run-time state.

// A reference to a control request that waits for something (`start --wait`, `emit`).
struct RequestRef {
  uint64_t connId = 0;
  uint64_t requestId = 0;
  bool operator==(const RequestRef&) const = default;
};

// Something a job instance holds until it reaches its goal: an event that started or stopped
// it (the event cannot finish before), or a control request waiting for the job.
struct Blocked {
  enum class Kind : uint8_t { Event = 0, Request };
  Kind kind = Kind::Event;
  uint64_t eventId = 0;  // Kind::Event
  RequestRef request;    // Kind::Request
  bool operator==(const Blocked&) const = default;
};

// ptrace progress for `expect fork` / `expect daemon`.
// `Done` means the expect condition is met (also used by `expect stop` once SIGSTOP was seen).
enum class TraceState : uint8_t { None = 0, New, NewChild, Normal, Done };

// One process slot of an instance, including an in-flight spawn (Upstart's JobProcessData).
struct ProcessSlot {
  int32_t pid = 0;              // 0 = no process
  uint64_t startTime = 0;       // field 22 of /proc/PID/stat: identity against pid reuse
  // In-flight spawn: valid until the outcome of the child's setup has been applied.
  bool spawnValid = false;
  int32_t statusFd = -1;        // read end of the close-on-exec status pipe
  std::string pendingScript;    // script text still to be written to the shell
  int32_t scriptFd = -1;        // write end of the script pipe (-1 = none)
  bool earlyExit = false;       // the child's exit was seen before its status-pipe EOF/record
  int32_t earlyExitStatus = 0;  // the wait status of that exit
  bool operator==(const ProcessSlot&) const = default;
};

struct Instance {
  std::string name;                   // expanded instance name ("" for a single-instance job)
  DefRef def;                         // the definition this instance runs (docs/design.md, invariant 9)
  Goal goal = Goal::Stop;
  JobState state = JobState::Waiting;
  std::vector<std::string> env;       // the environment of its processes
  std::vector<std::string> stopEnv;   // environment of the event that stopped it
  EventExpr stopOn;                   // per-instance copy with match state
  std::array<ProcessSlot, kProcessTypes> procs;
  uint64_t blocker = 0;               // event this instance waits on (its starting/stopping)
  std::vector<Blocked> blocking;      // what it holds until it reaches its goal
  int64_t killDeadlineNs = 0;         // CLOCK_MONOTONIC; 0 = no kill timer
  ProcessType killProcess = ProcessType::Main;
  bool failed = false;
  ProcessType failedProcess = ProcessType::Main;
  int32_t exitStatus = 0;             // wait status of the failed process
  std::string failReason;             // human readable: "respawn limit reached", ...
  int64_t respawnWindowStartNs = 0;   // CLOCK_MONOTONIC
  uint32_t respawnCount = 0;
  TraceState traceState = TraceState::None;
  uint32_t traceForks = 0;
  // `expect notify` (format 2): readiness as the job reported it.
  ReadyState readyState = ReadyState::None;
  int64_t readyDeadlineNs = 0;        // CLOCK_MONOTONIC; 0 = no readiness deadline
  std::string statusText;             // the last STATUS= it sent
  int32_t notifyErrno = 0;            // the last ERRNO= it sent

  bool operator==(const Instance& o) const;  // compares *def by value, not the pointer
};

struct JobClass;

// Where a job class that is held encoded lives (the body of a restored snapshot, still mapped,
// or the message of an idle encoding). Implemented by serialize/; ClassMap::decode and
// ClassMap::readOnly ask it for a decode, and the accessors below answer what the loop needs of a
// held class without one.
class ClassSource {
 public:
  virtual ~ClassSource() = default;
  // Decode class `index` into `out` (every field but `encoded`). Throws if it cannot: the
  // restore checked everything a decode refuses, so this means memory corruption.
  virtual void decode(uint32_t index, JobClass& out) const = 0;
  // What the pid and watch tables need, read where it is: each used process slot of each
  // instance, with the instance's trace state (an `expect` main process may be a descendant).
  using SlotVisitor = std::function<void(const std::string& instance, ProcessType type,
                                         const ProcessSlot& slot, TraceState trace)>;
  virtual void forEachSlot(uint32_t index, const SlotVisitor& visit) const = 0;
  virtual size_t instanceCount(uint32_t index) const = 0;
  virtual size_t classCount() const = 0;  // classes it holds, encoded or decoded since
  // True if some match node of the class's `start on` or of an instance's `stop on` passes both
  // tests: `name` on its event name pattern, then (only if that holds) `node` on the node (name
  // and args; no match state). Only an event such a node matches can change the class.
  virtual bool anyMatchNode(uint32_t index, const std::function<bool(std::string_view pattern)>& name,
                            const std::function<bool(const EventNode& node)>& node) const = 0;
  // True if an instance waits on event `eventId` (Instance::blocker).
  virtual bool waitsOnEvent(uint32_t index, uint64_t eventId) const = 0;
};

// A job class. Decoded, it is plain values. Held (`encoded` set), its fields are empty and it is
// read only through ClassMap::decode, ClassMap::readOnly or the ClassSource accessors.
struct JobClass {
  DefRef def;                         // newest loaded definition
  EventExpr startOn;                  // copy of def->startOn with match state
  bool deleted = false;               // its file is gone: drop the class once all instances stop
  std::map<std::string, Instance> instances;
  // Not state, where the state is: while set, the class is held encoded (since a restore or an
  // idle encoding, holdEncoded in serialize/codec.h): every field above is empty and its encoded
  // form is class `encodedIndex` of `encoded`. Nothing decodes it behind the caller's back (see
  // ClassMap); a snapshot copies it across still encoded.
  std::shared_ptr<const ClassSource> encoded;
  uint32_t encodedIndex = 0;

  // Equal content. A held side is compared through a decoded copy (ClassMap::readOnly): a
  // comparison decodes nothing in place, whatever the two sides are.
  bool operator==(const JobClass& o) const;
};

// The job classes by name, each decoded or held encoded. A restore leaves classes in the
// snapshot (decoding a thousand jobs costs more than the rest of the re-exec window, and most are
// never touched before the next re-exec, which copies them across as they are); idle encoding
// holds classes the same way to save memory.
//
// The rule: a class is values once decoded, and only an explicit call decodes one.
// - Iteration (begin/end, range-for) and find() hand out the entries as they are, held or
//   decoded, and never decode; nor does anything const. A held entry's fields are empty: check
//   `encoded`.
// - Code that reads or changes the instances or the definition of a class that may be held
//   decodes it in place first: decode(it) or decoded(name) (a status, a start or stop, an event
//   that concerns the class, a child's exit, a reload).
// - A read that must not change what is held (a `list`) reads a decoded copy: readOnly().
// - What the loop needs of every class has accessors that decode nothing: forEachSlot,
//   instanceCount, encodedCount, and the ClassSource of a held class (anyMatchNode,
//   waitsOnEvent, ...).
// - The per-iteration scans that act only on decoded state (kill timers, the idle sweep) skip
//   held classes: neither a restore nor an idle encoding holds a class they would act on
//   (decodeNow in serialize/codec.cpp).
class ClassMap {
 public:
  // The map's nodes come from a pool of its own: they live as long as their jobs, and from the
  // heap they would sit between the allocations of decoded classes and keep those pages from
  // going back to the kernel when the classes are held encoded again (and the scans over all
  // classes read fewer cache lines).
  using Map = std::pmr::map<std::string, JobClass>;
  using value_type = Map::value_type;
  using iterator = Map::iterator;
  using const_iterator = Map::const_iterator;

  ClassMap() : store_(std::make_unique<Store>()) {}
  ClassMap(const ClassMap& o) : ClassMap() {  // entries as they are: a held class stays held
    for (auto& [name, cls] : o.map_()) map_().emplace_hint(map_().end(), name, cls);
  }
  ClassMap(ClassMap&& o) : store_(std::exchange(o.store_, std::make_unique<Store>())) {}
  ClassMap& operator=(const ClassMap& o) {
    if (this != &o) {
      ClassMap copy(o);
      store_.swap(copy.store_);
    }
    return *this;
  }
  ClassMap& operator=(ClassMap&& o) {
    store_.swap(o.store_);
    return *this;
  }

  // As they are: none of these decodes.
  iterator begin() { return map_().begin(); }
  iterator end() { return map_().end(); }
  const_iterator begin() const { return map_().begin(); }
  const_iterator end() const { return map_().end(); }
  iterator find(const std::string& k) { return map_().find(k); }
  const_iterator find(const std::string& k) const { return map_().find(k); }
  size_t size() const { return map_().size(); }
  bool empty() const { return map_().empty(); }
  size_t count(const std::string& k) const { return map_().count(k); }
  template <class... A>
  std::pair<iterator, bool> emplace(A&&... a) {
    return map_().emplace(std::forward<A>(a)...);
  }
  template <class... A>
  iterator emplace_hint(const_iterator hint, A&&... a) {
    return map_().emplace_hint(hint, std::forward<A>(a)...);
  }
  iterator erase(iterator it) { return map_().erase(it); }
  size_t erase(const std::string& k) { return map_().erase(k); }
  void clear() { map_().clear(); }
  // Equal names and content (JobClass::operator==): decodes nothing in place.
  bool operator==(const ClassMap& o) const;

  // The one way to decode a held class: in place, for code that reads or changes its instances
  // or its definition. The class at `it`, decoded first if it is held (a decoded one is returned
  // as it is). Throws if the encoded form cannot be decoded (the restore checked everything a
  // decode refuses, so this means memory corruption); the entry then stays held.
  JobClass& decode(iterator it);
  // decode(find(name)); std::out_of_range if there is no such class.
  JobClass& decoded(const std::string& name);

  // For a read that changes nothing (a `list`): the class itself if it is decoded, else a
  // decoded copy made in `scratch`, leaving the entry held. A monitor that lists every few
  // seconds would otherwise keep every class decoded and undo the idle encoding.
  static const JobClass& readOnly(const JobClass& cls, JobClass& scratch);

  // Every used process slot of every class, decoded or not.
  using SlotVisitor = std::function<void(const std::string& job, const std::string& instance, ProcessType type,
                                         const ProcessSlot& slot, TraceState trace)>;
  void forEachSlot(const SlotVisitor& visit) const;
  size_t instanceCount() const;  // of all classes, decoded or not
  size_t encodedCount() const;   // classes held encoded

 private:
  struct Store {
    std::pmr::unsynchronized_pool_resource pool;
    Map map{&pool};
  };
  Map& map_() { return store_->map; }
  const Map& map_() const { return store_->map; }
  std::unique_ptr<Store> store_;
};

inline bool sameDef(const DefRef& a, const DefRef& b) {
  if (!a || !b) return bool(a) == bool(b);
  return a == b || *a == *b;
}

inline bool Instance::operator==(const Instance& o) const {
  return name == o.name && sameDef(def, o.def) && goal == o.goal && state == o.state &&
         env == o.env && stopEnv == o.stopEnv && stopOn == o.stopOn && procs == o.procs &&
         blocker == o.blocker && blocking == o.blocking && killDeadlineNs == o.killDeadlineNs &&
         killProcess == o.killProcess && failed == o.failed && failedProcess == o.failedProcess &&
         exitStatus == o.exitStatus && failReason == o.failReason &&
         respawnWindowStartNs == o.respawnWindowStartNs && respawnCount == o.respawnCount &&
         traceState == o.traceState && traceForks == o.traceForks;
}

inline bool JobClass::operator==(const JobClass& o) const {
  JobClass copy, otherCopy;
  const JobClass& a = ClassMap::readOnly(*this, copy);
  const JobClass& b = ClassMap::readOnly(o, otherCopy);
  return sameDef(a.def, b.def) && a.startOn == b.startOn && a.deleted == b.deleted &&
         a.instances == b.instances;
}

enum class EventProgress : uint8_t { Pending = 0, Handling, Finished };

struct Event {
  uint64_t id = 0;
  std::string name;
  std::vector<std::string> env;       // KEY=VALUE (positional args are stored as such)
  EventProgress progress = EventProgress::Pending;
  bool failed = false;
  uint32_t blockers = 0;              // jobs holding it
  std::vector<RequestRef> waiters;    // `emit` requests waiting for it to finish
  bool operator==(const Event&) const = default;
};

// The output of one process, on its way from a pipe to LOGDIR/NAME.log.
struct LogPipe {
  int32_t fd = -1;          // read end; batond holds no write end, so EOF means all writers gone
  std::string logName;      // JOB or JOB-INSTANCE (`/` replaced by `_`)
  std::string unwritten;    // bytes read but not yet written (log dir not writable yet)
  bool operator==(const LogPipe&) const = default;
};

// A request that has not been answered yet because it waits for a job or an event.
struct PendingRequest {
  enum class Kind : uint8_t { Start = 0, Stop, Restart, Emit, Reexec };
  uint64_t requestId = 0;
  Kind kind = Kind::Start;
  std::string job, instance;
  bool operator==(const PendingRequest&) const = default;
};

struct Connection {
  uint64_t id = 0;
  int32_t fd = -1;
  uint32_t uid = 0;        // SO_PEERCRED
  int32_t pid = 0;
  std::string inBuf;       // bytes of a request not yet complete
  std::string outBuf;      // response bytes not yet written
  bool closing = false;    // close once outBuf is flushed
  std::vector<PendingRequest> pending;
  bool operator==(const Connection&) const = default;
};

// An internal child that is not a job process (e.g. the pre-flight of a re-exec).
struct HelperChild {
  int32_t pid = 0;
  uint64_t startTime = 0;
  std::string role;
  bool operator==(const HelperChild&) const = default;
};

struct Config {
  std::string confDir = "/etc/baton/jobs";
  std::string logDir = "/var/log/baton";
  std::string socketPath = "/run/baton/control";
  std::string cgroupBase = "baton";
  std::string cgroupRoot = "/sys/fs/cgroup";
  std::string logPriority = "message";
  bool testHooks = false;             // honour test-only job variables (BATON_TEST_HOLD)
  // Idle encoding: this long after activity, every decoded job class at rest is encoded again
  // and held like a restore holds them (ClassMap), which frees about 2/3 of its memory. 0 = never.
  uint32_t idleEncodeMs = 10000;
  bool operator==(const Config&) const = default;
};

// The re-exec in progress (written by the old binary, completed by the new one), and afterwards
// the record of the last one (`batonctl status --daemon`). Times are CLOCK_MONOTONIC ns.
struct Reexec {
  uint64_t connId = 0;          // client to answer (0 = none, e.g. triggered by SIGTERM)
  uint64_t requestId = 0;
  std::string fromBinary, toBinary;
  int64_t serializeStartNs = 0;
  int64_t serializeNs = 0, preflightNs = 0;
  int64_t execStartNs = 0;      // just before execve
  int64_t loadNs = 0, restoreNs = 0, rearmNs = 0, downtimeNs = 0;
  bool ok = false;
  bool rolledBack = false;
  std::string message;
  int64_t atNs = 0;             // when it completed
  uint64_t snapshotBytes = 0;
  uint32_t count = 0;           // re-execs since boot
  std::string formatPath;       // the snapshot formats it went through, e.g. "1 -> 2 (1 upgrade step)"
  bool operator==(const Reexec&) const = default;
};

struct Model {
  Config config;
  ClassMap classes;
  std::vector<Event> events;           // queue, oldest first
  uint64_t nextEventId = 1;
  std::vector<LogPipe> logPipes;
  int32_t listenFd = -1;
  std::vector<Connection> connections;
  uint64_t nextConnId = 1;
  std::vector<HelperChild> helpers;
  std::vector<int32_t> unclaimedTraceStops;  // traced children seen stopped before their fork event
  std::vector<std::string> configProblems;  // FILE:LINE: message, from the last (re)load
  bool reloadPending = false;
  uint32_t daemonUid = 0;
  int64_t bootTimeNs = 0;              // CLOCK_MONOTONIC when batond first started
  Reexec reexec;
  // The open-files soft limit batond started with: what jobs get (like systemd's
  // DefaultLimitNOFILE), while batond raises its own to hold thousands of pipes. 0 = not known yet.
  uint64_t jobNofileSoft = 0;
  // Readiness notification (format 2): the one datagram socket every `expect notify` job sends
  // to (NOTIFY_SOCKET), and what it refused.
  int32_t notifyFd = -1;
  uint64_t notifyRefused = 0;    // messages from a process that is no job's
  uint64_t notifyMalformed = 0;  // oversized, not UTF-8, or not KEY=VALUE lines

  bool operator==(const Model&) const = default;
};

}  // namespace baton
