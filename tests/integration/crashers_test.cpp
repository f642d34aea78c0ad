// The readers that run as real programs (batond's pre-flight and baton-state) on every input
// that once crashed one of them (tests/data/crashers/): refused with a reason, exit status 1.
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

TEST(IntegrationCrashers, PreflightRefusesEverySnapshotCrasher) {
  const auto files = snapshotCrashers();
  ASSERT_FALSE(files.empty());
  for (const std::string& f : files) {
    // The pre-flight reads the snapshot on an fd, as a re-exec hands it.
    CmdResult r = runCommand({"/bin/sh", "-c", "exec \"$0\" --verify-state 3 3<\"$1\"", Baton::binDir() + "/batond", f}, 10s);
    EXPECT_EQ(r.exitCode, 1) << f << ": " << r.describe();
    EXPECT_TRUE(contains(r.out, "refused: ")) << f << ": " << r.describe();
  }
}

TEST(IntegrationCrashers, BatonStateRefusesEverySnapshotCrasher) {
  for (const std::string& f : snapshotCrashers()) {
    for (const char* verb : {"verify", "decode"}) {
      CmdResult r = runCommand({Baton::binDir() + "/baton-state", verb, f}, 10s);
      EXPECT_EQ(r.exitCode, 1) << verb << " " << f << ": " << r.describe();
      EXPECT_TRUE(contains(r.err, "snapshot")) << verb << " " << f << ": " << r.describe();
    }
  }
}

}  // namespace
}  // namespace baton::itest
