// What `outpost run` will open, checked before it does and as the user the
// agent will be once its privileges are dropped: agent.user and agent.group,
// the ASN table and names, output files (and collectors' CA and token
// files), agent.state_dir and what it holds, and the config itself (reloads).
// Leaves to others: the config's syntax (config/), dropping privileges
// (daemon/privileges), and opening anything for real (run).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "outpost_config.hpp"
#include "privileges.hpp"

namespace outpost {

// Whose rights a file is checked against: a process without capabilities.
struct Identity {
  std::string name;  // "nobody (uid 65534)"
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

// The process's own effective user, group and groups.
Identity current_identity();
// What the agent is after switching to run_as: its uid, and its one group.
Identity identity_of(const RunAs& run_as);

// "" when `who` may use `path` with `rights` (R_OK, W_OK, X_OK from
// <unistd.h>) as a process without capabilities: the search right on every
// directory above it, then the path's mode bits for its owner, its group or
// the others (ACLs aside); writing also needs a file system mounted
// read-write. Else why not, naming the path that stops it, e.g.
// "/var/lib/outpost: not writable by nobody (uid 65534): owner root:root, mode 0755".
std::string access_problem(const std::string& path, int rights, const Identity& who);

// One thing check found: an error (exit 1) or a warning.
struct PreflightNote {
  std::string where;  // "FILE:LINE:COL: key" of the config, or the config's file
  std::string message;
  bool warning = false;
  std::string to_string() const;  // "WHERE: message", "WHERE: warning: message"
};

struct PreflightOptions {
  bool as_root = false;   // run is started as root (check assumes: as check is)
  bool load_asn = true;   // load the ASN table and names with run's loaders and bounds
};

// Everything run would trip over with this config, in config order.
std::vector<PreflightNote> preflight(const Config& config, const PreflightOptions& options);

// For run, before the drop: a missing agent.state_dir is created (its
// parents 0755, itself 0750) and given to run_as, so that the spool and
// state.json, written after the drop, are the user's. An existing one is
// left as it is. "" or why not.
std::string make_state_dir(const std::string& dir, const RunAs& run_as);

}  // namespace outpost
