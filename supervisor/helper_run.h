// Short-lived helper programs of a re-exec: the target's `--state-formats` and `--verify-state FD`
// (pre-flight). They run asynchronously: batond keeps serving while they work. A helper gets
// /dev/null as stdin, a pipe as stdout+stderr, optionally one fd as fd 3, and nothing else.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/fd.h"

namespace baton {

struct HelperProcess {
  pid_t pid = -1;     // -1: could not be started (see error)
  sys::Fd outFd;      // read end of its output, close-on-exec, non-blocking
  std::string error;
};

// Fork and exec `argv` (argv[0] is the path); never blocks on the child.
HelperProcess startHelper(const std::vector<std::string>& argv, int passFd);

// "exited with status 1: <output>", "crashed (signal 11)", "did not answer in time (killed)".
std::string describeHelperOutcome(int status, bool timedOut, const std::string& output);

}  // namespace baton
