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
bool signalPending(int sig);                 // pending for this thread or the process (sigpending)

}  // namespace baton::sys
