// The readiness-notification socket of `expect notify` jobs (NOTIFY_SOCKET, sd_notify(3)).
//
// One AF_UNIX datagram socket for all jobs, next to the control socket. Jobs send newline-separated
// KEY=VALUE datagrams to it; the kernel stamps each with the sender's pid (SO_PASSCRED), and the
// job engine attributes a message to the job instance whose process the sender is or descends
// from (docs/design.md, "Readiness notification"). The socket is an fd of the model
// (Model::notifyFd): it crosses a re-exec like the control socket, with whatever datagrams are
// queued in it, so each is read exactly once, by the old image or by the new one.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/fd.h"
#include "schema/model.h"

namespace baton {

// Where the socket is: the directory of the control socket, file `notify` (/run/baton/notify).
std::string notifySocketPath(const Config& config);

// A bound, non-blocking, close-on-exec datagram socket at `path` (a stale file there is replaced)
// with SO_PASSCRED, mode 0666: jobs run as any user, and the sender's pid, not the path, decides
// what a message may change. Empty with `error` if it cannot be made.
sys::Fd openNotifySocket(const std::string& path, std::string& error);

struct NotifyDatagram {
  pid_t pid = 0;       // the sender, as the kernel saw it (0: not visible in batond's pid namespace)
  uid_t uid = 0;
  std::string data;    // at most notify::kMaxMessageBytes + 1 bytes
  bool truncated = false;  // it was longer than notify::kMaxMessageBytes
};

// Read one queued datagram; false when none is (or on an error, which the caller cannot act on).
// File descriptors sent along (sd_notify_barrier's BARRIER=1: the sender waits until its fd is
// closed) are closed here, after the datagrams before them were read: a barrier releases its
// sender only once batond has read what the sender sent before it.
bool receiveNotify(int fd, NotifyDatagram& out);

}  // namespace baton
