// The owner of a file descriptor: every API of baton that opens an fd returns one of these, so
// that no error path can leak it and no reader has to ask who closes it. A value that crosses an
// execve (a handed fd) is a plain int in the model; an Fd is the resource made from it.
#pragma once

namespace baton::sys {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept { reset(o.release()); return *this; }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void reset(int fd = -1);
  // close(2) now and report its error as an errno value, 0 if none (for a file whose data must
  // have reached it). The Fd is empty afterwards.
  int closeChecked();
  explicit operator bool() const { return fd_ >= 0; }
 private:
  int fd_ = -1;
};

}  // namespace baton::sys
