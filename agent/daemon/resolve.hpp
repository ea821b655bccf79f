// Turns a target's literal address or host name into an IpAddress.
// Blocking (getaddrinfo): for start-up, reload and the terminal commands only.
// Leaves to others: when to resolve again.
#pragma once

#include <string>
#include <vector>

#include "ip_address.hpp"

namespace outpost {

struct Resolved {
  IpAddress address;
  std::string error;  // when address is empty
};

// A literal address as it is; else the first IPv4 address of the name (IPv6 if it has none).
Resolved resolve_target(const std::string& address_or_host);

// resolve_target for each name, the lookups run side by side on up to
// `parallel` threads (so a list of host names takes about as long as its
// slowest lookup, not the sum); the answers in the names' order.
std::vector<Resolved> resolve_targets(const std::vector<std::string>& names, unsigned parallel = 16);

}  // namespace outpost
