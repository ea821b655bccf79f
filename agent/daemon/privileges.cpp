#include "privileges.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace outpost {

bool has_net_raw() {
  cap_t caps = cap_get_proc();
  if (!caps) return false;
  cap_flag_value_t value = CAP_CLEAR;
  cap_get_flag(caps, CAP_NET_RAW, CAP_EFFECTIVE, &value);
  cap_free(caps);
  return value == CAP_SET;
}

namespace {

constexpr std::uint64_t bit(int capability) { return std::uint64_t{1} << capability; }

// The capabilities this kernel knows (at most 64).
int capability_count() {
  const int n = static_cast<int>(cap_max_bits());
  return n > 0 && n <= 64 ? n : CAP_LAST_CAP + 1;
}

// getpwnam_r / getgrnam_r / getgrgid_r with a buffer that grows on ERANGE.
template <class Entry, class Lookup>
bool look_up(Lookup lookup, Entry* entry, std::vector<char>& buffer, int* error) {
  buffer.resize(4096);
  while (true) {
    Entry* found = nullptr;
    const int rc = lookup(entry, buffer.data(), buffer.size(), &found);
    if (rc == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    *error = rc;
    return rc == 0 && found != nullptr;
  }
}

std::string lookup_failure(const char* what, const std::string& name, int error) {
  // getpwnam_r reports "not found" as 0 or, on some systems, ENOENT/ESRCH.
  if (error == 0 || error == ENOENT || error == ESRCH)
    return std::string("no ") + what + " '" + name + "' on this system";
  return std::string("looking up ") + what + " '" + name + "': " + std::strerror(error);
}

class SystemPrivilegeCalls final : public PrivilegeCalls {
 public:
  bool has_effective(int capability) override {
    cap_t caps = cap_get_proc();
    if (!caps) return false;
    cap_flag_value_t value = CAP_CLEAR;
    cap_get_flag(caps, static_cast<cap_value_t>(capability), CAP_EFFECTIVE, &value);
    cap_free(caps);
    return value == CAP_SET;
  }
  int bound_drop(int capability) override { return prctl(PR_CAPBSET_DROP, capability, 0, 0, 0); }
  int set_keepcaps(bool on) override { return prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0); }
  int set_groups(const std::vector<gid_t>& groups) override { return setgroups(groups.size(), groups.data()); }
  int set_gid(gid_t gid) override { return setresgid(gid, gid, gid); }
  int set_uid(uid_t uid) override { return setresuid(uid, uid, uid); }
  int set_capabilities(bool keep_net_raw) override {
    cap_t caps = cap_init();  // all clear
    if (!caps) return -1;
    const cap_value_t keep[] = {CAP_NET_RAW};
    if (keep_net_raw) {
      cap_set_flag(caps, CAP_PERMITTED, 1, keep, CAP_SET);
      cap_set_flag(caps, CAP_EFFECTIVE, 1, keep, CAP_SET);
    }
    const int rc = cap_set_proc(caps);
    const int saved = errno;
    cap_free(caps);
    errno = saved;
    return rc;
  }
  int clear_ambient() override {
    const int rc = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    return rc != 0 && errno == EINVAL ? 0 : rc;  // a kernel without ambient capabilities (before 4.3)
  }
  int set_no_new_privs() override { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }
  void get_uids(uid_t* real, uid_t* effective, uid_t* saved) override { getresuid(real, effective, saved); }
  void get_gids(gid_t* real, gid_t* effective, gid_t* saved) override { getresgid(real, effective, saved); }
  std::vector<gid_t> get_groups() override {
    const int n = getgroups(0, nullptr);
    std::vector<gid_t> groups(n > 0 ? static_cast<std::size_t>(n) : 0);
    if (n > 0) groups.resize(static_cast<std::size_t>(std::max(0, getgroups(n, groups.data()))));
    return groups;
  }
  CapabilityMasks get_capabilities() override {
    CapabilityMasks masks;
    cap_t caps = cap_get_proc();
    if (!caps) {
      masks.effective = masks.permitted = masks.inheritable = ~std::uint64_t{0};  // unknown: never "dropped"
      return masks;
    }
    for (int c = 0; c < capability_count(); ++c) {
      cap_flag_value_t v = CAP_CLEAR;
      const auto value = static_cast<cap_value_t>(c);
      if (cap_get_flag(caps, value, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET) masks.effective |= bit(c);
      if (cap_get_flag(caps, value, CAP_PERMITTED, &v) == 0 && v == CAP_SET) masks.permitted |= bit(c);
      if (cap_get_flag(caps, value, CAP_INHERITABLE, &v) == 0 && v == CAP_SET) masks.inheritable |= bit(c);
    }
    cap_free(caps);
    return masks;
  }
  bool no_new_privs() override { return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1; }
  int regain_root() override { return setuid(0); }
};

std::string failed(const char* step, int error) { return std::string(step) + ": " + std::strerror(error); }

std::string hex_mask(std::uint64_t mask) {
  char text[24];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(mask));
  return text;
}

// What the process must be after the drop; "" or "verify: what is not so".
std::string verify(const std::optional<RunAs>& run_as, bool switched, bool keep_net_raw, PrivilegeCalls& calls) {
  if (run_as) {
    uid_t ru = 0, eu = 0, su = 0;
    gid_t rg = 0, eg = 0, sg = 0;
    calls.get_uids(&ru, &eu, &su);
    calls.get_gids(&rg, &eg, &sg);
    const uid_t u = run_as->uid;
    const gid_t g = run_as->gid;
    if (ru != u || eu != u || su != u)
      return "verify: real/effective/saved uid are " + std::to_string(ru) + "/" + std::to_string(eu) + "/" +
             std::to_string(su) + ", expected " + std::to_string(u);
    if (rg != g || eg != g || sg != g)
      return "verify: real/effective/saved gid are " + std::to_string(rg) + "/" + std::to_string(eg) + "/" +
             std::to_string(sg) + ", expected " + std::to_string(g);
    if (switched) {
      const std::vector<gid_t> groups = calls.get_groups();
      if (!groups.empty() && !(groups.size() == 1 && groups[0] == g))
        return "verify: " + std::to_string(groups.size()) + " supplementary groups left, expected only " +
               std::to_string(g);
    }
  }
  const std::uint64_t want = keep_net_raw ? bit(CAP_NET_RAW) : 0;
  const CapabilityMasks caps = calls.get_capabilities();
  if (caps.effective != want || caps.permitted != want || caps.inheritable != 0)
    return "verify: capabilities effective " + hex_mask(caps.effective) + " permitted " + hex_mask(caps.permitted) +
           " inheritable " + hex_mask(caps.inheritable) + ", expected " + hex_mask(want) + " " + hex_mask(want) +
           " 0000000000000000";
  if (!calls.no_new_privs()) return "verify: no_new_privs is not set";
  if (run_as && run_as->uid != 0 && calls.regain_root() == 0) return "verify: setuid(0) succeeded after the drop";
  return {};
}

}  // namespace

std::optional<RunAs> look_up_run_as(const std::string& user, const std::string& group, std::string* error) {
  std::vector<char> buffer;
  int rc = 0;
  passwd pw{};
  if (!look_up([&](passwd* e, char* b, std::size_t n, passwd** r) { return getpwnam_r(user.c_str(), e, b, n, r); },
               &pw, buffer, &rc)) {
    *error = lookup_failure("user", user, rc);
    return std::nullopt;
  }
  RunAs as;
  as.user = pw.pw_name;
  as.uid = pw.pw_uid;
  as.gid = pw.pw_gid;
  struct group gr{};
  if (!group.empty()) {
    if (!look_up([&](struct group* e, char* b, std::size_t n, struct group** r) {
          return getgrnam_r(group.c_str(), e, b, n, r);
        },
                 &gr, buffer, &rc)) {
      *error = lookup_failure("group", group, rc);
      return std::nullopt;
    }
    as.gid = gr.gr_gid;
    as.group = gr.gr_name;
  } else if (look_up([&](struct group* e, char* b, std::size_t n, struct group** r) {
               return getgrgid_r(as.gid, e, b, n, r);
             },
                     &gr, buffer, &rc)) {
    as.group = gr.gr_name;
  } else {
    as.group = std::to_string(as.gid);  // a primary group without an entry: its number
  }
  return as;
}

std::string current_user_text() {
  const uid_t uid = geteuid();
  std::vector<char> buffer;
  int rc = 0;
  passwd pw{};
  std::string name = look_up([&](passwd* e, char* b, std::size_t n, passwd** r) { return getpwuid_r(uid, e, b, n, r); },
                             &pw, buffer, &rc)
                         ? std::string(pw.pw_name)
                         : std::string("?");
  return "user " + name + ", uid " + std::to_string(uid);
}

PrivilegeCalls& system_privilege_calls() {
  static SystemPrivilegeCalls calls;
  return calls;
}

std::string drop_privileges(const std::optional<RunAs>& run_as, bool keep_net_raw, PrivilegeCalls& calls) {
  // The bounding set first, while CAP_SETPCAP is still ours (when it is).
  if (calls.has_effective(CAP_SETPCAP)) {
    for (int cap = 0; cap < capability_count(); ++cap) {
      if (keep_net_raw && cap == CAP_NET_RAW) continue;
      // EINVAL: a capability this kernel does not know, so not in its set.
      if (calls.bound_drop(cap) != 0 && errno != EINVAL) return failed("capability bounding set", errno);
    }
  }
  bool switched = false;
  if (run_as) {
    uid_t ru = 0, eu = 0, su = 0;
    gid_t rg = 0, eg = 0, sg = 0;
    calls.get_uids(&ru, &eu, &su);
    calls.get_gids(&rg, &eg, &sg);
    const bool already = ru == run_as->uid && eu == run_as->uid && su == run_as->uid && rg == run_as->gid &&
                         eg == run_as->gid && sg == run_as->gid;
    if (!already) {
      // Keep the permitted set across the change of uid; the effective set
      // is cleared by it and restored to CAP_NET_RAW below.
      if (calls.set_keepcaps(true) != 0) return failed("keepcaps", errno);
      if (calls.set_groups({run_as->gid}) != 0) return failed("setgroups", errno);
      if (calls.set_gid(run_as->gid) != 0) return failed("setgid", errno);
      if (calls.set_uid(run_as->uid) != 0) return failed("setuid", errno);
      switched = true;
    }
  }
  if (calls.set_capabilities(keep_net_raw) != 0) return failed("capabilities", errno);
  if (calls.clear_ambient() != 0) return failed("ambient capabilities", errno);
  if (switched && calls.set_keepcaps(false) != 0) return failed("keepcaps", errno);
  if (calls.set_no_new_privs() != 0) return failed("no_new_privs", errno);
  return verify(run_as, switched, keep_net_raw, calls);
}

}  // namespace outpost
