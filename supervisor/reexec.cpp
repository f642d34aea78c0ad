// Stateful re-exec: the old binary's side (negotiate, serialize, pre-flight, point of no return)
// and the new binary's side (restore, rollback, wait-only). design.md "The re-exec protocol".
//
// Everything before execve is reversible: any failure there is an answer to the client and the
// old binary keeps running with nothing changed.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <capnp/message.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <unordered_set>

#include "migrate/formats.h"
#include "schema/release.h"
#include "migrate/upstart_import.h"
#include "supervisor/helper_run.h"

#include <sys/wait.h>
#include "supervisor/supervisor.h"
#include "base/syscalls.h"

extern char** environ;

namespace baton {

namespace {

constexpr int64_t kNegotiateTimeoutMs = 2000;
constexpr int64_t kPreflightTimeoutMs = 5000;

std::string stripDeleted(std::string path) {
  const std::string suffix = " (deleted)";
  if (path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0)
    path.resize(path.size() - suffix.size());
  return path;
}

}  // namespace

std::string Supervisor::currentBinary() const {
  // The path batond was started from, resolved again now: after a package upgrade the path names
  // the new file (and /proc/self/exe says "(deleted)").
  return stripDeleted(options_.selfPath);
}

void Supervisor::reexecFailed(uint64_t connId, uint64_t requestId, const std::string& why) {
  log(Priority::Error, "re-exec aborted: " + why);
  model_.reexec.ok = false;
  model_.reexec.rolledBack = false;
  model_.reexec.message = why;
  model_.reexec.atNs = sys::monotonicNs();
  if (Connection* conn = findConnection(connId)) {
    auto& p = conn->pending;
    p.erase(std::remove_if(p.begin(), p.end(), [&](const PendingRequest& r) { return r.requestId == requestId; }),
            p.end());
  }
  if (connId == 0) return;
  capnp::MallocMessageBuilder msg;
  auto resp = msg.initRoot<wire::Response>();
  resp.setId(requestId);
  resp.setCode(wire::ResultCode::FAILED);
  resp.setMessage("re-exec aborted, still running the old binary: " + why);
  auto out = resp.initReexec();
  out.setOk(false);
  out.setMessage(why);
  out.setFromBinary(model_.reexec.fromBinary);
  out.setToBinary(model_.reexec.toBinary);
  sendResponse(connId, msg);
}

void Supervisor::startReexec(uint64_t connId, uint64_t requestId, std::string target, bool testRefuse,
                             bool testRefuseRollback) {
  if (target.empty()) target = currentBinary();
  if (reexec_) {
    if (connId) answerSimple(connId, requestId, int(wire::ResultCode::FAILED), "a re-exec is already in progress");
    return;
  }
  Reexec record;
  record.connId = connId;
  record.requestId = requestId;
  record.fromBinary = currentBinary();
  record.toBinary = target;
  record.count = model_.reexec.count;
  model_.reexec = record;
  if (!degraded_.empty()) return reexecFailed(connId, requestId, "batond is in wait-only mode: " + degraded_);
  log(Priority::Message, "re-exec into " + target);
  reexec_.emplace();
  reexec_->connId = connId;
  reexec_->requestId = requestId;
  reexec_->target = target;
  reexec_->testRefuse = testRefuse;
  reexec_->testRefuseRollback = testRefuseRollback;
  // 1. Negotiate the format. batond keeps serving while the target answers.
  startReexecHelper({target, "--state-formats"}, -1, kNegotiateTimeoutMs);
}

void Supervisor::startReexecHelper(const std::vector<std::string>& argv, int passFd, int64_t timeoutMs) {
  ReexecInProgress& r = *reexec_;
  HelperProcess h = startHelper(argv, passFd);
  if (h.pid < 0) return abortReexec("cannot start " + argv[0] + ": " + h.error);
  r.pid = h.pid;
  r.outFd = std::move(h.outFd);
  r.output.clear();
  r.exited = r.eof = r.timedOut = false;
  r.status = 0;
  r.phaseStartNs = sys::monotonicNs();
  r.deadlineNs = r.phaseStartNs + timeoutMs * 1000000;
  model_.helpers.push_back({h.pid, sys::procStartTime(h.pid), argv.size() > 1 ? argv[1] : argv[0]});
  watch(r.outFd.get(), EPOLLIN, {Watch::Kind::HelperOutput});
}

void Supervisor::onHelperOutput() {
  if (!reexec_ || !reexec_->outFd) return;
  ReexecInProgress& r = *reexec_;
  char buf[4096];
  for (;;) {
    ssize_t n = read(r.outFd.get(), buf, sizeof buf);
    if (n > 0) {
      if (r.output.size() < 65536) r.output.append(buf, size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    break;  // EOF or error: the helper closed its output
  }
  unwatch(r.outFd.get());
  r.outFd.reset();
  r.eof = true;
  reexecHelperDone();
}

void Supervisor::onHelperExit(pid_t pid, int status) {
  auto& h = model_.helpers;
  h.erase(std::remove_if(h.begin(), h.end(), [&](const HelperChild& c) { return c.pid == pid; }), h.end());
  if (!reexec_ || reexec_->pid != pid) return;
  reexec_->exited = true;
  reexec_->status = status;
  reexec_->pid = -1;
  reexecHelperDone();
}

void Supervisor::abortReexec(const std::string& why) {
  ReexecInProgress r = std::move(*reexec_);
  reexec_.reset();
  if (r.pid > 0) kill(r.pid, SIGKILL);  // reaped by the loop like any child
  if (r.outFd) unwatch(r.outFd.get());
  reexecFailed(r.connId, r.requestId, why);
}

// A helper has both exited and closed its output: go on to the next phase.
void Supervisor::reexecHelperDone() {
  if (!reexec_ || !reexec_->exited || !reexec_->eof) return;
  ReexecInProgress& r = *reexec_;
  const bool ok = !r.timedOut && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
  const std::string outcome = describeHelperOutcome(r.status, r.timedOut, r.output);
  std::string error;
  if (r.phase == ReexecInProgress::Phase::Negotiate) {
    if (!ok) return abortReexec("target " + r.target + " --state-formats " + outcome);
    StateFormats theirs;
    if (!parseStateFormats(r.output, theirs, error) || !negotiateFormat(theirs, r.format, error))
      return abortReexec("target " + r.target + ": " + error);
    r.handoff = theirs.accepts;
    // 2. Pre-flight: the target checks a snapshot of the state as it is now, while batond keeps
    // serving. The snapshot handed over at the point of no return is written by the same code in
    // the same format a moment later, so the verdict holds for it.
    size_t bytes = 0;
    EncodeHooks record;
    record.record = true;
    r.snapshotFd = serializeFor(r.format, sys::monotonicNs(), bytes, error, nullptr, &record);
    if (!r.snapshotFd) return abortReexec("serialization failed: " + error);
    r.images = classImagesOf(r.snapshotFd.get(), record.extents);
    // Memory for the snapshot handed over, allocated now while batond serves: the window then
    // only writes into it. (Without it, writeSnapshot allocates its own.)
    std::string ignored;
    r.memory.prepare(snapshotReserveFor(model_, bytes), bytes + (64u << 10), ignored);
    r.phase = ReexecInProgress::Phase::Preflight;
    r.preflightStartNs = sys::monotonicNs();
    return startReexecHelper({r.target, "--verify-state", "3"}, r.snapshotFd.get(), kPreflightTimeoutMs);
  }
  r.snapshotFd.reset();
  model_.reexec.preflightNs = sys::monotonicNs() - r.preflightStartNs;
  if (!ok) return abortReexec("pre-flight of " + r.target + " " + outcome);
  pointOfNoReturn();
}

sys::Fd Supervisor::serializeFor(uint32_t format, int64_t t0, size_t& bytes, std::string& error, SnapshotMemory* memory,
                             EncodeHooks* hooks, bool checksum, std::vector<FdEntry>* fdTable) {
  auto lookup = [](const void* ctx, int fd) -> const FdIdentity* {
    return static_cast<const decltype(fdIdentities_)*>(ctx)->find(fd);
  };
  // (A snapshot to be downgraded is rewritten by the migration: nothing to record or place.)
  if (format != kSnapshotFormat) hooks = nullptr, checksum = true;
  sys::Fd snapshot(writeSnapshot(model_, kSnapshotFormat, t0, bytes, error,
                                 {.identity = lookup, .identityCtx = &fdIdentities_, .memory = memory,
                                  .hooks = hooks, .checksum = checksum, .fdTable = fdTable}));
  if (snapshot && format != kSnapshotFormat) {
    // An older target: walk the downgrade steps; one that would lose something is refused here,
    // before the point of no return.
    Snapshot current;
    std::string older;
    if (!current.open(snapshot.get(), error) || !migrateSnapshot(current, format, older, error)) {
      error = "downgrade to format " + std::to_string(format) + ": " + error;
      return {};
    }
    snapshot = sealedMemfd(older, error);
    bytes = older.size();
  }
  return snapshot;
}

void Supervisor::pointOfNoReturn() {
  ReexecInProgress r = std::move(*reexec_);
  reexec_.reset();
  flushDeferredAnswers();
  // 3. Serialize what is handed over. Downtime counts from here: from now on nobody is served
  // until the new binary is ready.
  const int64_t t0 = sys::monotonicNs();
  model_.reexec.serializeStartNs = t0;
  model_.reexec.count++;
  if (Connection* conn = findConnection(r.connId))
    conn->pending.push_back({r.requestId, PendingRequest::Kind::Reexec, "", ""});
  size_t bytes = 0;
  std::string error;
  EncodeHooks place;
  place.images = r.images.get();
  place.markPreverified = r.handoff.has(HandoffOption::PreverifiedClasses);
  // Sealed right after: a target that trusts the seals does not need the checksum either.
  std::vector<FdEntry> fds;  // the handoff table, as written
  sys::Fd snapshot = serializeFor(r.format, t0, bytes, error, &r.memory, &place,
                                 !r.handoff.has(HandoffOption::UnchecksummedHandoff), &fds);
  if (!snapshot) {
    model_.reexec.count--;
    return reexecFailed(r.connId, r.requestId, "serialization failed: " + error);
  }
  const int64_t serializeNs = sys::monotonicNs() - t0;

  // 4. Point of no return: only the fds of the handoff table (plus the snapshot and the pinned
  // binary) lose close-on-exec; every signal stays blocked so nothing is handled in between
  // (pending signals and zombies survive execve).
  std::vector<int> handed;
  for (const FdEntry& e : fds) handed.push_back(e.fd);
  handed.push_back(snapshot.get());
  if (binaryFd_ >= 0) handed.push_back(binaryFd_);
  if (r.handoff.has(HandoffOption::EpollFd)) handed.push_back(epollFd_);
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  // A sweep cut short leaves zombies whose SIGCHLD was already read: make it pending again, so
  // that a pending SIGCHLD is exactly "there may be something to sweep". (The pre-flight's exit,
  // the usual last step before this, is applied after its sweep; an exception in the sweep can
  // still bring the re-exec here from inside it.)
  if (childEventsUnswept_) raise(SIGCHLD);
  for (int fd : handed) sys::setCloexec(fd, false);

  // --logdir/--socket let even a binary that cannot decode the snapshot keep its forensics and
  // serve in wait-only mode at the right place.
  std::vector<std::string> args = {r.target, "--restore-fd", std::to_string(snapshot.get()),
                                   "--logdir", model_.config.logDir, "--socket", model_.config.socketPath};
  if (binaryFd_ >= 0) args.insert(args.end(), {"--rollback-fd", std::to_string(binaryFd_)});
  appendHandoffArgs(args, {.options = r.handoff, .epollFd = epollFd_});
  if (model_.config.testHooks) {
    if (r.testRefuse) args.push_back("--test-refuse-restore");
    if (r.testRefuseRollback) args.push_back("--test-refuse-rollback");
  }
  const int64_t execStart = sys::monotonicNs();
  args.insert(args.end(), {"--reexec-phases", std::to_string(serializeNs) + ":" +
                                                  std::to_string(model_.reexec.preflightNs) + ":" +
                                                  std::to_string(execStart)});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  execve(r.target.c_str(), argv.data(), environ);

  // execve failed: undo everything, nothing was lost.
  int err = errno;
  for (int fd : handed) sys::setCloexec(fd, true);
  sigprocmask(SIG_SETMASK, &old, nullptr);
  model_.reexec.count--;
  reexecFailed(r.connId, r.requestId, "execve " + r.target + ": " + sys::errnoText(err));
}

// ---------------------------------------------------------------------------------------------
// The new binary.

void Supervisor::restore(const RestoreArgs& args) {
  const int64_t tLoad = sys::monotonicNs();
  // Shared: job definitions stay in the mapping until first used (loadSnapshotLazily).
  auto snapshotPtr = std::make_shared<Snapshot>();
  Snapshot& snapshot = *snapshotPtr;
  std::string error;
  Model restored;
  // Sealed by the writer: its checksum was computed over exactly these bytes (Trust::SealedHandoff).
  if (!snapshot.open(args.snapshotFd, error, Snapshot::Trust::SealedHandoff)) restoreFailed(args, error, nullptr);
  // The fd table is compared with the model below, in rearm's pass over every process slot.
  if (!loadSnapshotLazily(snapshotPtr, restored, error, args.handoff.options.has(HandoffOption::PreverifiedClasses),
                          /*checkFdTable=*/false))
    restoreFailed(args, error, snapshot.header().fdCount ? &snapshot.fds() : nullptr);
  const int64_t loadNs = sys::monotonicNs() - tLoad;
  model_.config = restored.config;
  if (args.testRefuseRestore && restored.config.testHooks)
    restoreFailed(args, "test hook: restore refused", &snapshot.fds());

  const int64_t tRestore = sys::monotonicNs();
  if (!checkFdIdentities(snapshot.fds(), error)) restoreFailed(args, error, &snapshot.fds());
  // Every fd batond holds is close-on-exec: one call instead of one fcntl per handed fd.
  if (syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) != 0)
    for (const FdEntry& e : snapshot.fds()) sys::setCloexec(e.fd, true);
  fdIdentities_.clear();
  for (const FdEntry& e : snapshot.fds())
    fdIdentities_[e.fd] = {e.dev, e.ino, e.type};  // just verified: rearm need not fstat again
  const int64_t serializeStart = snapshot.header().serializeStartNs;
  model_ = std::move(restored);
  model_.daemonUid = getuid();
  options_.config = model_.config;
  const int64_t restoreNs = sys::monotonicNs() - tRestore;

  const int64_t tRearm = sys::monotonicNs();
  // Adopt the old image's epoll instance when its registrations mean what ours would: written by
  // this very version (a different one may watch fds differently) and really an epoll.
  const int epollFd = args.handoff.epollFd;
  bool adopt = epollFd >= 0 &&
               std::string(snapshot.header().writerVersion, strnlen(snapshot.header().writerVersion, 16)) ==
                   BATON_VERSION_STRING &&
               sys::isEpollFd(epollFd);
  if (epollFd >= 0 && !adopt) close(epollFd);
  if (!openBaseResources(adopt ? epollFd : -1))
    restoreFailed(args, "cannot create the event loop", &snapshot.fds());
  registrationsAdopted_ = adopt;
  // Invariant 6: a pid is only the job's process if it is the same process.
  std::vector<std::tuple<std::string, std::string, ProcessType>> lost;
  // The fds the state names, to compare with the handoff table: the slots' pipes are added in
  // rearm's pass instead of in a walk of their own.
  std::vector<FdEntry> named = modelFds(model_, /*withSlots=*/false);
  rearm([&](const std::string& job, const std::string& name, ProcessType t, const ProcessSlot& slot,
            TraceState trace) {
    addSlotFds(named, slot);
    // An exit already seen (earlyExit) was reaped before the exec: its pid is free now.
    if (slot.pid <= 0 || slot.startTime == 0 || slot.earlyExit) return;
    // A process batond forked itself stays its child until batond reaps it (execve changes no
    // parentage), so its pid cannot have been recycled: nothing to read. The main process of
    // an `expect` job may be a descendant followed by ptrace: it may have been adopted, died,
    // and its pid been taken by another orphan batond adopted since: check its start time.
    // (traceState tells without touching the definition, which may not be decoded yet.)
    const bool followed = t == ProcessType::Main && trace != TraceState::None;
    if (followed && sys::procStartTime(slot.pid) != slot.startTime) lost.emplace_back(job, name, t);
  });
  registrationsAdopted_ = false;
  if (!checkFdTableMatches(snapshot.fds(), named, error)) restoreFailed(args, error, &snapshot.fds());
  if (adopt && getenv("BATON_CHECK_HANDOFF")) checkAdoptedRegistrations();
  for (auto& [job, name, type] : lost) {
    JobClass* cls = findClass(job);
    Instance* inst = findInstance(job, name);
    ProcessSlot& slot = inst->procs[int(type)];
    log(Priority::Warn, job + " " + processTypeName(type) + " process " + std::to_string(slot.pid) +
                            " is gone (its pid now names another process)");
    pids_.erase(slot.pid);  // never take the pid's new owner for the job's process
    if (slot.spawnValid) {
      // Its status pipe still decides the outcome (exactly once); the exit is what we know.
      slot.earlyExit = true;
      slot.earlyExitStatus = SIGKILL;
    } else {
      onProcessExit(*cls, *inst, type, SIGKILL);
    }
  }
  // Zombies that died during the blind window, then signals: only now may they be handled.
  // (Every such exit left SIGCHLD pending; an old image that promises the same for the events it
  // had not swept says so with --sweep-on-sigchld, and then no pending SIGCHLD means nothing to
  // sweep.)
  if (!args.handoff.options.has(HandoffOption::SigchldSweep) || sys::signalPending(SIGCHLD)) reapChildren();
  sigset_t mask = handledSignals();
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  const int64_t rearmNs = sys::monotonicNs() - tRearm;

  if (args.rollbackFd >= 0) close(args.rollbackFd);
  close(args.snapshotFd);

  Reexec& r = model_.reexec;
  r.serializeNs = args.serializeNs;
  r.preflightNs = args.preflightNs;
  r.execStartNs = args.execStartNs;
  r.loadNs = loadNs;
  r.restoreNs = restoreNs;
  r.rearmNs = rearmNs;
  r.snapshotBytes = snapshot.size();
  r.ok = args.rolledBackBecause.empty();
  r.rolledBack = !args.rolledBackBecause.empty();
  r.message = r.ok ? "" : args.rolledBackBecause;
  r.atNs = sys::monotonicNs();
  r.downtimeNs = r.atNs - serializeStart;
  r.fromBinary = stripDeleted(r.fromBinary);
  log(r.ok ? Priority::Message : Priority::Error,
      r.ok ? "re-exec complete in " + std::to_string(r.downtimeNs / 1000) + " us"
           : "re-exec rolled back: " + r.message);
  answerReexec();
  try {
    pollEvents();
  } catch (const std::exception& e) {
    // As in the loop: an error of one job or event never takes batond down.
    log(Priority::Error, std::string("internal error: ") + e.what());
  }
}

void Supervisor::answerReexec() {
  Reexec& r = model_.reexec;
  Connection* conn = r.connId ? findConnection(r.connId) : nullptr;
  if (!conn) return;
  auto& p = conn->pending;
  p.erase(std::remove_if(p.begin(), p.end(), [&](const PendingRequest& q) { return q.requestId == r.requestId; }),
          p.end());
  capnp::MallocMessageBuilder msg;
  auto resp = msg.initRoot<wire::Response>();
  resp.setId(r.requestId);
  resp.setCode(r.ok ? wire::ResultCode::OK : wire::ResultCode::FAILED);
  if (!r.ok) resp.setMessage("re-exec failed, rolled back to the previous binary: " + r.message);
  fillReexecOutcome(resp.initReexec());
  sendResponse(r.connId, msg);
}

void Supervisor::fillReexecOutcome(wire::ReexecOutcome::Builder out) const {
  const Reexec& r = model_.reexec;
  out.setOk(r.ok);
  out.setMessage(r.message);
  out.setFromBinary(r.fromBinary);
  out.setToBinary(r.toBinary);
  out.setRolledBack(r.rolledBack);
  out.setAtNs(r.atNs);
  out.setSnapshotBytes(r.snapshotBytes);
  auto t = out.initTiming();
  t.setSerializeNs(r.serializeNs);
  t.setPreflightNs(r.preflightNs);
  // execve -> main of this process: known only where the exec landed (ok or rolled back).
  t.setExecNs(r.execStartNs && (r.ok || r.rolledBack) ? options_.mainStartNs - r.execStartNs : 0);
  t.setLoadNs(r.loadNs);
  t.setRestoreNs(r.restoreNs);
  t.setRearmNs(r.rearmNs);
  t.setDowntimeNs(r.downtimeNs);
}

void Supervisor::restoreFailed(const RestoreArgs& args, const std::string& why, const std::vector<FdEntry>* fds) {
  log(Priority::Error, "cannot restore the handed-over state: " + why);
  // Keep what we received for forensics.
  if (args.snapshotFd >= 0) {
    std::string dir = model_.config.logDir;
    Snapshot s;
    std::string ignored;
    struct stat st;
    if (fstat(args.snapshotFd, &st) == 0 && st.st_size > 0) {
      std::string bytes(size_t(st.st_size), '\0');
      if (pread(args.snapshotFd, bytes.data(), bytes.size(), 0) == st.st_size) {
        // A handoff may come without a checksum (the seals stood for it): the file gets one now,
        // so that baton-state reads it like any other snapshot from here on.
        completeChecksum(bytes);
        sys::mkdirs(dir);
        std::string path = dir + "/baton.state.failed";
        int fd = open((path + ".tmp").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
          bool ok = sys::writeAll(fd, bytes.data(), bytes.size());
          close(fd);
          if (ok) rename((path + ".tmp").c_str(), path.c_str());
        }
      }
    }
  }
  // Roll back: the pinned previous binary takes the same, untouched snapshot.
  if (args.rollbackFd >= 0 && args.snapshotFd >= 0) {
    std::vector<std::string> a = {"batond", "--restore-fd", std::to_string(args.snapshotFd),
                                  "--logdir", model_.config.logDir, "--socket", model_.config.socketPath,
                                  "--rolled-back-because", why};
    if (args.testRefuseRollback) a.push_back("--test-refuse-restore");
    std::vector<char*> argv;
    for (std::string& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    sys::setCloexec(args.rollbackFd, true);  // the fd itself need not survive
    // Whatever this binary did with them, the handed fds and the snapshot cross again.
    if (fds)
      for (const FdEntry& e : *fds) sys::setCloexec(e.fd, false);
    sys::setCloexec(args.snapshotFd, false);
    fexecve(args.rollbackFd, argv.data(), environ);
    log(Priority::Error, "rollback to the previous binary failed: " + sys::errnoText(errno));
  }
  // Last resort: wait-only mode. Never start jobs afresh on top of live children: reap them, keep
  // the control socket, and tell every client why.
  degraded_ = "state could not be restored (" + why + ")";
  int listenFd = -1;
  if (fds) {
    for (const FdEntry& e : *fds) {
      struct stat st;
      bool same = fstat(e.fd, &st) == 0 && uint64_t(st.st_ino) == e.ino && uint64_t(st.st_dev) == e.dev;
      if (e.role == uint32_t(FdRole::Listen) && same) listenFd = e.fd;
      else if (same) close(e.fd);  // pipes and connections we can no longer serve
    }
  }
  if (args.snapshotFd >= 0) close(args.snapshotFd);
  Config keep = model_.config;
  model_ = Model{};
  model_.config = keep;
  model_.daemonUid = getuid();
  if (listenFd >= 0) sys::setCloexec(listenFd, true);
  model_.listenFd = listenFd;
  if (epollFd_ < 0 && !openBaseResources()) {
    for (;;) pause();  // nothing else is possible; PID 1 must not exit
  }
  if (model_.listenFd < 0 && !openControlSocket()) log(Priority::Error, "no control socket in wait-only mode");
  rearm();
  reapChildren();
  sigset_t mask = handledSignals();
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  log(Priority::Fatal, "wait-only mode: " + degraded_);
  run();
  _exit(0);
}

}  // namespace baton

// ---------------------------------------------------------------------------------------------
// Taking over from Upstart 1.x (its `--restart --state-fd N` contract).

namespace baton {

namespace {

// Read the whole state from the pipe Upstart's writer child fills, under a deadline (Upstart's
// own reader has none and can hang).
bool readStateFd(int fd, std::string& out, std::string& error) {
  const int64_t deadline = sys::monotonicNs() + int64_t(10) * 1000000000;
  sys::setNonblock(fd);
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, size_t(n));
      if (out.size() > (size_t(256) << 20)) {
        error = "state larger than 256 MiB";
        return false;
      }
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      error = "reading the state fd: " + sys::errnoText(errno);
      return false;
    }
    int64_t left = (deadline - sys::monotonicNs()) / 1000000;
    if (left <= 0) {
      error = "the state did not arrive within 10 s";
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, int(left));
  }
}

}  // namespace

bool Supervisor::takeOverFromUpstart(int stateFd) {
  std::string json, error;
  UpstartImport imported;
  bool ok = readStateFd(stateFd, json, error) && importUpstartState(json, imported, error);
  close(stateFd);
  if (!ok) {
    log(Priority::Error, "cannot take over Upstart's state: " + error +
                             "; starting without it and without the startup event (no job is started twice)");
    return start(/*emitStartup=*/false);
  }
  for (const std::string& w : imported.warnings) log(Priority::Warn, "Upstart state: " + w);
  log(Priority::Message, "took over from Upstart: " + std::to_string(imported.model.classes.size()) +
                             " jobs imported, " + std::to_string(imported.warnings.size()) + " warnings");
  Config config = model_.config;
  model_ = std::move(imported.model);
  model_.config = config;
  model_.daemonUid = getuid();
  model_.bootTimeNs = sys::monotonicNs();
  for (int32_t fd : imported.adoptedFds) sys::setCloexec(fd, true);
  for (const UpstartFd& u : imported.unadoptedFds) {
    log(Priority::Info, "closing fd " + std::to_string(u.fd) + " Upstart left open (" + u.what + ")");
    close(u.fd);
  }
  if (!openBaseResources() || !openControlSocket()) return false;
  rearm();
  // Upstart stored pids without an identity: record it now for the ones that are alive; a pid
  // that is gone ended during the handover.
  for (auto& [job, cls] : model_.classes)
    for (auto& [name, inst] : cls.instances)
      for (int t = 0; t < kProcessTypes; ++t) {
        ProcessSlot& slot = inst.procs[t];
        if (slot.pid <= 0) continue;
        slot.startTime = sys::procStartTime(slot.pid);
        if (slot.startTime != 0) continue;
        log(Priority::Warn, job + " " + processTypeName(ProcessType(t)) + " process " + std::to_string(slot.pid) +
                                " is gone");
        pids_.erase(slot.pid);
        if (slot.spawnValid) {
          slot.earlyExit = true;
          slot.earlyExitStatus = SIGKILL;
        } else if (!slot.earlyExit) {
          onProcessExit(cls, inst, ProcessType(t), SIGKILL);
        }
      }
  // Instances Upstart left in a transient state resume with that state's entry action.
  for (auto& [job, cls] : model_.classes)
    for (auto& [name, inst] : cls.instances) {
      JobState s = inst.state;
      if (s == JobState::PreStarting || s == JobState::Spawning || s == JobState::PostStarting ||
          s == JobState::PreStopping || s == JobState::PostStopping) {
        inst.state = JobState(int(s) - 1);  // the state before it, so that entering it runs again
        changeState(cls, inst, s);
      }
    }
  sys::mkdirs(model_.config.logDir);
  loadConfiguration();  // this host's job files: newer definitions apply to the next start
  reapChildren();
  sigset_t mask = handledSignals();
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  pollEvents();
  return true;
}

}  // namespace baton
