// Taking over from Upstart: batond started as Upstart 1.x starts its successor when it re-execs
// /sbin/init (`--restart --state-fd N`), as PID 1 of a new PID namespace, with a real Upstart
// state file written into the state pipe and a live pipe for the in-flight spawn it records.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.h"

namespace baton::itest {
namespace {

class IntegrationUpstartTakeover : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/baton-takeover.XXXXXX";
    dir_ = mkdtemp(tmpl);
    mkdir((dir_ + "/conf").c_str(), 0755);
    // A job of this host that would start at boot: a takeover must not start it again.
    writeFile(dir_ + "/conf/boot.conf", "start on startup\nexec sleep 1000\n");
  }
  void TearDown() override {
    if (init_ > 0) kill(init_, SIGKILL);
    if (launcher_ > 0) waitpid(launcher_, nullptr, 0);
    if (HasFailure()) std::cerr << "batond stderr:\n" << readFile(dir_ + "/stderr");
    runCommand({"/bin/rm", "-rf", dir_}, 10s);
  }
  // Start batond with `state` on fd 10 and `extraFd` (if any) as fd 11.
  void launch(const std::string& state, int extraFd) {
    int sp[2];
    ASSERT_EQ(pipe2(sp, O_CLOEXEC), 0);  // only what dup2 puts at 10 and 11 reaches batond
    launcher_ = fork();
    if (launcher_ == 0) {
      dup2(sp[0], 10);
      if (extraFd >= 0) dup2(extraFd, 11);
      int err = open((dir_ + "/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(err, 2);
      std::string batond = Baton::binDir() + "/batond";
      execl("/usr/bin/unshare", "unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL", batond.c_str(),
            "--restart", "--state-fd", "10", "--confdir", (dir_ + "/conf").c_str(), "--socket",
            (dir_ + "/sock").c_str(), "--logdir", (dir_ + "/log").c_str(), "--debug", (char*)nullptr);
      _exit(127);
    }
    close(sp[0]);
    ASSERT_TRUE(writeAll(sp[1], state));
    close(sp[1]);
    ASSERT_TRUE(waitFor([&] { return ctl({"version"}).exitCode == 0; }, 15s)) << readFile(dir_ + "/stderr");
    std::string kids = readFile("/proc/" + std::to_string(launcher_) + "/task/" + std::to_string(launcher_) + "/children");
    init_ = atoi(kids.c_str());
  }
  static bool writeAll(int fd, const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      ssize_t n = write(fd, s.data() + done, s.size() - done);
      if (n <= 0) return false;
      done += size_t(n);
    }
    return true;
  }
  CmdResult ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {Baton::binDir() + "/batonctl", "--socket", dir_ + "/sock"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, 10s);
  }
  std::string dir_;
  pid_t launcher_ = -1, init_ = -1;
};

std::string sharedState(const std::string& name) {
  return std::string(BATON_SHARED_DIR) + "/upstart/states/" + name;
}

TEST_F(IntegrationUpstartTakeover, Upstart113WithASpawnInFlight) {
  if (!pathExists(sharedState("upstart-1.13.json")))
    GTEST_SKIP() << "the Upstart state files are not at " << sharedState("") << " (../shared is absent)";
  int job[2];
  ASSERT_EQ(pipe2(job, O_CLOEXEC), 0);
  std::string state = readFile(sharedState("upstart-1.13.json"));
  for (size_t at; (at = state.find("@JOB_PROCESS_FD@")) != std::string::npos;) state.replace(at, 16, "11");
  for (size_t at; (at = state.find("@CHROOT_PATH@")) != std::string::npos;) state.replace(at, 13, dir_);
  ASSERT_NO_FATAL_FAILURE(launch(state, job[0]));
  close(job[0]);
  EXPECT_TRUE(contains(readFile(dir_ + "/stderr"), "took over from Upstart: 118 jobs imported"));
  // The spawn Upstart had in flight is still in flight: its status pipe decides.
  CmdResult s = ctl({"status", "upstart-force-slow-child"});
  EXPECT_TRUE(contains(s.out, "upstart-force-slow-child start/spawned, process 2403 (spawning)")) << s.describe();
  // No startup event: the host's boot job is not started on top of what runs.
  EXPECT_TRUE(contains(ctl({"status", "boot"}).out, "boot stop/waiting"));
  // The exec is confirmed (EOF); its process (pid 2403 of the old system) is gone here, so the
  // job ends, and being a job of Upstart's /etc/init only, it goes away.
  close(job[1]);
  EXPECT_TRUE(waitFor([&] { return ctl({"status", "upstart-force-slow-child"}).exitCode == 3; }, 10s))
      << ctl({"status", "upstart-force-slow-child"}).describe();
  CmdResult d = ctl({"status", "--daemon"});
  EXPECT_EQ(d.exitCode, 0) << d.describe();
  EXPECT_TRUE(contains(d.out, "pid 1: yes")) << d.describe();
}

TEST_F(IntegrationUpstartTakeover, Upstart16EventBlockingAJob) {
  if (!pathExists(sharedState("upstart-1.6.json")))
    GTEST_SKIP() << "the Upstart state files are not at " << sharedState("") << " (../shared is absent)";
  // Keep Upstart's job `bar` by having its file here too.
  writeFile(dir_ + "/conf/bar.conf", "exec sleep 1000\n");
  ASSERT_NO_FATAL_FAILURE(launch(readFile(sharedState("upstart-1.6.json")), -1));
  EXPECT_TRUE(contains(readFile(dir_ + "/stderr"), "took over from Upstart: 1 jobs imported"));
  EXPECT_EQ(ctl({"status", "bar"}).out, "bar stop/waiting\n");
  // The imported job runs from this host's definition.
  CmdResult r = ctl({"start", "bar"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "bar start/running, process")) << r.describe();
}

TEST_F(IntegrationUpstartTakeover, UntrustworthyStateFallsBackWithoutStartingJobs) {
  ASSERT_NO_FATAL_FAILURE(launch("{\"events\": [], \"job_classes\": [{\"name\": 7}]}", -1));
  EXPECT_TRUE(contains(readFile(dir_ + "/stderr"), "cannot take over Upstart's state: job_classes[0].name"))
      << readFile(dir_ + "/stderr");
  // Stateless, and no startup event: nothing is started twice.
  EXPECT_EQ(ctl({"status", "boot"}).out, "boot stop/waiting\n");
  EXPECT_EQ(ctl({"start", "boot"}).exitCode, 0);
}

}  // namespace
}  // namespace baton::itest
