// Asynchronous spawning of job processes.
//
// The parent prepares everything (argv, envp, resolved executable path, user and group ids,
// cgroup paths, limits) into a SpawnPlan, then forks. The child performs its whole setup with
// async-signal-safe calls only and execs. It reports a setup failure over a close-on-exec status
// pipe as one fixed-size SpawnFailure record and exits 255; a successful exec closes the pipe, so
// the parent sees EOF. The parent never waits for the child: it returns the pids and fds and the
// event loop watches the status pipe.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "schema/model.h"

namespace baton {

// Setup steps of the child (what a failure record names). Values are part of the wire record
// and append-only; the child performs them roughly in this order (fds are moved before stdio).
enum class SpawnStep : uint32_t {
  Signals = 1, Session, Hold, Stdio, Fds, Limits, Cgroup, OomScore, Nice, Umask, Chroot, Chdir,
  Setgid, Setgroups, Setuid, Ptrace, Exec
};
const char* spawnStepName(SpawnStep step);

struct SpawnFailure {
  uint32_t magic;    // kSpawnFailureMagic
  uint32_t step;     // SpawnStep
  int32_t err;       // errno
};
constexpr uint32_t kSpawnFailureMagic = 0x4241544eu;  // "BATN"
constexpr int kScriptFd = 9;  // the shell reads a multi-line script from this fd

struct CgroupPlacement {
  std::vector<std::string> mkdirs;                           // created in order (EEXIST is fine)
  std::vector<std::pair<std::string, std::string>> settings;  // file path, value
  std::string procsFile;                                     // ".../cgroup.procs"
};

struct SpawnPlan {
  std::string execPath;                 // resolved absolute path
  std::vector<std::string> argv, envp;
  ConsoleType console = ConsoleType::Log;
  bool consoleDevice = false;           // output/owner: open /dev/console (PID 1); else inherit
  std::vector<RLimitDef> limits;
  std::vector<CgroupPlacement> cgroups;
  bool hasOomScore = false; int oomScore = 0;
  bool hasNice = false; int nice = 0;
  uint32_t umask = 022;
  std::string chroot, chdir = "/";
  bool setGid = false; gid_t gid = 0;
  bool setGroups = false; std::vector<gid_t> groups;
  bool setUid = false; uid_t uid = 0;
  bool trace = false;                   // PTRACE_TRACEME before exec (expect fork/daemon)
  std::string holdPath;                 // test hook: read this FIFO until EOF or a byte
  bool script = false;                  // a script is fed through kScriptFd
};

struct SpawnedChild {
  pid_t pid = -1;
  int statusFd = -1;   // read end, close-on-exec, non-blocking
  int scriptFd = -1;   // write end, close-on-exec, non-blocking (plan.script only)
  int logFd = -1;      // read end of the output pipe (console log only)
  int err = 0;         // fork/pipe failure (pid == -1)
};

// Fork the child described by `plan`. Never blocks on the child.
SpawnedChild spawnChild(const SpawnPlan& plan);

// Decode what a status pipe delivered. Returns an empty string for a clean EOF (success);
// otherwise "STEP: strerror" or a description of a malformed record.
std::string describeSpawnFailure(const char* data, size_t len);

}  // namespace baton
