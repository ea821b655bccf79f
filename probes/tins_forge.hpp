// The packets outpost builds with libtins (a TCP SYN, a UDP trace probe's
// datagram, a DNS query) come from a module of their own, outpost-tins.so,
// that a process loads the first time it needs one: libtins and the libcrypto
// it links cost a process about 4.5 ms and 140 page faults to load (on the
// 2-core test machine), and `outpost ping` (ICMP), `check`, `report`, `asn`
// never use them. Echo requests are forged by hand (icmp_echo) and captured
// frames decoded by hand (packet_decode), on the per-probe path.
// Leaves to others: the fields (tcp_syn, traceroute, dns_message decide them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dns_message.hpp"
#include "tcp_syn.hpp"
#include "traceroute.hpp"

namespace outpost {

struct TinsForge {
  std::vector<std::uint8_t> (*tcp_syn)(const SynSegment& syn);
  // IP and UDP headers around `payload`, checksums as libtins computes them.
  std::vector<std::uint8_t> (*udp_datagram)(const UdpTraceRequest& request, const std::vector<std::uint8_t>& payload);
  std::vector<std::uint8_t> (*dns_query)(std::uint16_t id, const DnsQuestion& question);
};

// The module's forgers, loaded on the first call: from beside the executable
// (a build tree), else from ../lib/outpost/ next to its directory (the
// package: /usr/lib/outpost). A program that links the module's source
// (tests, fuzzers) uses that instead. Throws std::runtime_error, naming the
// paths tried, when the module cannot be loaded.
const TinsForge& tins_forge();

// tins_forge() for a command at start: "" when the module is loaded, else why not.
std::string load_tins_forge();

}  // namespace outpost

// The module's one export; weak here, so that a program that links the
// module's source has it, and one that does not (outpost) loads the module.
extern "C" const outpost::TinsForge* outpost_tins_forge_table() __attribute__((weak));
