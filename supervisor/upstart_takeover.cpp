// Taking over from Upstart 1.x PID 1 (its `--restart --state-fd N` contract): Upstart execs
// batond in its place and hands its JSON state over a pipe; migrate/upstart_import.h turns it into
// a Model. Like a restore, the takeover then builds the loop's resources from a model it did not
// write; unlike one, the pids come without an identity, which is taken here. A state that cannot
// be read or imported falls back to a start without state and without `startup`.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "base/syscalls.h"
#include "migrate/upstart_import.h"
#include "supervisor/supervisor.h"

namespace baton {

namespace {

// Read the whole state from the pipe Upstart's writer child fills, under a deadline (Upstart's
// own reader has none and can hang).
bool readStateFd(int fd, std::string& out, std::string& error) {
  const int64_t deadline = sys::monotonicNs() + int64_t(10) * 1000000000;
  sys::setNonblock(fd);
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, size_t(n));
      if (out.size() > (size_t(256) << 20)) {
        error = "state larger than 256 MiB";
        return false;
      }
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      error = "reading the state fd: " + sys::errnoText(errno);
      return false;
    }
    int64_t left = (deadline - sys::monotonicNs()) / 1000000;
    if (left <= 0) {
      error = "the state did not arrive within 10 s";
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, int(left));
  }
}

}  // namespace

bool Supervisor::takeOverFromUpstart(int stateFd) {
  std::string json, error;
  UpstartImport imported;
  bool ok = readStateFd(stateFd, json, error) && importUpstartState(json, imported, error);
  close(stateFd);
  if (!ok) {
    log(Priority::Error, "cannot take over Upstart's state: " + error +
                             "; starting without it and without the startup event (no job is started twice)");
    return start(/*emitStartup=*/false);
  }
  for (const std::string& w : imported.warnings) log(Priority::Warn, "Upstart state: " + w);
  log(Priority::Message, "took over from Upstart: " + std::to_string(imported.model.classes.size()) +
                             " jobs imported, " + std::to_string(imported.warnings.size()) + " warnings");
  Config config = model_.config;
  model_ = std::move(imported.model);
  model_.config = config;
  model_.daemonUid = getuid();
  model_.bootTimeNs = sys::monotonicNs();
  for (int32_t fd : imported.adoptedFds) sys::setCloexec(fd, true);
  for (const UpstartFd& u : imported.unadoptedFds) {
    log(Priority::Info, "closing fd " + std::to_string(u.fd) + " Upstart left open (" + u.what + ")");
    close(u.fd);
  }
  if (!openBaseResources(-1) || !control_.openControlSocket()) return false;
  rearm(nullptr);
  // Upstart stored pids without an identity: record it now for the ones that are alive; a pid
  // that is gone ended during the handover. (An import holds no class encoded; decode() says
  // that these loops read and change the instances.)
  for (auto it = model_.classes.begin(); it != model_.classes.end(); ++it) {
    const std::string& job = it->first;
    JobClass& cls = model_.classes.decode(it);
    for (auto& [name, inst] : cls.instances)
      for (int t = 0; t < kProcessTypes; ++t) {
        ProcessSlot& slot = inst.procs[t];
        if (slot.pid <= 0) continue;
        slot.startTime = sys::procStartTime(slot.pid);
        if (slot.startTime != 0) continue;
        log(Priority::Warn, job + " " + processTypeName(ProcessType(t)) + " process " + std::to_string(slot.pid) +
                                " is gone");
        pids_.erase(slot.pid);
        if (slot.spawnValid) {
          slot.earlyExit = true;
          slot.earlyExitStatus = SIGKILL;
        } else if (!slot.earlyExit) {
          jobs_.onProcessExit(cls, inst, ProcessType(t), SIGKILL);
        }
      }
  }
  // Instances Upstart left in a transient state resume with that state's entry action.
  for (auto it = model_.classes.begin(); it != model_.classes.end(); ++it) {
    JobClass& cls = model_.classes.decode(it);
    for (auto& [name, inst] : cls.instances) {
      JobState s = inst.state;
      if (s == JobState::PreStarting || s == JobState::Spawning || s == JobState::PostStarting ||
          s == JobState::PreStopping || s == JobState::PostStopping) {
        inst.state = JobState(int(s) - 1);  // the state before it, so that entering it runs again
        jobs_.changeState(cls, inst, s);
      }
    }
  }
  sys::mkdirs(model_.config.logDir);
  jobs_.loadConfiguration();  // this host's job files: newer definitions apply to the next start
  reapChildren();
  sigset_t mask = handledSignals();
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  jobs_.pollEvents();
  return true;
}

}  // namespace baton
