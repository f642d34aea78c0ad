// Integration test harness: runs a real batond (as PID 1 of a new PID namespace, or as a plain
// child subreaper) in a private temp dir, and drives it with batonctl.
//
// Every Baton instance owns:
//   - a temp dir  /tmp/baton-itest-XXXXXX  with conf/, log/, work/, ctl.sock, batond.stderr
//   - a unique cgroup base  "baton-test-<pid>-<n>"
//   - the batond process tree it started.
// Teardown ends only those processes, by pid: in namespace mode SIGKILL to the namespace's PID 1
// (from outside, which kills the whole namespace); in subreaper mode SIGTERM, then SIGKILL to
// batond and to descendants recorded before. Then it removes the cgroup groups under its base
// (deepest first) and the temp dir (kept if BATON_ITEST_KEEP=1).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace baton::itest {

using namespace std::chrono_literals;
using Duration = std::chrono::milliseconds;

struct CmdResult {
  int exitCode = -1;        // exit status; 128+N if killed by signal N; -1 if it could not run
  std::string out, err;
  bool timedOut = false;
  std::string describe() const;  // "exit 1, stdout: ..., stderr: ..." for assertion messages
};

// Run argv (argv[0] is a path), capturing stdout/stderr. `uid`/`gid` >= 0: drop to that
// user (setgroups(0), setgid, setuid) in the child before exec. The child is SIGKILLed (by pid)
// when the timeout expires.
CmdResult runCommand(const std::vector<std::string>& argv, Duration timeout = 20s, int uid = -1,
                     int gid = -1);

// ---------------------------------------------------------------------------------------------
// Waiting. A test waits for a condition, never for a fixed time (docs/testing.md, "Waiting").
// A negative check ("X does not happen") first waits for a positive event that proves the moment
// has passed: batond at rest (Baton::waitIdle), a process batond did not signal (notSignalled).

// Poll `pred` every `interval` until it is true or `timeout` passes. Returns the last result.
// The one place where the tests sleep while they wait: between two looks at a condition.
bool waitFor(const std::function<bool()>& pred, Duration timeout = 10s, Duration interval = 20ms);

// waitFor as an assertion: `ASSERT_TRUE(waitUntil(pred, 5s, "the job runs")) << more;` fails
// with "timed out after 5000 ms waiting until the job runs".
::testing::AssertionResult waitUntil(const std::function<bool()>& pred, Duration timeout,
                                     const std::string& what, Duration interval = 20ms);

// Time as the subject of a test, never as a wait for something to happen: an action placed at a
// point in time (a re-exec one second into a kill timeout) or spread over a window on purpose.
// `why` says which, at the call site.
void deliberateDelay(Duration d, const char* why);
void deliberateDelayUntil(std::chrono::steady_clock::time_point t, const char* why);

std::string readFile(const std::string& path, bool* ok = nullptr);
void writeFile(const std::string& path, const std::string& content, mode_t mode = 0644);
bool pathExists(const std::string& path);
std::vector<std::string> splitLines(const std::string& text);
bool contains(const std::string& haystack, const std::string& needle);
// Index of the first line equal to `line` (after trimming trailing '\r'), or -1.
int lineIndex(const std::string& text, const std::string& line);

// Each of `lines` occurs as a whole line in `text`, in this order (first occurrences).
::testing::AssertionResult linesInOrder(const std::string& text,
                                        const std::vector<std::string>& lines);
// Number of whole lines equal to `line`.
int countLines(const std::string& text, const std::string& line);

// Host-side process inspection.
bool pidExists(pid_t pid);            // /proc/PID exists (zombies included)
char procState(pid_t pid);            // field 3 of /proc/PID/stat, 0 if gone
std::vector<pid_t> childrenOf(pid_t pid);     // /proc/PID/task/*/children
std::vector<pid_t> descendantsOf(pid_t pid);  // transitive
pid_t innermostPid(pid_t hostPid);            // last NSpid: field of /proc/PID/status
// The targets of a process's open fds (readlink of /proc/PID/fd/*): "pipe:[1234]", paths...
std::vector<std::string> fdTargets(pid_t pid);

// The process lives and nothing was done to it: not a zombie, not exiting, no signal pending
// (SIGCHLD aside). A signal marks its target so (pending, then exiting, then a zombie) until
// the process is reaped, and batond is single-threaded: checked after batond answered a request
// (a state shown by `status`), this proves batond sent the process no signal while it handled
// that request or anything before it.
::testing::AssertionResult notSignalled(pid_t hostPid);

// A client of the unix stream socket bound at `path` (blocking, close-on-exec); -1 if it cannot
// connect.
int connectTo(const std::string& path);
// send() all of `data` (MSG_NOSIGNAL); false on an error.
bool sendAll(int fd, const std::string& data);
// `v` as 4 little-endian bytes: the length prefix of a control frame.
std::string le32(uint32_t v);

// Connections waiting in the listen queue of the unix socket bound at `path`, not accepted yet
// (the kernel's socket diagnostics, NETLINK_SOCK_DIAG); -1 if no socket listens there.
int pendingConnections(const std::string& path);

enum class Mode { Namespace, Subreaper };

struct Options {
  Mode mode = Mode::Namespace;
  bool testHooks = true;
  std::string cgroupRoot = "/sys/fs/cgroup";
  std::vector<std::string> extraArgs;   // appended to batond's command line
  // --idle-encode-ms: short, so that every test also runs with classes held encoded between its
  // steps (batond's default of 10 s would rarely be reached). -1: batond's default.
  int idleEncodeMs = 100;
  Duration readyTimeout = 10s;
  uint64_t nofileSoft = 0;              // start batond with this RLIMIT_NOFILE soft limit (0: as is)
};

class Baton {
 public:
  explicit Baton(Options opts = {});
  ~Baton();
  Baton(const Baton&) = delete;
  Baton& operator=(const Baton&) = delete;

  // Paths.
  const std::string& dir() const { return dir_; }          // the temp dir
  const std::string& confDir() const { return confDir_; }
  const std::string& logDir() const { return logDir_; }
  const std::string& workDir() const { return workDir_; }  // scratch space for jobs' marks
  const std::string& socket() const { return socket_; }
  const std::string& cgroupBase() const { return cgroupBase_; }
  const std::string& cgroupRoot() const { return opts_.cgroupRoot; }
  std::string work(const std::string& name) const { return workDir_ + "/" + name; }
  Mode mode() const { return opts_.mode; }

  static std::string progsDir();   // BATON_TEST_PROGS_DIR
  static std::string prog(const std::string& name) { return progsDir() + "/" + name; }
  static std::string binDir();     // BATON_BIN_DIR

  // Job files (NAME may contain '/': subdirectories are created). In the content, @WORK@ is
  // replaced by workDir() and @PROGS@ by progsDir().
  std::string expand(std::string text) const;
  void writeJob(const std::string& name, const std::string& content);
  void removeJob(const std::string& name);

  // Held spawns (test hook `BATON_TEST_HOLD_FIFO=PATH`, docs/batond.md). hold(NAME) makes
  // work(NAME) a new FIFO and keeps it open for writing: a process of a job with
  // `env BATON_TEST_HOLD_FIFO=@WORK@/NAME` then stays in its setup, asleep in read(2) on it.
  // release(NAME) closes that writer: every process held on it goes on at once, and any later
  // one passes straight through (until hold(NAME) again). hold() returns the path.
  std::string hold(const std::string& name);
  void release(const std::string& name);

  // Start batond and wait (bounded) until `batonctl version` answers. On failure returns false
  // and `why` says what happened (batond exited with status X / timed out), with stderr.
  bool start(std::string* why = nullptr);
  bool running() const { return launcherPid_ > 0; }

  // batonctl --socket SOCK ARGS...
  CmdResult ctl(const std::vector<std::string>& args, Duration timeout = 30s, int uid = -1,
                int gid = -1);
  // The stdout of `status JOB [ARGS]` (empty string if it failed).
  std::string status(const std::string& job, const std::vector<std::string>& args = {});
  // The first line of `status JOB`, or the line of `JOB (INSTANCE)` if instance is given.
  std::string statusLine(const std::string& job, const std::string& instance = {});
  // The main pid printed in that line ("process N"), 0 if none. Pids are as batond sees them
  // (inside the namespace in Namespace mode).
  pid_t mainPid(const std::string& job, const std::string& instance = {});
  // Wait until statusLine/status output contains `needle`.
  bool waitStatus(const std::string& job, const std::string& needle, Duration timeout = 10s,
                  const std::string& instance = {});
  bool waitStatusOutput(const std::string& job, const std::string& needle,
                        Duration timeout = 10s);

  // LOGDIR/NAME.log ('/' in NAME replaced by '_'). Empty if missing.
  std::string logPath(const std::string& name) const;
  std::string readLog(const std::string& name) const;
  bool logExists(const std::string& name) const;
  bool waitLog(const std::string& name, const std::string& needle, Duration timeout = 10s) const;

  // Processes.
  pid_t launcherPid() const { return launcherPid_; }  // unshare (Namespace) or batond
  // batond's pid on the host: the namespace's PID 1 (found through the launcher's children)
  // or the subreaper itself. 0 if not (yet) known.
  pid_t daemonHostPid();
  // Translate a pid inside batond's PID namespace to a host pid (identity in Subreaper mode);
  // 0 if no such process.
  pid_t hostPid(pid_t nsPid);
  // Every host pid in batond's namespace (Namespace) or under batond (Subreaper), batond included.
  std::vector<pid_t> daemonProcesses();

  // The process (a host pid) is held on work(NAME): asleep in read(2) of that FIFO, which nothing
  // but release(NAME) ends. Proof that a held spawn stays held, without waiting for time to pass.
  ::testing::AssertionResult heldOn(pid_t hostPid, const std::string& name);

  // Wait until batond is at rest: no event pending (`status --daemon`) and no process in its
  // namespace (or under it, as a subreaper) but batond itself and `others` more (the job
  // processes the test keeps running). A negative check made afterwards ("the task is not run
  // again") is final: with no event to handle and no child to exit, batond does nothing until
  // the test acts again (but for a timer, and no test that waits so has one running).
  ::testing::AssertionResult waitIdle(size_t others = 0, Duration timeout = 10s);
  // `status --daemon`'s "pending events: N"; -1 if batond did not answer.
  int pendingEvents();

  // Send SIGTERM to a subreaper batond and wait (bounded) for its exit. Returns its wait
  // status decoded like CmdResult::exitCode, or nullopt if it did not exit in time.
  std::optional<int> terminate(Duration timeout = 15s);
  // Non-blocking check: has the launcher exited? Fills exit code.
  bool exited(int* code = nullptr);

  std::string daemonStderr() const;
  // Everything useful for a failure report: stderr of batond, log dir listing and contents.
  std::string diagnostics() const;

  // Kill everything and clean up (also done by the destructor).
  void teardown();

 private:
  void launch();
  void killEverything();
  void removeCgroups();
  void collectCgroupDirs(const std::string& dir, std::vector<std::string>& out);

  Options opts_;
  std::string dir_, confDir_, logDir_, workDir_, socket_, stderrPath_, cgroupBase_;
  pid_t launcherPid_ = 0;
  pid_t daemonPid_ = 0;   // cached host pid of batond
  bool reaped_ = false;
  int exitCode_ = -1;
  std::vector<pid_t> knownDescendants_;  // seen under a subreaper batond, killed on teardown
  std::map<std::string, int> holds_;     // hold(): name -> the writer's fd
  bool tornDown_ = false;
};

// gtest fixture: owns a Baton, prints diagnostics when a test failed.
class BatonTest : public ::testing::Test {
 protected:
  virtual Options options() { return {}; }
  void SetUp() override;
  void TearDown() override;
  // Start batond (after writing job files); fails the test (fatal) if it is not ready.
  void startBaton();
  Baton& b() { return *baton_; }
  std::unique_ptr<Baton> baton_;
};

// The life-cycle tests that once shared a file keep their suite name, now that they live in the
// files of their subjects (jobs_test, events_test, control_test, pid1_reaping_test). gtest wants
// one fixture class per suite, so the suite's fixture is BatonTest under that name.
using IntegrationLifecycle = BatonTest;

class SubreaperTest : public BatonTest {
 protected:
  Options options() override {
    Options o;
    o.mode = Mode::Subreaper;
    return o;
  }
};

}  // namespace baton::itest

// Fatal: start batond or fail the test with its diagnostics.
#define BATON_START() ASSERT_NO_FATAL_FAILURE(startBaton())
