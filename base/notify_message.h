// One readiness-notification datagram (sd_notify(3)): newline-separated KEY=VALUE assignments.
//
// Pure parsing, no I/O: batond's notify socket (supervisor/notify_socket.h) reads the datagram and
// the job engine acts on the fields. A message is taken whole or not at all: one bad line drops it
// (a sender that writes garbage is not trusted with the rest).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace baton::notify {

// Larger datagrams are dropped as oversized (systemd's sd_notify messages are a few hundred bytes;
// a STATUS= line is meant for one line of text).
constexpr size_t kMaxMessageBytes = 4096;

struct Message {
  std::vector<std::pair<std::string, std::string>> fields;  // in order; a key may repeat

  // The last value of `key`, if it was sent.
  std::optional<std::string_view> get(std::string_view key) const;
  bool has(std::string_view key, std::string_view value) const {
    auto v = get(key);
    return v && *v == value;
  }
};

// Empty lines (a trailing newline) are skipped. Refused, with the reason: an empty message, one
// over kMaxMessageBytes, bytes that are not UTF-8 (or a NUL), a line without '=', a key that is
// not [A-Z0-9_]+.
bool parseMessage(std::string_view data, Message& out, std::string& error);

// A decimal integer in [min, max] (MAINPID=, ERRNO=).
std::optional<long long> parseInteger(std::string_view text, long long min, long long max);

}  // namespace baton::notify
