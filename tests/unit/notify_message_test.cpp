// Parsing sd_notify(3) datagrams (base/notify_message.h).
#include <gtest/gtest.h>

#include "base/notify_message.h"

namespace baton::notify {
namespace {

TEST(NotifyMessage, KeyValueLines) {
  Message m;
  std::string error;
  ASSERT_TRUE(parseMessage("READY=1\nSTATUS=Serving 3 clients\nMAINPID=42\n", m, error)) << error;
  ASSERT_EQ(m.fields.size(), 3u);
  EXPECT_TRUE(m.has("READY", "1"));
  EXPECT_EQ(m.get("STATUS").value(), "Serving 3 clients");
  EXPECT_EQ(parseInteger(*m.get("MAINPID"), 2, INT32_MAX).value(), 42);
  EXPECT_FALSE(m.get("ERRNO").has_value());
  ASSERT_TRUE(parseMessage("STATUS=a\nSTATUS=b=c\nX_1=\n", m, error)) << error;
  EXPECT_EQ(m.get("STATUS").value(), "b=c");  // the last one counts; '=' in a value is kept
  EXPECT_EQ(m.get("X_1").value(), "");
  ASSERT_TRUE(parseMessage("STATUS=caf\xc3\xa9 \xe2\x9c\x93", m, error)) << error;  // UTF-8
}

TEST(NotifyMessage, GarbageIsRefusedWhole) {
  Message m;
  std::string error;
  EXPECT_FALSE(parseMessage("", m, error));
  EXPECT_EQ(error, "empty");
  EXPECT_FALSE(parseMessage("\n\n", m, error));
  EXPECT_FALSE(parseMessage("READY=1\nnonsense", m, error));
  EXPECT_EQ(error, "line 2 is not KEY=VALUE");
  EXPECT_TRUE(m.fields.empty());
  EXPECT_FALSE(parseMessage("ready=1", m, error));  // keys are upper case
  EXPECT_FALSE(parseMessage("=1", m, error));
  EXPECT_FALSE(parseMessage(std::string("READY=1\0", 8), m, error));
  EXPECT_EQ(error, "not UTF-8 text");
  for (const char* bad : {"S=\xff", "S=\xc0\x80", "S=\xed\xa0\x80", "S=\xf4\x90\x80\x80", "S=\xe2\x82"}) {
    EXPECT_FALSE(parseMessage(bad, m, error)) << bad;
    EXPECT_EQ(error, "not UTF-8 text");
  }
  EXPECT_FALSE(parseMessage(std::string(kMaxMessageBytes + 1, 'A'), m, error));
  EXPECT_NE(error.find("oversized"), std::string::npos);
}

TEST(NotifyMessage, Integers) {
  EXPECT_EQ(parseInteger("17", 0, 100).value(), 17);
  EXPECT_FALSE(parseInteger("", 0, 100));
  EXPECT_FALSE(parseInteger("17x", 0, 100));
  EXPECT_FALSE(parseInteger("-1", 0, 100));
  EXPECT_FALSE(parseInteger("101", 0, 100));
  EXPECT_FALSE(parseInteger("99999999999999999999", 0, 100));
}

}  // namespace
}  // namespace baton::notify
