// Fuzz target: bytes arriving on a control connection.
//
// The input is split into reads (the first byte picks their size) appended to a buffer that
// takeFrame cuts frames off, as batond's connection handler does. Each complete frame is read as
// a Request with controlReaderOptions, visiting every field handleRequest reads
// (supervisor/control_server.cpp), and as a Response, rendered the way batonctl prints it
// (supervisor/control_format.h). A frame must also survive being encoded again. See
// fuzz_checks.h.
#include "tests/fuzz/fuzz_checks.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include "base/log_priority.h"
#include "schema/control.capnp.h"
#include "supervisor/control_format.h"
#include "supervisor/control_frame.h"

namespace baton::fuzz {
namespace {

std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

void envTexts(capnp::List<capnp::Text>::Reader list, std::string& sink) {
  for (auto t : list) {
    std::string kv = t;  // as splitEnv reads them
    sink += kv.substr(0, kv.find('='));
  }
}

void jobRef(wire::JobRef::Reader ref, std::string& sink) {
  sink += str(ref.getName());
  envTexts(ref.getEnv(), sink);
  sink += ref.getNoWait() ? "w" : "";
}

// Every field handleRequest reads, for each kind of request.
void readRequest(wire::Request::Reader req, std::string& sink) {
  sink += std::to_string(req.getId());
  switch (req.which()) {
    case wire::Request::START: jobRef(req.getStart(), sink); break;
    case wire::Request::STOP: jobRef(req.getStop(), sink); break;
    case wire::Request::RESTART: jobRef(req.getRestart(), sink); break;
    case wire::Request::RELOAD: jobRef(req.getReload(), sink); break;
    case wire::Request::STATUS: jobRef(req.getStatus(), sink); break;
    case wire::Request::EMIT: {
      auto args = req.getEmit();
      sink += str(args.getName());
      envTexts(args.getEnv(), sink);
      sink += args.getNoWait() ? "w" : "";
      break;
    }
    case wire::Request::SHOW_CONFIG: sink += str(req.getShowConfig()); break;
    case wire::Request::LOG_PRIORITY: sink += parseLogPriority(str(req.getLogPriority())) ? "p" : "-"; break;
    case wire::Request::REEXEC: {
      auto args = req.getReexec();
      sink += str(args.getBinary());
      sink += args.getTestRefuseRestore() ? "r" : "";
      sink += args.getTestRefuseRollback() ? "b" : "";
      break;
    }
    default: break;  // list, checkConfig, reloadConfiguration, version, snapshot, daemonStatus
  }
}

// What batonctl prints of a response.
void printResponse(wire::Response::Reader r, std::string& sink) {
  sink += std::to_string(exitCodeFor(r.getCode())) + resultCodeText(r.getCode()) + str(r.getMessage());
  switch (r.which()) {
    case wire::Response::JOBS:
      for (auto s : r.getJobs()) sink += formatJobStatus(s);
      break;
    case wire::Response::CONFIG:
      for (auto c : r.getConfig()) sink += formatJobConfig(c);
      break;
    case wire::Response::CHECK: sink += formatConfigCheck(r.getCheck(), true); break;
    case wire::Response::VERSION: sink += str(r.getVersion()); break;
    case wire::Response::LOG_PRIORITY: sink += str(r.getLogPriority()); break;
    case wire::Response::DAEMON: sink += formatDaemonStatus(r.getDaemon(), 123456789); break;
    case wire::Response::REEXEC: sink += formatReexecOutcome("re-exec", r.getReexec(), 0); break;
    case wire::Response::SNAPSHOT: sink += std::to_string(r.getSnapshot().size()); break;
    case wire::Response::EMITTED: sink += std::to_string(r.getEmitted()); break;
    default: break;
  }
}

// One complete frame: read as batond and batonctl read it, then framed again.
std::string readFrame(kj::Array<capnp::word>& words, size_t maxBytes, std::string& sink) {
  try {
    capnp::FlatArrayMessageReader reader(words, controlReaderOptions());
    readRequest(reader.getRoot<wire::Request>(), sink);
  } catch (const kj::Exception&) {
    // batond: "malformed request", the connection is closed.
  }
  try {
    capnp::FlatArrayMessageReader reader(words, controlReaderOptions(words.size()));
    printResponse(reader.getRoot<wire::Response>(), sink);
  } catch (const kj::Exception&) {
    // batonctl: a protocol error.
  }
  // A message that can be read can be copied and framed again, and that frame is taken whole.
  std::string frame;
  try {
    capnp::FlatArrayMessageReader reader(words, controlReaderOptions());
    capnp::MallocMessageBuilder copy;
    copy.setRoot(reader.getRoot<capnp::AnyPointer>());
    frame = encodeFrame(copy, maxBytes);
  } catch (const kj::Exception&) {
    return {};
  }
  kj::Array<capnp::word> again;
  std::string error;
  if (takeFrame(frame, again, error, maxBytes) != FrameStatus::Complete)
    return "a re-encoded frame is not taken whole: " + error;
  if (!frame.empty()) return "a re-encoded frame left bytes behind";
  return {};
}

}  // namespace

std::string checkControl(std::string_view input) {
  if (input.empty()) return {};
  // First byte: the read size (1..128 bytes, or everything at once) and which limit applies
  // (requests to batond, or responses to batonctl).
  const unsigned char control = static_cast<unsigned char>(input[0]);
  input.remove_prefix(1);
  const size_t chunk = (control & 0x7f) == 0 ? input.size() + 1 : (control & 0x7f);
  const size_t maxBytes = control & 0x80 ? kMaxResponseBytes : kMaxFrameBytes;
  std::string buf, sink;
  size_t fed = 0;
  while (fed < input.size() || !buf.empty()) {
    const size_t n = std::min(chunk, input.size() - fed);
    buf.append(input.data() + fed, n);
    fed += n;
    const size_t before = buf.size();
    for (;;) {
      kj::Array<capnp::word> words;
      std::string error;
      const size_t had = buf.size();
      FrameStatus st = takeFrame(buf, words, error, maxBytes);
      if (st == FrameStatus::Error) {
        if (error.empty()) return "a frame refused without a reason";
        return {};  // the connection is closed
      }
      if (st == FrameStatus::NeedMore) {
        if (buf.size() != had) return "NeedMore consumed bytes";
        break;
      }
      if (words.size() == 0 || buf.size() + 4 + words.size() * 8 != had)
        return "a complete frame's size does not match what it consumed";
      if (std::string p = readFrame(words, maxBytes, sink); !p.empty()) return p;
    }
    if (n == 0 && buf.size() == before) break;  // all fed, the rest is an incomplete frame
  }
  return {};
}

}  // namespace baton::fuzz

BATON_FUZZ_TARGET(baton::fuzz::checkControl)
