// What the forge tests share: the engine on a fake wire and a fake clock, the
// datagrams it sent, and answers an attacker builds from them (echo replies,
// ICMP errors quoting a chosen datagram, TCP answers).
// Leaves to others: what each test forges and checks (forge_*_test.cpp).
#pragma once

#include <pcap/dlt.h>
#include <tins/tins.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "clock.hpp"
#include "engine.hpp"
#include "icmp_echo.hpp"
#include "tcp_syn.hpp"
#include "wire.hpp"

namespace forge_lab {

using Bytes = std::vector<std::uint8_t>;
using outpost::IpAddress;
using outpost::ProbeResult;
using outpost::WallTime;

inline IpAddress addr(const char* text) { return IpAddress::parse(text).value(); }

inline const IpAddress kUs = addr("198.19.0.1");
inline const IpAddress kTarget = addr("198.18.0.1");
inline const IpAddress kRouter = addr("198.18.0.254");
inline const IpAddress kUs6 = addr("2001:db8::1");
inline const IpAddress kTarget6 = addr("2001:db8:ffff::2");

inline bool is_v6(const Bytes& d) { return (d.at(0) >> 4) == 6; }
inline std::size_t l4_offset(const Bytes& d) { return is_v6(d) ? 40 : static_cast<std::size_t>(d.at(0) & 0x0f) * 4; }
inline int ttl_of(const Bytes& d) { return is_v6(d) ? d.at(7) : d.at(8); }
inline IpAddress dst_of(const Bytes& d) {
  return is_v6(d) ? IpAddress::v6_bytes(&d.at(24)) : IpAddress::v4_bytes(&d.at(16));
}
inline int proto_of(const Bytes& d) { return is_v6(d) ? d.at(6) : d.at(9); }

inline outpost::DecodedPacket decode(const Bytes& datagram) {
  auto p = outpost::decode_ip(datagram.data(), datagram.size(), nullptr);
  REQUIRE(p);
  return *p;
}

class FakeWire final : public outpost::Wire {
 public:
  std::vector<Bytes> sent;
  IpAddress prepare(const IpAddress& dst, std::string*) override { return dst.is_v6() ? kUs6 : kUs; }
  bool send(const IpAddress&, std::span<const std::uint8_t> datagram, std::string*) override {
    sent.emplace_back(datagram.begin(), datagram.end());
    return true;
  }
  void set_frame_handler(FrameHandler handler) override { handler_ = std::move(handler); }
  void capture(const Bytes& datagram, WallTime stamp) {
    REQUIRE(handler_);
    handler_(DLT_RAW, datagram.data(), datagram.size(), stamp);
  }

 private:
  FrameHandler handler_;
};

struct Lab {
  outpost::FakeClock clock;
  FakeWire wire;
  outpost::Engine engine{clock, wire, outpost::FilterParams{0x1234}};
  std::deque<std::vector<ProbeResult>> calls;

  std::size_t launch(std::unique_ptr<outpost::Probe> probe) {
    const std::size_t i = calls.size();
    calls.emplace_back();
    engine.launch(std::move(probe), [this, i](const ProbeResult& r) { calls[i].push_back(r); });
    return i;
  }
  std::size_t launch_echo(const IpAddress& target) {
    return launch(std::make_unique<outpost::IcmpEchoProbe>(target, std::chrono::seconds(1)));
  }
  const Bytes& sent(std::size_t i = 0) {
    REQUIRE(wire.sent.size() > i);
    return wire.sent[i];
  }
  void capture(const Bytes& d) { wire.capture(d, clock.wall() + std::chrono::milliseconds(1)); }
  const ProbeResult& result(std::size_t i = 0) {
    REQUIRE(calls.at(i).size() == 1);
    return calls[i][0];
  }
};

inline Tins::IPv4Address tins4(const IpAddress& a) { return Tins::IPv4Address(a.to_string()); }
inline Tins::IPv6Address tins6(const IpAddress& a) { return Tins::IPv6Address(a.to_string()); }

// An ICMP (ICMPv6) error from `from` to us quoting `quote` whole.
inline Bytes icmp_error(const IpAddress& from, const Bytes& quote, int type, int code) {
  if (from.is_v6()) {
    Tins::IPv6 err(tins6(kUs6), tins6(from));
    err.hop_limit(250);
    Tins::ICMPv6 icmp(static_cast<Tins::ICMPv6::Types>(type));
    icmp.code(static_cast<std::uint8_t>(code));
    err /= icmp;
    err /= Tins::RawPDU(quote.data(), static_cast<std::uint32_t>(quote.size()));
    return err.serialize();
  }
  Tins::IP err(tins4(kUs), tins4(from));
  err.ttl(250);
  Tins::ICMP icmp(static_cast<Tins::ICMP::Flags>(type));
  icmp.code(static_cast<std::uint8_t>(code));
  err /= icmp;
  err /= Tins::RawPDU(quote.data(), static_cast<std::uint32_t>(quote.size()));
  return err.serialize();
}

// The first `len` bytes of a datagram, as a router that quotes little sends them.
inline Bytes head(const Bytes& d, std::size_t len) {
  return Bytes(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(std::min(len, d.size())));
}

// The echo reply the target sends to `request`: same identifier, sequence and payload.
inline Bytes echo_reply(const Bytes& request) {
  if (is_v6(request)) {
    Tins::IPv6 req(request.data(), static_cast<std::uint32_t>(request.size()));
    const auto& icmp = req.rfind_pdu<Tins::ICMPv6>();
    Tins::IPv6 reply(req.src_addr(), req.dst_addr());
    Tins::ICMPv6 r(Tins::ICMPv6::ECHO_REPLY);
    r.identifier(icmp.identifier());
    r.sequence(icmp.sequence());
    reply /= r;
    reply /= Tins::RawPDU(req.rfind_pdu<Tins::RawPDU>().payload());
    return reply.serialize();
  }
  Tins::IP req(request.data(), static_cast<std::uint32_t>(request.size()));
  const auto& icmp = req.rfind_pdu<Tins::ICMP>();
  Tins::IP reply(req.src_addr(), req.dst_addr());
  reply.ttl(57);
  Tins::ICMP r(Tins::ICMP::ECHO_REPLY);
  r.id(icmp.id());
  r.sequence(icmp.sequence());
  reply /= r;
  reply /= Tins::RawPDU(req.rfind_pdu<Tins::RawPDU>().payload());
  return reply.serialize();
}

// The target's SYN-ACK (or RST-ACK) to one of our SYNs: acknowledges its ISN + 1.
inline Bytes tcp_answer(const Bytes& syn, bool rst = false) {
  Tins::IP req(syn.data(), static_cast<std::uint32_t>(syn.size()));
  const auto& tcp = req.rfind_pdu<Tins::TCP>();
  Tins::IP reply(req.src_addr(), req.dst_addr());
  reply.ttl(57);
  Tins::TCP t(tcp.sport(), tcp.dport());
  t.flags(rst ? (Tins::TCP::RST | Tins::TCP::ACK) : (Tins::TCP::SYN | Tins::TCP::ACK));
  t.seq(0x5eed0001);
  t.ack_seq(tcp.seq() + 1);
  reply /= t;
  return reply.serialize();
}

}  // namespace forge_lab
