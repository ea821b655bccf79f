// TCP SYN: forging against a byte fixture (IPv4) and against the RFCs'
// checksums (IPv4 and IPv6), the ISN cookie, the classifier, and TcpSynProbe
// driven through the Engine by a fake Wire: SYN-ACK, RST, ICMP errors quoting
// the SYN, spoofed answers, timeouts and concurrent probes.

#include <pcap/dlt.h>
#include <pcap/pcap.h>
#include <tins/tins.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tins_address.hpp"
#include "test_bytes.hpp"
#include "clock.hpp"
#include "engine.hpp"
#include "raw_probe.hpp"
#include "tcp_syn.hpp"

using namespace std::chrono_literals;
using outpost::FlowKey;
using outpost::FlowProto;
using outpost::IpAddress;
using outpost::ProbeStatus;
using outpost::SynSegment;

namespace {

using namespace test_bytes;






// RFC 793 §3.1: source, destination, zero, protocol 6, TCP length (16 bits).
Bytes pseudo_header_v4(const IpAddress& src, const IpAddress& dst, std::size_t tcp_len) {
  Bytes p(src.bytes(), src.bytes() + 4);
  p.insert(p.end(), dst.bytes(), dst.bytes() + 4);
  p.insert(p.end(), {0, 6, static_cast<std::uint8_t>(tcp_len >> 8), static_cast<std::uint8_t>(tcp_len)});
  return p;
}

// RFC 8200 §8.1: source, destination, upper-layer length (32 bits), 3 zero bytes, next header 6.
Bytes pseudo_header_v6(const IpAddress& src, const IpAddress& dst, std::size_t tcp_len) {
  Bytes p(src.bytes(), src.bytes() + 16);
  p.insert(p.end(), dst.bytes(), dst.bytes() + 16);
  for (int shift : {24, 16, 8, 0}) p.push_back(static_cast<std::uint8_t>(tcp_len >> shift));
  p.insert(p.end(), {0, 0, 0, 6});
  return p;
}


SynSegment fixture_syn() {
  SynSegment s;
  s.src = ip("198.19.0.1");
  s.dst = ip("198.18.0.1");
  s.sport = 61234;
  s.dport = 80;
  s.isn = 0x12345678;
  s.ip_id = 0x4242;
  s.ttl = 64;
  s.window = 64240;
  s.mss = 1460;
  return s;
}

// Every field of the TCP SYN header at b[at..], checked against RFC 793.
void check_tcp_syn(const Bytes& b, std::size_t at, const SynSegment& s, const Bytes& pseudo) {
  const Bytes tcp(b.begin() + static_cast<std::ptrdiff_t>(at), b.end());
  const std::size_t header_len = s.mss ? 24 : 20;
  REQUIRE(tcp.size() == header_len);  // a SYN carries no data
  CHECK(be16(tcp, 0) == s.sport);
  CHECK(be16(tcp, 2) == s.dport);
  CHECK(be32(tcp, 4) == s.isn);
  CHECK(be32(tcp, 8) == 0);                 // no acknowledgment
  CHECK(tcp[12] >> 4 == header_len / 4);    // data offset in 32-bit words
  CHECK((tcp[12] & 0x0f) == 0);             // reserved
  CHECK(tcp[13] == 0x02);                   // SYN and nothing else
  CHECK(be16(tcp, 14) == s.window);
  CHECK(be16(tcp, 16) == expected_checksum(tcp, 16, pseudo));
  CHECK(be16(tcp, 16) != expected_checksum(tcp, 16));  // the pseudo-header is really in it
  CHECK(be16(tcp, 18) == 0);                // urgent pointer
  if (s.mss) {
    CHECK(tcp[20] == 2);  // MSS option, length 4
    CHECK(tcp[21] == 4);
    CHECK(be16(tcp, 22) == s.mss);
  }
}

void check_v4_syn(const Bytes& b, const SynSegment& s) {
  REQUIRE(b.size() >= 20);
  CHECK(b[0] == 0x45);                // version 4, IHL 5
  CHECK(be16(b, 2) == b.size());      // total length
  CHECK(be16(b, 4) == s.ip_id);
  CHECK((be16(b, 6) & 0x1fff) == 0);  // not a fragment
  CHECK(b[8] == s.ttl);
  CHECK(b[9] == 6);                   // protocol TCP
  CHECK(be16(b, 10) == expected_checksum(Bytes(b.begin(), b.begin() + 20), 10));
  CHECK(IpAddress::v4_bytes(&b[12]) == s.src);
  CHECK(IpAddress::v4_bytes(&b[16]) == s.dst);
  check_tcp_syn(b, 20, s, pseudo_header_v4(s.src, s.dst, b.size() - 20));
}

}  // namespace

TEST_CASE("the fixture itself is a correct IPv4 TCP SYN", "[tcp_syn][fixture]") {
  const Bytes fixture = read_hex_fixture("tcp_syn_v4.hex");
  REQUIRE(fixture.size() == 44);
  check_v4_syn(fixture, fixture_syn());
  // Values written down when the fixture was made.
  CHECK(be16(fixture, 10) == 0xac62);
  CHECK(be16(fixture, 36) == 0xb8de);
  // The receiver's checks: each sum, the checksum included, comes to all ones.
  CHECK(internet_checksum(Bytes(fixture.begin(), fixture.begin() + 20)) == 0);
  Bytes with_pseudo = pseudo_header_v4(fixture_syn().src, fixture_syn().dst, 24);
  with_pseudo.insert(with_pseudo.end(), fixture.begin() + 20, fixture.end());
  CHECK(internet_checksum(with_pseudo) == 0);
}

TEST_CASE("forge_tcp_syn (IPv4) equals the byte fixture", "[tcp_syn][fixture]") {
  const Bytes forged = outpost::forge_tcp_syn(fixture_syn());
  CHECK(forged == read_hex_fixture("tcp_syn_v4.hex"));
}

TEST_CASE("forge_tcp_syn (IPv4) keeps its checksums right for other fields", "[tcp_syn]") {
  SynSegment s = fixture_syn();
  SECTION("other ports, ISN, TTL and id") {
    s.sport = 65535;
    s.dport = 443;
    s.isn = 0xffffffff;
    s.ttl = 1;
    s.ip_id = 0;
  }
  SECTION("no MSS option: a 20-byte header") { s.mss = 0; }
  check_v4_syn(outpost::forge_tcp_syn(s), s);
}

TEST_CASE("forge_tcp_syn (IPv6): TCP with the RFC 8200 pseudo-header checksum", "[tcp_syn]") {
  SynSegment s = fixture_syn();
  s.src = ip("2001:db8::1");
  s.dst = ip("2001:db8:ffff::2");
  s.ttl = 57;
  s.mss = 1440;
  const Bytes b = outpost::forge_tcp_syn(s);
  REQUIRE(b.size() == 40 + 24);
  CHECK(b[0] >> 4 == 6);
  CHECK(be16(b, 4) == 24);  // payload length
  CHECK(b[6] == 6);         // next header TCP
  CHECK(b[7] == 57);        // hop limit
  CHECK(IpAddress::v6_bytes(&b[8]) == s.src);
  CHECK(IpAddress::v6_bytes(&b[24]) == s.dst);
  check_tcp_syn(b, 40, s, pseudo_header_v6(s.src, s.dst, 24));
}

TEST_CASE("tcp_syn_cookie is a keyed hash of the flow", "[tcp_syn]") {
  const auto dst = ip("198.18.0.1");
  const outpost::FlowSecret k42{42}, k43{43};
  const auto c = outpost::tcp_syn_cookie(k42, dst, 61000, 80);
  CHECK(c == outpost::tcp_syn_cookie(k42, dst, 61000, 80));
  CHECK(c != outpost::tcp_syn_cookie(k43, dst, 61000, 80));
  CHECK(c != outpost::tcp_syn_cookie(k42, ip("198.18.0.2"), 61000, 80));
  CHECK(c != outpost::tcp_syn_cookie(k42, dst, 61001, 80));
  CHECK(c != outpost::tcp_syn_cookie(k42, dst, 61000, 443));
}

// ---------------------------------------------------------------------------
// Packets the network sends back, made with libtins.

namespace {

// What the probe put on the wire, read back from its bytes.
struct SentSyn {
  IpAddress src, dst;
  std::uint16_t sport = 0, dport = 0;
  std::uint32_t isn = 0;
};

SentSyn read_syn(const Bytes& b) {
  SentSyn s;
  std::size_t tcp_at;
  if (b.at(0) >> 4 == 6) {
    s.src = IpAddress::v6_bytes(&b.at(8));
    s.dst = IpAddress::v6_bytes(&b.at(24));
    tcp_at = 40;
  } else {
    s.src = IpAddress::v4_bytes(&b.at(12));
    s.dst = IpAddress::v4_bytes(&b.at(16));
    tcp_at = (b[0] & 0x0f) * 4u;
  }
  s.sport = be16(b, tcp_at);
  s.dport = be16(b, tcp_at + 2);
  s.isn = be32(b, tcp_at + 4);
  return s;
}

constexpr std::uint8_t kSynAck = Tins::TCP::SYN | Tins::TCP::ACK;
constexpr std::uint8_t kRstAck = Tins::TCP::RST | Tins::TCP::ACK;

// The target's segment back to the probe's port.
Bytes tcp_answer(const SentSyn& s, std::uint8_t flags, std::uint32_t ack, std::uint8_t ttl = 61) {
  Tins::TCP tcp(s.sport, s.dport);  // (dport, sport): to our port, from theirs
  tcp.flags(flags);
  tcp.seq(0x0badcafe);
  tcp.ack_seq(ack);
  if (s.dst.is_v6()) {
    Tins::IPv6 ip6(outpost::tins_v6(s.src), outpost::tins_v6(s.dst));
    ip6.hop_limit(ttl);
    ip6 /= tcp;
    return ip6.serialize();
  }
  Tins::IP ip4(outpost::tins_v4(s.src), outpost::tins_v4(s.dst));
  ip4.ttl(ttl);
  ip4 /= tcp;
  return ip4.serialize();
}

// A router's ICMP destination unreachable quoting `quoted` (IPv4).
Bytes icmp_unreachable(const Bytes& quoted, const IpAddress& router, std::uint8_t code = 1) {
  const SentSyn s = read_syn(quoted);
  Tins::IP ip4(outpost::tins_v4(s.src), outpost::tins_v4(router));
  ip4.ttl(62);
  Tins::ICMP icmp(Tins::ICMP::DEST_UNREACHABLE);
  icmp.code(code);
  ip4 /= icmp;
  ip4 /= Tins::RawPDU(quoted.data(), static_cast<std::uint32_t>(quoted.size()));
  return ip4.serialize();
}

outpost::DecodedPacket decode(const Bytes& b) {
  std::string why;
  auto p = outpost::decode_ip(b.data(), b.size(), &why);
  INFO(why);
  REQUIRE(p);
  return *p;
}

outpost::FilterParams filter_params() {
  outpost::FilterParams params{};
  params.icmp_ident = 0x1234;
  return params;
}

class FakeWire final : public outpost::Wire {
 public:
  IpAddress source = *IpAddress::parse("198.19.0.1");
  std::vector<Bytes> sent;
  FrameHandler handler;

  IpAddress prepare(const IpAddress&, std::string*) override { return source; }
  bool send(const IpAddress&, std::span<const std::uint8_t> d, std::string*) override {
    sent.emplace_back(d.begin(), d.end());
    return true;
  }
  void set_frame_handler(FrameHandler h) override { handler = std::move(h); }
};

// An engine on a fake wire and a fake clock, collecting results.
struct Bench {
  outpost::FakeClock clock;
  FakeWire wire;
  outpost::Engine engine{clock, wire, filter_params()};
  std::vector<outpost::ProbeResult> results;

  SentSyn launch(const IpAddress& dst, std::uint16_t port, outpost::Duration timeout = 2s) {
    engine.launch(std::make_unique<outpost::TcpSynProbe>(dst, port, timeout),
                  [this](const outpost::ProbeResult& r) { results.push_back(r); });
    REQUIRE(!wire.sent.empty());
    return read_syn(wire.sent.back());
  }
  void frame(const Bytes& b, outpost::WallTime stamp) { engine.on_frame(DLT_RAW, b.data(), b.size(), stamp); }
};

}  // namespace

TEST_CASE("tcp_syn_classify: our SYN, the target's answers, ICMP errors quoting a SYN", "[tcp_syn][registry]") {
  const auto params = filter_params();
  SynSegment s = fixture_syn();
  s.sport = 62234;  // tcp_syn's range (the fixture's 61234 now belongs to traces)
  const Bytes syn = outpost::forge_tcp_syn(s);
  const SentSyn sent = read_syn(syn);
  const FlowKey key{FlowProto::tcp, s.dst, s.sport, s.dport};

  auto c = outpost::classify(decode(syn), params);
  REQUIRE(c);
  CHECK(c->key == key);
  CHECK(c->outgoing);

  for (std::uint8_t flags : {kSynAck, kRstAck}) {
    c = outpost::classify(decode(tcp_answer(sent, flags, s.isn + 1)), params);
    REQUIRE(c);
    CHECK(c->key == key);
    CHECK_FALSE(c->outgoing);
  }

  c = outpost::classify(decode(icmp_unreachable(syn, ip("198.19.0.10"))), params);
  REQUIRE(c);
  CHECK(c->key == key);
  CHECK_FALSE(c->outgoing);

  SECTION("a probed port inside our range does not confuse the directions") {
    s.dport = 62000;
    const Bytes syn2 = outpost::forge_tcp_syn(s);
    c = outpost::classify(decode(syn2), params);
    REQUIRE(c);
    CHECK(c->outgoing);
    CHECK(c->key == FlowKey{FlowProto::tcp, s.dst, s.sport, 62000});
    c = outpost::classify(decode(tcp_answer(read_syn(syn2), kSynAck, s.isn + 1)), params);
    REQUIRE(c);
    CHECK_FALSE(c->outgoing);
    CHECK(c->key == FlowKey{FlowProto::tcp, s.dst, s.sport, 62000});
  }
  SECTION("our kernel's RST to a SYN-ACK is ours, leaving") {
    Tins::IP rst(outpost::tins_v4(s.dst), outpost::tins_v4(s.src));
    Tins::TCP tcp(s.dport, s.sport);
    tcp.flags(Tins::TCP::RST);
    rst /= tcp;
    c = outpost::classify(decode(rst.serialize()), params);
    REQUIRE(c);
    CHECK(c->outgoing);
    CHECK(c->key == key);
  }
  SECTION("TCP outside our port range is not ours") {
    s.sport = 40000;  // the kernel's own ephemeral range (e.g. tcp_connect)
    const Bytes other = outpost::forge_tcp_syn(s);
    CHECK_FALSE(outpost::classify(decode(other), params));
    CHECK_FALSE(outpost::classify(decode(tcp_answer(read_syn(other), kSynAck, 1)), params));
    CHECK_FALSE(outpost::classify(decode(icmp_unreachable(other, ip("198.19.0.10"))), params));
  }
}

TEST_CASE("the capture filter with tcp_syn's fragment compiles", "[tcp_syn][registry]") {
  const std::string filter = outpost::capture_filter(filter_params());
  CHECK(filter.find(outpost::tcp_syn_filter(filter_params())) != std::string::npos);
  for (int link : {DLT_RAW, DLT_EN10MB}) {
    pcap_t* dead = pcap_open_dead(link, 512);
    REQUIRE(dead);
    bpf_program program{};
    INFO(filter);
    CHECK(pcap_compile(dead, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0);
    pcap_freecode(&program);
    pcap_close(dead);
  }
}

TEST_CASE("TcpSynProbe through the engine: SYN-ACK is reply, RST is refused", "[tcp_syn][engine]") {
  Bench bench;
  const auto target = ip("198.18.0.1");
  const SentSyn syn = bench.launch(target, 80);
  CHECK(syn.src == bench.wire.source);
  CHECK(syn.dst == target);
  CHECK(syn.dport == 80);
  CHECK(syn.sport >= outpost::kTcpSynFirstPort);
  REQUIRE(bench.engine.in_flight() == 1);

  const auto t0 = bench.clock.wall() + 10us;
  bench.frame(bench.wire.sent.back(), t0);  // the capture sees our SYN leave
  CHECK(bench.engine.in_flight() == 1);

  std::uint8_t flags = 0;
  ProbeStatus want{};
  SECTION("SYN-ACK: the port is open") {
    flags = kSynAck;
    want = ProbeStatus::reply;
  }
  SECTION("RST-ACK: the port is closed") {
    flags = kRstAck;
    want = ProbeStatus::refused;
  }
  bench.frame(tcp_answer(syn, flags, syn.isn + 1, 61), t0 + 61us);

  REQUIRE(bench.results.size() == 1);
  const auto& r = bench.results[0];
  CHECK(r.status == want);
  REQUIRE(r.rtt);
  CHECK(*r.rtt == 61us);  // both ends from the capture's (here: given) timestamps
  CHECK(r.sent == t0);
  CHECK(r.sent_kernel_stamp);
  CHECK(r.reply_from == target);
  CHECK(r.reply_ttl == 61);
  CHECK(r.icmp_type == -1);
  CHECK(bench.engine.in_flight() == 0);
  const auto stats = bench.engine.stats();
  CHECK(stats.answered == 1);
  CHECK(stats.spoofed == 0);
  CHECK(stats.tx_stamp_missing == 0);

  // A retransmitted answer afterwards is a duplicate, not a new result.
  bench.frame(tcp_answer(syn, flags, syn.isn + 1, 61), t0 + 1s);
  CHECK(bench.results.size() == 1);
  CHECK(bench.engine.stats().duplicate == 1);
}

TEST_CASE("TcpSynProbe through the engine: an ICMP error quoting our SYN is unreachable", "[tcp_syn][engine]") {
  Bench bench;
  const auto target = ip("198.18.1.1");
  const auto router = ip("198.19.0.10");
  bench.launch(target, 80);
  const Bytes sent = bench.wire.sent.back();
  const auto t0 = bench.clock.wall() + 10us;
  bench.frame(sent, t0);

  bench.frame(icmp_unreachable(sent, router, 1), t0 + 250us);

  REQUIRE(bench.results.size() == 1);
  const auto& r = bench.results[0];
  CHECK(r.status == ProbeStatus::unreachable);
  REQUIRE(r.rtt);
  CHECK(*r.rtt == 250us);
  CHECK(r.reply_from == router);
  CHECK(r.icmp_type == 3);
  CHECK(r.icmp_code == 1);
  CHECK(r.error == "host unreachable");
  CHECK(bench.engine.stats().spoofed == 0);
}

// RFC 792 promises only 8 bytes of the quoted transport header (ports and
// sequence number: all tcp_syn needs); a quote cut there is still ours.
TEST_CASE("TcpSynProbe through the engine: an ICMP error quoting our SYN cut short is unreachable",
          "[tcp_syn][engine]") {
  Bench bench;
  bench.launch(ip("198.18.1.1"), 80);
  const Bytes sent = bench.wire.sent.back();
  const auto t0 = bench.clock.wall() + 10us;
  bench.frame(sent, t0);
  const std::size_t cut = GENERATE(28, 40);  // 8 TCP bytes (RFC 792); 20 (the options cut off)
  INFO("quote of " << cut << " bytes");
  bench.frame(icmp_unreachable(Bytes(sent.begin(), sent.begin() + static_cast<std::ptrdiff_t>(cut)),
                               ip("198.19.0.10"), 1),
              t0 + 250us);
  CHECK(bench.engine.stats().malformed == 0);
  REQUIRE(bench.results.size() == 1);
  CHECK(bench.results[0].status == ProbeStatus::unreachable);
}

TEST_CASE("TcpSynProbe through the engine: answers that do not acknowledge our ISN are spoofed", "[tcp_syn][engine]") {
  Bench bench;
  const auto target = ip("198.18.0.1");
  const SentSyn syn = bench.launch(target, 443);
  const Bytes sent = bench.wire.sent.back();
  const auto t0 = bench.clock.wall() + 10us;
  bench.frame(sent, t0);

  SECTION("SYN-ACK acknowledging the wrong number") { bench.frame(tcp_answer(syn, kSynAck, syn.isn + 2), t0 + 5us); }
  SECTION("SYN-ACK acknowledging the ISN itself") { bench.frame(tcp_answer(syn, kSynAck, syn.isn), t0 + 5us); }
  SECTION("RST-ACK acknowledging the wrong number") { bench.frame(tcp_answer(syn, kRstAck, 0x11111111), t0 + 5us); }
  SECTION("a bare RST, no acknowledgment") { bench.frame(tcp_answer(syn, Tins::TCP::RST, syn.isn + 1), t0 + 5us); }
  SECTION("an ICMP error quoting a SYN with another ISN") {
    Bytes other = sent;
    other[24] ^= 0xff;  // the first byte of the sequence number
    bench.frame(icmp_unreachable(other, ip("198.19.0.10")), t0 + 5us);
  }
  SECTION("an ICMP error quoting a SYN from another source") {
    SynSegment forged = fixture_syn();
    forged.src = ip("198.19.0.99");
    forged.dst = syn.dst;
    forged.sport = syn.sport;
    forged.dport = syn.dport;
    forged.isn = syn.isn;
    bench.frame(icmp_unreachable(outpost::forge_tcp_syn(forged), ip("198.19.0.10")), t0 + 5us);
  }

  CHECK(bench.results.empty());
  CHECK(bench.engine.in_flight() == 1);
  CHECK(bench.engine.stats().spoofed == 1);

  // The genuine answer still ends the probe.
  bench.frame(tcp_answer(syn, kSynAck, syn.isn + 1), t0 + 70us);
  REQUIRE(bench.results.size() == 1);
  CHECK(bench.results[0].status == ProbeStatus::reply);
  CHECK(*bench.results[0].rtt == 70us);
}

TEST_CASE("TcpSynProbe through the engine: no answer is a timeout, a late answer is counted late", "[tcp_syn][engine]") {
  Bench bench;
  const SentSyn syn = bench.launch(ip("198.18.0.1"), 80, 1s);
  bench.frame(bench.wire.sent.back(), bench.clock.wall());
  bench.clock.advance(999ms);
  bench.engine.expire(bench.clock.now());
  CHECK(bench.results.empty());
  bench.clock.advance(1ms);
  bench.engine.expire(bench.clock.now());
  REQUIRE(bench.results.size() == 1);
  CHECK(bench.results[0].status == ProbeStatus::timeout);
  CHECK_FALSE(bench.results[0].rtt);
  CHECK(bench.engine.in_flight() == 0);

  bench.frame(tcp_answer(syn, kSynAck, syn.isn + 1), bench.clock.wall());
  CHECK(bench.results.size() == 1);
  CHECK(bench.engine.stats().late == 1);
}

TEST_CASE("TcpSynProbe through the engine: concurrent probes to one port use their own source ports", "[tcp_syn][engine]") {
  Bench bench;
  const auto target = ip("198.18.0.1");
  std::vector<SentSyn> syns;
  for (int i = 0; i < 3; ++i) syns.push_back(bench.launch(target, 80));
  REQUIRE(bench.engine.in_flight() == 3);
  std::set<std::uint16_t> ports;
  for (const auto& s : syns) {
    ports.insert(s.sport);
    CHECK(s.sport >= outpost::kTcpSynFirstPort);
    CHECK(s.dport == 80);
  }
  CHECK(ports.size() == 3);

  // Each answer finds its own probe, in any order: the second is refused, the others open.
  const auto t0 = bench.clock.wall();
  bench.frame(tcp_answer(syns[1], kRstAck, syns[1].isn + 1), t0 + 20us);
  bench.frame(tcp_answer(syns[2], kSynAck, syns[2].isn + 1), t0 + 30us);
  bench.frame(tcp_answer(syns[0], kSynAck, syns[0].isn + 1), t0 + 40us);
  REQUIRE(bench.results.size() == 3);
  CHECK(bench.results[0].status == ProbeStatus::refused);
  CHECK(bench.results[1].status == ProbeStatus::reply);
  CHECK(bench.results[2].status == ProbeStatus::reply);
  CHECK(bench.engine.stats().spoofed == 0);
  // No capture of the SYNs leaving: the engine says so.
  CHECK(bench.engine.stats().tx_stamp_missing == 3);

  SECTION("one probe's ISN does not answer another's") {
    const SentSyn a = bench.launch(target, 80);
    const SentSyn b = bench.launch(target, 80);
    bench.frame(tcp_answer(b, kSynAck, a.isn + 1), t0 + 50us);
    CHECK(bench.engine.stats().spoofed == 1);
    CHECK(bench.engine.in_flight() == 2);
  }
}

TEST_CASE("TcpSynProbe through the engine: IPv6", "[tcp_syn][engine]") {
  Bench bench;
  bench.wire.source = ip("2001:db8::1");
  const auto target = ip("2001:db8:ffff::2");
  const SentSyn syn = bench.launch(target, 22);
  CHECK(syn.src == bench.wire.source);
  CHECK(syn.dst == target);
  const auto t0 = bench.clock.wall();
  bench.frame(bench.wire.sent.back(), t0);
  bench.frame(tcp_answer(syn, kSynAck, syn.isn + 1, 50), t0 + 33us);
  REQUIRE(bench.results.size() == 1);
  CHECK(bench.results[0].status == ProbeStatus::reply);
  CHECK(*bench.results[0].rtt == 33us);
  CHECK(bench.results[0].reply_ttl == 50);
}

// ---------------------------------------------------------------------------
// TcpSynProbe::start through a fake context: port claims and failures.

namespace {

class FakeContext final : public outpost::ProbeContext {
 public:
  IpAddress source = *IpAddress::parse("198.19.0.1");
  std::string source_error;
  std::string send_error;
  int refuse = 0;  // expect() refuses this many keys first
  std::vector<FlowKey> asked;
  std::vector<FlowKey> expected;
  std::vector<Bytes> sent;
  std::vector<outpost::Duration> timeouts;

  IpAddress source_for(const IpAddress&, std::string* error) override {
    if (!source_error.empty()) *error = source_error;
    return source_error.empty() ? source : IpAddress{};
  }
  std::uint16_t next_ip_id() override { return 0x4242; }
  std::uint16_t next_icmp_ident() override { return 0x1234; }
  std::uint16_t next_icmp_sequence() override { return 1; }
  std::uint16_t next_dns_id() override { return 0; }
  const outpost::FlowSecret& secret() const override { return key; }
  outpost::FlowSecret key{0x5e, 0xc7, 0xe7};
  outpost::WallTime wall_now() override { return outpost::WallTime{std::chrono::seconds(1419264900)}; }
  bool expect(const FlowKey& key) override {
    asked.push_back(key);
    if (refuse > 0) {
      --refuse;
      return false;
    }
    expected.push_back(key);
    return true;
  }
  bool send(const IpAddress&, std::span<const std::uint8_t> d, std::string* error) override {
    if (!send_error.empty()) {
      *error = send_error;
      return false;
    }
    sent.emplace_back(d.begin(), d.end());
    return true;
  }
  void arm_timeout(outpost::Duration d) override { timeouts.push_back(d); }
  bool watch(int, std::uint32_t) override { return false; }
};

}  // namespace

TEST_CASE("TcpSynProbe::start forges with the claimed port and the keyed ISN", "[tcp_syn][probe]") {
  FakeContext ctx;
  const auto target = ip("198.18.0.1");
  outpost::TcpSynProbe probe(target, 80, 2s);
  probe.start(ctx);
  REQUIRE_FALSE(probe.finished());
  REQUIRE(ctx.expected.size() == 1);
  REQUIRE(ctx.sent.size() == 1);
  CHECK(ctx.timeouts == std::vector<outpost::Duration>{2s});
  const std::uint16_t sport = probe.source_port();
  CHECK(ctx.expected[0] == FlowKey{FlowProto::tcp, target, sport, 80});

  SynSegment want = fixture_syn();
  want.sport = sport;
  want.isn = outpost::tcp_syn_cookie(ctx.key, target, sport, 80);
  CHECK(ctx.sent[0] == outpost::forge_tcp_syn(want));
}

TEST_CASE("TcpSynProbe::start skips source ports whose flow is taken, cycling in its range", "[tcp_syn][probe]") {
  FakeContext ctx;
  ctx.refuse = 3;
  outpost::TcpSynProbe probe(ip("198.18.0.1"), 80, 2s);
  probe.start(ctx);
  REQUIRE_FALSE(probe.finished());
  REQUIRE(ctx.asked.size() == 4);
  for (std::size_t i = 1; i < ctx.asked.size(); ++i) {
    const std::uint16_t prev = ctx.asked[i - 1].a, next = ctx.asked[i].a;
    CHECK((next == prev + 1 || (prev == outpost::kTcpSynLastPort && next == outpost::kTcpSynFirstPort)));
  }
  for (const auto& k : ctx.asked) CHECK(k.a >= outpost::kTcpSynFirstPort);
  CHECK(probe.source_port() == ctx.asked.back().a);
}

TEST_CASE("TcpSynProbe::start fails as data, not exceptions", "[tcp_syn][probe]") {
  FakeContext ctx;
  outpost::TcpSynProbe probe(ip("198.18.0.1"), 80, 2s);
  SECTION("no route toward the target") {
    ctx.source_error = "no route to 198.18.0.1";
    probe.start(ctx);
    CHECK(probe.result().error == "no route to 198.18.0.1");
    CHECK(ctx.asked.empty());
  }
  SECTION("every source port taken") {
    ctx.refuse = 1 << 20;
    probe.start(ctx);
    CHECK(probe.result().error == "too many probes in flight to 198.18.0.1 port 80");
  }
  SECTION("the send fails") {
    ctx.send_error = "send to 198.18.0.1: Operation not permitted";
    probe.start(ctx);
    CHECK(probe.result().error == "send to 198.18.0.1: Operation not permitted");
    CHECK(ctx.timeouts.empty());
  }
  REQUIRE(probe.finished());
  CHECK(probe.result().status == ProbeStatus::error);
  CHECK(ctx.sent.empty());
  CHECK_FALSE(probe.result().rtt);
}

// The forger writes the bytes itself (no allocation per probe); libtins'
// serialization of the same segment, as the forger was before, is the
// reference: byte for byte, over random segments of both families, with and
// without the MSS option.
#include <array>
#include <random>

namespace {
Bytes syn_with_libtins(const SynSegment& s) {
  Tins::TCP tcp(s.dport, s.sport);
  tcp.flags(Tins::TCP::SYN);
  tcp.seq(s.isn);
  tcp.window(s.window);
  if (s.mss) tcp.mss(s.mss);
  if (s.dst.is_v6()) {
    Tins::IPv6 ip(outpost::tins_v6(s.dst), outpost::tins_v6(s.src));
    ip.hop_limit(s.ttl);
    ip /= tcp;
    return ip.serialize();
  }
  Tins::IP ip(outpost::tins_v4(s.dst), outpost::tins_v4(s.src));
  ip.ttl(s.ttl);
  ip.id(s.ip_id);
  ip /= tcp;
  return ip.serialize();
}
}  // namespace

TEST_CASE("forge_tcp_syn: byte for byte what libtins serializes", "[tcp_syn]") {
  std::mt19937_64 random(6262);
  for (int i = 0; i < 4000; ++i) {
    SynSegment s;
    const bool v6 = i % 2 == 1;
    s.src = random_address(random, v6);
    s.dst = random_address(random, v6);
    s.sport = static_cast<std::uint16_t>(random());
    s.dport = static_cast<std::uint16_t>(random());
    s.isn = static_cast<std::uint32_t>(random());
    s.ip_id = static_cast<std::uint16_t>(random());
    s.ttl = static_cast<std::uint8_t>(random());
    s.window = static_cast<std::uint16_t>(random());
    s.mss = random() % 4 == 0 ? 0 : static_cast<std::uint16_t>(random());
    const Bytes want = syn_with_libtins(s);
    INFO("segment " << i << " v6=" << v6 << " mss=" << s.mss);
    REQUIRE(outpost::forge_tcp_syn(s) == want);
    REQUIRE(outpost::tcp_syn_size(s) == want.size());
    REQUIRE(want.size() <= outpost::kTcpSynMaxSize);
    std::array<std::uint8_t, 100> buffer;
    buffer.fill(0xee);  // what was there before is overwritten, not kept
    REQUIRE(outpost::forge_tcp_syn(s, buffer) == want.size());
    REQUIRE(Bytes(buffer.begin(), buffer.begin() + want.size()) == want);
    CHECK(buffer[want.size()] == 0xee);  // nothing written beyond the datagram
    // A buffer too short is refused, not overrun.
    CHECK(outpost::forge_tcp_syn(s, std::span(buffer).first(want.size() - 1)) == 0);
  }
}
