#include "packet_decode.hpp"

#include <netinet/in.h>
#include <pcap/dlt.h>

#include <algorithm>

namespace outpost {
namespace {

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86DD;
constexpr std::uint16_t kEtherVlan = 0x8100;
constexpr std::uint16_t kEtherQinQ = 0x88A8;

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

// Offset of the IP header inside a frame, or nullopt when the frame carries no IP.
std::optional<std::size_t> ip_offset(int link_type, const std::uint8_t* data, std::size_t size) {
  auto ether_type_ok = [](std::uint16_t t) { return t == kEtherIpv4 || t == kEtherIpv6; };
  switch (link_type) {
    case DLT_EN10MB: {
      std::size_t off = 12;
      while (off + 2 <= size) {
        std::uint16_t type = be16(data + off);
        if (type == kEtherVlan || type == kEtherQinQ) {
          off += 4;
          continue;
        }
        if (!ether_type_ok(type)) return std::nullopt;
        return off + 2;
      }
      return std::nullopt;
    }
    case DLT_RAW:
#ifdef DLT_IPV4
    case DLT_IPV4:
    case DLT_IPV6:
#endif
      return 0;
    case DLT_LINUX_SLL:
      if (size < 16 || !ether_type_ok(be16(data + 14))) return std::nullopt;
      return 16;
#ifdef DLT_LINUX_SLL2
    case DLT_LINUX_SLL2:
      if (size < 20 || !ether_type_ok(be16(data))) return std::nullopt;
      return 20;
#endif
    default:
      return std::nullopt;
  }
}

// An ICMP error's quote and its RFC 4884 extension structure. For types 3,
// 11 and 12 the header's byte 5 gives the quote's length in 32-bit words; 0
// (routers that predate RFC 4884) or a length under the 128 bytes it asks
// for, or past the data, is read as 128 (§5.5). When a valid extension
// structure follows (version 2, a checksum that holds over it, objects that
// tile it), the quote ends there and the MPLS label stack objects (class 1,
// c-type 1, RFC 4950) are read from it. Anything else is all quote.
struct Span {
  const std::uint8_t* p = nullptr;
  std::size_t n = 0;
};

bool extensions_valid(Span ext) {
  if (ext.n < 4 || (ext.p[0] >> 4) != 2) return false;
  std::uint32_t sum = 0;  // RFC 1071 over the structure, its checksum included: all ones when it holds
  for (std::size_t i = 0; i + 1 < ext.n; i += 2) sum += be16(ext.p + i);
  if (ext.n & 1) sum += static_cast<std::uint32_t>(ext.p[ext.n - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  if (sum != 0xffff) return false;
  // The objects (length, class, c-type, payload) tile the rest.
  std::size_t off = 4;
  while (off < ext.n) {
    if (ext.n - off < 4) return false;
    const std::size_t len = be16(ext.p + off);
    if (len < 4 || len > ext.n - off) return false;
    off += len;
  }
  return true;
}

void read_mpls(Span ext, DecodedPacket& out) {
  for (std::size_t off = 4; off < ext.n;) {
    const std::size_t len = be16(ext.p + off);
    if (ext.p[off + 2] == 1 && ext.p[off + 3] == 1) {
      for (std::size_t i = off + 4; i + 4 <= off + len; i += 4) {
        const std::uint32_t word = static_cast<std::uint32_t>(ext.p[i]) << 24 | ext.p[i + 1] << 16 | ext.p[i + 2] << 8 |
                                   ext.p[i + 3];
        out.mpls.push_back({word >> 12, static_cast<std::uint8_t>(word >> 9 & 7), (word >> 8 & 1) != 0,
                            static_cast<std::uint8_t>(word & 0xff)});
      }
    }
    off += len;
  }
}

// The quote of an ICMP (v4) error, its extensions read into out.
Span icmp_quote(const std::uint8_t* icmp, Span rest, DecodedPacket& out) {
  const std::uint8_t type = icmp[0];
  if (type != 3 && type != 11 && type != 12) return rest;
  std::size_t length = static_cast<std::size_t>(icmp[5]) * 4;
  if (length < 128 || length > rest.n) length = 128;  // none given (0), or not one RFC 4884 allows
  if (rest.n <= length) return rest;
  const Span ext{rest.p + length, rest.n - length};
  if (!extensions_valid(ext)) return rest;
  read_mpls(ext, out);
  return {rest.p, length};
}

void read_payload(Span payload, DecodedPacket& out) {
  out.payload_size = payload.n;
  std::copy_n(payload.p, std::min(payload.n, out.payload_head.size()), out.payload_head.begin());
}

// The transport header of a datagram whose IP header(s) are read: fills
// out.l4 and the payload, or the quote of an ICMP error. Returns the reason
// it cannot, or nullptr.
const char* read_transport(std::uint8_t proto, Span t, DecodedPacket& out) {
  TransportFields& l4 = out.l4;
  l4.proto = proto;
  if (t.n == 0) return "no transport header";
  Span payload;
  switch (proto) {
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6: {
      if (t.n < 8) return "malformed packet";
      l4.icmp_type = t.p[0];
      l4.icmp_code = t.p[1];
      l4.checksum = be16(t.p + 2);
      l4.icmp_id = be16(t.p + 4);
      l4.icmp_seq = be16(t.p + 6);
      payload = {t.p + 8, t.n - 8};
      if (is_icmp_error(proto, l4.icmp_type)) {
        if (proto == IPPROTO_ICMP) payload = icmp_quote(t.p, payload, out);
        if (payload.n == 0) return "ICMP error without a quoted datagram";
        out.quote = decode_quote(payload.p, payload.n);
        return out.quote ? nullptr : "ICMP error quoting something that is not IP";
      }
      break;
    }
    case IPPROTO_TCP: {
      if (t.n < 20) return "malformed packet";
      const std::size_t header = static_cast<std::size_t>(t.p[12] >> 4) * 4;
      if (header < 20 || header > t.n) return "malformed packet";
      l4.sport = be16(t.p);
      l4.dport = be16(t.p + 2);
      l4.tcp_seq = static_cast<std::uint32_t>(be16(t.p + 4)) << 16 | be16(t.p + 6);
      l4.tcp_ack = static_cast<std::uint32_t>(be16(t.p + 8)) << 16 | be16(t.p + 10);
      l4.tcp_flags = t.p[13];
      l4.checksum = be16(t.p + 16);
      payload = {t.p + header, t.n - header};
      break;
    }
    case IPPROTO_UDP:
      if (t.n < 8) return "malformed packet";
      l4.sport = be16(t.p);
      l4.dport = be16(t.p + 2);
      l4.checksum = be16(t.p + 6);
      payload = {t.p + 8, t.n - 8};
      break;
    default:
      return "no transport header";
  }
  read_payload(payload, out);
  return nullptr;
}

bool ipv6_extension(std::uint8_t next) {
  return next == 0 || next == 43 || next == 44 || next == 51 || next == 59 || next == 60 || next == 135;
}
}  // namespace

std::optional<QuotedDatagram> decode_quote(const std::uint8_t* data, std::size_t size) {
  const Span b{data, size};
  if (b.n == 0) return std::nullopt;
  QuotedDatagram q;
  std::size_t header = 0;
  std::uint8_t proto = 0;
  const std::uint8_t version = b.p[0] >> 4;
  if (version == 4) {
    header = static_cast<std::size_t>(b.p[0] & 0x0f) * 4;
    if (header < 20 || b.n < header) return std::nullopt;
    q.ip = {IpAddress::v4_bytes(b.p + 12), IpAddress::v4_bytes(b.p + 16), b.p[8], be16(b.p + 4)};
    proto = b.p[9];
  } else if (version == 6) {
    header = 40;  // extension headers are not followed: probes send none
    if (b.n < header) return std::nullopt;
    q.ip = {IpAddress::v6_bytes(b.p + 8), IpAddress::v6_bytes(b.p + 24), b.p[7], 0};
    proto = b.p[6];
  } else {
    return std::nullopt;
  }
  TransportFields& l4 = q.l4;
  l4.proto = proto;
  if (b.n < header + 8) return q;  // addresses only
  const std::uint8_t* t = b.p + header;
  if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
    l4.icmp_type = t[0];
    l4.icmp_code = t[1];
    l4.checksum = be16(t + 2);
    l4.icmp_id = be16(t + 4);
    l4.icmp_seq = be16(t + 6);
  } else if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
    l4.sport = be16(t);
    l4.dport = be16(t + 2);
    if (proto == IPPROTO_UDP) {
      l4.checksum = be16(t + 6);
    } else {
      l4.tcp_seq = static_cast<std::uint32_t>(be16(t + 4)) << 16 | be16(t + 6);
      if (b.n >= header + 14) l4.tcp_flags = t[13];
      if (b.n >= header + 12) l4.tcp_ack = static_cast<std::uint32_t>(be16(t + 8)) << 16 | be16(t + 10);
      if (b.n >= header + 18) l4.checksum = be16(t + 16);
    }
  }
  return q;
}

bool is_icmp_error(std::uint8_t proto, std::uint8_t type) {
  if (proto == IPPROTO_ICMP) return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
  if (proto == IPPROTO_ICMPV6) return type >= 1 && type <= 4;
  return false;
}

std::string describe_icmp_error(std::uint8_t proto, std::uint8_t type, std::uint8_t code) {
  if (proto == IPPROTO_ICMP) {
    static const char* const unreach[] = {"network unreachable", "host unreachable", "protocol unreachable",
                                          "port unreachable", "fragmentation needed", "source route failed",
                                          "destination network unknown", "destination host unknown",
                                          "source host isolated", "network administratively prohibited",
                                          "host administratively prohibited", "network unreachable for TOS",
                                          "host unreachable for TOS", "communication administratively prohibited",
                                          "host precedence violation", "precedence cutoff in effect"};
    switch (type) {
      case 3: return code < 16 ? unreach[code] : "destination unreachable, code " + std::to_string(code);
      case 4: return "source quench";
      case 5: return "redirect";
      case 11: return code == 0 ? "time to live exceeded" : "fragment reassembly time exceeded";
      case 12: return "parameter problem";
    }
  } else if (proto == IPPROTO_ICMPV6) {
    static const char* const unreach6[] = {"no route to destination", "communication administratively prohibited",
                                           "beyond scope of source address", "address unreachable",
                                           "port unreachable", "source address failed policy",
                                           "reject route to destination"};
    switch (type) {
      case 1: return code < 7 ? unreach6[code] : "destination unreachable, code " + std::to_string(code);
      case 2: return "packet too big";
      case 3: return code == 0 ? "hop limit exceeded" : "fragment reassembly time exceeded";
      case 4: return "parameter problem";
    }
  }
  return "ICMP type " + std::to_string(type) + " code " + std::to_string(code);
}

std::optional<DecodedPacket> decode_ip(const std::uint8_t* data, std::size_t size, std::string* why) {
  auto fail = [why](const char* reason) -> std::optional<DecodedPacket> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (size < 1) return fail("empty datagram");
  DecodedPacket out;
  std::uint8_t proto = 0;
  Span transport;
  const std::uint8_t version = data[0] >> 4;
  if (version == 4) {
    const std::size_t header = static_cast<std::size_t>(data[0] & 0x0f) * 4;
    if (size < 20 || header < 20 || header > size) return fail("malformed packet");
    // The datagram ends at its total length, or where the capture cut it.
    const std::size_t total = be16(data + 2);
    const std::size_t end = total >= header ? std::min(size, total) : size;
    const std::uint16_t fragment = be16(data + 6);
    if ((fragment & 0x1fff) != 0) return fail("non-first fragment");
    out.ip = {IpAddress::v4_bytes(data + 12), IpAddress::v4_bytes(data + 16), data[8], be16(data + 4)};
    if (fragment & 0x2000) return fail("first fragment: not reassembled");
    proto = data[9];
    transport = {data + header, end - header};
  } else if (version == 6) {
    if (size < 40) return fail("malformed packet");
    out.ip = {IpAddress::v6_bytes(data + 8), IpAddress::v6_bytes(data + 24), data[7], 0};
    // The payload length, or what the capture (or an ICMPv6 error's quote) holds.
    std::size_t rest = std::min<std::size_t>(be16(data + 4), size - 40);
    const std::uint8_t* p = data + 40;
    proto = data[6];
    while (ipv6_extension(proto)) {
      if (proto == 59) return fail("no transport header");  // no next header
      if (rest < 8) return fail("malformed packet");
      const std::size_t length = proto == 51 ? (static_cast<std::size_t>(p[1]) + 2) * 4
                                             : (static_cast<std::size_t>(p[1]) + 1) * 8;
      if (length > rest) return fail("malformed packet");
      if (proto == 44) return fail((be16(p + 2) & 0xfff8) ? "non-first fragment" : "first fragment: not reassembled");
      proto = p[0];
      p += length;
      rest -= length;
    }
    transport = {p, rest};
  } else {
    return fail("not IPv4 or IPv6");
  }
  if (const char* problem = read_transport(proto, transport, out)) return fail(problem);
  return out;
}

std::optional<DecodedPacket> decode_frame(int link_type, const std::uint8_t* data, std::size_t size,
                                          std::string* why) {
  auto off = ip_offset(link_type, data, size);
  if (!off || *off >= size) {
    if (why) *why = "not an IP frame";
    return std::nullopt;
  }
  return decode_ip(data + *off, size - *off, why);
}

}  // namespace outpost
