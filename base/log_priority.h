// batond's log priorities: the one list of their names. batond's --log-priority, the control
// server's log-priority request, batonctl's check of it and the filter of batond's own messages
// all parse and name them here. The model and the snapshot keep the name as text
// (Config::logPriority): a name is parsed where it is read.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace baton {

// Lowest first: a message is written if its priority is at least the configured one.
enum class LogPriority : uint8_t { Debug, Info, Message, Warn, Error, Fatal };

inline constexpr std::array<std::string_view, 6> kLogPriorityNames = {"debug", "info",  "message",
                                                                      "warn",  "error", "fatal"};
inline constexpr LogPriority kDefaultLogPriority = LogPriority::Message;

constexpr std::string_view logPriorityName(LogPriority p) { return kLogPriorityNames[size_t(p)]; }

// The priority named `name` (exactly, lower case), or nothing.
constexpr std::optional<LogPriority> parseLogPriority(std::string_view name) {
  for (size_t i = 0; i < kLogPriorityNames.size(); ++i)
    if (kLogPriorityNames[i] == name) return LogPriority(i);
  return std::nullopt;
}

// Every name, lowest first, between `separator`s; `last` before the last one ("debug, info, ...
// error or fatal" with ", " and " or ").
inline std::string logPriorityNames(std::string_view separator, std::string_view last) {
  std::string out;
  for (size_t i = 0; i < kLogPriorityNames.size(); ++i) {
    if (i) out.append(i + 1 == kLogPriorityNames.size() ? last : separator);
    out.append(kLogPriorityNames[i]);
  }
  return out;
}
inline std::string logPriorityNames(std::string_view separator) { return logPriorityNames(separator, separator); }

}  // namespace baton
