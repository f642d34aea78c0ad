// A table keyed by file descriptor number.
//
// The kernel hands out the lowest free descriptor, so the fds batond holds are dense from 0 up to
// about the number it has open: a vector indexed by fd needs no hashing and no node per entry.
// This matters in the re-exec window, where a restore fills the watch and identity tables for
// every handed fd (12,000 at 10,000 jobs) in an image whose heap is still cold. The vector is
// one allocation (mapped on its own above the mmap threshold), so unlike small nodes it pins no
// heap pages between other allocations.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace baton {

template <class T>
class FdMap {
 public:
  // The entry for fd, or nullptr if there is none (also for a negative fd).
  T* find(int fd) { return has(fd) ? &slots_[size_t(fd)].value : nullptr; }
  const T* find(int fd) const { return has(fd) ? &slots_[size_t(fd)].value : nullptr; }
  bool contains(int fd) const { return has(fd); }

  // The entry for fd, made (value-initialized) if there was none.
  T& operator[](int fd) {
    if (fd < 0) throw std::out_of_range("FdMap: negative fd " + std::to_string(fd));
    if (size_t(fd) >= slots_.size()) slots_.resize(size_t(fd) + 1);
    Slot& s = slots_[size_t(fd)];
    if (!s.used) s.used = true, ++count_;
    return s.value;
  }

  // Drops the entry for fd (and what it owns); false if there was none.
  bool erase(int fd) {
    if (!has(fd)) return false;
    slots_[size_t(fd)] = Slot{};
    --count_;
    return true;
  }

  void clear() {
    slots_.clear();
    count_ = 0;
  }
  // Room for the fds below `fds` without growing again.
  void reserve(size_t fds) { slots_.reserve(fds); }
  size_t size() const { return count_; }
  // One past the highest fd the table has room for now (at least every fd with an entry).
  size_t span() const { return slots_.size(); }

  // f(fd, value) for every entry, in fd order.
  template <class F>
  void forEach(F&& f) const {
    for (size_t fd = 0; fd < slots_.size(); ++fd)
      if (slots_[fd].used) f(int(fd), slots_[fd].value);
  }

 private:
  struct Slot {
    bool used = false;
    T value{};
  };
  bool has(int fd) const { return fd >= 0 && size_t(fd) < slots_.size() && slots_[size_t(fd)].used; }

  std::vector<Slot> slots_;
  size_t count_ = 0;
};

}  // namespace baton
