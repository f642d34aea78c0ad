// Helpers for the fuzzers' inputs (scripts/fuzz.sh):
//   fuzz_tool frames DIR             write the seed corpus of the control fuzzer
//                                    (tests/fuzz/corpus/control)
//   fuzz_tool fill-checksum FILE...  compute the header checksum of snapshot inputs in place, as
//                                    the snapshot fuzzer does before reading one: a kept crasher
//                                    then reaches the decoder of batond and baton-state too
#include <capnp/message.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "schema/control.capnp.h"
#include "serialize/snapshot.h"
#include "supervisor/control_frame.h"

using namespace baton;

namespace {

std::string request(const std::function<void(wire::Request::Builder)>& fill) {
  capnp::MallocMessageBuilder m;
  auto r = m.initRoot<wire::Request>();
  r.setId(42);
  fill(r);
  return encodeFrame(m);
}

std::string response(const std::function<void(wire::Response::Builder)>& fill) {
  capnp::MallocMessageBuilder m;
  auto r = m.initRoot<wire::Response>();
  r.setId(42);
  r.setCode(wire::ResultCode::OK);
  fill(r);
  return encodeFrame(m, kMaxResponseBytes);
}

void jobRef(wire::JobRef::Builder ref) {
  ref.setName("net/dhcp");
  auto env = ref.initEnv(2);
  env.set(0, "IFACE=eth0");
  env.set(1, "MODE=");
}

}  // namespace

// Real requests, as batonctl sends them, and real responses, as batond answers, framed with
// encodeFrame. Each file starts with the fuzzer's control byte (control_fuzz.cpp: read size and
// limit).
int writeFrames(const std::string& dir) {
  auto write = [&](const std::string& name, unsigned char control, const std::string& frames) {
    std::ofstream out(dir + "/" + name + ".frame", std::ios::binary);
    out << char(control) << frames;
  };
  // Requests: the whole stream at once, then in reads of 3 and 16 bytes.
  write("start", 0, request([](auto r) { jobRef(r.initStart()); }));
  write("stop-nowait", 3, request([](auto r) {
          jobRef(r.initStop());
          r.getStop().setNoWait(true);
        }));
  write("status-list", 16, request([](auto r) { r.initStatus().setName("tty"); }) + request([](auto r) { r.setList(); }));
  write("emit", 0, request([](auto r) {
          auto e = r.initEmit();
          e.setName("net-device-up");
          auto env = e.initEnv(1);
          env.set(0, "IFACE=lo");
        }));
  write("show-config-log-priority", 0,
        request([](auto r) { r.setShowConfig("tty"); }) + request([](auto r) { r.setLogPriority("debug"); }));
  write("reexec", 0, request([](auto r) { r.initReexec().setBinary("/sbin/batond"); }));

  // Responses (batonctl's side, the larger limit).
  write("response-jobs", 0x80, response([](auto r) {
          auto jobs = r.initJobs(1);
          jobs[0].setJob("tty");
          jobs[0].setInstance("tty1");
          jobs[0].setGoal("start");
          jobs[0].setState("running");
          auto procs = jobs[0].initProcesses(2);
          procs[0].setType("main");
          procs[0].setPid(123);
          procs[1].setType("post-start");
          procs[1].setPid(124);
          procs[1].setSpawning(true);
          jobs[0].setFailed(true);
          jobs[0].setExitStatus(9);
          jobs[0].setExitSignal(true);
        }));
  write("response-config", 0x80, response([](auto r) {
          auto c = r.initConfig(1);
          c[0].setJob("tty");
          c[0].setStartOn("runlevel [2345] and (filesystem or net-device-up IFACE=lo)");
          c[0].setStopOn("runlevel [!2345]");
          c[0].initEmits(1).set(0, "tty-up");
          c[0].setTask(true);
          c[0].initUnsupported(1).set(0, "tty.conf:3: apparmor");
        }));
  write("response-check", 0x80, response([](auto r) {
          auto c = r.initCheck();
          c.initProblems(1).set(0, "a.conf:1: unknown stanza");
          c.initWarnings(1).set(0, "b.conf:2: debug");
        }));
  write("response-daemon", 0x80, response([](auto r) {
          auto d = r.initDaemon();
          d.setVersion("0.1.0");
          d.setPid(1);
          d.setPid1(true);
          d.setJobs(3);
          d.setConfDir("/etc/baton/jobs");
          auto last = d.initLastReexec();
          last.setOk(true);
          last.setMessage("ok");
          last.setAtNs(1000);
          last.initTiming().setDowntimeNs(12345);
        }));
  write("response-reexec-failed", 0x80, response([](auto r) {
          r.setCode(wire::ResultCode::FAILED);
          r.setMessage("pre-flight failed");
          auto o = r.initReexec();
          o.setRolledBack(true);
          o.setMessage("refused");
          o.setSnapshotBytes(4096);
        }));
  return 0;
}

int fillChecksum(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  std::string bytes = s.str();
  if (!in || bytes.size() < sizeof(SnapshotHeader)) {
    std::fprintf(stderr, "%s: not a snapshot input (shorter than a header)\n", path);
    return 1;
  }
  SnapshotHeader h;
  memcpy(&h, bytes.data(), sizeof h);
  h.checksum = kNoChecksum;
  memcpy(bytes.data(), &h, sizeof h);
  completeChecksum(bytes);  // only if the header's sizes describe the file
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  return out ? 0 : 1;
}

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "frames" && argc == 3) return writeFrames(argv[2]);
  if (cmd == "fill-checksum" && argc > 2) {
    int status = 0;
    for (int i = 2; i < argc; ++i) status |= fillChecksum(argv[i]);
    return status;
  }
  std::fprintf(stderr, "usage: fuzz_tool frames DIR | fuzz_tool fill-checksum FILE...\n");
  return 2;
}
