// Serialization benchmarks (issue 4, item 1).
//
// A realistic model of N jobs (N = 10 ... 100k): each a service with a description, a start
// condition, an exec line and console log, running with its environment and a log pipe; 10% of
// them with a spawn in flight; a few events blocked on jobs and clients waiting for them.
// Measured: encode (model -> sealed snapshot), decode (mapped snapshot -> model) and both, with
// bytes per job; in the same run the baseline a user of Upstart has: the same state as JSON
// (Cap'n Proto's JSON codec), encode and decode. Ratios: run bench/run-all.sh or compare the
// EncodeDecode and JsonEncodeDecode rows of one run.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <capnp/serialize.h>

#include "migrate/formats.h"
#include "serialize/codec.h"
#include "serialize/snapshot.h"

namespace baton {
namespace {

Model realisticModel(int jobs, int fd) {
  Model m;
  m.config.confDir = "/etc/baton/jobs";
  for (int i = 0; i < jobs; ++i) {
    auto def = std::make_shared<JobDef>();
    def->name = "service-" + std::to_string(i);
    def->path = "/etc/baton/jobs/" + def->name + ".conf";
    def->description = "benchmark service number " + std::to_string(i);
    EventNode start;
    start.name = "startup";
    def->startOn.nodes.push_back(start);
    def->process[0] = {false, "/usr/sbin/daemon-" + std::to_string(i) + " --foreground"};
    def->contentHash = "a3f9c2e1b4d5" + std::to_string(i);
    JobClass cls;
    cls.def = def;
    cls.startOn = def->startOn;
    Instance in;
    in.def = def;
    in.goal = Goal::Start;
    const bool inFlight = i % 10 == 0;
    in.state = inFlight ? JobState::Spawned : JobState::Running;
    in.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=linux",
              "UPSTART_EVENTS=startup", "UPSTART_JOB=" + def->name, "UPSTART_INSTANCE=",
              "BATON_JOB=" + def->name, "BATON_INSTANCE="};
    in.procs[0].pid = 1000 + i;
    in.procs[0].startTime = 123456 + uint64_t(i);
    if (inFlight) {
      in.procs[0].spawnValid = true;
      in.procs[0].statusFd = fd;
    }
    cls.instances.emplace("", std::move(in));
    m.classes.emplace(def->name, std::move(cls));
    m.logPipes.push_back({fd, def->name, ""});
  }
  // A few events blocked on jobs, and clients waiting for them.
  for (int e = 0; e < 4; ++e) {
    Event ev{uint64_t(e + 1), "custom-" + std::to_string(e), {"KEY=value"}, EventProgress::Handling, false, 1, {}};
    ev.waiters.push_back({uint64_t(e + 1), 7});
    m.events.push_back(ev);
    Connection c{uint64_t(e + 1), fd, 0, 4242, "", "", false, {{7, PendingRequest::Kind::Emit, ev.name, ""}}};
    m.connections.push_back(c);
  }
  m.nextEventId = 5;
  m.listenFd = fd;
  return m;
}

struct Fixture {
  int fd;
  Model model;
  explicit Fixture(int jobs) : fd(open("/dev/null", O_RDONLY | O_CLOEXEC)), model(realisticModel(jobs, fd)) {}
  ~Fixture() { close(fd); }
};

// `memory`: prepared ahead, as a re-exec does while its pre-flight runs; else allocated here.
int encode(const Model& m, size_t& bytes, SnapshotMemory* memory = nullptr) {
  std::string error;
  sys::Fd fd = writeSnapshot(m, kSnapshotFormat, 0, bytes, error, {.memory = memory});
  if (!fd) throw std::runtime_error(error);
  return fd.release();
}

// What a restore does with the mapped snapshot (the fd-table cross-check is left out: the
// fixture names one fd many times).
void decode(int fd, Model& out) {
  Snapshot s;
  std::string error;
  if (!s.open(fd, error)) throw std::runtime_error(error);
  capnp::FlatArrayMessageReader reader(s.body(), s.readerOptions());
  if (!decodeModel(reader.getRoot<state::Model>(), out, error)) throw std::runtime_error(error);
}

// What a restore does inside the re-exec window: the sealed snapshot is not checksummed again,
// definitions stay in it (decoded on first use), everything else is decoded.
struct LazyBody {
  std::shared_ptr<Snapshot> snapshot = std::make_shared<Snapshot>();
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
};
void decodeLazily(int fd, Model& out) {
  auto body = std::make_shared<LazyBody>();
  std::string error;
  if (!body->snapshot->open(fd, error, Snapshot::Trust::SealedHandoff)) throw std::runtime_error(error);
  capnp::ReaderOptions unlimited;
  unlimited.traversalLimitInWords = kj::maxValue;
  body->reader = std::make_unique<capnp::FlatArrayMessageReader>(body->snapshot->body(), unlimited);
  if (!decodeModelLazily(body->reader->getRoot<state::Model>(), body, out, error)) throw std::runtime_error(error);
}

void Encode(benchmark::State& state) {
  Fixture f(int(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) close(encode(f.model, bytes));
  state.counters["bytes_per_job"] = double(bytes) / double(state.range(0));
}

// Decode the same snapshot of N jobs again and again with `decodeFn`.
template <void (*decodeFn)(int, Model&)>
void decodeEach(benchmark::State& state) {
  Fixture f(int(state.range(0)));
  size_t bytes = 0;
  int fd = encode(f.model, bytes);
  for (auto _ : state) {
    Model out;
    decodeFn(fd, out);
    benchmark::DoNotOptimize(out.classes.size());
  }
  close(fd);
}
void Decode(benchmark::State& state) { decodeEach<decode>(state); }
void DecodeLazily(benchmark::State& state) { decodeEach<decodeLazily>(state); }

// The next re-exec of a restored model: definitions still encoded are copied, not re-encoded.
void EncodeRestored(benchmark::State& state) {
  Fixture f(int(state.range(0)));
  size_t bytes = 0;
  int fd = encode(f.model, bytes);
  Model restored;
  decodeLazily(fd, restored);
  close(fd);
  // As in the window: the memory was prepared (for the size of the last snapshot) beforehand.
  for (auto _ : state) {
    state.PauseTiming();
    SnapshotMemory memory;
    std::string error;
    if (!memory.prepare(snapshotReserveFor(restored, bytes), bytes + (64u << 10), error)) throw std::runtime_error(error);
    state.ResumeTiming();
    close(encode(restored, bytes, &memory));
  }
  state.counters["bytes_per_job"] = double(bytes) / double(state.range(0));
}

// One idle-encoding pass over N decoded jobs (holdEncoded): the time batond's loop spends on it.
void IdleEncode(benchmark::State& state) {
  Fixture f(int(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    Model copy = f.model;
    state.ResumeTiming();
    benchmark::DoNotOptimize(holdEncoded(copy.classes, [](const JobClass&) { return true; }));
    state.PauseTiming();
    copy = Model{};
    state.ResumeTiming();
  }
}

void EncodeDecode(benchmark::State& state) {
  Fixture f(int(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    int fd = encode(f.model, bytes);
    Model out;
    decode(fd, out);
    close(fd);
    benchmark::DoNotOptimize(out.classes.size());
  }
  state.counters["bytes_per_job"] = double(bytes) / double(state.range(0));
}

// Baseline: the same state as JSON text (what Upstart 1.x hands over), encode and decode.
void JsonEncodeDecode(benchmark::State& state) {
  Fixture f(int(state.range(0)));
  capnp::JsonCodec codec;
  size_t bytes = 0;
  for (auto _ : state) {
    capnp::MallocMessageBuilder out;
    encodeModel(f.model, out.initRoot<state::Model>());
    kj::String text = codec.encode(out.getRoot<state::Model>().asReader());
    bytes = text.size();
    capnp::MallocMessageBuilder in;
    codec.decode(text, in.initRoot<state::Model>());
    Model model;
    std::string error;
    if (!decodeModel(in.getRoot<state::Model>().asReader(), model, error)) throw std::runtime_error(error);
    benchmark::DoNotOptimize(model.classes.size());
  }
  state.counters["bytes_per_job"] = double(bytes) / double(state.range(0));
}

#define JOB_COUNTS ->Arg(10)->Arg(100)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)
BENCHMARK(Encode) JOB_COUNTS;
BENCHMARK(Decode) JOB_COUNTS;
BENCHMARK(EncodeDecode) JOB_COUNTS;
BENCHMARK(DecodeLazily) JOB_COUNTS;
BENCHMARK(EncodeRestored) JOB_COUNTS;
BENCHMARK(JsonEncodeDecode) JOB_COUNTS;
BENCHMARK(IdleEncode)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace baton

BENCHMARK_MAIN();
