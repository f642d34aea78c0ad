// Events: startup, job events chaining, emit with matching, stop on, blocking on `starting`, the
// `stopped` event's failure variables.
#include <signal.h>

#include "harness.h"

namespace baton::itest {
namespace {

class IntegrationEvents : public BatonTest {};

TEST_F(IntegrationEvents, StartupJobRunsAtBoot) {
  b().writeJob("boot", R"JOB(start on startup
task
script
  echo booted
end script
)JOB");
  b().writeJob("idle", "exec sleep 1000\n");  // no start on: stays down
  BATON_START();
  EXPECT_TRUE(b().waitLog("boot", "booted\n")) << b().status("boot");
  EXPECT_TRUE(b().waitStatus("boot", "boot stop/waiting"));
  EXPECT_EQ(b().statusLine("idle"), "idle stop/waiting");
}

TEST_F(IntegrationEvents, StartedChainsJobs) {
  b().writeJob("a", "start on startup\nexec sleep 1000\n");
  b().writeJob("b", R"JOB(start on started a
script
  echo "b runs"
  exec sleep 1000
end script
)JOB");
  b().writeJob("c", R"JOB(start on stopped b
task
exec touch @WORK@/c-ran
)JOB");
  BATON_START();
  EXPECT_TRUE(b().waitStatus("a", "a start/running, process ")) << b().status("a");
  EXPECT_TRUE(b().waitStatus("b", "b start/running, process ")) << b().status("b");
  EXPECT_TRUE(b().waitLog("b", "b runs\n"));
  EXPECT_FALSE(pathExists(b().work("c-ran")));
  CmdResult r = b().ctl({"stop", "b"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return pathExists(b().work("c-ran")); }, 10s))
      << "`start on stopped b` did not run";
  EXPECT_TRUE(contains(b().statusLine("a"), "start/running"));
}

TEST_F(IntegrationEvents, EmitMatchesKeyValue) {
  b().writeJob("j1", R"JOB(start on custom KEY=v
task
script
  echo "j1 KEY=$KEY"
  touch @WORK@/j1
end script
)JOB");
  b().writeJob("j2", R"JOB(start on custom KEY=x
task
exec touch @WORK@/j2
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"emit", "custom", "KEY=v"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  // emit waits until the event is handled: the task it started has finished.
  EXPECT_TRUE(pathExists(b().work("j1"))) << "emit returned before j1 finished";
  EXPECT_FALSE(pathExists(b().work("j2")));
  EXPECT_EQ(b().statusLine("j2"), "j2 stop/waiting");
  EXPECT_TRUE(b().waitLog("j1", "j1 KEY=v\n"));

  r = b().ctl({"emit", "custom", "KEY=x"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(pathExists(b().work("j2")));

  r = b().ctl({"emit", "other-event"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
}

TEST_F(IntegrationEvents, StopOnStopsTheJob) {
  b().writeJob("svc", R"JOB(start on go
stop on halt
exec sleep 1000
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"emit", "go"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatus("svc", "svc start/running, process ")) << b().status("svc");
  r = b().ctl({"emit", "halt"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatus("svc", "svc stop/waiting")) << b().status("svc");
}

// beta starts on `starting alpha`; the `starting` event blocks alpha until beta is running, so
// alpha's main process starts only after beta's pre-start (slow) and post-start have finished.
TEST_F(IntegrationEvents, StartingEventBlocksUntilDependentRuns) {
  b().writeJob("alpha", R"JOB(script
  echo A-main >> @WORK@/marks
  exec sleep 1000
end script
)JOB");
  b().writeJob("beta", R"JOB(start on starting alpha
pre-start script
  sleep 1
  echo B-pre >> @WORK@/marks
end script
post-start script
  echo B-post >> @WORK@/marks
end script
script
  exec sleep 1000
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "alpha"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(b().statusLine("beta"), "beta start/running")) << b().status("beta");
  ASSERT_TRUE(waitFor([&] { return lineIndex(readFile(b().work("marks")), "A-main") >= 0; }, 5s))
      << readFile(b().work("marks"));
  EXPECT_TRUE(linesInOrder(readFile(b().work("marks")), {"B-pre", "B-post", "A-main"}));
}

TEST_F(IntegrationEvents, EventEnvironmentReachesJob) {
  b().writeJob("consumer", R"JOB(start on deliver
task
script
  echo "ITEM=$ITEM"
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"emit", "deliver", "ITEM=parcel"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("consumer", "ITEM=parcel\n")) << b().readLog("consumer");
}

TEST_F(IntegrationLifecycle, StoppedEventCarriesFailure) {
  b().writeJob("crasher", "task\nscript\n  exit 3\nend script\n");
  b().writeJob("watcher", R"JOB(start on stopped crasher RESULT=failed
task
script
  echo "JOB=$JOB RESULT=$RESULT PROCESS=$PROCESS EXIT_STATUS=$EXIT_STATUS"
end script
)JOB");
  b().writeJob("okwatch", R"JOB(start on stopped crasher RESULT=ok
task
exec touch @WORK@/okwatch
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "crasher"});
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(b().waitLog("watcher", "JOB=crasher RESULT=failed PROCESS=main EXIT_STATUS=3\n"))
      << b().readLog("watcher");
  EXPECT_FALSE(pathExists(b().work("okwatch")));
}

TEST_F(IntegrationLifecycle, StoppedEventCarriesSignal) {
  b().writeJob("victim", "exec sleep 1000\n");
  b().writeJob("watcher", R"JOB(start on stopped victim
task
script
  echo "RESULT=$RESULT PROCESS=${PROCESS:-} EXIT_SIGNAL=${EXIT_SIGNAL:-}"
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "victim"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  pid_t host = b().hostPid(b().mainPid("victim"));
  ASSERT_GT(host, 0);
  ASSERT_EQ(kill(host, SIGKILL), 0);
  EXPECT_TRUE(b().waitLog("watcher", "RESULT=failed PROCESS=main EXIT_SIGNAL=KILL\n") ||
              b().waitLog("watcher", "RESULT=failed PROCESS=main EXIT_SIGNAL=SIGKILL\n", 1s) ||
              b().waitLog("watcher", "RESULT=failed PROCESS=main EXIT_SIGNAL=9\n", 1s))
      << b().readLog("watcher");
  EXPECT_TRUE(b().waitStatus("victim", "victim stop/waiting"));
}

}  // namespace
}  // namespace baton::itest
