// Writing IP datagrams by hand, into a caller's buffer: the IPv4 or IPv6
// header, the Internet checksum and the transport's pseudo-header. The
// forgers of echo requests, TCP SYNs and UDP trace probes build on these, so
// that no probe allocates on its way out; their tests hold each to libtins'
// serialization of the same fields, byte for byte.
// Leaves to others: the transport's fields (icmp_echo, tcp_syn, traceroute).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ip_address.hpp"

namespace outpost::ip_forge {

inline void put16(std::uint8_t* at, std::uint16_t v) {
  at[0] = static_cast<std::uint8_t>(v >> 8);
  at[1] = static_cast<std::uint8_t>(v);
}
inline void put32(std::uint8_t* at, std::uint32_t v) {
  put16(at, static_cast<std::uint16_t>(v >> 16));
  put16(at + 2, static_cast<std::uint16_t>(v));
}

// The Internet checksum's ones' complement sum of `data` (an odd last byte
// padded with zero), added to `sum`; fold() makes the checksum of it.
std::uint32_t ones_sum(std::span<const std::uint8_t> data, std::uint32_t sum = 0);
std::uint16_t fold(std::uint32_t sum);

// The length of the IP header toward dst: 20 (IPv4, no options) or 40 (IPv6).
inline std::size_t header_size(const IpAddress& dst) { return dst.is_v6() ? 40 : 20; }

// Writes the IP header of a datagram `size` bytes long (header included)
// into d, which must hold header_size(dst) bytes: IPv4 with `ip_id`, no
// flags, its checksum; IPv6 with no traffic class or flow label. Returns the
// header's length.
std::size_t write_header(std::uint8_t* d, const IpAddress& src, const IpAddress& dst, std::uint8_t protocol,
                         std::uint8_t ttl, std::uint16_t ip_id, std::size_t size);

// The checksum of the transport segment after the header that write_header
// wrote into `datagram` (its pseudo-header included: RFC 768, RFC 8200 8.1).
// The segment's checksum field must hold 0. ICMPv4 has no pseudo-header: its
// checksum is fold(ones_sum(segment)).
std::uint16_t transport_checksum(std::span<const std::uint8_t> datagram, std::uint8_t protocol);

// Room for one datagram on a probe's way out: on the stack for any usual
// size, on the heap only for a payload larger than that.
class DatagramBuffer {
 public:
  std::span<std::uint8_t> of_size(std::size_t size) {
    if (size <= small_.size()) return std::span(small_).first(size);
    large_.resize(size);
    return large_;
  }

 private:
  std::array<std::uint8_t, 256> small_;
  std::vector<std::uint8_t> large_;
};

}  // namespace outpost::ip_forge
