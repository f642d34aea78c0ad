// Golden snapshots (tests/data/snapshots): every snapshot written by every released binary in the
// scenarios of scripts/lib/scenarios.sh is restored with the current code and checked field by
// field. The fds its table names are substituted with live pipes and sockets first (as Upstart's
// tests substitute @JOB_PROCESS_FD@), so the identity checks of a real restore run too.
// Golden snapshots are never regenerated; every release listed in RELEASES must have all of them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>

#include "migrate/formats.h"
#include "serialize/snapshot.h"
#include "base/environ.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kScenarios = {"idle",      "spawn-in-flight", "log-writer",     "waiting-client",
                                             "timers",    "instances",       "blocked-event",  "notify-waiting",
                                             "notify-ready"};
// The snapshot format a scenario needs (scenario_NAME_needs in scripts/lib/scenarios.sh): a
// release that writes an older one cannot build it, and has no golden snapshot of it.
uint32_t formatNeeded(const std::string& scenario) { return scenario.rfind("notify-", 0) == 0 ? 2 : 1; }

struct Release {
  std::string version;
  uint32_t format;
};

std::vector<Release> releases() {
  std::ifstream in(std::string(BATON_SOURCE_DIR) + "/RELEASES");
  std::vector<Release> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    Release r;
    std::string commit;
    if (words >> r.version >> r.format >> commit) out.push_back(r);
  }
  return out;
}

std::string goldenPath(const Release& r, const std::string& scenario) {
  return std::string(BATON_SOURCE_DIR) + "/tests/data/snapshots/format" + std::to_string(r.format) + "-" + r.version +
         "-" + scenario + ".snapshot";
}

// Replace every fd the model names with a live fd of the same kind, as a restore would find them.
class LiveFds {
 public:
  ~LiveFds() {
    for (int fd : open_) close(fd);
  }
  void substitute(Model& m) {
    if (m.listenFd >= 0) m.listenFd = socketEnd();
    for (Connection& c : m.connections) c.fd = socketEnd();
    for (auto& [n, cls] : m.classes)
      for (auto& [i, inst] : cls.instances)
        for (ProcessSlot& s : inst.procs) {
          if (s.statusFd >= 0) s.statusFd = pipeEnd();
          if (s.scriptFd >= 0) s.scriptFd = pipeEnd();
        }
    for (LogPipe& lp : m.logPipes) lp.fd = pipeEnd();
    if (m.notifyFd >= 0) m.notifyFd = socketEnd(SOCK_DGRAM);
  }

 private:
  int pipeEnd() {
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    open_.push_back(p[0]);
    open_.push_back(p[1]);
    return p[0];
  }
  int socketEnd(int type = SOCK_STREAM) {
    int p[2];
    EXPECT_EQ(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, p), 0);
    open_.push_back(p[0]);
    open_.push_back(p[1]);
    return p[0];
  }
  std::vector<int> open_;
};

// A job class of a model loadSnapshot read: it decodes everything, so no class is held.
const JobClass& jobClass(const Model& m, const std::string& job) {
  auto c = m.classes.find(job);
  if (c == m.classes.end()) throw std::out_of_range("job " + job + " missing");
  EXPECT_FALSE(c->second.encoded) << job << " is held encoded";
  return c->second;
}

const Instance& only(const Model& m, const std::string& job, const std::string& instance = "") {
  static const Instance none;
  auto c = m.classes.find(job);
  if (c == m.classes.end()) {
    ADD_FAILURE() << "job " << job << " missing";
    return none;
  }
  auto i = c->second.instances.find(instance);
  if (i == c->second.instances.end()) {
    ADD_FAILURE() << "instance '" << instance << "' of " << job << " missing";
    return none;
  }
  return i->second;
}

void expectRunning(const Model& m, const std::string& job, const std::string& instance = "") {
  const Instance& in = only(m, job, instance);
  EXPECT_EQ(in.goal, Goal::Start) << job;
  EXPECT_EQ(in.state, JobState::Running) << job;
  EXPECT_GT(in.procs[0].pid, 0) << job;
  EXPECT_GT(in.procs[0].startTime, 0u) << job;
  EXPECT_FALSE(in.procs[0].spawnValid) << job;
  EXPECT_FALSE(in.failed) << job;
}

// A process held in its setup (test hook): the spawn is in flight. The hold applies to every
// process of the job, so a job with a pre-start is held in pre-start.
void expectHeld(const Instance& in, ProcessType type = ProcessType::Main) {
  const ProcessSlot& slot = in.procs[int(type)];
  EXPECT_EQ(in.goal, Goal::Start);
  EXPECT_EQ(in.state, type == ProcessType::Main ? JobState::Spawned : JobState::PreStart);
  EXPECT_GT(slot.pid, 0);
  EXPECT_TRUE(slot.spawnValid);
  EXPECT_GE(slot.statusFd, 0);
  if (type != ProcessType::Main) {
    EXPECT_EQ(in.procs[0].pid, 0) << "main must not have started yet";
  }
  EXPECT_TRUE(environ::get(in.env, "BATON_TEST_HOLD").has_value());
}

const PendingRequest* pendingFor(const Model& m, const std::string& job, PendingRequest::Kind kind, uint64_t* connId) {
  for (const Connection& c : m.connections)
    for (const PendingRequest& p : c.pending)
      if (p.job == job && p.kind == kind) {
        *connId = c.id;
        return &p;
      }
  return nullptr;
}

// What each scenario must look like after a restore, whatever release wrote it.
const std::map<std::string, std::function<void(const Model&)>> kChecks = {
    {"idle",
     [](const Model& m) {
       expectRunning(m, "svc");
       expectRunning(m, "scripted");
       EXPECT_EQ(jobClass(m, "svc").def->process[0].command, "sleep 1000");
       EXPECT_FALSE(jobClass(m, "svc").def->process[0].script);
       EXPECT_TRUE(jobClass(m, "scripted").def->process[0].script);
       EXPECT_EQ(jobClass(m, "svc").def->startOn.nodes.size(), 1u);
       EXPECT_EQ(jobClass(m, "svc").def->startOn.nodes[0].name, "startup");
       EXPECT_GE(m.listenFd, 0);
     }},
    {"spawn-in-flight", [](const Model& m) { expectHeld(only(m, "held")); }},
    {"log-writer",
     [](const Model& m) {
       expectRunning(m, "counter");
       bool found = false;
       for (const LogPipe& lp : m.logPipes) found |= lp.logName == "counter" && lp.fd >= 0;
       EXPECT_TRUE(found) << "the counter's log pipe is not in the state";
     }},
    {"waiting-client",
     [](const Model& m) {
       const Instance& in = only(m, "slow");
       expectHeld(in, ProcessType::PreStart);
       uint64_t conn = 0;
       const PendingRequest* p = pendingFor(m, "slow", PendingRequest::Kind::Start, &conn);
       ASSERT_NE(p, nullptr) << "the waiting `start slow` client is not in the state";
       bool linked = false;
       for (const Blocked& b : in.blocking)
         linked |= b.kind == Blocked::Kind::Request && b.request.connId == conn && b.request.requestId == p->requestId;
       EXPECT_TRUE(linked) << "the job does not hold the waiting request";
     }},
    {"timers",
     [](const Model& m) {
       const Instance& in = only(m, "stubborn");
       EXPECT_EQ(in.goal, Goal::Stop);
       EXPECT_EQ(in.state, JobState::Killed);
       EXPECT_GT(in.killDeadlineNs, 0);
       EXPECT_GT(in.procs[0].pid, 0);
       EXPECT_EQ(jobClass(m, "stubborn").def->killTimeoutMs, 4000);
     }},
    {"instances",
     [](const Model& m) {
       EXPECT_EQ(jobClass(m, "inst").instances.size(), 3u);
       for (const char* name : {"a", "b", "c"}) {
         expectRunning(m, "inst", name);
         EXPECT_EQ(environ::get(only(m, "inst", name).env, "N").value_or(""), name);
       }
     }},
    {"blocked-event",
     [](const Model& m) {
       const Instance& main = only(m, "main");
       EXPECT_EQ(main.state, JobState::Starting);
       ASSERT_NE(main.blocker, 0u) << "main is not blocked on its starting event";
       const Event* starting = nullptr;
       for (const Event& e : m.events)
         if (e.id == main.blocker) starting = &e;
       ASSERT_NE(starting, nullptr);
       EXPECT_EQ(starting->name, "starting");
       EXPECT_EQ(environ::get(starting->env, "JOB").value_or(""), "main");
       EXPECT_EQ(starting->blockers, 1u);
       const Instance& gate = only(m, "gate");
       expectHeld(gate);
       bool holds = false;
       for (const Blocked& b : gate.blocking) holds |= b.kind == Blocked::Kind::Event && b.eventId == starting->id;
       EXPECT_TRUE(holds) << "gate does not hold the starting event";
       uint64_t conn = 0;
       EXPECT_NE(pendingFor(m, "main", PendingRequest::Kind::Start, &conn), nullptr);
     }},
    {"notify-waiting",
     [](const Model& m) {
       const Instance& in = only(m, "slow");
       EXPECT_EQ(jobClass(m, "slow").def->expect, ExpectType::Notify);
       EXPECT_EQ(jobClass(m, "slow").def->readyTimeoutMs, 600000);
       EXPECT_EQ(in.state, JobState::Spawned);
       EXPECT_EQ(in.readyState, ReadyState::Waiting);
       EXPECT_GT(in.readyDeadlineNs, 0);
       EXPECT_GT(in.procs[0].pid, 0);
       uint64_t conn = 0;
       EXPECT_NE(pendingFor(m, "slow", PendingRequest::Kind::Start, &conn), nullptr);
       EXPECT_GE(m.notifyFd, 0);
     }},
    {"notify-ready",
     [](const Model& m) {
       expectRunning(m, "up");
       const Instance& in = only(m, "up");
       EXPECT_EQ(in.readyState, ReadyState::Ready);
       EXPECT_EQ(in.readyDeadlineNs, 0);
       EXPECT_EQ(in.statusText, "serving");
       EXPECT_GE(m.notifyFd, 0);
     }},
};

TEST(GoldenSnapshots, EveryReleaseHasEveryScenario) {
  std::vector<Release> rs = releases();
  ASSERT_FALSE(rs.empty()) << "RELEASES lists no release";
  for (const Release& r : rs)
    for (const std::string& s : kScenarios)
      EXPECT_EQ(fs::exists(goldenPath(r, s)), r.format >= formatNeeded(s)) << goldenPath(r, s);
  EXPECT_EQ(kChecks.size(), kScenarios.size());
}

TEST(GoldenSnapshots, RestoreEveryOneFieldByField) {
  int checked = 0;
  for (const Release& r : releases()) {
    for (const std::string& scenario : kScenarios) {
      if (r.format < formatNeeded(scenario)) continue;
      SCOPED_TRACE(r.version + " " + scenario);
      std::string path = goldenPath(r, scenario);
      std::ifstream in(path, std::ios::binary);
      ASSERT_TRUE(in.good()) << path;
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      Snapshot golden;
      std::string error;
      ASSERT_TRUE(golden.openBytes(bytes, error)) << error;
      EXPECT_EQ(golden.header().format, r.format);
      Model m;
      ASSERT_TRUE(loadSnapshot(golden, m, error)) << error;

      // Hand it over the way a re-exec would, with live fds in place of the recorded ones.
      LiveFds live;
      live.substitute(m);
      size_t size = 0;
      int fd = writeSnapshot(m, kSnapshotFormat, 1, size, error).release();
      ASSERT_GE(fd, 0) << error;
      Snapshot handed;
      ASSERT_TRUE(handed.open(fd, error)) << error;
      close(fd);
      Model restored;
      ASSERT_TRUE(loadSnapshot(handed, restored, error)) << error;
      EXPECT_TRUE(checkFdIdentities(handed.fds(), error)) << error;
      EXPECT_TRUE(restored == m);
      kChecks.at(scenario)(restored);
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace baton
