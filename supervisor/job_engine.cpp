// The job engine; see job_engine.h.
#include "supervisor/job_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/environ.h"
#include "base/event_expr.h"
#include "base/names.h"
#include "base/syscalls.h"
#include "supervisor/cgroup.h"
#include "supervisor/job_state.h"
#include "supervisor/jobfile.h"
#include "supervisor/notify_socket.h"

namespace baton {

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// Characters that make Upstart (and baton) run an `exec` line through the shell.
constexpr const char* kShellChars = "~`!$^&*()=|\\{}[];\"'<>?";

std::string statusText(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

std::vector<std::string> splitWords(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && isspace((unsigned char)s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !isspace((unsigned char)s[j])) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// PATH lookup in the parent (execvp is not async-signal-safe in every libc).
std::string resolveExecutable(const std::string& file, const environ::Table& env) {
  if (file.find('/') != std::string::npos) return file;
  std::string path = environ::get(env, "PATH").value_or(kDefaultPath);
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find(':', pos);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(pos, end - pos);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + file;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    pos = end + 1;
  }
  return file;  // exec will fail with ENOENT and report it over the status pipe
}

// The main process exists: a pid, and no exit seen yet (an exit reaped before its status pipe
// answered leaves the pid in the slot until then, but that pid may already name another process).
bool mainAlive(const Instance& inst) { return inst.procs[0].pid > 0 && !inst.procs[0].earlyExit; }

bool activeState(const Instance& inst) {
  return !(inst.state == JobState::Waiting && inst.goal == Goal::Stop);
}

}  // namespace

JobEngine::JobEngine(Model& model, const Log& log, Watches& watches, PidTable& pids,
                     std::pmr::memory_resource& tablePool, RequestOutcomes& outcomes, bool pid1)
    : model_(model),
      log_(log),
      watches_(watches),
      pids_(pids),
      outcomes_(outcomes),
      pid1_(pid1),
      logFiles_(&tablePool) {}

JobEngine::~JobEngine() {
  for (auto& [name, fd] : logFiles_) close(fd);
}

// =============================================================================================
// Children: exits and stops the waitid sweep collected

void JobEngine::onChildExited(pid_t pid, int status) {
  auto it = pids_.find(pid);
  if (it == pids_.end()) {
    log(Priority::Debug, "reaped orphan " + std::to_string(pid) + " (" + statusText(status) + ")");
    return;
  }
  ProcKey key = it->second;
  pids_.erase(it);
  JobClass* cls = findClass(key.job);
  Instance* inst = cls ? findInstance(key.job, key.instance) : nullptr;
  if (!inst) return;
  ProcessSlot& slot = inst->procs[int(key.process)];
  if (slot.pid != pid) return;
  if (slot.spawnValid) {
    // The status pipe has not answered yet: keep the exit and apply it after the pipe's
    // outcome, so that outcome and exit are applied once each, in that order.
    slot.earlyExit = true;
    slot.earlyExitStatus = status;
    return;
  }
  onProcessExit(*cls, *inst, key.process, status);
}

void JobEngine::onChildStopped(pid_t pid, int code, int status) {
  auto it = pids_.find(pid);
  if (it == pids_.end()) {
    // A traced child's first stop can be seen before its parent's fork event.
    if (code == CLD_TRAPPED && (status & 0xff) == SIGSTOP) model_.unclaimedTraceStops.push_back(pid);
    return;
  }
  ProcKey key = it->second;
  JobClass* cls = findClass(key.job);
  Instance* inst = cls ? findInstance(key.job, key.instance) : nullptr;
  if (!inst || key.process != ProcessType::Main) return;
  const JobDef& def = *inst->def;

  if (code == CLD_STOPPED) {
    if (def.expect == ExpectType::Stop && inst->state == JobState::Spawned &&
        inst->traceState != TraceState::Done && (status & 0xff) == SIGSTOP) {
      inst->traceState = TraceState::Done;
      kill(pid, SIGCONT);
      maybeLeaveSpawned(*cls, *inst);
    }
    return;
  }

  // CLD_TRAPPED: ptrace stops of `expect fork` / `expect daemon`.
  int sig = status & 0xff;
  int event = (status >> 8) & 0xff;
  const uint32_t wantForks = def.expect == ExpectType::Daemon ? 2 : 1;
  auto follow = [&](pid_t child) {
    // The new child is traced automatically and starts with a SIGSTOP.
    pids_.erase(pid);
    ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
    ProcessSlot& slot = inst->procs[0];
    slot.pid = child;
    slot.startTime = sys::procStartTime(child);
    pids_[child] = key;
    inst->traceForks++;
    inst->traceState = TraceState::NewChild;
    auto u = std::find(model_.unclaimedTraceStops.begin(), model_.unclaimedTraceStops.end(), child);
    if (u != model_.unclaimedTraceStops.end()) {
      model_.unclaimedTraceStops.erase(u);
      onChildStopped(child, CLD_TRAPPED, SIGSTOP);
    }
  };
  switch (inst->traceState) {
    case TraceState::New:
      if (sig == SIGTRAP) {  // stopped after exec
        ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK);
        inst->traceState = TraceState::Normal;
        ptrace(PTRACE_CONT, pid, nullptr, nullptr);
      } else {
        ptrace(PTRACE_CONT, pid, nullptr, sig);
      }
      break;
    case TraceState::Normal:
      if (sig == SIGTRAP && (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK)) {
        unsigned long child = 0;
        ptrace(PTRACE_GETEVENTMSG, pid, nullptr, &child);
        follow(pid_t(child));
      } else {
        ptrace(PTRACE_CONT, pid, nullptr, sig == SIGTRAP ? 0 : sig);
      }
      break;
    case TraceState::NewChild:
      if (sig == SIGSTOP) {
        if (inst->traceForks >= wantForks) {
          ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
          inst->traceState = TraceState::Done;
          maybeLeaveSpawned(*cls, *inst);
        } else {
          ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK);
          inst->traceState = TraceState::Normal;
          ptrace(PTRACE_CONT, pid, nullptr, nullptr);
        }
      } else {
        ptrace(PTRACE_CONT, pid, nullptr, sig == SIGTRAP ? 0 : sig);
      }
      break;
    default:
      ptrace(PTRACE_CONT, pid, nullptr, sig == SIGTRAP ? 0 : sig);
      break;
  }
}

// =============================================================================================
// Jobs

// Whoever finds a class reads or changes it (its instances, its definition): a held class is
// decoded here, in place.
JobClass* JobEngine::findClass(const std::string& name) {
  auto it = model_.classes.find(name);
  return it == model_.classes.end() ? nullptr : &model_.classes.decode(it);
}

Instance* JobEngine::findInstance(const std::string& job, const std::string& instance) {
  JobClass* cls = findClass(job);
  if (!cls) return nullptr;
  auto it = cls->instances.find(instance);
  return it == cls->instances.end() ? nullptr : &it->second;
}

Instance& JobEngine::instanceFor(JobClass& cls, const std::string& name) {
  auto it = cls.instances.find(name);
  if (it != cls.instances.end()) return it->second;
  Instance& inst = cls.instances[name];
  inst.name = name;
  inst.def = cls.def;
  return inst;
}

void JobEngine::changeGoal(JobClass& cls, Instance& inst, Goal goal) {
  if (inst.goal == goal) return;
  Goal old = inst.goal;
  inst.goal = goal;
  log(Priority::Info, cls.def->name + (inst.name.empty() ? "" : " (" + inst.name + ")") +
                          " goal changed from " + goalName(old) + " to " + goalName(goal));
  // Only rest states (and `spawned`, whose child can be killed at once) move right away; every
  // other state moves when what it waits for has happened.
  if (goal == Goal::Start && inst.state == JobState::Waiting) {
    changeState(cls, inst, nextState(inst.state, goal, false));
  } else if (goal == Goal::Stop &&
             (inst.state == JobState::Running || inst.state == JobState::Spawned)) {
    changeState(cls, inst, nextState(inst.state, goal, mainAlive(inst)));
  } else if (goal == Goal::Respawn && inst.state == JobState::Running) {
    changeState(cls, inst, nextState(inst.state, goal, mainAlive(inst)));  // restart: via stopping
  }
}

void JobEngine::changeState(JobClass& cls, Instance& inst, JobState state) {
  while (inst.state != state) {
    JobState old = inst.state;
    inst.state = state;
    log(Priority::Info, cls.def->name + (inst.name.empty() ? "" : " (" + inst.name + ")") +
                            " state changed from " + jobStateName(old) + " to " + jobStateName(state));
    bool wait = false;
    enterState(cls, inst, state, wait);
    if (wait || inst.blocker) return;
    if (inst.state != state) return;  // a nested transition already moved it on
    if (inst.goal == Goal::Respawn) inst.goal = Goal::Start;
    state = nextState(inst.state, inst.goal, mainAlive(inst));
  }
}

// Entry action of `state`. Sets `wait` when the instance must rest there until something happens.
void JobEngine::enterState(JobClass& cls, Instance& inst, JobState& state, bool& wait) {
  const JobDef& def = *inst.def;
  // Readiness is awaited in `spawned` only: leaving it (ready, or stopped first) ends the wait.
  if (state != JobState::Spawned) {
    inst.readyDeadlineNs = 0;
    if (inst.readyState == ReadyState::Waiting) inst.readyState = ReadyState::None;
  }
  switch (state) {
    case JobState::Waiting: {
      std::vector<std::string> env = eventEnvFor(cls, inst, true);
      emitEvent("stopped", env);
      finished(cls, inst, false);
      removeJobCgroups(def, inst.name, model_.config);
      wait = true;
      break;
    }
    case JobState::Starting: {
      // A new run: the newest definition applies (docs/design.md, invariant 9), failure info is reset.
      inst.def = cls.def;
      inst.failed = false;
      inst.failReason.clear();
      inst.exitStatus = 0;
      inst.stopEnv.clear();
      inst.stopOn = inst.def->stopOn;
      eventExprReset(inst.stopOn);
      inst.readyState = ReadyState::None;
      inst.statusText.clear();
      inst.notifyErrno = 0;
      inst.blocker = emitEvent("starting", eventEnvFor(cls, inst, false));
      break;
    }
    case JobState::PreStarting:
      if (def.process[int(ProcessType::PreStart)].present()) spawnProcess(cls, inst, ProcessType::PreStart);
      break;
    case JobState::PreStart:
      wait = inst.procs[int(ProcessType::PreStart)].pid > 0;
      break;
    case JobState::Spawning:
      inst.traceState = TraceState::None;
      inst.traceForks = 0;
      if (def.process[0].present() && spawnProcess(cls, inst, ProcessType::Main) &&
          def.expect == ExpectType::Notify) {
        // From the fork: the deadline covers the child's setup and exec as well.
        inst.readyState = ReadyState::Waiting;
        inst.readyDeadlineNs = def.readyTimeoutMs ? sys::monotonicNs() + def.readyTimeoutMs * 1000000 : 0;
      }
      break;
    case JobState::Spawned: {
      const ProcessSlot& main = inst.procs[0];
      if (main.pid > 0 && (main.spawnValid || !expectMet(inst))) wait = true;
      break;
    }
    case JobState::PostStarting:
      if (def.process[int(ProcessType::PostStart)].present()) spawnProcess(cls, inst, ProcessType::PostStart);
      break;
    case JobState::PostStart:
      wait = inst.procs[int(ProcessType::PostStart)].pid > 0;
      break;
    case JobState::Running:
      emitEvent("started", eventEnvFor(cls, inst, false));
      if (!def.task) finished(cls, inst, false);
      if (mainAlive(inst) || !def.task) {
        wait = true;
      } else {
        inst.goal = Goal::Stop;  // a task without a main process is done at once
      }
      break;
    case JobState::PreStopping:
      if (def.process[int(ProcessType::PreStop)].present()) spawnProcess(cls, inst, ProcessType::PreStop);
      break;
    case JobState::PreStop:
      wait = inst.procs[int(ProcessType::PreStop)].pid > 0;
      break;
    case JobState::Stopping:
      inst.blocker = emitEvent("stopping", eventEnvFor(cls, inst, true));
      break;
    case JobState::Killed:
      if (mainAlive(inst)) {
        killMain(cls, inst, def.killSignal);
        inst.killProcess = ProcessType::Main;
        inst.killDeadlineNs = sys::monotonicNs() + def.killTimeoutMs * 1000000;
        wait = true;
      } else if (inst.procs[0].spawnValid) {
        // Its exit is already known (reaped, so nothing to signal), but its status pipe has not
        // answered: the outcome is applied when it does, and then the job moves on.
        wait = true;
      }
      break;
    case JobState::PostStopping:
      if (def.process[int(ProcessType::PostStop)].present()) spawnProcess(cls, inst, ProcessType::PostStop);
      break;
    case JobState::PostStop:
      wait = inst.procs[int(ProcessType::PostStop)].pid > 0;
      break;
  }
}

// The scans of the job timers skip classes held encoded (since a restore or an idle encoding):
// neither leaves a class with a kill timer or a readiness deadline encoded (decodeNow in
// serialize/codec.cpp), and a held class has not changed since.
int64_t JobEngine::nextTimerNs() const {
  int64_t earliest = 0;
  auto consider = [&](int64_t t) {
    if (t && (!earliest || t < earliest)) earliest = t;
  };
  for (auto& [n, cls] : model_.classes) {
    if (cls.encoded) continue;
    for (auto& [i, inst] : cls.instances) {
      consider(inst.killDeadlineNs);
      consider(inst.readyDeadlineNs);
    }
  }
  return earliest;
}

void JobEngine::runTimers(int64_t now) {
  for (auto& [n, cls] : model_.classes) {
    if (cls.encoded) continue;
    for (auto& [i, inst] : cls.instances) {
      if (inst.readyDeadlineNs && inst.readyDeadlineNs <= now) readinessTimedOut(cls, inst);
      if (inst.killDeadlineNs && inst.killDeadlineNs <= now) {
        inst.killDeadlineNs = 0;
        if (inst.procs[int(inst.killProcess)].pid > 0) {
          log(Priority::Info, n + " (" + i + ") did not stop in time: SIGKILL");
          killMain(cls, inst, SIGKILL);
        }
      }
    }
  }
}

void JobEngine::killMain(JobClass& cls, Instance& inst, int sig) {
  if (!mainAlive(inst)) return;  // never signal a pid that was already reaped
  pid_t pid = inst.procs[0].pid;
  // The whole process group when the main process leads one (it called setsid in setup);
  // never a group batond itself belongs to.
  if (getpgid(pid) == pid && kill(-pid, sig) == 0) return;
  kill(pid, sig);
}

std::vector<std::string> JobEngine::eventEnvFor(const JobClass& cls, const Instance& inst,
                                                 bool stopping) const {
  std::vector<std::string> env = {"JOB=" + cls.def->name, "INSTANCE=" + inst.name};
  if (stopping) {
    environ::set(env, "RESULT", inst.failed ? "failed" : "ok");
    if (inst.failed) {
      environ::set(env, "PROCESS", processTypeName(inst.failedProcess));
      if (WIFSIGNALED(inst.exitStatus)) {
        const char* name = sigabbrev_np(WTERMSIG(inst.exitStatus));
        environ::set(env, "EXIT_SIGNAL", name ? name : std::to_string(WTERMSIG(inst.exitStatus)));
      } else if (inst.failReason != "respawn limit reached" || inst.exitStatus) {
        environ::set(env, "EXIT_STATUS", std::to_string(WEXITSTATUS(inst.exitStatus)));
      }
    }
  }
  for (const std::string& name : inst.def->exportVars)
    if (auto v = environ::get(inst.env, name)) environ::set(env, name, *v);
  return env;
}

namespace {
// Below the kernel's MAX_ARG_STRLEN (32 pages) with room for "exec 9<&-" and the like.
constexpr size_t kMaxChrootScriptArg = 120 * 1024;
}  // namespace

bool JobEngine::buildPlan(const JobClass& cls, const Instance& inst, ProcessType type,
                           SpawnPlan& plan, std::string& pendingScript, std::string& error) {
  const JobDef& def = *inst.def;
  const ProcessDef& proc = def.process[int(type)];
  environ::Table env = inst.env;
  if (type == ProcessType::PreStop || type == ProcessType::PostStop) environ::merge(env, inst.stopEnv);
  // Only `expect notify` jobs get a NOTIFY_SOCKET (all their processes: a pre-start's message
  // changes nothing, but a daemon started from a script needs it); no job inherits batond's own.
  environ::erase(env, "NOTIFY_SOCKET");
  if (def.expect == ExpectType::Notify) environ::set(env, "NOTIFY_SOCKET", notifySocketPath(model_.config));
  plan.envp = env;

  if (proc.script) {
    std::string body = proc.command;
    plan.execPath = "/bin/sh";
    // Inside a chroot /proc is often not mounted, so the shell could not open /proc/self/fd/9:
    // there a script goes in as the -c argument (an argument may hold up to 128 KiB).
    const bool oneLine = body.find('\n') == std::string::npos || body.find('\n') == body.size() - 1;
    if (oneLine || (!def.chroot.empty() && body.size() < kMaxChrootScriptArg)) {
      while (!body.empty() && body.back() == '\n') body.pop_back();
      plan.argv = {"/bin/sh", "-e", "-c", body};
    } else {
      // Multi-line scripts go through a pipe the parent fills once the exec is confirmed.
      plan.argv = {"/bin/sh", "-e", "/proc/self/fd/" + std::to_string(kScriptFd)};
      plan.script = true;
      // The shell reads the script through its own descriptor of /proc/self/fd/9, so it can
      // close fd 9 first thing: the script's children get only the fds the job asks for.
      pendingScript = "exec " + std::to_string(kScriptFd) + "<&-\n" + body;
    }
  } else if (proc.command.find_first_of(kShellChars) != std::string::npos) {
    plan.execPath = "/bin/sh";
    plan.argv = {"/bin/sh", "-e", "-c", "exec " + proc.command};
  } else {
    plan.argv = splitWords(proc.command);
    if (plan.argv.empty()) {
      error = "empty command";
      return false;
    }
    plan.execPath = resolveExecutable(plan.argv[0], env);
  }

  plan.console = def.console;
  plan.consoleDevice = pid1_;
  // Jobs get the open-files limit batond started with; their own `limit nofile` comes after.
  if (model_.jobNofileSoft != 0 && model_.jobNofileSoft < fdLimitHard_)
    plan.limits.push_back({RLIMIT_NOFILE, model_.jobNofileSoft, fdLimitHard_});
  plan.limits.insert(plan.limits.end(), def.limits.begin(), def.limits.end());
  plan.hasOomScore = def.hasOomScore;
  plan.oomScore = def.oomScore;
  plan.hasNice = def.hasNice;
  plan.nice = def.nice;
  plan.umask = def.umask;
  plan.chroot = def.chroot;
  plan.chdir = def.chdir.empty() ? "/" : def.chdir;
  plan.trace = type == ProcessType::Main &&
               (def.expect == ExpectType::Fork || def.expect == ExpectType::Daemon);
  if (model_.config.testHooks)
    if (auto hold = environ::get(env, "BATON_TEST_HOLD_FIFO")) plan.holdPath = *hold;

  // Names are resolved here, in the parent: getpwnam and friends are not async-signal-safe.
  if (!def.setuid.empty()) {
    struct passwd* pw = getpwnam(def.setuid.c_str());
    if (!pw) {
      error = "setuid: unknown user '" + def.setuid + "'";
      return false;
    }
    plan.setUid = true;
    plan.uid = pw->pw_uid;
    plan.setGid = true;
    plan.gid = pw->pw_gid;
    int n = 64;
    std::vector<gid_t> groups(static_cast<size_t>(n), gid_t{0});
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n) < 0) {
      groups.resize(size_t(n));
      getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n);
    }
    groups.resize(size_t(std::max(n, 0)));
    plan.setGroups = true;
    plan.groups = groups;
  }
  if (!def.setgid.empty()) {
    struct group* gr = getgrnam(def.setgid.c_str());
    if (!gr) {
      error = "setgid: unknown group '" + def.setgid + "'";
      return false;
    }
    plan.setGid = true;
    plan.gid = gr->gr_gid;
    if (def.setuid.empty()) {
      plan.setGroups = true;
      plan.groups = {gr->gr_gid};
    }
  }
  if (!planCgroups(def, inst.name, env, model_.config, plan.cgroups, error)) return false;
  (void)cls;
  return true;
}

bool JobEngine::spawnProcess(JobClass& cls, Instance& inst, ProcessType type) {
  SpawnPlan plan;
  std::string script, error;
  SpawnedChild child;
  if (buildPlan(cls, inst, type, plan, script, error)) {
    child = spawnChild(plan);
    if (child.pid < 0) error = std::string("fork: ") + sys::errnoText(child.err);
  }
  if (child.pid < 0) {
    // Nothing was started: the job fails and (unless it is already stopping) goes to stop.
    failJob(cls, inst, type, 255 << 8, error);
    if (type != ProcessType::PreStop && type != ProcessType::PostStop) inst.goal = Goal::Stop;
    return false;
  }
  ProcessSlot& slot = inst.procs[int(type)];
  clearSlot(slot);  // never leak the fds of a previous occupant
  slot.pid = child.pid;
  slot.startTime = sys::procStartTime(child.pid);
  slot.spawnValid = true;
  slot.statusFd = child.statusFd;
  slot.scriptFd = child.scriptFd;
  slot.pendingScript = std::move(script);
  pids_[child.pid] = {cls.def->name, inst.name, type};
  if (type == ProcessType::Main && plan.trace) inst.traceState = TraceState::New;
  watches_.watch(child.statusFd, EPOLLIN, {Watch::Kind::StatusPipe, cls.def->name, inst.name, type});
  if (child.logFd >= 0) {
    LogPipe lp;
    lp.fd = child.logFd;
    lp.logName = jobCgroupName(cls.def->name, inst.name);  // same JOB[-INSTANCE] with '/' -> '_'
    model_.logPipes.push_back(lp);
    watches_.watch(child.logFd, EPOLLIN, {Watch::Kind::LogPipe});
  }
  log(Priority::Info, cls.def->name + " " + processTypeName(type) + " process (" +
                          std::to_string(child.pid) + ")");
  return true;
}

void JobEngine::clearSlot(ProcessSlot& slot) {
  if (slot.pid > 0) pids_.erase(slot.pid);
  if (slot.statusFd >= 0) watches_.unwatch(slot.statusFd);
  if (slot.scriptFd >= 0) watches_.unwatch(slot.scriptFd);
  sys::closeFd(slot.statusFd);
  sys::closeFd(slot.scriptFd);
  slot = ProcessSlot{};
}

void JobEngine::onStatusPipe(const std::string& job, const std::string& instance, ProcessType type) {
  JobClass* cls = findClass(job);
  Instance* inst = findInstance(job, instance);
  if (!cls || !inst) return;
  ProcessSlot& slot = inst->procs[int(type)];
  if (!slot.spawnValid || slot.statusFd < 0) return;
  char buf[64];
  ssize_t n = read(slot.statusFd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  std::string failure = n < 0 ? "status pipe: " + sys::errnoText(errno)
                              : describeSpawnFailure(buf, size_t(n));
  // The outcome is applied once: the slot stops being an in-flight spawn right here.
  slot.spawnValid = false;
  watches_.unwatch(slot.statusFd);
  sys::closeFd(slot.statusFd);
  bool early = slot.earlyExit;
  int earlyStatus = slot.earlyExitStatus;
  slot.earlyExit = false;

  if (!failure.empty()) {
    log(Priority::Warn, job + " " + processTypeName(type) + " process failed to start: " + failure);
    pids_.erase(slot.pid);  // its exit (if not yet seen) is an orphan's from now on
    slot.pid = 0;
    sys::closeFd(slot.scriptFd);
    slot.pendingScript.clear();
    // A process that never ran is a failure, never a reason to respawn.
    failJob(*cls, *inst, type, early ? earlyStatus : 255 << 8, failure);
    if (type != ProcessType::PreStop && type != ProcessType::PostStop) inst->goal = Goal::Stop;
    onProcessExit(*cls, *inst, type, early ? earlyStatus : 255 << 8);
    return;
  }

  if (!slot.pendingScript.empty() && slot.scriptFd >= 0) {
    watches_.watch(slot.scriptFd, EPOLLOUT, {Watch::Kind::ScriptPipe, job, instance, type});
    onScriptPipe(job, instance, type);
  }
  if (early) {
    onProcessExit(*cls, *inst, type, earlyStatus);
    return;
  }
  if (type == ProcessType::Main) maybeLeaveSpawned(*cls, *inst);
}

void JobEngine::onScriptPipe(const std::string& job, const std::string& instance, ProcessType type) {
  Instance* inst = findInstance(job, instance);
  if (!inst) return;
  ProcessSlot& slot = inst->procs[int(type)];
  if (slot.scriptFd < 0) return;
  while (!slot.pendingScript.empty()) {
    ssize_t n = write(slot.scriptFd, slot.pendingScript.data(), slot.pendingScript.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;  // wait for EPOLLOUT
    if (n <= 0) {
      slot.pendingScript.clear();  // the shell is gone (EPIPE): nothing more to feed
      break;
    }
    slot.pendingScript.erase(0, size_t(n));
  }
  watches_.unwatch(slot.scriptFd);
  sys::closeFd(slot.scriptFd);  // EOF tells the shell the script is complete
}

bool JobEngine::expectMet(const Instance& inst) {
  switch (inst.def->expect) {
    case ExpectType::None: return true;
    case ExpectType::Stop:
    case ExpectType::Fork:
    case ExpectType::Daemon: return inst.traceState == TraceState::Done;
    case ExpectType::Notify: return inst.readyState != ReadyState::Waiting;
  }
  return true;
}

void JobEngine::maybeLeaveSpawned(JobClass& cls, Instance& inst) {
  if (inst.state != JobState::Spawned) return;
  const ProcessSlot& main = inst.procs[0];
  if (main.spawnValid) return;
  if (main.pid > 0 && !expectMet(inst)) return;
  changeState(cls, inst, nextState(inst.state, inst.goal, main.pid > 0));
}

bool JobEngine::isNormalExit(const JobDef& def, int status) const {
  if (WIFSIGNALED(status))
    return std::find(def.normalExitSignals.begin(), def.normalExitSignals.end(), WTERMSIG(status)) !=
           def.normalExitSignals.end();
  int code = WEXITSTATUS(status);
  return std::find(def.normalExitCodes.begin(), def.normalExitCodes.end(), code) != def.normalExitCodes.end();
}

bool JobEngine::respawnAllowed(Instance& inst) {
  const JobDef& def = *inst.def;
  if (def.respawnLimit == 0) return true;
  int64_t now = sys::monotonicNs();
  int64_t window = int64_t(def.respawnIntervalSec) * 1000000000;
  if (inst.respawnCount == 0 || now - inst.respawnWindowStartNs > window) {
    inst.respawnWindowStartNs = now;
    inst.respawnCount = 0;
  }
  inst.respawnCount++;
  return inst.respawnCount <= def.respawnLimit;
}

void JobEngine::onProcessExit(JobClass& cls, Instance& inst, ProcessType type, int status) {
  const JobDef& def = *inst.def;
  ProcessSlot& slot = inst.procs[int(type)];
  clearSlot(slot);
  log(Priority::Info, def.name + " " + processTypeName(type) + " process " + statusText(status));
  const bool ok = status == 0;

  switch (type) {
    case ProcessType::Main: {
      if (inst.state == JobState::Killed) {
        inst.killDeadlineNs = 0;
        changeState(cls, inst, nextState(inst.state, inst.goal, false));
        return;
      }
      if (inst.readyState == ReadyState::Waiting) {
        // Gone before it said it was ready: a failed start (no respawn), like a failed spawn.
        failJob(cls, inst, ProcessType::Main, status,
                "main process " + statusText(status) + " before its readiness notification");
        inst.goal = Goal::Stop;
        changeState(cls, inst, nextState(inst.state, inst.goal, false));
        return;
      }
      const bool live = inst.state == JobState::Spawned || inst.state == JobState::PostStarting ||
                        inst.state == JobState::PostStart || inst.state == JobState::Running ||
                        inst.state == JobState::PreStopping || inst.state == JobState::PreStop;
      if (!live) return;  // e.g. died while `stopping` blocks: `killed` will find no process
      const bool normal = isNormalExit(def, status) || (def.task && ok);
      if (inst.goal == Goal::Start && def.respawn && !normal) {
        if (respawnAllowed(inst)) {
          log(Priority::Message, def.name + " main process ended, respawning");
          inst.goal = Goal::Respawn;
        } else {
          failJob(cls, inst, ProcessType::Main, status, "respawn limit reached");
          inst.goal = Goal::Stop;
        }
      } else {
        if (!ok && !isNormalExit(def, status)) failJob(cls, inst, ProcessType::Main, status, "");
        inst.goal = Goal::Stop;
      }
      // Wait for an auxiliary process that is still running in this state.
      if (inst.state == JobState::PostStart && inst.procs[int(ProcessType::PostStart)].pid > 0) return;
      if (inst.state == JobState::PreStop && inst.procs[int(ProcessType::PreStop)].pid > 0) return;
      if (inst.goal == Goal::Respawn) {
        inst.goal = Goal::Start;
        changeState(cls, inst, JobState::Stopping);
      } else {
        changeState(cls, inst, nextState(inst.state, inst.goal, false));
      }
      return;
    }
    case ProcessType::PreStart:
      if (inst.state != JobState::PreStart) return;
      if (!ok) {
        failJob(cls, inst, type, status, "");
        inst.goal = Goal::Stop;
      }
      changeState(cls, inst, nextState(inst.state, inst.goal, false));
      return;
    case ProcessType::PostStart:
      if (inst.state != JobState::PostStart) return;
      if (!ok) {
        failJob(cls, inst, type, status, "");
        inst.goal = Goal::Stop;
      }
      changeState(cls, inst, nextState(inst.state, inst.goal, mainAlive(inst)));
      return;
    case ProcessType::PreStop:
      if (inst.state != JobState::PreStop) return;
      if (!ok) log(Priority::Warn, def.name + " pre-stop process " + statusText(status));
      changeState(cls, inst, nextState(inst.state, inst.goal, mainAlive(inst)));
      return;
    case ProcessType::PostStop:
      if (inst.state != JobState::PostStop) return;
      if (!ok) {
        failJob(cls, inst, type, status, "");
        inst.goal = Goal::Stop;
      }
      changeState(cls, inst, nextState(inst.state, inst.goal, false));
      return;
  }
}

void JobEngine::failJob(JobClass& cls, Instance& inst, ProcessType type, int status, const std::string& why) {
  if (inst.failed) return;  // the first failure is the one that counts
  inst.failed = true;
  inst.failedProcess = type;
  inst.exitStatus = status;
  inst.failReason = why.empty() ? std::string(processTypeName(type)) + " process " + statusText(status) : why;
  log(Priority::Warn, cls.def->name + (inst.name.empty() ? "" : " (" + inst.name + ")") +
                          " failed: " + inst.failReason);
  finished(cls, inst, true);
}

// The instance reached its goal (or failed): release what it held.
void JobEngine::finished(JobClass& cls, Instance& inst, bool failed) {
  std::vector<Blocked> blocking;
  blocking.swap(inst.blocking);
  for (const Blocked& b : blocking) {
    if (b.kind == Blocked::Kind::Event) releaseEvent(b.eventId, failed);
    else outcomes_.jobFinished(b.request, failed);  // answered once the state settles
  }
}

// Every instance of every class is told to stop: each held class is decoded to reach them (and
// none is held again: idle encoding is off from now on).
void JobEngine::shutDown() {
  shuttingDown_ = true;
  for (auto it = model_.classes.begin(); it != model_.classes.end(); ++it) {
    JobClass& cls = model_.classes.decode(it);
    for (auto& [i, inst] : cls.instances) changeGoal(cls, inst, Goal::Stop);
  }
}

// Reads, changes nothing: a held class (none once shutDown decoded them all) through a decoded
// copy.
bool JobEngine::allAtRest() const {
  JobClass copy;
  for (auto& [n, cls] : model_.classes)
    for (auto& [i, inst] : ClassMap::readOnly(cls, copy).instances)
      if (activeState(inst)) return false;
  return true;
}

// Drop what nothing needs any more: named instances that came to rest, and classes whose file
// was removed once all their instances are at rest.
void JobEngine::sweepIdle() {
  // Held classes have nothing to sweep: neither a restore nor an idle encoding holds a class
  // with something to sweep (decodeNow in serialize/codec.cpp).
  ClassMap& classes = model_.classes;
  for (auto cit = classes.begin(); cit != classes.end();) {
    JobClass& cls = cit->second;
    if (cls.encoded) {
      ++cit;
      continue;
    }
    for (auto it = cls.instances.begin(); it != cls.instances.end();) {
      const Instance& inst = it->second;
      bool idle = !activeState(inst) && inst.blocking.empty();
      if (idle && (!inst.name.empty() || cls.deleted)) it = cls.instances.erase(it);
      else ++it;
    }
    if (cls.deleted && cls.instances.empty()) {
      log(Priority::Info, "job " + cit->first + " removed");
      cit = classes.erase(cit);
    } else {
      ++cit;
    }
  }
}

void JobEngine::armIdleEncode() {
  idleEncodeAtNs_ = model_.config.idleEncodeMs ? sys::monotonicNs() + int64_t(model_.config.idleEncodeMs) * 1000000 : 0;
}

void JobEngine::idleEncode(bool reexecInProgress) {
  idleEncodeAtNs_ = 0;  // armed again by the next activity
  if (reexecInProgress) {
    // The pre-flight recorded where the classes are: leave them there until the re-exec is over.
    armIdleEncode();
    return;
  }
  if (shuttingDown_) return;
  // Every class that can be held is: also one in the middle of a transition (a spawn in flight,
  // an event it holds). Like after a restore, the event that moves it on decodes it; a pass runs
  // at most once per idleEncodeMs, so a busy class costs one encode and one decode per pass.
  const size_t held = holdEncoded(model_.classes, [](const JobClass&) { return true; });
  // The decoded classes were many small allocations, and so is what requests built and freed
  // since the last pass (a list of every job decodes copies of them all, one after the other):
  // give the pages they leave back, also when there was nothing to hold.
  malloc_trim(0);
  if (held) log(Priority::Debug, "idle encoding: " + std::to_string(held) + " job classes held encoded");
}

// =============================================================================================
// Events

uint64_t JobEngine::emitEvent(const std::string& name, std::vector<std::string> env) {
  Event ev;
  ev.id = model_.nextEventId++;
  ev.name = name;
  ev.env = std::move(env);
  log(Priority::Debug, "event " + name + " emitted");
  model_.events.push_back(std::move(ev));
  return model_.events.back().id;
}

Event* JobEngine::findEvent(uint64_t id) {
  for (Event& e : model_.events)
    if (e.id == id) return &e;
  return nullptr;
}

void JobEngine::pollEvents() {
  bool progress = true;
  while (progress) {
    progress = false;
    std::vector<uint64_t> ids;
    for (const Event& e : model_.events) ids.push_back(e.id);
    for (uint64_t id : ids) {
      Event* e = findEvent(id);
      if (!e) continue;
      if (e->progress == EventProgress::Pending) {
        e->progress = EventProgress::Handling;
        handleEvent(id);
        progress = true;
        e = findEvent(id);
      }
      if (e && e->progress == EventProgress::Handling && e->blockers == 0) {
        finishEvent(id);
        progress = true;
      }
    }
  }
}

void JobEngine::handleEvent(uint64_t id) {
  Event ev = *findEvent(id);  // copy: the job engine may emit (and reallocate) meanwhile
  log(Priority::Info, "handling event " + ev.name);
  // A class held encoded (since a restore or an idle encoding) is decoded only if one of its
  // match nodes may match this event (its name pattern and its arguments; see
  // eventNodeMayMatch): an event that matches no node changes nothing in the class. So the
  // `started X` of one job decodes the jobs that wait for X, not every job that waits for some
  // `started`. The class at `it`, decoded, or nullptr if the event cannot change it.
  auto concerned = [&](ClassMap::iterator it) -> JobClass* {
    const JobClass& held = it->second;
    if (held.encoded &&
        !held.encoded->anyMatchNode(
            held.encodedIndex, [&](std::string_view p) { return globMatch(p, ev.name); },
            [&](const EventNode& n) { return eventNodeMayMatch(n, ev); }))
      return nullptr;
    return &model_.classes.decode(it);
  };
  // Stop first, then start (as Upstart does), so `stop on X` + `start on X` restarts.
  for (auto it = model_.classes.begin(); it != model_.classes.end(); ++it) {
    JobClass* found = concerned(it);
    if (!found) continue;
    JobClass& cls = *found;
    for (auto& [instName, inst] : cls.instances) {
      if (inst.goal == Goal::Stop || inst.stopOn.empty()) continue;
      if (!eventExprHandle(inst.stopOn, ev, inst.env) || !eventExprSatisfied(inst.stopOn)) continue;
      std::vector<uint64_t> matched = eventExprMatchedEvents(inst.stopOn);
      inst.stopEnv.clear();
      std::vector<std::string> names;
      for (uint64_t mid : matched) {
        if (Event* m = findEvent(mid)) {
          environ::merge(inst.stopEnv, m->env);
          names.push_back(m->name);
          m->blockers++;
          inst.blocking.push_back({Blocked::Kind::Event, mid, {}});
        }
      }
      std::string joined;
      for (auto& n : names) joined += (joined.empty() ? "" : " ") + n;
      environ::set(inst.stopEnv, "UPSTART_STOP_EVENTS", joined);
      eventExprReset(inst.stopOn);
      changeGoal(cls, inst, Goal::Stop);
    }
  }
  for (auto it = model_.classes.begin(); it != model_.classes.end(); ++it) {
    // A shutdown stops everything: events (e.g. `stopped X`) must not start jobs meanwhile.
    if (shuttingDown_) break;
    JobClass* found = concerned(it);
    if (!found) continue;
    JobClass& cls = *found;
    const std::string& jobName = it->first;
    if (cls.deleted || cls.startOn.empty()) continue;
    if (!eventExprHandle(cls.startOn, ev, cls.def->env) || !eventExprSatisfied(cls.startOn)) continue;
    std::vector<uint64_t> matched = eventExprMatchedEvents(cls.startOn);
    eventExprReset(cls.startOn);
    environ::Table extra;
    std::string names;
    for (uint64_t mid : matched) {
      if (Event* m = findEvent(mid)) {
        environ::merge(extra, m->env);
        names += (names.empty() ? "" : " ") + m->name;
      }
    }
    environ::Table env;
    std::string instName, error;
    if (!startEnvironment(cls, extra, names, env, instName, error)) {
      log(Priority::Warn, jobName + ": " + error);
      continue;
    }
    Instance& inst = instanceFor(cls, instName);
    if (inst.goal == Goal::Start) continue;
    inst.env = env;
    for (uint64_t mid : matched) {
      if (Event* m = findEvent(mid)) {
        m->blockers++;
        inst.blocking.push_back({Blocked::Kind::Event, mid, {}});
      }
    }
    changeGoal(cls, inst, Goal::Start);
  }
}

bool JobEngine::startEnvironment(const JobClass& cls, const environ::Table& extra,
                                  const std::string& events, environ::Table& env,
                                  std::string& instName, std::string& error) const {
  env.clear();
  environ::set(env, "PATH", kDefaultPath);
  if (const char* term = getenv("TERM")) environ::set(env, "TERM", term);
  environ::merge(env, cls.def->env);
  environ::merge(env, extra);
  if (!events.empty()) environ::set(env, "UPSTART_EVENTS", events);
  instName.clear();
  if (!cls.def->instance.empty() && !environ::expand(cls.def->instance, env, instName, error)) {
    error = "instance name: " + error;
    return false;
  }
  if (std::string bad = nameProblem("instance name", instName); !bad.empty()) {
    error = bad;
    return false;
  }
  const std::string& job = cls.def->name;
  environ::set(env, "UPSTART_JOB", job);
  environ::set(env, "UPSTART_INSTANCE", instName);
  environ::set(env, "BATON_JOB", job);
  environ::set(env, "BATON_INSTANCE", instName);
  return true;
}

void JobEngine::releaseEvent(uint64_t id, bool failed) {
  Event* e = findEvent(id);
  if (!e) return;
  if (failed) e->failed = true;
  if (e->blockers > 0) e->blockers--;
}

void JobEngine::finishEvent(uint64_t id) {
  Event* e = findEvent(id);
  if (!e) return;
  e->progress = EventProgress::Finished;
  Event ev = *e;
  model_.events.erase(model_.events.begin() + (e - model_.events.data()));
  log(Priority::Debug, "event " + ev.name + " finished" + (ev.failed ? " (failed)" : ""));
  for (const RequestRef& r : ev.waiters) outcomes_.eventFinished(r, ev.failed);
  // Jobs that waited on this event (their own starting/stopping) go on. (A class held encoded
  // is decoded only if one of its instances does.)
  for (auto it = model_.classes.begin(); it != model_.classes.end(); ++it) {
    const JobClass& held = it->second;
    if (held.encoded && !held.encoded->waitsOnEvent(held.encodedIndex, id)) continue;
    JobClass& cls = model_.classes.decode(it);
    for (auto& [instName, inst] : cls.instances) {
      if (inst.blocker != id) continue;
      inst.blocker = 0;
      if (inst.goal == Goal::Respawn) inst.goal = Goal::Start;
      changeState(cls, inst, nextState(inst.state, inst.goal, mainAlive(inst)));
    }
  }
  if (ev.failed && ev.name.find("/failed") == std::string::npos)
    emitEvent(ev.name + "/failed", ev.env);
}

// =============================================================================================
// Configuration

void JobEngine::loadConfiguration() {
  LoadedConfig loaded = loadConfigDir(model_.config.confDir);
  model_.configProblems = loaded.errors;
  configWarnings_ = loaded.warnings;
  for (const std::string& e : loaded.errors) log(Priority::Warn, e);
  // Log files are reopened on the next write (after a rename-style logrotate, say), and so is
  // their directory.
  for (auto& [name, fd] : logFiles_) close(fd);
  logFiles_.clear();
  logDir_.reset();
  struct stat dirStat;
  const bool dirReadable = stat(model_.config.confDir.c_str(), &dirStat) == 0 && S_ISDIR(dirStat.st_mode);
  for (auto& [name, def] : loaded.jobs) {
    JobClass* cls = findClass(name);
    if (!cls) {
      JobClass fresh;
      fresh.def = def;
      fresh.startOn = def->startOn;
      model_.classes.emplace(name, std::move(fresh));
      continue;
    }
    cls->deleted = false;
    if (cls->def->contentHash == def->contentHash && cls->def->path == def->path) continue;
    // A changed definition: running instances keep theirs (docs/design.md, invariant 9); the next start uses it.
    cls->def = def;
    cls->startOn = def->startOn;
  }
  for (auto it = model_.classes.begin(); it != model_.classes.end(); ++it) {
    const std::string& name = it->first;
    if (loaded.jobs.count(name)) continue;  // decoded above (findClass)
    // Gone from the loaded set. If its file is still there it failed to parse: keep the last
    // good definition (a typo must not make a job disappear); likewise when the whole directory
    // cannot be read. Only a removed file removes the job. (Its definition is read and it may
    // be marked: decoded.)
    JobClass& cls = model_.classes.decode(it);
    if (!dirReadable || access(cls.def->path.c_str(), F_OK) == 0) {
      log(Priority::Warn, name + ": keeping the last good definition");
      continue;
    }
    cls.deleted = true;
  }
  sweepIdle();
}

// =============================================================================================
// Logs

int JobEngine::logFileFd(const std::string& name) {
  auto it = logFiles_.find(name);
  if (it != logFiles_.end()) return it->second;
  std::string error;
  if (!logDir_) logDir_ = sys::openDirectory(model_.config.logDir, /*create=*/true, error);
  sys::Fd fd = logDir_ ? sys::openAppendAt(logDir_.get(), name + ".log", 0640, error) : sys::Fd();
  if (!fd) {
    // Reported once per cause: the writer retries on every chunk of output.
    if (error != logFileRefused_) log(Priority::Error, "job log " + model_.config.logDir + "/" + name + ".log: " + error);
    logFileRefused_ = error;
    return -1;
  }
  return logFiles_[name] = fd.release();
}

void JobEngine::writeLog(LogPipe& lp) {
  if (lp.unwritten.empty()) return;
  int fd = logFileFd(lp.logName);
  if (fd < 0) {
    // The log directory is not writable (yet): keep the bytes, bounded.
    constexpr size_t kMaxUnwritten = 1 << 20;
    if (lp.unwritten.size() > kMaxUnwritten) lp.unwritten.erase(0, lp.unwritten.size() - kMaxUnwritten);
    return;
  }
  if (sys::writeAll(fd, lp.unwritten.data(), lp.unwritten.size())) lp.unwritten.clear();
}

void JobEngine::onLogPipe(int fd) {
  auto it = std::find_if(model_.logPipes.begin(), model_.logPipes.end(),
                         [&](const LogPipe& lp) { return lp.fd == fd; });
  if (it == model_.logPipes.end()) return;
  char buf[65536];
  bool eof = false;
  for (int rounds = 0; rounds < 16; ++rounds) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      it->unwritten.append(buf, size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (n < 0 && errno != EAGAIN)) eof = true;
    break;
  }
  writeLog(*it);
  if (eof) {
    // Every writer is gone (the process and anything it left behind): the pipe is drained.
    watches_.unwatch(fd);
    close(fd);
    model_.logPipes.erase(it);
  }
}

}  // namespace baton
