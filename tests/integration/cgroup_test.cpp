// cgroup stanza: v1 controllers and the v2 unified hierarchy. Every test uses its own base
// group (Baton::cgroupBase()); the harness removes it afterwards.
#include <unistd.h>

#include "harness.h"

namespace baton::itest {
namespace {

class IntegrationCgroup : public BatonTest {};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool procsContain(const std::string& procsFile, pid_t pid) {
  for (const auto& l : splitLines(readFile(procsFile)))
    if (l == std::to_string(pid)) return true;
  return false;
}

TEST_F(IntegrationCgroup, V1MemoryAndCpuShares) {
  const std::string root = b().cgroupRoot();
  for (const char* c : {"memory", "cpu"})
    if (!pathExists(root + "/" + c + "/cgroup.procs"))
      GTEST_SKIP() << "no v1 " << c << " hierarchy at " << root << "/" << c;
  b().writeJob("cg", R"JOB(cgroup memory
cgroup cpu cpu.shares 512
script
  cat /proc/self/cgroup
  echo cgroup-printed
  exec sleep 1000
end script
)JOB");
  b().writeJob("named", R"JOB(cgroup memory shared-grp
task
script
  cat /proc/self/cgroup
end script
)JOB");
  b().writeJob("cgi", R"JOB(instance $N
cgroup memory
task
script
  cat /proc/self/cgroup
end script
)JOB");
  BATON_START();
  const std::string base = b().cgroupBase();
  CmdResult r = b().ctl({"start", "cg"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b().waitLog("cg", "cgroup-printed\n"));
  std::string log = b().readLog("cg");
  EXPECT_TRUE(contains(log, ":memory:/" + base + "/cg\n")) << log;
  EXPECT_TRUE(contains(log, ":cpu:/" + base + "/cg\n") ||
              contains(log, ":cpu,cpuacct:/" + base + "/cg\n")) << log;
  EXPECT_EQ(trim(readFile(root + "/cpu/" + base + "/cg/cpu.shares")), "512");
  pid_t host = b().hostPid(b().mainPid("cg"));
  ASSERT_GT(host, 0);
  EXPECT_TRUE(procsContain(root + "/memory/" + base + "/cg/cgroup.procs", host));
  EXPECT_TRUE(procsContain(root + "/cpu/" + base + "/cg/cgroup.procs", host));

  r = b().ctl({"start", "named"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("named", ":memory:/" + base + "/shared-grp\n")) << b().readLog("named");

  r = b().ctl({"start", "cgi", "N=one"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(b().waitLog("cgi-one", ":memory:/" + base + "/cgi-one\n")) << b().readLog("cgi-one");

  r = b().ctl({"stop", "cg"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] {
    return trim(readFile(root + "/memory/" + base + "/cg/cgroup.procs")).empty();
  }, 5s));
}

TEST_F(IntegrationCgroup, V2Unified) {
  const std::string unified = b().cgroupRoot() + "/unified";
  if (!pathExists(unified + "/cgroup.procs"))
    GTEST_SKIP() << "no cgroup v2 hierarchy at " << unified << " (cgroup.procs missing)";
  b().writeJob("cg2", R"JOB(cgroup unified
script
  cat /proc/self/cgroup
  echo cgroup-printed
  exec sleep 1000
end script
)JOB");
  BATON_START();
  const std::string base = b().cgroupBase();
  CmdResult r = b().ctl({"start", "cg2"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  ASSERT_TRUE(b().waitLog("cg2", "cgroup-printed\n"));
  std::string log = b().readLog("cg2");
  EXPECT_TRUE(contains(log, "0::/" + base + "/cg2\n")) << log;
  pid_t host = b().hostPid(b().mainPid("cg2"));
  ASSERT_GT(host, 0);
  EXPECT_TRUE(procsContain(unified + "/" + base + "/cg2/cgroup.procs", host));
  r = b().ctl({"stop", "cg2"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
}

}  // namespace
}  // namespace baton::itest
