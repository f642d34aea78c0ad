// Tests for supervisor/batond_args: batond's command line, parsed from one table of flags.
#include "supervisor/batond_args.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/log_priority.h"
#include "migrate/formats.h"
#include "migrate/handoff.h"

namespace baton {
namespace {

struct Parsed {
  BatondArgs args;
  std::string out, err;
};

Parsed parse(std::vector<std::string> words) {
  words.insert(words.begin(), "batond");
  std::vector<const char*> argv;
  for (const std::string& w : words) argv.push_back(w.c_str());
  argv.push_back(nullptr);
  Parsed p;
  std::ostringstream out, err;
  parseBatondArgs(int(words.size()), argv.data(), p.args, out, err);
  p.out = out.str();
  p.err = err.str();
  return p;
}

bool runs(const Parsed& p) { return p.args.action == BatondAction::Run && p.err.empty(); }
bool exits(const Parsed& p, int code) { return p.args.action == BatondAction::Exit && p.args.exitCode == code; }

// A valid value for each value name of the table.
std::string sampleValue(std::string_view valueName) {
  static const std::map<std::string_view, std::string> samples = {
      {"FD", "5"}, {"MS", "250"}, {"N", "8"}, {"P", "warn"}, {"S:P:E", "1:2:3"}, {"NAME", "grp"}, {"WHY", "because"}};
  auto it = samples.find(valueName);
  return it == samples.end() ? "/some/where" : it->second;
}

TEST(BatondArgs, Defaults) {
  Parsed p = parse({});
  EXPECT_TRUE(runs(p));
  EXPECT_EQ(p.args.restore.snapshotFd, -1);
  EXPECT_EQ(p.args.upstartStateFd, -1);
  EXPECT_FALSE(p.args.upstartRestart);
  EXPECT_EQ(p.args.options.config.logPriority, logPriorityName(kDefaultLogPriority));
}

TEST(BatondArgs, EveryFlagParses) {
  for (const BatondFlag& f : batondFlags()) {
    if (!f.handle) continue;  // --exec-floor: main()'s fast path only
    std::vector<std::string> words = {std::string(f.flag)};
    if (!f.valueName.empty()) words.push_back(sampleValue(f.valueName));
    Parsed p = parse(words);
    if (f.flag == "--version" || f.flag == "--help" || f.flag == "--state-formats") {
      EXPECT_TRUE(exits(p, 0)) << f.flag;
      EXPECT_FALSE(p.out.empty()) << f.flag;
      EXPECT_TRUE(p.err.empty()) << f.flag;
    } else if (f.flag == "--verify-state") {
      EXPECT_EQ(p.args.action, BatondAction::VerifyState);
      EXPECT_EQ(p.args.verifyStateFd, 5);
    } else {
      EXPECT_TRUE(runs(p)) << f.flag << ": " << p.err;
    }
    if (!f.alias.empty()) {
      Parsed q = parse({std::string(f.alias)});
      EXPECT_EQ(q.out, p.out) << f.alias;
      EXPECT_EQ(q.args.action, p.args.action) << f.alias;
    }
  }
}

TEST(BatondArgs, WhatEachFlagSets) {
  Parsed p = parse({"--confdir", "/c", "--socket", "/s", "--logdir", "/l", "--cgroup-base", "b", "--cgroup-root",
                    "/r", "--log-priority", "warn", "--test-hooks", "--idle-encode-ms", "0"});
  ASSERT_TRUE(runs(p)) << p.err;
  const Config& c = p.args.options.config;
  EXPECT_EQ(c.confDir, "/c");
  EXPECT_EQ(c.socketPath, "/s");
  EXPECT_TRUE(p.args.options.socketGiven);
  EXPECT_EQ(c.logDir, "/l");
  EXPECT_EQ(c.cgroupBase, "b");
  EXPECT_EQ(c.cgroupRoot, "/r");
  EXPECT_EQ(c.logPriority, "warn");
  EXPECT_TRUE(c.testHooks);
  EXPECT_EQ(c.idleEncodeMs, 0u);
  EXPECT_FALSE(parse({}).args.options.socketGiven);
  EXPECT_EQ(parse({"--idle-encode-ms", "86400000"}).args.options.config.idleEncodeMs, 86400000u);

  EXPECT_EQ(parse({"--debug"}).args.options.config.logPriority, "debug");
  EXPECT_EQ(parse({"--verbose"}).args.options.config.logPriority, "info");
  EXPECT_EQ(parse({"--error"}).args.options.config.logPriority, "error");
  // The last one wins.
  EXPECT_EQ(parse({"--debug", "--log-priority", "fatal"}).args.options.config.logPriority, "fatal");

  // The re-exec handoff, as reexec.cpp builds it.
  p = parse({"--restore-fd", "10", "--logdir", "/l", "--socket", "/s", "--rollback-fd", "11", "--epoll-fd", "12",
             "--preverified-classes", "--sweep-on-sigchld", "--test-refuse-restore", "--test-refuse-rollback",
             "--reexec-phases", "100:200:300", "--rolled-back-because", "no luck"});
  ASSERT_TRUE(runs(p)) << p.err;
  const RestoreArgs& r = p.args.restore;
  EXPECT_EQ(r.snapshotFd, 10);
  EXPECT_EQ(r.rollbackFd, 11);
  EXPECT_EQ(r.handoff.epollFd, 12);
  EXPECT_TRUE(r.handoff.options.has(HandoffOption::EpollFd));
  EXPECT_TRUE(r.handoff.options.has(HandoffOption::PreverifiedClasses));
  EXPECT_TRUE(r.handoff.options.has(HandoffOption::SigchldSweep));
  EXPECT_FALSE(r.handoff.options.has(HandoffOption::UnchecksummedHandoff));  // has no flag
  EXPECT_TRUE(r.testRefuseRestore);
  EXPECT_TRUE(r.testRefuseRollback);
  EXPECT_EQ(r.serializeNs, 100);
  EXPECT_EQ(r.preflightNs, 200);
  EXPECT_EQ(r.execStartNs, 300);
  EXPECT_EQ(r.rolledBackBecause, "no luck");
  // Not given: nothing set.
  const RestoreArgs none = parse({"--restore-fd", "10"}).args.restore;
  EXPECT_TRUE(none.handoff.options.empty());
  EXPECT_EQ(none.handoff.epollFd, -1);
  EXPECT_EQ(none.rollbackFd, -1);
  EXPECT_FALSE(none.testRefuseRestore || none.testRefuseRollback);
  // Phases of another form are ignored, as before.
  p = parse({"--reexec-phases", "1:2"});
  EXPECT_TRUE(runs(p));
  EXPECT_EQ(p.args.restore.serializeNs, 0);

  // The flags an old image builds from the handoff table are the ones batond parses.
  std::vector<std::string> words;
  appendHandoffArgs(words, {.options = allHandoffOptions(), .epollFd = 7});
  p = parse(words);
  ASSERT_TRUE(runs(p)) << p.err;
  HandoffSet passed = allHandoffOptions();
  HandoffSet expected;
  for (const HandoffOptionInfo& o : kHandoffOptions)
    if (!o.flag.empty()) expected.add(o.option);
  EXPECT_EQ(p.args.restore.handoff.options, expected);
  EXPECT_NE(passed, expected);  // unchecksummed-handoff travels without a flag
  EXPECT_EQ(p.args.restore.handoff.epollFd, 7);

  p = parse({"--restart", "--state-fd", "9"});
  ASSERT_TRUE(runs(p)) << p.err;
  EXPECT_TRUE(p.args.upstartRestart);
  EXPECT_EQ(p.args.upstartStateFd, 9);
}

TEST(BatondArgs, LimitsOnControlClients) {
  Parsed p = parse({});
  const ControlLimits defaults;
  EXPECT_EQ(p.args.options.limits.maxConnections, defaults.maxConnections);
  EXPECT_EQ(p.args.limitFlags, "");
  p = parse({"--max-connections", "8", "--max-connections-per-uid", "0", "--max-unanswered", "2",
             "--frame-timeout-ms", "300", "--max-connections", "9"});
  ASSERT_TRUE(runs(p)) << p.err;
  const ControlLimits& l = p.args.options.limits;
  EXPECT_EQ(l.maxConnections, 9u);  // the last one wins
  EXPECT_EQ(l.maxConnectionsPerUid, 0u);
  EXPECT_EQ(l.maxUnanswered, 2u);
  EXPECT_EQ(l.frameTimeoutMs, 300u);
  // What a re-exec hands on: the flags as given, which parse back to the same limits.
  EXPECT_EQ(p.args.limitFlags,
            "--max-connections 8 --max-connections-per-uid 0 --max-unanswered 2 --frame-timeout-ms 300 "
            "--max-connections 9 ");
  BatondArgs carried;
  std::ostringstream err;
  parseCarriedLimits(p.args.limitFlags, carried, err);
  EXPECT_EQ(err.str(), "");
  EXPECT_EQ(carried.action, BatondAction::Run);
  EXPECT_EQ(carried.options.limits.maxConnections, 9u);
  EXPECT_EQ(carried.options.limits.maxConnectionsPerUid, 0u);
  EXPECT_EQ(carried.options.limits.maxUnanswered, 2u);
  EXPECT_EQ(carried.options.limits.frameTimeoutMs, 300u);
  EXPECT_EQ(carried.limitFlags, p.args.limitFlags);  // and are handed on again
  for (const BatondFlag& f : batondFlags()) {
    if (f.group != FlagGroup::Limits) continue;
    EXPECT_EQ(f.valueName.empty(), false) << f.flag;
    EXPECT_NE(parse({std::string(f.flag), "5"}).args.limitFlags, "") << f.flag;
  }
}

TEST(BatondArgs, CarriedLimitsIgnoreWhatIsNotALimitAndBadValues) {
  BatondArgs args;
  std::ostringstream err;
  parseCarriedLimits("  --max-unanswered 3 --confdir /x --future-limit 7 --max-connections x --max-connections-per-uid",
                     args, err);
  EXPECT_EQ(args.action, BatondAction::Run);
  EXPECT_EQ(args.exitCode, 0);
  EXPECT_EQ(args.options.limits.maxUnanswered, 3u);
  EXPECT_EQ(args.options.config.confDir, Config().confDir);
  EXPECT_EQ(args.options.limits.maxConnections, ControlLimits().maxConnections);
  EXPECT_EQ(err.str(),
            "batond: ignoring '--confdir' in $BATON_CONTROL_LIMITS\n"
            "batond: ignoring '/x' in $BATON_CONTROL_LIMITS\n"
            "batond: ignoring '--future-limit' in $BATON_CONTROL_LIMITS\n"
            "batond: ignoring '7' in $BATON_CONTROL_LIMITS\n"
            "batond: --max-connections needs a number from 1 to 1048576\n"
            "batond: ignoring it (in $BATON_CONTROL_LIMITS)\n"
            "batond: ignoring '--max-connections-per-uid' in $BATON_CONTROL_LIMITS\n");
  EXPECT_EQ(args.limitFlags, "--max-unanswered 3 ");
}

TEST(BatondArgs, Outputs) {
  Parsed p = parse({"--version"});
  EXPECT_EQ(p.out, std::string("batond (baton) ") + BATON_VERSION + "\n");
  EXPECT_EQ(parse({"--state-formats"}).out, stateFormatsText());
  EXPECT_EQ(parse({"--help"}).out, batondUsage());
  EXPECT_EQ(parse({"-h"}).out, batondUsage());
  // The first of them ends the parse: what follows is not looked at.
  EXPECT_TRUE(exits(parse({"--version", "--bogus"}), 0));
  EXPECT_TRUE(exits(parse({"--log-priority", "loud", "--state-formats"}), 0));
  EXPECT_TRUE(exits(parse({"--help", "--cgroup-base", "/x"}), 0));
  p = parse({"--verify-state", "0", "--bogus"});
  EXPECT_EQ(p.args.action, BatondAction::VerifyState);
  EXPECT_EQ(p.args.verifyStateFd, 0);
  EXPECT_TRUE(p.err.empty());
}

TEST(BatondArgs, MissingValues) {
  for (const BatondFlag& f : batondFlags()) {
    if (!f.handle || f.valueName.empty()) continue;
    const std::string flag(f.flag);
    Parsed p = parse({"--debug", flag});
    EXPECT_TRUE(exits(p, 2)) << flag;
    EXPECT_EQ(p.err, "batond: " + flag + " needs a value\n" + batondUsage()) << flag;
    EXPECT_TRUE(p.out.empty());
  }
  // A value may look like a flag: it is taken as the value.
  Parsed p = parse({"--confdir", "--debug"});
  EXPECT_TRUE(runs(p)) << p.err;
  EXPECT_EQ(p.args.options.config.confDir, "--debug");
}

TEST(BatondArgs, BadFileDescriptorNumbers) {
  int fdFlags = 0;
  for (const BatondFlag& f : batondFlags()) {
    if (!f.handle || f.valueName != "FD") continue;
    ++fdFlags;
    const std::string flag(f.flag);
    for (const char* bad : {"", "x", "-1", "5x", "1048577", "99999999999999999999"}) {
      Parsed p = parse({flag, bad});
      EXPECT_TRUE(exits(p, 2)) << flag << " " << bad;
      EXPECT_EQ(p.err, "batond: " + flag + " needs a file descriptor number\n") << flag << " " << bad;
    }
    for (const char* good : {"0", "1048576"}) {
      Parsed p = parse({flag, good});
      EXPECT_NE(p.args.action, BatondAction::Exit) << f.flag << " " << good << ": " << p.err;
    }
  }
  EXPECT_EQ(fdFlags, 5);  // --verify-state, --restore-fd, --rollback-fd, --epoll-fd, --state-fd
}

TEST(BatondArgs, BadValues) {
  // The flags that take a whole number in a range.
  struct BadNumbers {
    const char* flag;
    std::vector<const char*> values;
    const char* needs;
  };
  const BadNumbers numbers[] = {
      {"--idle-encode-ms", {"", "x", "-1", "86400001", "1.5"}, "milliseconds from 0 to 86400000"},
      {"--max-connections", {"", "x", "0", "-1", "1048577", "2.5"}, "a number from 1 to 1048576"},
      {"--max-unanswered", {"", "x", "0", "-1", "1048577"}, "a number from 1 to 1048576"},
      {"--max-connections-per-uid", {"", "-1", "1048577"}, "a number from 0 to 1048576"},
      {"--frame-timeout-ms", {"", "x", "-1", "86400001"}, "milliseconds from 0 to 86400000"},
  };
  for (const BadNumbers& n : numbers)
    for (const char* bad : n.values) {
      Parsed p = parse({n.flag, bad});
      EXPECT_TRUE(exits(p, 2)) << n.flag << " " << bad;
      EXPECT_EQ(p.err, std::string("batond: ") + n.flag + " needs " + n.needs + "\n");
    }
  for (const char* bad : {"", "/abs", "a/../b", ".."}) {
    Parsed p = parse({"--cgroup-base", bad});
    EXPECT_TRUE(exits(p, 2)) << bad;
    EXPECT_EQ(p.err, "batond: --cgroup-base must be a relative group name (no '/' at the start, no '..')\n");
  }
  for (const char* bad : {"", "loud", "DEBUG", "warning"}) {
    Parsed p = parse({"--log-priority", bad});
    EXPECT_TRUE(exits(p, 2)) << bad;
    EXPECT_EQ(p.err, std::string("batond: unknown log priority '") + bad +
                         "' (debug, info, message, warn, error, fatal)\n");
  }
  // The cgroup base is checked before the priority.
  EXPECT_NE(parse({"--log-priority", "x", "--cgroup-base", "/x"}).err.find("--cgroup-base"), std::string::npos);
}

TEST(BatondArgs, UnknownOptions) {
  for (const char* bad : {"--bogus", "-x", "", "confdir", "--confdir=/x", "-H", "--HELP"}) {
    Parsed p = parse({"--debug", bad, "--version"});
    EXPECT_TRUE(exits(p, 2)) << bad;
    EXPECT_EQ(p.err, std::string("batond: unknown option '") + bad + "'\n" + batondUsage());
    EXPECT_TRUE(p.out.empty()) << bad;
  }
  // --exec-floor is main()'s fast path as the only argument; anywhere else it is unknown.
  Parsed p = parse({"--exec-floor", "--version"});
  EXPECT_TRUE(exits(p, 2));
  EXPECT_EQ(p.err, "batond: unknown option '--exec-floor'\n" + batondUsage());
}

TEST(BatondArgs, UpstartToleratesUnknownOptions) {
  // With --restart anywhere (even after them, even as another flag's value), unknown options are
  // ignored with a word on stderr.
  Parsed p = parse({"--no-sessions", "--restart", "--state-fd", "4", "--default-console", "--debug"});
  EXPECT_EQ(p.args.action, BatondAction::Run);
  EXPECT_EQ(p.err, "batond: ignoring Upstart option '--no-sessions'\n"
                   "batond: ignoring Upstart option '--default-console'\n");
  EXPECT_EQ(p.args.upstartStateFd, 4);
  EXPECT_EQ(p.args.options.config.logPriority, "debug");
  p = parse({"--confdir", "--restart", "--bogus"});
  EXPECT_TRUE(p.args.upstartRestart);
  EXPECT_EQ(p.args.action, BatondAction::Run);
  EXPECT_EQ(p.err, "batond: ignoring Upstart option '--bogus'\n");
  // Errors of known flags stay errors.
  p = parse({"--restart", "--bogus", "--state-fd", "x"});
  EXPECT_TRUE(exits(p, 2));
  EXPECT_EQ(p.err, "batond: ignoring Upstart option '--bogus'\nbatond: --state-fd needs a file descriptor number\n");
  EXPECT_TRUE(exits(parse({"--restart", "--confdir"}), 2));
  EXPECT_TRUE(exits(parse({"--restart", "--log-priority", "loud"}), 2));
  // Without --restart no state fd is taken over.
  EXPECT_FALSE(parse({"--state-fd", "4"}).args.upstartRestart);
}

TEST(BatondArgs, HelpListsEveryFlagUnderItsGroup) {
  const std::string usage = batondUsage();
  EXPECT_EQ(usage.rfind("usage: batond [OPTIONS]\n", 0), 0u);
  std::vector<size_t> headings;
  for (FlagGroup g : {FlagGroup::User, FlagGroup::Limits, FlagGroup::Internal, FlagGroup::Test, FlagGroup::Upstart}) {
    std::string heading("\n");
    heading.append(flagGroupHeading(g)).append("\n");
    const size_t at = usage.find(heading);
    ASSERT_NE(at, std::string::npos) << heading;
    if (!headings.empty()) {
      EXPECT_GT(at, headings.back());
    }
    headings.push_back(at);
  }
  headings.push_back(usage.size());
  std::set<std::string_view> seen;
  for (const BatondFlag& f : batondFlags()) {
    EXPECT_TRUE(seen.insert(f.flag).second) << "twice: " << f.flag;
    if (!f.alias.empty()) {
      EXPECT_TRUE(seen.insert(f.alias).second) << "twice: " << f.alias;
    }
    std::string spec("\n  ");
    if (!f.alias.empty()) spec.append(f.alias).append(", ");
    spec.append(f.flag);
    if (!f.valueName.empty()) spec.append(" ").append(f.valueName);
    size_t at = usage.find(spec + " ");
    if (at == std::string::npos) at = usage.find(spec + "\n");
    ASSERT_NE(at, std::string::npos) << spec;
    EXPECT_GT(at, headings[size_t(f.group)]) << spec;
    EXPECT_LT(at, headings[size_t(f.group) + 1]) << spec;
    EXPECT_FALSE(f.help.empty()) << spec;
  }
  // Every line fits in 80 columns.
  std::istringstream lines(usage);
  for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 80u) << line;
  // Every handoff option with a flag is an internal flag, described by the handoff table.
  for (const HandoffOptionInfo& o : kHandoffOptions) {
    if (o.flag.empty()) continue;
    bool found = false;
    for (const BatondFlag& f : batondFlags())
      if (f.flag == o.flag) {
        found = true;
        EXPECT_EQ(f.group, FlagGroup::Internal);
        EXPECT_EQ(f.valueName.empty(), o.fd == nullptr);
        EXPECT_NE(f.help.find(o.meaning), std::string::npos);
      }
    EXPECT_TRUE(found) << o.flag;
  }
}

TEST(BatondArgs, DocsListExactlyTheFlags) {
  // docs/batond.md's tables under "## Command line": the first cell of each row names the flags.
  std::ifstream in(std::string(BATON_SOURCE_DIR) + "/docs/batond.md");
  ASSERT_TRUE(in);
  std::set<std::string> documented;
  bool inSection = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) inSection = line == "## Command line";
    if (!inSection || line.rfind("| `-", 0) != 0) continue;
    std::string cell = line.substr(2, line.find(" |", 2) - 2);
    for (size_t at = 0, end; (at = cell.find('`', at)) != std::string::npos; at = end + 1) {
      end = cell.find('`', at + 1);
      if (end == std::string::npos) break;
      const std::string word = cell.substr(at + 1, end - at - 1);
      documented.insert(word.substr(0, word.find(' ')));
    }
  }
  std::set<std::string> table;
  for (const BatondFlag& f : batondFlags()) {
    table.insert(std::string(f.flag));
    if (!f.alias.empty()) table.insert(std::string(f.alias));
  }
  EXPECT_EQ(documented, table);
}

}  // namespace
}  // namespace baton
