// Self-tests of the harness: it must detect a batond that dies early, find the namespace's PID 1
// and bound commands that hang.
#include <regex>

#include "harness.h"

namespace baton::itest {
namespace {

TEST(IntegrationHarness, CommandTimeoutIsBoundedAndKills) {
  CmdResult r = runCommand({"/bin/sleep", "30"}, 300ms);
  EXPECT_TRUE(r.timedOut);
  EXPECT_EQ(r.exitCode, 128 + SIGKILL) << r.describe();
}

TEST(IntegrationHarness, CapturesOutputAndExitCode) {
  CmdResult r = runCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exitCode, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  CmdResult id = runCommand({"/usr/bin/id", "-u"}, 10s, 65534, 65534);
  EXPECT_EQ(id.out, "65534\n") << id.describe();
}

// A batond that exits at once (here: an unknown option) is reported as such, with its exit
// status, instead of a readiness timeout.
TEST(IntegrationHarness, ReportsDaemonThatExitsBeforeReady) {
  for (Mode mode : {Mode::Namespace, Mode::Subreaper}) {
    Options o;
    o.mode = mode;
    o.extraArgs = {"--no-such-option-for-the-harness-test"};
    Baton b(o);
    std::string why;
    EXPECT_FALSE(b.start(&why));
    EXPECT_TRUE(contains(why, "exited with status")) << why;
    EXPECT_TRUE(b.exited());
  }
}

class IntegrationHarnessNs : public BatonTest {};

TEST_F(IntegrationHarnessNs, DaemonIsPid1OfItsNamespace) {
  BATON_START();
  pid_t d = b().daemonHostPid();
  ASSERT_GT(d, 0);
  EXPECT_EQ(innermostPid(d), 1);
  auto procs = b().daemonProcesses();
  EXPECT_NE(std::find(procs.begin(), procs.end(), d), procs.end());
  EXPECT_EQ(b().hostPid(1), d);
  CmdResult v = b().ctl({"version"});
  EXPECT_EQ(v.exitCode, 0) << v.describe();
  EXPECT_TRUE(std::regex_search(v.out, std::regex("^baton [0-9]+\\.[0-9]+\\.[0-9]+")))
      << v.describe();
  CmdResult ds = b().ctl({"status", "--daemon"});
  EXPECT_EQ(ds.exitCode, 0) << ds.describe();
  EXPECT_FALSE(ds.out.empty());
}

}  // namespace
}  // namespace baton::itest
