#include "serialize/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "serialize/codec.h"

namespace baton {

const char* fdRoleName(FdRole role) {
  switch (role) {
    case FdRole::Listen: return "control socket";
    case FdRole::Connection: return "control connection";
    case FdRole::StatusPipe: return "status pipe";
    case FdRole::ScriptPipe: return "script pipe";
    case FdRole::LogPipe: return "log pipe";
    case FdRole::NotifySocket: return "notify socket";
  }
  return "unknown";
}

uint32_t fdRoleFormat(FdRole role) { return role == FdRole::NotifySocket ? 2 : 1; }

void dropFdsNewerThan(std::vector<FdEntry>& table, uint32_t format) {
  std::erase_if(table, [&](const FdEntry& e) { return fdRoleFormat(FdRole(e.role)) > format; });
}

uint64_t snapshotChecksum(const void* data, size_t len, uint64_t h) {
  // Word-at-a-time multiply-rotate mixing: fast (the body is hashed inside the re-exec window)
  // and good at catching truncation and flipped bits; not meant to resist an adversary.
  const unsigned char* p = static_cast<const unsigned char*>(data);
  constexpr uint64_t k = 0xff51afd7ed558ccdull;
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
    p += 8;
    len -= 8;
  }
  while (len--) h = (h ^ *p++) * k;
  return h;  // no finalization: chained calls over pieces equal one call over the whole
}

namespace {
void addFd(std::vector<FdEntry>& out, int fd, FdRole role) {
  if (fd >= 0) out.push_back(FdEntry{fd, uint32_t(role), 0, 0, 0, 0});
}
}  // namespace

void addSlotFds(std::vector<FdEntry>& out, const ProcessSlot& slot) {
  addFd(out, slot.statusFd, FdRole::StatusPipe);
  addFd(out, slot.scriptFd, FdRole::ScriptPipe);
}

std::vector<FdEntry> modelFds(const Model& m, bool withSlots) {
  std::vector<FdEntry> out;
  addFd(out, m.listenFd, FdRole::Listen);
  for (const Connection& c : m.connections) addFd(out, c.fd, FdRole::Connection);
  if (withSlots)
    m.classes.forEachSlot([&](const std::string&, const std::string&, ProcessType, const ProcessSlot& s, TraceState) {
      addSlotFds(out, s);
    });
  for (const LogPipe& lp : m.logPipes) addFd(out, lp.fd, FdRole::LogPipe);
  addFd(out, m.notifyFd, FdRole::NotifySocket);
  return out;
}

bool fdIdentity(int fd, FdIdentity& out) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  out = {uint64_t(st.st_dev), uint64_t(st.st_ino), uint32_t(st.st_mode & S_IFMT)};
  return true;
}

namespace {

// The seals that make a snapshot's bytes final: Snapshot::open trusts exactly these.
constexpr int kContentSeals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;
bool sealSnapshot(int fd) { return fcntl(fd, F_ADD_SEALS, kContentSeals | F_SEAL_SEAL) == 0; }

SnapshotHeader containerHeader(uint32_t format, int64_t serializeStartNs, size_t fdCount, uint64_t bodyBytes) {
  SnapshotHeader h{};
  memcpy(h.magic, kSnapshotMagic, sizeof h.magic);
  h.headerBytes = sizeof h;
  h.format = format;
  h.minReaderFormat = format;
  h.fdCount = uint32_t(fdCount);
  strncpy(h.writerVersion, BATON_VERSION, sizeof h.writerVersion - 1);
  h.serializeStartNs = serializeStartNs;
  h.bodyBytes = bodyBytes;
  return h;
}

// A message builder whose first segment is given memory (zero-filled, e.g. a fresh shared
// mapping of a memfd) and whose further segments, if the first fills up, are zeroed heap memory.
// (capnp::MallocMessageBuilder would clear a given first segment when destroyed: here that is
// the snapshot itself.)
class MappedMessageBuilder final : public capnp::MessageBuilder {
 public:
  explicit MappedMessageBuilder(kj::ArrayPtr<capnp::word> first) : first_(first) {}
  kj::ArrayPtr<capnp::word> allocateSegment(unsigned minimumSize) override {
    if (!firstTaken_ && minimumSize <= first_.size()) {
      firstTaken_ = true;
      return first_;
    }
    const size_t words = std::max<size_t>(minimumSize, 1 << 16);
    void* p = calloc(words, sizeof(capnp::word));
    if (!p) throw std::bad_alloc();
    more_.emplace_back(static_cast<capnp::word*>(p));
    return kj::ArrayPtr<capnp::word>(more_.back().get(), words);
  }

 private:
  struct Free {
    void operator()(capnp::word* p) const { free(p); }
  };
  kj::ArrayPtr<capnp::word> first_;
  bool firstTaken_ = false;
  std::vector<std::unique_ptr<capnp::word[], Free>> more_;
};

}  // namespace

sys::Fd writeSnapshot(const Model& model, uint32_t format, int64_t serializeStartNs, size_t& bytes,
                  std::string& error, const SnapshotWrite& how) {
  SnapshotMemory* memory = how.memory;  // replaced below if too small
  EncodeHooks* const hooks = how.hooks;
  std::vector<FdEntry> fds = modelFds(model);
  for (FdEntry& e : fds) {
    if (!how.liveFds) continue;
    if (how.identity) {
      if (const FdIdentity* known = how.identity(how.identityCtx, e.fd)) {
        e.dev = known->dev;
        e.ino = known->ino;
        e.type = known->type;
        continue;
      }
    }
    struct stat st;
    if (fstat(e.fd, &st) != 0) {
      error = std::string("fd ") + std::to_string(e.fd) + " (" + fdRoleName(FdRole(e.role)) +
              ") is not open: " + strerror(errno);
      return {};
    }
    e.dev = st.st_dev;
    e.ino = st.st_ino;
    e.type = st.st_mode & S_IFMT;
  }

  if (how.fdTable) *how.fdTable = fds;

  // The body is built in place in the memfd that is handed over: its first segment is a
  // zero-filled shared mapping of the file, so there is no arena to clear and nothing to copy.
  // Only when the model outgrows the reservation does it take the copying path below.
  const size_t fdBytes = fds.size() * sizeof(FdEntry);
  const size_t bodyOffset = sizeof(SnapshotHeader) + fdBytes + 8;  // + a one-segment table
  SnapshotMemory local;
  if (!memory || !memory->ready() || memory->reserved() < bodyOffset + (64u << 10)) {
    if (!local.prepare(snapshotReserveFor(model) + bodyOffset, 0, error)) return {};
    memory = &local;
  }
  SnapshotMemory mem = std::move(*memory);
  char* const base = mem.base();
  const size_t reserve = mem.reserved();
  kj::ArrayPtr<capnp::word> firstSegment(reinterpret_cast<capnp::word*>(base + bodyOffset),
                                         (reserve - bodyOffset) / sizeof(capnp::word));
  MappedMessageBuilder message(firstSegment);
  if (hooks && hooks->record) {
    hooks->extents.clear();
    hooks->cursor = [&message] { return message.getSegmentsForOutput()[0].size(); };
  }
  encodeModel(model, message.initRoot<state::Model>(), hooks);
  if (hooks) hooks->cursor = nullptr;
  auto segments = message.getSegmentsForOutput();
  bool inPlace = segments.size() == 1 && segments[0].begin() == firstSegment.begin();
  size_t words = inPlace ? segments[0].size() : 0;
  const bool placing = hooks && !hooks->pending.empty();
  if (inPlace && placing) {
    // The classes copied as bytes go after everything the builder allocated, in the same segment.
    const size_t placed = placeImages(*hooks, firstSegment.begin() + words, firstSegment.size() - words);
    inPlace = placed != SIZE_MAX;
    words += inPlace ? placed : 0;
  }
  if (!inPlace) {
    // Outgrew the reservation: the copying path (what was recorded is not where it says).
    if (hooks) hooks->extents.clear();
    if (!placing) return writeSnapshotContainer(message, std::move(fds), format, serializeStartNs, bytes, error);
    // The classes left for placement are missing from this message: encode again without.
    capnp::MallocMessageBuilder again;
    encodeModel(model, again.initRoot<state::Model>());
    return writeSnapshotContainer(again, std::move(fds), format, serializeStartNs, bytes, error);
  }

  const uint32_t table[2] = {0, uint32_t(words)};
  SnapshotHeader h = containerHeader(format, serializeStartNs, fds.size(), sizeof table + words * sizeof(capnp::word));
  if (fdBytes) memcpy(base + sizeof h, fds.data(), fdBytes);
  memcpy(base + sizeof h + fdBytes, table, sizeof table);
  h.checksum = how.checksum ? snapshotChecksum(base + sizeof h, fdBytes + h.bodyBytes) : kNoChecksum;
  memcpy(base, &h, sizeof h);
  const size_t total = sizeof h + fdBytes + h.bodyBytes;
  sys::Fd fd = mem.takeFd();
  mem.release();  // unmap: a writable shared mapping would forbid the write seal
  if (ftruncate(fd.get(), off_t(total)) != 0 || !sealSnapshot(fd.get())) {
    error = std::string("sealing the snapshot: ") + strerror(errno);
    return {};
  }
  bytes = total;
  return fd;
}

SnapshotMemory& SnapshotMemory::operator=(SnapshotMemory&& other) noexcept {
  if (this != &other) {
    release();
    std::swap(fd_, other.fd_);
    std::swap(base_, other.base_);
    std::swap(reserve_, other.reserve_);
  }
  return *this;
}

void SnapshotMemory::release() {
  if (base_) munmap(base_, reserve_);
  fd_.reset();
  base_ = nullptr;
  reserve_ = 0;
}

bool SnapshotMemory::prepare(size_t reserveBytes, size_t populateBytes, std::string& error) {
  release();
  const size_t reserve = (reserveBytes + 4095) & ~size_t(4095);
  sys::Fd fd(memfd_create("baton-state", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) {
    error = std::string("memfd_create: ") + strerror(errno);
    return false;
  }
  void* map = MAP_FAILED;
  if (ftruncate(fd.get(), off_t(reserve)) == 0)
    map = mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (map == MAP_FAILED) {
    error = std::string("preparing the snapshot memory: ") + strerror(errno);
    return false;
  }
  // Children forked while the memory waits (jobs spawned during the pre-flight) must not inherit
  // the writable shared mapping: while any process maps it writable, the write seal fails (EBUSY).
  if (madvise(map, reserve, MADV_DONTFORK) != 0) {
    error = std::string("preparing the snapshot memory: madvise: ") + strerror(errno);
    munmap(map, reserve);
    return false;
  }
  fd_ = std::move(fd);
  base_ = static_cast<char*>(map);
  reserve_ = reserve;
  // One call instead of a page fault per page (which costs far more on a VM). Best effort:
  // without it (kernels before 5.14) the pages fault in as they are written.
  if (populateBytes) madvise(base_, std::min(reserve_, (populateBytes + 4095) & ~size_t(4095)), MADV_POPULATE_WRITE);
  return true;
}

size_t snapshotReserveFor(const Model& model, size_t lastSnapshotBytes) {
  const size_t objects = model.classes.size() + model.classes.instanceCount();  // decodes nothing
  return std::max({lastSnapshotBytes * 2, size_t(1) << 20, objects * 8192});
}

sys::Fd writeSnapshotContainer(capnp::MessageBuilder& message, std::vector<FdEntry> fds, uint32_t format,
                           int64_t serializeStartNs, size_t& bytes, std::string& error) {
  auto segments = message.getSegmentsForOutput();
  // Stream framing: segment count - 1, sizes, padding to a word.
  std::vector<uint32_t> table(((segments.size() + 2) & ~size_t(1)), 0);
  table[0] = uint32_t(segments.size() - 1);
  for (size_t i = 0; i < segments.size(); ++i) table[i + 1] = uint32_t(segments[i].size());

  uint64_t bodyBytes = table.size() * 4;
  for (auto s : segments) bodyBytes += s.size() * sizeof(capnp::word);
  SnapshotHeader h = containerHeader(format, serializeStartNs, fds.size(), bodyBytes);
  uint64_t sum = snapshotChecksum(fds.data(), fds.size() * sizeof(FdEntry));
  sum = snapshotChecksum(table.data(), table.size() * 4, sum);
  for (auto s : segments) sum = snapshotChecksum(s.begin(), s.size() * sizeof(capnp::word), sum);
  h.checksum = sum;

  std::vector<iovec> iov;
  iov.push_back({&h, sizeof h});
  if (!fds.empty()) iov.push_back({fds.data(), fds.size() * sizeof(FdEntry)});
  iov.push_back({table.data(), table.size() * 4});
  for (auto s : segments) iov.push_back({const_cast<capnp::word*>(s.begin()), s.size() * sizeof(capnp::word)});

  sys::Fd fd(memfd_create("baton-state", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) {
    error = std::string("memfd_create: ") + strerror(errno);
    return {};
  }
  size_t total = 0;
  for (auto& v : iov) total += v.iov_len;
  size_t done = 0, idx = 0;
  while (idx < iov.size()) {
    ssize_t n = writev(fd.get(), iov.data() + idx, int(std::min<size_t>(iov.size() - idx, IOV_MAX)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = std::string("writing the snapshot: ") + strerror(errno);
      return {};
    }
    done += size_t(n);
    while (idx < iov.size() && size_t(n) >= iov[idx].iov_len) n -= ssize_t(iov[idx++].iov_len);
    if (idx < iov.size()) {
      iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + n;
      iov[idx].iov_len -= size_t(n);
    }
  }
  if (done != total || !sealSnapshot(fd.get())) {
    error = std::string("sealing the snapshot: ") + strerror(errno);
    return {};
  }
  bytes = total;
  return fd;
}

std::string readSnapshotFd(int fd) {
  std::string data;
  char buf[65536];
  ssize_t n;
  off_t at = 0;
  while ((n = pread(fd, buf, sizeof buf, at)) > 0) {
    data.append(buf, size_t(n));
    at += n;
  }
  return data;
}

sys::Fd sealedMemfd(const std::string& bytes, std::string& error) {
  sys::Fd fd(memfd_create("baton-state", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) {
    error = std::string("memfd_create: ") + strerror(errno);
    return {};
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += size_t(n);
  }
  if (done != bytes.size() || !sealSnapshot(fd.get())) {
    error = std::string("writing the snapshot: ") + strerror(errno);
    return {};
  }
  return fd;
}

Snapshot::~Snapshot() {
  if (mapped_ && base_) munmap(const_cast<char*>(base_), size_);
}

bool Snapshot::open(int fd, std::string& error, Trust trust) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    error = std::string("cannot stat the snapshot fd: ") + strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    error = "the snapshot fd is not a regular file or memfd";
    return false;
  }
  size_ = size_t(st.st_size);
  if (size_ < sizeof(SnapshotHeader)) {
    error = "snapshot truncated: " + std::to_string(size_) + " bytes, less than its header";
    return false;
  }
  void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) {
    error = std::string("cannot map the snapshot: ") + strerror(errno);
    return false;
  }
  base_ = static_cast<const char*>(p);
  mapped_ = true;
  const int seals = trust == Trust::SealedHandoff ? fcntl(fd, F_GET_SEALS) : -1;
  const bool sealed = seals >= 0 && (seals & kContentSeals) == kContentSeals;
  return validate(error, !sealed);
}

bool Snapshot::openBytes(std::string bytes, std::string& error) {
  // Keep the copy word aligned: std::string data is at least 16-byte aligned for large strings,
  // but be explicit.
  owned_ = std::move(bytes);
  if (reinterpret_cast<uintptr_t>(owned_.data()) % 8 != 0) {
    error = "internal: unaligned snapshot buffer";
    return false;
  }
  base_ = owned_.data();
  size_ = owned_.size();
  if (size_ < sizeof(SnapshotHeader)) {
    error = "snapshot truncated: " + std::to_string(size_) + " bytes, less than its header";
    return false;
  }
  return validate(error);
}

namespace {

// Whether the header's sizes describe exactly `fileBytes`. Each term is compared with what is
// left of the file instead of being added up: the header's fields are untrusted, and a sum such
// as header + fdCount * 32 + bodyBytes can wrap around 2^64 and match a tiny file.
bool containerSizesMatch(const SnapshotHeader& h, size_t fileBytes) {
  if (fileBytes < sizeof(SnapshotHeader) || h.fdCount > kMaxSnapshotFds || h.bodyBytes % 8 != 0) return false;
  const uint64_t left = fileBytes - sizeof(SnapshotHeader);
  const uint64_t fdBytes = uint64_t(h.fdCount) * sizeof(FdEntry);  // at most 2^25: no overflow
  return fdBytes <= left && h.bodyBytes == left - fdBytes;
}

}  // namespace

bool Snapshot::validate(std::string& error, bool verifyChecksum) {
  header_ = reinterpret_cast<const SnapshotHeader*>(base_);
  const SnapshotHeader& h = *header_;
  if (memcmp(h.magic, kSnapshotMagic, sizeof h.magic) != 0) {
    error = "not a baton snapshot (wrong magic)";
    return false;
  }
  if (h.headerBytes != sizeof(SnapshotHeader)) {
    error = "unknown snapshot header size " + std::to_string(h.headerBytes);
    return false;
  }
  const uint64_t fdBytes = uint64_t(h.fdCount) * sizeof(FdEntry);
  if (!containerSizesMatch(h, size_)) {
    error = "snapshot size mismatch: header says " + std::to_string(h.fdCount) + " fds and " +
            std::to_string(h.bodyBytes) + " body bytes, file has " + std::to_string(size_) + " bytes";
    return false;
  }
  const char* table = base_ + sizeof(SnapshotHeader);
  if (verifyChecksum && snapshotChecksum(table, fdBytes + h.bodyBytes) != h.checksum) {
    error = h.checksum == kNoChecksum
                ? "snapshot has no checksum: it was written to be handed over in a sealed memfd, and this one is not sealed"
                : "snapshot checksum mismatch (corrupt snapshot)";
    return false;
  }
  checksumVerified_ = verifyChecksum;
  fds_.resize(h.fdCount);
  if (fdBytes) memcpy(fds_.data(), table, fdBytes);
  body_ = kj::ArrayPtr<const capnp::word>(reinterpret_cast<const capnp::word*>(table + fdBytes),
                                           h.bodyBytes / sizeof(capnp::word));
  if (body_.size() == 0) {
    error = "snapshot has an empty body";
    return false;
  }
  return true;
}

capnp::ReaderOptions Snapshot::readerOptions() const {
  capnp::ReaderOptions o;
  o.traversalLimitInWords = body_.size() * 2 + 1024;
  o.nestingLimit = 64;
  return o;
}

void completeChecksum(std::string& bytes) {
  SnapshotHeader h;
  if (bytes.size() < sizeof h) return;
  memcpy(&h, bytes.data(), sizeof h);
  const uint64_t fdBytes = uint64_t(h.fdCount) * sizeof(FdEntry);
  if (h.checksum != kNoChecksum || !containerSizesMatch(h, bytes.size())) return;
  h.checksum = snapshotChecksum(bytes.data() + sizeof h, fdBytes + h.bodyBytes);
  memcpy(bytes.data(), &h, sizeof h);
}

std::shared_ptr<const ClassImages> classImagesOf(int fd, const std::vector<EncodeHooks::Extent>& extents) {
  if (extents.empty()) return nullptr;
  struct Mapped {
    Snapshot snapshot;
    std::unique_ptr<capnp::FlatArrayMessageReader> reader;
  };
  auto mapped = std::make_shared<Mapped>();
  std::string error;
  if (!mapped->snapshot.open(fd, error, Snapshot::Trust::SealedHandoff)) return nullptr;
  try {
    mapped->reader = std::make_unique<capnp::FlatArrayMessageReader>(mapped->snapshot.body(),
                                                                     mapped->snapshot.readerOptions());
    if (mapped->reader->getSegment(1) != nullptr) return nullptr;  // recorded for one segment only
    auto images = std::make_shared<ClassImages>();
    collectImages(mapped->reader->getRoot<state::Model>(), mapped->reader->getSegment(0).begin(), extents, *images);
    images->keep = mapped;
    return images;
  } catch (const kj::Exception&) {
    return nullptr;
  }
}

bool checkFdIdentities(const std::vector<FdEntry>& fds, std::string& error) {
  // One statx per fd asking only for type and inode (the device always comes along): this runs
  // inside the re-exec window, and statx without the other fields is cheaper than fstat.
  auto what = [](const FdEntry& e) { return "fd " + std::to_string(e.fd) + " (" + fdRoleName(FdRole(e.role)) + ")"; };
  for (const FdEntry& e : fds) {
    if (e.role < uint32_t(FdRole::Listen) || e.role > uint32_t(kNewestFdRole)) {
      error = what(e) + ": unknown role";
      return false;
    }
    struct statx st;
    if (statx(e.fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO, &st) != 0) {
      error = what(e) + " is not open: " + strerror(errno);
      return false;
    }
    const uint64_t dev = makedev(st.stx_dev_major, st.stx_dev_minor);
    if (dev != e.dev || st.stx_ino != e.ino || (st.stx_mode & S_IFMT) != e.type) {
      error = what(e) + " is not the file the snapshot names (device/inode/type differ)";
      return false;
    }
  }
  return true;
}

bool checkFdTableMatches(const std::vector<FdEntry>& table, const std::vector<FdEntry>& named, std::string& error) {
  auto mismatch = [&] {
    error = "the fd table does not match the fds the state names (" + std::to_string(table.size()) +
            " in the table, " + std::to_string(named.size()) + " in the state)";
    return false;
  };
  if (table.size() != named.size()) return mismatch();
  // Indexed by fd number (fds are small and dense), no sorting: this runs inside the re-exec window.
  int32_t top = -1;
  for (const FdEntry& e : table) {
    if (e.fd < 0 || e.role >= 0xfffe) return mismatch();
    top = std::max(top, e.fd);
  }
  if (top >= (1 << 20)) {
    // Beyond any open-files limit Linux allows (a test's or a corrupt table): compare sorted,
    // instead of indexing an array that large.
    auto key = [](const FdEntry& e) { return std::make_pair(e.fd, e.role); };
    std::vector<std::pair<int32_t, uint32_t>> a, b;
    for (const FdEntry& e : table) a.push_back(key(e));
    for (const FdEntry& e : named) b.push_back(key(e));
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    for (size_t i = 1; i < a.size(); ++i)
      if (a[i].first == a[i - 1].first) {
        error = "fd " + std::to_string(a[i].first) + " is named twice";
        return false;
      }
    return a == b || mismatch();
  }
  constexpr uint16_t kAbsent = 0, kMatched = 0xffff;  // else: role + 1
  std::vector<uint16_t> roleOf(size_t(top + 1), kAbsent);
  for (const FdEntry& e : table) {
    if (roleOf[size_t(e.fd)] != kAbsent) {
      error = "fd " + std::to_string(e.fd) + " is named twice";
      return false;
    }
    roleOf[size_t(e.fd)] = uint16_t(e.role + 1);
  }
  // Equal sizes and each named fd matching a table entry not matched before: the same set.
  for (const FdEntry& e : named) {
    if (e.fd < 0 || e.fd > top || roleOf[size_t(e.fd)] != e.role + 1) return mismatch();
    roleOf[size_t(e.fd)] = kMatched;
  }
  return true;
}

bool checkFdTableMatchesModel(const std::vector<FdEntry>& fds, const Model& model, std::string& error) {
  return checkFdTableMatches(fds, modelFds(model), error);
}

}  // namespace baton
