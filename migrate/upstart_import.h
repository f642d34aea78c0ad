// Taking over from a running Upstart 1.x PID 1: its serialized state (JSON) -> baton's Model.
//
// Upstart re-execs /sbin/init with `--restart --state-fd N` and writes its whole state as one JSON
// object into that fd (init/state.c, state_to_string). importUpstartState() turns that text, in
// any of the formats Upstart 1.6 .. 1.13 wrote, into a Model the supervisor can run from.
//
// The importer is a pure function of its input (and of the CLOCK_MONOTONIC "now" it uses to
// sanity-check times, which UpstartImportOptions can fix): it opens, closes and checks no fd and
// no pid. What the caller (the takeover code) must do with fds is listed in the result.
//
// Refused (false + an error naming the place, e.g. "job_classes[3].jobs[0].state: unknown state
// JOB_FOO"): text that is not JSON, values of the wrong JSON type, unknown enum strings, indices
// out of range, pid arrays of a length other than 5 or 6, more than 6 process slots or 16 limits,
// numbers out of range, duplicate class or instance names, conflicting blocker links, an fd
// adopted twice. Missing optional keys take Upstart's defaults (REFERENCE 3.2): absent start_on /
// stop_on, reload_signal (SIGHUP), apparmor_switch, job_environment, conf_sources,
// cgroup_manager_address, control_bus_address, cgmanager_wait/cgroups, process_data, log,
// event.blockers, BLOCKED_JOB session (0); any other missing key takes JobDef's / Instance's
// default (which are Upstart's). Required: the root object, `events`, `job_classes`, a class's
// `name`, an instance's `name`, `goal`, `state` and `pid`, an event's `name`, and in a
// process_data entry `process`, `valid`, `job_process_fd` and `status` (as Upstart requires).
//
// Mapping decisions (see also upstart_import.cpp):
// - Times. Upstart's kill_timer.due and respawn_time are CLOCK_MONOTONIC seconds (libnih's
//   timers and job_process_catch_runaway use clock_gettime(CLOCK_MONOTONIC)); the takeover is
//   an exec of the same PID 1 in the same boot, so they become ns on the same clock unchanged.
//   A time later than can be (due > now + timeout, respawn_time > now) is clamped with a warning.
//   A kill timer on an instance that is not in `killed` is dropped with a warning.
// - States map one to one; the 1.13 security states JOB_SECURITY_SPAWNING / JOB_SECURITY (an
//   apparmor_parser being run, which baton does not support) become `pre-starting` with a
//   warning: the instance resumes as baton runs a job whose `apparmor load` it ignores.
//   Instances in a transient state (pre-starting, spawning, post-starting, pre-stopping,
//   post-stopping; Upstart only rests there when blocked mid-transition) get a warning: the
//   caller must resume them by performing that state's entry action.
// - In-flight spawns (1.13 process_data, valid entries): spawnValid, statusFd = job_process_fd,
//   scriptFd = shell_fd, pendingScript = script, earlyExit = (status != 0), earlyExitStatus =
//   status as a wait status. Upstart cannot tell "no exit seen yet" from "exited with status 0
//   before the pipe answered": status 0 is read as the former.
// - Exit statuses (exit_status, process_data status) are Upstart's encoding (exit code, or the
//   signal shifted into the high byte) and are converted to wait(2) statuses as baton keeps them.
//   normalexit uses the same encoding and is split into normalExitCodes / normalExitSignals.
// - Events: id = index + 1. `blockers` is always recounted from the imported job -> event
//   blocking links (Upstart's count also includes holds by partially matched start on / stop on
//   conditions, which baton does not keep: importing it would leave the event unfinishable); a
//   differing count is reported. EVENT_FINISHED becomes handling (baton completes it on its next
//   poll, doing what Upstart's event_finished would have done). Event blocking lists of
//   BLOCKED_JOB set that instance's blocker.
// - Logs: Upstart logs through a pty per process; the pty master and log file fds stay open
//   across the exec. baton's log pipes are not set (its reader would see a pty, not a pipe): each
//   live log is a warning and its fds are listed in `unadoptedFds`.
// - Chroot sessions: classes with session > 0 are skipped (as Upstart 1.13 does), one warning per
//   session. Events of a chroot session are dropped too, and links to them.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "schema/model.h"

namespace baton {

// An fd number the Upstart state mentions that the imported model does not use.
struct UpstartFd {
  int32_t fd = -1;
  std::string what;  // e.g. "pty master of tty1 main process (job_classes[7].jobs[0].log[0])"
  bool operator==(const UpstartFd&) const = default;
};

struct UpstartImport {
  Model model;
  std::vector<std::string> warnings;
  // fds the model now owns (in-flight spawn status and script pipes). Upstart cleared their
  // close-on-exec flag for the exec: the caller sets it again and checks they are open.
  std::vector<int32_t> adoptedFds;
  // fds Upstart left open for the new image that the model does not use (log ptys and log files,
  // event fds, job fds, security-process pipes): the caller decides whether to close them.
  std::vector<UpstartFd> unadoptedFds;
};

struct UpstartImportOptions {
  // CLOCK_MONOTONIC now in ns, only used to clamp impossible times; 0 = read the clock.
  int64_t monotonicNowNs = 0;
};

// `json`: the state text. On failure returns false and sets `error` ("WHERE: what"); `out` is
// then unspecified.
bool importUpstartState(std::string_view json, UpstartImport& out, std::string& error);
bool importUpstartState(std::string_view json, const UpstartImportOptions& options,
                        UpstartImport& out, std::string& error);

}  // namespace baton
