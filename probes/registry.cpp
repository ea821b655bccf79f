#include "registry.hpp"

#include <algorithm>
#include <stdexcept>

#include <sodium.h>

#include "icmp_echo.hpp"
#include "tcp_syn.hpp"
#include "traceroute.hpp"

namespace outpost {

const std::vector<ProbeType>& probe_types() {
  static const std::vector<ProbeType> types = {
      {"icmp_echo", icmp_echo_filter, icmp_echo_classify},
      {"tcp_syn", tcp_syn_filter, tcp_syn_classify},
      {"udp_trace", udp_trace_filter, udp_trace_classify},
      {"tcp_trace", tcp_trace_filter, tcp_trace_classify},
  };
  return types;
}

FilterParams random_filter_params() {
  // Not std::random_device: see next_source_port (tcp_syn.cpp).
  return {static_cast<std::uint16_t>(randombytes_random())};
}

std::string capture_filter(const FilterParams& params, const std::vector<std::string_view>& only) {
  // ICMP errors quote whatever probe they answer, so every type needs them.
  std::string filter =
      "(icmp and (icmp[0] = 3 or icmp[0] = 4 or icmp[0] = 11 or icmp[0] = 12))"
      " or (icmp6 and ip6[40] >= 1 and ip6[40] <= 4)";
  for (const auto& type : probe_types()) {
    if (!only.empty() && std::find(only.begin(), only.end(), type.name) == only.end()) continue;
    filter += " or (" + type.bpf(params) + ")";
  }
  for (const auto name : only)  // a misspelt name would leave its probes deaf
    if (std::none_of(probe_types().begin(), probe_types().end(), [&](const auto& t) { return t.name == name; }))
      throw std::invalid_argument("capture_filter: no probe type " + std::string(name));
  return filter;
}

std::optional<Classified> classify(const DecodedPacket& packet, const FilterParams& params) {
  for (const auto& type : probe_types()) {
    if (auto c = type.classify(packet, params)) return c;
  }
  return std::nullopt;
}

}  // namespace outpost
