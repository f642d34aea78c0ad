// Job files: NAME.conf (+ NAME.override) in Upstart's syntax -> JobDef.
//
// Every problem is reported as "FILE:LINE: message"; a file with any error is skipped as a
// whole, other files load. Stanzas baton parses but does not support (apparmor, debug) are
// warnings and also recorded in JobDef::unsupported.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schema/model.h"

namespace baton {

constexpr size_t kMaxJobFileBytes = 1 << 20;  // larger files are refused

struct ParsedJob {
  std::optional<JobDef> def;          // empty if any error
  std::vector<std::string> errors;    // "FILE:LINE: message"
  std::vector<std::string> warnings;  // "FILE:LINE: message"
};

// Parse one job. `overrideContent`, if given, is parsed after the .conf and each stanza it
// contains replaces the same stanza of the .conf (Upstart's .override semantics). `name` is the
// job name, `path` the .conf path (used in messages and JobDef::path).
ParsedJob parseJobFile(const std::string& name, const std::string& path, std::string_view content,
                       const std::string& overridePath = {}, std::string_view overrideContent = {});

struct LoadedConfig {
  std::map<std::string, std::shared_ptr<const JobDef>> jobs;  // by job name
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};

// Read every *.conf under `dir` (recursively; "a/b.conf" is job "a/b") with its .override.
// Unreadable/huge/binary/non-UTF-8 files are errors "FILE:1: ...". A missing `dir` is one error.
LoadedConfig loadConfigDir(const std::string& dir);

}  // namespace baton
