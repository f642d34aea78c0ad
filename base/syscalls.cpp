#include "base/syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace baton::sys {

int64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool signalPending(int sig) {
  sigset_t set;
  return sigpending(&set) == 0 && sigismember(&set, sig) == 1;
}

namespace {
// Field `want` (>= 3) of /proc/PID/stat, 0 if the process is gone or the line is malformed.
uint64_t procStatField(pid_t pid, int want) {
  std::string stat;
  if (!readFile("/proc/" + std::to_string(pid) + "/stat", stat, 4096)) return 0;
  // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  const char* p = stat.c_str() + close + 1;
  for (int field = 3; field < want; ++field) {
    p = strchr(p + 1, ' ');
    if (!p) return 0;
  }
  return strtoull(p + 1, nullptr, 10);
}
}  // namespace

uint64_t procStartTime(pid_t pid) { return procStatField(pid, 22); }

pid_t procParentPid(pid_t pid) { return pid_t(procStatField(pid, 4)); }

bool setCloexec(int fd, bool on) {
  // FD_CLOEXEC is the only fd flag Linux has: one call, no read-modify-write (a re-exec clears it
  // on every handed fd inside its window).
  return fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0) == 0;
}

bool setNonblock(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

bool mkdirs(const std::string& path, mode_t mode) {
  if (path.empty()) return false;
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) return false;
  }
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string errnoText(int err) {
  char buf[128];
  return strerror_r(err, buf, sizeof buf);
}

bool readFile(const std::string& path, std::string& out, size_t limit) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  out.clear();
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(buf, size_t(n));
    if (out.size() > limit) return false;
  }
}

namespace {
template <class Write>
bool writeAllWith(Write write, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = write(p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = EIO;
    if (n <= 0) return false;
    p += n;
    len -= size_t(n);
  }
  return true;
}
}  // namespace

bool writeAll(int fd, const void* data, size_t len) {
  return writeAllWith([fd](const char* p, size_t n) { return write(fd, p, n); }, data, len);
}

bool sendAll(int fd, const void* data, size_t len) {
  return writeAllWith([fd](const char* p, size_t n) { return send(fd, p, n, MSG_NOSIGNAL); }, data, len);
}

void closeFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

void Fd::reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

int Fd::closeChecked() {
  const int fd = release();
  return fd < 0 || close(fd) == 0 ? 0 : errno;
}

bool isEpollFd(int fd) {
  char link[64];
  ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof link - 1);
  return n > 0 && std::string(link, size_t(n)) == "anon_inode:[eventpoll]";
}

Fd openDirectory(const std::string& path, bool create, std::string& error) {
  if (create) mkdirs(path);
  Fd dir(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) error = path + ": " + errnoText(errno);
  return dir;
}

Fd openAppendAt(int dirFd, const std::string& name, mode_t mode, std::string& error) {
  if (name.empty() || name.find('/') != std::string::npos) {
    error = "'" + name + "' is not a file name";
    return {};
  }
  // O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader.
  Fd fd(openat(dirFd, name.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
               mode));
  if (!fd) {
    // ELOOP: O_NOFOLLOW met a link. ENXIO: a FIFO without a reader (or a socket).
    error = name + ": " +
            (errno == ELOOP   ? std::string("is a symbolic link, not written through")
             : errno == ENXIO ? std::string("not a regular file, not written to")
                              : errnoText(errno));
    return {};
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    error = name + ": " + errnoText(errno);
    return {};
  }
  if (!S_ISREG(st.st_mode)) {
    error = name + ": not a regular file, not written to";
    return {};
  }
  if (st.st_nlink != 1) {
    error = name + ": has " + std::to_string(st.st_nlink) + " hard links, not written to";
    return {};
  }
  int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    error = name + ": " + errnoText(errno);
    return {};
  }
  return fd;
}

bool writeFileAt(int dirFd, const std::string& name, const void* data, size_t len, mode_t mode,
                 std::string& error) {
  static unsigned counter = 0;
  const std::string tmp = "." + name + ".tmp." + std::to_string(getpid()) + "." + std::to_string(++counter);
  Fd fd(openat(dirFd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) {
    error = tmp + ": " + errnoText(errno);
    return false;
  }
  // On disk before the rename, so that the name never points at a partly written file.
  bool ok = writeAll(fd.get(), data, len) && fsync(fd.get()) == 0;
  if (!ok) error = tmp + ": " + errnoText(errno);
  if (ok && fd.closeChecked() != 0) ok = false, error = tmp + ": " + errnoText(errno);
  if (ok && renameat(dirFd, tmp.c_str(), dirFd, name.c_str()) != 0) ok = false, error = name + ": " + errnoText(errno);
  if (!ok) unlinkat(dirFd, tmp.c_str(), 0);
  return ok;
}

std::string writableByOthers(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return {};
  if (st.st_uid != geteuid()) return dir + " belongs to uid " + std::to_string(st.st_uid);
  if (st.st_mode & S_IWOTH) return dir + " is writable by all users";
  if (st.st_mode & S_IWGRP) return dir + " is writable by group " + std::to_string(st.st_gid);
  return {};
}

}  // namespace baton::sys
