#include "supervisor/notify_socket.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "base/notify_message.h"
#include "base/syscalls.h"

namespace baton {

std::string notifySocketPath(const Config& config) {
  const std::string& control = config.socketPath;
  const size_t slash = control.rfind('/');
  return slash == std::string::npos ? std::string("notify") : control.substr(0, slash + 1) + "notify";
}

sys::Fd openNotifySocket(const std::string& path, std::string& error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    error = "notify socket path '" + path + "' is too long";
    return {};
  }
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  sys::Fd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  const int on = 1;
  if (!fd || setsockopt(fd.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
    error = "notify socket: " + sys::errnoText(errno);
    return {};
  }
  unlink(path.c_str());
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = "cannot bind the notify socket " + path + ": " + sys::errnoText(errno);
    return {};
  }
  chmod(path.c_str(), 0666);
  return fd;
}

bool receiveNotify(int fd, NotifyDatagram& out) {
  char buf[notify::kMaxMessageBytes + 1];
  // Room for the credentials and a few fds; fds beyond it are closed by the kernel (MSG_CTRUNC).
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(16 * sizeof(int))];
  iovec iov{buf, sizeof buf};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return false;
  out = NotifyDatagram{};
  out.truncated = size_t(n) > notify::kMaxMessageBytes;
  out.data.assign(buf, std::min(size_t(n), sizeof buf));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
      ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof cred);
      out.pid = cred.pid;
      out.uid = cred.uid;
    } else if (c->cmsg_type == SCM_RIGHTS) {
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int passed;
        memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
        close(passed);
      }
    }
  }
  return true;
}

}  // namespace baton
