// Job life cycle: services, tasks, instances, respawn (and `normal exit`), kill timeout and kill
// signal, the four extra processes, environment and start arguments, a stop during a held
// pre-start, `reload`. batond runs as PID 1 of a PID namespace; pids from batonctl are namespace
// pids.
#include <signal.h>

#include "harness.h"

namespace baton::itest {
namespace {

class IntegrationJobs : public BatonTest {};

TEST_F(IntegrationJobs, ServiceStartRestartStop) {
  b().writeJob("web", R"JOB(description "a service"
script
  echo "web pid $$"
  exec sleep 1000
end script
)JOB");
  BATON_START();
  EXPECT_EQ(b().statusLine("web"), "web stop/waiting");

  CmdResult r = b().ctl({"start", "web"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(b().statusLine("web"), "web start/running, process "))
      << b().status("web");
  pid_t pid1 = b().mainPid("web");
  ASSERT_GT(pid1, 0);
  EXPECT_TRUE(b().waitLog("web", "web pid " + std::to_string(pid1) + "\n"))
      << "main pid in status differs from the one the job printed:\n" << b().readLog("web");
  pid_t host1 = b().hostPid(pid1);
  ASSERT_GT(host1, 0) << "main process not found in the namespace";

  r = b().ctl({"restart", "web"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  pid_t pid2 = b().mainPid("web");
  EXPECT_GT(pid2, 0);
  EXPECT_NE(pid2, pid1);
  EXPECT_TRUE(contains(b().statusLine("web"), "start/running")) << b().status("web");
  EXPECT_TRUE(waitFor([&] { return !pidExists(host1); }, 5s)) << "old main process not gone";
  pid_t host2 = b().hostPid(pid2);
  EXPECT_GT(host2, 0);

  r = b().ctl({"stop", "web"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(b().statusLine("web"), "web stop/waiting");
  EXPECT_TRUE(waitFor([&] { return !pidExists(host2); }, 5s)) << "main process not gone";

  CmdResult l = b().ctl({"list"});
  EXPECT_EQ(l.exitCode, 0) << l.describe();
  EXPECT_TRUE(contains(l.out, "web stop/waiting")) << l.out;
}

TEST_F(IntegrationJobs, UnknownJobExits3) {
  BATON_START();
  CmdResult r = b().ctl({"start", "no-such-job"});
  EXPECT_EQ(r.exitCode, 3) << r.describe();
  r = b().ctl({"status", "no-such-job"});
  EXPECT_EQ(r.exitCode, 3) << r.describe();
}

TEST_F(IntegrationJobs, TaskStartWaitsUntilFinished) {
  b().writeJob("work", R"JOB(task
script
  echo task-begin
  sleep 0.5
  echo task-end
  touch @WORK@/task.done
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "work"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(pathExists(b().work("task.done"))) << "start returned before the task finished";
  EXPECT_EQ(b().statusLine("work"), "work stop/waiting");
  ASSERT_TRUE(b().waitLog("work", "task-end\n"));
  EXPECT_TRUE(linesInOrder(b().readLog("work"), {"task-begin", "task-end"}));
}

TEST_F(IntegrationJobs, FailingTaskMakesStartFail) {
  b().writeJob("bad-task", "task\nscript\n  echo failing\n  exit 3\nend script\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "bad-task"});
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  std::string st = b().status("bad-task");
  EXPECT_TRUE(contains(st, "stop/waiting")) << st;
  EXPECT_TRUE(contains(st, "\tfailed: ")) << st;
}

TEST_F(IntegrationJobs, InstancesRunSideBySide) {
  b().writeJob("inst", R"JOB(instance $NAME
script
  echo "instance $NAME"
  exec sleep 1000
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "inst", "NAME=a"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  r = b().ctl({"start", "inst", "NAME=b"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();

  EXPECT_TRUE(contains(b().statusLine("inst", "a"), "inst (a) start/running, process "))
      << b().ctl({"list"}).out;
  EXPECT_TRUE(contains(b().statusLine("inst", "b"), "inst (b) start/running, process "))
      << b().ctl({"list"}).out;
  pid_t a = b().mainPid("inst", "a"), bb = b().mainPid("inst", "b");
  EXPECT_GT(a, 0);
  EXPECT_GT(bb, 0);
  EXPECT_NE(a, bb);
  EXPECT_TRUE(b().waitLog("inst-a", "instance a\n"));
  EXPECT_TRUE(b().waitLog("inst-b", "instance b\n"));
  EXPECT_FALSE(b().logExists("inst"));

  pid_t hostA = b().hostPid(a);
  r = b().ctl({"stop", "inst", "NAME=a"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  std::string lineA = b().statusLine("inst", "a");
  EXPECT_FALSE(contains(lineA, "start/")) << lineA;
  EXPECT_TRUE(contains(b().statusLine("inst", "b"), "inst (b) start/running")) << b().ctl({"list"}).out;
  EXPECT_EQ(b().mainPid("inst", "b"), bb);
  EXPECT_TRUE(waitFor([&] { return !pidExists(hostA); }, 5s));
}

TEST_F(IntegrationJobs, RespawnAfterKill) {
  b().writeJob("phoenix", R"JOB(respawn
script
  echo "pid $$"
  exec sleep 1000
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "phoenix"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  pid_t pid1 = b().mainPid("phoenix");
  ASSERT_GT(pid1, 0);
  pid_t host1 = b().hostPid(pid1);
  ASSERT_GT(host1, 0);
  ASSERT_EQ(kill(host1, SIGKILL), 0);  // a process of this test's own namespace
  pid_t pid2 = 0;
  EXPECT_TRUE(waitFor([&] {
    pid2 = b().mainPid("phoenix");
    return pid2 > 0 && pid2 != pid1 && contains(b().statusLine("phoenix"), "start/running");
  }, 10s)) << b().status("phoenix");
  EXPECT_TRUE(b().waitLog("phoenix", "pid " + std::to_string(pid2) + "\n"));
  r = b().ctl({"stop", "phoenix"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(b().statusLine("phoenix"), "phoenix stop/waiting");
}

TEST_F(IntegrationJobs, RespawnLimitStopsTheJob) {
  b().writeJob("flap", R"JOB(respawn
respawn limit 3 10
script
  echo try
  exit 1
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "flap", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatusOutput("flap", "\tfailed: respawn limit reached", 15s))
      << b().status("flap");
  EXPECT_TRUE(contains(b().statusLine("flap"), "flap stop/waiting")) << b().status("flap");
  EXPECT_TRUE(waitFor([&] { return countLines(b().readLog("flap"), "try") >= 3; }, 5s))
      << b().readLog("flap");
  // It stays stopped: at rest, batond will not start it again on its own.
  EXPECT_TRUE(b().waitIdle()) << b().status("flap");
  EXPECT_TRUE(contains(b().statusLine("flap"), "stop/waiting"));
}

TEST_F(IntegrationJobs, KillTimeoutEscalatesToSigkill) {
  b().writeJob("stubborn", R"JOB(kill timeout 1
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
  ASSERT_TRUE(b().waitLog("stubborn", "pid " + std::to_string(pid)));
  pid_t host = b().hostPid(pid);
  ASSERT_GT(host, 0);
  r = b().ctl({"stop", "stubborn"}, 20s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(b().statusLine("stubborn"), "stubborn stop/waiting");
  EXPECT_TRUE(waitFor([&] { return !pidExists(host); }, 5s)) << "main process survived";
  EXPECT_TRUE(contains(readFile(b().work("marks")), "got-TERM\n"))
      << "the kill signal was not sent first";
  // The whole process group got SIGKILL: only batond is left in the namespace.
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 1; }, 5s))
      << b().daemonProcesses().size() << " processes left in the namespace";
}

TEST_F(IntegrationJobs, ExtraProcessesRunInOrder) {
  b().writeJob("hooks", R"JOB(pre-start script
  echo pre-start
  echo pre-start >> @WORK@/marks
end script
post-start script
  echo post-start
  echo post-start >> @WORK@/marks
end script
script
  echo main
  echo main >> @WORK@/marks
  exec sleep 1000
end script
pre-stop script
  echo pre-stop
  echo pre-stop >> @WORK@/marks
end script
post-stop script
  echo post-stop
  echo post-stop >> @WORK@/marks
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "hooks"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  std::string marks = readFile(b().work("marks"));
  EXPECT_TRUE(linesInOrder(marks, {"pre-start", "post-start"}))
      << "start returned before post-start finished";
  ASSERT_TRUE(waitFor([&] { return lineIndex(readFile(b().work("marks")), "main") >= 0; }, 5s));
  ASSERT_TRUE(b().waitLog("hooks", "main\n"));
  r = b().ctl({"stop", "hooks"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  marks = readFile(b().work("marks"));
  EXPECT_TRUE(linesInOrder(marks, {"pre-start", "main", "pre-stop", "post-stop"}));
  EXPECT_TRUE(linesInOrder(marks, {"pre-start", "post-start", "pre-stop", "post-stop"}));
  ASSERT_TRUE(b().waitLog("hooks", "post-stop\n"));
  std::string log = b().readLog("hooks");
  EXPECT_TRUE(linesInOrder(log, {"pre-start", "main", "pre-stop", "post-stop"}));
  EXPECT_TRUE(linesInOrder(log, {"pre-start", "post-start", "pre-stop", "post-stop"}));
  EXPECT_EQ(b().statusLine("hooks"), "hooks stop/waiting");
}

TEST_F(IntegrationJobs, PreStartFailureFailsStart) {
  b().writeJob("nostart", R"JOB(pre-start script
  echo pre-start-fails
  exit 1
end script
script
  touch @WORK@/main-ran
  exec sleep 1000
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "nostart"});
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  std::string st = b().status("nostart");
  EXPECT_TRUE(contains(st, "nostart stop/waiting")) << st;
  EXPECT_TRUE(contains(st, "\tfailed: ")) << st;
  EXPECT_FALSE(pathExists(b().work("main-ran")));
  EXPECT_TRUE(b().waitLog("nostart", "pre-start-fails\n"));
}

TEST_F(IntegrationJobs, EnvIsVisibleAndStartArgsOverride) {
  b().writeJob("envjob", R"JOB(env FOO=bar
env OTHER="two words"
task
script
  echo "FOO=$FOO OTHER=$OTHER"
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "envjob"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("envjob", "FOO=bar OTHER=two words\n")) << b().readLog("envjob");
  r = b().ctl({"start", "envjob", "FOO=baz"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("envjob", "FOO=baz OTHER=two words\n")) << b().readLog("envjob");
}

TEST_F(IntegrationJobs, ExportedVariableReachesEventMatch) {
  b().writeJob("exp", R"JOB(env FOO=bar
export FOO
exec sleep 1000
)JOB");
  b().writeJob("listener", R"JOB(start on started exp FOO=bar
task
script
  echo "listener saw FOO=$FOO"
end script
)JOB");
  b().writeJob("other", R"JOB(start on started exp FOO=nope
task
exec touch @WORK@/other-ran
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "exp"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("listener", "listener saw FOO=bar\n")) << b().readLog("listener");
  EXPECT_TRUE(waitFor([&] { return contains(b().statusLine("listener"), "stop/waiting"); }, 5s));
  EXPECT_FALSE(pathExists(b().work("other-ran")));
  EXPECT_EQ(b().statusLine("other"), "other stop/waiting");
}

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

// Upstart semantics: a stop during pre-start waits for the pre-start process to finish (it is
// not killed); the main process then never runs.
TEST_F(IntegrationLifecycle, StopDuringHeldPreStartSkipsMain) {
  b().writeJob("held", R"JOB(env BATON_TEST_HOLD_FIFO=@WORK@/go
pre-start exec touch @WORK@/pre-ran
script
  touch @WORK@/main-ran
  exec sleep 1000
end script
)JOB");
  b().hold("go");
  BATON_START();
  CmdResult r = b().ctl({"start", "held", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b().waitStatusOutput("held", "(spawning)", 5s)) << b().status("held");
  EXPECT_TRUE(contains(b().statusLine("held"), "start/pre-start")) << b().status("held");
  r = b().ctl({"stop", "held", "-n"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatus("held", "held stop/pre-start")) << b().status("held");
  b().release("go");
  EXPECT_TRUE(b().waitStatus("held", "held stop/waiting")) << b().status("held");
  EXPECT_TRUE(pathExists(b().work("pre-ran")));
  EXPECT_FALSE(pathExists(b().work("main-ran")));
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 1; }, 5s));
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

}  // namespace
}  // namespace baton::itest
