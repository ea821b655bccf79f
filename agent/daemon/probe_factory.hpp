// Makes the engine's probe for one configured probe method (icmp, tcp:PORT,
// tcp_connect:PORT, dns), and says which methods need raw sockets.
// Leaves to others: when to probe (agent, scheduler), the probes themselves (probes/).
#pragma once

#include <memory>
#include <string>

#include "outpost_config.hpp"
#include "probe.hpp"

namespace outpost {

// nullptr with *error when the probe cannot be made (a dns probe without a
// usable query). `dns` is the target's dns block (dns needs it; the others ignore it).
std::unique_ptr<Probe> make_probe(const ProbeMethod& method, const IpAddress& address, Duration timeout,
                                  const DnsQuery* dns, std::string* error);

// Whether the method needs raw sockets (icmp, tcp:PORT); tcp:PORT has an
// unprivileged stand-in, tcp_connect:PORT.
bool needs_raw_socket(const ProbeMethod& method);
ProbeMethod without_raw_socket(ProbeMethod method);

}  // namespace outpost
