// The job engine's part of readiness notification (`expect notify`): what a datagram on the
// notify socket changes. The socket itself is supervisor/notify_socket.h; the protocol is
// sd_notify(3); docs/design.md ("Readiness notification") says why one socket and how a message
// is attributed.
#include <unistd.h>

#include <string>

#include "base/notify_message.h"
#include "base/syscalls.h"
#include "supervisor/job_engine.h"
#include "supervisor/job_state.h"
#include "supervisor/notify_socket.h"

namespace baton {

namespace {
// Datagrams read per wakeup: a job that floods the socket does not hold the loop up (epoll reports
// the socket again while more are queued).
constexpr int kDatagramsPerWakeup = 64;
// Ancestors walked from a sender to the job process it descends from.
constexpr int kMaxAncestry = 64;

std::string instanceLabel(const ProcKey& key) {
  return key.job + (key.instance.empty() ? "" : " (" + key.instance + ")");
}
}  // namespace

void JobEngine::onNotifySocket() {
  for (int i = 0; i < kDatagramsPerWakeup; ++i) {
    NotifyDatagram d;
    if (!receiveNotify(model_.notifyFd, d)) return;
    notify::Message msg;
    std::string error;
    if (d.truncated) error = "oversized (more than " + std::to_string(notify::kMaxMessageBytes) + " bytes)";
    if (!error.empty() || !notify::parseMessage(d.data, msg, error)) {
      model_.notifyMalformed++;
      log(Priority::Debug, "notify message from pid " + std::to_string(d.pid) + " dropped: " + error);
      continue;
    }
    ProcKey key;
    if (d.pid <= 0 || !instanceOfProcess(d.pid, key)) {
      model_.notifyRefused++;
      log(Priority::Debug, "notify message from pid " + std::to_string(d.pid) + " refused: not a job's process");
      continue;
    }
    JobClass* cls = findClass(key.job);
    Instance* inst = findInstance(key.job, key.instance);
    if (!cls || !inst) continue;
    if (inst->def->expect != ExpectType::Notify) {
      model_.notifyRefused++;
      log(Priority::Debug, "notify message from pid " + std::to_string(d.pid) + " refused: " + instanceLabel(key) +
                               " does not `expect notify`");
      continue;
    }
    applyNotify(*cls, *inst, key, msg);
  }
}

// A process is the instance's if it is one of its processes (the pid table) or descends from one.
// The sender is alive or a zombie while its message is read in the usual cases: a daemon keeps
// running, and `systemd-notify` sends READY=1 in its parent's name and then waits (BARRIER=1)
// until batond has read it. A sender already reaped cannot be attributed and is refused.
bool JobEngine::instanceOfProcess(pid_t pid, ProcKey& key) const {
  const pid_t self = getpid();
  for (int depth = 0; depth < kMaxAncestry && pid > 1 && pid != self; ++depth) {
    auto it = pids_.find(pid);
    if (it != pids_.end()) {
      key = it->second;
      return true;
    }
    pid = sys::procParentPid(pid);
  }
  return false;
}

void JobEngine::applyNotify(JobClass& cls, Instance& inst, const ProcKey& key, const notify::Message& msg) {
  const std::string who = instanceLabel(key);
  if (auto status = msg.get("STATUS")) inst.statusText = std::string(*status);
  if (auto err = msg.get("ERRNO")) {
    if (auto v = notify::parseInteger(*err, 0, INT32_MAX)) inst.notifyErrno = int32_t(*v);
  }
  if (auto mainPid = msg.get("MAINPID")) {
    // Only a process of this very instance may become its main process, and only once the main
    // process's own spawn has been confirmed.
    ProcKey owner;
    auto v = notify::parseInteger(*mainPid, 2, INT32_MAX);
    ProcessSlot& main = inst.procs[0];
    if (!v || main.spawnValid || main.pid <= 0 || !instanceOfProcess(pid_t(*v), owner) || owner.job != key.job ||
        owner.instance != key.instance) {
      model_.notifyRefused++;
      log(Priority::Debug, who + ": MAINPID=" + std::string(*mainPid) + " refused: not a process of the job");
    } else if (pid_t(*v) != main.pid) {
      log(Priority::Info, who + " main process is now " + std::to_string(*v) + " (MAINPID)");
      pids_.erase(main.pid);  // the old one's exit is an orphan's from now on
      main.pid = pid_t(*v);
      main.startTime = sys::procStartTime(main.pid);
      pids_[main.pid] = {key.job, key.instance, ProcessType::Main};
    }
  }
  if (msg.has("STOPPING", "1")) inst.readyState = ReadyState::Stopping;
  if (msg.has("RELOADING", "1") && inst.readyState == ReadyState::Ready) inst.readyState = ReadyState::Reloading;
  if (msg.has("READY", "1")) {
    if (inst.readyState == ReadyState::Waiting) {
      inst.readyState = ReadyState::Ready;
      inst.readyDeadlineNs = 0;
      log(Priority::Info, who + " is ready");
      maybeLeaveSpawned(cls, inst);
    } else if (inst.readyState == ReadyState::Reloading) {
      inst.readyState = ReadyState::Ready;
      log(Priority::Info, who + " is ready again after reloading");
    }
  }
}

// The readiness deadline passed: the start failed, and the job is stopped with its `kill signal`
// and `kill timeout` (stopping -> killed).
void JobEngine::readinessTimedOut(JobClass& cls, Instance& inst) {
  inst.readyDeadlineNs = 0;
  if (inst.state != JobState::Spawned || inst.readyState != ReadyState::Waiting) return;
  const int64_t sec = inst.def->readyTimeoutMs / 1000;
  failJob(cls, inst, ProcessType::Main, 255 << 8,
          "no readiness notification within " + std::to_string(sec) + " s");
  inst.goal = Goal::Stop;
  changeState(cls, inst, nextState(inst.state, inst.goal, inst.procs[0].pid > 0));
}

}  // namespace baton
