// The `cgroup` stanza: where a job's processes go.
//
// Groups live under BASE (`--cgroup-base`, default "baton") of each controller's hierarchy:
// ROOT/CONTROLLER/BASE/NAME for cgroup v1 per-controller mounts, and ROOT/unified/BASE/NAME for
// the v2 unified mount (controller "unified"); if ROOT itself is a cgroup2 mount (a pure v2
// system) every controller maps to ROOT/BASE/NAME. NAME defaults to the job-specific group
// JOB[-INSTANCE] ('/' replaced by '_'), which is also the value of $UPSTART_CGROUP/$BATON_CGROUP.
// The parent only computes paths; the child creates the groups, writes settings and moves
// itself (spawn.cpp), so a slow cgroup filesystem never blocks batond.
#pragma once
#include <string>
#include <vector>

#include "schema/model.h"
#include "supervisor/spawn.h"

namespace baton {

std::string jobCgroupName(const std::string& job, const std::string& instance);

// Directory of CONTROLLER's hierarchy under `root`, or "" if it is not mounted.
std::string cgroupHierarchy(const std::string& root, const std::string& controller);

// Placements for every cgroup stanza of `def`. False with `error` set if a name cannot be
// expanded or a controller is not mounted.
bool planCgroups(const JobDef& def, const std::string& instance, const std::vector<std::string>& env,
                 const Config& config, std::vector<CgroupPlacement>& out, std::string& error);

// Remove the job-specific groups of an instance that has stopped (best effort: a group that
// still has processes, or that is shared, stays).
void removeJobCgroups(const JobDef& def, const std::string& instance, const Config& config);

}  // namespace baton
