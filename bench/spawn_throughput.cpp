// Spawn throughput (issue 4, item 4): 1,000 task jobs (`exec /bin/true`) started by one event,
// jobs per second from `emit` until every task has finished (emit waits for that), against a bare
// C++ fork + exec + waitpid loop over /bin/true in the same run. With `console none` and with
// `console log` (every task's output through a pipe to batond and into its log file).
//
//   spawn_throughput --batond PATH [--tasks N] [--rounds R] [--json FILE]
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "bench/bench_util.h"

using namespace baton::bench;
namespace wire = baton::wire;

namespace {

double bareLoop(int n) {
  char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  int64_t t0 = nowNs();
  for (int i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      execv(argv[0], argv);
      _exit(127);
    }
    waitpid(pid, nullptr, 0);
  }
  return double(n) / (double(nowNs() - t0) / 1e9);
}

double batondRun(const std::string& batond, int n, const std::string& console, int rounds) {
  Daemon d(batond, [&](const std::string& conf) {
    for (int i = 0; i < n; ++i) {
      std::ofstream f(conf + "/task" + std::to_string(i) + ".conf");
      f << "start on go\ntask\nconsole " << console << "\nexec /bin/true\n";
    }
  });
  if (!d.ready()) throw std::runtime_error("batond did not start");
  Client c(d.socket());
  std::vector<double> rates;
  for (int r = 0; r < rounds; ++r) {
    int64_t t0 = nowNs();
    auto resp = c.call([](wire::Request::Builder req) { req.initEmit().setName("go"); });
    int64_t t1 = nowNs();
    if (resp.getCode() != wire::ResultCode::OK) throw std::runtime_error("emit failed");
    rates.push_back(double(n) / (double(t1 - t0) / 1e9));
  }
  return stats(rates).median;
}

}  // namespace

int main(int argc, char** argv) {
  std::string batond, json;
  int tasks = 1000, rounds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (k == "--batond") batond = next();
    else if (k == "--tasks") tasks = std::stoi(next());
    else if (k == "--rounds") rounds = std::stoi(next());
    else if (k == "--json") json = next();
    else {
      std::cerr << "usage: spawn_throughput --batond PATH [--tasks N] [--rounds R] [--json FILE]\n";
      return 2;
    }
  }
  if (batond.empty()) {
    std::cerr << "spawn_throughput: --batond PATH is required\n";
    return 2;
  }
  raiseFdLimit();
  try {
    double bare = bareLoop(tasks);
    double none = batondRun(batond, tasks, "none", rounds);
    double bare2 = bareLoop(tasks);  // again, so machine noise shows on both sides
    double logged = batondRun(batond, tasks, "log", rounds);
    double base = (bare + bare2) / 2;
    printf("spawn throughput, %d tasks (exec /bin/true):\n", tasks);
    printf("  bare fork+exec+waitpid loop   %8.0f jobs/s\n", base);
    printf("  batond, console none          %8.0f jobs/s   (%.2fx the bare loop)\n", none, none / base);
    printf("  batond, console log           %8.0f jobs/s   (%.2fx the bare loop)\n", logged, logged / base);
    if (!json.empty()) {
      std::ofstream out(json, std::ios::app);
      out << "{\"spawn_tasks\":" << tasks << ",\"bare_per_s\":" << base << ",\"batond_none_per_s\":" << none
          << ",\"batond_log_per_s\":" << logged << ",\"ratio_none\":" << none / base
          << ",\"ratio_log\":" << logged / base << "}\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "spawn_throughput: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
