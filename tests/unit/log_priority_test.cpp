// Tests for base/log_priority: the one list of batond's log priorities.
#include "base/log_priority.h"

#include <gtest/gtest.h>

#include "schema/model.h"

namespace baton {
namespace {

TEST(LogPriority, ParseAndName) {
  const LogPriority all[] = {LogPriority::Debug, LogPriority::Info,  LogPriority::Message,
                             LogPriority::Warn,  LogPriority::Error, LogPriority::Fatal};
  for (LogPriority p : all) EXPECT_EQ(parseLogPriority(logPriorityName(p)), p) << logPriorityName(p);
  for (const char* p : {"debug", "info", "message", "warn", "error", "fatal"}) EXPECT_TRUE(parseLogPriority(p)) << p;
  EXPECT_FALSE(parseLogPriority(""));
  EXPECT_FALSE(parseLogPriority("warning"));
  EXPECT_FALSE(parseLogPriority("DEBUG"));
  EXPECT_FALSE(parseLogPriority("debug "));
  static_assert(parseLogPriority("warn") == LogPriority::Warn);
}

TEST(LogPriority, OrderedLowestFirst) {
  EXPECT_LT(LogPriority::Debug, LogPriority::Info);
  EXPECT_LT(LogPriority::Info, LogPriority::Message);
  EXPECT_LT(LogPriority::Message, LogPriority::Warn);
  EXPECT_LT(LogPriority::Warn, LogPriority::Error);
  EXPECT_LT(LogPriority::Error, LogPriority::Fatal);
}

TEST(LogPriority, Lists) {
  EXPECT_EQ(logPriorityNames(", "), "debug, info, message, warn, error, fatal");
  EXPECT_EQ(logPriorityNames(", ", " or "), "debug, info, message, warn, error or fatal");
  EXPECT_EQ(logPriorityNames("|"), "debug|info|message|warn|error|fatal");
}

TEST(LogPriority, ModelDefaultIsTheDefault) {
  // The model keeps the name as text (the snapshot stores text); its default is kDefaultLogPriority.
  EXPECT_EQ(Config{}.logPriority, logPriorityName(kDefaultLogPriority));
}

}  // namespace
}  // namespace baton
