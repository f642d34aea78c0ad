// Inputs that once crashed a reader, kept forever (tests/data/crashers/). Each must now be
// refused with a reason, never read past its end.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "migrate/formats.h"
#include "serialize/snapshot.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

std::string crasherDir() { return std::string(BATON_SOURCE_DIR) + "/tests/data/crashers"; }

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<fs::path> crashers(const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(crasherDir()))
    if (e.path().extension() == ext) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Header sizes chosen so that header + fdCount * 32 + bodyBytes wraps around 2^64 to the file's
// 128 bytes, with a checksum that matches: the sizes must be refused before anything is copied.
TEST(Crashers, SnapshotWhoseSizesWrapIsRefused) {
  Snapshot s;
  std::string error;
  EXPECT_FALSE(s.openBytes(slurp(crasherDir() + "/snapshot-size-wraps.snapshot"), error));
  EXPECT_NE(error.find("snapshot size mismatch"), std::string::npos) << error;
}

TEST(Crashers, EverySnapshotCrasherIsRefusedWithAReason) {
  const auto files = crashers(".snapshot");
  ASSERT_FALSE(files.empty()) << "no snapshot crashers in " << crasherDir();
  for (const fs::path& p : files) {
    Snapshot s;
    Model m;
    std::string error;
    const bool read = s.openBytes(slurp(p), error) && loadSnapshot(s, m, error);
    EXPECT_FALSE(read) << p << " was accepted";
    EXPECT_FALSE(error.empty()) << p << " was refused without a reason";
  }
}

}  // namespace
}  // namespace baton
