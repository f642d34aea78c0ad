#include "supervisor/jobfile.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <signal.h>

#include "base/event_expr.h"

using baton::ConsoleType;
using baton::ExpectType;
using baton::JobDef;
using baton::ParsedJob;
using baton::ProcessDef;
using baton::ProcessType;

namespace fs = std::filesystem;

namespace {

const std::string kPath = "t.conf";

std::string join(const std::vector<std::string>& v) {
  std::string r;
  for (const std::string& s : v) r += "\n  " + s;
  return r;
}

ParsedJob parse(std::string_view content) { return baton::parseJobFile("t", kPath, content); }

JobDef ok(std::string_view content) {
  ParsedJob p = parse(content);
  EXPECT_TRUE(p.errors.empty()) << "errors:" << join(p.errors) << "\ncontent:\n" << content;
  EXPECT_TRUE(p.def.has_value());
  return p.def ? *p.def : JobDef{};
}

// The single error of `content` (which must produce exactly one and no definition).
std::string err(std::string_view content) {
  ParsedJob p = parse(content);
  EXPECT_FALSE(p.def.has_value()) << content;
  EXPECT_EQ(p.errors.size(), 1u) << "errors:" << join(p.errors) << "\ncontent:\n" << content;
  return p.errors.empty() ? std::string() : p.errors[0];
}

const ProcessDef& proc(const JobDef& d, ProcessType t) { return d.process[static_cast<size_t>(t)]; }

std::string startOn(const JobDef& d) { return baton::eventExprToString(d.startOn); }
std::string stopOn(const JobDef& d) { return baton::eventExprToString(d.stopOn); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Defaults and basic syntax

TEST(JobFileParse, EmptyFileIsAValidAbstractJob) {
  ParsedJob p = baton::parseJobFile("dir/name", "/etc/baton/jobs/dir/name.conf", "");
  ASSERT_TRUE(p.def.has_value());
  EXPECT_TRUE(p.errors.empty());
  EXPECT_TRUE(p.warnings.empty());
  const JobDef& d = *p.def;
  EXPECT_EQ(d.name, "dir/name");
  EXPECT_EQ(d.path, "/etc/baton/jobs/dir/name.conf");
  for (const ProcessDef& pd : d.process) EXPECT_FALSE(pd.present());
  // Defaults as in model.h.
  JobDef defaults;
  EXPECT_EQ(d.killSignal, SIGTERM);
  EXPECT_EQ(d.killTimeoutMs, 5000);
  EXPECT_EQ(d.reloadSignal, SIGHUP);
  EXPECT_EQ(d.respawnLimit, 10u);
  EXPECT_EQ(d.respawnIntervalSec, 5u);
  EXPECT_EQ(d.console, ConsoleType::Log);
  EXPECT_EQ(d.umask, 022u);
  EXPECT_EQ(d.expect, ExpectType::None);
  EXPECT_FALSE(d.task);
  EXPECT_FALSE(d.respawn);
  EXPECT_FALSE(d.hasNice);
  EXPECT_FALSE(d.hasOomScore);
  EXPECT_TRUE(d.startOn.empty());
  EXPECT_TRUE(d.stopOn.empty());
  EXPECT_FALSE(d.contentHash.empty());
  JobDef cmp = d;
  cmp.name = defaults.name;
  cmp.path = defaults.path;
  cmp.contentHash = defaults.contentHash;
  EXPECT_EQ(cmp, defaults);
}

TEST(JobFileParse, CommentsBlankLinesAndIndentation) {
  JobDef d = ok(
      "# leading comment\n"
      "\n"
      "   \t\n"
      "   description   \"indented\"   # trailing comment\n"
      "\t# indented comment\n"
      "task#comment right after the keyword\n"
      "\r\n"
      "author me\r\n");
  EXPECT_EQ(d.description, "indented");
  EXPECT_TRUE(d.task);
  EXPECT_EQ(d.author, "me");
}

TEST(JobFileParse, NoTrailingNewline) {
  JobDef d = ok("exec /bin/true");
  EXPECT_EQ(proc(d, ProcessType::Main).command, "/bin/true");
}

TEST(JobFileParse, QuotingInArguments) {
  EXPECT_EQ(ok("description \"a  b\"").description, "a  b");
  EXPECT_EQ(ok("description 'single \"quoted\"'").description, "single \"quoted\"");
  EXPECT_EQ(ok("description \"has # hash\"").description, "has # hash");
  EXPECT_EQ(ok("description pre\"mid dle\"post").description, "premid dlepost");
  EXPECT_EQ(ok("description escaped\\ space").description, "escaped space");
  EXPECT_EQ(ok("description \"say \\\"hi\\\"\"").description, "say \"hi\"");
  EXPECT_EQ(ok("description \"\"").description, "");
  // A quoted string may span lines: the break and blanks around it become one space.
  JobDef d = ok("description \"first   \n     second\"\nauthor x\n");
  EXPECT_EQ(d.description, "first second");
  EXPECT_EQ(d.author, "x");
  // Backslash-newline continues a line.
  JobDef c = ok("env \\\n  FOO=bar\nauthor y\n");
  EXPECT_EQ(c.env, (std::vector<std::string>{"FOO=bar"}));
  EXPECT_EQ(c.author, "y");
}

// ---------------------------------------------------------------------------------------------
// Processes

TEST(JobFileParse, ExecKeepsTheCommandVerbatim) {
  JobDef d = ok("exec  /sbin/getty -8 38400 tty1  \n");
  EXPECT_EQ(proc(d, ProcessType::Main), (ProcessDef{false, "/sbin/getty -8 38400 tty1"}));
  // Quotes and backslashes are for the shell and stay; '#' starts a comment unless quoted.
  JobDef q = ok("exec shutdown -r now \"Control-Alt-Delete pressed\" 'x y' a\\ b # comment\n");
  EXPECT_EQ(proc(q, ProcessType::Main).command,
            "shutdown -r now \"Control-Alt-Delete pressed\" 'x y' a\\ b");
  EXPECT_EQ(proc(ok("exec echo \"a#b\"\n"), ProcessType::Main).command, "echo \"a#b\"");
  // Continuation lines are joined with one space.
  JobDef c = ok("exec /bin/daemon --one \\\n     --two\nrespawn\n");
  EXPECT_EQ(proc(c, ProcessType::Main).command, "/bin/daemon --one --two");
  EXPECT_TRUE(c.respawn);
}

TEST(JobFileParse, ScriptBlock) {
  JobDef d = ok(
      "script\n"
      "    if [ -f /x ]; then\n"
      "        echo yes\n"
      "\n"
      "    fi\n"
      "  end script  # done\n"
      "task\n");
  EXPECT_EQ(proc(d, ProcessType::Main),
            (ProcessDef{true, "if [ -f /x ]; then\n    echo yes\n\nfi\n"}));
  EXPECT_TRUE(d.task);
  // Mixed indentation: only the common prefix is removed.
  JobDef m = ok("script\n\techo a\n    echo b\nend script\n");
  EXPECT_EQ(proc(m, ProcessType::Main).command, "\techo a\n    echo b\n");
  // Stanza-like lines inside a script are script text.
  JobDef s = ok("script\n  exec foo\n  end scripts\n  # not a comment for us\nend script\n");
  EXPECT_EQ(proc(s, ProcessType::Main).command, "exec foo\nend scripts\n# not a comment for us\n");
  // Comment after the script keyword; end script at the end of file without newline.
  EXPECT_EQ(proc(ok("script # main\necho hi\nend script"), ProcessType::Main).command, "echo hi\n");
}

TEST(JobFileParse, AuxiliaryProcesses) {
  JobDef d = ok(
      "pre-start exec /bin/pre --flag\n"
      "post-start script\n"
      "  sleep 1\n"
      "end script\n"
      "pre-stop exec /bin/prestop\n"
      "post-stop script\n"
      "  rm -f /run/x\n"
      "end script\n");
  EXPECT_EQ(proc(d, ProcessType::PreStart), (ProcessDef{false, "/bin/pre --flag"}));
  EXPECT_EQ(proc(d, ProcessType::PostStart), (ProcessDef{true, "sleep 1\n"}));
  EXPECT_EQ(proc(d, ProcessType::PreStop), (ProcessDef{false, "/bin/prestop"}));
  EXPECT_EQ(proc(d, ProcessType::PostStop), (ProcessDef{true, "rm -f /run/x\n"}));
  EXPECT_FALSE(proc(d, ProcessType::Main).present());
}

TEST(JobFileParse, LastMainProcessWins) {
  JobDef a = ok("exec /bin/a\nscript\n  echo b\nend script\n");
  EXPECT_EQ(proc(a, ProcessType::Main), (ProcessDef{true, "echo b\n"}));
  JobDef b = ok("script\n  echo b\nend script\nexec /bin/a\n");
  EXPECT_EQ(proc(b, ProcessType::Main), (ProcessDef{false, "/bin/a"}));
  JobDef c = ok("pre-start exec one\npre-start exec two\n");
  EXPECT_EQ(proc(c, ProcessType::PreStart).command, "two");
}

// ---------------------------------------------------------------------------------------------
// Every other stanza

TEST(JobFileParse, TextStanzas) {
  JobDef d = ok(
      "description \"A job\"\n"
      "author \"Someone <s@example.org>\"\n"
      "version 1.2.3\n"
      "usage \"start t KEY=value\"\n"
      "instance $TTY\n"
      "chroot /srv/root\n"
      "chdir /var/lib/t\n"
      "setuid daemon\n"
      "setgid nogroup\n");
  EXPECT_EQ(d.description, "A job");
  EXPECT_EQ(d.author, "Someone <s@example.org>");
  EXPECT_EQ(d.version, "1.2.3");
  EXPECT_EQ(d.usage, "start t KEY=value");
  EXPECT_EQ(d.instance, "$TTY");
  EXPECT_EQ(d.chroot, "/srv/root");
  EXPECT_EQ(d.chdir, "/var/lib/t");
  EXPECT_EQ(d.setuid, "daemon");
  EXPECT_EQ(d.setgid, "nogroup");
  // Later stanzas replace earlier ones.
  EXPECT_EQ(ok("description one\ndescription two\n").description, "two");
}

TEST(JobFileParse, Env) {
  ::setenv("BATON_JOBFILE_TEST_SET", "from-batond", 1);
  ::unsetenv("BATON_JOBFILE_TEST_UNSET");
  JobDef d = ok(
      "env A=1\n"
      "env B=\"two words\"\n"
      "env EMPTY=\n"
      "env EQ=x=y\n"
      "env BATON_JOBFILE_TEST_SET\n"
      "env BATON_JOBFILE_TEST_UNSET\n"
      "env A=override\n");
  EXPECT_EQ(d.env, (std::vector<std::string>{"A=override", "B=two words", "EMPTY=", "EQ=x=y",
                                             "BATON_JOBFILE_TEST_SET=from-batond"}));
  ::unsetenv("BATON_JOBFILE_TEST_SET");
}

TEST(JobFileParse, ExportAndEmits) {
  JobDef d = ok(
      "export RUNLEVEL\n"
      "export PREVLEVEL A B\n"
      "export RUNLEVEL\n"
      "emits deconfiguring-networking\n"
      "emits *-device-added *-device-removed\n"
      "emits deconfiguring-networking\n");
  EXPECT_EQ(d.exportVars, (std::vector<std::string>{"RUNLEVEL", "PREVLEVEL", "A", "B"}));
  EXPECT_EQ(d.emits, (std::vector<std::string>{"deconfiguring-networking", "*-device-added",
                                               "*-device-removed"}));
}

TEST(JobFileParse, StartAndStopOn) {
  JobDef d = ok(
      "start on runlevel [2345]\n"
      "stop on runlevel [!2345] # comment\n");
  EXPECT_EQ(startOn(d), "runlevel [2345]");
  EXPECT_EQ(stopOn(d), "runlevel [!2345]");
  EXPECT_EQ(d.startOn.nodes.size(), 1u);
  EXPECT_EQ(d.startOn.nodes[0].args, (std::vector<std::string>{"[2345]"}));
  // Quoted values.
  JobDef q = ok("start on custom 'pos val' KEY=\"a b\"\n");
  EXPECT_EQ(q.startOn.nodes[0].args, (std::vector<std::string>{"pos val", "KEY=a b"}));
  // Later start on replaces the earlier one.
  EXPECT_EQ(startOn(ok("start on a\nstart on b\n")), "b");
}

TEST(JobFileParse, MultiLineStartOn) {
  JobDef d = ok(
      "start on stopped rc RUNLEVEL=[2345] and (\n"
      "            not-container or   # comment inside\n"
      "\n"
      "            container CONTAINER=lxc or\n"
      "            container CONTAINER=lxc-libvirt)\n"
      "\n"
      "stop on runlevel [!2345]\n"
      "respawn\n");
  EXPECT_EQ(startOn(d),
            "stopped rc RUNLEVEL=[2345] and (not-container or container CONTAINER=lxc or "
            "container CONTAINER=lxc-libvirt)");
  EXPECT_EQ(stopOn(d), "runlevel [!2345]");
  EXPECT_TRUE(d.respawn);
  // Nested parentheses over several lines.
  JobDef n = ok("stop on (a and\n (b or\n  c)\n)\ntask\n");
  EXPECT_EQ(stopOn(n), "a and (b or c)");
  EXPECT_TRUE(n.task);
  // A parenthesis inside quotes does not continue the line.
  JobDef q = ok("start on ev K=\"(\"\ntask\n");
  EXPECT_EQ(q.startOn.nodes[0].args, (std::vector<std::string>{"K=("}));
  EXPECT_TRUE(q.task);
  // A line ending in an operator does not continue (as in Upstart).
  ParsedJob p = parse("start on a and\n b\n");
  EXPECT_FALSE(p.def.has_value());
  EXPECT_EQ(p.errors, (std::vector<std::string>{"t.conf:1: start on: expected an event after 'and'",
                                                "t.conf:2: unknown stanza 'b'"}));
}

TEST(JobFileParse, PrecedenceWarning) {
  ParsedJob p = parse("\nstart on a or b and c\n");
  ASSERT_TRUE(p.def.has_value());
  EXPECT_EQ(startOn(*p.def), "a or b and c");
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_EQ(p.warnings[0],
            "t.conf:2: start on: 'and' binds tighter than 'or' here, but Upstart groups left to "
            "right; add parentheses to make the meaning explicit");
  EXPECT_TRUE(p.def->unsupported.empty());
  EXPECT_TRUE(parse("start on a or (b and c)\n").warnings.empty());
}

TEST(JobFileParse, Manual) {
  JobDef d = ok("start on startup\nmanual\nstop on shutdown\n");
  EXPECT_TRUE(d.startOn.empty());
  EXPECT_EQ(stopOn(d), "shutdown");
  // A start on after manual counts again.
  EXPECT_EQ(startOn(ok("manual\nstart on later\n")), "later");
}

TEST(JobFileParse, TaskRespawnAndLimits) {
  JobDef d = ok("task\nrespawn\nrespawn limit 3 60\n");
  EXPECT_TRUE(d.task);
  EXPECT_TRUE(d.respawn);
  EXPECT_EQ(d.respawnLimit, 3u);
  EXPECT_EQ(d.respawnIntervalSec, 60u);
  JobDef u = ok("respawn limit unlimited\n");
  EXPECT_FALSE(u.respawn) << "respawn limit alone does not enable respawn (as in Upstart)";
  EXPECT_EQ(u.respawnLimit, 0u);
  EXPECT_EQ(u.respawnIntervalSec, 0u);
  JobDef z = ok("respawn limit 0 0\n");
  EXPECT_EQ(z.respawnLimit, 0u);
}

TEST(JobFileParse, NormalExit) {
  JobDef d = ok("normal exit 0 1 TERM SIGHUP 255\nnormal exit 2 1 sigusr1\n");
  EXPECT_EQ(d.normalExitCodes, (std::vector<int32_t>{0, 1, 255, 2}));
  EXPECT_EQ(d.normalExitSignals, (std::vector<int32_t>{SIGTERM, SIGHUP, SIGUSR1}));
}

TEST(JobFileParse, KillAndReload) {
  JobDef d = ok("kill signal INT\nkill timeout 30\nreload signal SIGUSR2\n");
  EXPECT_EQ(d.killSignal, SIGINT);
  EXPECT_EQ(d.killTimeoutMs, 30000);
  EXPECT_EQ(d.reloadSignal, SIGUSR2);
  EXPECT_EQ(ok("kill signal 9\n").killSignal, 9);
  EXPECT_EQ(ok("kill signal SIGKILL\n").killSignal, SIGKILL);
  EXPECT_EQ(ok("kill signal term\n").killSignal, SIGTERM);
  EXPECT_EQ(ok("reload signal 10\n").reloadSignal, 10);
  EXPECT_EQ(ok("kill timeout 0\n").killTimeoutMs, 0);
  EXPECT_EQ(ok("kill timeout 2147483647\n").killTimeoutMs, int64_t{2147483647} * 1000);
}

TEST(JobFileParse, ConsoleAndExpect) {
  EXPECT_EQ(ok("console none").console, ConsoleType::None);
  EXPECT_EQ(ok("console log").console, ConsoleType::Log);
  EXPECT_EQ(ok("console output").console, ConsoleType::Output);
  EXPECT_EQ(ok("console owner").console, ConsoleType::Owner);
  EXPECT_EQ(ok("expect stop").expect, ExpectType::Stop);
  EXPECT_EQ(ok("expect fork").expect, ExpectType::Fork);
  EXPECT_EQ(ok("expect daemon").expect, ExpectType::Daemon);
  EXPECT_EQ(ok("expect daemon\nexpect none").expect, ExpectType::None);
}

TEST(JobFileParse, UmaskNiceOom) {
  EXPECT_EQ(ok("umask 0077").umask, 077u);
  EXPECT_EQ(ok("umask 0").umask, 0u);
  EXPECT_EQ(ok("umask 777").umask, 0777u);
  JobDef n = ok("nice -20");
  EXPECT_TRUE(n.hasNice);
  EXPECT_EQ(n.nice, -20);
  EXPECT_EQ(ok("nice 19").nice, 19);
  EXPECT_EQ(ok("nice +5").nice, 5);

  JobDef o = ok("oom score -500");
  EXPECT_TRUE(o.hasOomScore);
  EXPECT_EQ(o.oomScore, -500);
  EXPECT_EQ(ok("oom score 1000").oomScore, 1000);
  EXPECT_EQ(ok("oom score -1000").oomScore, -1000);
  EXPECT_EQ(ok("oom score never").oomScore, -1000);
  // Legacy oom_adj scale, converted the way Upstart does.
  EXPECT_EQ(ok("oom never").oomScore, -1000);
  EXPECT_TRUE(ok("oom never").hasOomScore);
  EXPECT_EQ(ok("oom -17").oomScore, -1000);
  EXPECT_EQ(ok("oom -1").oomScore, -58);
  EXPECT_EQ(ok("oom 0").oomScore, 0);
  EXPECT_EQ(ok("oom 10").oomScore, 666);
  EXPECT_EQ(ok("oom 15").oomScore, 1000);
}

TEST(JobFileParse, ResourceLimits) {
  JobDef d = ok(
      "limit nofile 1024 4096\n"
      "limit core unlimited unlimited\n"
      "limit as 0 unlimited\n"
      "limit nofile 10 20\n");
  ASSERT_EQ(d.limits.size(), 3u);
  EXPECT_EQ(d.limits[0], (baton::RLimitDef{RLIMIT_NOFILE, 10, 20})) << "same resource: replaced";
  EXPECT_EQ(d.limits[1], (baton::RLimitDef{RLIMIT_CORE, UINT64_MAX, UINT64_MAX}));
  EXPECT_EQ(d.limits[2], (baton::RLimitDef{RLIMIT_AS, 0, UINT64_MAX}));
  struct {
    const char* name;
    int resource;
  } all[] = {{"as", RLIMIT_AS},           {"core", RLIMIT_CORE},     {"cpu", RLIMIT_CPU},
             {"data", RLIMIT_DATA},       {"fsize", RLIMIT_FSIZE},   {"memlock", RLIMIT_MEMLOCK},
             {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},   {"nofile", RLIMIT_NOFILE},
             {"nproc", RLIMIT_NPROC},     {"rss", RLIMIT_RSS},       {"rtprio", RLIMIT_RTPRIO},
             {"sigpending", RLIMIT_SIGPENDING}, {"stack", RLIMIT_STACK}};
  for (const auto& r : all) {
    JobDef j = ok(std::string("limit ") + r.name + " 1 18446744073709551614\n");
    ASSERT_EQ(j.limits.size(), 1u) << r.name;
    EXPECT_EQ(j.limits[0], (baton::RLimitDef{r.resource, 1, UINT64_MAX - 1})) << r.name;
  }
}

TEST(JobFileParse, CgroupAllForms) {
  JobDef d = ok(
      "cgroup memory\n"
      "cgroup cpu mygroup\n"
      "cgroup memory memory.limit_in_bytes 52428800\n"
      "cgroup cpuset $UPSTART_CGROUP/sub cpuset.cpus 0-1\n"
      "cgroup unified $BATON_CGROUP memory.max 1G\n"
      "cgroup cpuset $UPSTART_CGROUP/sub cpuset.mems 0\n"
      "cgroup memory memory.limit_in_bytes 1000\n");
  ASSERT_EQ(d.cgroups.size(), 4u);
  EXPECT_EQ(d.cgroups[0], (baton::CgroupDef{"memory", "", {{"memory.limit_in_bytes", "1000"}}}));
  EXPECT_EQ(d.cgroups[1], (baton::CgroupDef{"cpu", "mygroup", {}}));
  EXPECT_EQ(d.cgroups[2], (baton::CgroupDef{"cpuset", "$UPSTART_CGROUP/sub",
                                            {{"cpuset.cpus", "0-1"}, {"cpuset.mems", "0"}}}));
  EXPECT_EQ(d.cgroups[3], (baton::CgroupDef{"unified", "$BATON_CGROUP", {{"memory.max", "1G"}}}));
}

TEST(JobFileParse, UnsupportedStanzasAreRecordedNotIgnored) {
  ParsedJob p = parse(
      "exec /bin/x\n"
      "apparmor load /etc/apparmor.d/x\n"
      "apparmor switch /usr/bin/x\n"
      "debug\n");
  ASSERT_TRUE(p.def.has_value());
  EXPECT_TRUE(p.errors.empty());
  std::vector<std::string> expected{"t.conf:2: stanza 'apparmor' is not supported",
                                    "t.conf:3: stanza 'apparmor' is not supported",
                                    "t.conf:4: stanza 'debug' is not supported"};
  EXPECT_EQ(p.def->unsupported, expected);
  EXPECT_EQ(p.warnings, expected);
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST(JobFileErrors, EachMessageWithItsLine) {
  struct Case {
    const char* content;
    const char* error;
  } cases[] = {
      {"foo bar\n", "t.conf:1: unknown stanza 'foo'"},
      {"\n\n  frobnicate\n", "t.conf:3: unknown stanza 'frobnicate'"},
      {"end\n", "t.conf:1: unknown stanza 'end'"},
      {"exec x\nend script\n", "t.conf:2: 'end script' without 'script'"},
      {"\n\ndescription\n", "t.conf:3: missing argument to 'description'"},
      {"description a b\n", "t.conf:1: unexpected argument 'b' to 'description'"},
      {"author\n", "t.conf:1: missing argument to 'author'"},
      {"version 1 2\n", "t.conf:1: unexpected argument '2' to 'version'"},
      {"usage\n", "t.conf:1: missing argument to 'usage'"},
      {"instance\n", "t.conf:1: missing argument to 'instance'"},
      {"chroot\n", "t.conf:1: missing argument to 'chroot'"},
      {"chdir a b\n", "t.conf:1: unexpected argument 'b' to 'chdir'"},
      {"setuid\n", "t.conf:1: missing argument to 'setuid'"},
      {"setgid\n", "t.conf:1: missing argument to 'setgid'"},
      {"description \\\n  a \\\n  b\n", "t.conf:3: unexpected argument 'b' to 'description'"},
      {"task now\n", "t.conf:1: unexpected argument 'now' to 'task'"},
      {"manual please\n", "t.conf:1: unexpected argument 'please' to 'manual'"},
      {"debug on\n", "t.conf:1: unexpected argument 'on' to 'debug'"},
      {"exec\n", "t.conf:1: missing command to 'exec'"},
      {"exec   # only a comment\n", "t.conf:1: missing command to 'exec'"},
      {"pre-start exec\n", "t.conf:1: missing command to 'pre-start exec'"},
      {"pre-start\n", "t.conf:1: expected 'exec' or 'script' after 'pre-start'"},
      {"post-stop run x\n", "t.conf:1: expected 'exec' or 'script' after 'post-stop', not 'run'"},
      {"script extra\nend script\n", "t.conf:1: unexpected argument 'extra' to 'script'"},
      {"x\n", "t.conf:1: unknown stanza 'x'"},
      {"env\n", "t.conf:1: missing argument to 'env'"},
      {"env A=1 B=2\n", "t.conf:1: unexpected argument 'B=2' to 'env'"},
      {"env 1A=b\n", "t.conf:1: invalid variable name '1A' in 'env'"},
      {"env =b\n", "t.conf:1: invalid variable name '' in 'env'"},
      {"export\n", "t.conf:1: missing argument to 'export'"},
      {"export A B-C\n", "t.conf:1: invalid variable name 'B-C' in 'export'"},
      {"emits\n", "t.conf:1: missing argument to 'emits'"},
      {"emits \"\"\n", "t.conf:1: empty event name in 'emits'"},
      {"start\n", "t.conf:1: expected 'on' after 'start'"},
      {"start foo\n", "t.conf:1: expected 'on' after 'start', not 'foo'"},
      {"stop in x\n", "t.conf:1: expected 'on' after 'stop', not 'in'"},
      {"start on\n", "t.conf:1: start on: empty event expression"},
      {"stop on # nothing\n", "t.conf:1: stop on: empty event expression"},
      {"start on and a\n", "t.conf:1: start on: 'and' has no left operand"},
      {"start on a or\n", "t.conf:1: start on: expected an event after 'or'"},
      {"start on ev A=1 pos\n",
       "t.conf:1: start on: positional argument 'pos' after a KEY=VALUE argument in event 'ev'"},
      {"start on a b) \n", "t.conf:1: start on: unbalanced parentheses: unexpected ')'"},
      {"task\nstart on (a and b\n", "t.conf:2: start on: unbalanced parentheses: '(' is never closed"},
      {"start on x and (\n  a or\n   (b and c)\n", "t.conf:1: start on: unbalanced parentheses: '(' is never closed"},
      {"start on (x and\n  (a or\n   b)\nexec foo\n", "t.conf:4: start on: expected 'and' or 'or' before 'exec'"},
      {"stop on (a or\n  b))\n", "t.conf:2: stop on: unbalanced parentheses: unexpected ')'"},
      {"start on (a or\n  b c=1 d)\n",
       "t.conf:2: start on: positional argument 'd' after a KEY=VALUE argument in event 'b'"},
      {"respawn foo\n", "t.conf:1: unexpected argument 'foo' to 'respawn'"},
      {"respawn limit\n", "t.conf:1: missing argument to 'respawn limit'"},
      {"respawn limit 5\n", "t.conf:1: missing argument to 'respawn limit'"},
      {"respawn limit 5 10 15\n", "t.conf:1: unexpected argument '15' to 'respawn limit'"},
      {"respawn limit unlimited 5\n", "t.conf:1: unexpected argument '5' to 'respawn limit'"},
      {"respawn limit x 5\n", "t.conf:1: invalid respawn limit count 'x': not a number"},
      {"respawn limit -1 5\n",
       "t.conf:1: invalid respawn limit count '-1': out of range (0..4294967295 or 'unlimited')"},
      {"respawn limit 5 5s\n", "t.conf:1: invalid respawn limit interval '5s': not a number"},
      {"normal\n", "t.conf:1: expected 'exit' after 'normal'"},
      {"normal quit 1\n", "t.conf:1: expected 'exit' after 'normal', not 'quit'"},
      {"normal exit\n", "t.conf:1: missing argument to 'normal exit'"},
      {"normal exit 0 FOO\n", "t.conf:1: invalid exit status or signal 'FOO'"},
      {"normal exit 256\n", "t.conf:1: invalid exit status '256': out of range (0..255)"},
      {"normal exit -1\n", "t.conf:1: invalid exit status '-1': out of range (0..255)"},
      {"kill\n", "t.conf:1: expected 'signal' or 'timeout' after 'kill'"},
      {"kill me\n", "t.conf:1: expected 'signal' or 'timeout' after 'kill', not 'me'"},
      {"kill signal\n", "t.conf:1: missing argument to 'kill signal'"},
      {"kill signal FOO\n", "t.conf:1: unknown signal 'FOO'"},
      {"kill signal 0\n", "t.conf:1: unknown signal '0'"},
      {"kill signal 65\n", "t.conf:1: unknown signal '65'"},
      {"kill signal TERM KILL\n", "t.conf:1: unexpected argument 'KILL' to 'kill signal'"},
      {"kill timeout\n", "t.conf:1: missing argument to 'kill timeout'"},
      {"kill timeout abc\n", "t.conf:1: invalid kill timeout 'abc': not a number"},
      {"kill timeout 1.5\n", "t.conf:1: invalid kill timeout '1.5': not a number"},
      {"kill timeout -1\n", "t.conf:1: invalid kill timeout '-1': out of range (0..2147483647 seconds)"},
      {"kill timeout 99999999999999999999999\n",
       "t.conf:1: invalid kill timeout '99999999999999999999999': out of range (0..2147483647 seconds)"},
      {"reload\n", "t.conf:1: expected 'signal' after 'reload'"},
      {"reload signal NOPE\n", "t.conf:1: unknown signal 'NOPE'"},
      {"console\n", "t.conf:1: missing argument to 'console'"},
      {"console tty\n", "t.conf:1: unknown console type 'tty' (expected none, log, output or owner)"},
      {"expect\n", "t.conf:1: missing argument to 'expect'"},
      {"expect forks\n", "t.conf:1: unknown expect type 'forks' (expected stop, fork, daemon, notify or none)"},
      {"umask\n", "t.conf:1: missing argument to 'umask'"},
      {"umask 0778\n", "t.conf:1: invalid umask '0778': not an octal number"},
      {"umask abc\n", "t.conf:1: invalid umask 'abc': not an octal number"},
      {"umask 1000\n", "t.conf:1: invalid umask '1000': out of range (0..0777)"},
      {"nice\n", "t.conf:1: missing argument to 'nice'"},
      {"nice abc\n", "t.conf:1: invalid nice value 'abc': not a number"},
      {"nice 20\n", "t.conf:1: invalid nice value '20': out of range (-20..19)"},
      {"nice -21\n", "t.conf:1: invalid nice value '-21': out of range (-20..19)"},
      {"nice -\n", "t.conf:1: invalid nice value '-': not a number"},
      {"oom\n", "t.conf:1: missing argument to 'oom'"},
      {"oom score\n", "t.conf:1: missing argument to 'oom score'"},
      {"oom score 1001\n", "t.conf:1: invalid oom score '1001': out of range (-1000..1000 or 'never')"},
      {"oom score high\n", "t.conf:1: invalid oom score 'high': not a number"},
      {"oom 16\n", "t.conf:1: invalid oom adjustment '16': out of range (-17..15 or 'never')"},
      {"oom -18\n", "t.conf:1: invalid oom adjustment '-18': out of range (-17..15 or 'never')"},
      {"oom always\n", "t.conf:1: invalid oom adjustment 'always': not a number"},
      {"limit\n", "t.conf:1: missing argument to 'limit'"},
      {"limit nofile 1\n", "t.conf:1: missing argument to 'limit'"},
      {"limit nofile 1 2 3\n", "t.conf:1: unexpected argument '3' to 'limit'"},
      {"limit files 1 2\n", "t.conf:1: unknown limit resource 'files'"},
      {"limit nofile x 2\n", "t.conf:1: invalid soft limit 'x': not a number"},
      {"limit nofile 1 2k\n", "t.conf:1: invalid hard limit '2k': not a number"},
      {"limit nofile 1 18446744073709551616\n",
       "t.conf:1: invalid hard limit '18446744073709551616': out of range (a number or 'unlimited')"},
      {"limit nofile 10 5\n", "t.conf:1: soft limit '10' is above hard limit '5'"},
      {"limit nofile unlimited 5\n", "t.conf:1: soft limit 'unlimited' is above hard limit '5'"},
      {"cgroup\n", "t.conf:1: missing argument to 'cgroup'"},
      {"cgroup a b c d e\n", "t.conf:1: unexpected argument 'e' to 'cgroup'"},
      {"cgroup a/b\n", "t.conf:1: invalid cgroup controller 'a/b'"},
      {"apparmor\n", "t.conf:1: expected 'load' or 'switch' after 'apparmor'"},
      {"apparmor unload x\n", "t.conf:1: expected 'load' or 'switch' after 'apparmor', not 'unload'"},
      {"apparmor load\n", "t.conf:1: missing argument to 'apparmor load'"},
      {"apparmor switch a b\n", "t.conf:1: unexpected argument 'b' to 'apparmor switch'"},
      {"description \"abc\n", "t.conf:1: unterminated quote"},
      {"\nexec echo 'abc\n", "t.conf:2: unterminated quote"},
      {"exec foo \\", "t.conf:1: trailing backslash"},
  };
  for (const Case& c : cases) EXPECT_EQ(err(c.content), c.error) << "content:\n" << c.content;
}

TEST(JobFileErrors, UnterminatedScriptReportsWhereItBegan) {
  EXPECT_EQ(err("script\necho hi\n"), "t.conf:1: script block not terminated");
  EXPECT_EQ(err("exec x\n\npre-start script\n  echo\n  end scriptx\n"),
            "t.conf:3: script block not terminated");
  EXPECT_EQ(err("post-stop script\n"), "t.conf:1: script block not terminated");
}

TEST(JobFileErrors, AllErrorsAreReportedAndTheJobHasNoDefinition) {
  ParsedJob p = parse(
      "description ok\n"
      "nice 100\n"
      "exec /bin/x\n"
      "bogus\n"
      "script\n"
      "  bogus inside script is fine\n"
      "end script\n"
      "kill signal NOPE\n");
  EXPECT_FALSE(p.def.has_value());
  EXPECT_EQ(p.errors, (std::vector<std::string>{
                          "t.conf:2: invalid nice value '100': out of range (-20..19)",
                          "t.conf:4: unknown stanza 'bogus'",
                          "t.conf:8: unknown signal 'NOPE'",
                      }));
}

TEST(JobFileErrors, LineNumbersCountContinuationsAndQuotedLineBreaks) {
  EXPECT_EQ(err("exec foo \\\n  bar\nnice 99\n"),
            "t.conf:3: invalid nice value '99': out of range (-20..19)");
  EXPECT_EQ(err("description \"a\nb\"\nnice 99\n"),
            "t.conf:3: invalid nice value '99': out of range (-20..19)");
  EXPECT_EQ(err("script\n a\n b\nend script\nstart on (x\n  or y)\nbad\n"), "t.conf:7: unknown stanza 'bad'");
  EXPECT_EQ(err("limit nofile \\\n  1 \\\n  x\n"), "t.conf:3: invalid hard limit 'x': not a number");
}

TEST(JobFileErrors, FileContentProblems) {
  EXPECT_EQ(err(std::string_view("exec a\0b\n", 9)), "t.conf:1: binary file");
  EXPECT_EQ(err("description \"caf\xC3\n"), "t.conf:1: not valid UTF-8");
  EXPECT_EQ(err("exec \xFF\n"), "t.conf:1: not valid UTF-8");
  EXPECT_EQ(err("exec \xC0\xAF\n"), "t.conf:1: not valid UTF-8") << "overlong encoding";
  EXPECT_EQ(err("exec \xED\xA0\x80\n"), "t.conf:1: not valid UTF-8") << "surrogate";
  EXPECT_EQ(err("exec \xF4\x90\x80\x80\n"), "t.conf:1: not valid UTF-8") << "above U+10FFFF";
  std::string big(baton::kMaxJobFileBytes + 1, '#');
  EXPECT_EQ(err(big), "t.conf:1: file too large");
  std::string justRight(baton::kMaxJobFileBytes, '#');
  EXPECT_TRUE(parse(justRight).def.has_value());
  // Valid multi-byte UTF-8 and a byte order mark are fine.
  JobDef d = ok("\xEF\xBB\xBF" "author \"St\xC3\xA9phane \xE2\x82\xAC \xF0\x9F\x98\x80\"\n");
  EXPECT_EQ(d.author, "St\xC3\xA9phane \xE2\x82\xAC \xF0\x9F\x98\x80");
}

TEST(JobFileErrors, RandomInputFailsCleanly) {
  // Pseudo-random lines built from stanza fragments: never a crash, and either a definition with
  // no errors or errors that all carry "t.conf:LINE: " with a line inside the file.
  const char* pieces[] = {"exec",  "script", "end script", "start on", "stop on", "(",  ")",
                          "and",   "or",     "env",        "A=1",      "\"",     "'",  "\\",
                          "#",     "limit",  "nofile",     "1",        "unlimited", "pre-start",
                          "kill",  "signal", "timeout",    "TERM",     "cgroup",  "cpu", "x",
                          "respawn", "normal exit", "oom", "never",    "-5",      "description"};
  uint32_t state = 777;
  auto next = [&state]() {
    state = state * 1103515245u + 12345u;
    return (state >> 16) & 0x7fff;
  };
  int good = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    int lines = 1 + static_cast<int>(next() % 8);
    for (int l = 0; l < lines; ++l) {
      int words = static_cast<int>(next() % 5);
      for (int w = 0; w < words; ++w) {
        text += pieces[next() % (sizeof pieces / sizeof pieces[0])];
        text += ' ';
      }
      text += '\n';
    }
    ParsedJob p = parse(text);
    if (p.def) {
      ++good;
      ASSERT_TRUE(p.errors.empty()) << text;
      continue;
    }
    ASSERT_FALSE(p.errors.empty()) << text;
    for (const std::string& e : p.errors) {
      ASSERT_EQ(e.rfind("t.conf:", 0), 0u) << e;
      size_t colon = e.find(':', 7);
      ASSERT_NE(colon, std::string::npos) << e;
      int line = std::stoi(e.substr(7, colon - 7));
      ASSERT_GE(line, 1) << e;
      ASSERT_LE(line, lines + 1) << e << "\n" << text;
      ASSERT_EQ(e.substr(colon, 2), ": ") << e;
    }
  }
  EXPECT_GT(good, 100);
}

TEST(JobFileParse, LargeFileStaysFast) {
  // Just under the size limit, with list stanzas that must not go quadratic.
  std::string text;
  int n = 0;
  while (text.size() < baton::kMaxJobFileBytes - 200) {
    std::string i = std::to_string(n++);
    text += "env V" + i + "=" + i + "\nexport V" + i + "\nemits ev-" + i + "\ncgroup memory g" + i + " k v\n";
  }
  auto start = std::chrono::steady_clock::now();
  ParsedJob p = parse(text);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(p.def.has_value()) << join(p.errors);
  EXPECT_EQ(p.def->env.size(), static_cast<size_t>(n));
  EXPECT_EQ(p.def->exportVars.size(), static_cast<size_t>(n));
  EXPECT_EQ(p.def->emits.size(), static_cast<size_t>(n));
  EXPECT_EQ(p.def->cgroups.size(), static_cast<size_t>(n));
  EXPECT_LT(secs, 30.0) << "parsing " << text.size() << " bytes took " << secs << " s";
}

// ---------------------------------------------------------------------------------------------
// .override

TEST(JobFileOverride, StanzasOfTheOverrideWin) {
  std::string conf =
      "description \"original\"\n"
      "start on runlevel [2345]\n"
      "stop on runlevel [016]\n"
      "env A=1\n"
      "env B=2\n"
      "export A\n"
      "emits one\n"
      "normal exit 1\n"
      "limit nofile 10 20\n"
      "limit core 0 0\n"
      "cgroup memory memory.max 1\n"
      "console log\n"
      "nice 5\n"
      "exec /bin/original\n"
      "pre-start exec /bin/pre\n";
  std::string ov =
      "description \"overridden\"\n"
      "start on startup\n"
      "env B=20\n"
      "env C=30\n"
      "export B\n"
      "emits two\n"
      "normal exit 2 TERM\n"
      "limit nofile 100 200\n"
      "cgroup memory memory.high 2\n"
      "cgroup cpu\n"
      "console none\n"
      "script\n"
      "  echo overridden\n"
      "end script\n";
  ParsedJob p = baton::parseJobFile("t", "t.conf", conf, "t.override", ov);
  ASSERT_TRUE(p.def.has_value()) << join(p.errors);
  const JobDef& d = *p.def;
  EXPECT_EQ(d.path, "t.conf");
  EXPECT_EQ(d.description, "overridden");
  EXPECT_EQ(startOn(d), "startup");
  EXPECT_EQ(stopOn(d), "runlevel [016]") << "not in the override: kept";
  EXPECT_EQ(d.env, (std::vector<std::string>{"A=1", "B=20", "C=30"}));
  EXPECT_EQ(d.exportVars, (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(d.emits, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(d.normalExitCodes, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(d.normalExitSignals, (std::vector<int32_t>{SIGTERM}));
  ASSERT_EQ(d.limits.size(), 2u);
  EXPECT_EQ(d.limits[0], (baton::RLimitDef{RLIMIT_NOFILE, 100, 200}));
  EXPECT_EQ(d.limits[1], (baton::RLimitDef{RLIMIT_CORE, 0, 0}));
  ASSERT_EQ(d.cgroups.size(), 2u);
  EXPECT_EQ(d.cgroups[0], (baton::CgroupDef{"memory", "", {{"memory.max", "1"}, {"memory.high", "2"}}}));
  EXPECT_EQ(d.cgroups[1], (baton::CgroupDef{"cpu", "", {}}));
  EXPECT_EQ(d.console, ConsoleType::None);
  EXPECT_TRUE(d.hasNice);
  EXPECT_EQ(d.nice, 5);
  EXPECT_EQ(proc(d, ProcessType::Main), (ProcessDef{true, "echo overridden\n"}));
  EXPECT_EQ(proc(d, ProcessType::PreStart), (ProcessDef{false, "/bin/pre"}));
}

TEST(JobFileOverride, ManualInOverrideDisablesStartOn) {
  ParsedJob p = baton::parseJobFile("t", "t.conf", "start on startup\nexec x\n", "t.override", "manual\n");
  ASSERT_TRUE(p.def.has_value());
  EXPECT_TRUE(p.def->startOn.empty());
  EXPECT_EQ(proc(*p.def, ProcessType::Main).command, "x");
}

TEST(JobFileOverride, EmptyOverrideChangesNothingButTheHash) {
  std::string conf = "exec x\n";
  ParsedJob plain = baton::parseJobFile("t", "t.conf", conf);
  ParsedJob withEmpty = baton::parseJobFile("t", "t.conf", conf, "t.override", "");
  ASSERT_TRUE(plain.def && withEmpty.def);
  JobDef a = *plain.def, b = *withEmpty.def;
  EXPECT_NE(a.contentHash, b.contentHash);
  a.contentHash = b.contentHash = "";
  EXPECT_EQ(a, b);
}

TEST(JobFileOverride, ErrorsInTheOverrideNameTheOverrideFile) {
  ParsedJob p = baton::parseJobFile("t", "t.conf", "exec x\n", "t.override", "# c\nnice 50\n");
  EXPECT_FALSE(p.def.has_value());
  EXPECT_EQ(p.errors, (std::vector<std::string>{"t.override:2: invalid nice value '50': out of range (-20..19)"}));
  ParsedJob bin = baton::parseJobFile("t", "t.conf", "exec x\n", "t.override", std::string_view("\0", 1));
  EXPECT_EQ(bin.errors, (std::vector<std::string>{"t.override:1: binary file"}));
  ParsedJob w = baton::parseJobFile("t", "t.conf", "exec x\n", "t.override", "debug\n");
  ASSERT_TRUE(w.def.has_value());
  EXPECT_EQ(w.warnings, (std::vector<std::string>{"t.override:1: stanza 'debug' is not supported"}));
}

TEST(JobFileHash, StableAndSensitive) {
  auto hash = [](std::string_view conf, const std::string& ovPath = {}, std::string_view ov = {}) {
    ParsedJob p = baton::parseJobFile("t", "t.conf", conf, ovPath, ov);
    EXPECT_TRUE(p.def.has_value());
    return p.def ? p.def->contentHash : std::string();
  };
  std::string h = hash("exec a\n");
  EXPECT_EQ(h.size(), 16u);
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(hash("exec a\n"), h);
  EXPECT_NE(hash("exec b\n"), h);
  EXPECT_NE(hash("exec a\n\n"), h) << "any byte counts, even where the definition is the same";
  EXPECT_NE(hash("exec a\n", "t.override", "nice 1\n"), hash("exec a\n", "t.override", "nice 2\n"));
  EXPECT_NE(hash("exec a\nnice 1\n", "t.override", ""), hash("exec a\n", "t.override", "nice 1\n"));
  // The path does not count, the content does.
  ParsedJob other = baton::parseJobFile("u", "elsewhere/u.conf", "exec a\n");
  EXPECT_EQ(other.def->contentHash, h);
  // FNV-1a 64 of the empty conf (length prefix only) is a fixed value.
  EXPECT_EQ(hash(""), hash(""));
}

// ---------------------------------------------------------------------------------------------
// Real Upstart job files

namespace {

std::string sharedConfDir() { return std::string(BATON_SHARED_DIR) + "/upstart/conf"; }

}  // namespace

TEST(JobFileUpstart, AllSharedConfFilesParseWithoutErrors) {
  std::string dir = sharedConfDir();
  if (!fs::is_directory(dir)) GTEST_SKIP() << "shared Upstart job files not found at " << dir;
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".conf") ++files;
  ASSERT_GT(files, 0u);
  baton::LoadedConfig cfg = baton::loadConfigDir(dir);
  EXPECT_TRUE(cfg.errors.empty()) << join(cfg.errors);
  EXPECT_TRUE(cfg.warnings.empty()) << join(cfg.warnings);
  EXPECT_EQ(cfg.jobs.size(), files);
  for (const auto& [name, def] : cfg.jobs) {
    EXPECT_EQ(def->name, name);
    EXPECT_EQ(def->path, dir + "/" + name + ".conf");
    EXPECT_TRUE(def->unsupported.empty()) << name;
  }
}

TEST(JobFileUpstart, SpotChecks) {
  std::string dir = sharedConfDir();
  if (!fs::is_directory(dir)) GTEST_SKIP() << "shared Upstart job files not found at " << dir;
  baton::LoadedConfig cfg = baton::loadConfigDir(dir);
  auto job = [&](const std::string& name) -> const JobDef& {
    static const JobDef none;
    auto it = cfg.jobs.find(name);
    EXPECT_NE(it, cfg.jobs.end()) << name;
    return it == cfg.jobs.end() ? none : *it->second;
  };

  const JobDef& rc = job("conf_rc");
  EXPECT_TRUE(rc.task);
  EXPECT_EQ(rc.exportVars, (std::vector<std::string>{"RUNLEVEL", "PREVLEVEL"}));
  EXPECT_EQ(rc.console, ConsoleType::Output);
  EXPECT_EQ(rc.emits, (std::vector<std::string>{"deconfiguring-networking", "unmounted-remote-filesystems"}));
  EXPECT_EQ(startOn(rc), "runlevel [0123456]");
  EXPECT_EQ(stopOn(rc), "runlevel [!$RUNLEVEL]");
  EXPECT_TRUE(proc(rc, ProcessType::Main).script);
  EXPECT_NE(proc(rc, ProcessType::Main).command.find("/etc/init.d/rc $RUNLEVEL\n"), std::string::npos);
  EXPECT_EQ(rc.description, "System V runlevel compatibility");
  EXPECT_EQ(rc.author, "Scott James Remnant <scott@netsplit.com>");

  const JobDef& failsafe = job("debian_conf_failsafe");
  EXPECT_EQ(failsafe.console, ConsoleType::Output);
  EXPECT_TRUE(proc(failsafe, ProcessType::Main).script);
  EXPECT_EQ(proc(failsafe, ProcessType::Main).command.rfind("\t# Determine if plymouth is available\n", 0), 0u);
  EXPECT_EQ(proc(failsafe, ProcessType::PostStart),
            (ProcessDef{false, "logger -t 'failsafe' -p daemon.warning \"Failsafe of 120 seconds reached.\""}));
  EXPECT_EQ(startOn(failsafe), "filesystem and net-device-up IFACE=lo");
  EXPECT_EQ(stopOn(failsafe), "static-network-up or starting rc-sysinit");
  EXPECT_EQ(failsafe.emits, (std::vector<std::string>{"failsafe-boot"}));

  const JobDef& bridge = job("extra_conf_upstart-udev-bridge");
  EXPECT_EQ(bridge.expect, ExpectType::Daemon);
  EXPECT_TRUE(bridge.respawn);
  EXPECT_EQ(proc(bridge, ProcessType::Main), (ProcessDef{false, "upstart-udev-bridge --daemon"}));
  EXPECT_EQ(bridge.emits.size(), 5u);
  EXPECT_EQ(bridge.emits[0], "*-device-added");
  EXPECT_EQ(startOn(bridge), "starting udev");
  EXPECT_EQ(stopOn(bridge), "stopped udev");

  const JobDef& tty1 = job("debian_conf_tty1");
  EXPECT_EQ(startOn(tty1),
            "stopped rc RUNLEVEL=[2345] and (not-container or container CONTAINER=lxc or "
            "container CONTAINER=lxc-libvirt)");
  EXPECT_EQ(stopOn(tty1), "runlevel [!2345]");
  EXPECT_TRUE(tty1.respawn);
  EXPECT_EQ(proc(tty1, ProcessType::Main).command, "/sbin/getty -8 38400 tty1");

  const JobDef& rcS = job("conf_rcS");
  EXPECT_EQ(rcS.console, ConsoleType::Owner);
  EXPECT_EQ(proc(rcS, ProcessType::Main).command, "/sbin/sulogin");
  EXPECT_TRUE(proc(rcS, ProcessType::PostStop).script);
  EXPECT_NE(proc(rcS, ProcessType::PostStop).command.find("\texit 0\n"), std::string::npos);

  const JobDef& cad = job("conf_control-alt-delete");
  EXPECT_TRUE(cad.task);
  EXPECT_EQ(proc(cad, ProcessType::Main).command, "shutdown -r now \"Control-Alt-Delete pressed\"");

  const JobDef& logrotate = job("debian_user-conf_logrotate");
  EXPECT_TRUE(logrotate.task);
  EXPECT_EQ(startOn(logrotate), "startup or :sys:rotate-logs or rotate-logs");
  EXPECT_TRUE(proc(logrotate, ProcessType::PreStart).script);
  EXPECT_EQ(proc(logrotate, ProcessType::PreStart).command.rfind("\nlogrotate=$(command -v", 0), 0u);
  EXPECT_NE(proc(logrotate, ProcessType::Main).command.find("\"$logdir/*.log\" {\n        hourly\n"),
            std::string::npos);

  const JobDef& reexec = job("extra_conf-session_re-exec");
  EXPECT_EQ(reexec.author, "St\xC3\xA9phane Graber <stgraber@ubuntu.com>");
  EXPECT_EQ(startOn(reexec), ":sys:restarted");

  const JobDef& console = job("debian_conf_console");
  EXPECT_EQ(startOn(console), "stopped rc RUNLEVEL=[2345] and container CONTAINER=lxc");

  const JobDef& shutdown = job("debian_conf_shutdown");
  EXPECT_EQ(startOn(shutdown), "power-status-changed");
  EXPECT_TRUE(shutdown.task);
}

// ---------------------------------------------------------------------------------------------
// Directories

namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "baton-jobfile-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  void write(const std::string& rel, std::string_view content) const {
    fs::path p = fs::path(path_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
  }

 private:
  std::string path_;
};

std::vector<std::string> keys(const baton::LoadedConfig& c) {
  std::vector<std::string> r;
  for (const auto& [k, v] : c.jobs) r.push_back(k);
  return r;
}

}  // namespace

TEST(JobFileDir, NestedGoodBadOverridesAndIgnoredFiles) {
  TempDir t;
  const std::string& d = t.path();
  t.write("a.conf", "exec /bin/a\nstart on startup\n");
  t.write("a.override", "manual\n");
  t.write("bad.conf", "description ok\nfrobnicate\n");
  t.write("sub/b.conf", "task\nexec /bin/b\n");
  t.write("sub/deeper/c.conf", "exec /bin/c\n");
  t.write("sub/deeper/c.override", "exec /bin/c-override\n");
  t.write("orphan.override", "exec /bin/orphan\n");
  t.write("README", "not a job\n");
  t.write("notes.txt", "bogus stanza\n");
  t.write("a.conf~", "bogus stanza\n");
  t.write("a.conf.dpkg-old", "bogus stanza\n");
  t.write(".hidden.conf", "bogus stanza\n");
  t.write(".git/x.conf", "bogus stanza\n");
  t.write("unsupported.conf", "exec x\ndebug\n");
  t.write("binary.conf", std::string_view("exec x\0", 7));

  baton::LoadedConfig cfg = baton::loadConfigDir(d);
  EXPECT_EQ(keys(cfg), (std::vector<std::string>{"a", "sub/b", "sub/deeper/c", "unsupported"}));
  // In job-name order.
  EXPECT_EQ(cfg.errors, (std::vector<std::string>{d + "/bad.conf:2: unknown stanza 'frobnicate'",
                                                  d + "/binary.conf:1: binary file"}));
  EXPECT_EQ(cfg.warnings, (std::vector<std::string>{d + "/unsupported.conf:2: stanza 'debug' is not supported"}));
  ASSERT_EQ(cfg.jobs.size(), 4u);
  EXPECT_TRUE(cfg.jobs["a"]->startOn.empty()) << "override applied";
  EXPECT_EQ(cfg.jobs["a"]->path, d + "/a.conf");
  EXPECT_EQ(cfg.jobs["sub/b"]->name, "sub/b");
  EXPECT_TRUE(cfg.jobs["sub/b"]->task);
  EXPECT_EQ(proc(*cfg.jobs["sub/deeper/c"], ProcessType::Main).command, "/bin/c-override");
  EXPECT_EQ(cfg.jobs["sub/deeper/c"]->path, d + "/sub/deeper/c.conf");

  // Deterministic, and the hash reflects the override.
  baton::LoadedConfig again = baton::loadConfigDir(d + "/");
  EXPECT_EQ(again.errors, cfg.errors);
  ASSERT_EQ(keys(again), keys(cfg));
  for (const auto& [k, v] : cfg.jobs) EXPECT_EQ(*again.jobs[k], *v) << k;
  std::string before = cfg.jobs["sub/deeper/c"]->contentHash;
  t.write("sub/deeper/c.override", "exec /bin/c-changed\n");
  EXPECT_NE(baton::loadConfigDir(d).jobs["sub/deeper/c"]->contentHash, before);
  fs::remove(fs::path(d) / "sub/deeper/c.override");
  EXPECT_NE(baton::loadConfigDir(d).jobs["sub/deeper/c"]->contentHash, before);
}

TEST(JobFileDir, SymlinksAreFollowedAndLoopsDoNotHang) {
  TempDir t, ext;
  const std::string& d = t.path();
  t.write("real/r.conf", "exec /bin/r\n");
  ext.write("e.conf", "exec /bin/e\n");
  fs::create_directory_symlink(ext.path(), fs::path(d) / "ext");
  fs::create_symlink(fs::path(d) / "real/r.conf", fs::path(d) / "linked.conf");
  fs::create_directory_symlink(d, fs::path(d) / "real/loop");  // points back at the top
  fs::create_symlink(fs::path(d) / "nowhere.conf", fs::path(d) / "dangling.conf");
  fs::create_symlink(fs::path(d) / "nowhere", fs::path(d) / "dangling-other");

  baton::LoadedConfig cfg = baton::loadConfigDir(d);
  EXPECT_EQ(keys(cfg), (std::vector<std::string>{"ext/e", "linked", "real/r"}));
  ASSERT_EQ(cfg.errors.size(), 1u) << join(cfg.errors);
  EXPECT_EQ(cfg.errors[0], d + "/dangling.conf:1: cannot read: No such file or directory");
  EXPECT_EQ(proc(*cfg.jobs["linked"], ProcessType::Main).command, "/bin/r");
}

TEST(JobFileDir, FileProblems) {
  TempDir t;
  const std::string& d = t.path();
  t.write("big.conf", std::string(baton::kMaxJobFileBytes + 1, '#'));
  t.write("latin1.conf", "description caf\xE9\n");
  t.write("good.conf", "exec x\n");
  t.write("bad-override.conf", "exec x\n");
  t.write("bad-override.override", "exec \xFF\n");
  fs::create_directory(fs::path(d) / "dir.conf");  // a directory named like a job: scanned, no job
  t.write("dir.conf/inner.conf", "exec i\n");
  baton::LoadedConfig cfg = baton::loadConfigDir(d);
  EXPECT_EQ(keys(cfg), (std::vector<std::string>{"dir.conf/inner", "good"}));
  EXPECT_EQ(cfg.errors, (std::vector<std::string>{
                            d + "/bad-override.override:1: not valid UTF-8",
                            d + "/big.conf:1: file too large",
                            d + "/latin1.conf:1: not valid UTF-8",
                        }));
}

TEST(JobFileDir, UnreadableFile) {
  TempDir t;
  t.write("secret.conf", "exec x\n");
  fs::permissions(fs::path(t.path()) / "secret.conf", fs::perms::none);
  fs::permissions(t.path(), fs::perms::all);  // the directory itself stays listable
  // Root reads anything: load as the unprivileged user `nobody` in a child when we are root.
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipefd[0]);
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    baton::LoadedConfig cfg = baton::loadConfigDir(t.path());
    std::string out = std::to_string(cfg.jobs.size()) + "\n";
    for (const std::string& e : cfg.errors) out += e + "\n";
    if (::write(pipefd[1], out.data(), out.size()) != ssize_t(out.size())) ::_exit(4);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) got.append(buf, size_t(n));
  ::close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_EQ(got, "0\n" + t.path() + "/secret.conf:1: cannot read: Permission denied\n");
}

TEST(JobFileDir, NonRegularFileIsAnError) {
  TempDir t;
  // A FIFO would block a plain read; it is refused (this also runs as root, unlike the test above).
  ASSERT_EQ(::mkfifo((fs::path(t.path()) / "pipe.conf").c_str(), 0600), 0);
  t.write("ok.conf", "exec x\n");
  baton::LoadedConfig cfg = baton::loadConfigDir(t.path());
  EXPECT_EQ(keys(cfg), (std::vector<std::string>{"ok"}));
  EXPECT_EQ(cfg.errors, (std::vector<std::string>{t.path() + "/pipe.conf:1: not a regular file"}));
}

TEST(JobFileDir, MissingOrInvalidDirectory) {
  TempDir t;
  baton::LoadedConfig cfg = baton::loadConfigDir(t.path() + "/missing");
  EXPECT_TRUE(cfg.jobs.empty());
  EXPECT_EQ(cfg.errors,
            (std::vector<std::string>{t.path() + "/missing: cannot read job directory: No such file or directory"}));
  t.write("file", "x");
  baton::LoadedConfig notDir = baton::loadConfigDir(t.path() + "/file");
  EXPECT_EQ(notDir.errors, (std::vector<std::string>{t.path() + "/file: cannot read job directory: Not a directory"}));
  baton::LoadedConfig empty = baton::loadConfigDir(t.path());
  EXPECT_TRUE(empty.jobs.empty());
  EXPECT_TRUE(empty.errors.empty());
}
