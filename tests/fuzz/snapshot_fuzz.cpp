// Fuzz target: snapshots, through every reader a re-exec or baton-state runs them through.
//
// Open (header, sizes, checksum), decode in full (the pre-flight, baton-state), migrate to every
// format (baton-state migrate, a downgrade before a rollback) and, for what the full decode
// accepted, the restore's lazy decode (classes left encoded and read on first use), the fd
// table against the model, the next re-exec's snapshots (classes copied as bytes, the
// preverified list trusted) and idle encoding. See fuzz_checks.h.
#include "tests/fuzz/fuzz_checks.h"

#include <capnp/message.h>
#include <kj/exception.h>

#include <cstring>
#include <exception>
#include <memory>

#include "base/event_expr.h"
#include "migrate/formats.h"
#include "serialize/codec.h"
#include "serialize/snapshot.h"

namespace baton::fuzz {
namespace {

// The header's checksum, computed over what follows it (if the sizes add up): a mutated body
// must reach the decoder, not stop at the checksum.
void fillChecksum(std::string& bytes) {
  if (bytes.size() < sizeof(SnapshotHeader)) return;
  SnapshotHeader h;
  memcpy(&h, bytes.data(), sizeof h);
  h.checksum = kNoChecksum;
  memcpy(bytes.data(), &h, sizeof h);
  completeChecksum(bytes);
}

// What batond does with an expression it restored: print it (show-config), offer it an event,
// collect the events that matched.
void useExpr(const EventExpr& e, std::string& sink) {
  sink += eventExprToString(e);
  for (const std::string& name : eventExprNames(e)) sink += name;
  EventExpr copy = e;
  Event ev;
  ev.id = 7;
  ev.name = copy.nodes.empty() ? "x" : copy.nodes.front().name;
  ev.env = {"A=b", "c"};
  eventExprHandle(copy, ev, {"A=b"});
  sink += std::to_string(eventExprSatisfied(copy)) + std::to_string(eventExprMatchedEvents(copy).size());
}

// Every definition, expression and instance (decoding what is still encoded).
std::string useModel(const Model& m) {
  std::string sink;
  try {
    for (const auto& [name, cls] : m.classes) {
      useExpr(cls.startOn, sink);
      if (cls.def) {
        useExpr(cls.def->startOn, sink);
        useExpr(cls.def->stopOn, sink);
      }
      for (const auto& [iname, inst] : cls.instances) {
        useExpr(inst.stopOn, sink);
        if (inst.def) sink += inst.def->name;
      }
    }
  } catch (const std::exception& e) {
    return std::string("using an accepted model threw: ") + e.what();
  } catch (const kj::Exception& e) {
    return std::string("using an accepted model threw: ") + e.getDescription().cStr();
  }
  return {};
}

// Where two models differ (for the message of a property that does not hold).
std::string difference(const Model& a, const Model& b) {
  if (!(a.config == b.config)) return "config";
  if (a.classes.size() != b.classes.size()) return "number of classes";
  for (auto x = a.classes.begin(), y = b.classes.begin(); x != a.classes.end(); ++x, ++y) {
    if (x->first != y->first) return "class names";
    if (!(x->second == y->second)) return "class " + x->first;
  }
  if (a.events != b.events) return "events";
  if (a.logPipes != b.logPipes) return "log pipes";
  if (a.connections != b.connections) return "connections";
  if (a.helpers != b.helpers) return "helpers";
  if (!(a.reexec == b.reexec)) return "reexec";
  return "another field";
}

// encodeModel then decodeModel gives the model back.
std::string roundTrip(const Model& m) {
  capnp::MallocMessageBuilder message;
  encodeModel(m, message.initRoot<state::Model>());
  Model again;
  std::string error;
  if (!decodeModel(message.getRoot<state::Model>().asReader(), again, error)) return "re-encoded model refused: " + error;
  if (!(again == m)) return "re-encoded model differs from the decoded one: " + difference(m, again);
  return {};
}

// The restore's lazy decode, and what a restored batond does next without decoding: count and
// walk the held classes, write the pre-flight and window snapshots of its next re-exec (held
// classes copied across encoded, then as bytes), restore from those, hold classes encoded again.
std::string lazyPath(const std::string& bytes, const Model& full) {
  std::string error;
  auto snapshot = std::make_shared<Snapshot>();
  if (!snapshot->openBytes(bytes, error)) return "opened once, not twice: " + error;
  Model lazy;
  if (!loadSnapshotLazily(snapshot, lazy, error)) return "the full decode accepted what the lazy one refuses: " + error;
  if (!checkFdTableMatchesModel(snapshot->fds(), lazy, error)) return "fd table of the lazy model: " + error;
  if (lazy.classes.instanceCount() != full.classes.instanceCount()) return "instance counts differ";
  size_t slots = 0;
  lazy.classes.forEachSlot([&](const std::string&, const std::string&, ProcessType, const ProcessSlot&, TraceState) { ++slots; });
  size_t fullSlots = 0;
  full.classes.forEachSlot([&](const std::string&, const std::string&, ProcessType, const ProcessSlot&, TraceState) { ++fullSlots; });
  if (slots != fullSlots) return "slot counts differ";
  for (const auto& [name, cls] : lazy.classes) {  // as they are: iteration never decodes
    if (!cls.encoded) continue;
    Event ev;
    ev.id = 1;
    ev.name = name;
    cls.encoded->anyMatchNode(
        cls.encodedIndex, [](std::string_view) { return true; },
        [&](const EventNode& n) { return eventNodeMayMatch(n, ev); });
    cls.encoded->waitsOnEvent(cls.encodedIndex, 1);
    JobClass scratch;
    try {
      ClassMap::readOnly(cls, scratch);  // a `list`
    } catch (const std::exception& e) {
      return std::string("reading a held class threw: ") + e.what();
    }
  }

  // The next re-exec: pre-flight snapshot recording where held classes went, window snapshot
  // copying them as bytes and listing them as preverified.
  size_t size = 0;
  EncodeHooks record;
  record.record = true;
  sys::Fd preflight(writeSnapshot(lazy, kSnapshotFormat, 2, size, error, {.liveFds = false, .hooks = &record}));
  if (!preflight) return "writing the pre-flight snapshot: " + error;
  auto images = classImagesOf(preflight.get(), record.extents);
  EncodeHooks place;
  place.images = images.get();
  place.markPreverified = true;
  sys::Fd window(writeSnapshot(lazy, kSnapshotFormat, 3, size, error, {.liveFds = false, .hooks = &place}));
  if (!window) return "writing the window snapshot: " + error;
  for (int fd : {preflight.get(), window.get()}) {
    auto s = std::make_shared<Snapshot>();
    Model again, trusted;
    if (!s->open(fd, error) || !loadSnapshot(*s, again, error)) return "a re-written snapshot is refused: " + error;
    if (!(again == full)) return "a re-written snapshot differs: " + difference(full, again);
    if (!loadSnapshotLazily(s, trusted, error, /*trustPreverified=*/true)) return "the preverified restore refuses: " + error;
    if (!(trusted == full)) return "the preverified restore differs: " + difference(full, trusted);
  }

  // Idle encoding: every decoded class held encoded again (and the held ones moved along).
  if (!lazy.classes.empty()) lazy.classes.decode(lazy.classes.begin());
  holdEncoded(lazy.classes, [](const JobClass&) { return true; });
  if (std::string p = useModel(lazy); !p.empty()) return "lazy: " + p;
  if (!(lazy == full)) return "the lazy decode differs from the full one: " + difference(full, lazy);
  return {};
}

}  // namespace

std::string checkSnapshot(std::string_view input) {
  std::string bytes(input);
  fillChecksum(bytes);
  Snapshot snapshot;
  std::string error;
  if (!snapshot.openBytes(bytes, error)) return error.empty() ? "refused without a reason" : "";

  Model full;
  const bool loaded = loadSnapshot(snapshot, full, error);
  if (!loaded && error.empty()) return "decode refused without a reason";

  // Every format this build knows, and one on each side of them.
  for (uint32_t to = kOldestReadableFormat - 1; to <= kSnapshotFormat + 1; ++to) {
    std::string migrated;
    if (!migrateSnapshot(snapshot, to, migrated, error)) {
      if (error.empty()) return "migration to format " + std::to_string(to) + " refused without a reason";
      continue;
    }
    Snapshot out;
    if (!out.openBytes(migrated, error)) return "a migrated snapshot does not open: " + error;
    if (out.header().format != to) return "migration to format " + std::to_string(to) + " wrote another format";
    Model m;
    if (to == snapshot.header().format && loaded && (!loadSnapshot(out, m, error) || !(m == full)))
      return "migration to the same format changed the state: " + error;
  }
  if (!loaded) return {};

  if (!checkFdTableMatchesModel(snapshot.fds(), full, error)) return "fd table: " + error;
  if (std::string p = useModel(full); !p.empty()) return p;
  if (std::string p = roundTrip(full); !p.empty()) return p;
  return lazyPath(bytes, full);
}

}  // namespace baton::fuzz

BATON_FUZZ_TARGET(baton::fuzz::checkSnapshot)
