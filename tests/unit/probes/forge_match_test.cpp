// Answers an off-path host forges: ICMP errors quoting a datagram that looks
// like our echo request but is not (its checksum does not cover our cookie),
// source quench, and the identifiers of our probes, which must not let one
// probe's fields predict the next's.

#include <catch2/catch.hpp>

#include <cstdint>
#include <set>

#include "forge_lab.hpp"

using namespace forge_lab;
using outpost::ProbeStatus;

namespace {

// The request with another cookie in its payload and a checksum that fits
// it: a consistent echo request, only not the one we sent.
Bytes with_other_cookie(Bytes request) {
  const std::size_t icmp = l4_offset(request);
  request.at(icmp + 8) ^= 0x5a;
  if (is_v6(request)) {
    Tins::IPv6 ip(request.data(), static_cast<std::uint32_t>(request.size()));
    return ip.serialize();  // libtins recomputes the ICMPv6 checksum
  }
  request.at(icmp + 2) = request.at(icmp + 3) = 0;
  Bytes message(request.begin() + static_cast<std::ptrdiff_t>(icmp), request.end());
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < message.size(); i += 2)
    sum += static_cast<std::uint16_t>(message[i] << 8 | (i + 1 < message.size() ? message[i + 1] : 0));
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  request.at(icmp + 2) = static_cast<std::uint8_t>(~sum >> 8);
  request.at(icmp + 3) = static_cast<std::uint8_t>(~sum);
  return request;
}

}  // namespace

TEST_CASE("forge: an ICMP error quoting our echo's fields with the wrong checksum is ignored", "[forge]") {
  const bool v6 = GENERATE(false, true);
  INFO((v6 ? "IPv6" : "IPv4"));
  Lab lab;
  lab.launch_echo(v6 ? kTarget6 : kTarget);
  const Bytes request = lab.sent();
  const IpAddress router = v6 ? addr("2001:db8:1::1") : kRouter;
  const int unreachable = v6 ? 1 : 3;

  SECTION("a checksum computed over another cookie, the whole datagram quoted") {
    lab.capture(icmp_error(router, with_other_cookie(request), unreachable, 1));
  }
  SECTION("a checksum computed over another cookie, 8 transport bytes quoted") {
    lab.capture(icmp_error(router, head(with_other_cookie(request), l4_offset(request) + 8), unreachable, 1));
  }
  SECTION("the checksum field altered, 8 transport bytes quoted") {
    Bytes forged = head(request, l4_offset(request) + 8);
    forged.at(l4_offset(request) + 3) ^= 0x01;
    lab.capture(icmp_error(router, forged, unreachable, 1));
  }
  CHECK(lab.calls[0].empty());
  CHECK(lab.engine.in_flight() == 1);
  CHECK(lab.engine.stats().spoofed == 1);

  // The genuine error, quoting 8 bytes of our ICMP header, still counts.
  lab.capture(icmp_error(router, head(request, l4_offset(request) + 8), unreachable, 1));
  CHECK(lab.result().status == ProbeStatus::unreachable);
  CHECK(lab.result().reply_from == router);
}

TEST_CASE("forge: source quench is ignored, not taken for unreachable", "[forge]") {
  Lab lab;
  SECTION("echo") {
    lab.launch_echo(kTarget);
  }
  SECTION("tcp syn") {
    lab.launch(std::make_unique<outpost::TcpSynProbe>(kTarget, 80, std::chrono::seconds(1)));
  }
  const Bytes probe = lab.sent();
  lab.capture(icmp_error(kRouter, probe, 4, 0));
  CHECK(lab.calls[0].empty());
  CHECK(lab.engine.in_flight() == 1);
  CHECK(lab.engine.stats().answered == 0);

  // The real answer still ends the probe.
  lab.capture(proto_of(probe) == IPPROTO_TCP ? tcp_answer(probe) : echo_reply(probe));
  CHECK(lab.result().status == ProbeStatus::reply);
}

TEST_CASE("forge: an ICMP error quoting our SYN with another sequence number is ignored", "[forge]") {
  Lab lab;
  lab.launch(std::make_unique<outpost::TcpSynProbe>(kTarget, 80, std::chrono::seconds(1)));
  Bytes forged = head(lab.sent(), 28);
  forged.at(27) ^= 0x01;  // the last byte of the quoted sequence number
  lab.capture(icmp_error(kRouter, forged, 3, 1));
  CHECK(lab.calls[0].empty());
  CHECK(lab.engine.stats().spoofed == 1);
  lab.capture(icmp_error(kRouter, head(lab.sent(), 28), 3, 1));
  CHECK(lab.result().status == ProbeStatus::unreachable);
}

// What an off-path host sees of a probe it received (one to itself) must not
// tell it the next probe's identity. A counter or a fixed field would: the
// differences between consecutive probes would repeat.
TEST_CASE("forge: idents, sequences and IP IDs differ unpredictably across probes", "[forge]") {
  Lab lab;
  constexpr int kProbes = 64;
  for (int i = 0; i < kProbes; ++i) lab.launch_echo(kTarget);
  REQUIRE(lab.wire.sent.size() == kProbes);
  std::set<std::uint16_t> idents, sequences, ip_ids;
  std::set<std::uint16_t> ident_steps, sequence_steps, ip_id_steps;
  outpost::DecodedPacket previous = decode(lab.sent(0));
  for (int i = 0; i < kProbes; ++i) {
    const auto p = decode(lab.sent(static_cast<std::size_t>(i)));
    idents.insert(p.l4.icmp_id);
    sequences.insert(p.l4.icmp_seq);
    ip_ids.insert(p.ip.id);
    if (i > 0) {
      ident_steps.insert(static_cast<std::uint16_t>(p.l4.icmp_id - previous.l4.icmp_id));
      sequence_steps.insert(static_cast<std::uint16_t>(p.l4.icmp_seq - previous.l4.icmp_seq));
      ip_id_steps.insert(static_cast<std::uint16_t>(p.ip.id - previous.ip.id));
    }
    previous = p;
  }
  // 16 random bits, 64 draws: a repeat or two at most, never a pattern.
  CHECK(idents.size() >= kProbes - 4);
  CHECK(sequences.size() >= kProbes - 4);
  CHECK(ip_ids.size() >= kProbes - 4);
  CHECK(ident_steps.size() >= kProbes - 5);
  CHECK(sequence_steps.size() >= kProbes - 5);
  CHECK(ip_id_steps.size() >= kProbes - 5);

  // And each still gets its own reply.
  lab.capture(echo_reply(lab.sent(17)));
  CHECK(lab.result(17).status == ProbeStatus::reply);
  CHECK(lab.engine.in_flight() == kProbes - 1);
}

TEST_CASE("forge: two engines do not share their idents, sequences or cookies", "[forge]") {
  Lab a, b;
  a.launch_echo(kTarget);
  b.launch_echo(kTarget);
  const auto pa = decode(a.sent()), pb = decode(b.sent());
  const bool same_fields = pa.l4.icmp_id == pb.l4.icmp_id && pa.l4.icmp_seq == pb.l4.icmp_seq;
  CHECK_FALSE(same_fields);
  // Even the same fields would carry other cookies: each engine has its own key.
  CHECK(Bytes(a.sent().end() - 56, a.sent().end() - 48) != Bytes(b.sent().end() - 56, b.sent().end() - 48));
}

namespace {

// A probe that only draws numbers from the engine, as the DNS probe draws its query id.
class DrawingProbe final : public outpost::Probe {
 public:
  explicit DrawingProbe(std::vector<std::uint16_t>& out) : out_(out) {}
  void start(outpost::ProbeContext& ctx) override {
    for (int i = 0; i < 64; ++i) out_.push_back(ctx.next_dns_id());
    result_.status = ProbeStatus::error;
  }
  void on_sent(WallTime) override {}
  bool on_packet(const outpost::DecodedPacket&, WallTime) override { return false; }
  void on_timeout() override {}
  bool finished() const override { return true; }
  const ProbeResult& result() const override { return result_; }

 private:
  std::vector<std::uint16_t>& out_;
  ProbeResult result_;
};

}  // namespace

TEST_CASE("forge: DNS ids from the engine follow no counter", "[forge]") {
  Lab lab;
  std::vector<std::uint16_t> ids;
  lab.launch(std::make_unique<DrawingProbe>(ids));
  REQUIRE(ids.size() == 64);
  std::set<std::uint16_t> distinct(ids.begin(), ids.end()), steps;
  for (std::size_t i = 1; i < ids.size(); ++i) steps.insert(static_cast<std::uint16_t>(ids[i] - ids[i - 1]));
  CHECK(distinct.size() >= 60);
  CHECK(steps.size() >= 59);
}
