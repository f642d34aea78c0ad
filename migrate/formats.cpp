#include "migrate/formats.h"

#include <capnp/serialize.h>
#include <kj/exception.h>

#include <sstream>

#include "serialize/codec.h"

namespace baton {

std::string stateFormatsText() {
  return std::string("baton ") + BATON_VERSION + "\nwrites " + std::to_string(kSnapshotFormat) +
         "\nreads " + std::to_string(kOldestReadableFormat) + "-" + std::to_string(kSnapshotFormat) + "\n";
}

bool parseStateFormats(const std::string& text, StateFormats& out, std::string& error) {
  std::istringstream in(text);
  std::string line;
  bool haveWrites = false, haveReads = false;
  while (std::getline(in, line)) {
    if (line.rfind("baton ", 0) == 0) out.version = line.substr(6);
    else if (line.rfind("writes ", 0) == 0) haveWrites = sscanf(line.c_str() + 7, "%u", &out.writes) == 1;
    else if (line.rfind("reads ", 0) == 0)
      haveReads = sscanf(line.c_str() + 6, "%u-%u", &out.readsMin, &out.readsMax) == 2;
  }
  if (!haveWrites || !haveReads || out.readsMin > out.readsMax) {
    error = "the target did not describe its state formats (is it a baton binary?)";
    return false;
  }
  return true;
}

bool negotiateFormat(const StateFormats& target, uint32_t& format, std::string& error) {
  uint32_t best = std::min(target.readsMax, kSnapshotFormat);
  if (best < target.readsMin || best < kOldestReadableFormat) {
    error = "no common state format: the target reads " + std::to_string(target.readsMin) + "-" +
            std::to_string(target.readsMax) + ", this build writes " +
            std::to_string(kOldestReadableFormat) + "-" + std::to_string(kSnapshotFormat);
    return false;
  }
  format = best;
  return true;
}

bool loadSnapshot(const Snapshot& snapshot, Model& model, std::string& error) {
  const SnapshotHeader& h = snapshot.header();
  if (h.format > kSnapshotFormat || h.format < kOldestReadableFormat) {
    error = "snapshot format " + std::to_string(h.format) + " (written by baton " +
            std::string(h.writerVersion, strnlen(h.writerVersion, sizeof h.writerVersion)) +
            ") is not readable by this build, which reads formats " +
            std::to_string(kOldestReadableFormat) + "-" + std::to_string(kSnapshotFormat);
    return false;
  }
  try {
    capnp::FlatArrayMessageReader reader(snapshot.body(), snapshot.readerOptions());
    if (!decodeModel(reader.getRoot<state::Model>(), model, error)) return false;
  } catch (const kj::Exception& e) {
    error = std::string("snapshot body is malformed: ") + e.getDescription().cStr();
    return false;
  }
  return checkFdTableMatchesModel(snapshot.fds(), model, error);
}

}  // namespace baton
