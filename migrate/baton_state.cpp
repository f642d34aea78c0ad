// baton-state: the offline snapshot tool.
//
//   baton-state decode SNAPSHOT [--json|--text]   header, fd table and body
//   baton-state encode --from-json FILE -o OUT    build a snapshot from decode --json output
//   baton-state migrate SNAPSHOT --to N [--map] -o OUT    upgrade/downgrade to format N
//   baton-state verify SNAPSHOT                   would this build restore it? (like --verify-state)
//   baton-state diff A B                          semantic diff: job by job, field by field
//   baton-state import-upstart FILE.json [-o OUT] [--json]   Upstart 1.x state -> baton
//   baton-state formats                           formats this build reads and writes
//
// Exit codes: 0 ok (diff: no differences), 1 refused / differences found, 2 usage,
// 3 a file cannot be read or written. Every error names the file, the format and what is wrong.
#include <fcntl.h>
#include <unistd.h>

#include <capnp/compat/json.h>
#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/pretty-print.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <iostream>
#include <optional>

#include "migrate/formats.h"
#include "migrate/upstart_import.h"
#include "serialize/codec.h"
#include "serialize/snapshot.h"
#include "base/syscalls.h"

namespace baton {
namespace {

constexpr int kOk = 0, kRefused = 1, kUsage = 2, kIo = 3;

const char* kUsageText =
    "usage: baton-state COMMAND ...\n"
    "  decode SNAPSHOT [--json|--text]    print header, fd table and state\n"
    "  encode --from-json FILE -o OUT     write a snapshot from `decode --json` output\n"
    "  migrate SNAPSHOT --to N [--map] -o OUT\n"
    "                                     convert to snapshot format N (--map: a downgrade may\n"
    "                                     map what format N lacks, docs/formats.md)\n"
    "  verify SNAPSHOT                    check that this build can restore it\n"
    "  diff A B                           semantic diff of two snapshots\n"
    "  import-upstart FILE.json [-o OUT] [--json]   import Upstart 1.x state\n"
    "  formats                            snapshot formats this build reads and writes\n"
    "exit codes: 0 ok, 1 refused or different, 2 usage, 3 cannot read/write a file\n";

struct Failure {
  int code;
  std::string message;
};

std::string readWhole(const std::string& path) {
  std::string data;
  if (!sys::readFile(path, data, size_t(1) << 31)) throw Failure{kIo, path + ": cannot read: " + sys::errnoText(errno)};
  return data;
}

void writeWhole(const std::string& path, const std::string& data) {
  // Atomically, as batond keeps a snapshot: a new temporary file beside it, renamed over it.
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string error;
  sys::Fd dirFd = sys::openDirectory(dir, /*create=*/false, error);
  if (!dirFd || !sys::writeFileAt(dirFd.get(), name, data.data(), data.size(), 0600, error))
    throw Failure{kIo, path + ": cannot write: " + error};
}


std::string formatLabel(const Snapshot& s) {
  const SnapshotHeader& h = s.header();
  return "format " + std::to_string(h.format) + ", written by baton " +
         std::string(h.writerVersion, strnlen(h.writerVersion, sizeof h.writerVersion));
}

// Open and validate a snapshot file; errors name the file.
void openSnapshot(const std::string& path, Snapshot& s) {
  std::string error;
  if (!s.openBytes(readWhole(path), error)) throw Failure{kRefused, path + ": " + error};
}

// Decode into the model (migrating to this build's format).
Model loadModel(const std::string& path, const Snapshot& s) {
  Model m;
  std::string error;
  if (!loadSnapshot(s, m, error)) throw Failure{kRefused, path + " (" + formatLabel(s) + "): " + error};
  return m;
}

// Serialize a model offline (fds not open here) and return the bytes.
std::string snapshotBytes(const Model& m) {
  size_t bytes = 0;
  std::string error;
  sys::Fd fd = writeSnapshot(m, kSnapshotFormat, sys::monotonicNs(), bytes, error, {.liveFds = false});
  if (!fd) throw Failure{kRefused, "cannot build the snapshot: " + error};
  return readSnapshotFd(fd.get());
}

int cmdDecode(const std::vector<std::string>& args) {
  std::string path;
  bool json = false, text = false;
  for (const std::string& a : args) {
    if (a == "--json") json = true;
    else if (a == "--text") text = true;
    else if (path.empty()) path = a;
    else throw Failure{kUsage, "decode: unexpected argument '" + a + "'"};
  }
  if (path.empty()) throw Failure{kUsage, "decode: SNAPSHOT missing"};
  Snapshot s;
  openSnapshot(path, s);
  loadModel(path, s);  // refuses what this build could not restore
  capnp::FlatArrayMessageReader reader(s.body(), s.readerOptions());
  auto root = reader.getRoot<state::Model>();
  if (json) {
    capnp::JsonCodec codec;
    codec.setPrettyPrint(true);
    std::cout << codec.encode(root).cStr() << "\n";
    return kOk;
  }
  const SnapshotHeader& h = s.header();
  std::cout << "snapshot: " << path << "\n"
            << "format: " << h.format << " (oldest reader format " << h.minReaderFormat << ")\n"
            << "writer: baton " << std::string(h.writerVersion, strnlen(h.writerVersion, sizeof h.writerVersion)) << "\n"
            << "serialization began: " << h.serializeStartNs << " ns (CLOCK_MONOTONIC)\n"
            << "size: " << s.size() << " bytes (body " << h.bodyBytes << ")\n"
            << "fds: " << h.fdCount << "\n";
  for (const FdEntry& e : s.fds())
    std::cout << "  fd " << e.fd << ": " << fdRoleName(FdRole(e.role)) << " (dev " << e.dev << ", ino "
              << e.ino << ", type 0" << std::oct << e.type << std::dec << ")\n";
  if (text) std::cout << capnp::prettyPrint(root).flatten().cStr() << "\n";
  return kOk;
}

int cmdEncode(const std::vector<std::string>& args) {
  std::string in, out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--from-json" && i + 1 < args.size()) in = args[++i];
    else if (args[i] == "-o" && i + 1 < args.size()) out = args[++i];
    else throw Failure{kUsage, "encode: unexpected argument '" + args[i] + "'"};
  }
  if (in.empty() || out.empty()) throw Failure{kUsage, "encode: --from-json FILE and -o OUT are required"};
  std::string json = readWhole(in);
  capnp::MallocMessageBuilder message;
  capnp::JsonCodec codec;
  try {
    codec.decode(kj::StringPtr(json.c_str()), message.initRoot<state::Model>());
  } catch (const kj::Exception& e) {
    throw Failure{kRefused, in + ": not a format " + std::to_string(kSnapshotFormat) + " state in JSON: " +
                                e.getDescription().cStr()};
  }
  Model m;
  std::string error;
  if (!decodeModel(message.getRoot<state::Model>().asReader(), m, error))
    throw Failure{kRefused, in + " (format " + std::to_string(kSnapshotFormat) + "): " + error};
  writeWhole(out, snapshotBytes(m));
  return kOk;
}

int cmdMigrate(const std::vector<std::string>& args) {
  std::string path, out;
  std::optional<uint32_t> to;
  MigrationNotes notes;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--to" && i + 1 < args.size()) to = uint32_t(std::stoul(args[++i]));
    else if (args[i] == "-o" && i + 1 < args.size()) out = args[++i];
    else if (args[i] == "--map") notes.mayMap = true;
    else if (path.empty()) path = args[i];
    else throw Failure{kUsage, "migrate: unexpected argument '" + args[i] + "'"};
  }
  if (path.empty() || !to || out.empty()) throw Failure{kUsage, "migrate: SNAPSHOT --to N -o OUT are required"};
  Snapshot s;
  openSnapshot(path, s);
  std::string bytes, error;
  if (!migrateSnapshot(s, *to, bytes, error, &notes))
    throw Failure{kRefused, path + " (" + formatLabel(s) + "): " + error};
  writeWhole(out, bytes);
  std::cout << path << ": format " << formatPath(s.header().format, *to) << ": " << out << "\n";
  for (const std::string& m : notes.mapped) std::cout << "mapped: " << m << "\n";
  return kOk;
}

int cmdVerify(const std::vector<std::string>& args) {
  if (args.size() != 1) throw Failure{kUsage, "verify: SNAPSHOT"};
  Snapshot s;
  openSnapshot(args[0], s);
  Model m = loadModel(args[0], s);
  std::cout << args[0] << ": ok (" << formatLabel(s) << "): " << m.classes.size() << " jobs, "
            << m.classes.instanceCount() << " instances, " << m.events.size() << " events, " << s.fds().size()
            << " fds\n";
  return kOk;
}

// ---- semantic diff over the schema, by reflection: every field of every struct ----

std::string show(capnp::DynamicValue::Reader v) {
  std::string s = kj::str(v).cStr();
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return s;
}

// Lists of structs are matched by their natural key, so a reordered list is not a difference.
std::optional<capnp::StructSchema::Field> keyField(capnp::StructSchema schema) {
  for (const char* name : {"name", "id", "type", "fd", "requestId"})
    KJ_IF_MAYBE(f, schema.findFieldByName(name)) { return *f; }
  return std::nullopt;
}

void diffValue(const std::string& path, capnp::DynamicValue::Reader a, capnp::DynamicValue::Reader b,
               std::vector<std::string>& out);

void diffStruct(const std::string& path, capnp::DynamicStruct::Reader a, capnp::DynamicStruct::Reader b,
                std::vector<std::string>& out) {
  for (auto field : a.getSchema().getFields()) {
    bool inA = a.has(field), inB = b.has(field);
    if (field.getProto().getDiscriminantValue() != capnp::schema::Field::NO_DISCRIMINANT) {
      // Union member: only compare the active one.
      KJ_IF_MAYBE(fa, a.which()) {
        KJ_IF_MAYBE(fb, b.which()) {
          if (*fa != field && *fb != field) continue;
          if (*fa != *fb) {
            out.push_back(path + ": " + fa->getProto().getName().cStr() + " -> " + fb->getProto().getName().cStr());
            continue;
          }
        }
      }
    }
    (void)inA;
    (void)inB;
    diffValue(path + "." + field.getProto().getName().cStr(), a.get(field), b.get(field), out);
  }
}

void diffList(const std::string& path, capnp::DynamicList::Reader a, capnp::DynamicList::Reader b,
              std::vector<std::string>& out) {
  auto elem = a.getSchema().whichElementType();
  if (elem == capnp::schema::Type::STRUCT) {
    auto key = keyField(a.getSchema().getStructElementType());
    if (key) {
      auto keyOf = [&](capnp::DynamicValue::Reader v) { return show(v.as<capnp::DynamicStruct>().get(*key)); };
      std::map<std::string, capnp::DynamicValue::Reader> left, right;
      for (auto v : a) left.emplace(keyOf(v), v);
      for (auto v : b) right.emplace(keyOf(v), v);
      for (auto& [k, v] : left) {
        auto it = right.find(k);
        if (it == right.end()) out.push_back(path + "[" + k + "]: removed");
        else diffValue(path + "[" + k + "]", v, it->second, out);
      }
      for (auto& [k, v] : right)
        if (!left.count(k)) out.push_back(path + "[" + k + "]: added");
      return;
    }
    size_t n = std::min(a.size(), b.size());
    for (size_t i = 0; i < n; ++i) diffValue(path + "[" + std::to_string(i) + "]", a[i], b[i], out);
    if (a.size() != b.size())
      out.push_back(path + ": " + std::to_string(a.size()) + " -> " + std::to_string(b.size()) + " entries");
    return;
  }
  if (show(a) != show(b) || a.size() != b.size()) out.push_back(path + ": " + show(a) + " -> " + show(b));
}

void diffValue(const std::string& path, capnp::DynamicValue::Reader a, capnp::DynamicValue::Reader b,
               std::vector<std::string>& out) {
  switch (a.getType()) {
    case capnp::DynamicValue::STRUCT:
      return diffStruct(path, a.as<capnp::DynamicStruct>(), b.as<capnp::DynamicStruct>(), out);
    case capnp::DynamicValue::LIST:
      return diffList(path, a.as<capnp::DynamicList>(), b.as<capnp::DynamicList>(), out);
    default:
      if (show(a) != show(b)) out.push_back(path + ": " + show(a) + " -> " + show(b));
  }
}

int cmdDiff(const std::vector<std::string>& args) {
  if (args.size() != 2) throw Failure{kUsage, "diff: A B"};
  Snapshot sa, sb;
  openSnapshot(args[0], sa);
  openSnapshot(args[1], sb);
  // Bring both to this build's format (and refuse what cannot be read), then compare the state.
  Model ma = loadModel(args[0], sa), mb = loadModel(args[1], sb);
  capnp::MallocMessageBuilder ba, bb;
  encodeModel(ma, ba.initRoot<state::Model>());
  encodeModel(mb, bb.initRoot<state::Model>());
  std::vector<std::string> out;
  if (sa.header().format != sb.header().format)
    out.push_back("header.format: " + std::to_string(sa.header().format) + " -> " + std::to_string(sb.header().format));
  diffValue("state", capnp::toDynamic(ba.getRoot<state::Model>().asReader()),
            capnp::toDynamic(bb.getRoot<state::Model>().asReader()), out);
  for (const std::string& line : out) std::cout << line << "\n";
  if (out.empty()) std::cout << "no differences\n";
  return out.empty() ? kOk : kRefused;
}

int cmdImportUpstart(const std::vector<std::string>& args) {
  std::string path, out;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-o" && i + 1 < args.size()) out = args[++i];
    else if (args[i] == "--json") json = true;
    else if (path.empty()) path = args[i];
    else throw Failure{kUsage, "import-upstart: unexpected argument '" + args[i] + "'"};
  }
  if (path.empty()) throw Failure{kUsage, "import-upstart: FILE.json missing"};
  UpstartImport imported;
  std::string error;
  if (!importUpstartState(readWhole(path), imported, error))
    throw Failure{kRefused, path + " (Upstart JSON state): " + error};
  for (const std::string& w : imported.warnings) std::cerr << "baton-state: " << path << ": warning: " << w << "\n";
  std::cout << path << ": imported " << imported.model.classes.size() << " jobs, "
            << imported.model.classes.instanceCount() << " instances, "
            << imported.model.events.size() << " events, " << imported.warnings.size() << " warnings\n";
  if (json) {
    capnp::MallocMessageBuilder message;
    encodeModel(imported.model, message.initRoot<state::Model>());
    capnp::JsonCodec codec;
    codec.setPrettyPrint(true);
    std::cout << codec.encode(message.getRoot<state::Model>().asReader()).cStr() << "\n";
  }
  if (!out.empty()) writeWhole(out, snapshotBytes(imported.model));
  return kOk;
}

int run(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsageText;
    return argc < 2 ? kUsage : kOk;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "decode") return cmdDecode(args);
  if (cmd == "encode") return cmdEncode(args);
  if (cmd == "migrate") return cmdMigrate(args);
  if (cmd == "verify") return cmdVerify(args);
  if (cmd == "diff") return cmdDiff(args);
  if (cmd == "import-upstart") return cmdImportUpstart(args);
  if (cmd == "formats") {
    std::cout << stateFormatsText();
    return kOk;
  }
  throw Failure{kUsage, "unknown command '" + cmd + "'"};
}

}  // namespace
}  // namespace baton

int main(int argc, char** argv) {
  try {
    return baton::run(argc, argv);
  } catch (const baton::Failure& f) {
    std::cerr << "baton-state: " << f.message << "\n";
    if (f.code == baton::kUsage) std::cerr << baton::kUsageText;
    return f.code;
  } catch (const kj::Exception& e) {
    std::cerr << "baton-state: " << e.getDescription().cStr() << "\n";
    return baton::kRefused;
  } catch (const std::exception& e) {
    std::cerr << "baton-state: " << e.what() << "\n";
    return baton::kUsage;
  }
}
