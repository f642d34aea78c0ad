// Snapshot formats this build knows, and loading a snapshot of any of them into the model.
//
// One place for the facts: the format this build writes and the oldest it reads. Upgrade and
// downgrade steps between formats are added here, one pair per format change (docs/formats.md).
#pragma once
#include <cstdint>
#include <string>

#include "schema/model.h"
#include "serialize/snapshot.h"

namespace baton {

constexpr uint32_t kSnapshotFormat = 1;        // written by this build
constexpr uint32_t kOldestReadableFormat = 1;  // oldest format this build restores

// What `batond --state-formats` prints, e.g. "baton 0.1.0\nwrites 1\nreads 1-1\n".
std::string stateFormatsText();

struct StateFormats {
  std::string version;
  uint32_t writes = 0, readsMin = 0, readsMax = 0;
};
bool parseStateFormats(const std::string& text, StateFormats& out, std::string& error);

// The newest format both this build can write and the target can read; false if none.
bool negotiateFormat(const StateFormats& target, uint32_t& format, std::string& error);

// Migrate (if needed) and decode a validated snapshot into `model`.
bool loadSnapshot(const Snapshot& snapshot, Model& model, std::string& error);

}  // namespace baton
