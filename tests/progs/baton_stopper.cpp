// baton_stopper: signal readiness the `expect stop` way (raise SIGSTOP); once continued, print
// "continued pid N" and sleep until killed.
#include <csignal>
#include <cstdio>
#include <unistd.h>

int main() {
  raise(SIGSTOP);
  std::printf("continued\npid %d\n", (int)getpid());
  std::fflush(stdout);
  for (;;) pause();
}
