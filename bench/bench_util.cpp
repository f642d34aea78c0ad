#include "bench/bench_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "supervisor/control_frame.h"

namespace baton::bench {

int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Client::Client(const std::string& socket) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

Client::~Client() {
  if (fd_ >= 0) close(fd_);
}

wire::Response::Reader Client::call(const std::function<void(wire::Request::Builder)>& fill) {
  capnp::MallocMessageBuilder msg;
  auto req = msg.initRoot<wire::Request>();
  uint64_t id = nextId_++;
  req.setId(id);
  fill(req);
  std::string frame = encodeFrame(msg);
  for (size_t done = 0; done < frame.size();) {
    ssize_t n = write(fd_, frame.data() + done, frame.size() - done);
    if (n <= 0) throw std::runtime_error("control socket write failed");
    done += size_t(n);
  }
  for (;;) {
    std::string error;
    FrameStatus st = takeFrame(inbuf_, words_, error, kMaxResponseBytes);
    if (st == FrameStatus::Error) throw std::runtime_error("bad frame: " + error);
    if (st == FrameStatus::Complete) {
      reader_ = std::make_unique<capnp::FlatArrayMessageReader>(words_, controlReaderOptions(words_.size()));
      auto resp = reader_->getRoot<wire::Response>();
      if (resp.getId() == id) return resp;
      continue;
    }
    char buf[65536];
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("connection closed");
    inbuf_.append(buf, size_t(n));
  }
}

// What the signal handler tears down: each live Daemon's unshare pid and its temp dir, kept in
// fixed storage so that the handler reads no heap and calls only async-signal-safe functions.
struct Teardown {
  volatile pid_t unshare = -1;
  char dir[64] = {};
};

namespace {

constexpr int kMaxDaemons = 4;
Teardown gTeardown[kMaxDaemons];

void tearDownOnSignal(int sig) {
  for (Teardown& t : gTeardown) {
    const pid_t pid = t.unshare;
    if (pid <= 0) continue;
    // unshare --kill-child makes batond (PID 1 of the namespace) die with it, and the kernel
    // then kills every other process of the namespace.
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    if (t.dir[0]) {
      const pid_t rm = fork();
      if (rm == 0) {
        char* const argv[] = {const_cast<char*>("/bin/rm"), const_cast<char*>("-rf"), t.dir, nullptr};
        execv(argv[0], argv);
        _exit(127);
      }
      if (rm > 0) waitpid(rm, nullptr, 0);
    }
    t.unshare = -1;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

Teardown* registerTeardown(pid_t unshare, const std::string& dir) {
  static bool installed = false;
  if (!installed) {
    struct sigaction sa{};
    sa.sa_handler = tearDownOnSignal;
    sigfillset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT}) sigaction(sig, &sa, nullptr);
    installed = true;
  }
  for (Teardown& t : gTeardown) {
    if (t.unshare > 0) continue;
    snprintf(t.dir, sizeof t.dir, "%s", dir.c_str());
    t.unshare = unshare;
    return &t;
  }
  return nullptr;  // more daemons at once than any benchmark starts: only the destructor cleans
}

}  // namespace

Daemon::Daemon(const std::string& batond, const std::function<void(const std::string&)>& jobs,
               const std::vector<std::string>& extraArgs) {
  char tmpl[] = "/tmp/baton-bench.XXXXXX";
  dir_ = mkdtemp(tmpl);
  std::string conf = dir_ + "/conf";
  mkdir(conf.c_str(), 0755);
  jobs(conf);
  socket_ = dir_ + "/sock";
  std::vector<std::string> args = {"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL",
                                   batond, "--confdir", conf, "--socket", socket_, "--logdir", dir_ + "/log",
                                   "--cgroup-base", "baton-bench-" + std::to_string(getpid()), "--test-hooks",
                                   "--log-priority", "error"};
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  unshare_ = fork();
  if (unshare_ == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int err = open((dir_ + "/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(err, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (unshare_ > 0) teardown_ = registerTeardown(unshare_, dir_);
}

Daemon::~Daemon() {
  if (teardown_) teardown_->unshare = -1;  // from here on, this destructor tears down
  pid_t init = hostPid();
  if (init > 0) kill(init, SIGKILL);  // ends the whole namespace
  if (unshare_ > 0) waitpid(unshare_, nullptr, 0);
  std::string cmd = "rm -rf '" + dir_ + "'";
  if (system(cmd.c_str()) != 0) {}
}

bool Daemon::ready(int timeoutMs) {
  int64_t deadline = nowNs() + int64_t(timeoutMs) * 1000000;
  while (nowNs() < deadline) {
    Client c(socket_);
    if (c.ok()) {
      try {
        c.call([](wire::Request::Builder r) { r.setVersion(); });
        return true;
      } catch (...) {
      }
    }
    usleep(20000);
  }
  return false;
}

pid_t Daemon::hostPid() {
  if (init_ > 0) return init_;
  std::ifstream in("/proc/" + std::to_string(unshare_) + "/task/" + std::to_string(unshare_) + "/children");
  pid_t p = -1;
  if (in >> p) init_ = p;
  return init_;
}

// The "KEY: N kB" lines of batond's /proc/PID/status, by key (without the colon).
std::map<std::string, long> Daemon::statusKb() {
  std::ifstream in("/proc/" + std::to_string(hostPid()) + "/status");
  std::map<std::string, long> out;
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon != std::string::npos && line.find(" kB", colon) != std::string::npos)
      out[line.substr(0, colon)] = std::stol(line.substr(colon + 1));
  }
  return out;
}

long Daemon::rssKb() {
  auto s = statusKb();
  return s.count("VmRSS") ? s["VmRSS"] : -1;
}

std::string Daemon::rssParts() {
  auto s = statusKb();
  auto value = [&](const char* key) { return s.count(key) ? std::to_string(s[key]) : std::string("?"); };
  return "anon " + value("RssAnon") + ", file " + value("RssFile") + ", shmem " + value("RssShmem") + " kB";
}

int Daemon::fdCount() {
  int n = 0;
  DIR* d = opendir(("/proc/" + std::to_string(hostPid()) + "/fd").c_str());
  if (!d) return -1;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

Stats stats(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  s.median = v[v.size() / 2];
  s.p90 = v[std::min(v.size() - 1, size_t(double(v.size()) * 0.9))];
  return s;
}

std::string fmtUs(double ns) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f", ns / 1000.0);
  return buf;
}

void raiseFdLimit() {
  rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

double execNs(const std::string& path, const std::vector<std::string>& argv, int extraFds) {
  int timing[2];
  if (pipe2(timing, O_CLOEXEC) != 0) return -1;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    // Inheritable fds, as many as a re-exec hands over.
    int devnull = open("/dev/null", O_RDONLY);
    for (int i = 1; i < extraFds; ++i) dup(devnull);
    int64_t t = nowNs();
    if (write(timing[1], &t, sizeof t) != sizeof t) _exit(126);
    execv(path.c_str(), args.data());
    _exit(127);
  }
  close(timing[1]);
  int64_t before = 0;
  ssize_t n = read(timing[0], &before, sizeof before);
  close(timing[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  int64_t after = nowNs();
  if (n != sizeof before || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return double(after - before);
}

}  // namespace baton::bench
