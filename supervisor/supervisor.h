// batond's core: the event loop, the job state machine, the event engine, the reaper, the log
// writer and the control server, all working on one Model (schema/model.h).
//
// Ownership: the Model holds values (including fd numbers). The Supervisor owns the resources
// built from those values: the epoll set and its watches, the signalfd, cached log-file fds and
// the pid index. `rearm()` rebuilds them from the model, which is what a restore after a re-exec
// will call. Exceptions from request handling are caught in one place (Supervisor::dispatch);
// batond as PID 1 never exits because of bad input.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <memory_resource>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/log_priority.h"
#include "migrate/handoff.h"
#include "schema/model.h"
#include "serialize/snapshot.h"
#include "base/fd_map.h"
#include "supervisor/spawn.h"

#include "schema/control.capnp.h"

namespace baton {

// The signals batond handles through its signalfd (blocked otherwise).
sigset_t handledSignals();

struct Options {
  Config config;
  bool socketGiven = false;
  std::string selfPath;  // the binary batond was started from
  int64_t mainStartNs = 0;  // CLOCK_MONOTONIC at the top of main()
};

// How this process was entered by a re-exec (`--restore-fd` and friends).
struct RestoreArgs {
  int snapshotFd = -1;
  int rollbackFd = -1;          // pinned previous binary, for fexecve if restore fails
  int64_t serializeNs = 0, preflightNs = 0, execStartNs = 0;
  std::string rolledBackBecause;  // set when this is the rollback of a failed re-exec
  bool testRefuseRestore = false; // test hook: refuse to restore (only with --test-hooks)
  bool testRefuseRollback = false;
  // The handoff options given (migrate/handoff.h), with their values:
  // - EpollFd (--epoll-fd): the old binary's epoll instance; the new binary adopts its
  //   registrations instead of re-registering every fd (and the old image's exit does not tear
  //   them all down). epollFd -1: build a new one.
  // - PreverifiedClasses (--preverified-classes): the snapshot's preverifiedClasses are byte
  //   copies of classes this binary's pre-flight verified; the restore does not check them again.
  // - SigchldSweep (--sweep-on-sigchld): the old image left SIGCHLD pending if any child event
  //   may be unswept (Supervisor::childEventsUnswept_), so without a pending SIGCHLD there is no
  //   zombie and no stop to collect, and the restore skips its sweep: one waitid(P_ALL) walks
  //   every child in the kernel, 2.3 ms at 11,000 children on this VM.
  Handoff handoff;
};

class SupervisorTestPeer;  // tests/unit: drives handlers in a chosen order

class Supervisor {
 public:
  explicit Supervisor(Options options);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Open the control socket, load the job files, emit `startup`. False (with a message on
  // stderr) if batond cannot serve at all (e.g. the socket cannot be bound).
  bool start(bool emitStartup = true);
  // Take over from Upstart 1.x PID 1 (`--restart --state-fd N`): import its JSON state. What
  // cannot be trusted falls back to a start without state and without the `startup` event, so
  // jobs whose processes are alive are never started twice. False only if batond cannot serve.
  bool takeOverFromUpstart(int stateFd);
  // Instead of start(): take over the state handed across execve. On failure it does not return:
  // it rolls back to the previous binary, or serves in wait-only mode.
  void restore(const RestoreArgs& args);
  // Run the loop until a non-PID-1 batond has finished its shutdown. Returns the exit code.
  int run();

  const Model& model() const { return model_; }

  // ---- diagnostics (stderr) ----
  using Priority = LogPriority;  // base/log_priority.h
  void log(Priority p, const std::string& text) const;

 private:
  friend class SupervisorTestPeer;
  // What an epoll registration stands for.
  struct Watch {
    enum class Kind { Signal, Listen, Connection, StatusPipe, ScriptPipe, LogPipe, HelperOutput } kind;
    std::string job, instance;  // StatusPipe/ScriptPipe
    ProcessType process = ProcessType::Main;
    uint64_t connId = 0;        // Connection
    uint32_t events = 0;        // the epoll mask registered for it
  };
  struct ProcKey {
    std::string job, instance;
    ProcessType process;
  };

  // ---- loop and resources ----
  // Watches and the pid table from the model. `alsoVisit` sees every used process slot of the
  // same pass (a restore checks followed pids there instead of walking all slots twice).
  void rearm(const ClassMap::SlotVisitor& alsoVisit = nullptr);
  void watch(int fd, uint32_t events, Watch w);
  void unwatch(int fd);
  void modifyWatch(int fd, uint32_t events);
  void checkAdoptedRegistrations();
  void dispatch(int fd, uint32_t events);
  int nextTimeoutMs() const;
  void runTimers();
  void onSignal();
  void reapChildren();
  // The waitid loop of reapChildren; the exits of unknown pids while helpers run are returned.
  void sweepChildren(std::vector<std::pair<pid_t, int>>& helperExits);
  void onChildStopped(pid_t pid, int code, int status);

  // ---- job engine (supervisor.cpp) ----
  JobClass* findClass(const std::string& name);
  Instance* findInstance(const std::string& job, const std::string& instance);
  Instance& instanceFor(JobClass& cls, const std::string& name);
  void changeGoal(JobClass& cls, Instance& inst, Goal goal);
  void changeState(JobClass& cls, Instance& inst, JobState state);
  void enterState(JobClass& cls, Instance& inst, JobState& state, bool& wait);
  bool spawnProcess(JobClass& cls, Instance& inst, ProcessType type);
  bool buildPlan(const JobClass& cls, const Instance& inst, ProcessType type, SpawnPlan& plan,
                 std::string& pendingScript, std::string& error);
  void onStatusPipe(const std::string& job, const std::string& instance, ProcessType type);
  void onScriptPipe(const std::string& job, const std::string& instance, ProcessType type);
  void onProcessExit(JobClass& cls, Instance& inst, ProcessType type, int status);
  void maybeLeaveSpawned(JobClass& cls, Instance& inst);
  void killMain(JobClass& cls, Instance& inst, int sig);
  void failJob(JobClass& cls, Instance& inst, ProcessType type, int status, const std::string& why);
  void finished(JobClass& cls, Instance& inst, bool failed);
  bool isNormalExit(const JobDef& def, int status) const;
  bool respawnAllowed(Instance& inst);
  void clearSlot(ProcessSlot& slot);
  std::vector<std::string> eventEnvFor(const JobClass& cls, const Instance& inst, bool stopping) const;
  void sweepIdle();
  // Idle encoding (Config::idleEncodeMs): hold the classes at rest encoded again.
  void armIdleEncode();  // the next pass, idleEncodeMs from now (not armed if 0)
  void idleEncode();
  void flushDeferredAnswers();
  // The environment and instance name of a new run of `cls`, with `extra` (event or request
  // variables) on top of the job's own `env` stanzas; `events`: names for UPSTART_EVENTS.
  bool startEnvironment(const JobClass& cls, const std::vector<std::string>& extra,
                        const std::string& events, std::vector<std::string>& env,
                        std::string& instName, std::string& error) const;
  bool allAtRest() const;

  // ---- events ----
  uint64_t emitEvent(const std::string& name, std::vector<std::string> env);
  Event* findEvent(uint64_t id);
  void pollEvents();
  void handleEvent(uint64_t id);
  void finishEvent(uint64_t id);
  void releaseEvent(uint64_t id, bool failed);

  // ---- re-exec (reexec.cpp) ----
  void startReexec(uint64_t connId, uint64_t requestId, std::string target, bool testRefuse,
                   bool testRefuseRollback);
  void startReexecHelper(const std::vector<std::string>& argv, int passFd, int64_t timeoutMs);
  void onHelperOutput();
  void onHelperExit(pid_t pid, int status);
  void reexecHelperDone();
  void abortReexec(const std::string& why);
  sys::Fd serializeFor(uint32_t format, int64_t t0, size_t& bytes, std::string& error, SnapshotMemory* memory = nullptr,
                   EncodeHooks* hooks = nullptr, bool checksum = true, std::vector<FdEntry>* fdTable = nullptr);
  void pointOfNoReturn();
  void reexecFailed(uint64_t connId, uint64_t requestId, const std::string& why);
  void answerReexec();
  void fillReexecOutcome(wire::ReexecOutcome::Builder out) const;
  bool openBaseResources(int adoptEpollFd = -1);
  void raiseFdLimit();
  [[noreturn]] void restoreFailed(const RestoreArgs& args, const std::string& why,
                                  const std::vector<FdEntry>* fds);
  std::string currentBinary() const;

  // ---- configuration ----
  void loadConfiguration();

  // ---- logs ----
  void onLogPipe(int fd);
  void writeLog(LogPipe& lp);
  int logFileFd(const std::string& name);

  // ---- control (control_server.cpp) ----
  bool openControlSocket();
  void acceptConnections();
  void onConnection(uint64_t connId, uint32_t events);
  Connection* findConnection(uint64_t connId);
  void closeConnection(uint64_t connId);
  // The epoll mask a connection needs: reads until the client shut down its side, writes while
  // answers are queued. One function, so rearm() and the handlers cannot disagree.
  static uint32_t connectionEvents(const Connection& conn);
  void flushConnection(Connection& conn);
  void handleRequest(uint64_t connId, wire::Request::Reader req);
  void sendResponse(uint64_t connId, capnp::MessageBuilder& message);
  void answerPending(uint64_t connId, uint64_t requestId, bool failed);
  void answerSimple(uint64_t connId, uint64_t requestId, int code, const std::string& message);
  void fillJobStatus(wire::JobStatus::Builder out, const JobClass& cls, const Instance* inst) const;

  Model model_;
  Options options_;
  bool pid1_ = false;
  bool shuttingDown_ = false;
  bool exitRequested_ = false;
  // A waitid sweep (reapChildren, which runs after every SIGCHLD read) has not run to its end.
  // Helpers' exits are applied after the sweep so that a re-exec does not start inside it; should
  // one still (an exception cut the sweep short), the re-exec makes SIGCHLD pending again: the new
  // image sweeps only if it is (--sweep-on-sigchld).
  bool childEventsUnswept_ = false;
  int epollFd_ = -1;
  int signalFd_ = -1;
  // During the rearm() of a restore into an adopted epoll: the registrations already exist.
  bool registrationsAdopted_ = false;
  // The fd-indexed tables are one vector each (FdMap).
  FdMap<Watch> watches_;
  // Identity of every watched fd, taken when it was registered: what the handoff table records.
  FdMap<FdIdentity> fdIdentities_;
  // The node tables below live as long as their processes and log files, and get an entry with
  // every spawn: from the heap, their small nodes would sit between the job classes' allocations
  // and keep the pages of every class freed later (idle encoding) from going back. From a pool
  // of their own, they stay together.
  std::pmr::unsynchronized_pool_resource tablePool_;
  std::pmr::unordered_map<pid_t, ProcKey> pids_{&tablePool_};
  std::pmr::map<std::string, int> logFiles_{&tablePool_};
  std::vector<std::string> configWarnings_;
  int binaryFd_ = -1;          // this binary, pinned at start (rollback target of a re-exec)
  uint64_t fdLimitHard_ = 0;   // batond's own RLIMIT_NOFILE hard limit (jobs keep it)
  // A re-exec before its point of no return: the target's helpers run while batond serves.
  // Never crosses an exec (it ends in execve or in an answer), so it is not part of the model.
  struct ReexecInProgress {
    enum class Phase { Negotiate, Preflight } phase = Phase::Negotiate;
    uint64_t connId = 0, requestId = 0;
    std::string target;
    bool testRefuse = false, testRefuseRollback = false;
    pid_t pid = -1;
    sys::Fd outFd;
    std::string output;
    bool exited = false, eof = false, timedOut = false;
    int status = 0;
    int64_t phaseStartNs = 0, deadlineNs = 0, preflightStartNs = 0;
    uint32_t format = 0;
    HandoffSet handoff;  // the options the target announced ("accepts NAME", migrate/handoff.h)
    sys::Fd snapshotFd;  // the pre-flight copy
    SnapshotMemory memory;  // for the snapshot handed over, prepared during the pre-flight
    // Where the pre-flight snapshot holds each class held encoded (restore, idle encoding): the
    // window copies those as bytes (ClassImages in serialize/codec.h).
    std::shared_ptr<const ClassImages> images;
  };
  std::optional<ReexecInProgress> reexec_;
  // When the next idle encoding runs (0 = not armed: nothing happened since the last one). Not
  // state: a restore holds the classes encoded anyway.
  int64_t idleEncodeAtNs_ = 0;
  std::string degraded_;       // non-empty: wait-only mode, and why
  // Requests whose job reached its goal during this loop iteration; answered at its end, when
  // the state has settled (always before a re-exec, so none is lost).
  std::vector<std::pair<RequestRef, bool>> deferredAnswers_;
};

}  // namespace baton
