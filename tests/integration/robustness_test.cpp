// What a real init user expects in awkward moments: a typo in a job file, a shutdown while events
// would start jobs, log rotation, signals turned into events, bad flags.
#include <signal.h>

#include "tests/integration/harness.h"

namespace baton::itest {
namespace {

class IntegrationRobustness : public BatonTest {};
class IntegrationRobustnessSubreaper : public SubreaperTest {};

TEST_F(IntegrationRobustness, TypoInAJobFileKeepsTheLastGoodDefinition) {
  b().writeJob("svc", "exec /bin/sh -c 'echo first; exec sleep 1000'\n");
  BATON_START();
  ASSERT_EQ(b().ctl({"start", "svc"}).exitCode, 0);
  b().writeJob("svc", "exec /bin/sh -c 'echo second; exec sleep 1000'\nrespawn limit lots 5\n");
  CmdResult r = b().ctl({"reload-configuration"});
  EXPECT_TRUE(contains(r.out + r.err, "svc.conf:2:")) << r.describe();
  // Still known, still running, and a restart uses the last good definition.
  EXPECT_TRUE(contains(b().statusLine("svc"), "svc start/running")) << b().status("svc");
  ASSERT_EQ(b().ctl({"restart", "svc"}).exitCode, 0);
  EXPECT_TRUE(waitFor([&] { return countLines(b().readLog("svc"), "first") == 2; })) << b().readLog("svc");
  EXPECT_EQ(countLines(b().readLog("svc"), "second"), 0);
  // Removing the file does remove the job once it is stopped.
  b().removeJob("svc");
  ASSERT_EQ(b().ctl({"reload-configuration"}).exitCode, 0);
  ASSERT_EQ(b().ctl({"stop", "svc"}).exitCode, 0);
  EXPECT_TRUE(waitFor([&] { return b().ctl({"status", "svc"}).exitCode == 3; }));
}

TEST_F(IntegrationRobustnessSubreaper, ShutdownDoesNotStartJobsFromEvents) {
  b().writeJob("first", "start on startup\nexec sleep 1000\n");
  b().writeJob("follower", "start on stopped first\nexec /bin/sh -c 'echo started; exec sleep 1000'\n");
  BATON_START();
  ASSERT_TRUE(waitFor([&] { return contains(b().statusLine("first"), "start/running"); }));
  std::optional<int> code = b().terminate(15s);
  ASSERT_TRUE(code.has_value()) << "batond did not finish its shutdown\n" << b().daemonStderr();
  EXPECT_EQ(*code, 0);
  EXPECT_FALSE(b().logExists("follower")) << b().readLog("follower");
}

// What `status --daemon` says about job classes held encoded (0 when it does not say).
int heldJobs(Baton& b) {
  CmdResult s = b.ctl({"status", "--daemon"});
  const std::string key = "jobs held encoded (untouched since a restore or an idle encoding): ";
  for (const auto& line : splitLines(s.out))
    if (line.rfind(key, 0) == 0) return std::stoi(line.substr(key.size()));
  return 0;
}

// A job whose class is held encoded (idle encoding) is still reached: `show-config` reads its
// definition, and a shutdown stops it (batond exits only once it is at rest).
TEST_F(IntegrationRobustnessSubreaper, ShutdownStopsJobsHeldEncoded) {
  b().writeJob("held", "start on startup\nexec sleep 1000\n");
  BATON_START();
  ASSERT_TRUE(waitFor([&] { return contains(b().statusLine("held"), "start/running"); }));
  const pid_t pid = b().mainPid("held");
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(waitFor([&] { return heldJobs(b()) == 1; }, 10s, 100ms)) << heldJobs(b());
  CmdResult c = b().ctl({"show-config", "held"});
  EXPECT_EQ(c.exitCode, 0) << c.describe();
  EXPECT_TRUE(contains(c.out, "start on startup")) << c.describe();
  ASSERT_TRUE(waitFor([&] { return heldJobs(b()) == 1; }, 10s, 100ms)) << heldJobs(b());
  std::optional<int> code = b().terminate(15s);
  ASSERT_TRUE(code.has_value()) << "batond did not finish its shutdown\n" << b().daemonStderr();
  EXPECT_EQ(*code, 0);
  EXPECT_TRUE(waitFor([&] { return !pidExists(pid); })) << "the held job's process " << pid << " survived";
}

TEST_F(IntegrationRobustness, LogFilesAreReopenedOnReload) {
  b().writeJob("chatty", "start on startup\nexec /bin/sh -c 'i=0; while true; do i=$((i+1)); echo line $i; sleep 0.05; done'\n");
  BATON_START();
  ASSERT_TRUE(b().waitLog("chatty", "line 3\n"));
  std::string rotated = b().logPath("chatty") + ".1";
  ASSERT_EQ(rename(b().logPath("chatty").c_str(), rotated.c_str()), 0);
  ASSERT_EQ(b().ctl({"reload-configuration"}).exitCode, 0);
  EXPECT_TRUE(waitFor([&] { return b().logExists("chatty") && countLines(b().readLog("chatty"), "") >= 0 &&
                                   contains(b().readLog("chatty"), "line "); }))
      << "no new log file after rotation";
  // Nothing lost in between: the two files together hold a gapless sequence.
  std::string all = readFile(rotated) + b().readLog("chatty");
  std::vector<std::string> lines = splitLines(all);
  ASSERT_GE(lines.size(), 4u);
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i], "line " + std::to_string(i + 1));
}

TEST_F(IntegrationRobustness, SignalsToPid1BecomeEvents) {
  b().writeJob("cad", "start on control-alt-delete\ntask\nexec echo ctrl-alt-del\n");
  b().writeJob("power", "start on power-status-changed\ntask\nexec echo power\n");
  b().writeJob("kbd", "start on keyboard-request\ntask\nexec echo keyboard\n");
  BATON_START();
  pid_t init = b().daemonHostPid();
  ASSERT_GT(init, 0);
  ASSERT_EQ(kill(init, SIGINT), 0);
  ASSERT_EQ(kill(init, SIGPWR), 0);
  ASSERT_EQ(kill(init, SIGWINCH), 0);
  EXPECT_TRUE(b().waitLog("cad", "ctrl-alt-del\n"));
  EXPECT_TRUE(b().waitLog("power", "power\n"));
  EXPECT_TRUE(b().waitLog("kbd", "keyboard\n"));
  EXPECT_EQ(b().ctl({"version"}).exitCode, 0);  // still PID 1 and serving
}

TEST(IntegrationFlags, BadFlagsAreUsageErrors) {
  const std::string batond = Baton::binDir() + "/batond";
  CmdResult r = runCommand({batond, "--log-priority", "loud"}, 10s);
  EXPECT_EQ(r.exitCode, 2) << r.describe();
  EXPECT_TRUE(contains(r.err, "unknown log priority 'loud'")) << r.describe();
  r = runCommand({batond, "--cgroup-base", "/abs"}, 10s);
  EXPECT_EQ(r.exitCode, 2) << r.describe();
  r = runCommand({batond, "--no-such-flag"}, 10s);
  EXPECT_EQ(r.exitCode, 2) << r.describe();
  r = runCommand({batond, "--restore-fd", "x"}, 10s);
  EXPECT_EQ(r.exitCode, 2) << r.describe();
  r = runCommand({batond, "--state-formats"}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "writes 2\nreads 1-2\n")) << r.describe();
}

}  // namespace
}  // namespace baton::itest

namespace baton::itest {
namespace {

TEST_F(IntegrationRobustness, SnapshotOfTheLiveStateAsJson) {
  b().writeJob("svc", "start on startup\nexec sleep 1000\n");
  BATON_START();
  ASSERT_TRUE(waitFor([&] { return contains(b().statusLine("svc"), "start/running"); }));
  CmdResult r = b().ctl({"snapshot", "--json"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "\"classes\"")) << r.describe();
  EXPECT_TRUE(contains(r.out, "\"name\": \"svc\"")) << r.describe();
  EXPECT_TRUE(contains(r.out, "\"state\": \"running\"")) << r.describe();
  // Nothing changed: the job still runs with the same pid, and the raw form is a snapshot.
  EXPECT_TRUE(contains(b().statusLine("svc"), "start/running"));
  std::string raw = b().dir() + "/live.snapshot";
  ASSERT_EQ(b().ctl({"snapshot", "-o", raw}).exitCode, 0);
  EXPECT_EQ(readFile(raw).substr(0, 8), "BATONST1");
}

}  // namespace
}  // namespace baton::itest
