#include "migrate/handoff.h"

namespace baton {

const HandoffOptionInfo* findHandoffName(std::string_view name) {
  for (const HandoffOptionInfo& o : kHandoffOptions)
    if (o.name == name) return &o;
  return nullptr;
}

const HandoffOptionInfo* findHandoffFlag(std::string_view flag) {
  if (flag.empty()) return nullptr;
  for (const HandoffOptionInfo& o : kHandoffOptions)
    if (o.flag == flag) return &o;
  return nullptr;
}

std::string handoffAnnouncement(HandoffSet options) {
  std::string text;
  for (const HandoffOptionInfo& o : kHandoffOptions)
    if (options.has(o.option)) text.append("accepts ").append(o.name).append("\n");
  return text;
}

HandoffSet allHandoffOptions() {
  HandoffSet all;
  for (const HandoffOptionInfo& o : kHandoffOptions) all.add(o.option);
  return all;
}

void appendHandoffArgs(std::vector<std::string>& argv, const Handoff& handoff) {
  for (const HandoffOptionInfo& o : kHandoffOptions) {
    if (!handoff.options.has(o.option) || o.flag.empty()) continue;
    argv.emplace_back(o.flag);
    if (o.fd) argv.push_back(std::to_string(handoff.*o.fd));
  }
}

}  // namespace baton
