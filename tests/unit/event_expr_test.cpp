#include "base/event_expr.h"

#include <gtest/gtest.h>

using baton::Event;
using baton::EventExpr;
using baton::EventNode;

namespace {

using Type = EventNode::Type;

EventExpr parse(std::string_view text) {
  EventExpr e;
  std::string err;
  EXPECT_TRUE(baton::parseEventExpr(text, e, err)) << "text: " << text << " error: " << err;
  return e;
}

struct Failure {
  std::string message;
  size_t offset;
};

Failure parseFail(std::string_view text) {
  EventExpr e;
  e.nodes.push_back(EventNode{});  // must stay untouched
  std::string err;
  size_t offset = 12345;
  bool differs = false;
  EXPECT_FALSE(baton::parseEventExprEx(text, e, err, offset, differs)) << "text: " << text;
  EXPECT_EQ(e.nodes.size(), 1u) << "output must not change on error";
  return {err, offset};
}

std::string canon(std::string_view text) { return baton::eventExprToString(parse(text)); }

Event event(uint64_t id, std::string name, std::vector<std::string> env = {}) {
  Event ev;
  ev.id = id;
  ev.name = std::move(name);
  ev.env = std::move(env);
  return ev;
}

// Checks the structural invariants: post-order, root last, children before parents, each
// non-root node referenced exactly once.
void checkShape(const EventExpr& e) {
  ASSERT_FALSE(e.nodes.empty());
  std::vector<int> refs(e.nodes.size(), 0);
  for (size_t i = 0; i < e.nodes.size(); ++i) {
    const EventNode& n = e.nodes[i];
    if (n.type == Type::Match) {
      EXPECT_EQ(n.left, -1);
      EXPECT_EQ(n.right, -1);
      continue;
    }
    ASSERT_GE(n.left, 0);
    ASSERT_GE(n.right, 0);
    EXPECT_LT(static_cast<size_t>(n.left), i);
    EXPECT_LT(static_cast<size_t>(n.right), i);
    EXPECT_LT(n.left, n.right) << "left subtree comes first in post-order";
    refs[static_cast<size_t>(n.left)]++;
    refs[static_cast<size_t>(n.right)]++;
  }
  for (size_t i = 0; i + 1 < e.nodes.size(); ++i) EXPECT_EQ(refs[i], 1) << "node " << i;
  EXPECT_EQ(refs.back(), 0);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Parsing

TEST(EventExprParse, SingleEventWithoutArgs) {
  EventExpr e = parse("startup");
  ASSERT_EQ(e.nodes.size(), 1u);
  EXPECT_EQ(e.nodes[0].type, Type::Match);
  EXPECT_EQ(e.nodes[0].name, "startup");
  EXPECT_TRUE(e.nodes[0].args.empty());
  EXPECT_FALSE(e.nodes[0].matched);
  EXPECT_EQ(e.nodes[0].eventId, 0u);
}

TEST(EventExprParse, ArgumentsPositionalNamedAndNegated) {
  EventExpr e = parse("  net-device-up  eth0 inet IFACE=lo ADDRFAM!=inet6  ");
  ASSERT_EQ(e.nodes.size(), 1u);
  EXPECT_EQ(e.nodes[0].name, "net-device-up");
  EXPECT_EQ(e.nodes[0].args, (std::vector<std::string>{"eth0", "inet", "IFACE=lo", "ADDRFAM!=inet6"}));
}

TEST(EventExprParse, GlobsAndVariablesAreKeptVerbatim) {
  EventExpr e = parse("runlevel [!$RUNLEVEL] *-device-added PREVLEVEL=${OLD:-N}");
  ASSERT_EQ(e.nodes.size(), 1u);
  EXPECT_EQ(e.nodes[0].args,
            (std::vector<std::string>{"[!$RUNLEVEL]", "*-device-added", "PREVLEVEL=${OLD:-N}"}));
  EXPECT_EQ(parse("*-device-added").nodes[0].name, "*-device-added");
  EXPECT_EQ(parse(":sys:restarted").nodes[0].name, ":sys:restarted");
}

TEST(EventExprParse, QuotedValues) {
  EventExpr e = parse(R"(custom "two words" 'single quoted' KEY="a b" K2='(x)' K3="say \"hi\"")");
  ASSERT_EQ(e.nodes.size(), 1u);
  EXPECT_EQ(e.nodes[0].args, (std::vector<std::string>{"two words", "single quoted", "KEY=a b",
                                                         "K2=(x)", "K3=say \"hi\""}));
  // A quoted operator word is an ordinary event name / argument.
  EventExpr q = parse(R"("and" "or")");
  ASSERT_EQ(q.nodes.size(), 1u);
  EXPECT_EQ(q.nodes[0].name, "and");
  EXPECT_EQ(q.nodes[0].args, (std::vector<std::string>{"or"}));
  // Escaped characters.
  EXPECT_EQ(parse(R"(ev a\ b)").nodes[0].args, (std::vector<std::string>{"a b"}));
}

TEST(EventExprParse, AndNode) {
  EventExpr e = parse("filesystem and net-device-up IFACE=lo");
  checkShape(e);
  ASSERT_EQ(e.nodes.size(), 3u);
  EXPECT_EQ(e.nodes[0].name, "filesystem");
  EXPECT_EQ(e.nodes[1].name, "net-device-up");
  EXPECT_EQ(e.nodes[2].type, Type::And);
  EXPECT_EQ(e.nodes[2].left, 0);
  EXPECT_EQ(e.nodes[2].right, 1);
}

TEST(EventExprParse, AndBindsTighterThanOr) {
  EventExpr e = parse("a or b and c");
  checkShape(e);
  ASSERT_EQ(e.nodes.size(), 5u);
  const EventNode& root = e.nodes.back();
  EXPECT_EQ(root.type, Type::Or);
  EXPECT_EQ(e.nodes[static_cast<size_t>(root.left)].name, "a");
  const EventNode& right = e.nodes[static_cast<size_t>(root.right)];
  EXPECT_EQ(right.type, Type::And);
  EXPECT_EQ(e.nodes[static_cast<size_t>(right.left)].name, "b");
  EXPECT_EQ(e.nodes[static_cast<size_t>(right.right)].name, "c");

  EventExpr f = parse("a and b or c");
  checkShape(f);
  EXPECT_EQ(f.nodes.back().type, Type::Or);
  EXPECT_EQ(f.nodes[static_cast<size_t>(f.nodes.back().left)].type, Type::And);
  EXPECT_EQ(f.nodes[static_cast<size_t>(f.nodes.back().right)].name, "c");

  EventExpr g = parse("a and b or c and d");
  checkShape(g);
  EXPECT_EQ(g.nodes.back().type, Type::Or);
  EXPECT_EQ(g.nodes[static_cast<size_t>(g.nodes.back().left)].type, Type::And);
  EXPECT_EQ(g.nodes[static_cast<size_t>(g.nodes.back().right)].type, Type::And);
}

TEST(EventExprParse, LeftAssociative) {
  for (const char* op : {"and", "or"}) {
    std::string text = std::string("a ") + op + " b " + op + " c";
    EventExpr e = parse(text);
    checkShape(e);
    ASSERT_EQ(e.nodes.size(), 5u);
    // ((a op b) op c): a=0, b=1, (a op b)=2, c=3, root=4
    EXPECT_EQ(e.nodes[2].left, 0);
    EXPECT_EQ(e.nodes[2].right, 1);
    EXPECT_EQ(e.nodes[4].left, 2);
    EXPECT_EQ(e.nodes[4].right, 3);
    EXPECT_EQ(e.nodes[3].name, "c");
  }
}

TEST(EventExprParse, ParenthesesOverridePrecedence) {
  EventExpr e = parse("(a or b) and c");
  checkShape(e);
  EXPECT_EQ(e.nodes.back().type, Type::And);
  EXPECT_EQ(e.nodes[static_cast<size_t>(e.nodes.back().left)].type, Type::Or);
  EventExpr f = parse("a and (b or c)");
  checkShape(f);
  EXPECT_EQ(f.nodes.back().type, Type::And);
  EXPECT_EQ(f.nodes[static_cast<size_t>(f.nodes.back().right)].type, Type::Or);
  // Redundant parentheses do not add nodes.
  EXPECT_EQ(parse("((a))"), parse("a"));
  EXPECT_EQ(parse("(a) and (b)"), parse("a and b"));
  // Parentheses need no blanks around them.
  EXPECT_EQ(parse("(a or b)and(c)"), parse("(a or b) and c"));
}

TEST(EventExprParse, LineBreaksInsideParentheses) {
  EventExpr e = parse("stopped rc RUNLEVEL=[2345] and (\n   not-container or\n   container CONTAINER=lxc)");
  checkShape(e);
  EXPECT_EQ(baton::eventExprToString(e),
            "stopped rc RUNLEVEL=[2345] and (not-container or container CONTAINER=lxc)");
  // Backslash-newline is white space too.
  EXPECT_EQ(parse("a and \\\n b"), parse("a and b"));
}

TEST(EventExprParse, UpstartGroupingDifferenceIsReported) {
  struct Case {
    const char* text;
    bool differs;
  } cases[] = {
      {"a or b and c", true},     {"a and b or c", false},       {"(a or b) and c", false},
      {"a or (b and c)", false},  {"a and b and c or d", false}, {"x and (a or b and c)", true},
      {"(a or b) and c or d and e", true},
  };
  for (const Case& c : cases) {
    EventExpr e;
    std::string err;
    size_t off = 0;
    bool differs = !c.differs;
    ASSERT_TRUE(baton::parseEventExprEx(c.text, e, err, off, differs)) << c.text;
    EXPECT_EQ(differs, c.differs) << c.text;
  }
}

TEST(EventExprParse, Errors) {
  struct Case {
    const char* text;
    const char* message;
    size_t offset;
  } cases[] = {
      {"", "empty event expression", 0},
      {"   \n  ", "empty event expression", 6},
      {"a and", "expected an event after 'and'", 5},
      {"a or ", "expected an event after 'or'", 5},
      {"a and or b", "expected an event after 'and'", 6},
      {"and a", "'and' has no left operand", 0},
      {"or", "'or' has no left operand", 0},
      {"(or a)", "'or' has no left operand", 1},
      {"(a", "unbalanced parentheses: '(' is never closed", 0},
      {"x and ((a or b)", "unbalanced parentheses: '(' is never closed", 6},
      {"a and (", "unbalanced parentheses: '(' is never closed", 6},
      {"a)", "unbalanced parentheses: unexpected ')'", 1},
      {"(a) or b)", "unbalanced parentheses: unexpected ')'", 8},
      {")", "unbalanced parentheses: unexpected ')'", 0},
      {"a and )", "expected an event after 'and'", 6},
      {"()", "empty parentheses", 0},
      {"a (b)", "expected 'and' or 'or' before '('", 2},
      {"(a) b", "expected 'and' or 'or' before 'b'", 4},
      {"(a b) c", "expected 'and' or 'or' before 'c'", 6},
      {"(a b c", "unbalanced parentheses: '(' is never closed", 0},
      {"ev KEY=v pos", "positional argument 'pos' after a KEY=VALUE argument in event 'ev'", 9},
      {"ev A!=x pos", "positional argument 'pos' after a KEY=VALUE argument in event 'ev'", 8},
      {"ev =v", "invalid variable name '' in argument '=v'", 3},
      {"ev 1A=v", "invalid variable name '1A' in argument '1A=v'", 3},
      {"\"\"", "empty event name", 0},
      {"ev \"abc", "unterminated quote", 3},
      {"ev abc\\", "trailing backslash", 6},
  };
  for (const Case& c : cases) {
    Failure f = parseFail(c.text);
    EXPECT_EQ(f.message, c.message) << "text: " << c.text;
    EXPECT_EQ(f.offset, c.offset) << "text: " << c.text;
  }
  // The plain API reports the same message.
  EventExpr e;
  std::string err;
  EXPECT_FALSE(baton::parseEventExpr("a and", e, err));
  EXPECT_EQ(err, "expected an event after 'and'");
  EXPECT_TRUE(e.empty());
}

// ---------------------------------------------------------------------------------------------
// Canonical text

TEST(EventExprText, CanonicalForms) {
  EXPECT_EQ(canon("startup"), "startup");
  EXPECT_EQ(canon("  runlevel   [2345]  "), "runlevel [2345]");
  EXPECT_EQ(canon("a and b"), "a and b");
  EXPECT_EQ(canon("(a and b) or c"), "a and b or c");
  EXPECT_EQ(canon("a or (b and c)"), "a or b and c");
  EXPECT_EQ(canon("(a or b) and c"), "(a or b) and c");
  EXPECT_EQ(canon("a and (b or c)"), "a and (b or c)");
  EXPECT_EQ(canon("(a or b) or c"), "a or b or c");
  EXPECT_EQ(canon("a or (b or c)"), "a or (b or c)");      // keeps the tree's shape
  EXPECT_EQ(canon("a and (b and c)"), "a and (b and c)");
  EXPECT_EQ(canon("((a or b) and (c or d))"), "(a or b) and (c or d)");
  EXPECT_EQ(canon("(((x)))"), "x");
  EXPECT_EQ(canon("ev \"two words\" KEY=\"a b\""), "ev \"two words\" KEY=\"a b\"");
  EXPECT_EQ(canon("ev 'x'"), "ev x");
  EXPECT_EQ(canon("ev \"\" K=\"\""), "ev \"\" K=");
  EXPECT_EQ(canon("\"and\" \"or\" x"), "\"and\" \"or\" x");
  EXPECT_EQ(baton::eventExprToString(EventExpr{}), "");
}

TEST(EventExprText, RoundTrips) {
  const char* texts[] = {
      "startup",
      "runlevel [2345]",
      "runlevel [!$RUNLEVEL]",
      "filesystem and net-device-up IFACE=lo",
      "static-network-up or starting rc-sysinit",
      "stopped rc RUNLEVEL=[2345] and (not-container or container CONTAINER=lxc or container "
      "CONTAINER=lxc-libvirt)",
      "startup or :sys:rotate-logs or rotate-logs",
      "a or b and c",
      "(a or b) and c",
      "a and (b or (c and d)) or e",
      "a or (b or c)",
      "(a and b) and (c and d)",
      "ev \"with space\" KEY=\"v w\" NEG!=\"x y\" Q=\"say \\\"hi\\\"\" B=\"back\\\\slash\"",
      "ev \"(paren)\" \"#hash\" \"and\"",
      "\"and\" x",
      "ev K!=[!$RUNLEVEL] L=${X:-y}",
  };
  for (const char* t : texts) {
    EventExpr e = parse(t);
    std::string s = baton::eventExprToString(e);
    EventExpr again = parse(s);
    EXPECT_EQ(again, e) << "text: " << t << " canonical: " << s;
    EXPECT_EQ(baton::eventExprToString(again), s) << "canonical text is a fixed point";
  }
  // Exact canonical text for real-world expressions.
  EXPECT_EQ(canon("stopped rc RUNLEVEL=[2345] and (\n  not-container or\n  container CONTAINER=lxc)"),
            "stopped rc RUNLEVEL=[2345] and (not-container or container CONTAINER=lxc)");
}

TEST(EventExprText, Names) {
  EXPECT_EQ(baton::eventExprNames(parse("a and (b or a) or c X=1 and b")),
            (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(baton::eventExprNames(EventExpr{}).empty());
}

// ---------------------------------------------------------------------------------------------
// Matching

TEST(EventExprGlob, FnmatchSemantics) {
  EXPECT_TRUE(baton::globMatch("abc", "abc"));
  EXPECT_FALSE(baton::globMatch("abc", "abcd"));
  EXPECT_TRUE(baton::globMatch("*", ""));
  EXPECT_TRUE(baton::globMatch("*-device-added", "net-device-added"));
  EXPECT_FALSE(baton::globMatch("*-device-added", "net-device-removed"));
  EXPECT_TRUE(baton::globMatch("a?c", "abc"));
  EXPECT_TRUE(baton::globMatch("[2345]", "3"));
  EXPECT_FALSE(baton::globMatch("[2345]", "1"));
  EXPECT_FALSE(baton::globMatch("[2345]", "23"));
  EXPECT_TRUE(baton::globMatch("[!2345]", "6"));
  EXPECT_FALSE(baton::globMatch("[!2345]", "2"));
  EXPECT_TRUE(baton::globMatch("a/*", "a/b"));  // no FNM_PATHNAME
  EXPECT_TRUE(baton::globMatch("", ""));
  EXPECT_FALSE(baton::globMatch("", "x"));
}

TEST(EventExprMatch, NameOnly) {
  EventExpr e = parse("startup");
  EXPECT_FALSE(baton::eventExprHandle(e, event(1, "other"), {}));
  EXPECT_FALSE(baton::eventExprSatisfied(e));
  EXPECT_TRUE(baton::eventExprHandle(e, event(2, "startup"), {}));
  EXPECT_TRUE(baton::eventExprSatisfied(e));
  EXPECT_EQ(e.nodes[0].eventId, 2u);
  EXPECT_EQ(baton::eventExprMatchedEvents(e), (std::vector<uint64_t>{2}));
}

TEST(EventExprMatch, NameGlob) {
  EventExpr e = parse("*-device-added");
  EXPECT_FALSE(baton::eventExprHandle(e, event(1, "net-device-removed"), {}));
  EXPECT_TRUE(baton::eventExprHandle(e, event(2, "block-device-added"), {}));
}

TEST(EventExprMatch, PositionalArgumentsMatchValuesInOrder) {
  EventExpr e = parse("net-device-up eth* inet");
  // Positional i is matched against the value of the event's env entry i.
  EXPECT_FALSE(baton::eventExprHandle(e, event(1, "net-device-up", {"IFACE=lo", "ADDRFAM=inet"}), {}));
  EXPECT_FALSE(baton::eventExprHandle(e, event(2, "net-device-up", {"ADDRFAM=inet", "IFACE=eth0"}), {}));
  EXPECT_FALSE(baton::eventExprHandle(e, event(3, "net-device-up", {"IFACE=eth0"}), {}))
      << "missing positional value";
  EXPECT_TRUE(baton::eventExprHandle(e, event(4, "net-device-up", {"IFACE=eth0", "ADDRFAM=inet", "X=y"}), {}));
  EXPECT_EQ(e.nodes[0].eventId, 4u);
}

TEST(EventExprMatch, NamedArguments) {
  EventExpr e = parse("stopped rc RUNLEVEL=[2345]");
  EXPECT_FALSE(baton::eventExprHandle(e, event(1, "stopped", {"JOB=rc", "RUNLEVEL=1"}), {}));
  EXPECT_FALSE(baton::eventExprHandle(e, event(2, "stopped", {"JOB=rc"}), {})) << "KEY absent";
  EXPECT_FALSE(baton::eventExprHandle(e, event(3, "stopped", {"JOB=other", "RUNLEVEL=2"}), {}));
  EXPECT_TRUE(baton::eventExprHandle(e, event(4, "stopped", {"JOB=rc", "RUNLEVEL=2"}), {}));
  // KEY=VALUE finds the key anywhere in the event's environment.
  EventExpr f = parse("net-device-up IFACE=lo");
  EXPECT_TRUE(baton::eventExprHandle(f, event(5, "net-device-up", {"ADDRFAM=inet", "IFACE=lo"}), {}));
}

TEST(EventExprMatch, NegatedArguments) {
  EventExpr e = parse("net-device-up IFACE!=lo");
  EXPECT_FALSE(baton::eventExprHandle(e, event(1, "net-device-up", {"IFACE=lo"}), {}));
  EXPECT_TRUE(baton::eventExprHandle(e, event(2, "net-device-up", {"IFACE=eth0"}), {}));
  EventExpr absent = parse("net-device-up IFACE!=lo");
  EXPECT_TRUE(baton::eventExprHandle(absent, event(3, "net-device-up", {"OTHER=1"}), {}))
      << "KEY!=VALUE is true when KEY is absent";
  EventExpr glob = parse("ev K!=a*");
  EXPECT_FALSE(baton::eventExprHandle(glob, event(4, "ev", {"K=abc"}), {}));
  EXPECT_TRUE(baton::eventExprHandle(glob, event(5, "ev", {"K=bcd"}), {}));
}

TEST(EventExprMatch, VariablesExpandFromJobEnv) {
  // rc.conf: stop on runlevel [!$RUNLEVEL]
  EventExpr e = parse("runlevel [!$RUNLEVEL]");
  std::vector<std::string> jobEnv{"RUNLEVEL=2", "PREVLEVEL=N"};
  EXPECT_FALSE(baton::eventExprHandle(e, event(1, "runlevel", {"RUNLEVEL=2", "PREVLEVEL=N"}), jobEnv));
  EXPECT_TRUE(baton::eventExprHandle(e, event(2, "runlevel", {"RUNLEVEL=3", "PREVLEVEL=2"}), jobEnv));
  // The model keeps the text unexpanded.
  EXPECT_EQ(e.nodes[0].args, (std::vector<std::string>{"[!$RUNLEVEL]"}));

  EventExpr named = parse("ev K=${WANT}-*");
  EXPECT_TRUE(baton::eventExprHandle(named, event(3, "ev", {"K=foo-1"}), {"WANT=foo"}));
  // The event's own environment is not used for expansion.
  EventExpr notFromEvent = parse("ev K=$WANT");
  EXPECT_FALSE(baton::eventExprHandle(notFromEvent, event(4, "ev", {"K=x", "WANT=x"}), {}));
  // An unknown variable makes the node not match (no exception, no match).
  EventExpr unknown = parse("ev $NOPE");
  EXPECT_FALSE(baton::eventExprHandle(unknown, event(5, "ev", {"A=x"}), {}));
  EXPECT_FALSE(unknown.nodes[0].matched);
}

TEST(EventExprMatch, AndNeedsBothOrNeedsOne) {
  EventExpr e = parse("a and b");
  EXPECT_TRUE(baton::eventExprHandle(e, event(1, "a"), {}));
  EXPECT_FALSE(baton::eventExprSatisfied(e));
  EXPECT_TRUE(e.nodes[0].matched);
  EXPECT_FALSE(e.nodes[2].matched);
  EXPECT_TRUE(baton::eventExprHandle(e, event(2, "b"), {}));
  EXPECT_TRUE(baton::eventExprSatisfied(e));
  EXPECT_EQ(baton::eventExprMatchedEvents(e), (std::vector<uint64_t>{1, 2}));

  EventExpr o = parse("a or b");
  EXPECT_TRUE(baton::eventExprHandle(o, event(3, "b"), {}));
  EXPECT_TRUE(baton::eventExprSatisfied(o));
  EXPECT_FALSE(o.nodes[0].matched);
  EXPECT_EQ(baton::eventExprMatchedEvents(o), (std::vector<uint64_t>{3}));
}

TEST(EventExprMatch, MatchedNodeIsNotRematched) {
  EventExpr e = parse("a and b");
  EXPECT_TRUE(baton::eventExprHandle(e, event(1, "a"), {}));
  EXPECT_FALSE(baton::eventExprHandle(e, event(2, "a"), {})) << "already matched";
  EXPECT_EQ(e.nodes[0].eventId, 1u);
  // One event can match several nodes at once.
  EventExpr twice = parse("a X=1 and a");
  EXPECT_TRUE(baton::eventExprHandle(twice, event(7, "a", {"X=1"}), {}));
  EXPECT_TRUE(baton::eventExprSatisfied(twice));
  EXPECT_EQ(baton::eventExprMatchedEvents(twice), (std::vector<uint64_t>{7}));
}

TEST(EventExprMatch, MatchedEventsOnlyFromSatisfyingSubtrees) {
  EventExpr e = parse("(a and b) or c");
  EXPECT_TRUE(baton::eventExprHandle(e, event(1, "a"), {}));
  EXPECT_TRUE(baton::eventExprMatchedEvents(e).empty()) << "root not true yet";
  EXPECT_TRUE(baton::eventExprHandle(e, event(2, "c"), {}));
  EXPECT_TRUE(baton::eventExprSatisfied(e));
  // 'a' matched but its And branch is false: only c counts.
  EXPECT_EQ(baton::eventExprMatchedEvents(e), (std::vector<uint64_t>{2}));
  EXPECT_TRUE(baton::eventExprHandle(e, event(3, "b"), {}));
  // Both branches of the Or are true now: both contribute, in node order.
  EXPECT_EQ(baton::eventExprMatchedEvents(e), (std::vector<uint64_t>{1, 3, 2}));
  EXPECT_TRUE(baton::eventExprMatchedEvents(EventExpr{}).empty());
}

TEST(EventExprMatch, ResetClearsState) {
  EventExpr e = parse("a or b and c");
  baton::eventExprHandle(e, event(1, "a"), {});
  baton::eventExprHandle(e, event(2, "b"), {});
  ASSERT_TRUE(baton::eventExprSatisfied(e));
  baton::eventExprReset(e);
  EXPECT_FALSE(baton::eventExprSatisfied(e));
  for (const EventNode& n : e.nodes) {
    EXPECT_FALSE(n.matched);
    EXPECT_EQ(n.eventId, 0u);
  }
  EXPECT_EQ(e, parse("a or b and c"));
  EXPECT_TRUE(baton::eventExprHandle(e, event(5, "a"), {}));
  EXPECT_EQ(e.nodes[0].eventId, 5u);
}

TEST(EventExprMatch, EmptyExpressionNeverSatisfied) {
  EventExpr e;
  EXPECT_FALSE(baton::eventExprHandle(e, event(1, "startup"), {}));
  EXPECT_FALSE(baton::eventExprSatisfied(e));
}

TEST(EventExprMatch, RealWorldTty1) {
  EventExpr e = parse(
      "stopped rc RUNLEVEL=[2345] and (\n not-container or\n container CONTAINER=lxc or\n"
      " container CONTAINER=lxc-libvirt)");
  EXPECT_TRUE(baton::eventExprHandle(e, event(1, "container", {"CONTAINER=lxc-libvirt"}), {}));
  EXPECT_FALSE(baton::eventExprSatisfied(e));
  EXPECT_FALSE(baton::eventExprHandle(e, event(2, "stopped", {"JOB=rc", "RUNLEVEL=S"}), {}));
  EXPECT_TRUE(baton::eventExprHandle(e, event(3, "stopped", {"JOB=rc", "RUNLEVEL=2"}), {}));
  EXPECT_TRUE(baton::eventExprSatisfied(e));
  EXPECT_EQ(baton::eventExprMatchedEvents(e), (std::vector<uint64_t>{3, 1}));
}

// ---------------------------------------------------------------------------------------------
// Limits and robustness

TEST(EventExprLimits, DeepNestingAndHugeExpressionsAreRefused) {
  std::string deep = std::string(64, '(') + "a" + std::string(64, ')');
  EXPECT_EQ(canon(deep), "a");
  std::string tooDeep = std::string(65, '(') + "a" + std::string(65, ')');
  Failure f = parseFail(tooDeep);
  EXPECT_EQ(f.message, "parentheses nested too deeply");
  EXPECT_EQ(f.offset, 64u);
  // A very long (but legal) chain parses, prints and matches.
  std::string chain = "e0";
  for (int i = 1; i < 2048; ++i) chain += " or e" + std::to_string(i);
  EventExpr e = parse(chain);
  EXPECT_EQ(e.nodes.size(), 4095u);
  EXPECT_EQ(baton::eventExprToString(e), chain);
  EXPECT_TRUE(baton::eventExprHandle(e, event(9, "e2047"), {}));
  EXPECT_EQ(baton::eventExprMatchedEvents(e), (std::vector<uint64_t>{9}));
  // One more event is too much (this also bounds the recursion of printing and matching).
  EXPECT_EQ(parseFail(chain + " or x").message, "event expression too large");
  std::string huge;
  for (int i = 0; i < 100000; ++i) huge += "a and ";
  huge += "a";
  EXPECT_EQ(parseFail(huge).message, "event expression too large");
}

TEST(EventExprLimits, RandomTextsRoundTripWhenTheyParse) {
  // Deterministic pseudo-random token soup: anything that parses must print to text that parses
  // back to the same tree; anything else must fail cleanly with an offset inside the text.
  const char* pieces[] = {"a",  "b",   "ev",  " ",  " ",   "(",   ")",   "and", "or",  "\"", "'",
                          "\\", "K=",  "!=",  "=",  "\n",  "$X",  "[2345]", "*", "#",   "x y",
                          "\t", "and", "or",  "(",  ")",   "Q\"s\"", "'p q'"};
  uint32_t state = 12345;
  auto next = [&state]() {
    state = state * 1103515245u + 12345u;
    return (state >> 16) & 0x7fff;
  };
  int parsed = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    int n = 1 + static_cast<int>(next() % 12);
    for (int i = 0; i < n; ++i) {
      text += pieces[next() % (sizeof pieces / sizeof pieces[0])];
      if (next() % 3 == 0) text += ' ';
    }
    EventExpr e;
    std::string err;
    size_t off = 0;
    bool differs = false;
    if (baton::parseEventExprEx(text, e, err, off, differs)) {
      ++parsed;
      std::string printed = baton::eventExprToString(e);
      EventExpr again;
      ASSERT_TRUE(baton::parseEventExpr(printed, again, err)) << "text: " << text << "\nprinted: " << printed;
      ASSERT_EQ(again, e) << "text: " << text << "\nprinted: " << printed;
    } else {
      ASSERT_FALSE(err.empty()) << text;
      ASSERT_LE(off, text.size()) << text;
    }
  }
  EXPECT_GT(parsed, 1000) << "the generator should produce valid expressions too";
}

// What decides which held-encoded classes an event decodes: a node that cannot match is told
// apart by name and arguments; an argument with a variable might match anything.
TEST(EventExprMatch, NodeMayMatchByNameAndArgumentsAndAssumesVariablesMatch) {
  auto node = [](std::string_view text) { return parse(text).nodes.at(0); };
  const Event started = event(1, "started", {"JOB=net", "INSTANCE="});
  EXPECT_TRUE(baton::eventNodeMayMatch(node("started net"), started));
  EXPECT_TRUE(baton::eventNodeMayMatch(node("start*"), started));
  EXPECT_TRUE(baton::eventNodeMayMatch(node("started JOB=n*"), started));
  EXPECT_FALSE(baton::eventNodeMayMatch(node("started db"), started));
  EXPECT_FALSE(baton::eventNodeMayMatch(node("stopped net"), started));
  EXPECT_FALSE(baton::eventNodeMayMatch(node("started JOB!=net"), started));
  EXPECT_FALSE(baton::eventNodeMayMatch(node("started net extra"), started)) << "more positional args than values";
  EXPECT_TRUE(baton::eventNodeMayMatch(node("started $WANTED"), started));
  EXPECT_TRUE(baton::eventNodeMayMatch(node("started JOB=${WANTED}"), started));
  EXPECT_FALSE(baton::eventNodeMayMatch(node("stopped $WANTED"), started)) << "the name still has to match";
  // It agrees with the real match wherever no variable is involved.
  for (const char* text : {"started net", "started db", "started JOB=net INSTANCE=", "started INSTANCE=x"}) {
    EventExpr e = parse(text);
    EXPECT_EQ(baton::eventNodeMayMatch(e.nodes.at(0), started), baton::eventExprHandle(e, started, {})) << text;
  }
}
