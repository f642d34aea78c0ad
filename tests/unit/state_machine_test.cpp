// StateMachine*: nextState() (supervisor/job_state.h) against the table in that header, every
// state x goal x mainAlive; the walks it allows; the state names `status` shows.
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "schema/model.h"
#include "supervisor/job_state.h"

namespace baton {
namespace {

// Every column of a row of the table: where a state goes with each goal, with the main process
// dead or alive.
struct Row {
  JobState state;
  JobState stopDead, stopAlive;
  JobState startDead, startAlive;
  JobState respawnDead, respawnAlive;
};

using S = JobState;

// Written from the header comment, not from the code:
//  - "-ing" states fork and move on at once to their waiting state; a goal stop there (e.g. the
//    fork failed, which sets goal stop) leaves for `stopping` like every state that is left with
//    goal stop before `running` ("... or stopping if the goal became stop").
//  - goal respawn is transient: where the header distinguishes "goal start" explicitly
//    (post-start: "running (goal start) or stopping"; pre-stop: "running (goal start again)";
//    running: the main process ended, "goes through stopping") respawn leaves for `stopping`;
//    elsewhere it goes the way of start (the caller turns it into start).
//  - mainAlive only matters for `running` with goal stop: pre-stopping if the main process lives,
//    else stopping.
const std::vector<Row>& table() {
  static const std::vector<Row> rows = {
      //  state            stop dead/alive              start dead/alive             respawn dead/alive
      {S::Waiting,      S::Waiting, S::Waiting,      S::Starting, S::Starting,        S::Starting, S::Starting},
      {S::Starting,     S::Stopping, S::Stopping,    S::PreStarting, S::PreStarting,  S::PreStarting, S::PreStarting},
      {S::PreStarting,  S::Stopping, S::Stopping,    S::PreStart, S::PreStart,        S::PreStart, S::PreStart},
      {S::PreStart,     S::Stopping, S::Stopping,    S::Spawning, S::Spawning,        S::Spawning, S::Spawning},
      {S::Spawning,     S::Stopping, S::Stopping,    S::Spawned, S::Spawned,          S::Spawned, S::Spawned},
      {S::Spawned,      S::Stopping, S::Stopping,    S::PostStarting, S::PostStarting, S::PostStarting, S::PostStarting},
      {S::PostStarting, S::Stopping, S::Stopping,    S::PostStart, S::PostStart,      S::PostStart, S::PostStart},
      {S::PostStart,    S::Stopping, S::Stopping,    S::Running, S::Running,          S::Stopping, S::Stopping},
      {S::Running,      S::Stopping, S::PreStopping, S::Stopping, S::Stopping,        S::Stopping, S::Stopping},
      {S::PreStopping,  S::PreStop, S::PreStop,      S::PreStop, S::PreStop,          S::PreStop, S::PreStop},
      {S::PreStop,      S::Stopping, S::Stopping,    S::Running, S::Running,          S::Stopping, S::Stopping},
      {S::Stopping,     S::Killed, S::Killed,        S::Killed, S::Killed,            S::Killed, S::Killed},
      {S::Killed,       S::PostStopping, S::PostStopping, S::PostStopping, S::PostStopping, S::PostStopping, S::PostStopping},
      {S::PostStopping, S::PostStop, S::PostStop,    S::PostStop, S::PostStop,        S::PostStop, S::PostStop},
      {S::PostStop,     S::Waiting, S::Waiting,      S::Starting, S::Starting,        S::Starting, S::Starting},
  };
  return rows;
}

TEST(StateMachine, TableCoversEveryStateOnce) {
  ASSERT_EQ(table().size(), size_t(kJobStates));
  for (int i = 0; i < kJobStates; ++i) EXPECT_EQ(int(table()[i].state), i);
}

TEST(StateMachine, NextStateMatchesTable) {
  int checked = 0;
  for (const Row& r : table()) {
    struct Cell { Goal goal; bool alive; JobState want; };
    const Cell cells[] = {
        {Goal::Stop, false, r.stopDead},       {Goal::Stop, true, r.stopAlive},
        {Goal::Start, false, r.startDead},     {Goal::Start, true, r.startAlive},
        {Goal::Respawn, false, r.respawnDead}, {Goal::Respawn, true, r.respawnAlive},
    };
    for (const Cell& c : cells) {
      JobState got = nextState(r.state, c.goal, c.alive);
      EXPECT_EQ(got, c.want) << jobStateName(r.state) << " + goal " << goalName(c.goal)
                             << (c.alive ? ", main alive" : ", main gone") << ": got "
                             << jobStateName(got) << ", want " << jobStateName(c.want);
      ++checked;
    }
  }
  EXPECT_EQ(checked, kJobStates * 3 * 2);
}

// nextState is usable at compile time.
static_assert(nextState(JobState::Waiting, Goal::Start, false) == JobState::Starting);
static_assert(nextState(JobState::Running, Goal::Stop, true) == JobState::PreStopping);
static_assert(nextState(JobState::Running, Goal::Stop, false) == JobState::Stopping);
static_assert(nextState(JobState::PostStop, Goal::Stop, false) == JobState::Waiting);

TEST(StateMachine, GoalStartWalksToRunning) {
  // waiting -> starting -> pre-starting -> pre-start -> spawning -> spawned -> post-starting ->
  // post-start -> running: every state once, in the documented order.
  std::vector<JobState> path;
  JobState s = JobState::Waiting;
  for (int i = 0; i < kJobStates && s != JobState::Running; ++i) {
    s = nextState(s, Goal::Start, s >= JobState::Spawned);
    path.push_back(s);
  }
  std::vector<JobState> want = {S::Starting, S::PreStarting, S::PreStart, S::Spawning, S::Spawned,
                                S::PostStarting, S::PostStart, S::Running};
  EXPECT_EQ(path, want);
}

TEST(StateMachine, GoalStopReachesWaitingFromEveryState) {
  // With goal stop and no main process every state reaches waiting, through killed and post-stop
  // (post-stop always runs once an instance has left waiting), and without ever passing running.
  for (int i = 0; i < kJobStates; ++i) {
    JobState s = JobState(i);
    std::set<JobState> seen;
    int steps = 0;
    while (s != JobState::Waiting && steps++ <= kJobStates) {
      seen.insert(s);
      s = nextState(s, Goal::Stop, false);
    }
    EXPECT_EQ(s, JobState::Waiting) << "from " << jobStateName(JobState(i));
    if (i != int(JobState::Waiting)) {
      EXPECT_TRUE(seen.count(JobState::PostStop)) << "from " << jobStateName(JobState(i));
      if (i < int(JobState::Killed)) {
        EXPECT_TRUE(seen.count(JobState::Killed)) << jobStateName(JobState(i));
      }
    }
    if (i != int(JobState::Running)) {
      EXPECT_FALSE(seen.count(JobState::Running)) << jobStateName(JobState(i));
    }
  }
}

TEST(StateMachine, StateNamesAsShownByStatus) {
  const char* names[] = {"waiting",  "starting",      "pre-starting", "pre-start", "spawning",
                         "spawned",  "post-starting", "post-start",   "running",   "pre-stopping",
                         "pre-stop", "stopping",      "killed",       "post-stopping", "post-stop"};
  for (int i = 0; i < kJobStates; ++i) EXPECT_STREQ(jobStateName(JobState(i)), names[i]);
  EXPECT_STREQ(goalName(Goal::Stop), "stop");
  EXPECT_STREQ(goalName(Goal::Start), "start");
  EXPECT_STREQ(goalName(Goal::Respawn), "respawn");
}

}  // namespace
}  // namespace baton
