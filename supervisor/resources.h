// The live resources batond builds from the model and its parts share: the epoll set with what
// each registration stands for (Watches), and the pid table (which job process a pid is).
//
// The Model holds values (fd numbers, pids). These tables are what the values mean to the running
// image; Supervisor owns them, rebuilds them from the model (Supervisor::rearm, which is what a
// restore after a re-exec calls) and lends them to the parts by reference: each part registers
// and drops its own fds and pids here, and the loop dispatches on the Watch::Kind.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <memory_resource>
#include <string>
#include <unordered_map>

#include "base/fd.h"
#include "base/fd_map.h"
#include "schema/model.h"
#include "serialize/snapshot.h"
#include "supervisor/log.h"

namespace baton {

// The signals batond handles through its signalfd (blocked otherwise).
sigset_t handledSignals();

// What an epoll registration stands for.
struct Watch {
  enum class Kind { Signal, Listen, Connection, StatusPipe, ScriptPipe, LogPipe, HelperOutput, Notify } kind;
  std::string job, instance;  // StatusPipe/ScriptPipe
  ProcessType process = ProcessType::Main;
  uint64_t connId = 0;        // Connection
  uint32_t events = 0;        // the epoll mask registered for it
};

// The epoll set, one Watch per registered fd, and the identity of every watched fd.
class Watches {
 public:
  explicit Watches(const Log& log) : log_(log) {}
  Watches(const Watches&) = delete;
  Watches& operator=(const Watches&) = delete;

  // A new epoll instance, or the one the old image handed across the exec (adoptFd >= 0). The
  // set owns it from here on. False (errno set) if none could be made.
  bool open(int adoptFd);
  int epollFd() const { return epollFd_.get(); }

  void watch(int fd, uint32_t events, Watch w);
  void unwatch(int fd);
  void modify(int fd, uint32_t events);
  const Watch* find(int fd) const { return watches_.find(fd); }
  bool contains(int fd) const { return watches_.contains(fd); }

  // Before a rearm: every Watch is dropped (the kernel's registrations stay), room is made for as
  // many as there are known fds. The identities stay: after a restore they hold the verified
  // handoff table.
  void forgetWatches();
  // Identity of every watched fd, taken when it was registered: what the handoff table records.
  FdMap<FdIdentity>& identities() { return fdIdentities_; }
  const FdMap<FdIdentity>& identities() const { return fdIdentities_; }

  // During the rearm() of a restore into an adopted epoll: the registrations already exist, so
  // watch() records without registering (except the signalfd, new in every image).
  void setAdopted(bool adopted) { registrationsAdopted_ = adopted; }
  // Compare the adopted registrations with the watches; report and repair a difference.
  void checkAdopted();

 private:
  const Log& log_;
  sys::Fd epollFd_;
  bool registrationsAdopted_ = false;
  // The fd-indexed tables are one vector each (FdMap).
  FdMap<Watch> watches_;
  FdMap<FdIdentity> fdIdentities_;
};

// Which job process a pid is.
struct ProcKey {
  std::string job, instance;
  ProcessType process;
};
using PidTable = std::pmr::unordered_map<pid_t, ProcKey>;

}  // namespace baton
