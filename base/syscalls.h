// The thin seam between batond's logic and the kernel: small wrappers that turn errno into
// values, so the core reads as logic and tests can see what each call does.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>

#include "base/fd.h"

namespace baton::sys {

int64_t monotonicNs();                       // CLOCK_MONOTONIC
// Field 22 (starttime, clock ticks since boot) of /proc/PID/stat; 0 if the process is gone.
uint64_t procStartTime(pid_t pid);
// The parent of `pid` (field 4 of /proc/PID/stat; also of a zombie), 0 if it is gone.
pid_t procParentPid(pid_t pid);
bool setCloexec(int fd, bool on);
bool setNonblock(int fd);
// mkdir -p; true if the directory exists afterwards.
bool mkdirs(const std::string& path, mode_t mode = 0755);
std::string errnoText(int err);             // "No such file or directory"
bool readFile(const std::string& path, std::string& out, size_t limit = 1 << 20);
// Write all of `data` (blocking fd), retrying on EINTR. False on error, with errno set.
bool writeAll(int fd, const void* data, size_t len);
// The same on a socket, without SIGPIPE if the peer has gone (send with MSG_NOSIGNAL).
bool sendAll(int fd, const void* data, size_t len);
void closeFd(int& fd);                       // close if >= 0 and set to -1
bool isEpollFd(int fd);                      // fd is open and is an epoll instance

// ---- files batond creates or appends to (as root, in directories others may write to) ----
// Every such file is opened relative to a directory batond opened itself, never through a
// symlink: a link planted where a job log goes would otherwise make PID 1 append to any file.

// `path` as a directory fd (made with mkdirs first if `create`); no fd and `error` if it cannot.
Fd openDirectory(const std::string& path, bool create, std::string& error);
// NAME in the directory `dirFd`, opened to append (created with `mode` if absent). Refused with
// `error` if NAME is a symlink, not a regular file (a FIFO would block PID 1), has other hard
// links (one to a file elsewhere would be written through), or contains a '/'.
Fd openAppendAt(int dirFd, const std::string& name, mode_t mode, std::string& error);
// Replace NAME in `dirFd` with `data`, atomically: written to a new temporary file (O_EXCL, never
// an existing file or link) and synced, then renamed over NAME. False with `error` if any step fails.
bool writeFileAt(int dirFd, const std::string& name, const void* data, size_t len, mode_t mode,
                 std::string& error);
// Non-empty when users other than batond's own can create or replace entries in `dir` (group or
// others may write, or it belongs to another user): what a start-up warning says.
std::string writableByOthers(const std::string& dir);
bool signalPending(int sig);                 // pending for this thread or the process (sigpending)

}  // namespace baton::sys
