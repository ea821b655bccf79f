// The half-open TCP probe (IPv4 and IPv6): forging the SYN, matching the
// SYN-ACK or RST that answers it or an ICMP error that quotes it, and the RTT
// from kernel timestamps. Our own kernel resets the connection a SYN-ACK
// offers (no socket owns the port), so nothing stays open on the target.
// Leaves to others: sockets, capture and timers (engine, through ProbeContext).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "packet_decode.hpp"
#include "probe.hpp"
#include "registry.hpp"

namespace outpost {

// Source ports of SYN probes: above Linux's default ephemeral range
// (32768-60999), so the kernel never gives them to a connection of its own
// and the SYN-ACKs to them find no socket. (A host that widened
// net.ipv4.ip_local_port_range should reserve these: ip_local_reserved_ports.)
// 61000-61999 belong to traces (traceroute.hpp).
inline constexpr std::uint16_t kTcpSynFirstPort = 62000;
inline constexpr std::uint16_t kTcpSynLastPort = 65535;

struct SynSegment {
  IpAddress src;
  IpAddress dst;
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint32_t isn = 0;      // the initial sequence number: our cookie
  std::uint16_t ip_id = 0;    // IPv4 only
  std::uint8_t ttl = 64;
  std::uint16_t window = 64240;
  std::uint16_t mss = 1460;   // the MSS option, as any client sends one (0: none)
};

// The whole IP datagram (IPv4 + TCP, or IPv6 + TCP) with checksums. Pure.
std::vector<std::uint8_t> forge_tcp_syn(const SynSegment& syn);
// The same into `out` (a probe's own buffer: no allocation on its way out):
// its size, or 0 when `out` is shorter than tcp_syn_size(syn).
std::size_t forge_tcp_syn(const SynSegment& syn, std::span<std::uint8_t> out);
std::size_t tcp_syn_size(const SynSegment& syn);
// At least tcp_syn_size() of any segment: IPv6, TCP and its MSS option.
inline constexpr std::size_t kTcpSynMaxSize = 40 + 20 + 4;

// The ISN a SYN carries: a keyed hash of the flow, so that a SYN-ACK or RST
// must acknowledge ISN+1 to be taken as the answer.
std::uint32_t tcp_syn_cookie(const FlowSecret& secret, const IpAddress& dst, std::uint16_t sport, std::uint16_t dport);

std::string tcp_syn_filter(const FilterParams& params);
std::optional<Classified> tcp_syn_classify(const DecodedPacket& packet, const FilterParams& params);

class TcpSynProbe final : public Probe {
 public:
  TcpSynProbe(IpAddress target, std::uint16_t port, Duration timeout, std::uint8_t ttl = 64);

  void start(ProbeContext& ctx) override;
  void on_sent(WallTime kernel_tx) override;
  bool on_packet(const DecodedPacket& packet, WallTime kernel_rx) override;
  void on_timeout() override;
  void on_send_error(const std::string& error) override;
  bool finished() const override { return finished_; }
  const ProbeResult& result() const override { return result_; }
  // The source port the SYN went out from (0 before start).
  std::uint16_t source_port() const { return syn_.sport; }

 private:
  void fail(std::string error);
  void finish(ProbeStatus status, WallTime rx, const DecodedPacket& packet);

  SynSegment syn_;
  Duration timeout_;
  ProbeResult result_;
  bool finished_ = false;
};

}  // namespace outpost
