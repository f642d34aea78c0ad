#include "base/notify_message.h"

#include <charconv>

namespace baton::notify {

std::optional<std::string_view> Message::get(std::string_view key) const {
  std::optional<std::string_view> value;
  for (const auto& [k, v] : fields)
    if (k == key) value = v;
  return value;
}

namespace {

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF), no NUL.
bool validUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;  // bounds of the second byte
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c == 0xe0) len = 3, lo = 0xa0;
    else if (c >= 0xe1 && c <= 0xec) len = 3;
    else if (c == 0xed) len = 3, hi = 0x9f;
    else if (c >= 0xee && c <= 0xef) len = 3;
    else if (c == 0xf0) len = 4, lo = 0x90;
    else if (c >= 0xf1 && c <= 0xf3) len = 4;
    else if (c == 0xf4) len = 4, hi = 0x8f;
    else return false;
    if (s.size() - i < len) return false;
    const unsigned char second = static_cast<unsigned char>(s[i + 1]);
    if (second < lo || second > hi) return false;
    for (size_t k = 2; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += len;
  }
  return true;
}

bool validKey(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

}  // namespace

bool parseMessage(std::string_view data, Message& out, std::string& error) {
  out.fields.clear();
  if (data.size() > kMaxMessageBytes) {
    error = "oversized (" + std::to_string(data.size()) + " bytes, at most " + std::to_string(kMaxMessageBytes) + ")";
    return false;
  }
  if (!validUtf8(data)) {
    error = "not UTF-8 text";
    return false;
  }
  size_t lineNo = 0;
  while (!data.empty()) {
    const size_t nl = data.find('\n');
    std::string_view line = data.substr(0, nl);
    data = nl == std::string_view::npos ? std::string_view() : data.substr(nl + 1);
    ++lineNo;
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || !validKey(line.substr(0, eq))) {
      error = "line " + std::to_string(lineNo) + " is not KEY=VALUE";
      out.fields.clear();
      return false;
    }
    out.fields.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  if (out.fields.empty()) {
    error = "empty";
    return false;
  }
  return true;
}

std::optional<long long> parseInteger(std::string_view text, long long min, long long max) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) return std::nullopt;
  return v;
}

}  // namespace baton::notify
