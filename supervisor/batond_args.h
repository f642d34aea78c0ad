// batond's command line: one table of its flags (batondFlags()), from which both the parse and
// the --help text are made. main() (batond_main.cpp) sets the defaults, parses, and acts on the
// outcome. docs/batond.md lists the same flags.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>

#include "supervisor/supervisor.h"

namespace baton {

// The headings of --help, in this order.
enum class FlagGroup : uint8_t {
  User,      // what a user or an init script passes
  Limits,    // limits on control clients (ControlLimits); a re-exec hands them on
  Internal,  // the re-exec handoff: batond passes these to the binary it re-execs into
  Test,      // tests and benchmarks
  Upstart,   // Upstart 1.x's re-exec contract (`telinit u`)
};

// What main() does once the command line is parsed.
enum class BatondAction : uint8_t {
  Run,          // serve: start, restore or take over from Upstart
  Exit,         // exit with exitCode (--version, --help, usage errors, ...)
  VerifyState,  // --verify-state: check the snapshot on verifyStateFd, exit with the verdict
};

struct BatondArgs {
  Options options;
  RestoreArgs restore;
  // Upstart's re-exec contract: `--restart --state-fd N` (what Upstart 1.6-1.13 passes when it
  // re-execs /sbin/init). Upstart passes its own other flags too: with --restart anywhere on the
  // command line, the ones batond does not know are ignored.
  bool upstartRestart = false;
  int upstartStateFd = -1;
  BatondAction action = BatondAction::Run;
  int exitCode = 0;
  int verifyStateFd = -1;
  // The limit flags given (FlagGroup::Limits), as "FLAG VALUE " words: what main() puts in
  // kCarriedLimitsVar for the image a re-exec starts, which has no other way to learn them (they
  // are not in the snapshot).
  std::string limitFlags;
};

// The environment variable that carries the limit flags across a re-exec (and a rollback).
constexpr const char* kCarriedLimitsVar = "BATON_CONTROL_LIMITS";

struct BatondFlag;

// What a flag's handler works on: the arguments so far, its table entry and its value.
struct FlagParse {
  BatondArgs& args;
  const BatondFlag& flag;
  const std::string& given;  // the flag as given (the flag or its alias)
  const std::string& value;  // its value; empty for a flag that takes none
  std::ostream& out;
  std::ostream& err;

  // Stop the parse: main() exits with `code`. Returns false (what a handler returns to stop).
  bool exit(int code);
  // The value as a file descriptor number (0 to 2^20); else the usage error, and false.
  bool fd(int& into);
  // The value as a whole number from `min` to `max`; else the usage error ("FLAG needs `what`
  // from MIN to MAX"), and false.
  bool number(uint32_t& into, uint32_t min, uint32_t max, std::string_view what);
};

struct BatondFlag {
  std::string_view flag;       // "--confdir"
  std::string_view alias;      // "-h"; empty: none
  std::string_view valueName;  // "DIR"; empty: the flag takes no value
  FlagGroup group;
  std::string_view help;       // one paragraph; --help wraps it
  // Applies the flag; false stops the parse (args.action says what main() does). nullptr: the
  // flag is only main()'s fast path, as its only argument (--exec-floor); anywhere else it is an
  // unknown option.
  bool (*handle)(FlagParse&);
  // Appended to `help` by --help: what another table says (log priorities, handoff options).
  std::string (*moreHelp)(const BatondFlag&) = nullptr;
};

// Every flag batond knows, grouped (in FlagGroup order), each group in --help order. A constant
// table: nothing is built at startup, which a re-exec's downtime would pay for.
std::span<const BatondFlag> batondFlags();
std::string_view flagGroupHeading(FlagGroup group);
// The --help text: every flag under its group's heading.
std::string batondUsage();

// Parse argv[1..argc) into `args`, which holds the defaults. What batond prints goes to `out`
// (--version, --help, --state-formats) and `err` (usage errors, ignored Upstart options). A usage
// error leaves action Exit with exitCode 2.
void parseBatondArgs(int argc, const char* const* argv, BatondArgs& args, std::ostream& out, std::ostream& err);

// On a restore: the limit flags the previous image carried (kCarriedLimitsVar's value, "FLAG VALUE"
// words). Anything else, or a bad value, is ignored with a word on `err`: never a usage error
// inside a re-exec, and an older or newer image's flags may differ.
void parseCarriedLimits(std::string_view words, BatondArgs& args, std::ostream& err);

}  // namespace baton
