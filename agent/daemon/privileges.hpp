// Capabilities: whether the process may use raw sockets and capture
// (CAP_NET_RAW), and dropping every other capability once it may.
// Leaves to others: opening the sockets themselves (probes/engine).
#pragma once

#include <string>

namespace outpost {

bool has_net_raw();
// Keeps CAP_NET_RAW (effective and permitted) and drops every other
// capability, also from the bounding set; sets no_new_privs. "" on success.
std::string drop_all_but_net_raw();
// Drops every capability there is (for a run without raw sockets). "" on success.
std::string drop_all_capabilities();

// The message for a process that lacks CAP_NET_RAW (exit 2).
inline constexpr const char* kNeedNetRaw =
    "outpost needs CAP_NET_RAW to send raw packets and capture replies: run it as root, "
    "or grant it: setcap cap_net_raw+ep /path/to/outpost";

}  // namespace outpost
