// The migration steps between adjacent snapshot formats (registered in migrationSteps(),
// migrate/formats.cpp). Each is a pure function from one body message to another, tested on its
// own (tests/unit/migration_steps_test.cpp); docs/formats.md says what each format changed and
// the downgrade policy.
#pragma once

#include <string>

#include <capnp/message.h>

#include "migrate/formats.h"

namespace baton {

// Format 1 -> 2: format 2 only added things (`expect notify`, readiness state, the notify
// socket) whose absence means "not used", so the body is copied; what format 1 cannot hold (an
// `expect` beyond daemon) is refused.
bool upgrade1to2(capnp::MessageReader& in, capnp::MessageBuilder& out, MigrationNotes& notes, std::string& error);

// Format 2 -> 1, the downgrade policy of docs/formats.md:
// - no `expect notify` job: copied, with the notify socket left behind;
// - an instance still waiting for its readiness notification: refused, naming it (format 1
//   would count it as started, which it has not said it is);
// - otherwise (`expect notify` definitions, instances ready, reloading or stopping): only with
//   notes.mayMap, mapped to `expect none` (the nearest format-1 meaning: started once exec'd),
//   their readiness and status text dropped, each job listed in notes.mapped; refused otherwise.
bool downgrade2to1(capnp::MessageReader& in, capnp::MessageBuilder& out, MigrationNotes& notes, std::string& error);

}  // namespace baton
