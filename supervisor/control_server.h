// The control server: framed Cap'n Proto requests over a Unix stream socket, one handler per
// request type, and the requests held until their outcome.
//
// Connections, their partially read bytes, unsent responses and the requests that wait for a job
// or an event are all model values (Model::connections, Instance::blocking, Event::waiters), so
// they can be carried across a re-exec. Authorization is by SO_PEERCRED: root or the user batond
// runs as may change things; anyone else may only read.
//
// Limits on clients (control_limits.h) bound what any user can make batond hold: connections per
// user and in all (room kept for root), requests waiting per connection, the time a started frame
// may take; warnings about clients are rate-limited. The deadlines and counters are not state.
//
// It owns nothing but what the model holds: the listening socket and the connections are fds in
// Model::listenFd and Model::connections (registered in the shared Watches). It asks the job
// engine to start, stop and emit, and is told through RequestOutcomes when what a request waits
// for has happened.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <capnp/message.h>

#include "schema/control.capnp.h"
#include "schema/model.h"
#include "supervisor/control_limits.h"
#include "supervisor/job_engine.h"
#include "supervisor/log.h"
#include "supervisor/resources.h"

namespace baton {

// What the control server asks of the re-exec. An interface, because the re-exec coordinator
// answers its requests through the control server: it depends on the server, not the reverse.
// A re-exec as asked for (a `reexec` request, or SIGTERM as PID 1 with no client).
struct ReexecOrder {
  uint64_t connId = 0, requestId = 0;  // the client to answer (0: none)
  std::string target;                  // empty: the binary batond was started from
  bool allowDowngradeMapping = false;  // the client agrees to the mappings of a downgrade
  bool wantsNotes = false;             // the client shows interim notes (Response.notes)
  bool testRefuse = false, testRefuseRollback = false;  // test hooks
};

class ReexecRequests {
 public:
  // `reexec`: answered by the new binary once it serves, or by the coordinator if the re-exec is
  // aborted before execve.
  virtual void startReexec(ReexecOrder order) = 0;
  // Non-empty: batond serves in wait-only mode (its state could not be restored), and why.
  virtual const std::string& degraded() const = 0;
  virtual std::string currentBinary() const = 0;
  // The last re-exec (Model::reexec) as `status --daemon` and the `reexec` answer show it.
  virtual void fillReexecOutcome(wire::ReexecOutcome::Builder out) const = 0;

 protected:
  ~ReexecRequests() = default;
};

class ControlServer final : public RequestOutcomes {
 public:
  // Everything by reference is owned by Supervisor and outlives the server; `jobs` may not be
  // constructed yet (it is only stored here). `pid1`: what `status --daemon` reports;
  // `imageStartNs`: when this image started (CLOCK_MONOTONIC), what the counters count from.
  ControlServer(Model& model, const Log& log, Watches& watches, JobEngine& jobs, ReexecRequests& reexec,
                bool pid1, const ControlLimits& limits, int64_t imageStartNs);
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // ---- the socket and its connections ----
  // Bind and listen on Config::socketPath (Model::listenFd). False, with a message, if it cannot.
  bool openControlSocket();
  void acceptConnections();                             // the listening socket is readable
  void onConnection(uint64_t connId, uint32_t events);  // a connection is readable or writable
  Connection* findConnection(uint64_t connId);
  // The epoll mask a connection needs: reads until the client shut down its side, writes while
  // answers are queued. One function, so rearm() and the handlers cannot disagree.
  static uint32_t connectionEvents(const Connection& conn);
  // After rearm() watched the model's connections (start, restore): a connection that holds part
  // of a frame and has no frame deadline yet (a restore) gets one from now.
  void armFrameDeadlines();

  // ---- timers: frame deadlines, the warning summary ----
  int64_t nextDeadlineNs() const;  // 0: none
  void runTimers(int64_t now);

  // ---- answers ----
  void sendResponse(uint64_t connId, capnp::MessageBuilder& message);
  void answerSimple(uint64_t connId, uint64_t requestId, int code, const std::string& message);

  // ---- requests held until their outcome ----
  // `start`, `stop` and `restart` (unless --no-wait) wait for the job to reach its goal, `emit`
  // for its event to finish, `reexec` for the new image to serve. All are held the same way: a
  // PendingRequest on the connection (it keeps a half-closed connection open for the answer),
  // and the RequestRef returned here kept where the outcome comes from (Instance::blocking,
  // Event::waiters, Model::reexec). Both are model values: a held request crosses a re-exec.
  RequestRef hold(Connection& conn, uint64_t requestId, PendingRequest::Kind kind, const std::string& job,
                  const std::string& instance);
  // The re-exec answers its request itself (ReexecOutcome): it only drops the hold.
  void dropHeld(uint64_t connId, uint64_t requestId);
  // RequestOutcomes: a job outcome is answered at the end of the loop iteration, when the state
  // has settled (flushDeferredAnswers; always before a re-exec, so none is lost); an event's now.
  void jobFinished(const RequestRef& request, bool failed) override;
  void eventFinished(const RequestRef& request, bool failed) override;
  void flushDeferredAnswers();

 private:
  void log(Priority p, const std::string& text) const { log_(p, text); }

  void closeConnection(uint64_t connId);
  void flushConnection(Connection& conn);
  // A new connection over a limit: one error frame, written without blocking, then closed.
  // False: accepted (within the limits).
  bool refuseOverLimit(int fd, uint32_t uid, int32_t pid);
  // After reading: a partial frame left in inBuf has a deadline (from its first byte, or from now
  // if `frameTaken`: the partial frame started in this read); none if inBuf is empty.
  void trackPartialFrame(const Connection& conn, bool frameTaken);
  // A warning caused by a client: rate-limited (WarningLimiter), so no client can flood the log.
  void warnAboutClient(const std::string& text);
  void logWarningSummary(int64_t now);
  // The answer to a held job or event request: OK or FAILED, with the job's status.
  void answerHeld(uint64_t connId, uint64_t requestId, bool failed);
  void fillJobStatus(wire::JobStatus::Builder out, const JobClass& cls, const Instance* inst) const;

  // ---- requests: the dispatch, then one handler per request type ----
  // One request being handled: who sent it and the response being built (OK and no payload until
  // a handler says otherwise). A handler either answers (reply or fail) or holds the request.
  struct Call {
    Call(uint64_t connId, Connection& conn, uint64_t id, bool privileged);
    const uint64_t connId;
    Connection* const conn;
    const uint64_t id;
    const bool privileged;  // root or batond's own user
    capnp::MallocMessageBuilder msg;
    wire::Response::Builder resp;
  };
  void handleRequest(uint64_t connId, wire::Request::Reader req);
  void reply(Call& call);
  void fail(Call& call, wire::ResultCode code, const std::string& text);
  bool needPrivilege(Call& call);  // false: refused (answered)

  // What start, stop, restart and reload name: the class, the environment of the request and the
  // instance it names. False: refused (answered).
  struct JobTarget {
    std::string name, instName, label;
    JobClass* cls = nullptr;
    std::vector<std::string> extra;  // the request's KEY=VALUE
    std::vector<std::string> env;    // the start environment, with `extra`
    bool wait = true;
  };
  bool resolveJob(Call& call, wire::JobRef::Reader ref, bool forStart, JobTarget& t);
  // The instance a stop, restart or reload acts on, if it is running; nullptr: refused (answered).
  Instance* runningInstance(Call& call, const JobTarget& t);

  void handleStart(Call& call, wire::JobRef::Reader ref);
  void handleStop(Call& call, wire::JobRef::Reader ref);
  void handleRestart(Call& call, wire::JobRef::Reader ref);
  void handleReload(Call& call, wire::JobRef::Reader ref);
  void handleStatus(Call& call, wire::JobRef::Reader ref);
  void handleList(Call& call);
  void handleEmit(Call& call, wire::EmitArgs::Reader args);
  void handleShowConfig(Call& call, const std::string& name);
  void handleCheckConfig(Call& call);
  void handleReloadConfiguration(Call& call);
  void replyCheck(Call& call, const std::vector<std::string>& problems,
                  const std::vector<std::string>& warnings);
  void handleLogPriority(Call& call, const std::string& priority);
  void handleVersion(Call& call);
  void handleDaemonStatus(Call& call);
  void handleReexec(Call& call, wire::ReexecArgs::Reader args);
  void handleSnapshot(Call& call);

  Model& model_;
  const Log& log_;
  Watches& watches_;
  JobEngine& jobs_;
  ReexecRequests& reexec_;
  const bool pid1_;
  // Held requests whose job reached its goal during this loop iteration, with `failed`.
  std::vector<std::pair<RequestRef, bool>> deferredAnswers_;
  // Limits, counters and deadlines: configuration and diagnostics of this image, not state.
  const ControlLimits limits_;
  const int64_t imageStartNs_;
  ControlCounters counters_;
  WarningLimiter clientWarnings_;
  // Connection id -> when its partial frame must be complete (CLOCK_MONOTONIC ns); only
  // connections holding part of a frame, so a scan is short.
  std::unordered_map<uint64_t, int64_t> frameDeadlines_;
};

}  // namespace baton
