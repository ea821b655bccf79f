// outpost-tins.so: the packets built with libtins (tins_forge.hpp). Loaded by
// outpost on first use; linked whole into the tests and fuzzers.
#include <tins/tins.h>

#include "tins_address.hpp"
#include "tins_forge.hpp"

namespace outpost {
namespace {

std::vector<std::uint8_t> tcp_syn(const SynSegment& s) {
  Tins::TCP tcp(s.dport, s.sport);
  tcp.flags(Tins::TCP::SYN);
  tcp.seq(s.isn);
  tcp.window(s.window);
  if (s.mss) tcp.mss(s.mss);
  if (s.dst.is_v6()) {
    Tins::IPv6 ip(tins_v6(s.dst), tins_v6(s.src));
    ip.hop_limit(s.ttl);
    ip /= tcp;
    return ip.serialize();
  }
  Tins::IP ip(tins_v4(s.dst), tins_v4(s.src));
  ip.ttl(s.ttl);
  ip.id(s.ip_id);
  ip /= tcp;
  return ip.serialize();
}

std::vector<std::uint8_t> udp_datagram(const UdpTraceRequest& r, const std::vector<std::uint8_t>& payload) {
  if (r.dst.is_v6()) {
    Tins::IPv6 ip(tins_v6(r.dst), tins_v6(r.src));
    ip.hop_limit(r.ttl);
    ip /= Tins::UDP(r.dport, r.sport);
    ip /= Tins::RawPDU(payload.data(), static_cast<std::uint32_t>(payload.size()));
    return ip.serialize();
  }
  Tins::IP ip(tins_v4(r.dst), tins_v4(r.src));
  ip.ttl(r.ttl);
  ip.id(r.ip_id);
  ip /= Tins::UDP(r.dport, r.sport);
  ip /= Tins::RawPDU(payload.data(), static_cast<std::uint32_t>(payload.size()));
  return ip.serialize();
}

std::vector<std::uint8_t> dns_query(std::uint16_t id, const DnsQuestion& question) {
  Tins::DNS dns;
  dns.id(id);
  dns.type(Tins::DNS::QUERY);
  dns.recursion_desired(1);
  dns.add_query(Tins::DNS::query(question.name, static_cast<Tins::DNS::QueryType>(question.type),
                                 static_cast<Tins::DNS::QueryClass>(question.qclass)));
  return dns.serialize();
}

const TinsForge kTable{tcp_syn, udp_datagram, dns_query};

}  // namespace
}  // namespace outpost

extern "C" __attribute__((visibility("default"))) const outpost::TinsForge* outpost_tins_forge_table() {
  return &outpost::kTable;
}
