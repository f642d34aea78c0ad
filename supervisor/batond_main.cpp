// batond: the baton supervisor.
//
// Exit codes: 0 clean shutdown (not PID 1), 1 cannot start serving, 2 usage error.
// As PID 1, batond never exits on its own.
#include <signal.h>
#include <sys/wait.h>
#include <malloc.h>
#include <unistd.h>

#include <errno.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <iostream>
#include <string>

#include "migrate/formats.h"
#include "serialize/snapshot.h"
#include "supervisor/supervisor.h"
#include "base/log_priority.h"
#include "base/syscalls.h"

namespace {

const char* kUsage =
    "usage: batond [OPTIONS]\n"
    "  --confdir DIR       job files (default /etc/baton/jobs)\n"
    "  --socket PATH       control socket (default /run/baton/control; non-root:\n"
    "                      $XDG_RUNTIME_DIR/baton/control)\n"
    "  --logdir DIR        job logs (default /var/log/baton; non-root: $HOME/.local/state/baton)\n"
    "  --cgroup-base NAME  parent group of job cgroups in every hierarchy (default baton)\n"
    "  --cgroup-root DIR   where the cgroup hierarchies are mounted (default /sys/fs/cgroup)\n"
    "  --log-priority P    debug|info|message|warn|error|fatal (default message)\n"
    "  --debug, --verbose  shorthands for --log-priority debug / info\n"
    "  --test-hooks        honour test-only job variables (BATON_TEST_HOLD)\n"
    "  --idle-encode-ms MS this long after activity, hold the jobs at rest encoded again\n"
    "                      (about a third of the memory; default 10000, 0 = never)\n"
    "  --version           print the version and exit\n"
    "  --state-formats     print the snapshot formats this binary writes and reads, exit\n"
    "  --verify-state FD   pre-flight: check the snapshot on FD, print a verdict, exit 0 if it\n"
    "                      can be restored, 1 if not\n"
    "  --restore-fd FD     (internal) take over the state handed across a re-exec\n"
    "  --epoll-fd FD       (internal) the previous image's epoll instance, adopted on restore\n"
    "  --preverified-classes (internal) the restore skips the checks of the job classes its\n"
    "                      pre-flight verified (listed in the snapshot)\n"
    "  --sweep-on-sigchld  (internal) the restore sweeps for exited children only if SIGCHLD\n"
    "                      is pending (the previous image promises it is when needed)\n"
    "  --exec-floor        (benchmarks) exit at the top of main\n"
    "  --restart [--state-fd FD]  take over from Upstart 1.x PID 1 (its re-exec contract):\n"
    "                      import its JSON state from FD; no startup event\n";

// --verify-state: never crashes on bad input; says why a snapshot is refused.
int verifyState(int fd) {
  baton::Snapshot snapshot;
  baton::Model model;
  std::string error;
  if (!snapshot.open(fd, error) || !baton::loadSnapshot(snapshot, model, error)) {
    std::cout << "refused: " << error << "\n";
    return 1;
  }
  size_t instances = 0;
  for (auto& [n, cls] : model.classes) instances += cls.instances.size();
  std::cout << "ok: format " << snapshot.header().format << ", " << model.classes.size() << " jobs, "
            << instances << " instances, " << snapshot.fds().size() << " fds, " << snapshot.size()
            << " bytes\n";
  return 0;
}

bool parseInt(const std::string& s, long long& out) {
  char* end = nullptr;
  errno = 0;
  out = strtoll(s.c_str(), &end, 10);
  return !s.empty() && *end == 0 && errno == 0;
}

std::string selfPath() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, size_t(n));
}

}  // namespace

int main(int argc, char** argv) {
  // Benchmark floor: the cost of exec'ing this binary and reaching main, nothing else.
  if (argc == 2 && argv[1][0] == '-' && strcmp(argv[1], "--exec-floor") == 0) return 0;
  const int64_t mainStart = baton::sys::monotonicNs();
  // A fixed mmap threshold: glibc otherwise raises it after each large free, up to 32 MB, and a
  // long-running batond would then keep its large buffers (snapshots, idle-encoded job classes)
  // in the heap, where a free rarely gives memory back.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  baton::Options opts;
  opts.mainStartNs = mainStart;
  baton::RestoreArgs restore;
  // Upstart's re-exec contract: `--restart --state-fd N` (what Upstart 1.6-1.13 passes when it
  // re-execs /sbin/init). Upstart passes its own other flags too: ignore the ones we do not know.
  bool upstartRestart = false;
  int upstartStateFd = -1;
  for (int i = 1; i < argc; ++i) upstartRestart |= strcmp(argv[i], "--restart") == 0;
  const bool root = geteuid() == 0;
  if (!root) {
    if (const char* xdg = getenv("XDG_RUNTIME_DIR")) opts.config.socketPath = std::string(xdg) + "/baton/control";
    if (const char* home = getenv("HOME")) opts.config.logDir = std::string(home) + "/.local/state/baton";
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        std::cerr << "batond: " << a << " needs a value\n" << kUsage;
        exit(2);
      }
      out = argv[++i];
    };
    if (a == "--confdir") value(opts.config.confDir);
    else if (a == "--socket") { value(opts.config.socketPath); opts.socketGiven = true; }
    else if (a == "--logdir") value(opts.config.logDir);
    else if (a == "--cgroup-base") value(opts.config.cgroupBase);
    else if (a == "--cgroup-root") value(opts.config.cgroupRoot);
    else if (a == "--log-priority") value(opts.config.logPriority);
    else if (a == "--debug") opts.config.logPriority = baton::logPriorityName(baton::LogPriority::Debug);
    else if (a == "--verbose") opts.config.logPriority = baton::logPriorityName(baton::LogPriority::Info);
    else if (a == "--test-hooks") opts.config.testHooks = true;
    else if (a == "--idle-encode-ms") {
      std::string v;
      long long n = -1;
      value(v);
      if (!parseInt(v, n) || n < 0 || n > 86400000) {
        std::cerr << "batond: --idle-encode-ms needs milliseconds from 0 to 86400000\n";
        return 2;
      }
      opts.config.idleEncodeMs = uint32_t(n);
    }
    else if (a == "--state-formats") {
      std::cout << baton::stateFormatsText();
      return 0;
    } else if (a == "--verify-state" || a == "--restore-fd" || a == "--rollback-fd") {
      std::string v;
      long long n = -1;
      value(v);
      if (!parseInt(v, n) || n < 0 || n > 1 << 20) {
        std::cerr << "batond: " << a << " needs a file descriptor number\n";
        return 2;
      }
      if (a == "--verify-state") return verifyState(int(n));
      (a == "--restore-fd" ? restore.snapshotFd : restore.rollbackFd) = int(n);
    } else if (const baton::HandoffOptionInfo* h = baton::findHandoffFlag(a)) {
      restore.handoff.options.add(h->option);
      if (h->fd) {
        std::string v;
        long long n = -1;
        value(v);
        if (!parseInt(v, n) || n < 0 || n > 1 << 20) {
          std::cerr << "batond: " << a << " needs a file descriptor number\n";
          return 2;
        }
        restore.handoff.*h->fd = int(n);
      }
    } else if (a == "--reexec-phases") {
      std::string v;
      value(v);
      long long s1 = 0, s2 = 0, s3 = 0;
      if (sscanf(v.c_str(), "%lld:%lld:%lld", &s1, &s2, &s3) == 3) {
        restore.serializeNs = s1;
        restore.preflightNs = s2;
        restore.execStartNs = s3;
      }
    } else if (a == "--rolled-back-because") value(restore.rolledBackBecause);
    else if (a == "--test-refuse-restore") restore.testRefuseRestore = true;
    else if (a == "--restart") continue;
    else if (a == "--error") opts.config.logPriority = baton::logPriorityName(baton::LogPriority::Error);
    else if (a == "--state-fd") {
      std::string v;
      long long n = -1;
      value(v);
      if (!parseInt(v, n) || n < 0 || n > 1 << 20) {
        std::cerr << "batond: --state-fd needs a file descriptor number\n";
        return 2;
      }
      upstartStateFd = int(n);
    }
    else if (a == "--test-refuse-rollback") restore.testRefuseRollback = true;
    else if (a == "--version") {
      std::cout << "batond (baton) " << BATON_VERSION << "\n";
      return 0;
    } else if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (upstartRestart) {
      std::cerr << "batond: ignoring Upstart option '" << a << "'\n";
    } else {
      std::cerr << "batond: unknown option '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  if (opts.config.cgroupBase.empty() || opts.config.cgroupBase[0] == '/' ||
      opts.config.cgroupBase.find("..") != std::string::npos) {
    std::cerr << "batond: --cgroup-base must be a relative group name (no '/' at the start, no '..')\n";
    return 2;
  }
  if (!baton::parseLogPriority(opts.config.logPriority)) {
    std::cerr << "batond: unknown log priority '" << opts.config.logPriority << "' ("
              << baton::logPriorityNames(", ") << ")\n";
    return 2;
  }
  opts.selfPath = selfPath();
  baton::Supervisor supervisor(std::move(opts));
  if (restore.snapshotFd >= 0) {
    supervisor.restore(restore);  // does not return on failure (rollback or wait-only)
    return supervisor.run();
  }
  const bool started = upstartStateFd >= 0 ? supervisor.takeOverFromUpstart(upstartStateFd)
                                            // --restart without state: Upstart's stateless re-exec
                                            : supervisor.start(/*emitStartup=*/!upstartRestart);
  if (!started) {
    if (getpid() == 1) {
      // PID 1 must not exit (the kernel would panic): stay, and keep reaping orphans.
      sigset_t all;
      sigfillset(&all);
      sigprocmask(SIG_UNBLOCK, &all, nullptr);
      for (;;) {
        if (waitpid(-1, nullptr, 0) < 0) pause();
      }
    }
    return 1;
  }
  return supervisor.run();
}
