// The names of the model's enumerants, as status output and events show them. They belong to
// the model (schema/model.h declares them), so every layer above can print a state.
#include "schema/model.h"

namespace baton {

const char* processTypeName(ProcessType p) {
  switch (p) {
    case ProcessType::Main: return "main";
    case ProcessType::PreStart: return "pre-start";
    case ProcessType::PostStart: return "post-start";
    case ProcessType::PreStop: return "pre-stop";
    case ProcessType::PostStop: return "post-stop";
  }
  return "unknown";
}

const char* goalName(Goal g) {
  switch (g) {
    case Goal::Stop: return "stop";
    case Goal::Start: return "start";
    case Goal::Respawn: return "respawn";
  }
  return "unknown";
}

const char* jobStateName(JobState s) {
  static const char* const names[kJobStates] = {
      "waiting", "starting", "pre-starting", "pre-start", "spawning", "spawned", "post-starting",
      "post-start", "running", "pre-stopping", "pre-stop", "stopping", "killed", "post-stopping",
      "post-stop"};
  int i = int(s);
  return i >= 0 && i < kJobStates ? names[i] : "unknown";
}

const char* expectTypeName(ExpectType e) {
  switch (e) {
    case ExpectType::None: return "none";
    case ExpectType::Stop: return "stop";
    case ExpectType::Fork: return "fork";
    case ExpectType::Daemon: return "daemon";
    case ExpectType::Notify: return "notify";
  }
  return "unknown";
}

const char* readyStateName(ReadyState r) {
  switch (r) {
    case ReadyState::None: return "none";
    case ReadyState::Waiting: return "waiting";
    case ReadyState::Ready: return "ready";
    case ReadyState::Reloading: return "reloading";
    case ReadyState::Stopping: return "stopping";
  }
  return "unknown";
}

}  // namespace baton
