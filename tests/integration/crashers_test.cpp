// The readers that run as real programs (batond's pre-flight and baton-state) on every snapshot
// that once crashed a reader (tests/data/crashers/): read (exit status 0) or refused with a
// reason (exit status 1), never a crash.
#include <filesystem>

#include "tests/integration/harness.h"

namespace baton::itest {
namespace {

std::vector<std::string> snapshotCrashers() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(std::string(BATON_SOURCE_DIR) + "/tests/data/crashers"))
    if (e.path().extension() == ".snapshot") out.push_back(e.path().string());
  return out;
}

TEST(IntegrationCrashers, PreflightReadsOrRefusesEverySnapshotCrasher) {
  const auto files = snapshotCrashers();
  ASSERT_FALSE(files.empty());
  for (const std::string& f : files) {
    // The pre-flight reads the snapshot on an fd, as a re-exec hands it.
    CmdResult r = runCommand({"/bin/sh", "-c", "exec \"$0\" --verify-state 3 3<\"$1\"", Baton::binDir() + "/batond", f}, 10s);
    EXPECT_TRUE(r.exitCode == 0 || r.exitCode == 1) << f << ": " << r.describe();
    if (r.exitCode == 1) EXPECT_TRUE(contains(r.out, "refused: ")) << f << ": " << r.describe();
  }
}

TEST(IntegrationCrashers, BatonStateReadsOrRefusesEverySnapshotCrasher) {
  for (const std::string& f : snapshotCrashers()) {
    for (const char* verb : {"verify", "decode"}) {
      CmdResult r = runCommand({Baton::binDir() + "/baton-state", verb, f}, 10s);
      EXPECT_TRUE(r.exitCode == 0 || r.exitCode == 1) << verb << " " << f << ": " << r.describe();
      if (r.exitCode == 1) EXPECT_TRUE(contains(r.err, "snapshot")) << verb << " " << f << ": " << r.describe();
    }
  }
}

}  // namespace
}  // namespace baton::itest
