#include "packet_decode.hpp"

#include <netinet/in.h>
#include <pcap/dlt.h>
#include <tins/tins.h>

#include <algorithm>
#include <vector>

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

// libtins refuses an IPv6 datagram whose payload length runs past the bytes at
// hand, and that is what an ICMPv6 error's quote (or a frame cut at snaplen)
// is. Returns the bytes to parse: data itself, or a copy in `storage` whose
// payload length says what is there. (libtins' IPv4 takes the smaller itself.)
const std::uint8_t* ipv6_as_present(const std::uint8_t* data, std::size_t size, std::vector<std::uint8_t>& storage) {
  if (size < 40 || be16(data + 4) <= size - 40) return data;
  storage.assign(data, data + size);
  const std::size_t present = std::min<std::size_t>(size - 40, 0xffff);
  storage[4] = static_cast<std::uint8_t>(present >> 8);
  storage[5] = static_cast<std::uint8_t>(present);
  return storage.data();
}

IpAddress to_address(const Tins::IPv4Address& a) {
  const std::uint32_t network_order = a;  // libtins converts to the big-endian value
  return IpAddress::v4_bytes(reinterpret_cast<const std::uint8_t*>(&network_order));
}

IpAddress to_address(const Tins::IPv6Address& a) { return IpAddress::v6_bytes(a.begin()); }

void read_payload(const Tins::PDU* pdu, DecodedPacket& out) {
  if (const auto* raw = pdu ? pdu->find_pdu<Tins::RawPDU>() : nullptr) {
    const auto& p = raw->payload();
    out.payload_size = p.size();
    std::copy_n(p.begin(), std::min(p.size(), out.payload_head.size()), out.payload_head.begin());
  }
}

// Fills l4 from the transport PDU under an IP PDU; returns that PDU.
const Tins::PDU* read_transport(const Tins::PDU& ip, std::uint8_t proto, TransportFields& l4) {
  l4.proto = proto;
  const Tins::PDU* inner = ip.inner_pdu();
  if (!inner) return nullptr;
  if (const auto* icmp = inner->find_pdu<Tins::ICMP>()) {
    l4.icmp_type = icmp->type();
    l4.icmp_code = icmp->code();
    l4.icmp_id = icmp->id();
    l4.icmp_seq = icmp->sequence();
    l4.checksum = icmp->checksum();
    return icmp;
  }
  if (const auto* icmp6 = inner->find_pdu<Tins::ICMPv6>()) {
    l4.icmp_type = icmp6->type();
    l4.icmp_code = icmp6->code();
    l4.icmp_id = icmp6->identifier();
    l4.icmp_seq = icmp6->sequence();
    l4.checksum = icmp6->checksum();
    return icmp6;
  }
  if (const auto* tcp = inner->find_pdu<Tins::TCP>()) {
    l4.sport = tcp->sport();
    l4.dport = tcp->dport();
    l4.tcp_flags = static_cast<std::uint8_t>(tcp->flags());
    l4.tcp_seq = tcp->seq();
    l4.tcp_ack = tcp->ack_seq();
    l4.checksum = tcp->checksum();
    return tcp;
  }
  if (const auto* udp = inner->find_pdu<Tins::UDP>()) {
    l4.sport = udp->sport();
    l4.dport = udp->dport();
    l4.checksum = udp->checksum();
    return udp;
  }
  return nullptr;
}

// RFC 4950: class 1, c-type 1 holds 4-byte label stack entries.
void read_mpls(const Tins::ICMP& icmp, DecodedPacket& out) {
  for (const auto& ext : icmp.extensions().extensions()) {
    if (ext.extension_class() != 1 || ext.extension_type() != 1) continue;
    const auto& p = ext.payload();
    for (std::size_t i = 0; i + 4 <= p.size(); i += 4) {
      const std::uint32_t word = static_cast<std::uint32_t>(p[i]) << 24 | p[i + 1] << 16 | p[i + 2] << 8 | p[i + 3];
      out.mpls.push_back({word >> 12, static_cast<std::uint8_t>(word >> 9 & 7), (word >> 8 & 1) != 0,
                          static_cast<std::uint8_t>(word & 0xff)});
    }
  }
}

// A quoted datagram may be cut anywhere after 8 transport bytes; libtins
// parses such truncated datagrams, and throws on anything shorter than a header.
// The datagram an ICMP error quotes is read by hand: routers often quote only
// the 8 transport bytes RFC 792 promises (ports and TCP sequence, or the ICMP
// header), which libtins rightly calls a malformed TCP header. Those 8 bytes
// are all the matching needs.
std::optional<QuotedDatagram> decode_quote(const std::vector<std::uint8_t>& b) {
  if (b.empty()) return std::nullopt;
  QuotedDatagram q;
  std::size_t header = 0;
  std::uint8_t proto = 0;
  const std::uint8_t version = b[0] >> 4;
  if (version == 4) {
    header = static_cast<std::size_t>(b[0] & 0x0f) * 4;
    if (header < 20 || b.size() < header) return std::nullopt;
    q.ip = {IpAddress::v4_bytes(&b[12]), IpAddress::v4_bytes(&b[16]), b[8], be16(&b[4])};
    proto = b[9];
  } else if (version == 6) {
    header = 40;  // extension headers are not followed: probes send none
    if (b.size() < header) return std::nullopt;
    q.ip = {IpAddress::v6_bytes(&b[8]), IpAddress::v6_bytes(&b[24]), b[7], 0};
    proto = b[6];
  } else {
    return std::nullopt;
  }
  TransportFields& l4 = q.l4;
  l4.proto = proto;
  if (b.size() < header + 8) return q;  // addresses only
  const std::uint8_t* t = &b[header];
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
      if (b.size() >= header + 14) l4.tcp_flags = t[13];
      if (b.size() >= header + 12) l4.tcp_ack = static_cast<std::uint32_t>(be16(t + 8)) << 16 | be16(t + 10);
      if (b.size() >= header + 18) l4.checksum = be16(t + 16);
    }
  }
  return q;
}

}  // namespace

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
  try {
    DecodedPacket out;
    // The transport PDU lives inside the IP PDU: read it while that is alive.
    auto read_rest = [&](const Tins::PDU& ip, std::uint8_t proto) -> const char* {
      const Tins::PDU* transport = read_transport(ip, proto, out.l4);
      if (!transport) return "no transport header";
      if (!is_icmp_error(out.l4.proto, out.l4.icmp_type)) {
        read_payload(transport, out);
        return nullptr;
      }
      if (const auto* icmp = transport->find_pdu<Tins::ICMP>(); icmp && icmp->has_extensions()) read_mpls(*icmp, out);
      const auto* raw = transport->find_pdu<Tins::RawPDU>();
      if (!raw) return "ICMP error without a quoted datagram";
      out.quote = decode_quote(raw->payload());
      return out.quote ? nullptr : "ICMP error quoting something that is not IP";
    };
    const char* problem = nullptr;
    const std::uint8_t version = data[0] >> 4;
    if (version == 4) {
      Tins::IP ip(data, static_cast<std::uint32_t>(size));
      if (ip.is_fragmented() && ip.fragment_offset() != 0) return fail("non-first fragment");
      out.ip = {to_address(ip.src_addr()), to_address(ip.dst_addr()), ip.ttl(), ip.id()};
      problem = read_rest(ip, ip.protocol());
    } else if (version == 6) {
      std::vector<std::uint8_t> storage;
      Tins::IPv6 ip(ipv6_as_present(data, size, storage), static_cast<std::uint32_t>(size));
      out.ip = {to_address(ip.src_addr()), to_address(ip.dst_addr()), ip.hop_limit(), 0};
      problem = read_rest(ip, ip.next_header());
    } else {
      return fail("not IPv4 or IPv6");
    }
    if (problem) return fail(problem);
    return out;
  } catch (const std::exception& e) {
    return fail("malformed packet");
  }
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
