// batond as PID 1 of a PID namespace reaps the orphans reparented to it. (As a subreaper:
// subreaper_test.cpp.)
#include "harness.h"

namespace baton::itest {
namespace {

// As PID 1 of the namespace, batond reaps orphans reparented to it.
TEST_F(IntegrationLifecycle, Pid1ReapsOrphans) {
  b().writeJob("orphaner", R"JOB(task
script
  ( sleep 0.3 & )
  ( sleep 0.2 & )
  echo parent-done
end script
)JOB");
  BATON_START();
  CmdResult r = b().ctl({"start", "orphaner"});
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_TRUE(waitFor([&] { return b().daemonProcesses().size() == 1; }, 5s))
      << "processes (zombies?) left in the namespace: " << b().daemonProcesses().size();
}

}  // namespace
}  // namespace baton::itest
