// Handoff options: what a re-exec may hand the target besides the snapshot, each only to a target
// that announced it, one line "accepts NAME" in its `batond --state-formats` output (an unknown
// flag would fail inside the blind window). docs/formats.md "Handoff options".
//
// kHandoffOptions is the one list of them: this build's announcement (stateFormatsText), the
// parse of a target's announcement (parseStateFormats), the flags the old image passes the target
// (appendHandoffArgs) and batond's parse of those flags (supervisor/batond_args.cpp) all read it.
// Adding an option: an enumerator, a row (in enumerator order), and the code that provides and
// uses it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace baton {

enum class HandoffOption : uint8_t {
  // The old image's epoll instance (--epoll-fd FD): its registrations name the handed fds by
  // number and survive execve, so a target of the same version adopts them instead of registering
  // every fd again.
  EpollFd,
  // The target does not checksum a sealed handoff again (the seals make its bytes final), so the
  // old image need not compute the checksum inside the window. No flag: the target sees the seals.
  UnchecksummedHandoff,
  // --preverified-classes: the snapshot lists the job classes that are byte copies of classes the
  // target's own pre-flight verified; its restore does not check them again.
  PreverifiedClasses,
  // --sweep-on-sigchld: the old image promises that every child event it has not swept left
  // SIGCHLD pending, so the restore sweeps for exited children only if SIGCHLD is pending instead
  // of always walking every child with waitid.
  SigchldSweep,
};
constexpr size_t kHandoffOptionCount = 4;

// A set of handoff options: those a target announced, those an old image passes, those given on
// batond's command line.
class HandoffSet {
 public:
  constexpr HandoffSet() = default;
  constexpr bool has(HandoffOption o) const { return (bits_ & bit(o)) != 0; }
  constexpr HandoffSet& add(HandoffOption o) {
    bits_ |= bit(o);
    return *this;
  }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr bool operator==(const HandoffSet&) const = default;

 private:
  static constexpr uint32_t bit(HandoffOption o) { return uint32_t(1) << unsigned(o); }
  uint32_t bits_ = 0;
};

// What a re-exec passes with its options: the set, and the values of the flags that take one.
struct Handoff {
  HandoffSet options;
  int epollFd = -1;  // EpollFd: the old image's epoll instance (-1: none)
};

struct HandoffOptionInfo {
  HandoffOption option;
  std::string_view name;     // announced as "accepts NAME"
  std::string_view flag;     // passed to the target on its command line; empty: none
  int Handoff::*fd;          // the flag's value, a file descriptor; nullptr: the flag takes none
  std::string_view meaning;  // one line (batond --help)
  std::string_view since;    // the first release that announces it
};

// In announcement order, which is also the order of the flags on the target's command line.
inline constexpr HandoffOptionInfo kHandoffOptions[] = {
    {HandoffOption::EpollFd, "epoll-fd", "--epoll-fd", &Handoff::epollFd,
     "the previous image's epoll instance, adopted on restore", "0.2.0"},
    // No flag: the target checks whether a handoff is sealed, and then skips its checksum.
    {HandoffOption::UnchecksummedHandoff, "unchecksummed-handoff", "", nullptr,
     "a sealed handoff is not checksummed again (the seals make its bytes final)", "0.2.0"},
    {HandoffOption::PreverifiedClasses, "preverified-classes", "--preverified-classes", nullptr,
     "the restore skips the checks of the job classes its pre-flight verified (listed in the "
     "snapshot)",
     "0.2.0"},
    {HandoffOption::SigchldSweep, "sigchld-sweep", "--sweep-on-sigchld", nullptr,
     "the restore sweeps for exited children only if SIGCHLD is pending (the previous image "
     "promises it is when needed)",
     "0.2.0"},
};
static_assert(std::size(kHandoffOptions) == kHandoffOptionCount);

constexpr const HandoffOptionInfo& handoffOption(HandoffOption o) { return kHandoffOptions[size_t(o)]; }
constexpr bool handoffTableInOrder() {
  for (size_t i = 0; i < kHandoffOptionCount; ++i)
    if (size_t(kHandoffOptions[i].option) != i) return false;
  return true;
}
static_assert(handoffTableInOrder(), "kHandoffOptions: one row per option, in enumerator order");

// The option announced as `name` ("epoll-fd"), or nullptr.
const HandoffOptionInfo* findHandoffName(std::string_view name);
// The option passed as `flag` ("--epoll-fd"), or nullptr.
const HandoffOptionInfo* findHandoffFlag(std::string_view flag);

// "accepts NAME\n" for every option in `options`, in table order.
std::string handoffAnnouncement(HandoffSet options);
// Every option of this build.
HandoffSet allHandoffOptions();

// Append to a target's argv the flags of `handoff.options` (those that have one), each with its
// value where it takes one.
void appendHandoffArgs(std::vector<std::string>& argv, const Handoff& handoff);

}  // namespace baton
