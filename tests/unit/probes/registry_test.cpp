// The probe-type table: classifying decoded packets into flow keys (our echo
// request leaving, the reply, an ICMP error quoting the request) and the
// capture filter, compiled by libpcap and run over frames without a capture.

#include <pcap/pcap.h>
#include <tins/tins.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "icmp_echo.hpp"
#include "registry.hpp"

using outpost::Classified;
using outpost::DecodedPacket;
using outpost::FilterParams;
using outpost::FlowKey;
using outpost::FlowProto;
using outpost::IpAddress;

namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr std::uint8_t kIcmp = 1, kTcp = 6, kIcmp6 = 58;
constexpr std::uint16_t kIdent = 0x1234;
const FilterParams kParams{kIdent};

const IpAddress kUs = *IpAddress::parse("198.19.0.1");
const IpAddress kTarget = *IpAddress::parse("198.18.0.1");
const IpAddress kRouter = *IpAddress::parse("198.18.0.254");
const IpAddress kUs6 = *IpAddress::parse("2001:db8::1");
const IpAddress kTarget6 = *IpAddress::parse("2001:db8:ffff::2");

DecodedPacket icmp_packet(IpAddress src, IpAddress dst, std::uint8_t proto, std::uint8_t type, std::uint16_t id,
                          std::uint16_t seq) {
  DecodedPacket p;
  p.ip = {src, dst, 64, 1};
  p.l4.proto = proto;
  p.l4.icmp_type = type;
  p.l4.icmp_id = id;
  p.l4.icmp_seq = seq;
  return p;
}

DecodedPacket icmp_error(IpAddress from, std::uint8_t type, std::uint8_t code, const DecodedPacket& quoted) {
  DecodedPacket p;
  p.ip = {from, quoted.ip.src, 250, 9};
  p.l4.proto = kIcmp;
  p.l4.icmp_type = type;
  p.l4.icmp_code = code;
  p.quote = outpost::QuotedDatagram{quoted.ip, quoted.l4};
  return p;
}

FlowKey echo_key(IpAddress remote, std::uint16_t seq) { return {FlowProto::icmp_echo, remote, kIdent, seq}; }

}  // namespace

TEST_CASE("icmp_echo_classify: our request leaving is outgoing, keyed by its destination", "[registry]") {
  const auto c = outpost::icmp_echo_classify(icmp_packet(kUs, kTarget, kIcmp, 8, kIdent, 7), kParams);
  REQUIRE(c);
  CHECK(c->outgoing);
  CHECK(c->key == echo_key(kTarget, 7));

  const auto c6 = outpost::icmp_echo_classify(icmp_packet(kUs6, kTarget6, kIcmp6, 128, kIdent, 7), kParams);
  REQUIRE(c6);
  CHECK(c6->outgoing);
  CHECK(c6->key == echo_key(kTarget6, 7));
}

TEST_CASE("icmp_echo_classify: a reply is keyed by its source", "[registry]") {
  const auto c = outpost::icmp_echo_classify(icmp_packet(kTarget, kUs, kIcmp, 0, kIdent, 7), kParams);
  REQUIRE(c);
  CHECK_FALSE(c->outgoing);
  CHECK(c->key == echo_key(kTarget, 7));

  const auto c6 = outpost::icmp_echo_classify(icmp_packet(kTarget6, kUs6, kIcmp6, 129, kIdent, 7), kParams);
  REQUIRE(c6);
  CHECK_FALSE(c6->outgoing);
  CHECK(c6->key == echo_key(kTarget6, 7));
}

TEST_CASE("icmp_echo_classify: an ICMP error is keyed by the quoted request's destination", "[registry]") {
  const DecodedPacket request = icmp_packet(kUs, kTarget, kIcmp, 8, kIdent, 7);
  for (std::uint8_t type : {3, 11}) {
    const auto c = outpost::icmp_echo_classify(icmp_error(kRouter, type, 1, request), kParams);
    REQUIRE(c);
    CHECK_FALSE(c->outgoing);
    CHECK(c->key == echo_key(kTarget, 7));  // not the router's address
  }
}

TEST_CASE("icmp_echo_classify keys echoes by their own identifier, whatever it is", "[registry]") {
  // Identifiers are drawn per probe: the engine's flow table, not the
  // classifier, tells ours (and another agent's, or ping's) apart.
  const auto reply = outpost::icmp_echo_classify(icmp_packet(kTarget6, kUs6, kIcmp6, 129, 0x4321, 7), kParams);
  REQUIRE(reply);
  CHECK(reply->key == FlowKey{FlowProto::icmp_echo, kTarget6, 0x4321, 7});
  const auto request = outpost::icmp_echo_classify(icmp_packet(kUs, kTarget, kIcmp, 8, 0x4321, 9), kParams);
  REQUIRE(request);
  CHECK(request->outgoing);
  CHECK(request->key == FlowKey{FlowProto::icmp_echo, kTarget, 0x4321, 9});
}

TEST_CASE("icmp_echo_classify leaves alone what is not ours", "[registry]") {
  SECTION("ICMPv4 type numbers under ICMPv6 and the reverse") {
    CHECK_FALSE(outpost::icmp_echo_classify(icmp_packet(kTarget6, kUs6, kIcmp6, 0, kIdent, 7), kParams));
    CHECK_FALSE(outpost::icmp_echo_classify(icmp_packet(kTarget, kUs, kIcmp, 129, kIdent, 7), kParams));
  }
  SECTION("other ICMP messages") {
    CHECK_FALSE(outpost::icmp_echo_classify(icmp_packet(kTarget, kUs, kIcmp, 13, kIdent, 7), kParams));
  }
  SECTION("source quench and redirect quoting our request: the datagram went on") {
    const DecodedPacket request = icmp_packet(kUs, kTarget, kIcmp, 8, kIdent, 7);
    CHECK_FALSE(outpost::icmp_echo_classify(icmp_error(kRouter, 4, 0, request), kParams));
    CHECK_FALSE(outpost::icmp_echo_classify(icmp_error(kRouter, 5, 1, request), kParams));
  }
  SECTION("an ICMP error quoting an echo reply with our identifier") {
    const DecodedPacket reply = icmp_packet(kUs, kTarget, kIcmp, 0, kIdent, 7);
    CHECK_FALSE(outpost::icmp_echo_classify(icmp_error(kRouter, 3, 3, reply), kParams));
  }
  SECTION("TCP") {
    DecodedPacket tcp;
    tcp.ip = {kTarget, kUs, 64, 1};
    tcp.l4.proto = kTcp;
    tcp.l4.sport = 80;
    tcp.l4.dport = kIdent;
    CHECK_FALSE(outpost::icmp_echo_classify(tcp, kParams));
  }
}

TEST_CASE("classify goes through the registered types", "[registry]") {
  REQUIRE_FALSE(outpost::probe_types().empty());
  CHECK(outpost::probe_types().front().name == "icmp_echo");
  const auto c = outpost::classify(icmp_packet(kTarget, kUs, kIcmp, 0, kIdent, 7), kParams);
  REQUIRE(c);
  CHECK(c->key == echo_key(kTarget, 7));
  CHECK_FALSE(outpost::classify(icmp_packet(kTarget, kUs, kIcmp, 13, kIdent, 7), kParams));  // a timestamp request
}

// ---------------------------------------------------------------------------
// The capture filter, as libpcap compiles and runs it.

namespace {

Tins::IPv4Address tins4(const IpAddress& a) { return Tins::IPv4Address(a.to_string()); }
Tins::IPv6Address tins6(const IpAddress& a) { return Tins::IPv6Address(a.to_string()); }

Bytes eth(std::uint16_t ethertype, const Bytes& payload) {
  const Bytes header = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01,
                        static_cast<std::uint8_t>(ethertype >> 8), static_cast<std::uint8_t>(ethertype)};
  // Sized once and copied into: g++ 12 misreads insert() after a list (-Warray-bounds).
  Bytes f(header.size() + payload.size());
  std::copy(header.begin(), header.end(), f.begin());
  std::copy(payload.begin(), payload.end(), f.begin() + static_cast<std::ptrdiff_t>(header.size()));
  return f;
}

Bytes echo_v4(IpAddress src, IpAddress dst, Tins::ICMP::Flags type, std::uint16_t id) {
  Tins::IP pkt(tins4(dst), tins4(src));
  Tins::ICMP icmp(type);
  icmp.id(id);
  icmp.sequence(7);
  pkt /= icmp;
  return eth(0x0800, pkt.serialize());
}

Bytes echo_v6(IpAddress src, IpAddress dst, Tins::ICMPv6::Types type, std::uint16_t id) {
  Tins::IPv6 pkt(tins6(dst), tins6(src));
  Tins::ICMPv6 icmp(type);
  icmp.identifier(id);
  icmp.sequence(7);
  pkt /= icmp;
  pkt /= Tins::RawPDU(Bytes(8, 0xaa));
  return eth(0x86dd, pkt.serialize());
}

class CompiledFilter {
 public:
  explicit CompiledFilter(const std::string& expression) : pcap_(pcap_open_dead(DLT_EN10MB, 512)) {
    REQUIRE(pcap_);
    ok_ = pcap_compile(pcap_, &program_, expression.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0;
    if (!ok_) error_ = pcap_geterr(pcap_);
  }
  ~CompiledFilter() {
    if (ok_) pcap_freecode(&program_);
    pcap_close(pcap_);
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  bool passes(const Bytes& frame) const {
    pcap_pkthdr header{};
    header.caplen = header.len = static_cast<bpf_u_int32>(frame.size());
    return pcap_offline_filter(&program_, &header, frame.data()) != 0;
  }

 private:
  pcap_t* pcap_;
  bpf_program program_{};
  bool ok_ = false;
  std::string error_;
};

}  // namespace

TEST_CASE("capture_filter compiles", "[registry][bpf]") {
  const std::string filter = outpost::capture_filter(kParams);
  CompiledFilter compiled(filter);
  INFO(filter << "\n" << compiled.error());
  CHECK(compiled.ok());
}

TEST_CASE("capture_filter lets our packets through and keeps others out", "[registry][bpf]") {
  CompiledFilter f(outpost::capture_filter(kParams));
  REQUIRE(f.ok());

  // Ours: requests leaving, replies, and every ICMP error (they may quote any probe).
  CHECK(f.passes(echo_v4(kUs, kTarget, Tins::ICMP::ECHO_REQUEST, kIdent)));
  CHECK(f.passes(echo_v4(kTarget, kUs, Tins::ICMP::ECHO_REPLY, kIdent)));
  CHECK(f.passes(echo_v6(kUs6, kTarget6, Tins::ICMPv6::ECHO_REQUEST, kIdent)));
  CHECK(f.passes(echo_v6(kTarget6, kUs6, Tins::ICMPv6::ECHO_REPLY, kIdent)));
  {
    Tins::IP err(tins4(kUs), tins4(kRouter));
    err /= Tins::ICMP(Tins::ICMP::TIME_EXCEEDED);
    err /= Tins::RawPDU(Bytes(28, 0x45));
    CHECK(f.passes(eth(0x0800, err.serialize())));
  }
  {
    Tins::IPv6 err(tins6(kUs6), tins6(kTarget6));
    err /= Tins::ICMPv6(Tins::ICMPv6::DEST_UNREACHABLE);
    err /= Tins::RawPDU(Bytes(48, 0x60));
    CHECK(f.passes(eth(0x86dd, err.serialize())));
  }

  // Echoes of any identifier: ours are drawn per probe.
  CHECK(f.passes(echo_v4(kTarget, kUs, Tins::ICMP::ECHO_REPLY, 0x4321)));
  CHECK(f.passes(echo_v6(kTarget6, kUs6, Tins::ICMPv6::ECHO_REPLY, 0x4321)));

  // Not ours.
  CHECK_FALSE(f.passes(echo_v4(kTarget, kUs, Tins::ICMP::TIMESTAMP_REQUEST, kIdent)));
  {
    Tins::IP tcp(tins4(kUs), tins4(kTarget));
    tcp /= Tins::TCP(kIdent, 80);
    CHECK_FALSE(f.passes(eth(0x0800, tcp.serialize())));
  }
  {
    Tins::IPv6 ns(tins6(kUs6), tins6(kTarget6));
    ns /= Tins::ICMPv6(Tins::ICMPv6::NEIGHBOUR_SOLICIT);
    CHECK_FALSE(f.passes(eth(0x86dd, ns.serialize())));
  }
}

TEST_CASE("capture_filter for named probe types: theirs and every ICMP error, nothing of the others",
          "[registry][bpf]") {
  auto tcp_frame = [](std::uint16_t sport, std::uint16_t dport) {
    Tins::IP tcp(tins4(kTarget), tins4(kUs));
    Tins::TCP segment(dport, sport);
    segment.flags(Tins::TCP::SYN);
    tcp /= segment;
    return eth(0x0800, tcp.serialize());
  };
  auto udp_frame = [](std::uint16_t sport, std::uint16_t dport) {
    Tins::IP udp(tins4(kTarget), tins4(kUs));
    udp /= Tins::UDP(dport, sport);
    udp /= Tins::RawPDU(Bytes(12, 0));
    return eth(0x0800, udp.serialize());
  };
  Tins::IP err(tins4(kUs), tins4(kRouter));
  err /= Tins::ICMP(Tins::ICMP::TIME_EXCEEDED);
  err /= Tins::RawPDU(Bytes(28, 0x45));
  const Bytes time_exceeded = eth(0x0800, err.serialize());
  const Bytes echo_reply = echo_v4(kTarget, kUs, Tins::ICMP::ECHO_REPLY, kIdent);
  const Bytes syn = tcp_frame(62001, 80);         // a tcp_syn probe
  const Bytes trace_syn = tcp_frame(61001, 80);   // a tcp_trace hop probe
  const Bytes trace_udp = udp_frame(61001, 33434);  // a udp_trace hop probe

  CompiledFilter echo(outpost::capture_filter(kParams, {"icmp_echo"}));
  REQUIRE(echo.ok());
  CHECK(echo.passes(echo_reply));
  CHECK(echo.passes(time_exceeded));
  CHECK_FALSE(echo.passes(syn));
  CHECK_FALSE(echo.passes(trace_udp));

  CompiledFilter udp(outpost::capture_filter(kParams, {"udp_trace"}));
  REQUIRE(udp.ok());
  CHECK(udp.passes(trace_udp));
  CHECK(udp.passes(time_exceeded));
  CHECK_FALSE(udp.passes(echo_reply));
  CHECK_FALSE(udp.passes(trace_syn));

  CompiledFilter tcp(outpost::capture_filter(kParams, {"tcp_syn", "tcp_trace"}));
  REQUIRE(tcp.ok());
  CHECK(tcp.passes(syn));
  CHECK(tcp.passes(trace_syn));
  CHECK_FALSE(tcp.passes(echo_reply));

  // All of them when none is named; a name of no type is an error, not a deaf capture.
  CompiledFilter all(outpost::capture_filter(kParams));
  REQUIRE(all.ok());
  for (const Bytes* frame : {&echo_reply, &time_exceeded, &syn, &trace_syn, &trace_udp}) CHECK(all.passes(*frame));
  CHECK_THROWS_AS(outpost::capture_filter(kParams, {"icmp-echo"}), std::invalid_argument);
}
