// Readiness notification: `expect notify`, NOTIFY_SOCKET (sd_notify(3)), the `ready timeout`
// deadline, attribution of messages to jobs, and readiness across a re-exec and a downgrade.
#include <future>

#include "harness.h"

namespace baton::itest {
namespace {

class IntegrationNotify : public BatonTest {};

std::future<CmdResult> inBackground(Baton& b, std::vector<std::string> args, Duration timeout = 30s) {
  return std::async(std::launch::async, [&b, args = std::move(args), timeout] { return b.ctl(args, timeout); });
}

bool done(std::future<CmdResult>& f) { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }

std::string notifyJob(const std::string& args, const std::string& extra = "") {
  return "expect notify\n" + extra + "exec @PROGS@/baton_notify " + args + "\n";
}

// `status --daemon`'s count after "refused " / "malformed " on the notify socket line; -1 if absent.
long notifyCount(Baton& b, const std::string& what) {
  CmdResult r = b.ctl({"status", "--daemon"});
  size_t at = r.out.find("notify socket: ");
  if (at == std::string::npos) return -1;
  at = r.out.find(what + " ", at);
  return at == std::string::npos ? -1 : std::stol(r.out.substr(at + what.size() + 1));
}

TEST_F(IntegrationNotify, StartReturnsOnlyOnceTheJobIsReady) {
  b().writeJob("svc", notifyJob("--wait-file @WORK@/go --status serving"));
  b().writeJob("plain", "task\nscript\n  echo \"socket=${NOTIFY_SOCKET:-none}\"\nend script\n");
  BATON_START();
  auto start = inBackground(b(), {"start", "svc"});
  ASSERT_TRUE(b().waitStatus("svc", "start/spawned")) << b().status("svc");
  ASSERT_TRUE(b().waitLog("svc", "pid "));
  // Spawned, exec'd and running, but it has not said it is ready: the start has not returned.
  EXPECT_FALSE(done(start));
  EXPECT_TRUE(contains(b().status("svc"), "readiness: waiting")) << b().status("svc");
  writeFile(b().work("go"), "");
  CmdResult r = start.get();
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "svc start/running")) << r.describe();
  const std::string st = b().status("svc");
  EXPECT_TRUE(contains(st, "readiness: ready")) << st;
  EXPECT_TRUE(contains(st, "status: serving")) << st;
  CmdResult json = b().ctl({"--json", "status", "svc"});
  EXPECT_TRUE(contains(json.out, "\"statusText\":\"serving\"")) << json.describe();

  // Only `expect notify` jobs get a NOTIFY_SOCKET.
  ASSERT_EQ(b().ctl({"start", "plain"}).exitCode, 0);
  EXPECT_TRUE(b().waitLog("plain", "socket=none\n")) << b().readLog("plain");
}

TEST_F(IntegrationNotify, NoNotificationFailsAtTheDeadline) {
  b().writeJob("mute", notifyJob("--never", "ready timeout 1\nkill timeout 2\n"));
  BATON_START();
  CmdResult r = b().ctl({"start", "mute"});
  EXPECT_NE(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.err + r.out, "no readiness notification within 1 s")) << r.describe();
  EXPECT_TRUE(b().waitStatus("mute", "stop/waiting"));
  EXPECT_TRUE(contains(b().status("mute"), "failed: no readiness notification within 1 s")) << b().status("mute");
  EXPECT_TRUE(b().waitIdle());  // its process was killed
}

TEST_F(IntegrationNotify, ExitBeforeReadyIsAFailedStartNotARespawn) {
  b().writeJob("quitter", notifyJob("--exit 3", "respawn\n"));
  BATON_START();
  CmdResult r = b().ctl({"start", "quitter"});
  EXPECT_NE(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitStatus("quitter", "stop/waiting"));
  const std::string st = b().status("quitter");
  EXPECT_TRUE(contains(st, "main process exited with status 3 before its readiness notification")) << st;
  ASSERT_TRUE(b().waitIdle());
  // One run only: the log holds one "pid" line.
  EXPECT_EQ(splitLines(b().readLog("quitter")).size(), 1u) << b().readLog("quitter");
}

TEST_F(IntegrationNotify, MainPidOfAChildBecomesTheMainProcess) {
  b().writeJob("forker", notifyJob("--mainpid-child --status handed-over"));
  BATON_START();
  CmdResult r = b().ctl({"start", "forker"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b().waitLog("forker", "child pid "));
  const std::string log = b().readLog("forker");
  const pid_t child = pid_t(std::stol(log.substr(log.find("child pid ") + 10)));
  // The first process exits after the barrier; the job goes on with the child.
  ASSERT_TRUE(waitUntil([&] { return b().mainPid("forker") == child; }, 10s, "the child is the main process"))
      << b().status("forker");
  ASSERT_TRUE(b().waitIdle(1));
  EXPECT_TRUE(contains(b().status("forker"), "start/running")) << b().status("forker");
  ASSERT_EQ(b().ctl({"stop", "forker"}).exitCode, 0);
  EXPECT_TRUE(b().waitIdle());  // the child was the one stopped
}

TEST_F(IntegrationNotify, AGrandchildMayNotify) {
  b().writeJob("deep", notifyJob("--grandchild"));
  BATON_START();
  CmdResult r = b().ctl({"start", "deep"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("deep", "grandchild sent"));
  EXPECT_TRUE(contains(b().status("deep"), "readiness: ready")) << b().status("deep");
}

// A sender that is no process of the job (here reparented to batond before it sends) changes
// nothing: the job keeps waiting, and the refusal is counted.
TEST_F(IntegrationNotify, AMessageFromOutsideTheJobChangesNothing) {
  b().writeJob("lonely", notifyJob("--orphan"));
  BATON_START();
  ASSERT_EQ(b().ctl({"start", "-n", "lonely"}).exitCode, 0);
  ASSERT_TRUE(b().waitLog("lonely", "orphan sent"));
  ASSERT_TRUE(waitUntil([&] { return notifyCount(b(), "refused") >= 1; }, 10s, "the message is refused"))
      << b().ctl({"status", "--daemon"}).out;
  EXPECT_TRUE(contains(b().status("lonely"), "start/spawned")) << b().status("lonely");
  EXPECT_TRUE(contains(b().status("lonely"), "readiness: waiting")) << b().status("lonely");
  ASSERT_EQ(b().ctl({"stop", "lonely"}).exitCode, 0);
}

TEST_F(IntegrationNotify, BadMessagesAreDroppedAndCounted) {
  b().writeJob("noisy", notifyJob("--garbage"));
  BATON_START();
  CmdResult r = b().ctl({"start", "noisy"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(notifyCount(b(), "malformed"), 3) << b().ctl({"status", "--daemon"}).out;
  EXPECT_TRUE(contains(b().status("noisy"), "readiness: ready")) << b().status("noisy");
}

TEST_F(IntegrationNotify, ReloadingThenReadyAgain) {
  b().writeJob("reloader", notifyJob("--reload"));
  BATON_START();
  ASSERT_EQ(b().ctl({"log-priority", "info"}).exitCode, 0);
  ASSERT_EQ(b().ctl({"start", "reloader"}).exitCode, 0);
  ASSERT_EQ(b().ctl({"reload", "reloader"}).exitCode, 0);
  ASSERT_TRUE(b().waitLog("reloader", "reloaded"));
  ASSERT_TRUE(waitUntil([&] { return contains(b().daemonStderr(), "reloader is ready again after reloading"); }, 10s,
                        "batond saw RELOADING=1 then READY=1"))
      << b().daemonStderr();
  EXPECT_TRUE(contains(b().status("reloader"), "readiness: ready")) << b().status("reloader");
}

// STOPPING=1 (and ERRNO=) while it shuts down: shown until it is gone.
TEST_F(IntegrationNotify, StoppingAndErrnoAreShown) {
  b().writeJob("leaving", notifyJob("--stopping @WORK@/gone"));
  BATON_START();
  ASSERT_EQ(b().ctl({"start", "leaving"}).exitCode, 0);
  ASSERT_EQ(b().ctl({"stop", "-n", "leaving"}).exitCode, 0);
  ASSERT_TRUE(waitUntil([&] { return contains(b().status("leaving"), "readiness: stopping"); }, 10s,
                        "the job says it is stopping"))
      << b().status("leaving");
  EXPECT_TRUE(contains(b().status("leaving"), "errno: 5 (EIO)")) << b().status("leaving");
  writeFile(b().work("gone"), "");
  EXPECT_TRUE(b().waitStatus("leaving", "stop/waiting"));
  EXPECT_FALSE(contains(b().status("leaving"), "failed")) << b().status("leaving");
}

// Debian's systemd-notify sends READY=1 in the name of its parent (the job's shell) and waits
// (BARRIER=1) until batond has read it: reliable even though it exits right after.
TEST_F(IntegrationNotify, SystemdNotifyFromAScript) {
  if (!pathExists("/usr/bin/systemd-notify")) GTEST_SKIP() << "/usr/bin/systemd-notify is missing (Debian package systemd)";
  for (const char* name : {"sd1", "sd2", "sd3"})
    b().writeJob(name, std::string("expect notify\nscript\n  systemd-notify --ready --status=\"via systemd-notify\"\n"
                                   "  exec sleep 1000\nend script\n"));
  BATON_START();
  for (const char* name : {"sd1", "sd2", "sd3"}) {
    CmdResult r = b().ctl({"start", name});
    EXPECT_EQ(r.exitCode, 0) << r.describe();
    EXPECT_TRUE(contains(b().status(name), "status: via systemd-notify")) << b().status(name);
  }
}

// A job waiting for readiness while batond re-execs becomes ready after, once: the start issued
// before the re-exec returns, and the deadline keeps its absolute time.
TEST_F(IntegrationNotify, WaitingAcrossAReexec) {
  b().writeJob("slow", notifyJob("--wait-file @WORK@/go", "ready timeout 600\n"));
  BATON_START();
  ASSERT_EQ(b().ctl({"log-priority", "info"}).exitCode, 0);
  auto start = inBackground(b(), {"start", "slow"}, 60s);
  ASSERT_TRUE(b().waitStatus("slow", "start/spawned"));
  auto deadline = [&] {
    CmdResult s = b().ctl({"snapshot", "--json"});
    size_t at = s.out.find("\"readyDeadlineNs\": \"");
    return at == std::string::npos ? std::string() : s.out.substr(at + 20, s.out.find('"', at + 20) - at - 20);
  };
  const std::string before = deadline();
  ASSERT_FALSE(before.empty());
  CmdResult re = b().ctl({"reexec"});
  ASSERT_EQ(re.exitCode, 0) << re.describe();
  EXPECT_TRUE(contains(re.out, "format: 2 (no migration)")) << re.describe();
  EXPECT_EQ(deadline(), before);
  EXPECT_FALSE(done(start));
  // Sent while the next re-exec is on its way: whichever image reads it, it is read once.
  auto again = inBackground(b(), {"reexec"});
  writeFile(b().work("go"), "");
  CmdResult r = start.get();
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(again.get().exitCode, 0);
  EXPECT_TRUE(contains(b().status("slow"), "start/running")) << b().status("slow");
  int ready = 0;
  for (const std::string& line : splitLines(b().daemonStderr())) ready += contains(line, "slow is ready");
  EXPECT_EQ(ready, 1) << b().daemonStderr();
}

// ---- The downgrade policy (docs/formats.md), row by row, against a target that reads format 1
// only. The target is this build's batond behind a wrapper that describes itself as 0.1.0 does:
// the old image must then downgrade (or refuse), and the new image upgrades again on restore.
// scripts/baton-upgrade-test runs the same rows against the real 0.1.0 binary.

std::string formatOneTarget(Baton& b) {
  const std::string path = b.dir() + "/batond-reads-format-1";
  writeFile(path,
            "#!/bin/sh\n"
            "if [ \"$1\" = --state-formats ]; then printf 'baton 0.1.0\\nwrites 1\\nreads 1-1\\n'; exit 0; fi\n"
            "exec " + Baton::binDir() + "/batond \"$@\"\n",
            0755);
  return path;
}

std::string snapshotJson(Baton& b) { return b.ctl({"snapshot", "--json"}).out; }

// (a) No `expect notify` job: downgraded, nothing mapped, the format path shown both ways.
TEST_F(IntegrationNotify, DowngradeWithoutNotifyJobs) {
  b().writeJob("plain", "exec sleep 1000\n");
  BATON_START();
  ASSERT_EQ(b().ctl({"start", "plain"}).exitCode, 0);
  const pid_t pid = b().mainPid("plain");
  CmdResult r = b().ctl({"reexec", "--binary", formatOneTarget(b())}, 60s);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "format: 2 -> 1 (1 downgrade step)")) << r.describe();
  EXPECT_FALSE(contains(r.out, "mapped:")) << r.describe();
  // The new image read format 1 and upgraded it.
  EXPECT_TRUE(contains(r.out, "format: 1 -> 2 (1 upgrade step)")) << r.describe();
  EXPECT_TRUE(contains(b().ctl({"status", "--daemon"}).out, "format: 1 -> 2 (1 upgrade step)"));
  EXPECT_EQ(b().mainPid("plain"), pid);
  EXPECT_TRUE(contains(b().ctl({"status", "--daemon"}).out, "notify socket: "));  // opened anew
}

// (b) A notify job defined, no instance: refused unless the client allows the mapping; then
// `expect notify` becomes `expect none`, listed in the answer.
TEST_F(IntegrationNotify, DowngradeOfANotifyDefinitionNeedsConsent) {
  b().writeJob("idle", notifyJob("--never"));
  BATON_START();
  const std::string target = formatOneTarget(b());
  CmdResult r = b().ctl({"reexec", "--binary", target}, 60s);
  EXPECT_NE(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out + r.err, "would be mapped from `expect notify` to `expect none`")) << r.describe();
  EXPECT_TRUE(contains(r.out + r.err, "'idle'")) << r.describe();
  EXPECT_TRUE(contains(snapshotJson(b()), "\"expect\": \"notify\""));  // nothing changed
  r = b().ctl({"reexec", "--binary", target, "--allow-downgrade-mapping"}, 60s);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "mapped: job 'idle': `expect notify` becomes `expect none`")) << r.describe();
  EXPECT_FALSE(contains(snapshotJson(b()), "\"expect\": \"notify\""));
}

// (c) A notify instance running and ready: mapped with consent; the process keeps running.
TEST_F(IntegrationNotify, DowngradeOfAReadyInstanceMapsIt) {
  b().writeJob("up", notifyJob("--status serving"));
  BATON_START();
  ASSERT_EQ(b().ctl({"start", "up"}).exitCode, 0);
  const pid_t pid = b().mainPid("up");
  const std::string target = formatOneTarget(b());
  CmdResult r = b().ctl({"reexec", "--binary", target}, 60s);
  EXPECT_NE(r.exitCode, 0) << r.describe();
  r = b().ctl({"reexec", "--binary", target, "--allow-downgrade-mapping"}, 60s);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "mapped: job 'up': `expect notify` becomes `expect none`; the readiness and status "
                              "text of 'up' are dropped"))
      << r.describe();
  EXPECT_EQ(b().mainPid("up"), pid);
  const std::string st = b().status("up");
  EXPECT_TRUE(contains(st, "start/running")) << st;
  EXPECT_FALSE(contains(st, "readiness:")) << st;
}

// (d) A notify instance still waiting for readiness: refused even with consent, naming it; the
// old binary goes on, and the job becomes ready as if nothing happened.
TEST_F(IntegrationNotify, DowngradeWhileWaitingForReadinessIsRefused) {
  b().writeJob("slow", notifyJob("--wait-file @WORK@/go"));
  BATON_START();
  auto start = inBackground(b(), {"start", "slow"}, 60s);
  ASSERT_TRUE(b().waitStatus("slow", "start/spawned"));
  const std::string daemonBefore = b().ctl({"status", "--daemon"}).out;
  CmdResult r = b().ctl({"reexec", "--binary", formatOneTarget(b()), "--allow-downgrade-mapping"}, 60s);
  EXPECT_NE(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out + r.err, "'slow' is still waiting for it")) << r.describe();
  EXPECT_TRUE(contains(r.out + r.err, "re-exec aborted")) << r.describe();
  EXPECT_TRUE(contains(b().status("slow"), "readiness: waiting")) << b().status("slow");
  EXPECT_FALSE(done(start));
  writeFile(b().work("go"), "");
  CmdResult s = start.get();
  EXPECT_EQ(s.exitCode, 0) << s.describe();
}

}  // namespace
}  // namespace baton::itest
