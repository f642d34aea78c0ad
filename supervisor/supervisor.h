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

#include "schema/model.h"
#include "serialize/snapshot.h"
#include "base/fd_map.h"
#include "supervisor/control_server.h"
#include "supervisor/job_engine.h"
#include "supervisor/log.h"
#include "supervisor/resources.h"

#include "schema/control.capnp.h"

namespace baton {

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
  // The old binary's epoll instance (--epoll-fd): its registrations name the handed fds by number
  // and survive execve, so the new binary adopts them instead of re-registering every fd (and the
  // old image's exit does not tear them all down). -1: build a new one.
  int epollFd = -1;
  // --preverified-classes: the snapshot's preverifiedClasses are byte copies of classes this
  // binary's pre-flight verified; the restore does not check them again.
  bool preverifiedClasses = false;
  // --sweep-on-sigchld: the old image left SIGCHLD pending if any child event may be unswept
  // (Supervisor::childEventsUnswept_), so without a pending SIGCHLD there is no zombie and no
  // stop to collect, and the restore skips its sweep: one waitid(P_ALL) walks every child in the
  // kernel, 2.3 ms at 11,000 children on this VM.
  bool sweepOnSigchld = false;
};

class SupervisorTestPeer;  // tests/unit: drives handlers in a chosen order

class Supervisor : private ReexecRequests {
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
  using Priority = baton::Priority;
  void log(Priority p, const std::string& text) const { log_(p, text); }

 private:
  friend class SupervisorTestPeer;

  // ---- loop and resources ----
  // Watches and the pid table from the model. `alsoVisit` sees every used process slot of the
  // same pass (a restore checks followed pids there instead of walking all slots twice).
  void rearm(const ClassMap::SlotVisitor& alsoVisit = nullptr);
  void dispatch(int fd, uint32_t events);
  int nextTimeoutMs() const;
  void runTimers();
  void onSignal();
  void reapChildren();
  // The waitid loop of reapChildren; the exits of unknown pids while helpers run are returned.
  void sweepChildren(std::vector<std::pair<pid_t, int>>& helperExits);

  // ---- re-exec (reexec.cpp) ----
  void startReexec(uint64_t connId, uint64_t requestId, std::string target, bool testRefuse,
                   bool testRefuseRollback) override;
  const std::string& degraded() const override { return degraded_; }
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
  void fillReexecOutcome(wire::ReexecOutcome::Builder out) const override;
  bool openBaseResources(int adoptEpollFd = -1);
  void raiseFdLimit();
  [[noreturn]] void restoreFailed(const RestoreArgs& args, const std::string& why,
                                  const std::vector<FdEntry>* fds);
  std::string currentBinary() const override;

  Model model_;
  Options options_;
  Log log_{model_.config};
  const bool pid1_;
  bool exitRequested_ = false;
  // A waitid sweep (reapChildren, which runs after every SIGCHLD read) has not run to its end.
  // Helpers' exits are applied after the sweep so that a re-exec does not start inside it; should
  // one still (an exception cut the sweep short), the re-exec makes SIGCHLD pending again: the new
  // image sweeps only if it is (--sweep-on-sigchld).
  bool childEventsUnswept_ = false;
  sys::Fd signalFd_;
  Watches watches_{log_};
  // The node tables that live as long as their processes and log files (the pid table here,
  // the job engine's log files), and get an entry with every spawn: from the heap, their small
  // nodes would sit between the job classes' allocations and keep the pages of every class freed
  // later (idle encoding) from going back. From a pool of their own, they stay together.
  std::pmr::unsynchronized_pool_resource tablePool_;
  PidTable pids_{&tablePool_};
  int binaryFd_ = -1;          // this binary, pinned at start (rollback target of a re-exec)
  // The parts. Declared in this order so that none is converted to an interface it implements
  // before it is constructed (that conversion would be undefined): the control server is built
  // first, then the job engine, which keeps it as its RequestOutcomes. The server only stores its
  // reference to the engine until the engine is built.
  ControlServer control_;
  JobEngine jobs_;
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
    bool passEpollFd = false;  // the target announced "accepts epoll-fd"
    bool omitChecksum = false; // ... and "accepts unchecksummed-handoff"
    bool markPreverified = false;  // ... and "accepts preverified-classes"
    bool sweepOnSigchld = false;   // ... and "accepts sigchld-sweep"
    sys::Fd snapshotFd;  // the pre-flight copy
    SnapshotMemory memory;  // for the snapshot handed over, prepared during the pre-flight
    // Where the pre-flight snapshot holds each class held encoded (restore, idle encoding): the
    // window copies those as bytes (ClassImages in serialize/codec.h).
    std::shared_ptr<const ClassImages> images;
  };
  std::optional<ReexecInProgress> reexec_;
  std::string degraded_;       // non-empty: wait-only mode, and why
};

}  // namespace baton
