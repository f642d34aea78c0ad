// Self-tests of the harness: it must detect a batond that dies early, find the namespace's PID 1
// and bound commands that hang; its waiting helpers must see what the negative checks rely on.
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>

#include "harness.h"

namespace baton::itest {
namespace {

TEST(IntegrationHarness, CommandTimeoutIsBoundedAndKills) {
  CmdResult r = runCommand({"/bin/sleep", "30"}, 300ms);
  EXPECT_TRUE(r.timedOut);
  EXPECT_EQ(r.exitCode, 128 + SIGKILL) << r.describe();
}

TEST(IntegrationHarness, CapturesOutputAndExitCode) {
  CmdResult r = runCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exitCode, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  CmdResult id = runCommand({"/usr/bin/id", "-u"}, 10s, 65534, 65534);
  EXPECT_EQ(id.out, "65534\n") << id.describe();
}

// A batond that exits at once (here: an unknown option) is reported as such, with its exit
// status, instead of a readiness timeout.
TEST(IntegrationHarness, ReportsDaemonThatExitsBeforeReady) {
  for (Mode mode : {Mode::Namespace, Mode::Subreaper}) {
    Options o;
    o.mode = mode;
    o.extraArgs = {"--no-such-option-for-the-harness-test"};
    Baton b(o);
    std::string why;
    EXPECT_FALSE(b.start(&why));
    EXPECT_TRUE(contains(why, "exited with status")) << why;
    EXPECT_TRUE(b.exited());
  }
}

TEST(IntegrationHarness, WaitUntil) {
  ::testing::AssertionResult never = waitUntil([] { return false; }, 50ms, "pigs fly");
  EXPECT_FALSE(never);
  EXPECT_TRUE(contains(never.message(), "timed out after 50 ms waiting until pigs fly"))
      << never.message();
  int looks = 0;
  EXPECT_TRUE(waitUntil([&] { return ++looks == 3; }, 10s, "the third look", 1ms));
}

// notSignalled() fails from the moment kill() returns until the process is reaped, whatever the
// signal does to it: the negative checks rely on that when they look right after batond answered.
TEST(IntegrationHarness, NotSignalledSeesASignalUntilTheReap) {
  for (int sig : {SIGTERM, SIGKILL, SIGHUP}) {
    for (int round = 0; round < 100; ++round) {
      pid_t child = fork();
      ASSERT_GE(child, 0);
      if (child == 0) {
        for (;;) pause();
      }
      EXPECT_TRUE(notSignalled(child));
      ASSERT_EQ(kill(child, sig), 0);
      ::testing::AssertionResult after = notSignalled(child);
      EXPECT_FALSE(after) << "signal " << sig << ", round " << round;
      ASSERT_EQ(waitpid(child, nullptr, 0), child);
      if (after) break;  // one report per signal is enough
    }
  }
  // A blocked signal stays pending: the process lives, and is still not "not signalled".
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, nullptr);
    for (;;) pause();
  }
  // SIGTERM is blocked once the child's mask shows it.
  ASSERT_TRUE(waitUntil([&] {
    for (const auto& line : splitLines(readFile("/proc/" + std::to_string(child) + "/status")))
      if (line.rfind("SigBlk:", 0) == 0)
        return ((std::strtoull(line.c_str() + 7, nullptr, 16) >> (SIGTERM - 1)) & 1) != 0;
    return false;
  }, 10s, "the child blocks SIGTERM"));
  EXPECT_TRUE(notSignalled(child));
  ASSERT_EQ(kill(child, SIGTERM), 0);
  EXPECT_FALSE(notSignalled(child));
  EXPECT_NE(procState(child), 'Z');
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(notSignalled(child)) << "a reaped process is gone";
}

// pendingConnections() counts the connections a listening socket has not accepted yet.
TEST(IntegrationHarness, PendingConnectionsCountsTheListenQueue) {
  char dir[] = "/tmp/baton-itest-listen-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/sock";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  EXPECT_EQ(pendingConnections(path), -1) << "nothing listens yet";
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 16), 0);
  EXPECT_EQ(pendingConnections(path), 0);
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) {
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(c, 0);
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    clients.push_back(c);
  }
  EXPECT_EQ(pendingConnections(path), 3);
  int accepted = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  EXPECT_EQ(pendingConnections(path), 2);
  close(accepted);
  for (int c : clients) close(c);
  close(listener);
  unlink(path.c_str());
  rmdir(dir);
}

class IntegrationHarnessNs : public BatonTest {};

TEST_F(IntegrationHarnessNs, DaemonIsPid1OfItsNamespace) {
  BATON_START();
  pid_t d = b().daemonHostPid();
  ASSERT_GT(d, 0);
  EXPECT_EQ(innermostPid(d), 1);
  auto procs = b().daemonProcesses();
  EXPECT_NE(std::find(procs.begin(), procs.end(), d), procs.end());
  EXPECT_EQ(b().hostPid(1), d);
  CmdResult v = b().ctl({"version"});
  EXPECT_EQ(v.exitCode, 0) << v.describe();
  EXPECT_TRUE(std::regex_search(v.out, std::regex("^baton [0-9]+\\.[0-9]+\\.[0-9]+")))
      << v.describe();
  CmdResult ds = b().ctl({"status", "--daemon"});
  EXPECT_EQ(ds.exitCode, 0) << ds.describe();
  EXPECT_FALSE(ds.out.empty());
}

}  // namespace
}  // namespace baton::itest
