// Logging details and many clients at once.
#include "harness.h"

namespace baton::itest {
namespace {

class IntegrationLogging : public BatonTest {};

TEST_F(IntegrationLogging, StdoutAndStderrAppendedAcrossRuns) {
  b().writeJob("both", R"JOB(task
script
  echo "to-stdout $RUN"
  echo "to-stderr $RUN" >&2
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "both", "RUN=1"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  r = b().ctl({"start", "both", "RUN=2"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return splitLines(b().readLog("both")).size() >= 4; }, 5s));
  std::string log = b().readLog("both");
  EXPECT_TRUE(linesInOrder(log, {"to-stdout 1", "to-stdout 2"})) << log;
  EXPECT_TRUE(linesInOrder(log, {"to-stderr 1", "to-stderr 2"})) << log;
  EXPECT_EQ(splitLines(log).size(), 4u) << log;
}

TEST_F(IntegrationLogging, OutputOfAllProcessesGoesToTheJobLog) {
  b().writeJob("all", R"JOB(pre-start exec echo from-pre-start
post-stop exec echo from-post-stop
task
exec echo from-main
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "all"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return splitLines(b().readLog("all")).size() >= 3; }, 5s));
  EXPECT_TRUE(linesInOrder(b().readLog("all"), {"from-pre-start", "from-main", "from-post-stop"}))
      << b().readLog("all");
}

class IntegrationStress : public BatonTest {};

// Several clients start and stop their own jobs concurrently, repeatedly.
TEST_F(IntegrationStress, ConcurrentClients) {
  constexpr int kJobs = 4, kRounds = 5;
  for (int i = 0; i < kJobs; ++i)
    b().writeJob("svc" + std::to_string(i), R"JOB(pre-start exec true
post-stop exec true
exec sleep 1000
)JOB");
  BATON_START();
  std::vector<std::string> errors(kJobs);
  std::vector<std::thread> threads;
  for (int i = 0; i < kJobs; ++i) {
    threads.emplace_back([&, i] {
      std::string job = "svc" + std::to_string(i);
      for (int round = 0; round < kRounds; ++round) {
        for (const char* verb : {"start", "stop"}) {
          CmdResult r = b().ctl({verb, job}, 20s);
          if (r.exitCode != 0) {
            errors[i] += std::string(verb) + " " + job + " round " + std::to_string(round) +
                         ": " + r.describe() + "\n";
            return;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kJobs; ++i) {
    EXPECT_TRUE(errors[i].empty()) << errors[i];
    std::string job = "svc" + std::to_string(i);
    EXPECT_EQ(b().statusLine(job), job + " stop/waiting");
  }
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 1; }, 5s));
}

// Many short tasks started by events in a burst all run to completion.
TEST_F(IntegrationStress, EventBurst) {
  b().writeJob("worker", R"JOB(instance $N
start on work
task
exec touch @WORK@/done-$N
)JOB");
  BATON_START();
  constexpr int kEvents = 20;
  for (int i = 0; i < kEvents; ++i) {
    CmdResult r = b().ctl({"emit", "work", "N=" + std::to_string(i), "-n"});
    ASSERT_EQ(r.exitCode, 0) << r.describe();
  }
  EXPECT_TRUE(waitFor([&] {
    for (int i = 0; i < kEvents; ++i)
      if (!pathExists(b().work("done-" + std::to_string(i)))) return false;
    return true;
  }, 15s)) << b().ctl({"list"}).out;
}

}  // namespace
}  // namespace baton::itest
