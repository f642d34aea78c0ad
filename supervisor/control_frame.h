// Framing of control messages over a Unix stream socket: a 4-byte little-endian payload length,
// then the payload: one Cap'n Proto message in stream encoding (capnp::messageToFlatArray).
#pragma once
#include <capnp/message.h>
#include <kj/array.h>
#include <string>

namespace baton {

constexpr size_t kMaxFrameBytes = 1 << 20;        // requests (from untrusted clients)
constexpr size_t kMaxResponseBytes = 256u << 20;  // responses (batond -> batonctl), e.g. snapshots

// Frame a message: length prefix + flat array. Throws kj::Exception if it exceeds `maxBytes`.
std::string encodeFrame(capnp::MessageBuilder& message, size_t maxBytes = kMaxFrameBytes);

enum class FrameStatus { NeedMore, Complete, Error };

// Try to take one complete frame off the front of `buf`. Complete: the payload is copied into
// `words` (word aligned, ready for capnp::FlatArrayMessageReader) and removed from `buf`.
// Error (length 0, length > kMaxFrameBytes, length not a multiple of 8, payload whose segment
// table does not match its length): `error` says why; the connection must be closed.
FrameStatus takeFrame(std::string& buf, kj::Array<capnp::word>& words, std::string& error,
                      size_t maxBytes = kMaxFrameBytes);

// Reader options for control input: traversal limited to four times the message (at least 1M
// words), enough to read it more than once, too little for amplification by shared pointers.
capnp::ReaderOptions controlReaderOptions(size_t messageWords = kMaxFrameBytes / 8);

}  // namespace baton
