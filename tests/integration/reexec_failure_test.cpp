// Re-exec failure modes: every pre-flight failure leaves the old binary running with nothing lost
// and a clear error (issue 3 item 11); a restore that fails after the exec rolls back to the
// pinned old binary, or falls back to wait-only mode (item 12); corrupt snapshots are refused with
// a reason by --verify-state, which never crashes (item 14).
#include <sys/stat.h>

#include <random>

#include "tests/integration/harness.h"

namespace baton::itest {
namespace {

class IntegrationReexecFailure : public BatonTest {
 protected:
  // A service whose pid must survive everything below.
  void startWithService() {
    b().writeJob("steady", "exec sleep 1000\n");
    BATON_START();
    CmdResult r = b().ctl({"start", "steady"});
    ASSERT_EQ(r.exitCode, 0) << r.describe();
    pid_ = b().mainPid("steady");
    ASSERT_GT(pid_, 0);
  }
  // The old binary still serves, with the same job and pid.
  void expectNothingLost() {
    EXPECT_EQ(b().statusLine("steady"), "steady start/running, process " + std::to_string(pid_));
    CmdResult v = b().ctl({"version"});
    EXPECT_EQ(v.exitCode, 0) << v.describe();
  }
  std::string script(const std::string& name, const std::string& body, mode_t mode = 0755) {
    std::string path = b().dir() + "/" + name;
    writeFile(path, body, mode);
    return path;
  }
  pid_t pid_ = 0;
};

// A fake target that answers --state-formats like a baton binary and then does `onVerify`.
std::string fakeTarget(const std::string& formats, const std::string& onVerify) {
  return "#!/bin/sh\ncase \"$1\" in\n  --state-formats) printf '" + formats +
         "' ;;\n  --verify-state) " + onVerify + " ;;\n  *) exit 9 ;;\nesac\n";
}

TEST_F(IntegrationReexecFailure, PreflightFailuresKeepTheOldBinary) {
  ASSERT_NO_FATAL_FAILURE(startWithService());
  const std::string good = "baton 0.1.0\\nwrites 1\\nreads 1-1\\n";
  struct Case {
    std::string name, path, expect;
  };
  std::vector<Case> cases = {
      {"missing", b().dir() + "/no-such-binary", "cannot execute the target: No such file or directory"},
      {"not executable", script("plain", "#!/bin/sh\nexit 0\n", 0644), "cannot execute the target: Permission denied"},
      {"not an ELF", script("garbage", "\x7f" "ELG this is not a program\n"), "cannot execute the target: Exec format error"},
      {"exits non-zero", script("exit3", fakeTarget(good, "echo nope; exit 3")), "exited with status 3: nope"},
      {"crashes", script("crash", fakeTarget(good, "kill -SEGV $$")), "crashed (signal 11)"},
      {"newer format only", script("newer", fakeTarget("baton 9.0\\nwrites 9\\nreads 9-9\\n", "exit 0")),
       "no common state format"},
      {"not baton", script("other", "#!/bin/sh\necho hello\n"), "did not describe its state formats"},
      {"refuses snapshot", script("refuse", fakeTarget(good, "echo 'refused: bad snapshot'; exit 1")),
       "refused: bad snapshot"},
  };
  for (const Case& c : cases) {
    CmdResult r = b().ctl({"reexec", "--binary", c.path}, 30s);
    EXPECT_EQ(r.exitCode, 1) << c.name << ": " << r.describe();
    EXPECT_TRUE(contains(r.out + r.err, c.expect)) << c.name << ": " << r.describe();
    EXPECT_TRUE(contains(r.err, "still running the old binary")) << c.name << ": " << r.describe();
    ASSERT_NO_FATAL_FAILURE(expectNothingLost()) << c.name;
  }
  CmdResult d = b().ctl({"status", "--daemon"});
  EXPECT_TRUE(contains(d.out, "last re-exec: failed")) << d.describe();
  // And a real re-exec still works afterwards.
  CmdResult ok = b().ctl({"reexec"}, 30s);
  EXPECT_EQ(ok.exitCode, 0) << ok.describe();
  expectNothingLost();
}

TEST_F(IntegrationReexecFailure, PreflightThatHangsIsKilledAtItsDeadline) {
  ASSERT_NO_FATAL_FAILURE(startWithService());
  const std::string good = "baton 0.1.0\\nwrites 1\\nreads 1-1\\n";
  std::string pidFile = b().dir() + "/hang.pid";
  std::string hang = script("hang", fakeTarget(good, "echo $$ > " + pidFile + "; exec sleep 1000"));
  CmdResult r = b().ctl({"reexec", "--binary", hang}, 60s);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(contains(r.err, "did not answer in time")) << r.describe();
  expectNothingLost();
  // The hung pre-flight was killed and reaped, not left behind.
  std::string pid = readFile(pidFile);
  ASSERT_FALSE(pid.empty());
  pid_t hostPid = b().hostPid(std::stoi(pid));
  EXPECT_LE(hostPid, 0) << "pre-flight process still exists";
  // Hanging already at --state-formats.
  std::string slow = script("slow", "#!/bin/sh\nexec sleep 1000\n");
  r = b().ctl({"reexec", "--binary", slow}, 60s);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(contains(r.err, "did not answer in time")) << r.describe();
  expectNothingLost();
}

TEST_F(IntegrationReexecFailure, RestoreRefusedRollsBackWithFullState) {
  ASSERT_NO_FATAL_FAILURE(startWithService());
  b().writeJob("held", "env BATON_TEST_HOLD_FIFO=" + b().hold("release") + "\nexec sleep 1000\n");
  ASSERT_EQ(b().ctl({"reload-configuration"}).exitCode, 0);
  ASSERT_EQ(b().ctl({"start", "-n", "held"}).exitCode, 0);
  ASSERT_TRUE(waitFor([&] { return contains(b().statusLine("held"), "(spawning)"); }));
  pid_t held = b().mainPid("held");

  CmdResult r = b().ctl({"reexec", "--test-refuse-restore"}, 30s);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_TRUE(contains(r.out, "rolled back")) << r.describe();
  EXPECT_TRUE(contains(r.out + r.err, "test hook: restore refused")) << r.describe();
  expectNothingLost();
  // The in-flight spawn survived the exec into the refusing binary and the rollback.
  EXPECT_EQ(b().mainPid("held"), held);
  b().release("release");
  EXPECT_TRUE(waitFor([&] { return contains(b().statusLine("held"), "start/running"); }))
      << b().status("held");
  EXPECT_EQ(b().mainPid("held"), held);
  // The refused snapshot is kept for forensics.
  EXPECT_TRUE(pathExists(b().logDir() + "/baton.state.failed"));
  CmdResult d = b().ctl({"status", "--daemon"});
  EXPECT_TRUE(contains(d.out, "rolled back")) << d.describe();
}

TEST_F(IntegrationReexecFailure, WaitOnlyModeWhenRollbackIsImpossible) {
  ASSERT_NO_FATAL_FAILURE(startWithService());
  pid_t host = b().hostPid(pid_);
  ASSERT_GT(host, 0);
  CmdResult r = b().ctl({"reexec", "--test-refuse-restore", "--test-refuse-rollback"}, 30s);
  // The waiting client's connection cannot be served any more: it is closed, not answered.
  EXPECT_EQ(r.exitCode, 6) << r.describe();
  CmdResult d;
  ASSERT_TRUE(waitFor([&] {
    d = b().ctl({"status", "--daemon"});
    return d.exitCode == 0;
  })) << d.describe();
  EXPECT_TRUE(contains(d.out, "degraded: state could not be restored")) << d.describe();
  // Nothing is started afresh on top of live children, and changes are refused with the reason.
  CmdResult s = b().ctl({"start", "steady"});
  EXPECT_EQ(s.exitCode, 1) << s.describe();
  EXPECT_TRUE(contains(s.err, "wait-only mode")) << s.describe();
  EXPECT_TRUE(pidExists(host));
  EXPECT_NE(procState(host), 'Z');
  // Its children are still reaped.
  ASSERT_EQ(kill(host, SIGKILL), 0);
  EXPECT_TRUE(waitFor([&] { return !pidExists(host); })) << "job process left as a zombie";
}

TEST_F(IntegrationReexecFailure, VerifyStateRefusesCorruptSnapshotsWithAReason) {
  ASSERT_NO_FATAL_FAILURE(startWithService());
  std::string snap = b().dir() + "/live.snapshot";
  CmdResult r = b().ctl({"snapshot", "-o", snap});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  std::string good = readFile(snap);
  ASSERT_GT(good.size(), 64u);
  const std::string batond = Baton::binDir() + "/batond";
  auto verify = [&](const std::string& bytes) {
    std::string path = b().dir() + "/candidate";
    writeFile(path, bytes);
    return runCommand({"/bin/sh", "-c", "exec \"$0\" --verify-state 3 3<\"$1\"", batond, path}, 10s);
  };
  CmdResult ok = verify(good);
  EXPECT_EQ(ok.exitCode, 0) << ok.describe();
  EXPECT_TRUE(contains(ok.out, "ok: format 2")) << ok.describe();

  auto expectRefused = [&](const std::string& bytes, const std::string& why, const std::string& what) {
    CmdResult v = verify(bytes);
    EXPECT_EQ(v.exitCode, 1) << what << ": " << v.describe();  // 1 = refused; a crash is 128+N
    EXPECT_TRUE(contains(v.out, "refused: " + why)) << what << ": " << v.describe();
  };
  expectRefused("", "snapshot truncated", "empty");
  expectRefused(good.substr(0, 40), "snapshot truncated", "truncated header");
  expectRefused(good.substr(0, good.size() / 2), "snapshot size mismatch", "truncated body");
  std::string magic = good;
  magic.replace(0, 8, "NOTBATON");
  expectRefused(magic, "not a baton snapshot", "wrong magic");
  std::string counts = good;
  counts[20] = '\xff';  // fdCount's high byte: an absurd number of fds
  counts[21] = '\xff';
  expectRefused(counts, "snapshot size mismatch", "absurd fd count");
  std::mt19937 rng(11);
  for (int i = 0; i < 40; ++i) {
    std::string flipped = good;
    size_t pos = 64 + rng() % (good.size() - 64);
    flipped[pos] = char(flipped[pos] ^ (1 << (rng() % 8)));
    expectRefused(flipped, "snapshot checksum mismatch", "bit flip at " + std::to_string(pos));
  }
  // Random garbage of every size never crashes the verifier.
  for (int i = 0; i < 20; ++i) {
    std::string junk(size_t(rng() % 4096), '\0');
    for (char& c : junk) c = char(rng());
    CmdResult v = verify(junk);
    EXPECT_EQ(v.exitCode, 1) << v.describe();
    EXPECT_TRUE(contains(v.out, "refused: ")) << v.describe();
  }
  // An fd that is not a snapshot at all.
  CmdResult notFile = runCommand({batond, "--verify-state", "0"}, 10s);
  EXPECT_EQ(notFile.exitCode, 1) << notFile.describe();
  EXPECT_TRUE(contains(notFile.out, "refused:")) << notFile.describe();
}

}  // namespace
}  // namespace baton::itest
