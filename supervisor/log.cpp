#include "supervisor/log.h"

#include "base/syscalls.h"

namespace baton {

void Log::operator()(Priority p, const std::string& text) const {
  // A name this build does not know (in a handed-over state) counts as the default.
  if (p < parseLogPriority(config_.logPriority).value_or(kDefaultLogPriority)) return;
  std::string line = "batond: " + text + "\n";
  sys::writeAll(2, line.data(), line.size());
}

}  // namespace baton
