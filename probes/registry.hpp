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

// The capture filter: the OR of every registered type's fragment.
std::string capture_filter(const FilterParams& params);

// The first registered type that claims the packet.
std::optional<Classified> classify(const DecodedPacket& packet, const FilterParams& params);

}  // namespace outpost
