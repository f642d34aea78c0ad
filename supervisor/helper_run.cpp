#include "supervisor/helper_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "supervisor/syscalls.h"

namespace baton {

std::string HelperResult::describe() const {
  std::string out = output;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (!started) return "could not start: " + out;
  if (timedOut) return "did not answer in time (killed)" + (out.empty() ? "" : ": " + out);
  std::string what = WIFSIGNALED(status) ? "crashed (signal " + std::to_string(WTERMSIG(status)) + ")"
                                         : "exited with status " + std::to_string(WEXITSTATUS(status));
  return what + (out.empty() ? "" : ": " + out);
}

HelperResult runHelper(const std::vector<std::string>& argv, int passFd, int64_t timeoutMs) {
  HelperResult r;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    r.output = sys::errnoText(errno);
    return r;
  }
  pid_t pid = fork();
  if (pid < 0) {
    r.output = "fork: " + sys::errnoText(errno);
    close(out[0]);
    close(out[1]);
    return r;
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    sigset_t none;
    sigemptyset(&none);
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0) _exit(127);
    if (passFd >= 0 && dup2(passFd, 3) < 0) _exit(127);
    syscall(SYS_close_range, passFd >= 0 ? 4u : 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
    execv(args[0], args.data());
    const char msg[] = "cannot execute the target\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
  }
  r.started = true;
  close(out[1]);
  const int64_t deadline = sys::monotonicNs() + timeoutMs * 1000000;
  bool eof = false;
  while (!eof) {
    int64_t left = (deadline - sys::monotonicNs()) / 1000000;
    if (left <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    int n = poll(&p, 1, int(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char buf[4096];
    ssize_t got = read(out[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) eof = true;
    else if (r.output.size() < 65536) r.output.append(buf, size_t(got));
  }
  close(out[0]);
  // Reap it: it closed its output, or the deadline passed.
  for (;;) {
    pid_t w = waitpid(pid, &r.status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (sys::monotonicNs() >= deadline) {
      r.timedOut = true;
      kill(pid, SIGKILL);
      waitpid(pid, &r.status, 0);
      break;
    }
    usleep(1000);
  }
  return r;
}

}  // namespace baton
