#include "migrate/steps.h"

#include <capnp/any.h>

#include <vector>

#include "schema/state.capnp.h"
#include "schema/state_v1.capnp.h"

namespace baton {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string label(const std::string& job, capnp::Text::Reader instance) {
  return "'" + job + (instance.size() ? " (" + std::string(instance.cStr()) + ")" : "") + "'";
}

// The newest enumerant of format 1's ExpectType.
constexpr auto kLastV1Expect = state_v1::ExpectType::DAEMON;

}  // namespace

bool upgrade1to2(capnp::MessageReader& in, capnp::MessageBuilder& out, MigrationNotes&, std::string& error) {
  // Read through the frozen schema: a value format 1 never had is a malformed body, not a
  // format-2 meaning to pass on.
  for (auto c : in.getRoot<state_v1::Model>().getClasses())
    for (auto d : c.getDefs())
      if (uint16_t(d.getExpect()) > uint16_t(kLastV1Expect)) {
        error = "job '" + std::string(c.getName().cStr()) + "' has expect type " + std::to_string(uint16_t(d.getExpect())) +
                ", which format 1 does not have";
        return false;
      }
  out.setRoot(in.getRoot<capnp::AnyStruct>());
  return true;
}

bool downgrade2to1(capnp::MessageReader& in, capnp::MessageBuilder& out, MigrationNotes& notes, std::string& error) {
  auto model = in.getRoot<state::Model>();
  std::vector<std::string> waiting, notifyJobs, mapped;
  for (auto c : model.getClasses()) {
    bool notify = false;
    for (auto d : c.getDefs()) notify |= d.getExpect() == state::ExpectType::NOTIFY;
    if (!notify) continue;
    const std::string name = c.getName().cStr();
    std::vector<std::string> running;
    for (auto i : c.getInstances()) {
      if (i.getReadyState() == state::ReadyState::WAITING) waiting.push_back(label(name, i.getName()));
      else if (i.getReadyState() != state::ReadyState::NONE) running.push_back(label(name, i.getName()));
    }
    notifyJobs.push_back("'" + name + "'");
    mapped.push_back("job '" + name + "': `expect notify` becomes `expect none`" +
                     (running.empty() ? std::string()
                                      : "; the readiness and status text of " + join(running) + " are dropped"));
  }
  if (!waiting.empty()) {
    error = "format 1 has no readiness notification, and " + join(waiting) +
            (waiting.size() == 1 ? " is" : " are") + " still waiting for it: retry once ready or stopped";
    return false;
  }
  if (!mapped.empty() && !notes.mayMap) {
    error = "format 1 has no readiness notification: job " + join(notifyJobs) +
            " would be mapped from `expect notify` to `expect none` (allow it with --allow-downgrade-mapping)";
    return false;
  }

  // A copy, then what format 1 has no place for is taken out (its reader would ignore the fields
  // of format 2, but an `expect notify` it would refuse, and a later upgrade should not find
  // stale readiness state beside `expect none`).
  capnp::MallocMessageBuilder copy;
  copy.setRoot(model);
  auto m = copy.getRoot<state::Model>();
  for (auto c : m.getClasses()) {
    bool mappedClass = false;
    for (auto d : c.getDefs()) {
      if (d.getExpect() != state::ExpectType::NOTIFY) continue;
      d.setExpect(state::ExpectType::NONE);
      d.setReadyTimeoutMs(90000);  // the schema default: nothing stored
      // Not what the job file says any more: a release that knows `expect notify` reloads it.
      d.setContentHash("");
      mappedClass = true;
    }
    if (!mappedClass) continue;
    for (auto i : c.getInstances()) {
      i.setReadyState(state::ReadyState::NONE);
      i.setReadyDeadlineNs(0);
      i.disownStatusText();
      i.setNotifyErrno(0);
    }
  }
  m.setNotifyFd(-1);  // not handed over (migrateSnapshot drops its fd-table entry)
  m.setNotifyRefused(0);
  m.setNotifyMalformed(0);
  out.setRoot(copy.getRoot<capnp::AnyStruct>().asReader());
  for (auto c : out.getRoot<state_v1::Model>().getClasses())
    for (auto d : c.getDefs())
      if (uint16_t(d.getExpect()) > uint16_t(kLastV1Expect)) {
        error = "internal: job '" + std::string(c.getName().cStr()) + "' kept an expect type format 1 lacks";
        return false;
      }
  notes.mapped.insert(notes.mapped.end(), mapped.begin(), mapped.end());
  return true;
}

}  // namespace baton
