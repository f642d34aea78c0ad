// Tests for supervisor/control_limits: who may open one more control connection, the refusal's
// words, and the rate limit of warnings about clients.
#include "supervisor/control_limits.h"

#include <gtest/gtest.h>

#include <string>

namespace baton {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(ControlLimits, DefaultsAndTheRoomKeptForRoot) {
  ControlLimits l;
  EXPECT_EQ(l.maxConnections, 1024u);
  EXPECT_EQ(l.maxConnectionsPerUid, 16u);
  EXPECT_EQ(l.maxUnanswered, 64u);
  EXPECT_EQ(l.frameTimeoutMs, 10000u);
  EXPECT_EQ(l.reservedForRoot(), 64u);
  for (auto [max, kept] : {std::pair{1u, 1u}, {2u, 1u}, {16u, 1u}, {17u, 2u}, {8u, 1u}, {1000u, 63u}}) {
    l.maxConnections = max;
    EXPECT_EQ(l.reservedForRoot(), kept) << max;
  }
}

TEST(ControlLimits, OtherUsersStopAtTheirLimitAndBeforeTheRoomKeptForRoot) {
  ControlLimits l;  // 1024 in all, 64 kept, 16 per user
  EXPECT_EQ(admitConnection(l, false, 0, 0), ConnectionRefusal::None);
  EXPECT_EQ(admitConnection(l, false, 100, 15), ConnectionRefusal::None);
  EXPECT_EQ(admitConnection(l, false, 100, 16), ConnectionRefusal::PerUid);
  EXPECT_EQ(admitConnection(l, false, 959, 0), ConnectionRefusal::None);
  EXPECT_EQ(admitConnection(l, false, 960, 0), ConnectionRefusal::Total);
  // The user's own limit is named first, when both apply.
  EXPECT_EQ(admitConnection(l, false, 960, 16), ConnectionRefusal::PerUid);
  l.maxConnectionsPerUid = 0;
  EXPECT_EQ(admitConnection(l, false, 0, 0), ConnectionRefusal::PerUid);
  l.maxConnections = 1;  // all of it kept for root
  l.maxConnectionsPerUid = 16;
  EXPECT_EQ(admitConnection(l, false, 0, 0), ConnectionRefusal::Total);
}

TEST(ControlLimits, RootHasNoPerUserLimitAndTheWholeTotal) {
  ControlLimits l;
  EXPECT_EQ(admitConnection(l, true, 960, 500), ConnectionRefusal::None);
  EXPECT_EQ(admitConnection(l, true, 1023, 1023), ConnectionRefusal::None);
  EXPECT_EQ(admitConnection(l, true, 1024, 0), ConnectionRefusal::Total);
}

TEST(ControlLimits, RefusalsSayWhichLimitAndWhatToDo) {
  ControlLimits l;
  EXPECT_EQ(refusalMessage(ConnectionRefusal::PerUid, l, 65534, 40, 16),
            "uid 65534 has 16 connections to batond open, the most a user other than root may have (16); "
            "close some and try again");
  EXPECT_EQ(refusalMessage(ConnectionRefusal::Total, l, 65534, 960, 3),
            "batond has 960 connections open, the most it takes from uid 65534 (1024 in all, the last 64 kept "
            "for root); try again later");
  EXPECT_EQ(refusalMessage(ConnectionRefusal::Total, l, 0, 1024, 3),
            "batond has 1024 connections open, the most it takes (1024 in all, the last 64 kept for root); try "
            "again later");
  EXPECT_EQ(refusalMessage(ConnectionRefusal::None, l, 0, 0, 0), "");
}

TEST(WarningLimiter, ABurstPerWindowThenOneSummaryOfTheRest) {
  WarningLimiter w(3, 5 * kSecond);
  const int64_t t0 = 100 * kSecond;
  EXPECT_EQ(w.summaryDueNs(), 0);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(w.allow(t0 + i)) << i;
  EXPECT_EQ(w.summaryDueNs(), 0);  // nothing suppressed yet
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(w.allow(t0 + kSecond + i)) << i;
  EXPECT_EQ(w.suppressedTotal(), 4u);
  EXPECT_EQ(w.summaryDueNs(), t0 + 5 * kSecond);
  EXPECT_EQ(w.summary(t0 + 5 * kSecond - 1), "");  // the window is still open
  EXPECT_EQ(w.summary(t0 + 5 * kSecond), "4 warnings about control clients suppressed (at most 3 per 5 s)");
  EXPECT_EQ(w.summary(t0 + 5 * kSecond), "");  // said once
  EXPECT_EQ(w.summaryDueNs(), 0);
  // A new window starts with the next line.
  const int64_t t1 = t0 + 60 * kSecond;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(w.allow(t1)) << i;
  EXPECT_FALSE(w.allow(t1 + 4 * kSecond));
  EXPECT_EQ(w.suppressedTotal(), 5u);
}

TEST(WarningLimiter, ALineAfterTheWindowEndsLeavesTheSummaryDue) {
  WarningLimiter w(1, kSecond / 2);
  EXPECT_TRUE(w.allow(kSecond));
  EXPECT_FALSE(w.allow(kSecond + 1));
  // No timer ran: the next line opens a new window; the summary of the old one is due at once.
  EXPECT_TRUE(w.allow(3 * kSecond));
  EXPECT_GT(w.summaryDueNs(), 0);
  EXPECT_LE(w.summaryDueNs(), 3 * kSecond);
  EXPECT_EQ(w.summary(3 * kSecond), "1 warning about control clients suppressed (at most 1 per 500 ms)");
  EXPECT_EQ(w.summaryDueNs(), 0);
}

TEST(WarningLimiter, DefaultsAreTheKernelsPrintkRatelimit) {
  WarningLimiter w;
  EXPECT_EQ(w.burst(), 10u);
  EXPECT_EQ(w.intervalNs(), 5 * kSecond);
}

}  // namespace
}  // namespace baton
