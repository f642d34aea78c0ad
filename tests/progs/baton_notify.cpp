// baton_notify: an `expect notify` daemon for the tests, speaking sd_notify(3) over
// $NOTIFY_SOCKET without libsystemd. Prints "pid N" first, then, by option:
//   --delay MS        wait before anything else
//   --wait-file PATH  then wait until PATH exists (the test says when)
//   --exit CODE       exit with CODE instead of notifying
//   --never           never notify
//   --garbage         first send three bad datagrams (oversized, not UTF-8, not KEY=VALUE)
//   --status TEXT     send STATUS=TEXT with READY=1
//   --mainpid-child   fork a child ("child pid N"), send MAINPID=child + READY=1, wait for the
//                     barrier, then exit: the child goes on as the job's main process
//   --grandchild      READY=1 is sent by a grandchild (the child between them waits)
//   --orphan          READY=1 is sent by a grandchild whose parent exited first: reparented to
//                     batond, it is no process of the job any more ("orphan sent")
//   --reload          on SIGHUP: RELOADING=1, then READY=1 again
//   --stopping FILE   on SIGTERM: STOPPING=1 and ERRNO=5, then exit 0 once FILE exists
// Every READY=1 is followed by BARRIER=1 (sd_notify_barrier): the sender waits until batond has
// read it, as systemd-notify does.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int openSocket(sockaddr_un& addr, socklen_t& len) {
  const char* path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) {
    std::printf("no NOTIFY_SOCKET\n");
    std::fflush(stdout);
    _exit(3);
  }
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  len = socklen_t(offsetof(sockaddr_un, sun_path) + strlen(path));
  return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

bool send(const std::string& text, int passFd = -1) {
  sockaddr_un addr;
  socklen_t len;
  int fd = openSocket(addr, len);
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_name = &addr;
  msg.msg_namelen = len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (passFd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passFd, sizeof(int));
  }
  bool ok = sendmsg(fd, &msg, MSG_NOSIGNAL) == ssize_t(text.size());
  close(fd);
  return ok;
}

// sd_notify_barrier: BARRIER=1 with the write end of a pipe; the reader closing it is the answer.
void barrier() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return;
  send("BARRIER=1", p[1]);
  close(p[1]);
  pollfd pfd{p[0], 0, 0};
  poll(&pfd, 1, 10000);
  close(p[0]);
}

void ready(const std::string& extra = {}) {
  send("READY=1" + extra);
  barrier();
}

volatile sig_atomic_t hup = 0, term = 0;

}  // namespace

int main(int argc, char** argv) {
  int delayMs = 0, exitCode = -1;
  std::string waitFile;
  bool never = false, garbage = false, mainpidChild = false, grandchild = false, orphan = false;
  bool reload = false;
  std::string stopFile;
  std::string status;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--delay" && i + 1 < argc) delayMs = atoi(argv[++i]);
    else if (a == "--exit" && i + 1 < argc) exitCode = atoi(argv[++i]);
    else if (a == "--wait-file" && i + 1 < argc) waitFile = argv[++i];
    else if (a == "--status" && i + 1 < argc) status = argv[++i];
    else if (a == "--never") never = true;
    else if (a == "--garbage") garbage = true;
    else if (a == "--mainpid-child") mainpidChild = true;
    else if (a == "--grandchild") grandchild = true;
    else if (a == "--orphan") orphan = true;
    else if (a == "--reload") reload = true;
    else if (a == "--stopping" && i + 1 < argc) stopFile = argv[++i];
    else {
      std::fprintf(stderr, "baton_notify: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  std::printf("pid %d\n", int(getpid()));
  std::fflush(stdout);
  if (delayMs) usleep(useconds_t(delayMs) * 1000);
  while (!waitFile.empty() && access(waitFile.c_str(), F_OK) != 0) usleep(10 * 1000);
  if (exitCode >= 0) return exitCode;
  if (never)
    for (;;) pause();
  if (garbage) {
    send(std::string(5000, 'A'));
    send("READY=\xff\xfe");
    send("this is not a notification");
  }
  const std::string extra = status.empty() ? "" : "\nSTATUS=" + status;
  if (mainpidChild) {
    pid_t child = fork();
    if (child == 0) {
      std::printf("child pid %d\n", int(getpid()));
      std::fflush(stdout);
      for (;;) pause();
    }
    ready("\nMAINPID=" + std::to_string(child) + extra);
    return 0;
  }
  if (grandchild || orphan) {
    pid_t child = fork();
    if (child == 0) {
      pid_t parent = getpid();
      pid_t grand = fork();
      if (grand == 0) {
        if (orphan) {
          while (getppid() == parent) usleep(1000);  // until the child has exited
          send("READY=1" + extra);
          std::printf("orphan sent\n");
          std::fflush(stdout);
        } else {
          ready(extra);
          std::printf("grandchild sent\n");
          std::fflush(stdout);
        }
        for (;;) pause();
      }
      if (orphan) _exit(0);
      for (;;) pause();
    }
    for (;;) {
      int st;
      if (orphan && waitpid(child, &st, 0) == child) orphan = false;  // reap it, then rest
      pause();
    }
  }
  struct sigaction sa{};
  sa.sa_handler = [](int sig) { (sig == SIGHUP ? hup : term) = 1; };
  if (reload) sigaction(SIGHUP, &sa, nullptr);
  if (!stopFile.empty()) sigaction(SIGTERM, &sa, nullptr);
  ready(extra);
  for (;;) {
    pause();
    if (hup) {
      hup = 0;
      send("RELOADING=1");
      usleep(100 * 1000);
      ready();
      std::printf("reloaded\n");
      std::fflush(stdout);
    }
    if (term) {
      send("STOPPING=1\nERRNO=5");
      barrier();
      while (access(stopFile.c_str(), F_OK) != 0) usleep(10 * 1000);
      return 0;
    }
  }
}
