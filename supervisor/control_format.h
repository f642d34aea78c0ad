// Helpers shared by batonctl and batond around the control protocol (schema/control.capnp):
// batonctl's exit codes, argument checks, and the human-readable (Upstart initctl style) text of
// responses. Every function is pure: no I/O, no globals.
#pragma once

#include "schema/control.capnp.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace baton {

// batonctl's exit status.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,          // failed, alreadyInGoal, unsupported, internal, config problems,
                            // re-exec not ok, local I/O errors
  kExitUsage = 2,           // bad command line, or ResultCode usage
  kExitUnknown = 3,         // unknownJob, unknownInstance
  kExitPermission = 4,      // permissionDenied, or no permission to connect to the socket
  kExitNoConnection = 5,    // socket missing, connection refused, no socket path known
  kExitProtocol = 6,        // bad frame or message, connection closed before the answer
};

// Exit status for a daemon's ResultCode (values unknown to this build map to kExitFailed).
int exitCodeFor(wire::ResultCode code);

// Short text for a ResultCode, used when a Response carries no message ("unknown job", ...).
std::string resultCodeText(wire::ResultCode code);

// "KEY=VALUE" with a non-empty KEY (VALUE may be empty).
bool isKeyValue(std::string_view arg);

constexpr const char* kRootSocketPath = "/run/baton/control";

// Control socket when nothing names one: kRootSocketPath for root, else
// "$XDG_RUNTIME_DIR/baton/control"; empty if not root and xdgRuntimeDir is empty.
std::string defaultSocketPath(bool root, std::string_view xdgRuntimeDir);

// One block per JobStatus, each line ending in '\n':
//   JOB (INSTANCE) GOAL/STATE, process PID
//   \tTYPE process PID            (other live processes; " (spawning)" while being set up)
//   \tfailed: REASON
//   \tnewer definition pending: applies on next start
std::string formatJobStatus(wire::JobStatus::Reader status);

// Upstart show-config style: "JOB\n" then "  instance X", "  start on EXPR", "  stop on EXPR",
// "  emits NAME"..., "  task", "  respawn", "  unsupported: TEXT"... (only the lines that apply).
std::string formatJobConfig(wire::JobConfig::Reader config);

// Each problem, then each warning as "warning: TEXT"; then "no problems" if there are none and
// sayNoProblems is set.
std::string formatConfigCheck(wire::ConfigCheck::Reader check, bool sayNoProblems);

// "LABEL: ok" / "LABEL: failed[, rolled back]" (plus ", N.N s ago" if nowMonotonicNs > 0 and the
// outcome has a time), then indented detail lines, timings in microseconds. An outcome that is
// not ok and has no message means "none yet": "LABEL: none".
std::string formatReexecOutcome(std::string_view label, wire::ReexecOutcome::Reader outcome,
                                int64_t nowMonotonicNs);

// "FIELD: VALUE" lines; nowMonotonicNs (CLOCK_MONOTONIC, 0 = unknown) dates the last re-exec.
std::string formatDaemonStatus(wire::DaemonStatus::Reader status, int64_t nowMonotonicNs);

}  // namespace baton
