// Shared pieces of the benchmark programs: a synchronous control client, batond in a PID
// namespace, process probes, statistics. Benchmarks only; tests have their own harness.
#pragma once
#include <sys/types.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "schema/control.capnp.h"

namespace baton::bench {

int64_t nowNs();

// One blocking connection to batond speaking the framed control protocol.
class Client {
 public:
  explicit Client(const std::string& socket);
  ~Client();
  bool ok() const { return fd_ >= 0; }
  // Send a request built by `fill`, wait for its response; the returned reader stays valid until
  // the next call.
  wire::Response::Reader call(const std::function<void(wire::Request::Builder)>& fill);

 private:
  int fd_ = -1;
  uint64_t nextId_ = 1;
  std::string inbuf_;
  kj::Array<capnp::word> words_;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
};

struct Teardown;

// batond as PID 1 of a new PID namespace, in a temp dir of its own. The namespace and the dir
// are removed by the destructor, and also when the benchmark is ended by a signal (Ctrl-C,
// SIGTERM, SIGHUP, or SIGABRT from an escaping exception): unshare itself ignores SIGINT and
// SIGTERM while it waits, and batond as PID 1 treats them as requests, so without this an
// interrupted run left batond and its thousands of children behind.
class Daemon {
 public:
  // `jobs` writes job files into the given confdir before the start.
  Daemon(const std::string& batond, const std::function<void(const std::string& confdir)>& jobs,
         const std::vector<std::string>& extraArgs = {});
  ~Daemon();
  bool ready(int timeoutMs = 30000);
  const std::string& socket() const { return socket_; }
  const std::string& dir() const { return dir_; }
  pid_t hostPid();        // batond, seen from the host
  long rssKb();           // VmRSS of batond
  std::map<std::string, long> statusKb();  // the kB fields of its /proc/PID/status
  std::string rssParts(); // VmRSS split as the kernel counts it: "anon A, file F, shmem S kB"
  int fdCount();          // open fds of batond

 private:
  std::string dir_, socket_;
  pid_t unshare_ = -1, init_ = -1;
  Teardown* teardown_ = nullptr;  // its entry for the signal handler (bench_util.cpp)
};

struct Stats {
  double median = 0, p90 = 0, max = 0, min = 0;
  size_t n = 0;
};
Stats stats(std::vector<double> v);
std::string fmtUs(double ns);  // "1234.5"

// Raise RLIMIT_NOFILE to its hard limit (10k jobs with log pipes need many fds).
void raiseFdLimit();

// Time from just before execve(path, argv) in a forked child to the parent seeing it exit,
// with `extraFds` additional open, inheritable fds (like the handoff table of a re-exec).
double execNs(const std::string& path, const std::vector<std::string>& argv, int extraFds);

}  // namespace baton::bench
