#include "serialize/codec.h"

#include <capnp/message.h>
#include <kj/exception.h>

#include <cstring>
#include <map>
#include <stdexcept>

#include "base/event_expr.h"

namespace baton {

namespace {

// ---- compile-time guard against model/schema drift ----
struct AnyField {
  template <class T> operator T() const;
};
template <class T, class... A>
constexpr size_t fieldCount() {
  if constexpr (requires { T{A{}..., AnyField{}}; }) return fieldCount<T, A..., AnyField>();
  else return sizeof...(A);
}
#define BATON_CODEC_COVERS(Type, n)                                                         \
  static_assert(fieldCount<Type>() == n,                                                    \
                #Type " changed: add the new field to schema/state.capnp and serialize/codec.cpp, " \
                "then update this count")
BATON_CODEC_COVERS(EventNode, 7);
BATON_CODEC_COVERS(EventExpr, 1);
BATON_CODEC_COVERS(ProcessDef, 2);
BATON_CODEC_COVERS(RLimitDef, 3);
BATON_CODEC_COVERS(CgroupSetting, 2);
BATON_CODEC_COVERS(CgroupDef, 3);
BATON_CODEC_COVERS(JobDef, 38);
BATON_CODEC_COVERS(RequestRef, 2);
BATON_CODEC_COVERS(Blocked, 3);
BATON_CODEC_COVERS(ProcessSlot, 8);
BATON_CODEC_COVERS(Instance, 24);
BATON_CODEC_COVERS(JobClass, 6);  // 4 of state, and where it is while encoded (not state)
BATON_CODEC_COVERS(Event, 7);
BATON_CODEC_COVERS(LogPipe, 3);
BATON_CODEC_COVERS(PendingRequest, 4);
BATON_CODEC_COVERS(Connection, 8);
BATON_CODEC_COVERS(HelperChild, 3);
BATON_CODEC_COVERS(Config, 8);
BATON_CODEC_COVERS(Reexec, 19);
BATON_CODEC_COVERS(Model, 19);

// ---- helpers ----
template <class L>
void setTexts(L list, const std::vector<std::string>& v) {
  for (size_t i = 0; i < v.size(); ++i) list.set(unsigned(i), capnp::Text::Reader(v[i].data(), v[i].size()));
}
template <class B>
void textsOut(B&& init, const std::vector<std::string>& v) {
  setTexts(init(unsigned(v.size())), v);
}
std::vector<std::string> textsIn(capnp::List<capnp::Text>::Reader r) {
  std::vector<std::string> v;
  v.reserve(r.size());
  for (auto t : r) v.emplace_back(t.cStr(), t.size());
  return v;
}
capnp::Data::Reader bytes(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string bytesIn(capnp::Data::Reader d) { return std::string(reinterpret_cast<const char*>(d.begin()), d.size()); }
std::string textIn(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

// Map a schema enum onto the model enum with the same ordinal, refusing unknown values.
template <class To, class From>
bool enumIn(From raw, int count, To& out, const char* what, std::string& error) {
  int v = int(raw);
  if (v < 0 || v >= count) {
    error = std::string("unknown ") + what + " value " + std::to_string(v);
    return false;
  }
  out = To(v);
  return true;
}

// Text with its known length. Every std::string goes through this: it saves a strlen per field,
// and a std::string converted to Text implicitly is cut at its first NUL, while the decoder keeps
// a Text's bytes up to its length (a value with a NUL inside would change across a snapshot).
inline capnp::Text::Reader txt(const std::string& v) { return capnp::Text::Reader(v.data(), v.size()); }

// ---- encode ----
// Sparse: a Text or list left unset reads back as empty, so empty values are not written at all
// (an empty Text would still cost a pointer and a word). This halves the snapshot of a typical
// job and the work of both serializing and restoring it.
#define SET_TEXT(b, Field, v) \
  do {                        \
    if (!(v).empty()) (b).set##Field(txt(v)); \
  } while (0)
#define SET_TEXTS(b, Field, v) \
  do {                         \
    if (!(v).empty()) setTexts((b).init##Field(unsigned((v).size())), v); \
  } while (0)

void encodeExpr(const EventExpr& e, state::EventExpr::Builder b) {
  auto nodes = b.initNodes(unsigned(e.nodes.size()));
  for (size_t i = 0; i < e.nodes.size(); ++i) {
    const EventNode& n = e.nodes[i];
    auto o = nodes[unsigned(i)];
    o.setType(state::EventNode::Type(n.type));
    SET_TEXT(o, Name, n.name);
    SET_TEXTS(o, Args, n.args);
    o.setLeft(n.left);
    o.setRight(n.right);
    o.setMatched(n.matched);
    o.setEventId(n.eventId);
  }
}

void encodeDef(const JobDef& d, state::JobDef::Builder b) {
  SET_TEXT(b, Name, d.name);
  SET_TEXT(b, Path, d.path);
  SET_TEXT(b, Description, d.description);
  SET_TEXT(b, Author, d.author);
  SET_TEXT(b, Version, d.version);
  SET_TEXT(b, Usage, d.usage);
  SET_TEXTS(b, Env, d.env);
  SET_TEXTS(b, ExportVars, d.exportVars);
  SET_TEXT(b, Instance, d.instance);
  if (!d.startOn.empty()) encodeExpr(d.startOn, b.initStartOn());
  if (!d.stopOn.empty()) encodeExpr(d.stopOn, b.initStopOn());
  SET_TEXTS(b, Emits, d.emits);
  unsigned present = 0;
  for (const ProcessDef& p : d.process) present += p.present() || p.script;
  if (present) {
    auto procs = b.initProcess(present);
    unsigned k = 0;
    for (int t = 0; t < kProcessTypes; ++t) {
      const ProcessDef& p = d.process[t];
      if (!p.present() && !p.script) continue;  // absent processes are implied
      procs[k].setType(state::ProcessType(t));
      auto def = procs[k++].initDef();
      def.setScript(p.script);
      SET_TEXT(def, Command, p.command);
    }
  }
  b.setExpect(state::ExpectType(d.expect));
  b.setTask(d.task);
  b.setKillSignal(d.killSignal);
  b.setKillTimeoutMs(d.killTimeoutMs);
  b.setReloadSignal(d.reloadSignal);
  b.setRespawn(d.respawn);
  b.setRespawnLimit(d.respawnLimit);
  b.setRespawnIntervalSec(d.respawnIntervalSec);
  if (!d.normalExitCodes.empty()) {
    auto codes = b.initNormalExitCodes(unsigned(d.normalExitCodes.size()));
    for (size_t i = 0; i < d.normalExitCodes.size(); ++i) codes.set(unsigned(i), d.normalExitCodes[i]);
  }
  if (!d.normalExitSignals.empty()) {
    auto sigs = b.initNormalExitSignals(unsigned(d.normalExitSignals.size()));
    for (size_t i = 0; i < d.normalExitSignals.size(); ++i) sigs.set(unsigned(i), d.normalExitSignals[i]);
  }
  b.setConsole(state::ConsoleType(d.console));
  b.setUmask(d.umask);
  b.setHasNice(d.hasNice);
  b.setNice(d.nice);
  b.setHasOomScore(d.hasOomScore);
  b.setOomScore(d.oomScore);
  if (!d.limits.empty()) {
    auto limits = b.initLimits(unsigned(d.limits.size()));
    for (size_t i = 0; i < d.limits.size(); ++i) {
      limits[unsigned(i)].setResource(d.limits[i].resource);
      limits[unsigned(i)].setSoft(d.limits[i].soft);
      limits[unsigned(i)].setHard(d.limits[i].hard);
    }
  }
  SET_TEXT(b, Chroot, d.chroot);
  SET_TEXT(b, Chdir, d.chdir);
  SET_TEXT(b, Setuid, d.setuid);
  SET_TEXT(b, Setgid, d.setgid);
  if (!d.cgroups.empty()) {
    auto cgs = b.initCgroups(unsigned(d.cgroups.size()));
    for (size_t i = 0; i < d.cgroups.size(); ++i) {
      auto c = cgs[unsigned(i)];
      SET_TEXT(c, Controller, d.cgroups[i].controller);
      SET_TEXT(c, Name, d.cgroups[i].name);
      if (d.cgroups[i].settings.empty()) continue;
      auto st = c.initSettings(unsigned(d.cgroups[i].settings.size()));
      for (size_t k = 0; k < d.cgroups[i].settings.size(); ++k) {
        SET_TEXT(st[unsigned(k)], Key, d.cgroups[i].settings[k].key);
        SET_TEXT(st[unsigned(k)], Value, d.cgroups[i].settings[k].value);
      }
    }
  }
  SET_TEXTS(b, Unsupported, d.unsupported);
  SET_TEXT(b, ContentHash, d.contentHash);
  b.setReadyTimeoutMs(d.readyTimeoutMs);
}

void encodeRef(const RequestRef& r, state::RequestRef::Builder b) {
  b.setConnId(r.connId);
  b.setRequestId(r.requestId);
}

bool idleSlot(const ProcessSlot& s) { return s == ProcessSlot{}; }

void encodeInstance(const Instance& in, uint32_t defIndex, state::Instance::Builder b) {
  SET_TEXT(b, Name, in.name);
  b.setDefIndex(defIndex);
  b.setGoal(state::Goal(in.goal));
  b.setState(state::JobState(in.state));
  SET_TEXTS(b, Env, in.env);
  SET_TEXTS(b, StopEnv, in.stopEnv);
  if (!in.stopOn.empty()) encodeExpr(in.stopOn, b.initStopOn());
  unsigned used = 0;
  for (const ProcessSlot& s : in.procs) used += !idleSlot(s);
  if (used) {
    auto procs = b.initProcs(used);  // idle slots are implied
    unsigned k = 0;
    for (int t = 0; t < kProcessTypes; ++t) {
      const ProcessSlot& s = in.procs[t];
      if (idleSlot(s)) continue;
      auto o = procs[k++];
      o.setType(state::ProcessType(t));
      o.setPid(s.pid);
      o.setStartTime(s.startTime);
      o.setSpawnValid(s.spawnValid);
      o.setStatusFd(s.statusFd);
      SET_TEXT(o, PendingScript, s.pendingScript);
      o.setScriptFd(s.scriptFd);
      o.setEarlyExit(s.earlyExit);
      o.setEarlyExitStatus(s.earlyExitStatus);
    }
  }
  b.setBlocker(in.blocker);
  if (!in.blocking.empty()) {
    auto blocking = b.initBlocking(unsigned(in.blocking.size()));
    for (size_t i = 0; i < in.blocking.size(); ++i) {
      blocking[unsigned(i)].setKind(state::Blocked::Kind(in.blocking[i].kind));
      blocking[unsigned(i)].setEventId(in.blocking[i].eventId);
      encodeRef(in.blocking[i].request, blocking[unsigned(i)].initRequest());
    }
  }
  b.setKillDeadlineNs(in.killDeadlineNs);
  b.setKillProcess(state::ProcessType(in.killProcess));
  b.setFailed(in.failed);
  b.setFailedProcess(state::ProcessType(in.failedProcess));
  b.setExitStatus(in.exitStatus);
  SET_TEXT(b, FailReason, in.failReason);
  b.setRespawnWindowStartNs(in.respawnWindowStartNs);
  b.setRespawnCount(in.respawnCount);
  b.setTraceState(state::TraceState(in.traceState));
  b.setTraceForks(in.traceForks);
  b.setReadyState(state::ReadyState(in.readyState));
  b.setReadyDeadlineNs(in.readyDeadlineNs);
  SET_TEXT(b, StatusText, in.statusText);
  b.setNotifyErrno(in.notifyErrno);
}

void encodeReexec(const Reexec& r, state::Reexec::Builder b) {
  b.setConnId(r.connId);
  b.setRequestId(r.requestId);
  b.setFromBinary(txt(r.fromBinary));
  b.setToBinary(txt(r.toBinary));
  b.setSerializeStartNs(r.serializeStartNs);
  b.setSerializeNs(r.serializeNs);
  b.setPreflightNs(r.preflightNs);
  b.setExecStartNs(r.execStartNs);
  b.setLoadNs(r.loadNs);
  b.setRestoreNs(r.restoreNs);
  b.setRearmNs(r.rearmNs);
  b.setDowntimeNs(r.downtimeNs);
  b.setOk(r.ok);
  b.setRolledBack(r.rolledBack);
  b.setMessage(txt(r.message));
  b.setAtNs(r.atNs);
  b.setSnapshotBytes(r.snapshotBytes);
  b.setCount(r.count);
  b.setFormatPath(txt(r.formatPath));
}

// ---- decode ----
// Every check a decode makes is in a check* function, and fill* functions only run on what passed
// them: a restore checks each class in the window and decodes it later (ClassMap::decode), so
// the two must not drift apart.
template <class E>
bool enumOk(E raw, int count, const char* what, std::string& error) {
  const int v = int(raw);
  if (v >= 0 && v < count) return true;
  error = std::string("unknown ") + what + " value " + std::to_string(v);
  return false;
}

// An expression is a tree of at most kMaxEventExprNodes nodes in post-order, as the parser and
// the Upstart import build them: printing and matching recurse over it from the root.
bool checkExpr(state::EventExpr::Reader r, std::string& error) {
  const auto nodes = r.getNodes();
  if (nodes.size() > kMaxEventExprNodes) {
    error = "event expression of " + std::to_string(nodes.size()) + " nodes (at most " +
            std::to_string(kMaxEventExprNodes) + ")";
    return false;
  }
  // Which nodes are some node's child: in a word for the usual small expressions (this runs for
  // every expression a restore reads, inside the re-exec window).
  uint64_t childBits = 0;
  std::vector<bool> childFlags(nodes.size() > 64 ? nodes.size() : 0, false);
  auto isChild = [&](int32_t i) { return childFlags.empty() ? (childBits >> i & 1) != 0 : bool(childFlags[size_t(i)]); };
  auto setChild = [&](int32_t i) {
    if (childFlags.empty()) childBits |= uint64_t(1) << i;
    else childFlags[size_t(i)] = true;
  };
  int32_t self = 0;
  for (auto n : nodes) {
    if (!enumOk(n.getType(), 3, "event node type", error)) return false;
    if (n.getType() != state::EventNode::Type::MATCH) {
      // Children come before their parent (post-order): anything else would loop or crash. And
      // each node is the child of one parent at most: a node shared by two parents is printed
      // and walked twice, and a chain of such nodes doubles that at every level.
      const int32_t left = n.getLeft(), right = n.getRight();
      if (left < 0 || right < 0 || left >= self || right >= self || left == right ||
          isChild(left) || isChild(right)) {
        error = "event expression node " + std::to_string(self) + " has invalid children";
        return false;
      }
      setChild(left);
      setChild(right);
    }
    ++self;
  }
  return true;
}

void fillExpr(state::EventExpr::Reader r, EventExpr& e) {
  e.nodes.clear();
  e.nodes.reserve(r.getNodes().size());
  for (auto n : r.getNodes()) {
    EventNode& o = e.nodes.emplace_back();
    o.type = EventNode::Type(int(n.getType()));
    o.name = textIn(n.getName());
    o.args = textsIn(n.getArgs());
    o.left = n.getLeft();
    o.right = n.getRight();
    o.matched = n.getMatched();
    o.eventId = n.getEventId();
  }
}

bool decodeExpr(state::EventExpr::Reader r, EventExpr& e, std::string& error) {
  if (!checkExpr(r, error)) return false;
  fillExpr(r, e);
  return true;
}

bool decodeDef(state::JobDef::Reader r, JobDef& d, std::string& error) {
  d.name = textIn(r.getName());
  d.path = textIn(r.getPath());
  d.description = textIn(r.getDescription());
  d.author = textIn(r.getAuthor());
  d.version = textIn(r.getVersion());
  d.usage = textIn(r.getUsage());
  d.env = textsIn(r.getEnv());
  d.exportVars = textsIn(r.getExportVars());
  d.instance = textIn(r.getInstance());
  if (!decodeExpr(r.getStartOn(), d.startOn, error) || !decodeExpr(r.getStopOn(), d.stopOn, error)) {
    error = "job " + d.name + ": " + error;
    return false;
  }
  d.emits = textsIn(r.getEmits());
  bool seen[kProcessTypes] = {};
  for (auto p : r.getProcess()) {
    ProcessType t;
    if (!enumIn(p.getType(), kProcessTypes, t, "process type", error)) return false;
    if (seen[int(t)]) {
      error = "job " + d.name + ": process type listed twice";
      return false;
    }
    seen[int(t)] = true;
    d.process[int(t)].script = p.getDef().getScript();
    d.process[int(t)].command = textIn(p.getDef().getCommand());
  }
  if (!enumIn(r.getExpect(), 5, d.expect, "expect type", error)) return false;
  d.task = r.getTask();
  d.killSignal = r.getKillSignal();
  d.killTimeoutMs = r.getKillTimeoutMs();
  d.reloadSignal = r.getReloadSignal();
  d.respawn = r.getRespawn();
  d.respawnLimit = r.getRespawnLimit();
  d.respawnIntervalSec = r.getRespawnIntervalSec();
  for (int32_t c : r.getNormalExitCodes()) d.normalExitCodes.push_back(c);
  for (int32_t s : r.getNormalExitSignals()) d.normalExitSignals.push_back(s);
  if (!enumIn(r.getConsole(), 4, d.console, "console type", error)) return false;
  d.umask = r.getUmask();
  d.hasNice = r.getHasNice();
  d.nice = r.getNice();
  d.hasOomScore = r.getHasOomScore();
  d.oomScore = r.getOomScore();
  for (auto l : r.getLimits()) d.limits.push_back({l.getResource(), l.getSoft(), l.getHard()});
  d.chroot = textIn(r.getChroot());
  d.chdir = textIn(r.getChdir());
  d.setuid = textIn(r.getSetuid());
  d.setgid = textIn(r.getSetgid());
  for (auto c : r.getCgroups()) {
    CgroupDef cg;
    cg.controller = textIn(c.getController());
    cg.name = textIn(c.getName());
    for (auto s : c.getSettings()) cg.settings.push_back({textIn(s.getKey()), textIn(s.getValue())});
    d.cgroups.push_back(std::move(cg));
  }
  d.unsupported = textsIn(r.getUnsupported());
  d.contentHash = textIn(r.getContentHash());
  d.readyTimeoutMs = r.getReadyTimeoutMs();
  return true;
}

RequestRef refIn(state::RequestRef::Reader r) { return {r.getConnId(), r.getRequestId()}; }

std::string instanceName(state::Instance::Reader r) { return textIn(r.getName()); }

bool checkInstance(state::Instance::Reader r, size_t defCount, std::string& error) {
  if (r.getDefIndex() >= defCount) {
    error = "instance '" + instanceName(r) + "' names definition " + std::to_string(r.getDefIndex()) +
            " of " + std::to_string(defCount);
    return false;
  }
  if (!enumOk(r.getGoal(), 3, "goal", error) || !enumOk(r.getState(), kJobStates, "job state", error) ||
      !checkExpr(r.getStopOn(), error))
    return false;
  bool seen[kProcessTypes] = {};
  for (auto p : r.getProcs()) {
    if (!enumOk(p.getType(), kProcessTypes, "process type", error)) return false;
    if (seen[int(p.getType())]) {
      error = "instance '" + instanceName(r) + "': process slot listed twice";
      return false;
    }
    seen[int(p.getType())] = true;
  }
  for (auto b : r.getBlocking())
    if (!enumOk(b.getKind(), 2, "blocked kind", error)) return false;
  return enumOk(r.getKillProcess(), kProcessTypes, "process type", error) &&
         enumOk(r.getFailedProcess(), kProcessTypes, "process type", error) &&
         enumOk(r.getTraceState(), 5, "trace state", error) && enumOk(r.getReadyState(), 5, "ready state", error);
}

void fillSlot(state::ProcessSlot::Reader p, ProcessSlot& s) {
  s.pid = p.getPid();
  s.startTime = p.getStartTime();
  s.spawnValid = p.getSpawnValid();
  s.statusFd = p.getStatusFd();
  s.pendingScript = textIn(p.getPendingScript());
  s.scriptFd = p.getScriptFd();
  s.earlyExit = p.getEarlyExit();
  s.earlyExitStatus = p.getEarlyExitStatus();
}

void fillInstance(state::Instance::Reader r, const std::vector<DefRef>& defs, Instance& in) {
  in.name = textIn(r.getName());
  in.def = defs[r.getDefIndex()];
  in.goal = Goal(int(r.getGoal()));
  in.state = JobState(int(r.getState()));
  in.env = textsIn(r.getEnv());
  in.stopEnv = textsIn(r.getStopEnv());
  fillExpr(r.getStopOn(), in.stopOn);
  for (auto p : r.getProcs()) fillSlot(p, in.procs[int(p.getType())]);
  in.blocker = r.getBlocker();
  in.blocking.reserve(r.getBlocking().size());
  for (auto b : r.getBlocking())
    in.blocking.push_back({Blocked::Kind(int(b.getKind())), b.getEventId(), refIn(b.getRequest())});
  in.killDeadlineNs = r.getKillDeadlineNs();
  in.killProcess = ProcessType(int(r.getKillProcess()));
  in.failed = r.getFailed();
  in.failedProcess = ProcessType(int(r.getFailedProcess()));
  in.exitStatus = r.getExitStatus();
  in.failReason = textIn(r.getFailReason());
  in.respawnWindowStartNs = r.getRespawnWindowStartNs();
  in.respawnCount = r.getRespawnCount();
  in.traceState = TraceState(int(r.getTraceState()));
  in.traceForks = r.getTraceForks();
  in.readyState = ReadyState(int(r.getReadyState()));
  in.readyDeadlineNs = r.getReadyDeadlineNs();
  in.statusText = textIn(r.getStatusText());
  in.notifyErrno = r.getNotifyErrno();
}

// A class: its definitions exist, its expression and instances pass their checks, and no
// instance is listed twice. `name` is the class's name (for the error).
bool checkClass(state::JobClass::Reader c, const std::string& name, std::string& error) {
  const size_t defCount = c.getDefs().size();
  if (defCount == 0) {
    error = "job " + name + " has no definition";
    return false;
  }
  if (!checkExpr(c.getStartOn(), error)) {
    error = "job " + name + ": " + error;
    return false;
  }
  auto instances = c.getInstances();
  bool ordered = true;  // a writer lists instances in key order: then a neighbour check suffices
  for (unsigned i = 0; i < instances.size(); ++i) {
    if (!checkInstance(instances[i], defCount, error)) {
      error = "job " + name + ": " + error;
      return false;
    }
    if (i > 0) {
      std::string_view prev(instances[i - 1].getName().cStr(), instances[i - 1].getName().size());
      std::string_view cur(instances[i].getName().cStr(), instances[i].getName().size());
      if (cur == prev) {
        error = "job " + name + ": instance '" + std::string(cur) + "' listed twice";
        return false;
      }
      ordered = ordered && prev < cur;
    }
  }
  if (!ordered) {
    std::map<std::string_view, int> seen;
    for (auto i : instances)
      if (!seen.emplace(std::string_view(i.getName().cStr(), i.getName().size()), 0).second) {
        error = "job " + name + ": instance '" + instanceName(i) + "' listed twice";
        return false;
      }
  }
  return true;
}

void fillClass(state::JobClass::Reader c, const std::vector<DefRef>& defs, JobClass& cls) {
  cls.def = defs[0];
  fillExpr(c.getStartOn(), cls.startOn);
  cls.deleted = c.getDeleted();
  for (auto i : c.getInstances()) {
    Instance inst;
    fillInstance(i, defs, inst);
    std::string key = inst.name;
    if (cls.instances.empty() || cls.instances.rbegin()->first < key)
      cls.instances.emplace_hint(cls.instances.end(), std::move(key), std::move(inst));
    else
      cls.instances.emplace(std::move(key), std::move(inst));
  }
}

void decodeReexec(state::Reexec::Reader r, Reexec& o) {
  o.connId = r.getConnId();
  o.requestId = r.getRequestId();
  o.fromBinary = textIn(r.getFromBinary());
  o.toBinary = textIn(r.getToBinary());
  o.serializeStartNs = r.getSerializeStartNs();
  o.serializeNs = r.getSerializeNs();
  o.preflightNs = r.getPreflightNs();
  o.execStartNs = r.getExecStartNs();
  o.loadNs = r.getLoadNs();
  o.restoreNs = r.getRestoreNs();
  o.rearmNs = r.getRearmNs();
  o.downtimeNs = r.getDowntimeNs();
  o.ok = r.getOk();
  o.rolledBack = r.getRolledBack();
  o.message = textIn(r.getMessage());
  o.atNs = r.getAtNs();
  o.snapshotBytes = r.getSnapshotBytes();
  o.count = r.getCount();
  o.formatPath = textIn(r.getFormatPath());
}

// Definitions still in a decoded message (owned by `owner`), decoded one by one on first use.
class MessageDefs final : public DefSource {
 public:
  explicit MessageDefs(std::shared_ptr<const void> owner) : owner_(std::move(owner)) {}
  bool decode(uint32_t index, JobDef& out, std::string& error) const override {
    if (index >= defs.size()) {
      error = "definition " + std::to_string(index) + " of " + std::to_string(defs.size());
      return false;
    }
    try {
      return decodeDef(defs[index], out, error);
    } catch (const kj::Exception& e) {
      error = e.getDescription().cStr();
      return false;
    }
  }
  std::vector<state::JobDef::Reader> defs;

 private:
  std::shared_ptr<const void> owner_;
};

// Job classes still in a decoded message (owned by `owner` through `defs`), decoded one by one
// when code asks for it (ClassMap::decode, ClassMap::readOnly). Each was checked by checkClass
// when the restore listed it.
class MessageClasses final : public ClassSource {
 public:
  explicit MessageClasses(std::shared_ptr<MessageDefs> defs) : defs_(std::move(defs)) {}

  void decode(uint32_t index, JobClass& out) const override {
    auto c = classes.at(index);
    // Its definitions join the message's lazy ones (still decoded only on first use), once per
    // class however often it is decoded: a `list` reads a held class through a fresh copy each
    // time, and must not grow the list of definitions with every request.
    if (defBase_.size() < classes.size()) defBase_.resize(classes.size(), kNoDefs);
    uint32_t& base = defBase_[index];
    if (base == kNoDefs) {
      base = uint32_t(defs_->defs.size());
      for (auto d : c.getDefs()) defs_->defs.push_back(d);
    }
    std::vector<DefRef> defs;
    defs.reserve(c.getDefs().size());
    for (uint32_t i = 0; i < c.getDefs().size(); ++i) defs.push_back(DefRef::lazy(defs_, base + i));
    fillClass(c, defs, out);
  }

  void forEachSlot(uint32_t index, const SlotVisitor& visit) const override {
    for (auto i : classes.at(index).getInstances()) {
      if (i.getProcs().size() == 0) continue;
      const std::string name = instanceName(i);
      const TraceState trace = TraceState(int(i.getTraceState()));
      for (auto p : i.getProcs()) {
        ProcessSlot slot;
        fillSlot(p, slot);
        // Only used slots, as for a decoded class: a writer leaves idle ones out, but a slot
        // listed with nothing in it reads as idle.
        if (idleSlot(slot)) continue;
        visit(name, ProcessType(int(p.getType())), slot, trace);
      }
    }
  }

  size_t instanceCount(uint32_t index) const override { return classes.at(index).getInstances().size(); }
  size_t classCount() const override { return classes.size(); }

  bool anyMatchNode(uint32_t index, const std::function<bool(std::string_view)>& name,
                    const std::function<bool(const EventNode&)>& node) const override {
    auto any = [&](state::EventExpr::Reader e) {
      for (auto n : e.getNodes()) {
        if (n.getType() != state::EventNode::Type::MATCH) continue;
        std::string_view pattern(n.getName().cStr(), n.getName().size());
        if (!name(pattern)) continue;
        EventNode copy;
        copy.name = pattern;
        copy.args = textsIn(n.getArgs());
        if (node(copy)) return true;
      }
      return false;
    };
    auto c = classes.at(index);
    if (any(c.getStartOn())) return true;
    for (auto i : c.getInstances())
      if (any(i.getStopOn())) return true;
    return false;
  }

  bool waitsOnEvent(uint32_t index, uint64_t eventId) const override {
    for (auto i : classes.at(index).getInstances())
      if (i.getBlocker() == eventId) return true;
    return false;
  }

  state::JobClass::Reader reader(uint32_t index) const { return classes.at(index); }

  std::vector<state::JobClass::Reader> classes;

 private:
  std::shared_ptr<MessageDefs> defs_;
  static constexpr uint32_t kNoDefs = UINT32_MAX;
  mutable std::vector<uint32_t> defBase_;  // per class: where its definitions start in defs_
};

// A restore decodes at once the classes the loop's per-iteration scans look at (kill timers,
// the idle sweep); every other class stays encoded until something asks for it.
bool decodeNow(state::JobClass::Reader c) {
  if (c.getDeleted()) return true;
  for (auto i : c.getInstances()) {
    if (i.getKillDeadlineNs() != 0 || i.getReadyDeadlineNs() != 0) return true;
    // A named instance at rest is dropped by the sweep.
    if (i.getName().size() != 0 && i.getState() == state::JobState::WAITING && i.getGoal() == state::Goal::STOP)
      return true;
  }
  return false;
}

}  // namespace

DefRef::DefRef(std::shared_ptr<const JobDef> def) {
  if (!def) return;
  cell_ = std::make_shared<Cell>();
  cell_->def = std::move(def);
}

DefRef DefRef::lazy(std::shared_ptr<const DefSource> source, uint32_t index) {
  DefRef r;
  r.cell_ = std::make_shared<Cell>();
  r.cell_->source = std::move(source);
  r.cell_->index = index;
  return r;
}

const JobDef* DefRef::get() const {
  if (!cell_) return nullptr;
  if (!cell_->def) {
    auto def = std::make_shared<JobDef>();
    std::string error;
    if (!cell_->source->decode(cell_->index, *def, error))
      throw std::runtime_error("a job definition kept in the restored snapshot cannot be decoded: " + error);
    cell_->def = std::move(def);
    // The source stays: the next snapshot copies the definition from it, still encoded, which is
    // cheaper than encoding the decoded one again (a definition never changes).
  }
  return cell_->def.get();
}

JobClass& ClassMap::decode(iterator it) {
  JobClass& cls = it->second;
  if (!cls.encoded) return cls;
  std::shared_ptr<const ClassSource> source = std::move(cls.encoded);
  cls.encoded.reset();
  try {
    source->decode(cls.encodedIndex, cls);
  } catch (...) {
    cls = JobClass{};
    cls.encoded = std::move(source);
    throw;
  }
  return cls;
}

JobClass& ClassMap::decoded(const std::string& name) {
  auto it = find(name);
  if (it == end()) throw std::out_of_range("no job class " + name);
  return decode(it);
}

const JobClass& ClassMap::readOnly(const JobClass& cls, JobClass& scratch) {
  if (!cls.encoded) return cls;
  scratch = JobClass{};
  cls.encoded->decode(cls.encodedIndex, scratch);
  return scratch;
}

bool ClassMap::operator==(const ClassMap& o) const {
  if (map_().size() != o.map_().size()) return false;
  for (auto a = begin(), b = o.begin(); a != end(); ++a, ++b)
    if (a->first != b->first || !(a->second == b->second)) return false;
  return true;
}

void ClassMap::forEachSlot(const SlotVisitor& visit) const {
  for (auto& entry : map_()) {
    // Named, not a structured binding: C++20 does not let a lambda capture a binding (g++
    // accepts it, clang does not).
    const std::string& job = entry.first;
    const JobClass& cls = entry.second;
    if (cls.encoded) {
      cls.encoded->forEachSlot(cls.encodedIndex, [&](const std::string& inst, ProcessType t, const ProcessSlot& s,
                                                     TraceState trace) { visit(job, inst, t, s, trace); });
      continue;
    }
    for (auto& [name, inst] : cls.instances)
      for (int t = 0; t < kProcessTypes; ++t)
        if (!idleSlot(inst.procs[t])) visit(job, name, ProcessType(t), inst.procs[t], inst.traceState);
  }
}

size_t ClassMap::instanceCount() const {
  size_t n = 0;
  for (auto& [job, cls] : map_()) n += cls.encoded ? cls.encoded->instanceCount(cls.encodedIndex) : cls.instances.size();
  return n;
}

size_t ClassMap::encodedCount() const {
  size_t n = 0;
  for (auto& [job, cls] : map_()) n += cls.encoded != nullptr;
  return n;
}

namespace {
// A decoded class. Definitions are shared: the class's own first, then older ones its instances
// run. One never decoded since it was last read from a message is copied across encoded.
void encodeClass(const std::string& name, const JobClass& cls, state::JobClass::Builder c) {
  c.setName(txt(name));
  std::vector<const DefRef*> defs{&cls.def};
  std::map<const void*, uint32_t> index{{cls.def.identity(), 0}};
  for (auto& [iname, inst] : cls.instances)
    if (index.emplace(inst.def.identity(), uint32_t(defs.size())).second) defs.push_back(&inst.def);
  auto dl = c.initDefs(unsigned(defs.size()));
  for (size_t i = 0; i < defs.size(); ++i) {
    auto* encoded = dynamic_cast<const MessageDefs*>(defs[i]->source());
    if (encoded && defs[i]->sourceIndex() < encoded->defs.size())
      dl.setWithCaveats(unsigned(i), encoded->defs[defs[i]->sourceIndex()]);
    else
      encodeDef(**defs[i], dl[unsigned(i)]);
  }
  encodeExpr(cls.startOn, c.initStartOn());
  c.setDeleted(cls.deleted);
  auto il = c.initInstances(unsigned(cls.instances.size()));
  unsigned ii = 0;
  for (auto& [iname, inst] : cls.instances) encodeInstance(inst, index[inst.def.identity()], il[ii++]);
}

}  // namespace

void encodeModel(const Model& m, state::Model::Builder b, EncodeHooks* hooks) {
  if (hooks) hooks->pending.clear();
  auto cfg = b.initConfig();
  cfg.setConfDir(txt(m.config.confDir));
  cfg.setLogDir(txt(m.config.logDir));
  cfg.setSocketPath(txt(m.config.socketPath));
  cfg.setCgroupBase(txt(m.config.cgroupBase));
  cfg.setCgroupRoot(txt(m.config.cgroupRoot));
  cfg.setLogPriority(txt(m.config.logPriority));
  cfg.setTestHooks(m.config.testHooks);
  cfg.setIdleEncodeMs(m.config.idleEncodeMs);

  auto classes = b.initClasses(unsigned(m.classes.size()));
  unsigned ci = 0;
  JobClass scratch;
  for (auto& [name, cls] : m.classes) {
    if (auto* restored = dynamic_cast<const MessageClasses*>(cls.encoded.get())) {
      // Not touched since the restore: across as it came, still encoded; as bytes if a snapshot
      // written before holds it contiguously, else walked by Cap'n Proto.
      if (hooks && hooks->images) {
        auto found = hooks->images->byClass.find({cls.encoded.get(), cls.encodedIndex});
        capnp::AnyStruct::Builder any = classes[ci];
        if (found != hooks->images->byClass.end() && found->second.dataWords > 0 &&
            any.getDataSection().size() == found->second.dataWords * sizeof(capnp::word) &&
            any.getPointerSection().size() == found->second.pointerCount) {
          hooks->pending.push_back({reinterpret_cast<capnp::word*>(any.getDataSection().begin()), &found->second, ci});
          ++ci;
          continue;
        }
      }
      const size_t begin = hooks && hooks->cursor ? hooks->cursor() : 0;
      classes.setWithCaveats(ci, restored->reader(cls.encodedIndex));
      if (hooks && hooks->cursor) hooks->extents.push_back({cls.encoded.get(), cls.encodedIndex, ci, begin, hooks->cursor()});
      ++ci;
      continue;
    }
    // Decoded, or held by another source (none today): that one is encoded from a decoded copy
    // (the model is const here, and a snapshot changes nothing in it).
    encodeClass(name, ClassMap::readOnly(cls, scratch), classes[ci++]);
  }

  auto events = b.initEvents(unsigned(m.events.size()));
  for (size_t i = 0; i < m.events.size(); ++i) {
    const Event& e = m.events[i];
    auto o = events[unsigned(i)];
    o.setId(e.id);
    o.setName(txt(e.name));
    textsOut([&](unsigned k) { return o.initEnv(k); }, e.env);
    o.setProgress(state::EventProgress(e.progress));
    o.setFailed(e.failed);
    o.setBlockers(e.blockers);
    auto w = o.initWaiters(unsigned(e.waiters.size()));
    for (size_t k = 0; k < e.waiters.size(); ++k) encodeRef(e.waiters[k], w[unsigned(k)]);
  }
  b.setNextEventId(m.nextEventId);
  auto logs = b.initLogPipes(unsigned(m.logPipes.size()));
  for (size_t i = 0; i < m.logPipes.size(); ++i) {
    logs[unsigned(i)].setFd(m.logPipes[i].fd);
    logs[unsigned(i)].setLogName(txt(m.logPipes[i].logName));
    logs[unsigned(i)].setUnwritten(bytes(m.logPipes[i].unwritten));
  }
  b.setListenFd(m.listenFd);
  auto conns = b.initConnections(unsigned(m.connections.size()));
  for (size_t i = 0; i < m.connections.size(); ++i) {
    const Connection& c = m.connections[i];
    auto o = conns[unsigned(i)];
    o.setId(c.id);
    o.setFd(c.fd);
    o.setUid(c.uid);
    o.setPid(c.pid);
    o.setInBuf(bytes(c.inBuf));
    o.setOutBuf(bytes(c.outBuf));
    o.setClosing(c.closing);
    auto p = o.initPending(unsigned(c.pending.size()));
    for (size_t k = 0; k < c.pending.size(); ++k) {
      p[unsigned(k)].setRequestId(c.pending[k].requestId);
      p[unsigned(k)].setKind(state::PendingRequest::Kind(c.pending[k].kind));
      p[unsigned(k)].setJob(txt(c.pending[k].job));
      p[unsigned(k)].setInstance(txt(c.pending[k].instance));
    }
  }
  b.setNextConnId(m.nextConnId);
  auto helpers = b.initHelpers(unsigned(m.helpers.size()));
  for (size_t i = 0; i < m.helpers.size(); ++i) {
    helpers[unsigned(i)].setPid(m.helpers[i].pid);
    helpers[unsigned(i)].setStartTime(m.helpers[i].startTime);
    helpers[unsigned(i)].setRole(txt(m.helpers[i].role));
  }
  auto stops = b.initUnclaimedTraceStops(unsigned(m.unclaimedTraceStops.size()));
  for (size_t i = 0; i < m.unclaimedTraceStops.size(); ++i) stops.set(unsigned(i), m.unclaimedTraceStops[i]);
  textsOut([&](unsigned k) { return b.initConfigProblems(k); }, m.configProblems);
  b.setReloadPending(m.reloadPending);
  b.setDaemonUid(m.daemonUid);
  b.setBootTimeNs(m.bootTimeNs);
  encodeReexec(m.reexec, b.initReexec());
  b.setJobNofileSoft(m.jobNofileSoft);
  b.setNotifyFd(m.notifyFd);
  b.setNotifyRefused(m.notifyRefused);
  b.setNotifyMalformed(m.notifyMalformed);
  if (hooks && hooks->markPreverified && !hooks->pending.empty()) {
    auto list = b.initPreverifiedClasses(unsigned(hooks->pending.size()));
    for (size_t i = 0; i < hooks->pending.size(); ++i) list.set(unsigned(i), hooks->pending[i].listIndex);
  }
}

namespace {
// A struct or list pointer's target, from the pointer's own position (Cap'n Proto encoding:
// bits 0-1 kind, 2-31 signed offset in words from the word after the pointer).
constexpr uint64_t kKindMask = 3;
bool nearPointer(uint64_t w) { return (w & kKindMask) == 0 || (w & kKindMask) == 1; }
int64_t pointerOffset(uint64_t w) { return int64_t(int32_t(uint32_t(w)) >> 2); }
uint64_t withOffset(uint64_t w, int64_t offset) {
  return (w & ~uint64_t(0xffffffff)) | (uint32_t(int32_t(offset) * 4) | (w & kKindMask));
}
uint64_t wordAt(const capnp::word* p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}
}  // namespace

size_t placeImages(const EncodeHooks& hooks, capnp::word* free, size_t freeWords) {
  size_t used = 0;
  for (const EncodeHooks::Pending& p : hooks.pending) {
    const ClassImage& im = *p.image;
    if (im.objectWords > freeWords - used) return SIZE_MAX;
    capnp::word* objects = free + used;
    memcpy(objects, im.objects, im.objectWords * sizeof(capnp::word));
    memcpy(p.structWords, im.structWords, im.dataWords * sizeof(capnp::word));
    for (uint32_t k = 0; k < im.pointerCount; ++k) {
      const capnp::word* from = im.structWords + im.dataWords + k;
      capnp::word* to = p.structWords + im.dataWords + k;
      uint64_t w = wordAt(from);
      if (w != 0) {
        const capnp::word* target = from + 1 + pointerOffset(w);  // inside im.objects (collectImages)
        w = withOffset(w, (objects + (target - im.objects)) - (to + 1));
      }
      memcpy(to, &w, sizeof w);
    }
    used += im.objectWords;
  }
  return used;
}

void collectImages(state::Model::Reader model, const capnp::word* segment,
                   const std::vector<EncodeHooks::Extent>& extents, ClassImages& out) {
  auto classes = model.getClasses();
  for (const EncodeHooks::Extent& e : extents) {
    if (e.listIndex >= classes.size() || e.end < e.begin) continue;
    capnp::AnyStruct::Reader any = classes[e.listIndex];
    ClassImage im;
    im.structWords = reinterpret_cast<const capnp::word*>(any.getDataSection().begin());
    im.dataWords = uint32_t(any.getDataSection().size() / sizeof(capnp::word));
    im.pointerCount = any.getPointerSection().size();
    im.objects = segment + e.begin;
    im.objectWords = e.end - e.begin;
    // Every pointer of the struct must lead into the class's own objects (no far pointer).
    bool inside = true;
    for (uint32_t k = 0; k < im.pointerCount && inside; ++k) {
      const capnp::word* at = im.structWords + im.dataWords + k;
      const uint64_t w = wordAt(at);
      if (w == 0) continue;
      const capnp::word* target = at + 1 + pointerOffset(w);
      inside = nearPointer(w) && target >= im.objects && target <= im.objects + im.objectWords;
    }
    if (inside) out.byClass[{e.source, e.index}] = im;
  }
}

size_t holdEncoded(ClassMap& classes, const std::function<bool(const JobClass&)>& hold) {
  // A message more than a quarter of whose classes were decoded since carries that many dead
  // bytes: its remaining classes move to the new one (a byte copy each), so that it can be freed
  // once nothing decoded refers to it. (Half, as first written, left a start of 10,000 jobs in
  // batches with more dead bytes at rest.)
  std::map<const ClassSource*, size_t> held;
  for (auto& [name, cls] : classes)
    if (cls.encoded) ++held[cls.encoded.get()];
  std::vector<ClassMap::iterator> chosen;
  for (auto it = classes.begin(); it != classes.end(); ++it) {
    const JobClass& cls = it->second;
    if (cls.encoded ? held[cls.encoded.get()] * 4 < cls.encoded->classCount() * 3 : hold(cls)) chosen.push_back(it);
  }
  if (chosen.empty()) return 0;

  // About a kilobyte a class: one segment for most sets (more segments work as well).
  auto message = std::make_shared<capnp::MallocMessageBuilder>(unsigned(std::min<size_t>(chosen.size() * 160 + 64, 1u << 28)));
  auto list = message->initRoot<state::Model>().initClasses(unsigned(chosen.size()));
  JobClass scratch;
  for (size_t i = 0; i < chosen.size(); ++i) {
    const auto& [name, cls] = *chosen[i];
    if (auto* source = dynamic_cast<const MessageClasses*>(cls.encoded.get()))
      list.setWithCaveats(unsigned(i), source->reader(cls.encodedIndex));
    else  // decoded (or held by another source, none today: through a decoded copy)
      encodeClass(name, ClassMap::readOnly(cls, scratch), list[unsigned(i)]);
  }
  // Written just now by encodeClass, so nothing to check (a restore checks what it reads).
  auto source = std::make_shared<MessageClasses>(std::make_shared<MessageDefs>(message));
  auto readers = message->getRoot<state::Model>().asReader().getClasses();
  source->classes.reserve(readers.size());
  for (auto c : readers) source->classes.push_back(c);
  size_t count = 0;
  for (size_t i = 0; i < chosen.size(); ++i) {
    if (decodeNow(readers[unsigned(i)])) continue;  // the loop's scans need it decoded
    JobClass& cls = chosen[i]->second;
    cls = JobClass{};
    cls.encoded = source;
    cls.encodedIndex = uint32_t(i);
    ++count;
  }
  return count;
}

bool decodeModel(state::Model::Reader r, Model& m, std::string& error) {
  return decodeModelLazily(r, nullptr, m, error);
}

namespace {
// Insert into a std::map whose keys usually arrive in order (a snapshot lists them as the
// writer's map iterated them): then at the end, without a search. False if the key exists.
template <class Map, class Value>
bool emplaceInOrder(Map& map, std::string key, Value&& value) {
  if (map.empty() || std::prev(map.end())->first < key) {
    map.emplace_hint(map.end(), std::move(key), std::forward<Value>(value));
    return true;
  }
  return map.emplace(std::move(key), std::forward<Value>(value)).second;
}
}  // namespace

bool decodeModelLazily(state::Model::Reader r, std::shared_ptr<const void> owner, Model& m, std::string& error,
                       bool trustPreverified) {
  m = Model{};
  std::vector<bool> preverified;
  if (trustPreverified && owner) {
    preverified.assign(r.getClasses().size(), false);
    for (uint32_t i : r.getPreverifiedClasses()) {
      if (i >= preverified.size()) {
        error = "preverified class " + std::to_string(i) + " of " + std::to_string(preverified.size());
        return false;
      }
      preverified[i] = true;
    }
  }
  std::shared_ptr<MessageDefs> lazyDefs;
  if (owner) lazyDefs = std::make_shared<MessageDefs>(std::move(owner));
  auto cfg = r.getConfig();
  m.config.confDir = textIn(cfg.getConfDir());
  m.config.logDir = textIn(cfg.getLogDir());
  m.config.socketPath = textIn(cfg.getSocketPath());
  m.config.cgroupBase = textIn(cfg.getCgroupBase());
  m.config.cgroupRoot = textIn(cfg.getCgroupRoot());
  m.config.logPriority = textIn(cfg.getLogPriority());
  m.config.testHooks = cfg.getTestHooks();
  m.config.idleEncodeMs = cfg.getIdleEncodeMs();

  std::shared_ptr<MessageClasses> lazyClasses;
  if (lazyDefs) {
    lazyClasses = std::make_shared<MessageClasses>(lazyDefs);
    lazyClasses->classes.reserve(r.getClasses().size());
  }
  ClassMap& classes = m.classes;
  size_t index = 0;
  for (auto c : r.getClasses()) {
    std::string name = textIn(c.getName());
    const bool checked = index < preverified.size() && preverified[index];
    ++index;
    if (!checked && !checkClass(c, name, error)) return false;
    JobClass cls;
    if (lazyClasses && !decodeNow(c)) {
      // Checked, not decoded: held until code that needs it decodes it (ClassMap::decode).
      cls.encoded = lazyClasses;
      cls.encodedIndex = uint32_t(lazyClasses->classes.size());
      lazyClasses->classes.push_back(c);
    } else if (lazyClasses) {
      lazyClasses->classes.push_back(c);
      lazyClasses->decode(uint32_t(lazyClasses->classes.size() - 1), cls);
    } else {
      std::vector<DefRef> defs;
      for (auto d : c.getDefs()) {
        auto def = std::make_shared<JobDef>();
        if (!decodeDef(d, *def, error)) return false;
        defs.push_back(std::move(def));
      }
      fillClass(c, defs, cls);
    }
    if (!emplaceInOrder(classes, name, std::move(cls))) {
      error = "job " + name + " listed twice";
      return false;
    }
  }
  for (auto e : r.getEvents()) {
    Event o;
    o.id = e.getId();
    o.name = textIn(e.getName());
    o.env = textsIn(e.getEnv());
    if (!enumIn(e.getProgress(), 3, o.progress, "event progress", error)) return false;
    o.failed = e.getFailed();
    o.blockers = e.getBlockers();
    for (auto w : e.getWaiters()) o.waiters.push_back(refIn(w));
    m.events.push_back(std::move(o));
  }
  m.nextEventId = r.getNextEventId();
  for (auto l : r.getLogPipes()) m.logPipes.push_back({l.getFd(), textIn(l.getLogName()), bytesIn(l.getUnwritten())});
  m.listenFd = r.getListenFd();
  for (auto c : r.getConnections()) {
    Connection o;
    o.id = c.getId();
    o.fd = c.getFd();
    o.uid = c.getUid();
    o.pid = c.getPid();
    o.inBuf = bytesIn(c.getInBuf());
    o.outBuf = bytesIn(c.getOutBuf());
    o.closing = c.getClosing();
    for (auto p : c.getPending()) {
      PendingRequest q;
      q.requestId = p.getRequestId();
      if (!enumIn(p.getKind(), 5, q.kind, "pending request kind", error)) return false;
      q.job = textIn(p.getJob());
      q.instance = textIn(p.getInstance());
      o.pending.push_back(std::move(q));
    }
    m.connections.push_back(std::move(o));
  }
  m.nextConnId = r.getNextConnId();
  for (auto h : r.getHelpers()) m.helpers.push_back({h.getPid(), h.getStartTime(), textIn(h.getRole())});
  for (int32_t p : r.getUnclaimedTraceStops()) m.unclaimedTraceStops.push_back(p);
  m.configProblems = textsIn(r.getConfigProblems());
  m.reloadPending = r.getReloadPending();
  m.daemonUid = r.getDaemonUid();
  m.bootTimeNs = r.getBootTimeNs();
  decodeReexec(r.getReexec(), m.reexec);
  m.jobNofileSoft = r.getJobNofileSoft();
  m.notifyFd = r.getNotifyFd();
  m.notifyRefused = r.getNotifyRefused();
  m.notifyMalformed = r.getNotifyMalformed();
  return true;
}

}  // namespace baton
