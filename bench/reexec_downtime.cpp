// Re-exec downtime harness (issue 4, items 2, 3 and 5).
//
//   reexec_downtime --batond PATH [--jobs N] [--inflight K] [--reexecs R] [--probe status|reap]
//                   [--touch] [--idle-encode-ms MS] [--json FILE]
//
// Starts batond as PID 1 of a fresh PID namespace with N running jobs (`exec sleep`, console log)
// and K spawns held in flight (test hook), then re-execs it R times and reports median, p90 and
// max of the total downtime and of every phase as batond measured them. In the same run it
// measures the exec floor: the same batond binary exec'd with the same number of inherited fds
// and `--exec-floor` (exits at the top of main), and /bin/true, both timed from just before
// execve to the parent seeing the exit. Also batond's RSS and snapshot size.
//
// A restored batond leaves job classes encoded until something touches them, and copies the
// untouched ones into the next snapshot as bytes; so back-to-back re-execs of a quiet system are
// the cheap case. batond's idle encoding (--idle-encode-ms, 1000 here; batond's default is 10 s)
// holds the jobs at rest encoded the same way a moment after activity: the harness waits for it
// (RSS "at rest") before the first re-exec, which is still reported on its own. `--touch` sends
// a `status NAME` request for every job (each decodes its job) before each re-exec: the window
// then encodes all of them, the expensive case.
// `--idle-encode-ms 0` shows the first re-exec from a state where everything is decoded.
//
// Probes, each with and without re-execs in the same run:
//   status: a client sends status requests back to back; the longest gap between two answers.
//   reap:   a job exits and respawns every few ms; the longest time one of its processes stays a
//           zombie (exit -> reaped by batond), watched from outside through /proc.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "bench/bench_util.h"

using namespace baton::bench;
namespace wire = baton::wire;

namespace {

struct Args {
  std::string batond;
  int jobs = 100, inflight = 10, reexecs = 20;
  std::string probe;
  bool touch = false;
  std::string json;
  int idleEncodeMs = 1000;
};

// Count instances by state from a `list` answer.
std::map<std::string, int> states(Client& c) {
  std::map<std::string, int> out;
  auto resp = c.call([](wire::Request::Builder r) { r.setList(); });
  for (auto j : resp.getJobs()) {
    std::string st = j.getState();
    for (auto p : j.getProcesses())
      if (p.getSpawning()) st = "spawning";
    out[st]++;
  }
  return out;
}

struct ReexecSample {
  double serialize, preflight, exec, load, restore, rearm, downtime;
};

bool reexecOnce(Client& c, ReexecSample& s, std::string& error) {
  auto resp = c.call([](wire::Request::Builder r) { r.initReexec(); });
  if (!resp.isReexec() || !resp.getReexec().getOk()) {
    error = resp.getMessage().cStr();
    return false;
  }
  auto t = resp.getReexec().getTiming();
  s = {double(t.getSerializeNs()), double(t.getPreflightNs()), double(t.getExecNs()), double(t.getLoadNs()),
       double(t.getRestoreNs()),   double(t.getRearmNs()),     double(t.getDowntimeNs())};
  return true;
}

// Longest gap between consecutive status answers while `running` is set.
void statusProbe(const std::string& socket, std::atomic<bool>& running, double& maxGapNs, long& answers) {
  Client c(socket);
  int64_t last = nowNs();
  maxGapNs = 0;
  answers = 0;
  while (running) {
    try {
      c.call([](wire::Request::Builder r) { r.initStatus().setName("probe"); });
    } catch (...) {
      return;
    }
    int64_t now = nowNs();
    maxGapNs = std::max(maxGapNs, double(now - last));
    last = now;
    ++answers;
  }
}

std::vector<pid_t> childrenOf(pid_t pid) {
  std::vector<pid_t> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t p;
  while (in >> p) out.push_back(p);
  return out;
}

char procState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(in, s);
  size_t close = s.rfind(')');
  return close == std::string::npos || close + 2 >= s.size() ? 0 : s[close + 2];
}

// Longest zombie lifetime among batond's children while `running` is set.
void reapProbe(pid_t batond, std::atomic<bool>& running, double& maxDelayNs, long& reaped) {
  std::map<pid_t, int64_t> zombieSince;
  maxDelayNs = 0;
  reaped = 0;
  while (running) {
    int64_t now = nowNs();
    std::set<pid_t> current;
    for (pid_t p : childrenOf(batond)) {
      current.insert(p);
      if (!zombieSince.count(p) && procState(p) == 'Z') zombieSince[p] = now;
    }
    for (auto it = zombieSince.begin(); it != zombieSince.end();) {
      if (!current.count(it->first)) {
        maxDelayNs = std::max(maxDelayNs, double(now - it->second));
        ++reaped;
        it = zombieSince.erase(it);
      } else {
        ++it;
      }
    }
    usleep(50);
  }
}

void printStats(const char* name, const Stats& s, std::ostringstream& json) {
  printf("  %-10s median %9s us   p90 %9s us   max %9s us\n", name, fmtUs(s.median).c_str(), fmtUs(s.p90).c_str(),
         fmtUs(s.max).c_str());
  json << ",\"" << name << "\":{\"median_us\":" << fmtUs(s.median) << ",\"p90_us\":" << fmtUs(s.p90)
       << ",\"max_us\":" << fmtUs(s.max) << "}";
}

}  // namespace

// Jobs started per `bench-batch` event.
constexpr int kBatch = 500;

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (k == "--batond") a.batond = next();
    else if (k == "--jobs") a.jobs = std::stoi(next());
    else if (k == "--inflight") a.inflight = std::stoi(next());
    else if (k == "--reexecs") a.reexecs = std::stoi(next());
    else if (k == "--probe") a.probe = next();
    else if (k == "--json") a.json = next();
    else if (k == "--touch") a.touch = true;
    else if (k == "--idle-encode-ms") a.idleEncodeMs = std::stoi(next());
    else {
      std::cerr << "usage: reexec_downtime --batond PATH [--jobs N] [--inflight K] [--reexecs R] "
                   "[--probe status|reap] [--touch] [--idle-encode-ms MS] [--json FILE]\n";
      return 2;
    }
  }
  if (a.batond.empty()) {
    std::cerr << "reexec_downtime: --batond PATH is required\n";
    return 2;
  }
  raiseFdLimit();
  signal(SIGPIPE, SIG_IGN);

  const bool reapProbeOn = a.probe == "reap";
  // The held spawns sleep in read(2) on a FIFO (test hook BATON_TEST_HOLD_FIFO) whose writer
  // this process keeps open until it exits: they cost no CPU, however many there are. (The
  // hook used to poll for a file: 1,000 held children kept both cores of a small machine busy.)
  std::string hold;
  int holdFd = -1, holdErr = 0;
  Daemon d(a.batond, [&](const std::string& conf) {
    // Beside the confdir, not in it (batond reads that). O_RDWR: the open waits for no reader.
    hold = conf.substr(0, conf.rfind('/')) + "/hold";
    if (a.inflight > 0 && (mkfifo(hold.c_str(), 0600) != 0 ||
                           (holdFd = open(hold.c_str(), O_RDWR | O_CLOEXEC)) < 0))
      holdErr = errno;
    // Started in batches (see below), not all by `startup`: ten thousand spawns at once would
    // hold a status pipe and a log pipe each until their exec, past batond's fd limit here.
    for (int i = 0; i < a.jobs; ++i) {
      std::ofstream f(conf + "/job" + std::to_string(i) + ".conf");
      f << "description \"benchmark service " << i << "\"\nstart on bench-batch B=" << i / kBatch
        << "\nexec sleep 1000000\n";
    }
    for (int i = 0; i < a.inflight; ++i) {
      std::ofstream f(conf + "/held" + std::to_string(i) + ".conf");
      f << "start on startup\nenv BATON_TEST_HOLD_FIFO=" << hold << "\nexec /bin/true\n";
    }
    std::ofstream probe(conf + "/probe.conf");
    if (reapProbeOn)
      probe << "start on startup\nrespawn\nrespawn limit unlimited\nexec /bin/sh -c 'sleep 0.005'\n";
    else
      probe << "exec true\n";
  }, {"--idle-encode-ms", std::to_string(a.idleEncodeMs)});
  if (a.inflight > 0 && holdFd < 0) {
    std::cerr << "reexec_downtime: cannot hold spawns on the FIFO " << hold << ": " << strerror(holdErr) << "\n";
    return 1;
  }
  if (!d.ready()) {
    std::cerr << "reexec_downtime: batond did not start (see " << d.dir() << "/stderr)\n";
    return 1;
  }
  Client c(d.socket());
  // Start the jobs a batch at a time: emit waits until the batch's jobs run.
  for (int b = 0; b * kBatch < a.jobs; ++b) {
    auto resp = c.call([&](wire::Request::Builder r) {
      auto e = r.initEmit();
      e.setName("bench-batch");
      e.initEnv(1).set(0, "B=" + std::to_string(b));
    });
    if (resp.getCode() != wire::ResultCode::OK) {
      std::cerr << "reexec_downtime: starting batch " << b << " failed: " << resp.getMessage().cStr() << "\n";
      return 1;
    }
  }
  // Wait until every job runs and every held spawn is in flight.
  int64_t deadline = nowNs() + int64_t(600) * 1000000000;
  for (;;) {
    auto s = states(c);
    if (s["running"] >= a.jobs + (reapProbeOn ? 0 : 0) && s["spawning"] >= a.inflight) break;
    if (nowNs() > deadline) {
      std::cerr << "reexec_downtime: jobs did not all start\n";
      return 1;
    }
    usleep(100000);
  }
  const long rss = d.rssKb();
  const std::string rssParts = d.rssParts();
  // At rest: once the idle encoding has held every job that sits still (the held spawns do not),
  // which is what a batond with this many jobs looks like most of its life.
  long rssRest = -1;
  std::string rssRestParts = "idle encoding off";
  if (a.idleEncodeMs > 0) {
    const int64_t until = nowNs() + int64_t(60) * 1000000000;
    uint32_t held = 0;
    while (nowNs() < until) {
      auto resp = c.call([](wire::Request::Builder r) { r.setDaemonStatus(); });
      held = resp.isDaemon() ? resp.getDaemon().getEncodedJobs() : 0;
      if (held >= uint32_t(a.jobs)) break;
      usleep(100000);
    }
    if (held < uint32_t(a.jobs)) std::cerr << "reexec_downtime: only " << held << " jobs held encoded after 60 s\n";
    // The pass after the last request (this poll's) trims what the requests left: at rest is
    // after it.
    usleep(useconds_t(a.idleEncodeMs) * 2000);
    rssRest = d.rssKb();
    rssRestParts = d.rssParts();
  }
  const int fds = d.fdCount();
  size_t snapshotBytes = 0;
  {
    auto resp = c.call([](wire::Request::Builder r) { r.setSnapshot(); });
    if (resp.isSnapshot()) snapshotBytes = resp.getSnapshot().size();
  }

  // Probe baseline: the same measurement without re-execs, for as long as the re-execs take.
  std::atomic<bool> running{true};
  double quietGap = 0, busyGap = 0;
  long quietCount = 0, busyCount = 0;
  auto startProbe = [&](double& out, long& count) -> std::thread {
    if (a.probe == "status") return std::thread(statusProbe, d.socket(), std::ref(running), std::ref(out), std::ref(count));
    if (a.probe == "reap") return std::thread(reapProbe, d.hostPid(), std::ref(running), std::ref(out), std::ref(count));
    return std::thread();
  };
  const int64_t quietNs = int64_t(a.reexecs) * 30000000;  // ~ the time the re-execs take
  if (!a.probe.empty()) {
    std::thread t = startProbe(quietGap, quietCount);
    usleep(useconds_t(quietNs / 1000));
    running = false;
    t.join();
    running = true;
  }

  std::vector<ReexecSample> samples;
  std::thread probe = a.probe.empty() ? std::thread() : startProbe(busyGap, busyCount);
  for (int i = 0; i < a.reexecs; ++i) {
    if (a.touch) {
      // `status NAME` decodes that job (a `list` reads held jobs through copies and leaves them
      // held): every job is decoded, and the window encodes all of them again.
      for (int j = 0; j < a.jobs + a.inflight; ++j) {
        const std::string name = j < a.jobs ? "job" + std::to_string(j) : "held" + std::to_string(j - a.jobs);
        auto resp = c.call([&](wire::Request::Builder r) { r.initStatus().setName(name); });
        if (resp.getCode() != wire::ResultCode::OK) {
          std::cerr << "reexec_downtime: status " << name << " failed: " << resp.getMessage().cStr() << "\n";
          return 1;
        }
      }
    }
    ReexecSample s;
    std::string error;
    if (!reexecOnce(c, s, error)) {
      std::cerr << "reexec_downtime: re-exec " << i << " failed: " << error << "\n";
      running = false;
      if (probe.joinable()) probe.join();
      return 1;
    }
    samples.push_back(s);
    usleep(20000);
  }
  running = false;
  if (probe.joinable()) probe.join();
  // After the re-execs: what a restored batond holds (it keeps the snapshot mapped while job
  // definitions are read from it).
  const long rssAfter = d.rssKb();
  const std::string rssAfterParts = d.rssParts();

  // The exec floor, in the same run, with as many inherited fds as batond hands over.
  std::vector<double> floorBatond, floorTrue;
  for (int i = 0; i < std::max(a.reexecs, 20); ++i) {
    floorBatond.push_back(execNs(a.batond, {a.batond, "--exec-floor"}, fds));
    floorTrue.push_back(execNs("/bin/true", {"/bin/true"}, fds));
  }

  auto pick = [&](double ReexecSample::*m) {
    std::vector<double> v;
    for (auto& s : samples) v.push_back(s.*m);
    return stats(v);
  };
  Stats down = pick(&ReexecSample::downtime);
  Stats fb = stats(floorBatond), ft = stats(floorTrue);
  std::ostringstream json;
  json << "{\"jobs\":" << a.jobs << ",\"inflight\":" << a.inflight << ",\"reexecs\":" << a.reexecs
       << ",\"touch\":" << (a.touch ? "true" : "false") << ",\"first_us\":" << fmtUs(samples.empty() ? 0 : samples.front().downtime)
       << ",\"fds\":" << fds << ",\"rss_kb\":" << rss << ",\"rss_rest_kb\":" << rssRest << ",\"rss_after_kb\":" << rssAfter << ",\"snapshot_bytes\":" << snapshotBytes;
  printf("batond %s: %d jobs running, %d spawns in flight, %d re-execs, %d fds handed over\n", a.batond.c_str(),
         a.jobs, a.inflight, a.reexecs, fds);
  printf("  %s\n", a.touch ? "a status request touched every job before each re-exec (all decoded, all encoded in the window)"
                            : "no event between re-execs (untouched jobs stay encoded and are copied as bytes)");
  printf("  first re-exec after the start (after the idle encoding if it is on): %s us\n", fmtUs(samples.empty() ? 0 : samples.front().downtime).c_str());
  printStats("downtime", down, json);
  printStats("serialize", pick(&ReexecSample::serialize), json);
  printStats("preflight", pick(&ReexecSample::preflight), json);
  printStats("exec", pick(&ReexecSample::exec), json);
  printStats("load", pick(&ReexecSample::load), json);
  printStats("restore", pick(&ReexecSample::restore), json);
  printStats("rearm", pick(&ReexecSample::rearm), json);
  printStats("floor", fb, json);
  printStats("bin_true", ft, json);
  printf("  downtime / exec floor (medians): %.2fx    downtime / /bin/true: %.2fx\n", down.median / fb.median,
         down.median / ft.median);
  printf("  batond RSS %ld kB as started, %ld kB at rest, %ld kB after the re-execs; snapshot %zu bytes (%.0f bytes/job)\n",
         rss, rssRest, rssAfter, snapshotBytes, double(snapshotBytes) / std::max(1, a.jobs + a.inflight));
  printf("    as started: %s; at rest: %s; after the re-execs: %s\n", rssParts.c_str(), rssRestParts.c_str(),
         rssAfterParts.c_str());
  json << ",\"ratio_floor\":" << down.median / fb.median << ",\"ratio_true\":" << down.median / ft.median;
  if (!a.probe.empty()) {
    const char* what = a.probe == "status" ? "longest gap between status answers" : "longest exit->reap delay";
    printf("  probe %s: %s without re-execs %s us (%ld samples), with re-execs %s us (%ld samples)\n",
           a.probe.c_str(), what, fmtUs(quietGap).c_str(), quietCount, fmtUs(busyGap).c_str(), busyCount);
    json << ",\"probe\":\"" << a.probe << "\",\"probe_quiet_us\":" << fmtUs(quietGap)
         << ",\"probe_reexec_us\":" << fmtUs(busyGap);
  }
  json << "}";
  if (!a.json.empty()) {
    std::ofstream out(a.json, std::ios::app);
    out << json.str() << "\n";
  }
  return 0;
}
