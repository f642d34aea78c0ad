// The control socket and batonctl: authorization, robustness against malformed input, a waiting
// client that goes away, `emit -n`, `log-priority`, `--json` output, exit codes.
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include <random>

#include "harness.h"

namespace baton::itest {
namespace {

class IntegrationControl : public BatonTest {};

constexpr int kNobody = 65534;

TEST_F(IntegrationControl, NobodyMayReadButNotChange) {
  b().writeJob("svc", "exec sleep 1000\n");
  BATON_START();
  CmdResult r = b().ctl({"status", "svc"}, 10s, kNobody, kNobody);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "svc stop/waiting")) << r.describe();
  r = b().ctl({"list"}, 10s, kNobody, kNobody);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  r = b().ctl({"version"}, 10s, kNobody, kNobody);
  EXPECT_EQ(r.exitCode, 0) << r.describe();

  r = b().ctl({"start", "svc"}, 10s, kNobody, kNobody);
  EXPECT_EQ(r.exitCode, 4) << r.describe();
  EXPECT_EQ(b().statusLine("svc"), "svc stop/waiting");
  r = b().ctl({"emit", "something"}, 10s, kNobody, kNobody);
  EXPECT_EQ(r.exitCode, 4) << r.describe();
  r = b().ctl({"reload-configuration"}, 10s, kNobody, kNobody);
  EXPECT_EQ(r.exitCode, 4) << r.describe();

  r = b().ctl({"start", "svc"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  pid_t pid = b().mainPid("svc");
  r = b().ctl({"stop", "svc"}, 10s, kNobody, kNobody);
  EXPECT_EQ(r.exitCode, 4) << r.describe();
  r = b().ctl({"restart", "svc"}, 10s, kNobody, kNobody);
  EXPECT_EQ(r.exitCode, 4) << r.describe();
  EXPECT_TRUE(contains(b().statusLine("svc"), "start/running")) << b().status("svc");
  EXPECT_EQ(b().mainPid("svc"), pid);
}

// True if the peer closes (EOF or reset) within the timeout; anything it sends is skipped.
bool peerCloses(int fd, Duration timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return true;
  }
}

TEST_F(IntegrationControl, SurvivesGarbageOnTheSocket) {
  b().writeJob("svc", "exec sleep 1000\n");
  BATON_START();
  auto versionWorks = [&] {
    CmdResult r = b().ctl({"version"}, 10s);
    return r.exitCode == 0 && contains(r.out, "baton ");
  };

  // A slow client holding half a frame must not block anyone else.
  int slow = connectTo(b().socket());
  ASSERT_GE(slow, 0);
  ASSERT_TRUE(sendAll(slow, le32(64) + std::string(10, 'x')));
  EXPECT_TRUE(versionWorks()) << "a partial frame blocked other clients";

  // Random bytes, then close.
  std::mt19937 rng(12345);
  for (int round = 0; round < 5; ++round) {
    int fd = connectTo(b().socket());
    ASSERT_GE(fd, 0);
    std::string junk(100 + round * 300, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    sendAll(fd, junk);
    close(fd);
  }
  EXPECT_TRUE(versionWorks()) << "after random bytes";

  // A huge length prefix: refused, the connection is closed by batond.
  {
    int fd = connectTo(b().socket());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sendAll(fd, le32(0xfffffff0u) + std::string(64, 'A')));
    EXPECT_TRUE(peerCloses(fd, 5s)) << "connection with a 4 GiB frame length left open";
    close(fd);
  }
  {
    int fd = connectTo(b().socket());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sendAll(fd, le32((1u << 20) + 8)));
    EXPECT_TRUE(peerCloses(fd, 5s)) << "connection with a frame over 1 MiB left open";
    close(fd);
  }
  // A complete frame whose payload is not a valid message (segment table claims far more
  // words than the frame holds).
  {
    int fd = connectTo(b().socket());
    ASSERT_GE(fd, 0);
    std::string payload = le32(0) + le32(1000) + std::string(8, '\x55');
    ASSERT_TRUE(sendAll(fd, le32(static_cast<uint32_t>(payload.size())) + payload));
    EXPECT_TRUE(peerCloses(fd, 5s)) << "connection with an invalid frame left open";
    close(fd);
  }
  // Zero length.
  {
    int fd = connectTo(b().socket());
    ASSERT_GE(fd, 0);
    sendAll(fd, le32(0));
    EXPECT_TRUE(peerCloses(fd, 5s)) << "connection with a zero-length frame left open";
    close(fd);
  }
  // Truncated frame, then close.
  {
    int fd = connectTo(b().socket());
    ASSERT_GE(fd, 0);
    sendAll(fd, le32(4096) + std::string(100, '\0'));
    close(fd);
  }
  // Many connections opened and dropped at once.
  {
    std::vector<int> fds;
    for (int i = 0; i < 50; ++i) {
      int fd = connectTo(b().socket());
      if (fd >= 0) fds.push_back(fd);
    }
    for (int fd : fds) close(fd);
  }
  close(slow);
  EXPECT_TRUE(versionWorks()) << "batond stopped answering after garbage";
  CmdResult r = b().ctl({"start", "svc"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(b().statusLine("svc"), "svc start/running")) << b().status("svc");
  EXPECT_FALSE(b().exited());
}

TEST_F(IntegrationControl, UsageErrorsExit2) {
  BATON_START();
  CmdResult r = b().ctl({"no-such-verb"});
  EXPECT_EQ(r.exitCode, 2) << r.describe();
  r = b().ctl({"start"});
  EXPECT_EQ(r.exitCode, 2) << r.describe();
}

TEST(IntegrationControlNoDaemon, CannotConnectExits5) {
  Baton b;  // never started: the socket does not exist
  CmdResult r = b.ctl({"version"}, 10s);
  EXPECT_EQ(r.exitCode, 5) << r.describe();
}

// A waiting client that goes away before its answer must not disturb batond.
TEST_F(IntegrationLifecycle, WaitingClientDisappears) {
  b().writeJob("slow", R"JOB(pre-start exec sleep 1
exec sleep 1000
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "slow"}, 200ms);  // killed while waiting
  EXPECT_TRUE(r.timedOut) << r.describe();
  EXPECT_TRUE(b().waitStatus("slow", "slow start/running, process ", 10s)) << b().status("slow");
  r = b().ctl({"version"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_FALSE(b().exited());
}

TEST_F(IntegrationLifecycle, EmitNoWaitReturnsBeforeJobFinishes) {
  b().writeJob("late", R"JOB(start on ping
task
script
  while [ ! -e @WORK@/release ]; do sleep 0.05; done
  touch @WORK@/late-done
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"emit", "ping", "-n"}, 10s);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_FALSE(pathExists(b().work("late-done")));
  EXPECT_TRUE(b().waitStatus("late", "late start/", 5s)) << b().status("late");
  writeFile(b().work("release"), "");
  EXPECT_TRUE(waitFor([&] { return pathExists(b().work("late-done")); }, 5s));
  EXPECT_TRUE(b().waitStatus("late", "late stop/waiting"));
}

TEST_F(IntegrationLifecycle, LogPriorityQueryAndSet) {
  BATON_START();
  CmdResult r = b().ctl({"log-priority"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "message")) << r.describe();
  r = b().ctl({"log-priority", "debug"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  r = b().ctl({"log-priority"});
  EXPECT_TRUE(contains(r.out, "debug")) << r.describe();
  r = b().ctl({"log-priority", "debug"}, 10s, 65534, 65534);
  EXPECT_EQ(r.exitCode, 4) << r.describe();
}

// --json prints the response for scripts: the same facts as the human output.
TEST_F(IntegrationLifecycle, JsonOutputOfStatusAndList) {
  b().writeJob("svc", "exec sleep 1000\n");
  b().writeJob("idle", "exec sleep 1000\n");
  BATON_START();
  ASSERT_EQ(b().ctl({"start", "svc"}).exitCode, 0);
  const pid_t pid = b().mainPid("svc");
  ASSERT_GT(pid, 0);
  CmdResult r = b().ctl({"--json", "status", "svc"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  // One status object per instance.
  EXPECT_EQ(r.out.front(), '[') << r.out;
  EXPECT_TRUE(contains(r.out, "\"job\":\"svc\"")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"state\":\"running\"")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"pid\":" + std::to_string(pid) + ",")) << r.out;
  r = b().ctl({"--json", "list"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "\"svc\"")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"idle\"")) << r.out;
  // Errors keep their exit code with --json.
  EXPECT_EQ(b().ctl({"--json", "status", "no-such-job"}).exitCode, 3);
}

}  // namespace
}  // namespace baton::itest
