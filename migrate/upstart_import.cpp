// Upstart 1.x JSON state -> Model (see upstart_import.h for the contract and the mapping).
//
// The text is parsed with Cap'n Proto's JSON codec into a raw JsonValue tree; the walk below
// checks every value it reads (type, range, enum string) and throws a Refusal naming the place on
// anything it cannot trust. Keys it does not know are ignored, as Upstart does (that is what
// lets a newer Upstart's state be read by an older reader).
#include "migrate/upstart_import.h"

#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <kj/exception.h>

#include "base/event_expr.h"

namespace baton {

namespace {

using JV = capnp::json::Value::Reader;
using Which = capnp::json::Value::Which;

constexpr int kUpstartProcessSlots = 6;  // PROCESS_MAIN .. PROCESS_SECURITY
constexpr int kSecuritySlot = 5;
constexpr size_t kRlimitSlots = 16;      // RLIMIT_NLIMITS
constexpr int64_t kMaxSeconds = 9'000'000'000;  // keeps seconds * 1e9 inside int64
constexpr int64_t kNs = 1'000'000'000;

const char* const kSlotNames[kUpstartProcessSlots] = {"main",    "pre-start", "post-start",
                                                      "pre-stop", "post-stop", "security"};

struct Refusal {
  std::string message;
};

[[noreturn]] void refuse(const std::string& where, const std::string& what) {
  throw Refusal{where + ": " + what};
}

std::string at(const std::string& where, std::string_view key) {
  return where.empty() ? std::string(key) : where + "." + std::string(key);
}

std::string at(const std::string& where, size_t index) {
  return where + "[" + std::to_string(index) + "]";
}

const char* typeName(JV v) {
  switch (v.which()) {
    case Which::NULL_: return "null";
    case Which::BOOLEAN: return "a boolean";
    case Which::NUMBER: return "a number";
    case Which::STRING: return "a string";
    case Which::ARRAY: return "an array";
    case Which::OBJECT: return "an object";
    case Which::CALL: return "a call";
  }
  return "an unknown value";
}

std::string numberText(double d) {
  if (std::floor(d) == d && std::fabs(d) < 1e18) return std::to_string(int64_t(d));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

// Upstart strings in messages: shortened, so a huge script cannot flood a log line.
std::string shown(std::string_view s) {
  constexpr size_t kMax = 80;
  if (s.size() <= kMax) return "'" + std::string(s) + "'";
  return "'" + std::string(s.substr(0, kMax)) + "...'";
}

// ---------------------------------------------------------------------------------------------
// Typed reads of JSON values. Every one names `where` when it refuses.

int64_t integer(JV v, const std::string& where, int64_t lo, int64_t hi) {
  if (v.which() != Which::NUMBER) refuse(where, std::string("expected an integer, not ") + typeName(v));
  double d = v.getNumber();
  if (!std::isfinite(d) || std::floor(d) != d) refuse(where, "expected an integer, not " + numberText(d));
  if (d < double(lo) || d > double(hi))
    refuse(where, numberText(d) + " is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
  return int64_t(d);
}

// Upstart writes its booleans as ints (json-c int); accept true/false too.
bool flag(JV v, const std::string& where) {
  if (v.which() == Which::BOOLEAN) return v.getBoolean();
  return integer(v, where, INT32_MIN, INT32_MAX) != 0;
}

std::string text(JV v, const std::string& where) {
  if (v.which() != Which::STRING) refuse(where, std::string("expected a string, not ") + typeName(v));
  capnp::Text::Reader t = v.getString();
  return std::string(t.cStr(), t.size());
}

capnp::List<capnp::json::Value>::Reader array(JV v, const std::string& where) {
  if (v.which() != Which::ARRAY) refuse(where, std::string("expected an array, not ") + typeName(v));
  return v.getArray();
}

std::vector<std::string> textList(JV v, const std::string& where) {
  std::vector<std::string> out;
  if (v.which() == Which::NULL_) return out;  // Upstart writes NULL string arrays as null
  auto a = array(v, where);
  for (size_t i = 0; i < a.size(); ++i) out.push_back(text(a[i], at(where, i)));
  return out;
}

template <typename T, size_t N>
T enumValue(JV v, const std::string& where, const char* what,
            const std::pair<const char*, T> (&table)[N]) {
  std::string s = text(v, where);
  for (const auto& [name, value] : table)
    if (s == name) return value;
  refuse(where, std::string("unknown ") + what + " " + shown(s));
}

// A JSON object with the path that names it.
class Obj {
 public:
  Obj(JV v, std::string where) : where_(std::move(where)) {
    if (v.which() != Which::OBJECT) refuse(where_, std::string("expected an object, not ") + typeName(v));
    fields_ = v.getObject();
  }

  const std::string& where() const { return where_; }
  std::string at(std::string_view key) const { return baton::at(where_, key); }

  std::optional<JV> get(std::string_view key) const {
    for (auto f : fields_) {
      capnp::Text::Reader name = f.getName();
      if (std::string_view(name.cStr(), name.size()) == key) return f.getValue();
    }
    return std::nullopt;
  }
  // Present and not null.
  std::optional<JV> value(std::string_view key) const {
    auto v = get(key);
    if (v && v->which() == Which::NULL_) return std::nullopt;
    return v;
  }
  JV need(std::string_view key) const {
    auto v = get(key);
    if (!v) refuse(at(key), "missing");
    return *v;
  }

  int64_t num(std::string_view key, int64_t lo, int64_t hi, int64_t dflt) const {
    auto v = get(key);
    return v ? integer(*v, at(key), lo, hi) : dflt;
  }
  bool boolean(std::string_view key, bool dflt) const {
    auto v = get(key);
    return v ? flag(*v, at(key)) : dflt;
  }
  // Absent or null: "".
  std::string str(std::string_view key) const {
    auto v = value(key);
    return v ? text(*v, at(key)) : std::string();
  }
  std::vector<std::string> strs(std::string_view key) const {
    auto v = get(key);
    return v ? textList(*v, at(key)) : std::vector<std::string>();
  }

 private:
  capnp::List<capnp::json::Value::Field>::Reader fields_;
  std::string where_;
};

// ---------------------------------------------------------------------------------------------
// Upstart's enums (their C identifiers, as state_enum_to_str writes them).

const std::pair<const char*, Goal> kGoals[] = {
    {"JOB_STOP", Goal::Stop}, {"JOB_START", Goal::Start}, {"JOB_RESPAWN", Goal::Respawn}};

enum class UState {
  Waiting, Starting, SecuritySpawning, Security, PreStarting, PreStart, Spawning, Spawned,
  PostStarting, PostStart, Running, PreStopping, PreStop, Stopping, Killed, PostStopping, PostStop
};
const std::pair<const char*, UState> kStates[] = {
    {"JOB_WAITING", UState::Waiting},           {"JOB_STARTING", UState::Starting},
    {"JOB_SECURITY_SPAWNING", UState::SecuritySpawning}, {"JOB_SECURITY", UState::Security},
    {"JOB_PRE_STARTING", UState::PreStarting},  {"JOB_PRE_START", UState::PreStart},
    {"JOB_SPAWNING", UState::Spawning},         {"JOB_SPAWNED", UState::Spawned},
    {"JOB_POST_STARTING", UState::PostStarting}, {"JOB_POST_START", UState::PostStart},
    {"JOB_RUNNING", UState::Running},           {"JOB_PRE_STOPPING", UState::PreStopping},
    {"JOB_PRE_STOP", UState::PreStop},          {"JOB_STOPPING", UState::Stopping},
    {"JOB_KILLED", UState::Killed},             {"JOB_POST_STOPPING", UState::PostStopping},
    {"JOB_POST_STOP", UState::PostStop}};

JobState toJobState(UState s) {
  switch (s) {
    case UState::Waiting: return JobState::Waiting;
    case UState::Starting: return JobState::Starting;
    case UState::SecuritySpawning:
    case UState::Security:
    case UState::PreStarting: return JobState::PreStarting;
    case UState::PreStart: return JobState::PreStart;
    case UState::Spawning: return JobState::Spawning;
    case UState::Spawned: return JobState::Spawned;
    case UState::PostStarting: return JobState::PostStarting;
    case UState::PostStart: return JobState::PostStart;
    case UState::Running: return JobState::Running;
    case UState::PreStopping: return JobState::PreStopping;
    case UState::PreStop: return JobState::PreStop;
    case UState::Stopping: return JobState::Stopping;
    case UState::Killed: return JobState::Killed;
    case UState::PostStopping: return JobState::PostStopping;
    case UState::PostStop: return JobState::PostStop;
  }
  return JobState::Waiting;
}

const char* baseStateName(JobState s) {
  static const char* const names[kJobStates] = {
      "waiting", "starting", "pre-starting", "pre-start", "spawning", "spawned", "post-starting",
      "post-start", "running", "pre-stopping", "pre-stop", "stopping", "killed", "post-stopping",
      "post-stop"};
  return names[int(s)];
}

bool transient(JobState s) {
  return s == JobState::PreStarting || s == JobState::Spawning || s == JobState::PostStarting ||
         s == JobState::PreStopping || s == JobState::PostStopping;
}

// ProcessType; -1 is PROCESS_INVALID.
const std::pair<const char*, int> kUpstartProcessNames[] = {
    {"PROCESS_INVALID", -1},   {"PROCESS_MAIN", 0},     {"PROCESS_PRE_START", 1},
    {"PROCESS_POST_START", 2}, {"PROCESS_PRE_STOP", 3}, {"PROCESS_POST_STOP", 4},
    {"PROCESS_SECURITY", 5}};

const std::pair<const char*, ExpectType> kExpects[] = {{"EXPECT_NONE", ExpectType::None},
                                                       {"EXPECT_STOP", ExpectType::Stop},
                                                       {"EXPECT_DAEMON", ExpectType::Daemon},
                                                       {"EXPECT_FORK", ExpectType::Fork}};

const std::pair<const char*, ConsoleType> kConsoles[] = {{"CONSOLE_NONE", ConsoleType::None},
                                                         {"CONSOLE_OUTPUT", ConsoleType::Output},
                                                         {"CONSOLE_OWNER", ConsoleType::Owner},
                                                         {"CONSOLE_LOG", ConsoleType::Log}};

const std::pair<const char*, TraceState> kTraceStates[] = {{"TRACE_NONE", TraceState::None},
                                                           {"TRACE_NEW", TraceState::New},
                                                           {"TRACE_NEW_CHILD", TraceState::NewChild},
                                                           {"TRACE_NORMAL", TraceState::Normal}};

// EVENT_FINISHED is kept apart: it becomes Handling (see upstart_import.h).
enum class UProgress { Pending, Handling, Finished };
const std::pair<const char*, UProgress> kProgress[] = {{"EVENT_PENDING", UProgress::Pending},
                                                       {"EVENT_HANDLING", UProgress::Handling},
                                                       {"EVENT_FINISHED", UProgress::Finished}};

const std::pair<const char*, EventNode::Type> kOperators[] = {{"EVENT_OR", EventNode::Type::Or},
                                                              {"EVENT_AND", EventNode::Type::And},
                                                              {"EVENT_MATCH", EventNode::Type::Match}};

enum class UBlocked { Job, Event, DBus };
const std::pair<const char*, UBlocked> kBlockedTypes[] = {
    {"BLOCKED_JOB", UBlocked::Job},
    {"BLOCKED_EVENT", UBlocked::Event},
    {"BLOCKED_EMIT_METHOD", UBlocked::DBus},
    {"BLOCKED_JOB_START_METHOD", UBlocked::DBus},
    {"BLOCKED_JOB_STOP_METHOD", UBlocked::DBus},
    {"BLOCKED_JOB_RESTART_METHOD", UBlocked::DBus},
    {"BLOCKED_INSTANCE_START_METHOD", UBlocked::DBus},
    {"BLOCKED_INSTANCE_STOP_METHOD", UBlocked::DBus},
    {"BLOCKED_INSTANCE_RESTART_METHOD", UBlocked::DBus}};

// Upstart's exit status encoding (job_process_handler): the exit code, or for a process killed
// by a signal the signal number shifted into the high byte. Returned as a wait(2) status.
int32_t waitStatus(int64_t s, const std::string& where) {
  if (s >= 0 && s <= 0xff) return int32_t(s) << 8;
  if (s > 0xff && s <= 0xffff && (s & 0xff) == 0 && (s >> 8) <= 64) return int32_t(s >> 8);
  refuse(where, std::to_string(s) + " is neither an exit status (0..255) nor a signal (1..64) shifted left by 8");
}

std::string statusText(int32_t status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// An rlimit value. Upstart writes rlim_t through json-c's int64, so RLIM_INFINITY appears as -1;
// 18446744073709551615 (as an unsigned writer would put it) reads as 2^64 in a double.
uint64_t rlimitValue(JV v, const std::string& where, bool& inexact) {
  if (v.which() != Which::NUMBER) refuse(where, std::string("expected an integer, not ") + typeName(v));
  double d = v.getNumber();
  if (!std::isfinite(d) || std::floor(d) != d) refuse(where, "expected an integer, not " + numberText(d));
  if (d == -1) return UINT64_MAX;
  if (d < 0) refuse(where, numberText(d) + " is not a resource limit");
  if (d >= 18446744073709551615.0) return UINT64_MAX;  // the double nearest 2^64 - 1 is 2^64
  if (d > 9007199254740992.0) inexact = true;          // above 2^53 doubles skip integers
  return uint64_t(d);
}

std::string squeezeSlashes(std::string s) {
  std::string out;
  for (char c : s)
    if (!(c == '/' && !out.empty() && out.back() == '/')) out += c;
  return out;
}

// ---------------------------------------------------------------------------------------------

class Importer {
 public:
  Importer(const UpstartImportOptions& options, UpstartImport& out) : out_(out) {
    now_ = options.monotonicNowNs;
    if (now_ == 0) {
      timespec ts{};
      clock_gettime(CLOCK_MONOTONIC, &ts);
      now_ = int64_t(ts.tv_sec) * kNs + ts.tv_nsec;
    }
  }

  void run(JV rootValue) {
    if (rootValue.which() != Which::OBJECT)
      refuse("state", std::string("expected an object, not ") + typeName(rootValue));
    Obj root(rootValue, "");  // top-level keys are named as they are: "events[0].name"
    readSessions(root);
    readEvents(root);
    readGlobals(root);
    readConfSources(root);
    auto classes = array(root.need("job_classes"), "job_classes");
    for (size_t i = 0; i < classes.size(); ++i) readClass(classes[i], at("job_classes", i));
    warnSkippedSessions();
    resolveEventBlocking();
    recountBlockers();
    out_.model.nextEventId = events_.size() + 1;
  }

 private:
  struct EventInfo {
    bool kept = false;
    std::string name;
    std::optional<int64_t> blockers;
    std::optional<JV> blocking;
    std::string where;
  };
  struct SessionInfo {
    std::string chroot;
    size_t classes = 0, instances = 0;
  };

  void warn(std::string message) { out_.warnings.push_back(std::move(message)); }

  void adopt(int32_t fd, const std::string& where) {
    if (!adopted_.insert(fd).second) refuse(where, "fd " + std::to_string(fd) + " is already used by another in-flight spawn");
    out_.adoptedFds.push_back(fd);
  }
  void unadopted(int64_t fd, std::string what) {
    if (fd >= 0) out_.unadoptedFds.push_back({int32_t(fd), std::move(what)});
  }

  // Event index (as Upstart refers to events) -> Event.id; 0 for an event of a chroot session.
  uint64_t eventId(int64_t index, const std::string& where) {
    if (index < 0 || size_t(index) >= events_.size())
      refuse(where, "event index " + std::to_string(index) + " out of range (" + std::to_string(events_.size()) +
                        " events)");
    return events_[size_t(index)].kept ? uint64_t(index) + 1 : 0;
  }

  // ----- top level

  void readSessions(const Obj& root) {
    auto v = root.value("sessions");
    if (!v) return;
    auto a = array(*v, "sessions");
    for (size_t i = 0; i < a.size(); ++i) {
      Obj s(a[i], at("sessions", i));
      sessions_.push_back({s.str("chroot"), 0, 0});
    }
  }

  int64_t session(const Obj& o) { return o.num("session", 0, int64_t(sessions_.size()), 0); }

  void readEvents(const Obj& root) {
    auto a = array(root.need("events"), "events");
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string where = at("events", i);
      Obj e(a[i], where);
      EventInfo info;
      info.where = where;
      info.name = text(e.need("name"), e.at("name"));
      if (info.name.empty()) refuse(e.at("name"), "empty event name");
      const int64_t s = session(e);
      Event ev;
      ev.id = i + 1;
      ev.name = info.name;
      ev.env = e.strs("env");
      UProgress progress = UProgress::Pending;
      if (auto p = e.get("progress")) progress = enumValue(*p, e.at("progress"), "event progress", kProgress);
      ev.progress = progress == UProgress::Pending ? EventProgress::Pending : EventProgress::Handling;
      ev.failed = e.boolean("failed", false);
      if (auto b = e.get("blockers")) info.blockers = integer(*b, e.at("blockers"), 0, INT32_MAX);
      info.blocking = e.value("blocking");
      if (info.blocking) array(*info.blocking, e.at("blocking"));
      const int64_t fd = e.num("fd", -1, INT32_MAX, -1);
      if (s > 0) {
        warn(where + " (" + info.name + "): event of chroot session " + std::to_string(s) + " dropped");
        events_.push_back(std::move(info));
        continue;
      }
      if (fd != -1) {
        warn(where + " (" + info.name + "): carries fd " + std::to_string(fd) +
             " (emit with file): event fds are not supported, the event is imported without it");
        unadopted(fd, "fd of event " + info.name + " (" + where + ")");
      }
      if (progress == UProgress::Finished)
        warn(where + " (" + info.name + "): finished but not yet cleaned up by Upstart: imported as handling, "
                     "baton completes it");
      info.kept = true;
      events_.push_back(std::move(info));
      out_.model.events.push_back(std::move(ev));
    }
  }

  void readGlobals(const Obj& root) {
    std::vector<std::string> jobEnv = root.strs("job_environment");
    if (!jobEnv.empty()) {
      std::string names;
      for (const std::string& kv : jobEnv) names += (names.empty() ? "" : ", ") + kv.substr(0, kv.find('='));
      warn("job_environment: the global job environment (" + names +
           ") is not imported: baton has no such table (it sets PATH and TERM itself)");
    }
    std::string bus = root.str("control_bus_address");
    if (!bus.empty()) warn("control_bus_address " + shown(bus) + " ignored: baton does not use D-Bus");
    std::string cgm = root.str("cgroup_manager_address");
    if (!cgm.empty()) warn("cgroup_manager_address " + shown(cgm) + " ignored: baton manages cgroups itself");
  }

  // ConfSources give each class the .conf path it was loaded from (1.9+).
  void readConfSources(const Obj& root) {
    auto v = root.value("conf_sources");
    if (!v) return;
    auto sources = array(*v, "conf_sources");
    for (size_t i = 0; i < sources.size(); ++i) {
      Obj src(sources[i], at("conf_sources", i));
      auto files = src.value("conf_files");
      if (!files) continue;
      auto fa = array(*files, src.at("conf_files"));
      for (size_t k = 0; k < fa.size(); ++k) {
        Obj f(fa[k], at(src.at("conf_files"), k));
        auto jc = f.value("job_class");
        if (!jc) continue;  // the file did not parse (LP #1269731)
        Obj cls(*jc, f.at("job_class"));
        if (session(cls) != 0) continue;
        std::string name = text(cls.need("name"), cls.at("name"));
        std::string path = f.str("path");
        if (!path.empty()) confPaths_.emplace(name, squeezeSlashes(path));
      }
    }
  }

  // ----- event expressions

  EventExpr readExprArray(JV v, const std::string& where) {
    auto a = array(v, where);
    if (a.size() > kMaxEventExprNodes) refuse(where, std::to_string(a.size()) + " nodes: too many");
    EventExpr expr;
    std::vector<int32_t> stack;
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string nw = at(where, i);
      Obj n(a[i], nw);
      EventNode node;
      node.type = enumValue(n.need("type"), n.at("type"), "event operator", kOperators);
      node.matched = n.boolean("value", false);
      if (node.type == EventNode::Type::Match) {
        node.name = text(n.need("name"), n.at("name"));
        if (node.name.empty()) refuse(n.at("name"), "empty event name");
        node.args = n.strs("env");
        // What a job file may say (Upstart's own parser is more lenient): anything else would
        // print as a condition baton cannot read back.
        bool named = false;
        for (size_t k = 0; k < node.args.size(); ++k) {
          if (std::string problem = eventArgProblem(node.args[k], named, node.name); !problem.empty())
            refuse(at(n.at("env"), k), problem);
          named = named || node.args[k].find('=') != std::string::npos;
        }
        int64_t ev = n.num("event", -1, INT32_MAX, -1);
        if (ev >= 0) node.eventId = eventId(ev, n.at("event"));
      } else {
        if (stack.size() < 2) refuse(nw, "operator without two operands");
        node.right = stack.back();
        stack.pop_back();
        node.left = stack.back();
        stack.pop_back();
      }
      stack.push_back(int32_t(i));
      expr.nodes.push_back(std::move(node));
    }
    if (stack.size() > 1) refuse(where, "does not form a single expression (" + std::to_string(stack.size()) + " roots)");
    return expr;
  }

  // start_on / stop_on: an EventOperator array (1.9+) or the text of the condition (<= 1.8).
  // Returns false if absent.
  bool readCondition(const Obj& o, std::string_view key, const std::string& label, EventExpr& out) {
    auto v = o.value(key);
    if (!v) return false;
    if (v->which() == Which::STRING) {
      std::string cond = text(*v, o.at(key));
      std::string error;
      size_t offset = 0;
      bool differs = false;
      if (!parseEventExprEx(cond, out, error, offset, differs))
        refuse(o.at(key), "cannot parse " + shown(cond) + ": " + error);
      if (differs)
        warn(o.at(key) + " (" + label + "): " + shown(cond) +
             " mixes 'or' and 'and' without parentheses: Upstart grouped it left to right, baton reads "
             "'and' first");
      return true;
    }
    out = readExprArray(*v, o.at(key));
    return true;
  }

  static EventExpr pristine(EventExpr e) {
    eventExprReset(e);
    return e;
  }

  // ----- job classes

  void readClass(JV v, const std::string& where) {
    Obj c(v, where);
    const int64_t s = session(c);
    std::string name = text(c.need("name"), c.at("name"));
    if (name.empty()) refuse(c.at("name"), "empty job name");
    if (s > 0) {
      sessions_[size_t(s - 1)].classes++;
      if (auto jobs = c.value("jobs")) sessions_[size_t(s - 1)].instances += array(*jobs, c.at("jobs")).size();
      return;
    }
    if (out_.model.classes.count(name)) refuse(c.at("name"), "duplicate job class " + shown(name));

    auto def = std::make_shared<JobDef>();
    def->name = name;
    if (auto it = confPaths_.find(name); it != confPaths_.end()) def->path = it->second;
    const std::string origin = def->path.empty() ? "upstart:" + name : def->path;
    def->contentHash = "upstart:" + name;
    def->description = c.str("description");
    def->author = c.str("author");
    def->version = c.str("version");
    def->usage = c.str("usage");
    def->env = c.strs("env");
    def->exportVars = c.strs("export");
    def->instance = c.str("instance");
    def->emits = c.strs("emits");

    JobClass cls;
    if (readCondition(c, "start_on", name, cls.startOn)) def->startOn = pristine(cls.startOn);
    EventExpr stopOn;
    if (readCondition(c, "stop_on", name, stopOn)) def->stopOn = pristine(stopOn);

    if (auto p = c.value("process")) {
      auto a = array(*p, c.at("process"));
      if (a.size() > size_t(kUpstartProcessSlots))
        refuse(c.at("process"), std::to_string(a.size()) + " process slots (at most 6)");
      for (size_t t = 0; t < a.size(); ++t) {
        Obj proc(a[t], at(c.at("process"), t));
        ProcessDef pd{proc.boolean("script", false), proc.str("command")};
        if (t < size_t(kProcessTypes)) {
          def->process[t] = std::move(pd);
        } else if (pd.present()) {
          def->unsupported.push_back(origin + ": stanza 'apparmor load' is not supported");
          warn(at(c.at("process"), t) + " (" + name + "): security process (apparmor load) " + shown(pd.command) +
               " is not supported: not imported");
        }
      }
    }
    if (auto e = c.get("expect")) def->expect = enumValue(*e, c.at("expect"), "expect type", kExpects);
    def->task = c.boolean("task", false);
    def->killTimeoutMs = c.num("kill_timeout", 0, INT32_MAX, 5) * 1000;
    def->killSignal = int(c.num("kill_signal", 1, 64, 15));
    def->reloadSignal = int(c.num("reload_signal", 1, 64, 1));
    def->respawn = c.boolean("respawn", false);
    def->respawnLimit = uint32_t(c.num("respawn_limit", 0, UINT32_MAX, 10));
    def->respawnIntervalSec = uint32_t(c.num("respawn_interval", 0, UINT32_MAX, 5));
    if (auto ne = c.value("normalexit")) readNormalExit(*ne, c.at("normalexit"), *def);
    if (auto con = c.get("console")) def->console = enumValue(*con, c.at("console"), "console type", kConsoles);
    def->umask = uint32_t(c.num("umask", 0, 0777, 022));
    // -21 is JOB_NICE_INVALID (not set); Upstart <= 1.6 used 0 for that.
    int64_t nice = c.num("nice", -21, 19, -21);
    if (nice != -21 && nice != 0) {
      def->hasNice = true;
      def->nice = int32_t(nice);
    }
    // Upstart only writes oom_score_adj when it differs from JOB_DEFAULT_OOM_SCORE_ADJ (0).
    int64_t oom = c.num("oom_score_adj", -1000, 1000, 0);
    if (oom != 0) {
      def->hasOomScore = true;
      def->oomScore = int32_t(oom);
    }
    if (auto l = c.value("limits")) readLimits(*l, c.at("limits"), name, *def);
    def->chroot = c.str("chroot");
    def->chdir = c.str("chdir");
    def->setuid = c.str("setuid");
    def->setgid = c.str("setgid");
    cls.deleted = c.boolean("deleted", false);
    if (c.boolean("debug", false)) {
      def->unsupported.push_back(origin + ": stanza 'debug' is not supported");
      warn(c.at("debug") + " (" + name + "): stanza 'debug' is not supported: ignored");
    }
    std::string aa = c.str("apparmor_switch");
    if (!aa.empty()) {
      def->unsupported.push_back(origin + ": stanza 'apparmor switch' is not supported");
      warn(c.at("apparmor_switch") + " (" + name + "): 'apparmor switch " + aa + "' is not supported: ignored");
    }
    // cgmanager_wait (1.13) gates the cgroups key, as in Upstart's job_class_deserialise.
    auto cg = c.value("cgroups");
    if (c.get("cgmanager_wait")) {
      c.boolean("cgmanager_wait", false);  // type check only
      if (cg) readCgroups(*cg, c.at("cgroups"), *def);
    } else if (cg && array(*cg, c.at("cgroups")).size() > 0) {
      warn(c.at("cgroups") + " (" + name + "): present without cgmanager_wait: ignored, as Upstart does");
    }

    cls.def = def;
    if (auto jobs = c.value("jobs")) {
      auto a = array(*jobs, c.at("jobs"));
      for (size_t i = 0; i < a.size(); ++i) readInstance(a[i], at(c.at("jobs"), i), cls, def);
    }
    out_.model.classes.emplace(name, std::move(cls));
  }

  void readNormalExit(JV v, const std::string& where, JobDef& def) {
    auto a = array(v, where);
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string w = at(where, i);
      int64_t n = integer(a[i], w, 0, 0xffff);
      if (n <= 0xff) {
        int32_t code = int32_t(n);
        if (std::find(def.normalExitCodes.begin(), def.normalExitCodes.end(), code) == def.normalExitCodes.end())
          def.normalExitCodes.push_back(code);
      } else {
        if ((n & 0xff) != 0 || (n >> 8) > 64) refuse(w, std::to_string(n) + " is neither an exit status nor a signal << 8");
        int32_t sig = int32_t(n >> 8);
        if (std::find(def.normalExitSignals.begin(), def.normalExitSignals.end(), sig) == def.normalExitSignals.end())
          def.normalExitSignals.push_back(sig);
      }
    }
  }

  void readLimits(JV v, const std::string& where, const std::string& name, JobDef& def) {
    auto a = array(v, where);
    if (a.size() > kRlimitSlots) refuse(where, std::to_string(a.size()) + " limits (at most 16)");
    for (size_t i = 0; i < a.size(); ++i) {
      Obj l(a[i], at(where, i));
      bool inexact = false;
      uint64_t soft = rlimitValue(l.need("rlim_cur"), l.at("rlim_cur"), inexact);
      uint64_t hard = rlimitValue(l.need("rlim_max"), l.at("rlim_max"), inexact);
      if (soft == 0 && hard == 0) continue;  // Upstart's placeholder for "not set"
      if (inexact) warn(l.where() + " (" + name + "): a value above 2^53 was rounded by the JSON reader");
      // The index is the resource number: the state comes from the same kernel.
      def.limits.push_back(RLimitDef{int(i), soft, hard});
    }
  }

  void readCgroups(JV v, const std::string& where, JobDef& def) {
    auto a = array(v, where);
    for (size_t i = 0; i < a.size(); ++i) {
      Obj cg(a[i], at(where, i));
      std::string controller = text(cg.need("controller"), cg.at("controller"));
      if (controller.empty()) refuse(cg.at("controller"), "empty cgroup controller");
      auto names = cg.value("names");
      if (!names) {
        def.cgroups.push_back(CgroupDef{controller, "", {}});
        continue;
      }
      auto na = array(*names, cg.at("names"));
      for (size_t k = 0; k < na.size(); ++k) {
        Obj n(na[k], at(cg.at("names"), k));
        CgroupDef group{controller, n.str("name"), {}};
        if (auto settings = n.value("settings")) {
          auto sa = array(*settings, n.at("settings"));
          for (size_t m = 0; m < sa.size(); ++m) {
            Obj st(sa[m], at(n.at("settings"), m));
            CgroupSetting setting{text(st.need("key"), st.at("key")), st.str("value")};
            if (setting.key.empty()) refuse(st.at("key"), "empty cgroup setting name");
            group.settings.push_back(std::move(setting));
          }
        }
        def.cgroups.push_back(std::move(group));
      }
    }
  }

  // ----- instances

  void readInstance(JV v, const std::string& where, JobClass& cls, const std::shared_ptr<JobDef>& def) {
    Obj j(v, where);
    Instance inst;
    inst.name = text(j.need("name"), j.at("name"));
    inst.def = def;
    const std::string label = def->name + (inst.name.empty() ? "" : " (" + inst.name + ")");
    const std::string head = where + " (" + label + ")";
    if (cls.instances.count(inst.name)) refuse(j.at("name"), "duplicate instance " + shown(inst.name));

    inst.goal = enumValue(j.need("goal"), j.at("goal"), "goal", kGoals);
    UState ustate = enumValue(j.need("state"), j.at("state"), "state", kStates);
    inst.state = toJobState(ustate);
    if (ustate == UState::Security || ustate == UState::SecuritySpawning)
      warn(head + ": in Upstart's security state (apparmor load, not supported): imported as pre-starting");

    inst.env = j.strs("env");
    if (!j.strs("start_env").empty())
      warn(head + ": start_env (the environment of a pending restart) is not imported");
    inst.stopEnv = j.strs("stop_env");
    if (!readCondition(j, "stop_on", label, inst.stopOn)) inst.stopOn = def->stopOn;

    if (auto fds = j.value("fds")) {
      auto a = array(*fds, j.at("fds"));
      for (size_t i = 0; i < a.size(); ++i) {
        int64_t fd = integer(a[i], at(j.at("fds"), i), 0, INT32_MAX);
        warn(head + ": holds fd " + std::to_string(fd) + " passed by an event (socket bridge): not supported, not imported");
        unadopted(fd, "event fd held by " + label + " (" + at(j.at("fds"), i) + ")");
      }
    }

    auto pids = array(j.need("pid"), j.at("pid"));
    if (pids.size() != 5 && pids.size() != 6)
      refuse(j.at("pid"), std::to_string(pids.size()) + " entries (expected 5 or 6)");
    for (size_t t = 0; t < pids.size(); ++t) {
      int64_t pid = integer(pids[t], at(j.at("pid"), t), 0, INT32_MAX);
      if (t < size_t(kProcessTypes))
        inst.procs[t].pid = int32_t(pid);
      else if (pid > 0)
        warn(head + ": security process " + std::to_string(pid) + " (apparmor_parser) is not tracked");
    }

    int64_t blocker = j.num("blocker", -1, INT32_MAX, -1);
    if (blocker >= 0) {
      inst.blocker = eventId(blocker, j.at("blocker"));
      if (!inst.blocker) warn(head + ": its blocker is an event of a chroot session: dropped");
    }
    if (auto b = j.value("blocking")) readJobBlocking(*b, j.at("blocking"), label, inst);

    if (auto kt = j.value("kill_timer")) {
      Obj k(*kt, j.at("kill_timer"));
      int64_t timeout = k.num("timeout", 0, INT32_MAX, def->killTimeoutMs / 1000);
      int64_t due = integer(k.need("due"), k.at("due"), 0, kMaxSeconds);
      if (inst.state != JobState::Killed) {
        warn(head + ": kill timer in state " + baseStateName(inst.state) + " dropped");
      } else {
        int64_t deadline = due * kNs;
        int64_t latest = now_ + timeout * kNs;
        if (deadline > latest) {
          warn(head + ": kill timer due at " + std::to_string(due) + " s is later than now + kill timeout: clamped");
          deadline = latest;
        }
        inst.killDeadlineNs = deadline > 0 ? deadline : 1;
      }
    }
    int kp = -1;
    if (auto k = j.get("kill_process")) kp = enumValue(*k, j.at("kill_process"), "process type", kUpstartProcessNames);
    inst.killProcess = kp >= 0 && kp < kProcessTypes ? ProcessType(kp) : ProcessType::Main;

    inst.failed = j.boolean("failed", false);
    int fp = -1;
    if (auto f = j.get("failed_process")) fp = enumValue(*f, j.at("failed_process"), "process type", kUpstartProcessNames);
    inst.exitStatus = waitStatus(j.num("exit_status", INT32_MIN, INT32_MAX, 0), j.at("exit_status"));
    if (inst.failed) {
      if (fp < 0) {
        // job_process_catch_runaway: failed with PROCESS_INVALID.
        inst.failedProcess = ProcessType::Main;
        inst.failReason = "respawn limit reached";
      } else if (fp == kSecuritySlot) {
        inst.failedProcess = ProcessType::Main;
        inst.failReason = std::string("security process ") + statusText(inst.exitStatus);
      } else {
        inst.failedProcess = ProcessType(fp);
        inst.failReason = std::string(kSlotNames[fp]) + " process " + statusText(inst.exitStatus);
      }
    } else if (fp >= 0 && fp < kProcessTypes) {
      inst.failedProcess = ProcessType(fp);
    }

    // respawn_time: CLOCK_MONOTONIC seconds when the respawn window opened; respawn_count: the
    // starts in that window. baton's count has the same meaning for the remaining allowance
    // (limit - count), so both carry over unchanged.
    int64_t respawnTime = j.num("respawn_time", 0, kMaxSeconds, 0);
    inst.respawnCount = uint32_t(j.num("respawn_count", 0, UINT32_MAX, 0));
    inst.respawnWindowStartNs = respawnTime * kNs;
    if (inst.respawnWindowStartNs > now_) {
      warn(head + ": respawn_time " + std::to_string(respawnTime) + " s is in the future: clamped to now");
      inst.respawnWindowStartNs = now_;
    }
    inst.traceForks = uint32_t(j.num("trace_forks", 0, INT32_MAX, 0));
    if (auto ts = j.get("trace_state")) inst.traceState = enumValue(*ts, j.at("trace_state"), "trace state", kTraceStates);

    if (auto logs = j.value("log")) readLogs(*logs, j.at("log"), label, head);
    if (auto pd = j.value("process_data")) readProcessData(*pd, j.at("process_data"), label, head, inst);

    if (transient(inst.state))
      warn(head + ": in transient state " + baseStateName(inst.state) + ": resume it with that state's entry action");
    cls.instances.emplace(inst.name, std::move(inst));
  }

  struct BlockedRef {
    UBlocked type;
    std::optional<Obj> data;
  };
  BlockedRef readBlocked(JV v, const std::string& where) {
    Obj b(v, where);
    BlockedRef ref{enumValue(b.need("type"), b.at("type"), "blocked type", kBlockedTypes), std::nullopt};
    if (auto d = b.value("data")) ref.data.emplace(*d, b.at("data"));
    return ref;
  }

  // What a job holds until it reaches its goal: events that started or stopped it.
  void readJobBlocking(JV v, const std::string& where, const std::string& label, Instance& inst) {
    auto a = array(v, where);
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string w = at(where, i);
      BlockedRef ref = readBlocked(a[i], w);
      switch (ref.type) {
        case UBlocked::Event: {
          if (!ref.data) refuse(at(w, "data"), "missing");
          uint64_t id = eventId(integer(ref.data->need("index"), ref.data->at("index"), INT32_MIN, INT32_MAX),
                                ref.data->at("index"));
          if (id)
            inst.blocking.push_back(Blocked{Blocked::Kind::Event, id, {}});
          else
            warn(w + " (" + label + "): blocks an event of a chroot session: dropped");
          break;
        }
        case UBlocked::Job:
          warn(w + " (" + label + "): a job blocking a job is not a link Upstart makes: ignored");
          break;
        case UBlocked::DBus:
          warn(w + " (" + label + "): a waiting D-Bus call (initctl) cannot be taken over: dropped");
          break;
      }
    }
  }

  void readLogs(JV v, const std::string& where, const std::string& label, const std::string& head) {
    auto a = array(v, where);
    if (a.size() > size_t(kUpstartProcessSlots)) refuse(where, std::to_string(a.size()) + " log slots (at most 6)");
    for (size_t t = 0; t < a.size(); ++t) {
      const std::string w = at(where, t);
      Obj l(a[t], w);
      std::string path = l.str("path");
      if (path.empty()) continue;  // {"path": null}: no log
      int64_t pty = l.num("io_watch_fd", -1, INT32_MAX, -1);
      int64_t file = l.num("fd", -1, INT32_MAX, -1);
      size_t unflushed = l.str("unflushed").size() / 2;  // hex
      std::string msg = head + " " + kSlotNames[t] + " process: its output goes to Upstart's log pty";
      if (pty >= 0) msg += " (master fd " + std::to_string(pty) + ")";
      msg += " for " + path + ": not imported, nothing reads that pty";
      if (unflushed) msg += "; " + std::to_string(unflushed) + " bytes Upstart had not written to the log are lost";
      warn(msg + " (" + w + ")");
      unadopted(pty, "log pty master of " + label + " " + kSlotNames[t] + " process (" + w + ")");
      unadopted(file, "log file " + path + " of " + label + " " + kSlotNames[t] + " process (" + w + ")");
    }
  }

  void readProcessData(JV v, const std::string& where, const std::string& label, const std::string& head,
                       Instance& inst) {
    auto a = array(v, where);
    if (a.size() > size_t(kUpstartProcessSlots))
      refuse(where, std::to_string(a.size()) + " process_data slots (at most 6)");
    for (size_t t = 0; t < a.size(); ++t) {
      if (a[t].which() == Which::NULL_) continue;
      const std::string w = at(where, t);
      Obj p(a[t], w);
      int type = enumValue(p.need("process"), p.at("process"), "process type", kUpstartProcessNames);
      if (type != int(t)) refuse(p.at("process"), "process type does not match slot " + std::to_string(t));
      bool valid = flag(p.need("valid"), p.at("valid"));
      int64_t statusPipe = integer(p.need("job_process_fd"), p.at("job_process_fd"), -1, INT32_MAX);
      int64_t shellFd = p.num("shell_fd", -1, INT32_MAX, -1);
      std::string script = p.str("script");
      int32_t status = waitStatus(integer(p.need("status"), p.at("status"), INT32_MIN, INT32_MAX), p.at("status"));
      const std::string what = std::string(kSlotNames[t]) + " process of " + label + " (" + w + ")";
      if (!valid || t == size_t(kSecuritySlot)) {
        if (valid) warn(head + ": in-flight spawn of its security process is not supported: not imported");
        unadopted(statusPipe, "status pipe of the " + what);
        unadopted(shellFd, "script pipe of the " + what);
        continue;
      }
      if (statusPipe < 0) refuse(p.at("job_process_fd"), "in-flight spawn without a status pipe");
      ProcessSlot& slot = inst.procs[t];
      slot.spawnValid = true;
      slot.statusFd = int32_t(statusPipe);
      adopt(slot.statusFd, p.at("job_process_fd"));
      slot.scriptFd = int32_t(shellFd);
      if (slot.scriptFd >= 0) adopt(slot.scriptFd, p.at("shell_fd"));
      slot.pendingScript = script;
      slot.earlyExit = status != 0;
      slot.earlyExitStatus = slot.earlyExit ? status : 0;
    }
  }

  // ----- after all classes

  void warnSkippedSessions() {
    for (size_t s = 0; s < sessions_.size(); ++s) {
      const SessionInfo& info = sessions_[s];
      if (!info.classes) continue;
      warn("sessions[" + std::to_string(s) + "] (chroot " + (info.chroot.empty() ? "?" : info.chroot) + "): " +
           std::to_string(info.classes) + " job classes (" + std::to_string(info.instances) +
           " instances) skipped: chroot sessions are not supported (Upstart 1.13 skips them too)");
    }
  }

  // The model built here holds every class decoded (an import never holds one encoded): its
  // lookups and loops read the classes as they are.
  Instance* findInstance(const std::string& job, const std::string& name) {
    auto c = out_.model.classes.find(job);
    if (c == out_.model.classes.end()) return nullptr;
    auto i = c->second.instances.find(name);
    return i == c->second.instances.end() ? nullptr : &i->second;
  }

  // An event's blocking list: the jobs waiting for it to finish (their starting/stopping event).
  void resolveEventBlocking() {
    for (size_t e = 0; e < events_.size(); ++e) {
      const EventInfo& info = events_[e];
      if (!info.kept || !info.blocking) continue;
      const std::string where = at(info.where, "blocking");
      auto a = array(*info.blocking, where);
      for (size_t i = 0; i < a.size(); ++i) {
        const std::string w = at(where, i);
        BlockedRef ref = readBlocked(a[i], w);
        if (ref.type == UBlocked::DBus) {
          warn(w + " (" + info.name + "): a waiting D-Bus call (initctl emit) cannot be taken over: dropped");
          continue;
        }
        if (ref.type == UBlocked::Event) {
          warn(w + " (" + info.name + "): an event blocking an event is not a link Upstart makes: ignored");
          continue;
        }
        if (!ref.data) refuse(at(w, "data"), "missing");
        const Obj& d = *ref.data;
        std::string job = text(d.need("class"), d.at("class"));
        std::string name = text(d.need("name"), d.at("name"));
        if (session(d) != 0) continue;  // a chroot session's job: skipped with its class
        Instance* inst = findInstance(job, name);
        if (!inst) {
          warn(w + " (" + info.name + "): blocked job " + job + " instance " + shown(name) + " not found: ignored");
          continue;
        }
        const uint64_t id = uint64_t(e) + 1;
        if (inst->blocker != 0 && inst->blocker != id)
          refuse(w, "job " + job + " instance " + shown(name) + " is blocked by event " + std::to_string(inst->blocker - 1) +
                        " according to its own blocker");
        inst->blocker = id;
      }
    }
  }

  void recountBlockers() {
    std::map<uint64_t, uint32_t> links;
    for (auto& [job, cls] : out_.model.classes)
      for (auto& [name, inst] : cls.instances)
        for (const Blocked& b : inst.blocking)
          if (b.kind == Blocked::Kind::Event) links[b.eventId]++;
    for (Event& ev : out_.model.events) {
      ev.blockers = links[ev.id];
      const EventInfo& info = events_[ev.id - 1];
      if (info.blockers && *info.blockers != int64_t(ev.blockers))
        warn(info.where + " (" + info.name + "): Upstart counted " + std::to_string(*info.blockers) +
             " blockers, " + std::to_string(ev.blockers) +
             " job links imported: holds by partially matched start on / stop on conditions are not kept");
    }
  }

  UpstartImport& out_;
  int64_t now_ = 0;
  std::vector<SessionInfo> sessions_;
  std::vector<EventInfo> events_;
  std::map<std::string, std::string> confPaths_;
  std::set<int32_t> adopted_;
};

}  // namespace

bool importUpstartState(std::string_view json, UpstartImport& out, std::string& error) {
  return importUpstartState(json, UpstartImportOptions{}, out, error);
}

bool importUpstartState(std::string_view json, const UpstartImportOptions& options, UpstartImport& out,
                        std::string& error) {
  out = UpstartImport{};
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<capnp::JsonValue>();
  try {
    capnp::JsonCodec codec;
    codec.decodeRaw(kj::ArrayPtr<const char>(json.data(), json.size()), root);
  } catch (const kj::Exception& e) {
    error = std::string("not valid JSON: ") + e.getDescription().cStr();
    return false;
  }
  try {
    Importer(options, out).run(root.asReader());
  } catch (const Refusal& r) {
    error = r.message;
    return false;
  } catch (const kj::Exception& e) {
    error = std::string("reading the state: ") + e.getDescription().cStr();
    return false;
  }
  return true;
}

}  // namespace baton
