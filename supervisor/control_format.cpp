// Control protocol helpers: see control_format.h.
#include "supervisor/control_format.h"

#include <array>
#include <cstdio>
#include <cstring>

namespace baton {

namespace {

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

// "1234" or "1234 (spawning)".
std::string pidText(wire::ProcessStatus::Reader process) {
  std::string out = std::to_string(process.getPid());
  if (process.getSpawning()) out += " (spawning)";
  return out;
}

std::string failureText(wire::JobStatus::Reader status) {
  if (status.hasReason() && status.getReason().size() > 0) return text(status.getReason());
  std::string process = status.getFailedProcess().size() > 0
                            ? text(status.getFailedProcess()) + " process"
                            : std::string("process");
  if (status.getExitSignal()) {
    return process + " killed by signal " + std::to_string(status.getExitStatus());
  }
  return process + " exited with status " + std::to_string(status.getExitStatus());
}

std::string microseconds(int64_t ns) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f us", double(ns) / 1000.0);
  return buf;
}

std::string yesNo(bool b) { return b ? "yes" : "no"; }

// ", 2.5 s ago", or "" if either time is unknown or `at` is later than `now`.
std::string secondsAgo(int64_t nowNs, int64_t atNs) {
  if (nowNs <= 0 || atNs <= 0 || nowNs < atNs) return {};
  char buf[48];
  std::snprintf(buf, sizeof buf, ", %.1f s ago", double(nowNs - atNs) / 1e9);
  return buf;
}

// "10 s" or "250 ms".
std::string milliseconds(uint32_t ms) {
  return ms % 1000 ? std::to_string(ms) + " ms" : std::to_string(ms / 1000) + " s";
}

// The limits on control clients and what they refused (`status --daemon`); "" from a batond
// without them.
std::string clientLimitsText(wire::DaemonStatus::Reader status) {
  if (status.getMaxConnections() == 0) return {};
  const uint32_t perUid = status.getMaxConnectionsPerUid();
  std::string out = "connection limits: " + std::to_string(status.getMaxConnections()) + " in all, the last " +
                    std::to_string(status.getConnectionsKeptForRoot()) + " for root; " +
                    (perUid ? std::to_string(perUid) + " per other user" : std::string("none for other users")) +
                    "; " + std::to_string(status.getMaxUnanswered()) + " unanswered requests each; " +
                    (status.getFrameTimeoutMs() ? "a frame within " + milliseconds(status.getFrameTimeoutMs())
                                                : std::string("no frame timeout")) +
                    "\n";
  out += "warnings about clients: at most " + std::to_string(status.getClientWarningBurst()) + " lines per " +
         milliseconds(status.getClientWarningIntervalMs()) + "\n";
  return out;
}

std::string clientCountersText(wire::DaemonStatus::Reader status, int64_t nowMonotonicNs) {
  if (status.getMaxConnections() == 0) return {};
  const std::array<std::pair<const char*, uint64_t>, 7> counters = {{
      {"connections refused, per-user limit", status.getRefusedPerUid()},
      {"connections refused, total limit", status.getRefusedTotal()},
      {"requests refused, unanswered limit", status.getRefusedUnanswered()},
      {"malformed frames", status.getMalformedFrames()},
      {"connections closed mid-frame", status.getClosedMidFrame()},
      {"connections dropped, not reading", status.getDroppedNotReading()},
      {"warnings about clients suppressed", status.getSuppressedWarnings()},
  }};
  std::string out = "control counters (since this image started" + secondsAgo(nowMonotonicNs, status.getCountersSinceNs()) + "):\n";
  for (const auto& [name, n] : counters) out += std::string("  ") + name + ": " + std::to_string(n) + "\n";
  return out;
}

}  // namespace

int exitCodeFor(wire::ResultCode code) {
  switch (code) {
    case wire::ResultCode::OK:
      return kExitOk;
    case wire::ResultCode::USAGE:
      return kExitUsage;
    case wire::ResultCode::UNKNOWN_JOB:
    case wire::ResultCode::UNKNOWN_INSTANCE:
      return kExitUnknown;
    case wire::ResultCode::PERMISSION_DENIED:
      return kExitPermission;
    case wire::ResultCode::FAILED:
    case wire::ResultCode::ALREADY_IN_GOAL:
    case wire::ResultCode::UNSUPPORTED:
    case wire::ResultCode::INTERNAL:
      return kExitFailed;
  }
  return kExitFailed;  // an enumerant newer than this build
}

std::string resultCodeText(wire::ResultCode code) {
  switch (code) {
    case wire::ResultCode::OK: return "ok";
    case wire::ResultCode::FAILED: return "failed";
    case wire::ResultCode::USAGE: return "malformed request";
    case wire::ResultCode::UNKNOWN_JOB: return "unknown job";
    case wire::ResultCode::PERMISSION_DENIED: return "permission denied";
    case wire::ResultCode::UNKNOWN_INSTANCE: return "unknown instance";
    case wire::ResultCode::ALREADY_IN_GOAL: return "job is already in that goal";
    case wire::ResultCode::UNSUPPORTED: return "not supported";
    case wire::ResultCode::INTERNAL: return "internal error in batond";
  }
  return "error " + std::to_string(unsigned(code));
}

bool isKeyValue(std::string_view arg) {
  const size_t eq = arg.find('=');
  return eq != std::string_view::npos && eq > 0;
}

std::string defaultSocketPath(bool root, std::string_view xdgRuntimeDir) {
  if (root) return kRootSocketPath;
  if (xdgRuntimeDir.empty()) return {};
  return std::string(xdgRuntimeDir) + "/baton/control";
}

std::string formatJobStatus(wire::JobStatus::Reader status) {
  std::string out = text(status.getJob());
  if (status.getInstance().size() > 0) out += " (" + text(status.getInstance()) + ")";
  out += " " + text(status.getGoal()) + "/" + text(status.getState());

  std::string others;
  bool mainShown = false;
  for (wire::ProcessStatus::Reader process : status.getProcesses()) {
    if (!mainShown && process.getType() == "main") {
      out += ", process " + pidText(process);
      mainShown = true;
    } else {
      others += "\t" + text(process.getType()) + " process " + pidText(process) + "\n";
    }
  }
  out += "\n" + others;
  if (status.getReadiness().size() > 0) out += "\treadiness: " + text(status.getReadiness()) + "\n";
  if (status.getStatusText().size() > 0) out += "\tstatus: " + text(status.getStatusText()) + "\n";
  if (status.getNotifyErrno() != 0) {
    const char* name = strerrorname_np(status.getNotifyErrno());
    out += "\terrno: " + std::to_string(status.getNotifyErrno()) + (name ? std::string(" (") + name + ")" : "") + "\n";
  }
  if (status.getFailed()) out += "\tfailed: " + failureText(status) + "\n";
  if (status.getNewerDefinitionPending()) {
    out += "\tnewer definition pending: applies on next start\n";
  }
  return out;
}

std::string formatJobConfig(wire::JobConfig::Reader config) {
  std::string out = text(config.getJob()) + "\n";
  if (config.getInstance().size() > 0) out += "  instance " + text(config.getInstance()) + "\n";
  if (config.getStartOn().size() > 0) out += "  start on " + text(config.getStartOn()) + "\n";
  if (config.getStopOn().size() > 0) out += "  stop on " + text(config.getStopOn()) + "\n";
  for (capnp::Text::Reader name : config.getEmits()) out += "  emits " + text(name) + "\n";
  if (config.getTask()) out += "  task\n";
  if (config.getRespawn()) out += "  respawn\n";
  for (capnp::Text::Reader what : config.getUnsupported()) {
    out += "  unsupported: " + text(what) + "\n";
  }
  return out;
}

std::string formatConfigCheck(wire::ConfigCheck::Reader check, bool sayNoProblems) {
  std::string out;
  for (capnp::Text::Reader problem : check.getProblems()) out += text(problem) + "\n";
  for (capnp::Text::Reader warning : check.getWarnings()) {
    out += "warning: " + text(warning) + "\n";
  }
  if (sayNoProblems && check.getProblems().size() == 0) out += "no problems\n";
  return out;
}

std::string formatReexecOutcome(std::string_view label, wire::ReexecOutcome::Reader outcome,
                                int64_t nowMonotonicNs) {
  std::string out(label);
  if (!outcome.getOk() && outcome.getMessage().size() == 0) return out + ": none\n";

  out += outcome.getOk() ? ": ok" : ": failed";
  if (outcome.getRolledBack()) out += ", rolled back";
  out += secondsAgo(nowMonotonicNs, outcome.getAtNs()) + "\n";
  if (outcome.getMessage().size() > 0) out += "  message: " + text(outcome.getMessage()) + "\n";
  if (outcome.getFromBinary().size() > 0) out += "  from: " + text(outcome.getFromBinary()) + "\n";
  if (outcome.getToBinary().size() > 0) out += "  to: " + text(outcome.getToBinary()) + "\n";
  if (outcome.getFormatPath().size() > 0) out += "  format: " + text(outcome.getFormatPath()) + "\n";
  if (outcome.getSnapshotBytes() > 0) {
    out += "  snapshot: " + std::to_string(outcome.getSnapshotBytes()) + " bytes\n";
  }
  if (outcome.hasTiming()) {
    wire::ReexecTiming::Reader t = outcome.getTiming();
    const std::array<std::pair<const char*, int64_t>, 7> phases = {{
        {"serialize", t.getSerializeNs()},
        {"preflight", t.getPreflightNs()},
        {"exec", t.getExecNs()},
        {"load", t.getLoadNs()},
        {"restore", t.getRestoreNs()},
        {"rearm", t.getRearmNs()},
        {"downtime", t.getDowntimeNs()},
    }};
    for (const auto& [name, ns] : phases) {
      if (ns != 0) out += std::string("  ") + name + ": " + microseconds(ns) + "\n";
    }
  }
  return out;
}

std::string formatDaemonStatus(wire::DaemonStatus::Reader status, int64_t nowMonotonicNs) {
  std::string out = "version: " + text(status.getVersion()) + "\n";
  out += "pid: " + std::to_string(status.getPid()) + "\n";
  if (status.getBinary().size() > 0) out += "binary: " + text(status.getBinary()) + "\n";
  out += "pid 1: " + yesNo(status.getPid1()) + "\n";
  out += "subreaper: " + yesNo(status.getSubreaper()) + "\n";
  out += "jobs: " + std::to_string(status.getJobs()) + "\n";
  out += "instances: " + std::to_string(status.getInstances()) + "\n";
  if (status.getEncodedJobs() > 0)
    out += "jobs held encoded (untouched since a restore or an idle encoding): " + std::to_string(status.getEncodedJobs()) + "\n";
  out += "pending events: " + std::to_string(status.getPendingEvents()) + "\n";
  out += "connections: " + std::to_string(status.getConnections()) + "\n";
  out += clientLimitsText(status);
  if (status.getConfDir().size() > 0) out += "conf dir: " + text(status.getConfDir()) + "\n";
  if (status.getLogDir().size() > 0) out += "log dir: " + text(status.getLogDir()) + "\n";
  if (status.getSocket().size() > 0) out += "socket: " + text(status.getSocket()) + "\n";
  if (status.getLogPriority().size() > 0) {
    out += "log priority: " + text(status.getLogPriority()) + "\n";
  }
  if (status.getSnapshotFormats().size() > 0) out += "snapshot formats: " + text(status.getSnapshotFormats()) + "\n";
  if (status.getNotifySocket().size() > 0) {
    out += "notify socket: " + text(status.getNotifySocket()) + " (refused " + std::to_string(status.getNotifyRefused()) +
           ", malformed " + std::to_string(status.getNotifyMalformed()) + ")\n";
  }
  if (status.getDegraded().size() > 0) out += "degraded: " + text(status.getDegraded()) + "\n";
  out += clientCountersText(status, nowMonotonicNs);
  out += formatReexecOutcome("last re-exec", status.getLastReexec(), nowMonotonicNs);
  return out;
}

}  // namespace baton
