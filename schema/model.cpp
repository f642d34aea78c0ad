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

}  // namespace baton
