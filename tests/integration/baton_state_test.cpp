// baton-state, the offline snapshot tool, on the golden snapshots and real Upstart states.
#include "tests/integration/harness.h"
#include "schema/release.h"

namespace baton::itest {
namespace {

std::string tool() { return Baton::binDir() + "/baton-state"; }
std::string golden(const std::string& scenario) {
  return std::string(BATON_SOURCE_DIR) + "/tests/data/snapshots/format1-0.1.0-" + scenario + ".snapshot";
}

class IntegrationBatonState : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/baton-state-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { runCommand({"/bin/rm", "-rf", dir_}, 10s); }
  std::string path(const std::string& name) { return dir_ + "/" + name; }
  std::string dir_;
};

TEST_F(IntegrationBatonState, VerifyDecodeAndJsonRoundTrip) {
  CmdResult v = runCommand({tool(), "verify", golden("blocked-event")}, 10s);
  EXPECT_EQ(v.exitCode, 0) << v.describe();
  EXPECT_TRUE(contains(v.out, "ok (format 1, written by baton 0.1.0): 2 jobs, 2 instances, 1 events")) << v.describe();

  CmdResult d = runCommand({tool(), "decode", golden("timers")}, 10s);
  EXPECT_EQ(d.exitCode, 0) << d.describe();
  EXPECT_TRUE(contains(d.out, "format: 1")) << d.describe();
  EXPECT_TRUE(contains(d.out, "control socket")) << d.describe();

  CmdResult text = runCommand({tool(), "decode", golden("timers"), "--text"}, 10s);
  EXPECT_TRUE(contains(text.out, "stubborn")) << text.describe();

  // decode --json, encode it back (in this build's format: the golden one upgraded first), and
  // the state is the same (fd identities are not in JSON).
  CmdResult up = runCommand({tool(), "migrate", golden("instances"), "--to", std::to_string(kSnapshotFormat), "-o",
                             path("current.snapshot")}, 10s);
  ASSERT_EQ(up.exitCode, 0) << up.describe();
  CmdResult json = runCommand({tool(), "decode", path("current.snapshot"), "--json"}, 10s);
  ASSERT_EQ(json.exitCode, 0) << json.describe();
  writeFile(path("state.json"), json.out);
  CmdResult enc = runCommand({tool(), "encode", "--from-json", path("state.json"), "-o", path("again.snapshot")}, 10s);
  ASSERT_EQ(enc.exitCode, 0) << enc.describe();
  CmdResult same = runCommand({tool(), "diff", path("current.snapshot"), path("again.snapshot")}, 10s);
  EXPECT_EQ(same.exitCode, 0) << same.describe();
  EXPECT_TRUE(contains(same.out, "no differences")) << same.describe();
}

TEST_F(IntegrationBatonState, DiffIsSemantic) {
  CmdResult r = runCommand({tool(), "diff", golden("idle"), golden("instances")}, 10s);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(contains(r.out, "state.classes[\"svc\"]: removed")) << r.describe();
  EXPECT_TRUE(contains(r.out, "state.classes[\"inst\"]: added")) << r.describe();
  r = runCommand({tool(), "diff", golden("spawn-in-flight"), golden("spawn-in-flight")}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
}

TEST_F(IntegrationBatonState, MigrateAndRefusals) {
  CmdResult r = runCommand({tool(), "migrate", golden("idle"), "--to", "1", "-o", path("m.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  r = runCommand({tool(), "diff", golden("idle"), path("m.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  // Up to format 2 and back: the upgrade changes only the format, the way back restores it.
  r = runCommand({tool(), "migrate", golden("idle"), "--to", "2", "-o", path("up.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "format 1 -> 2 (1 upgrade step)")) << r.describe();
  r = runCommand({tool(), "diff", golden("idle"), path("up.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_EQ(r.out, "header.format: 1 -> 2\n") << r.describe();
  r = runCommand({tool(), "migrate", path("up.snapshot"), "--to", "1", "-o", path("down.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "format 2 -> 1 (1 downgrade step)")) << r.describe();
  r = runCommand({tool(), "diff", golden("idle"), path("down.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  r = runCommand({tool(), "migrate", golden("idle"), "--to", "7", "-o", path("n.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(contains(r.err, "format 1, written by baton 0.1.0")) << r.describe();
  EXPECT_TRUE(contains(r.err, "no migration from format 2 to 3")) << r.describe();

  // The downgrade policy offline: 0.2.0's snapshot with a ready `expect notify` job needs --map;
  // one with a job still waiting for readiness is refused even with it.
  const std::string ready = std::string(BATON_SOURCE_DIR) + "/tests/data/snapshots/format2-0.2.0-notify-ready.snapshot";
  const std::string waiting = std::string(BATON_SOURCE_DIR) + "/tests/data/snapshots/format2-0.2.0-notify-waiting.snapshot";
  r = runCommand({tool(), "migrate", ready, "--to", "1", "-o", path("r1.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(contains(r.err, "job 'up' would be mapped from `expect notify` to `expect none`")) << r.describe();
  r = runCommand({tool(), "migrate", ready, "--to", "1", "--map", "-o", path("r1.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "format 2 -> 1 (1 downgrade step)")) << r.describe();
  EXPECT_TRUE(contains(r.out, "mapped: job 'up': `expect notify` becomes `expect none`")) << r.describe();
  r = runCommand({tool(), "verify", path("r1.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  r = runCommand({tool(), "migrate", waiting, "--to", "1", "--map", "-o", path("w1.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(contains(r.err, "'slow' is still waiting for it")) << r.describe();
  EXPECT_FALSE(pathExists(path("w1.snapshot")));

  writeFile(path("junk"), std::string(100, 'x'));
  r = runCommand({tool(), "verify", path("junk")}, 10s);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(contains(r.err, path("junk") + ": not a baton snapshot (wrong magic)")) << r.describe();
  r = runCommand({tool(), "verify", path("missing")}, 10s);
  EXPECT_EQ(r.exitCode, 3) << r.describe();
  r = runCommand({tool(), "frobnicate"}, 10s);
  EXPECT_EQ(r.exitCode, 2) << r.describe();
}

TEST_F(IntegrationBatonState, ImportUpstart) {
  std::string states = std::string(BATON_SHARED_DIR) + "/upstart/states";
  if (!pathExists(states + "/upstart-1.9.json"))
    GTEST_SKIP() << "the Upstart state files are not at " << states << " (../shared is absent)";
  CmdResult r = runCommand({tool(), "import-upstart", states + "/upstart-1.9.json", "-o", path("up.snapshot")}, 30s);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "imported 90 jobs, 37 instances, 1 events")) << r.describe();
  r = runCommand({tool(), "verify", path("up.snapshot")}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "90 jobs, 37 instances")) << r.describe();
  writeFile(path("bad.json"), "{\"sessions\": [], \"events\": [], \"job_classes\": [{\"name\": \"x\", \"jobs\": [{\"name\": \"\", \"state\": \"JOB_FOO\"}]}]}");
  r = runCommand({tool(), "import-upstart", path("bad.json")}, 10s);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(contains(r.err, path("bad.json") + " (Upstart JSON state): job_classes[0].jobs[0].")) << r.describe();
}

}  // namespace
}  // namespace baton::itest
