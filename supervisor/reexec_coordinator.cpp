// The re-exec coordinator; see reexec_coordinator.h. The protocol reads top to bottom: the old
// image (steps 1-4), the new image (steps 5-7), the rollback; docs/design.md, "The re-exec
// protocol", has the same numbers.
//
// Everything before execve is reversible: any failure there is an answer to the client and the
// old binary keeps running with nothing changed.
#include "supervisor/reexec_coordinator.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/auxv.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <capnp/message.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include "base/syscalls.h"
#include "migrate/formats.h"
#include "schema/release.h"
#include "supervisor/helper_run.h"

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

ReexecCoordinator::ReexecCoordinator(Model& model, const Log& log, Watches& watches, PidTable& pids,
                                     JobEngine& jobs, ControlServer& control, ReexecHost& host,
                                     std::string selfPath, int64_t mainStartNs)
    : model_(model),
      log_(log),
      watches_(watches),
      pids_(pids),
      jobs_(jobs),
      control_(control),
      host_(host),
      selfPath_(std::move(selfPath)),
      mainStartNs_(mainStartNs) {}

ReexecCoordinator::~ReexecCoordinator() {
  if (binaryFd_ >= 0) close(binaryFd_);
}

void ReexecCoordinator::pinBinary() {
  // Pin this binary now: after a package upgrade its path names another file, but a failed
  // re-exec must be able to come back to exactly this one.
  binaryFd_ = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  // Without /proc (PID 1 of a system that has not mounted it yet): the path the kernel executed,
  // which names this binary until something replaces it, as nothing has yet at this point.
  if (binaryFd_ < 0) {
    if (const char* execfn = reinterpret_cast<const char*>(getauxval(AT_EXECFN)); execfn && execfn[0] == '/')
      binaryFd_ = open(execfn, O_RDONLY | O_CLOEXEC);
  }
}

std::string ReexecCoordinator::currentBinary() const {
  // The path batond was started from, resolved again now: after a package upgrade the path names
  // the new file (and /proc/self/exe says "(deleted)").
  return stripDeleted(selfPath_);
}

// =============================================================================================
// The old image: steps 1-4, while batond serves until the point of no return

void ReexecCoordinator::startReexec(ReexecOrder order) {
  const uint64_t connId = order.connId, requestId = order.requestId;
  const std::string target = order.target.empty() ? currentBinary() : order.target;
  if (reexec_) {
    if (connId)
      control_.answerSimple(connId, requestId, int(wire::ResultCode::FAILED), "a re-exec is already in progress");
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
  // From a value: clang takes a nested struct with member initializers as not default
  // constructible where the enclosing class declares the optional (CWG 1397).
  reexec_.emplace(ReexecInProgress{});
  reexec_->connId = connId;
  reexec_->requestId = requestId;
  reexec_->target = target;
  reexec_->testRefuse = order.testRefuse;
  reexec_->testRefuseRollback = order.testRefuseRollback;
  reexec_->allowDowngradeMapping = order.allowDowngradeMapping;
  reexec_->wantsNotes = order.wantsNotes;
  // Step 1 (docs/design.md): negotiate the format. batond keeps serving while the target answers.
  startReexecHelper({target, "--state-formats"}, -1, kNegotiateTimeoutMs);
}

// The helpers of steps 1 and 2 (`TARGET --state-formats`, `TARGET --verify-state 3`) run while
// batond serves; a phase is over once its helper has exited and closed its output, or timed out.

void ReexecCoordinator::startReexecHelper(const std::vector<std::string>& argv, int passFd, int64_t timeoutMs) {
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
  watches_.watch(r.outFd.get(), EPOLLIN, {Watch::Kind::HelperOutput});
}

void ReexecCoordinator::onHelperOutput() {
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
  watches_.unwatch(r.outFd.get());
  r.outFd.reset();
  r.eof = true;
  reexecHelperDone();
}

void ReexecCoordinator::onHelperExit(pid_t pid, int status) {
  auto& h = model_.helpers;
  h.erase(std::remove_if(h.begin(), h.end(), [&](const HelperChild& c) { return c.pid == pid; }), h.end());
  if (!reexec_ || reexec_->pid != pid) return;
  reexec_->exited = true;
  reexec_->status = status;
  reexec_->pid = -1;
  reexecHelperDone();
}

void ReexecCoordinator::runTimer(int64_t now) {
  if (reexec_ && reexec_->deadlineNs && reexec_->deadlineNs <= now) {
    // The re-exec target's helper did not answer in time: kill it; its exit ends the phase.
    reexec_->deadlineNs = 0;
    reexec_->timedOut = true;
    if (reexec_->pid > 0) {
      kill(reexec_->pid, SIGKILL);
    } else if (reexec_->outFd) {
      // It exited, but something it left behind still holds its output open: stop listening.
      watches_.unwatch(reexec_->outFd.get());
      reexec_->outFd.reset();
      reexec_->eof = true;
      reexecHelperDone();
    }
  }
}

// A helper has both exited and closed its output: its phase is over.
void ReexecCoordinator::reexecHelperDone() {
  if (!reexec_ || !reexec_->exited || !reexec_->eof) return;
  ReexecInProgress& r = *reexec_;
  const bool ok = !r.timedOut && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
  const std::string outcome = describeHelperOutcome(r.status, r.timedOut, r.output);
  if (r.phase == ReexecInProgress::Phase::Negotiate) return negotiated(ok, outcome);
  preflightDone(ok, outcome);
}

// Step 1 ends: the target said which snapshot formats it reads and which handoff options it
// accepts.
void ReexecCoordinator::negotiated(bool ok, const std::string& outcome) {
  ReexecInProgress& r = *reexec_;
  std::string error;
  if (!ok) return abortReexec("target " + r.target + " --state-formats " + outcome);
  StateFormats theirs;
  if (!parseStateFormats(r.output, theirs, error) || !negotiateFormat(theirs, r.format, error))
    return abortReexec("target " + r.target + ": " + error);
  r.handoff = theirs.accepts;
  // Step 2 (docs/design.md): pre-flight. The target checks a snapshot of the state as it is now,
  // while batond keeps serving. The snapshot handed over at the point of no return is written by
  // the same code in the same format a moment later, so the verdict holds for it.
  // A downgrade the older format cannot take is refused here, while nothing has been touched.
  size_t bytes = 0;
  EncodeHooks record;
  record.record = true;
  MigrationNotes notes{.mayMap = r.allowDowngradeMapping};
  r.snapshotFd = serializeFor(r.format, sys::monotonicNs(), bytes, error, notes, nullptr, &record);
  if (!r.snapshotFd) return abortReexec("serialization failed: " + error);
  r.mapped = std::move(notes.mapped);
  if (r.format != kSnapshotFormat) tellDowngrade(r);
  r.images = classImagesOf(r.snapshotFd.get(), record.extents);
  // Memory for the snapshot handed over, allocated now while batond serves: the window then
  // only writes into it. (Without it, writeSnapshot allocates its own.)
  std::string ignored;
  r.memory.prepare(snapshotReserveFor(model_, bytes), bytes + (64u << 10), ignored);
  r.phase = ReexecInProgress::Phase::Preflight;
  r.preflightStartNs = sys::monotonicNs();
  return startReexecHelper({r.target, "--verify-state", "3"}, r.snapshotFd.get(), kPreflightTimeoutMs);
}

// Step 2 ends: the target's verdict on the pre-flight snapshot.
void ReexecCoordinator::preflightDone(bool ok, const std::string& outcome) {
  ReexecInProgress& r = *reexec_;
  r.snapshotFd.reset();
  model_.reexec.preflightNs = sys::monotonicNs() - r.preflightStartNs;
  if (!ok) return abortReexec("pre-flight of " + r.target + " " + outcome);
  pointOfNoReturn();
}

void ReexecCoordinator::tellDowngrade(const ReexecInProgress& r) {
  std::vector<std::string> notes = {"format: " + formatPath(kSnapshotFormat, r.format)};
  for (const std::string& m : r.mapped) notes.push_back("mapped: " + m);
  for (const std::string& n : notes) log(Priority::Message, "re-exec into " + r.target + ": " + n);
  if (!r.wantsNotes || !control_.findConnection(r.connId)) return;
  capnp::MallocMessageBuilder msg;
  auto resp = msg.initRoot<wire::Response>();
  resp.setId(r.requestId);
  auto list = resp.initNotes(unsigned(notes.size()));
  for (size_t i = 0; i < notes.size(); ++i) list.set(unsigned(i), notes[i]);
  control_.sendResponse(r.connId, msg);
}

sys::Fd ReexecCoordinator::serializeFor(uint32_t format, int64_t t0, size_t& bytes, std::string& error,
                                        MigrationNotes& notes, SnapshotMemory* memory, EncodeHooks* hooks,
                                        bool checksum, std::vector<FdEntry>* fdTable) {
  auto lookup = [](const void* ctx, int fd) -> const FdIdentity* {
    return static_cast<const FdMap<FdIdentity>*>(ctx)->find(fd);
  };
  // (A snapshot to be downgraded is rewritten by the migration: nothing to record or place.)
  if (format != kSnapshotFormat) hooks = nullptr, checksum = true;
  sys::Fd snapshot(writeSnapshot(model_, kSnapshotFormat, t0, bytes, error,
                                 {.identity = lookup, .identityCtx = &watches_.identities(), .memory = memory,
                                  .hooks = hooks, .checksum = checksum, .fdTable = fdTable}));
  if (snapshot && format != kSnapshotFormat) {
    // An older target: walk the downgrade steps; one that would lose something is refused here,
    // before the point of no return.
    Snapshot current;
    std::string older;
    if (!current.open(snapshot.get(), error) || !migrateSnapshot(current, format, older, error, &notes)) {
      error = "downgrade to format " + std::to_string(format) + ": " + error;
      return {};
    }
    if (fdTable)  // as migrateSnapshot wrote it: without the fds of roles the target does not know
      dropFdsNewerThan(*fdTable, format);
    snapshot = sealedMemfd(older, error);
    bytes = older.size();
  }
  return snapshot;
}

void ReexecCoordinator::pointOfNoReturn() {
  ReexecInProgress r = std::move(*reexec_);
  reexec_.reset();
  control_.flushDeferredAnswers();
  // Step 3 (docs/design.md): serialize what is handed over. Downtime counts from here: from now
  // on nobody is served until the new binary is ready.
  const int64_t t0 = sys::monotonicNs();
  model_.reexec.serializeStartNs = t0;
  model_.reexec.count++;
  // Held like any request that waits (Model::reexec already names it): the new image answers it.
  if (Connection* conn = control_.findConnection(r.connId))
    control_.hold(*conn, r.requestId, PendingRequest::Kind::Reexec, "", "");
  size_t bytes = 0;
  std::string error;
  EncodeHooks place;
  place.images = r.images.get();
  place.markPreverified = r.handoff.has(HandoffOption::PreverifiedClasses);
  // Sealed right after: a target that trusts the seals does not need the checksum either.
  std::vector<FdEntry> fds;  // the handoff table, as written
  MigrationNotes notes{.mayMap = r.allowDowngradeMapping};
  sys::Fd snapshot = serializeFor(r.format, t0, bytes, error, notes, &r.memory, &place,
                                 !r.handoff.has(HandoffOption::UnchecksummedHandoff), &fds);
  if (snapshot && notes.mapped != r.mapped) {
    snapshot.reset();
    error = "the jobs changed during the pre-flight: the downgrade would map other jobs than the client was told; retry";
  }
  if (!snapshot) {
    model_.reexec.count--;
    return reexecFailed(r.connId, r.requestId, "serialization failed: " + error);
  }
  const int64_t serializeNs = sys::monotonicNs() - t0;

  // Step 4 (docs/design.md): point of no return. Only the fds of the handoff table (plus the
  // snapshot and the pinned binary) lose close-on-exec; every signal stays blocked so nothing is
  // handled in between (pending signals and zombies survive execve).
  std::vector<int> handed;
  for (const FdEntry& e : fds) handed.push_back(e.fd);
  handed.push_back(snapshot.get());
  if (binaryFd_ >= 0) handed.push_back(binaryFd_);
  if (r.handoff.has(HandoffOption::EpollFd)) handed.push_back(watches_.epollFd());
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  // A sweep cut short leaves zombies whose SIGCHLD was already read: make it pending again, so
  // that a pending SIGCHLD is exactly "there may be something to sweep". (The pre-flight's exit,
  // the usual last step before this, is applied after its sweep; an exception in the sweep can
  // still bring the re-exec here from inside it.)
  if (host_.childEventsUnswept()) raise(SIGCHLD);
  for (int fd : handed) sys::setCloexec(fd, false);

  std::vector<std::string> args = targetArgs(r, snapshot, serializeNs);
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

// The target's command line: the snapshot and what else crosses the exec, and the timings so far.
std::vector<std::string> ReexecCoordinator::targetArgs(const ReexecInProgress& r, const sys::Fd& snapshot,
                                                       int64_t serializeNs) const {
  // --logdir/--socket let even a binary that cannot decode the snapshot keep its forensics and
  // serve in wait-only mode at the right place.
  std::vector<std::string> args = {r.target, "--restore-fd", std::to_string(snapshot.get()),
                                   "--logdir", model_.config.logDir, "--socket", model_.config.socketPath};
  if (binaryFd_ >= 0) args.insert(args.end(), {"--rollback-fd", std::to_string(binaryFd_)});
  appendHandoffArgs(args, {.options = r.handoff, .epollFd = watches_.epollFd()});
  if (model_.config.testHooks) {
    if (r.testRefuse) args.push_back("--test-refuse-restore");
    if (r.testRefuseRollback) args.push_back("--test-refuse-rollback");
  }
  const int64_t execStart = sys::monotonicNs();
  args.insert(args.end(), {"--reexec-phases", std::to_string(serializeNs) + ":" +
                                                  std::to_string(model_.reexec.preflightNs) + ":" +
                                                  std::to_string(execStart)});
  return args;
}

// A failure before the point of no return: an answer to the client; the old image goes on.

void ReexecCoordinator::abortReexec(const std::string& why) {
  ReexecInProgress r = std::move(*reexec_);
  reexec_.reset();
  if (r.pid > 0) kill(r.pid, SIGKILL);  // reaped by the loop like any child
  if (r.outFd) watches_.unwatch(r.outFd.get());
  reexecFailed(r.connId, r.requestId, why);
}

void ReexecCoordinator::reexecFailed(uint64_t connId, uint64_t requestId, const std::string& why) {
  log(Priority::Error, "re-exec aborted: " + why);
  model_.reexec.ok = false;
  model_.reexec.rolledBack = false;
  model_.reexec.message = why;
  model_.reexec.atNs = sys::monotonicNs();
  control_.dropHeld(connId, requestId);
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
  control_.sendResponse(connId, msg);
}

// =============================================================================================
// The new image: steps 5-7

void ReexecCoordinator::restore(const RestoreArgs& args) {
  // Step 5.2-5.5 (docs/design.md): restore: map the snapshot and check it (job classes stay encoded in
  // the mapping until first used), verify every handed fd by identity, then take the model over.
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
  watches_.identities().clear();
  for (const FdEntry& e : snapshot.fds())
    watches_.identities()[e.fd] = {e.dev, e.ino, e.type};  // just verified: rearm need not fstat again
  const int64_t serializeStart = snapshot.header().serializeStartNs;
  model_ = std::move(restored);
  model_.daemonUid = getuid();
  const int64_t restoreNs = sys::monotonicNs() - tRestore;

  // Step 5.6-5.10 (docs/design.md): rearm: the loop's resources from the model (in the old image's
  // epoll set when it can be adopted), followed pids checked, the children swept, then signals.
  const int64_t tRearm = sys::monotonicNs();
  // Adopt the old image's epoll instance when its registrations mean what ours would: written by
  // this very version (a different one may watch fds differently) and really an epoll.
  const int epollFd = args.handoff.epollFd;
  bool adopt = epollFd >= 0 &&
               std::string(snapshot.header().writerVersion, strnlen(snapshot.header().writerVersion, 16)) ==
                   BATON_VERSION_STRING &&
               sys::isEpollFd(epollFd);
  if (epollFd >= 0 && !adopt) close(epollFd);
  if (!host_.openBaseResources(adopt ? epollFd : -1))
    restoreFailed(args, "cannot create the event loop", &snapshot.fds());
  watches_.setAdopted(adopt);
  // Invariant 6 (docs/design.md): a pid is only the job's process if it is the same process.
  std::vector<std::tuple<std::string, std::string, ProcessType>> lost;
  // The fds the state names, to compare with the handoff table: the slots' pipes are added in
  // rearm's pass instead of in a walk of their own.
  std::vector<FdEntry> named = modelFds(model_, /*withSlots=*/false);
  host_.rearm([&](const std::string& job, const std::string& name, ProcessType t, const ProcessSlot& slot,
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
  watches_.setAdopted(false);
  if (!checkFdTableMatches(snapshot.fds(), named, error)) restoreFailed(args, error, &snapshot.fds());
  if (adopt && getenv("BATON_CHECK_HANDOFF")) watches_.checkAdopted();
  for (auto& [job, name, type] : lost) {
    JobClass* cls = jobs_.findClass(job);  // decoded: its instance is changed
    Instance* inst = jobs_.findInstance(job, name);
    ProcessSlot& slot = inst->procs[int(type)];
    log(Priority::Warn, job + " " + processTypeName(type) + " process " + std::to_string(slot.pid) +
                            " is gone (its pid now names another process)");
    pids_.erase(slot.pid);  // never take the pid's new owner for the job's process
    if (slot.spawnValid) {
      // Its status pipe still decides the outcome (exactly once); the exit is what we know.
      slot.earlyExit = true;
      slot.earlyExitStatus = SIGKILL;
    } else {
      jobs_.onProcessExit(*cls, *inst, type, SIGKILL);
    }
  }
  // Zombies that died during the blind window, then signals: only now may they be handled.
  // (Every such exit left SIGCHLD pending; an old image that promises the same for the events it
  // had not swept says so with --sweep-on-sigchld, and then no pending SIGCHLD means nothing to
  // sweep.)
  if (!args.handoff.options.has(HandoffOption::SigchldSweep) || sys::signalPending(SIGCHLD)) host_.reapChildren();
  sigset_t mask = handledSignals();
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  const int64_t rearmNs = sys::monotonicNs() - tRearm;

  if (args.rollbackFd >= 0) close(args.rollbackFd);
  close(args.snapshotFd);

  // Step 5.11-5.12 (docs/design.md): serve again: record the re-exec, answer the client that asked for
  // it, and go on with the events that waited (the loop runs next).
  Reexec& r = model_.reexec;
  r.serializeNs = args.serializeNs;
  r.preflightNs = args.preflightNs;
  r.execStartNs = args.execStartNs;
  r.loadNs = loadNs;
  r.restoreNs = restoreNs;
  r.rearmNs = rearmNs;
  r.snapshotBytes = snapshot.size();
  r.formatPath = formatPath(snapshot.header().format, kSnapshotFormat);
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
    jobs_.pollEvents();
  } catch (const std::exception& e) {
    // As in the loop: an error of one job or event never takes batond down.
    log(Priority::Error, std::string("internal error: ") + e.what());
  }
}

void ReexecCoordinator::answerReexec() {
  Reexec& r = model_.reexec;
  if (!r.connId || !control_.findConnection(r.connId)) return;
  control_.dropHeld(r.connId, r.requestId);
  capnp::MallocMessageBuilder msg;
  auto resp = msg.initRoot<wire::Response>();
  resp.setId(r.requestId);
  resp.setCode(r.ok ? wire::ResultCode::OK : wire::ResultCode::FAILED);
  if (!r.ok) resp.setMessage("re-exec failed, rolled back to the previous binary: " + r.message);
  fillReexecOutcome(resp.initReexec());
  control_.sendResponse(r.connId, msg);
}

void ReexecCoordinator::fillReexecOutcome(wire::ReexecOutcome::Builder out) const {
  const Reexec& r = model_.reexec;
  out.setOk(r.ok);
  out.setMessage(r.message);
  out.setFromBinary(r.fromBinary);
  out.setToBinary(r.toBinary);
  out.setRolledBack(r.rolledBack);
  out.setAtNs(r.atNs);
  out.setSnapshotBytes(r.snapshotBytes);
  out.setFormatPath(r.formatPath);
  auto t = out.initTiming();
  t.setSerializeNs(r.serializeNs);
  t.setPreflightNs(r.preflightNs);
  // execve -> main of this process: known only where the exec landed (ok or rolled back).
  t.setExecNs(r.execStartNs && (r.ok || r.rolledBack) ? mainStartNs_ - r.execStartNs : 0);
  t.setLoadNs(r.loadNs);
  t.setRestoreNs(r.restoreNs);
  t.setRearmNs(r.rearmNs);
  t.setDowntimeNs(r.downtimeNs);
}

// =============================================================================================
// Rollback: the new image cannot restore the state it was handed

void ReexecCoordinator::restoreFailed(const RestoreArgs& args, const std::string& why,
                                      const std::vector<FdEntry>* fds) {
  log(Priority::Error, "cannot restore the handed-over state: " + why);
  // Step 6.1 (docs/design.md), rollback: keep what we received for forensics.
  if (args.snapshotFd >= 0) {
    std::string dir = model_.config.logDir;
    struct stat st;
    if (fstat(args.snapshotFd, &st) == 0 && st.st_size > 0) {
      std::string bytes(size_t(st.st_size), '\0');
      if (pread(args.snapshotFd, bytes.data(), bytes.size(), 0) == st.st_size) {
        // A handoff may come without a checksum (the seals stood for it): the file gets one now,
        // so that baton-state reads it like any other snapshot from here on.
        completeChecksum(bytes);
        // In a directory others may write to: a new temporary file, renamed over the old copy.
        std::string error;
        sys::Fd dirFd = sys::openDirectory(dir, /*create=*/true, error);
        if (!dirFd || !sys::writeFileAt(dirFd.get(), "baton.state.failed", bytes.data(), bytes.size(), 0600, error))
          log(Priority::Error, "cannot keep the snapshot in " + dir + ": " + error);
      }
    }
  }
  // Step 6.2 (docs/design.md), rollback: the pinned previous binary takes the same, untouched snapshot.
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
  // Step 7 (docs/design.md), the last resort: wait-only mode. Never start jobs afresh on top
  // of live children: reap them, keep the control socket, and tell every client why.
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
  if (watches_.epollFd() < 0 && !host_.openBaseResources(-1)) {
    for (;;) pause();  // nothing else is possible; PID 1 must not exit
  }
  if (model_.listenFd < 0 && !control_.openControlSocket()) log(Priority::Error, "no control socket in wait-only mode");
  host_.rearm(nullptr);
  host_.reapChildren();
  sigset_t mask = handledSignals();
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  log(Priority::Fatal, "wait-only mode: " + degraded_);
  host_.run();
  _exit(0);
}

}  // namespace baton
