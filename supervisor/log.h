// batond's diagnostics: one line on stderr per message at or above the model's log priority.
//
// Every part of batond logs through one Log that reads Config::logPriority from the model on
// each call, so `batonctl log-priority` and a restored configuration apply at once everywhere.
#pragma once

#include <string>

#include "base/log_priority.h"
#include "schema/model.h"

namespace baton {

using Priority = LogPriority;  // base/log_priority.h

class Log {
 public:
  // `config` is the model's (Model::config): the Model outlives every part that logs, and a
  // restore assigns the model in place, so the reference stays valid.
  explicit Log(const Config& config) : config_(config) {}
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  void operator()(Priority p, const std::string& text) const;

 private:
  const Config& config_;
};

}  // namespace baton
