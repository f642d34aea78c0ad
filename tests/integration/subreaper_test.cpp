// batond as a plain child subreaper (not PID 1): pids from batonctl are host pids here, which
// the `expect` tests use to compare with the pid the final process wrote.
#include <signal.h>

#include "harness.h"

namespace baton::itest {
namespace {

class IntegrationSubreaper : public SubreaperTest {};
class IntegrationExpect : public SubreaperTest {};

pid_t readPidFile(const std::string& path) {
  std::string s = readFile(path);
  return s.empty() ? 0 : static_cast<pid_t>(std::atol(s.c_str()));
}

TEST_F(IntegrationSubreaper, StartStopAsSubreaper) {
  b().writeJob("svc", "exec sleep 1000\n");
  BATON_START();
  pid_t d = b().daemonHostPid();
  ASSERT_GT(d, 0);
  EXPECT_EQ(d, b().launcherPid());
  CmdResult r = b().ctl({"start", "svc"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  pid_t pid = b().mainPid("svc");
  ASSERT_GT(pid, 0);
  auto kids = childrenOf(d);
  EXPECT_NE(std::find(kids.begin(), kids.end(), pid), kids.end())
      << "main pid " << pid << " is not a child of batond " << d;
  r = b().ctl({"stop", "svc"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return !pidExists(pid); }, 5s));
}

// Not PID 1, `console output` and `owner` give the job batond's own stdio (the harness sends it to
// batond.stderr) and no log file. (As PID 1 they open /dev/console: not tested, so that a test
// never writes to the console of the machine it runs on.)
TEST_F(IntegrationSubreaper, ConsoleOutputUsesBatondsStdio) {
  b().writeJob("out", "console output\ntask\nscript\n  echo out-on-stdout\n  echo out-on-stderr >&2\nend script\n");
  b().writeJob("own", "console owner\ntask\nexec echo owner-on-stdout\n");
  BATON_START();
  ASSERT_EQ(b().ctl({"start", "out"}).exitCode, 0);
  ASSERT_EQ(b().ctl({"start", "own"}).exitCode, 0);
  EXPECT_TRUE(waitFor([&] {
    std::string e = b().daemonStderr();
    return contains(e, "out-on-stdout\n") && contains(e, "out-on-stderr\n") && contains(e, "owner-on-stdout\n");
  }, 5s)) << b().daemonStderr();
  EXPECT_FALSE(b().logExists("out"));
  EXPECT_FALSE(b().logExists("own"));
}

// A job double-forks a short-lived grandchild and exits: the orphan is reparented to batond
// (the subreaper), which must reap it when it dies.
TEST_F(IntegrationSubreaper, ReapsOrphans) {
  b().writeJob("orphaner", R"JOB(task
script
  ( sleep 0.3 & echo $! > @WORK@/grandchild.pid )
  echo parent-done
end script
)JOB");
  BATON_START();
  pid_t d = b().daemonHostPid();
  CmdResult r = b().ctl({"start", "orphaner"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  pid_t gc = readPidFile(b().work("grandchild.pid"));
  ASSERT_GT(gc, 0);
  EXPECT_TRUE(waitFor([&] { return !pidExists(gc); }, 5s))
      << "orphan " << gc << " still exists in state " << procState(gc);
  EXPECT_TRUE(waitFor([&] {
    for (pid_t c : childrenOf(d))
      if (procState(c) == 'Z') return false;
    return true;
  }, 3s)) << "zombie children left under batond";
  EXPECT_TRUE(contains(b().statusLine("orphaner"), "stop/waiting"));
}

TEST_F(IntegrationSubreaper, SigtermStopsJobsAndExitsZero) {
  b().writeJob("one", "exec sleep 1000\n");
  b().writeJob("two", R"JOB(script
  trap '' TERM
  while true; do sleep 0.2; done
end script
kill timeout 1
)JOB");
  BATON_START();
  for (const char* j : {"one", "two"}) {
    CmdResult r = b().ctl({"start", j});
    ASSERT_EQ(r.exitCode, 0) << j << ": " << r.describe();
  }
  pid_t p1 = b().mainPid("one"), p2 = b().mainPid("two");
  ASSERT_GT(p1, 0);
  ASSERT_GT(p2, 0);
  std::optional<int> code = b().terminate(20s);
  ASSERT_TRUE(code.has_value()) << "batond did not exit after SIGTERM";
  EXPECT_EQ(*code, 0);
  EXPECT_FALSE(pidExists(p1)) << "job one survived batond";
  EXPECT_FALSE(pidExists(p2)) << "job two survived batond";
}

TEST_F(IntegrationExpect, ExpectStop) {
  b().writeJob("stopper", "expect stop\nexec @PROGS@/baton_stopper\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "stopper"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(b().statusLine("stopper"), "stopper start/running, process "))
      << b().status("stopper");
  pid_t pid = b().mainPid("stopper");
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(b().waitLog("stopper", "continued\npid " + std::to_string(pid) + "\n"))
      << b().readLog("stopper");
  char st = procState(pid);
  EXPECT_NE(st, 'T') << "still stopped";
  r = b().ctl({"stop", "stopper"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return !pidExists(pid); }, 5s));
}

void expectForks(Baton& b, const std::string& job, int forks) {
  std::string pidfile = b.work(job + ".pid");
  b.writeJob(job, std::string("expect ") + (forks == 1 ? "fork" : "daemon") + "\nexec @PROGS@/baton_forker " +
                      std::to_string(forks) + " " + pidfile + "\n");
  std::string why;
  ASSERT_TRUE(b.start(&why)) << why;
  CmdResult r = b.ctl({"start", job});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(waitFor([&] { return readPidFile(pidfile) > 0; }, 5s)) << "no pid file";
  pid_t finalPid = readPidFile(pidfile);
  EXPECT_TRUE(contains(b.statusLine(job), job + " start/running, process ")) << b.status(job);
  EXPECT_EQ(b.mainPid(job), finalPid) << b.status(job);
  EXPECT_TRUE(b.waitLog(job, "pid " + std::to_string(finalPid) + "\n"));
  // Being traced must be over: the daemon runs freely.
  EXPECT_TRUE(contains(readFile("/proc/" + std::to_string(finalPid) + "/status"), "TracerPid:\t0\n"));
  r = b.ctl({"stop", job});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(b.statusLine(job), job + " stop/waiting");
  EXPECT_TRUE(waitFor([&] { return !pidExists(finalPid); }, 5s)) << "daemon survived stop";
}

TEST_F(IntegrationExpect, ExpectFork) { expectForks(b(), "forker", 1); }

TEST_F(IntegrationExpect, ExpectDaemon) { expectForks(b(), "daemon", 2); }

// The same in a PID namespace, compared through the log (the process prints its own pid).
class IntegrationExpectNs : public BatonTest {};

TEST_F(IntegrationExpectNs, ExpectDaemonInNamespace) {
  b().writeJob("daemon", "expect daemon\nexec @PROGS@/baton_forker 2 @WORK@/daemon.pid\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "daemon"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  pid_t pid = b().mainPid("daemon");
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(b().waitLog("daemon", "pid " + std::to_string(pid) + "\n")) << b().readLog("daemon");
  r = b().ctl({"stop", "daemon"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 1; }, 5s));
}

}  // namespace
}  // namespace baton::itest
