#include "privileges.hpp"

#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include <cerrno>
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

// Keeps CAP_NET_RAW or nothing at all.
std::string drop_capabilities(bool keep_net_raw) {
  // The bounding set first, while CAP_SETPCAP is still ours (when it is).
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (keep_net_raw && cap == CAP_NET_RAW) continue;
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  }
  cap_t caps = cap_init();  // all clear
  const cap_value_t keep[] = {CAP_NET_RAW};
  if (keep_net_raw) {
    cap_set_flag(caps, CAP_PERMITTED, 1, keep, CAP_SET);
    cap_set_flag(caps, CAP_EFFECTIVE, 1, keep, CAP_SET);
  }
  const int rc = cap_set_proc(caps);
  const int err = errno;
  cap_free(caps);
  if (rc != 0) return std::string("dropping capabilities: ") + std::strerror(err);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  return {};
}

}  // namespace

std::string drop_all_but_net_raw() { return drop_capabilities(true); }
std::string drop_all_capabilities() { return drop_capabilities(false); }

}  // namespace outpost
