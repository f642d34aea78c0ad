// The control server; see control_server.h.
#include "supervisor/control_server.h"

#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <stdexcept>

#include "migrate/formats.h"
#include "supervisor/control_frame.h"
#include "base/environ.h"
#include "base/event_expr.h"
#include "supervisor/jobfile.h"
#include "supervisor/notify_socket.h"
#include "base/syscalls.h"

namespace baton {

namespace {

constexpr size_t kMaxPendingOutput = 16 << 20;  // a client that never reads is dropped

// How warnings name a connection.
std::string connectionName(const Connection& c) {
  return "control connection " + std::to_string(c.id) + " (pid " + std::to_string(c.pid) + ", uid " +
         std::to_string(c.uid) + ")";
}

bool splitEnv(capnp::List<capnp::Text>::Reader list, std::vector<std::string>& out, std::string& error) {
  for (auto t : list) {
    std::string kv = t;
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0 || !environ::validName(kv.substr(0, eq))) {
      error = "expected KEY=VALUE, got '" + kv + "'";
      return false;
    }
    out.push_back(kv);
  }
  return true;
}

}  // namespace

ControlServer::ControlServer(Model& model, const Log& log, Watches& watches, JobEngine& jobs,
                             ReexecRequests& reexec, bool pid1, const ControlLimits& limits, int64_t imageStartNs)
    : model_(model),
      log_(log),
      watches_(watches),
      jobs_(jobs),
      reexec_(reexec),
      pid1_(pid1),
      limits_(limits),
      imageStartNs_(imageStartNs) {}

// =============================================================================================
// The socket and its connections

bool ControlServer::openControlSocket() {
  const std::string& path = model_.config.socketPath;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    log(Priority::Fatal, "socket path '" + path + "' is empty or too long");
    return false;
  }
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) sys::mkdirs(path.substr(0, slash));
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    log(Priority::Fatal, "socket: " + sys::errnoText(errno));
    return false;
  }
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 128) != 0) {
    log(Priority::Fatal, "cannot listen on " + path + ": " + sys::errnoText(errno));
    close(fd);
    return false;
  }
  // Everyone may connect and read; SO_PEERCRED decides who may change things.
  chmod(path.c_str(), 0666);
  model_.listenFd = fd;
  return true;
}

void ControlServer::acceptConnections() {
  for (;;) {
    int fd = accept4(model_.listenFd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) log(Priority::Warn, "accept: " + sys::errnoText(errno));
      return;
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || refuseOverLimit(fd, cred.uid, cred.pid)) {
      close(fd);
      continue;
    }
    Connection c;
    c.id = model_.nextConnId++;
    c.fd = fd;
    c.uid = cred.uid;
    c.pid = cred.pid;
    model_.connections.push_back(c);
    Watch w{Watch::Kind::Connection};
    w.connId = c.id;
    watches_.watch(fd, EPOLLIN, w);
  }
}

bool ControlServer::refuseOverLimit(int fd, uint32_t uid, int32_t pid) {
  size_t ofUid = 0;
  for (const Connection& c : model_.connections) ofUid += c.uid == uid;
  const size_t open = model_.connections.size();
  const ConnectionRefusal why = admitConnection(limits_, uid == 0 || uid == model_.daemonUid, open, ofUid);
  if (why == ConnectionRefusal::None) return false;
  ++(why == ConnectionRefusal::PerUid ? counters_.refusedPerUid : counters_.refusedTotal);
  const std::string text = refusalMessage(why, limits_, uid, open, ofUid);
  // One small frame into an empty socket buffer: it fits, and MSG_DONTWAIT keeps the loop from
  // ever waiting on it. The client may not read it; the connection is closed either way.
  capnp::MallocMessageBuilder msg;
  auto resp = msg.initRoot<wire::Response>();
  resp.setId(0);  // before any request: the refusal of the connection (docs/batonctl.md)
  resp.setCode(wire::ResultCode::FAILED);
  resp.setMessage("connection refused: " + text);
  resp.setNone();
  const std::string frame = encodeFrame(msg);
  (void)send(fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  warnAboutClient("control connection from pid " + std::to_string(pid) + " refused: " + text);
  return true;
}

void ControlServer::armFrameDeadlines() {
  for (const Connection& c : model_.connections) trackPartialFrame(c, /*frameTaken=*/false);
}

void ControlServer::trackPartialFrame(const Connection& conn, bool frameTaken) {
  // A connection whose client shut down its side reads nothing more: its partial frame can never
  // complete, and it closes once its answers are sent.
  if (conn.inBuf.empty() || conn.closing || !limits_.frameTimeoutMs) {
    frameDeadlines_.erase(conn.id);
    return;
  }
  const int64_t deadline = sys::monotonicNs() + int64_t(limits_.frameTimeoutMs) * 1'000'000;
  if (frameTaken) frameDeadlines_[conn.id] = deadline;
  else frameDeadlines_.try_emplace(conn.id, deadline);
}

int64_t ControlServer::nextDeadlineNs() const {
  int64_t earliest = clientWarnings_.summaryDueNs();
  for (const auto& [id, at] : frameDeadlines_)
    if (!earliest || at < earliest) earliest = at;
  return earliest;
}

void ControlServer::runTimers(int64_t now) {
  std::vector<uint64_t> expired;
  for (const auto& [id, at] : frameDeadlines_)
    if (at <= now) expired.push_back(id);
  for (uint64_t id : expired) {
    frameDeadlines_.erase(id);
    const Connection* conn = findConnection(id);
    if (!conn) continue;
    ++counters_.closedMidFrame;
    warnAboutClient(connectionName(*conn) + ": " + std::to_string(conn->inBuf.size()) +
                    " bytes of a frame not completed within " + std::to_string(limits_.frameTimeoutMs) +
                    " ms; closing it");
    closeConnection(id);
  }
  logWarningSummary(now);
}

void ControlServer::warnAboutClient(const std::string& text) {
  const int64_t now = sys::monotonicNs();
  logWarningSummary(now);
  if (clientWarnings_.allow(now)) log(Priority::Warn, text);
}

void ControlServer::logWarningSummary(int64_t now) {
  const std::string summary = clientWarnings_.summary(now);
  if (!summary.empty()) log(Priority::Warn, summary);
}

uint32_t ControlServer::connectionEvents(const Connection& conn) {
  return (conn.closing ? 0u : uint32_t(EPOLLIN)) | (conn.outBuf.empty() ? 0u : uint32_t(EPOLLOUT));
}

Connection* ControlServer::findConnection(uint64_t connId) {
  for (Connection& c : model_.connections)
    if (c.id == connId) return &c;
  return nullptr;
}

void ControlServer::closeConnection(uint64_t connId) {
  auto it = std::find_if(model_.connections.begin(), model_.connections.end(),
                         [&](const Connection& c) { return c.id == connId; });
  if (it == model_.connections.end()) return;
  watches_.unwatch(it->fd);
  close(it->fd);
  frameDeadlines_.erase(connId);
  // Requests it was waiting for stay referenced by jobs and events; answering a vanished
  // connection is a no-op.
  model_.connections.erase(it);
}

void ControlServer::flushConnection(Connection& conn) {
  while (!conn.outBuf.empty()) {
    ssize_t n = send(conn.fd, conn.outBuf.data(), conn.outBuf.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      closeConnection(conn.id);
      return;
    }
    conn.outBuf.erase(0, size_t(n));
  }
  // A drained buffer does not keep the room of a large answer (a list of every job is about
  // 100 bytes a job) for the life of the connection.
  if (conn.outBuf.empty() && conn.outBuf.capacity() > (64u << 10)) std::string().swap(conn.outBuf);
  watches_.modify(conn.fd, connectionEvents(conn));
  if (conn.outBuf.empty() && conn.closing) closeConnection(conn.id);
}

void ControlServer::onConnection(uint64_t connId, uint32_t events) {
  Connection* conn = findConnection(connId);
  if (!conn) return;
  if (events & EPOLLOUT) {
    flushConnection(*conn);
    if (!(conn = findConnection(connId))) return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  char buf[65536];
  bool eof = false;
  for (;;) {
    ssize_t n = read(conn->fd, buf, sizeof buf);
    if (n > 0) {
      conn->inBuf.append(buf, size_t(n));
      if (conn->inBuf.size() > kMaxFrameBytes + 8) break;  // takeFrame refuses it below
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || errno != EAGAIN) eof = true;
    break;
  }
  bool frameTaken = false;
  for (;;) {
    conn = findConnection(connId);
    if (!conn) return;
    kj::Array<capnp::word> words;
    std::string error;
    FrameStatus st = takeFrame(conn->inBuf, words, error);
    if (st == FrameStatus::NeedMore) break;
    if (st == FrameStatus::Complete) {
      frameTaken = true;
      try {
        capnp::FlatArrayMessageReader reader(words, controlReaderOptions());
        handleRequest(connId, reader.getRoot<wire::Request>());
        continue;
      } catch (const kj::Exception& e) {
        error = std::string("malformed request: ") + e.getDescription().cStr();
      }
      if (!(conn = findConnection(connId))) return;  // the handler may have closed it
    }
    ++counters_.malformedFrames;
    warnAboutClient(connectionName(*conn) + ": " + error + "; closing it");
    closeConnection(connId);
    return;
  }
  if (eof) {
    // The client is gone (or half-closed): nothing more can be read; pending answers to it are
    // dropped. A client that only shut down its write side still gets what was queued.
    conn = findConnection(connId);
    if (conn && conn->outBuf.empty() && conn->pending.empty()) closeConnection(connId);
    else if (conn) {
      conn->closing = true;
      frameDeadlines_.erase(connId);
      if (conn->pending.empty()) flushConnection(*conn);
      else watches_.modify(conn->fd, connectionEvents(*conn));
    }
    return;
  }
  if ((conn = findConnection(connId))) trackPartialFrame(*conn, frameTaken);
}

// =============================================================================================
// Answers

void ControlServer::sendResponse(uint64_t connId, capnp::MessageBuilder& message) {
  Connection* conn = findConnection(connId);
  if (!conn) return;
  try {
    std::string frame = encodeFrame(message, kMaxResponseBytes);
    if (conn->outBuf.empty()) conn->outBuf = std::move(frame);  // no copy of a large answer
    else conn->outBuf += frame;
  } catch (const kj::Exception& e) {
    log(Priority::Error, std::string("response too large: ") + e.getDescription().cStr());
    capnp::MallocMessageBuilder small;
    auto resp = small.initRoot<wire::Response>();
    resp.setId(message.getRoot<wire::Response>().getId());
    resp.setCode(wire::ResultCode::INTERNAL);
    resp.setMessage("the answer is too large to send");
    conn->outBuf += encodeFrame(small);
  }
  if (conn->outBuf.size() > kMaxPendingOutput) {
    ++counters_.droppedNotReading;
    warnAboutClient(connectionName(*conn) + " does not read its answers; closing it");
    closeConnection(connId);
    return;
  }
  flushConnection(*conn);
}

void ControlServer::answerSimple(uint64_t connId, uint64_t requestId, int code, const std::string& message) {
  capnp::MallocMessageBuilder msg;
  auto resp = msg.initRoot<wire::Response>();
  resp.setId(requestId);
  resp.setCode(wire::ResultCode(code));
  resp.setMessage(message);
  resp.setNone();
  sendResponse(connId, msg);
}

void ControlServer::fillJobStatus(wire::JobStatus::Builder out, const JobClass& cls, const Instance* inst) const {
  out.setJob(cls.def->name);
  out.setTask(cls.def->task);
  if (!inst) {
    out.setGoal("stop");
    out.setState("waiting");
    return;
  }
  out.setInstance(inst->name);
  out.setGoal(goalName(inst->goal));
  out.setState(jobStateName(inst->state));
  int live = 0;
  for (const ProcessSlot& s : inst->procs) live += s.pid > 0;
  auto procs = out.initProcesses(live);
  int i = 0;
  for (int t = 0; t < kProcessTypes; ++t) {
    const ProcessSlot& s = inst->procs[t];
    if (s.pid <= 0) continue;
    procs[i].setType(processTypeName(ProcessType(t)));
    procs[i].setPid(s.pid);
    procs[i].setSpawning(s.spawnValid);
    ++i;
  }
  out.setFailed(inst->failed);
  if (inst->failed) {
    out.setFailedProcess(processTypeName(inst->failedProcess));
    bool sig = WIFSIGNALED(inst->exitStatus);
    out.setExitSignal(sig);
    out.setExitStatus(sig ? WTERMSIG(inst->exitStatus) : WEXITSTATUS(inst->exitStatus));
    out.setReason(inst->failReason);
  }
  out.setNewerDefinitionPending(inst->def && cls.def && inst->def->contentHash != cls.def->contentHash &&
                                inst->state != JobState::Waiting);
  out.setRespawnCount(inst->respawnCount);
  if (inst->readyState != ReadyState::None) out.setReadiness(readyStateName(inst->readyState));
  if (!inst->statusText.empty()) out.setStatusText(inst->statusText);
  out.setNotifyErrno(inst->notifyErrno);
}

// =============================================================================================
// Requests held until their outcome

RequestRef ControlServer::hold(Connection& conn, uint64_t requestId, PendingRequest::Kind kind,
                               const std::string& job, const std::string& instance) {
  conn.pending.push_back({requestId, kind, job, instance});
  return {conn.id, requestId};
}

void ControlServer::dropHeld(uint64_t connId, uint64_t requestId) {
  Connection* conn = findConnection(connId);
  if (!conn) return;
  auto& p = conn->pending;
  p.erase(std::remove_if(p.begin(), p.end(), [&](const PendingRequest& r) { return r.requestId == requestId; }),
          p.end());
}

void ControlServer::jobFinished(const RequestRef& request, bool failed) {
  deferredAnswers_.push_back({request, failed});
}

void ControlServer::eventFinished(const RequestRef& request, bool failed) {
  answerHeld(request.connId, request.requestId, failed);
}

void ControlServer::flushDeferredAnswers() {
  std::vector<std::pair<RequestRef, bool>> answers;
  answers.swap(deferredAnswers_);
  for (auto& [ref, failed] : answers) answerHeld(ref.connId, ref.requestId, failed);
}

void ControlServer::answerHeld(uint64_t connId, uint64_t requestId, bool failed) {
  Connection* conn = findConnection(connId);
  if (!conn) return;
  auto it = std::find_if(conn->pending.begin(), conn->pending.end(),
                         [&](const PendingRequest& p) { return p.requestId == requestId; });
  if (it == conn->pending.end()) return;
  PendingRequest req = *it;
  conn->pending.erase(it);

  capnp::MallocMessageBuilder msg;
  auto resp = msg.initRoot<wire::Response>();
  resp.setId(requestId);
  resp.setCode(failed ? wire::ResultCode::FAILED : wire::ResultCode::OK);
  if (req.kind == PendingRequest::Kind::Emit) {
    if (failed) resp.setMessage("event " + req.job + " failed");
    resp.setNone();
  } else {
    JobClass* cls = jobs_.findClass(req.job);
    Instance* inst = jobs_.findInstance(req.job, req.instance);
    if (failed) {
      std::string reason = inst && !inst->failReason.empty() ? inst->failReason : "job failed";
      resp.setMessage(req.job + (req.instance.empty() ? "" : " (" + req.instance + ")") + ": " + reason);
    }
    if (cls) {
      auto jobs = resp.initJobs(1);
      fillJobStatus(jobs[0], *cls, inst);
    } else {
      resp.setNone();
    }
  }
  sendResponse(connId, msg);
  conn = findConnection(connId);
  if (conn && conn->closing && conn->pending.empty()) flushConnection(*conn);
}

// =============================================================================================
// Requests: the dispatch

ControlServer::Call::Call(uint64_t connId, Connection& conn, uint64_t id, bool privileged)
    : connId(connId), conn(&conn), id(id), privileged(privileged), resp(msg.initRoot<wire::Response>()) {
  resp.setId(id);
  resp.setCode(wire::ResultCode::OK);
  resp.setNone();
}

void ControlServer::handleRequest(uint64_t connId, wire::Request::Reader req) {
  Connection* conn = findConnection(connId);
  if (!conn) return;
  Call call(connId, *conn, req.getId(), conn->uid == 0 || conn->uid == model_.daemonUid);

  const std::string& degraded = reexec_.degraded();
  if (!degraded.empty() && req.which() != wire::Request::DAEMON_STATUS &&
      req.which() != wire::Request::VERSION && req.which() != wire::Request::LIST &&
      req.which() != wire::Request::STATUS)
    return fail(call, wire::ResultCode::FAILED, "batond is in wait-only mode: " + degraded);
  // Requests held for an answer cross every re-exec: a connection may hold only so many. The excess
  // is answered at once, with nothing done.
  if (conn->pending.size() >= limits_.maxUnanswered) {
    ++counters_.refusedUnanswered;
    return fail(call, wire::ResultCode::FAILED,
                "too many unanswered requests on this connection: " + std::to_string(conn->pending.size()) +
                    " wait for their answer (the limit is " + std::to_string(limits_.maxUnanswered) +
                    "); wait for some of them first");
  }

  switch (req.which()) {
    case wire::Request::START: return handleStart(call, req.getStart());
    case wire::Request::STOP: return handleStop(call, req.getStop());
    case wire::Request::RESTART: return handleRestart(call, req.getRestart());
    case wire::Request::RELOAD: return handleReload(call, req.getReload());
    case wire::Request::STATUS: return handleStatus(call, req.getStatus());
    case wire::Request::LIST: return handleList(call);
    case wire::Request::EMIT: return handleEmit(call, req.getEmit());
    case wire::Request::SHOW_CONFIG: return handleShowConfig(call, req.getShowConfig());
    case wire::Request::CHECK_CONFIG: return handleCheckConfig(call);
    case wire::Request::RELOAD_CONFIGURATION: return handleReloadConfiguration(call);
    case wire::Request::LOG_PRIORITY: return handleLogPriority(call, req.getLogPriority());
    case wire::Request::VERSION: return handleVersion(call);
    case wire::Request::DAEMON_STATUS: return handleDaemonStatus(call);
    case wire::Request::REEXEC: return handleReexec(call, req.getReexec());
    case wire::Request::SNAPSHOT: return handleSnapshot(call);
  }
  fail(call, wire::ResultCode::USAGE, "unknown request");
}

void ControlServer::reply(Call& call) { sendResponse(call.connId, call.msg); }

void ControlServer::fail(Call& call, wire::ResultCode code, const std::string& text) {
  call.resp.setCode(code);
  call.resp.setMessage(text);
  call.resp.setNone();
  reply(call);
}

bool ControlServer::needPrivilege(Call& call) {
  if (call.privileged) return true;
  fail(call, wire::ResultCode::PERMISSION_DENIED,
       "permission denied: uid " + std::to_string(call.conn->uid) + " may only query");
  return false;
}

// =============================================================================================
// Requests: start, stop, restart, reload

bool ControlServer::resolveJob(Call& call, wire::JobRef::Reader ref, bool forStart, JobTarget& t) {
  t.name = ref.getName();
  // A job whose file was removed can still be stopped (then it disappears), not started.
  t.cls = jobs_.findClass(t.name);
  if (forStart && t.cls && t.cls->deleted) t.cls = nullptr;
  if (!t.cls) {
    fail(call, wire::ResultCode::UNKNOWN_JOB, "unknown job: " + t.name);
    return false;
  }
  std::string error;
  if (!splitEnv(ref.getEnv(), t.extra, error)) {
    fail(call, wire::ResultCode::USAGE, error);
    return false;
  }
  if (!jobs_.startEnvironment(*t.cls, t.extra, "", t.env, t.instName, error)) {
    fail(call, wire::ResultCode::USAGE, t.name + ": " + error);
    return false;
  }
  t.label = t.name + (t.instName.empty() ? "" : " (" + t.instName + ")");
  t.wait = !ref.getNoWait();
  return true;
}

Instance* ControlServer::runningInstance(Call& call, const JobTarget& t) {
  Instance* inst = jobs_.findInstance(t.name, t.instName);
  if (!inst || (inst->state == JobState::Waiting && inst->goal == Goal::Stop)) {
    if (!t.cls->def->instance.empty() && !inst)
      fail(call, wire::ResultCode::UNKNOWN_INSTANCE, "unknown instance: " + t.label);
    else
      fail(call, wire::ResultCode::ALREADY_IN_GOAL, "job is not running: " + t.label);
    return nullptr;
  }
  return inst;
}

void ControlServer::handleStart(Call& call, wire::JobRef::Reader ref) {
  JobTarget t;
  if (!needPrivilege(call) || !resolveJob(call, ref, /*forStart=*/true, t)) return;
  if (jobs_.shuttingDown()) return fail(call, wire::ResultCode::FAILED, "batond is shutting down");
  Instance& inst = jobs_.instanceFor(*t.cls, t.instName);
  if (inst.goal == Goal::Start || inst.goal == Goal::Respawn)
    return fail(call, wire::ResultCode::ALREADY_IN_GOAL, "job is already running: " + t.label);
  inst.env = t.env;
  if (t.wait)
    inst.blocking.push_back(
        {Blocked::Kind::Request, 0, hold(*call.conn, call.id, PendingRequest::Kind::Start, t.name, t.instName)});
  jobs_.changeGoal(*t.cls, inst, Goal::Start);
  if (t.wait) return;  // answered when the job reaches its goal or fails
  fillJobStatus(call.resp.initJobs(1)[0], *t.cls, &inst);
  reply(call);
}

void ControlServer::handleStop(Call& call, wire::JobRef::Reader ref) {
  JobTarget t;
  if (!needPrivilege(call) || !resolveJob(call, ref, /*forStart=*/false, t)) return;
  Instance* inst = runningInstance(call, t);
  if (!inst) return;
  if (inst->goal == Goal::Stop)
    return fail(call, wire::ResultCode::ALREADY_IN_GOAL, "job is already stopping: " + t.label);
  inst->stopEnv = t.extra;
  if (t.wait)
    inst->blocking.push_back(
        {Blocked::Kind::Request, 0, hold(*call.conn, call.id, PendingRequest::Kind::Stop, t.name, t.instName)});
  jobs_.changeGoal(*t.cls, *inst, Goal::Stop);
  if (t.wait) return;  // answered when the job has stopped
  fillJobStatus(call.resp.initJobs(1)[0], *t.cls, jobs_.findInstance(t.name, t.instName));
  reply(call);
}

// A running instance goes the way of a respawn (stopping, killed, post-stop, then starting again
// with pre-start); one that is stopping starts again afterwards. Answered when it is running again.
void ControlServer::handleRestart(Call& call, wire::JobRef::Reader ref) {
  JobTarget t;
  if (!needPrivilege(call) || !resolveJob(call, ref, /*forStart=*/false, t)) return;
  Instance* inst = runningInstance(call, t);
  if (!inst) return;
  if (jobs_.shuttingDown()) return fail(call, wire::ResultCode::FAILED, "batond is shutting down");
  if (!t.extra.empty()) inst->env = t.env;
  if (t.wait)
    inst->blocking.push_back(
        {Blocked::Kind::Request, 0, hold(*call.conn, call.id, PendingRequest::Kind::Restart, t.name, t.instName)});
  jobs_.changeGoal(*t.cls, *inst, inst->state == JobState::Running ? Goal::Respawn : Goal::Start);
  if (t.wait) return;
  fillJobStatus(call.resp.initJobs(1)[0], *t.cls, jobs_.findInstance(t.name, t.instName));
  reply(call);
}

void ControlServer::handleReload(Call& call, wire::JobRef::Reader ref) {
  JobTarget t;
  if (!needPrivilege(call) || !resolveJob(call, ref, /*forStart=*/false, t)) return;
  Instance* inst = runningInstance(call, t);
  if (!inst) return;
  if (inst->procs[0].pid <= 0) return fail(call, wire::ResultCode::FAILED, "job has no main process: " + t.label);
  kill(inst->procs[0].pid, inst->def->reloadSignal);
  fillJobStatus(call.resp.initJobs(1)[0], *t.cls, inst);
  reply(call);
}

// =============================================================================================
// Requests: status, list, emit

void ControlServer::handleStatus(Call& call, wire::JobRef::Reader ref) {
  std::string name = ref.getName();
  if (name.empty()) return handleList(call);
  std::vector<std::pair<const JobClass*, const Instance*>> rows;
  auto addClass = [&](const JobClass& cls, const std::string* onlyInstance) {
    if (cls.instances.empty()) {
      if (!onlyInstance || onlyInstance->empty()) rows.push_back({&cls, nullptr});
      return;
    }
    for (auto& [iname, inst] : cls.instances)
      if (!onlyInstance || *onlyInstance == iname) rows.push_back({&cls, &inst});
  };
  JobClass* cls = jobs_.findClass(name);
  if (!cls) return fail(call, wire::ResultCode::UNKNOWN_JOB, "unknown job: " + name);
  std::vector<std::string> extra;
  std::string error, instName;
  if (!splitEnv(ref.getEnv(), extra, error)) return fail(call, wire::ResultCode::USAGE, error);
  if (!cls->def->instance.empty() && !extra.empty()) {
    environ::Table env;
    if (!jobs_.startEnvironment(*cls, extra, "", env, instName, error))
      return fail(call, wire::ResultCode::USAGE, name + ": " + error);
    addClass(*cls, &instName);
    if (rows.empty())
      return fail(call, wire::ResultCode::UNKNOWN_INSTANCE, "unknown instance: " + name + " (" + instName + ")");
  } else {
    addClass(*cls, nullptr);
  }
  auto jobs = call.resp.initJobs(unsigned(rows.size()));
  for (size_t i = 0; i < rows.size(); ++i) fillJobStatus(jobs[unsigned(i)], *rows[i].first, rows[i].second);
  reply(call);
}

void ControlServer::handleList(Call& call) {
  // Every job, in two passes that decode nothing in the map: count the rows (a held class
  // knows its instances), then fill them, reading each held class through one decoded
  // copy at a time (copies of them all would balloon the heap with every list).
  size_t count = 0;
  for (auto& [n, cls] : model_.classes)
    count += std::max<size_t>(1, cls.encoded ? cls.encoded->instanceCount(cls.encodedIndex) : cls.instances.size());
  auto jobs = call.resp.initJobs(unsigned(count));
  JobClass copy;
  unsigned row = 0;
  auto fillRow = [&](const JobClass& c, const Instance* inst) {
    if (row == count) throw std::logic_error("list: more rows than the jobs' instances");
    fillJobStatus(jobs[row++], c, inst);
  };
  for (auto& [n, cls] : model_.classes) {
    const JobClass& c = ClassMap::readOnly(cls, copy);
    if (c.instances.empty()) fillRow(c, nullptr);
    for (auto& [iname, inst] : c.instances) fillRow(c, &inst);
  }
  if (row != count) throw std::logic_error("list: fewer rows than the jobs' instances");
  reply(call);
}

void ControlServer::handleEmit(Call& call, wire::EmitArgs::Reader args) {
  if (!needPrivilege(call)) return;
  std::string name = args.getName();
  std::vector<std::string> env;
  std::string error;
  if (name.empty() || name.find_first_of(" \t\n=") != std::string::npos)
    return fail(call, wire::ResultCode::USAGE, "invalid event name '" + name + "'");
  if (!splitEnv(args.getEnv(), env, error)) return fail(call, wire::ResultCode::USAGE, error);
  uint64_t evId = jobs_.emitEvent(name, env);
  if (!args.getNoWait()) {
    jobs_.findEvent(evId)->waiters.push_back(hold(*call.conn, call.id, PendingRequest::Kind::Emit, name, ""));
    return;  // answered when the event has finished
  }
  call.resp.setEmitted(evId);
  reply(call);
}

// =============================================================================================
// Requests: configuration

void ControlServer::handleShowConfig(Call& call, const std::string& name) {
  // The definitions of the classes shown are read: those are decoded (and only those).
  std::vector<const JobClass*> list;
  for (auto it = model_.classes.begin(); it != model_.classes.end(); ++it) {
    if (!name.empty() && it->first != name) continue;
    const JobClass& cls = model_.classes.decode(it);
    if (!cls.deleted) list.push_back(&cls);
  }
  if (!name.empty() && list.empty()) return fail(call, wire::ResultCode::UNKNOWN_JOB, "unknown job: " + name);
  auto out = call.resp.initConfig(unsigned(list.size()));
  for (size_t i = 0; i < list.size(); ++i) {
    const JobDef& d = *list[i]->def;
    auto c = out[unsigned(i)];
    c.setJob(d.name);
    c.setPath(d.path);
    c.setDescription(d.description);
    c.setStartOn(eventExprToString(d.startOn));
    c.setStopOn(eventExprToString(d.stopOn));
    auto emits = c.initEmits(unsigned(d.emits.size()));
    for (size_t k = 0; k < d.emits.size(); ++k) emits.set(unsigned(k), d.emits[k]);
    c.setInstance(d.instance);
    c.setTask(d.task);
    c.setRespawn(d.respawn);
    auto un = c.initUnsupported(unsigned(d.unsupported.size()));
    for (size_t k = 0; k < d.unsupported.size(); ++k) un.set(unsigned(k), d.unsupported[k]);
  }
  reply(call);
}

// What the files on disk say now (without applying them).
void ControlServer::handleCheckConfig(Call& call) {
  LoadedConfig fresh = loadConfigDir(model_.config.confDir);
  if (!fresh.errors.empty()) {
    call.resp.setCode(wire::ResultCode::FAILED);
    call.resp.setMessage(std::to_string(fresh.errors.size()) + " problem(s) in " + model_.config.confDir);
  }
  replyCheck(call, fresh.errors, fresh.warnings);
}

void ControlServer::handleReloadConfiguration(Call& call) {
  if (!needPrivilege(call)) return;
  jobs_.loadConfiguration();
  std::vector<std::string> problems = model_.configProblems, warnings = jobs_.configWarnings();
  replyCheck(call, problems, warnings);
}

void ControlServer::replyCheck(Call& call, const std::vector<std::string>& problems,
                               const std::vector<std::string>& warnings) {
  auto check = call.resp.initCheck();
  auto p = check.initProblems(unsigned(problems.size()));
  for (size_t i = 0; i < problems.size(); ++i) p.set(unsigned(i), problems[i]);
  auto w = check.initWarnings(unsigned(warnings.size()));
  for (size_t i = 0; i < warnings.size(); ++i) w.set(unsigned(i), warnings[i]);
  reply(call);
}

void ControlServer::handleLogPriority(Call& call, const std::string& priority) {
  if (!priority.empty()) {
    if (!needPrivilege(call)) return;
    if (!parseLogPriority(priority))
      return fail(call, wire::ResultCode::USAGE, "unknown log priority '" + priority + "'");
    model_.config.logPriority = priority;
  }
  call.resp.setLogPriority(model_.config.logPriority);
  reply(call);
}

// =============================================================================================
// Requests: the daemon

void ControlServer::handleVersion(Call& call) {
  call.resp.setVersion(BATON_VERSION);
  reply(call);
}

void ControlServer::handleDaemonStatus(Call& call) {
  auto d = call.resp.initDaemon();
  d.setVersion(BATON_VERSION);
  d.setPid(getpid());
  d.setPid1(pid1_);
  d.setSubreaper(!pid1_);
  d.setJobs(uint32_t(model_.classes.size()));
  d.setInstances(uint32_t(model_.classes.instanceCount()));  // decodes nothing
  d.setEncodedJobs(uint32_t(model_.classes.encodedCount()));
  d.setPendingEvents(uint32_t(model_.events.size()));
  d.setConnections(uint32_t(model_.connections.size()));
  d.setConfDir(model_.config.confDir);
  d.setLogDir(model_.config.logDir);
  d.setSocket(model_.config.socketPath);
  d.setLogPriority(model_.config.logPriority);
  d.setBinary(reexec_.currentBinary());
  d.setDegraded(reexec_.degraded());
  d.setNotifySocket(model_.notifyFd >= 0 ? notifySocketPath(model_.config) : std::string());
  d.setNotifyRefused(model_.notifyRefused);
  d.setNotifyMalformed(model_.notifyMalformed);
  d.setSnapshotFormats("writes " + std::to_string(kSnapshotFormat) + ", reads " + std::to_string(kOldestReadableFormat) +
                       "-" + std::to_string(kSnapshotFormat));
  const Reexec& r = model_.reexec;
  if (r.count > 0 || !r.message.empty()) {
    reexec_.fillReexecOutcome(d.initLastReexec());
  }
  d.setMaxConnections(limits_.maxConnections);
  d.setConnectionsKeptForRoot(limits_.reservedForRoot());
  d.setMaxConnectionsPerUid(limits_.maxConnectionsPerUid);
  d.setMaxUnanswered(limits_.maxUnanswered);
  d.setFrameTimeoutMs(limits_.frameTimeoutMs);
  d.setClientWarningBurst(clientWarnings_.burst());
  d.setClientWarningIntervalMs(uint32_t(clientWarnings_.intervalNs() / 1'000'000));
  d.setCountersSinceNs(imageStartNs_);
  d.setRefusedPerUid(counters_.refusedPerUid);
  d.setRefusedTotal(counters_.refusedTotal);
  d.setRefusedUnanswered(counters_.refusedUnanswered);
  d.setMalformedFrames(counters_.malformedFrames);
  d.setClosedMidFrame(counters_.closedMidFrame);
  d.setDroppedNotReading(counters_.droppedNotReading);
  d.setSuppressedWarnings(clientWarnings_.suppressedTotal());
  reply(call);
}

void ControlServer::handleReexec(Call& call, wire::ReexecArgs::Reader args) {
  if (!needPrivilege(call)) return;
  // Answered by the new binary once it serves (or here if it is aborted before execve).
  reexec_.startReexec({.connId = call.connId,
                       .requestId = call.id,
                       .target = args.getBinary(),
                       .allowDowngradeMapping = args.getAllowDowngradeMapping(),
                       .wantsNotes = args.getWantsNotes(),
                       .testRefuse = args.getTestRefuseRestore(),
                       .testRefuseRollback = args.getTestRefuseRollback()});
}

// The live state, as it would be handed across a re-exec (nothing is changed).
void ControlServer::handleSnapshot(Call& call) {
  if (!needPrivilege(call)) return;
  size_t bytes = 0;
  std::string error;
  sys::Fd fd = writeSnapshot(model_, kSnapshotFormat, sys::monotonicNs(), bytes, error);
  if (!fd) return fail(call, wire::ResultCode::INTERNAL, "snapshot: " + error);
  std::string data(bytes, '\0');
  if (pread(fd.get(), data.data(), bytes, 0) != ssize_t(bytes))
    return fail(call, wire::ResultCode::INTERNAL, "snapshot: " + sys::errnoText(errno));
  call.resp.setSnapshot(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(data.data()), data.size()));
  reply(call);
}

}  // namespace baton
