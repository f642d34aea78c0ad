// `start on` / `stop on` expressions (see event_expr.h).
//
// Precedence: "and" binds tighter than "or", both left-associative. (Upstart itself has no
// precedence and groups strictly left to right; the two readings differ only for "a or b and c"
// at one nesting level, which parseEventExprEx reports through `upstartDiffers`.)
#include "base/event_expr.h"

#include <fnmatch.h>

#include <algorithm>
#include <set>

#include "base/environ.h"

namespace baton {

namespace {

// Limits that keep a hostile or broken file from exhausting the stack (printing and matching
// recurse over the tree) of PID 1. Real expressions are far below them. (kMaxEventExprNodes, in
// event_expr.h, is the other.)
constexpr int kMaxNesting = 64;

// ---------------------------------------------------------------------------------------------
// Tokens

struct Token {
  enum class Kind { End, Open, Close, Word };
  Kind kind = Kind::End;
  std::string text;     // Word: dequoted text
  bool quoted = false;  // Word: had quotes or escapes (never an operator then)
  size_t offset = 0;    // where the token starts in the input
  bool isOp(std::string_view op) const { return kind == Kind::Word && !quoted && text == op; }
  bool isOperator() const { return isOp("and") || isOp("or"); }
};

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Splits the text into words and parentheses. Quotes ("..." or '...') group characters and are
// removed; a backslash escapes the next character; backslash-newline is white space.
bool tokenize(std::string_view s, std::vector<Token>& out, std::string& error, size_t& errorOffset) {
  size_t i = 0;
  const size_t n = s.size();
  for (;;) {
    while (i < n) {
      if (isSpace(s[i])) {
        ++i;
      } else if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\n') {
        i += 2;
      } else {
        break;
      }
    }
    if (i >= n) break;
    Token t;
    t.offset = i;
    if (s[i] == '(' || s[i] == ')') {
      t.kind = s[i] == '(' ? Token::Kind::Open : Token::Kind::Close;
      t.text = std::string(1, s[i]);
      ++i;
      out.push_back(std::move(t));
      continue;
    }
    t.kind = Token::Kind::Word;
    char quote = 0;
    size_t quoteAt = 0;
    while (i < n) {
      char c = s[i];
      if (c == '\\') {
        if (i + 1 >= n) {
          error = "trailing backslash";
          errorOffset = i;
          return false;
        }
        if (s[i + 1] == '\n' && !quote) break;  // a line continuation ends the word
        if (s[i + 1] != '\n') t.text += s[i + 1];
        t.quoted = true;
        i += 2;
        continue;
      }
      if (quote) {
        if (c == quote)
          quote = 0;
        else
          t.text += c;
        ++i;
        continue;
      }
      if (c == '"' || c == '\'') {
        quote = c;
        quoteAt = i;
        t.quoted = true;
        ++i;
        continue;
      }
      if (isSpace(c) || c == '(' || c == ')') break;
      t.text += c;
      ++i;
    }
    if (quote) {
      error = "unterminated quote";
      errorOffset = quoteAt;
      return false;
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.offset = n;
  out.push_back(std::move(end));
  return true;
}

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent, emitting nodes in post-order.

struct ParseError {
  std::string message;
  size_t offset;
};

class Parser {
 public:
  Parser(const std::vector<Token>& toks, EventExpr& out) : toks_(toks), out_(out) {}

  void parseAll() {
    if (peek().kind == Token::Kind::End) throw ParseError{"empty event expression", peek().offset};
    parseOr(nullptr);
    const Token& t = peek();
    if (t.kind == Token::Kind::Close)
      throw ParseError{"unbalanced parentheses: unexpected ')'", t.offset};
    if (t.kind != Token::Kind::End)
      throw ParseError{"expected 'and' or 'or' before '" + t.text + "'", t.offset};
  }

  bool upstartDiffers = false;

 private:
  const Token& peek() const { return toks_[pos_]; }
  const Token& take() { return toks_[pos_++]; }

  int32_t add(EventNode node, size_t offset) {
    if (out_.nodes.size() >= kMaxEventExprNodes) throw ParseError{"event expression too large", offset};
    out_.nodes.push_back(std::move(node));
    return static_cast<int32_t>(out_.nodes.size() - 1);
  }

  // `after`: the operator token just consumed before this operand (nullptr if none).
  // One call per nesting level (the whole text, or the inside of a parenthesis).
  int32_t parseOr(const Token* after) {
    bool outerOrSeen = orSeen_;
    orSeen_ = false;
    int32_t left = parseAnd(after);
    while (peek().isOp("or")) {
      const Token& op = take();
      orSeen_ = true;
      int32_t right = parseAnd(&op);
      EventNode node;
      node.type = EventNode::Type::Or;
      node.left = left;
      node.right = right;
      left = add(std::move(node), op.offset);
    }
    orSeen_ = outerOrSeen;
    return left;
  }

  int32_t parseAnd(const Token* after) {
    int32_t left = parseTerm(after);
    while (peek().isOp("and")) {
      const Token& op = take();
      // An "and" that follows an "or" at this nesting level is where Upstart's left-to-right
      // grouping differs from ours.
      if (orSeen_) upstartDiffers = true;
      int32_t right = parseTerm(&op);
      EventNode node;
      node.type = EventNode::Type::And;
      node.left = left;
      node.right = right;
      left = add(std::move(node), op.offset);
    }
    return left;
  }

  [[noreturn]] void missingOperand(const Token* after, const Token& at) {
    if (after) throw ParseError{"expected an event after '" + after->text + "'", at.offset};
    if (at.isOperator()) throw ParseError{"'" + at.text + "' has no left operand", at.offset};
    throw ParseError{"expected an event", at.offset};
  }

  int32_t parseTerm(const Token* after) {
    const Token& t = peek();
    switch (t.kind) {
      case Token::Kind::End:
        missingOperand(after, t);
      case Token::Kind::Close:
        if (after) missingOperand(after, t);
        throw ParseError{"unbalanced parentheses: unexpected ')'", t.offset};
      case Token::Kind::Open: {
        const Token& open = take();
        if (peek().kind == Token::Kind::Close) throw ParseError{"empty parentheses", open.offset};
        if (peek().kind == Token::Kind::End)
          throw ParseError{"unbalanced parentheses: '(' is never closed", open.offset};
        if (++nesting_ > kMaxNesting) throw ParseError{"parentheses nested too deeply", open.offset};
        int32_t inner = parseOr(nullptr);
        --nesting_;
        const Token& close = peek();
        if (close.kind == Token::Kind::End)
          throw ParseError{"unbalanced parentheses: '(' is never closed", open.offset};
        if (close.kind != Token::Kind::Close)
          throw ParseError{"expected 'and' or 'or' before '" + close.text + "'", close.offset};
        take();
        return inner;
      }
      case Token::Kind::Word:
        break;
    }
    if (t.isOperator()) missingOperand(after, t);
    const Token& nameTok = take();
    EventNode node;
    node.type = EventNode::Type::Match;
    node.name = nameTok.text;
    if (node.name.empty()) throw ParseError{"empty event name", nameTok.offset};
    bool named = false;
    while (peek().kind == Token::Kind::Word && !peek().isOperator()) {
      const Token& a = take();
      if (std::string problem = eventArgProblem(a.text, named, node.name); !problem.empty())
        throw ParseError{problem, a.offset};
      named = named || a.text.find('=') != std::string::npos;
      node.args.push_back(a.text);
    }
    if (peek().kind == Token::Kind::Open)
      throw ParseError{"expected 'and' or 'or' before '('", peek().offset};
    return add(std::move(node), nameTok.offset);
  }

  const std::vector<Token>& toks_;
  EventExpr& out_;
  size_t pos_ = 0;
  bool orSeen_ = false;  // an "or" was consumed at the current nesting level
  int nesting_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Printing

bool needsQuotes(std::string_view s) {
  if (s.empty()) return true;
  for (char c : s)
    if (isSpace(c) || c == '"' || c == '\'' || c == '\\' || c == '(' || c == ')' || c == '#')
      return true;
  return false;
}

std::string quote(std::string_view s) {
  if (!needsQuotes(s)) return std::string(s);
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  r += '"';
  return r;
}

std::string argText(const std::string& arg) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos) {
    // A positional value that reads as an operator must be quoted too.
    if (arg == "and" || arg == "or") return "\"" + arg + "\"";
    return quote(arg);
  }
  // KEY=VALUE / KEY!=VALUE: keys are plain names, quote the value only.
  return arg.substr(0, eq + 1) + (needsQuotes(arg.substr(eq + 1)) && eq + 1 < arg.size()
                                      ? quote(arg.substr(eq + 1))
                                      : arg.substr(eq + 1));
}

int precedence(const EventNode& n) {
  switch (n.type) {
    case EventNode::Type::Or: return 1;
    case EventNode::Type::And: return 2;
    case EventNode::Type::Match: return 3;
  }
  return 3;
}

void print(const EventExpr& e, int32_t idx, std::string& out) {
  const EventNode& n = e.nodes[static_cast<size_t>(idx)];
  if (n.type == EventNode::Type::Match) {
    out += (n.name == "and" || n.name == "or") ? "\"" + n.name + "\"" : quote(n.name);
    for (const std::string& a : n.args) {
      out += ' ';
      out += argText(a);
    }
    return;
  }
  int p = precedence(n);
  auto child = [&](int32_t c, bool right) {
    const EventNode& cn = e.nodes[static_cast<size_t>(c)];
    int cp = precedence(cn);
    // Left-associative: a right child of equal precedence needs parentheses to keep its shape.
    bool parens = cp < p || (right && cp == p);
    if (parens) out += '(';
    print(e, c, out);
    if (parens) out += ')';
  };
  child(n.left, false);
  out += n.type == EventNode::Type::And ? " and " : " or ";
  child(n.right, true);
}

// ---------------------------------------------------------------------------------------------
// Matching

std::string_view valuePart(std::string_view entry) {
  size_t eq = entry.find('=');
  return eq == std::string_view::npos ? entry : entry.substr(eq + 1);
}

bool matchNode(const EventNode& n, const Event& ev, const std::vector<std::string>& jobEnv) {
  if (!globMatch(n.name, ev.name)) return false;
  size_t positional = 0;
  for (const std::string& arg : n.args) {
    size_t eq = arg.find('=');
    if (eq == std::string::npos) {
      std::string pattern, err;
      if (!environ::expand(arg, jobEnv, pattern, err)) return false;
      if (positional >= ev.env.size()) return false;
      if (!globMatch(pattern, valuePart(ev.env[positional]))) return false;
      ++positional;
      continue;
    }
    bool negate = eq > 0 && arg[eq - 1] == '!';
    std::string key = arg.substr(0, negate ? eq - 1 : eq);
    std::string pattern, err;
    if (!environ::expand(std::string_view(arg).substr(eq + 1), jobEnv, pattern, err)) return false;
    std::optional<std::string> value = environ::get(ev.env, key);
    if (negate) {
      if (value && globMatch(pattern, *value)) return false;
    } else {
      if (!value || !globMatch(pattern, *value)) return false;
    }
  }
  return true;
}

void collect(const EventExpr& e, int32_t idx, std::vector<bool>& use) {
  const EventNode& n = e.nodes[static_cast<size_t>(idx)];
  if (!n.matched) return;
  switch (n.type) {
    case EventNode::Type::Match:
      use[static_cast<size_t>(idx)] = true;
      break;
    case EventNode::Type::And:
    case EventNode::Type::Or:
      // For an Or only matched children contribute; collect() skips unmatched ones itself.
      collect(e, n.left, use);
      collect(e, n.right, use);
      break;
  }
}

}  // namespace

std::string eventArgProblem(const std::string& arg, bool afterNamed, const std::string& event) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos)
    return afterNamed ? "positional argument '" + arg + "' after a KEY=VALUE argument in event '" + event + "'"
                      : std::string();
  const size_t keyEnd = (eq > 0 && arg[eq - 1] == '!') ? eq - 1 : eq;
  const std::string key = arg.substr(0, keyEnd);
  if (!environ::validName(key)) return "invalid variable name '" + key + "' in argument '" + arg + "'";
  return {};
}

bool parseEventExprEx(std::string_view text, EventExpr& out, std::string& error, size_t& errorOffset,
                      bool& upstartDiffers) {
  upstartDiffers = false;
  std::vector<Token> toks;
  if (!tokenize(text, toks, error, errorOffset)) return false;
  EventExpr result;
  Parser parser(toks, result);
  try {
    parser.parseAll();
  } catch (const ParseError& e) {
    error = e.message;
    errorOffset = e.offset;
    return false;
  }
  upstartDiffers = parser.upstartDiffers;
  out = std::move(result);
  return true;
}

bool parseEventExpr(std::string_view text, EventExpr& out, std::string& error) {
  size_t offset = 0;
  bool differs = false;
  return parseEventExprEx(text, out, error, offset, differs);
}

std::string eventExprToString(const EventExpr& expr) {
  std::string out;
  if (expr.nodes.empty()) return out;
  print(expr, static_cast<int32_t>(expr.nodes.size() - 1), out);
  return out;
}

bool eventExprHandle(EventExpr& expr, const Event& event, const std::vector<std::string>& jobEnv) {
  bool newly = false;
  // Post-order: children are recomputed before their parents.
  for (EventNode& n : expr.nodes) {
    switch (n.type) {
      case EventNode::Type::Match:
        if (!n.matched && matchNode(n, event, jobEnv)) {
          n.matched = true;
          n.eventId = event.id;
          newly = true;
        }
        break;
      case EventNode::Type::And:
        n.matched = expr.nodes[static_cast<size_t>(n.left)].matched &&
                    expr.nodes[static_cast<size_t>(n.right)].matched;
        break;
      case EventNode::Type::Or:
        n.matched = expr.nodes[static_cast<size_t>(n.left)].matched ||
                    expr.nodes[static_cast<size_t>(n.right)].matched;
        break;
    }
  }
  return newly;
}

bool eventNodeMayMatch(const EventNode& n, const Event& event) {
  for (const std::string& arg : n.args)
    if (arg.find('$') != std::string::npos) return globMatch(n.name, event.name);
  return matchNode(n, event, {});
}

bool eventExprSatisfied(const EventExpr& expr) {
  return !expr.nodes.empty() && expr.nodes.back().matched;
}

std::vector<uint64_t> eventExprMatchedEvents(const EventExpr& expr) {
  std::vector<uint64_t> ids;
  if (expr.nodes.empty()) return ids;
  std::vector<bool> use(expr.nodes.size(), false);
  collect(expr, static_cast<int32_t>(expr.nodes.size() - 1), use);
  std::set<uint64_t> seen;
  for (size_t i = 0; i < expr.nodes.size(); ++i)
    if (use[i] && seen.insert(expr.nodes[i].eventId).second) ids.push_back(expr.nodes[i].eventId);
  return ids;
}

void eventExprReset(EventExpr& expr) {
  for (EventNode& n : expr.nodes) {
    n.matched = false;
    n.eventId = 0;
  }
}

std::vector<std::string> eventExprNames(const EventExpr& expr) {
  std::vector<std::string> names;
  std::set<std::string_view> seen;
  for (const EventNode& n : expr.nodes)
    if (n.type == EventNode::Type::Match && seen.insert(n.name).second) names.push_back(n.name);
  return names;
}

bool globMatch(std::string_view pattern, std::string_view text) {
  std::string p(pattern), t(text);
  return fnmatch(p.c_str(), t.c_str(), 0) == 0;
}

}  // namespace baton
