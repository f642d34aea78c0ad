// Tests for supervisor/control_format: exit codes, argument checks and response text.
#include "supervisor/control_format.h"

#include <capnp/message.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace baton {
namespace {

using wire::ResultCode;

TEST(ControlFormat, ExitCodes) {
  EXPECT_EQ(exitCodeFor(ResultCode::OK), 0);
  EXPECT_EQ(exitCodeFor(ResultCode::FAILED), 1);
  EXPECT_EQ(exitCodeFor(ResultCode::ALREADY_IN_GOAL), 1);
  EXPECT_EQ(exitCodeFor(ResultCode::UNSUPPORTED), 1);
  EXPECT_EQ(exitCodeFor(ResultCode::INTERNAL), 1);
  EXPECT_EQ(exitCodeFor(ResultCode::USAGE), 2);
  EXPECT_EQ(exitCodeFor(ResultCode::UNKNOWN_JOB), 3);
  EXPECT_EQ(exitCodeFor(ResultCode::UNKNOWN_INSTANCE), 3);
  EXPECT_EQ(exitCodeFor(ResultCode::PERMISSION_DENIED), 4);
  EXPECT_EQ(exitCodeFor(static_cast<ResultCode>(200)), 1) << "enumerant from a newer daemon";
  EXPECT_EQ(kExitNoConnection, 5);
  EXPECT_EQ(kExitProtocol, 6);
}

TEST(ControlFormat, ResultCodeText) {
  EXPECT_EQ(resultCodeText(ResultCode::UNKNOWN_JOB), "unknown job");
  EXPECT_EQ(resultCodeText(static_cast<ResultCode>(200)), "error 200");
}

TEST(ControlFormat, KeyValue) {
  EXPECT_TRUE(isKeyValue("A=b"));
  EXPECT_TRUE(isKeyValue("A="));
  EXPECT_TRUE(isKeyValue("A=b=c"));
  EXPECT_FALSE(isKeyValue("=b"));
  EXPECT_FALSE(isKeyValue("AB"));
  EXPECT_FALSE(isKeyValue(""));
}

TEST(ControlFormat, DefaultSocketPath) {
  EXPECT_EQ(defaultSocketPath(true, "/run/user/1000"), "/run/baton/control");
  EXPECT_EQ(defaultSocketPath(false, "/run/user/1000"), "/run/user/1000/baton/control");
  EXPECT_EQ(defaultSocketPath(false, ""), "");
}

class ControlFormatJob : public ::testing::Test {
 protected:
  wire::JobStatus::Builder job() { return message_->getRoot<wire::JobStatus>(); }
  void setBasics(const char* instance = "") {
    job().setJob("tty");
    job().setInstance(instance);
    job().setGoal("start");
    job().setState("running");
  }
  std::string text() { return formatJobStatus(job().asReader()); }

  // Held by pointer: the builder's destructor is noexcept(false), a fixture's must not be.
  std::unique_ptr<capnp::MallocMessageBuilder> message_ =
      std::make_unique<capnp::MallocMessageBuilder>();
};

TEST_F(ControlFormatJob, StoppedJob) {
  job().setJob("cron");
  job().setGoal("stop");
  job().setState("waiting");
  EXPECT_EQ(text(), "cron stop/waiting\n");
}

TEST_F(ControlFormatJob, RunningMainProcess) {
  setBasics();
  auto p = job().initProcesses(1);
  p[0].setType("main");
  p[0].setPid(1234);
  EXPECT_EQ(text(), "tty start/running, process 1234\n");
}

TEST_F(ControlFormatJob, InstanceAndOtherProcesses) {
  setBasics("tty1");
  auto p = job().initProcesses(3);
  p[0].setType("pre-start");
  p[0].setPid(1235);
  p[1].setType("main");
  p[1].setPid(1236);
  p[1].setSpawning(true);
  p[2].setType("post-start");
  p[2].setPid(1237);
  p[2].setSpawning(true);
  EXPECT_EQ(text(),
            "tty (tty1) start/running, process 1236 (spawning)\n"
            "\tpre-start process 1235\n"
            "\tpost-start process 1237 (spawning)\n");
}

TEST_F(ControlFormatJob, NoMainProcess) {
  setBasics();
  job().setState("pre-start");
  auto p = job().initProcesses(1);
  p[0].setType("pre-start");
  p[0].setPid(99);
  EXPECT_EQ(text(), "tty start/pre-start\n\tpre-start process 99\n");
}

TEST_F(ControlFormatJob, FailedWithReason) {
  setBasics();
  job().setFailed(true);
  job().setReason("respawn limit reached");
  job().setExitStatus(1);
  job().setFailedProcess("main");
  EXPECT_EQ(text(), "tty start/running\n\tfailed: respawn limit reached\n");
}

TEST_F(ControlFormatJob, FailedExitStatusAndSignal) {
  setBasics();
  job().setFailed(true);
  job().setFailedProcess("pre-start");
  job().setExitStatus(3);
  EXPECT_EQ(text(), "tty start/running\n\tfailed: pre-start process exited with status 3\n");
  job().setExitSignal(true);
  job().setExitStatus(9);
  EXPECT_EQ(text(), "tty start/running\n\tfailed: pre-start process killed by signal 9\n");
  job().setFailedProcess("");
  EXPECT_EQ(text(), "tty start/running\n\tfailed: process killed by signal 9\n");
}

TEST_F(ControlFormatJob, NewerDefinitionPending) {
  setBasics();
  job().setNewerDefinitionPending(true);
  EXPECT_EQ(text(), "tty start/running\n\tnewer definition pending: applies on next start\n");
}

TEST(ControlFormat, JobConfig) {
  capnp::MallocMessageBuilder message;
  auto config = message.initRoot<wire::JobConfig>();
  config.setJob("tty");
  EXPECT_EQ(formatJobConfig(config.asReader()), "tty\n");
  config.setInstance("$TTY");
  config.setStartOn("runlevel [23]");
  config.setStopOn("runlevel [!23]");
  auto emits = config.initEmits(2);
  emits.set(0, "tty-up");
  emits.set(1, "tty-down");
  config.setTask(true);
  config.setRespawn(true);
  config.initUnsupported(1).set(0, "oom score");
  EXPECT_EQ(formatJobConfig(config.asReader()),
            "tty\n"
            "  instance $TTY\n"
            "  start on runlevel [23]\n"
            "  stop on runlevel [!23]\n"
            "  emits tty-up\n"
            "  emits tty-down\n"
            "  task\n"
            "  respawn\n"
            "  unsupported: oom score\n");
}

TEST(ControlFormat, ConfigCheck) {
  capnp::MallocMessageBuilder message;
  auto check = message.initRoot<wire::ConfigCheck>();
  EXPECT_EQ(formatConfigCheck(check.asReader(), true), "no problems\n");
  EXPECT_EQ(formatConfigCheck(check.asReader(), false), "");
  check.initWarnings(1).set(0, "a.conf:3: unsupported stanza 'oom'");
  EXPECT_EQ(formatConfigCheck(check.asReader(), true),
            "warning: a.conf:3: unsupported stanza 'oom'\nno problems\n");
  check.initProblems(2).set(0, "b.conf:1: bad");
  check.getProblems().set(1, "c.conf:2: worse");
  EXPECT_EQ(formatConfigCheck(check.asReader(), true),
            "b.conf:1: bad\nc.conf:2: worse\nwarning: a.conf:3: unsupported stanza 'oom'\n");
}

TEST(ControlFormat, ReexecOutcome) {
  capnp::MallocMessageBuilder message;
  auto outcome = message.initRoot<wire::ReexecOutcome>();
  EXPECT_EQ(formatReexecOutcome("last re-exec", outcome.asReader(), 5), "last re-exec: none\n");

  outcome.setOk(true);
  outcome.setFromBinary("/sbin/batond");
  outcome.setToBinary("/sbin/batond.new");
  outcome.setSnapshotBytes(4096);
  outcome.setAtNs(1'000'000'000);
  auto timing = outcome.initTiming();
  timing.setSerializeNs(120'400);
  timing.setExecNs(2'600'000);
  timing.setDowntimeNs(3'200'000);
  EXPECT_EQ(formatReexecOutcome("re-exec", outcome.asReader(), 0),
            "re-exec: ok\n"
            "  from: /sbin/batond\n"
            "  to: /sbin/batond.new\n"
            "  snapshot: 4096 bytes\n"
            "  serialize: 120.4 us\n"
            "  exec: 2600.0 us\n"
            "  downtime: 3200.0 us\n");
  EXPECT_EQ(formatReexecOutcome("last re-exec", outcome.asReader(), 3'500'000'000)
                .substr(0, 32),
            "last re-exec: ok, 2.5 s ago\n  fr");

  outcome.setOk(false);
  outcome.setRolledBack(true);
  outcome.setMessage("new binary failed preflight");
  outcome.setToBinary("");
  outcome.setFromBinary("");
  outcome.setSnapshotBytes(0);
  outcome.disownTiming();
  EXPECT_EQ(formatReexecOutcome("re-exec", outcome.asReader(), 0),
            "re-exec: failed, rolled back\n  message: new binary failed preflight\n");
}

TEST(ControlFormat, DaemonStatus) {
  capnp::MallocMessageBuilder message;
  auto status = message.initRoot<wire::DaemonStatus>();
  status.setVersion("0.1.0");
  status.setPid(1);
  status.setPid1(true);
  status.setJobs(3);
  status.setInstances(4);
  status.setSocket("/run/baton/control");
  status.setLogPriority("message");
  EXPECT_EQ(formatDaemonStatus(status.asReader(), 0),
            "version: 0.1.0\n"
            "pid: 1\n"
            "pid 1: yes\n"
            "subreaper: no\n"
            "jobs: 3\n"
            "instances: 4\n"
            "pending events: 0\n"
            "connections: 0\n"
            "socket: /run/baton/control\n"
            "log priority: message\n"
            "last re-exec: none\n");
  status.setDegraded("snapshot unreadable");
  EXPECT_NE(formatDaemonStatus(status.asReader(), 0).find("degraded: snapshot unreadable\n"),
            std::string::npos);
}

// The limits on clients follow the connections, the counters come before the last re-exec; a
// batond without limits (maxConnections 0) shows neither.
TEST(ControlFormat, DaemonStatusLimitsAndCounters) {
  capnp::MallocMessageBuilder message;
  auto status = message.initRoot<wire::DaemonStatus>();
  status.setConnections(3);
  status.setMaxConnections(1024);
  status.setConnectionsKeptForRoot(64);
  status.setMaxConnectionsPerUid(16);
  status.setMaxUnanswered(64);
  status.setFrameTimeoutMs(10000);
  status.setClientWarningBurst(10);
  status.setClientWarningIntervalMs(5000);
  status.setCountersSinceNs(1'000'000'000);
  status.setRefusedPerUid(1);
  status.setRefusedTotal(2);
  status.setRefusedUnanswered(3);
  status.setMalformedFrames(4);
  status.setClosedMidFrame(5);
  status.setDroppedNotReading(6);
  status.setSuppressedWarnings(7);
  const std::string text = formatDaemonStatus(status.asReader(), 3'500'000'000);
  EXPECT_NE(text.find("connections: 3\n"
                      "connection limits: 1024 in all, the last 64 for root; 16 per other user; 64 unanswered "
                      "requests each; a frame within 10 s\n"
                      "warnings about clients: at most 10 lines per 5 s\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("control counters (since this image started, 2.5 s ago):\n"
                      "  connections refused, per-user limit: 1\n"
                      "  connections refused, total limit: 2\n"
                      "  requests refused, unanswered limit: 3\n"
                      "  malformed frames: 4\n"
                      "  connections closed mid-frame: 5\n"
                      "  connections dropped, not reading: 6\n"
                      "  warnings about clients suppressed: 7\n"
                      "last re-exec: none\n"),
            std::string::npos)
      << text;
  status.setMaxConnectionsPerUid(0);
  status.setFrameTimeoutMs(250);
  EXPECT_NE(formatDaemonStatus(status.asReader(), 0).find("; none for other users; 64 unanswered requests each; "
                                                          "a frame within 250 ms\n"),
            std::string::npos);
  status.setFrameTimeoutMs(0);
  EXPECT_NE(formatDaemonStatus(status.asReader(), 0).find("; no frame timeout\n"), std::string::npos);
  status.setMaxConnections(0);
  const std::string old = formatDaemonStatus(status.asReader(), 0);
  EXPECT_EQ(old.find("connection limits"), std::string::npos) << old;
  EXPECT_EQ(old.find("control counters"), std::string::npos) << old;
}

}  // namespace
}  // namespace baton
