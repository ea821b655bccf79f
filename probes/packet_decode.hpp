// Decodes captured frames (any link type libpcap gives on Linux) into the few
// header fields probes match on, including the datagram quoted in ICMP errors.
// Read by hand, in place, allocating nothing (but an MPLS label stack): every
// captured frame passes here, our own probes' copies included, and libtins'
// parse built three or four objects on the heap for each. Held to that parse
// on well-formed datagrams by tests/unit/probes/decode_differential_test.cpp.
// Leaves to others: deciding which probe a packet belongs to (registry, engine).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ip_address.hpp"

namespace outpost {

struct TransportFields {
  std::uint8_t proto = 0;  // IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6
  std::uint8_t icmp_type = 0;
  std::uint8_t icmp_code = 0;
  std::uint16_t icmp_id = 0;
  std::uint16_t icmp_seq = 0;
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint8_t tcp_flags = 0;
  std::uint32_t tcp_seq = 0;
  std::uint32_t tcp_ack = 0;
  std::uint16_t checksum = 0;  // the transport checksum as on the wire (Paris traceroute keys on it)
};

// One MPLS label stack entry from an ICMP extension (RFC 4950).
struct MplsEntry {
  std::uint32_t label = 0;
  std::uint8_t exp = 0;
  bool bottom = false;
  std::uint8_t ttl = 0;
  bool operator==(const MplsEntry&) const = default;
};

struct IpFields {
  IpAddress src;
  IpAddress dst;
  std::uint8_t ttl = 0;
  std::uint16_t id = 0;
};

// The datagram an ICMP error quotes (often only its first 8 transport bytes).
struct QuotedDatagram {
  IpFields ip;
  TransportFields l4;
};

struct DecodedPacket {
  IpFields ip;
  TransportFields l4;
  // The first bytes of the transport payload (echo data, UDP payload), and its full length.
  std::array<std::uint8_t, 16> payload_head{};
  std::size_t payload_size = 0;
  std::optional<QuotedDatagram> quote;  // ICMP errors only
  std::vector<MplsEntry> mpls;          // ICMP errors with an MPLS extension only
};

// libpcap link types handled: DLT_EN10MB (with VLAN tags), DLT_RAW,
// DLT_LINUX_SLL, DLT_LINUX_SLL2. Returns nullopt with *why for anything that is
// malformed or not IP, for fragments (not reassembled: a probe's answer fits
// one datagram) and for IP in IP; never throws. IPv4 options are skipped by
// the header length; IPv6 extension headers are followed.
std::optional<DecodedPacket> decode_frame(int link_type, const std::uint8_t* data, std::size_t size,
                                          std::string* why);
// The same from an IP datagram.
std::optional<DecodedPacket> decode_ip(const std::uint8_t* data, std::size_t size, std::string* why);

// The datagram an ICMP error quotes, from its first byte. It may be cut
// anywhere after 8 transport bytes: routers often quote only the 8 RFC 792
// promises (ports and TCP sequence, or the ICMP header), and those are all
// the matching needs; with fewer, the addresses alone. nullopt when it is
// not IP (extension headers of a quoted IPv6 datagram are not followed:
// probes send none).
std::optional<QuotedDatagram> decode_quote(const std::uint8_t* data, std::size_t size);

// ICMP error types whose payload quotes the offending datagram.
bool is_icmp_error(std::uint8_t proto, std::uint8_t type);
// "host unreachable", "time to live exceeded", ... for ICMP and ICMPv6 errors.
std::string describe_icmp_error(std::uint8_t proto, std::uint8_t type, std::uint8_t code);

}  // namespace outpost
