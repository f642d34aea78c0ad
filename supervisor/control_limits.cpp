// Limits on control clients; see control_limits.h.
#include "supervisor/control_limits.h"

namespace baton {

ConnectionRefusal admitConnection(const ControlLimits& limits, bool privileged, size_t open, size_t openOfUid) {
  if (privileged) return open < limits.maxConnections ? ConnectionRefusal::None : ConnectionRefusal::Total;
  if (openOfUid >= limits.maxConnectionsPerUid) return ConnectionRefusal::PerUid;
  const uint32_t reserved = limits.reservedForRoot();
  const size_t forOthers = limits.maxConnections > reserved ? limits.maxConnections - reserved : 0;
  return open < forOthers ? ConnectionRefusal::None : ConnectionRefusal::Total;
}

std::string refusalMessage(ConnectionRefusal why, const ControlLimits& limits, uint32_t uid, size_t open,
                           size_t openOfUid) {
  const std::string who = "uid " + std::to_string(uid);
  switch (why) {
    case ConnectionRefusal::None: return {};
    case ConnectionRefusal::PerUid:
      return who + " has " + std::to_string(openOfUid) +
             " connections to batond open, the most a user other than root may have (" +
             std::to_string(limits.maxConnectionsPerUid) + "); close some and try again";
    case ConnectionRefusal::Total:
      return "batond has " + std::to_string(open) + " connections open, the most it takes " +
             (uid == 0 ? "" : "from " + who + " ") + "(" + std::to_string(limits.maxConnections) + " in all, the last " +
             std::to_string(limits.reservedForRoot()) + " kept for root); try again later";
  }
  return {};
}

void WarningLimiter::endWindowIfOver(int64_t now) {
  if (!windowOpen_ || now - windowStartNs_ < intervalNs_) return;
  windowOpen_ = false;
  pendingSummary_ += suppressedInWindow_;
  suppressedInWindow_ = 0;
}

bool WarningLimiter::allow(int64_t now) {
  endWindowIfOver(now);
  if (!windowOpen_) {
    windowOpen_ = true;
    windowStartNs_ = now;
    linesInWindow_ = 0;
  }
  if (linesInWindow_ < burst_) {
    ++linesInWindow_;
    return true;
  }
  ++suppressedInWindow_;
  ++suppressedTotal_;
  return false;
}

std::string WarningLimiter::summary(int64_t now) {
  endWindowIfOver(now);
  if (!pendingSummary_) return {};
  const uint64_t n = pendingSummary_;
  pendingSummary_ = 0;
  const int64_t ms = intervalNs_ / 1'000'000;
  const std::string window = ms % 1000 ? std::to_string(ms) + " ms" : std::to_string(ms / 1000) + " s";
  return std::to_string(n) + (n == 1 ? " warning" : " warnings") + " about control clients suppressed (at most " +
         std::to_string(burst_) + " per " + window + ")";
}

}  // namespace baton
