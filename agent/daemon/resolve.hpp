// Turns a target's literal address or host name into the IpAddress(es) to
// probe, by the target's `family`: the first IPv4 address, the first IPv6
// address, or one of each.
// Blocking (getaddrinfo): for start-up, reload and the terminal commands only.
// Leaves to others: when to resolve again.
#pragma once

#include <string>
#include <vector>

#include "ip_address.hpp"
#include "outpost_config.hpp"

namespace outpost {

struct Resolved {
  IpAddress address;
  std::string error;  // when address is empty
  // The family this answer stands for: v4 or v6 when one was asked for
  // (`4`, `6`, each half of `both`); none under `auto`, which takes either.
  IpAddress::Family family = IpAddress::Family::none;
};

// A literal address as it is; else the first IPv4 address of the name (IPv6 if it has none).
Resolved resolve_target(const std::string& address_or_host);

// The address(es) to probe for a name under `family`:
//   automatic: one answer, as resolve_target;
//   v4 / v6:   one answer, that family's first address, else an error
//              ("host 'NAME' has no IPv6 address");
//   both:      two answers, IPv4 then IPv6, each with its own error.
// One family never stands in for the other. A literal address answers for
// its own family; asked for the other it is an error ("'ADDR' is not an
// IPv6 address").
std::vector<Resolved> resolve_target(const std::string& address_or_host, TargetFamily family);

// The choice resolve_target makes among the addresses a host name resolved
// to (in getaddrinfo's order), without any lookup; `name` is for the errors.
std::vector<Resolved> choose_addresses(const std::string& name, const std::vector<IpAddress>& addresses,
                                       TargetFamily family);

// resolve_target for each name, the lookups run side by side on up to
// `parallel` threads (so a list of host names takes about as long as its
// slowest lookup, not the sum); the answers in the names' order.
std::vector<Resolved> resolve_targets(const std::vector<std::string>& names, unsigned parallel = 16);

// The same by family: families[i] applies to names[i] (a name past the end
// of families is looked up under automatic); the answers for each name as
// resolve_target(name, family) gives them, in the names' order.
std::vector<std::vector<Resolved>> resolve_targets(const std::vector<std::string>& names,
                                                   const std::vector<TargetFamily>& families,
                                                   unsigned parallel = 16);

}  // namespace outpost
