// What the probes forged for the raw socket and answered through the capture
// share: the keyed cookie (SipHash-2-4), which ICMP errors
// can answer a probe, and a result filled from the answer.
// Leaves to others: each probe type's packet layout and matching rules (icmp_echo, tcp_syn).
#pragma once

#include <netinet/in.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>

#include "packet_decode.hpp"
#include "probe.hpp"

namespace outpost {

// SipHash-2-4 (libsodium's crypto_shorthash) of `message` under `secret`: a
// PRF, so that no number of outputs with their inputs tells the key, or any
// other output.
inline std::uint64_t keyed_hash(const FlowSecret& secret, std::span<const std::uint8_t> message) {
  static_assert(sizeof(FlowSecret) == crypto_shorthash_KEYBYTES && crypto_shorthash_BYTES == 8);
  std::array<unsigned char, crypto_shorthash_BYTES> out{};
  crypto_shorthash(out.data(), message.data(), message.size(), secret.data());
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = value << 8 | out[static_cast<std::size_t>(i)];
  return value;
}

// A keyed hash of a flow's identity (every field, the address family too):
// what a genuine answer carries back (echo data, the acknowledged sequence
// number, the quoted ISN) and an off-path host cannot compute, even from the
// cookies of the probes it received itself.
inline std::uint64_t flow_cookie(const FlowSecret& secret, const FlowKey& key) {
  std::array<std::uint8_t, 2 + 16 + 2 + 2 + 4> m{};
  m[0] = static_cast<std::uint8_t>(key.proto);
  m[1] = key.remote.is_v6() ? 6 : 4;
  std::memcpy(&m[2], key.remote.bytes(), std::min<std::size_t>(key.remote.size(), 16));
  m[18] = static_cast<std::uint8_t>(key.a >> 8);
  m[19] = static_cast<std::uint8_t>(key.a);
  m[20] = static_cast<std::uint8_t>(key.b >> 8);
  m[21] = static_cast<std::uint8_t>(key.b);
  for (int i = 0; i < 4; ++i) m[22 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(key.c >> (24 - 8 * i));
  return keyed_hash(secret, m);
}

// ICMP errors that say the datagram went no further: destination unreachable,
// time exceeded, parameter problem (ICMPv6: packet too big too). Source
// quench and redirect do not (the datagram was forwarded): they answer no probe.
inline bool stops_datagram(const DecodedPacket& p) {
  if (!p.quote) return false;
  if (p.l4.proto == IPPROTO_ICMP) return p.l4.icmp_type == 3 || p.l4.icmp_type == 11 || p.l4.icmp_type == 12;
  if (p.l4.proto == IPPROTO_ICMPV6) return p.l4.icmp_type >= 1 && p.l4.icmp_type <= 4;
  return false;
}

// The capture saw our probe leave. On loopback it can see it twice (out and
// in): the first stamp is the send time.
inline void note_kernel_send(ProbeResult& result, WallTime kernel_tx) {
  if (result.sent_kernel_stamp) return;
  result.sent = kernel_tx;
  result.sent_kernel_stamp = true;
}

// The sending thread could not send the probe: it ends, status error.
inline void note_send_error(ProbeResult& result, bool& finished, const std::string& error) {
  if (finished) return;
  finished = true;
  result.status = ProbeStatus::error;
  result.error = error;
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
