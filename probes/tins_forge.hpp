// The DNS queries outpost builds with libtins come from a module of their
// own, outpost-tins.so, that a process loads the first time it needs one:
// libtins and what it links (libcrypto, libpcap's shared library and its
// chain, libstdc++'s shared library) cost a process about 12 ms and 200 page
// faults to load on the 2-core test machine, and only DNS probes use them.
// The datagrams of every other probe (echo requests, TCP SYNs, UDP trace
// probes) are forged by hand (ip_forge) into the probe's own buffer, and
// captured frames decoded by hand (packet_decode), on the per-probe path.
// Leaves to others: the query's fields (dns_message decides them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dns_message.hpp"

namespace outpost {

// No exception crosses the module's edge (the executable and the module
// each unwind with their own copy of libgcc's unwinder): what fails comes
// back as an error text, and forge_dns_query throws it on this side.
struct TinsForge {
  // The query's datagram; empty, with *error, when libtins could not build it.
  std::vector<std::uint8_t> (*dns_query)(std::uint16_t id, const DnsQuestion& question, std::string* error);
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
