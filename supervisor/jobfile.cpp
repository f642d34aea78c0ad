// Job files in Upstart's syntax (see jobfile.h).
//
// Lexical rules (those of Upstart's libnih config parser):
// - A stanza is a keyword followed by arguments up to the end of the line. Blank lines, leading
//   white space and comments (an unquoted, unescaped '#' up to the end of the line) are ignored.
// - Arguments are separated by blanks. "..." and '...' group (the quotes are removed; a quoted
//   string may span lines, the line break and the blanks around it become one space). A
//   backslash escapes the next character; backslash-newline continues the line.
// - `exec` takes the rest of the line verbatim (quotes and backslashes are kept for the shell).
// - `script` ... `end script` takes the lines in between; the indentation common to all
//   non-blank lines is removed. `end script` may be indented and followed by a comment.
// - `start on` / `stop on` continue onto the next lines while a parenthesis is open.
//
// .override rule: the .override is parsed after the .conf into the same definition, exactly as
// if its stanzas were appended to the .conf (this is what Upstart does). Hence single-valued
// stanzas (exec/script and the other processes, description, start on, stop on, instance,
// console, kill *, respawn limit, nice, oom, umask, chroot, chdir, setuid, setgid, expect, ...)
// take the override's value; `manual` in the override drops the .conf's `start on`; and list
// stanzas accumulate: env (a KEY already set gets the override's value), export, emits,
// normal exit, cgroup (settings of the same controller and group are merged) and limit (a
// resource already limited gets the override's values).
#include "supervisor/jobfile.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "base/environ.h"
#include "base/names.h"
#include "base/event_expr.h"

namespace baton {

namespace {

bool isBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// ---------------------------------------------------------------------------------------------
// Content checks

bool validUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;  // continuation byte, overlong 2-byte lead (C0/C1) or > U+10FFFF lead
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

// "too large" / "binary file" / "not valid UTF-8", or empty if the content is acceptable.
std::string contentProblem(std::string_view content) {
  if (content.size() > kMaxJobFileBytes) return "file too large";
  if (content.find('\0') != std::string_view::npos) return "binary file";
  if (!validUtf8(content)) return "not valid UTF-8";
  return {};
}

std::string fnv1a64Hex(std::string_view conf, bool hasOverride, std::string_view override) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto feed = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  };
  auto feedLen = [&feed](uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
    feed(std::string_view(b, 8));
  };
  // Lengths keep "conf + override" from colliding with a different split of the same bytes.
  feedLen(conf.size());
  feed(conf);
  if (hasOverride) {
    feed("override");
    feedLen(override.size());
    feed(override);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Values

enum class Num { Ok, NotNumber, OutOfRange };

// Decimal integer with an optional sign, in [lo, hi].
Num parseSigned(std::string_view s, int64_t lo, int64_t hi, int64_t& out) {
  size_t i = 0;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    i = 1;
  }
  if (i >= s.size()) return Num::NotNumber;
  uint64_t acc = 0;
  bool overflow = false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return Num::NotNumber;
    if (acc > (UINT64_MAX / 2) / 10) overflow = true;
    acc = acc * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  if (overflow || acc > static_cast<uint64_t>(INT64_MAX)) return Num::OutOfRange;
  int64_t v = neg ? -static_cast<int64_t>(acc) : static_cast<int64_t>(acc);
  if (v < lo || v > hi) return Num::OutOfRange;
  out = v;
  return Num::Ok;
}

// Unsigned integer in [0, hi] with digits of `base` (8 or 10), no sign.
Num parseUnsigned(std::string_view s, uint64_t hi, uint64_t& out, int base = 10) {
  if (s.empty()) return Num::NotNumber;
  if (s.size() > 1 && s[0] == '-') {
    // A negative number is a number, just not an allowed one.
    for (char c : s.substr(1))
      if (c < '0' || c > '9') return Num::NotNumber;
    return Num::OutOfRange;
  }
  uint64_t acc = 0;
  bool overflow = false;
  for (char c : s) {
    if (c < '0' || c >= '0' + base) return Num::NotNumber;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (acc > (UINT64_MAX - d) / static_cast<uint64_t>(base)) overflow = true;
    acc = acc * static_cast<uint64_t>(base) + d;
  }
  if (overflow || acc > hi) return Num::OutOfRange;
  out = acc;
  return Num::Ok;
}

struct SignalName {
  const char* name;
  int number;
};

const SignalName kSignals[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},     {"IOT", SIGIOT},     {"BUS", SIGBUS},
    {"FPE", SIGFPE},     {"KILL", SIGKILL},     {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},   {"TERM", SIGTERM},
#ifdef SIGSTKFLT
    {"STKFLT", SIGSTKFLT},
#endif
    {"CHLD", SIGCHLD},   {"CLD", SIGCHLD},      {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},   {"URG", SIGURG},
    {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH}, {"IO", SIGIO},         {"POLL", SIGPOLL},   {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

std::string upper(std::string_view s) {
  std::string r(s);
  for (char& c : r)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return r;
}

// A signal name ("TERM", "SIGTERM", case-insensitive), or -1.
int signalFromName(std::string_view s) {
  std::string u = upper(s);
  std::string_view v = u;
  if (v.size() > 3 && v.substr(0, 3) == "SIG") v.remove_prefix(3);
  for (const SignalName& sn : kSignals)
    if (v == sn.name) return sn.number;
  return -1;
}

// A signal name or number (1..SIGRTMAX), or -1.
int parseSignal(std::string_view s) {
  int byName = signalFromName(s);
  if (byName > 0) return byName;
  uint64_t n = 0;
  if (parseUnsigned(s, static_cast<uint64_t>(SIGRTMAX), n) == Num::Ok && n >= 1)
    return static_cast<int>(n);
  return -1;
}

struct LimitName {
  const char* name;
  int resource;
};

const LimitName kLimits[] = {
    {"as", RLIMIT_AS},         {"core", RLIMIT_CORE},       {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},     {"fsize", RLIMIT_FSIZE},     {"memlock", RLIMIT_MEMLOCK},
    {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},   {"nofile", RLIMIT_NOFILE},
    {"nproc", RLIMIT_NPROC},   {"rss", RLIMIT_RSS},         {"rtprio", RLIMIT_RTPRIO},
    {"sigpending", RLIMIT_SIGPENDING}, {"stack", RLIMIT_STACK},
};

// ---------------------------------------------------------------------------------------------
// Lexer

struct Arg {
  std::string text;
  int line = 0;
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {
    // A UTF-8 byte order mark is not part of the first stanza.
    if (s_.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;
  }

  size_t pos = 0;
  int line = 1;

  bool eof() const { return pos >= s_.size(); }

  // Skips blanks and backslash-newline continuations on the current logical line.
  void skipBlanks() {
    while (pos < s_.size()) {
      if (isBlank(s_[pos])) {
        ++pos;
      } else if (s_[pos] == '\\' && pos + 1 < s_.size() && s_[pos + 1] == '\n') {
        pos += 2;
        ++line;
      } else {
        break;
      }
    }
  }

  // True if an argument follows on the current logical line.
  bool hasToken() {
    skipBlanks();
    return pos < s_.size() && s_[pos] != '\n' && s_[pos] != '#';
  }

  // Consumes the rest of the line (a comment) and its newline. Use after !hasToken(), or to
  // recover from an error.
  void endLine() {
    while (pos < s_.size() && s_[pos] != '\n') ++pos;
    if (pos < s_.size()) {
      ++pos;
      ++line;
    }
  }

  // Reads one dequoted argument (precondition: hasToken()).
  bool nextArg(Arg& out, std::string& error, int& errorLine) {
    out.text.clear();
    out.line = line;
    char quote = 0;
    int quoteLine = line;
    const size_t n = s_.size();
    while (pos < n) {
      char c = s_[pos];
      if (c == '\\') {
        if (pos + 1 >= n) {
          error = "trailing backslash";
          errorLine = line;
          ++pos;
          return false;
        }
        if (s_[pos + 1] == '\n') {
          if (!quote) break;  // continuation: ends this argument
          pos += 2;
          ++line;
          continue;
        }
        out.text += s_[pos + 1];
        pos += 2;
        continue;
      }
      if (quote) {
        if (c == quote) {
          quote = 0;
          ++pos;
        } else if (c == '\n') {
          // A line break inside quotes and the blanks around it become one space.
          while (!out.text.empty() && isBlank(out.text.back())) out.text.pop_back();
          out.text += ' ';
          ++pos;
          ++line;
          while (pos < n && isBlank(s_[pos])) ++pos;
        } else {
          out.text += c;
          ++pos;
        }
        continue;
      }
      if (c == '"' || c == '\'') {
        quote = c;
        quoteLine = line;
        ++pos;
        continue;
      }
      if (isBlank(c) || c == '\n' || c == '#') break;
      out.text += c;
      ++pos;
    }
    if (quote) {
      error = "unterminated quote";
      errorLine = quoteLine;
      return false;
    }
    return true;
  }

  // The rest of the logical line, verbatim except that line continuations (and line breaks
  // inside quotes) become one space; trailing blanks removed. Consumes the line.
  bool rawLine(std::string& out, std::string& error, int& errorLine) {
    skipBlanks();
    out.clear();
    char quote = 0;
    int quoteLine = line;
    const size_t n = s_.size();
    auto joinLines = [&](size_t skip) {
      while (!out.empty() && isBlank(out.back())) out.pop_back();
      out += ' ';
      pos += skip;
      ++line;
      while (pos < n && isBlank(s_[pos])) ++pos;
    };
    while (pos < n) {
      char c = s_[pos];
      if (c == '\\') {
        if (pos + 1 >= n) {
          error = "trailing backslash";
          errorLine = line;
          ++pos;
          return false;
        }
        if (s_[pos + 1] == '\n') {
          joinLines(2);
          continue;
        }
        out += c;
        out += s_[pos + 1];
        pos += 2;
        continue;
      }
      if (quote) {
        if (c == '\n') {
          joinLines(1);
          continue;
        }
        if (c == quote) quote = 0;
        out += c;
        ++pos;
        continue;
      }
      if (c == '"' || c == '\'') {
        quote = c;
        quoteLine = line;
      } else if (c == '\n' || c == '#') {
        break;
      }
      out += c;
      ++pos;
    }
    if (quote) {
      error = "unterminated quote";
      errorLine = quoteLine;
      return false;
    }
    while (!out.empty() && isBlank(out.back())) out.pop_back();
    endLine();
    return true;
  }

  // An event expression: the rest of the line, continued onto the next lines while a
  // parenthesis is open. Comments are dropped; line breaks are kept so that offsets into the
  // result map back to lines (see lineAt). Consumes the last line.
  std::string expressionText() {
    skipBlanks();
    std::string out;
    int depth = 0;
    char quote = 0;
    const size_t n = s_.size();
    while (pos < n) {
      char c = s_[pos];
      if (c == '\\' && pos + 1 < n) {
        out += c;
        out += s_[pos + 1];
        if (s_[pos + 1] == '\n') ++line;
        pos += 2;
        continue;
      }
      if (quote) {
        if (c == quote) quote = 0;
        if (c == '\n') ++line;
        out += c;
        ++pos;
        continue;
      }
      if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '#') {
        while (pos < n && s_[pos] != '\n') ++pos;
        continue;
      } else if (c == '(') {
        ++depth;
      } else if (c == ')') {
        --depth;
      } else if (c == '\n') {
        if (depth <= 0) break;
        ++line;
      }
      out += c;
      ++pos;
    }
    endLine();
    return out;
  }

  // Lines up to "end TYPE"; pos must be at the start of the first line of the block. Returns
  // false if the file ends first.
  bool block(std::string_view type, std::string& out) {
    std::vector<std::string_view> lines;
    bool found = false;
    const size_t n = s_.size();
    while (pos < n) {
      size_t eol = s_.find('\n', pos);
      if (eol == std::string_view::npos) eol = n;
      std::string_view text = s_.substr(pos, eol - pos);
      pos = eol < n ? eol + 1 : n;
      if (eol < n) ++line;
      if (isBlockEnd(text, type)) {
        found = true;
        break;
      }
      lines.push_back(text);
    }
    if (!found) return false;
    // Common indentation of the non-blank lines.
    std::optional<std::string_view> indent;
    for (std::string_view l : lines) {
      size_t k = 0;
      while (k < l.size() && isBlank(l[k])) ++k;
      if (k == l.size()) continue;  // blank line
      std::string_view lead = l.substr(0, k);
      if (!indent) {
        indent = lead;
      } else {
        size_t m = 0;
        while (m < indent->size() && m < lead.size() && (*indent)[m] == lead[m]) ++m;
        indent = indent->substr(0, m);
      }
    }
    out.clear();
    for (std::string_view l : lines) {
      size_t k = 0;
      while (k < l.size() && isBlank(l[k])) ++k;
      if (k < l.size()) out.append(l.substr(indent ? indent->size() : 0));
      out += '\n';
    }
    return true;
  }

 private:
  static bool isBlockEnd(std::string_view l, std::string_view type) {
    size_t i = 0;
    while (i < l.size() && isBlank(l[i])) ++i;
    if (l.substr(i, 3) != "end") return false;
    i += 3;
    if (i >= l.size() || !isBlank(l[i])) return false;
    while (i < l.size() && isBlank(l[i])) ++i;
    if (l.substr(i, type.size()) != type) return false;
    i += type.size();
    while (i < l.size() && isBlank(l[i])) ++i;
    return i == l.size() || l[i] == '#';
  }

  std::string_view s_;
};

// ---------------------------------------------------------------------------------------------
// Stanzas

class JobParser {
 public:
  JobParser(JobDef& def, ParsedJob& result, const std::string& path, std::string_view content)
      : def_(def), res_(result), path_(path), lx_(content) {
    // Indexes over the list stanzas (the definition may already hold the .conf's values when
    // this parses the .override), so that huge files stay linear.
    for (size_t i = 0; i < def_.env.size(); ++i)
      envIndex_[def_.env[i].substr(0, def_.env[i].find('='))] = i;
    exportSet_.insert(def_.exportVars.begin(), def_.exportVars.end());
    emitsSet_.insert(def_.emits.begin(), def_.emits.end());
    for (size_t i = 0; i < def_.cgroups.size(); ++i) {
      const CgroupDef& c = def_.cgroups[i];
      cgroupIndex_[{c.controller, c.name}] = i;
      for (size_t k = 0; k < c.settings.size(); ++k)
        settingIndex_[{c.controller + '\0' + c.name, c.settings[k].key}] = k;
    }
  }

  void run() {
    for (;;) {
      if (!lx_.hasToken()) {
        if (lx_.eof()) break;
        lx_.endLine();
        continue;
      }
      Arg kw;
      std::string err;
      int errLine = 0;
      if (!lx_.nextArg(kw, err, errLine)) {
        error(errLine, err);
        lx_.endLine();
        continue;
      }
      stanza(kw);
    }
  }

 private:
  void error(int line, const std::string& msg) {
    res_.errors.push_back(path_ + ":" + std::to_string(line) + ": " + msg);
  }
  void warning(int line, const std::string& msg) {
    res_.warnings.push_back(path_ + ":" + std::to_string(line) + ": " + msg);
  }

  // Reads the remaining arguments of the line into `args` (after the ones already there) and
  // consumes the line. False (error reported, line skipped) on a quoting problem.
  bool readArgs(std::vector<Arg>& args) {
    while (lx_.hasToken()) {
      Arg a;
      std::string err;
      int errLine = 0;
      if (!lx_.nextArg(a, err, errLine)) {
        error(errLine, err);
        lx_.endLine();
        return false;
      }
      args.push_back(std::move(a));
    }
    lx_.endLine();
    return true;
  }

  // Checks that args (args[0..first) being the keywords) has between min and max values.
  bool count(const std::vector<Arg>& args, size_t first, size_t min, size_t max,
             const std::string& what) {
    size_t n = args.size() - first;
    if (n < min) {
      error(args.back().line, "missing argument to '" + what + "'");
      return false;
    }
    if (n > max) {
      const Arg& extra = args[first + max];
      error(extra.line, "unexpected argument '" + extra.text + "' to '" + what + "'");
      return false;
    }
    return true;
  }

  void badNumber(const Arg& a, const std::string& what, Num r, const std::string& range) {
    if (r == Num::NotNumber)
      error(a.line, "invalid " + what + " '" + a.text + "': not a number");
    else
      error(a.line, "invalid " + what + " '" + a.text + "': out of range (" + range + ")");
  }

  void unsupported(int line, const std::string& name) {
    std::string msg = path_ + ":" + std::to_string(line) + ": stanza '" + name + "' is not supported";
    def_.unsupported.push_back(msg);
    res_.warnings.push_back(msg);
  }

  void stanza(const Arg& kw) {
    const std::string& k = kw.text;
    if (k == "exec") return processExec(kw, ProcessType::Main);
    if (k == "script") return processScript(kw, ProcessType::Main);
    if (k == "pre-start") return process(kw, ProcessType::PreStart);
    if (k == "post-start") return process(kw, ProcessType::PostStart);
    if (k == "pre-stop") return process(kw, ProcessType::PreStop);
    if (k == "post-stop") return process(kw, ProcessType::PostStop);
    if (k == "start" || k == "stop") return on(kw);

    std::vector<Arg> args{kw};
    if (!readArgs(args)) return;
    if (k == "description") return single(args, def_.description);
    if (k == "author") return single(args, def_.author);
    if (k == "version") return single(args, def_.version);
    if (k == "usage") return single(args, def_.usage);
    if (k == "instance") return single(args, def_.instance);
    if (k == "chroot") return single(args, def_.chroot);
    if (k == "chdir") return single(args, def_.chdir);
    if (k == "setuid") return single(args, def_.setuid);
    if (k == "setgid") return single(args, def_.setgid);
    if (k == "env") return env(args);
    if (k == "export") return exportStanza(args);
    if (k == "emits") return emits(args);
    if (k == "manual") {
      if (count(args, 1, 0, 0, k)) def_.startOn = EventExpr{};
      return;
    }
    if (k == "task") {
      if (count(args, 1, 0, 0, k)) def_.task = true;
      return;
    }
    if (k == "respawn") return respawn(args);
    if (k == "normal") return normalExit(args);
    if (k == "kill") return kill(args);
    if (k == "reload") return reload(args);
    if (k == "console") return console(args);
    if (k == "umask") return umask(args);
    if (k == "nice") return nice(args);
    if (k == "oom") return oom(args);
    if (k == "limit") return limit(args);
    if (k == "expect") return expect(args);
    if (k == "ready") return ready(args);
    if (k == "cgroup") return cgroup(args);
    if (k == "apparmor") return apparmor(args);
    if (k == "debug") {
      if (count(args, 1, 0, 0, k)) unsupported(kw.line, "debug");
      return;
    }
    if (k == "end" && args.size() > 1 && args[1].text == "script") {
      error(kw.line, "'end script' without 'script'");
      return;
    }
    error(kw.line, "unknown stanza '" + k + "'");
  }

  void single(const std::vector<Arg>& args, std::string& field) {
    if (count(args, 1, 1, 1, args[0].text)) field = args[1].text;
  }

  // exec COMMAND... (kw is "exec", or the "exec" after pre-start & co.)
  void processExec(const Arg& kw, ProcessType type, const std::string& what = "exec") {
    std::string cmd, err;
    int errLine = 0;
    if (!lx_.rawLine(cmd, err, errLine)) {
      error(errLine, err);
      lx_.endLine();
      return;
    }
    if (cmd.empty()) {
      error(kw.line, "missing command to '" + what + "'");
      return;
    }
    def_.process[static_cast<size_t>(type)] = ProcessDef{false, cmd};
  }

  // script ... end script
  void processScript(const Arg& kw, ProcessType type, const std::string& what = "script") {
    if (lx_.hasToken()) {
      Arg extra;
      std::string err;
      int errLine = 0;
      if (lx_.nextArg(extra, err, errLine))
        error(extra.line, "unexpected argument '" + extra.text + "' to '" + what + "'");
      else
        error(errLine, err);
    }
    lx_.endLine();  // the block starts on the next line (even after an error, to stay in sync)
    std::string body;
    if (!lx_.block("script", body)) {
      error(kw.line, "script block not terminated");
      return;
    }
    def_.process[static_cast<size_t>(type)] = ProcessDef{true, body};
  }

  // pre-start exec ... | pre-start script (and the other auxiliary processes)
  void process(const Arg& kw, ProcessType type) {
    if (!lx_.hasToken()) {
      error(kw.line, "expected 'exec' or 'script' after '" + kw.text + "'");
      lx_.endLine();
      return;
    }
    Arg sub;
    std::string err;
    int errLine = 0;
    if (!lx_.nextArg(sub, err, errLine)) {
      error(errLine, err);
      lx_.endLine();
      return;
    }
    if (sub.text == "exec") return processExec(kw, type, kw.text + " exec");
    if (sub.text == "script") return processScript(kw, type, kw.text + " script");
    error(sub.line, "expected 'exec' or 'script' after '" + kw.text + "', not '" + sub.text + "'");
    lx_.endLine();
  }

  // start on EXPR / stop on EXPR
  void on(const Arg& kw) {
    const std::string what = kw.text + " on";
    Arg sub;
    std::string err;
    int errLine = 0;
    if (!lx_.hasToken()) {
      error(kw.line, "expected 'on' after '" + kw.text + "'");
      lx_.endLine();
      return;
    }
    if (!lx_.nextArg(sub, err, errLine)) {
      error(errLine, err);
      lx_.endLine();
      return;
    }
    if (sub.text != "on") {
      error(sub.line, "expected 'on' after '" + kw.text + "', not '" + sub.text + "'");
      lx_.endLine();
      return;
    }
    lx_.skipBlanks();
    int firstLine = lx_.line;
    std::string text = lx_.expressionText();
    EventExpr expr;
    size_t offset = 0;
    bool differs = false;
    if (!parseEventExprEx(text, expr, err, offset, differs)) {
      int line = firstLine + static_cast<int>(std::count(
                                 text.begin(), text.begin() + static_cast<long>(std::min(offset, text.size())), '\n'));
      error(line, what + ": " + err);
      return;
    }
    if (differs)
      warning(kw.line, what + ": 'and' binds tighter than 'or' here, but Upstart groups left to right;"
                             " add parentheses to make the meaning explicit");
    (kw.text == "start" ? def_.startOn : def_.stopOn) = std::move(expr);
  }

  void env(const std::vector<Arg>& args) {
    if (!count(args, 1, 1, 1, "env")) return;
    const Arg& a = args[1];
    size_t eq = a.text.find('=');
    std::string key = a.text.substr(0, eq);
    if (!environ::validName(key)) {
      error(a.line, "invalid variable name '" + key + "' in 'env'");
      return;
    }
    std::string entry;
    if (eq != std::string::npos) {
      entry = a.text;
    } else if (const char* v = std::getenv(key.c_str())) {
      entry = key + "=" + v;
    } else {
      return;  // KEY alone and batond has no such variable: nothing
    }
    // A KEY set again keeps its place and takes the new value.
    auto [it, added] = envIndex_.try_emplace(key, def_.env.size());
    if (added)
      def_.env.push_back(std::move(entry));
    else
      def_.env[it->second] = std::move(entry);
  }

  void exportStanza(const std::vector<Arg>& args) {
    if (!count(args, 1, 1, SIZE_MAX, "export")) return;
    for (size_t i = 1; i < args.size(); ++i)
      if (!environ::validName(args[i].text)) {
        error(args[i].line, "invalid variable name '" + args[i].text + "' in 'export'");
        return;
      }
    for (size_t i = 1; i < args.size(); ++i)
      if (exportSet_.insert(args[i].text).second) def_.exportVars.push_back(args[i].text);
  }

  void emits(const std::vector<Arg>& args) {
    if (!count(args, 1, 1, SIZE_MAX, "emits")) return;
    for (size_t i = 1; i < args.size(); ++i)
      if (args[i].text.empty()) {
        error(args[i].line, "empty event name in 'emits'");
        return;
      }
    for (size_t i = 1; i < args.size(); ++i)
      if (emitsSet_.insert(args[i].text).second) def_.emits.push_back(args[i].text);
  }

  void respawn(const std::vector<Arg>& args) {
    if (args.size() == 1) {
      def_.respawn = true;
      return;
    }
    if (args[1].text != "limit") {
      error(args[1].line, "unexpected argument '" + args[1].text + "' to 'respawn'");
      return;
    }
    if (args.size() >= 3 && args[2].text == "unlimited") {
      if (!count(args, 2, 1, 1, "respawn limit")) return;
      def_.respawnLimit = 0;
      def_.respawnIntervalSec = 0;
      return;
    }
    if (!count(args, 2, 2, 2, "respawn limit")) return;
    uint64_t limit = 0, interval = 0;
    Num r = parseUnsigned(args[2].text, UINT32_MAX, limit);
    if (r != Num::Ok) return badNumber(args[2], "respawn limit count", r, "0..4294967295 or 'unlimited'");
    r = parseUnsigned(args[3].text, UINT32_MAX, interval);
    if (r != Num::Ok) return badNumber(args[3], "respawn limit interval", r, "0..4294967295 seconds");
    def_.respawnLimit = static_cast<uint32_t>(limit);
    def_.respawnIntervalSec = static_cast<uint32_t>(interval);
  }

  void normalExit(const std::vector<Arg>& args) {
    if (args.size() < 2 || args[1].text != "exit") {
      if (args.size() < 2)
        error(args[0].line, "expected 'exit' after 'normal'");
      else
        error(args[1].line, "expected 'exit' after 'normal', not '" + args[1].text + "'");
      return;
    }
    if (!count(args, 2, 1, SIZE_MAX, "normal exit")) return;
    std::vector<int32_t> codes, signals;
    for (size_t i = 2; i < args.size(); ++i) {
      const Arg& a = args[i];
      uint64_t code = 0;
      Num r = parseUnsigned(a.text, 255, code);
      if (r == Num::Ok) {
        codes.push_back(static_cast<int32_t>(code));
        continue;
      }
      if (r == Num::OutOfRange) return badNumber(a, "exit status", r, "0..255");
      int sig = signalFromName(a.text);
      if (sig < 0) {
        error(a.line, "invalid exit status or signal '" + a.text + "'");
        return;
      }
      signals.push_back(sig);
    }
    for (int32_t c : codes)
      if (std::find(def_.normalExitCodes.begin(), def_.normalExitCodes.end(), c) == def_.normalExitCodes.end())
        def_.normalExitCodes.push_back(c);
    for (int32_t s : signals)
      if (std::find(def_.normalExitSignals.begin(), def_.normalExitSignals.end(), s) ==
          def_.normalExitSignals.end())
        def_.normalExitSignals.push_back(s);
  }

  bool signalArg(const std::vector<Arg>& args, const std::string& what, int& out) {
    if (!count(args, 2, 1, 1, what)) return false;
    int sig = parseSignal(args[2].text);
    if (sig < 0) {
      error(args[2].line, "unknown signal '" + args[2].text + "'");
      return false;
    }
    out = sig;
    return true;
  }

  void kill(const std::vector<Arg>& args) {
    if (args.size() < 2) {
      error(args[0].line, "expected 'signal' or 'timeout' after 'kill'");
      return;
    }
    if (args[1].text == "signal") {
      int sig = 0;
      if (signalArg(args, "kill signal", sig)) def_.killSignal = sig;
      return;
    }
    if (args[1].text == "timeout") {
      if (!count(args, 2, 1, 1, "kill timeout")) return;
      uint64_t sec = 0;
      Num r = parseUnsigned(args[2].text, INT32_MAX, sec);
      if (r != Num::Ok) return badNumber(args[2], "kill timeout", r, "0..2147483647 seconds");
      def_.killTimeoutMs = static_cast<int64_t>(sec) * 1000;
      return;
    }
    error(args[1].line, "expected 'signal' or 'timeout' after 'kill', not '" + args[1].text + "'");
  }

  void reload(const std::vector<Arg>& args) {
    if (args.size() < 2 || args[1].text != "signal") {
      if (args.size() < 2)
        error(args[0].line, "expected 'signal' after 'reload'");
      else
        error(args[1].line, "expected 'signal' after 'reload', not '" + args[1].text + "'");
      return;
    }
    int sig = 0;
    if (signalArg(args, "reload signal", sig)) def_.reloadSignal = sig;
  }

  void console(const std::vector<Arg>& args) {
    if (!count(args, 1, 1, 1, "console")) return;
    const std::string& v = args[1].text;
    if (v == "none")
      def_.console = ConsoleType::None;
    else if (v == "log")
      def_.console = ConsoleType::Log;
    else if (v == "output")
      def_.console = ConsoleType::Output;
    else if (v == "owner")
      def_.console = ConsoleType::Owner;
    else
      error(args[1].line, "unknown console type '" + v + "' (expected none, log, output or owner)");
  }

  void expect(const std::vector<Arg>& args) {
    if (!count(args, 1, 1, 1, "expect")) return;
    const std::string& v = args[1].text;
    if (v == "none")
      def_.expect = ExpectType::None;
    else if (v == "stop")
      def_.expect = ExpectType::Stop;
    else if (v == "fork")
      def_.expect = ExpectType::Fork;
    else if (v == "daemon")
      def_.expect = ExpectType::Daemon;
    else if (v == "notify")
      def_.expect = ExpectType::Notify;
    else
      error(args[1].line, "unknown expect type '" + v + "' (expected stop, fork, daemon, notify or none)");
  }

  // ready timeout SECONDS: how long an `expect notify` job may take to send READY=1 (0 = forever).
  void ready(const std::vector<Arg>& args) {
    if (args.size() < 2 || args[1].text != "timeout") {
      if (args.size() < 2)
        error(args[0].line, "expected 'timeout' after 'ready'");
      else
        error(args[1].line, "expected 'timeout' after 'ready', not '" + args[1].text + "'");
      return;
    }
    if (!count(args, 2, 1, 1, "ready timeout")) return;
    uint64_t sec = 0;
    Num r = parseUnsigned(args[2].text, INT32_MAX, sec);
    if (r != Num::Ok) return badNumber(args[2], "ready timeout", r, "0..2147483647 seconds");
    def_.readyTimeoutMs = static_cast<int64_t>(sec) * 1000;
  }

  void umask(const std::vector<Arg>& args) {
    if (!count(args, 1, 1, 1, "umask")) return;
    uint64_t v = 0;
    Num r = parseUnsigned(args[1].text, 0777, v, 8);
    if (r != Num::Ok) {
      if (r == Num::NotNumber)
        error(args[1].line, "invalid umask '" + args[1].text + "': not an octal number");
      else
        badNumber(args[1], "umask", r, "0..0777");
      return;
    }
    def_.umask = static_cast<uint32_t>(v);
  }

  void nice(const std::vector<Arg>& args) {
    if (!count(args, 1, 1, 1, "nice")) return;
    int64_t v = 0;
    Num r = parseSigned(args[1].text, -20, 19, v);
    if (r != Num::Ok) return badNumber(args[1], "nice value", r, "-20..19");
    def_.hasNice = true;
    def_.nice = static_cast<int32_t>(v);
  }

  void oom(const std::vector<Arg>& args) {
    if (args.size() >= 2 && args[1].text == "score") {
      if (!count(args, 2, 1, 1, "oom score")) return;
      int64_t v = -1000;
      if (args[2].text != "never") {
        Num r = parseSigned(args[2].text, -1000, 1000, v);
        if (r != Num::Ok) return badNumber(args[2], "oom score", r, "-1000..1000 or 'never'");
      }
      def_.hasOomScore = true;
      def_.oomScore = static_cast<int32_t>(v);
      return;
    }
    // Legacy form: oom ADJ (-17..15, the old /proc/PID/oom_adj scale) or oom never.
    if (!count(args, 1, 1, 1, "oom")) return;
    int64_t score = -1000;
    if (args[1].text != "never") {
      int64_t adj = 0;
      Num r = parseSigned(args[1].text, -17, 15, adj);
      if (r != Num::Ok) return badNumber(args[1], "oom adjustment", r, "-17..15 or 'never'");
      // Upstart's scaling: negative values by 1000/17 (-17 -> -1000), positive by 1000/15
      // (15 -> 1000), truncating.
      score = adj * 1000 / (adj < 0 ? 17 : 15);
    }
    def_.hasOomScore = true;
    def_.oomScore = static_cast<int32_t>(score);
  }

  void limit(const std::vector<Arg>& args) {
    if (!count(args, 1, 3, 3, "limit")) return;
    int resource = -1;
    for (const LimitName& ln : kLimits)
      if (args[1].text == ln.name) resource = ln.resource;
    if (resource < 0) {
      error(args[1].line, "unknown limit resource '" + args[1].text + "'");
      return;
    }
    uint64_t values[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
      const Arg& a = args[2 + static_cast<size_t>(i)];
      if (a.text == "unlimited") {
        values[i] = UINT64_MAX;
        continue;
      }
      Num r = parseUnsigned(a.text, UINT64_MAX - 1, values[i]);
      if (r != Num::Ok)
        return badNumber(a, i == 0 ? "soft limit" : "hard limit", r, "a number or 'unlimited'");
    }
    if (values[0] > values[1]) {
      error(args[2].line, "soft limit '" + args[2].text + "' is above hard limit '" + args[3].text + "'");
      return;
    }
    RLimitDef def{resource, values[0], values[1]};
    for (RLimitDef& l : def_.limits)
      if (l.resource == resource) {
        l = def;
        return;
      }
    def_.limits.push_back(def);
  }

  // cgroup CONTROLLER [NAME] [KEY VALUE]
  void cgroup(const std::vector<Arg>& args) {
    if (!count(args, 1, 1, 4, "cgroup")) return;
    const std::string& controller = args[1].text;
    if (controller.empty() || controller.find('/') != std::string::npos) {
      error(args[1].line, "invalid cgroup controller '" + controller + "'");
      return;
    }
    std::string name;
    std::optional<CgroupSetting> setting;
    switch (args.size()) {
      case 2: break;
      case 3: name = args[2].text; break;
      case 4: setting = CgroupSetting{args[2].text, args[3].text}; break;
      case 5:
        name = args[2].text;
        setting = CgroupSetting{args[3].text, args[4].text};
        break;
    }
    if (setting && setting->key.empty()) {
      error(args[args.size() - 2].line, "empty cgroup setting name");
      return;
    }
    // Stanzas for the same controller and group merge; a setting given again takes the new value.
    auto [git, newGroup] = cgroupIndex_.try_emplace({controller, name}, def_.cgroups.size());
    if (newGroup) def_.cgroups.push_back(CgroupDef{controller, name, {}});
    CgroupDef& target = def_.cgroups[git->second];
    if (!setting) return;
    auto [sit, newSetting] =
        settingIndex_.try_emplace({controller + '\0' + name, setting->key}, target.settings.size());
    if (newSetting)
      target.settings.push_back(*setting);
    else
      target.settings[sit->second].value = setting->value;
  }

  void apparmor(const std::vector<Arg>& args) {
    if (args.size() < 2 || (args[1].text != "load" && args[1].text != "switch")) {
      if (args.size() < 2)
        error(args[0].line, "expected 'load' or 'switch' after 'apparmor'");
      else
        error(args[1].line, "expected 'load' or 'switch' after 'apparmor', not '" + args[1].text + "'");
      return;
    }
    if (!count(args, 2, 1, 1, "apparmor " + args[1].text)) return;
    unsupported(args[0].line, "apparmor");
  }

  JobDef& def_;
  ParsedJob& res_;
  const std::string& path_;
  Lexer lx_;
  std::unordered_map<std::string, size_t> envIndex_;  // key -> index in def_.env
  std::unordered_set<std::string> exportSet_, emitsSet_;
  std::map<std::pair<std::string, std::string>, size_t> cgroupIndex_;    // (controller, name)
  std::map<std::pair<std::string, std::string>, size_t> settingIndex_;  // (group, key)
};

// ---------------------------------------------------------------------------------------------
// Files

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Reads a job file; on failure returns false with the message (without "FILE:1: ").
bool readJobFile(const std::string& path, std::string& out, std::string& problem) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    problem = std::string("cannot read: ") + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    problem = std::string("cannot read: ") + std::strerror(errno);
    ::close(fd);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    problem = "not a regular file";
    ::close(fd);
    return false;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxJobFileBytes) {
    problem = "file too large";
    ::close(fd);
    return false;
  }
  out.clear();
  char buf[65536];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      problem = std::string("cannot read: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
    if (out.size() > kMaxJobFileBytes) {
      problem = "file too large";
      ::close(fd);
      return false;
    }
  }
  ::close(fd);
  return true;
}

struct DirScan {
  std::map<std::string, std::string> confs;      // job name -> path
  std::map<std::string, std::string> overrides;  // job name -> path
  std::set<std::pair<dev_t, ino_t>> visited;     // directories (symlink loops)
  std::vector<std::string> errors;
};

// Scans `dir` (whose job-name prefix is `prefix`, "" or "a/b/"). Entries are visited in name
// order; names starting with '.' are skipped (editor and package-manager leftovers).
void scanDir(const std::string& dir, const std::string& prefix, DirScan& scan) {
  // `dir` is "" for the root directory (so that "/" + name joins correctly).
  DIR* d = ::opendir(dir.empty() ? "/" : dir.c_str());
  if (!d) {
    scan.errors.push_back((dir.empty() ? "/" : dir) + ": cannot read directory: " + std::strerror(errno));
    return;
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string path = dir + "/" + name;
    struct stat st {};
    bool isConf = endsWith(name, ".conf") && name.size() > 5;
    bool isOverride = endsWith(name, ".override") && name.size() > 9;
    if (::stat(path.c_str(), &st) != 0) {
      // A dangling symlink to a job file is an error; other names do not concern us.
      if (isConf) scan.errors.push_back(path + ":1: cannot read: " + std::strerror(errno));
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!scan.visited.insert({st.st_dev, st.st_ino}).second) continue;
      scanDir(path, prefix + name + "/", scan);
      continue;
    }
    if (isConf) {
      if (std::string bad = nameProblem("job name", prefix + name); !bad.empty()) {
        scan.errors.push_back(dir + "/" + escapedName(name) + ":1: " + bad + "; skipped");
        continue;
      }
    }
    if (isConf)
      scan.confs[prefix + name.substr(0, name.size() - 5)] = path;
    else if (isOverride)
      scan.overrides[prefix + name.substr(0, name.size() - 9)] = path;
  }
}

}  // namespace

ParsedJob parseJobFile(const std::string& name, const std::string& path, std::string_view content,
                       const std::string& overridePath, std::string_view overrideContent) {
  ParsedJob result;
  const bool hasOverride = !overridePath.empty();
  std::string problem = contentProblem(content);
  if (!problem.empty()) result.errors.push_back(path + ":1: " + problem);
  std::string overrideProblem = hasOverride ? contentProblem(overrideContent) : std::string();
  if (!overrideProblem.empty()) result.errors.push_back(overridePath + ":1: " + overrideProblem);
  if (!result.errors.empty()) return result;

  JobDef def;
  def.name = name;
  def.path = path;
  JobParser(def, result, path, content).run();
  if (hasOverride) JobParser(def, result, overridePath, overrideContent).run();
  if (!result.errors.empty()) return result;
  def.contentHash = fnv1a64Hex(content, hasOverride, overrideContent);
  result.def = std::move(def);
  return result;
}

LoadedConfig loadConfigDir(const std::string& dirIn) {
  LoadedConfig loaded;
  std::string dir = dirIn;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    loaded.errors.push_back(dir + ": cannot read job directory: " + std::strerror(errno));
    return loaded;
  }
  if (!S_ISDIR(st.st_mode)) {
    loaded.errors.push_back(dir + ": cannot read job directory: " + std::strerror(ENOTDIR));
    return loaded;
  }
  DirScan scan;
  scan.visited.insert({st.st_dev, st.st_ino});
  scanDir(dir == "/" ? std::string() : dir, "", scan);
  loaded.errors = std::move(scan.errors);

  for (const auto& [name, path] : scan.confs) {
    std::string content, problem;
    if (!readJobFile(path, content, problem)) {
      loaded.errors.push_back(path + ":1: " + problem);
      continue;
    }
    std::string overridePath, overrideContent;
    auto ov = scan.overrides.find(name);
    if (ov != scan.overrides.end()) {
      overridePath = ov->second;
      if (!readJobFile(overridePath, overrideContent, problem)) {
        loaded.errors.push_back(overridePath + ":1: " + problem);
        continue;
      }
    }
    ParsedJob parsed = parseJobFile(name, path, content, overridePath, overrideContent);
    loaded.errors.insert(loaded.errors.end(), parsed.errors.begin(), parsed.errors.end());
    loaded.warnings.insert(loaded.warnings.end(), parsed.warnings.begin(), parsed.warnings.end());
    if (parsed.def) loaded.jobs[name] = std::make_shared<const JobDef>(std::move(*parsed.def));
  }
  return loaded;
}

}  // namespace baton
