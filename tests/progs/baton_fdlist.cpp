// baton_fdlist [--sleep]: print the open fd numbers (from /proc/self/fd, without the fd used to
// read the directory) on one line, space separated and ascending; with --sleep, then sleep.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <string>
#include <unistd.h>
#include <vector>

int main(int argc, char** argv) {
  bool sleepAfter = argc > 1 && std::strcmp(argv[1], "--sleep") == 0;
  DIR* d = opendir("/proc/self/fd");
  if (!d) { std::perror("opendir /proc/self/fd"); return 1; }
  int own = dirfd(d);
  std::vector<int> fds;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd != own) fds.push_back(fd);
  }
  closedir(d);
  std::sort(fds.begin(), fds.end());
  std::string line;
  for (size_t i = 0; i < fds.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(fds[i]);
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (sleepAfter)
    for (;;) pause();
  return 0;
}
