#include "migrate/formats.h"

#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <sstream>

#include "migrate/steps.h"
#include "serialize/codec.h"

#include <unistd.h>

#include <capnp/any.h>

namespace baton {

std::string stateFormatsText() {
  return std::string("baton ") + BATON_VERSION + "\nwrites " + std::to_string(kSnapshotFormat) +
         "\nreads " + std::to_string(kOldestReadableFormat) + "-" + std::to_string(kSnapshotFormat) +
         "\n" + handoffAnnouncement(allHandoffOptions());
}

bool parseStateFormats(const std::string& text, StateFormats& out, std::string& error) {
  out = StateFormats{};
  std::istringstream in(text);
  std::string line;
  bool haveWrites = false, haveReads = false;
  while (std::getline(in, line)) {
    if (line.rfind("baton ", 0) == 0) out.version = line.substr(6);
    else if (line.rfind("writes ", 0) == 0) haveWrites = sscanf(line.c_str() + 7, "%u", &out.writes) == 1;
    else if (line.rfind("reads ", 0) == 0)
      haveReads = sscanf(line.c_str() + 6, "%u-%u", &out.readsMin, &out.readsMax) == 2;
    else if (line.rfind("accepts ", 0) == 0) {
      // An option this build does not know is not one it could pass: ignored.
      if (const HandoffOptionInfo* o = findHandoffName(std::string_view(line).substr(8))) out.accepts.add(o->option);
    }
  }
  if (!haveWrites || !haveReads || out.readsMin > out.readsMax) {
    error = "the target did not describe its state formats (is it a baton binary?)";
    return false;
  }
  return true;
}

bool negotiateFormat(const StateFormats& target, uint32_t& format, std::string& error) {
  uint32_t best = std::min(target.readsMax, kSnapshotFormat);
  if (best < target.readsMin || best < kOldestReadableFormat) {
    error = "no common state format: the target reads " + std::to_string(target.readsMin) + "-" +
            std::to_string(target.readsMax) + ", this build writes " +
            std::to_string(kOldestReadableFormat) + "-" + std::to_string(kSnapshotFormat);
    return false;
  }
  format = best;
  return true;
}

const std::vector<MigrationStep>& migrationSteps() {
  // One pair per format change (docs/formats.md, "Adding a format N+1").
  static const std::vector<MigrationStep> steps = {
      {1, 2, "format 2 adds readiness notification (`expect notify`): nothing to change", upgrade1to2},
      {2, 1, "format 1 has no readiness notification: refused, or mapped to `expect none`", downgrade2to1},
  };
  return steps;
}

std::string formatPath(uint32_t from, uint32_t to) {
  if (from == to) return std::to_string(from) + " (no migration)";
  const uint32_t steps = from < to ? to - from : from - to;
  return std::to_string(from) + " -> " + std::to_string(to) + " (" + std::to_string(steps) +
         (from < to ? " upgrade step" : " downgrade step") + (steps == 1 ? "" : "s") + ")";
}

namespace {

const MigrationStep* findStep(const std::vector<MigrationStep>& steps, uint32_t from, uint32_t to) {
  for (const MigrationStep& s : steps)
    if (s.from == from && s.to == to) return &s;
  return nullptr;
}


}  // namespace

bool migrateSnapshot(const Snapshot& snapshot, uint32_t to, std::string& bytes, std::string& error,
                     MigrationNotes* notes) {
  return migrateSnapshot(snapshot, to, bytes, error, migrationSteps(), notes);
}

bool migrateSnapshot(const Snapshot& snapshot, uint32_t to, std::string& bytes, std::string& error,
                     const std::vector<MigrationStep>& steps, MigrationNotes* notes) {
  MigrationNotes none;
  MigrationNotes& n = notes ? *notes : none;
  const SnapshotHeader& h = snapshot.header();
  uint32_t at = h.format;
  // Walk one step at a time; every intermediate body is a whole message of that format.
  // (Copied bytewise: capnp::word has no copy from a const word, and clang rejects the
  // element-wise copy kj::heapArray(ArrayPtr<const word>) would make.)
  kj::Array<capnp::word> current = kj::heapArray<capnp::word>(snapshot.body().size());
  memcpy(static_cast<void*>(current.begin()), snapshot.body().begin(), snapshot.body().size() * sizeof(capnp::word));
  while (at != to) {
    uint32_t next = to > at ? at + 1 : at - 1;
    const MigrationStep* step = findStep(steps, at, next);
    if (!step) {
      error = "no migration from format " + std::to_string(at) + " to " + std::to_string(next) +
              " (this build writes format " + std::to_string(kSnapshotFormat) + ")";
      return false;
    }
    try {
      capnp::FlatArrayMessageReader in(current, snapshot.readerOptions());
      capnp::MallocMessageBuilder out;
      if (!step->apply(in, out, n, error)) {
        error = "format " + std::to_string(at) + " -> " + std::to_string(next) + ": " + error;
        return false;
      }
      current = capnp::messageToFlatArray(out);
    } catch (const kj::Exception& e) {
      error = "format " + std::to_string(at) + " -> " + std::to_string(next) + ": " + e.getDescription().cStr();
      return false;
    }
    at = next;
  }
  // The body is copied into the new container: without steps to walk (`to` is its own format)
  // this is the first read of it, and a malformed body throws here.
  capnp::MallocMessageBuilder copy;
  try {
    capnp::FlatArrayMessageReader reader(current, snapshot.readerOptions());
    copy.setRoot(reader.getRoot<capnp::AnyStruct>());
  } catch (const kj::Exception& e) {
    error = "format " + std::to_string(at) + ": snapshot body is malformed: " + e.getDescription().cStr();
    return false;
  }
  // A reader refuses an fd role it does not know: the fds of newer roles stay behind (the steps
  // took them out of the state, and the old image does not hand them over).
  std::vector<FdEntry> fds = snapshot.fds();
  dropFdsNewerThan(fds, to);
  size_t size = 0;
  sys::Fd fd = writeSnapshotContainer(copy, fds, to, h.serializeStartNs, size, error);
  if (!fd) return false;
  bytes = readSnapshotFd(fd.get());
  return true;
}

namespace {

// The body of a snapshot kept open for definitions decoded later (see decodeModelLazily).
struct OpenBody {
  explicit OpenBody(std::shared_ptr<const Snapshot> s)
      : snapshot(std::move(s)), reader(snapshot->body(), unlimited()) {}
  // The restore's own snapshot, checksummed and fully verified by the pre-flight: later reads of
  // its definitions (decoded or copied into the next snapshot, once per re-exec) must not run
  // into a traversal limit sized for one pass.
  static capnp::ReaderOptions unlimited() {
    capnp::ReaderOptions o;
    o.traversalLimitInWords = kj::maxValue;
    return o;
  }
  std::shared_ptr<const Snapshot> snapshot;
  capnp::FlatArrayMessageReader reader;
};

// A restore leaves job classes encoded and its next snapshots copy them across as they are:
// Cap'n Proto deep copies of the whole class, which follow every pointer, also those no decode
// reads (fields of a newer schema, or garbage). So the full decode (the pre-flight of every
// restore) also walks each class as a copy will, and refuses what the copy would turn into
// something else or into too much:
// - a pointer of unknown kind or a capability: the copy throws;
// - objects reached so often that the classes would copy out to more words than the body holds
//   (a copy writes a shared object out each time it is reached: a few pointers to pointers
//   multiply into gigabytes);
// - a non-empty list of zero-sized structs or of Void: it costs a reader one word per element
//   but the snapshot nothing, so a body with room to spare could hold more of them than the
//   traversal limit of the (smaller) next snapshot that copies them allows;
// - a class, or a definition, whose data section is not whole words: each is also copied on its
//   own into a list of full-size structs, which keeps the element's bytes. Cap'n Proto reads a
//   list of bytes (or 16/32-bit values) as a list of structs whose data section is that one
//   value, and a field the section covers only in part as its default; copied into a full
//   struct, the same bytes become that field's value (a definition that decoded with `expect
//   none` would come out of the next snapshot as an unknown `expect`).
// The walk runs under the reader limits of the decode (twice the body): bounded time.
class CopyWalk {
 public:
  explicit CopyWalk(size_t bodyWords) : bodyWords_(bodyWords) {}

  // Empty if the class copies faithfully, else why not.
  std::string check(state::JobClass::Reader c) {
    if (!wholeWords(c)) return "it is stored in a list of plain values, not of structs";
    for (auto d : c.getDefs())
      if (!wholeWords(d)) return "a definition is stored in a list of plain values, not of structs";
    return structure(c, 0);
  }

 private:
  static bool wholeWords(capnp::AnyStruct::Reader s) { return s.getDataSection().size() % sizeof(capnp::word) == 0; }

  std::string structure(capnp::AnyStruct::Reader s, int depth) {
    if (std::string why = add(s.getDataSection().size() / sizeof(capnp::word) + s.getPointerSection().size()); !why.empty())
      return why;
    for (auto p : s.getPointerSection())
      if (std::string why = pointer(p, depth + 1); !why.empty()) return why;
    return {};
  }

  std::string pointer(capnp::AnyPointer::Reader p, int depth) {
    if (depth > 64) return "nested too deeply";
    switch (p.getPointerType()) {  // throws on a pointer of unknown kind
      case capnp::PointerType::NULL_: return {};
      case capnp::PointerType::CAPABILITY: return "it holds a capability";
      case capnp::PointerType::STRUCT: return structure(p.getAs<capnp::AnyStruct>(), depth);
      case capnp::PointerType::LIST: break;
    }
    auto list = p.getAs<capnp::AnyList>();
    switch (list.getElementSize()) {
      case capnp::ElementSize::VOID:
        return list.size() == 0 ? std::string() : "it holds a list of " + std::to_string(list.size()) + " Void";
      case capnp::ElementSize::POINTER:
        if (std::string why = add(list.size()); !why.empty()) return why;
        for (auto e : list.as<capnp::List<capnp::AnyPointer>>())
          if (std::string why = pointer(e, depth + 1); !why.empty()) return why;
        return {};
      case capnp::ElementSize::INLINE_COMPOSITE:
        for (auto e : list.as<capnp::List<capnp::AnyStruct>>()) {
          if (e.getDataSection().size() == 0 && e.getPointerSection().size() == 0)
            return "it holds a list of " + std::to_string(list.size()) + " empty structs";
          if (std::string why = structure(e, depth); !why.empty()) return why;
        }
        return add(1);  // the list's tag
      default:  // bits, bytes, 16-, 32- and 64-bit values: copied as they are
        return add((list.getRawBytes().size() + sizeof(capnp::word) - 1) / sizeof(capnp::word));
    }
  }

  std::string add(size_t words) {
    copied_ += words;
    if (copied_ <= bodyWords_) return {};
    return "its copy would be larger than the whole snapshot (objects shared by pointers)";
  }

  size_t bodyWords_;
  size_t copied_ = 0;  // words a copy of the classes walked so far writes
};

bool classesCopyable(const Snapshot& snapshot, std::string& error) {
  capnp::FlatArrayMessageReader reader(snapshot.body(), snapshot.readerOptions());
  CopyWalk walk(snapshot.body().size());
  uint32_t index = 0;
  for (auto c : reader.getRoot<state::Model>().getClasses()) {
    std::string why;
    try {
      why = walk.check(c);
    } catch (const kj::Exception& e) {
      why = e.getDescription().cStr();
    }
    if (!why.empty()) {
      error = "job class " + std::to_string(index) + " cannot be copied into the next snapshot: " + why;
      return false;
    }
    ++index;
  }
  return true;
}

}  // namespace

bool loadSnapshot(const Snapshot& snapshot, Model& model, std::string& error) {
  return loadSnapshot(snapshot, nullptr, model, error);
}

bool loadSnapshotLazily(std::shared_ptr<const Snapshot> snapshot, Model& model, std::string& error,
                        bool trustPreverified, bool checkFdTable) {
  return loadSnapshot(*snapshot, snapshot, model, error, trustPreverified, checkFdTable);
}

bool loadSnapshot(const Snapshot& snapshot, std::shared_ptr<const Snapshot> keep, Model& model,
                  std::string& error, bool trustPreverified, bool checkFdTable) {
  const SnapshotHeader& h = snapshot.header();
  if (h.format > kSnapshotFormat || h.format < kOldestReadableFormat) {
    error = "snapshot format " + std::to_string(h.format) + " (written by baton " +
            std::string(h.writerVersion, strnlen(h.writerVersion, sizeof h.writerVersion)) +
            ") is not readable by this build, which reads formats " +
            std::to_string(kOldestReadableFormat) + "-" + std::to_string(kSnapshotFormat);
    return false;
  }
  if (h.format != kSnapshotFormat) {
    // An older release's snapshot: walk the upgrade steps to this build's format first.
    std::string upgraded;
    auto current = std::make_shared<Snapshot>();
    if (!migrateSnapshot(snapshot, kSnapshotFormat, upgraded, error) || !current->openBytes(upgraded, error)) {
      error = "upgrading format " + std::to_string(h.format) + ": " + error;
      return false;
    }
    return loadSnapshot(*current, keep ? current : nullptr, model, error, false, checkFdTable);
  }
  try {
    if (keep) {
      auto body = std::make_shared<OpenBody>(keep);
      if (!decodeModelLazily(body->reader.getRoot<state::Model>(), body, model, error, trustPreverified)) return false;
    } else {
      capnp::FlatArrayMessageReader reader(snapshot.body(), snapshot.readerOptions());
      if (!decodeModel(reader.getRoot<state::Model>(), model, error) || !classesCopyable(snapshot, error)) return false;
    }
  } catch (const kj::Exception& e) {
    error = std::string("snapshot body is malformed: ") + e.getDescription().cStr();
    return false;
  }
  return !checkFdTable || checkFdTableMatchesModel(snapshot.fds(), model, error);
}

}  // namespace baton
