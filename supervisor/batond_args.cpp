#include "supervisor/batond_args.h"

#include <errno.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <sstream>
#include <vector>

#include "base/log_priority.h"
#include "migrate/formats.h"
#include "migrate/handoff.h"

namespace baton {

namespace {

constexpr long long kMaxFd = 1 << 20;
constexpr uint32_t kMaxIdleEncodeMs = 86400000;
constexpr uint32_t kMaxLimit = 1 << 20;  // connections and requests: as many as batond's fds

bool parseInt(const std::string& s, long long& out) {
  char* end = nullptr;
  errno = 0;
  out = strtoll(s.c_str(), &end, 10);
  return !s.empty() && *end == 0 && errno == 0;
}

// A flag that sets a string of the configuration.
template <std::string Config::*field>
bool setConfig(FlagParse& p) {
  p.args.options.config.*field = p.value;
  return true;
}

// A flag that sets a limit on control clients (ControlLimits), `what` from `min` to `max`.
template <uint32_t ControlLimits::*field, uint32_t min, uint32_t max>
bool setLimit(FlagParse& p) {
  const char* what = p.flag.valueName == "MS" ? "milliseconds" : "a number";
  if (!p.number(p.args.options.limits.*field, min, max, what)) return false;
  p.args.limitFlags.append(p.flag.flag).append(" ").append(p.value).append(" ");
  return true;
}

// A shorthand for --log-priority NAME.
template <LogPriority priority>
bool setPriority(FlagParse& p) {
  p.args.options.config.logPriority = logPriorityName(priority);
  return true;
}

// A flag of the handoff table (migrate/handoff.h): the option is given, with its value if it
// takes one.
bool handoffFlag(FlagParse& p) {
  const HandoffOptionInfo* o = findHandoffFlag(p.flag.flag);
  Handoff& h = p.args.restore.handoff;
  h.options.add(o->option);
  return !o->fd || p.fd(h.*o->fd);
}

std::string handoffHelp(const BatondFlag& f) {
  return "; passed only to a target that announces 'accepts " + std::string(findHandoffFlag(f.flag)->name) + "'";
}

std::string priorityHelp(const BatondFlag&) {
  return ": " + logPriorityNames("|") + " (default " + std::string(logPriorityName(kDefaultLogPriority)) + ")";
}

using G = FlagGroup;

// The table, in --help order: these, then the handoff options' flags, then kFlagsAfterHandoff.
constexpr BatondFlag kFlagsBeforeHandoff[] = {
    {"--confdir", "", "DIR", G::User, "job files (default /etc/baton/jobs)", setConfig<&Config::confDir>},
    {"--socket", "", "PATH", G::User,
     "control socket (default /run/baton/control; non-root: $XDG_RUNTIME_DIR/baton/control)",
     [](FlagParse& p) {
       p.args.options.config.socketPath = p.value;
       p.args.options.socketGiven = true;
       return true;
     }},
    {"--logdir", "", "DIR", G::User, "job logs (default /var/log/baton; non-root: $HOME/.local/state/baton)",
     setConfig<&Config::logDir>},
    {"--cgroup-base", "", "NAME", G::User, "parent group of job cgroups in every hierarchy (default baton)",
     setConfig<&Config::cgroupBase>},
    {"--cgroup-root", "", "DIR", G::User, "where the cgroup hierarchies are mounted (default /sys/fs/cgroup)",
     setConfig<&Config::cgroupRoot>},
    {"--log-priority", "", "P", G::User, "batond's own messages", setConfig<&Config::logPriority>, priorityHelp},
    {"--debug", "", "", G::User, "shorthand for --log-priority debug", setPriority<LogPriority::Debug>},
    {"--verbose", "", "", G::User, "shorthand for --log-priority info", setPriority<LogPriority::Info>},
    {"--idle-encode-ms", "", "MS", G::User,
     "this long after activity, hold the jobs at rest encoded again (about a third of the memory; "
     "default 10000, 0 = never)",
     [](FlagParse& p) { return p.number(p.args.options.config.idleEncodeMs, 0, kMaxIdleEncodeMs, "milliseconds"); }},
    {"--version", "", "", G::User, "print the version and exit",
     [](FlagParse& p) {
       p.out << "batond (baton) " << BATON_VERSION << "\n";
       return p.exit(0);
     }},
    {"--state-formats", "", "", G::User,
     "print the snapshot formats this binary writes and reads and the handoff options it accepts, exit",
     [](FlagParse& p) {
       p.out << stateFormatsText();
       return p.exit(0);
     }},
    {"--verify-state", "", "FD", G::User,
     "pre-flight: check the snapshot on FD, print a verdict, exit 0 if it can be restored, 1 if not",
     [](FlagParse& p) {
       if (!p.fd(p.args.verifyStateFd)) return false;
       p.args.action = BatondAction::VerifyState;
       return false;
     }},
    {"--help", "-h", "", G::User, "print this help and exit",
     [](FlagParse& p) {
       p.out << batondUsage();
       return p.exit(0);
     }},

    {"--max-connections", "", "N", G::Limits,
     "control connections open at once, in all; the last 1/16 (64 of 1024) only for root and batond's own "
     "user (default 1024)",
     setLimit<&ControlLimits::maxConnections, 1, kMaxLimit>},
    {"--max-connections-per-uid", "", "N", G::Limits,
     "control connections open at once per user other than root and batond's own (default 16; 0: none)",
     setLimit<&ControlLimits::maxConnectionsPerUid, 0, kMaxLimit>},
    {"--max-unanswered", "", "N", G::Limits,
     "requests one connection may have waiting for their answer; the next gets an error (default 64)",
     setLimit<&ControlLimits::maxUnanswered, 1, kMaxLimit>},
    {"--frame-timeout-ms", "", "MS", G::Limits,
     "close a connection whose request frame is not complete this long after its first byte (default "
     "10000, 0 = never)",
     setLimit<&ControlLimits::frameTimeoutMs, 0, kMaxIdleEncodeMs>},

    {"--restore-fd", "", "FD", G::Internal, "take over the state handed across a re-exec (the snapshot on FD)",
     [](FlagParse& p) { return p.fd(p.args.restore.snapshotFd); }},
    {"--rollback-fd", "", "FD", G::Internal,
     "the previous binary, pinned: if the restore fails, it is executed again with the same snapshot",
     [](FlagParse& p) { return p.fd(p.args.restore.rollbackFd); }},
};

constexpr BatondFlag kFlagsAfterHandoff[] = {
    {"--reexec-phases", "", "S:P:E", G::Internal,
     "the previous image's serialization and pre-flight times and the time it called execve (ns, "
     "CLOCK_MONOTONIC), for the re-exec's outcome",
     [](FlagParse& p) {
       long long s1 = 0, s2 = 0, s3 = 0;
       if (sscanf(p.value.c_str(), "%lld:%lld:%lld", &s1, &s2, &s3) == 3) {
         p.args.restore.serializeNs = s1;
         p.args.restore.preflightNs = s2;
         p.args.restore.execStartNs = s3;
       }
       return true;
     }},
    {"--rolled-back-because", "", "WHY", G::Internal,
     "this is the rollback of a failed restore, for this reason (the re-exec's outcome)",
     [](FlagParse& p) {
       p.args.restore.rolledBackBecause = p.value;
       return true;
     }},

    {"--test-hooks", "", "", G::Test,
     "honour test-only job variables (BATON_TEST_HOLD_FIFO) and the re-exec failure injections below",
     [](FlagParse& p) {
       p.args.options.config.testHooks = true;
       return true;
     }},
    {"--test-refuse-restore", "", "", G::Test,
     "(internal, with --test-hooks in the handed state) the restore refuses the state",
     [](FlagParse& p) {
       p.args.restore.testRefuseRestore = true;
       return true;
     }},
    {"--test-refuse-rollback", "", "", G::Test,
     "(internal, with --test-hooks in the handed state) the rollback after a refused restore refuses "
     "too: wait-only mode",
     [](FlagParse& p) {
       p.args.restore.testRefuseRollback = true;
       return true;
     }},
    {"--exec-floor", "", "", G::Test,
     "as the only argument: exit at the top of main (the exec floor of the benchmarks)", nullptr},

    {"--restart", "", "", G::Upstart,
     "take over from Upstart 1.x PID 1 (its re-exec contract), without the startup event; options "
     "batond does not know are ignored",
     [](FlagParse&) { return true; }},
    {"--state-fd", "", "FD", G::Upstart, "with --restart: import Upstart's JSON state from FD",
     [](FlagParse& p) { return p.fd(p.args.upstartStateFd); }},
    {"--error", "", "", G::Upstart, "shorthand for --log-priority error", setPriority<LogPriority::Error>},
};

constexpr size_t handoffFlagCount() {
  size_t n = 0;
  for (const HandoffOptionInfo& o : kHandoffOptions) n += !o.flag.empty();
  return n;
}

constexpr auto kFlags = [] {
  std::array<BatondFlag, std::size(kFlagsBeforeHandoff) + handoffFlagCount() + std::size(kFlagsAfterHandoff)> out{};
  size_t i = 0;
  for (const BatondFlag& f : kFlagsBeforeHandoff) out[i++] = f;
  // The handoff options' flags, from their table.
  for (const HandoffOptionInfo& o : kHandoffOptions)
    if (!o.flag.empty()) out[i++] = {o.flag, "", o.fd ? "FD" : "", G::Internal, o.meaning, handoffFlag, handoffHelp};
  for (const BatondFlag& f : kFlagsAfterHandoff) out[i++] = f;
  return out;
}();

const BatondFlag* findFlag(std::string_view a) {
  for (const BatondFlag& f : batondFlags())
    if (f.handle && (f.flag == a || (!f.alias.empty() && f.alias == a))) return &f;
  return nullptr;
}

constexpr size_t kHelpColumn = 24, kHelpWidth = 80;

// `text` from column `column` on (where the line is now), wrapped at kHelpWidth.
void appendWrapped(std::string& out, std::string_view text, size_t column) {
  size_t col = column;
  bool lineEmpty = true;
  while (!text.empty()) {
    const size_t space = text.find(' ');
    const std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (!lineEmpty && col + 1 + word.size() > kHelpWidth) {
      out.append("\n").append(column, ' ');
      col = column;
      lineEmpty = true;
    }
    if (!lineEmpty) out += ' ', ++col;
    out.append(word);
    col += word.size();
    lineEmpty = false;
  }
  out += '\n';
}

}  // namespace

bool FlagParse::exit(int code) {
  args.action = BatondAction::Exit;
  args.exitCode = code;
  return false;
}

bool FlagParse::number(uint32_t& into, uint32_t min, uint32_t max, std::string_view what) {
  long long n = -1;
  if (!parseInt(value, n) || n < min || n > max) {
    err << "batond: " << given << " needs " << what << " from " << min << " to " << max << "\n";
    return exit(2);
  }
  into = uint32_t(n);
  return true;
}

bool FlagParse::fd(int& into) {
  long long n = -1;
  if (!parseInt(value, n) || n < 0 || n > kMaxFd) {
    err << "batond: " << given << " needs a file descriptor number\n";
    return exit(2);
  }
  into = int(n);
  return true;
}

std::span<const BatondFlag> batondFlags() { return kFlags; }

std::string_view flagGroupHeading(FlagGroup group) {
  switch (group) {
    case FlagGroup::User: return "Options:";
    case FlagGroup::Limits: return "Limits on control clients (a re-exec keeps them):";
    case FlagGroup::Internal: return "Internal: the re-exec handoff (a re-exec passes these to the new binary):";
    case FlagGroup::Test: return "Tests and benchmarks:";
    case FlagGroup::Upstart: return "Upstart compatibility (what Upstart 1.x passes when it re-execs /sbin/init):";
  }
  return "";
}

std::string batondUsage() {
  std::string out = "usage: batond [OPTIONS]\n";
  for (FlagGroup g : {FlagGroup::User, FlagGroup::Limits, FlagGroup::Internal, FlagGroup::Test, FlagGroup::Upstart}) {
    out.append("\n").append(flagGroupHeading(g)).append("\n");
    for (const BatondFlag& f : batondFlags()) {
      if (f.group != g) continue;
      std::string spec = "  ";
      if (!f.alias.empty()) spec.append(f.alias).append(", ");
      spec.append(f.flag);
      if (!f.valueName.empty()) spec.append(" ").append(f.valueName);
      out.append(spec);
      if (spec.size() + 2 > kHelpColumn) out.append("\n").append(kHelpColumn, ' ');
      else out.append(kHelpColumn - spec.size(), ' ');
      appendWrapped(out, f.moreHelp ? std::string(f.help) + f.moreHelp(f) : std::string(f.help), kHelpColumn);
    }
  }
  return out;
}

void parseBatondArgs(int argc, const char* const* argv, BatondArgs& args, std::ostream& out, std::ostream& err) {
  auto usageError = [&args] {
    args.action = BatondAction::Exit;
    args.exitCode = 2;
  };
  for (int i = 1; i < argc; ++i) args.upstartRestart |= strcmp(argv[i], "--restart") == 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const BatondFlag* f = findFlag(a);
    if (!f) {
      if (args.upstartRestart) {
        err << "batond: ignoring Upstart option '" << a << "'\n";
        continue;
      }
      err << "batond: unknown option '" << a << "'\n" << batondUsage();
      return usageError();
    }
    std::string value;
    if (!f->valueName.empty()) {
      if (i + 1 >= argc) {
        err << "batond: " << a << " needs a value\n" << batondUsage();
        return usageError();
      }
      value = argv[++i];
    }
    FlagParse p{args, *f, a, value, out, err};
    if (!f->handle(p)) return;
  }
  // What only the whole command line decides (the last of several flags wins).
  const Config& config = args.options.config;
  if (config.cgroupBase.empty() || config.cgroupBase[0] == '/' || config.cgroupBase.find("..") != std::string::npos) {
    err << "batond: --cgroup-base must be a relative group name (no '/' at the start, no '..')\n";
    return usageError();
  }
  if (!parseLogPriority(config.logPriority)) {
    err << "batond: unknown log priority '" << config.logPriority << "' (" << logPriorityNames(", ") << ")\n";
    return usageError();
  }
}

void parseCarriedLimits(std::string_view words, BatondArgs& args, std::ostream& err) {
  std::vector<std::string> w;
  for (size_t at = 0; at < words.size();) {
    const size_t end = std::min(words.find(' ', at), words.size());
    if (end > at) w.emplace_back(words.substr(at, end - at));
    at = end + 1;
  }
  std::ostringstream out;
  for (size_t i = 0; i < w.size(); ++i) {
    const BatondFlag* f = findFlag(w[i]);
    if (!f || f->group != FlagGroup::Limits || i + 1 == w.size()) {
      err << "batond: ignoring '" << w[i] << "' in $" << kCarriedLimitsVar << "\n";
      continue;
    }
    FlagParse p{args, *f, w[i], w[i + 1], out, err};
    ++i;
    if (!f->handle(p)) {  // a bad value: the usage error is printed; the limit keeps its default
      err << "batond: ignoring it (in $" << kCarriedLimitsVar << ")\n";
      args.action = BatondAction::Run;
      args.exitCode = 0;
    }
  }
}

}  // namespace baton
