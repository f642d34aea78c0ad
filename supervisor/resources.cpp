#include "supervisor/resources.h"

#include <errno.h>
#include <sys/epoll.h>

#include <cstdio>
#include <unordered_map>

#include "base/syscalls.h"

namespace baton {

// The signals batond handles (through the signalfd); all others keep their defaults.
sigset_t handledSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPWR, SIGWINCH, SIGUSR1, SIGUSR2})
    sigaddset(&mask, sig);
  return mask;
}

bool Watches::open(int adoptFd) {
  epollFd_.reset(adoptFd >= 0 ? adoptFd : epoll_create1(EPOLL_CLOEXEC));
  return bool(epollFd_);
}

void Watches::watch(int fd, uint32_t events, Watch w) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  // The signalfd is new in every image; everything else an adopted epoll already has.
  const bool registered = registrationsAdopted_ && w.kind != Watch::Kind::Signal;
  if (!registered && epoll_ctl(epollFd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0 && errno == EEXIST)
    epoll_ctl(epollFd_.get(), EPOLL_CTL_MOD, fd, &ev);
  w.events = events;
  watches_[fd] = std::move(w);
  FdIdentity id;
  if (!fdIdentities_.contains(fd) && fdIdentity(fd, id)) fdIdentities_[fd] = id;
}

void Watches::unwatch(int fd) {
  if (fd < 0) return;
  epoll_ctl(epollFd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  watches_.erase(fd);
  fdIdentities_.erase(fd);
}

void Watches::modify(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  epoll_ctl(epollFd_.get(), EPOLL_CTL_MOD, fd, &ev);
  if (Watch* w = watches_.find(fd)) w->events = events;
}

void Watches::forgetWatches() {
  watches_.clear();
  watches_.reserve(fdIdentities_.span() + 2);
}

// Diagnostics (BATON_CHECK_HANDOFF=1 in batond's environment; the integration tests set it):
// compare the adopted registrations with what rearm() derived
// from the model, from the kernel's own list (/proc/self/fdinfo/EPFD: "tfd: N events: HEX ...").
// A difference is a bug in the old binary's bookkeeping: report it and repair it. Production
// skips this: the read costs more than re-registering every fd.
void Watches::checkAdopted() {
  std::string text;
  if (!sys::readFile("/proc/self/fdinfo/" + std::to_string(epollFd_.get()), text, 64 << 20)) return;
  std::unordered_map<int, uint32_t> actual;
  for (size_t pos = text.find("tfd:"); pos != std::string::npos; pos = text.find("tfd:", pos + 4)) {
    int fd = -1;
    unsigned events = 0;
    if (sscanf(text.c_str() + pos, "tfd: %d events: %x", &fd, &events) == 2) actual[fd] = events;
  }
  const uint32_t relevant = EPOLLIN | EPOLLOUT;
  std::string diff;
  watches_.forEach([&](int fd, const Watch& w) {
    auto it = actual.find(fd);
    if (it == actual.end()) diff += " fd " + std::to_string(fd) + " not registered;";
    else if ((it->second & relevant) != (w.events & relevant))
      diff += " fd " + std::to_string(fd) + " has events " + std::to_string(it->second) + " instead of " +
              std::to_string(w.events) + ";";
    else return;
    epoll_event ev{};
    ev.events = w.events;
    ev.data.fd = fd;
    if (epoll_ctl(epollFd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) epoll_ctl(epollFd_.get(), EPOLL_CTL_MOD, fd, &ev);
  });
  for (auto& [fd, events] : actual)
    if (!watches_.contains(fd)) {
      diff += " fd " + std::to_string(fd) + " registered but not in the model;";
      epoll_ctl(epollFd_.get(), EPOLL_CTL_DEL, fd, nullptr);
    }
  if (!diff.empty()) log_(Priority::Error, "adopted epoll registrations differ from the model:" + diff);
}

}  // namespace baton
