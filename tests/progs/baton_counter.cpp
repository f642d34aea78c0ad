// baton_counter COUNT INTERVAL_US: print 1..COUNT, one per line, flushing each, sleeping
// INTERVAL_US microseconds between lines.
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: baton_counter COUNT INTERVAL_US\n");
    return 2;
  }
  long count = std::atol(argv[1]);
  long interval = std::atol(argv[2]);
  for (long i = 1; i <= count; ++i) {
    std::printf("%ld\n", i);
    std::fflush(stdout);
    if (interval > 0 && i < count) usleep(static_cast<useconds_t>(interval));
  }
  return 0;
}
