// Tests for migrate/handoff: the one table of handoff options, the announcement older releases
// parse, and the flags an old image passes its target.
#include "migrate/handoff.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "migrate/formats.h"

namespace baton {
namespace {

TEST(Handoff, StateFormatsTextIsByteIdentical) {
  // Older releases parse this text: it must not change but by appending options.
  EXPECT_EQ(stateFormatsText(), std::string("baton ") + BATON_VERSION +
                                    "\nwrites 2\nreads 1-2\n"
                                    "accepts epoll-fd\naccepts unchecksummed-handoff\n"
                                    "accepts preverified-classes\naccepts sigchld-sweep\n");
}

TEST(Handoff, AnnouncementRoundTrips) {
  StateFormats f;
  std::string error;
  ASSERT_TRUE(parseStateFormats(stateFormatsText(), f, error)) << error;
  EXPECT_EQ(f.accepts, allHandoffOptions());
  for (const HandoffOptionInfo& o : kHandoffOptions) {
    HandoffSet one;
    one.add(o.option);
    ASSERT_TRUE(parseStateFormats("baton 9.9.9\nwrites 1\nreads 1-1\n" + handoffAnnouncement(one), f, error));
    EXPECT_EQ(f.accepts, one) << o.name;
  }
  // Unknown options (of a newer release) and near misses are ignored.
  ASSERT_TRUE(parseStateFormats("baton 9.9.9\nwrites 1\nreads 1-1\naccepts teleport\naccepts epoll-fd \n"
                                "accepts  epoll-fd\naccepts\n",
                                f, error));
  EXPECT_TRUE(f.accepts.empty());
}

TEST(Handoff, FirstRelease) {
  // 0.1.0 (RELEASES) announced no option: every option of the table came after it, and a target
  // that prints what 0.1.0 prints is offered none.
  for (const HandoffOptionInfo& o : kHandoffOptions) EXPECT_NE(o.since, "0.1.0") << o.name;
  StateFormats f;
  std::string error;
  ASSERT_TRUE(parseStateFormats("baton 0.1.0\nwrites 1\nreads 1-1\n", f, error)) << error;
  EXPECT_TRUE(f.accepts.empty());
}

TEST(Handoff, NamesAndFlagsAreUnique) {
  std::set<std::string_view> names, flags;
  for (const HandoffOptionInfo& o : kHandoffOptions) {
    EXPECT_TRUE(names.insert(o.name).second) << o.name;
    EXPECT_EQ(findHandoffName(o.name), &o);
    EXPECT_FALSE(o.meaning.empty()) << o.name;
    if (o.flag.empty()) {
      EXPECT_EQ(o.fd, nullptr) << o.name << ": a value needs a flag";
      continue;
    }
    EXPECT_TRUE(flags.insert(o.flag).second) << o.flag;
    EXPECT_EQ(o.flag.substr(0, 2), "--") << o.flag;
    EXPECT_EQ(findHandoffFlag(o.flag), &o);
  }
  EXPECT_EQ(findHandoffFlag(""), nullptr);
  EXPECT_EQ(findHandoffFlag("--restore-fd"), nullptr);
  EXPECT_EQ(findHandoffName("teleport"), nullptr);
}

TEST(Handoff, TargetArguments) {
  std::vector<std::string> argv;
  appendHandoffArgs(argv, {});
  EXPECT_TRUE(argv.empty());
  // What the old image passed before the table: in this order, unchecksummed-handoff without a flag.
  appendHandoffArgs(argv, {.options = allHandoffOptions(), .epollFd = 7});
  EXPECT_EQ(argv, (std::vector<std::string>{"--epoll-fd", "7", "--preverified-classes", "--sweep-on-sigchld"}));
  argv.clear();
  HandoffSet some;
  some.add(HandoffOption::SigchldSweep).add(HandoffOption::UnchecksummedHandoff);
  appendHandoffArgs(argv, {.options = some, .epollFd = 7});
  EXPECT_EQ(argv, (std::vector<std::string>{"--sweep-on-sigchld"}));
}

TEST(Handoff, Set) {
  HandoffSet s;
  EXPECT_TRUE(s.empty());
  s.add(HandoffOption::PreverifiedClasses);
  EXPECT_FALSE(s.empty());
  EXPECT_TRUE(s.has(HandoffOption::PreverifiedClasses));
  EXPECT_FALSE(s.has(HandoffOption::EpollFd));
  EXPECT_NE(s, allHandoffOptions());
  for (const HandoffOptionInfo& o : kHandoffOptions) s.add(o.option);
  EXPECT_EQ(s, allHandoffOptions());
}

TEST(Handoff, DocumentedInFormatsMd) {
  // docs/formats.md has one row per option: `NAME`, its flag (or none), its first release.
  std::ifstream in(std::string(BATON_SOURCE_DIR) + "/docs/formats.md");
  ASSERT_TRUE(in) << "docs/formats.md";
  std::stringstream text;
  text << in.rdbuf();
  for (const HandoffOptionInfo& o : kHandoffOptions) {
    std::string row("| `");
    row.append(o.name).append("` | ");
    if (o.flag.empty()) row.append("none");
    else row.append("`").append(o.flag).append(o.fd ? " FD` " : "` ");
    std::string since("| ");
    since.append(o.since).append(" |");
    const std::string doc = text.str();
    const size_t at = doc.find(row);
    ASSERT_NE(at, std::string::npos) << row;
    EXPECT_NE(doc.substr(at, doc.find('\n', at) - at).find(since), std::string::npos) << row << since;
  }
}

}  // namespace
}  // namespace baton
