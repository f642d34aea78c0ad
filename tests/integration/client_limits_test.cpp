// Limits on control clients (docs/batond.md, "Limits on control clients"): a user other than
// root is refused beyond its connections (with an error frame) and can never take the room kept
// for root; the total limit refuses root too; a connection gets an error for requests beyond its
// unanswered limit; a connection stuck mid-frame is closed at the frame timeout, also after a
// re-exec; warnings about malformed frames are rate-limited with a count of the rest; and
// `status --daemon` shows the limits and the counters.
//
// The clients here speak the protocol on raw sockets, so that they can hold connections open and
// send what batonctl never would. A non-root client's connections are made by a forked child as
// uid 65534 (SO_PEERCRED is fixed at connect) and passed back to the test.
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstring>
#include <regex>
#include <set>

#include "harness.h"
#include "schema/control.capnp.h"
#include "supervisor/control_format.h"
#include "supervisor/control_frame.h"

namespace baton::itest {
namespace {

constexpr int kNobody = 65534;

// One byte on a unix socket, with room for one fd (SCM_RIGHTS).
struct FdMessage {
  char byte = 'c';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  FdMessage(const FdMessage&) = delete;
};

// `n` connections to `path` made one after the other by a child running as `uid`, handed back
// over a socketpair. Fewer if something failed.
std::vector<int> connectAs(int uid, const std::string& path, int n) {
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    close(sp[0]);
    if (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) _exit(126);
    for (int i = 0; i < n; ++i) {
      int fd = connectTo(path);
      if (fd < 0) _exit(1);
      FdMessage m;
      cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
      if (sendmsg(sp[1], &m.msg, 0) != 1) _exit(1);
      close(fd);
    }
    _exit(0);
  }
  close(sp[1]);
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    FdMessage m;
    if (recvmsg(sp[0], &m.msg, MSG_CMSG_CLOEXEC) != 1) break;
    cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) break;
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    fds.push_back(fd);
  }
  close(sp[0]);
  if (pid > 0) waitpid(pid, nullptr, 0);
  return fds;
}

// One Response as the test reads it.
struct Answer {
  bool closed = false;     // EOF (or an error) before a whole frame
  bool timedOut = false;
  uint64_t id = 0;
  wire::ResultCode code = wire::ResultCode::INTERNAL;
  std::string message;
  std::string daemonText;  // a DaemonStatus answer, as batonctl prints it
  std::string describe() const {
    return closed ? "closed" : timedOut ? "timed out" : "id " + std::to_string(id) + ", code " +
                                                            std::to_string(int(code)) + ", " + message;
  }
};

// Reads the next Response frame on `fd`, waiting at most `timeout`.
Answer readAnswer(int fd, std::string& buf, Duration timeout = 10s) {
  Answer a;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    kj::Array<capnp::word> words;
    std::string error;
    FrameStatus st = takeFrame(buf, words, error, kMaxResponseBytes);
    if (st == FrameStatus::Complete) {
      capnp::FlatArrayMessageReader reader(words);
      auto resp = reader.getRoot<wire::Response>();
      a.id = resp.getId();
      a.code = resp.getCode();
      a.message = resp.getMessage().cStr();
      if (resp.isDaemon()) a.daemonText = formatDaemonStatus(resp.getDaemon(), 0);
      return a;
    }
    if (st == FrameStatus::Error) {
      a.closed = true;
      a.message = "bad frame: " + error;
      return a;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      a.timedOut = true;
      return a;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, int(left.count())) <= 0) continue;
    char chunk[65536];
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      a.closed = true;
      return a;
    }
    buf.append(chunk, size_t(n));
  }
}

std::string frameOf(const std::function<void(wire::Request::Builder)>& fill, uint64_t id) {
  capnp::MallocMessageBuilder msg;
  auto req = msg.initRoot<wire::Request>();
  req.setId(id);
  fill(req);
  return encodeFrame(msg);
}

std::string versionRequest(uint64_t id) {
  return frameOf([](wire::Request::Builder r) { r.setVersion(); }, id);
}

std::string startRequest(uint64_t id, const std::string& job, const std::string& var) {
  return frameOf(
      [&](wire::Request::Builder r) {
        auto ref = r.initStart();
        ref.setName(job);
        ref.initEnv(1).set(0, var);
      },
      id);
}

// A client on one raw connection.
struct RawClient {
  int fd = -1;
  std::string buf;
  explicit RawClient(int f) : fd(f) {}
  ~RawClient() {
    if (fd >= 0) close(fd);
  }
  Answer ask(const std::string& frame) {
    if (!sendAll(fd, frame)) {
      Answer a;
      a.closed = true;
      return a;
    }
    return readAnswer(fd, buf);
  }
  Answer version(uint64_t id) { return ask(versionRequest(id)); }
  Answer daemonStatus(uint64_t id) {
    return ask(frameOf([](wire::Request::Builder r) { r.setDaemonStatus(); }, id));
  }
};

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

// "  NAME: N" of status --daemon's counters; -1 if absent.
long long counter(const std::string& text, const std::string& name) {
  const std::string key = "  " + name + ": ";
  const size_t at = text.find(key);
  if (at == std::string::npos) return -1;
  return std::stoll(text.substr(at + key.size()));
}

class IntegrationClientLimits : public BatonTest {
 protected:
  Options options() override {
    Options o;
    o.extraArgs = extraArgs_;
    return o;
  }
  // batond's flags for this test: a new Baton (before any job is written), not started yet.
  void withArgs(std::vector<std::string> args) {
    extraArgs_ = std::move(args);
    baton_ = std::make_unique<Baton>(options());
  }
  std::string daemonStatus() { return b().ctl({"status", "--daemon"}).out; }
  std::vector<std::string> extraArgs_;
};

TEST_F(IntegrationClientLimits, NobodyIsRefusedBeyondSixteenConnectionsAndRootIsStillServed) {
  BATON_START();  // the default limits
  std::vector<int> fds = connectAs(kNobody, b().socket(), 17);
  ASSERT_EQ(fds.size(), 17u);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int fd : fds) clients.push_back(std::make_unique<RawClient>(fd));
  for (int i = 0; i < 16; ++i) {
    Answer a = clients[i]->version(7);
    EXPECT_EQ(a.id, 7u) << i << ": " << a.describe();
    EXPECT_EQ(a.code, wire::ResultCode::OK) << i << ": " << a.describe();
  }
  // The 17th was refused when it was accepted: one error frame (id 0, before any request), then
  // the connection is closed.
  Answer refused = readAnswer(clients[16]->fd, clients[16]->buf);
  EXPECT_EQ(refused.id, 0u) << refused.describe();
  EXPECT_EQ(refused.code, wire::ResultCode::FAILED) << refused.describe();
  EXPECT_EQ(refused.message,
            "connection refused: uid 65534 has 16 connections to batond open, the most a user other than root may "
            "have (16); close some and try again");
  EXPECT_TRUE(readAnswer(clients[16]->fd, clients[16]->buf).closed);

  // batonctl says so, as a connection it could not make (exit 5).
  CmdResult r = b().ctl({"version"}, 10s, kNobody, kNobody);
  EXPECT_EQ(r.exitCode, 5) << r.describe();
  EXPECT_TRUE(contains(r.err, "batonctl: connection refused: uid 65534 has 16 connections to batond open"))
      << r.describe();
  // Root is served, and sees what was refused.
  r = b().ctl({"status", "--daemon"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "connections: 17\n")) << r.out;  // 16 of nobody's and this one
  EXPECT_TRUE(contains(r.out, "connection limits: 1024 in all, the last 64 for root; 16 per other user; 64 "
                              "unanswered requests each; a frame within 10 s\n"))
      << r.out;
  EXPECT_EQ(counter(r.out, "connections refused, per-user limit"), 2) << r.out;
  EXPECT_EQ(counter(r.out, "connections refused, total limit"), 0) << r.out;
  EXPECT_TRUE(contains(b().daemonStderr(), "refused: uid 65534 has 16 connections to batond open"))
      << b().daemonStderr();
  r = b().ctl({"--json", "status", "--daemon"});
  EXPECT_TRUE(contains(r.out, "\"maxConnectionsPerUid\":16")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"refusedPerUid\":\"2\"")) << r.out;

  // Once one of them is closed, nobody may connect again.
  clients.erase(clients.begin());
  EXPECT_TRUE(waitUntil([&] { return b().ctl({"version"}, 10s, kNobody, kNobody).exitCode == 0; }, 10s,
                        "nobody may connect again"));
}

TEST_F(IntegrationClientLimits, OthersNeverTakeTheRoomKeptForRootAndTheTotalRefusesRootToo) {
  // 8 in all: the last one kept for root; nobody's own limit (16) is not what stops it.
  withArgs({"--max-connections", "8"});
  BATON_START();
  std::vector<int> fds = connectAs(kNobody, b().socket(), 8);
  ASSERT_EQ(fds.size(), 8u);
  std::vector<std::unique_ptr<RawClient>> nobody;
  for (int fd : fds) nobody.push_back(std::make_unique<RawClient>(fd));
  for (int i = 0; i < 7; ++i) EXPECT_EQ(nobody[i]->version(1).code, wire::ResultCode::OK) << i;
  Answer refused = readAnswer(nobody[7]->fd, nobody[7]->buf);
  EXPECT_EQ(refused.id, 0u) << refused.describe();
  EXPECT_EQ(refused.message,
            "connection refused: batond has 7 connections open, the most it takes from uid 65534 (8 in all, the "
            "last 1 kept for root); try again later");

  // Root takes the room kept for it...
  RawClient root(connectTo(b().socket()));
  ASSERT_GE(root.fd, 0);
  Answer a = root.version(3);
  EXPECT_EQ(a.code, wire::ResultCode::OK) << a.describe();
  // ... and, with all 8 open, is refused too.
  RawClient more(connectTo(b().socket()));
  ASSERT_GE(more.fd, 0);
  Answer moreRefused = readAnswer(more.fd, more.buf);
  EXPECT_EQ(moreRefused.message,
            "connection refused: batond has 8 connections open, the most it takes (8 in all, the last 1 kept for "
            "root); try again later")
      << moreRefused.describe();
  CmdResult r = b().ctl({"version"});
  EXPECT_EQ(r.exitCode, 5) << r.describe();
  EXPECT_TRUE(contains(r.err, "batonctl: connection refused: batond has 8 connections open")) << r.describe();

  Answer st = root.daemonStatus(4);
  EXPECT_EQ(counter(st.daemonText, "connections refused, total limit"), 3) << st.daemonText;
  EXPECT_EQ(counter(st.daemonText, "connections refused, per-user limit"), 0) << st.daemonText;
  EXPECT_TRUE(contains(st.daemonText, "connection limits: 8 in all, the last 1 for root;")) << st.daemonText;
}

TEST_F(IntegrationClientLimits, RequestsBeyondTheUnansweredLimitGetAnErrorAndNothingIsDone) {
  withArgs({"--max-unanswered", "2"});
  b().writeJob("worker", R"JOB(instance $N
pre-start script
  while [ ! -e @WORK@/go ]; do sleep 0.05; done
end script
exec sleep 1000
)JOB");
  BATON_START();
  RawClient c(connectTo(b().socket()));
  ASSERT_GE(c.fd, 0);
  // Three starts in one write: the first two wait for their job, the third is over the limit.
  ASSERT_TRUE(sendAll(c.fd, startRequest(1, "worker", "N=1") + startRequest(2, "worker", "N=2") +
                                startRequest(3, "worker", "N=3")));
  Answer a = readAnswer(c.fd, c.buf);
  EXPECT_EQ(a.id, 3u) << a.describe();
  EXPECT_EQ(a.code, wire::ResultCode::FAILED) << a.describe();
  EXPECT_EQ(a.message,
            "too many unanswered requests on this connection: 2 wait for their answer (the limit is 2); wait for "
            "some of them first");
  EXPECT_EQ(b().ctl({"status", "worker", "N=3"}).exitCode, 3) << "the refused start was carried out";
  EXPECT_TRUE(contains(b().statusLine("worker", "1"), "start/pre-start")) << b().status("worker");

  writeFile(b().work("go"), "");
  std::set<uint64_t> answered;
  for (int i = 0; i < 2; ++i) {
    a = readAnswer(c.fd, c.buf);
    EXPECT_EQ(a.code, wire::ResultCode::OK) << a.describe();
    answered.insert(a.id);
  }
  EXPECT_EQ(answered, (std::set<uint64_t>{1, 2}));
  // Answered, they no longer count.
  a = c.ask(startRequest(4, "worker", "N=4"));
  EXPECT_EQ(a.id, 4u) << a.describe();
  EXPECT_EQ(a.code, wire::ResultCode::OK) << a.describe();
  EXPECT_EQ(counter(daemonStatus(), "requests refused, unanswered limit"), 1) << daemonStatus();
}

TEST_F(IntegrationClientLimits, AConnectionStuckMidFrameIsClosedAtTheFrameTimeout) {
  withArgs({"--frame-timeout-ms", "300"});
  BATON_START();
  RawClient idle(connectTo(b().socket()));   // nothing sent: no deadline
  RawClient stuck(connectTo(b().socket()));  // half a frame
  ASSERT_GE(idle.fd, 0);
  ASSERT_GE(stuck.fd, 0);
  ASSERT_TRUE(sendAll(stuck.fd, le32(64) + std::string(10, 'x')));
  Answer a = readAnswer(stuck.fd, stuck.buf, 20s);
  EXPECT_TRUE(a.closed) << a.describe();
  EXPECT_TRUE(contains(b().daemonStderr(), "14 bytes of a frame not completed within 300 ms; closing it"))
      << b().daemonStderr();
  EXPECT_EQ(idle.version(5).code, wire::ResultCode::OK) << "a connection that sent nothing was closed";
  const std::string st = daemonStatus();
  EXPECT_EQ(counter(st, "connections closed mid-frame"), 1) << st;
  EXPECT_TRUE(contains(st, "; a frame within 300 ms\n")) << st;
}

// The deadline is not state: a connection that holds part of a frame across a re-exec gets a new
// one at the restore, and the new image closes it. The limit flags cross the re-exec too.
TEST_F(IntegrationClientLimits, AConnectionStuckMidFrameAcrossAReexecIsClosedByTheNewImage) {
  withArgs({"--frame-timeout-ms", "5000", "--max-connections-per-uid", "5"});
  BATON_START();
  RawClient stuck(connectTo(b().socket()));
  ASSERT_GE(stuck.fd, 0);
  ASSERT_TRUE(sendAll(stuck.fd, le32(64) + std::string(10, 'x')));
  CmdResult r = b().ctl({"reexec"}, 30s);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  // The premise: the old image did not close it (a re-exec takes milliseconds, the timeout 5 s).
  pollfd p{stuck.fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 0), 0) << "the connection was closed before the re-exec was done";
  const std::string before = daemonStatus();
  EXPECT_EQ(counter(before, "connections closed mid-frame"), 0) << before;  // counted by this image only
  EXPECT_TRUE(contains(before, "; 5 per other user; ")) << before;
  EXPECT_TRUE(contains(before, "; a frame within 5 s\n")) << before;
  Answer a = readAnswer(stuck.fd, stuck.buf, 30s);
  EXPECT_TRUE(a.closed) << a.describe();
  EXPECT_EQ(counter(daemonStatus(), "connections closed mid-frame"), 1) << daemonStatus();
}

TEST_F(IntegrationClientLimits, WarningsAboutMalformedFramesAreRateLimitedAndCounted) {
  BATON_START();
  constexpr int kFrames = 100;
  for (int i = 0; i < kFrames; ++i) {
    int fd = connectTo(b().socket());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sendAll(fd, le32(0)));  // a zero-length frame
    close(fd);
  }
  std::string st;
  ASSERT_TRUE(waitUntil(
      [&] {
        st = daemonStatus();
        return counter(st, "malformed frames") == kFrames;
      },
      20s, "batond has seen every malformed frame"))
      << st;
  const long long suppressed = counter(st, "warnings about clients suppressed");
  const long long written = (long long)occurrences(b().daemonStderr(), ": zero-length frame; closing it\n");
  // One warning each, written or counted; at most 10 written per 5 s window, so most are counted.
  EXPECT_EQ(written + suppressed, kFrames) << st;
  EXPECT_GT(suppressed, 0) << st;
  EXPECT_GE(written, 10) << st;
  // When a window with suppressed warnings ends, one line says how many (and no more than that).
  auto summarized = [&] {
    long long n = 0;
    static const std::regex line("(\\d+) warnings? about control clients suppressed \\(at most 10 per 5 s\\)");
    const std::string err = b().daemonStderr();
    for (std::sregex_iterator it(err.begin(), err.end(), line), end; it != end; ++it) n += std::stoll((*it)[1]);
    return n;
  };
  EXPECT_TRUE(waitUntil([&] { return summarized() == suppressed; }, 20s, "the suppressed warnings are summarized"))
      << b().daemonStderr();
}

}  // namespace
}  // namespace baton::itest
