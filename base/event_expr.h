// `start on` / `stop on` expressions: parsing, canonical text, and matching against events.
//
// Grammar (Upstart's): expr := term (("and"|"or") term)*, "and" binding tighter than "or",
// both left-associative.
// term := "(" expr ")" | EVENT [ARG]...   ARG := VALUE | KEY=VALUE | KEY!=VALUE
// Line breaks are allowed inside parentheses (the job-file parser joins those lines).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "schema/model.h"

namespace baton {

// The most nodes an expression may have: the parser, the Upstart import and the snapshot
// decoder refuse larger ones. Printing and matching recurse over the tree, at most this deep.
constexpr size_t kMaxEventExprNodes = 4095;

// Parse `text` into `out` (post-order nodes, root last). On error returns false and sets
// `error` (no "file:line" prefix: the caller adds it).
bool parseEventExpr(std::string_view text, EventExpr& out, std::string& error);

// Extended form used by the job-file parser. On error, `errorOffset` is the byte offset in `text`
// of the token at fault (for "FILE:LINE" reporting of multi-line expressions). `upstartDiffers`
// is set when some nesting level has an "and" after an "or" ("a or b and c"): baton reads that as
// "a or (b and c)" while Upstart, which has no precedence, groups it "(a or b) and c".
bool parseEventExprEx(std::string_view text, EventExpr& out, std::string& error,
                      size_t& errorOffset, bool& upstartDiffers);

// What is wrong with argument `arg` of the match node for event `event` ("" if nothing), given
// whether a KEY=VALUE argument came before it: the KEY of KEY=VALUE / KEY!=VALUE must be a
// variable name, and no positional value may follow a KEY=VALUE. The parser and the Upstart
// import refuse such arguments, so that every expression prints as text that parses back.
std::string eventArgProblem(const std::string& arg, bool afterNamed, const std::string& event);

// Canonical text with the fewest parentheses that keep the tree's shape, e.g.
// "runlevel [2345] and (filesystem or net-device-up IFACE=lo)". Arguments that need it are
// double-quoted, so parseEventExpr(eventExprToString(e)) gives back e.
std::string eventExprToString(const EventExpr& expr);

// Offer `event` to the expression. Match nodes that are not yet matched and that match the event
// (name glob, positional args against the event's env values in order, KEY=VALUE / KEY!=VALUE
// with globs; args are first $-expanded with `jobEnv`) become matched with eventId = event.id.
// And/Or nodes are recomputed. Returns true if any Match node newly matched.
bool eventExprHandle(EventExpr& expr, const Event& event, const std::vector<std::string>& jobEnv);

// False only if the Match node `n` cannot match `event` whatever its job's environment is: an arg
// that holds a `$` is taken to match (its expansion needs that environment). For deciding which
// held-encoded classes an event concerns without decoding them.
bool eventNodeMayMatch(const EventNode& n, const Event& event);

// True if the root is currently satisfied.
bool eventExprSatisfied(const EventExpr& expr);

// Ids of the events that matched nodes which contribute to the root being true (in node order,
// no duplicates). Used to collect the environment and to block those events.
std::vector<uint64_t> eventExprMatchedEvents(const EventExpr& expr);

// Clear all match state.
void eventExprReset(EventExpr& expr);

// Every event name the expression mentions (for show-config / check-config).
std::vector<std::string> eventExprNames(const EventExpr& expr);

// fnmatch(3)-style glob (*, ?, [...]) without flags.
bool globMatch(std::string_view pattern, std::string_view text);

}  // namespace baton
