// Environment tables and $VAR expansion (see environ.h).
#include "base/environ.h"

namespace baton::environ {

namespace {

bool isNameStart(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool isNameChar(char c) { return isNameStart(c) || (c >= '0' && c <= '9'); }

// Index of the entry whose key is `key`, or -1.
long find(const Table& env, std::string_view key) {
  for (size_t i = 0; i < env.size(); ++i) {
    const std::string& e = env[i];
    if (e.size() > key.size() && e[key.size()] == '=' && std::string_view(e).substr(0, key.size()) == key)
      return static_cast<long>(i);
  }
  return -1;
}

// Nesting limit for ${A:-${B:-...}} (the expansion recurses; keep the stack bounded).
constexpr int kMaxDepth = 32;

bool expandImpl(std::string_view in, const Table& env, std::string& out, std::string& error, int depth);

// Handle the inside of "${...}" (without the braces).
bool expandBraced(std::string_view inner, const Table& env, std::string& out, std::string& error,
                  int depth) {
  size_t n = 0;
  if (!inner.empty() && isNameStart(inner[0])) {
    n = 1;
    while (n < inner.size() && isNameChar(inner[n])) ++n;
  }
  if (n == 0) {
    error = "bad substitution: ${" + std::string(inner) + "}";
    return false;
  }
  std::string_view name = inner.substr(0, n);
  std::string_view rest = inner.substr(n);
  std::optional<std::string> value = get(env, name);
  if (rest.empty()) {
    if (!value) {
      error = "unknown parameter: " + std::string(name);
      return false;
    }
    out += *value;
    return true;
  }
  bool colon = false;
  if (rest[0] == ':') {
    colon = true;
    rest.remove_prefix(1);
  }
  if (rest.empty() || (rest[0] != '-' && rest[0] != '+')) {
    error = "bad substitution: ${" + std::string(inner) + "}";
    return false;
  }
  char op = rest[0];
  std::string_view word = rest.substr(1);
  // "set" for the ':' forms means set and not empty.
  bool set = value.has_value() && (!colon || !value->empty());
  if (op == '-') {
    if (set) {
      out += *value;
      return true;
    }
    return expandImpl(word, env, out, error, depth + 1);
  }
  // op == '+'
  if (set) return expandImpl(word, env, out, error, depth + 1);
  return true;
}

bool expandImpl(std::string_view in, const Table& env, std::string& out, std::string& error, int depth) {
  if (depth > kMaxDepth) {
    error = "substitutions nested too deeply";
    return false;
  }
  size_t i = 0;
  const size_t len = in.size();
  while (i < len) {
    char c = in[i];
    if (c != '$' || i + 1 >= len) {
      out += c;
      ++i;
      continue;
    }
    char nx = in[i + 1];
    if (nx == '$') {
      out += '$';
      i += 2;
    } else if (nx == '{') {
      // Find the matching '}', allowing nested ${...} in the default/alternative word.
      size_t j = i + 2;
      int braces = 1;
      while (j < len) {
        if (in[j] == '$' && j + 1 < len && in[j + 1] == '{') {
          ++braces;
          j += 2;
          continue;
        }
        if (in[j] == '}' && --braces == 0) break;
        ++j;
      }
      if (j >= len) {
        error = "missing '}' in " + std::string(in.substr(i));
        return false;
      }
      if (!expandBraced(in.substr(i + 2, j - (i + 2)), env, out, error, depth)) return false;
      i = j + 1;
    } else if (isNameStart(nx)) {
      size_t j = i + 1;
      while (j < len && isNameChar(in[j])) ++j;
      std::string_view name = in.substr(i + 1, j - (i + 1));
      std::optional<std::string> value = get(env, name);
      if (!value) {
        error = "unknown parameter: " + std::string(name);
        return false;
      }
      out += *value;
      i = j;
    } else {
      // '$' not followed by a name, '{' or '$' is an ordinary character.
      out += '$';
      ++i;
    }
  }
  return true;
}

}  // namespace

std::optional<std::string> get(const Table& env, std::string_view key) {
  long i = find(env, key);
  if (i < 0) return std::nullopt;
  return env[static_cast<size_t>(i)].substr(key.size() + 1);
}

bool set(Table& env, std::string_view kv) {
  size_t eq = kv.find('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  set(env, kv.substr(0, eq), kv.substr(eq + 1));
  return true;
}

void set(Table& env, std::string_view key, std::string_view value) {
  std::string entry;
  entry.reserve(key.size() + 1 + value.size());
  entry.append(key).append("=").append(value);
  long i = find(env, key);
  if (i >= 0)
    env[static_cast<size_t>(i)] = std::move(entry);
  else
    env.push_back(std::move(entry));
}

void erase(Table& env, std::string_view key) {
  long i = find(env, key);
  if (i >= 0) env.erase(env.begin() + i);
}

void merge(Table& env, const Table& from) {
  // Entries of `from` without '=' (or with an empty key) are not valid table entries: skipped.
  for (const std::string& kv : from) set(env, kv);
}

bool validName(std::string_view key) {
  if (key.empty() || !isNameStart(key[0])) return false;
  for (char c : key)
    if (!isNameChar(c)) return false;
  return true;
}

bool expand(std::string_view in, const Table& env, std::string& out, std::string& error) {
  std::string result;
  result.reserve(in.size());
  if (!expandImpl(in, env, result, error, 0)) return false;
  out = std::move(result);
  return true;
}

}  // namespace baton::environ
