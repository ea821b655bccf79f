// decode_frame / decode_ip: every link type libpcap gives on Linux, VLAN tags,
// ICMP errors and the (often truncated) datagram they quote, and malformed
// input that must come back as nullopt, never as a crash or an exception.

#include <pcap/dlt.h>
#include <tins/tins.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "test_bytes.hpp"
#include "icmp_echo.hpp"
#include "packet_decode.hpp"

using outpost::decode_frame;
using outpost::decode_ip;
using outpost::DecodedPacket;
using outpost::IpAddress;

namespace {

using namespace test_bytes;

constexpr std::uint8_t kIcmp = 1, kTcp = 6, kUdp = 17, kIcmp6 = 58;


const IpAddress kUs = *IpAddress::parse("198.19.0.1");
const IpAddress kTarget = *IpAddress::parse("198.18.0.1");
const IpAddress kRouter = *IpAddress::parse("198.18.0.254");
const IpAddress kUs6 = *IpAddress::parse("2001:db8::1");
const IpAddress kTarget6 = *IpAddress::parse("2001:db8:ffff::2");
const IpAddress kRouter6 = *IpAddress::parse("2001:db8:ffff::fe");

// Our echo request as forge_echo_request makes it (its bytes are pinned by a fixture).
Bytes request_v4(std::uint8_t ttl = 64) {
  outpost::EchoRequest r;
  r.src = kUs;
  r.dst = kTarget;
  r.ident = 0x1234;
  r.sequence = 7;
  r.ip_id = 0x4242;
  r.ttl = ttl;
  r.cookie = 0x0102030405060708ull;
  return outpost::forge_echo_request(r);
}

Bytes request_v6(std::uint8_t hop_limit = 64) {
  outpost::EchoRequest r;
  r.src = kUs6;
  r.dst = kTarget6;
  r.ident = 0x1234;
  r.sequence = 7;
  r.ttl = hop_limit;
  r.cookie = 0x0102030405060708ull;
  return outpost::forge_echo_request(r);
}

Bytes concat(Bytes head, const Bytes& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

void put16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}

// Ethernet II: destination and source MAC, any VLAN tags (TPID, TCI), ethertype.
Bytes ethernet(std::uint16_t ethertype, const Bytes& payload, std::vector<std::uint16_t> tpids = {}) {
  Bytes f = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
  std::uint16_t vid = 100;
  for (std::uint16_t tpid : tpids) {
    put16(f, tpid);
    put16(f, vid++);
  }
  put16(f, ethertype);
  return concat(f, payload);
}

// Linux cooked v1: packet type, ARPHRD, address length, 8 address bytes, protocol.
Bytes sll(std::uint16_t protocol, const Bytes& payload) {
  Bytes f;
  put16(f, 4);  // sent by us
  put16(f, 1);  // ARPHRD_ETHER
  put16(f, 6);
  f.insert(f.end(), {0x02, 0, 0, 0, 0, 0x01, 0, 0});
  put16(f, protocol);
  return concat(f, payload);
}

// Linux cooked v2: protocol, reserved, ifindex, ARPHRD, packet type, address length, 8 address bytes.
Bytes sll2(std::uint16_t protocol, const Bytes& payload) {
  Bytes f;
  put16(f, protocol);
  put16(f, 0);
  f.insert(f.end(), {0, 0, 0, 3});
  put16(f, 1);
  f.push_back(0);
  f.push_back(6);
  f.insert(f.end(), {0x02, 0, 0, 0, 0, 0x02, 0, 0});
  return concat(f, payload);
}

Tins::IPv4Address tins4(const IpAddress& a) { return Tins::IPv4Address(a.to_string()); }
Tins::IPv6Address tins6(const IpAddress& a) { return Tins::IPv6Address(a.to_string()); }

// An ICMP error from `from` to `to` quoting `quote`.
Bytes icmp_error_v4(const IpAddress& from, const IpAddress& to, int type, int code, const Bytes& quote) {
  Tins::IP pkt(tins4(to), tins4(from));
  pkt.ttl(250);
  pkt.id(0x0999);
  Tins::ICMP icmp(static_cast<Tins::ICMP::Flags>(type));
  icmp.code(static_cast<std::uint8_t>(code));
  pkt /= icmp;
  pkt /= Tins::RawPDU(quote.data(), static_cast<std::uint32_t>(quote.size()));
  return pkt.serialize();
}

Bytes icmp_error_v6(const IpAddress& from, const IpAddress& to, int type, int code, const Bytes& quote) {
  Tins::IPv6 pkt(tins6(to), tins6(from));
  pkt.hop_limit(250);
  Tins::ICMPv6 icmp(static_cast<Tins::ICMPv6::Types>(type));
  icmp.code(static_cast<std::uint8_t>(code));
  pkt /= icmp;
  pkt /= Tins::RawPDU(quote.data(), static_cast<std::uint32_t>(quote.size()));
  return pkt.serialize();
}

Bytes first(const Bytes& b, std::size_t n) { return Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n)); }

DecodedPacket decoded(int link_type, const Bytes& frame) {
  std::string why;
  auto p = decode_frame(link_type, frame.data(), frame.size(), &why);
  INFO("why: " << why);
  REQUIRE(p.has_value());
  return *p;
}

std::string rejected(int link_type, const Bytes& frame) {
  std::string why;
  std::optional<DecodedPacket> p;
  REQUIRE_NOTHROW(p = decode_frame(link_type, frame.data(), frame.size(), &why));
  CHECK_FALSE(p.has_value());
  CHECK_FALSE(why.empty());
  return why;
}

void check_is_our_request_v4(const DecodedPacket& p) {
  CHECK(p.ip.src == kUs);
  CHECK(p.ip.dst == kTarget);
  CHECK(p.ip.ttl == 64);
  CHECK(p.ip.id == 0x4242);
  CHECK(p.l4.proto == kIcmp);
  CHECK(p.l4.icmp_type == 8);
  CHECK(p.l4.icmp_code == 0);
  CHECK(p.l4.icmp_id == 0x1234);
  CHECK(p.l4.icmp_seq == 7);
  CHECK(p.payload_size == 56);
  const std::array<std::uint8_t, 16> head = {1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 10, 11, 12, 13, 14, 15};
  CHECK(p.payload_head == head);
  CHECK_FALSE(p.quote.has_value());
}

}  // namespace

TEST_CASE("decode_frame reads an IPv4 echo request on every link type", "[decode]") {
  const Bytes dgram = request_v4();
  SECTION("DLT_RAW") { check_is_our_request_v4(decoded(DLT_RAW, dgram)); }
  SECTION("DLT_EN10MB") { check_is_our_request_v4(decoded(DLT_EN10MB, ethernet(0x0800, dgram))); }
  SECTION("DLT_EN10MB with an 802.1Q tag") {
    check_is_our_request_v4(decoded(DLT_EN10MB, ethernet(0x0800, dgram, {0x8100})));
  }
  SECTION("DLT_EN10MB with QinQ (802.1ad outer, 802.1Q inner)") {
    check_is_our_request_v4(decoded(DLT_EN10MB, ethernet(0x0800, dgram, {0x88a8, 0x8100})));
  }
  SECTION("DLT_LINUX_SLL") { check_is_our_request_v4(decoded(DLT_LINUX_SLL, sll(0x0800, dgram))); }
  SECTION("DLT_LINUX_SLL2") { check_is_our_request_v4(decoded(DLT_LINUX_SLL2, sll2(0x0800, dgram))); }
  SECTION("decode_ip on the bare datagram") {
    auto p = decode_ip(dgram.data(), dgram.size(), nullptr);
    REQUIRE(p);
    check_is_our_request_v4(*p);
  }
}

TEST_CASE("decode_frame reads an IPv6 echo request", "[decode]") {
  const Bytes dgram = request_v6(33);
  for (const auto& [link, frame] : {std::pair{DLT_RAW, dgram}, std::pair{DLT_EN10MB, ethernet(0x86dd, dgram)},
                                    std::pair{DLT_LINUX_SLL, sll(0x86dd, dgram)}}) {
    INFO("link type " << link);
    const auto p = decoded(link, frame);
    CHECK(p.ip.src == kUs6);
    CHECK(p.ip.dst == kTarget6);
    CHECK(p.ip.ttl == 33);
    CHECK(p.l4.proto == kIcmp6);
    CHECK(p.l4.icmp_type == 128);
    CHECK(p.l4.icmp_id == 0x1234);
    CHECK(p.l4.icmp_seq == 7);
    CHECK(p.payload_size == 56);
    CHECK(p.payload_head[0] == 1);
    CHECK(p.payload_head[7] == 8);
    CHECK_FALSE(p.quote);
  }
}

TEST_CASE("decode_frame reads TCP and UDP headers", "[decode]") {
  SECTION("TCP") {
    Tins::IP pkt(tins4(kUs), tins4(kTarget));
    Tins::TCP tcp(40000, 443);
    tcp.flags(Tins::TCP::SYN | Tins::TCP::ACK);
    tcp.seq(0x01020304);
    tcp.ack_seq(0xa0b0c0d0);
    pkt /= tcp;
    const auto p = decoded(DLT_RAW, pkt.serialize());
    CHECK(p.ip.src == kTarget);
    CHECK(p.l4.proto == kTcp);
    CHECK(p.l4.sport == 443);
    CHECK(p.l4.dport == 40000);
    CHECK(p.l4.tcp_flags == (Tins::TCP::SYN | Tins::TCP::ACK));
    CHECK(p.l4.tcp_seq == 0x01020304);
    CHECK(p.l4.tcp_ack == 0xa0b0c0d0);
    CHECK_FALSE(p.quote);
  }
  SECTION("UDP with a payload") {
    Tins::IP pkt(tins4(kUs), tins4(kTarget));
    pkt /= Tins::UDP(33434, 53);
    const Bytes data = {0xab, 0xcd, 1, 0, 0, 1};
    pkt /= Tins::RawPDU(data.data(), static_cast<std::uint32_t>(data.size()));
    const auto p = decoded(DLT_EN10MB, ethernet(0x0800, pkt.serialize()));
    CHECK(p.l4.proto == kUdp);
    CHECK(p.l4.sport == 53);
    CHECK(p.l4.dport == 33434);
    CHECK(p.payload_size == 6);
    CHECK(p.payload_head[0] == 0xab);
    CHECK(p.payload_head[1] == 0xcd);
  }
}

TEST_CASE("an ICMP error quoting a truncated (28-byte) copy of our request", "[decode][quote]") {
  // What a router sends: the request as it reached it (TTL 1), IP header + 8 bytes.
  const Bytes quote = first(request_v4(1), 28);
  struct Case {
    int type, code;
  };
  for (const Case c : {Case{11, 0}, Case{3, 1}, Case{3, 13}}) {
    INFO("ICMP type " << c.type << " code " << c.code);
    const auto p = decoded(DLT_EN10MB, ethernet(0x0800, icmp_error_v4(kRouter, kUs, c.type, c.code, quote)));
    CHECK(p.ip.src == kRouter);
    CHECK(p.ip.dst == kUs);
    CHECK(p.ip.ttl == 250);
    CHECK(p.l4.proto == kIcmp);
    CHECK(p.l4.icmp_type == c.type);
    CHECK(p.l4.icmp_code == c.code);
    REQUIRE(p.quote.has_value());
    CHECK(p.quote->ip.src == kUs);
    CHECK(p.quote->ip.dst == kTarget);
    CHECK(p.quote->ip.id == 0x4242);
    CHECK(p.quote->ip.ttl == 1);
    CHECK(p.quote->l4.proto == kIcmp);
    CHECK(p.quote->l4.icmp_type == 8);
    CHECK(p.quote->l4.icmp_id == 0x1234);
    CHECK(p.quote->l4.icmp_seq == 7);
  }
}

TEST_CASE("an ICMP error quoting the whole request", "[decode][quote]") {
  const auto p = decoded(DLT_RAW, icmp_error_v4(kTarget, kUs, 3, 3, request_v4()));
  REQUIRE(p.quote.has_value());
  CHECK(p.quote->ip.dst == kTarget);
  CHECK(p.quote->l4.icmp_id == 0x1234);
  CHECK(p.quote->l4.icmp_seq == 7);
}

TEST_CASE("an ICMP error quoting a UDP datagram gives its ports", "[decode][quote]") {
  Tins::IP probe(tins4(kTarget), tins4(kUs));
  probe.id(0x7777);
  probe /= Tins::UDP(33435, 40001);
  probe /= Tins::RawPDU(Bytes(12, 0));
  const auto p = decoded(DLT_RAW, icmp_error_v4(kRouter, kUs, 11, 0, first(probe.serialize(), 28)));
  REQUIRE(p.quote);
  CHECK(p.quote->l4.proto == kUdp);
  CHECK(p.quote->l4.sport == 40001);
  CHECK(p.quote->l4.dport == 33435);
  CHECK(p.quote->ip.id == 0x7777);
}

TEST_CASE("an ICMPv6 error quoting our IPv6 request", "[decode][quote]") {
  SECTION("the whole request (as RFC 4443 routers send)") {
    const auto p = decoded(DLT_RAW, icmp_error_v6(kRouter6, kUs6, 3, 0, request_v6(1)));
    CHECK(p.ip.src == kRouter6);
    CHECK(p.l4.proto == kIcmp6);
    CHECK(p.l4.icmp_type == 3);
    REQUIRE(p.quote);
    CHECK(p.quote->ip.src == kUs6);
    CHECK(p.quote->ip.dst == kTarget6);
    CHECK(p.quote->ip.ttl == 1);
    CHECK(p.quote->l4.proto == kIcmp6);
    CHECK(p.quote->l4.icmp_type == 128);
    CHECK(p.quote->l4.icmp_id == 0x1234);
    CHECK(p.quote->l4.icmp_seq == 7);
  }
  SECTION("a truncated quote: the IPv6 header and 8 bytes") {
    const auto p = decoded(DLT_RAW, icmp_error_v6(kRouter6, kUs6, 1, 3, first(request_v6(), 48)));
    CHECK(p.l4.icmp_type == 1);
    CHECK(p.l4.icmp_code == 3);
    REQUIRE(p.quote);
    CHECK(p.quote->ip.dst == kTarget6);
    CHECK(p.quote->l4.icmp_id == 0x1234);
    CHECK(p.quote->l4.icmp_seq == 7);
  }
}

TEST_CASE("an ICMP error cut short by the capture's snaplen still gives its quote", "[decode][quote]") {
  // A big probe, quoted whole (IPv6 routers quote up to 1280 bytes), captured at 512.
  constexpr std::size_t kSnaplen = 512;
  SECTION("IPv4") {
    outpost::EchoRequest r;
    r.src = kUs;
    r.dst = kTarget;
    r.ident = 0x1234;
    r.sequence = 9;
    r.ip_id = 0x4243;
    r.payload_size = 1000;
    const Bytes frame = ethernet(0x0800, icmp_error_v4(kRouter, kUs, 11, 0, outpost::forge_echo_request(r)));
    REQUIRE(frame.size() > kSnaplen);
    const auto p = decoded(DLT_EN10MB, first(frame, kSnaplen));
    REQUIRE(p.quote);
    CHECK(p.quote->ip.id == 0x4243);
    CHECK(p.quote->l4.icmp_seq == 9);
  }
  SECTION("IPv6") {
    outpost::EchoRequest r;
    r.src = kUs6;
    r.dst = kTarget6;
    r.ident = 0x1234;
    r.sequence = 9;
    r.payload_size = 1184;  // the whole error is 1280 bytes
    const Bytes frame = ethernet(0x86dd, icmp_error_v6(kRouter6, kUs6, 3, 0, outpost::forge_echo_request(r)));
    REQUIRE(frame.size() == 14 + 1280);
    const auto p = decoded(DLT_EN10MB, first(frame, kSnaplen));
    CHECK(p.ip.src == kRouter6);
    CHECK(p.l4.icmp_type == 3);
    REQUIRE(p.quote);
    CHECK(p.quote->ip.dst == kTarget6);
    CHECK(p.quote->l4.icmp_id == 0x1234);
    CHECK(p.quote->l4.icmp_seq == 9);
  }
}

TEST_CASE("malformed or foreign input is nullopt with a reason, never a throw", "[decode][malformed]") {
  const Bytes dgram = request_v4();
  const Bytes empty;
  SECTION("empty") {
    rejected(DLT_RAW, empty);
    rejected(DLT_EN10MB, empty);
    rejected(DLT_LINUX_SLL, empty);
    rejected(DLT_LINUX_SLL2, empty);
    CHECK_FALSE(decode_ip(empty.data(), 0, nullptr));
  }
  SECTION("an IP header cut short") {
    rejected(DLT_RAW, first(dgram, 10));
    rejected(DLT_RAW, first(dgram, 19));
    rejected(DLT_EN10MB, ethernet(0x0800, first(dgram, 12)));
  }
  SECTION("IHL larger than the data") {
    Bytes b = first(dgram, 28);
    b[0] = 0x4f;  // 60-byte header claimed, 28 bytes there
    rejected(DLT_RAW, b);
  }
  SECTION("IHL smaller than an IP header") {
    Bytes b = dgram;
    b[0] = 0x43;
    rejected(DLT_RAW, b);
  }
  SECTION("garbage") {
    rejected(DLT_RAW, Bytes(64, 0xff));                                    // version 15
    rejected(DLT_RAW, Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r'});  // "version 6", 9 bytes
    rejected(DLT_RAW, Bytes(3, 0x45));
  }
  SECTION("a non-IP ethertype") {
    rejected(DLT_EN10MB, ethernet(0x0806, Bytes(28, 0)));  // ARP
    rejected(DLT_EN10MB, ethernet(0x88cc, dgram));         // LLDP, whatever follows
    rejected(DLT_EN10MB, ethernet(0x0806, dgram, {0x8100}));
    rejected(DLT_LINUX_SLL, sll(0x0806, dgram));
    rejected(DLT_LINUX_SLL2, sll2(0x0806, dgram));
  }
  SECTION("link headers cut short") {
    rejected(DLT_EN10MB, first(ethernet(0x0800, dgram), 13));
    rejected(DLT_EN10MB, first(ethernet(0x0800, dgram), 14));  // ethertype, nothing after it
    rejected(DLT_EN10MB, first(ethernet(0x0800, dgram, {0x8100, 0x8100}), 17));
    rejected(DLT_LINUX_SLL, first(sll(0x0800, dgram), 15));
    rejected(DLT_LINUX_SLL2, first(sll2(0x0800, dgram), 19));
  }
  SECTION("a link type we do not handle") { rejected(DLT_IEEE802_11, dgram); }
  SECTION("an ICMP error that quotes nothing, or something that is not IP") {
    rejected(DLT_RAW, icmp_error_v4(kRouter, kUs, 11, 0, {}));
    rejected(DLT_RAW, icmp_error_v4(kRouter, kUs, 3, 1, Bytes(28, 0x00)));
  }
  SECTION("a non-first fragment") {
    Bytes b = dgram;
    b[6] = 0x00;
    b[7] = 0x10;  // offset 128 bytes
    rejected(DLT_RAW, b);
  }
}

TEST_CASE("IPv6 extension headers are followed to the transport header", "[decode]") {
  // request_v6 with extension headers inserted after the fixed header: each
  // names the next, the fixed header names the first; the payload length grows.
  auto with_extensions = [](const std::vector<Bytes>& headers) {
    Bytes d = request_v6();
    std::uint8_t first = d[6];
    Bytes chain;
    for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
      Bytes h = *it;
      h[0] = first;
      first = (*it)[0];  // the type is carried in byte 0 of the template until linked
      chain.insert(chain.begin(), h.begin(), h.end());
    }
    d[6] = first;
    d.insert(d.begin() + 40, chain.begin(), chain.end());
    const std::size_t payload = d.size() - 40;
    d[4] = static_cast<std::uint8_t>(payload >> 8);
    d[5] = static_cast<std::uint8_t>(payload);
    return d;
  };
  // Templates: byte 0 holds the header's own type (replaced by the next's when linked).
  const Bytes hop_by_hop = {0, 0, 1, 4, 0, 0, 0, 0};              // PadN
  const Bytes destination = {60, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // 16 bytes
  const Bytes routing = {43, 0, 0, 0, 0, 0, 0, 0};
  SECTION("hop-by-hop, destination options and routing: the echo is read") {
    const Bytes d = with_extensions({hop_by_hop, destination, routing});
    auto p = decoded(DLT_RAW, d);
    CHECK(p.l4.proto == kIcmp6);
    CHECK(p.l4.icmp_type == 128);
    CHECK(p.l4.icmp_id == 0x1234);
    CHECK(p.l4.icmp_seq == 7);
    CHECK(p.payload_size == 56);
  }
  SECTION("a fragment header: first or not, it is not reassembled") {
    Bytes frag = {44, 0, 0, 0, 0, 0, 0, 42};  // offset 0, M set below
    frag[3] = 1;
    CHECK(rejected(DLT_RAW, with_extensions({hop_by_hop, frag})) == "first fragment: not reassembled");
    frag[2] = 0x05;  // offset 160 bytes
    frag[3] = 0;
    CHECK(rejected(DLT_RAW, with_extensions({frag})) == "non-first fragment");
  }
  SECTION("an extension header longer than the datagram") {
    Bytes d = with_extensions({destination});
    d[41] = 200;
    CHECK(rejected(DLT_RAW, d) == "malformed packet");
  }
  SECTION("no next header") {
    Bytes d = request_v6();
    d[6] = 59;
    CHECK(rejected(DLT_RAW, d) == "no transport header");
  }
}

TEST_CASE("IPv4: options are skipped by the header length; a first fragment is not reassembled", "[decode]") {
  SECTION("options") {
    Bytes d = request_v4();
    d.insert(d.begin() + 20, {7, 7, 4, 0, 0, 0, 0, 0});  // record route (7 bytes) and an end of options
    d[0] = 0x47;
    const std::size_t total = d.size();
    d[2] = static_cast<std::uint8_t>(total >> 8);
    d[3] = static_cast<std::uint8_t>(total);
    check_is_our_request_v4(decoded(DLT_RAW, d));
  }
  SECTION("a first fragment (more fragments, offset 0)") {
    Bytes d = request_v4();
    d[6] = 0x20;
    d[7] = 0;
    CHECK(rejected(DLT_RAW, d) == "first fragment: not reassembled");
  }
  SECTION("Ethernet padding after the total length is not payload") {
    Bytes d = request_v4();
    d.insert(d.end(), 6, 0xee);
    check_is_our_request_v4(decoded(DLT_RAW, d));
  }
}

TEST_CASE("decoding every prefix and every one-byte corruption never crashes", "[decode][malformed]") {
  const Bytes frames[] = {
      ethernet(0x0800, request_v4(), {0x8100}),
      ethernet(0x0800, icmp_error_v4(kRouter, kUs, 11, 0, first(request_v4(1), 28))),
      ethernet(0x86dd, icmp_error_v6(kRouter6, kUs6, 3, 0, request_v6(1))),
  };
  std::mt19937 rng(20141222);
  std::size_t decoded_ok = 0;
  for (const Bytes& frame : frames) {
    for (std::size_t n = 0; n <= frame.size(); ++n) {
      std::optional<DecodedPacket> p;
      REQUIRE_NOTHROW(p = decode_frame(DLT_EN10MB, frame.data(), n, nullptr));
      if (n < 14 + 20) CHECK_FALSE(p);  // not even an IP header
      decoded_ok += p.has_value();
    }
    for (int round = 0; round < 500; ++round) {
      Bytes b = frame;
      b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
      b[rng() % b.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
      REQUIRE_NOTHROW(decode_frame(DLT_EN10MB, b.data(), b.size(), nullptr));
    }
  }
  CHECK(decoded_ok > 0);  // the whole frames at least
}

TEST_CASE("is_icmp_error knows which ICMP types quote a datagram", "[decode]") {
  for (int t : {3, 4, 5, 11, 12}) CHECK(outpost::is_icmp_error(kIcmp, static_cast<std::uint8_t>(t)));
  for (int t : {0, 8, 13, 14}) CHECK_FALSE(outpost::is_icmp_error(kIcmp, static_cast<std::uint8_t>(t)));
  for (int t : {1, 2, 3, 4}) CHECK(outpost::is_icmp_error(kIcmp6, static_cast<std::uint8_t>(t)));
  for (int t : {0, 128, 129, 135}) CHECK_FALSE(outpost::is_icmp_error(kIcmp6, static_cast<std::uint8_t>(t)));
  CHECK_FALSE(outpost::is_icmp_error(kTcp, 3));
  CHECK_FALSE(outpost::is_icmp_error(kUdp, 11));
}

TEST_CASE("describe_icmp_error names ICMP and ICMPv6 errors", "[decode]") {
  using outpost::describe_icmp_error;
  CHECK(describe_icmp_error(kIcmp, 3, 0) == "network unreachable");
  CHECK(describe_icmp_error(kIcmp, 3, 1) == "host unreachable");
  CHECK(describe_icmp_error(kIcmp, 3, 3) == "port unreachable");
  CHECK(describe_icmp_error(kIcmp, 3, 4) == "fragmentation needed");
  CHECK(describe_icmp_error(kIcmp, 3, 13) == "communication administratively prohibited");
  CHECK(describe_icmp_error(kIcmp, 3, 15) == "precedence cutoff in effect");
  CHECK(describe_icmp_error(kIcmp, 3, 16) == "destination unreachable, code 16");
  CHECK(describe_icmp_error(kIcmp, 11, 0) == "time to live exceeded");
  CHECK(describe_icmp_error(kIcmp, 11, 1) == "fragment reassembly time exceeded");
  CHECK(describe_icmp_error(kIcmp, 12, 0) == "parameter problem");
  CHECK(describe_icmp_error(kIcmp, 4, 0) == "source quench");
  CHECK(describe_icmp_error(kIcmp, 5, 1) == "redirect");
  CHECK(describe_icmp_error(kIcmp6, 1, 0) == "no route to destination");
  CHECK(describe_icmp_error(kIcmp6, 1, 1) == "communication administratively prohibited");
  CHECK(describe_icmp_error(kIcmp6, 1, 3) == "address unreachable");
  CHECK(describe_icmp_error(kIcmp6, 1, 4) == "port unreachable");
  CHECK(describe_icmp_error(kIcmp6, 1, 6) == "reject route to destination");
  CHECK(describe_icmp_error(kIcmp6, 1, 7) == "destination unreachable, code 7");
  CHECK(describe_icmp_error(kIcmp6, 2, 0) == "packet too big");
  CHECK(describe_icmp_error(kIcmp6, 3, 0) == "hop limit exceeded");
  CHECK(describe_icmp_error(kIcmp6, 3, 1) == "fragment reassembly time exceeded");
  CHECK(describe_icmp_error(kIcmp6, 4, 0) == "parameter problem");
  CHECK(describe_icmp_error(kIcmp, 42, 7) == "ICMP type 42 code 7");
  CHECK(describe_icmp_error(kIcmp6, 128, 0) == "ICMP type 128 code 0");
}
