#include "supervisor/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "base/syscalls.h"

namespace baton {

const char* spawnStepName(SpawnStep step) {
  switch (step) {
    case SpawnStep::Signals: return "signals";
    case SpawnStep::Session: return "setsid";
    case SpawnStep::Hold: return "hold";
    case SpawnStep::Stdio: return "console";
    case SpawnStep::Fds: return "fds";
    case SpawnStep::Limits: return "limit";
    case SpawnStep::Cgroup: return "cgroup";
    case SpawnStep::OomScore: return "oom score";
    case SpawnStep::Nice: return "nice";
    case SpawnStep::Umask: return "umask";
    case SpawnStep::Chroot: return "chroot";
    case SpawnStep::Chdir: return "chdir";
    case SpawnStep::Setgid: return "setgid";
    case SpawnStep::Setgroups: return "setgroups";
    case SpawnStep::Setuid: return "setuid";
    case SpawnStep::Ptrace: return "ptrace";
    case SpawnStep::Exec: return "exec";
  }
  return "setup";
}

std::string describeSpawnFailure(const char* data, size_t len) {
  if (len == 0) return {};
  SpawnFailure rec;
  if (len != sizeof rec) return "setup failed: malformed status record";
  memcpy(&rec, data, sizeof rec);
  if (rec.magic != kSpawnFailureMagic) return "setup failed: malformed status record";
  return std::string(spawnStepName(SpawnStep(rec.step))) + ": " + sys::errnoText(rec.err);
}

namespace {

// Everything the child touches, as plain C data built before fork().
struct Frozen {
  const SpawnPlan* plan;
  std::vector<char*> argv, envp;
  std::vector<const char*> cgroupDirs;
  std::vector<std::pair<const char*, const char*>> cgroupSettings;
  std::vector<const char*> procsFiles;
  char oomText[16];
  int oomLen = 0;
};

[[noreturn]] void failChild(int statusFd, SpawnStep step, int err) {
  SpawnFailure rec{kSpawnFailureMagic, uint32_t(step), err};
  // One write of 12 bytes to a pipe is atomic; nothing else can be done if it fails.
  ssize_t ignored = write(statusFd, &rec, sizeof rec);
  (void)ignored;
  _exit(255);
}

bool writeString(const char* path, const char* value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t len = strlen(value);
  ssize_t n = write(fd, value, len);
  int err = errno;
  close(fd);
  errno = err;
  return n == ssize_t(len);
}

// Move `fd` to a number >= 10 so it cannot collide with 0-2 or kScriptFd.
int moveHigh(int fd) {
  if (fd >= 10) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  return moved;
}

// The child. Async-signal-safe calls only from here on.
[[noreturn]] void runChild(const Frozen& f, int statusFd, int scriptRead, int logWrite) {
  const SpawnPlan& p = *f.plan;

  // batond blocks signals and ignores SIGPIPE; a job must start with a clean slate.
  sigset_t none;
  sigemptyset(&none);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, nullptr);  // fails harmlessly for the reserved real-time signals
  }
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) failChild(statusFd, SpawnStep::Signals, errno);

  if (setsid() < 0) failChild(statusFd, SpawnStep::Session, errno);

  if (!p.holdPath.empty()) {
    // Test hook: stay in setup until the hold FIFO releases the child. It sleeps in read(), so a
    // thousand held children cost no CPU. Closing the last writer releases every child held on
    // the FIFO at once (EOF), and any that comes later; a byte written releases one. The open
    // does not wait for a writer: a FIFO without one, or a regular file, lets the child through.
    int hold = open(p.holdPath.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (hold < 0 || fcntl(hold, F_SETFL, 0) != 0) failChild(statusFd, SpawnStep::Hold, errno);
    char byte;
    ssize_t n;
    do n = read(hold, &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n < 0) failChild(statusFd, SpawnStep::Hold, errno);
    close(hold);
  }

  statusFd = moveHigh(statusFd);
  if (statusFd < 0) _exit(255);
  if (scriptRead >= 0 && (scriptRead = moveHigh(scriptRead)) < 0)
    failChild(statusFd, SpawnStep::Fds, errno);
  if (logWrite >= 0 && (logWrite = moveHigh(logWrite)) < 0)
    failChild(statusFd, SpawnStep::Fds, errno);

  // stdio
  int in = -1, out = -1;
  switch (p.console) {
    case ConsoleType::None:
      in = out = open("/dev/null", O_RDWR | O_CLOEXEC);
      break;
    case ConsoleType::Log:
      in = open("/dev/null", O_RDONLY | O_CLOEXEC);
      out = logWrite;
      break;
    case ConsoleType::Output:
    case ConsoleType::Owner:
      if (p.consoleDevice) {
        in = out = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
      }
      break;
  }
  if (p.console == ConsoleType::None || p.console == ConsoleType::Log || p.consoleDevice) {
    if (in < 0 || out < 0) failChild(statusFd, SpawnStep::Stdio, errno);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
      failChild(statusFd, SpawnStep::Stdio, errno);
    // `console owner`: the job becomes the console's controlling process (Upstart semantics).
    if (p.console == ConsoleType::Owner && p.consoleDevice) ioctl(0, TIOCSCTTY, 1);
  }
  if (scriptRead >= 0 && dup2(scriptRead, kScriptFd) < 0) failChild(statusFd, SpawnStep::Fds, errno);
  // Only 0, 1, 2 (and the script fd) may cross exec: everything else becomes close-on-exec.
  if (syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) != 0) {
    for (int fd = 3; fd < 1024; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (scriptRead >= 0) {
    int flags = fcntl(kScriptFd, F_GETFD);
    fcntl(kScriptFd, F_SETFD, flags & ~FD_CLOEXEC);
  }

  for (const RLimitDef& l : p.limits) {
    struct rlimit rl;
    rl.rlim_cur = l.soft == UINT64_MAX ? RLIM_INFINITY : rlim_t(l.soft);
    rl.rlim_max = l.hard == UINT64_MAX ? RLIM_INFINITY : rlim_t(l.hard);
    if (setrlimit(l.resource, &rl) != 0) failChild(statusFd, SpawnStep::Limits, errno);
  }
  // cgroups: the child places itself, so a slow cgroup filesystem never blocks batond.
  for (const char* dir : f.cgroupDirs)
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) failChild(statusFd, SpawnStep::Cgroup, errno);
  for (auto& [path, value] : f.cgroupSettings)
    if (!writeString(path, value)) failChild(statusFd, SpawnStep::Cgroup, errno);
  for (const char* procs : f.procsFiles)
    if (!writeString(procs, "0")) failChild(statusFd, SpawnStep::Cgroup, errno);
  if (p.hasOomScore && !writeString("/proc/self/oom_score_adj", f.oomText))
    failChild(statusFd, SpawnStep::OomScore, errno);
  if (p.hasNice && setpriority(PRIO_PROCESS, 0, p.nice) != 0)
    failChild(statusFd, SpawnStep::Nice, errno);
  umask(mode_t(p.umask));
  if (!p.chroot.empty() && chroot(p.chroot.c_str()) != 0) failChild(statusFd, SpawnStep::Chroot, errno);
  if (chdir(p.chdir.empty() ? "/" : p.chdir.c_str()) != 0) failChild(statusFd, SpawnStep::Chdir, errno);
  if (p.setGid && setgid(p.gid) != 0) failChild(statusFd, SpawnStep::Setgid, errno);
  if (p.setGroups && syscall(SYS_setgroups, p.groups.size(), p.groups.data()) != 0)
    failChild(statusFd, SpawnStep::Setgroups, errno);
  // The shell re-opens the script pipe through /proc/self/fd: it must be the job user's.
  if (scriptRead >= 0 && p.setUid && fchown(kScriptFd, p.uid, p.setGid ? p.gid : gid_t(-1)) != 0)
    failChild(statusFd, SpawnStep::Fds, errno);
  if (p.setUid && setuid(p.uid) != 0) failChild(statusFd, SpawnStep::Setuid, errno);
  if (p.trace && ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0)
    failChild(statusFd, SpawnStep::Ptrace, errno);

  execve(p.execPath.c_str(), f.argv.data(), f.envp.data());
  failChild(statusFd, SpawnStep::Exec, errno);
}

}  // namespace

SpawnedChild spawnChild(const SpawnPlan& plan) {
  SpawnedChild result;
  Frozen f;
  f.plan = &plan;
  for (const std::string& a : plan.argv) f.argv.push_back(const_cast<char*>(a.c_str()));
  f.argv.push_back(nullptr);
  for (const std::string& e : plan.envp) f.envp.push_back(const_cast<char*>(e.c_str()));
  f.envp.push_back(nullptr);
  for (const CgroupPlacement& c : plan.cgroups) {
    for (const std::string& d : c.mkdirs) f.cgroupDirs.push_back(d.c_str());
    for (auto& [k, v] : c.settings) f.cgroupSettings.emplace_back(k.c_str(), v.c_str());
    f.procsFiles.push_back(c.procsFile.c_str());
  }
  snprintf(f.oomText, sizeof f.oomText, "%d", plan.oomScore);

  int status[2], script[2] = {-1, -1}, log[2] = {-1, -1};
  if (pipe2(status, O_CLOEXEC) != 0) { result.err = errno; return result; }
  auto closeAll = [&] {
    for (int* p : {status, script, log}) { sys::closeFd(p[0]); sys::closeFd(p[1]); }
  };
  if ((plan.script && pipe2(script, O_CLOEXEC) != 0) ||
      (plan.console == ConsoleType::Log && pipe2(log, O_CLOEXEC) != 0)) {
    result.err = errno;
    closeAll();
    return result;
  }

  pid_t pid = fork();
  if (pid < 0) {
    result.err = errno;
    closeAll();
    return result;
  }
  if (pid == 0) runChild(f, status[1], script[0], log[1]);

  sys::closeFd(status[1]);
  sys::closeFd(script[0]);
  sys::closeFd(log[1]);
  for (int fd : {status[0], script[1], log[0]})
    if (fd >= 0) sys::setNonblock(fd);
  result.pid = pid;
  result.statusFd = status[0];
  result.scriptFd = script[1];
  result.logFd = log[0];
  return result;
}

}  // namespace baton
