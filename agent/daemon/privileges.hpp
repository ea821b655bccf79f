// Privileges: whether the process may use raw sockets and capture
// (CAP_NET_RAW), and giving up everything else for good once they are open:
// the switch to agent.user and the drop to CAP_NET_RAW alone, failing closed.
// Leaves to others: opening the sockets themselves (probes/engine), and
// which files the user must reach (the command line's preflight).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace outpost {

bool has_net_raw();

// The message for a process that lacks CAP_NET_RAW (exit 2).
inline constexpr const char* kNeedNetRaw =
    "outpost needs CAP_NET_RAW to send raw packets and capture replies: run it as root, "
    "or grant it: setcap cap_net_raw+ep /path/to/outpost";

// Who the agent becomes: agent.user and agent.group looked up.
struct RunAs {
  std::string user;   // the user's name
  std::string group;  // agent.group, or the name of the user's primary group
  uid_t uid = 0;
  gid_t gid = 0;
};

// Looks agent.user up, and agent.group when given (else the user's primary
// group); nullopt and "no user 'outpst' on this system" (or the lookup's
// error) in *error.
std::optional<RunAs> look_up_run_as(const std::string& user, const std::string& group, std::string* error);

// "user nobody, uid 65534": the process's effective user, for messages.
std::string current_user_text();

// Capability sets as bit masks (bit N is capability N: CAP_NET_RAW is 1 << 13).
struct CapabilityMasks {
  std::uint64_t effective = 0;
  std::uint64_t permitted = 0;
  std::uint64_t inheritable = 0;
};

// The system calls a drop makes, one per step, so that a test can make any
// of them fail (or lie). Each returns 0, or -1 with errno set.
class PrivilegeCalls {
 public:
  virtual ~PrivilegeCalls() = default;
  virtual bool has_effective(int capability) = 0;
  // Lowers a capability in the bounding set; lowering one already out of it
  // succeeds too, so no read comes first (one system call per capability).
  virtual int bound_drop(int capability) = 0;
  virtual int set_keepcaps(bool on) = 0;
  virtual int set_groups(const std::vector<gid_t>& groups) = 0;
  virtual int set_gid(gid_t gid) = 0;  // real, effective and saved
  virtual int set_uid(uid_t uid) = 0;  // likewise
  // Effective and permitted: CAP_NET_RAW alone (keep_net_raw) or nothing;
  // inheritable: nothing.
  virtual int set_capabilities(bool keep_net_raw) = 0;
  virtual int clear_ambient() = 0;
  virtual int set_no_new_privs() = 0;
  // What the process is now, to verify the result.
  virtual void get_uids(uid_t* real, uid_t* effective, uid_t* saved) = 0;
  virtual void get_gids(gid_t* real, gid_t* effective, gid_t* saved) = 0;
  virtual std::vector<gid_t> get_groups() = 0;
  virtual CapabilityMasks get_capabilities() = 0;
  virtual bool no_new_privs() = 0;
  // setuid(0): it must fail once the user is not root. 0 if it succeeded.
  virtual int regain_root() = 0;
};

// The real system calls (prctl, setresuid, libcap ...).
PrivilegeCalls& system_privilege_calls();

// Gives up every privilege but CAP_NET_RAW (keep_net_raw) or all of them,
// in these steps, each named in the error when it fails:
//   "capability bounding set" (all but CAP_NET_RAW, when CAP_SETPCAP allows;
//     no_new_privs makes what stays unusable anyway),
//   with run_as, unless the process already is that user and group:
//     "keepcaps", "setgroups" (the one group), "setgid", "setuid",
//   "capabilities", "ambient capabilities", "keepcaps" (off), "no_new_privs",
//   "verify" (uids, gids, groups, capability sets, no_new_privs, and with a
//     user other than root: setuid(0) fails).
// Returns "" on success, else "STEP: reason": the process must then exit
// (kExitPrivilege), as it may hold anything between root and nothing.
std::string drop_privileges(const std::optional<RunAs>& run_as, bool keep_net_raw,
                            PrivilegeCalls& calls = system_privilege_calls());

}  // namespace outpost
