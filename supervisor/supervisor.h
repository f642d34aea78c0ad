// batond's composition root: the Model, the resources built from it, the event loop and the
// three parts that work on it.
//
//   JobEngine          (job_engine.h)          jobs, processes, events, job files, logs
//   ControlServer      (control_server.h)      the socket, one handler per request, held requests
//   ReexecCoordinator  (reexec_coordinator.h)  the re-exec, old image, new image and rollback
//
// Ownership: the Model holds values (including fd numbers). The Supervisor owns the resources
// built from those values: the epoll set and its watches, the signalfd and the pid table
// (resources.h). `rearm()` rebuilds them from the model, which is what a restore after a re-exec
// calls. Each part gets references to what it needs, never the Supervisor; where two parts need
// each other, one of them sees the other through a small interface (RequestOutcomes,
// ReexecRequests, ReexecHost), so there is no cycle between their headers. Exceptions from a
// request or a job are caught in one place (Supervisor::run); batond as PID 1 never exits because
// of bad input.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory_resource>
#include <string>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "schema/model.h"
#include "supervisor/control_server.h"
#include "supervisor/job_engine.h"
#include "supervisor/log.h"
#include "supervisor/reexec_coordinator.h"
#include "supervisor/resources.h"

namespace baton {

struct Options {
  Config config;
  bool socketGiven = false;
  std::string selfPath;  // the binary batond was started from
  int64_t mainStartNs = 0;  // CLOCK_MONOTONIC at the top of main()
  ControlLimits limits;     // not in the model: see control_limits.h
};

class SupervisorTestPeer;  // tests/unit: drives handlers in a chosen order

class Supervisor : private ReexecHost {
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
  int run() override;

  const Model& model() const { return model_; }

  // ---- diagnostics (stderr) ----
  using Priority = baton::Priority;
  void log(Priority p, const std::string& text) const { log_(p, text); }

 private:
  friend class SupervisorTestPeer;

  // ---- resources (also what the re-exec needs of them: ReexecHost) ----
  void raiseFdLimit();
  bool openBaseResources(int adoptEpollFd) override;
  void openNotifySocket();  // into Model::notifyFd
  // Watches and the pid table from the model. `alsoVisit` (may be null) sees every used process
  // slot of the same pass (a restore checks followed pids there instead of walking all slots
  // twice).
  void rearm(const ClassMap::SlotVisitor& alsoVisit) override;

  // ---- the loop ----
  void dispatch(int fd, uint32_t events);
  int nextTimeoutMs() const;
  void runTimers();
  void onSignal();
  // The reaper: every child event the kernel holds, each to its owner (the job engine, or the
  // re-exec for its helpers).
  void reapChildren() override;
  // The waitid loop of reapChildren; the exits of unknown pids while helpers run are returned.
  void sweepChildren(std::vector<std::pair<pid_t, int>>& helperExits);
  bool childEventsUnswept() const override { return childEventsUnswept_; }

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
  // The parts. Declared in this order so that none is converted to an interface it implements
  // before it is constructed (that conversion would be undefined): the re-exec coordinator
  // (ReexecRequests of the control server), then the control server (RequestOutcomes of the job
  // engine), then the job engine. A part only stores its references to the parts built after it.
  ReexecCoordinator reexec_;
  ControlServer control_;
  JobEngine jobs_;
};

}  // namespace baton
