// Limits on control clients: how many connections batond accepts (per non-root user and in all,
// with room kept for root), how many requests one connection may leave waiting for an answer, how
// long a started frame may take to arrive, and how many warnings about clients batond writes.
//
// Pure logic (no I/O), used by the control server. The limits are configuration given by flags
// (batond_args), not state: they are not in the snapshot; a re-exec hands on the ones given by flag
// in $BATON_CONTROL_LIMITS (docs/batond.md, "Limits on control clients"). The counters count since
// this image of batond started.
#pragma once

#include <cstdint>
#include <string>

namespace baton {

struct ControlLimits {
  // Connections open at once, in all. The last reservedForRoot() of them only root and batond's
  // own user may take: others can never lock them out.
  uint32_t maxConnections = 1024;
  // Connections open at once per user other than root and batond's own (0: none).
  uint32_t maxConnectionsPerUid = 16;
  // Requests of one connection waiting for an answer (held until a job or an event is done).
  uint32_t maxUnanswered = 64;
  // A frame must be complete this long after its first byte arrived; 0 = no limit.
  uint32_t frameTimeoutMs = 10000;

  // 1/16 of maxConnections, rounded up: 64 of 1024.
  uint32_t reservedForRoot() const { return (maxConnections + 15) / 16; }
};

// What the control server refused or closed, since this image started.
struct ControlCounters {
  uint64_t refusedPerUid = 0;      // connections over the per-user limit
  uint64_t refusedTotal = 0;       // connections over the total limit
  uint64_t refusedUnanswered = 0;  // requests over the unanswered limit (answered with an error)
  uint64_t malformedFrames = 0;    // bad frames and undecodable requests (the connection closed)
  uint64_t closedMidFrame = 0;     // connections closed at the frame timeout
  uint64_t droppedNotReading = 0;  // connections dropped with 16 MiB of answers unread
};

enum class ConnectionRefusal : uint8_t { None, PerUid, Total };

// Whether a new connection may be accepted. `privileged`: from root or batond's own user (no
// per-user limit, and the reserved room). `open`: connections open now; `openOfUid`: those of the
// same user.
ConnectionRefusal admitConnection(const ControlLimits& limits, bool privileged, size_t open, size_t openOfUid);

// Why a connection is refused, for the error frame it gets ("connection refused: " + this) and
// the warning.
std::string refusalMessage(ConnectionRefusal why, const ControlLimits& limits, uint32_t uid, size_t open,
                           size_t openOfUid);

// At most `burst` lines per window of `intervalNs`, the window starting at the first line. Lines
// beyond are counted; when the window ends, summary() says how many (one line for all of them).
class WarningLimiter {
 public:
  static constexpr uint32_t kDefaultBurst = 10;                    // the kernel's printk_ratelimit
  static constexpr int64_t kDefaultIntervalNs = 5'000'000'000;     // 10 lines per 5 s

  explicit WarningLimiter(uint32_t burst = kDefaultBurst, int64_t intervalNs = kDefaultIntervalNs)
      : burst_(burst), intervalNs_(intervalNs) {}

  // A line is due at `now`: true if it may be written; false if it is suppressed (counted).
  bool allow(int64_t now);
  // When the summary is due: the end of a window with suppressed lines (1, long past, if one has
  // ended unreported); 0 if none is due.
  int64_t summaryDueNs() const {
    return pendingSummary_ ? 1 : suppressedInWindow_ ? windowStartNs_ + intervalNs_ : 0;
  }
  // The summary line ("N warnings about control clients suppressed (at most 10 per 5 s)") once
  // its window has ended, or "" (nothing suppressed, or the window is still open).
  std::string summary(int64_t now);

  uint32_t burst() const { return burst_; }
  int64_t intervalNs() const { return intervalNs_; }
  uint64_t suppressedTotal() const { return suppressedTotal_; }

 private:
  void endWindowIfOver(int64_t now);

  uint32_t burst_;
  int64_t intervalNs_;
  int64_t windowStartNs_ = 0;
  bool windowOpen_ = false;
  uint32_t linesInWindow_ = 0;
  uint64_t suppressedInWindow_ = 0;
  uint64_t suppressedTotal_ = 0;
  uint64_t pendingSummary_ = 0;  // suppressed in a window that has ended, not reported yet
};

}  // namespace baton
