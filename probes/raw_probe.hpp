// What the probes forged for the raw socket and answered through the capture
// share: libtins addresses, the keyed cookie, and a result filled from the answer.
// Leaves to others: each probe type's packet layout and matching rules (icmp_echo, tcp_syn).
#pragma once

#include <netinet/in.h>
#include <tins/ip_address.h>
#include <tins/ipv6_address.h>

#include <cstdint>
#include <cstring>

#include "packet_decode.hpp"
#include "probe.hpp"

namespace outpost {

inline Tins::IPv4Address tins_v4(const IpAddress& a) {
  std::uint32_t network_order;
  std::memcpy(&network_order, a.bytes(), 4);
  return Tins::IPv4Address(network_order);
}

inline Tins::IPv6Address tins_v6(const IpAddress& a) { return Tins::IPv6Address(a.bytes()); }

inline std::uint64_t mix64(std::uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A keyed hash of a flow's identity: what a genuine answer carries back (echo
// data, the acknowledged sequence number) and a forged one cannot guess.
inline std::uint64_t flow_cookie(std::uint64_t secret, const FlowKey& key) {
  return mix64(secret ^ mix64(key.remote.hash()) ^
               (static_cast<std::uint64_t>(key.proto) << 32 | static_cast<std::uint64_t>(key.a) << 16 | key.b));
}

// The capture saw our probe leave. On loopback it can see it twice (out and
// in): the first stamp is the send time.
inline void note_kernel_send(ProbeResult& result, WallTime kernel_tx) {
  if (result.sent_kernel_stamp) return;
  result.sent = kernel_tx;
  result.sent_kernel_stamp = true;
}

// Fills the result from the answer that ends the probe (RTT from the kernel
// timestamps at both ends, when the capture saw the probe leave).
inline void fill_answer(ProbeResult& result, ProbeStatus status, WallTime kernel_rx, const DecodedPacket& p) {
  result.status = status;
  result.rtt = kernel_rx - result.sent;
  result.reply_from = p.ip.src;
  result.reply_ttl = p.ip.ttl;
  if (p.l4.proto == IPPROTO_ICMP || p.l4.proto == IPPROTO_ICMPV6) {
    result.icmp_type = p.l4.icmp_type;
    result.icmp_code = p.l4.icmp_code;
  }
  if (p.quote) {
    result.quoted_ttl = p.quote->ip.ttl;
    result.mpls = p.mpls;
  }
  if (status == ProbeStatus::unreachable) result.error = describe_icmp_error(p.l4.proto, p.l4.icmp_type, p.l4.icmp_code);
}

}  // namespace outpost
