// Tests for supervisor/control_frame: framing of control messages.
#include "supervisor/control_frame.h"

#include "schema/control.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <kj/exception.h>

#include <cstdint>
#include <random>
#include <string>

namespace baton {
namespace {

std::string le32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = char((v >> (8 * i)) & 0xff);
  return s;
}

std::string sampleRequestFrame(uint64_t id = 7) {
  capnp::MallocMessageBuilder message;
  wire::Request::Builder request = message.initRoot<wire::Request>();
  request.setId(id);
  wire::JobRef::Builder start = request.initStart();
  start.setName("net/dhcp");
  auto env = start.initEnv(2);
  env.set(0, "IFACE=eth0");
  env.set(1, "MODE=fast");
  start.setNoWait(true);
  return encodeFrame(message);
}

std::string sampleResponseFrame() {
  capnp::MallocMessageBuilder message;
  wire::Response::Builder response = message.initRoot<wire::Response>();
  response.setId(42);
  response.setCode(wire::ResultCode::UNKNOWN_INSTANCE);
  response.setMessage("no such instance");
  auto jobs = response.initJobs(1);
  jobs[0].setJob("tty");
  jobs[0].setInstance("tty1");
  jobs[0].setGoal("start");
  jobs[0].setState("running");
  auto processes = jobs[0].initProcesses(1);
  processes[0].setType("main");
  processes[0].setPid(1234);
  return encodeFrame(message);
}

// Takes exactly one frame off `buf`, expecting success.
kj::Array<capnp::word> takeOne(std::string& buf) {
  kj::Array<capnp::word> words;
  std::string error;
  EXPECT_EQ(takeFrame(buf, words, error), FrameStatus::Complete) << error;
  return words;
}

FrameStatus take(std::string buf, std::string* error = nullptr) {
  kj::Array<capnp::word> words;
  std::string err;
  FrameStatus status = takeFrame(buf, words, err);
  if (error != nullptr) *error = err;
  return status;
}

void expectSampleRequest(kj::ArrayPtr<const capnp::word> words, uint64_t id = 7) {
  capnp::FlatArrayMessageReader reader(words, controlReaderOptions());
  wire::Request::Reader request = reader.getRoot<wire::Request>();
  EXPECT_EQ(request.getId(), id);
  ASSERT_TRUE(request.isStart());
  EXPECT_EQ(request.getStart().getName(), "net/dhcp");
  ASSERT_EQ(request.getStart().getEnv().size(), 2u);
  EXPECT_EQ(request.getStart().getEnv()[1], "MODE=fast");
  EXPECT_TRUE(request.getStart().getNoWait());
}

TEST(ControlFrame, EncodeWritesLittleEndianLengthPrefix) {
  const std::string frame = sampleRequestFrame();
  ASSERT_GT(frame.size(), 4u);
  const uint32_t length = uint8_t(frame[0]) | uint8_t(frame[1]) << 8 | uint8_t(frame[2]) << 16 |
                          uint32_t(uint8_t(frame[3])) << 24;
  EXPECT_EQ(length, frame.size() - 4);
  EXPECT_EQ(length % 8, 0u);
}

TEST(ControlFrame, RequestRoundTrip) {
  std::string buf = sampleRequestFrame();
  kj::Array<capnp::word> words = takeOne(buf);
  EXPECT_TRUE(buf.empty());
  expectSampleRequest(words);
}

TEST(ControlFrame, ResponseRoundTrip) {
  std::string buf = sampleResponseFrame();
  kj::Array<capnp::word> words = takeOne(buf);
  EXPECT_TRUE(buf.empty());
  capnp::FlatArrayMessageReader reader(words, controlReaderOptions());
  wire::Response::Reader response = reader.getRoot<wire::Response>();
  EXPECT_EQ(response.getId(), 42u);
  EXPECT_EQ(response.getCode(), wire::ResultCode::UNKNOWN_INSTANCE);
  EXPECT_EQ(response.getMessage(), "no such instance");
  ASSERT_TRUE(response.isJobs());
  ASSERT_EQ(response.getJobs().size(), 1u);
  EXPECT_EQ(response.getJobs()[0].getInstance(), "tty1");
  EXPECT_EQ(response.getJobs()[0].getProcesses()[0].getPid(), 1234);
}

TEST(ControlFrame, EmptyBufferNeedsMore) {
  EXPECT_EQ(take(""), FrameStatus::NeedMore);
  EXPECT_EQ(take(std::string(3, '\0')), FrameStatus::NeedMore);
}

TEST(ControlFrame, OneBytePiecesNeedMoreUntilComplete) {
  const std::string frame = sampleRequestFrame();
  std::string buf;
  kj::Array<capnp::word> words;
  std::string error;
  for (size_t i = 0; i + 1 < frame.size(); ++i) {
    buf.push_back(frame[i]);
    ASSERT_EQ(takeFrame(buf, words, error), FrameStatus::NeedMore) << "after " << i + 1;
    ASSERT_EQ(buf.size(), i + 1) << "NeedMore must not consume";
  }
  buf.push_back(frame.back());
  ASSERT_EQ(takeFrame(buf, words, error), FrameStatus::Complete) << error;
  EXPECT_TRUE(buf.empty());
  expectSampleRequest(words);
}

TEST(ControlFrame, TwoFramesBackToBack) {
  std::string buf = sampleRequestFrame(1) + sampleRequestFrame(2);
  kj::Array<capnp::word> first = takeOne(buf);
  EXPECT_FALSE(buf.empty());
  kj::Array<capnp::word> second = takeOne(buf);
  EXPECT_TRUE(buf.empty());
  expectSampleRequest(first, 1);
  expectSampleRequest(second, 2);
  kj::Array<capnp::word> none;
  std::string error;
  EXPECT_EQ(takeFrame(buf, none, error), FrameStatus::NeedMore);
}

TEST(ControlFrame, FrameFollowedByPartialFrame) {
  const std::string second = sampleRequestFrame(2);
  std::string buf = sampleRequestFrame(1) + second.substr(0, 10);
  expectSampleRequest(takeOne(buf), 1);
  EXPECT_EQ(buf, second.substr(0, 10));
  EXPECT_EQ(take(buf), FrameStatus::NeedMore);
}

TEST(ControlFrame, ZeroLengthIsError) {
  std::string error;
  EXPECT_EQ(take(le32(0), &error), FrameStatus::Error);
  EXPECT_NE(error.find("zero"), std::string::npos) << error;
}

TEST(ControlFrame, OversizedLengthIsErrorBeforePayloadArrives) {
  std::string error;
  EXPECT_EQ(take(le32(kMaxFrameBytes + 8), &error), FrameStatus::Error);
  EXPECT_NE(error.find("exceeds"), std::string::npos) << error;
  EXPECT_EQ(take(le32(0xffffffffu), &error), FrameStatus::Error);
}

TEST(ControlFrame, MaximumLengthIsAcceptedWhileIncomplete) {
  EXPECT_EQ(take(le32(kMaxFrameBytes)), FrameStatus::NeedMore);
}

TEST(ControlFrame, LengthNotMultipleOfEightIsError) {
  std::string error;
  EXPECT_EQ(take(le32(12), &error), FrameStatus::Error);
  EXPECT_NE(error.find("multiple of 8"), std::string::npos) << error;
  EXPECT_EQ(take(le32(1) + "x"), FrameStatus::Error);
}

TEST(ControlFrame, SegmentTableLongerThanFrameIsError) {
  // 3 segments claimed (table of 2 words) in a 1-word payload.
  std::string error;
  EXPECT_EQ(take(le32(8) + le32(2) + le32(0), &error), FrameStatus::Error);
  EXPECT_NE(error.find("malformed message"), std::string::npos) << error;
}

TEST(ControlFrame, SegmentSizesNotMatchingLengthIsError) {
  std::string error;
  // One segment of 5 words claimed in a 2-word payload.
  EXPECT_EQ(take(le32(16) + le32(0) + le32(5) + std::string(8, '\0'), &error),
            FrameStatus::Error);
  EXPECT_NE(error.find("malformed message"), std::string::npos) << error;
  // One segment of 1 word, but the frame carries a trailing extra word.
  EXPECT_EQ(take(le32(24) + le32(0) + le32(1) + std::string(16, '\0'), &error),
            FrameStatus::Error);
  EXPECT_NE(error.find("malformed message"), std::string::npos) << error;
}

TEST(ControlFrame, HugeSegmentCountIsError) {
  std::string error;
  EXPECT_EQ(take(le32(8) + le32(0xffffffffu) + le32(0), &error), FrameStatus::Error);
  EXPECT_NE(error.find("malformed message"), std::string::npos) << error;
}

TEST(ControlFrame, EmptyFirstSegmentIsError) {
  std::string error;
  EXPECT_EQ(take(le32(8) + le32(0) + le32(0), &error), FrameStatus::Error);
  EXPECT_NE(error.find("malformed message"), std::string::npos) << error;
}

TEST(ControlFrame, GarbagePayloadIsError) {
  std::string error;
  std::string payload(64, '\xa5');
  EXPECT_EQ(take(le32(64) + payload, &error), FrameStatus::Error);
  EXPECT_NE(error.find("malformed message"), std::string::npos) << error;
}

TEST(ControlFrame, MultiSegmentMessageRoundTrip) {
  // A tiny first segment forces the builder to allocate more segments.
  capnp::MallocMessageBuilder message(1, capnp::AllocationStrategy::FIXED_SIZE);
  wire::Request::Builder request = message.initRoot<wire::Request>();
  request.setId(9);
  request.initEmit().setName("started");
  ASSERT_GT(message.getSegmentsForOutput().size(), 1u);
  std::string buf = encodeFrame(message);
  kj::Array<capnp::word> words = takeOne(buf);
  capnp::FlatArrayMessageReader reader(words, controlReaderOptions());
  EXPECT_EQ(reader.getRoot<wire::Request>().getEmit().getName(), "started");
}

TEST(ControlFrame, TruncatedFramesNeedMore) {
  const std::string frame = sampleResponseFrame();
  for (size_t cut = 1; cut < frame.size(); ++cut) {
    std::string buf = frame.substr(0, frame.size() - cut);
    kj::Array<capnp::word> words;
    std::string error;
    ASSERT_EQ(takeFrame(buf, words, error), FrameStatus::NeedMore) << "cut " << cut;
    EXPECT_EQ(buf.size(), frame.size() - cut);
  }
}

TEST(ControlFrame, OversizedMessageIsNotEncoded) {
  capnp::MallocMessageBuilder message;
  wire::Response::Builder response = message.initRoot<wire::Response>();
  response.initSnapshot(kMaxFrameBytes);
  EXPECT_THROW(encodeFrame(message), kj::Exception);
}

TEST(ControlFrame, ReaderOptionsAreBounded) {
  capnp::ReaderOptions options = controlReaderOptions();
  EXPECT_LE(options.traversalLimitInWords, uint64_t(8) * 1024 * 1024);
  EXPECT_GE(options.traversalLimitInWords, kMaxFrameBytes / 8);
  EXPECT_EQ(options.nestingLimit, 64);
}

// Reads every frame off `buf` and walks it as a Request and as a Response. Returns how many
// frames were complete. A reader may reject a frame with kj::Exception; nothing may crash.
int drain(std::string buf) {
  int complete = 0;
  for (;;) {
    kj::Array<capnp::word> words;
    std::string error;
    const size_t before = buf.size();
    const FrameStatus status = takeFrame(buf, words, error);
    if (status == FrameStatus::NeedMore) {
      EXPECT_EQ(buf.size(), before);
      return complete;
    }
    if (status == FrameStatus::Error) {
      EXPECT_FALSE(error.empty());
      return complete;
    }
    ++complete;
    EXPECT_LT(buf.size(), before);
    try {
      capnp::FlatArrayMessageReader reader(words, controlReaderOptions());
      (void)kj::str(reader.getRoot<wire::Request>());
      (void)kj::str(reader.getRoot<wire::Response>());
    } catch (const kj::Exception&) {
      // Rejected by the reader: fine.
    }
  }
}

TEST(ControlFrameFuzz, RandomBuffersNeverCrash) {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 5000; ++round) {
    std::string buf;
    // Half the time, a plausible length prefix so that the payload checks are reached.
    if (round % 2 == 0) {
      const uint32_t words = std::uniform_int_distribution<uint32_t>(1, 32)(rng);
      buf = le32(words * 8);
      if (round % 4 == 0) {
        // A plausible single-segment table too, so that the reader gets exercised.
        buf += le32(0) + le32(words - 1);
      }
    }
    const size_t extra = std::uniform_int_distribution<size_t>(0, 300)(rng);
    for (size_t i = 0; i < extra; ++i) buf.push_back(char(byte(rng)));
    drain(buf);
  }
}

TEST(ControlFrameFuzz, MutatedValidFramesNeverCrash) {
  std::mt19937 rng(7);
  const std::string frames[] = {sampleRequestFrame(), sampleResponseFrame()};
  int complete = 0;
  for (int round = 0; round < 5000; ++round) {
    std::string buf = frames[round % 2];
    // Flip a few bytes after the length prefix (keeping the frame complete), and sometimes
    // one in the prefix itself.
    const int flips = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int f = 0; f < flips; ++f) {
      const size_t lo = round % 10 == 0 ? 0 : 4;
      const size_t at = std::uniform_int_distribution<size_t>(lo, buf.size() - 1)(rng);
      buf[at] = char(std::uniform_int_distribution<int>(0, 255)(rng));
    }
    complete += drain(buf);
  }
  EXPECT_GT(complete, 0) << "mutations should leave some frames structurally intact";
}

}  // namespace
}  // namespace baton
