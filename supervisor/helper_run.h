// Running a short-lived helper program synchronously under a deadline: the re-exec target's
// `--state-formats` and `--verify-state FD` (pre-flight). The helper gets /dev/null as stdin, a
// pipe as stdout+stderr, optionally one fd as fd 3, and nothing else. A helper still running at
// the deadline is killed (SIGKILL) and reaped.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace baton {

struct HelperResult {
  bool started = false;     // fork/exec worked (exec failure shows as exit 127 + message)
  bool timedOut = false;
  int status = 0;           // wait status
  std::string output;       // stdout + stderr (bounded)
  std::string describe() const;  // "exited with status 1: <output>", "timed out after ..."
};

HelperResult runHelper(const std::vector<std::string>& argv, int passFd, int64_t timeoutMs);

}  // namespace baton
