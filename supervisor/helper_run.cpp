#include "supervisor/helper_run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "base/syscalls.h"

namespace baton {

namespace {
// What the child writes when execv fails, followed by errno in decimal (the child may only make
// async-signal-safe calls, so the parent turns the number into text).
constexpr char kExecFailed[] = "cannot execute the target: errno ";
}  // namespace

std::string describeHelperOutcome(int status, bool timedOut, const std::string& output) {
  std::string out = output;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (out.rfind(kExecFailed, 0) == 0) {
    const int err = atoi(out.c_str() + sizeof kExecFailed - 1);
    out = "cannot execute the target: " + sys::errnoText(err);
  }
  if (timedOut) return "did not answer in time (killed)" + (out.empty() ? "" : ": " + out);
  std::string what = WIFSIGNALED(status) ? "crashed (signal " + std::to_string(WTERMSIG(status)) + ")"
                                         : "exited with status " + std::to_string(WEXITSTATUS(status));
  return what + (out.empty() ? "" : ": " + out);
}

HelperProcess startHelper(const std::vector<std::string>& argv, int passFd) {
  HelperProcess h;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    h.error = "pipe: " + sys::errnoText(errno);
    return h;
  }
  pid_t pid = fork();
  if (pid < 0) {
    h.error = "fork: " + sys::errnoText(errno);
    close(out[0]);
    close(out[1]);
    return h;
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
    // "cannot execute the target: errno N\n", with N written by hand (no snprintf after fork).
    char msg[sizeof kExecFailed + 16];
    memcpy(msg, kExecFailed, sizeof kExecFailed - 1);
    size_t len = sizeof kExecFailed - 1;
    char digits[12];
    int n = 0;
    for (unsigned e = unsigned(errno); n == 0 || e > 0; e /= 10) digits[n++] = char('0' + e % 10);
    while (n > 0) msg[len++] = digits[--n];
    msg[len++] = '\n';
    ssize_t ignored = write(2, msg, len);
    (void)ignored;
    _exit(127);
  }
  close(out[1]);
  sys::setNonblock(out[0]);
  h.pid = pid;
  h.outFd.reset(out[0]);
  return h;
}

}  // namespace baton
