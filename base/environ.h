// Environment tables (vectors of "KEY=VALUE") and $VAR expansion, as used by job files,
// events and the spawner.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace baton::environ {

using Table = std::vector<std::string>;

// Value of KEY in the table, if present.
std::optional<std::string> get(const Table& env, std::string_view key);
// Set "KEY=VALUE" (replacing an existing KEY) ; `kv` without '=' is rejected (returns false).
bool set(Table& env, std::string_view kv);
void set(Table& env, std::string_view key, std::string_view value);
// Remove KEY if present.
void erase(Table& env, std::string_view key);
// Append every entry of `from` into `env`, replacing keys that exist.
void merge(Table& env, const Table& from);
// Valid variable name: [A-Za-z_][A-Za-z0-9_]*
bool validName(std::string_view key);

// Expand $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:+alt}, ${VAR+alt} and $$ (a '$')
// using `env`. An unknown variable (without a default form) is an error: returns false and sets
// `error` to "unknown parameter: VAR". Text without '$' is copied unchanged.
bool expand(std::string_view in, const Table& env, std::string& out, std::string& error);

}  // namespace baton::environ
