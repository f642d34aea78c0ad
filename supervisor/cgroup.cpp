#include "supervisor/cgroup.h"

#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "base/environ.h"

namespace baton {

std::string jobCgroupName(const std::string& job, const std::string& instance) {
  std::string name = instance.empty() ? job : job + "-" + instance;
  for (char& c : name)
    if (c == '/') c = '_';
  return name;
}

static bool isDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string cgroupHierarchy(const std::string& root, const std::string& controller) {
  std::string dir = root + "/" + controller;
  if (isDir(dir)) return dir;
  struct statfs fs;
  if (statfs(root.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) return root;
  return {};
}

bool planCgroups(const JobDef& def, const std::string& instance, const std::vector<std::string>& env,
                 const Config& config, std::vector<CgroupPlacement>& out, std::string& error) {
  out.clear();
  const std::string jobGroup = jobCgroupName(def.name, instance);
  environ::Table vars = env;
  environ::set(vars, "UPSTART_CGROUP", jobGroup);
  environ::set(vars, "BATON_CGROUP", jobGroup);
  for (const CgroupDef& c : def.cgroups) {
    std::string hierarchy = cgroupHierarchy(config.cgroupRoot, c.controller);
    if (hierarchy.empty()) {
      error = "cgroup controller '" + c.controller + "' is not mounted under " + config.cgroupRoot;
      return false;
    }
    std::string name = jobGroup;
    if (!c.name.empty() && !environ::expand(c.name, vars, name, error)) {
      error = "cgroup name: " + error;
      return false;
    }
    if (name.empty() || name.find("..") != std::string::npos) {
      error = "cgroup name '" + name + "' is not valid";
      return false;
    }
    CgroupPlacement p;
    std::string dir = hierarchy;
    // Create BASE and each component of NAME, so nested names work.
    std::string rel = config.cgroupBase + "/" + name;
    size_t pos = 0;
    while (pos != std::string::npos) {
      size_t next = rel.find('/', pos);
      std::string part = rel.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
      if (!part.empty()) {
        dir += "/" + part;
        p.mkdirs.push_back(dir);
      }
      pos = next == std::string::npos ? next : next + 1;
    }
    for (const CgroupSetting& s : c.settings) {
      std::string value;
      if (!environ::expand(s.value, vars, value, error)) {
        error = "cgroup setting " + s.key + ": " + error;
        return false;
      }
      if (s.key.find('/') != std::string::npos) {
        error = "cgroup setting '" + s.key + "' is not a file name";
        return false;
      }
      p.settings.emplace_back(dir + "/" + s.key, value);
    }
    p.procsFile = dir + "/cgroup.procs";
    out.push_back(std::move(p));
  }
  return true;
}

void removeJobCgroups(const JobDef& def, const std::string& instance, const Config& config) {
  const std::string jobGroup = jobCgroupName(def.name, instance);
  for (const CgroupDef& c : def.cgroups) {
    if (!c.name.empty()) continue;  // named groups may be shared by other jobs
    std::string hierarchy = cgroupHierarchy(config.cgroupRoot, c.controller);
    if (!hierarchy.empty()) rmdir((hierarchy + "/" + config.cgroupBase + "/" + jobGroup).c_str());
  }
}

}  // namespace baton
