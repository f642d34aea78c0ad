// batonctl: command-line client for batond (in the manner of Upstart's initctl).
//
// Sends one Request (schema/control.capnp) over batond's Unix stream socket, framed as in
// supervisor/control_frame.h, blocks until the Response with the same id arrives (surviving a
// re-exec of batond, which keeps the connection), prints it and exits.
//
// Exit status:
//   0  ok
//   1  failed: the operation failed, the job is already in that goal, the request is not
//      supported, batond had an internal error, check-config or reload-configuration
//      reported problems, a re-exec did not succeed, or a local error (e.g. cannot write
//      the snapshot file or standard output)
//   2  usage error: bad command line, or batond rejected the request as malformed
//   3  unknown job or unknown instance
//   4  permission denied (by batond, or no permission to connect to its socket)
//   5  cannot connect to batond (no socket path known, socket missing, connection refused)
//   6  protocol error (bad frame or message, connection closed before the answer)
//
// Errors are printed to stderr as "batonctl: MESSAGE"; a note that batond attaches to a
// successful answer is printed the same way.

#include "schema/control.capnp.h"
#include "supervisor/control_format.h"
#include "serialize/snapshot.h"
#include "schema/state.capnp.h"
#include "supervisor/control_frame.h"
#include "base/log_priority.h"
#include "base/syscalls.h"

#include <capnp/compat/json.h>
#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace baton {
namespace {

constexpr const char* kUsage =
    "Usage: batonctl [--socket PATH] [--json] COMMAND [ARGS...]\n"
    "\n"
    "Commands:\n"
    "  start JOB [KEY=VALUE...] [-n|--no-wait]    start a job (instance)\n"
    "  stop JOB [KEY=VALUE...] [-n|--no-wait]     stop a job (instance)\n"
    "  restart JOB [KEY=VALUE...] [-n|--no-wait]  restart a job (instance)\n"
    "  reload JOB [KEY=VALUE...]                  send the reload signal to the main process\n"
    "  status [JOB [KEY=VALUE...]]                status of a job (all jobs without JOB)\n"
    "  status --daemon                            status of batond itself\n"
    "  list                                       status of every job instance\n"
    "  emit EVENT [KEY=VALUE...] [-n|--no-wait]   emit an event\n"
    "  show-config [JOB]                          show start/stop conditions and emits\n"
    "  check-config                               report problems in the job files\n"
    "  reload-configuration                       reread the job files\n"
    "  log-priority [PRIORITY]                    show or set the log priority\n"
    "                                             (debug info message warn error fatal)\n"
    "  reexec [--binary PATH] [--allow-downgrade-mapping]\n"
    "                                             re-execute batond, keeping all state\n"
    "  snapshot [-o FILE] [--json]                write batond's state snapshot (raw), or the state as JSON\n"
    "  version                                    show batond's version\n"
    "\n"
    "Options:\n"
    "  --socket PATH  batond's control socket (default: $BATON_SOCKET, else\n"
    "                 /run/baton/control for root, else $XDG_RUNTIME_DIR/baton/control)\n"
    "  --json         print the response body as JSON\n"
    "  --help         show this help\n"
    "  --wait         wait for start/stop/restart/emit to complete (the default)\n"
    "\n"
    "Exit status: 0 ok, 1 failed, 2 usage error, 3 unknown job or instance,\n"
    "4 permission denied, 5 cannot connect to batond, 6 protocol error.\n";

// ---------------------------------------------------------------------------------------------
// Errors

struct UsageError {
  std::string message;
};

struct ClientError {
  int exitCode;
  std::string message;
};

std::string errnoText(int err) { return baton::sys::errnoText(err); }

// ---------------------------------------------------------------------------------------------
// Command line

enum class Verb {
  Start, Stop, Restart, Reload, Status, DaemonStatus, List, Emit, ShowConfig, CheckConfig,
  ReloadConfiguration, LogPriority, Reexec, Snapshot, Version,
};

struct VerbName {
  const char* name;
  Verb verb;
};

constexpr VerbName kVerbs[] = {
    {"start", Verb::Start},
    {"stop", Verb::Stop},
    {"restart", Verb::Restart},
    {"reload", Verb::Reload},
    {"status", Verb::Status},
    {"list", Verb::List},
    {"emit", Verb::Emit},
    {"show-config", Verb::ShowConfig},
    {"check-config", Verb::CheckConfig},
    {"reload-configuration", Verb::ReloadConfiguration},
    {"log-priority", Verb::LogPriority},
    {"reexec", Verb::Reexec},
    {"snapshot", Verb::Snapshot},
    {"version", Verb::Version},
};

struct Command {
  Verb verb = Verb::List;
  std::string name;              // job, event, log priority, or reexec binary
  std::vector<std::string> env;  // KEY=VALUE
  bool noWait = false;
  std::string outputFile;  // snapshot -o; empty: stdout
  bool testRefuseRestore = false;
  bool testRefuseRollback = false;
  bool allowDowngradeMapping = false;  // reexec
  bool snapshotJson = false;  // snapshot --json
};

struct CommandLine {
  std::optional<std::string> socketPath;
  bool json = false;
  bool help = false;
  Command command;
};

std::optional<Verb> findVerb(const std::string& word) {
  for (const VerbName& v : kVerbs) {
    if (word == v.name) return v.verb;
  }
  return std::nullopt;
}

bool takesWaitFlags(Verb verb) {
  return verb == Verb::Start || verb == Verb::Stop || verb == Verb::Restart || verb == Verb::Emit;
}

// Options and positional arguments after the verb.
struct VerbArgs {
  std::vector<std::string> positional;
  bool noWait = false;
  bool daemon = false;
  std::optional<std::string> binary;
  std::optional<std::string> output;
  bool testRefuseRestore = false;   // reexec: test hooks of a --test-hooks batond
  bool testRefuseRollback = false;
  bool allowDowngradeMapping = false;  // reexec: docs/formats.md, "Downgrade policy"
  bool snapshotJson = false;
};

// Value of "--opt VALUE" or "--opt=VALUE" at args[i] (advancing i past VALUE), or nullopt if
// args[i] is not that option.
std::optional<std::string> optionValue(const std::vector<std::string>& args, size_t& i,
                                       const std::string& shortName,
                                       const std::string& longName) {
  const std::string& a = args[i];
  if (a == longName || (!shortName.empty() && a == shortName)) {
    if (i + 1 >= args.size()) throw UsageError{a + " needs an argument"};
    return args[++i];
  }
  if (a.rfind(longName + "=", 0) == 0) return a.substr(longName.size() + 1);
  return std::nullopt;
}

VerbArgs splitVerbArgs(Verb verb, const std::string& verbWord,
                       const std::vector<std::string>& args, size_t from) {
  VerbArgs out;
  bool optionsDone = false;
  for (size_t i = from; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (optionsDone || a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
    } else if (a == "--") {
      optionsDone = true;
    } else if (takesWaitFlags(verb) && (a == "-n" || a == "--no-wait")) {
      out.noWait = true;
    } else if (takesWaitFlags(verb) && a == "--wait") {
      out.noWait = false;
    } else if (verb == Verb::Status && a == "--daemon") {
      out.daemon = true;
    } else if (verb == Verb::Reexec && a == "--test-refuse-restore") {
      out.testRefuseRestore = true;
    } else if (verb == Verb::Reexec && a == "--test-refuse-rollback") {
      out.testRefuseRollback = true;
    } else if (verb == Verb::Reexec && a == "--allow-downgrade-mapping") {
      out.allowDowngradeMapping = true;
    } else if (verb == Verb::Snapshot && a == "--json") {
      out.snapshotJson = true;  // print the state as JSON instead of the raw snapshot
    } else if (auto binary = verb == Verb::Reexec ? optionValue(args, i, "", "--binary")
                                                  : std::nullopt) {
      if (binary->empty()) throw UsageError{"--binary needs a non-empty path"};
      out.binary = *binary;
    } else if (auto output = verb == Verb::Snapshot ? optionValue(args, i, "-o", "--output")
                                                    : std::nullopt) {
      if (output->empty()) throw UsageError{"-o needs a non-empty file name"};
      out.output = *output;
    } else {
      throw UsageError{"unknown option '" + a + "' for " + verbWord};
    }
  }
  return out;
}

void requireNoPositional(const VerbArgs& args, const std::string& verbWord) {
  if (!args.positional.empty()) {
    throw UsageError{verbWord + ": unexpected argument '" + args.positional.front() + "'"};
  }
}

// NAME [KEY=VALUE...] into command.name and command.env.
void takeNameAndEnv(const VerbArgs& args, const std::string& verbWord, const char* what,
                    Command& command) {
  if (args.positional.empty()) throw UsageError{verbWord + ": missing " + what};
  command.name = args.positional.front();
  if (command.name.empty()) throw UsageError{verbWord + ": empty " + what};
  for (size_t i = 1; i < args.positional.size(); ++i) {
    const std::string& kv = args.positional[i];
    if (!isKeyValue(kv)) {
      throw UsageError{verbWord + ": expected KEY=VALUE, got '" + kv + "'"};
    }
    command.env.push_back(kv);
  }
}

std::optional<std::string> atMostOne(const VerbArgs& args, const std::string& verbWord) {
  if (args.positional.size() > 1) {
    throw UsageError{verbWord + ": unexpected argument '" + args.positional[1] + "'"};
  }
  if (args.positional.empty()) return std::nullopt;
  return args.positional.front();
}

Command parseVerb(Verb verb, const std::string& verbWord, const std::vector<std::string>& args,
                  size_t from) {
  const VerbArgs va = splitVerbArgs(verb, verbWord, args, from);
  Command command;
  command.verb = verb;
  command.noWait = va.noWait;
  switch (verb) {
    case Verb::Start:
    case Verb::Stop:
    case Verb::Restart:
    case Verb::Reload:
      takeNameAndEnv(va, verbWord, "JOB", command);
      break;
    case Verb::Status:
      if (va.daemon) {
        requireNoPositional(va, verbWord + " --daemon");
        command.verb = Verb::DaemonStatus;
      } else if (va.positional.empty()) {
        command.verb = Verb::List;
      } else {
        takeNameAndEnv(va, verbWord, "JOB", command);
      }
      break;
    case Verb::Emit:
      takeNameAndEnv(va, verbWord, "EVENT", command);
      break;
    case Verb::ShowConfig:
      command.name = atMostOne(va, verbWord).value_or("");
      break;
    case Verb::LogPriority:
      command.name = atMostOne(va, verbWord).value_or("");
      if (!command.name.empty() && !parseLogPriority(command.name)) {
        throw UsageError{"unknown log priority '" + command.name + "' (expected " +
                         logPriorityNames(", ", " or ") + ")"};
      }
      break;
    case Verb::Reexec:
      requireNoPositional(va, verbWord);
      command.name = va.binary.value_or("");
      command.testRefuseRestore = va.testRefuseRestore;
      command.testRefuseRollback = va.testRefuseRollback;
      command.allowDowngradeMapping = va.allowDowngradeMapping;
      break;
    case Verb::Snapshot:
      requireNoPositional(va, verbWord);
      command.outputFile = va.output.value_or("");
      command.snapshotJson = va.snapshotJson;
      break;
    case Verb::List:
    case Verb::CheckConfig:
    case Verb::ReloadConfiguration:
    case Verb::Version:
    case Verb::DaemonStatus:
      requireNoPositional(va, verbWord);
      break;
  }
  return command;
}

CommandLine parseCommandLine(const std::vector<std::string>& args) {
  CommandLine line;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      line.help = true;
      return line;
    }
    if (a == "--json") {
      line.json = true;
    } else if (auto socket = optionValue(args, i, "", "--socket")) {
      if (socket->empty()) throw UsageError{"--socket needs a non-empty path"};
      line.socketPath = *socket;
    } else if (!a.empty() && a[0] == '-') {
      throw UsageError{"unknown option '" + a + "'"};
    } else {
      break;
    }
  }
  if (i == args.size()) throw UsageError{"missing command"};
  for (size_t j = i + 1; j < args.size(); ++j) {
    if (args[j] == "--help" || args[j] == "-h") {
      line.help = true;
      return line;
    }
    if (args[j] == "--") break;
  }
  const std::string& verbWord = args[i];
  const std::optional<Verb> verb = findVerb(verbWord);
  if (!verb) throw UsageError{"unknown command '" + verbWord + "'"};
  line.command = parseVerb(*verb, verbWord, args, i + 1);
  return line;
}

// --socket, else $BATON_SOCKET, else the default for this user.
std::string resolveSocketPath(const CommandLine& line) {
  if (line.socketPath) return *line.socketPath;
  const char* env = std::getenv("BATON_SOCKET");
  if (env != nullptr && *env != '\0') return env;
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  std::string path = defaultSocketPath(geteuid() == 0, xdg != nullptr ? xdg : "");
  if (path.empty()) {
    throw ClientError{kExitNoConnection,
                      "cannot find batond's socket: XDG_RUNTIME_DIR is not set "
                      "(use --socket or BATON_SOCKET)"};
  }
  return path;
}

// ---------------------------------------------------------------------------------------------
// Request

capnp::Text::Reader asText(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }

void fillEnv(capnp::List<capnp::Text>::Builder list, const std::vector<std::string>& env) {
  for (size_t i = 0; i < env.size(); ++i) list.set(i, asText(env[i]));
}

void fillJobRef(wire::JobRef::Builder ref, const Command& command) {
  ref.setName(asText(command.name));
  fillEnv(ref.initEnv(command.env.size()), command.env);
  ref.setNoWait(command.noWait);
}

void buildRequest(const Command& command, wire::Request::Builder request) {
  switch (command.verb) {
    case Verb::Start: fillJobRef(request.initStart(), command); break;
    case Verb::Stop: fillJobRef(request.initStop(), command); break;
    case Verb::Restart: fillJobRef(request.initRestart(), command); break;
    case Verb::Reload: fillJobRef(request.initReload(), command); break;
    case Verb::Status: fillJobRef(request.initStatus(), command); break;
    case Verb::DaemonStatus: request.setDaemonStatus(); break;
    case Verb::List: request.setList(); break;
    case Verb::Emit: {
      wire::EmitArgs::Builder emit = request.initEmit();
      emit.setName(asText(command.name));
      fillEnv(emit.initEnv(command.env.size()), command.env);
      emit.setNoWait(command.noWait);
      break;
    }
    case Verb::ShowConfig: request.setShowConfig(asText(command.name)); break;
    case Verb::CheckConfig: request.setCheckConfig(); break;
    case Verb::ReloadConfiguration: request.setReloadConfiguration(); break;
    case Verb::LogPriority: request.setLogPriority(asText(command.name)); break;
    case Verb::Reexec: {
      auto r = request.initReexec();
      r.setBinary(asText(command.name));
      r.setTestRefuseRestore(command.testRefuseRestore);
      r.setTestRefuseRollback(command.testRefuseRollback);
      r.setAllowDowngradeMapping(command.allowDowngradeMapping);
      r.setWantsNotes(true);
      break;
    }
    case Verb::Snapshot: request.setSnapshot(); break;
    case Verb::Version: request.setVersion(); break;
  }
}

// ---------------------------------------------------------------------------------------------
// Connection


// A received message and the words it is read from.
class ReceivedMessage {
 public:
  explicit ReceivedMessage(kj::Array<capnp::word> words)
      : words_(kj::mv(words)), reader_(words_, controlReaderOptions(words_.size())) {}
  wire::Response::Reader response() { return reader_.getRoot<wire::Response>(); }

 private:
  kj::Array<capnp::word> words_;
  capnp::FlatArrayMessageReader reader_;
};

// connect(2), finishing a connection that a signal interrupted.
int connectRetrying(int fd, const sockaddr_un& addr) {
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return 0;
  if (errno != EINTR) return errno;
  pollfd p{fd, POLLOUT, 0};
  while (::poll(&p, 1, -1) < 0) {
    if (errno != EINTR) return errno;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
  return err;
}

class Connection {
 public:
  explicit Connection(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
      throw ClientError{kExitNoConnection, "socket path too long: " + path};
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    fd_ = baton::sys::Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd_.get() < 0) {
      throw ClientError{kExitNoConnection, "cannot create a socket: " + errnoText(errno)};
    }
    const int err = connectRetrying(fd_.get(), addr);
    if (err != 0) {
      const int code = err == EACCES || err == EPERM ? kExitPermission : kExitNoConnection;
      throw ClientError{code, "cannot connect to batond at " + path + ": " + errnoText(err)};
    }
  }

  // Sends `message` (a Request whose id this sets) and returns the Response with that id.
  std::unique_ptr<ReceivedMessage> call(capnp::MessageBuilder& message) {
    const uint64_t id = nextId_++;
    message.getRoot<wire::Request>().setId(id);
    std::string frame;
    try {
      frame = encodeFrame(message);
    } catch (const kj::Exception& e) {
      throw ClientError{kExitUsage, "request too large: " + std::string(e.getDescription().cStr())};
    }
    send(frame);
    for (;;) {
      std::unique_ptr<ReceivedMessage> received = receive();
      if (received->response().getId() != id) continue;
      // Notes on the way to the answer (a re-exec's downgrade): shown as they come.
      if (received->response().isNotes()) {
        for (capnp::Text::Reader note : received->response().getNotes()) {
          const std::string line = std::string(note.cStr()) + "\n";
          (void)baton::sys::writeAll(STDOUT_FILENO, line.data(), line.size());
        }
        continue;
      }
      return received;
    }
  }

 private:
  void send(const std::string& frame) {
    if (!baton::sys::sendAll(fd_.get(), frame.data(), frame.size())) {
      const std::string why = "sending the request to batond: " + errnoText(errno);
      // A refused connection may be closed before the request arrived: the refusal is still there.
      try {
        receive();
      } catch (const ClientError& e) {
        if (e.exitCode == kExitNoConnection) throw;
      }
      throw ClientError{kExitProtocol, why};
    }
  }

  // batond refuses a connection over its limits with one Response of id 0 (before any request),
  // then closes it: that is a connection that could not be made.
  static void throwIfRefused(wire::Response::Reader response) {
    if (response.getId() == 0 && response.getCode() != wire::ResultCode::OK)
      throw ClientError{kExitNoConnection, response.getMessage().cStr()};
  }

  std::unique_ptr<ReceivedMessage> receive() {
    for (;;) {
      kj::Array<capnp::word> words;
      std::string error;
      switch (takeFrame(inbuf_, words, error, kMaxResponseBytes)) {
        case FrameStatus::Complete: {
          auto received = std::make_unique<ReceivedMessage>(kj::mv(words));
          throwIfRefused(received->response());
          return received;
        }
        case FrameStatus::Error:
          throw ClientError{kExitProtocol, "bad frame from batond: " + error};
        case FrameStatus::NeedMore:
          readMore();
          break;
      }
    }
  }

  // Blocks until more bytes arrive (batond may re-exec meanwhile; the connection survives).
  void readMore() {
    char chunk[65536];
    for (;;) {
      const ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
      if (n > 0) {
        inbuf_.append(chunk, size_t(n));
        return;
      }
      if (n == 0) {
        throw ClientError{kExitProtocol, inbuf_.empty()
                                             ? "batond closed the connection before answering"
                                             : "batond closed the connection in mid-frame"};
      }
      if (errno != EINTR) {
        throw ClientError{kExitProtocol, "reading from batond: " + errnoText(errno)};
      }
    }
  }

  baton::sys::Fd fd_;
  uint64_t nextId_ = 1;
  std::string inbuf_;
};

// ---------------------------------------------------------------------------------------------
// Output

void writeStdout(const std::string& text) {
  if (!baton::sys::writeAll(STDOUT_FILENO, text.data(), text.size())) {
    throw ClientError{kExitFailed, "writing to standard output: " + errnoText(errno)};
  }
}

void writeStderr(const std::string& text) {
  (void)baton::sys::writeAll(STDERR_FILENO, text.data(), text.size());  // nowhere to report
}

void writeFile(const std::string& path, capnp::Data::Reader bytes) {
  baton::sys::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) throw ClientError{kExitFailed, "cannot open " + path + ": " + errnoText(errno)};
  const auto* data = reinterpret_cast<const char*>(bytes.begin());
  if (!baton::sys::writeAll(fd.get(), data, bytes.size())) {
    throw ClientError{kExitFailed, "writing " + path + ": " + errnoText(errno)};
  }
  if (const int err = fd.closeChecked()) {
    throw ClientError{kExitFailed, "writing " + path + ": " + errnoText(err)};
  }
}

void writeSnapshot(const Command& command, capnp::Data::Reader bytes) {
  if (command.outputFile.empty()) {
    writeStdout(std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size()));
  } else {
    writeFile(command.outputFile, bytes);
  }
}

// The response body (the union member) as JSON, or "" for none / a member unknown to this build.
std::string jsonBody(wire::Response::Reader response) {
  capnp::DynamicStruct::Reader dynamic = response;
  KJ_IF_MAYBE(field, dynamic.which()) {
    if (field->getType().isVoid()) return {};
    capnp::JsonCodec codec;
    return std::string(codec.encode(dynamic.get(*field), field->getType()).cStr()) + "\n";
  }
  return {};
}

std::string humanBody(const Command& command, wire::Response::Reader response) {
  std::string out;
  switch (response.which()) {
    case wire::Response::JOBS:
      for (wire::JobStatus::Reader status : response.getJobs()) out += formatJobStatus(status);
      break;
    case wire::Response::CONFIG:
      for (wire::JobConfig::Reader config : response.getConfig()) out += formatJobConfig(config);
      break;
    case wire::Response::CHECK:
      out = formatConfigCheck(response.getCheck(), command.verb == Verb::CheckConfig);
      break;
    case wire::Response::VERSION:
      out = "baton " + std::string(response.getVersion().cStr()) + "\n";
      break;
    case wire::Response::LOG_PRIORITY:
      if (command.name.empty()) out = std::string(response.getLogPriority().cStr()) + "\n";
      break;
    case wire::Response::DAEMON:
      out = formatDaemonStatus(response.getDaemon(), baton::sys::monotonicNs());
      break;
    case wire::Response::REEXEC:
      out = formatReexecOutcome("re-exec", response.getReexec(), 0);
      break;
    case wire::Response::NONE:
    case wire::Response::SNAPSHOT:  // written raw by the caller
    case wire::Response::EMITTED:   // silent, like initctl emit
    default:
      break;
  }
  return out;
}

// Client-side verdicts on top of the ResultCode.
int adjustExitCode(int exitCode, wire::Response::Reader response) {
  if (exitCode != kExitOk) return exitCode;
  if (response.isCheck() && response.getCheck().getProblems().size() > 0) return kExitFailed;
  if (response.isReexec() && !response.getReexec().getOk()) return kExitFailed;
  return exitCode;
}

std::string errorMessage(const Command& command, wire::Response::Reader response) {
  if (response.getMessage().size() > 0) return response.getMessage().cStr();
  std::string message = resultCodeText(response.getCode());
  if (!command.name.empty()) message += ": " + command.name;
  return message;
}

// The state inside a snapshot, as JSON (schema/state.capnp).
std::string snapshotAsJson(capnp::Data::Reader data) {
  baton::Snapshot snapshot;
  std::string error;
  if (!snapshot.openBytes(std::string(reinterpret_cast<const char*>(data.begin()), data.size()), error))
    throw ClientError{kExitProtocol, "the snapshot batond sent is not readable: " + error};
  capnp::FlatArrayMessageReader reader(snapshot.body(), snapshot.readerOptions());
  capnp::JsonCodec codec;
  codec.setPrettyPrint(true);
  return std::string(codec.encode(reader.getRoot<baton::state::Model>()).cStr()) + "\n";
}

int printResponse(const Command& command, bool json, wire::Response::Reader response) {
  if (response.isSnapshot() && (json || command.snapshotJson) && command.outputFile.empty()) {
    writeStdout(snapshotAsJson(response.getSnapshot()));
  } else if (response.isSnapshot()) {
    writeSnapshot(command, response.getSnapshot());
  } else {
    writeStdout(json ? jsonBody(response) : humanBody(command, response));
  }
  const wire::ResultCode code = response.getCode();
  if (code != wire::ResultCode::OK) {
    writeStderr("batonctl: " + errorMessage(command, response) + "\n");
  } else if (response.getMessage().size() > 0) {
    writeStderr("batonctl: " + std::string(response.getMessage().cStr()) + "\n");
  }
  return adjustExitCode(exitCodeFor(code), response);
}

// ---------------------------------------------------------------------------------------------

int run(const std::vector<std::string>& args) {
  const CommandLine line = parseCommandLine(args);
  if (line.help) {
    writeStdout(kUsage);
    return kExitOk;
  }
  Connection connection(resolveSocketPath(line));
  capnp::MallocMessageBuilder message;
  buildRequest(line.command, message.initRoot<wire::Request>());
  std::unique_ptr<ReceivedMessage> received = connection.call(message);
  return printResponse(line.command, line.json, received->response());
}

}  // namespace
}  // namespace baton

int main(int argc, char** argv) {
  using namespace baton;
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return run(args);
  } catch (const UsageError& e) {
    writeStderr("batonctl: " + e.message + "\nTry 'batonctl --help' for more information.\n");
    return kExitUsage;
  } catch (const ClientError& e) {
    writeStderr("batonctl: " + e.message + "\n");
    return e.exitCode;
  } catch (const kj::Exception& e) {
    writeStderr("batonctl: malformed response from batond: " +
                std::string(e.getDescription().cStr()) + "\n");
    return kExitProtocol;
  }
}
