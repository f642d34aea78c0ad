#include "supervisor/log.h"

#include "base/syscalls.h"

namespace baton {

void Log::operator()(Priority p, const std::string& text) const {
  static const char* const names[] = {"debug", "info", "message", "warn", "error", "fatal"};
  int threshold = 2;
  for (int i = 0; i < 6; ++i)
    if (config_.logPriority == names[i]) threshold = i;
  if (int(p) < threshold) return;
  std::string line = "batond: " + text + "\n";
  sys::writeAll(2, line.data(), line.size());
}

}  // namespace baton
