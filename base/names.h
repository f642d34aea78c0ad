// What a job or instance name may hold. Names go into log file names, cgroup names, `list`
// output, events and environment variables, so a control character (a newline could forge a line
// of `list` or of a log) is refused with a clear error. Every other byte is allowed: '/' only
// separates job directories and is replaced in file and cgroup names.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace baton {

inline bool isControlChar(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Empty if `name` is acceptable, else why not (e.g. "contains a control character (0x0a) at
// offset 3"). `what` names it in the message ("instance name").
inline std::string nameProblem(std::string_view what, std::string_view name) {
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (isControlChar(c)) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", c);
      return std::string(what) + " contains a control character (" + hex + ") at offset " + std::to_string(i);
    }
  }
  return {};
}

// `name` with each control character written as \xNN, for a message that must stay one line.
inline std::string escapedName(std::string_view name) {
  std::string out;
  for (char ch : name) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (isControlChar(c)) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace baton
