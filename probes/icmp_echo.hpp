// The ICMP echo probe (IPv4 and IPv6): forging the request, matching the reply
// (its cookie) or an ICMP error that quotes it (its checksum), and the RTT from
// kernel timestamps.
// Leaves to others: sockets, capture and timers (engine, through ProbeContext).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "packet_decode.hpp"
#include "probe.hpp"
#include "registry.hpp"

namespace outpost {

struct EchoRequest {
  IpAddress src;
  IpAddress dst;
  std::uint16_t ident = 0;
  std::uint16_t sequence = 0;
  std::uint16_t ip_id = 0;  // IPv4 only
  std::uint8_t ttl = 64;
  std::uint64_t cookie = 0;        // first 8 payload bytes, echoed back by the target
  std::size_t payload_size = 56;   // like ping: 64-byte ICMP message
  // Paris traceroute: the ICMP checksum to send whatever the sequence and
  // cookie (payload bytes 8-9 absorb the difference), so that load balancers
  // that hash the first transport bytes keep every probe of a trace on one path.
  std::optional<std::uint16_t> checksum;
};

// Makes the Internet checksum at checksum_offset equal `wanted` by writing a
// compensating word at adjust_offset (which must hold 0, at an even distance
// from the checksummed data's start). Pure.
void paris_fix_checksum(std::span<std::uint8_t> datagram, std::size_t checksum_offset, std::size_t adjust_offset,
                        std::uint16_t wanted);

// The whole IP datagram (IPv4 + ICMP, or IPv6 + ICMPv6) with checksums. Pure.
std::vector<std::uint8_t> forge_echo_request(const EchoRequest& request);
// The same into `out` (a probe's own buffer: no allocation on its way out):
// its size, or 0 when `out` is shorter than echo_request_size(request).
std::size_t forge_echo_request(const EchoRequest& request, std::span<std::uint8_t> out);
std::size_t echo_request_size(const EchoRequest& request);

// The cookie a reply must echo: a keyed hash of the probe's identity, so that
// a forged or misdirected reply with the right id/sequence is told apart.
std::uint64_t echo_cookie(const FlowSecret& secret, const IpAddress& dst, std::uint16_t ident,
                          std::uint16_t sequence);

// Every echo request and reply: identifiers are drawn per probe, so the
// filter cannot know ours (the flow key and the cookie pick them out).
std::string icmp_echo_filter(const FilterParams& params);
std::optional<Classified> icmp_echo_classify(const DecodedPacket& packet, const FilterParams& params);

class IcmpEchoProbe final : public Probe {
 public:
  IcmpEchoProbe(IpAddress target, Duration timeout, std::uint8_t ttl = 64, std::size_t payload_size = 56,
                std::optional<std::uint16_t> fixed_checksum = std::nullopt);

  void start(ProbeContext& ctx) override;
  void on_sent(WallTime kernel_tx) override;
  bool on_packet(const DecodedPacket& packet, WallTime kernel_rx) override;
  void on_timeout() override;
  void on_send_error(const std::string& error) override;
  bool finished() const override { return finished_; }
  const ProbeResult& result() const override { return result_; }

 private:
  void finish(ProbeStatus status, WallTime rx, const DecodedPacket& packet);

  EchoRequest request_;
  // The ICMP checksum we sent: it covers the cookie, so an ICMP error that
  // quotes it (routers quote at least the 8 header bytes) proves it saw our request.
  std::uint16_t sent_checksum_ = 0;
  Duration timeout_;
  ProbeResult result_;
  bool finished_ = false;
};

}  // namespace outpost
