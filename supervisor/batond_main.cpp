// batond: the baton supervisor.
//
// Exit codes: 0 clean shutdown (not PID 1), 1 cannot start serving, 2 usage error.
// As PID 1, batond never exits on its own. Its flags: supervisor/batond_args.h.
#include <signal.h>
#include <sys/auxv.h>
#include <sys/wait.h>
#include <malloc.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "migrate/formats.h"
#include "serialize/snapshot.h"
#include "supervisor/batond_args.h"
#include "supervisor/supervisor.h"
#include "base/syscalls.h"

namespace {

// --verify-state: never crashes on bad input; says why a snapshot is refused.
int verifyState(int fd) {
  baton::Snapshot snapshot;
  baton::Model model;
  std::string error;
  if (!snapshot.open(fd, error) || !baton::loadSnapshot(snapshot, model, error)) {
    std::cout << "refused: " << error << "\n";
    return 1;
  }
  std::cout << "ok: format " << snapshot.header().format << ", " << model.classes.size() << " jobs, "
            << model.classes.instanceCount() << " instances, " << snapshot.fds().size() << " fds, "
            << snapshot.size() << " bytes\n";
  return 0;
}

std::string selfPath() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) return std::string(buf, size_t(n));
  // No /proc yet (PID 1 early in boot): the path the kernel executed, if it is absolute and not
  // the /dev/fd/N of a rollback's fexecve (which names no file once that fd is gone).
  const char* execfn = reinterpret_cast<const char*>(getauxval(AT_EXECFN));
  if (!execfn || execfn[0] != '/' || strncmp(execfn, "/dev/fd/", 8) == 0) return {};
  return execfn;
}

}  // namespace

int main(int argc, char** argv) {
  // Benchmark floor: the cost of exec'ing this binary and reaching main, nothing else. (In the
  // flag table for --help; as an argument among others it is an unknown option.)
  if (argc == 2 && argv[1][0] == '-' && strcmp(argv[1], "--exec-floor") == 0) return 0;
  const int64_t mainStart = baton::sys::monotonicNs();
  // A fixed mmap threshold: glibc otherwise raises it after each large free, up to 32 MB, and a
  // long-running batond would then keep its large buffers (snapshots, idle-encoded job classes)
  // in the heap, where a free rarely gives memory back.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  baton::BatondArgs args;
  baton::Options& opts = args.options;
  opts.mainStartNs = mainStart;
  if (geteuid() != 0) {
    if (const char* xdg = getenv("XDG_RUNTIME_DIR")) opts.config.socketPath = std::string(xdg) + "/baton/control";
    if (const char* home = getenv("HOME")) opts.config.logDir = std::string(home) + "/.local/state/baton";
  }
  baton::parseBatondArgs(argc, argv, args, std::cout, std::cerr);
  if (args.action == baton::BatondAction::Exit) return args.exitCode;
  if (args.action == baton::BatondAction::VerifyState) return verifyState(args.verifyStateFd);
  // The limits on control clients are not in the snapshot: the limit flags given at start travel
  // in the environment, which execve (a re-exec, a rollback) hands on (docs/batond.md).
  if (args.restore.snapshotFd >= 0)
    if (const char* carried = getenv(baton::kCarriedLimitsVar)) baton::parseCarriedLimits(carried, args, std::cerr);
  if (args.limitFlags.empty()) unsetenv(baton::kCarriedLimitsVar);
  else setenv(baton::kCarriedLimitsVar, args.limitFlags.c_str(), 1);
  opts.selfPath = selfPath();
  baton::Supervisor supervisor(std::move(opts));
  if (args.restore.snapshotFd >= 0) {
    supervisor.restore(args.restore);  // does not return on failure (rollback or wait-only)
    return supervisor.run();
  }
  const bool started = args.upstartStateFd >= 0 ? supervisor.takeOverFromUpstart(args.upstartStateFd)
                                                 // --restart without state: Upstart's stateless re-exec
                                                 : supervisor.start(/*emitStartup=*/!args.upstartRestart);
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
