// FdMap (base/fd_map.h): the fd-indexed tables of watches and fd identities. Checked
// against std::map under a random sequence of inserts and erases, and at its edges.
#include "base/fd_map.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace baton {
namespace {

TEST(FdMap, BehavesLikeAMapUnderRandomInsertsAndErases) {
  FdMap<std::string> table;
  std::map<int, std::string> model;
  std::mt19937 rng(20261203);
  for (int step = 0; step < 20000; ++step) {
    const int fd = int(rng() % 3000);
    switch (rng() % 3) {
      case 0:
        table[fd] = "v" + std::to_string(step);
        model[fd] = "v" + std::to_string(step);
        break;
      case 1:
        EXPECT_EQ(table.erase(fd), model.erase(fd) == 1) << "fd " << fd;
        break;
      default: {
        const std::string* found = table.find(fd);
        auto it = model.find(fd);
        ASSERT_EQ(found != nullptr, it != model.end()) << "fd " << fd;
        if (found) EXPECT_EQ(*found, it->second);
        EXPECT_EQ(table.contains(fd), it != model.end());
      }
    }
    ASSERT_EQ(table.size(), model.size());
  }
  std::map<int, std::string> seen;
  int last = -1;
  table.forEach([&](int fd, const std::string& v) {
    EXPECT_GT(fd, last);  // in fd order
    last = fd;
    seen[fd] = v;
  });
  EXPECT_EQ(seen, model);
  EXPECT_GE(table.span(), size_t(last + 1));
}

TEST(FdMap, EdgesNegativeFdsErasedValuesAndClear) {
  FdMap<std::string> table;
  EXPECT_EQ(table.find(-1), nullptr);
  EXPECT_FALSE(table.contains(-1));
  EXPECT_FALSE(table.erase(-1));
  EXPECT_THROW(table[-1], std::out_of_range);
  EXPECT_EQ(table.find(5), nullptr);  // beyond the vector
  table[5] = "five";
  EXPECT_EQ(table.find(4), nullptr);  // room made, no entry
  ASSERT_NE(table.find(5), nullptr);
  EXPECT_TRUE(table.erase(5));
  table[5];  // made again: value-initialized, not the erased value
  ASSERT_NE(table.find(5), nullptr);
  EXPECT_EQ(*table.find(5), "");
  EXPECT_EQ(table.size(), 1u);
  table.reserve(100);
  EXPECT_EQ(table.size(), 1u);
  table.clear();
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.find(5), nullptr);
}

}  // namespace
}  // namespace baton
