// `stop` (and `start`, `restart`) while a job rests in each state of the state machine, with a
// real batond as PID 1 of a PID namespace (test hooks on).
//
// Every expectation below is taken from supervisor/job_state.h (quoted as "job_state.h: ..."):
// a goal change never jumps states, it only decides which way the instance goes when it next
// leaves its state; only `waiting`, `running` and `spawned` move at once.
//
// How each state is held so that the request arrives while the job is in it:
//   starting      another job, `start on starting J` (a task), held in setup (the test hook
//                 BATON_TEST_HOLD_FIFO):
//                 the `starting J` event cannot finish before it.
//   pre-start     the pre-start process waits for a file.
//   spawned       the main process is held in setup (the hook applies to every process of the
//                 job, so the post-stop is held by the same FIFO: it runs once released).
//   post-start    the post-start process waits for a file.
//   running       nothing to hold.
//   pre-stop      the pre-stop process waits for a file (the stop request itself enters it; a
//                 restart enters it with goal start).
//   stopping      a job `start on stopping J` (a task) waits for a file.
//   killed        the main process ignores SIGTERM (a trap), `kill timeout 3`.
//   post-stop     the post-stop process waits for a file.
// States that the stop request itself enters (pre-stop, stopping, killed, post-stop) are entered
// through `restart -n`, which leaves the goal at start: the `stop` then really changes the goal.
//
// Every job process appends a line to WORK/trace ("pre-start", "main", "post-start", "pre-stop",
// "post-stop"); a task `start on started J` appends "started", so the `started` event is visible.
// `start J` answers once the main process has exec'd, before its script has written its line: a
// test that counts "main" waits for the line first, or a quick stop could kill the process first.
#include "harness.h"

namespace baton::itest {
namespace {

class IntegrationStopDuring : public BatonTest {
 protected:
  std::string trace() { return readFile(b().work("trace")); }
  int count(const std::string& line) { return countLines(trace(), line); }

  // A job that records the `started` events of J.
  void writeStartedWatcher() {
    b().writeJob("watch-started", "start on started J\ntask\nscript\n  echo started >> @WORK@/trace\nend script\n");
  }
  // A script that waits for WORK/FILE, then appends LINE to the trace.
  static std::string waitThenMark(const std::string& file, const std::string& line) {
    return "script\n  while [ ! -e @WORK@/" + file + " ]; do sleep 0.02; done\n  echo " + line +
           " >> @WORK@/trace\nend script\n";
  }
  static std::string mark(const std::string& line) {
    return "script\n  echo " + line + " >> @WORK@/trace\nend script\n";
  }
  static std::string mainService() {
    return "script\n  echo main >> @WORK@/trace\n  exec sleep 1000\nend script\n";
  }

  ::testing::AssertionResult ctlOk(const std::vector<std::string>& args) {
    CmdResult r = b().ctl(args);
    if (r.exitCode != 0) return ::testing::AssertionFailure() << "batonctl " << args[0] << ": " << r.describe();
    return ::testing::AssertionSuccess();
  }
  ::testing::AssertionResult inState(const std::string& goalState, Duration timeout = 10s) {
    if (b().waitStatus("J", "J " + goalState, timeout)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "J is not " << goalState << ":\n" << b().status("J")
                                         << "trace:\n" << trace();
  }
  // Wait for the trace to have `n` lines equal to `line`.
  ::testing::AssertionResult traced(const std::string& line, int n = 1, Duration timeout = 5s) {
    if (waitFor([&] { return count(line) >= n; }, timeout)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "trace lacks " << n << " x [" << line << "]:\n" << trace();
  }
  // J ends `stop/waiting` and no process is left but batond itself.
  void expectStoppedAndClean() {
    EXPECT_TRUE(inState("stop/waiting"));
    EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 1; }, 5s))
        << "processes left: " << b().daemonProcesses().size() - 1 << "\n" << b().status("J");
    EXPECT_FALSE(contains(b().status("J"), "failed")) << b().status("J");
  }
  // The host pid of J's main process (0 if none).
  pid_t mainHostPid() {
    pid_t ns = b().mainPid("J");
    return ns > 0 ? b().hostPid(ns) : 0;
  }
  // The host pid of J's TYPE process ("\tTYPE process N" in its status), 0 if none.
  pid_t processHostPid(const std::string& type) {
    const std::string st = b().status("J"), key = "\t" + type + " process ";
    const auto pos = st.find(key);
    pid_t ns = pos == std::string::npos ? 0 : pid_t(std::atol(st.c_str() + pos + key.size()));
    return ns > 0 ? b().hostPid(ns) : 0;
  }
};

// starting: job_state.h "starting: emits `starting` and blocks on it -> the event finished ->
// pre-starting, or stopping if the goal became stop". So after the blocker is released: stopping
// -> killed (no main process) -> post-stopping forks post-stop -> waiting. pre-start and main
// never run, `started` is never emitted, post-stop runs.
TEST_F(IntegrationStopDuring, Starting) {
  b().writeJob("J", "pre-start " + mark("pre-start") + mainService() + "post-stop " + mark("post-stop"));
  b().writeJob("blocker", "start on starting J\ntask\nenv BATON_TEST_HOLD_FIFO=@WORK@/go-blocker\n" +
                              mark("blocker"));
  writeStartedWatcher();
  b().hold("go-blocker");
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J", "-n"}));
  ASSERT_TRUE(inState("start/starting"));
  ASSERT_TRUE(b().waitStatusOutput("blocker", "(spawning)", 5s)) << b().status("blocker");

  ASSERT_TRUE(ctlOk({"stop", "J", "-n"}));
  EXPECT_TRUE(inState("stop/starting", 2s)) << "the goal changes, the state waits for its event";
  b().release("go-blocker");

  expectStoppedAndClean();
  EXPECT_TRUE(traced("post-stop"));
  EXPECT_EQ(count("blocker"), 1);
  EXPECT_EQ(count("pre-start"), 0) << trace();
  EXPECT_EQ(count("main"), 0) << trace();
  EXPECT_EQ(count("started"), 0) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

// pre-start: job_state.h "pre-start: waits for pre-start to exit ... A stop request waits for
// pre-start to end." Exit 0 with goal stop -> stopping -> killed -> post-stop -> waiting: the
// pre-start completes (not killed), the main process never runs.
TEST_F(IntegrationStopDuring, PreStart) {
  b().writeJob("J", "pre-start " + waitThenMark("go-pre", "pre-start") + mainService() +
                        "post-stop " + mark("post-stop"));
  writeStartedWatcher();
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J", "-n"}));
  ASSERT_TRUE(inState("start/pre-start"));
  const pid_t preStart = processHostPid("pre-start");
  ASSERT_GT(preStart, 0) << b().status("J");

  ASSERT_TRUE(ctlOk({"stop", "J", "-n"}));
  EXPECT_TRUE(inState("stop/pre-start", 2s));
  // batond has handled the stop (the state shows the new goal) without signalling pre-start.
  EXPECT_TRUE(notSignalled(preStart)) << "pre-start was not waited for:\n" << b().status("J");
  EXPECT_TRUE(contains(b().status("J"), "\tpre-start process ")) << "pre-start was not waited for:\n"
                                                                << b().status("J");
  writeFile(b().work("go-pre"), "");

  expectStoppedAndClean();
  EXPECT_TRUE(traced("post-stop"));
  EXPECT_TRUE(linesInOrder(trace(), {"pre-start", "post-stop"}));
  EXPECT_EQ(count("pre-start"), 1) << trace();
  EXPECT_EQ(count("main"), 0) << trace();
  EXPECT_EQ(count("started"), 0) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

// spawned: job_state.h "spawned: ... Goal stop -> stopping at once (the child is killed in
// `killed`)". The held child dies in setup, so the main command never runs and `started` is never
// emitted; post-stop (held by the same hold FIFO) runs once released.
TEST_F(IntegrationStopDuring, Spawned) {
  b().writeJob("J", "env BATON_TEST_HOLD_FIFO=@WORK@/go-hold\n" + mainService() + "post-stop " +
                        mark("post-stop"));
  writeStartedWatcher();
  b().hold("go-hold");
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J", "-n"}));
  ASSERT_TRUE(inState("start/spawned"));
  ASSERT_TRUE(b().waitStatusOutput("J", "(spawning)", 5s)) << b().status("J");
  pid_t held = mainHostPid();
  ASSERT_GT(held, 0);

  ASSERT_TRUE(ctlOk({"stop", "J", "-n"}));
  EXPECT_TRUE(waitFor([&] { return !pidExists(held); }, 5s)) << "the held child was not killed";
  // Killed without waiting for the hold: now in post-stop, whose process is held by the FIFO.
  EXPECT_TRUE(inState("stop/post-stop", 5s));
  EXPECT_TRUE(contains(b().status("J"), "\tpost-stop process ")) << b().status("J");
  b().release("go-hold");

  expectStoppedAndClean();
  EXPECT_TRUE(traced("post-stop"));
  EXPECT_EQ(count("main"), 0) << trace();
  EXPECT_EQ(count("started"), 0) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

// post-start: job_state.h "post-start: waits for post-start to exit -> running (goal start) or
// stopping". The main process ran; the job never reaches running (no `started`); once post-start
// ends: stopping -> killed (main killed) -> post-stop -> waiting.
TEST_F(IntegrationStopDuring, PostStart) {
  b().writeJob("J", mainService() + "post-start " + waitThenMark("go-post", "post-start") +
                        "post-stop " + mark("post-stop"));
  writeStartedWatcher();
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J", "-n"}));
  ASSERT_TRUE(inState("start/post-start"));
  ASSERT_TRUE(traced("main"));
  pid_t main = mainHostPid();
  ASSERT_GT(main, 0);

  ASSERT_TRUE(ctlOk({"stop", "J", "-n"}));
  EXPECT_TRUE(inState("stop/post-start", 2s));
  // batond has handled the stop (the state shows the new goal) without signalling main.
  EXPECT_TRUE(notSignalled(main)) << "main killed before post-start ended";
  writeFile(b().work("go-post"), "");

  expectStoppedAndClean();
  EXPECT_FALSE(pidExists(main));
  EXPECT_TRUE(traced("post-stop"));
  EXPECT_TRUE(linesInOrder(trace(), {"main", "post-start", "post-stop"}));
  EXPECT_EQ(count("main"), 1) << trace();
  EXPECT_EQ(count("post-start"), 1) << trace();
  EXPECT_EQ(count("started"), 0) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

// running: job_state.h "running: Goal stop -> pre-stopping if the main process lives" ->
// pre-stop (none) -> stopping -> killed -> post-stop -> waiting.
TEST_F(IntegrationStopDuring, Running) {
  b().writeJob("J", "pre-start " + mark("pre-start") + mainService() + "post-stop " + mark("post-stop"));
  writeStartedWatcher();
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J"}));
  ASSERT_TRUE(inState("start/running"));
  ASSERT_TRUE(traced("started"));
  ASSERT_TRUE(traced("main"));
  pid_t main = mainHostPid();
  ASSERT_GT(main, 0);

  ASSERT_TRUE(ctlOk({"stop", "J", "-n"}));
  expectStoppedAndClean();
  EXPECT_FALSE(pidExists(main));
  EXPECT_TRUE(traced("post-stop"));
  EXPECT_TRUE(linesInOrder(trace(), {"pre-start", "main", "post-stop"}));
  EXPECT_EQ(count("main"), 1) << trace();
  EXPECT_EQ(count("started"), 1) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

std::string preStopJob() {
  return "pre-start script\n  echo pre-start >> @WORK@/trace\nend script\n"
         "script\n  echo main >> @WORK@/trace\n  exec sleep 1000\nend script\n"
         "pre-stop script\n  while [ ! -e @WORK@/go-prestop ]; do sleep 0.02; done\n"
         "  echo pre-stop >> @WORK@/trace\nend script\n"
         "post-stop script\n  echo post-stop >> @WORK@/trace\nend script\n";
}

// pre-stop, entered by the stop request itself: job_state.h "pre-stop: waits for pre-stop to
// exit -> stopping (goal stop)". A second stop finds the goal already stop (refused, exit 1). The
// main process lives until `killed`.
TEST_F(IntegrationStopDuring, PreStopEnteredByStop) {
  b().writeJob("J", preStopJob());
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J"}));
  ASSERT_TRUE(traced("main"));
  pid_t main = mainHostPid();
  ASSERT_GT(main, 0);

  ASSERT_TRUE(ctlOk({"stop", "J", "-n"}));
  ASSERT_TRUE(inState("stop/pre-stop"));
  CmdResult again = b().ctl({"stop", "J", "-n"});
  EXPECT_EQ(again.exitCode, 1) << again.describe();
  EXPECT_TRUE(contains(again.err + again.out, "already stopping")) << again.describe();
  EXPECT_TRUE(pidExists(main)) << "main killed during pre-stop";
  writeFile(b().work("go-prestop"), "");

  expectStoppedAndClean();
  EXPECT_FALSE(pidExists(main));
  EXPECT_TRUE(traced("post-stop"));
  EXPECT_TRUE(linesInOrder(trace(), {"main", "pre-stop", "post-stop"}));
  EXPECT_EQ(count("pre-stop"), 1) << trace();
  EXPECT_EQ(count("main"), 1) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

// restart of a running job goes the way of a respawn (goal respawn): stopping -> killed ->
// post-stop -> starting -> pre-start -> ... -> running with a new main process. pre-stop is not
// run (as for a respawn); post-stop and pre-start are. `batonctl restart` waits for running.
TEST_F(IntegrationStopDuring, RestartIsARespawn) {
  b().writeJob("J", preStopJob());
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J"}));
  ASSERT_TRUE(traced("main"));
  pid_t main = mainHostPid();
  ASSERT_GT(main, 0);
  CmdResult r = b().ctl({"restart", "J"}, 20s);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "J start/running, process")) << r.describe();
  EXPECT_TRUE(traced("main", 2));
  EXPECT_TRUE(waitFor([&] { return !pidExists(main); })) << "the old main process still runs";
  pid_t again = mainHostPid();
  EXPECT_GT(again, 0);
  EXPECT_NE(again, main);
  EXPECT_EQ(count("pre-start"), 2) << trace();
  EXPECT_EQ(count("main"), 2) << trace();
  EXPECT_EQ(count("pre-stop"), 0) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

// happen.
TEST_F(IntegrationStopDuring, StartDuringPreStop) {
  b().writeJob("J", preStopJob());
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J"}));
  ASSERT_TRUE(traced("main"));
  pid_t nsMain = b().mainPid("J");
  pid_t main = mainHostPid();
  ASSERT_GT(main, 0);

  ASSERT_TRUE(ctlOk({"stop", "J", "-n"}));
  ASSERT_TRUE(inState("stop/pre-stop"));
  ASSERT_TRUE(ctlOk({"start", "J", "-n"}));
  EXPECT_TRUE(inState("start/pre-stop", 2s));
  writeFile(b().work("go-prestop"), "");

  EXPECT_TRUE(inState("start/running"));
  EXPECT_TRUE(traced("pre-stop"));
  EXPECT_EQ(b().mainPid("J"), nsMain) << "the main process was replaced";
  EXPECT_TRUE(pidExists(main));
  // At rest, with main the only job process, batond will not go on to stop J on its own.
  EXPECT_TRUE(b().waitIdle(1)) << b().status("J") << "trace:\n" << trace();
  EXPECT_TRUE(contains(b().statusLine("J"), "J start/running")) << b().status("J");
  EXPECT_EQ(count("post-stop"), 0) << trace();
  EXPECT_EQ(count("pre-start"), 1) << trace();
  EXPECT_EQ(count("main"), 1) << trace();

  // And a plain stop afterwards still works (the pre-stop's file now exists).
  ASSERT_TRUE(ctlOk({"stop", "J"}));
  expectStoppedAndClean();
  EXPECT_EQ(count("pre-stop"), 2) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

// stopping with goal start (a restart blocked by `start on stopping J`): job_state.h "stopping:
// emits `stopping` and blocks on it -> killed" whatever the goal; the stop then decides what
// happens after post-stop: waiting instead of starting. The main process lives until `killed`.
TEST_F(IntegrationStopDuring, StoppingOfRestart) {
  b().writeJob("J", "pre-start " + mark("pre-start") + mainService() + "post-stop " + mark("post-stop"));
  b().writeJob("stop-blocker", "start on stopping J\ntask\n" + waitThenMark("go-blocker", "blocker"));
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J"}));
  ASSERT_TRUE(traced("main"));
  pid_t main = mainHostPid();
  ASSERT_GT(main, 0);

  ASSERT_TRUE(ctlOk({"restart", "J", "-n"}));
  ASSERT_TRUE(inState("respawn/stopping"));  // a restart goes the way of a respawn
  ASSERT_TRUE(ctlOk({"stop", "J", "-n"}));
  EXPECT_TRUE(inState("stop/stopping", 2s));
  // batond has handled the stop (the state shows the new goal) without signalling main.
  EXPECT_TRUE(notSignalled(main)) << "main killed before `stopping` finished";
  writeFile(b().work("go-blocker"), "");

  expectStoppedAndClean();
  EXPECT_FALSE(pidExists(main));
  EXPECT_TRUE(traced("post-stop"));
  EXPECT_TRUE(linesInOrder(trace(), {"pre-start", "main", "blocker", "post-stop"}));
  EXPECT_EQ(count("pre-start"), 1) << trace();
  EXPECT_EQ(count("main"), 1) << trace();
  EXPECT_EQ(count("blocker"), 1) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

// killed with goal start (a restart whose main process ignores SIGTERM): job_state.h "killed:
// sends the kill signal ... SIGKILL when it fires -> when the main process is gone:
// post-stopping". The stop changes only where post-stop leads: waiting, not starting.
TEST_F(IntegrationStopDuring, KilledOfRestart) {
  b().writeJob("J", "kill timeout 3\npre-start " + mark("pre-start") +
                        "script\n  trap 'echo got-term >> @WORK@/trace' TERM\n"
                        "  echo main >> @WORK@/trace\n"
                        "  while :; do sleep 0.05 || true; done\nend script\n"
                        "post-stop " + mark("post-stop"));
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J"}));
  ASSERT_TRUE(traced("main"));
  pid_t main = mainHostPid();
  ASSERT_GT(main, 0);

  ASSERT_TRUE(ctlOk({"restart", "J", "-n"}));
  ASSERT_TRUE(inState("start/killed", 2s));
  ASSERT_TRUE(ctlOk({"stop", "J", "-n"}));
  EXPECT_TRUE(inState("stop/killed", 1s));
  EXPECT_TRUE(traced("got-term")) << "SIGTERM not delivered first";
  EXPECT_TRUE(pidExists(main));

  // SIGKILL after the kill timeout (3 s from entering killed).
  expectStoppedAndClean();
  EXPECT_FALSE(pidExists(main));
  EXPECT_TRUE(traced("post-stop"));
  EXPECT_EQ(count("pre-start"), 1) << trace();
  EXPECT_EQ(count("main"), 1) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

// post-stop with goal start (a restart): job_state.h "post-stop: waits for post-stop to exit ->
// waiting (goal stop) or starting (goal start, e.g. a respawn or a restart)". After the stop:
// waiting; pre-start and main do not run again.
TEST_F(IntegrationStopDuring, PostStopOfRestart) {
  b().writeJob("J", "pre-start " + mark("pre-start") + mainService() + "post-stop " +
                        waitThenMark("go-poststop", "post-stop"));
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J"}));
  ASSERT_TRUE(traced("main"));
  pid_t main = mainHostPid();
  ASSERT_GT(main, 0);

  ASSERT_TRUE(ctlOk({"restart", "J", "-n"}));
  ASSERT_TRUE(inState("start/post-stop"));
  EXPECT_TRUE(waitFor([&] { return !pidExists(main); }, 5s)) << "main not killed before post-stop";
  ASSERT_TRUE(ctlOk({"stop", "J", "-n"}));
  EXPECT_TRUE(inState("stop/post-stop", 2s));
  writeFile(b().work("go-poststop"), "");

  expectStoppedAndClean();
  EXPECT_TRUE(traced("post-stop"));
  // At rest, batond will not start J again on its own.
  EXPECT_TRUE(b().waitIdle()) << b().status("J");
  EXPECT_EQ(count("pre-start"), 1) << trace();
  EXPECT_EQ(count("main"), 1) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

// post-stop entered by the stop request itself: a second stop is refused; release -> waiting.
TEST_F(IntegrationStopDuring, PostStopEnteredByStop) {
  b().writeJob("J", mainService() + "post-stop " + waitThenMark("go-poststop", "post-stop"));
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J"}));
  ASSERT_TRUE(traced("main"));
  ASSERT_TRUE(ctlOk({"stop", "J", "-n"}));
  ASSERT_TRUE(inState("stop/post-stop"));
  CmdResult again = b().ctl({"stop", "J", "-n"});
  EXPECT_EQ(again.exitCode, 1) << again.describe();
  writeFile(b().work("go-poststop"), "");
  expectStoppedAndClean();
  EXPECT_EQ(count("main"), 1) << trace();
  EXPECT_EQ(count("post-stop"), 1) << trace();
}

// restart while running: stop (pre-stopping -> pre-stop -> stopping -> killed -> post-stop) then,
// the goal being start again, post-stop -> starting -> ... -> running with a new main process.
// The answer comes when it is running again.
TEST_F(IntegrationStopDuring, RestartWhileRunning) {
  b().writeJob("J", "pre-start " + mark("pre-start") + mainService() + "post-stop " + mark("post-stop"));
  writeStartedWatcher();
  BATON_START();
  ASSERT_TRUE(ctlOk({"start", "J"}));
  ASSERT_TRUE(traced("main"));
  pid_t ns1 = b().mainPid("J");
  pid_t host1 = mainHostPid();
  ASSERT_GT(host1, 0);
  ASSERT_TRUE(traced("started"));

  ASSERT_TRUE(ctlOk({"restart", "J"}));
  EXPECT_TRUE(contains(b().statusLine("J"), "J start/running, process ")) << b().status("J");
  pid_t ns2 = b().mainPid("J");
  EXPECT_GT(ns2, 0);
  EXPECT_NE(ns2, ns1);
  EXPECT_TRUE(waitFor([&] { return !pidExists(host1); }, 5s)) << "old main process not gone";
  EXPECT_TRUE(traced("started", 2));
  EXPECT_TRUE(traced("main", 2));
  auto lines = splitLines(trace());
  std::vector<std::string> jobLines;
  for (const auto& l : lines)
    if (l != "started") jobLines.push_back(l);
  std::vector<std::string> want = {"pre-start", "main", "post-stop", "pre-start", "main"};
  EXPECT_EQ(jobLines, want) << trace();

  ASSERT_TRUE(ctlOk({"stop", "J"}));
  expectStoppedAndClean();
  EXPECT_EQ(count("post-stop"), 2) << trace();
}

}  // namespace
}  // namespace baton::itest
