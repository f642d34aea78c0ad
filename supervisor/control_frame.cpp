// Framing of control messages: see control_frame.h.
#include "supervisor/control_frame.h"

#include <algorithm>

#include <capnp/serialize.h>
#include <kj/debug.h>

#include <cstdint>
#include <cstring>

namespace baton {

namespace {

// Cap'n Proto's stream reader (capnp::InputStreamMessageReader) refuses more segments than this;
// a control message is small and normally has exactly one.
constexpr uint64_t kMaxSegments = 512;

constexpr size_t kPrefixBytes = 4;

uint32_t loadLe32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}

void storeLe32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = char((v >> (8 * i)) & 0xff);
}

// Checks the length prefix alone; returns an empty string if it is acceptable.
std::string checkLength(uint32_t length, size_t maxBytes) {
  if (length == 0) return "zero-length frame";
  if (length > maxBytes) {
    return "frame of " + std::to_string(length) + " bytes exceeds the limit of " +
           std::to_string(maxBytes) + " bytes";
  }
  if (length % sizeof(capnp::word) != 0) {
    return "frame length " + std::to_string(length) + " is not a multiple of 8";
  }
  return {};
}

// Checks that the stream-encoding segment table at the start of `payload` (`length` bytes, a
// non-zero multiple of 8) describes exactly `length` bytes. Returns an empty string if so.
std::string checkSegmentTable(const char* payload, uint32_t length) {
  const uint64_t words = length / sizeof(capnp::word);
  const uint64_t segments = uint64_t(loadLe32(payload)) + 1;
  if (segments > kMaxSegments) {
    return "malformed message: " + std::to_string(segments) + " segments (limit " +
           std::to_string(kMaxSegments) + ")";
  }
  // Segment count + one size per segment, padded to a whole word.
  const uint64_t tableWords = segments / 2 + 1;
  if (tableWords > words) {
    return "malformed message: segment table of " + std::to_string(tableWords) +
           " words does not fit in a " + std::to_string(words) + "-word frame";
  }
  uint64_t total = tableWords;
  for (uint64_t i = 0; i < segments; ++i) {
    const uint32_t size = loadLe32(payload + 4 * (i + 1));
    if (i == 0 && size == 0) return "malformed message: empty first segment (no root pointer)";
    total += size;
  }
  if (total != words) {
    return "malformed message: segment table describes " + std::to_string(total) +
           " words but the frame holds " + std::to_string(words);
  }
  return {};
}

}  // namespace

// Throws kj::Exception if the message would exceed kMaxFrameBytes: the peer would refuse it and
// close the connection, so the sender should answer with an error instead.
std::string encodeFrame(capnp::MessageBuilder& message, size_t maxBytes) {
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(message);
  kj::ArrayPtr<const kj::byte> bytes = flat.asBytes();
  KJ_REQUIRE(bytes.size() <= maxBytes, "control message too large for one frame", bytes.size(),
             maxBytes);
  std::string frame(kPrefixBytes + bytes.size(), '\0');
  storeLe32(frame.data(), uint32_t(bytes.size()));
  std::memcpy(frame.data() + kPrefixBytes, bytes.begin(), bytes.size());
  return frame;
}

FrameStatus takeFrame(std::string& buf, kj::Array<capnp::word>& words, std::string& error,
                      size_t maxBytes) {
  if (buf.size() < kPrefixBytes) return FrameStatus::NeedMore;
  const uint32_t length = loadLe32(buf.data());
  error = checkLength(length, maxBytes);
  if (!error.empty()) return FrameStatus::Error;
  if (buf.size() - kPrefixBytes < length) return FrameStatus::NeedMore;

  const char* payload = buf.data() + kPrefixBytes;
  error = checkSegmentTable(payload, length);
  if (!error.empty()) return FrameStatus::Error;

  words = kj::heapArray<capnp::word>(length / sizeof(capnp::word));
  std::memcpy(words.begin(), payload, length);
  buf.erase(0, kPrefixBytes + length);
  return FrameStatus::Complete;
}

capnp::ReaderOptions controlReaderOptions(size_t messageWords) {
  capnp::ReaderOptions options;
  // Enough to read a message more than once (printing and JSON), small enough to stop
  // amplification by shared pointers.
  options.traversalLimitInWords = std::max<size_t>(1 << 20, messageWords * 4);
  options.nestingLimit = 64;
  return options;
}

}  // namespace baton
