// baton_forker N PIDFILE: behave like a classic daemon that forks N times before settling.
// N=1: fork; the parent exits. N=2: fork, setsid, fork. Every intermediate process _exit(0)s;
// the final process writes its pid to PIDFILE (and "pid N" to stdout) and sleeps until killed.
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: baton_forker N PIDFILE\n");
    return 2;
  }
  int n = std::atoi(argv[1]);
  const char* pidfile = argv[2];
  for (int i = 0; i < n; ++i) {
    pid_t p = fork();
    if (p < 0) { std::perror("fork"); return 1; }
    if (p > 0) _exit(0);          // intermediate: leave
    if (i == 0 && n >= 2) setsid();  // classic double fork: new session between the forks
  }
  std::string text = std::to_string(getpid()) + "\n";
  std::string tmp = std::string(pidfile) + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) { std::perror("open pidfile"); return 1; }
  if (write(fd, text.data(), text.size()) != (ssize_t)text.size()) { std::perror("write"); return 1; }
  close(fd);
  if (rename(tmp.c_str(), pidfile) != 0) { std::perror("rename"); return 1; }  // atomic appearance
  std::printf("pid %d\n", (int)getpid());
  std::fflush(stdout);
  for (;;) pause();
}
