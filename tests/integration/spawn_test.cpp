// Process setup: credentials, chdir, umask, rlimits, nice, oom score, console, logging, fds,
// the spawn hold test hook and setup failures.
#include <sstream>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "harness.h"

namespace baton::itest {
namespace {

class IntegrationSpawn : public BatonTest {};

// Start a task and wait for `expect` to appear in its log.
::testing::AssertionResult runTaskExpecting(Baton& b, const std::string& job,
                                            const std::string& expect) {
  CmdResult r = b.ctl({"start", job});
  if (r.exitCode != 0) return ::testing::AssertionFailure() << "start " << job << ": " << r.describe();
  if (!b.waitLog(job, expect, 5s))
    return ::testing::AssertionFailure()
           << "log of " << job << " lacks [" << expect << "]:\n" << b.readLog(job);
  return ::testing::AssertionSuccess();
}

TEST_F(IntegrationSpawn, SetuidSetgid) {
  b().writeJob("creds", R"JOB(setuid nobody
setgid nogroup
task
script
  echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
  touch @WORK@/creds-file
end script
)JOB");
  BATON_START();
  EXPECT_TRUE(runTaskExpecting(b(), "creds", "uid=65534 gid=65534 groups=65534\n"));
  struct stat st{};
  ASSERT_EQ(stat(b().work("creds-file").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
}

// The same credentials for a process that is exec'd directly (no shell script involved).
TEST_F(IntegrationSpawn, SetuidSetgidExec) {
  b().writeJob("creds-exec", "setuid nobody\nsetgid nogroup\ntask\nexec /usr/bin/id\n");
  BATON_START();
  EXPECT_TRUE(runTaskExpecting(b(), "creds-exec", "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"));
}

TEST_F(IntegrationSpawn, Chdir) {
  std::string d = b().work("cd-here");
  mkdir(d.c_str(), 0755);
  b().writeJob("cd", "chdir @WORK@/cd-here\ntask\nscript\n  echo \"pwd=$(pwd)\"\nend script\n");
  BATON_START();
  EXPECT_TRUE(runTaskExpecting(b(), "cd", "pwd=" + d + "\n"));
}

TEST_F(IntegrationSpawn, Umask) {
  b().writeJob("um", "umask 027\ntask\nscript\n  echo \"umask=$(umask)\"\nend script\n");
  BATON_START();
  EXPECT_TRUE(runTaskExpecting(b(), "um", "umask=0027\n"));
}

TEST_F(IntegrationSpawn, LimitNofile) {
  b().writeJob("lim", R"JOB(limit nofile 123 456
task
script
  echo "soft=$(ulimit -S -n) hard=$(ulimit -H -n)"
end script
)JOB");
  BATON_START();
  EXPECT_TRUE(runTaskExpecting(b(), "lim", "soft=123 hard=456\n"));
}

TEST_F(IntegrationSpawn, Nice) {
  b().writeJob("nic", "nice 5\ntask\nscript\n  echo \"nice=$(nice)\"\nend script\n");
  BATON_START();
  EXPECT_TRUE(runTaskExpecting(b(), "nic", "nice=5\n"));
}

TEST_F(IntegrationSpawn, OomScore) {
  b().writeJob("oom", R"JOB(oom score 500
task
script
  echo "oom=$(cat /proc/self/oom_score_adj)"
end script
)JOB");
  BATON_START();
  EXPECT_TRUE(runTaskExpecting(b(), "oom", "oom=500\n"));
}

TEST_F(IntegrationSpawn, ConsoleNoneWritesNoLog) {
  b().writeJob("quiet", R"JOB(console none
task
script
  echo should-not-be-logged
  touch @WORK@/quiet-ran
end script
)JOB");
  b().writeJob("loud", "task\nscript\n  echo loud-line\nend script\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "quiet"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(pathExists(b().work("quiet-ran")));
  // A job with a log, run afterwards, as a sentinel that logging had its chance.
  EXPECT_TRUE(runTaskExpecting(b(), "loud", "loud-line\n"));
  EXPECT_FALSE(b().logExists("quiet")) << b().readLog("quiet");
}

TEST_F(IntegrationSpawn, LogOfQuicklyExitingJobIsComplete) {
  b().writeJob("counter", "task\nexec @PROGS@/baton_counter 10000 0\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "counter"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  std::vector<std::string> lines;
  waitFor([&] {
    lines = splitLines(b().readLog("counter"));
    return lines.size() >= 10000;
  }, 10s);
  ASSERT_EQ(lines.size(), 10000u) << "log has " << lines.size() << " lines";
  for (size_t i = 0; i < lines.size(); ++i) {
    ASSERT_EQ(lines[i], std::to_string(i + 1)) << "at line " << i + 1;
  }
}

TEST_F(IntegrationSpawn, LogOfInstanceAndSlashedName) {
  b().writeJob("net/dhcp", "instance $IF\ntask\nscript\n  echo \"dhcp on $IF\"\nend script\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "net/dhcp", "IF=eth0"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("net/dhcp-eth0", "dhcp on eth0\n"))
      << "expected " << b().logPath("net/dhcp-eth0");
}

TEST_F(IntegrationSpawn, ChildrenInheritOnlyStdio) {
  b().writeJob("fds", R"JOB(pre-start exec @PROGS@/baton_fdlist
exec @PROGS@/baton_fdlist --sleep
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "fds"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return splitLines(b().readLog("fds")).size() >= 2; }, 5s));
  auto lines = splitLines(b().readLog("fds"));
  ASSERT_EQ(lines.size(), 2u) << b().readLog("fds");
  EXPECT_EQ(lines[0], "0 1 2") << "pre-start";
  EXPECT_EQ(lines[1], "0 1 2") << "main";
}

// Programs run from a `script` get only 0, 1, 2 as well (the script's own pipe must not leak).
TEST_F(IntegrationSpawn, ScriptChildrenInheritOnlyStdio) {
  b().writeJob("sfds", "task\nscript\n  @PROGS@/baton_fdlist\n  exec @PROGS@/baton_fdlist\nend script\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "sfds"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return splitLines(b().readLog("sfds")).size() >= 2; }, 5s));
  auto lines = splitLines(b().readLog("sfds"));
  ASSERT_EQ(lines.size(), 2u) << b().readLog("sfds");
  EXPECT_EQ(lines[0], "0 1 2") << "child of the script shell";
  EXPECT_EQ(lines[1], "0 1 2") << "exec'd by the script shell";
}

TEST_F(IntegrationSpawn, SpawnHoldShowsSpawning) {
  b().writeJob("held-main", "env BATON_TEST_HOLD_FIFO=@WORK@/go-main\n"
                            "exec /bin/sh -c 'echo \"ran $$\"; exec sleep 1000'\n");
  b().writeJob("held-pre", R"JOB(env BATON_TEST_HOLD_FIFO=@WORK@/go-pre
pre-start exec true
exec sleep 1000
)JOB");
  b().hold("go-main");
  b().hold("go-pre");
  BATON_START();
  CmdResult r = b().ctl({"start", "held-main", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  r = b().ctl({"start", "held-pre", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();

  EXPECT_TRUE(waitFor([&] {
    std::string s = b().status("held-main");
    return contains(s, "held-main start/spawned") && contains(s, "(spawning)");
  }, 5s)) << b().status("held-main");
  EXPECT_TRUE(waitFor([&] {
    std::string s = b().status("held-pre");
    return contains(s, "held-pre start/pre-start") && contains(s, "pre-start process ") &&
           contains(s, "(spawning)");
  }, 5s)) << b().status("held-pre");
  // Held for real: each child sleeps in read(2) on its FIFO, which only the release ends.
  const pid_t pid = b().mainPid("held-main");
  const pid_t host = b().hostPid(pid);
  ASSERT_GT(host, 0) << b().status("held-main");
  EXPECT_TRUE(waitUntil([&] { return b().heldOn(host, "go-main"); }, 5s, "held-main is held"))
      << b().heldOn(host, "go-main").message();
  const std::string pre = b().status("held-pre");
  const pid_t preHost = b().hostPid(std::atoi(pre.c_str() + pre.find("pre-start process ") + 18));
  EXPECT_TRUE(waitUntil([&] { return b().heldOn(preHost, "go-pre"); }, 5s, "held-pre is held"))
      << pre;
  EXPECT_EQ(b().statusLine("held-main"), "held-main start/spawned, process " + std::to_string(pid) +
                                             " (spawning)");
  EXPECT_FALSE(b().logExists("held-main")) << "the held child ran before it was released";

  b().release("go-main");
  EXPECT_TRUE(b().waitStatus("held-main", "held-main start/running, process " + std::to_string(pid)))
      << b().status("held-main");
  EXPECT_FALSE(contains(b().status("held-main"), "spawning"));
  EXPECT_TRUE(b().waitLog("held-main", "ran " + std::to_string(pid) + "\n")) << b().readLog("held-main");
  EXPECT_FALSE(b().heldOn(host, "go-main")) << "heldOn must not hold for a running process";
  EXPECT_TRUE(contains(b().status("held-pre"), "start/pre-start")) << b().status("held-pre");
  EXPECT_TRUE(b().heldOn(preHost, "go-pre")) << "one release let another hold go";

  b().release("go-pre");
  EXPECT_TRUE(b().waitStatus("held-pre", "held-pre start/running, process "))
      << b().status("held-pre");
  // Once: the main process that was held ran exactly once.
  ASSERT_TRUE(b().waitIdle(2));
  EXPECT_EQ(b().readLog("held-main"), "ran " + std::to_string(pid) + "\n");
}

// Many processes held on one FIFO sleep there (no CPU), and one release lets all of them go at
// once; each runs exactly once. A later start passes straight through the released hold.
TEST_F(IntegrationSpawn, OneReleaseLetsEveryHeldSpawnGo) {
  constexpr int kHeld = 20;
  b().writeJob("many", "instance $N\nenv BATON_TEST_HOLD_FIFO=@WORK@/go\n"
                       "exec /bin/sh -c 'echo \"$N\" >> @WORK@/ran; exec sleep 1000'\n");
  b().hold("go");
  BATON_START();
  for (int i = 0; i < kHeld; ++i) {
    CmdResult r = b().ctl({"start", "many", "-n", "N=" + std::to_string(i)});
    ASSERT_EQ(r.exitCode, 0) << r.describe();
  }
  std::vector<pid_t> hosts;
  for (int i = 0; i < kHeld; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_TRUE(b().waitStatus("many", "(spawning)", 5s, n)) << b().statusLine("many", n);
    hosts.push_back(b().hostPid(b().mainPid("many", n)));
    ASSERT_GT(hosts.back(), 0) << b().statusLine("many", n);
  }
  for (pid_t host : hosts)
    EXPECT_TRUE(waitUntil([&] { return b().heldOn(host, "go"); }, 5s, "the child is held"));
  EXPECT_FALSE(pathExists(b().work("ran"))) << readFile(b().work("ran"));

  b().release("go");
  for (int i = 0; i < kHeld; ++i)
    EXPECT_TRUE(b().waitStatus("many", "start/running", 10s, std::to_string(i)))
        << b().statusLine("many", std::to_string(i));
  CmdResult r = b().ctl({"start", "many", "N=late"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b().waitIdle(kHeld + 1));
  auto ran = splitLines(readFile(b().work("ran")));
  std::sort(ran.begin(), ran.end());
  std::vector<std::string> want = {"late"};
  for (int i = 0; i < kHeld; ++i) want.push_back(std::to_string(i));
  std::sort(want.begin(), want.end());
  EXPECT_EQ(ran, want) << "every held spawn runs once, and the late one passes through";
}

TEST_F(IntegrationSpawn, StopWhileSpawnHeld) {
  b().writeJob("held", "env BATON_TEST_HOLD_FIFO=@WORK@/never\nexec sleep 1000\n");
  b().hold("never");
  BATON_START();
  CmdResult r = b().ctl({"start", "held", "-n"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b().waitStatusOutput("held", "(spawning)", 5s)) << b().status("held");
  r = b().ctl({"stop", "held"}, 20s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatus("held", "held stop/waiting")) << b().status("held");
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 1; }, 5s))
      << "held child left behind";
}

// Start `job`, whose setup fails: the start fails, the job rests in stop/waiting failed with
// `reason` (the step, then strerror), and no child is left behind.
void expectSetupFailure(Baton& b, const std::string& job, const std::string& reason) {
  CmdResult r = b.ctl({"start", job});
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  std::string st = b.status(job);
  EXPECT_TRUE(contains(st, job + " stop/waiting")) << st;
  EXPECT_TRUE(contains(st, "\tfailed: " + reason + "\n")) << st;
  EXPECT_TRUE(waitFor([&] { return b.daemonProcesses().size() == 1; }, 5s)) << "a child is left";
}

// A hold that cannot be opened fails the spawn like any other setup step, with its reason.
TEST_F(IntegrationSpawn, MissingHoldFailsStart) {
  b().writeJob("unheld", "env BATON_TEST_HOLD_FIFO=@WORK@/no-such-fifo\nexec sleep 1000\n");
  BATON_START();
  expectSetupFailure(b(), "unheld", "hold: No such file or directory");
}

TEST_F(IntegrationSpawn, ChdirFailureFailsStart) {
  b().writeJob("nodir", "chdir /nonexistent/baton-dir\nexec sleep 1000\n");
  BATON_START();
  expectSetupFailure(b(), "nodir", "chdir: No such file or directory");
}

// batond blocks the signals it reads through signalfd and ignores SIGPIPE; a job starts with an
// empty signal mask and default dispositions.
TEST_F(IntegrationSpawn, SignalMaskAndDispositionsAreReset) {
  b().writeJob("sigs", "task\nexec /bin/cat /proc/self/status\n");
  BATON_START();
  EXPECT_TRUE(runTaskExpecting(b(), "sigs", "SigBlk:\t0000000000000000\n"));
  EXPECT_TRUE(contains(b().readLog("sigs"), "SigIgn:\t0000000000000000\n")) << b().readLog("sigs");
  // batond itself does block signals: the check above is not vacuous.
  std::string own = readFile("/proc/" + std::to_string(b().daemonHostPid()) + "/status");
  EXPECT_FALSE(contains(own, "SigBlk:\t0000000000000000\n")) << own;
}

// setuid gives the user's supplementary groups (initgroups semantics, resolved before fork). The
// groups come from a private copy of /etc/group bind-mounted in a mount namespace of this test
// process, which batond inherits; the host's /etc/group is not touched.
TEST_F(IntegrationSpawn, SetuidGivesTheUsersSupplementaryGroups) {
  ASSERT_EQ(unshare(CLONE_NEWNS), 0) << strerror(errno);
  ASSERT_EQ(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0) << strerror(errno);
  const std::string group = b().work("group");
  writeFile(group, readFile("/etc/group") + "batonsupp1:x:64001:root,nobody\nbatonsupp2:x:64002:nobody\n");
  ASSERT_EQ(mount(group.c_str(), "/etc/group", nullptr, MS_BIND, nullptr), 0) << strerror(errno);
  b().writeJob("supp", "setuid nobody\ntask\nscript\n  echo \"groups=$(id -G)\"\nend script\n");
  b().writeJob("supp-gid", "setuid nobody\nsetgid batonsupp2\ntask\nscript\n  echo \"gid=$(id -g) groups=$(id -G)\"\nend script\n");
  BATON_START();
  EXPECT_TRUE(runTaskExpecting(b(), "supp", "groups=65534 64001 64002\n"));
  EXPECT_TRUE(runTaskExpecting(b(), "supp-gid", "gid=64002 groups=64002 64001 65534\n"));
}

// chroot: the process runs with the directory as its root (the log pipe is set up by batond, so
// `console log` still works from inside).
TEST_F(IntegrationSpawn, Chroot) {
  const std::string root = b().work("root");
  mkdir(root.c_str(), 0755);
  // A minimal root: /bin/sh and the libraries it links.
  CmdResult ldd = runCommand({"/usr/bin/ldd", "/bin/sh"});
  ASSERT_EQ(ldd.exitCode, 0) << ldd.describe();
  std::vector<std::string> files{"/bin/sh"};
  std::istringstream words(ldd.out);
  for (std::string w; words >> w;)
    if (w[0] == '/') files.push_back(w);
  for (const std::string& f : files) {
    CmdResult cp = runCommand({"/bin/cp", "-L", "--parents", f, root});
    ASSERT_EQ(cp.exitCode, 0) << cp.describe();
  }
  b().writeJob("jail", "chroot @WORK@/root\ntask\nscript\n  echo \"cwd=$(pwd)\"\n  echo inside > /marker\nend script\n");
  b().writeJob("jail-missing", "chroot @WORK@/no-such-root\nexec sleep 1000\n");
  BATON_START();
  // A multi-line script: batond passes it as an argument, /proc is not mounted in there.
  EXPECT_TRUE(runTaskExpecting(b(), "jail", "cwd=/\n"));
  EXPECT_FALSE(pathExists(root + "/proc"));
  EXPECT_EQ(readFile(root + "/marker"), "inside\n");
  CmdResult r = b().ctl({"start", "jail-missing"});
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(contains(b().status("jail-missing"), "chroot")) << b().status("jail-missing");
}

// batond raises its own open-files limit (it holds a pipe or two per job) and gives jobs the one
// it started with; a job's `limit nofile` still wins. The same after a re-exec.
class IntegrationFdLimit : public BatonTest {
 protected:
  Options options() override {
    Options o;
    o.nofileSoft = 512;
    return o;
  }
};

std::pair<long, long> openFilesLimit(pid_t hostPid) {
  std::istringstream in(readFile("/proc/" + std::to_string(hostPid) + "/limits"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Max open files", 0) == 0) {
      long soft = -1, hard = -1;
      sscanf(line.c_str() + 14, "%ld %ld", &soft, &hard);
      return {soft, hard};
    }
  return {-1, -1};
}

TEST_F(IntegrationFdLimit, JobsKeepTheLimitBatondStartedWith) {
  const std::string job = "exec /bin/sh -c 'ulimit -n > @WORK@/NAME.tmp && mv @WORK@/NAME.tmp @WORK@/NAME; exec sleep 1000'\n";
  auto jobFor = [&](const std::string& name) {
    std::string t = job;
    for (size_t at; (at = t.find("NAME")) != std::string::npos;) t.replace(at, 4, name);
    return t;
  };
  b().writeJob("plain", jobFor("plain"));
  b().writeJob("own", "limit nofile 2048 4096\n" + jobFor("own"));
  BATON_START();
  ASSERT_EQ(b().ctl({"start", "plain"}).exitCode, 0);
  ASSERT_EQ(b().ctl({"start", "own"}).exitCode, 0);
  ASSERT_TRUE(waitFor([&] { return pathExists(b().work("plain")) && pathExists(b().work("own")); }));
  EXPECT_EQ(readFile(b().work("plain")), "512\n");
  EXPECT_EQ(readFile(b().work("own")), "2048\n");
  auto [soft, hard] = openFilesLimit(b().daemonHostPid());
  EXPECT_GT(soft, 512) << "batond kept the low limit it was started with";
  EXPECT_EQ(soft, hard);

  CmdResult r = b().ctl({"reexec"}, 30s);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  b().writeJob("later", jobFor("later"));
  ASSERT_EQ(b().ctl({"reload-configuration"}).exitCode, 0);
  ASSERT_EQ(b().ctl({"start", "later"}).exitCode, 0);
  ASSERT_TRUE(waitFor([&] { return pathExists(b().work("later")); }));
  EXPECT_EQ(readFile(b().work("later")), "512\n") << "the limit for jobs was lost across the re-exec";
  EXPECT_EQ(openFilesLimit(b().daemonHostPid()).first, soft);
}

}  // namespace
}  // namespace baton::itest
