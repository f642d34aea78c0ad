// Fuzz target: one datagram on the notify socket (base/notify_message.h), read the way
// JobEngine::onNotifySocket reads it: the parser takes it whole or refuses it with a reason, and
// every value the job engine reads from an accepted message (the integers of MAINPID= and
// ERRNO=) goes through parseInteger. See fuzz_checks.h.
#include "tests/fuzz/fuzz_checks.h"

#include <climits>

#include "base/notify_message.h"

namespace baton::fuzz {

std::string checkNotify(std::string_view input) {
  notify::Message m;
  std::string error;
  if (!notify::parseMessage(input, m, error)) {
    if (error.empty()) return "a notify message refused without a reason";
    if (!m.fields.empty()) return "a refused notify message left fields behind";
    return {};
  }
  if (m.fields.empty()) return "an accepted notify message has no field";
  if (input.size() > notify::kMaxMessageBytes) return "an oversized notify message was accepted";
  size_t bytes = 0;
  for (const auto& [k, v] : m.fields) {
    if (k.empty() || k.find('=') != std::string::npos || k.find('\n') != std::string::npos)
      return "a key with '=' or a newline, or an empty one";
    if (v.find('\n') != std::string::npos) return "a value with a newline";
    bytes += k.size() + 1 + v.size();
  }
  if (bytes > input.size()) return "the fields hold more bytes than the message";
  for (const char* key : {"MAINPID", "ERRNO"})
    if (auto v = m.get(key)) {
      auto n = notify::parseInteger(*v, 0, INT_MAX);
      if (n && (*n < 0 || *n > INT_MAX)) return "parseInteger returned a value out of its range";
    }
  return {};
}

}  // namespace baton::fuzz

BATON_FUZZ_TARGET(baton::fuzz::checkNotify)
