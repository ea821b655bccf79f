#include "registry.hpp"

#include <random>

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
  std::random_device rd;
  return {static_cast<std::uint16_t>(rd())};
}

std::string capture_filter(const FilterParams& params) {
  // ICMP errors quote whatever probe they answer, so every type needs them.
  std::string filter =
      "(icmp and (icmp[0] = 3 or icmp[0] = 4 or icmp[0] = 11 or icmp[0] = 12))"
      " or (icmp6 and ip6[40] >= 1 and ip6[40] <= 4)";
  for (const auto& type : probe_types()) {
    if (!filter.empty()) filter += " or ";
    filter += "(" + type.bpf(params) + ")";
  }
  return filter;
}

std::optional<Classified> classify(const DecodedPacket& packet, const FilterParams& params) {
  for (const auto& type : probe_types()) {
    if (auto c = type.classify(packet, params)) return c;
  }
  return std::nullopt;
}

}  // namespace outpost
