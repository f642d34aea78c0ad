// baton_pidreuse RELEASE_FILE INFO_FILE [stay|orphan]: make the pid of a job's tracked process
// name another process, behind the supervisor's back. For `expect fork` jobs, in a PID
// namespace, as root.
//
// The process forks a child C (the one `expect fork` follows: the job's main pid becomes C) and,
// unlike a classic daemon, stays alive as C's real parent. C waits until RELEASE_FILE exists and
// exits; this process reaps it, so the supervisor never sees C die. Then it writes C-1 to
// /proc/sys/kernel/ns_last_pid and forks again until the new child gets pid C (an impostor with
// another start time, which just sleeps). It writes "old C new D" to INFO_FILE (D == C on
// success, or "error ..." when the pid could not be recycled). Mode `stay` (the default): it then
// sleeps until killed, so the impostor stays its child. Mode `orphan`: it exits, so the impostor
// is reparented to the supervisor (PID 1 or subreaper) and becomes the supervisor's child.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

void writeInfo(const char* path, const std::string& text) {
  std::string tmp = std::string(path) + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t ignored = write(fd, text.data(), text.size());
  (void)ignored;
  close(fd);
  rename(tmp.c_str(), path);  // atomic appearance
}

// Start time of a process: field 22 of /proc/PID/stat, in clock ticks since boot (0: unknown).
unsigned long long startTicks(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  FILE* f = std::fopen(path, "re");
  if (!f) return 0;
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  for (int field = 2; p && field < 22; ++field) p = std::strchr(p + 1, ' ');
  return p ? std::strtoull(p + 1, nullptr, 10) : 0;
}

// Now, in the same unit.
unsigned long long nowTicks() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  const unsigned long long hz = static_cast<unsigned long long>(sysconf(_SC_CLK_TCK));
  return static_cast<unsigned long long>(ts.tv_sec) * hz +
         static_cast<unsigned long long>(ts.tv_nsec) / (1000000000ull / hz);
}

bool setLastPid(pid_t last) {
  int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string text = std::to_string(last);
  bool ok = write(fd, text.data(), text.size()) == ssize_t(text.size());
  close(fd);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: baton_pidreuse RELEASE_FILE INFO_FILE [stay|orphan]\n");
    return 2;
  }
  const char* release = argv[1];
  const char* info = argv[2];
  const bool orphan = argc == 4 && std::strcmp(argv[3], "orphan") == 0;
  pid_t child = fork();
  if (child < 0) {
    std::perror("fork");
    return 1;
  }
  if (child == 0) {
    std::printf("tracked child %d\n", int(getpid()));
    std::fflush(stdout);
    while (access(release, F_OK) != 0) usleep(10 * 1000);
    _exit(0);
  }
  // C's start time, read while it is a zombie (not reaped yet), then the reap.
  siginfo_t exited{};
  while (waitid(P_PID, id_t(child), &exited, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  const unsigned long long childStart = startTicks(child);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  // The start time is in clock ticks: the impostor's must differ from the child's, so it is
  // forked after the next tick (at most one tick away).
  while (nowTicks() <= childStart) usleep(1000);
  pid_t impostor = -1;
  std::string error;
  for (int attempt = 0; attempt < 100 && impostor != child; ++attempt) {
    if (impostor > 0) {
      kill(impostor, SIGKILL);
      waitpid(impostor, nullptr, 0);
    }
    if (!setLastPid(child - 1)) {
      error = std::string("ns_last_pid: ") + std::strerror(errno);
      impostor = -1;
      break;
    }
    impostor = fork();
    if (impostor < 0) {
      error = std::string("fork: ") + std::strerror(errno);
      break;
    }
    if (impostor == 0) {
      for (;;) pause();
    }
  }
  if (!error.empty()) writeInfo(info, "error " + error + "\n");
  else
    writeInfo(info, "old " + std::to_string(child) + " new " + std::to_string(impostor) + "\n");
  std::printf("impostor %d\n", int(impostor));
  std::fflush(stdout);
  if (orphan) _exit(0);
  for (;;) pause();
}
