// Inputs that once crashed a reader, kept forever (tests/data/crashers/). Each is run through
// the same checks as the fuzzer that found it (tests/fuzz/fuzz_checks.h): by extension, .snapshot,
// .frame, .conf and .json. A snapshot crasher must also be refused with a reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "migrate/formats.h"
#include "serialize/snapshot.h"
#include "tests/fuzz/fuzz_checks.h"

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

// Most snapshot crashers are corrupt and refused; some are well-formed snapshots that broke a
// later step (a round trip, a copy into the next snapshot). Either way: no crash, and a reason.
TEST(Crashers, EverySnapshotCrasherIsReadOrRefusedWithAReason) {
  const auto files = crashers(".snapshot");
  ASSERT_FALSE(files.empty()) << "no snapshot crashers in " << crasherDir();
  for (const fs::path& p : files) {
    Snapshot s;
    Model m;
    std::string error;
    const bool read = s.openBytes(slurp(p), error) && loadSnapshot(s, m, error);
    EXPECT_TRUE(read || !error.empty()) << p << " was refused without a reason";
  }
}

// Every crasher of every kind, through its fuzzer's checks: no crash, no sanitizer report, every
// property holds.
TEST(Crashers, EveryCrasherPassesItsFuzzersChecks) {
  const std::pair<const char*, std::string (*)(std::string_view)> kinds[] = {
      {".snapshot", fuzz::checkSnapshot},
      {".frame", fuzz::checkControl},
      {".conf", fuzz::checkJobFile},
      {".notify", fuzz::checkNotify},
      {".json", fuzz::checkUpstart},
  };
  size_t total = 0;
  for (const auto& [ext, check] : kinds) {
    for (const fs::path& p : crashers(ext)) {
      SCOPED_TRACE(p.string());
      EXPECT_EQ(check(slurp(p)), "");
      ++total;
    }
  }
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(crasherDir())) files += e.is_regular_file();
  EXPECT_EQ(total, files) << "a crasher whose extension names no reader in " << crasherDir();
}

}  // namespace
}  // namespace baton
