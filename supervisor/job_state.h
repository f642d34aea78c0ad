// The job state machine: one place that says what each state means and how it is left.
//
// Every job instance has a GOAL (what it should be doing) and a STATE (where it is). Changing the
// goal never jumps states; it only changes which way the instance goes the next time it leaves
// its state. `nextState()` below is the whole transition table; JobEngine::changeState() performs
// the entry action of each state and keeps going while a state needs no waiting.
//
// Goals:
//   stop     the instance should end up in `waiting`.
//   start    the instance should end up in `running` (a task: run once, then back to `waiting`).
//   respawn  transient: the main process died and will be restarted; leaving the current state
//            turns the goal back into `start` and goes through `stopping`.
//
// States (entry action -> what the instance waits for -> how it leaves):
//   waiting        rest. Emits `stopped` (not the first time). Left by goal start -> starting.
//   starting       emits `starting` and blocks on it -> the event finished (every job it started or
//                  stopped reached its goal) -> pre-starting, or stopping if the goal became stop.
//   pre-starting   forks the pre-start process, if any (async) -> immediately pre-start.
//   pre-start      waits for pre-start to exit. Exit 0 -> spawning; otherwise failed, goal stop
//                  -> stopping. A stop request waits for pre-start to end.
//   spawning       forks the main process, if any (async) -> immediately spawned.
//   spawned        waits until the main process is really there: its status pipe reported a
//                  successful exec (EOF) AND the `expect` condition holds (stop: it raised SIGSTOP;
//                  fork/daemon: 1 or 2 forks followed by ptrace). A setup failure fails the job; an
//                  early exit is handled like any exit of the main process (below). Goal stop -> stopping at once (the child is killed in `killed`).
//   post-starting  forks the post-start process, if any -> immediately post-start.
//   post-start     waits for post-start to exit -> running (goal start) or stopping.
//   running        emits `started`; the instance has reached its goal (a service) and releases
//                  what it blocked. A task stays here until its main process exits.
//                  Goal stop -> pre-stopping if the main process lives, else stopping.
//   pre-stopping   forks pre-stop, if any -> pre-stop.
//   pre-stop       waits for pre-stop to exit -> stopping (goal stop) or running (goal start again).
//   stopping       emits `stopping` (RESULT, PROCESS, EXIT_STATUS/EXIT_SIGNAL) and blocks on it
//                  -> killed.
//   killed         sends the kill signal to the main process group and arms the kill timer
//                  (an absolute CLOCK_MONOTONIC deadline); SIGKILL when it fires -> when the main
//                  process is gone: post-stopping.
//   post-stopping  forks post-stop, if any -> post-stop.
//   post-stop      waits for post-stop to exit -> waiting (goal stop) or starting (goal start,
//                  e.g. a respawn or a restart).
//
// Main-process exit while running (or spawned/post-start/pre-stop): with `respawn`, goal start and
// an exit that is not listed in `normal exit`, the respawn counter is checked against `respawn
// limit` (a window that starts at the first respawn; exceeding the limit fails the job with
// "respawn limit reached" and goal stop) and the goal becomes respawn; otherwise the goal becomes
// stop, and an exit other than 0 / `normal exit` fails the job.
//
// In-flight spawns: a process slot whose spawn is `spawnValid` has its outcome applied exactly
// once, whichever of "child exited" and "status pipe EOF/failure record" is seen first: an exit
// seen first is stored (earlyExit) and applied right after the status pipe's outcome.
#pragma once

#include "schema/model.h"

namespace baton {

// The state an instance goes to when it leaves `state` with `goal`. For goal respawn the caller
// first turns the goal into start (see JobEngine::changeState). `mainAlive`: the main process
// exists (running -> pre-stopping or stopping).
constexpr JobState nextState(JobState state, Goal goal, bool mainAlive) {
  const bool start = goal != Goal::Stop;
  switch (state) {
    case JobState::Waiting: return start ? JobState::Starting : JobState::Waiting;
    case JobState::Starting: return start ? JobState::PreStarting : JobState::Stopping;
    case JobState::PreStarting: return start ? JobState::PreStart : JobState::Stopping;
    case JobState::PreStart: return start ? JobState::Spawning : JobState::Stopping;
    case JobState::Spawning: return start ? JobState::Spawned : JobState::Stopping;
    case JobState::Spawned: return start ? JobState::PostStarting : JobState::Stopping;
    case JobState::PostStarting: return start ? JobState::PostStart : JobState::Stopping;
    case JobState::PostStart: return goal == Goal::Start ? JobState::Running : JobState::Stopping;
    case JobState::Running:
      if (goal == Goal::Start) return JobState::Stopping;  // the main process ended: respawn/task
      if (goal == Goal::Respawn) return JobState::Stopping;
      return mainAlive ? JobState::PreStopping : JobState::Stopping;
    case JobState::PreStopping: return JobState::PreStop;
    case JobState::PreStop: return goal == Goal::Start ? JobState::Running : JobState::Stopping;
    case JobState::Stopping: return JobState::Killed;
    case JobState::Killed: return JobState::PostStopping;
    case JobState::PostStopping: return JobState::PostStop;
    case JobState::PostStop: return start ? JobState::Starting : JobState::Waiting;
  }
  return JobState::Waiting;
}

}  // namespace baton
