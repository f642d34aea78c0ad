// Upstart 1.x JSON state -> Model (migrate/upstart_import.h).
//
// UpstartImportShared: every real state file of Upstart's own test suite in
// BATON_SHARED_DIR/upstart/states (placeholders substituted as Upstart's test_state.c does: a
// live pipe for @JOB_PROCESS_FD@, a directory for @CHROOT_PATH@), checked file by file.
// UpstartImportFixture: our own corner cases in tests/data/upstart/.
// UpstartImportRefusal: input that cannot be trusted is refused with the place named.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <capnp/message.h>

#include "migrate/upstart_import.h"
#include "serialize/codec.h"
#include "base/event_expr.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kNs = 1000000000;
// A fixed "now" (CLOCK_MONOTONIC, 100000 s after boot) so results do not depend on the uptime
// of the machine running the tests.
const UpstartImportOptions kOptions{100000 * kNs};

const fs::path kStatesDir = fs::path(BATON_SHARED_DIR) / "upstart" / "states";
const fs::path kFixtureDir = fs::path(BATON_SOURCE_DIR) / "tests" / "data" / "upstart";

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == 0) {
      r = fds[0];
      w = fds[1];
    }
  }
  ~Pipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
};

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/baton-upstart-XXXXXX";
    if (mkdtemp(tmpl)) path = tmpl;
  }
  ~TempDir() {
    if (!path.empty()) fs::remove_all(path);
  }
};

// One of the shared state files with its placeholders substituted.
struct SharedState {
  Pipe pipe;
  TempDir chroot;
  std::string json;
  explicit SharedState(const std::string& file) {
    json = readFile(kStatesDir / file);
    replaceAll(json, "@JOB_PROCESS_FD@", std::to_string(pipe.r));
    replaceAll(json, "@CHROOT_PATH@", chroot.path);
  }
};

#define SKIP_WITHOUT_SHARED_STATES()                                                              \
  if (!fs::is_directory(kStatesDir))                                                              \
  GTEST_SKIP() << "no Upstart state files: " << kStatesDir << " is absent (BATON_SHARED_DIR not " \
                  "checked out)"

UpstartImport importOk(const std::string& json, const UpstartImportOptions& options = kOptions) {
  UpstartImport out;
  std::string error;
  EXPECT_TRUE(importUpstartState(json, options, out, error)) << error;
  EXPECT_EQ(error, "");
  return out;
}

std::string refusal(const std::string& json) {
  UpstartImport out;
  std::string error;
  EXPECT_FALSE(importUpstartState(json, kOptions, out, error)) << "accepted: " << json;
  return error;
}

size_t countWarnings(const UpstartImport& im, const std::string& part) {
  return size_t(std::count_if(im.warnings.begin(), im.warnings.end(),
                              [&](const std::string& w) { return w.find(part) != std::string::npos; }));
}

std::string allWarnings(const UpstartImport& im) {
  std::string s;
  for (const std::string& w : im.warnings) s += "  " + w + "\n";
  return s;
}

size_t instanceCount(const Model& m) { return m.classes.instanceCount(); }

// An import holds no class encoded: its classes are read as they are.
const JobClass& cls(const UpstartImport& im, const std::string& name) {
  static const JobClass none;
  auto it = im.model.classes.find(name);
  EXPECT_NE(it, im.model.classes.end()) << "no class " << name;
  return it == im.model.classes.end() ? none : it->second;
}

const Instance& inst(const UpstartImport& im, const std::string& job, const std::string& name = "") {
  static const Instance none;
  const JobClass& c = cls(im, job);
  auto it = c.instances.find(name);
  EXPECT_NE(it, c.instances.end()) << "no instance '" << name << "' of " << job;
  return it == c.instances.end() ? none : it->second;
}

EventExpr parsed(const std::string& text) {
  EventExpr e;
  std::string error;
  EXPECT_TRUE(parseEventExpr(text, e, error)) << text << ": " << error;
  return e;
}

// Properties every imported model has, whatever the input.
void checkInvariants(const UpstartImport& im) {
  const Model& m = im.model;
  uint64_t maxId = 0;
  for (const Event& e : m.events) {
    EXPECT_GT(e.id, maxId) << "event ids in queue order";
    maxId = e.id;
    uint32_t links = 0;
    for (auto& [n, c] : m.classes)
      for (auto& [i, in] : c.instances)
        for (const Blocked& b : in.blocking) links += b.kind == Blocked::Kind::Event && b.eventId == e.id;
    EXPECT_EQ(e.blockers, links) << "event " << e.name << ": blockers are the job links";
    EXPECT_NE(e.progress, EventProgress::Finished);
  }
  EXPECT_GT(m.nextEventId, maxId);
  for (auto& [name, c] : m.classes) {
    ASSERT_TRUE(c.def) << name;
    EXPECT_EQ(c.def->name, name);
    EXPECT_EQ(c.def->contentHash, "upstart:" + name);
    EventExpr pristine = c.def->startOn;
    eventExprReset(pristine);
    EXPECT_EQ(pristine, c.def->startOn) << name << ": the definition carries no match state";
    for (auto& [iname, in] : c.instances) {
      EXPECT_EQ(in.name, iname);
      EXPECT_EQ(in.def, c.def) << name << ": instances share their class's definition";
      for (const ProcessSlot& slot : in.procs) {
        EXPECT_EQ(slot.startTime, 0u) << "identity unknown";
        if (slot.spawnValid) {
          EXPECT_NE(std::find(im.adoptedFds.begin(), im.adoptedFds.end(), slot.statusFd), im.adoptedFds.end());
        }
      }
    }
  }
  EXPECT_TRUE(m.connections.empty());
  EXPECT_TRUE(m.logPipes.empty());
  EXPECT_EQ(m.listenFd, -1);
}

// The imported model is something baton can snapshot: it survives the state codec unchanged.
void checkCodecRoundTrip(const Model& model) {
  capnp::MallocMessageBuilder message;
  encodeModel(model, message.initRoot<state::Model>());
  Model back;
  std::string error;
  ASSERT_TRUE(decodeModel(message.getRoot<state::Model>().asReader(), back, error)) << error;
  EXPECT_TRUE(back == model);
}

// ---------------------------------------------------------------------------------------------
// The shared state files

struct Shape {
  size_t classes, instances, events;
};
// REFERENCE 3.3's shape table, checked against the files: the session file has 193 classes and
// 33 jobs of which the chroot session /mnt holds 97 classes and 1 job (skipped).
const std::map<std::string, Shape> kShapes = {
    {"upstart-1.6.json", {1, 1, 1}},   {"upstart-1.8.json", {48, 54, 2}},
    {"upstart-1.9.json", {90, 37, 1}}, {"upstart-1.13.json", {118, 51, 3}},
    {"upstart-session.json", {96, 32, 7}}};

TEST(UpstartImportShared, EveryFileImportsWithItsShape) {
  SKIP_WITHOUT_SHARED_STATES();
  size_t files = 0;
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(kStatesDir))
    if (entry.path().extension() == ".json") paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  for (const fs::path& path : paths) {
    SCOPED_TRACE(path.filename().string());
    SharedState st(path.filename().string());
    UpstartImport im = importOk(st.json);
    checkInvariants(im);
    checkCodecRoundTrip(im.model);
    ++files;
    auto shape = kShapes.find(path.filename().string());
    if (shape == kShapes.end()) continue;  // a file added later: importing is the check
    EXPECT_EQ(im.model.classes.size(), shape->second.classes);
    EXPECT_EQ(instanceCount(im.model), shape->second.instances);
    EXPECT_EQ(im.model.events.size(), shape->second.events);
    EXPECT_EQ(im.model.nextEventId, shape->second.events + 1);
  }
  EXPECT_GE(files, kShapes.size()) << "state files missing from " << kStatesDir;
}

TEST(UpstartImportShared, ImportIsDeterministic) {
  SKIP_WITHOUT_SHARED_STATES();
  for (const auto& [file, shape] : kShapes) {
    SCOPED_TRACE(file);
    SharedState st(file);
    UpstartImport a = importOk(st.json), b = importOk(st.json);
    EXPECT_TRUE(a.model == b.model);
    EXPECT_EQ(a.warnings, b.warnings);
    EXPECT_EQ(a.adoptedFds, b.adoptedFds);
    EXPECT_EQ(a.unadoptedFds, b.unadoptedFds);
    // With the real clock as well: the same result once the machine has been up longer than the
    // latest respawn_time in these files (1345 s; an earlier one is clamped to "now").
    UpstartImport c = importOk(st.json, UpstartImportOptions{});
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > 1400) {
      EXPECT_TRUE(a.model == c.model) << file;
    }
  }
}

TEST(UpstartImportShared, Upstart16ChristmasBlocksBar) {
  SKIP_WITHOUT_SHARED_STATES();
  SharedState st("upstart-1.6.json");
  UpstartImport im = importOk(st.json);
  EXPECT_TRUE(im.warnings.empty()) << allWarnings(im);
  ASSERT_EQ(im.model.events.size(), 1u);
  const Event& christmas = im.model.events[0];
  EXPECT_EQ(christmas.id, 1u);
  EXPECT_EQ(christmas.name, "Christmas");
  EXPECT_EQ(christmas.progress, EventProgress::Pending);
  EXPECT_EQ(christmas.blockers, 0u);

  const JobClass& bar = cls(im, "bar");
  const JobDef& def = *bar.def;
  EXPECT_TRUE(def.startOn.empty());
  EXPECT_TRUE(def.stopOn.empty());
  EXPECT_EQ(def.path, "");  // 1.6 has no conf_sources
  for (const ProcessDef& p : def.process) EXPECT_FALSE(p.present());
  EXPECT_EQ(def.killTimeoutMs, 5000);
  EXPECT_EQ(def.killSignal, 15);
  EXPECT_EQ(def.reloadSignal, 1);  // absent before 1.9: SIGHUP
  EXPECT_EQ(def.umask, 022u);
  EXPECT_EQ(def.console, ConsoleType::Log);
  EXPECT_FALSE(def.hasNice);  // 1.6 wrote 0 for "no nice"
  EXPECT_FALSE(def.hasOomScore);
  EXPECT_TRUE(def.limits.empty());
  const Instance& job = inst(im, "bar");
  EXPECT_EQ(job.goal, Goal::Stop);
  EXPECT_EQ(job.state, JobState::Waiting);
  EXPECT_EQ(job.blocker, christmas.id) << "blocker index 0 and Christmas's BLOCKED_JOB (no session key)";
  for (const ProcessSlot& s : job.procs) EXPECT_EQ(s.pid, 0);
}

TEST(UpstartImportShared, Upstart18StringConditionsAreParsed) {
  SKIP_WITHOUT_SHARED_STATES();
  SharedState st("upstart-1.8.json");
  UpstartImport im = importOk(st.json);
  EXPECT_EQ(cls(im, "tty4").def->startOn,
            parsed("(runlevel [23] and ((not-container or container CONTAINER=lxc) or container CONTAINER=lxc-libvirt))"));
  EXPECT_EQ(cls(im, "tty4").def->stopOn, parsed("runlevel [!23]"));
  EXPECT_EQ(cls(im, "statd").def->startOn,
            parsed("started portmap ON_BOOT= or (local-filesystems and started portmap ON_BOOT=y)"));
  EXPECT_TRUE(cls(im, "mountall.sh").def->stopOn.empty());
  EXPECT_EQ(cls(im, "tty4").startOn, cls(im, "tty4").def->startOn) << "no match state in 1.8";
  // Instances: string stop_on copies, names, pids from 5-slot arrays.
  const JobClass& ni = cls(im, "network-interface");
  EXPECT_EQ(ni.instances.size(), 3u);
  EXPECT_EQ(inst(im, "network-interface", "eth0").stopOn, parsed("net-device-removed INTERFACE=$INTERFACE"));
  EXPECT_EQ(cls(im, "network-interface-security").instances.size(), 5u);
  EXPECT_EQ(inst(im, "network-interface-security", "network-interface/eth0").state, JobState::Running);
  EXPECT_EQ(inst(im, "udev").procs[0].pid, 28649);
  EXPECT_EQ(cls(im, "udev").def->expect, ExpectType::Fork);
  EXPECT_EQ(inst(im, "avahi-daemon").traceForks, 2u);
  EXPECT_EQ(cls(im, "avahi-daemon").def->expect, ExpectType::Daemon);
  // respawn_time is CLOCK_MONOTONIC seconds: carried over as ns.
  EXPECT_EQ(inst(im, "upstart-socket-bridge").respawnWindowStartNs, 535 * kNs);
  EXPECT_EQ(inst(im, "upstart-socket-bridge").respawnCount, 1u);
  EXPECT_EQ(cls(im, "lightdm").def->console, ConsoleType::Log);
  // Warnings: 3 live logs, 2 events whose blockers were condition holds.
  EXPECT_EQ(im.warnings.size(), 5u) << allWarnings(im);
  EXPECT_EQ(countWarnings(im, "log pty"), 3u);
  EXPECT_EQ(countWarnings(im, "Upstart counted"), 2u);
  EXPECT_EQ(im.unadoptedFds.size(), 3u);
  EXPECT_TRUE(im.adoptedFds.empty());
}

TEST(UpstartImportShared, Upstart19ReloadSignalAndConfPaths) {
  SKIP_WITHOUT_SHARED_STATES();
  SharedState st("upstart-1.9.json");
  UpstartImport im = importOk(st.json);
  for (auto& [name, c] : im.model.classes)
    EXPECT_EQ(c.def->reloadSignal, name == "whoopsie" ? 10 : 1) << name;
  EXPECT_EQ(cls(im, "whoopsie").def->path, "/etc/init/whoopsie.conf");
  EXPECT_EQ(cls(im, "whoopsie").def->env, std::vector<std::string>{"CRASH_DB_URL=https://daisy.ubuntu.com"});
  EXPECT_TRUE(cls(im, "whoopsie").def->process[int(ProcessType::PreStart)].script);
  const std::vector<RLimitDef> nofile = {{7 /* RLIMIT_NOFILE */, 16384, 16384}};
  EXPECT_EQ(cls(im, "systemd-logind").def->limits, nofile);
  EXPECT_EQ(std::count_if(im.model.classes.begin(), im.model.classes.end(), [](auto& kv) { return kv.second.deleted; }),
            34);
  // console: partially matched `stopped rc RUNLEVEL=[2345]` holds event 0.
  const JobClass& console = cls(im, "console");
  ASSERT_EQ(console.startOn.nodes.size(), 3u);
  EXPECT_TRUE(console.startOn.nodes[0].matched);
  EXPECT_EQ(console.startOn.nodes[0].eventId, 1u);
  EXPECT_EQ(console.startOn.nodes[2].left, 0);
  EXPECT_EQ(console.startOn.nodes[2].right, 1);
  EXPECT_EQ(im.warnings.size(), 2u) << allWarnings(im);
  EXPECT_EQ(countWarnings(im, "systemd-logind"), 1u);
  EXPECT_EQ(countWarnings(im, "events[0] (stopped): Upstart counted 1 blockers, 0 job links"), 1u);
}

TEST(UpstartImportShared, Upstart113InFlightSpawnAndCgroups) {
  SKIP_WITHOUT_SHARED_STATES();
  SharedState st("upstart-1.13.json");
  ASSERT_GE(st.pipe.r, 0);
  UpstartImport im = importOk(st.json);

  const Instance& slow = inst(im, "upstart-force-slow-child");
  EXPECT_EQ(slow.goal, Goal::Start);
  EXPECT_EQ(slow.state, JobState::Spawned);
  const ProcessSlot& main = slow.procs[int(ProcessType::Main)];
  EXPECT_EQ(main.pid, 2403);
  EXPECT_TRUE(main.spawnValid);
  EXPECT_EQ(main.statusFd, st.pipe.r);
  EXPECT_EQ(main.scriptFd, -1);
  EXPECT_EQ(main.pendingScript, "");
  EXPECT_FALSE(main.earlyExit);
  EXPECT_EQ(im.adoptedFds, std::vector<int32_t>{st.pipe.r});
  for (auto& [name, c] : im.model.classes)
    for (auto& [i, in] : c.instances)
      for (int t = 0; t < kProcessTypes; ++t)
        if (name != "upstart-force-slow-child" || t != 0) {
          EXPECT_FALSE(in.procs[t].spawnValid) << name;
        }
  EXPECT_EQ(cls(im, "upstart-force-slow-child").def->cgroups,
            (std::vector<CgroupDef>{{"memory", "james-group1", {{"limit_in_bytes", "52428800"}}}}));

  EXPECT_EQ(cls(im, "cgroup-job1").def->cgroups,
            (std::vector<CgroupDef>{{"cpuset", "db", {{"cpus", "0-1"}}},
                                    {"memory", "db", {{"limit_in_bytes", "104857600"}}},
                                    {"blkio", "db", {{"throttle.write_bps_device", "8:16 1048576"}}}}));
  EXPECT_EQ(cls(im, "cgroup-job2").def->cgroups,
            (std::vector<CgroupDef>{{"cpuset", "db/$UPSTART_CGROUP", {{"cpus", "1"}}},
                                    {"memory", "db/$UPSTART_CGROUP", {{"limit_in_bytes", "52428800"}}},
                                    {"blkio", "db/$UPSTART_CGROUP", {{"throttle.write_bps_device", "8:17 1048576"}}}}));
  EXPECT_EQ(cls(im, "cgroup-job3").def->cgroups,
            (std::vector<CgroupDef>{{"cpuset", "db", {}}, {"memory", "db", {}}}));
  EXPECT_EQ(cls(im, "cgroup-job4").def->cgroups,
            (std::vector<CgroupDef>{{"cpuset", "db/$UPSTART_CGROUP", {{"cpus", "2"}}}}));
  EXPECT_TRUE(cls(im, "whoopsie").def->cgroups.empty());
  EXPECT_EQ(cls(im, "whoopsie").def->reloadSignal, 1);
  EXPECT_EQ(inst(im, "cgroup-procenv").procs[0].pid, 728);

  // tty1 opened its respawn window at 185 s after boot.
  EXPECT_EQ(inst(im, "tty1").respawnWindowStartNs, 185 * kNs);
  EXPECT_EQ(inst(im, "tty1").respawnCount, 1u);
  // cups: `runlevel [2345]` matched (event index 1), the OR above it true, the AND not yet.
  const JobClass& cups = cls(im, "cups");
  ASSERT_EQ(cups.startOn.nodes.size(), 5u);
  EXPECT_EQ(cups.startOn.nodes[2].eventId, 2u);
  EXPECT_TRUE(cups.startOn.nodes[3].matched);
  EXPECT_FALSE(cups.startOn.nodes[4].matched);
  EXPECT_EQ(cups.def->startOn, parsed("filesystem and (started dbus or runlevel [2345])"));
  EXPECT_TRUE(cups.def->startOn.nodes[2].eventId == 0 && !cups.def->startOn.nodes[3].matched);

  EXPECT_EQ(countWarnings(im, "job_environment"), 1u);
  EXPECT_EQ(countWarnings(im, "cgroup_manager_address"), 1u);
  EXPECT_EQ(countWarnings(im, "log pty"), 6u);
  EXPECT_EQ(countWarnings(im, "Upstart counted"), 3u);
  EXPECT_EQ(im.warnings.size(), 11u) << allWarnings(im);
  EXPECT_EQ(im.unadoptedFds.size(), 8u);  // 6 pty masters, 2 open log files
}

TEST(UpstartImportShared, SessionFileSkipsTheChrootSession) {
  SKIP_WITHOUT_SHARED_STATES();
  SharedState st("upstart-session.json");
  UpstartImport im = importOk(st.json);
  EXPECT_EQ(countWarnings(im, "sessions[0] (chroot /mnt): 97 job classes (1 instances) skipped"), 1u)
      << allWarnings(im);
  // tty1 exists in the host and in the chroot: the host's is imported, with the host's path.
  EXPECT_EQ(cls(im, "tty1").def->path, "/etc/init/tty1.conf");
  EXPECT_EQ(cls(im, "whoopsie").def->path, "/etc/init/whoopsie.conf");
  // plymouth-ready (startup) holds the startup event: the one link Upstart counted for it.
  const Instance& pr = inst(im, "plymouth-ready", "startup");
  EXPECT_EQ(pr.blocking, (std::vector<Blocked>{{Blocked::Kind::Event, 1, {}}}));
  EXPECT_EQ(im.model.events[0].name, "startup");
  EXPECT_EQ(im.model.events[0].blockers, 1u);
  EXPECT_EQ(countWarnings(im, "events[0]"), 0u);
  EXPECT_EQ(countWarnings(im, "Upstart counted"), 6u);
  // Chroot jobs' pids are nowhere in the model.
  for (auto& [name, c] : im.model.classes)
    for (auto& [i, in] : c.instances) EXPECT_EQ(in.def->path.rfind("/mnt", 0), std::string::npos) << name;
}

// ---------------------------------------------------------------------------------------------
// Our fixtures

TEST(UpstartImportFixture, FiveSlotArraysAndStringConditions) {
  UpstartImport im = importOk(readFile(kFixtureDir / "five-slot-strings.json"));
  checkInvariants(im);
  checkCodecRoundTrip(im.model);
  EXPECT_EQ(im.model.classes.size(), 5u);

  const JobDef& svc = *cls(im, "svc").def;
  EXPECT_EQ(svc.description, "a service");
  EXPECT_EQ(svc.author, "me");
  EXPECT_EQ(svc.version, "1.0");
  EXPECT_EQ(svc.usage, "svc [ARG=x]");
  EXPECT_EQ(svc.env, (std::vector<std::string>{"A=1", "B=two words"}));
  EXPECT_EQ(svc.exportVars, std::vector<std::string>{"A"});
  EXPECT_EQ(svc.emits, std::vector<std::string>{"svc-ready"});
  EXPECT_EQ(svc.startOn, parsed("runlevel [2345] and (filesystem or net-device-up IFACE=lo)"));
  EXPECT_EQ(svc.stopOn, parsed("runlevel [!2345]"));
  EXPECT_EQ(svc.process[0], (ProcessDef{false, "/usr/sbin/svcd -f"}));
  EXPECT_EQ(svc.process[1], (ProcessDef{true, "mkdir -p /run/svc\n"}));
  EXPECT_FALSE(svc.process[2].present());
  EXPECT_EQ(svc.process[4], (ProcessDef{false, "rm -rf /run/svc"}));
  EXPECT_EQ(svc.expect, ExpectType::Fork);
  EXPECT_EQ(svc.killTimeoutMs, 30000);
  EXPECT_EQ(svc.killSignal, 2);
  EXPECT_EQ(svc.reloadSignal, 1);
  EXPECT_TRUE(svc.respawn);
  EXPECT_EQ(svc.respawnLimit, 3u);
  EXPECT_EQ(svc.respawnIntervalSec, 12u);
  EXPECT_EQ(svc.normalExitCodes, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(svc.normalExitSignals, std::vector<int32_t>{15});  // 3840 = SIGTERM << 8
  EXPECT_EQ(svc.console, ConsoleType::Output);
  EXPECT_EQ(svc.umask, 027u);
  EXPECT_TRUE(svc.hasNice);
  EXPECT_EQ(svc.nice, 5);
  EXPECT_TRUE(svc.hasOomScore);
  EXPECT_EQ(svc.oomScore, -500);
  EXPECT_EQ(svc.limits, (std::vector<RLimitDef>{{4, 0, UINT64_MAX}, {7, 1024, 4096}, {9, UINT64_MAX, UINT64_MAX}}));
  EXPECT_EQ(svc.chdir, "/var/lib/svc");
  EXPECT_EQ(svc.setuid, "svc");
  EXPECT_EQ(svc.setgid, "svc");
  EXPECT_EQ(svc.chroot, "");
  EXPECT_EQ(svc.contentHash, "upstart:svc");
  EXPECT_TRUE(svc.unsupported.empty());

  const Instance& s = inst(im, "svc");
  EXPECT_EQ(s.goal, Goal::Start);
  EXPECT_EQ(s.state, JobState::Starting);
  EXPECT_EQ(s.env, (std::vector<std::string>{"PATH=/bin", "A=1", "RUNLEVEL=2"}));
  EXPECT_EQ(s.stopOn, svc.stopOn) << "no stop_on of its own: the class's";

  const JobDef& net = *cls(im, "net").def;
  EXPECT_EQ(net.instance, "$IFACE");
  EXPECT_EQ(net.description, "");  // null
  EXPECT_FALSE(net.hasNice);
  const Instance& eth0 = inst(im, "net", "eth0");
  EXPECT_EQ(eth0.stopOn, parsed("net-device-down IFACE=eth0"));
  EXPECT_EQ(eth0.procs[0].pid, 1234);
  EXPECT_EQ(eth0.respawnWindowStartNs, 185 * kNs);
  EXPECT_EQ(eth0.respawnCount, 2u);
  EXPECT_EQ(eth0.traceForks, 1u);
  EXPECT_EQ(countWarnings(im, "(net (eth0)) main process: its output goes to Upstart's log pty (master fd 40) for "
                              "/var/log/upstart/net-eth0.log"),
            1u);
  EXPECT_EQ(countWarnings(im, "2 bytes Upstart had not written"), 1u);
  EXPECT_EQ(im.unadoptedFds.size(), 2u);
  EXPECT_EQ(im.unadoptedFds[0].fd, 40);
  EXPECT_EQ(im.unadoptedFds[1].fd, 41);

  // Failed by the respawn limit (PROCESS_INVALID) and by a signal (SIGSEGV << 8).
  const Instance& flaky = inst(im, "flaky");
  EXPECT_TRUE(flaky.failed);
  EXPECT_EQ(flaky.failReason, "respawn limit reached");
  EXPECT_EQ(flaky.exitStatus, 0);
  EXPECT_EQ(flaky.respawnCount, 11u);
  EXPECT_EQ(flaky.respawnWindowStartNs, 99990 * kNs);
  const Instance& crashy = inst(im, "crashy");
  EXPECT_TRUE(crashy.failed);
  EXPECT_EQ(crashy.failedProcess, ProcessType::Main);
  EXPECT_TRUE(WIFSIGNALED(crashy.exitStatus));
  EXPECT_EQ(WTERMSIG(crashy.exitStatus), 11);
  EXPECT_EQ(crashy.failReason, "main process killed by signal 11");

  // Kill timer: due is CLOCK_MONOTONIC seconds, kept as such.
  const Instance& killer = inst(im, "killer");
  EXPECT_EQ(killer.state, JobState::Killed);
  EXPECT_EQ(killer.killDeadlineNs, 99998 * kNs);
  EXPECT_EQ(killer.killProcess, ProcessType::Main);

  EXPECT_EQ(im.warnings.size(), 2u) << allWarnings(im);
}

TEST(UpstartImportFixture, EventBlockingLinksBothWays) {
  UpstartImport im = importOk(readFile(kFixtureDir / "five-slot-strings.json"));
  // Event -> job: `starting` (index 0) lists svc as BLOCKED_JOB, svc's blocker is index 0.
  EXPECT_EQ(inst(im, "svc").blocker, 1u);
  // Job -> event: svc and net (eth0) hold `runlevel` (index 1); Upstart counted one more (a
  // condition's hold), which is reported and not kept.
  EXPECT_EQ(inst(im, "svc").blocking, (std::vector<Blocked>{{Blocked::Kind::Event, 2, {}}}));
  EXPECT_EQ(inst(im, "net", "eth0").blocking, (std::vector<Blocked>{{Blocked::Kind::Event, 2, {}}}));
  EXPECT_EQ(im.model.events[0].blockers, 0u);
  EXPECT_EQ(im.model.events[1].blockers, 2u);
  EXPECT_EQ(countWarnings(im, "events[1] (runlevel): Upstart counted 3 blockers, 2 job links imported"), 1u);

  // The event's BLOCKED_JOB alone is enough to make it the job's blocker.
  const std::string onlyEventSide = R"({"events":[{"name":"starting","progress":"EVENT_HANDLING",
      "blocking":[{"type":"BLOCKED_JOB","data":{"class":"a","name":"x","session":0}}]}],
    "job_classes":[{"name":"a","instance":"$N","jobs":[
      {"name":"x","goal":"JOB_START","state":"JOB_STARTING","pid":[0,0,0,0,0,0]}]}]})";
  UpstartImport one = importOk(onlyEventSide);
  EXPECT_EQ(inst(one, "a", "x").blocker, 1u);
  EXPECT_TRUE(one.warnings.empty()) << allWarnings(one);

  // A link to a job that is not there is ignored with a warning (Upstart ignores it too).
  const std::string dangling = R"({"events":[{"name":"starting","progress":"EVENT_HANDLING",
      "blocking":[{"type":"BLOCKED_JOB","data":{"class":"gone","name":""}}]}],"job_classes":[]})";
  UpstartImport d = importOk(dangling);
  EXPECT_EQ(countWarnings(d, "events[0].blocking[0] (starting): blocked job gone instance '' not found"), 1u)
      << allWarnings(d);

  // The two sides disagreeing cannot be trusted.
  const std::string conflict = R"({"events":[{"name":"e0"},{"name":"e1",
      "blocking":[{"type":"BLOCKED_JOB","data":{"class":"a","name":""}}]}],
    "job_classes":[{"name":"a","jobs":[{"name":"","goal":"JOB_START","state":"JOB_STARTING",
      "pid":[0,0,0,0,0],"blocker":0}]}]})";
  EXPECT_EQ(refusal(conflict),
            "events[1].blocking[0]: job a instance '' is blocked by event 0 according to its own blocker");
}

TEST(UpstartImportFixture, SixSlotArraysRpnAndEveryWarning) {
  UpstartImport im = importOk(readFile(kFixtureDir / "six-slot-rpn.json"));
  checkInvariants(im);
  checkCodecRoundTrip(im.model);
  // Events: index 2 belongs to the chroot session and is dropped; ids keep the indices.
  ASSERT_EQ(im.model.events.size(), 3u);
  EXPECT_EQ(im.model.events[0].id, 1u);
  EXPECT_EQ(im.model.events[1].id, 2u);
  EXPECT_EQ(im.model.events[2].id, 4u);
  EXPECT_EQ(im.model.nextEventId, 5u);
  EXPECT_EQ(im.model.events[1].progress, EventProgress::Pending);
  EXPECT_EQ(im.model.events[1].blockers, 1u);  // web holds `socket`
  EXPECT_EQ(im.model.events[2].progress, EventProgress::Handling);  // was EVENT_FINISHED
  EXPECT_TRUE(im.model.events[2].failed);

  // web: RPN conditions with match state, 6-slot process array, in-flight spawn with a script.
  const JobClass& web = cls(im, "web");
  EXPECT_EQ(web.def->path, "/etc/init/web.conf");
  EXPECT_EQ(web.def->startOn, parsed("runlevel [2345] and started db"));
  ASSERT_EQ(web.startOn.nodes.size(), 3u);
  EXPECT_TRUE(web.startOn.nodes[0].matched);
  EXPECT_EQ(web.startOn.nodes[0].eventId, 1u);
  EXPECT_EQ(web.startOn.nodes[0].args, std::vector<std::string>{"[2345]"});
  EXPECT_FALSE(web.startOn.nodes[1].matched);
  EXPECT_EQ(web.startOn.nodes[2].type, EventNode::Type::And);
  EXPECT_EQ(web.def->process[0], (ProcessDef{true, "exec /usr/bin/web\n"}));
  EXPECT_EQ(web.def->expect, ExpectType::Stop);
  EXPECT_EQ(web.def->reloadSignal, 10);
  EXPECT_FALSE(web.def->hasNice);  // -21: JOB_NICE_INVALID
  EXPECT_EQ(web.def->unsupported,
            (std::vector<std::string>{"/etc/init/web.conf: stanza 'apparmor load' is not supported",
                                      "/etc/init/web.conf: stanza 'debug' is not supported",
                                      "/etc/init/web.conf: stanza 'apparmor switch' is not supported"}));
  EXPECT_EQ(web.def->cgroups, (std::vector<CgroupDef>{{"cpu", "$UPSTART_CGROUP", {{"shares", "512"}}},
                                                       {"cpu", "web/extra", {}},
                                                       {"memory", "web", {{"limit_in_bytes", "100M"}}}}));
  const Instance& w = inst(im, "web");
  EXPECT_EQ(w.state, JobState::Spawned);
  const ProcessSlot& main = w.procs[0];
  EXPECT_EQ(main.pid, 4321);
  EXPECT_TRUE(main.spawnValid);
  EXPECT_EQ(main.statusFd, 60);
  EXPECT_EQ(main.scriptFd, 61);
  EXPECT_EQ(main.pendingScript, "echo hi\n");
  EXPECT_TRUE(main.earlyExit) << "status 1 was saved before the pipe answered";
  EXPECT_TRUE(WIFEXITED(main.earlyExitStatus));
  EXPECT_EQ(WEXITSTATUS(main.earlyExitStatus), 1);
  EXPECT_EQ(w.blocking, (std::vector<Blocked>{{Blocked::Kind::Event, 2, {}}}));
  EXPECT_EQ(im.adoptedFds, (std::vector<int32_t>{60, 61}));

  // guard: the security state becomes pre-starting; its apparmor_parser is not tracked.
  const Instance& g = inst(im, "guard");
  EXPECT_EQ(g.state, JobState::PreStarting);
  for (const ProcessSlot& slot : g.procs) {
    EXPECT_EQ(slot.pid, 0);
    EXPECT_FALSE(slot.spawnValid);
  }

  // sweeper: a condition node matched by the dropped chroot event keeps no event id; failure
  // of pre-start; kill timer outside `killed` dropped; cgroups without cgmanager_wait ignored.
  const JobClass& sw = cls(im, "sweeper");
  EXPECT_TRUE(sw.startOn.nodes[0].matched);
  EXPECT_EQ(sw.startOn.nodes[0].eventId, 0u);
  EXPECT_TRUE(sw.def->cgroups.empty());
  const Instance& swi = inst(im, "sweeper");
  EXPECT_TRUE(swi.failed);
  EXPECT_EQ(swi.failedProcess, ProcessType::PreStart);
  EXPECT_EQ(swi.failReason, "pre-start process exited with status 1");
  EXPECT_EQ(swi.killDeadlineNs, 0);
  EXPECT_FALSE(swi.procs[3].spawnValid);

  EXPECT_EQ(im.unadoptedFds, (std::vector<UpstartFd>{
                                 {33, "fd of event socket (events[1])"},
                                 {71, "status pipe of the security process of guard (job_classes[1].jobs[0].process_data[5])"},
                                 {50, "event fd held by sweeper (job_classes[2].jobs[0].fds[0])"},
                                 {70, "status pipe of the pre-stop process of sweeper (job_classes[2].jobs[0].process_data[3])"},
                             }));
  const std::vector<std::string> expected = {
      "events[1] (socket): carries fd 33",
      "events[2] (chroot-event): event of chroot session 1 dropped",
      "events[3] (stopping): finished but not yet cleaned up by Upstart: imported as handling",
      "job_environment: the global job environment (PATH, FOO) is not imported",
      "control_bus_address 'unix:abstract=/tmp/dbus-test' ignored",
      "cgroup_manager_address 'unix:path=/sys/fs/cgroup/cgmanager/sock' ignored",
      "job_classes[0].process[5] (web): security process (apparmor load) '/etc/apparmor.d/web' is not supported",
      "job_classes[0].debug (web): stanza 'debug' is not supported",
      "job_classes[0].apparmor_switch (web): 'apparmor switch web-profile' is not supported",
      "job_classes[0].jobs[0].blocking[1] (web): a waiting D-Bus call (initctl) cannot be taken over",
      "job_classes[1].process[5] (guard): security process (apparmor load)",
      "job_classes[1].jobs[0] (guard): in Upstart's security state (apparmor load, not supported): imported as "
      "pre-starting",
      "job_classes[1].jobs[0] (guard): security process 777 (apparmor_parser) is not tracked",
      "job_classes[1].jobs[0] (guard): in-flight spawn of its security process is not supported",
      "job_classes[1].jobs[0] (guard): in transient state pre-starting: resume it",
      "job_classes[2].cgroups (sweeper): present without cgmanager_wait: ignored",
      "job_classes[2].jobs[0] (sweeper): start_env (the environment of a pending restart) is not imported",
      "job_classes[2].jobs[0] (sweeper): holds fd 50 passed by an event",
      "job_classes[2].jobs[0] (sweeper): kill timer in state running dropped",
      "sessions[0] (chroot /srv/chroot): 1 job classes (1 instances) skipped",
      "events[3].blocking[0] (stopping): a waiting D-Bus call (initctl emit) cannot be taken over",
      "events[0] (runlevel): Upstart counted 1 blockers, 0 job links imported",
  };
  ASSERT_EQ(im.warnings.size(), expected.size()) << allWarnings(im);
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(im.warnings[i].rfind(expected[i], 0), 0u) << "warning " << i << ": " << im.warnings[i];
}

TEST(UpstartImportFixture, MissingKeysTakeUpstartsDefaults) {
  UpstartImport im = importOk(readFile(kFixtureDir / "missing-keys.json"));
  checkInvariants(im);
  EXPECT_TRUE(im.warnings.empty()) << allWarnings(im);
  EXPECT_EQ(im.model.classes.size(), 2u);
  EXPECT_EQ(*cls(im, "bare").def, ([] {
    JobDef d;
    d.name = "bare";
    d.contentHash = "upstart:bare";
    return d;
  })()) << "a class with only a name is JobDef's defaults, which are Upstart's";
  EXPECT_TRUE(cls(im, "empty").instances.empty());
  const Instance& b = inst(im, "bare");
  EXPECT_EQ(b.state, JobState::Running);
  EXPECT_EQ(b.procs[0].pid, 42);
  EXPECT_EQ(b.blocker, 0u);
  EXPECT_EQ(b.killProcess, ProcessType::Main);
  EXPECT_EQ(b.traceState, TraceState::None);
  EXPECT_FALSE(b.failed);
  EXPECT_EQ(im.model.nextEventId, 1u);
}

TEST(UpstartImportFixture, UnknownEnumIsRefused) {
  UpstartImport out;
  std::string error;
  EXPECT_FALSE(importUpstartState(readFile(kFixtureDir / "refused-unknown-state.json"), kOptions, out, error));
  EXPECT_EQ(error, "job_classes[1].jobs[0].state: unknown state 'JOB_FOO'");
}

TEST(UpstartImportFixture, BadEventIndexIsRefused) {
  UpstartImport out;
  std::string error;
  EXPECT_FALSE(importUpstartState(readFile(kFixtureDir / "refused-bad-event-index.json"), kOptions, out, error));
  EXPECT_EQ(error, "job_classes[0].jobs[0].blocker: event index 5 out of range (1 events)");
}

TEST(UpstartImportFixture, ImpossibleTimesAreClamped) {
  const std::string json = R"({"events":[],"job_classes":[{"name":"a","kill_timeout":5,"jobs":[
      {"name":"","goal":"JOB_STOP","state":"JOB_KILLED","pid":[7,0,0,0,0],
       "kill_timer":{"timeout":5,"due":1700000000},"respawn_time":1700000000,"respawn_count":1}]}]})";
  UpstartImport im = importOk(json);
  const Instance& a = inst(im, "a");
  EXPECT_EQ(a.killDeadlineNs, kOptions.monotonicNowNs + 5 * kNs);
  EXPECT_EQ(a.respawnWindowStartNs, kOptions.monotonicNowNs);
  EXPECT_EQ(countWarnings(im, "clamped"), 2u) << allWarnings(im);
}

// ---------------------------------------------------------------------------------------------
// Refusals

// A valid single-job state with `job` spliced in as the instance and `cls` as extra class keys.
std::string withJob(const std::string& job, const std::string& clsKeys = "", const std::string& events = "[]") {
  return R"({"events":)" + events + R"(,"job_classes":[{"name":"a")" + clsKeys + R"(,"jobs":[)" + job + "]}]}";
}
const std::string kJob = R"({"name":"","goal":"JOB_START","state":"JOB_RUNNING","pid":[1,0,0,0,0,0])";

TEST(UpstartImportRefusal, UntrustworthyInputIsRefusedWithThePlace) {
  importOk(withJob(kJob + "}"));  // the base case imports
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not valid JSON: "},
      {"[1,2]", "state: expected an object, not an array"},
      {R"({"job_classes":[]})", "events: missing"},
      {R"({"events":[]})", "job_classes: missing"},
      {R"({"events":[],"job_classes":[{"name":7}]})", "job_classes[0].name: expected a string, not a number"},
      {R"({"events":[],"job_classes":[{"name":""}]})", "job_classes[0].name: empty job name"},
      {R"({"events":[],"job_classes":[{"name":"a"},{"name":"a"}]})", "job_classes[1].name: duplicate job class 'a'"},
      {withJob(kJob + "}," + kJob + "}"), "job_classes[0].jobs[1].name: duplicate instance ''"},
      {withJob(R"({"name":"","goal":"JOB_GO","state":"JOB_RUNNING","pid":[0,0,0,0,0]})"),
       "job_classes[0].jobs[0].goal: unknown goal 'JOB_GO'"},
      {withJob(R"({"name":"","goal":"JOB_START","state":"JOB_RUNNING","pid":[0,0,0,0]})"),
       "job_classes[0].jobs[0].pid: 4 entries (expected 5 or 6)"},
      {withJob(R"({"name":"","goal":"JOB_START","state":"JOB_RUNNING","pid":[0,0,0,0,0,0,0]})"),
       "job_classes[0].jobs[0].pid: 7 entries (expected 5 or 6)"},
      {withJob(R"({"name":"","goal":"JOB_START","state":"JOB_RUNNING","pid":[-5,0,0,0,0]})"),
       "job_classes[0].jobs[0].pid[0]: -5 is out of range 0..2147483647"},
      {withJob(R"({"name":"","goal":"JOB_START","state":"JOB_RUNNING","pid":[1.5,0,0,0,0]})"),
       "job_classes[0].jobs[0].pid[0]: expected an integer, not 1.5"},
      {withJob(R"({"name":"","goal":"JOB_START","state":"JOB_RUNNING"})"), "job_classes[0].jobs[0].pid: missing"},
      {withJob(kJob + R"(,"trace_state":"TRACE_LOST"})"), "job_classes[0].jobs[0].trace_state: unknown trace state"},
      {withJob(kJob + R"(,"kill_process":"PROCESS_MAGIC"})"), "job_classes[0].jobs[0].kill_process: unknown process type"},
      {withJob(kJob + R"(,"exit_status":-1})"), "job_classes[0].jobs[0].exit_status: -1 is neither an exit status"},
      {withJob(kJob + R"(,"exit_status":2817})"), "job_classes[0].jobs[0].exit_status: 2817 is neither"},
      {withJob(kJob + R"(,"blocker":0})"), "job_classes[0].jobs[0].blocker: event index 0 out of range (0 events)"},
      {withJob(kJob + R"(,"blocking":[{"type":"BLOCKED_EVENT","data":{"index":3}}]})", "", R"([{"name":"e"}])"),
       "job_classes[0].jobs[0].blocking[0].data.index: event index 3 out of range (1 events)"},
      {withJob(kJob + R"(,"blocking":[{"type":"BLOCKED_SOMETHING","data":{}}]})"),
       "job_classes[0].jobs[0].blocking[0].type: unknown blocked type 'BLOCKED_SOMETHING'"},
      {withJob(kJob + R"(,"process_data":[{"valid":1,"process":"PROCESS_PRE_START","job_process_fd":9,"status":0}]})"),
       "job_classes[0].jobs[0].process_data[0].process: process type does not match slot 0"},
      {withJob(kJob + R"(,"process_data":[{"valid":1,"process":"PROCESS_MAIN","job_process_fd":9}]})"),
       "job_classes[0].jobs[0].process_data[0].status: missing"},
      {withJob(kJob + R"(,"process_data":[{"valid":1,"process":"PROCESS_MAIN","job_process_fd":9,"status":0,
           "shell_fd":9}]})"),
       "job_classes[0].jobs[0].process_data[0].shell_fd: fd 9 is already used by another in-flight spawn"},
      {withJob(kJob + R"(,"process_data":[null,null,null,null,null,null,null]})"),
       "job_classes[0].jobs[0].process_data: 7 process_data slots (at most 6)"},
      {withJob(kJob + R"(,"log":[{"path":null},{"path":null},{"path":null},{"path":null},{"path":null},{"path":null},
           {"path":null}]})"),
       "job_classes[0].jobs[0].log: 7 log slots (at most 6)"},
      {withJob(kJob + "}", R"(,"expect":"EXPECT_MIRACLE")"), "job_classes[0].expect: unknown expect type 'EXPECT_MIRACLE'"},
      {withJob(kJob + "}", R"(,"console":"CONSOLE_TTY")"), "job_classes[0].console: unknown console type"},
      {withJob(kJob + "}", R"(,"kill_signal":0)"), "job_classes[0].kill_signal: 0 is out of range 1..64"},
      {withJob(kJob + "}", R"(,"umask":512)"), "job_classes[0].umask: 512 is out of range 0..511"},
      {withJob(kJob + "}", R"(,"nice":-22)"), "job_classes[0].nice: -22 is out of range -21..19"},
      {withJob(kJob + "}", R"(,"normalexit":[3841])"), "job_classes[0].normalexit[0]: 3841 is neither"},
      {withJob(kJob + "}", R"(,"process":[{},{},{},{},{},{},{}])"),
       "job_classes[0].process: 7 process slots (at most 6)"},
      {withJob(kJob + "}", R"(,"limits":[{"rlim_cur":-2,"rlim_max":0}])"),
       "job_classes[0].limits[0].rlim_cur: -2 is not a resource limit"},
      {withJob(kJob + "}", R"(,"start_on":"(a and")"), "job_classes[0].start_on: cannot parse '(a and': "},
      {withJob(kJob + "}", R"(,"start_on":42)"), "job_classes[0].start_on: expected an array, not a number"},
      {withJob(kJob + "}", R"(,"start_on":[{"type":"EVENT_AND","value":0}])"),
       "job_classes[0].start_on[0]: operator without two operands"},
      {withJob(kJob + "}", R"(,"start_on":[{"type":"EVENT_MATCH","name":"a"},{"type":"EVENT_MATCH","name":"b"}])"),
       "job_classes[0].start_on: does not form a single expression (2 roots)"},
      {withJob(kJob + "}", R"(,"start_on":[{"type":"EVENT_XOR"}])"),
       "job_classes[0].start_on[0].type: unknown event operator 'EVENT_XOR'"},
      {withJob(kJob + "}", R"(,"start_on":[{"type":"EVENT_MATCH","name":"a","event":1}])"),
       "job_classes[0].start_on[0].event: event index 1 out of range (0 events)"},
      {withJob(kJob + "}", R"(,"start_on":[{"type":"EVENT_MATCH","name":"runlevel","env":["[!2=345]"]}])"),
       "job_classes[0].start_on[0].env[0]: invalid variable name '[!2' in argument '[!2=345]'"},
      {withJob(kJob + "}", R"(,"stop_on":[{"type":"EVENT_MATCH","name":"a","env":["K=v","pos"]}])"),
       "job_classes[0].stop_on[0].env[1]: positional argument 'pos' after a KEY=VALUE argument in event 'a'"},
      {withJob(kJob + "}", R"(,"session":1)"), "job_classes[0].session: 1 is out of range 0..0"},
      {R"({"events":[{"name":"e","progress":"EVENT_DONE"}],"job_classes":[]})",
       "events[0].progress: unknown event progress 'EVENT_DONE'"},
      {R"({"events":[{"name":"e","blocking":[{"type":"BLOCKED_JOB"}]}],"job_classes":[]})",
       "events[0].blocking[0].data: missing"},
  };
  for (const auto& [json, expected] : cases) {
    std::string error = refusal(json);
    EXPECT_EQ(error.rfind(expected, 0), 0u) << "got: " << error << "\nexpected: " << expected << "\nfor: " << json;
  }
  std::string limits = R"(,"limits":[)";
  for (int i = 0; i < 17; ++i) limits += std::string(i ? "," : "") + R"({"rlim_cur":1,"rlim_max":1})";
  EXPECT_EQ(refusal(withJob(kJob + "}", limits + "]")), "job_classes[0].limits: 17 limits (at most 16)");
}

}  // namespace
}  // namespace baton
