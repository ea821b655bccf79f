// The table of probe types: for each, the capture filter fragment that lets
// its packets through and the function that finds a packet's flow key.
// Leaves to others: forging (each probe's own file) and dispatch (engine).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "packet_decode.hpp"
#include "probe.hpp"

namespace outpost {

struct FilterParams {
  std::uint16_t icmp_ident = 0;  // unused: echo identifiers are drawn per probe (kept for the callers that set it)
};

// A random identifier, so that two agents (or an agent and ping) on one host
// keep to their own echo replies.
FilterParams random_filter_params();

struct Classified {
  FlowKey key;
  bool outgoing = false;  // our own probe leaving (for its kernel send time)
};

struct ProbeType {
  std::string_view name;
  std::string (*bpf)(const FilterParams&);
  std::optional<Classified> (*classify)(const DecodedPacket&, const FilterParams&);
};

const std::vector<ProbeType>& probe_types();

// The capture filter: every ICMP error (they quote whichever probe they
// answer), OR the fragments of the registered types named in `only` (all of
// them when it is empty). A command at the terminal that sends one type
// names it: the full filter took pcap_compile 1.0 ms of its start, the echo
// type's alone 0.3 ms. Throws std::invalid_argument for a name of no type.
std::string capture_filter(const FilterParams& params, const std::vector<std::string_view>& only = {});

// The first registered type that claims the packet.
std::optional<Classified> classify(const DecodedPacket& packet, const FilterParams& params);

}  // namespace outpost
