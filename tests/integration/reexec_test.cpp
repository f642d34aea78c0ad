// Stateful re-exec with work in flight: held spawns, setup failures and early exits around the
// exec window, multi-line scripts still to be written, the four extra processes, kill timers,
// respawn counters, blocked events and clients, log continuity, many re-execs in a row (no fd or
// zombie leak), pid identity, and re-exec into another copy of the binary. Some tests hold the
// blind window itself open (SlowTarget) to place exits and connections inside it.
// docs/design.md, "The re-exec protocol" and "Invariants". batond runs as PID 1 of a PID
// namespace unless the suite says Subreaper; pids from batonctl are then namespace pids.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <sstream>

#include "harness.h"

namespace baton::itest {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// batonctl ARGS in a thread of this process (for clients that block across a re-exec).
std::future<CmdResult> inBackground(Baton& b, std::vector<std::string> args,
                                    Duration timeout = 30s) {
  return std::async(std::launch::async,
                    [&b, args = std::move(args), timeout] { return b.ctl(args, timeout); });
}

// `batonctl reexec [EXTRA...]` answered "re-exec: ok" (by the new binary).
::testing::AssertionResult reexecOk(Baton& b, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"reexec"};
  args.insert(args.end(), extra.begin(), extra.end());
  CmdResult r = b.ctl(args, 30s);
  if (r.exitCode == 0 && contains(r.out, "re-exec: ok")) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "batonctl reexec: " << r.describe();
}

std::string cmdlineOf(pid_t hostPid) {
  return readFile("/proc/" + std::to_string(hostPid) + "/cmdline");
}

// SIGTERM to batond as PID 1 (from outside the namespace) re-execs it; no client gets an answer.
// Done when batond's command line changed (every re-exec passes a fresh --reexec-phases) and the
// new binary answers, reporting a successful re-exec.
::testing::AssertionResult sigtermReexec(Baton& b) {
  pid_t d = b.daemonHostPid();
  if (d <= 0) return ::testing::AssertionFailure() << "no batond pid";
  const std::string before = cmdlineOf(d);
  if (kill(d, SIGTERM) != 0) return ::testing::AssertionFailure() << "kill: " << strerror(errno);
  CmdResult st;
  bool done = waitFor([&] {
    std::string now = cmdlineOf(d);
    if (now.empty() || now == before) return false;
    st = b.ctl({"status", "--daemon"}, 10s);
    return st.exitCode == 0;
  }, 20s);
  if (!done) return ::testing::AssertionFailure() << "no re-exec after SIGTERM; " << st.describe();
  if (!contains(st.out, "last re-exec: ok"))
    return ::testing::AssertionFailure() << "status --daemon: " << st.describe();
  return ::testing::AssertionSuccess();
}

// Field 22 of /proc/PID/stat (start time in clock ticks), 0 if the process is gone.
uint64_t startTimeOf(pid_t hostPid) {
  std::string stat = readFile("/proc/" + std::to_string(hostPid) + "/stat");
  auto rp = stat.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream in(stat.substr(rp + 2));
  std::string field;
  for (int i = 3; i <= 22 && (in >> field); ++i)
    if (i == 22) return std::stoull(field);
  return 0;
}

// Now, in the unit of a start time: clock ticks since boot.
uint64_t bootTicks() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  const uint64_t hz = uint64_t(sysconf(_SC_CLK_TCK));
  return uint64_t(ts.tv_sec) * hz + uint64_t(ts.tv_nsec) / (1000000000 / hz);
}

bool aliveOnHost(pid_t hostPid) {
  char st = procState(hostPid);
  return st != 0 && st != 'Z' && st != 'X';
}

// The pid of "\tTYPE process N" in a `status` output, 0 if none.
pid_t auxPid(const std::string& status, const std::string& type) {
  std::string key = "\t" + type + " process ";
  auto pos = status.find(key);
  if (pos == std::string::npos) return 0;
  return static_cast<pid_t>(std::atol(status.c_str() + pos + key.size()));
}

int fdCount(pid_t hostPid) {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(hostPid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return ec ? -1 : n;
}

std::string fdListing(pid_t hostPid) {
  std::ostringstream o;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(hostPid) + "/fd", ec)) {
    o << e.path().filename().string() << " -> "
      << std::filesystem::read_symlink(e.path(), ec).string() << "\n";
  }
  return o.str();
}

std::vector<pid_t> zombieChildren(pid_t hostPid) {
  std::vector<pid_t> out;
  for (pid_t c : childrenOf(hostPid))
    if (procState(c) == 'Z') out.push_back(c);
  return out;
}

// A re-exec target that holds the blind window open. For --state-formats and --verify-state it
// is the real batond at once; for --restore-fd (the point of no return has passed: the old binary
// is gone, every signal is blocked, the handed fds are open) it first creates `in` and waits for
// `go`, then execs the real batond with the same arguments. Only shell builtins run in the
// window: a forking shell would reap batond's children itself.
struct SlowTarget {
  std::string path, in, go;
  // Wait (bounded) until the window is open.
  bool waitOpen() const { return waitFor([&] { return pathExists(in); }, 15s, 5ms); }
  void close() const { writeFile(go, ""); }
};

// Closes the window when it goes out of scope (also when an assertion ends the test early), so
// that a re-exec client waiting in the background gets its answer.
struct WindowCloser {
  const SlowTarget& target;
  ~WindowCloser() { target.close(); }
};

SlowTarget slowTarget(Baton& b) {
  SlowTarget t{b.dir() + "/batond-slow", b.dir() + "/in-window", b.dir() + "/window-go"};
  writeFile(t.path,
            "#!/bin/sh\n"
            "case \"$1\" in\n"
            "  --restore-fd)\n"
            "    : > " + t.in + "\n"
            "    while [ ! -e " + t.go + " ]; do :; done\n"
            "    ;;\n"
            "esac\n"
            "exec " + Baton::binDir() + "/batond \"$@\"\n",
            0755);
  return t;
}

// Open (O_WRONLY) the write end of the status pipe of a child held in setup, through
// /proc/PID/fd: while this test holds it, batond sees no EOF on the status pipe even after the
// child has exec'd and exited. The job must have `console none`, so that the status pipe is the
// only pipe the held child has open for writing. -1 (and `why`) if it is not found.
int holdStatusPipe(pid_t childHost, std::string& why) {
  const std::string dir = "/proc/" + std::to_string(childHost);
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/fd", ec)) {
    std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (target.rfind("pipe:", 0) != 0) continue;
    std::string fdinfo = readFile(dir + "/fdinfo/" + e.path().filename().string());
    auto pos = fdinfo.find("flags:");
    if (pos == std::string::npos) continue;
    unsigned long flags = std::strtoul(fdinfo.c_str() + pos + 6, nullptr, 8);
    if ((flags & O_ACCMODE) == O_WRONLY) found.push_back(e.path().string());
  }
  if (found.size() != 1) {
    why = std::to_string(found.size()) + " write ends of pipes in " + dir + "/fd:\n" + fdListing(childHost);
    return -1;
  }
  int fd = open(found[0].c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) why = "open " + found[0] + ": " + strerror(errno);
  return fd;
}

void startOrFail(Baton& b) {
  std::string why;
  ASSERT_TRUE(b.start(&why)) << why;
}

class IntegrationReexec : public BatonTest {};
class IntegrationReexecSubreaper : public SubreaperTest {};

// ---------------------------------------------------------------------------------------------
// 1. A child held in setup across a re-exec, then released: same pid, running, output logged.

void heldSpawnSurvives(Baton& b, bool bySigterm) {
  b.writeJob("held", "env BATON_TEST_HOLD_FIFO=@WORK@/go\n"
                     "exec /bin/sh -c 'echo \"held pid $$\"; exec sleep 1000'\n");
  b.hold("go");
  ASSERT_NO_FATAL_FAILURE(startOrFail(b));
  CmdResult r = b.ctl({"start", "held", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b.waitStatus("held", "(spawning)", 5s)) << b.status("held");
  const pid_t pid = b.mainPid("held");
  ASSERT_GT(pid, 0);
  const pid_t host = b.hostPid(pid);
  ASSERT_GT(host, 0);
  const uint64_t started = startTimeOf(host);
  ASSERT_TRUE(waitUntil([&] { return b.heldOn(host, "go"); }, 5s, "the child is held"));

  if (bySigterm) {
    ASSERT_TRUE(sigtermReexec(b));
  } else {
    ASSERT_TRUE(reexecOk(b));
  }
  // Still held, still the same in-flight spawn.
  EXPECT_EQ(b.statusLine("held"), "held start/spawned, process " + std::to_string(pid) + " (spawning)");
  // Still held: asleep on its FIFO, which nothing but the release wakes.
  EXPECT_TRUE(b.heldOn(host, "go"));
  EXPECT_FALSE(b.logExists("held")) << "the held child ran before it was released";

  b.release("go");
  EXPECT_TRUE(b.waitStatus("held", "held start/running, process " + std::to_string(pid)))
      << b.status("held");
  EXPECT_EQ(b.statusLine("held"), "held start/running, process " + std::to_string(pid));
  EXPECT_TRUE(b.waitLog("held", "held pid " + std::to_string(pid) + "\n")) << b.readLog("held");
  EXPECT_EQ(startTimeOf(host), started) << "the job's process is not the one held before";
  EXPECT_EQ(b.readLog("held"), "held pid " + std::to_string(pid) + "\n") << "it ran more than once";
  r = b.ctl({"stop", "held"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(b.statusLine("held"), "held stop/waiting");
  EXPECT_TRUE(waitFor([&] { return !aliveOnHost(host); }, 5s)) << "main process survived stop";
}

TEST_F(IntegrationReexec, HeldSpawnSurvivesReexec) { heldSpawnSurvives(b(), false); }

TEST_F(IntegrationReexec, HeldSpawnSurvivesSigtermReexec) { heldSpawnSurvives(b(), true); }

TEST_F(IntegrationReexecSubreaper, HeldSpawnSurvivesReexec) { heldSpawnSurvives(b(), false); }

// ---------------------------------------------------------------------------------------------
// 2. Setup fails after the re-exec (chdir to a directory removed meanwhile).

TEST_F(IntegrationReexec, SetupFailureAfterReexec) {
  const std::string dir = b().work("here");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  for (const char* job : {"cd-nowait", "cd-wait"})
    b().writeJob(job, "env BATON_TEST_HOLD_FIFO=@WORK@/go\nchdir @WORK@/here\nexec sleep 1000\n");
  b().hold("go");
  BATON_START();
  CmdResult r = b().ctl({"start", "cd-nowait", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  auto blocked = inBackground(b(), {"start", "cd-wait"});
  ASSERT_TRUE(b().waitStatus("cd-nowait", "(spawning)", 5s)) << b().status("cd-nowait");
  // The blocked client's request was handled: its job is being spawned.
  ASSERT_TRUE(b().waitStatus("cd-wait", "(spawning)", 5s)) << b().status("cd-wait");

  ASSERT_TRUE(reexecOk(b()));
  ASSERT_EQ(rmdir(dir.c_str()), 0);
  b().release("go");

  for (const char* job : {"cd-nowait", "cd-wait"}) {
    std::string st;
    EXPECT_TRUE(waitFor([&] {
      st = b().status(job);
      return contains(st, std::string(job) + " stop/waiting");
    })) << st;
    EXPECT_TRUE(contains(st, "\tfailed: ")) << st;
    EXPECT_TRUE(contains(st, "chdir")) << st;
  }
  CmdResult w = blocked.get();
  EXPECT_EQ(w.exitCode, 1) << w.describe();
  EXPECT_TRUE(contains(w.out + w.err, "chdir")) << w.describe();
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 1; }, 5s))
      << "child left behind: " << b().daemonProcesses().size() << " processes";
}

// ---------------------------------------------------------------------------------------------
// 3. The child exits around the exec window: before its status-pipe EOF is seen, or after.

void exitAroundExecWindow(Baton& b, int rounds) {
  b.writeJob("quick-task", "task\nenv BATON_TEST_HOLD_FIFO=@WORK@/go-task\nexec /bin/true\n");
  b.writeJob("quick-fail", "env BATON_TEST_HOLD_FIFO=@WORK@/go-fail\nexec /bin/sh -c 'exit 3'\n");
  ASSERT_NO_FATAL_FAILURE(startOrFail(b));
  struct Job {
    std::string name, hold, expect;
  };
  const std::vector<Job> jobs = {
      {"quick-task", "go-task", "quick-task stop/waiting\n"},
      {"quick-fail", "go-fail",
       "quick-fail stop/waiting\n\tfailed: main process exited with status 3\n"},
  };
  for (bool releaseFirst : {true, false}) {
    for (const Job& job : jobs) {
      for (int i = 0; i < rounds; ++i) {
        SCOPED_TRACE(job.name + (releaseFirst ? ": release, then re-exec" : ": re-exec, then release") +
                     ", round " + std::to_string(i));
        b.hold(job.hold);
        CmdResult r = b.ctl({"start", job.name, "-n"});
        ASSERT_EQ(r.exitCode, 0) << r.describe();
        ASSERT_TRUE(b.waitStatus(job.name, "(spawning)", 5s)) << b.status(job.name);
        if (releaseFirst) {
          b.release(job.hold);
          ASSERT_TRUE(reexecOk(b));
        } else {
          auto rx = inBackground(b, {"reexec"});
          deliberateDelay(std::chrono::milliseconds(2 * i),
                          "spread the release over the re-exec: some land before the exec, some in it");
          b.release(job.hold);
          CmdResult x = rx.get();
          ASSERT_EQ(x.exitCode, 0) << x.describe();
        }
        std::string st;
        EXPECT_TRUE(waitFor([&] {
          st = b.status(job.name);
          return st == job.expect;
        }, 10s)) << "final status:\n" << st << "expected:\n" << job.expect;
        if (st != job.expect) return;  // a stuck job would make every later round fail too
      }
    }
  }
  if (b.mode() == Mode::Namespace)
    EXPECT_TRUE(waitFor([&] { return b.daemonProcesses().size() == 1; }, 5s))
        << b.daemonProcesses().size() << " processes left in the namespace";
  else
    EXPECT_TRUE(waitFor([&] { return childrenOf(b.daemonHostPid()).empty(); }, 5s))
        << childrenOf(b.daemonHostPid()).size() << " children left under batond";
}

TEST_F(IntegrationReexec, ExitAroundExecWindow) { exitAroundExecWindow(b(), 10); }

TEST_F(IntegrationReexecSubreaper, ExitAroundExecWindow) { exitAroundExecWindow(b(), 5); }

// Deterministic versions, with the blind window held open (SlowTarget): children exit inside it.
// - held children released in the window exec and exit (or fail their setup) there: the new
//   binary sees each exit (its sweep after the restore) before the status pipe's EOF or record;
// - running main processes killed in the window: their EOF was seen by the old binary, the exit
//   is seen by the new one (the zombie and the pending SIGCHLD survive the exec).
TEST_F(IntegrationReexec, ChildrenExitInsideTheExecWindow) {
  const std::string dir = b().work("here");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  b().writeJob("quick-task", "task\nenv BATON_TEST_HOLD_FIFO=@WORK@/go\nexec /bin/true\n");
  b().writeJob("quick-fail", "env BATON_TEST_HOLD_FIFO=@WORK@/go\nexec /bin/sh -c 'exit 3'\n");
  b().writeJob("cd-fail", "env BATON_TEST_HOLD_FIFO=@WORK@/go\nchdir @WORK@/here\nexec sleep 1000\n");
  b().writeJob("victim", "exec sleep 1000\n");
  b().writeJob("phoenix", "respawn\nexec sleep 1000\n");
  b().hold("go");
  BATON_START();
  const SlowTarget slow = slowTarget(b());
  for (const char* job : {"victim", "phoenix"}) {
    CmdResult r = b().ctl({"start", job});
    ASSERT_EQ(r.exitCode, 0) << r.describe();
  }
  for (const char* job : {"quick-task", "quick-fail"}) {
    CmdResult r = b().ctl({"start", job, "-n"});
    ASSERT_EQ(r.exitCode, 0) << r.describe();
  }
  auto cdStart = inBackground(b(), {"start", "cd-fail"});
  std::map<std::string, pid_t> hosts;
  for (const char* job : {"quick-task", "quick-fail", "cd-fail", "victim", "phoenix"}) {
    if (std::string(job) != "victim" && std::string(job) != "phoenix") {
      ASSERT_TRUE(b().waitStatus(job, "(spawning)", 5s)) << b().status(job);
    }
    hosts[job] = b().hostPid(b().mainPid(job));
    ASSERT_GT(hosts[job], 0) << job;
  }
  const pid_t phoenixPid = b().mainPid("phoenix");

  auto rx = inBackground(b(), {"reexec", "--binary", slow.path});
  WindowCloser closer{slow};
  if (!slow.waitOpen()) {
    slow.close();
    FAIL() << "the re-exec did not reach the exec window: " << rx.get().describe();
  }
  ASSERT_EQ(rmdir(dir.c_str()), 0);
  b().release("go");
  kill(hosts["victim"], SIGKILL);
  kill(hosts["phoenix"], SIGKILL);
  bool zombies = waitFor([&] {
    for (auto& [job, host] : hosts)
      if (procState(host) != 'Z') return false;
    return true;
  }, 10s, 5ms);
  std::string states;
  for (auto& [job, host] : hosts) states += job + ": " + std::string(1, procState(host) ? procState(host) : '-') + "\n";
  slow.close();
  ASSERT_TRUE(zombies) << "not every child exited inside the window (state per job):\n" << states;
  CmdResult x = rx.get();
  ASSERT_EQ(x.exitCode, 0) << x.describe();
  EXPECT_TRUE(contains(x.out, "re-exec: ok")) << x.describe();

  auto finalStatus = [&](const std::string& job, const std::string& expect) {
    std::string st;
    EXPECT_TRUE(waitFor([&] {
      st = b().status(job);
      return st == expect;
    })) << job << ":\n" << st << "expected:\n" << expect;
  };
  finalStatus("quick-task", "quick-task stop/waiting\n");
  finalStatus("quick-fail", "quick-fail stop/waiting\n\tfailed: main process exited with status 3\n");
  finalStatus("victim", "victim stop/waiting\n\tfailed: main process killed by signal 9\n");
  std::string cd = b().status("cd-fail");
  EXPECT_TRUE(contains(cd, "cd-fail stop/waiting\n\tfailed: chdir")) << cd;
  CmdResult w = cdStart.get();
  EXPECT_EQ(w.exitCode, 1) << w.describe();
  EXPECT_TRUE(contains(w.out + w.err, "chdir")) << w.describe();
  pid_t respawned = 0;
  EXPECT_TRUE(waitFor([&] {
    respawned = b().mainPid("phoenix");
    return respawned > 0 && respawned != phoenixPid &&
           b().statusLine("phoenix") == "phoenix start/running, process " + std::to_string(respawned);
  })) << b().status("phoenix");
  // Every zombie was reaped: batond and the respawned phoenix are all that is left.
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 2; }, 5s))
      << b().daemonProcesses().size() << " processes in the namespace";
  CmdResult d = b().ctl({"status", "--daemon"});
  EXPECT_TRUE(contains(d.out, "binary: " + Baton::binDir() + "/batond\n")) << d.describe();
}

// The pre-flight's exit can be the last thing a re-exec waits for, and it is seen in a waitid
// sweep. The zombies after it in that sweep had their SIGCHLD read already, and the new image
// sweeps only when SIGCHLD is pending (--sweep-on-sigchld): so the old image applies helpers'
// exits only once its sweep is complete (and, should an exec still cut a sweep short, makes
// SIGCHLD pending again before execve). Arranged: the pre-flight closes its output (batond has
// its verdict) and waits; a task started after it (so later in batond's list of children, which
// waitid walks oldest first) waits too; batond is stopped while both exit, so that one SIGCHLD
// covers both. With neither measure, the task stays "start/running" with a zombie for a process.
TEST_F(IntegrationReexec, ExitsSweptTogetherWithThePreflightsAreCollected) {
  const std::string bin = Baton::binDir() + "/batond";
  const std::string waiting = b().work("preflight-waiting"), go = b().work("go");
  const std::string target = b().dir() + "/batond-late-verdict";
  const std::string outPipe = b().work("preflight-output");  // names the pipe of its output
  writeFile(target,
            "#!/bin/sh\n"
            "if [ \"$1\" = --verify-state ]; then\n"
            "  out=$(" + bin + " \"$@\" 2>&1); rc=$?\n"
            "  printf '%s\\n' \"$out\"\n"
            "  readlink /proc/$$/fd/2 > " + outPipe + "\n"  // fd 1 is redirected meanwhile
            "  exec >&- 2>&-\n"
            "  : > " + waiting + "\n"
            "  while [ ! -e " + go + " ]; do sleep 0.01; done\n"
            "  exit $rc\n"
            "fi\n"
            "exec " + bin + " \"$@\"\n",
            0755);
  b().writeJob("late", "task\nconsole none\nexec /bin/sh -c 'while [ ! -e @WORK@/go ]; do sleep 0.01; done'\n");
  BATON_START();
  auto rx = inBackground(b(), {"reexec", "--binary", target});
  if (!waitFor([&] { return pathExists(waiting); }, 15s, 5ms)) {
    writeFile(go, "");
    FAIL() << "the pre-flight did not start: " << rx.get().describe();
  }
  CmdResult r = b().ctl({"start", "late", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  const pid_t late = b().hostPid(b().mainPid("late"));
  pid_t preflight = 0;
  for (pid_t c : childrenOf(b().daemonHostPid()))
    if (contains(readFile("/proc/" + std::to_string(c) + "/cmdline"), "batond-late-verdict")) preflight = c;
  ASSERT_GT(late, 0) << b().status("late");
  ASSERT_GT(preflight, 0) << "no pre-flight child under batond";
  // batond has read the pre-flight's EOF once it has closed its end of the pre-flight's output
  // pipe. (Were the EOF read later, the exec would come from the output handler instead and the
  // test would not cover the cut-short sweep.)
  const auto outLines = splitLines(readFile(outPipe));
  const std::string pipe = outLines.empty() ? std::string() : outLines[0];
  ASSERT_EQ(pipe.rfind("pipe:", 0), 0u) << "the pre-flight's output: [" << pipe << "]";
  const pid_t batond = b().daemonHostPid();
  ASSERT_TRUE(waitUntil([&] {
    auto fds = fdTargets(batond);
    return std::find(fds.begin(), fds.end(), pipe) == fds.end();
  }, 10s, "batond has closed the pre-flight's output (" + pipe + ")"));
  ASSERT_EQ(kill(batond, SIGSTOP), 0);
  writeFile(go, "");
  const bool zombies =
      waitFor([&] { return procState(late) == 'Z' && procState(preflight) == 'Z'; }, 10s, 5ms);
  kill(batond, SIGCONT);
  ASSERT_TRUE(zombies) << "late: " << procState(late) << ", pre-flight: " << procState(preflight);
  CmdResult x = rx.get();
  ASSERT_EQ(x.exitCode, 0) << x.describe();
  EXPECT_TRUE(contains(x.out, "re-exec: ok")) << x.describe();
  // Nothing else exits after the re-exec: only the sweep owed from the old image reaps the task.
  std::string st;
  EXPECT_TRUE(waitFor([&] {
    st = b().status("late");
    return st == "late stop/waiting\n";
  }, 5s)) << st;
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 1; }, 5s))
      << b().daemonProcesses().size() << " processes in the namespace";
}

// The exit is seen (and reaped) by the old binary while the status pipe has not answered yet;
// the re-exec comes in between; the EOF arrives in the new binary. The test holds the status
// pipe's write end open (through /proc) to keep the EOF back until after the re-exec.
void exitSeenBeforeStatusPipeEof(Baton& b) {
  b.writeJob("late-fail", "console none\nenv BATON_TEST_HOLD_FIFO=@WORK@/go-fail\nexec /bin/sh -c 'exit 3'\n");
  b.writeJob("late-task", "console none\ntask\nenv BATON_TEST_HOLD_FIFO=@WORK@/go-task\nexec /bin/true\n");
  b.hold("go-fail");
  b.hold("go-task");
  ASSERT_NO_FATAL_FAILURE(startOrFail(b));
  struct Case {
    std::string job, hold, expect;
  };
  for (const Case& c : {Case{"late-fail", "go-fail",
                             "late-fail stop/waiting\n\tfailed: main process exited with status 3\n"},
                        Case{"late-task", "go-task", "late-task stop/waiting\n"}}) {
    SCOPED_TRACE(c.job);
    CmdResult r = b.ctl({"start", c.job, "-n"});
    ASSERT_EQ(r.exitCode, 0) << r.describe();
    ASSERT_TRUE(b.waitStatus(c.job, "(spawning)", 5s)) << b.status(c.job);
    const pid_t pid = b.mainPid(c.job);
    const pid_t host = b.hostPid(pid);
    ASSERT_GT(host, 0);
    std::string why;
    int held = holdStatusPipe(host, why);
    ASSERT_GE(held, 0) << why;
    b.release(c.hold);
    // Gone from /proc: batond has reaped it (it is batond's child), before any EOF.
    bool reaped = waitFor([&] { return !pidExists(host); }, 10s, 5ms);
    const std::string spawning = c.job + " start/spawned, process " + std::to_string(pid) + " (spawning)";
    std::string before = b.statusLine(c.job);
    ::testing::AssertionResult rx = reexecOk(b);
    std::string after = b.statusLine(c.job);
    close(held);
    ASSERT_TRUE(reaped) << "the child did not exit";
    EXPECT_EQ(before, spawning);
    ASSERT_TRUE(rx);
    EXPECT_EQ(after, spawning) << "the outcome was applied before the status pipe answered";
    std::string st;
    EXPECT_TRUE(waitFor([&] {
      st = b.status(c.job);
      return st == c.expect;
    })) << st << "expected:\n" << c.expect;
  }
}

TEST_F(IntegrationReexec, ExitSeenBeforeStatusPipeEof) { exitSeenBeforeStatusPipeEof(b()); }

TEST_F(IntegrationReexecSubreaper, ExitSeenBeforeStatusPipeEof) { exitSeenBeforeStatusPipeEof(b()); }

// ---------------------------------------------------------------------------------------------
// 4. Multi-line scripts whose pipe is still to be filled at the re-exec.

TEST_F(IntegrationReexec, HeldMultiLineScript) {
  std::string job = "task\nenv BATON_TEST_HOLD_FIFO=@WORK@/go\nscript\n";
  for (int i = 1; i <= 8; ++i) job += "  echo line-" + std::to_string(i) + "\n";
  job += "end script\n";
  b().writeJob("lines", job);
  b().hold("go");
  BATON_START();
  CmdResult r = b().ctl({"start", "lines", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b().waitStatus("lines", "(spawning)", 5s)) << b().status("lines");
  pid_t pid = b().mainPid("lines");
  ASSERT_TRUE(reexecOk(b()));
  EXPECT_EQ(b().statusLine("lines"), "lines start/spawned, process " + std::to_string(pid) + " (spawning)");
  b().release("go");
  std::string st;
  EXPECT_TRUE(waitFor([&] {
    st = b().status("lines");
    return st == "lines stop/waiting\n";
  })) << st;
  ASSERT_TRUE(waitFor([&] { return countLines(b().readLog("lines"), "line-8") > 0; }, 5s))
      << b().readLog("lines");
  std::string log = b().readLog("lines");
  std::vector<std::string> expected;
  for (int i = 1; i <= 8; ++i) {
    expected.push_back("line-" + std::to_string(i));
    EXPECT_EQ(countLines(log, expected.back()), 1) << log;
  }
  EXPECT_TRUE(linesInOrder(log, expected));
  EXPECT_EQ(splitLines(log).size(), 8u) << log;
}

// A script larger than a pipe: the shell sleeps at its top, so most of the script is still in
// batond's pending buffer (not in the pipe) when the re-execs happen.
TEST_F(IntegrationReexec, PartiallyWrittenScript) {
  constexpr int kLines = 4000;  // ~200 KB of script against a 64 KiB pipe
  // The shell waits for `go` (created after the re-execs), however long they take: until then
  // the pipe is full and batond holds the rest of the script across both re-execs.
  std::string job = "task\nscript\n  touch @WORK@/reading\n  while [ ! -e @WORK@/go ]; do sleep 0.05; done\n";
  for (int i = 1; i <= kLines; ++i)
    job += "  echo \"line-" + std::to_string(i) + " ........................................\"\n";
  job += "  touch @WORK@/script-end\nend script\n";
  b().writeJob("big", job);
  BATON_START();
  CmdResult r = b().ctl({"start", "big", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(waitFor([&] { return pathExists(b().work("reading")); }, 5s)) << b().status("big");
  ASSERT_TRUE(reexecOk(b()));
  ASSERT_TRUE(reexecOk(b()));
  EXPECT_FALSE(pathExists(b().work("script-end"))) << "the script finished before the re-execs";
  writeFile(b().work("go"), "");
  std::string st;
  EXPECT_TRUE(waitFor([&] {
    st = b().status("big");
    return st == "big stop/waiting\n";
  }, 15s)) << st;
  EXPECT_TRUE(pathExists(b().work("script-end")));
  const std::string last = "line-" + std::to_string(kLines) + " ........................................";
  ASSERT_TRUE(waitFor([&] { return countLines(b().readLog("big"), last) > 0; }, 5s));
  auto lines = splitLines(b().readLog("big"));
  ASSERT_EQ(lines.size(), size_t(kLines)) << "lines in the log";
  for (int i = 0; i < kLines; ++i)
    ASSERT_EQ(lines[size_t(i)], "line-" + std::to_string(i + 1) + " ........................................")
        << "at line " << i + 1;
}

// ---------------------------------------------------------------------------------------------
// 5. pre-start, post-start, pre-stop and post-stop each in flight during a re-exec.

TEST_F(IntegrationReexec, ExtraProcessesInFlight) {
  auto hook = [](const std::string& name) {
    return name + " script\n  echo " + name + "-begin >> @WORK@/marks\n  sleep 1\n  echo " + name +
           "-end >> @WORK@/marks\nend script\n";
  };
  b().writeJob("hooks", hook("pre-start") + hook("post-start") + hook("pre-stop") + hook("post-stop") +
                            "script\n  echo main >> @WORK@/marks\n  exec sleep 1000\nend script\n");
  BATON_START();
  const std::string marks = b().work("marks");
  auto marked = [&](const std::string& m) {
    return waitFor([&] { return lineIndex(readFile(marks), m) >= 0; }, 10s);
  };
  // Re-exec while the hook TYPE runs in state STATE; it is the same process afterwards.
  auto reexecDuring = [&](const std::string& type, const std::string& state) {
    SCOPED_TRACE(type);
    ASSERT_TRUE(marked(type + "-begin")) << readFile(marks);
    std::string st = b().status("hooks");
    EXPECT_TRUE(contains(st, "hooks " + state)) << st;
    pid_t pid = auxPid(st, type);
    EXPECT_GT(pid, 0) << st;
    ASSERT_TRUE(reexecOk(b()));
    st = b().status("hooks");
    EXPECT_TRUE(contains(st, "hooks " + state)) << st;
    EXPECT_EQ(auxPid(st, type), pid) << st;
    EXPECT_FALSE(contains(readFile(marks), type + "-end")) << "the re-exec came too late";
  };

  auto start = inBackground(b(), {"start", "hooks"});
  ASSERT_NO_FATAL_FAILURE(reexecDuring("pre-start", "start/pre-start"));
  ASSERT_NO_FATAL_FAILURE(reexecDuring("post-start", "start/post-start"));
  CmdResult r = start.get();
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "hooks start/running, process ")) << r.describe();
  pid_t main = b().mainPid("hooks");
  EXPECT_GT(main, 0);

  auto stop = inBackground(b(), {"stop", "hooks"});
  ASSERT_NO_FATAL_FAILURE(reexecDuring("pre-stop", "stop/pre-stop"));
  EXPECT_TRUE(contains(b().statusLine("hooks"), ", process " + std::to_string(main)))
      << b().status("hooks");
  ASSERT_NO_FATAL_FAILURE(reexecDuring("post-stop", "stop/post-stop"));
  r = stop.get();
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "hooks stop/waiting")) << r.describe();
  EXPECT_EQ(b().status("hooks"), "hooks stop/waiting\n");

  // post-start runs beside the main process once that is spawned (as in Upstart), so the main
  // script's line and post-start's first line may come in either order.
  std::vector<std::string> order = {"pre-start-begin", "pre-start-end", "post-start-begin",
                                    "post-start-end", "pre-stop-begin", "pre-stop-end",
                                    "post-stop-begin", "post-stop-end", "main"};
  std::string all = readFile(marks);
  EXPECT_TRUE(linesInOrder(all, {"pre-start-begin", "pre-start-end", "post-start-begin", "post-start-end",
                                 "pre-stop-begin", "pre-stop-end", "post-stop-begin", "post-stop-end"}));
  EXPECT_TRUE(linesInOrder(all, {"pre-start-end", "main", "pre-stop-begin"}));
  for (const auto& m : order) EXPECT_EQ(countLines(all, m), 1) << m << " in\n" << all;
}

// ---------------------------------------------------------------------------------------------
// 6. Timers and counters are absolute values carried over, not recomputed.

// stop at T; kill timeout 3 s; re-execs at T+1 s and T+2 s. The original deadline is T+3 s. A
// deadline recomputed from the configuration at restore would be T+5 s, a lost one never:
// both are outside [T+2.5 s, T+4.5 s].
TEST_F(IntegrationReexec, KillTimeoutKeepsItsDeadline) {
  b().writeJob("stubborn", R"JOB(kill timeout 3
script
  trap 'echo got-TERM >> @WORK@/marks' TERM
  echo "pid $$"
  while true; do sleep 0.2 || true; done
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "stubborn"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  pid_t pid = b().mainPid("stubborn");
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(b().waitLog("stubborn", "pid " + std::to_string(pid) + "\n"));
  pid_t host = b().hostPid(pid);
  ASSERT_GT(host, 0);

  const auto t0 = Clock::now();
  r = b().ctl({"stop", "stubborn", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return contains(readFile(b().work("marks")), "got-TERM"); }, 2s))
      << "the kill signal was not sent";
  deliberateDelayUntil(t0 + 1s, "the first re-exec comes 1 s into the 3 s kill timeout");
  ASSERT_TRUE(aliveOnHost(host)) << "killed before its deadline";
  ASSERT_TRUE(reexecOk(b()));
  deliberateDelayUntil(t0 + 2s, "the second re-exec comes 2 s into the 3 s kill timeout");
  ASSERT_TRUE(aliveOnHost(host)) << "killed before its deadline";
  ASSERT_TRUE(reexecOk(b()));
  EXPECT_TRUE(contains(b().statusLine("stubborn"), "stubborn stop/killed, process " + std::to_string(pid)))
      << b().status("stubborn");

  bool gone = waitFor([&] { return !aliveOnHost(host); }, 8s, 10ms);
  const double at = secondsSince(t0);
  ASSERT_TRUE(gone) << "the kill timer never fired (" << at << " s after stop)";
  EXPECT_GE(at, 2.5) << "SIGKILL came too early";
  EXPECT_LE(at, 4.5) << "SIGKILL came too late: the deadline was not kept across the re-execs";
  EXPECT_TRUE(b().waitStatus("stubborn", "stubborn stop/waiting")) << b().status("stubborn");
  EXPECT_TRUE(contains(readFile(b().work("marks")), "got-TERM\n"));
}

// respawn limit 4 in 30 s: the first run and 4 respawns, then "respawn limit reached". The
// counter and window start survive two re-execs in the middle (a reset counter would allow more).
TEST_F(IntegrationReexec, RespawnLimitCounterSurvives) {
  b().writeJob("flap", R"JOB(respawn
respawn limit 4 30
script
  echo run
  sleep 0.4
  exit 1
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "flap", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  auto runs = [&] { return countLines(b().readLog("flap"), "run"); };
  ASSERT_TRUE(waitFor([&] { return runs() >= 2; }, 10s)) << b().readLog("flap");
  ASSERT_TRUE(reexecOk(b()));
  ASSERT_TRUE(waitFor([&] { return runs() >= 4; }, 10s)) << b().readLog("flap");
  EXPECT_TRUE(contains(b().statusLine("flap"), "flap start/")) << "already failed: " << b().status("flap");
  ASSERT_TRUE(reexecOk(b()));
  EXPECT_TRUE(b().waitStatusOutput("flap", "\tfailed: respawn limit reached", 15s))
      << b().status("flap");
  EXPECT_TRUE(contains(b().statusLine("flap"), "flap stop/waiting")) << b().status("flap");
  // Nothing more runs: at rest, batond will not start the job again on its own.
  EXPECT_TRUE(b().waitIdle()) << b().status("flap");
  EXPECT_EQ(runs(), 5) << b().readLog("flap");
  EXPECT_TRUE(contains(b().statusLine("flap"), "flap stop/waiting")) << b().status("flap");
}

// ---------------------------------------------------------------------------------------------
// 7. Events: an instance blocked on its `starting` event, and an emit waiting for its handlers.

TEST_F(IntegrationReexec, BlockedStartingEventSurvives) {
  b().writeJob("alpha", "exec /bin/sh -c 'echo alpha-main >> @WORK@/marks; exec sleep 1000'\n");
  b().writeJob("beta", R"JOB(start on starting alpha
pre-start script
  echo beta-pre-start-begin >> @WORK@/marks
  sleep 2
  echo beta-pre-start-end >> @WORK@/marks
end script
exec /bin/sh -c 'echo beta-main >> @WORK@/marks; exec sleep 1000'
)JOB");
  BATON_START();
  const std::string marks = b().work("marks");
  auto start = inBackground(b(), {"start", "alpha"});
  ASSERT_TRUE(waitFor([&] { return contains(readFile(marks), "beta-pre-start-begin"); }, 10s))
      << b().ctl({"list"}).out;
  EXPECT_EQ(b().statusLine("alpha"), "alpha start/starting");
  EXPECT_TRUE(contains(b().statusLine("beta"), "beta start/pre-start")) << b().status("beta");
  ASSERT_TRUE(reexecOk(b()));
  EXPECT_EQ(b().statusLine("alpha"), "alpha start/starting");
  EXPECT_FALSE(contains(readFile(marks), "beta-pre-start-end")) << "the re-exec came too late";

  CmdResult r = start.get();
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "alpha start/running, process ")) << r.describe();
  EXPECT_TRUE(contains(b().statusLine("beta"), "beta start/running, process ")) << b().status("beta");
  ASSERT_TRUE(waitFor([&] { return contains(readFile(marks), "alpha-main"); }, 5s)) << readFile(marks);
  EXPECT_TRUE(linesInOrder(readFile(marks), {"beta-pre-start-begin", "beta-pre-start-end", "alpha-main"}));
  EXPECT_EQ(countLines(readFile(marks), "alpha-main"), 1);
}

TEST_F(IntegrationReexec, EmitWaitsForHandlerAcrossReexec) {
  b().writeJob("handler", R"JOB(start on ev
task
script
  touch @WORK@/handler-began
  sleep 1.5
  touch @WORK@/handler-done
end script
)JOB");
  BATON_START();
  Baton& bb = b();
  auto emit = std::async(std::launch::async, [&bb] {
    CmdResult r = bb.ctl({"emit", "ev"}, 30s);
    return std::make_pair(r, pathExists(bb.work("handler-done")));
  });
  ASSERT_TRUE(waitFor([&] { return pathExists(b().work("handler-began")); }, 10s))
      << b().status("handler");
  EXPECT_TRUE(contains(b().statusLine("handler"), "handler start/running")) << b().status("handler");
  ASSERT_TRUE(reexecOk(b()));
  EXPECT_FALSE(pathExists(b().work("handler-done"))) << "the re-exec came too late";
  auto [r, doneAtAnswer] = emit.get();
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(doneAtAnswer) << "emit returned before its handler finished";
  EXPECT_EQ(b().statusLine("handler"), "handler stop/waiting");
  CmdResult d = b().ctl({"status", "--daemon"});
  EXPECT_TRUE(contains(d.out, "pending events: 0\n")) << d.describe();
}

// ---------------------------------------------------------------------------------------------
// 8. Log continuity: a line every millisecond across 50 re-execs back to back.

TEST_F(IntegrationReexec, LogContinuityAcross50Reexecs) {
  b().writeJob("counter", "exec @PROGS@/baton_counter 1000000 1000\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "counter"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(waitFor([&] { return splitLines(b().readLog("counter")).size() >= 20; }, 5s));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(reexecOk(b())) << "re-exec " << i;
  // Lines written after the last re-exec reach the log as well (about 100 ms of them).
  const size_t atLastReexec = splitLines(b().readLog("counter")).size();
  ASSERT_TRUE(waitUntil([&] { return splitLines(b().readLog("counter")).size() >= atLastReexec + 100; },
                        10s, "100 more lines in the log after the last re-exec"));
  r = b().ctl({"stop", "counter"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  // Wait until the log stops growing.
  std::string log, prev;
  waitFor([&] {
    prev = log;
    log = b().readLog("counter");
    return !log.empty() && log == prev;
  }, 5s, 300ms);
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back(), '\n') << "the log ends with a partial line";
  auto lines = splitLines(log);
  ASSERT_GE(lines.size(), 100u);
  for (size_t i = 0; i < lines.size(); ++i)
    ASSERT_EQ(lines[i], std::to_string(i + 1)) << "at line " << i + 1 << " of " << lines.size();
}

// ---------------------------------------------------------------------------------------------
// 9. A client blocked in `start` across a re-exec gets its normal answer; clients connecting
//    during the blind window are served after it.

void blockedClientAndBlindWindow(Baton& b) {
  b.writeJob("slow", "pre-start exec sleep 2\nexec sleep 1000\n");
  ASSERT_NO_FATAL_FAILURE(startOrFail(b));
  auto start = inBackground(b, {"start", "slow"});
  ASSERT_TRUE(b.waitStatus("slow", "slow start/pre-start", 5s)) << b.status("slow");

  struct Run {
    Clock::time_point begin, end;
    CmdResult result;
  };
  std::mutex mu;
  std::vector<Run> runs;
  std::atomic<bool> stop{false};
  std::vector<std::thread> loops;
  for (int t = 0; t < 3; ++t) {
    loops.emplace_back([&] {
      while (!stop) {
        Run run;
        run.begin = Clock::now();
        run.result = b.ctl({"status", "slow"}, 20s);
        run.end = Clock::now();
        std::lock_guard<std::mutex> lock(mu);
        runs.push_back(std::move(run));
      }
    });
  }
  // Requests begun at or after `t` that have been answered.
  auto answeredSince = [&](Clock::time_point t) {
    std::lock_guard<std::mutex> lock(mu);
    size_t n = 0;
    for (const Run& run : runs) n += run.begin >= t;
    return n;
  };
  // No ASSERT until the loops are joined (a joinable std::thread must not be destroyed).
  EXPECT_TRUE(waitUntil([&] { return answeredSince(Clock::time_point()) >= 3; }, 20s,
                        "the clients get answers"));
  // A re-exec takes milliseconds: repeat it until clients have connected inside one.
  std::vector<std::pair<Clock::time_point, Clock::time_point>> windows;
  auto startedDuring = [&] {
    std::lock_guard<std::mutex> lock(mu);
    int n = 0;
    for (const Run& run : runs)
      for (auto& [from, to] : windows) n += run.begin >= from && run.begin <= to;
    return n;
  };
  bool allOk = true;
  for (int attempt = 0; attempt < 30 && startedDuring() == 0; ++attempt) {
    const auto rxBegin = Clock::now();
    allOk = allOk && bool(reexecOk(b));
    windows.emplace_back(rxBegin, Clock::now());
    // The clients are served again before the next re-exec.
    ::testing::AssertionResult served =
        waitUntil([&] { return answeredSince(windows.back().second) >= 1; }, 20s,
                  "a client is answered after re-exec " + std::to_string(attempt));
    EXPECT_TRUE(served);
    if (!served) break;
  }
  // And go on being served after the last one: a request of each client, say.
  EXPECT_TRUE(waitUntil([&] { return answeredSince(windows.back().second) >= 3; }, 20s,
                        "3 clients are answered after the last re-exec"));
  stop = true;
  for (auto& t : loops) t.join();
  EXPECT_TRUE(allOk);

  int during = startedDuring(), failed = 0;
  for (const Run& run : runs) {
    if (run.result.exitCode != 0 || !contains(run.result.out, "slow start/pre-start")) {
      if (++failed <= 3) ADD_FAILURE() << "status during the re-exec: " << run.result.describe();
    }
  }
  EXPECT_EQ(failed, 0) << "of " << runs.size() << " status requests";
  EXPECT_GT(during, 0) << "no status request was started while the re-exec ran";

  CmdResult r = start.get();
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "slow start/running, process ")) << r.describe();
  EXPECT_EQ(b.statusLine("slow"), "slow start/running, process " + std::to_string(b.mainPid("slow")));
}

TEST_F(IntegrationReexec, BlockedClientAndBlindWindow) { blockedClientAndBlindWindow(b()); }

TEST_F(IntegrationReexecSubreaper, BlockedClientAndBlindWindow) { blockedClientAndBlindWindow(b()); }

// The same with the blind window held open (SlowTarget): clients that connect while no binary
// serves wait in the listen backlog and are answered by the new binary; none gets an error.
TEST_F(IntegrationReexec, ClientsConnectingInsideTheWindowAreServedAfterIt) {
  b().writeJob("slow", "pre-start exec sleep 2\nexec sleep 1000\n");
  BATON_START();
  const SlowTarget slow = slowTarget(b());
  auto start = inBackground(b(), {"start", "slow"});
  ASSERT_TRUE(b().waitStatus("slow", "slow start/pre-start", 5s)) << b().status("slow");
  auto rx = inBackground(b(), {"reexec", "--binary", slow.path});
  WindowCloser closer{slow};
  if (!slow.waitOpen()) {
    slow.close();
    FAIL() << "the re-exec did not reach the exec window: " << rx.get().describe();
  }
  std::vector<std::future<CmdResult>> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(inBackground(b(), {"status", "slow"}));
  clients.push_back(inBackground(b(), {"version"}));
  // Every client has connected and waits in the listen queue, where nobody accepts it while the
  // window is open.
  EXPECT_TRUE(waitUntil([&] { return pendingConnections(b().socket()) >= int(clients.size()); },
                        10s, "every client waits in the listen queue"))
      << pendingConnections(b().socket()) << " connections wait";
  int early = 0;
  for (auto& c : clients) early += c.wait_for(0s) == std::future_status::ready;
  slow.close();
  EXPECT_EQ(early, 0) << "answered while no binary was serving";
  for (size_t i = 0; i < clients.size(); ++i) {
    CmdResult c = clients[i].get();
    EXPECT_EQ(c.exitCode, 0) << c.describe();
    EXPECT_TRUE(contains(c.out, i + 1 < clients.size() ? "slow start/pre-start" : "baton")) << c.describe();
  }
  CmdResult x = rx.get();
  EXPECT_EQ(x.exitCode, 0) << x.describe();
  EXPECT_TRUE(contains(x.out, "re-exec: ok")) << x.describe();
  CmdResult r = start.get();
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "slow start/running, process ")) << r.describe();
}

// ---------------------------------------------------------------------------------------------
// 10. 200 re-execs while a job crashes and respawns every ~50 ms: no fd or zombie leak, the
//     steady service is untouched. (The jobs print nothing, so batond caches no log file.)

TEST_F(IntegrationReexec, TwoHundredReexecsLeakNothing) {
  b().writeJob("steady", "exec sleep 1000\n");
  b().writeJob("respawner", R"JOB(respawn
respawn limit unlimited
script
  sleep 0.05
  exit 1
end script
)JOB");
  b().writeJob("blip", "task\nexec true\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "steady"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  const pid_t steady = b().mainPid("steady");
  ASSERT_GT(steady, 0);
  const pid_t steadyHost = b().hostPid(steady);
  ASSERT_GT(steadyHost, 0);
  const uint64_t steadyStart = startTimeOf(steadyHost);
  const pid_t d = b().daemonHostPid();
  ASSERT_GT(d, 0);

  // The baseline once batond has closed the connections of the clients above.
  int base = -1, prev = -2;
  waitFor([&] {
    prev = base;
    base = fdCount(d);
    return base == prev;
  }, 5s, 200ms);
  const std::string baseListing = fdListing(d);
  ASSERT_GT(base, 0);

  r = b().ctl({"start", "respawner", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  const auto t0 = Clock::now();
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(reexecOk(b())) << "re-exec " << i;
    if (i % 10 == 5) {
      CmdResult s = b().ctl({"start", "blip", "-n"});
      EXPECT_EQ(s.exitCode, 0) << s.describe();
    }
  }
  const double took = secondsSince(t0);
  EXPECT_TRUE(contains(b().status("respawner"), "respawner start/")) << b().status("respawner");
  EXPECT_FALSE(contains(b().status("respawner"), "failed")) << b().status("respawner");
  r = b().ctl({"stop", "respawner"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatus("respawner", "respawner stop/waiting")) << b().status("respawner");
  EXPECT_TRUE(b().waitStatus("blip", "blip stop/waiting")) << b().status("blip");

  int now = -1;
  EXPECT_TRUE(waitFor([&] {
    now = fdCount(d);
    return now == base;
  }, 5s, 100ms)) << "fds before: " << base << "\n" << baseListing << "fds after 200 re-execs: " << now
                 << "\n" << fdListing(d);
  EXPECT_TRUE(waitFor([&] { return zombieChildren(d).empty(); }, 5s))
      << zombieChildren(d).size() << " zombie children of batond";
  EXPECT_EQ(b().mainPid("steady"), steady);
  EXPECT_EQ(startTimeOf(steadyHost), steadyStart) << "steady is not the same process";
  CmdResult l = b().ctl({"list"});
  EXPECT_EQ(l.exitCode, 0) << l.describe();
  EXPECT_TRUE(contains(l.out, "steady start/running, process " + std::to_string(steady) + "\n")) << l.out;
  EXPECT_TRUE(contains(l.out, "respawner stop/waiting\n")) << l.out;
  EXPECT_TRUE(contains(l.out, "blip stop/waiting\n")) << l.out;
  EXPECT_EQ(splitLines(l.out).size(), 3u) << l.out;
  // Only batond, steady and nothing else left in the namespace.
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 2; }, 5s))
      << b().daemonProcesses().size() << " processes in the namespace";
  RecordProperty("reexec_seconds", std::to_string(took));
}

// ---------------------------------------------------------------------------------------------
// 13. Pid identity: a slot whose pid now names another process is not the job's process.
//
// Constructed with `expect fork`: the followed child C is reaped by its real parent (the job's
// first process, which does not exit as a classic daemon's would), so batond never sees C exit;
// the parent then recycles pid C through ns_last_pid for an impostor that sleeps. Before the
// re-exec batond still shows "process C" (it cannot know); after it the start time no longer
// matches: the job has lost its process, and the impostor is left alone.
// `orphan`: the parent exits once the impostor exists, so the impostor is reparented to batond
// (PID 1) and becomes batond's own child, which must not make it the job's process either.

void recycledPidIsNotTheJobsProcess(Baton& b, bool orphan) {
  b.writeJob("reuse", std::string("expect fork\nexec @PROGS@/baton_pidreuse @WORK@/release @WORK@/info ") +
                          (orphan ? "orphan" : "stay") + "\n");
  ASSERT_NO_FATAL_FAILURE(startOrFail(b));
  CmdResult r = b.ctl({"start", "reuse"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  const pid_t tracked = b.mainPid("reuse");
  ASSERT_GT(tracked, 0) << b.status("reuse");
  ASSERT_TRUE(b.waitLog("reuse", "tracked child " + std::to_string(tracked) + "\n")) << b.readLog("reuse");
  const pid_t trackedHost = b.hostPid(tracked);
  ASSERT_GT(trackedHost, 0);
  const uint64_t trackedStart = startTimeOf(trackedHost);
  // A different start time (clock ticks since boot) for the impostor, forked after the release.
  ASSERT_TRUE(waitUntil([&] { return bootTicks() > trackedStart; }, 5s,
                        "a clock tick after the tracked child's start"));
  writeFile(b.work("release"), "");
  ASSERT_TRUE(waitFor([&] { return pathExists(b.work("info")); }, 10s)) << b.readLog("reuse");
  std::string info = readFile(b.work("info"));
  ASSERT_FALSE(contains(info, "error")) << info;
  int oldPid = 0, newPid = 0;
  ASSERT_EQ(sscanf(info.c_str(), "old %d new %d", &oldPid, &newPid), 2) << info;
  ASSERT_EQ(oldPid, tracked) << info;
  ASSERT_EQ(newPid, tracked) << "could not recycle the pid: " << info;
  const pid_t impostorHost = b.hostPid(newPid);
  ASSERT_GT(impostorHost, 0);
  const uint64_t impostorStart = startTimeOf(impostorHost);
  ASSERT_NE(impostorStart, trackedStart) << "same start time: the test cannot tell them apart";
  if (orphan) {
    const pid_t d = b.daemonHostPid();
    auto children = [&] { return childrenOf(d); };
    ASSERT_TRUE(waitFor([&] {
      auto c = children();
      return std::find(c.begin(), c.end(), impostorHost) != c.end();
    }, 5s)) << "the impostor was not reparented to batond";
  }
  // The precondition: batond still holds the stale pid.
  ASSERT_EQ(b.statusLine("reuse"), "reuse start/running, process " + std::to_string(tracked));

  ASSERT_TRUE(reexecOk(b));
  std::string st;
  EXPECT_TRUE(waitFor([&] {
    st = b.status("reuse");
    return contains(st, "reuse stop/waiting");
  }, 5s)) << "after the re-exec, pid " << tracked << " (now a process started at tick " << impostorStart
          << ", the job's was started at tick " << trackedStart
          << ") is still taken for the job's main process:\n" << st;
  EXPECT_FALSE(contains(st, "process " + std::to_string(tracked))) << st;
  EXPECT_TRUE(contains(b.daemonStderr(), "now names another process")) << b.daemonStderr();
  // The impostor was not killed: batond has handled the restore (the status above) without
  // signalling it.
  EXPECT_TRUE(notSignalled(impostorHost)) << "batond killed a process that is not the job's";
  EXPECT_EQ(startTimeOf(impostorHost), impostorStart);
  // Nor is it stopped as the job's process.
  r = b.ctl({"stop", "reuse"}, 10s);
  EXPECT_NE(r.exitCode, 0) << "the job should not be running any more: " << r.describe();
  // batond has answered the stop without signalling the impostor.
  EXPECT_TRUE(notSignalled(impostorHost)) << "`stop reuse` killed a process that is not the job's";
}

TEST_F(IntegrationReexec, RecycledPidIsNotTheJobsProcess) { recycledPidIsNotTheJobsProcess(b(), false); }

TEST_F(IntegrationReexec, RecycledPidAdoptedByBatondIsNotTheJobsProcess) {
  recycledPidIsNotTheJobsProcess(b(), true);
}

// The processes a re-exec keeps are the same processes: pid and start time of every job
// process (main, pre-start still running, instances) unchanged.
TEST_F(IntegrationReexec, PidsAndStartTimesUnchanged) {
  b().writeJob("svc", "exec sleep 1000\n");
  b().writeJob("inst", "instance $N\nexec sleep 1000\n");
  b().writeJob("pre", "pre-start exec sleep 1000\nexec sleep 1000\n");
  BATON_START();
  for (auto args : std::vector<std::vector<std::string>>{
           {"start", "svc"}, {"start", "inst", "N=a"}, {"start", "inst", "N=b"}, {"start", "pre", "-n"}}) {
    CmdResult r = b().ctl(args);
    ASSERT_EQ(r.exitCode, 0) << r.describe();
  }
  ASSERT_TRUE(b().waitStatus("pre", "pre start/pre-start")) << b().status("pre");
  auto snapshotPids = [&] {
    std::map<std::string, std::pair<pid_t, uint64_t>> out;
    auto add = [&](const std::string& what, pid_t pid) {
      pid_t host = b().hostPid(pid);
      out[what] = {pid, host > 0 ? startTimeOf(host) : 0};
    };
    add("svc", b().mainPid("svc"));
    add("inst a", b().mainPid("inst", "a"));
    add("inst b", b().mainPid("inst", "b"));
    add("pre pre-start", auxPid(b().status("pre"), "pre-start"));
    return out;
  };
  auto before = snapshotPids();
  for (auto& [what, p] : before) {
    EXPECT_GT(p.first, 0) << what;
    EXPECT_NE(p.second, 0u) << what;
  }
  ASSERT_TRUE(reexecOk(b()));
  ASSERT_TRUE(sigtermReexec(b()));
  EXPECT_EQ(snapshotPids(), before);
}

// ---------------------------------------------------------------------------------------------
// Re-exec into another copy of the binary, then back to the original.

TEST_F(IntegrationReexec, IntoACopyAndBack) {
  b().writeJob("steady", "exec sleep 1000\n");
  b().writeJob("held", "env BATON_TEST_HOLD_FIFO=@WORK@/go\nexec sleep 1000\n");
  b().hold("go");
  BATON_START();
  const std::string original = Baton::binDir() + "/batond";
  const std::string copy = b().dir() + "/batond-copy";
  std::error_code ec;
  std::filesystem::copy_file(original, copy, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(chmod(copy.c_str(), 0755), 0);

  CmdResult r = b().ctl({"start", "steady"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  r = b().ctl({"start", "held", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b().waitStatus("held", "(spawning)", 5s));
  const pid_t steady = b().mainPid("steady"), held = b().mainPid("held");
  const pid_t d = b().daemonHostPid();
  ASSERT_GT(d, 0);

  auto daemonBinary = [&] {
    CmdResult s = b().ctl({"status", "--daemon"});
    for (const auto& line : splitLines(s.out))
      if (line.rfind("binary: ", 0) == 0) return line.substr(8);
    return "(no binary line) " + s.describe();
  };
  EXPECT_EQ(daemonBinary(), original);

  r = b().ctl({"reexec", "--binary", copy}, 30s);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "re-exec: ok")) << r.describe();
  EXPECT_TRUE(contains(r.out, "to: " + copy + "\n")) << r.describe();
  EXPECT_EQ(daemonBinary(), copy);
  EXPECT_EQ(std::filesystem::read_symlink("/proc/" + std::to_string(d) + "/exe", ec).string(), copy);
  EXPECT_EQ(b().statusLine("steady"), "steady start/running, process " + std::to_string(steady));
  EXPECT_EQ(b().statusLine("held"), "held start/spawned, process " + std::to_string(held) + " (spawning)");

  r = b().ctl({"reexec", "--binary", original}, 30s);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "from: " + copy + "\n")) << r.describe();
  EXPECT_TRUE(contains(r.out, "to: " + original + "\n")) << r.describe();
  EXPECT_EQ(daemonBinary(), original);
  EXPECT_EQ(std::filesystem::read_symlink("/proc/" + std::to_string(d) + "/exe", ec).string(), original);
  EXPECT_EQ(b().statusLine("steady"), "steady start/running, process " + std::to_string(steady));

  b().release("go");
  EXPECT_TRUE(b().waitStatus("held", "held start/running, process " + std::to_string(held)))
      << b().status("held");
  CmdResult s = b().ctl({"status", "--daemon"});
  EXPECT_TRUE(contains(s.out, "last re-exec: ok")) << s.describe();
  EXPECT_TRUE(contains(s.out, "pid 1: yes")) << s.describe();
}

// ---------------------------------------------------------------------------------------------
// A restore leaves job classes encoded in the snapshot: a request, an event that concerns one or
// a child's exit decodes only that class; an event no expression mentions decodes none; the next
// re-exec copies the untouched ones across as bytes and they keep working.

// What `status --daemon` says about job classes held encoded (0 when it does not say).
int encodedJobs(Baton& b) {
  CmdResult s = b.ctl({"status", "--daemon"});
  const std::string key = "jobs held encoded (untouched since a restore or an idle encoding): ";
  for (const auto& line : splitLines(s.out))
    if (line.rfind(key, 0) == 0) return std::stoi(line.substr(key.size()));
  return 0;
}

// batond with --idle-encode-ms MS.
template <int MS>
class WithIdleEncoding : public BatonTest {
  Options options() override {
    Options o;
    o.idleEncodeMs = MS;
    return o;
  }
};

// Counting encoded classes only works if no idle encoding runs in between.
using IntegrationLazyClasses = WithIdleEncoding<0>;

TEST_F(IntegrationLazyClasses, JobsStayEncodedUntilTouched) {
  for (const char* name : {"a1", "a2", "a3"}) b().writeJob(name, "exec sleep 1000\n");
  b().writeJob("waiter", "start on ping\nexec sleep 1000\n");
  b().writeJob("other", "start on pong\nexec sleep 1000\n");
  BATON_START();
  for (const char* name : {"a1", "a2", "a3"}) {
    CmdResult r = b().ctl({"start", name});
    ASSERT_EQ(r.exitCode, 0) << r.describe();
  }
  const pid_t a1 = b().mainPid("a1"), a2 = b().mainPid("a2"), a3 = b().mainPid("a3");
  auto encoded = [&] { return encodedJobs(b()); };
  EXPECT_EQ(encoded(), 0) << "nothing was restored yet";
  ASSERT_TRUE(reexecOk(b()));
  ASSERT_TRUE(reexecOk(b()));  // the second copies the classes the first left encoded as bytes
  EXPECT_EQ(encoded(), 5);
  // A list reads held classes through decoded copies: it shows every job as it is and leaves
  // them all held.
  CmdResult r = b().ctl({"list"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(r.out, "a1 start/running, process " + std::to_string(a1) + "\n" +
                       "a2 start/running, process " + std::to_string(a2) + "\n" +
                       "a3 start/running, process " + std::to_string(a3) + "\n" +
                       "other stop/waiting\nwaiter stop/waiting\n");
  EXPECT_EQ(encoded(), 5) << "a list decoded jobs in the map";
  r = b().ctl({"emit", "unrelated"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(encoded(), 5) << "an event no job mentions decoded a job";
  r = b().ctl({"emit", "ping"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatus("waiter", "waiter start/running")) << b().status("waiter");
  EXPECT_EQ(encoded(), 4) << "only the job that `ping` starts is decoded";
  EXPECT_EQ(b().statusLine("a1"), "a1 start/running, process " + std::to_string(a1));
  EXPECT_EQ(encoded(), 3);
  // A child's exit decodes its job: a3's main process is killed, reaped and its job stops.
  const pid_t host = b().hostPid(a3);
  ASSERT_GT(host, 0);
  ASSERT_EQ(kill(host, SIGKILL), 0);
  EXPECT_TRUE(b().waitStatus("a3", "a3 stop/waiting")) << b().status("a3");
  EXPECT_EQ(encoded(), 2);
  r = b().ctl({"stop", "a2"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(b().statusLine("a2"), "a2 stop/waiting")) << b().status("a2");
  EXPECT_EQ(b().statusLine("other"), "other stop/waiting");
  // Decoded or copied, everything crosses the next re-exec as it is.
  ASSERT_TRUE(reexecOk(b()));
  EXPECT_EQ(encoded(), 5);
  EXPECT_EQ(b().statusLine("a1"), "a1 start/running, process " + std::to_string(a1));
  EXPECT_TRUE(contains(b().statusLine("waiter"), "waiter start/running")) << b().status("waiter");
  EXPECT_EQ(b().statusLine("a3"), "a3 stop/waiting");
  r = b().ctl({"emit", "pong"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatus("other", "other start/running")) << b().status("other");
}

using IntegrationIdleEncoding = WithIdleEncoding<300>;

// Jobs are held encoded a moment after activity, and everything still works on them: a status,
// a spawn in flight completing, an event, a stop, a child's death and respawn, a re-exec.
TEST_F(IntegrationIdleEncoding, JobsAreHeldEncodedAfterActivityAndStillWork) {
  for (const char* name : {"a1", "a2", "a3", "a4"}) b().writeJob(name, "start on startup\nexec sleep 1000\n");
  b().writeJob("keeper", "start on startup\nrespawn\nexec sleep 1000\n");
  b().writeJob("waiter", "start on ping\nexec sleep 1000\n");
  b().writeJob("chatty", "start on startup\nscript\n  echo hello-from-chatty\n  exec sleep 1000\nend script\n");
  // Half-way through its spawn (the test hook holds the child before exec) and holding the
  // `startup` event: held encoded as well, and it goes on when the child is let go.
  b().writeJob("midway", "start on startup\nenv BATON_TEST_HOLD_FIFO=@WORK@/go\nexec sleep 1000\n");
  b().hold("go");
  BATON_START();
  for (const char* name : {"a1", "a2", "a3", "a4", "keeper", "chatty"})
    ASSERT_TRUE(b().waitStatus(name, std::string(name) + " start/running")) << b().status(name);
  ASSERT_TRUE(b().waitStatus("midway", "(spawning)")) << b().status("midway");
  const pid_t a1 = b().mainPid("a1"), keeper = b().mainPid("keeper");
  ASSERT_GT(a1, 0);
  ASSERT_GT(keeper, 0);
  // All eight classes (`waiter` has never run) end up held: each status request decodes one,
  // and the next pass holds it again.
  EXPECT_TRUE(waitFor([&] { return encodedJobs(b()) == 8; }, 10s, 100ms)) << encodedJobs(b());
  b().release("go");
  EXPECT_TRUE(b().waitStatus("midway", "midway start/running")) << b().status("midway");
  EXPECT_TRUE(waitFor([&] { return encodedJobs(b()) == 8; }, 10s, 100ms)) << encodedJobs(b());
  EXPECT_TRUE(b().waitLog("chatty", "hello-from-chatty")) << "the log pipe is not a class: it keeps working";
  EXPECT_EQ(b().statusLine("a1"), "a1 start/running, process " + std::to_string(a1));
  CmdResult r = b().ctl({"emit", "ping"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatus("waiter", "waiter start/running")) << b().status("waiter");
  r = b().ctl({"stop", "a2"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(b().statusLine("a2"), "a2 stop/waiting");
  EXPECT_TRUE(waitFor([&] { return encodedJobs(b()) == 8; }, 10s, 100ms)) << encodedJobs(b());
  // The reaper finds a held job's process by its pid: killed from outside, it is respawned.
  const pid_t host = b().hostPid(keeper);
  ASSERT_GT(host, 0);
  ASSERT_EQ(kill(host, SIGKILL), 0);
  EXPECT_TRUE(waitFor([&] {
    const pid_t now = b().mainPid("keeper");
    return now > 0 && now != keeper;
  })) << b().status("keeper");
  EXPECT_TRUE(waitFor([&] { return encodedJobs(b()) == 8; }, 10s, 100ms)) << encodedJobs(b());
  // Held classes cross a re-exec (copied as bytes) and are what they were.
  ASSERT_TRUE(reexecOk(b()));
  ASSERT_TRUE(reexecOk(b()));
  EXPECT_EQ(b().statusLine("a1"), "a1 start/running, process " + std::to_string(a1));
  EXPECT_EQ(b().statusLine("a2"), "a2 stop/waiting");
  EXPECT_TRUE(contains(b().statusLine("waiter"), "waiter start/running")) << b().status("waiter");
  r = b().ctl({"stop", "a3"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(b().statusLine("a3"), "a3 stop/waiting");
}

}  // namespace
}  // namespace baton::itest
