// The re-exec coordinator: the stateful re-exec of batond into a new binary, in protocol order
// (docs/design.md, "The re-exec protocol"). Old image: step 1 negotiate the format, step 2
// pre-flight, step 3 serialize, step 4 point of no return (execve). New image: step 5 restore
// (5.2-5.5 map and check, 5.6-5.10 rearm, 5.11-5.12 serve again). When the new image cannot
// restore: step 6, fexecve of the pinned previous binary on the same snapshot, or else step 7,
// wait-only mode.
//
// Everything before execve is reversible: any failure there is an answer to the client and the
// old binary keeps running with nothing changed. The coordinator owns what never crosses an exec:
// the re-exec in progress (its helpers run while batond serves), the pinned binary and the
// wait-only reason. What crosses is the model (Model::reexec records the re-exec itself).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/fd.h"
#include "migrate/formats.h"
#include "migrate/handoff.h"
#include "schema/control.capnp.h"
#include "schema/model.h"
#include "serialize/snapshot.h"
#include "supervisor/control_server.h"
#include "supervisor/job_engine.h"
#include "supervisor/log.h"
#include "supervisor/resources.h"

namespace baton {

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
  //   may be unswept (ReexecHost::childEventsUnswept), so without a pending SIGCHLD there is no
  //   zombie and no stop to collect, and the restore skips its sweep: one waitid(P_ALL) walks
  //   every child in the kernel, 2.3 ms at 11,000 children on this VM.
  Handoff handoff;
};

// What the re-exec needs of the loop that owns it (Supervisor): an interface, because the loop
// owns the coordinator. The new image's side builds the loop's resources through it, and the
// wait-only mode runs the loop from inside restore().
class ReexecHost {
 public:
  // The epoll set (a new one, or the old image's adopted), the signalfd, the open-files limit
  // and the pinned binary. False: no event loop can run.
  virtual bool openBaseResources(int adoptEpollFd) = 0;
  // The watches and the pid table from the model; `alsoVisit` sees every used process slot.
  virtual void rearm(const ClassMap::SlotVisitor& alsoVisit) = 0;
  // Collect every child event the kernel holds (the waitid sweep).
  virtual void reapChildren() = 0;
  // A sweep did not run to its end: SIGCHLD must be pending across the exec (--sweep-on-sigchld).
  virtual bool childEventsUnswept() const = 0;
  virtual int run() = 0;

 protected:
  ~ReexecHost() = default;
};

class ReexecCoordinator final : public ReexecRequests {
 public:
  // Everything by reference is owned by Supervisor and outlives the coordinator; `jobs` and
  // `control` may not be constructed yet (they are only stored here). `selfPath`: the binary
  // batond was started from; `mainStartNs`: CLOCK_MONOTONIC at the top of main() (the exec time).
  ReexecCoordinator(Model& model, const Log& log, Watches& watches, PidTable& pids, JobEngine& jobs,
                    ControlServer& control, ReexecHost& host, std::string selfPath, int64_t mainStartNs);
  ~ReexecCoordinator();
  ReexecCoordinator(const ReexecCoordinator&) = delete;
  ReexecCoordinator& operator=(const ReexecCoordinator&) = delete;

  // Pin this binary (the rollback target of a re-exec); part of opening the base resources.
  void pinBinary();

  // ---- the old image (ReexecRequests; SIGTERM as PID 1 starts one too, without a client) ----
  void startReexec(ReexecOrder order) override;
  bool inProgress() const { return reexec_.has_value(); }
  // The helper of step 1 or 2: its output is readable, it exited, its deadline (0: none).
  void onHelperOutput();
  void onHelperExit(pid_t pid, int status);
  int64_t deadlineNs() const { return reexec_ ? reexec_->deadlineNs : 0; }
  void runTimer(int64_t now);

  // ---- the new image ----
  // Instead of Supervisor::start(): take over the state handed across execve. On failure it does
  // not return: it rolls back to the previous binary, or serves in wait-only mode.
  void restore(const RestoreArgs& args);

  // ---- what `status --daemon` shows ----
  const std::string& degraded() const override { return degraded_; }
  std::string currentBinary() const override;
  void fillReexecOutcome(wire::ReexecOutcome::Builder out) const override;

 private:
  // A re-exec before its point of no return: the target's helpers run while batond serves.
  // Never crosses an exec (it ends in execve or in an answer), so it is not part of the model.
  struct ReexecInProgress {
    enum class Phase { Negotiate, Preflight } phase = Phase::Negotiate;
    uint64_t connId = 0, requestId = 0;
    std::string target;
    bool testRefuse = false, testRefuseRollback = false;
    bool allowDowngradeMapping = false, wantsNotes = false;  // ReexecOrder
    // The mappings of a downgrade as the pre-flight snapshot made them: the snapshot handed over
    // must make the same ones (the client was told these).
    std::vector<std::string> mapped;
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

  void log(Priority p, const std::string& text) const { log_(p, text); }

  // Old image, in protocol order.
  void startReexecHelper(const std::vector<std::string>& argv, int passFd, int64_t timeoutMs);
  void reexecHelperDone();                                        // a helper's phase is over:
  void negotiated(bool ok, const std::string& outcome);           //   step 1, then starts step 2
  void preflightDone(bool ok, const std::string& outcome);        //   step 2, then steps 3-4
  sys::Fd serializeFor(uint32_t format, int64_t t0, size_t& bytes, std::string& error, MigrationNotes& notes,
                       SnapshotMemory* memory = nullptr, EncodeHooks* hooks = nullptr, bool checksum = true,
                       std::vector<FdEntry>* fdTable = nullptr);
  // A downgrade's format path and mappings: logged, and sent to a client that takes notes.
  void tellDowngrade(const ReexecInProgress& r);
  void pointOfNoReturn();                                         // steps 3 and 4, execve
  // The target's argv: the one place that says what crosses the exec besides the fds.
  std::vector<std::string> targetArgs(const ReexecInProgress& r, const sys::Fd& snapshot,
                                      int64_t serializeNs) const;
  // Before the point of no return: kill the helper, answer, keep running the old image.
  void abortReexec(const std::string& why);
  void reexecFailed(uint64_t connId, uint64_t requestId, const std::string& why);

  // New image.
  void answerReexec();  // step 5.12
  // Steps 6-7: keep the snapshot, fexecve the pinned binary, else wait-only mode (never returns).
  [[noreturn]] void restoreFailed(const RestoreArgs& args, const std::string& why,
                                  const std::vector<FdEntry>* fds);

  Model& model_;
  const Log& log_;
  Watches& watches_;
  PidTable& pids_;
  JobEngine& jobs_;
  ControlServer& control_;
  ReexecHost& host_;
  const std::string selfPath_;
  const int64_t mainStartNs_;
  int binaryFd_ = -1;          // this binary, pinned at start (rollback target of a re-exec)
  std::optional<ReexecInProgress> reexec_;
  std::string degraded_;       // non-empty: wait-only mode, and why
};

}  // namespace baton
