// More life-cycle details: kill signal, normal exit, the stopped event's failure variables,
// PID 1 reaping orphans, clients that go away mid-request, log priority, emit -n.
#include <signal.h>

#include "harness.h"

namespace baton::itest {
namespace {

class IntegrationLifecycle : public BatonTest {};

TEST_F(IntegrationLifecycle, KillSignalIsUsed) {
  b().writeJob("intr", R"JOB(kill signal SIGINT
kill timeout 10
script
  trap 'echo got-INT >> @WORK@/marks; exit 0' INT
  trap 'echo got-TERM >> @WORK@/marks; exit 0' TERM
  echo ready
  while true; do sleep 0.1; done
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "intr"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b().waitLog("intr", "ready\n"));
  r = b().ctl({"stop", "intr"}, 20s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  std::string marks = readFile(b().work("marks"));
  EXPECT_EQ(marks, "got-INT\n");
  EXPECT_FALSE(contains(b().status("intr"), "failed")) << b().status("intr");
}

TEST_F(IntegrationLifecycle, NormalExitDoesNotRespawnOrFail) {
  b().writeJob("norm", R"JOB(respawn
normal exit 3
script
  echo run >> @WORK@/runs
  sleep 0.2
  exit 3
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "norm"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatus("norm", "norm stop/waiting")) << b().status("norm");
  // At rest, batond has handled the exit and will not start the job again on its own.
  EXPECT_TRUE(b().waitIdle()) << b().status("norm");
  EXPECT_EQ(countLines(readFile(b().work("runs")), "run"), 1);
  EXPECT_FALSE(contains(b().status("norm"), "failed")) << b().status("norm");
}

// Upstart: for a service with `respawn`, every end of the main process other than `stop` is
// abnormal, exit 0 included.
TEST_F(IntegrationLifecycle, RespawnedServiceAfterExitZero) {
  b().writeJob("again", R"JOB(respawn
script
  echo run >> @WORK@/runs
  if [ "$(wc -l < @WORK@/runs)" -lt 3 ]; then exit 0; fi
  exec sleep 1000
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "again"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return countLines(readFile(b().work("runs")), "run") >= 3; }, 10s))
      << readFile(b().work("runs"));
  EXPECT_TRUE(b().waitStatus("again", "again start/running, process ")) << b().status("again");
  EXPECT_EQ(countLines(readFile(b().work("runs")), "run"), 3);
}

// A task with `respawn` that exits 0 is done, not respawned.
TEST_F(IntegrationLifecycle, RespawningTaskExitZeroIsDone) {
  b().writeJob("once", R"JOB(task
respawn
script
  echo run >> @WORK@/runs
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "once"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  // At rest, batond has handled the exit and will not start the task again on its own.
  EXPECT_TRUE(b().waitIdle()) << b().status("once");
  EXPECT_EQ(countLines(readFile(b().work("runs")), "run"), 1);
  EXPECT_EQ(b().statusLine("once"), "once stop/waiting");
}

TEST_F(IntegrationLifecycle, StartArgumentWithEqualsInValue) {
  b().writeJob("kv", "task\nscript\n  echo \"OPT=$OPT\"\nend script\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "kv", "OPT=a=b c"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("kv", "OPT=a=b c\n")) << b().readLog("kv");
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

// As PID 1 of the namespace, batond reaps orphans reparented to it.
TEST_F(IntegrationLifecycle, Pid1ReapsOrphans) {
  b().writeJob("orphaner", R"JOB(task
script
  ( sleep 0.3 & )
  ( sleep 0.2 & )
  echo parent-done
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "orphaner"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 1; }, 5s))
      << "processes (zombies?) left in the namespace: " << b().daemonProcesses().size();
}

// A waiting client that goes away before its answer must not disturb batond.
TEST_F(IntegrationLifecycle, WaitingClientDisappears) {
  b().writeJob("slow", R"JOB(pre-start exec sleep 1
exec sleep 1000
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "slow"}, 200ms);  // killed while waiting
  EXPECT_TRUE(r.timedOut) << r.describe();
  EXPECT_TRUE(b().waitStatus("slow", "slow start/running, process ", 10s)) << b().status("slow");
  r = b().ctl({"version"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_FALSE(b().exited());
}

TEST_F(IntegrationLifecycle, EmitNoWaitReturnsBeforeJobFinishes) {
  b().writeJob("late", R"JOB(start on ping
task
script
  while [ ! -e @WORK@/release ]; do sleep 0.05; done
  touch @WORK@/late-done
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"emit", "ping", "-n"}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_FALSE(pathExists(b().work("late-done")));
  EXPECT_TRUE(b().waitStatus("late", "late start/", 5s)) << b().status("late");
  writeFile(b().work("release"), "");
  EXPECT_TRUE(waitFor([&] { return pathExists(b().work("late-done")); }, 5s));
  EXPECT_TRUE(b().waitStatus("late", "late stop/waiting"));
}

// Upstart semantics: a stop during pre-start waits for the pre-start process to finish (it is
// not killed); the main process then never runs.
TEST_F(IntegrationLifecycle, StopDuringHeldPreStartSkipsMain) {
  b().writeJob("held", R"JOB(env BATON_TEST_HOLD=@WORK@/go
pre-start exec touch @WORK@/pre-ran
script
  touch @WORK@/main-ran
  exec sleep 1000
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "held", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b().waitStatusOutput("held", "(spawning)", 5s)) << b().status("held");
  EXPECT_TRUE(contains(b().statusLine("held"), "start/pre-start")) << b().status("held");
  r = b().ctl({"stop", "held", "-n"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatus("held", "held stop/pre-start")) << b().status("held");
  writeFile(b().work("go"), "");
  EXPECT_TRUE(b().waitStatus("held", "held stop/waiting")) << b().status("held");
  EXPECT_TRUE(pathExists(b().work("pre-ran")));
  EXPECT_FALSE(pathExists(b().work("main-ran")));
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 1; }, 5s));
}

TEST_F(IntegrationLifecycle, LogPriorityQueryAndSet) {
  BATON_START();
  CmdResult r = b().ctl({"log-priority"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "message")) << r.describe();
  r = b().ctl({"log-priority", "debug"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  r = b().ctl({"log-priority"});
  EXPECT_TRUE(contains(r.out, "debug")) << r.describe();
  r = b().ctl({"log-priority", "debug"}, 10s, 65534, 65534);
  EXPECT_EQ(r.exitCode, 4) << r.describe();
}

// `batonctl reload` sends the job's reload signal (SIGHUP unless `reload signal` says otherwise)
// to the main process, which keeps running.
TEST_F(IntegrationLifecycle, ReloadSendsTheReloadSignal) {
  const std::string body = R"JOB(script
  trap 'echo got-hup' HUP
  trap 'echo got-usr1' USR1
  echo ready
  while :; do sleep 0.05; done
end script
)JOB";
  b().writeJob("hup", body);
  b().writeJob("usr1", "reload signal SIGUSR1\n" + body);
  BATON_START();
  for (const char* job : {"hup", "usr1"}) {
    ASSERT_EQ(b().ctl({"start", job}).exitCode, 0);
    ASSERT_TRUE(b().waitLog(job, "ready\n")) << b().readLog(job);
  }
  const pid_t hupPid = b().mainPid("hup"), usr1Pid = b().mainPid("usr1");
  ASSERT_GT(hupPid, 0);
  ASSERT_GT(usr1Pid, 0);
  CmdResult r = b().ctl({"reload", "hup"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("hup", "got-hup\n")) << b().readLog("hup");
  r = b().ctl({"reload", "usr1"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("usr1", "got-usr1\n")) << b().readLog("usr1");
  EXPECT_FALSE(contains(b().readLog("usr1"), "got-hup")) << "the default signal was sent instead";
  EXPECT_EQ(b().mainPid("hup"), hupPid);
  EXPECT_EQ(b().mainPid("usr1"), usr1Pid);

  // Reloading a job that is not running is an error, and so is an unknown job.
  ASSERT_EQ(b().ctl({"stop", "hup"}).exitCode, 0);
  r = b().ctl({"reload", "hup"});
  EXPECT_NE(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.err, "not running")) << r.describe();
  EXPECT_EQ(b().ctl({"reload", "no-such-job"}).exitCode, 3);
}

// --json prints the response for scripts: the same facts as the human output.
TEST_F(IntegrationLifecycle, JsonOutputOfStatusAndList) {
  b().writeJob("svc", "exec sleep 1000\n");
  b().writeJob("idle", "exec sleep 1000\n");
  BATON_START();
  ASSERT_EQ(b().ctl({"start", "svc"}).exitCode, 0);
  const pid_t pid = b().mainPid("svc");
  ASSERT_GT(pid, 0);
  CmdResult r = b().ctl({"--json", "status", "svc"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  // One status object per instance.
  EXPECT_EQ(r.out.front(), '[') << r.out;
  EXPECT_TRUE(contains(r.out, "\"job\":\"svc\"")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"state\":\"running\"")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"pid\":" + std::to_string(pid) + ",")) << r.out;
  r = b().ctl({"--json", "list"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "\"svc\"")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"idle\"")) << r.out;
  // Errors keep their exit code with --json.
  EXPECT_EQ(b().ctl({"--json", "status", "no-such-job"}).exitCode, 3);
}

}  // namespace
}  // namespace baton::itest
