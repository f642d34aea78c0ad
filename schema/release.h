// The one place for baton's release facts: its version and the snapshot format it writes.
// CMakeLists.txt reads BATON_VERSION from here; migrate/formats.h uses kSnapshotFormat.
// When a release changes the snapshot format, bump kSnapshotFormat and add the migration steps
// (docs/formats.md); record every release in RELEASES and CHANGELOG.md.
#pragma once
#include <cstdint>

#define BATON_VERSION_STRING "0.2.0"

namespace baton {
constexpr uint32_t kSnapshotFormat = 2;        // written by this build
constexpr uint32_t kOldestReadableFormat = 1;  // oldest format this build restores
}  // namespace baton
