// The decoder outpost had while libtins parsed every captured datagram, kept
// here as the reference the hand decoder (probes/packet_decode.cpp) is held
// to on well-formed packets (decode_differential_test.cpp).
#include "tins_decode_oracle.hpp"

#include <netinet/in.h>
#include <tins/tins.h>

#include <algorithm>
#include <vector>

namespace tins_oracle {
using namespace outpost;
namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

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

}  // namespace

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
      out.quote = outpost::decode_quote(raw->payload().data(), raw->payload().size());  // by hand there too
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

}  // namespace tins_oracle
