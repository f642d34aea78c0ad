// The composition root; see supervisor.h. Its own work is the resources, the loop and the reaper;
// everything else is one of the parts.
#include "supervisor/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/syscalls.h"
#include "supervisor/notify_socket.h"

namespace baton {

// =============================================================================================
// Construction, entry points and resources

Supervisor::Supervisor(Options options)
    : options_(std::move(options)),
      pid1_(getpid() == 1),
      reexec_(model_, log_, watches_, pids_, jobs_, control_, /*host=*/*this, options_.selfPath,
              options_.mainStartNs),
      control_(model_, log_, watches_, jobs_, reexec_, pid1_, options_.limits, options_.mainStartNs),
      jobs_(model_, log_, watches_, pids_, tablePool_, /*outcomes=*/control_, pid1_) {
  model_.config = options_.config;
  model_.daemonUid = getuid();
  model_.bootTimeNs = sys::monotonicNs();
}

Supervisor::~Supervisor() = default;

// batond holds a log pipe per process and a status pipe per spawn in flight: thousands of jobs
// need more than the usual 1024 open files. Raise our own limit (soft to hard; as PID 1 both to
// 2^20 where the kernel allows) and remember the soft limit we started with for the jobs, which
// get it back (select() breaks above 1024). After a re-exec the model already holds it.
void Supervisor::raiseFdLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (model_.jobNofileSoft == 0) model_.jobNofileSoft = rl.rlim_cur;
  constexpr rlim_t kPid1Limit = rlim_t(1) << 20;
  if (pid1_ && rl.rlim_max < kPid1Limit) {
    struct rlimit want = {kPid1Limit, kPid1Limit};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      log(Priority::Warn, "cannot raise the open-files limit: " + sys::errnoText(errno));
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  jobs_.setFdLimitHard(rl.rlim_max);
}

bool Supervisor::openBaseResources(int adoptEpollFd) {
  raiseFdLimit();
  if (!pid1_ && prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    log(Priority::Warn, "cannot become a child subreaper: " + sys::errnoText(errno));
  // Signals are handled synchronously through a signalfd; SIGPIPE is ignored (a vanished client
  // is an error on write, not a death). The child undoes both before exec.
  sigset_t mask = handledSignals();
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  watches_.open(adoptEpollFd);
  signalFd_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (watches_.epollFd() < 0 || !signalFd_) {
    log(Priority::Fatal, "cannot create epoll/signalfd: " + sys::errnoText(errno));
    return false;
  }
  reexec_.pinBinary();
  return true;
}

void Supervisor::restore(const RestoreArgs& args) { reexec_.restore(args); }

bool Supervisor::start(bool emitStartup) {
  if (!openBaseResources(-1)) return false;
  // As PID 1, Ctrl-Alt-Del must reach us as SIGINT instead of rebooting at once.
  if (pid1_) reboot(RB_DISABLE_CAD);
  if (!control_.openControlSocket()) return false;
  rearm(nullptr);
  sys::mkdirs(model_.config.logDir);
  // Job logs are opened without following links (sys::openAppendAt), but a directory others can
  // write to still lets them remove or replace a job's log: say so once.
  const std::string exposed = sys::writableByOthers(model_.config.logDir);
  if (!exposed.empty()) log(Priority::Warn, "log directory: " + exposed + "; other users can remove or replace job logs");
  jobs_.loadConfiguration();
  if (emitStartup) jobs_.emitEvent("startup", {});
  jobs_.pollEvents();
  return true;
}

void Supervisor::openNotifySocket() {
  std::string error;
  sys::Fd fd = baton::openNotifySocket(notifySocketPath(model_.config), error);
  // Not fatal: only `expect notify` jobs need it, and they fail at their readiness deadline.
  if (!fd) return log(Priority::Error, error + ": `expect notify` jobs cannot report readiness");
  model_.notifyFd = fd.release();
}

// Build every watch from the model. After a restore this is the only thing that turns values
// back into live resources.
void Supervisor::rearm(const ClassMap::SlotVisitor& alsoVisit) {
  watches_.forgetWatches();  // not the fd identities: after a restore, the verified handoff table
  pids_.clear();
  watches_.watch(signalFd_.get(), EPOLLIN, {Watch::Kind::Signal});
  if (model_.listenFd >= 0) watches_.watch(model_.listenFd, EPOLLIN, {Watch::Kind::Listen});
  // The notify socket comes across a re-exec like the control socket; a fresh start, or a
  // snapshot of format 1 (which has none), opens it here.
  if (model_.notifyFd < 0) openNotifySocket();
  if (model_.notifyFd >= 0) watches_.watch(model_.notifyFd, EPOLLIN, {Watch::Kind::Notify});
  for (Connection& c : model_.connections) {
    Watch w{Watch::Kind::Connection};
    w.connId = c.id;
    watches_.watch(c.fd, ControlServer::connectionEvents(c), w);
  }
  control_.armFrameDeadlines();
  for (LogPipe& lp : model_.logPipes) watches_.watch(lp.fd, EPOLLIN, {Watch::Kind::LogPipe});
  // From every class as it is, decoded or still encoded after a restore (nothing is decoded).
  model_.classes.forEachSlot([&](const std::string& jobName, const std::string& instName, ProcessType t,
                                 const ProcessSlot& slot, TraceState trace) {
    if (alsoVisit) alsoVisit(jobName, instName, t, slot, trace);
    // An exit already reaped (earlyExit) frees its pid: it is not the job's any more.
    if (slot.pid > 0 && !slot.earlyExit) pids_[slot.pid] = {jobName, instName, t};
    if (slot.statusFd >= 0) watches_.watch(slot.statusFd, EPOLLIN, {Watch::Kind::StatusPipe, jobName, instName, t});
    if (slot.scriptFd >= 0 && !slot.spawnValid)
      watches_.watch(slot.scriptFd, EPOLLOUT, {Watch::Kind::ScriptPipe, jobName, instName, t});
  });
}

// =============================================================================================
// The loop

int Supervisor::run() {
  epoll_event events[64];
  while (!exitRequested_) {
    int n = epoll_wait(watches_.epollFd(), events, 64, nextTimeoutMs());
    if (n < 0 && errno != EINTR) {
      log(Priority::Error, "epoll_wait: " + sys::errnoText(errno));
      continue;
    }
    for (int i = 0; i < n; ++i) {
      try {
        dispatch(events[i].data.fd, events[i].events);
      } catch (const std::exception& e) {
        // The one place where errors of a single request or job end: batond keeps running.
        log(Priority::Error, std::string("internal error: ") + e.what());
      }
    }
    try {
      if (model_.reloadPending) {
        model_.reloadPending = false;
        jobs_.loadConfiguration();
      }
      runTimers();
      jobs_.pollEvents();
      control_.flushDeferredAnswers();
      jobs_.sweepIdle();
      if (n > 0 && !jobs_.idleEncodeAtNs()) jobs_.armIdleEncode();
      if (jobs_.idleEncodeAtNs() && jobs_.idleEncodeAtNs() <= sys::monotonicNs())
        jobs_.idleEncode(reexec_.inProgress());
    } catch (const std::exception& e) {
      log(Priority::Error, std::string("internal error: ") + e.what());
    }
    if (jobs_.shuttingDown() && jobs_.allAtRest() && model_.logPipes.empty()) exitRequested_ = true;
  }
  return 0;
}

void Supervisor::dispatch(int fd, uint32_t events) {
  const Watch* found = watches_.find(fd);
  if (!found) return;
  Watch w = *found;  // copy: handlers may unwatch
  switch (w.kind) {
    case Watch::Kind::Signal: onSignal(); break;
    case Watch::Kind::Listen: control_.acceptConnections(); break;
    case Watch::Kind::Connection: control_.onConnection(w.connId, events); break;
    case Watch::Kind::StatusPipe: jobs_.onStatusPipe(w.job, w.instance, w.process); break;
    case Watch::Kind::ScriptPipe: jobs_.onScriptPipe(w.job, w.instance, w.process); break;
    case Watch::Kind::LogPipe: jobs_.onLogPipe(fd); break;
    case Watch::Kind::HelperOutput: reexec_.onHelperOutput(); break;
    case Watch::Kind::Notify: jobs_.onNotifySocket(); break;
  }
}

int Supervisor::nextTimeoutMs() const {
  int64_t earliest = jobs_.nextTimerNs();
  const int64_t reexecDeadline = reexec_.deadlineNs();
  if (reexecDeadline && (!earliest || reexecDeadline < earliest)) earliest = reexecDeadline;
  const int64_t idleEncodeAt = jobs_.idleEncodeAtNs();
  if (idleEncodeAt && (!earliest || idleEncodeAt < earliest)) earliest = idleEncodeAt;
  const int64_t controlAt = control_.nextDeadlineNs();  // frame deadlines, the warning summary
  if (controlAt && (!earliest || controlAt < earliest)) earliest = controlAt;
  if (!earliest) return -1;
  int64_t delta = earliest - sys::monotonicNs();
  if (delta <= 0) return 0;
  return int(std::min<int64_t>((delta + 999999) / 1000000, 60000));
}

void Supervisor::runTimers() {
  int64_t now = sys::monotonicNs();
  control_.runTimers(now);
  reexec_.runTimer(now);
  jobs_.runTimers(now);
}

void Supervisor::onSignal() {
  signalfd_siginfo si;
  while (read(signalFd_.get(), &si, sizeof si) == ssize_t(sizeof si)) {
    switch (si.ssi_signo) {
      case SIGCHLD: break;  // reaped below, however many were coalesced
      case SIGHUP:
        log(Priority::Message, "SIGHUP: reloading configuration");
        model_.reloadPending = true;  // done in the loop; survives a re-exec in between
        break;
      case SIGTERM:
      case SIGINT:
        if (pid1_) {
          // As PID 1, SIGTERM is the re-exec trigger (Upstart's `telinit u`); SIGINT is
          // ctrl-alt-del, which becomes an event for jobs to act on.
          if (si.ssi_signo == SIGINT) jobs_.emitEvent("control-alt-delete", {});
          else reexec_.startReexec({});
          break;
        }
        if (!jobs_.shuttingDown()) {
          log(Priority::Message, "shutting down: stopping all jobs");
          jobs_.shutDown();
        }
        break;
      case SIGPWR: jobs_.emitEvent("power-status-changed", {}); break;
      case SIGWINCH: jobs_.emitEvent("keyboard-request", {}); break;
      default: break;
    }
  }
  reapChildren();
}

// =============================================================================================
// Reaping

void Supervisor::reapChildren() {
  childEventsUnswept_ = true;
  // Helpers' exits are handled after the sweep: the pre-flight's exit may complete a re-exec,
  // and the exec should not cut the sweep short (the new image then need not sweep again).
  std::vector<std::pair<pid_t, int>> helperExits;
  auto handleHelperExits = [&] {
    for (auto [pid, status] : std::exchange(helperExits, {})) reexec_.onHelperExit(pid, status);
  };
  try {
    sweepChildren(helperExits);
  } catch (...) {
    handleHelperExits();  // reaped: its exit must be applied (a pid kept would be signalled later)
    throw;
  }
  handleHelperExits();
}

void Supervisor::sweepChildren(std::vector<std::pair<pid_t, int>>& helperExits) {
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WNOHANG) != 0 || si.si_pid == 0) {
      childEventsUnswept_ = false;  // ECHILD, or nothing left to collect
      break;
    }
    pid_t pid = si.si_pid;
    if (si.si_code == CLD_STOPPED || si.si_code == CLD_TRAPPED) {
      jobs_.onChildStopped(pid, si.si_code, si.si_status);
      continue;
    }
    int status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8
                 : si.si_code == CLD_DUMPED ? (si.si_status | 0x80) : si.si_status;
    if (!pids_.count(pid) && !model_.helpers.empty()) {
      helperExits.emplace_back(pid, status);
      continue;
    }
    jobs_.onChildExited(pid, status);  // a job's process, or an orphan
  }
}

}  // namespace baton
