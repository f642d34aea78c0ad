// Deterministic tests of the in-flight spawn protocol. (The state machine's transition table:
// state_machine_test.cpp.)
//
// SpawnOrder*: a real Supervisor (no event loop) is driven by hand through SupervisorTestPeer.
// Each job's process is held in setup (`BATON_TEST_HOLD_FIFO`), released, and waited for WITHOUT
// reaping it (waitid(..., WNOWAIT)); then the two things the loop could see first, "child exited"
// (reapChildren) and "status pipe EOF / failure record" (onStatusPipe), are applied in the order
// under test. job_state.h promises that the outcome of a spawn is applied exactly once, whichever
// comes first: an exit seen first is stored (earlyExit) and applied right after the pipe's outcome.
//
// The test process is the parent of the children and reapChildren() uses waitid(P_ALL): one
// Supervisor per test, nothing else that forks. Signal mask, SIGPIPE disposition and the child
// subreaper flag that Supervisor::start() changes are restored after each test.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "schema/model.h"
#include "supervisor/job_state.h"
#include "supervisor/supervisor.h"

namespace baton {

// Calls the Supervisor's private members (declared a friend in supervisor.h) and, through them,
// its parts: the job engine, the reaper and the answers to waiting requests.
class SupervisorTestPeer {
 public:
  // What `batonctl start -n JOB` does: the instance gets the job's start environment (which is
  // where `env BATON_TEST_HOLD_FIFO=...` comes from), then goal start.
  static ::testing::AssertionResult startJob(Supervisor& s, const std::string& job) {
    JobEngine& jobs = s.jobs_;
    JobClass* cls = jobs.findClass(job);
    if (!cls) return ::testing::AssertionFailure() << "no job " << job;
    std::vector<std::string> env;
    std::string instName, error;
    if (!jobs.startEnvironment(*cls, {}, "", env, instName, error))
      return ::testing::AssertionFailure() << "start environment: " << error;
    Instance& inst = jobs.instanceFor(*cls, instName);
    inst.env = env;
    jobs.changeGoal(*cls, inst, Goal::Start);
    return ::testing::AssertionSuccess();
  }
  static void stopJob(Supervisor& s, const std::string& job) {
    JobClass* cls = s.jobs_.findClass(job);
    Instance* inst = s.jobs_.findInstance(job, "");
    ASSERT_TRUE(cls && inst) << job;
    s.jobs_.changeGoal(*cls, *inst, Goal::Stop);
  }
  static void reapChildren(Supervisor& s) { s.reapChildren(); }
  static void onStatusPipe(Supervisor& s, const std::string& job, ProcessType type = ProcessType::Main) {
    s.jobs_.onStatusPipe(job, "", type);
  }
  static void onLogPipe(Supervisor& s, int fd) { s.jobs_.onLogPipe(fd); }
  // The end of one loop iteration: events, then the deferred answers.
  static void settle(Supervisor& s) {
    s.jobs_.pollEvents();
    s.control_.flushDeferredAnswers();
  }
  static Model& mutableModel(Supervisor& s) { return s.model_; }
  static bool pidIndexed(const Supervisor& s, pid_t pid) { return s.pids_.count(pid) != 0; }
  static bool fdWatched(const Supervisor& s, int fd) { return s.watches_.contains(fd); }
};

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Peer = SupervisorTestPeer;

std::atomic<int> gCounter{0};

std::string readWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Poll `pred` (every millisecond) until it is true or `timeout` passes.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(1ms);
  }
}

// Wait until `pid` (our child) has exited, leaving it unreaped (a zombie) for reapChildren.
bool waitExitedNoReap(pid_t pid, std::chrono::milliseconds timeout = 10s) {
  return eventually([&] {
    siginfo_t si{};
    return waitid(P_PID, id_t(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
  }, timeout);
}

// Still there (not exited), without reaping anything.
bool notExited(pid_t pid) {
  siginfo_t si{};
  return waitid(P_PID, id_t(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

// Wait until a status pipe has something to say (EOF or a failure record).
bool waitReadable(int fd, int timeoutMs = 10000) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeoutMs) == 1;
}

// Bytes waiting in a pipe (either end), -1 on error.
int bytesInPipe(int fd) {
  int n = -1;
  return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

// `pid` is blocked in read(2) on the pipe that `ourFd` (an fd of this process) is an end of:
// /proc/PID/syscall shows the call and its fd while the process sleeps in it.
bool blockedReading(pid_t pid, int ourFd) {
  std::istringstream in(readWhole("/proc/" + std::to_string(pid) + "/syscall"));
  long nr = -1;
  std::string fdHex;
  if (!(in >> nr >> fdHex) || nr != SYS_read) return false;
  auto target = [](const std::string& link) {
    std::error_code ec;
    return fs::read_symlink(link, ec).string();
  };
  const std::string fd = std::to_string(std::stol(fdHex, nullptr, 16));
  return target("/proc/" + std::to_string(pid) + "/fd/" + fd) ==
         target("/proc/self/fd/" + std::to_string(ourFd));
}

int countEvents(const Model& m, const std::string& name) {
  int n = 0;
  for (const Event& e : m.events) n += e.name == name;
  return n;
}

// Which parts of two models differ (for assertion messages).
std::string modelDiff(const Model& a, const Model& b) {
  std::string out;
  if (a.events != b.events) {
    out += "events:";
    for (const Event& e : a.events) out += " " + e.name;
    out += " ->";
    for (const Event& e : b.events) out += " " + e.name;
    out += "\n";
  }
  if (a.nextEventId != b.nextEventId)
    out += "nextEventId " + std::to_string(a.nextEventId) + " -> " + std::to_string(b.nextEventId) + "\n";
  if (a.logPipes != b.logPipes) out += "logPipes\n";
  if (a.connections != b.connections) out += "connections\n";
  // Read as they are, decoded or through a decoded copy (no loop runs here, so no class is held,
  // but a diff must not change what it compares).
  JobClass copyA, copyB;
  for (auto& [name, held] : a.classes) {
    auto it = b.classes.find(name);
    if (it == b.classes.end()) { out += "class " + name + " gone\n"; continue; }
    const JobClass& cls = ClassMap::readOnly(held, copyA);
    const JobClass& other = ClassMap::readOnly(it->second, copyB);
    for (auto& [iname, x] : cls.instances) {
      auto jt = other.instances.find(iname);
      if (jt == other.instances.end()) { out += name + ": instance gone\n"; continue; }
      const Instance& y = jt->second;
      if (x.state != y.state)
        out += name + ": state " + jobStateName(x.state) + " -> " + jobStateName(y.state) + "\n";
      if (x.goal != y.goal) out += name + ": goal " + goalName(x.goal) + " -> " + goalName(y.goal) + "\n";
      if (x.failed != y.failed || x.failReason != y.failReason)
        out += name + ": failure [" + x.failReason + "] -> [" + y.failReason + "]\n";
      if (x.procs != y.procs) out += name + ": process slots\n";
      if (x.blocker != y.blocker) out += name + ": blocker\n";
      if (x.blocking != y.blocking) out += name + ": blocking\n";
      if (x.killDeadlineNs != y.killDeadlineNs) out += name + ": kill deadline\n";
      if (x.respawnCount != y.respawnCount) out += name + ": respawn count\n";
    }
  }
  if (out.empty() && !(a == b)) out = "(other fields)\n";
  return out;
}

class SpawnOrderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sigprocmask(SIG_SETMASK, nullptr, &savedMask_);
    char tmpl[] = "/tmp/baton-spawnorder-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << strerror(errno);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/conf");
  }

  void TearDown() override {
    if (sup_) {
      Model& m = Peer::mutableModel(*sup_);
      // Kill and reap whatever this test left behind (only our own children, by pid), in every
      // class, decoded or held.
      m.classes.forEachSlot([](const std::string&, const std::string&, ProcessType, const ProcessSlot& slot,
                               TraceState) {
        if (slot.pid > 0 && !slot.earlyExit) {  // an early exit is already reaped
          kill(slot.pid, SIGKILL);
          waitpid(slot.pid, nullptr, 0);
        }
        if (slot.statusFd >= 0) close(slot.statusFd);
        if (slot.scriptFd >= 0) close(slot.scriptFd);
      });
      for (LogPipe& lp : m.logPipes) close(lp.fd);
      if (m.listenFd >= 0) close(m.listenFd);
      sup_.reset();
    }
    for (auto& [name, fd] : holds_) close(fd);
    // Zombies of children the test released but did not reap (a failed assertion).
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    sigprocmask(SIG_SETMASK, &savedMask_, nullptr);
    signal(SIGPIPE, SIG_DFL);
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // A hold FIFO for the test hook `BATON_TEST_HOLD_FIFO=PATH`, with a writer kept open here.
  // The children are forked by this process and inherit that writer until their exec, so
  // closing it would let none of them go: releaseAndWaitExit() writes one byte instead, which
  // releases exactly one held child, and the next process spawned is held again. Returns PATH.
  std::string hold(const std::string& name) {
    const std::string fifo = path(name);
    int fd = -1;
    if (mkfifo(fifo.c_str(), 0600) != 0 || (fd = open(fifo.c_str(), O_RDWR | O_CLOEXEC)) < 0)
      ADD_FAILURE() << "hold " << fifo << ": " << strerror(errno);
    holds_[name] = fd;
    return fifo;
  }

  void writeJob(const std::string& name, const std::string& content) {
    std::ofstream(path("conf/" + name + ".conf")) << content;
  }

  // Construct and start() a Supervisor on the temp dir (socket, jobs, `startup`; no loop).
  void startSupervisor() {
    Options o;
    o.config.confDir = path("conf");
    o.config.socketPath = path("sock");
    o.config.logDir = path("log");
    o.config.cgroupBase =
        "baton-unit-" + std::to_string(getpid()) + "-" + std::to_string(gCounter++);
    o.config.testHooks = true;
    o.config.logPriority = "error";
    sup_ = std::make_unique<Supervisor>(o);
    ASSERT_TRUE(sup_->start());
    ASSERT_TRUE(sup_->model().configProblems.empty());
  }

  Supervisor& s() { return *sup_; }
  const Model& model() { return sup_->model(); }
  // No loop runs here, so no idle encoding: every class is decoded (values).
  const Instance& inst(const std::string& job) {
    auto it = model().classes.find(job);
    if (it == model().classes.end() || it->second.encoded)
      throw std::logic_error(job + ": missing or held encoded");
    return it->second.instances.at("");
  }
  const ProcessSlot& slot(const std::string& job, ProcessType t = ProcessType::Main) {
    return inst(job).procs[int(t)];
  }

  // Start `job` and run its events until it rests in `spawned` with its main process held.
  void startHeld(const std::string& job) {
    ASSERT_TRUE(Peer::startJob(s(), job));
    Peer::settle(s());
    const Instance& i = inst(job);
    ASSERT_EQ(i.state, JobState::Spawned) << jobStateName(i.state);
    ASSERT_EQ(i.goal, Goal::Start);
    const ProcessSlot& m = i.procs[0];
    ASSERT_GT(m.pid, 0);
    ASSERT_TRUE(m.spawnValid);
    ASSERT_GE(m.statusFd, 0);
    ASSERT_FALSE(m.earlyExit);
    ASSERT_TRUE(Peer::pidIndexed(s(), m.pid));
    ASSERT_TRUE(Peer::fdWatched(s(), m.statusFd));
    // Held for real: asleep in read(2) on a hold FIFO, which nothing but a release ends.
    ASSERT_TRUE(eventually([&] {
      for (auto& [name, fd] : holds_)
        if (blockedReading(m.pid, fd)) return true;
      return false;
    })) << "not held: /proc/PID/syscall: " << readWhole("/proc/" + std::to_string(m.pid) + "/syscall");
  }

  // While the child is held neither handler has anything to apply.
  void expectNothingReadyWhileHeld(const std::string& job) {
    Model before = model();
    Peer::onStatusPipe(s(), job);
    Peer::reapChildren(s());
    Peer::settle(s());
    EXPECT_TRUE(model() == before) << "a handler acted on a child that is still held in setup";
  }

  // Release one child held on hold(NAME), and wait until it has exited (not reaped).
  void releaseAndWaitExit(const std::string& name, pid_t pid) {
    ASSERT_NO_FATAL_FAILURE(releaseOne(name));
    ASSERT_TRUE(waitExitedNoReap(pid)) << "child " << pid << " did not exit";
  }
  void releaseOne(const std::string& name) {
    ASSERT_EQ(write(holds_.at(name), "x", 1), 1) << strerror(errno);
  }

  // Calling every handler again changes nothing: the outcome was applied once.
  void expectNoSecondApplication(const std::string& job) {
    Model before = model();
    Peer::reapChildren(s());
    Peer::onStatusPipe(s(), job);
    Peer::settle(s());
    EXPECT_TRUE(model() == before) << "a handler applied something a second time:\n"
                                   << modelDiff(before, model());
  }

  std::string dir_;
  std::map<std::string, int> holds_;  // hold(): name -> the writer's fd
  sigset_t savedMask_;
  std::unique_ptr<Supervisor> sup_;
};

// ---------------------------------------------------------------------------------------------
// A task whose main process execs /bin/true: successful exec, then exit 0.

std::string trueTask(const std::string& hold) {
  return "task\nenv BATON_TEST_HOLD_FIFO=" + hold + "\nexec /bin/true\n";
}

class SpawnOrderSuccess : public SpawnOrderTest {};

// (a) status pipe EOF first, then the exit. The EOF confirms the exec: spawned -> ... -> running
// (emits `started`; a task waits there for its main process). The exit then ends the task:
// goal stop, stopping -> killed -> post-stop -> waiting, no failure.
TEST_F(SpawnOrderSuccess, EofThenExit) {
  writeJob("t", trueTask(hold("go")));
  ASSERT_NO_FATAL_FAILURE(startSupervisor());
  const uint64_t ev0 = model().nextEventId;
  ASSERT_NO_FATAL_FAILURE(startHeld("t"));
  const pid_t pid = slot("t").pid;
  const int statusFd = slot("t").statusFd;
  ASSERT_NO_FATAL_FAILURE(expectNothingReadyWhileHeld("t"));
  ASSERT_NO_FATAL_FAILURE(releaseAndWaitExit("go", pid));

  Peer::onStatusPipe(s(), "t");  // EOF: the exec happened (the child has exited, EOF is certain)
  EXPECT_EQ(inst("t").state, JobState::Running) << jobStateName(inst("t").state);
  EXPECT_EQ(inst("t").goal, Goal::Start);
  EXPECT_FALSE(slot("t").spawnValid);
  EXPECT_EQ(slot("t").statusFd, -1);
  EXPECT_FALSE(Peer::fdWatched(s(), statusFd));
  EXPECT_EQ(slot("t").pid, pid) << "EOF is not an exit: the process is still ours to reap";
  EXPECT_TRUE(Peer::pidIndexed(s(), pid));
  EXPECT_EQ(countEvents(model(), "started"), 1);
  EXPECT_FALSE(inst("t").failed);

  Peer::reapChildren(s());  // the exit: the task is complete
  EXPECT_EQ(slot("t").pid, 0);
  EXPECT_FALSE(Peer::pidIndexed(s(), pid));
  EXPECT_EQ(inst("t").goal, Goal::Stop);
  EXPECT_EQ(inst("t").state, JobState::Stopping) << jobStateName(inst("t").state);
  EXPECT_EQ(countEvents(model(), "stopping"), 1);

  Peer::settle(s());
  EXPECT_EQ(inst("t").state, JobState::Waiting) << jobStateName(inst("t").state);
  EXPECT_EQ(inst("t").goal, Goal::Stop);
  EXPECT_FALSE(inst("t").failed) << inst("t").failReason;
  EXPECT_TRUE(model().events.empty());
  // starting, started, stopping, stopped: each once.
  EXPECT_EQ(model().nextEventId - ev0, 4u);
  EXPECT_NO_FATAL_FAILURE(expectNoSecondApplication("t"));
}

// (b) the exit first: reapChildren only stores it (earlyExit), the state does not move. The EOF
// then applies the outcome (success) and right after it the stored exit, in `spawned`: as
// job_state.h says, an early exit is handled like any exit of the main process there, so the
// task goes spawned -> stopping without passing `running` (no `started`). Same end result.
TEST_F(SpawnOrderSuccess, ExitThenEof) {
  writeJob("t", trueTask(hold("go")));
  ASSERT_NO_FATAL_FAILURE(startSupervisor());
  const uint64_t ev0 = model().nextEventId;
  ASSERT_NO_FATAL_FAILURE(startHeld("t"));
  const pid_t pid = slot("t").pid;
  ASSERT_NO_FATAL_FAILURE(releaseAndWaitExit("go", pid));

  Peer::reapChildren(s());
  EXPECT_EQ(inst("t").state, JobState::Spawned) << jobStateName(inst("t").state);
  EXPECT_EQ(inst("t").goal, Goal::Start);
  EXPECT_TRUE(slot("t").spawnValid);
  EXPECT_TRUE(slot("t").earlyExit);
  EXPECT_TRUE(WIFEXITED(slot("t").earlyExitStatus) && WEXITSTATUS(slot("t").earlyExitStatus) == 0)
      << slot("t").earlyExitStatus;
  EXPECT_EQ(slot("t").pid, pid);
  EXPECT_GE(slot("t").statusFd, 0);
  EXPECT_FALSE(Peer::pidIndexed(s(), pid)) << "the pid is reaped: it must leave the pid index";
  // Reaping again finds nothing new.
  Model afterReap = model();
  Peer::reapChildren(s());
  EXPECT_TRUE(model() == afterReap);

  Peer::onStatusPipe(s(), "t");
  EXPECT_FALSE(slot("t").spawnValid);
  EXPECT_FALSE(slot("t").earlyExit);
  EXPECT_EQ(slot("t").pid, 0);
  EXPECT_EQ(slot("t").statusFd, -1);
  EXPECT_EQ(inst("t").goal, Goal::Stop);
  EXPECT_EQ(inst("t").state, JobState::Stopping) << jobStateName(inst("t").state);
  EXPECT_EQ(countEvents(model(), "stopping"), 1);
  EXPECT_EQ(countEvents(model(), "started"), 0);

  Peer::settle(s());
  EXPECT_EQ(inst("t").state, JobState::Waiting) << jobStateName(inst("t").state);
  EXPECT_FALSE(inst("t").failed) << inst("t").failReason;
  EXPECT_TRUE(model().events.empty());
  // starting, stopping, stopped.
  EXPECT_EQ(model().nextEventId - ev0, 3u);
  EXPECT_NO_FATAL_FAILURE(expectNoSecondApplication("t"));
}

// ---------------------------------------------------------------------------------------------
// A setup failure: chdir to a missing directory. The child writes its failure record and exits
// 255. job_state.h (spawned): a setup failure fails the job; the exit belongs to that failure
// and is not applied a second time.

class SpawnOrderFailure : public SpawnOrderTest {
 protected:
  void checkFailedOnce(pid_t pid) {
    const Instance& i = inst("t");
    EXPECT_TRUE(i.failed);
    EXPECT_NE(i.failReason.find("chdir"), std::string::npos) << i.failReason;
    EXPECT_EQ(i.failedProcess, ProcessType::Main);
    EXPECT_TRUE(WIFEXITED(i.exitStatus) && WEXITSTATUS(i.exitStatus) == 255) << i.exitStatus;
    EXPECT_EQ(i.goal, Goal::Stop);
    EXPECT_EQ(slot("t").pid, 0);
    EXPECT_FALSE(slot("t").spawnValid);
    EXPECT_FALSE(slot("t").earlyExit);
    EXPECT_EQ(slot("t").statusFd, -1);
    EXPECT_FALSE(Peer::pidIndexed(s(), pid));
  }
};

std::string chdirFailTask(const std::string& hold) {
  return "task\nenv BATON_TEST_HOLD_FIFO=" + hold + "\nchdir /nonexistent/baton-spawn-order\nexec /bin/true\n";
}

// (c) failure record first, then the exit.
TEST_F(SpawnOrderFailure, RecordThenExit) {
  writeJob("t", chdirFailTask(hold("go")));
  ASSERT_NO_FATAL_FAILURE(startSupervisor());
  const uint64_t ev0 = model().nextEventId;
  ASSERT_NO_FATAL_FAILURE(startHeld("t"));
  const pid_t pid = slot("t").pid;
  ASSERT_NO_FATAL_FAILURE(releaseAndWaitExit("go", pid));

  Peer::onStatusPipe(s(), "t");
  ASSERT_NO_FATAL_FAILURE(checkFailedOnce(pid));
  EXPECT_EQ(inst("t").state, JobState::Stopping) << jobStateName(inst("t").state);
  EXPECT_EQ(countEvents(model(), "started"), 0);
  EXPECT_EQ(countEvents(model(), "stopping"), 1);

  // The exit: the pid is no longer the job's, nothing changes.
  Model before = model();
  Peer::reapChildren(s());
  EXPECT_TRUE(model() == before) << "the exit of a failed spawn was applied a second time";
  EXPECT_FALSE(waitExitedNoReap(pid, 50ms)) << "the zombie must have been reaped";

  Peer::settle(s());
  EXPECT_EQ(inst("t").state, JobState::Waiting) << jobStateName(inst("t").state);
  ASSERT_NO_FATAL_FAILURE(checkFailedOnce(pid));
  EXPECT_EQ(model().nextEventId - ev0, 3u);  // starting, stopping, stopped
  EXPECT_NO_FATAL_FAILURE(expectNoSecondApplication("t"));
}

// (d) the exit first (stored), then the failure record: failed once, with the record's reason
// and the real exit status.
TEST_F(SpawnOrderFailure, ExitThenRecord) {
  writeJob("t", chdirFailTask(hold("go")));
  ASSERT_NO_FATAL_FAILURE(startSupervisor());
  const uint64_t ev0 = model().nextEventId;
  ASSERT_NO_FATAL_FAILURE(startHeld("t"));
  const pid_t pid = slot("t").pid;
  ASSERT_NO_FATAL_FAILURE(releaseAndWaitExit("go", pid));

  Peer::reapChildren(s());
  EXPECT_EQ(inst("t").state, JobState::Spawned) << jobStateName(inst("t").state);
  EXPECT_FALSE(inst("t").failed);
  EXPECT_TRUE(slot("t").spawnValid);
  EXPECT_TRUE(slot("t").earlyExit);
  EXPECT_TRUE(WIFEXITED(slot("t").earlyExitStatus) && WEXITSTATUS(slot("t").earlyExitStatus) == 255)
      << slot("t").earlyExitStatus;

  Peer::onStatusPipe(s(), "t");
  ASSERT_NO_FATAL_FAILURE(checkFailedOnce(pid));
  EXPECT_EQ(inst("t").state, JobState::Stopping) << jobStateName(inst("t").state);
  EXPECT_EQ(countEvents(model(), "stopping"), 1);

  Peer::settle(s());
  EXPECT_EQ(inst("t").state, JobState::Waiting) << jobStateName(inst("t").state);
  ASSERT_NO_FATAL_FAILURE(checkFailedOnce(pid));
  EXPECT_EQ(model().nextEventId - ev0, 3u);  // starting, stopping, stopped
  EXPECT_NO_FATAL_FAILURE(expectNoSecondApplication("t"));
}

// A respawning service whose setup fails is failed and stopped, never respawned ("a process that
// never ran is a failure, never a reason to respawn"), in both orders.
class SpawnOrderFailureRespawn : public SpawnOrderFailure {
 protected:
  void run(bool exitFirst);
};

void SpawnOrderFailureRespawn::run(bool exitFirst) {
  writeJob("t", "respawn\nenv BATON_TEST_HOLD_FIFO=" + hold("go") +
                    "\nchdir /nonexistent/baton-spawn-order\nexec /bin/sleep 1000\n");
  ASSERT_NO_FATAL_FAILURE(startSupervisor());
  ASSERT_NO_FATAL_FAILURE(startHeld("t"));
  const pid_t pid = slot("t").pid;
  ASSERT_NO_FATAL_FAILURE(releaseAndWaitExit("go", pid));
  if (exitFirst) Peer::reapChildren(s());
  Peer::onStatusPipe(s(), "t");
  if (!exitFirst) Peer::reapChildren(s());
  ASSERT_NO_FATAL_FAILURE(checkFailedOnce(pid));
  EXPECT_EQ(inst("t").respawnCount, 0u);
  Peer::settle(s());
  EXPECT_EQ(inst("t").state, JobState::Waiting) << jobStateName(inst("t").state);
  EXPECT_EQ(inst("t").goal, Goal::Stop);
  EXPECT_EQ(slot("t").pid, 0) << "respawned after a setup failure";
  EXPECT_EQ(inst("t").respawnCount, 0u);
  EXPECT_NO_FATAL_FAILURE(expectNoSecondApplication("t"));
}

TEST_F(SpawnOrderFailureRespawn, RecordFirst) { run(false); }
TEST_F(SpawnOrderFailureRespawn, ExitFirst) { run(true); }

// ---------------------------------------------------------------------------------------------
// A respawning service (main exits 3): each exit counts once towards the respawn limit, in
// either order. Rounds alternate the orders; each new main process is held again (a release
// lets one child go).

TEST_F(SpawnOrderSuccess, RespawnCountsEachExitOnce) {
  writeJob("r", "respawn\nrespawn limit 10 60\nenv BATON_TEST_HOLD_FIFO=" + hold("go") +
                    "\nexec /bin/sh -c \"exit 3\"\n");
  ASSERT_NO_FATAL_FAILURE(startSupervisor());
  ASSERT_NO_FATAL_FAILURE(startHeld("r"));
  const int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    const bool exitFirst = round % 2 == 1;
    SCOPED_TRACE("round " + std::to_string(round) + (exitFirst ? " (exit first)" : " (EOF first)"));
    ASSERT_EQ(inst("r").state, JobState::Spawned) << jobStateName(inst("r").state);
    const pid_t pid = slot("r").pid;
    ASSERT_GT(pid, 0);
    ASSERT_EQ(inst("r").respawnCount, uint32_t(round));
    ASSERT_NO_FATAL_FAILURE(releaseAndWaitExit("go", pid));

    if (exitFirst) {
      Peer::reapChildren(s());
      EXPECT_TRUE(slot("r").earlyExit);
      EXPECT_EQ(inst("r").state, JobState::Spawned);
      EXPECT_EQ(inst("r").respawnCount, uint32_t(round)) << "an early exit must only be stored";
      Peer::onStatusPipe(s(), "r");
    } else {
      Peer::onStatusPipe(s(), "r");
      EXPECT_EQ(inst("r").state, JobState::Running) << jobStateName(inst("r").state);
      EXPECT_EQ(inst("r").respawnCount, uint32_t(round));
      Peer::reapChildren(s());
    }
    EXPECT_EQ(inst("r").respawnCount, uint32_t(round + 1));
    EXPECT_EQ(inst("r").goal, Goal::Start) << "respawn goes through stopping with goal start";
    EXPECT_EQ(inst("r").state, JobState::Stopping) << jobStateName(inst("r").state);
    EXPECT_FALSE(inst("r").failed) << inst("r").failReason;
    EXPECT_EQ(slot("r").pid, 0);
    // Handlers again before the respawn: no second count.
    Model before = model();
    Peer::reapChildren(s());
    Peer::onStatusPipe(s(), "r");
    EXPECT_TRUE(model() == before);

    Peer::settle(s());  // stopping -> killed -> post-stop -> starting -> ... -> spawned
    EXPECT_EQ(inst("r").respawnCount, uint32_t(round + 1));
    ASSERT_EQ(inst("r").state, JobState::Spawned) << jobStateName(inst("r").state);
    EXPECT_NE(slot("r").pid, pid);
  }
  // Stop the held one: spawned -> stopping at once, killed kills the held child.
  ASSERT_NO_FATAL_FAILURE(Peer::stopJob(s(), "r"));
  const pid_t last = slot("r").pid;
  Peer::settle(s());
  ASSERT_EQ(inst("r").state, JobState::Killed) << jobStateName(inst("r").state);
  ASSERT_TRUE(waitExitedNoReap(last));
  Peer::reapChildren(s());
  Peer::onStatusPipe(s(), "r");
  Peer::settle(s());
  EXPECT_EQ(inst("r").state, JobState::Waiting) << jobStateName(inst("r").state);
  EXPECT_EQ(inst("r").respawnCount, uint32_t(kRounds));
  EXPECT_FALSE(inst("r").failed) << inst("r").failReason;
}

// ---------------------------------------------------------------------------------------------
// Stop while the main process is held in setup (spawned, goal stop -> stopping at once; the
// child is killed in `killed`). Its death closes the status pipe: an EOF that is no exec, plus
// an exit. Either order ends in waiting, not failed, once.

class SpawnOrderStopWhileHeld : public SpawnOrderTest {
 protected:
  void run(bool exitFirst);
};

void SpawnOrderStopWhileHeld::run(bool exitFirst) {
  writeJob("h", "env BATON_TEST_HOLD_FIFO=" + hold("never") + "\nexec /bin/sleep 1000\n");
  ASSERT_NO_FATAL_FAILURE(startSupervisor());
  const uint64_t ev0 = model().nextEventId;
  ASSERT_NO_FATAL_FAILURE(startHeld("h"));
  const pid_t pid = slot("h").pid;

  ASSERT_NO_FATAL_FAILURE(Peer::stopJob(s(), "h"));
  EXPECT_EQ(inst("h").state, JobState::Stopping) << jobStateName(inst("h").state);
  Peer::settle(s());
  ASSERT_EQ(inst("h").state, JobState::Killed) << jobStateName(inst("h").state);
  EXPECT_NE(inst("h").killDeadlineNs, 0);
  ASSERT_TRUE(waitExitedNoReap(pid)) << "the held child was not killed";

  if (exitFirst) {
    Peer::reapChildren(s());
    EXPECT_TRUE(slot("h").earlyExit);
    EXPECT_EQ(inst("h").state, JobState::Killed);
    Peer::onStatusPipe(s(), "h");
  } else {
    Peer::onStatusPipe(s(), "h");
    EXPECT_FALSE(slot("h").spawnValid);
    EXPECT_EQ(slot("h").pid, pid) << "EOF alone is no exit";
    EXPECT_EQ(inst("h").state, JobState::Killed);
    Peer::reapChildren(s());
  }
  EXPECT_EQ(slot("h").pid, 0);
  EXPECT_EQ(inst("h").killDeadlineNs, 0);
  Peer::settle(s());
  EXPECT_EQ(inst("h").state, JobState::Waiting) << jobStateName(inst("h").state);
  EXPECT_FALSE(inst("h").failed) << inst("h").failReason;
  EXPECT_EQ(model().nextEventId - ev0, 3u);  // starting, stopping, stopped: no `started`
  EXPECT_NO_FATAL_FAILURE(expectNoSecondApplication("h"));
}

TEST_F(SpawnOrderStopWhileHeld, EofFirst) { run(false); }
TEST_F(SpawnOrderStopWhileHeld, ExitFirst) { run(true); }

// The exit is seen (stored), then a stop request arrives before the status pipe is handled:
// spawned + goal stop -> stopping at once. The stored exit is applied with the pipe's outcome,
// either while `stopping` blocks (the exit of a main process there changes nothing; `killed` then
// finds no process) or, if `stopping` finished first, in `killed` (-> post-stop). Both end in
// waiting, not failed, with the exit applied once.
// In the second order `killed` must not signal the stored pid: that process has already been
// reaped and its pid may be reused.
class SpawnOrderStopAfterEarlyExit : public SpawnOrderTest {
 protected:
  void run(bool stoppingFinishesFirst) {
    writeJob("t", trueTask(hold("go")));
    ASSERT_NO_FATAL_FAILURE(startSupervisor());
    const uint64_t ev0 = model().nextEventId;
    ASSERT_NO_FATAL_FAILURE(startHeld("t"));
    const pid_t pid = slot("t").pid;
    ASSERT_NO_FATAL_FAILURE(releaseAndWaitExit("go", pid));
    Peer::reapChildren(s());
    ASSERT_TRUE(slot("t").earlyExit);

    ASSERT_NO_FATAL_FAILURE(Peer::stopJob(s(), "t"));
    EXPECT_EQ(inst("t").state, JobState::Stopping) << jobStateName(inst("t").state);
    if (stoppingFinishesFirst) {
      Peer::settle(s());
      // `killed` waits for the pipe's outcome (the stored exit is applied right after it). The
      // main process is already gone, reaped: job_state.h "killed: ... when the main process is
      // gone: post-stopping". It must not be signalled (its pid is free for reuse), so no kill
      // is sent and no kill timer is armed for it.
      EXPECT_EQ(inst("t").state, JobState::Killed) << jobStateName(inst("t").state);
      EXPECT_EQ(inst("t").killDeadlineNs, 0)
          << "BUG: `killed` sent the kill signal to (and armed the kill timer for) a main process "
             "whose exit had already been reaped (slot.earlyExit)";
      Peer::onStatusPipe(s(), "t");
      Peer::settle(s());
    } else {
      Peer::onStatusPipe(s(), "t");
      EXPECT_EQ(inst("t").state, JobState::Stopping) << jobStateName(inst("t").state);
      EXPECT_EQ(slot("t").pid, 0);
      Peer::settle(s());
    }
    EXPECT_EQ(slot("t").pid, 0);
    EXPECT_EQ(inst("t").killDeadlineNs, 0);
    EXPECT_EQ(inst("t").state, JobState::Waiting) << jobStateName(inst("t").state);
    EXPECT_EQ(inst("t").goal, Goal::Stop);
    EXPECT_FALSE(inst("t").failed) << inst("t").failReason;
    EXPECT_EQ(model().nextEventId - ev0, 3u);  // starting, stopping, stopped
    EXPECT_NO_FATAL_FAILURE(expectNoSecondApplication("t"));
  }
};

TEST_F(SpawnOrderStopAfterEarlyExit, EofWhileStopping) { run(false); }
TEST_F(SpawnOrderStopAfterEarlyExit, EofInKilled) { run(true); }

// ---------------------------------------------------------------------------------------------
// A multi-line script: the shell reads it from a pipe that batond fills only once the exec is
// confirmed (EOF). Before the EOF is handled the text is still pending even though the shell is
// already running (blocked reading it); after, it has been written and the pipe closed.

class SpawnOrderScript : public SpawnOrderTest {};

TEST_F(SpawnOrderScript, WrittenOnlyAfterEof) {
  writeJob("s", "task\nenv BATON_TEST_HOLD_FIFO=" + hold("go") +
                    "\nscript\n  echo line-one\n  echo line-two\nend script\n");
  ASSERT_NO_FATAL_FAILURE(startSupervisor());
  ASSERT_NO_FATAL_FAILURE(startHeld("s"));
  const pid_t pid = slot("s").pid;
  ASSERT_GE(slot("s").scriptFd, 0);
  ASSERT_FALSE(slot("s").pendingScript.empty());
  EXPECT_EQ(slot("s").pendingScript.rfind("exec 9<&-\n", 0), 0u) << slot("s").pendingScript;
  EXPECT_NE(slot("s").pendingScript.find("echo line-two"), std::string::npos);
  ASSERT_EQ(model().logPipes.size(), 1u);
  const int logFd = model().logPipes[0].fd;

  ASSERT_NO_FATAL_FAILURE(releaseOne("go"));
  ASSERT_TRUE(waitReadable(slot("s").statusFd)) << "no exec confirmation";
  // The shell runs but cannot have read anything: nothing was written yet. It waits in read(2)
  // on its script pipe, which is empty, and has written nothing to its log.
  const int scriptFd = slot("s").scriptFd;
  EXPECT_TRUE(eventually([&] {
    return blockedReading(pid, scriptFd) && bytesInPipe(scriptFd) == 0 && bytesInPipe(logFd) == 0;
  })) << "script pipe: " << bytesInPipe(scriptFd) << " bytes, log pipe: " << bytesInPipe(logFd)
      << " bytes, /proc/PID/syscall: " << readWhole("/proc/" + std::to_string(pid) + "/syscall");
  EXPECT_TRUE(notExited(pid)) << "the shell ended before it was given its script";
  EXPECT_FALSE(slot("s").pendingScript.empty());
  EXPECT_GE(slot("s").scriptFd, 0);
  EXPECT_EQ(inst("s").state, JobState::Spawned);

  Peer::onStatusPipe(s(), "s");
  EXPECT_TRUE(slot("s").pendingScript.empty());
  EXPECT_EQ(slot("s").scriptFd, -1) << "the script pipe must be closed (EOF ends the script)";
  EXPECT_EQ(inst("s").state, JobState::Running) << jobStateName(inst("s").state);

  ASSERT_TRUE(waitExitedNoReap(pid)) << "the script did not finish";
  Peer::reapChildren(s());
  Peer::settle(s());
  EXPECT_EQ(inst("s").state, JobState::Waiting) << jobStateName(inst("s").state);
  EXPECT_FALSE(inst("s").failed) << inst("s").failReason;

  // The loop would now see the log pipe readable (data, then EOF: every writer is gone).
  for (int i = 0; i < 10 && !model().logPipes.empty(); ++i) Peer::onLogPipe(s(), logFd);
  EXPECT_TRUE(model().logPipes.empty());
  EXPECT_EQ(readWhole(path("log/s.log")), "line-one\nline-two\n");
}

// A script whose setup fails: the script is dropped unwritten, its pipe closed, nothing runs.
TEST_F(SpawnOrderScript, DroppedOnSetupFailure) {
  writeJob("s", "task\nenv BATON_TEST_HOLD_FIFO=" + hold("go") +
                    "\nchdir /nonexistent/baton-spawn-order\nscript\n  echo line-one\n  echo line-two\nend script\n");
  ASSERT_NO_FATAL_FAILURE(startSupervisor());
  ASSERT_NO_FATAL_FAILURE(startHeld("s"));
  const pid_t pid = slot("s").pid;
  ASSERT_FALSE(slot("s").pendingScript.empty());
  ASSERT_EQ(model().logPipes.size(), 1u);
  const int logFd = model().logPipes[0].fd;
  ASSERT_NO_FATAL_FAILURE(releaseAndWaitExit("go", pid));

  Peer::reapChildren(s());
  EXPECT_FALSE(slot("s").pendingScript.empty()) << "nothing is written before the outcome";
  Peer::onStatusPipe(s(), "s");
  EXPECT_TRUE(slot("s").pendingScript.empty());
  EXPECT_EQ(slot("s").scriptFd, -1);
  EXPECT_TRUE(inst("s").failed);
  EXPECT_NE(inst("s").failReason.find("chdir"), std::string::npos) << inst("s").failReason;
  Peer::settle(s());
  EXPECT_EQ(inst("s").state, JobState::Waiting) << jobStateName(inst("s").state);
  for (int i = 0; i < 10 && !model().logPipes.empty(); ++i) Peer::onLogPipe(s(), logFd);
  EXPECT_TRUE(model().logPipes.empty());
  EXPECT_EQ(readWhole(path("log/s.log")), "");
}

}  // namespace
}  // namespace baton
