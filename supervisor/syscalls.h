// The thin seam between batond's logic and the kernel: small wrappers that turn errno into
// values, so the core reads as logic and tests can see what each call does.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>

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
// Write all of `data` (blocking fd), retrying on EINTR. False on error.
bool writeAll(int fd, const void* data, size_t len);
void closeFd(int& fd);                       // close if >= 0 and set to -1
bool isEpollFd(int fd);                      // fd is open and is an epoll instance
bool signalPending(int sig);                 // pending for this thread or the process (sigpending)

// An owned file descriptor (RAII).
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept { reset(o.release()); return *this; }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void reset(int fd = -1);
  explicit operator bool() const { return fd_ >= 0; }
 private:
  int fd_ = -1;
};

}  // namespace baton::sys
