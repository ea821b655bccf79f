// Turns a target's literal address or host name into an IpAddress.
// Blocking (getaddrinfo): for start-up, reload and the terminal commands only.
// Leaves to others: when to resolve again.
#pragma once

#include <string>

#include "ip_address.hpp"

namespace outpost {

struct Resolved {
  IpAddress address;
  std::string error;  // when address is empty
};

// A literal address as it is; else the first IPv4 address of the name (IPv6 if it has none).
Resolved resolve_target(const std::string& address_or_host);

}  // namespace outpost
