// Job file loading: malformed files, check-config, reload-configuration.
#include "harness.h"

namespace baton::itest {
namespace {

class IntegrationConfig : public BatonTest {};

TEST_F(IntegrationConfig, BadJobIsSkippedOthersLoad) {
  b().writeJob("bad", R"JOB(description "bad job"
frobnicate everything
exec sleep 1
)JOB");
  b().writeJob("unterminated", R"JOB(script
  echo never
)JOB");
  b().writeJob("good", "task\nexec touch @WORK@/good-ran\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "good"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(pathExists(b().work("good-ran")));
  r = b().ctl({"start", "bad"});
  EXPECT_EQ(r.exitCode, 3) << r.describe();
  r = b().ctl({"status", "unterminated"});
  EXPECT_EQ(r.exitCode, 3) << r.describe();

  CmdResult c = b().ctl({"check-config"});
  EXPECT_NE(c.exitCode, 0) << c.describe();
  std::string all = c.out + c.err;
  EXPECT_TRUE(contains(all, "bad.conf:2:")) << c.describe();
  EXPECT_TRUE(contains(all, "unterminated.conf:")) << c.describe();
  EXPECT_FALSE(contains(all, "good.conf:")) << c.describe();
}

TEST_F(IntegrationConfig, CheckConfigCleanExitsZero) {
  b().writeJob("good", "exec sleep 1000\n");
  BATON_START();
  CmdResult c = b().ctl({"check-config"});
  EXPECT_EQ(c.exitCode, 0) << c.describe();
  CmdResult s = b().ctl({"show-config", "good"});
  EXPECT_EQ(s.exitCode, 0) << s.describe();
  EXPECT_TRUE(contains(s.out, "good")) << s.describe();
}

// NAME.override replaces stanzas of NAME.conf; `manual` drops the `start on`.
TEST_F(IntegrationConfig, OverrideManualDisablesStartOn) {
  b().writeJob("auto", "start on startup\ntask\nexec touch @WORK@/auto-ran\n");
  writeFile(b().confDir() + "/auto.override", "manual\n");
  b().writeJob("sentinel", "start on startup\ntask\nexec touch @WORK@/sentinel-ran\n");
  BATON_START();
  ASSERT_TRUE(waitFor([&] { return pathExists(b().work("sentinel-ran")); }, 5s));
  EXPECT_TRUE(b().waitStatus("sentinel", "sentinel stop/waiting"));
  EXPECT_FALSE(pathExists(b().work("auto-ran"))) << "override `manual` ignored";
  CmdResult r = b().ctl({"start", "auto"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(pathExists(b().work("auto-ran")));
}

TEST_F(IntegrationConfig, ReloadAddsAndRemovesJobs) {
  b().writeJob("old", "exec sleep 1000\n");
  BATON_START();
  CmdResult r = b().ctl({"status", "fresh"});
  EXPECT_EQ(r.exitCode, 3) << r.describe();
  r = b().ctl({"start", "old"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();

  b().writeJob("fresh", "task\nexec touch @WORK@/fresh-ran\n");
  b().removeJob("old");
  r = b().ctl({"reload-configuration"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();

  EXPECT_EQ(b().statusLine("fresh"), "fresh stop/waiting");
  r = b().ctl({"start", "fresh"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(pathExists(b().work("fresh-ran")));

  // A removed job keeps running until it is stopped, then disappears.
  EXPECT_TRUE(contains(b().statusLine("old"), "old start/running")) << b().status("old");
  r = b().ctl({"stop", "old"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return b().ctl({"status", "old"}).exitCode == 3; }, 5s))
      << b().ctl({"status", "old"}).describe();
  CmdResult l = b().ctl({"list"});
  EXPECT_FALSE(contains(l.out, "old ")) << l.out;
}

TEST_F(IntegrationConfig, ChangedDefinitionAppliesOnNextStart) {
  b().writeJob("chg", R"JOB(script
  echo version-one
  exec sleep 1000
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "chg"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b().waitLog("chg", "version-one\n"));
  pid_t pid = b().mainPid("chg");

  b().writeJob("chg", R"JOB(script
  echo version-two
  exec sleep 1000
end script
)JOB");
  r = b().ctl({"reload-configuration"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  std::string st = b().status("chg");
  EXPECT_TRUE(contains(st, "chg start/running")) << st;
  EXPECT_TRUE(contains(st, "\tnewer definition pending: applies on next start")) << st;
  EXPECT_EQ(b().mainPid("chg"), pid) << "reload must not restart a running job";

  r = b().ctl({"stop", "chg"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_FALSE(contains(b().status("chg"), "newer definition pending")) << b().status("chg");
  r = b().ctl({"start", "chg"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("chg", "version-two\n")) << b().readLog("chg");
  EXPECT_TRUE(linesInOrder(b().readLog("chg"), {"version-one", "version-two"}));
}

}  // namespace
}  // namespace baton::itest
