// What a local user could plant where batond writes as root (the log directory), and names that
// would forge lines of batond's output. batond must write nothing through a planted link, never
// block on a planted FIFO, and refuse control characters in names with a clear error.
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

namespace baton::itest {
namespace {

class IntegrationHardening : public BatonTest {
 protected:
  // A file outside the log directory that a planted entry points at; it must stay as it is.
  std::string victim() {
    const std::string v = b().work("victim");
    if (!pathExists(v)) writeFile(v, "untouched\n");
    return v;
  }
  void plantInLogDir() { ASSERT_EQ(runCommand({"/bin/mkdir", "-p", b().logDir()}).exitCode, 0); }
  // A planted FIFO goes before the harness's diagnostics read every file of the log directory.
  void TearDown() override {
    if (!fifo_.empty()) unlink(fifo_.c_str());
    BatonTest::TearDown();
  }
  std::string fifo_;
};

TEST_F(IntegrationHardening, JobLogIsNotWrittenThroughASymlink) {
  ASSERT_NO_FATAL_FAILURE(plantInLogDir());
  ASSERT_EQ(symlink(victim().c_str(), (b().logDir() + "/linked.log").c_str()), 0);
  b().writeJob("linked", "task\nexec /bin/echo written-through-the-link\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "linked"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(waitFor([&] { return contains(b().daemonStderr(), "linked.log: is a symbolic link"); }))
      << b().diagnostics();
  EXPECT_EQ(readFile(victim()), "untouched\n");
}

TEST_F(IntegrationHardening, JobLogIsNotWrittenThroughAHardLink) {
  ASSERT_NO_FATAL_FAILURE(plantInLogDir());
  ASSERT_EQ(link(victim().c_str(), (b().logDir() + "/hard.log").c_str()), 0);
  b().writeJob("hard", "task\nexec /bin/echo written-through-the-link\n");
  BATON_START();
  ASSERT_EQ(b().ctl({"start", "hard"}).exitCode, 0);
  ASSERT_TRUE(waitFor([&] { return contains(b().daemonStderr(), "hard.log: has 2 hard links"); }))
      << b().diagnostics();
  EXPECT_EQ(readFile(victim()), "untouched\n");
}

TEST_F(IntegrationHardening, AFifoInPlaceOfALogDoesNotBlockBatond) {
  ASSERT_NO_FATAL_FAILURE(plantInLogDir());
  fifo_ = b().logDir() + "/piped.log";
  ASSERT_EQ(mkfifo(fifo_.c_str(), 0600), 0);
  b().writeJob("piped", "task\nexec /bin/echo into-a-fifo\n");
  b().writeJob("after", "task\nexec /bin/true\n");
  BATON_START();
  ASSERT_EQ(b().ctl({"start", "piped"}).exitCode, 0);
  ASSERT_TRUE(waitFor([&] { return contains(b().daemonStderr(), "piped.log: not a regular file"); }))
      << b().diagnostics();
  // Still serving: a blocking open of the FIFO would have stopped the loop.
  CmdResult r = b().ctl({"start", "after"}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
}

TEST_F(IntegrationHardening, KeptSnapshotOfAFailedRestoreReplacesALinkNotItsTarget) {
  ASSERT_NO_FATAL_FAILURE(plantInLogDir());
  const std::string kept = b().logDir() + "/baton.state.failed";
  ASSERT_EQ(symlink(victim().c_str(), kept.c_str()), 0);
  BATON_START();
  CmdResult r = b().ctl({"reexec", "--test-refuse-restore"}, 30s);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(contains(r.out, "rolled back")) << r.describe();
  EXPECT_EQ(readFile(victim()), "untouched\n");
  struct stat st;
  ASSERT_EQ(lstat(kept.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode)) << "the link was not replaced by the kept snapshot";
  CmdResult v = runCommand({Baton::binDir() + "/baton-state", "verify", kept});
  EXPECT_EQ(v.exitCode, 0) << v.describe();
}

TEST_F(IntegrationHardening, InstanceNameWithAControlCharacterIsRefused) {
  b().writeJob("worker", "instance $NAME\nexec sleep 1000\n");
  BATON_START();
  CmdResult r = b().ctl({"start", "worker", "NAME=evil\nworker (forged) start/running"});
  EXPECT_EQ(r.exitCode, 2) << r.describe();
  EXPECT_TRUE(contains(r.err, "instance name contains a control character (0x0a) at offset 4")) << r.describe();
  CmdResult list = b().ctl({"list"});
  EXPECT_FALSE(contains(list.out, "forged")) << list.describe();
  CmdResult ok = b().ctl({"start", "worker", "NAME=fine-name_1.2 with space"});
  EXPECT_EQ(ok.exitCode, 0) << ok.describe();
}

TEST_F(IntegrationHardening, JobFileNameWithAControlCharacterIsSkippedWithAnError) {
  writeFile(b().confDir() + "/bad\tname.conf", "exec sleep 1000\n");
  b().writeJob("good", "exec sleep 1000\n");
  BATON_START();
  CmdResult r = b().ctl({"check-config"});
  EXPECT_TRUE(contains(r.out + r.err, "/bad\\x09name.conf:1: job name contains a control character (0x09) at offset 3; skipped"))
      << r.describe();
  EXPECT_EQ(b().ctl({"status", "good"}).exitCode, 0);
}

}  // namespace
}  // namespace baton::itest
