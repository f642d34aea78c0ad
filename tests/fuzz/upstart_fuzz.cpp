// Fuzz target: Upstart's serialized state (JSON), as a takeover from Upstart reads it.
//
// importUpstartState (migrate/upstart_import.h) on the input; what it accepts must be a model
// baton can run from: each expression prints and parses back, and the model survives a snapshot
// (encode, decode) unchanged, with no fd adopted twice. See fuzz_checks.h.
#include "tests/fuzz/fuzz_checks.h"

#include <capnp/message.h>

#include <set>

#include "base/event_expr.h"
#include "migrate/upstart_import.h"
#include "serialize/codec.h"

namespace baton::fuzz {
namespace {

std::string exprPrints(const EventExpr& e, const std::string& what) {
  if (e.empty()) return {};
  const std::string text = eventExprToString(e);
  EventExpr again;
  std::string error;
  if (!parseEventExpr(text, again, error)) return what + ": its text '" + text + "' does not parse: " + error;
  EventExpr pristine = e;
  eventExprReset(pristine);
  if (!(again == pristine)) return what + ": '" + text + "' reads back as another expression";
  return {};
}

}  // namespace

std::string checkUpstart(std::string_view input) {
  UpstartImport out;
  std::string error;
  UpstartImportOptions options;
  options.monotonicNowNs = 1'000'000'000'000'000;  // fixed: the same input, the same result
  if (!importUpstartState(input, options, out, error)) return error.empty() ? "refused without a reason" : "";

  std::set<int32_t> adopted;
  for (int32_t fd : out.adoptedFds)
    if (fd < 0 || !adopted.insert(fd).second) return "fd " + std::to_string(fd) + " adopted twice or negative";
  for (const auto& [name, cls] : out.model.classes) {
    if (!cls.def) return "class " + name + " without a definition";
    if (std::string p = exprPrints(cls.def->startOn, name + " start on"); !p.empty()) return p;
    if (std::string p = exprPrints(cls.def->stopOn, name + " stop on"); !p.empty()) return p;
    for (const auto& [iname, inst] : cls.instances)
      if (std::string p = exprPrints(inst.stopOn, name + " (" + iname + ") stop on"); !p.empty()) return p;
  }

  capnp::MallocMessageBuilder message;
  encodeModel(out.model, message.initRoot<state::Model>());
  Model again;
  if (!decodeModel(message.getRoot<state::Model>().asReader(), again, error))
    return "the imported model is refused by the snapshot decoder: " + error;
  if (!(again == out.model)) return "the imported model changes in a snapshot";
  return {};
}

}  // namespace baton::fuzz

BATON_FUZZ_TARGET(baton::fuzz::checkUpstart)
