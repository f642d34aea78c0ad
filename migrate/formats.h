// Snapshot formats this build knows, and loading a snapshot of any of them into the model.
//
// One place for the facts: the format this build writes and the oldest it reads. Upgrade and
// downgrade steps between formats are added here, one pair per format change (docs/formats.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <capnp/message.h>

#include "migrate/handoff.h"
#include "schema/model.h"
#include "schema/release.h"
#include "serialize/snapshot.h"

namespace baton {


// What `batond --state-formats` prints, e.g. "baton 0.1.0\nwrites 1\nreads 1-1\n", then
// "accepts NAME\n" for every handoff option of this build (kHandoffOptions).
std::string stateFormatsText();

struct StateFormats {
  std::string version;
  uint32_t writes = 0, readsMin = 0, readsMax = 0;
  // Handoff options the target understands beyond the snapshot, one "accepts NAME" line each
  // (migrate/handoff.h). 0.1.0 announces none; an option is only passed to a target that
  // announced it, since an unknown flag would fail inside the blind window.
  HandoffSet accepts;
};
bool parseStateFormats(const std::string& text, StateFormats& out, std::string& error);

// The newest format both this build can write and the target can read; false if none.
bool negotiateFormat(const StateFormats& target, uint32_t& format, std::string& error);

// What a walk of migration steps may do, and what it did.
struct MigrationNotes {
  // In: a downgrade may map what the older format cannot hold to its nearest meaning (the
  // client agreed: `batonctl reexec --allow-downgrade-mapping`, `baton-state migrate --map`).
  // Without it, a downgrade that needs a mapping is refused, naming what it would map.
  bool mayMap = false;
  // Out: one line per mapping made ("job 'sshd': `expect notify` becomes `expect none`, ...").
  std::vector<std::string> mapped;
};

// One migration step between adjacent formats: a small pure function from a body message in the
// schema of `from` to one in the schema of `to`. Each format change adds an upgrade (N -> N+1)
// and a downgrade (N+1 -> N). A downgrade that would lose something the older format cannot
// represent either maps it to the nearest older meaning (only with notes.mayMap; each mapping
// listed in notes.mapped) or fails with a precise reason naming the jobs.
struct MigrationStep {
  uint32_t from, to;
  const char* what;  // one line: what changes
  bool (*apply)(capnp::MessageReader& in, capnp::MessageBuilder& out, MigrationNotes& notes, std::string& error);
};
const std::vector<MigrationStep>& migrationSteps();

// Re-encode `snapshot` in format `to` by walking the steps (up or down). The fd table is kept,
// except the fds of roles newer than `to` (fdRoleFormat), which its steps drop from the state.
bool migrateSnapshot(const Snapshot& snapshot, uint32_t to, std::string& bytes, std::string& error,
                     MigrationNotes* notes = nullptr);
// The same over another registry (tests walk made-up chains of steps).
bool migrateSnapshot(const Snapshot& snapshot, uint32_t to, std::string& bytes, std::string& error,
                     const std::vector<MigrationStep>& steps, MigrationNotes* notes);

// The way from format `from` to `to`, as `batonctl reexec` and `status --daemon` show it:
// "2 (no migration)", "1 -> 2 (1 upgrade step)", "2 -> 1 (1 downgrade step)".
std::string formatPath(uint32_t from, uint32_t to);

// Migrate (if needed) and decode a validated snapshot into `model`.
bool loadSnapshot(const Snapshot& snapshot, Model& model, std::string& error);
// The same for a restore: job definitions stay in the snapshot (kept mapped while any is
// undecoded) and are decoded on first use.
// `trustPreverified`: the handoff says the snapshot's preverifiedClasses were verified by this
// binary's own pre-flight; their checks are skipped (only for a snapshot of this build's format).
// `checkFdTable` false: the caller compares the fd table with the model itself
// (checkFdTableMatches), in a pass over the state it makes anyway.
bool loadSnapshotLazily(std::shared_ptr<const Snapshot> snapshot, Model& model, std::string& error,
                        bool trustPreverified = false, bool checkFdTable = true);
bool loadSnapshot(const Snapshot& snapshot, std::shared_ptr<const Snapshot> keep, Model& model,
                  std::string& error, bool trustPreverified = false, bool checkFdTable = true);

}  // namespace baton
