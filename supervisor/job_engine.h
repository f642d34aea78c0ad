// The job engine: the job state machine (job_state.h), spawning, process exits and ptrace
// stops, the event queue, the job files, the log writer and idle encoding, on the Model's job
// classes, events and log pipes.
//
// It owns no loop and no socket: Supervisor hands it what the loop saw (a status, script or log
// pipe ready, a child exited or stopped, a timer due) and the control server asks it to start,
// stop or emit. It registers the fds of its spawns in the shared Watches and their pids in the
// shared PidTable. What it knows about the requests that wait for a job or an event, it reports
// to a RequestOutcomes (the control server) instead of answering them itself.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/notify_message.h"
#include "schema/model.h"
#include "supervisor/log.h"
#include "supervisor/resources.h"
#include "supervisor/spawn.h"

namespace baton {

// What the job engine reports about the control requests that wait for it (Instance::blocking,
// Event::waiters). An interface, because the one that answers them (the control server) also
// drives the engine: the engine depends on this, not on the server.
class RequestOutcomes {
 public:
  // A job that `request` waits for reached its goal, or failed. Answered once the state has
  // settled (the end of the loop iteration, and always before a re-exec).
  virtual void jobFinished(const RequestRef& request, bool failed) = 0;
  // The event that `request` waits for (`emit`) finished. Answered now.
  virtual void eventFinished(const RequestRef& request, bool failed) = 0;

 protected:
  ~RequestOutcomes() = default;
};

class JobEngine {
 public:
  // Everything by reference is owned by Supervisor and outlives the engine. `outcomes` may not be
  // constructed yet: it is only stored here. `tablePool` holds the log-file table (see
  // Supervisor::tablePool_). `pid1`: jobs may get /dev/console.
  JobEngine(Model& model, const Log& log, Watches& watches, PidTable& pids,
            std::pmr::memory_resource& tablePool, RequestOutcomes& outcomes, bool pid1);
  ~JobEngine();
  JobEngine(const JobEngine&) = delete;
  JobEngine& operator=(const JobEngine&) = delete;

  // batond's own RLIMIT_NOFILE hard limit, once raised (jobs keep it; Supervisor::raiseFdLimit).
  void setFdLimitHard(uint64_t hard) { fdLimitHard_ = hard; }

  // ---- jobs ----
  // The class or instance, decoded: a class held encoded is decoded in place (ClassMap::decode),
  // since everyone who finds one reads or changes it. nullptr if there is none.
  JobClass* findClass(const std::string& name);
  Instance* findInstance(const std::string& job, const std::string& instance);
  Instance& instanceFor(JobClass& cls, const std::string& name);
  void changeGoal(JobClass& cls, Instance& inst, Goal goal);
  void changeState(JobClass& cls, Instance& inst, JobState state);
  // The environment and instance name of a new run of `cls`, with `extra` (event or request
  // variables) on top of the job's own `env` stanzas; `events`: names for UPSTART_EVENTS.
  bool startEnvironment(const JobClass& cls, const std::vector<std::string>& extra,
                        const std::string& events, std::vector<std::string>& env,
                        std::string& instName, std::string& error) const;
  void onProcessExit(JobClass& cls, Instance& inst, ProcessType type, int status);
  bool allAtRest() const;  // decodes nothing
  void sweepIdle();
  // Stop every job and start none from now on (SIGTERM when batond is not PID 1).
  void shutDown();
  bool shuttingDown() const { return shuttingDown_; }

  // ---- what the loop saw ----
  void onStatusPipe(const std::string& job, const std::string& instance, ProcessType type);
  void onScriptPipe(const std::string& job, const std::string& instance, ProcessType type);
  void onLogPipe(int fd);
  // A child the waitid sweep collected: a job's process (in the pid table) or an orphan.
  void onChildExited(pid_t pid, int status);
  void onChildStopped(pid_t pid, int code, int status);
  // The job timers: kill timeouts and readiness deadlines (absolute CLOCK_MONOTONIC).
  int64_t nextTimerNs() const;
  void runTimers(int64_t now);

  // ---- readiness notification (`expect notify`; job_notify.cpp) ----
  // Read what jobs sent to the notify socket (Model::notifyFd) and apply it.
  void onNotifySocket();

  // ---- events ----
  uint64_t emitEvent(const std::string& name, std::vector<std::string> env);
  Event* findEvent(uint64_t id);
  void pollEvents();

  // ---- configuration ----
  void loadConfiguration();
  const std::vector<std::string>& configWarnings() const { return configWarnings_; }

  // ---- idle encoding (Config::idleEncodeMs): hold the classes at rest encoded again ----
  void armIdleEncode();  // the next pass, idleEncodeMs from now (not armed if 0)
  int64_t idleEncodeAtNs() const { return idleEncodeAtNs_; }
  // `reexecInProgress`: a pre-flight recorded where the classes are; the pass waits.
  void idleEncode(bool reexecInProgress);

 private:
  void log(Priority p, const std::string& text) const { log_(p, text); }

  void enterState(JobClass& cls, Instance& inst, JobState& state, bool& wait);
  bool spawnProcess(JobClass& cls, Instance& inst, ProcessType type);
  bool buildPlan(const JobClass& cls, const Instance& inst, ProcessType type, SpawnPlan& plan,
                 std::string& pendingScript, std::string& error);
  void maybeLeaveSpawned(JobClass& cls, Instance& inst);
  // The main process counts as started: its `expect` condition holds.
  static bool expectMet(const Instance& inst);
  // Readiness (job_notify.cpp): the instance whose process `pid` is or descends from.
  bool instanceOfProcess(pid_t pid, ProcKey& key) const;
  void applyNotify(JobClass& cls, Instance& inst, const ProcKey& key, const notify::Message& msg);
  void readinessTimedOut(JobClass& cls, Instance& inst);
  void killMain(JobClass& cls, Instance& inst, int sig);
  void failJob(JobClass& cls, Instance& inst, ProcessType type, int status, const std::string& why);
  void finished(JobClass& cls, Instance& inst, bool failed);
  bool isNormalExit(const JobDef& def, int status) const;
  bool respawnAllowed(Instance& inst);
  void clearSlot(ProcessSlot& slot);
  std::vector<std::string> eventEnvFor(const JobClass& cls, const Instance& inst, bool stopping) const;

  void handleEvent(uint64_t id);
  void finishEvent(uint64_t id);
  void releaseEvent(uint64_t id, bool failed);

  void writeLog(LogPipe& lp);
  int logFileFd(const std::string& name);

  Model& model_;
  const Log& log_;
  Watches& watches_;
  PidTable& pids_;
  RequestOutcomes& outcomes_;
  const bool pid1_;
  uint64_t fdLimitHard_ = 0;   // batond's own RLIMIT_NOFILE hard limit (jobs keep it)
  bool shuttingDown_ = false;
  // Open log files by log name, cached between writes (closed by a configuration reload), and
  // the log directory they are opened in (sys::openAppendAt: never through a symlink).
  std::pmr::map<std::string, int> logFiles_;
  sys::Fd logDir_;
  std::string logFileRefused_;  // the last refusal logged, so a bad file is reported once
  std::vector<std::string> configWarnings_;
  // When the next idle encoding runs (0 = not armed: nothing happened since the last one). Not
  // state: a restore holds the classes encoded anyway.
  int64_t idleEncodeAtNs_ = 0;
};

}  // namespace baton
