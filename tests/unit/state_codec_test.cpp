// Model <-> schema round trips (docs/design.md, invariant 1) and the snapshot container (header, checksum, fd
// table, identity checks). A field added to the model without a schema field does not even
// compile (serialize/codec.cpp static_asserts every struct's field count); these tests make sure
// every field that is serialized comes back equal, for random models of every shape.
#include <fcntl.h>
#include <signal.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <algorithm>
#include <random>
#include <stdexcept>

#include "migrate/formats.h"
#include "serialize/codec.h"
#include "serialize/snapshot.h"
#include "base/event_expr.h"
#include "base/syscalls.h"

namespace baton {
namespace {

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  uint64_t u64() { return rng_(); }
  int64_t i64() { return int64_t(rng_()); }
  int32_t i32() { return int32_t(rng_()); }
  uint32_t u32() { return uint32_t(rng_()); }
  bool coin() { return rng_() & 1; }
  size_t below(size_t n) { return n ? size_t(rng_() % n) : 0; }
  template <class E> E pick(int count) { return E(below(size_t(count))); }

  std::string text() {
    switch (below(6)) {
      case 0: return "";
      case 1: return std::string(100000 + below(1000), 'x');  // huge
      case 2: return "ünïcødé ✓ " + std::to_string(u64());
      default: {
        std::string s;
        for (size_t i = below(24); i > 0; --i) s += char(' ' + below(95));
        return s;
      }
    }
  }
  std::string bytes() {  // any byte, including NUL
    std::string s;
    for (size_t i = below(64); i > 0; --i) s += char(below(256));
    return s;
  }
  std::vector<std::string> texts() {
    std::vector<std::string> v;
    for (size_t i = below(4); i > 0; --i) v.push_back(text());
    return v;
  }

  EventExpr expr() {
    EventExpr e;
    if (coin()) return e;
    build(e, 3);
    return e;
  }
  int32_t build(EventExpr& e, int depth) {
    EventNode n;
    if (depth == 0 || coin()) {
      n.type = EventNode::Type::Match;
      n.name = text();
      n.args = texts();
    } else {
      n.type = coin() ? EventNode::Type::And : EventNode::Type::Or;
      n.left = build(e, depth - 1);
      n.right = build(e, depth - 1);
    }
    n.matched = coin();
    n.eventId = u64();
    e.nodes.push_back(n);
    return int32_t(e.nodes.size() - 1);
  }

  JobDef def(const std::string& name) {
    JobDef d;
    d.name = name;
    d.path = text();
    d.description = text();
    d.author = text();
    d.version = text();
    d.usage = text();
    d.env = texts();
    d.exportVars = texts();
    d.instance = text();
    d.startOn = expr();
    d.stopOn = expr();
    d.emits = texts();
    for (ProcessDef& p : d.process) {
      p.script = coin();
      p.command = coin() ? text() : "";
    }
    d.expect = pick<ExpectType>(5);
    d.task = coin();
    d.killSignal = i32();
    d.killTimeoutMs = i64();
    d.reloadSignal = i32();
    d.respawn = coin();
    d.respawnLimit = u32();
    d.respawnIntervalSec = u32();
    for (size_t i = below(4); i > 0; --i) d.normalExitCodes.push_back(i32());
    for (size_t i = below(4); i > 0; --i) d.normalExitSignals.push_back(i32());
    d.console = pick<ConsoleType>(4);
    d.umask = u32();
    d.hasNice = coin();
    d.nice = i32();
    d.hasOomScore = coin();
    d.oomScore = i32();
    for (size_t i = below(3); i > 0; --i) d.limits.push_back({i32(), u64(), u64()});
    d.chroot = text();
    d.chdir = text();
    d.setuid = text();
    d.setgid = text();
    for (size_t i = below(3); i > 0; --i) {
      CgroupDef c{text(), text(), {}};
      for (size_t k = below(3); k > 0; --k) c.settings.push_back({text(), text()});
      d.cgroups.push_back(c);
    }
    d.unsupported = texts();
    d.contentHash = text();
    d.readyTimeoutMs = i64();
    return d;
  }

  RequestRef ref() { return {u64(), u64()}; }

  Instance instance(const std::string& name, const std::vector<DefRef>& defs) {
    Instance in;
    in.name = name;
    in.def = defs[below(defs.size())];
    in.goal = pick<Goal>(3);
    in.state = pick<JobState>(kJobStates);
    in.env = texts();
    in.stopEnv = texts();
    in.stopOn = expr();
    for (ProcessSlot& s : in.procs) {
      s.pid = i32();
      s.startTime = u64();
      s.spawnValid = coin();
      s.statusFd = i32();
      s.pendingScript = text();
      s.scriptFd = i32();
      s.earlyExit = coin();
      s.earlyExitStatus = i32();
    }
    in.blocker = u64();
    for (size_t i = below(3); i > 0; --i) in.blocking.push_back({pick<Blocked::Kind>(2), u64(), ref()});
    in.killDeadlineNs = i64();
    in.killProcess = pick<ProcessType>(kProcessTypes);
    in.failed = coin();
    in.failedProcess = pick<ProcessType>(kProcessTypes);
    in.exitStatus = i32();
    in.failReason = text();
    in.respawnWindowStartNs = i64();
    in.respawnCount = u32();
    in.traceState = pick<TraceState>(5);
    in.traceForks = u32();
    in.readyState = pick<ReadyState>(5);
    in.readyDeadlineNs = i64();
    in.statusText = text();
    in.notifyErrno = i32();
    return in;
  }

  Model model(size_t jobs) {
    Model m;
    m.config = {text(), text(), text(), text(), text(), text(), coin(), u32()};
    for (size_t j = 0; j < jobs; ++j) {
      std::string name = "job" + std::to_string(j) + text().substr(0, 8);
      JobClass cls;
      std::vector<DefRef> defs{std::make_shared<JobDef>(def(name))};
      if (coin()) defs.push_back(std::make_shared<JobDef>(def(name)));  // an older definition
      cls.def = defs[0];
      cls.startOn = expr();
      cls.deleted = coin();
      for (size_t i = below(3); i > 0; --i) {
        std::string iname = i == 1 ? "" : text().substr(0, 12);
        cls.instances.emplace(iname, instance(iname, defs));
      }
      m.classes.emplace(name, std::move(cls));
    }
    for (size_t i = below(4); i > 0; --i) {
      Event e{u64(), text(), texts(), pick<EventProgress>(3), coin(), u32(), {}};
      for (size_t k = below(3); k > 0; --k) e.waiters.push_back(ref());
      m.events.push_back(e);
    }
    m.nextEventId = u64();
    for (size_t i = below(4); i > 0; --i) m.logPipes.push_back({i32(), text(), bytes()});
    m.listenFd = i32();
    for (size_t i = below(4); i > 0; --i) {
      Connection c{u64(), i32(), u32(), i32(), bytes(), bytes(), coin(), {}};
      for (size_t k = below(3); k > 0; --k)
        c.pending.push_back({u64(), pick<PendingRequest::Kind>(5), text(), text()});
      m.connections.push_back(c);
    }
    m.nextConnId = u64();
    for (size_t i = below(3); i > 0; --i) m.helpers.push_back({i32(), u64(), text()});
    for (size_t i = below(3); i > 0; --i) m.unclaimedTraceStops.push_back(i32());
    m.configProblems = texts();
    m.reloadPending = coin();
    m.daemonUid = u32();
    m.bootTimeNs = i64();
    m.jobNofileSoft = u64();
    m.notifyFd = i32();
    m.notifyRefused = u64();
    m.notifyMalformed = u64();
    m.reexec = {u64(), u64(), text(), text(), i64(), i64(), i64(), i64(), i64(), i64(),
                i64(), i64(), coin(), coin(), text(), i64(), u64(), u32(), text()};
    return m;
  }

 private:
  std::mt19937_64 rng_;
};

Model roundTrip(const Model& in) {
  capnp::MallocMessageBuilder builder;
  encodeModel(in, builder.initRoot<state::Model>());
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(builder);
  capnp::ReaderOptions opts;
  opts.traversalLimitInWords = flat.size() * 2 + 1024;
  capnp::FlatArrayMessageReader reader(flat, opts);
  Model out;
  std::string error;
  EXPECT_TRUE(decodeModel(reader.getRoot<state::Model>(), out, error)) << error;
  return out;
}

TEST(StateCodec, RandomModelsRoundTripFieldByField) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    Gen g(seed);
    Model in = g.model(g.below(12));
    Model out = roundTrip(in);
    ASSERT_EQ(in.classes.size(), out.classes.size()) << "seed " << seed;
    // Compare piece by piece first so a failure names the part that drifted.
    EXPECT_EQ(in.config, out.config) << "seed " << seed;
    EXPECT_EQ(in.events, out.events) << "seed " << seed;
    EXPECT_EQ(in.logPipes, out.logPipes) << "seed " << seed;
    EXPECT_EQ(in.connections, out.connections) << "seed " << seed;
    EXPECT_EQ(in.reexec, out.reexec) << "seed " << seed;
    for (auto& [name, cls] : in.classes) {
      ASSERT_TRUE(out.classes.count(name)) << name;
      const JobClass& o = out.classes.decoded(name);
      EXPECT_EQ(*cls.def, *o.def) << "seed " << seed << " job " << name;
      EXPECT_EQ(cls.instances, o.instances) << "seed " << seed << " job " << name;
    }
    EXPECT_TRUE(in == out) << "seed " << seed;
  }
}

TEST(StateCodec, EveryEnumValueRoundTrips) {
  Gen g(99);
  Model m = g.model(1);
  JobClass& cls = m.classes.begin()->second;
  auto def = std::make_shared<JobDef>(*cls.def);
  for (int e = 0; e < 4; ++e) {
    def->expect = ExpectType(e);
    def->console = ConsoleType(e);
    cls.def = def;
    for (int s = 0; s < kJobStates; ++s) {
      cls.instances.clear();
      Instance in = g.instance("i", {cls.def});
      in.state = JobState(s);
      in.goal = Goal(s % 3);
      in.traceState = TraceState(s % 5);
      in.killProcess = in.failedProcess = ProcessType(s % kProcessTypes);
      cls.instances.emplace("i", in);
      Model out = roundTrip(m);
      ASSERT_TRUE(m == out) << "expect " << e << " state " << s;
    }
  }
}

TEST(StateCodec, EmptyAndTenThousandJobs) {
  Model empty;
  EXPECT_TRUE(empty == roundTrip(empty));
  Model big;
  auto def = std::make_shared<JobDef>();
  for (int i = 0; i < 10000; ++i) {
    auto d = std::make_shared<JobDef>(*def);
    d->name = "job-" + std::to_string(i);
    d->process[0] = {false, "/bin/sleep 1000"};
    JobClass cls;
    cls.def = d;
    Instance in;
    in.def = d;
    in.goal = Goal::Start;
    in.state = JobState::Running;
    in.procs[0].pid = 1000 + i;
    in.procs[0].startTime = 77 + uint64_t(i);
    cls.instances.emplace("", in);
    big.classes.emplace(d->name, std::move(cls));
  }
  Model out = roundTrip(big);
  EXPECT_EQ(out.classes.size(), 10000u);
  EXPECT_TRUE(big == out);
}

// One job whose instance "a" runs the class's definition and "b" an older one.
struct SharedDefs {
  Gen g{5};
  std::shared_ptr<JobDef> newer = std::make_shared<JobDef>(g.def("svc"));
  std::shared_ptr<JobDef> older = std::make_shared<JobDef>(g.def("svc"));
  Model model() {
    Model m;
    JobClass cls;
    cls.def = newer;
    cls.instances.emplace("a", g.instance("a", {newer}));
    cls.instances.emplace("b", g.instance("b", {older}));
    m.classes.emplace("svc", cls);
    return m;
  }
};

TEST(StateCodec, SharedDefinitionsStayShared) {
  // An instance still running an older definition keeps it; others share the class's.
  SharedDefs s;
  auto& older = s.older;
  Model out = roundTrip(s.model());
  const JobClass& o = out.classes.decoded("svc");
  EXPECT_EQ(o.instances.at("a").def.get(), o.def.get());
  EXPECT_NE(o.instances.at("b").def.get(), o.def.get());
  EXPECT_EQ(*o.instances.at("b").def, *older);
}

// What a restore does: definitions stay encoded in the message and are decoded on first use.
struct LazyMessage {
  kj::Array<capnp::word> flat;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
};
Model lazyRoundTrip(const Model& in) {
  auto msg = std::make_shared<LazyMessage>();
  capnp::MallocMessageBuilder builder;
  encodeModel(in, builder.initRoot<state::Model>());
  msg->flat = capnp::messageToFlatArray(builder);
  msg->reader = std::make_unique<capnp::FlatArrayMessageReader>(msg->flat);
  Model out;
  std::string error;
  EXPECT_TRUE(decodeModelLazily(msg->reader->getRoot<state::Model>(), msg, out, error)) << error;
  return out;
}

TEST(StateCodec, LazyDefinitionsDecodeOnFirstUseAndCopyAcrossUnchanged) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    Gen g(seed);
    Model in = g.model(1 + g.below(8));
    Model restored = lazyRoundTrip(in);
    // Decoding a class decodes none of its definitions.
    for (auto it = restored.classes.begin(); it != restored.classes.end(); ++it) {
      const JobClass& cls = restored.classes.decode(it);
      EXPECT_FALSE(cls.def.decoded()) << "a restore decoded " << it->first << "'s definition";
      for (auto& [iname, inst] : cls.instances) EXPECT_FALSE(inst.def.decoded());
    }
    // Decode half of them; the next snapshot copies the rest still encoded, and both kinds read
    // back equal to the original, field by field.
    bool touch = true;
    for (auto& [name, cls] : restored.classes) {
      if (touch) {
        EXPECT_EQ(cls.def->name, in.classes.decoded(name).def->name);
      }
      touch = !touch;
    }
    Model again = lazyRoundTrip(restored);
    Model eager = roundTrip(again);
    EXPECT_TRUE(in == restored) << "seed " << seed;
    EXPECT_TRUE(in == again) << "seed " << seed;
    EXPECT_TRUE(in == eager) << "seed " << seed;
  }
}

TEST(StateCodec, LazyDefinitionsStayShared) {
  SharedDefs s;
  auto &newer = s.newer, &older = s.older;
  // Twice through the lazy path (the second copies the undecoded definitions).
  Model out = lazyRoundTrip(lazyRoundTrip(s.model()));
  const JobClass& o = out.classes.decoded("svc");
  EXPECT_TRUE(o.instances.at("a").def == o.def);   // the same definition, still undecoded
  EXPECT_FALSE(o.instances.at("b").def == o.def);
  EXPECT_EQ(o.instances.at("a").def.get(), o.def.get());
  EXPECT_EQ(*o.instances.at("b").def, *older);
  EXPECT_EQ(*o.def, *newer);
}

// A restore checks every class in the window although it decodes them later: both paths refuse
// the same input with the same reason.
void expectRefused(capnp::MallocMessageBuilder& builder, const std::string& reason) {
  Model out;
  std::string error;
  EXPECT_FALSE(decodeModel(builder.getRoot<state::Model>().asReader(), out, error));
  EXPECT_NE(error.find(reason), std::string::npos) << error;
  auto owner = std::make_shared<int>(0);
  std::string lazyError;
  EXPECT_FALSE(decodeModelLazily(builder.getRoot<state::Model>().asReader(), owner, out, lazyError));
  EXPECT_EQ(lazyError, error);
}

TEST(StateCodec, UnknownEnumerantIsRefusedWithAReason) {
  Gen g(7);
  Model m = g.model(1);
  capnp::MallocMessageBuilder builder;
  encodeModel(m, builder.initRoot<state::Model>());
  auto classes = builder.getRoot<state::Model>().getClasses();
  // A newer writer's state this reader does not know.
  if (classes[0].getInstances().size() == 0) classes[0].initInstances(1)[0].setDefIndex(0);
  classes[0].getInstances()[0].setState(static_cast<state::JobState>(15));
  expectRefused(builder, "unknown job state value 15");
  classes[0].getInstances()[0].setState(state::JobState::RUNNING);
  classes[0].getInstances()[0].initBlocking(1)[0].setKind(static_cast<state::Blocked::Kind>(2));
  expectRefused(builder, "unknown blocked kind value 2");
}

// A restore told by its handoff that classes are byte copies of what its own pre-flight verified
// skips their checks, and only theirs; nothing else reads the list. (A class that fails its
// checks stands in here for "checked before": skipping is what lets it through.)
TEST(StateCodec, PreverifiedClassesAreNotCheckedAgainOnlyWhenTrusted) {
  Gen g(7);
  Model m = g.model(3);
  capnp::MallocMessageBuilder builder;
  encodeModel(m, builder.initRoot<state::Model>());
  auto root = builder.getRoot<state::Model>();
  auto classes = root.getClasses();
  if (classes[1].getInstances().size() == 0) classes[1].initInstances(1)[0].setDefIndex(0);
  classes[1].getInstances()[0].setState(static_cast<state::JobState>(15));
  root.initPreverifiedClasses(1).set(0, 1);
  expectRefused(builder, "unknown job state value 15");  // neither decode trusts by default
  auto owner = std::make_shared<int>(0);
  Model out;
  std::string error;
  EXPECT_TRUE(decodeModelLazily(root.asReader(), owner, out, error, /*trustPreverified=*/true)) << error;
  EXPECT_EQ(out.classes.size(), 3u);
  // Only the listed class is skipped: listing another one leaves class 1 checked.
  root.getPreverifiedClasses().set(0, 2);
  EXPECT_FALSE(decodeModelLazily(root.asReader(), owner, out, error, true));
  EXPECT_NE(error.find("unknown job state value 15"), std::string::npos) << error;
  // An index out of range is refused.
  classes[1].getInstances()[0].setState(state::JobState::RUNNING);
  root.getPreverifiedClasses().set(0, 3);
  EXPECT_FALSE(decodeModelLazily(root.asReader(), owner, out, error, true));
  EXPECT_EQ(error, "preverified class 3 of 3");
}

TEST(StateCodec, BadIndicesAreRefused) {
  Gen g(8);
  Model m = g.model(1);
  m.classes.begin()->second.instances.clear();
  m.classes.begin()->second.instances.emplace("", g.instance("", {m.classes.begin()->second.def}));
  capnp::MallocMessageBuilder builder;
  encodeModel(m, builder.initRoot<state::Model>());
  auto inst = builder.getRoot<state::Model>().getClasses()[0].getInstances()[0];
  inst.setDefIndex(7);
  expectRefused(builder, "names definition 7");

  inst.setDefIndex(0);
  auto nodes = builder.getRoot<state::Model>().getClasses()[0].initStartOn().initNodes(1);
  nodes[0].setType(state::EventNode::Type::AND);
  nodes[0].setLeft(0);
  nodes[0].setRight(0);  // a node that is its own child would loop forever
  expectRefused(builder, "invalid children");

  // A node shared by two parents: a chain of them prints 2^N times its leaf (the snapshot
  // crasher snapshot-event-expr-dag.snapshot has N = 48).
  auto dag = builder.getRoot<state::Model>().getClasses()[0].initStartOn().initNodes(4);
  dag[0].setType(state::EventNode::Type::MATCH);
  dag[0].setName("a");
  dag[1].setType(state::EventNode::Type::MATCH);
  dag[1].setName("b");
  dag[2].setType(state::EventNode::Type::AND);
  dag[2].setLeft(0);
  dag[2].setRight(1);
  dag[3].setType(state::EventNode::Type::OR);
  dag[3].setLeft(2);
  dag[3].setRight(0);  // node 0 again
  expectRefused(builder, "event expression node 3 has invalid children");
  dag[3].setRight(2);  // both children the same node
  expectRefused(builder, "event expression node 3 has invalid children");

  // At most kMaxEventExprNodes nodes (printing recurses as deep as the tree), here a left-deep
  // "a and a and ..." (past the 64 nodes checkExpr keeps in one word).
  auto chain = [&](unsigned count) {
    auto c = builder.getRoot<state::Model>().getClasses()[0].initStartOn().initNodes(count);
    c[0].setType(state::EventNode::Type::MATCH);
    c[0].setName("a");
    for (unsigned i = 1; i + 1 < count; i += 2) {
      c[i].setType(state::EventNode::Type::MATCH);
      c[i].setName("a");
      c[i + 1].setType(state::EventNode::Type::AND);
      c[i + 1].setLeft(int32_t(i) - 1);
      c[i + 1].setRight(int32_t(i));
    }
  };
  chain(unsigned(kMaxEventExprNodes) + 2);
  expectRefused(builder, "event expression of 4097 nodes (at most 4095)");
  chain(unsigned(kMaxEventExprNodes));
  Model ok;
  std::string error;
  EXPECT_TRUE(decodeModel(builder.getRoot<state::Model>().asReader(), ok, error)) << error;
  EXPECT_EQ(ok.classes.begin()->second.startOn.nodes.size(), kMaxEventExprNodes);

  auto nodes2 = builder.getRoot<state::Model>().getClasses()[0].initStartOn().initNodes(1);
  nodes2[0].setType(state::EventNode::Type::MATCH);
  auto two = builder.getRoot<state::Model>().getClasses()[0].initInstances(2);
  two[0].setName("x");
  two[1].setName("x");
  expectRefused(builder, "instance 'x' listed twice");
}

// A restore leaves job classes encoded: each is decoded when code asks for it (decode), the tables
// the window builds read them where they are, iterating, finding and comparing decode nothing,
// and a snapshot copies an untouched one across.
TEST(StateCodec, LazyClassesDecodeWhenAskedAndCopyAcrossUnchanged) {
  using Slot = std::tuple<std::string, std::string, ProcessType, ProcessSlot, TraceState>;
  auto slots = [](const Model& m) {
    std::vector<Slot> v;
    m.classes.forEachSlot([&](const std::string& j, const std::string& i, ProcessType t, const ProcessSlot& s,
                              TraceState tr) { v.emplace_back(j, i, t, s, tr); });
    return v;
  };
  size_t sawEncoded = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Gen g(seed);
    Model in = g.model(2 + g.below(8));
    const std::vector<Slot> want = slots(in);
    ASSERT_EQ(in.classes.encodedCount(), 0u);
    Model restored = lazyRoundTrip(in);
    const size_t encoded = restored.classes.encodedCount();
    sawEncoded += encoded;
    // Read without decoding: the slots and counts the window's tables come from.
    EXPECT_EQ(slots(restored), want) << "seed " << seed;
    EXPECT_EQ(restored.classes.instanceCount(), in.classes.instanceCount());
    EXPECT_EQ(restored.classes.encodedCount(), encoded);
    // Every class the loop's scans look at was decoded at once; what the event handling asks an
    // encoded class (does an expression name a pattern? does an instance wait on an event?) is
    // what the decoded class says.
    for (auto& [name, cls] : restored.classes) {
      if (!cls.encoded) continue;
      EXPECT_TRUE(cls.instances.empty() && !cls.def) << name << ": held, and handed out as it is";
      const JobClass& orig = in.classes.decoded(name);
      std::vector<EventNode> want;
      auto collect = [&](const EventExpr& e) {
        for (const EventNode& n : e.nodes)
          if (n.type == EventNode::Type::Match) want.push_back({.name = n.name, .args = n.args});
      };
      collect(orig.startOn);
      for (auto& [iname, inst] : orig.instances) collect(inst.stopOn);
      // Every match node, name and args, in order; the node test runs only where the name test held.
      std::vector<EventNode> seen;
      size_t names = 0;
      cls.encoded->anyMatchNode(
          cls.encodedIndex, [&](std::string_view) { return ++names % 2 == 1; },
          [&](const EventNode& n) {
            seen.push_back(n);
            return false;
          });
      std::vector<EventNode> odd;
      for (size_t k = 0; k < want.size(); k += 2) odd.push_back(want[k]);
      EXPECT_EQ(names, want.size()) << name;
      EXPECT_EQ(seen, odd) << name;
      for (auto& [iname, inst] : orig.instances)
        if (inst.blocker) EXPECT_TRUE(cls.encoded->waitsOnEvent(cls.encodedIndex, inst.blocker)) << name;
      EXPECT_FALSE(cls.encoded->waitsOnEvent(cls.encodedIndex, ~uint64_t(0))) << name;
      EXPECT_FALSE(orig.deleted) << name;
      for (auto& [iname, inst] : orig.instances) {
        EXPECT_EQ(inst.killDeadlineNs, 0) << name;
        EXPECT_EQ(inst.readyDeadlineNs, 0) << name;  // the timer scans skip held classes
        EXPECT_FALSE(!iname.empty() && inst.state == JobState::Waiting && inst.goal == Goal::Stop) << name;
      }
    }
    // Comparing decodes nothing; find decodes nothing; decode decodes one class.
    EXPECT_TRUE(in == restored) << "seed " << seed;
    EXPECT_EQ(restored.classes.encodedCount(), encoded);
    if (encoded) {
      auto it = std::find_if(restored.classes.begin(), restored.classes.end(),
                             [](auto& e) { return e.second.encoded != nullptr; });
      const std::string name = it->first;
      EXPECT_TRUE(restored.classes.find(name)->second == in.classes.decoded(name));
      EXPECT_EQ(restored.classes.encodedCount(), encoded);
      const JobClass& cls = restored.classes.decode(restored.classes.find(name));
      EXPECT_EQ(&cls, &restored.classes.find(name)->second);
      EXPECT_FALSE(cls.encoded);
      EXPECT_TRUE(cls == in.classes.decoded(name));
      EXPECT_EQ(restored.classes.encodedCount(), encoded - 1);
    }
    EXPECT_THROW(restored.classes.decoded("no such job"), std::out_of_range);
    // The next snapshot copies the still encoded ones; restored again, all equal the original.
    Model again = lazyRoundTrip(restored);
    EXPECT_EQ(slots(again), want);
    EXPECT_TRUE(in == again) << "seed " << seed;
    EXPECT_TRUE(in == roundTrip(again)) << "seed " << seed;
    EXPECT_TRUE(in == restored) << "seed " << seed;
    EXPECT_EQ(restored.classes.encodedCount(), encoded ? encoded - 1 : 0)
        << "a comparison or a snapshot decoded a class";
  }
  EXPECT_GE(sawEncoded, 20u);  // the generator makes classes that stay encoded (32 with these seeds)
}

// Idle encoding: classes at rest go back into a message of their own, held like a restore holds
// them; nothing changes but where they are, and a message mostly decoded since is repacked.
TEST(StateCodec, IdleEncodingHoldsClassesAtRestAndRepacksSparseMessages) {
  auto all = [](const JobClass&) { return true; };
  auto none = [](const JobClass&) { return false; };
  size_t sawHeld = 0, sawRepacked = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Gen g(seed);
    const Model in = g.model(4 + g.below(12));
    Model held = in;
    // Only what the predicate accepts, and never what the loop's scans need decoded.
    EXPECT_EQ(holdEncoded(held.classes, none), 0u);
    EXPECT_EQ(held.classes.encodedCount(), 0u);
    const size_t count = holdEncoded(held.classes, all);
    EXPECT_EQ(held.classes.encodedCount(), count) << "seed " << seed;
    sawHeld += count;
    const ClassSource* first = nullptr;
    for (auto& [name, cls] : held.classes) {
      if (!cls.encoded) continue;
      if (!first) first = cls.encoded.get();
      EXPECT_EQ(cls.encoded.get(), first) << "one message for the whole pass";
      EXPECT_TRUE(cls.instances.empty() && !cls.def) << name << ": the decoded form was freed";
    }
    // A snapshot of the held model is the same model; so is the held model itself.
    EXPECT_TRUE(in == roundTrip(held)) << "seed " << seed;
    EXPECT_TRUE(in == lazyRoundTrip(held)) << "seed " << seed;
    if (count < 2) continue;
    // Touch more than a quarter of the held classes: the next pass moves the rest to a new
    // message even though the predicate accepts nothing (those still encoded are not decoded
    // for it).
    size_t touched = 0;
    for (auto& [name, cls] : held.classes)
      if (cls.encoded && touched * 4 <= count) {
        held.classes.decoded(name);
        ++touched;
      }
    const size_t left = held.classes.encodedCount();
    ASSERT_EQ(left, count - touched);
    EXPECT_EQ(holdEncoded(held.classes, none), left) << "seed " << seed;
    for (auto& [name, cls] : held.classes)
      if (cls.encoded) EXPECT_NE(cls.encoded.get(), first) << name << " still in the sparse message";
    sawRepacked += left;
    // Nothing moves when the messages are dense.
    EXPECT_EQ(holdEncoded(held.classes, none), 0u);
    EXPECT_TRUE(in == held) << "seed " << seed;
  }
  EXPECT_GE(sawHeld, 40u);
  EXPECT_GE(sawRepacked, 5u);
}

// What a `list` does with a held class: reads a decoded copy, which equals the class, and leaves
// the entry held. However many copies are read, they name the same encoded definitions (the
// message's list of definitions does not grow with each read).
TEST(StateCodec, ReadOnlyCopiesLeaveHeldClassesHeld) {
  size_t sawHeld = 0;
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    Gen g(seed);
    const Model in = g.model(3 + g.below(8));
    Model held = in;
    holdEncoded(held.classes, [](const JobClass&) { return true; });
    const size_t encoded = held.classes.encodedCount();
    for (auto& [name, cls] : held.classes) {
      if (!cls.encoded) continue;
      ++sawHeld;
      JobClass first, again;
      const JobClass& a = ClassMap::readOnly(cls, first);
      EXPECT_EQ(&a, &first);
      EXPECT_TRUE(a == in.classes.find(name)->second) << "seed " << seed << " " << name;
      for (int i = 0; i < 3; ++i) ClassMap::readOnly(cls, again);
      ASSERT_TRUE(again.def && first.def);
      EXPECT_EQ(again.def.source(), first.def.source());
      EXPECT_EQ(again.def.sourceIndex(), first.def.sourceIndex()) << "seed " << seed << " " << name;
      EXPECT_TRUE(cls.encoded) << name << " was decoded in the map";
    }
    EXPECT_EQ(held.classes.encodedCount(), encoded);
    // A decoded class is its own read.
    for (auto& [name, cls] : held.classes)
      if (!cls.encoded) {
        JobClass unused;
        EXPECT_EQ(&ClassMap::readOnly(cls, unused), &cls);
      }
    EXPECT_TRUE(in == held) << "seed " << seed;
  }
  EXPECT_GE(sawHeld, 20u);
}

// ---- the container ----

struct Pipe {
  int fds[2];
  Pipe() { EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0); }
  ~Pipe() {
    close(fds[0]);
    close(fds[1]);
  }
};

Model liveModel(Pipe& status, Pipe& log) {
  Model m;
  auto def = std::make_shared<JobDef>();
  def->name = "svc";
  JobClass cls;
  cls.def = def;
  Instance in;
  in.def = def;
  in.state = JobState::Spawned;
  in.goal = Goal::Start;
  in.procs[0].pid = 4242;
  in.procs[0].spawnValid = true;
  in.procs[0].statusFd = status.fds[0];
  cls.instances.emplace("", in);
  m.classes.emplace("svc", cls);
  m.logPipes.push_back({log.fds[0], "svc", "unwritten bytes"});
  return m;
}

std::string readAll(int fd) {
  std::string s;
  char buf[65536];
  ssize_t n;
  lseek(fd, 0, SEEK_SET);
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, size_t(n));
  return s;
}

TEST(Snapshot, WriteSealMapAndLoad) {
  Pipe status, log;
  Model m = liveModel(status, log);
  size_t bytes = 0;
  std::string error;
  int fd = writeSnapshot(m, kSnapshotFormat, 12345, bytes, error).release();
  ASSERT_GE(fd, 0) << error;
  EXPECT_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_LT(write(fd, "x", 1), 0);  // sealed
  Snapshot s;
  ASSERT_TRUE(s.open(fd, error)) << error;
  EXPECT_EQ(s.size(), bytes);
  EXPECT_EQ(s.header().format, kSnapshotFormat);
  EXPECT_EQ(s.header().serializeStartNs, 12345);
  ASSERT_EQ(s.fds().size(), 2u);
  Model out;
  ASSERT_TRUE(loadSnapshot(s, out, error)) << error;
  EXPECT_TRUE(m == out);
  EXPECT_TRUE(checkFdIdentities(s.fds(), error)) << error;
  close(fd);
}

TEST(Snapshot, CorruptionIsRefusedWithAReason) {
  Pipe status, log;
  Model m = liveModel(status, log);
  size_t bytes = 0;
  std::string error;
  int fd = writeSnapshot(m, kSnapshotFormat, 1, bytes, error).release();
  ASSERT_GE(fd, 0) << error;
  const std::string good = readAll(fd);
  close(fd);
  auto refused = [&](std::string bytes, const std::string& expect) {
    Snapshot s;
    Model out;
    std::string why;
    bool ok = s.openBytes(std::move(bytes), why) && loadSnapshot(s, out, why);
    EXPECT_FALSE(ok) << "accepted, expected: " << expect;
    EXPECT_NE(why.find(expect), std::string::npos) << "reason: " << why;
  };
  refused(good.substr(0, 10), "truncated");
  refused(good.substr(0, good.size() - 8), "size mismatch");
  refused(good + std::string(8, '\0'), "size mismatch");
  std::string magic = good;
  magic[0] = 'X';
  refused(magic, "wrong magic");
  // Absurd counts in the header.
  std::string counts = good;
  SnapshotHeader h;
  memcpy(&h, counts.data(), sizeof h);
  h.fdCount = 0xffffffffu;
  memcpy(counts.data(), &h, sizeof h);
  refused(counts, "size mismatch");
  memcpy(&h, good.data(), sizeof h);
  h.bodyBytes = uint64_t(1) << 60;
  std::string body = good;
  memcpy(body.data(), &h, sizeof h);
  refused(body, "size mismatch");
  // A newer format.
  memcpy(&h, good.data(), sizeof h);
  h.format = kSnapshotFormat + 1;
  std::string newer = good;
  memcpy(newer.data(), &h, sizeof h);
  refused(newer, "is not readable by this build");
  // Every single bit flip after the header is caught by the checksum.
  std::mt19937 rng(3);
  for (int i = 0; i < 300; ++i) {
    std::string flipped = good;
    size_t pos = sizeof(SnapshotHeader) + rng() % (good.size() - sizeof(SnapshotHeader));
    flipped[pos] = char(flipped[pos] ^ (1 << (rng() % 8)));
    refused(flipped, "checksum mismatch");
  }
}

TEST(Snapshot, FdTableMustNameOpenFilesOfTheRightIdentity) {
  Pipe status, log, other;
  Model m = liveModel(status, log);
  size_t bytes = 0;
  std::string error;
  int fd = writeSnapshot(m, kSnapshotFormat, 1, bytes, error).release();
  ASSERT_GE(fd, 0) << error;
  Snapshot s;
  ASSERT_TRUE(s.open(fd, error)) << error;
  close(fd);
  std::vector<FdEntry> fds = s.fds();
  ASSERT_TRUE(checkFdIdentities(fds, error)) << error;
  // The wrong file behind the number.
  int saved = dup(log.fds[0]);
  ASSERT_EQ(dup2(other.fds[0], log.fds[0]), log.fds[0]);
  EXPECT_FALSE(checkFdIdentities(fds, error));
  EXPECT_NE(error.find("is not the file the snapshot names"), std::string::npos) << error;
  ASSERT_EQ(dup2(saved, log.fds[0]), log.fds[0]);
  close(saved);
  // A closed fd.
  std::vector<FdEntry> closed = fds;
  closed[0].fd = 1000;
  EXPECT_FALSE(checkFdIdentities(closed, error));
  EXPECT_NE(error.find("is not open"), std::string::npos) << error;
  // A table that does not match the fds the state names.
  Model out = m;
  out.logPipes.clear();
  EXPECT_FALSE(checkFdTableMatchesModel(fds, out, error));
  EXPECT_NE(error.find("does not match"), std::string::npos) << error;
  // The same table in another order still matches; one fd named for two roles does not, in the
  // writer's order and in another.
  EXPECT_TRUE(checkFdTableMatchesModel(fds, m, error)) << error;
  std::vector<FdEntry> reversed(fds.rbegin(), fds.rend());
  EXPECT_TRUE(checkFdTableMatchesModel(reversed, m, error)) << error;
  Model twice = m;
  twice.logPipes[0].fd = fds[0].fd;
  std::vector<FdEntry> twiceFds = modelFds(twice);
  EXPECT_FALSE(checkFdTableMatchesModel(twiceFds, twice, error));
  EXPECT_NE(error.find("is named twice"), std::string::npos) << error;
  std::vector<FdEntry> twiceReversed(twiceFds.rbegin(), twiceFds.rend());
  EXPECT_FALSE(checkFdTableMatchesModel(twiceReversed, twice, error));
  EXPECT_NE(error.find("is named twice"), std::string::npos) << error;
}

// How many segments the body of a snapshot's bytes has (from its stream framing).
uint32_t segmentCount(const std::string& bytes) {
  SnapshotHeader h;
  memcpy(&h, bytes.data(), sizeof h);
  uint32_t countMinusOne;
  memcpy(&countMinusOne, bytes.data() + sizeof h + h.fdCount * sizeof(FdEntry), 4);
  return countMinusOne + 1;
}

TEST(Snapshot, WritingAClosedFdIsAnError) {
  Pipe status, log;
  Model m = liveModel(status, log);
  m.logPipes[0].fd = 1001;  // not open
  size_t bytes = 0;
  std::string error;
  EXPECT_FALSE(writeSnapshot(m, kSnapshotFormat, 1, bytes, error));
  EXPECT_NE(error.find("fd 1001 (log pipe) is not open"), std::string::npos) << error;
}

// The body is built in place in the memfd when it fits the reservation (one segment), and goes
// the copying way (several segments) when a model outgrows it; both load the same model.
TEST(Snapshot, InPlaceAndOutgrownBodiesLoadAlike) {
  Pipe status, log;
  Model m = liveModel(status, log);
  // `reserve`: 0 lets writeSnapshot size the memory itself; otherwise it is prepared ahead, as a
  // re-exec does during its pre-flight.
  auto writeAndLoad = [&](const Model& in, size_t reserve, uint32_t& segments) {
    size_t bytes = 0;
    std::string error;
    SnapshotMemory memory;
    if (reserve) {
      EXPECT_TRUE(memory.prepare(reserve, reserve / 2, error)) << error;
    }
    sys::Fd fd(writeSnapshot(in, kSnapshotFormat, 5, bytes, error, {.memory = &memory}));
    EXPECT_FALSE(memory.ready()) << "the prepared memory was not used";
    EXPECT_TRUE(fd) << error;
    if (!fd) return false;
    EXPECT_EQ(fcntl(fd.get(), F_GET_SEALS), F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    const std::string content = readAll(fd.get());
    EXPECT_EQ(content.size(), bytes);
    segments = segmentCount(content);
    Snapshot s;
    Model out;
    EXPECT_TRUE(s.open(fd.get(), error) && loadSnapshot(s, out, error)) << error;
    EXPECT_TRUE(s.checksumVerified());
    return in == out;
  };
  uint32_t segments = 0;
  EXPECT_TRUE(writeAndLoad(m, 0, segments));
  EXPECT_EQ(segments, 1u) << "a small model is built in place";
  EXPECT_TRUE(writeAndLoad(m, 1 << 20, segments));
  EXPECT_EQ(segments, 1u);
  // 3 MiB in one instance's environment: more than the 1 MiB reserved for a model this size.
  m.classes.begin()->second.instances.begin()->second.env.push_back("BIG=" + std::string(3 << 20, 'x'));
  EXPECT_TRUE(writeAndLoad(m, 0, segments));
  EXPECT_GT(segments, 1u) << "the outgrown body took the copying path";
  // Memory prepared for the size of the last snapshot holds it in place again.
  EXPECT_TRUE(writeAndLoad(m, snapshotReserveFor(m, 3u << 20), segments));
  EXPECT_EQ(segments, 1u);
  // Prepared memory too small for the fd table and a body is not used; a fresh one is.
  SnapshotMemory tiny;
  std::string error;
  ASSERT_TRUE(tiny.prepare(4096, 0, error)) << error;
  size_t bytes = 0;
  sys::Fd fd(writeSnapshot(m, kSnapshotFormat, 5, bytes, error, {.memory = &tiny}));
  EXPECT_TRUE(fd) << error;
}

// A re-exec copies classes untouched since the restore as bytes: the pre-flight snapshot records
// where each went, the snapshot of the window memcpys them from there and fixes their pointers.
// The table/state comparison, for small fd numbers (indexed) and huge ones (sorted) alike.
TEST(Snapshot, FdTableComparisonIsASetComparisonAtAnyFdNumber) {
  for (int32_t base : {3, (1 << 20) + 5, INT32_MAX - 10}) {
    auto e = [&](int32_t off, FdRole role) { return FdEntry{base + off, uint32_t(role), 0, 0, 0, 0}; };
    const std::vector<FdEntry> table = {e(0, FdRole::Listen), e(1, FdRole::LogPipe), e(4, FdRole::StatusPipe)};
    std::string error;
    EXPECT_TRUE(checkFdTableMatches(table, {e(4, FdRole::StatusPipe), e(0, FdRole::Listen), e(1, FdRole::LogPipe)}, error))
        << base << ": " << error;
    EXPECT_FALSE(checkFdTableMatches(table, {e(0, FdRole::Listen), e(1, FdRole::LogPipe)}, error)) << base;
    EXPECT_EQ(error, "the fd table does not match the fds the state names (3 in the table, 2 in the state)");
    EXPECT_FALSE(checkFdTableMatches(table, {e(0, FdRole::Listen), e(1, FdRole::StatusPipe), e(4, FdRole::StatusPipe)}, error))
        << base << ": another role";
    EXPECT_FALSE(checkFdTableMatches(table, {e(0, FdRole::Listen), e(1, FdRole::LogPipe), e(1, FdRole::LogPipe)}, error))
        << base << ": the state names one fd twice";
    EXPECT_FALSE(checkFdTableMatches(table, {e(0, FdRole::Listen), e(1, FdRole::LogPipe), e(5, FdRole::StatusPipe)}, error))
        << base << ": an fd not in the table";
    const std::vector<FdEntry> twice = {e(0, FdRole::Listen), e(1, FdRole::LogPipe), e(1, FdRole::StatusPipe)};
    EXPECT_FALSE(checkFdTableMatches(twice, twice, error)) << base;
    EXPECT_EQ(error, "fd " + std::to_string(base + 1) + " is named twice");
  }
}

TEST(Snapshot, UntouchedClassesAreCopiedAsBytes) {
  // The snapshot is shared on its own, not through the Restored holding it: the restored model's
  // held classes keep it mapped, and a model keeping its own holder alive would never be freed.
  struct Restored {
    std::shared_ptr<Snapshot> snapshot = std::make_shared<Snapshot>();
    Model model;
  };
  auto restore = [](int fd) {
    auto r = std::make_shared<Restored>();
    std::string error;
    EXPECT_TRUE(r->snapshot->open(fd, error)) << error;
    EXPECT_TRUE(loadSnapshotLazily(r->snapshot, r->model, error)) << error;
    return r;
  };
  auto loadFully = [](int fd, Model& out) {
    Snapshot s;
    std::string error;
    EXPECT_TRUE(s.open(fd, error) && s.checksumVerified() && loadSnapshot(s, out, error)) << error;
  };
  size_t placedTotal = 0;
  for (uint64_t seed = 1; seed <= 25; ++seed) {
    Gen g(seed);
    Model in = g.model(3 + g.below(10));
    size_t bytes = 0;
    std::string error;
    sys::Fd first(writeSnapshot(in, kSnapshotFormat, 1, bytes, error, {.liveFds = false}));
    ASSERT_TRUE(first) << error;
    auto restored = restore(first.get());
    Model& m = restored->model;
    // In every other seed one is decoded again: written anew, not copied as bytes. (This was a
    // find(), which never decoded: every class was copied in every seed.)
    const size_t heldByRestore = m.classes.encodedCount();
    if (seed % 2 == 0 && heldByRestore > 1)
      m.classes.decode(std::find_if(m.classes.begin(), m.classes.end(),
                                    [](auto& e) { return e.second.encoded != nullptr; }));
    const size_t encoded = m.classes.encodedCount();

    // Generated models are large: reserve as a re-exec would for them (sparse until written).
    SnapshotMemory forPreflight, forWindow;
    ASSERT_TRUE(forPreflight.prepare(256u << 20, 0, error) && forWindow.prepare(256u << 20, 0, error)) << error;
    EncodeHooks record;
    record.record = true;
    size_t preflightBytes = 0;
    sys::Fd preflight(writeSnapshot(m, kSnapshotFormat, 2, preflightBytes, error, {.liveFds = false, .memory = &forPreflight, .hooks = &record}));
    ASSERT_TRUE(preflight) << error;
    EXPECT_EQ(record.extents.size(), encoded) << "seed " << seed;
    auto images = classImagesOf(preflight.get(), record.extents);
    ASSERT_EQ(images != nullptr, encoded > 0);
    if (images) EXPECT_EQ(images->byClass.size(), encoded) << "every recorded class is contiguous";

    EncodeHooks place;
    place.images = images.get();
    size_t windowBytes = 0;
    sys::Fd window(writeSnapshot(m, kSnapshotFormat, 3, windowBytes, error, {.liveFds = false, .memory = &forWindow, .hooks = &place}));
    ASSERT_TRUE(window) << error;
    EXPECT_EQ(place.pending.size(), encoded);
    placedTotal += place.pending.size();
    EXPECT_EQ(windowBytes, preflightBytes) << "the same objects, only elsewhere";
    Model a, b;
    loadFully(preflight.get(), a);
    loadFully(window.get(), b);
    EXPECT_TRUE(a == in) << "seed " << seed;
    EXPECT_TRUE(b == in) << "seed " << seed;
    // And once more from the window's snapshot, as the next re-exec would.
    auto again = restore(window.get());
    EXPECT_TRUE(again->model == in) << "seed " << seed;
    // For a target that accepts preverified-classes the window lists exactly the classes it
    // copied as bytes; a restore that trusts the list reads the same model.
    SnapshotMemory forMarked;
    ASSERT_TRUE(forMarked.prepare(256u << 20, 0, error)) << error;
    EncodeHooks mark;
    mark.images = images.get();
    mark.markPreverified = true;
    sys::Fd marked(writeSnapshot(m, kSnapshotFormat, 4, windowBytes, error, {.liveFds = false, .memory = &forMarked, .hooks = &mark}));
    ASSERT_TRUE(marked) << error;
    {
      auto r = std::make_shared<Restored>();
      ASSERT_TRUE(r->snapshot->open(marked.get(), error)) << error;
      capnp::FlatArrayMessageReader reader(r->snapshot->body(), r->snapshot->readerOptions());
      std::vector<uint32_t> listed, copied;
      for (uint32_t i : reader.getRoot<state::Model>().getPreverifiedClasses()) listed.push_back(i);
      uint32_t k = 0;
      for (auto& [name, cls] : m.classes) {
        if (cls.encoded) copied.push_back(k);
        ++k;
      }
      EXPECT_EQ(listed, copied) << "seed " << seed;
      ASSERT_TRUE(loadSnapshotLazily(r->snapshot, r->model, error, /*trustPreverified=*/true)) << error;
      // Checked or trusted, a restore holds the same classes (the one decoded again too).
      EXPECT_EQ(r->model.classes.encodedCount(), heldByRestore);
      EXPECT_TRUE(r->model == in) << "seed " << seed;
    }
  }
  EXPECT_GE(placedTotal, 20u);

  // Classes too big for the memory left after the rest of the body: encoded again, nothing lost.
  Gen g(99);
  Model big = g.model(2);
  big.classes.begin()->second.instances.clear();
  big.classes.begin()->second.instances.emplace("", g.instance("", {big.classes.begin()->second.def}));
  big.classes.begin()->second.instances.begin()->second.killDeadlineNs = 0;
  big.classes.begin()->second.instances.begin()->second.readyDeadlineNs = 0;  // no timer: held
  big.classes.begin()->second.instances.begin()->second.env.push_back("BIG=" + std::string(3 << 20, 'x'));
  big.classes.begin()->second.deleted = false;
  size_t bytes = 0;
  std::string error;
  sys::Fd first(writeSnapshot(big, kSnapshotFormat, 1, bytes, error, {.liveFds = false}));
  ASSERT_TRUE(first) << error;
  auto restored = restore(first.get());
  ASSERT_TRUE(restored->model.classes.begin()->second.encoded) << "the big class stays encoded";
  SnapshotMemory forPreflight;
  ASSERT_TRUE(forPreflight.prepare(256u << 20, 0, error)) << error;
  EncodeHooks record;
  record.record = true;
  sys::Fd preflight(writeSnapshot(restored->model, kSnapshotFormat, 2, bytes, error, {.liveFds = false, .memory = &forPreflight, .hooks = &record}));
  ASSERT_TRUE(preflight) << error;
  auto images = classImagesOf(preflight.get(), record.extents);
  ASSERT_TRUE(images);
  SnapshotMemory small;
  ASSERT_TRUE(small.prepare(1 << 20, 1 << 16, error)) << error;
  EncodeHooks place;
  place.images = images.get();
  sys::Fd window(writeSnapshot(restored->model, kSnapshotFormat, 3, bytes, error, {.liveFds = false, .memory = &small, .hooks = &place}));
  ASSERT_TRUE(window) << error;
  EXPECT_FALSE(place.pending.empty());
  EXPECT_GT(segmentCount(readAll(window.get())), 1u) << "not in place: encoded again by the copying path";
  Model out;
  loadFully(window.get(), out);
  EXPECT_TRUE(out == big);
}

// A handoff to a target that trusts the seals carries no checksum: only a sealed memfd is read
// without one; anything else is refused with the reason, and a copy kept as a file gets one.
TEST(Snapshot, UnchecksummedHandoffIsReadOnlySealed) {
  Pipe status, log;
  Model m = liveModel(status, log);
  size_t bytes = 0;
  std::string error;
  sys::Fd fd(writeSnapshot(m, kSnapshotFormat, 1, bytes, error, {.checksum = false}));
  ASSERT_TRUE(fd) << error;
  std::string content = readAll(fd.get());
  SnapshotHeader h;
  memcpy(&h, content.data(), sizeof h);
  EXPECT_EQ(h.checksum, kNoChecksum);
  {
    Snapshot sealed;
    Model out;
    ASSERT_TRUE(sealed.open(fd.get(), error, Snapshot::Trust::SealedHandoff)) << error;
    EXPECT_FALSE(sealed.checksumVerified());
    ASSERT_TRUE(loadSnapshot(sealed, out, error)) << error;
    EXPECT_TRUE(out == m);
  }
  Snapshot verified;
  EXPECT_FALSE(verified.open(fd.get(), error, Snapshot::Trust::Verify));
  EXPECT_NE(error.find("has no checksum"), std::string::npos) << error;
  Snapshot copy;
  EXPECT_FALSE(copy.openBytes(content, error));
  EXPECT_NE(error.find("has no checksum"), std::string::npos) << error;
  completeChecksum(content);
  Snapshot kept;
  Model out;
  ASSERT_TRUE(kept.openBytes(content, error)) << error;
  EXPECT_TRUE(kept.checksumVerified());
  ASSERT_TRUE(loadSnapshot(kept, out, error)) << error;
  EXPECT_TRUE(out == m);
  // A real checksum is left alone; a corrupt byte is still found.
  content[content.size() - 1] ^= 1;
  completeChecksum(content);
  Snapshot corrupt;
  EXPECT_FALSE(corrupt.openBytes(content, error));
  EXPECT_NE(error.find("checksum mismatch"), std::string::npos) << error;
}

// Memory prepared ahead outlives forks (batond spawns jobs while the pre-flight runs): a child
// must not inherit the writable mapping, or sealing the snapshot fails with EBUSY.
TEST(Snapshot, PreparedMemorySurvivesAFork) {
  Pipe status, log;
  Model m = liveModel(status, log);
  SnapshotMemory memory;
  std::string error;
  ASSERT_TRUE(memory.prepare(1 << 20, 1 << 16, error)) << error;
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    close(ready[1]);  // tells the parent this process exists, mappings and all
    for (;;) pause();
  }
  close(ready[1]);
  char c;
  EXPECT_EQ(read(ready[0], &c, 1), 0);
  close(ready[0]);
  size_t bytes = 0;
  sys::Fd fd(writeSnapshot(m, kSnapshotFormat, 1, bytes, error, {.memory = &memory}));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(fd) << error;
  EXPECT_FALSE(memory.ready()) << "the prepared memory was not used";
  Snapshot s;
  Model out;
  ASSERT_TRUE(s.open(fd.get(), error) && loadSnapshot(s, out, error)) << error;
  EXPECT_TRUE(m == out);
}

// A re-exec's own snapshot is opened with Trust::SealedHandoff: the checksum is skipped only when
// the write, shrink and grow seals guarantee the bytes are the writer's; anything else is checked.
TEST(Snapshot, SealedHandoffSkipsTheChecksumOnlyOfASealedFd) {
  Pipe status, log;
  Model m = liveModel(status, log);
  size_t bytes = 0;
  std::string error;
  sys::Fd good(writeSnapshot(m, kSnapshotFormat, 1, bytes, error));
  ASSERT_TRUE(good) << error;
  std::string content = readAll(good.get());
  {
    Snapshot s;
    ASSERT_TRUE(s.open(good.get(), error, Snapshot::Trust::SealedHandoff)) << error;
    EXPECT_FALSE(s.checksumVerified());
    Model out;
    ASSERT_TRUE(loadSnapshot(s, out, error)) << error;
    EXPECT_TRUE(m == out);
  }
  // The same bytes with one changed, as a sealed fd and as an unsealed one.
  const size_t at = content.find("unwritten bytes");
  ASSERT_NE(at, std::string::npos);
  content[at] = 'U';
  sys::Fd sealed(sealedMemfd(content, error));
  ASSERT_TRUE(sealed) << error;
  Snapshot verified;
  EXPECT_FALSE(verified.open(sealed.get(), error));
  EXPECT_NE(error.find("checksum mismatch"), std::string::npos) << error;
  Snapshot trusted;
  EXPECT_TRUE(trusted.open(sealed.get(), error, Snapshot::Trust::SealedHandoff)) << error;
  sys::Fd unsealed(memfd_create("unsealed", MFD_CLOEXEC));
  ASSERT_TRUE(unsealed);
  ASSERT_EQ(write(unsealed.get(), content.data(), content.size()), ssize_t(content.size()));
  Snapshot notTrusted;
  EXPECT_FALSE(notTrusted.open(unsealed.get(), error, Snapshot::Trust::SealedHandoff));
  EXPECT_NE(error.find("checksum mismatch"), std::string::npos) << error;
}

TEST(Formats, NegotiationPicksTheNewestCommonFormat) {
  StateFormats f;
  std::string error;
  ASSERT_TRUE(parseStateFormats(stateFormatsText(), f, error)) << error;
  EXPECT_EQ(f.writes, kSnapshotFormat);
  uint32_t chosen = 0;
  ASSERT_TRUE(negotiateFormat(f, chosen, error));
  EXPECT_EQ(chosen, kSnapshotFormat);
  StateFormats future{"9.0", 9, 7, 9};
  EXPECT_FALSE(negotiateFormat(future, chosen, error));
  EXPECT_NE(error.find("no common state format"), std::string::npos);
  EXPECT_FALSE(parseStateFormats("hello\n", f, error));
  // Handoff options: this build accepts the old image's epoll instance; 0.1.0 announced nothing,
  // so it is never offered one.
  ASSERT_TRUE(parseStateFormats(stateFormatsText(), f, error)) << error;
  for (const HandoffOptionInfo& o : kHandoffOptions) EXPECT_TRUE(f.accepts.has(o.option)) << o.name;
  ASSERT_TRUE(parseStateFormats("baton 0.1.0\nwrites 1\nreads 1-1\n", f, error)) << error;
  EXPECT_TRUE(f.accepts.empty());
}

// The walk over a registry of its own, with made-up formats 2 and 3 (the real steps are
// tests/unit/migration_steps_test.cpp): up and back down restores the original; a refusing step
// and a missing step stop the walk with the step named. The body is this build's, labelled 1.
namespace fake {
bool copyRoot(capnp::MessageReader& in, capnp::MessageBuilder& out) {
  out.setRoot(in.getRoot<capnp::AnyStruct>());
  return true;
}
bool up12(capnp::MessageReader& in, capnp::MessageBuilder& out, MigrationNotes&, std::string&) {
  copyRoot(in, out);
  auto cfg = out.getRoot<state::Model>().getConfig();
  cfg.setLogPriority(std::string("v2:") + cfg.getLogPriority().cStr());
  return true;
}
bool down21(capnp::MessageReader& in, capnp::MessageBuilder& out, MigrationNotes&, std::string& error) {
  copyRoot(in, out);
  auto cfg = out.getRoot<state::Model>().getConfig();
  std::string p = cfg.getLogPriority().cStr();
  if (p.rfind("v2:", 0) != 0) {
    error = "log priority '" + p + "' has no format 1 form";
    return false;
  }
  cfg.setLogPriority(p.substr(3));
  return true;
}
bool up23(capnp::MessageReader&, capnp::MessageBuilder&, MigrationNotes&, std::string& error) {
  error = "job 'svc' uses something format 3 cannot hold";
  return false;
}
}  // namespace fake

TEST(Formats, MigrationWalksTheChainBothWays) {
  Pipe status, log;
  Model m = liveModel(status, log);
  size_t bytes = 0;
  std::string error;
  sys::Fd fd(writeSnapshot(m, 1, 77, bytes, error));
  ASSERT_TRUE(fd) << error;
  Snapshot v1;
  ASSERT_TRUE(v1.open(fd.get(), error)) << error;
  const std::vector<MigrationStep> steps = {{1, 2, "prefix the log priority", fake::up12},
                                            {2, 1, "strip it again", fake::down21},
                                            {2, 3, "refuses", fake::up23}};
  std::string up, down;
  ASSERT_TRUE(migrateSnapshot(v1, 2, up, error, steps, nullptr)) << error;
  Snapshot v2;
  ASSERT_TRUE(v2.openBytes(up, error)) << error;
  EXPECT_EQ(v2.header().format, 2u);
  EXPECT_EQ(v2.header().serializeStartNs, 77);
  EXPECT_EQ(v2.fds().size(), v1.fds().size());
  {
    capnp::FlatArrayMessageReader r(v2.body());
    EXPECT_EQ(std::string(r.getRoot<state::Model>().getConfig().getLogPriority().cStr()), "v2:" + m.config.logPriority);
  }
  ASSERT_TRUE(migrateSnapshot(v2, 1, down, error, steps, nullptr)) << error;
  Snapshot back;
  ASSERT_TRUE(back.openBytes(down, error)) << error;
  Model out;
  ASSERT_TRUE(loadSnapshot(back, out, error)) << error;
  EXPECT_TRUE(m == out);

  EXPECT_FALSE(migrateSnapshot(v1, 3, up, error, steps, nullptr));
  EXPECT_NE(error.find("format 2 -> 3: job 'svc' uses something format 3 cannot hold"), std::string::npos) << error;
  EXPECT_FALSE(migrateSnapshot(v1, 2, up, error, std::vector<MigrationStep>{}, nullptr));
  EXPECT_NE(error.find("no migration from format 1 to 2"), std::string::npos) << error;
}

}  // namespace
}  // namespace baton
