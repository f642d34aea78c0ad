// Fuzz target: job files and event expressions.
//
// The input up to its first NUL byte is a .conf, the rest (if there is a NUL) its .override;
// both go to parseJobFile (supervisor/jobfile.h). The whole input is also parsed as an event
// expression. Every expression accepted (the input's, a job's `start on` / `stop on`) must print
// as canonical text that parses back to the same expression and prints the same. See
// fuzz_checks.h.
#include "tests/fuzz/fuzz_checks.h"

#include "base/event_expr.h"
#include "supervisor/jobfile.h"

namespace baton::fuzz {
namespace {

std::string roundTrip(const EventExpr& e, const std::string& what) {
  if (e.empty()) return {};
  const std::string text = eventExprToString(e);
  EventExpr again;
  std::string error;
  size_t offset = 0;
  bool differs = false;
  if (!parseEventExprEx(text, again, error, offset, differs))
    return what + ": its canonical text '" + text + "' does not parse: " + error;
  if (eventExprToString(again) != text)
    return what + ": '" + text + "' reads back as '" + eventExprToString(again) + "'";
  if (!(again == e)) return what + ": '" + text + "' reads back as another expression";
  return {};
}

}  // namespace

std::string checkJobFile(std::string_view input) {
  const size_t nul = input.find('\0');
  const std::string_view conf = input.substr(0, nul);
  const bool hasOverride = nul != std::string_view::npos;
  const std::string_view override = hasOverride ? input.substr(nul + 1) : std::string_view();
  ParsedJob job = parseJobFile("fuzz", "/etc/baton/jobs/fuzz.conf", conf,
                               hasOverride ? "/etc/baton/jobs/fuzz.override" : "", override);
  if (job.def && !job.errors.empty()) return "a job with errors was loaded";
  if (!job.def && job.errors.empty()) return "a job was refused without an error";
  if (job.def) {
    if (std::string p = roundTrip(job.def->startOn, "start on"); !p.empty()) return p;
    if (std::string p = roundTrip(job.def->stopOn, "stop on"); !p.empty()) return p;
  }

  EventExpr expr;
  std::string error;
  size_t offset = 0;
  bool differs = false;
  if (!parseEventExprEx(input, expr, error, offset, differs)) {
    if (error.empty()) return "an expression was refused without a reason";
    if (offset > input.size()) return "error offset " + std::to_string(offset) + " past the end";
    return {};
  }
  return roundTrip(expr, "expression");
}

}  // namespace baton::fuzz

BATON_FUZZ_TARGET(baton::fuzz::checkJobFile)
