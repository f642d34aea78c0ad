#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace baton::itest {

namespace {

using Clock = std::chrono::steady_clock;

int decodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string truncateMiddle(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  return s.substr(0, max / 4) + "\n[... " + std::to_string(s.size() - max) + " bytes ...]\n" +
         s.substr(s.size() - max * 3 / 4);
}

// Close every fd >= 3 in a freshly forked child (async-signal-safe enough for our use).
void closeFromThree() {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0) return;
#endif
  for (int fd = 3; fd < 4096; ++fd) close(fd);
}

// Start time (field 22 of /proc/PID/stat): identity of a pid against reuse.
uint64_t startTimeOf(pid_t pid) {
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  auto rp = stat.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream in(stat.substr(rp + 2));
  std::string field;
  // Fields after comm start at field 3 (state); starttime is field 22.
  for (int i = 3; i <= 22 && (in >> field); ++i) {
    if (i == 22) return std::stoull(field);
  }
  return 0;
}

std::string nsOf(pid_t pid) {
  char buf[128];
  std::string path = "/proc/" + std::to_string(pid) + "/ns/pid";
  ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

std::vector<pid_t> allPids() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long v = std::strtol(e->d_name, &end, 10);
    if (end && *end == '\0' && v > 0) out.push_back(static_cast<pid_t>(v));
  }
  closedir(d);
  return out;
}

std::atomic<int> gBatonCounter{0};

}  // namespace

// Last field of the NSpid: line (the pid in the innermost namespace), 0 if unknown.
pid_t innermostPid(pid_t hostPid) {
  std::string st = readFile("/proc/" + std::to_string(hostPid) + "/status");
  for (const auto& line : splitLines(st)) {
    if (line.rfind("NSpid:", 0) == 0) {
      std::istringstream in(line.substr(6));
      pid_t p = 0, last = 0;
      while (in >> p) last = p;
      return last;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

std::string CmdResult::describe() const {
  std::ostringstream o;
  o << "exit " << exitCode << (timedOut ? " (TIMED OUT)" : "") << "\n  stdout: [" << out
    << "]\n  stderr: [" << err << "]";
  return o.str();
}

std::string readFile(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  if (ok) *ok = static_cast<bool>(in);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const std::string& path, const std::string& content, mode_t mode) {
  std::string tmp = path + ".tmp-write";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
  }
  chmod(tmp.c_str(), mode);
  // rename: readers (batond's reload) never see a half-written file.
  if (rename(tmp.c_str(), path.c_str()) != 0)
    ADD_FAILURE() << "rename " << tmp << " -> " << path << ": " << std::strerror(errno);
}

bool pathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == '\n') {
      if (!cur.empty() && cur.back() == '\r') cur.pop_back();
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

int lineIndex(const std::string& text, const std::string& line) {
  auto lines = splitLines(text);
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i] == line) return static_cast<int>(i);
  return -1;
}

::testing::AssertionResult linesInOrder(const std::string& text,
                                        const std::vector<std::string>& lines) {
  auto all = splitLines(text);
  int prev = -1;
  std::string prevLine;
  for (const auto& l : lines) {
    auto it = std::find(all.begin(), all.end(), l);
    if (it == all.end())
      return ::testing::AssertionFailure() << "line [" << l << "] missing in:\n" << text;
    int idx = static_cast<int>(it - all.begin());
    if (idx < prev)
      return ::testing::AssertionFailure()
             << "line [" << l << "] comes before [" << prevLine << "] in:\n" << text;
    prev = idx;
    prevLine = l;
  }
  return ::testing::AssertionSuccess();
}

int countLines(const std::string& text, const std::string& line) {
  int n = 0;
  for (const auto& l : splitLines(text))
    if (l == line) ++n;
  return n;
}

bool waitFor(const std::function<bool()>& pred, Duration timeout, Duration interval) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(interval);
  }
}

::testing::AssertionResult waitUntil(const std::function<bool()>& pred, Duration timeout,
                                     const std::string& what, Duration interval) {
  if (waitFor(pred, timeout, interval)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "timed out after " << timeout.count()
                                       << " ms waiting until " << what;
}

void deliberateDelay(Duration d, const char* /*why: documentation at the call site*/) {
  std::this_thread::sleep_for(d);
}

void deliberateDelayUntil(std::chrono::steady_clock::time_point t, const char* /*why*/) {
  std::this_thread::sleep_until(t);
}

bool pidExists(pid_t pid) {
  if (pid <= 0) return false;
  return pathExists("/proc/" + std::to_string(pid));
}

char procState(pid_t pid) {
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  auto rp = stat.rfind(')');
  if (rp == std::string::npos || rp + 2 >= stat.size()) return 0;
  return stat[rp + 2];
}

std::vector<pid_t> childrenOf(pid_t pid) {
  std::vector<pid_t> out;
  std::string taskDir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(taskDir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::istringstream in(readFile(taskDir + "/" + e->d_name + "/children"));
    pid_t c;
    while (in >> c) out.push_back(c);
  }
  closedir(d);
  return out;
}

std::vector<std::string> fdTargets(pid_t pid) {
  std::vector<std::string> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char buf[PATH_MAX];
    ssize_t n = readlink((dir + "/" + e->d_name).c_str(), buf, sizeof buf - 1);
    if (n > 0) out.emplace_back(buf, static_cast<size_t>(n));
  }
  closedir(d);
  return out;
}

::testing::AssertionResult notSignalled(pid_t hostPid) {
  const std::string dir = "/proc/" + std::to_string(hostPid);
  const std::string stat = readFile(dir + "/stat");
  const auto rp = stat.rfind(')');
  if (hostPid <= 0 || rp == std::string::npos || rp + 2 >= stat.size())
    return ::testing::AssertionFailure() << "process " << hostPid << " is gone";
  // Fields after comm: 3 state, 4 ppid, 5 pgrp, 6 session, 7 tty_nr, 8 tpgid, 9 flags.
  std::istringstream in(stat.substr(rp + 2));
  std::string state, skip;
  unsigned long flags = 0;
  in >> state >> skip >> skip >> skip >> skip >> skip >> flags;
  if (state == "Z" || state == "X")
    return ::testing::AssertionFailure() << "process " << hostPid << " has exited (a zombie)";
  constexpr unsigned long kPfExiting = 0x4;  // PF_EXITING: set at the start of exit
  if (flags & kPfExiting)
    return ::testing::AssertionFailure() << "process " << hostPid << " is exiting";
  const unsigned long long sigchld = 1ull << (SIGCHLD - 1);
  for (const auto& line : splitLines(readFile(dir + "/status"))) {
    for (const char* key : {"SigPnd:", "ShdPnd:"}) {
      if (line.rfind(key, 0) != 0) continue;
      const unsigned long long pending = std::strtoull(line.c_str() + std::strlen(key), nullptr, 16);
      if (pending & ~sigchld)
        return ::testing::AssertionFailure()
               << "process " << hostPid << " has a signal pending (" << line << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

int connectTo(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool sendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string le32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

int pendingConnections(const std::string& path) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return -1;
  struct {
    nlmsghdr nlh;
    unix_diag_req req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.req.sdiag_family = AF_UNIX;
  msg.req.udiag_states = 1u << 10;  // TCP_LISTEN: listening sockets only
  msg.req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  int found = -1;
  if (sendto(fd, &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    close(fd);
    return -1;
  }
  alignas(nlmsghdr) char buf[32768];
  for (bool done = false; !done;) {
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got <= 0) break;
    int len = static_cast<int>(got);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
        done = true;
        break;
      }
      auto* m = static_cast<unix_diag_msg*>(NLMSG_DATA(h));
      int attrLen = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
      std::string name;
      int queued = -1;
      for (auto* a = reinterpret_cast<rtattr*>(m + 1); RTA_OK(a, attrLen); a = RTA_NEXT(a, attrLen)) {
        if (a->rta_type == UNIX_DIAG_NAME) {
          name.assign(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a));
          while (!name.empty() && name.back() == '\0') name.pop_back();
        } else if (a->rta_type == UNIX_DIAG_RQLEN) {
          // For a listening socket: the connections in its queue.
          queued = static_cast<int>(static_cast<const unix_diag_rqlen*>(RTA_DATA(a))->udiag_rqueue);
        }
      }
      if (name == path) found = queued;
    }
  }
  close(fd);
  return found;
}

std::vector<pid_t> descendantsOf(pid_t pid) {
  std::vector<pid_t> out;
  std::vector<pid_t> todo = childrenOf(pid);
  std::set<pid_t> seen;
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    if (!seen.insert(p).second) continue;
    out.push_back(p);
    for (pid_t c : childrenOf(p)) todo.push_back(c);
  }
  return out;
}

CmdResult runCommand(const std::vector<std::string>& argv, Duration timeout, int uid, int gid) {
  CmdResult r;
  int outPipe[2], errPipe[2];
  if (pipe2(outPipe, O_CLOEXEC) != 0) {
    r.err = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  if (pipe2(errPipe, O_CLOEXEC) != 0) {
    close(outPipe[0]);
    close(outPipe[1]);
    r.err = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) {
    r.err = std::string("fork: ") + std::strerror(errno);
    for (int fd : {outPipe[0], outPipe[1], errPipe[0], errPipe[1]}) close(fd);
    return r;
  }
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(outPipe[1], 1);
    dup2(errPipe[1], 2);
    closeFromThree();
    signal(SIGPIPE, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (gid >= 0) {
      if (setgroups(0, nullptr) != 0 || setgid(static_cast<gid_t>(gid)) != 0) _exit(126);
    }
    if (uid >= 0 && setuid(static_cast<uid_t>(uid)) != 0) _exit(126);
    execv(cargv[0], cargv.data());
    dprintf(2, "exec %s: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
  close(outPipe[1]);
  close(errPipe[1]);

  auto deadline = Clock::now() + timeout;
  pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
  int open = 2;
  bool killed = false;
  int status = 0;
  bool reaped = false;
  while (open > 0 || !reaped) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 && !killed) {
      kill(pid, SIGKILL);  // our own child, by pid
      killed = true;
      r.timedOut = true;
      deadline = Clock::now() + 5s;  // then give the pipes a moment to close
      continue;
    }
    if (left.count() <= 0 && killed) break;  // a grandchild holds the pipes: give up on them
    if (open > 0) {
      int n = poll(fds, 2, static_cast<int>(std::min<long>(left.count(), 100)));
      if (n < 0 && errno != EINTR) break;
      for (auto& p : fds) {
        if (p.fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[65536];
        ssize_t k = read(p.fd, buf, sizeof buf);
        if (k > 0) {
          (p.fd == outPipe[0] ? r.out : r.err).append(buf, static_cast<size_t>(k));
        } else if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
          close(p.fd);
          p.fd = -1;
          --open;
        }
      }
    } else {
      // Both pipes are closed: only the exit is missing (bounded by the deadline as above).
      reaped = waitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; }, left, 5ms);
      continue;
    }
    if (!reaped) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) reaped = true;
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) close(p.fd);
  if (!reaped) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  r.exitCode = decodeStatus(status);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Baton.

std::string Baton::progsDir() { return BATON_TEST_PROGS_DIR; }
std::string Baton::binDir() { return BATON_BIN_DIR; }

Baton::Baton(Options opts) : opts_(std::move(opts)) {
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/baton-itest-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  dir_ = tmpl;
  chmod(dir_.c_str(), 0755);  // user nobody must reach the socket and batonctl
  confDir_ = dir_ + "/conf";
  logDir_ = dir_ + "/log";
  workDir_ = dir_ + "/work";
  socket_ = dir_ + "/ctl.sock";
  stderrPath_ = dir_ + "/batond.stderr";
  fs::create_directories(confDir_);
  fs::create_directories(logDir_);
  fs::create_directories(workDir_);
  chmod(workDir_.c_str(), 01777);  // jobs running as nobody leave marks here
  cgroupBase_ = "baton-test-" + std::to_string(getpid()) + "-" + std::to_string(++gBatonCounter);
}

Baton::~Baton() { teardown(); }

std::string Baton::expand(std::string text) const {
  for (auto [key, value] : {std::pair<std::string, std::string>{"@WORK@", workDir_},
                            {"@PROGS@", progsDir()}}) {
    for (size_t pos = 0; (pos = text.find(key, pos)) != std::string::npos;) {
      text.replace(pos, key.size(), value);
      pos += value.size();
    }
  }
  return text;
}

void Baton::writeJob(const std::string& name, const std::string& content) {
  std::string path = confDir_ + "/" + name + ".conf";
  fs::create_directories(fs::path(path).parent_path());
  writeFile(path, expand(content));
}

void Baton::removeJob(const std::string& name) {
  std::string path = confDir_ + "/" + name + ".conf";
  if (unlink(path.c_str()) != 0) ADD_FAILURE() << "unlink " << path << ": " << std::strerror(errno);
}

std::string Baton::hold(const std::string& name) {
  release(name);
  const std::string path = work(name);
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    ADD_FAILURE() << "unlink " << path << ": " << std::strerror(errno);
  // O_RDWR: the open does not wait for a reader, and the fd is the writer that holds.
  // Close-on-exec: batond and batonctl must not inherit it (it would hold them all).
  int fd = -1;
  if (mkfifo(path.c_str(), 0600) != 0 || (fd = open(path.c_str(), O_RDWR | O_CLOEXEC)) < 0)
    ADD_FAILURE() << "hold " << path << ": " << std::strerror(errno);
  else
    holds_[name] = fd;
  return path;
}

void Baton::release(const std::string& name) {
  auto it = holds_.find(name);
  if (it == holds_.end()) return;
  close(it->second);
  holds_.erase(it);
}

::testing::AssertionResult Baton::heldOn(pid_t hostPid, const std::string& name) {
  const std::string proc = "/proc/" + std::to_string(hostPid);
  // While a process sleeps in a system call, /proc/PID/syscall shows its number and arguments.
  std::istringstream call(readFile(proc + "/syscall"));
  long nr = -1;
  std::string fdHex;
  if (!(call >> nr >> fdHex) || nr != SYS_read)
    return ::testing::AssertionFailure()
           << "process " << hostPid << " is not asleep in read(2): syscall [" << call.str() << "]";
  char target[PATH_MAX];
  const std::string fdLink = proc + "/fd/" + std::to_string(std::stol(fdHex, nullptr, 16));
  const ssize_t n = readlink(fdLink.c_str(), target, sizeof target - 1);
  const std::string reading = n > 0 ? std::string(target, static_cast<size_t>(n)) : "?";
  if (reading != work(name))
    return ::testing::AssertionFailure()
           << "process " << hostPid << " reads " << reading << ", not the hold " << work(name);
  return ::testing::AssertionSuccess();
}

void Baton::launch() {
  std::vector<std::string> argv;
  if (opts_.mode == Mode::Namespace) {
    argv = {"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL"};
  }
  argv.push_back(binDir() + "/batond");
  for (const char* a : {"--confdir", confDir_.c_str(), "--socket", socket_.c_str(), "--logdir",
                        logDir_.c_str(), "--cgroup-base", cgroupBase_.c_str(), "--cgroup-root",
                        opts_.cgroupRoot.c_str()})
    argv.push_back(a);
  if (opts_.testHooks) argv.push_back("--test-hooks");
  if (opts_.idleEncodeMs >= 0) {
    argv.push_back("--idle-encode-ms");
    argv.push_back(std::to_string(opts_.idleEncodeMs));
  }
  for (const auto& a : opts_.extraArgs) argv.push_back(a);

  {
    std::ofstream cmd(dir_ + "/batond.cmdline");
    for (const auto& a : argv) cmd << a << ' ';
    cmd << '\n';
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  int errFd = open(stderrPath_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (errFd < 0) throw std::runtime_error("open " + stderrPath_ + ": " + std::strerror(errno));
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(errFd, 1);
    dup2(errFd, 2);
    closeFromThree();
    setpgid(0, 0);  // keep terminal signals away from it; the harness ends it by pid
    signal(SIGPIPE, SIG_DFL);
    // If this test process dies, take the launcher down with it (unshare --kill-child then
    // kills the namespace).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // batond checks after every restore that the epoll registrations it adopted are exactly
    // the ones its model calls for (and reports any difference on stderr).
    setenv("BATON_CHECK_HANDOFF", "1", 1);
    if (opts_.nofileSoft) {
      struct rlimit rl;
      getrlimit(RLIMIT_NOFILE, &rl);
      rl.rlim_cur = opts_.nofileSoft;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    execv(cargv[0], cargv.data());
    dprintf(2, "harness: exec %s: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
  close(errFd);
  launcherPid_ = pid;
  reaped_ = false;
  daemonPid_ = (opts_.mode == Mode::Subreaper) ? pid : 0;
}

bool Baton::exited(int* code) {
  if (launcherPid_ <= 0) return true;
  if (!reaped_) {
    int status = 0;
    pid_t w = waitpid(launcherPid_, &status, WNOHANG);
    if (w == launcherPid_) {
      reaped_ = true;
      exitCode_ = decodeStatus(status);
    }
  }
  if (reaped_ && code) *code = exitCode_;
  return reaped_;
}

bool Baton::start(std::string* why) {
  if (launcherPid_ > 0) {
    if (why) *why = "already started";
    return false;
  }
  try {
    launch();
  } catch (const std::exception& e) {
    if (why) *why = e.what();
    return false;
  }
  CmdResult last;
  int code = 0;
  bool died = false;
  const bool ready = waitFor([&] {
    if (exited(&code)) return died = true;
    if (!pathExists(socket_)) return false;
    last = ctl({"version"}, 3s);
    return last.exitCode == 0 && contains(last.out, "baton");
  }, opts_.readyTimeout, 50ms);
  if (died) {
    if (why) {
      std::ostringstream o;
      o << "batond exited with status " << code << " before it answered `batonctl version`"
        << (opts_.mode == Mode::Namespace ? " (launched through unshare)" : "")
        << "\n--- batond stderr ---\n"
        << truncateMiddle(daemonStderr(), 6000) << "--- end ---";
      *why = o.str();
    }
    return false;
  }
  if (ready) {
    daemonHostPid();
    return true;
  }
  if (why) {
    std::ostringstream o;
    o << "batond did not answer `batonctl version` within "
      << std::chrono::duration_cast<std::chrono::seconds>(opts_.readyTimeout).count()
      << " s (socket " << (pathExists(socket_) ? "exists" : "missing")
      << "); last batonctl: "
      << (last.exitCode == -1 && last.err.empty() ? std::string("never ran") : last.describe())
      << "\n--- batond stderr ---\n"
      << truncateMiddle(daemonStderr(), 6000) << "--- end ---";
    *why = o.str();
  }
  return false;
}

CmdResult Baton::ctl(const std::vector<std::string>& args, Duration timeout, int uid, int gid) {
  std::vector<std::string> argv = {binDir() + "/batonctl", "--socket", socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, timeout, uid, gid);
}

std::string Baton::status(const std::string& job, const std::vector<std::string>& args) {
  std::vector<std::string> a = {"status", job};
  a.insert(a.end(), args.begin(), args.end());
  CmdResult r = ctl(a, 10s);
  return r.exitCode == 0 ? r.out : std::string();
}

std::string Baton::statusLine(const std::string& job, const std::string& instance) {
  std::string out = status(job);
  if (instance.empty()) {
    auto lines = splitLines(out);
    return lines.empty() ? std::string() : lines.front();
  }
  std::string prefix = job + " (" + instance + ") ";
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (const auto& line : splitLines(out))
      if (line.rfind(prefix, 0) == 0) return line;
    CmdResult r = ctl({"list"}, 10s);  // `status JOB` may not list every instance
    out = r.out;
  }
  return {};
}

pid_t Baton::mainPid(const std::string& job, const std::string& instance) {
  std::string line = statusLine(job, instance);
  auto pos = line.find(", process ");
  if (pos == std::string::npos) return 0;
  return static_cast<pid_t>(std::atol(line.c_str() + pos + 10));
}

bool Baton::waitStatus(const std::string& job, const std::string& needle, Duration timeout,
                       const std::string& instance) {
  return waitFor([&] { return contains(statusLine(job, instance), needle); }, timeout, 50ms);
}

bool Baton::waitStatusOutput(const std::string& job, const std::string& needle,
                             Duration timeout) {
  return waitFor([&] { return contains(status(job), needle); }, timeout, 50ms);
}

std::string Baton::logPath(const std::string& name) const {
  std::string n = name;
  std::replace(n.begin(), n.end(), '/', '_');
  return logDir_ + "/" + n + ".log";
}

std::string Baton::readLog(const std::string& name) const { return readFile(logPath(name)); }

bool Baton::logExists(const std::string& name) const { return pathExists(logPath(name)); }

bool Baton::waitLog(const std::string& name, const std::string& needle, Duration timeout) const {
  return waitFor([&] { return contains(readLog(name), needle); }, timeout);
}

pid_t Baton::daemonHostPid() {
  if (daemonPid_ > 0 && pidExists(daemonPid_)) return daemonPid_;
  if (launcherPid_ <= 0 || opts_.mode == Mode::Subreaper) return daemonPid_;
  auto kids = childrenOf(launcherPid_);
  daemonPid_ = kids.empty() ? 0 : kids.front();
  return daemonPid_;
}

std::vector<pid_t> Baton::daemonProcesses() {
  std::vector<pid_t> out;
  pid_t d = daemonHostPid();
  if (d <= 0) return out;
  if (opts_.mode == Mode::Subreaper) {
    out.push_back(d);
    for (pid_t p : descendantsOf(d)) out.push_back(p);
    return out;
  }
  std::string ns = nsOf(d);
  if (ns.empty()) return out;
  for (pid_t p : allPids())
    if (nsOf(p) == ns) out.push_back(p);
  return out;
}

pid_t Baton::hostPid(pid_t nsPid) {
  if (nsPid <= 0) return 0;
  if (opts_.mode == Mode::Subreaper) return pidExists(nsPid) ? nsPid : 0;
  for (pid_t p : daemonProcesses())
    if (innermostPid(p) == nsPid) return p;
  return 0;
}

int Baton::pendingEvents() {
  CmdResult r = ctl({"status", "--daemon"}, 10s);
  if (r.exitCode != 0) return -1;
  const std::string key = "pending events: ";
  for (const auto& line : splitLines(r.out))
    if (line.rfind(key, 0) == 0) return std::atoi(line.c_str() + key.size());
  return -1;
}

::testing::AssertionResult Baton::waitIdle(size_t others, Duration timeout) {
  size_t processes = 0;
  int events = -1;
  if (waitFor([&] {
        processes = daemonProcesses().size();
        if (processes != 1 + others) return false;
        events = pendingEvents();
        return events == 0;
      }, timeout, 20ms))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "batond not at rest after " << timeout.count() << " ms: " << processes
         << " processes (want batond and " << others << " more), pending events: " << events;
}

std::optional<int> Baton::terminate(Duration timeout) {
  if (launcherPid_ <= 0) return std::nullopt;
  if (opts_.mode == Mode::Namespace) {
    ADD_FAILURE() << "terminate(): SIGTERM is reserved for re-exec when batond is PID 1";
    return std::nullopt;
  }
  for (pid_t p : descendantsOf(launcherPid_)) knownDescendants_.push_back(p);
  int code = 0;
  if (exited(&code)) return code;
  kill(launcherPid_, SIGTERM);
  if (waitFor([&] { return exited(); }, timeout, 20ms)) return exitCode_;
  return std::nullopt;
}

std::string Baton::daemonStderr() const { return readFile(stderrPath_); }

std::string Baton::diagnostics() const {
  std::ostringstream o;
  o << "=== batond command: " << readFile(dir_ + "/batond.cmdline");
  o << "=== batond stderr (" << stderrPath_ << "):\n"
    << truncateMiddle(daemonStderr(), 12000) << "\n";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(logDir_, ec)) {
    o << "=== log " << e.path().filename().string() << ":\n"
      << truncateMiddle(readFile(e.path().string()), 3000) << "\n";
  }
  for (const auto& e : fs::directory_iterator(workDir_, ec)) {
    if (!e.is_regular_file()) continue;
    o << "=== work/" << e.path().filename().string() << ":\n"
      << truncateMiddle(readFile(e.path().string()), 2000) << "\n";
  }
  return o.str();
}

void Baton::killEverything() {
  if (launcherPid_ <= 0) return;
  if (opts_.mode == Mode::Namespace) {
    // SIGKILL to the namespace's PID 1 from outside kills the whole namespace. Without a known
    // PID 1, SIGKILL the launcher: `unshare --kill-child=SIGKILL` then kills its child.
    if (!exited()) {
      pid_t d = daemonHostPid();
      if (d > 0) kill(d, SIGKILL);
      else kill(launcherPid_, SIGKILL);
      if (!waitFor([&] { return exited(); }, 10s, 10ms)) {
        kill(launcherPid_, SIGKILL);
        waitFor([&] { return exited(); }, 5s, 10ms);
      }
    }
  } else {
    std::vector<std::pair<pid_t, uint64_t>> victims;
    for (pid_t p : knownDescendants_) victims.emplace_back(p, startTimeOf(p));
    if (!exited()) {
      for (pid_t p : descendantsOf(launcherPid_)) victims.emplace_back(p, startTimeOf(p));
      kill(launcherPid_, SIGTERM);
      if (!waitFor([&] { return exited(); }, 8s, 10ms)) {
        kill(launcherPid_, SIGKILL);
        waitFor([&] { return exited(); }, 5s, 10ms);
      }
    }
    // Descendants that outlived batond were reparented away from it; end them by pid, checking
    // their identity (start time) first so a reused pid is left alone.
    for (auto [p, st] : victims) {
      if (st != 0 && pidExists(p) && startTimeOf(p) == st) kill(p, SIGKILL);
    }
  }
  if (!reaped_) {
    // Last resort: still not gone. Block (bounded by the kill above).
    int status = 0;
    if (waitpid(launcherPid_, &status, 0) == launcherPid_) {
      reaped_ = true;
      exitCode_ = decodeStatus(status);
    }
  }
}

void Baton::collectCgroupDirs(const std::string& dir, std::vector<std::string>& out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory(ec) && !e.is_symlink(ec)) collectCgroupDirs(e.path().string(), out);
  }
  out.push_back(dir);  // children first: deepest first
}

void Baton::removeCgroups() {
  std::error_code ec;
  if (cgroupBase_.empty() || opts_.cgroupRoot.empty()) return;
  std::set<std::string> hierarchies;
  for (const auto& e : fs::directory_iterator(opts_.cgroupRoot, ec)) {
    if (!e.is_directory(ec)) continue;
    hierarchies.insert(fs::canonical(e.path(), ec).string());  // cpu,cpuacct symlinks
  }
  for (const auto& h : hierarchies) {
    if (h.empty()) continue;
    std::string base = h + "/" + cgroupBase_;
    if (!pathExists(base)) continue;
    std::vector<std::string> dirs;
    collectCgroupDirs(base, dirs);
    for (const auto& d : dirs) {
      // Any process left in a group under our unique base was started by our batond.
      auto leftovers = [&] {
        std::istringstream in(readFile(d + "/cgroup.procs"));
        std::vector<pid_t> v;
        pid_t p;
        while (in >> p) v.push_back(p);
        return v;
      };
      for (pid_t p : leftovers()) kill(p, SIGKILL);
      bool removed = waitFor([&] { return rmdir(d.c_str()) == 0 || errno == ENOENT; }, 5s, 20ms);
      if (!removed)
        std::cerr << "harness: could not remove cgroup " << d << ": " << std::strerror(errno)
                  << "\n";
    }
  }
}

void Baton::teardown() {
  if (tornDown_) return;
  tornDown_ = true;
  killEverything();
  while (!holds_.empty()) release(holds_.begin()->first);
  removeCgroups();
  const char* keep = getenv("BATON_ITEST_KEEP");
  if (keep && *keep && std::string(keep) != "0") {
    std::cerr << "harness: kept " << dir_ << "\n";
    return;
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

// ---------------------------------------------------------------------------------------------
// Fixture.

void BatonTest::SetUp() { baton_ = std::make_unique<Baton>(options()); }

void BatonTest::TearDown() {
  if (!baton_) return;
  // Every re-exec of every test doubles as a check of the epoll handoff (BATON_CHECK_HANDOFF).
  EXPECT_EQ(baton_->daemonStderr().find("adopted epoll registrations differ"), std::string::npos)
      << "the epoll registrations batond adopted across a re-exec were not what its model needs";
  if (HasFailure()) {
    std::string extra;
    if (baton_->running() && !baton_->exited()) {
      CmdResult l = baton_->ctl({"list"}, 3s);
      extra = "=== batonctl list: " + l.describe() + "\n";
    }
    std::cerr << "\n######## diagnostics for " << baton_->dir() << "\n"
              << extra << baton_->diagnostics() << "######## end of diagnostics\n";
  }
  baton_->teardown();
  baton_.reset();
}

void BatonTest::startBaton() {
  std::string why;
  ASSERT_TRUE(baton_->start(&why)) << why;
}

}  // namespace baton::itest
