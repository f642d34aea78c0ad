// The snapshot container: what crosses `execve` in a sealed memfd.
//
// Layout (host byte order; a snapshot never leaves the machine that wrote it):
//   SnapshotHeader (64 bytes)
//   FdEntry[fdCount] (32 bytes each): every fd the model names, with its role and identity
//   body: one Cap'n Proto message (schema/state.capnp Model) in stream encoding
// The checksum covers the fd table and the body, so truncation and bit flips are refused before
// anything is decoded. The body is read in place from the mapping (zero copy).
#pragma once
#include <sys/types.h>

#include <capnp/serialize.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/fd.h"
#include "schema/model.h"
#include "serialize/codec.h"

namespace baton {

constexpr char kSnapshotMagic[8] = {'B', 'A', 'T', 'O', 'N', 'S', 'T', '1'};

// A checksum of 0 in the header may mean "not computed" (a handoff, see writeSnapshot): a
// reader that must verify computes it anyway and refuses unless it really is 0.
constexpr uint64_t kNoChecksum = 0;

struct SnapshotHeader {
  char magic[8];
  uint32_t headerBytes;        // sizeof(SnapshotHeader): lets a future header grow
  uint32_t format;             // format of the body
  uint32_t minReaderFormat;    // oldest reader format that can read it (after migration)
  uint32_t fdCount;
  char writerVersion[16];      // baton version that wrote it, NUL padded
  int64_t serializeStartNs;    // CLOCK_MONOTONIC when serialization began
  uint64_t bodyBytes;
  uint64_t checksum;           // over fd table + body
};
static_assert(sizeof(SnapshotHeader) == 64);
// More fds than any batond can hold open (its RLIMIT_NOFILE): a larger count is corrupt.
constexpr uint32_t kMaxSnapshotFds = 1u << 20;

// What a handed fd is. A role is part of the container's format: a reader refuses a role it does
// not know, so a downgrade drops the fds of roles newer than its target (fdRoleFormat).
enum class FdRole : uint32_t { Listen = 1, Connection, StatusPipe, ScriptPipe, LogPipe, NotifySocket };
constexpr FdRole kNewestFdRole = FdRole::NotifySocket;
const char* fdRoleName(FdRole role);
// The snapshot format that introduced `role` (NotifySocket: 2; the others: 1).
uint32_t fdRoleFormat(FdRole role);

struct FdEntry {
  int32_t fd;
  uint32_t role;               // FdRole
  uint64_t dev;                // st_dev
  uint64_t ino;                // st_ino
  uint32_t type;               // st_mode & S_IFMT
  uint32_t reserved;
};
static_assert(sizeof(FdEntry) == 32);
// Drop the entries of roles a reader of `format` does not know (a downgrade's fd table).
void dropFdsNewerThan(std::vector<FdEntry>& table, uint32_t format);

// Every fd the model refers to, with its role (identity left zero). `withSlots` false leaves out
// the process slots' pipes, for a caller that walks the slots anyway and adds them itself with
// addSlotFds.
std::vector<FdEntry> modelFds(const Model& model, bool withSlots = true);
void addSlotFds(std::vector<FdEntry>& out, const ProcessSlot& slot);

// Serialize `model` into a new sealed memfd (close-on-exec). Returns the fd, or no fd and `error`.
// `liveFds`: record each fd's identity (it must be open). Offline tools (baton-state encode,
// import-upstart) write the table with zero identities: such a snapshot is for inspection and
// tests, and a restore refuses it.
// `identity`, if given, supplies each fd's identity as recorded when it was opened (saves an
// fstat per fd inside the re-exec window); fds it does not know are fstat'ed.
struct FdIdentity {
  uint64_t dev = 0, ino = 0;
  uint32_t type = 0;
};
using FdIdentityLookup = const FdIdentity* (*)(const void* ctx, int fd);
// Memory for a snapshot yet to be written: a memfd, sized, mapped shared and writable, its first
// pages already allocated. A re-exec prepares it while the pre-flight runs (batond still serves),
// so the window itself only fills it in. Move-only; unmapped and closed unless used.
class SnapshotMemory {
 public:
  SnapshotMemory() = default;
  SnapshotMemory(SnapshotMemory&& other) noexcept { *this = std::move(other); }
  SnapshotMemory& operator=(SnapshotMemory&& other) noexcept;
  ~SnapshotMemory() { release(); }
  // `reserveBytes` of address space and file size (untouched pages cost nothing: the file stays
  // sparse); the first `populateBytes` are allocated and mapped in one call.
  bool prepare(size_t reserveBytes, size_t populateBytes, std::string& error);
  bool ready() const { return bool(fd_); }
  size_t reserved() const { return reserve_; }
  // For writeSnapshot: the mapping and the fd, which the caller then owns.
  char* base() const { return base_; }
  sys::Fd takeFd() { return std::move(fd_); }
  void release();

 private:
  sys::Fd fd_;
  char* base_ = nullptr;
  size_t reserve_ = 0;
};

// Address space to reserve for a model's snapshot when nothing better is known.
size_t snapshotReserveFor(const Model& model, size_t lastSnapshotBytes = 0);

struct SnapshotWrite {
  bool liveFds = true;
  FdIdentityLookup identity = nullptr;
  const void* identityCtx = nullptr;
  // If given and large enough, receives the snapshot (and is used up); otherwise memory is
  // prepared here.
  SnapshotMemory* memory = nullptr;
  // serialize/codec.h: record where untouched classes went (hooks->record), or copy the classes
  // hooks->images holds as bytes.
  EncodeHooks* hooks = nullptr;
  // false: the header's checksum is left 0 (kNoChecksum), for a handoff to a target that trusts a
  // sealed memfd ("accepts unchecksummed-handoff"); nothing else reads it (see Snapshot::open).
  bool checksum = true;
  std::vector<FdEntry>* fdTable = nullptr;  // out: the fd table written
};
sys::Fd writeSnapshot(const Model& model, uint32_t format, int64_t serializeStartNs, size_t& bytes,
                  std::string& error, const SnapshotWrite& how = {});
// The images (serialize/codec.h) of the classes `extents` recorded while the snapshot in `fd` was
// written; they keep it mapped. Null if there are none or it cannot be read.
std::shared_ptr<const ClassImages> classImagesOf(int fd, const std::vector<EncodeHooks::Extent>& extents);

// The identity of an open fd (false if it is not open).
bool fdIdentity(int fd, FdIdentity& out);

// Write a container around an already built body message (migration steps use this).
sys::Fd writeSnapshotContainer(capnp::MessageBuilder& body, std::vector<FdEntry> fds, uint32_t format,
                           int64_t serializeStartNs, size_t& bytes, std::string& error);

// Fill in the checksum of a snapshot held in memory whose header says kNoChecksum (e.g. a
// handoff kept as a file after a failed restore), so that it verifies like any other.
void completeChecksum(std::string& snapshotBytes);

// The whole content of a snapshot fd (from offset 0).
std::string readSnapshotFd(int fd);

// A sealed, close-on-exec memfd holding `bytes` (e.g. a migrated snapshot).
sys::Fd sealedMemfd(const std::string& bytes, std::string& error);

// A mapped snapshot. open() checks the header, sizes and checksum; it does not decode the body.
class Snapshot {
 public:
  Snapshot() = default;
  ~Snapshot();
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  // How far to trust a snapshot fd. Verify: the checksum is checked (pre-flight, offline tools,
  // anything that may have been written elsewhere). SealedHandoff: the fd a re-exec handed over;
  // if it carries the write, shrink and grow seals, its bytes are exactly what the writer wrote
  // and checksummed, so the checksum is not computed again inside the window (an unsealed fd is
  // still checked). Header, sizes and every Cap'n Proto bound are checked either way.
  enum class Trust { Verify, SealedHandoff };
  bool open(int fd, std::string& error, Trust trust = Trust::Verify);  // map (stays mapped)
  bool checksumVerified() const { return checksumVerified_; }
  bool openBytes(std::string bytes, std::string& error);  // from memory (tests, baton-state)
  const SnapshotHeader& header() const { return *header_; }
  const std::vector<FdEntry>& fds() const { return fds_; }
  kj::ArrayPtr<const capnp::word> body() const { return body_; }
  size_t size() const { return size_; }
  // Reader limits sized to the body: a traversal cannot amplify past twice the body.
  capnp::ReaderOptions readerOptions() const;

 private:
  bool validate(std::string& error, bool verifyChecksum = true);
  bool checksumVerified_ = false;
  const char* base_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::string owned_;
  const SnapshotHeader* header_ = nullptr;
  std::vector<FdEntry> fds_;
  kj::ArrayPtr<const capnp::word> body_;
};

// Check each fd of the table against the open file it names now (same dev, inode and type).
bool checkFdIdentities(const std::vector<FdEntry>& fds, std::string& error);

// The fd numbers in the table must be exactly the fds the decoded model names.
bool checkFdTableMatchesModel(const std::vector<FdEntry>& fds, const Model& model, std::string& error);
// The same against the fds a caller collected itself (modelFds' set, in any order): a restore
// collects them in the pass that builds its tables instead of walking the state once more.
bool checkFdTableMatches(const std::vector<FdEntry>& table, const std::vector<FdEntry>& named, std::string& error);

uint64_t snapshotChecksum(const void* data, size_t len, uint64_t seed = 0x9e3779b97f4a7c15ull);

}  // namespace baton
