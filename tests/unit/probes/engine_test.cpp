// The engine's demux, driven through a fake Wire and a fake clock: ICMP echo
// probes launched, their datagrams taken off the fake wire, answers built from
// them and captured back with chosen kernel stamps. Every way a frame can
// match (or not match) a probe, and every probe's callback exactly once.

#include <pcap/dlt.h>
#include <tins/tins.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clock.hpp"
#include "engine.hpp"
#include "icmp_echo.hpp"
#include "wire.hpp"

using namespace std::chrono_literals;
using outpost::DecodedPacket;
using outpost::Duration;
using outpost::Engine;
using outpost::IpAddress;
using outpost::ProbeResult;
using outpost::ProbeStatus;
using outpost::WallTime;

namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr std::uint16_t kIdent = 0x1234;
const IpAddress kUs = *IpAddress::parse("198.19.0.1");
const IpAddress kTarget = *IpAddress::parse("198.18.0.1");
const IpAddress kOtherTarget = *IpAddress::parse("198.18.0.2");
const IpAddress kRouter = *IpAddress::parse("198.18.0.254");
const IpAddress kUs6 = *IpAddress::parse("2001:db8::1");
const IpAddress kTarget6 = *IpAddress::parse("2001:db8:ffff::2");

// The wire, without sockets: a fixed source, a record of what was sent, and
// the engine's frame handler kept so the test can capture frames "back".
class FakeWire final : public outpost::Wire {
 public:
  struct Sent {
    IpAddress dst;
    Bytes datagram;
  };
  std::vector<Sent> sent;
  std::string prepare_error;
  std::string send_error;

  IpAddress prepare(const IpAddress& dst, std::string* error) override {
    if (!prepare_error.empty()) {
      if (error) *error = prepare_error;
      return {};
    }
    return dst.is_v6() ? kUs6 : kUs;
  }
  bool send(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string* error) override {
    if (!send_error.empty()) {
      if (error) *error = send_error;
      return false;
    }
    sent.push_back({dst, Bytes(datagram.begin(), datagram.end())});
    return true;
  }
  void set_frame_handler(FrameHandler handler) override { handler_ = std::move(handler); }
  // As a wire whose answer came without a kernel stamp (timed by the wall clock).
  bool user_clock = false;
  bool frame_from_user_clock() const override { return user_clock; }

  // As a wire with a sending thread: datagrams queued with tickets 1, 2, ...;
  // `left` of them have gone; fail() reports the failure of the n-th.
  bool queueing = false;
  std::vector<std::uint64_t> tokens;
  std::uint64_t left = 0;
  bool send_queued(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::uint64_t token,
                   std::uint64_t* ticket, std::string* error) override {
    *ticket = 0;
    if (!queueing) return send(dst, datagram, error);
    sent.push_back({dst, Bytes(datagram.begin(), datagram.end())});
    tokens.push_back(token);
    *ticket = tokens.size();
    return true;
  }
  bool waiting(std::uint64_t ticket) const override { return ticket > left; }
  void set_send_failure_handler(SendFailureHandler handler) override { failed_ = std::move(handler); }
  void fail(std::size_t n, const std::string& error) {
    REQUIRE(failed_);
    failed_(tokens.at(n), error);
  }

  void capture(int link_type, const Bytes& frame, WallTime stamp) {
    REQUIRE(handler_);
    handler_(link_type, frame.data(), frame.size(), stamp);
  }

  // Frames in the capture ring that the loop has not read yet: drain hands
  // them on, as the real capture's would.
  struct Pending {
    int link_type;
    Bytes frame;
    WallTime stamp;
  };
  std::deque<Pending> ring;
  int drains = 0;
  int drain(int max_frames) override {
    ++drains;
    int n = 0;
    for (; n < max_frames && !ring.empty(); ++n) {
      const Pending p = ring.front();
      ring.pop_front();
      capture(p.link_type, p.frame, p.stamp);
    }
    return n;
  }

 private:
  FrameHandler handler_;
  SendFailureHandler failed_;
};

// The engine on a fake wire and a fake clock, and every callback it makes.
struct Lab {
  outpost::FakeClock clock;
  FakeWire wire;
  Engine engine{clock, wire, outpost::FilterParams{kIdent}};
  std::deque<std::vector<ProbeResult>> calls;  // per launched probe

  // Launches an echo probe; returns its index in `calls`.
  std::size_t launch(const IpAddress& target, Duration timeout = 1s) {
    const std::size_t i = calls.size();
    calls.emplace_back();
    engine.launch(std::make_unique<outpost::IcmpEchoProbe>(target, timeout),
                  [this, i](const ProbeResult& r) { calls[i].push_back(r); });
    return i;
  }
  // The datagram the i-th send put on the wire.
  const Bytes& sent(std::size_t i = 0) {
    REQUIRE(wire.sent.size() > i);
    return wire.sent[i].datagram;
  }
  void capture(const Bytes& datagram, WallTime stamp) { wire.capture(DLT_RAW, datagram, stamp); }
  // The single result of probe i (its callback must have run exactly once).
  const ProbeResult& result(std::size_t i = 0) {
    REQUIRE(calls.at(i).size() == 1);
    return calls[i][0];
  }
};

DecodedPacket decode(const Bytes& datagram) {
  auto p = outpost::decode_ip(datagram.data(), datagram.size(), nullptr);
  REQUIRE(p);
  return *p;
}

Tins::IPv4Address tins4(const IpAddress& a) { return Tins::IPv4Address(a.to_string()); }

Bytes ethernet(const Bytes& datagram) {
  const std::uint8_t type_hi = (datagram.at(0) >> 4) == 6 ? 0x86 : 0x08;
  const std::uint8_t type_lo = (datagram.at(0) >> 4) == 6 ? 0xdd : 0x00;
  const Bytes header = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, type_hi, type_lo};
  // Sized once and copied into: g++ 12 misreads insert() after a list (-Warray-bounds).
  Bytes f(header.size() + datagram.size());
  std::copy(header.begin(), header.end(), f.begin());
  std::copy(datagram.begin(), datagram.end(), f.begin() + static_cast<std::ptrdiff_t>(header.size()));
  return f;
}

struct ReplyTweak {
  int sequence_delta = 0;
  std::optional<std::uint16_t> ident = std::nullopt;  // the request's when unset
  bool wrong_cookie = false;
  int extra_payload = 0;
};

// What the target answers to `request`: addresses swapped, echo reply, the
// same identifier, sequence and payload (so the cookie comes back).
Bytes echo_reply(const Bytes& request, ReplyTweak tweak = {}) {
  const auto seq = [&](std::uint16_t s) { return static_cast<std::uint16_t>(s + tweak.sequence_delta); };
  auto payload_of = [&](const Tins::PDU& pdu) {
    Bytes payload = pdu.rfind_pdu<Tins::RawPDU>().payload();
    if (tweak.wrong_cookie) payload.at(5) ^= 0x40;
    payload.resize(payload.size() + static_cast<std::size_t>(tweak.extra_payload), 0x2a);
    return payload;
  };
  if ((request.at(0) >> 4) == 6) {
    Tins::IPv6 req(request.data(), static_cast<std::uint32_t>(request.size()));
    const auto& icmp = req.rfind_pdu<Tins::ICMPv6>();
    Tins::IPv6 reply(req.src_addr(), req.dst_addr());
    reply.hop_limit(57);
    Tins::ICMPv6 r(Tins::ICMPv6::ECHO_REPLY);
    r.identifier(tweak.ident.value_or(icmp.identifier()));
    r.sequence(seq(icmp.sequence()));
    reply /= r;
    reply /= Tins::RawPDU(payload_of(req));
    return reply.serialize();
  }
  Tins::IP req(request.data(), static_cast<std::uint32_t>(request.size()));
  const auto& icmp = req.rfind_pdu<Tins::ICMP>();
  Tins::IP reply(req.src_addr(), req.dst_addr());
  reply.ttl(57);
  reply.id(0x7001);
  Tins::ICMP r(Tins::ICMP::ECHO_REPLY);
  r.id(tweak.ident.value_or(icmp.id()));
  r.sequence(seq(icmp.sequence()));
  reply /= r;
  reply /= Tins::RawPDU(payload_of(req));
  return reply.serialize();
}

// An ICMP error from `from` quoting the first quote_len bytes of `request`.
Bytes icmp_error(const IpAddress& from, const Bytes& request, int type, int code, std::size_t quote_len = 28) {
  const Bytes quote(request.begin(), request.begin() + static_cast<std::ptrdiff_t>(std::min(quote_len, request.size())));
  Tins::IP err(tins4(kUs), tins4(from));
  err.ttl(250);
  Tins::ICMP icmp(static_cast<Tins::ICMP::Flags>(type));
  icmp.code(static_cast<std::uint8_t>(code));
  err /= icmp;
  err /= Tins::RawPDU(quote);
  return err.serialize();
}

}  // namespace

TEST_CASE("engine: a probe goes out on the wire as our echo request", "[engine]") {
  Lab lab;
  lab.launch(kTarget, 2s);
  REQUIRE(lab.wire.sent.size() == 1);
  CHECK(lab.wire.sent[0].dst == kTarget);
  const auto p = decode(lab.sent());
  CHECK(p.ip.src == kUs);
  CHECK(p.ip.dst == kTarget);
  CHECK(p.ip.ttl == 64);
  CHECK(p.l4.icmp_type == 8);
  CHECK(p.payload_size == 56);
  CHECK(lab.engine.in_flight() == 1);
  CHECK(lab.engine.next_deadline() == lab.clock.now() + 2s);
  CHECK(lab.calls[0].empty());
  CHECK(lab.engine.stats().launched == 1);
  CHECK(lab.engine.stats().sent == 1);
}

TEST_CASE("engine: a reply gives the RTT between the two kernel stamps", "[engine]") {
  Lab lab;
  lab.launch(kTarget);
  const Bytes request = lab.sent();
  const std::uint16_t sequence = decode(request).l4.icmp_seq;
  const WallTime t0 = lab.clock.wall() + 40us;  // the kernel stamps the request a little after the send call

  SECTION("raw IP frames") {
    lab.capture(request, t0);  // the capture sees our request leave
    lab.clock.advance(250us);
    lab.capture(echo_reply(request), t0 + 250us);
  }
  SECTION("Ethernet frames, through the wire's frame handler") {
    lab.wire.capture(DLT_EN10MB, ethernet(request), t0);
    lab.clock.advance(250us);
    lab.wire.capture(DLT_EN10MB, ethernet(echo_reply(request)), t0 + 250us);
  }

  const ProbeResult& r = lab.result();
  CHECK(r.status == ProbeStatus::reply);
  REQUIRE(r.rtt);
  CHECK(*r.rtt == 250us);
  CHECK(r.sent == t0);
  CHECK(r.sent_kernel_stamp);
  CHECK(r.rtt_clock.empty());  // kernel stamps at both ends
  CHECK(r.target == kTarget);
  CHECK(r.reply_from == kTarget);
  CHECK(r.reply_ttl == 57);
  CHECK(r.icmp_type == 0);
  CHECK(r.icmp_code == 0);
  CHECK(r.sequence == sequence);
  CHECK(r.error.empty());
  CHECK(lab.engine.in_flight() == 0);

  auto s = lab.engine.stats();
  CHECK(s.captured == 2);
  CHECK(s.answered == 1);
  CHECK(s.tx_stamp_missing == 0);
  CHECK(s.spoofed + s.stray + s.foreign + s.malformed + s.duplicate + s.late == 0);

  // The same reply again (a duplicating link): counted, no second callback.
  lab.capture(echo_reply(request), t0 + 400us);
  s = lab.engine.stats();
  CHECK(s.duplicate == 1);
  CHECK(s.stray == 0);
  CHECK(lab.calls[0].size() == 1);

  // Our own request seen again after the probe is over: not news, not counted.
  lab.capture(request, t0 + 500us);
  CHECK(lab.engine.stats().stray == 0);
  CHECK(lab.calls[0].size() == 1);
}

TEST_CASE("engine: the first stamp of the outgoing request counts (loopback shows it twice)", "[engine]") {
  Lab lab;
  lab.launch(kTarget);
  const Bytes request = lab.sent();
  const WallTime t0 = lab.clock.wall() + 10us;
  lab.capture(request, t0);
  lab.capture(request, t0 + 3us);
  lab.capture(echo_reply(request), t0 + 100us);
  REQUIRE(lab.result().rtt);
  CHECK(*lab.result().rtt == 100us);
  CHECK(lab.result().sent == t0);
}

TEST_CASE("engine: an answer in time but not yet read when the deadline passes is still an answer", "[engine]") {
  Lab lab;
  const WallTime t0 = lab.clock.wall();
  lab.launch(kTarget, 1s);
  lab.launch(kOtherTarget, 1s);
  lab.capture(lab.sent(0), t0);
  lab.capture(lab.sent(1), t0);
  // Both answers reach the host within the timeout, the second after it;
  // the loop was busy and reads neither before the deadline.
  lab.wire.ring.push_back({DLT_RAW, echo_reply(lab.sent(0)), t0 + 300ms});
  lab.wire.ring.push_back({DLT_RAW, echo_reply(lab.sent(1)), t0 + 1200ms});
  // A third, answered at once: its deadline passing times nothing out.
  lab.launch(kRouter, 500ms);
  lab.capture(lab.sent(2), t0);
  lab.capture(echo_reply(lab.sent(2)), t0 + 1ms);
  CHECK(lab.result(2).status == ProbeStatus::reply);
  lab.clock.advance(999ms);
  lab.engine.expire(lab.clock.now());
  CHECK(lab.wire.drains == 0);  // nothing to time out: the ring is left to the loop
  lab.clock.advance(300ms);
  lab.engine.expire(lab.clock.now());
  CHECK(lab.wire.drains == 1);
  CHECK(lab.wire.ring.empty());
  CHECK(lab.result(0).status == ProbeStatus::reply);
  CHECK(*lab.result(0).rtt == 300ms);
  CHECK(lab.result(1).status == ProbeStatus::timeout);
  const auto s = lab.engine.stats();
  CHECK(s.answered == 2);
  CHECK(s.timeouts == 1);
  CHECK(s.late == 1);
}

TEST_CASE("engine: no reply by the deadline is a timeout, a reply after it is late", "[engine]") {
  Lab lab;
  lab.launch(kTarget, 1s);
  const Bytes request = lab.sent();
  lab.capture(request, lab.clock.wall());

  lab.clock.advance(999ms);
  lab.engine.expire(lab.clock.now());
  CHECK(lab.calls[0].empty());
  CHECK(lab.engine.in_flight() == 1);

  lab.clock.advance(1ms);
  lab.engine.expire(lab.clock.now());
  const ProbeResult& r = lab.result();
  CHECK(r.status == ProbeStatus::timeout);
  CHECK_FALSE(r.rtt);
  CHECK(r.sent_kernel_stamp);
  CHECK_FALSE(r.reply_from);
  CHECK(lab.engine.in_flight() == 0);
  CHECK_FALSE(lab.engine.next_deadline());
  CHECK(lab.engine.stats().timeouts == 1);
  CHECK(lab.engine.stats().answered == 0);

  lab.clock.advance(500ms);
  lab.capture(echo_reply(request), lab.clock.wall());
  CHECK(lab.engine.stats().late == 1);
  CHECK(lab.engine.stats().duplicate == 0);
  CHECK(lab.calls[0].size() == 1);

  // Long after (EngineOptions::remember_finished, 30 s), the probe is forgotten.
  lab.clock.advance(31s);
  lab.engine.expire(lab.clock.now());
  lab.capture(echo_reply(request), lab.clock.wall());
  CHECK(lab.engine.stats().late == 1);
  CHECK(lab.engine.stats().stray == 1);
  CHECK(lab.calls[0].size() == 1);
}

TEST_CASE("engine: a reply for a sequence never sent is stray", "[engine]") {
  Lab lab;
  lab.launch(kTarget);
  const Bytes request = lab.sent();
  lab.capture(echo_reply(request, {.sequence_delta = 1000}), lab.clock.wall() + 1ms);
  CHECK(lab.engine.stats().stray == 1);
  CHECK(lab.engine.in_flight() == 1);
  CHECK(lab.calls[0].empty());
  // The probe is untouched: its own reply still ends it.
  lab.capture(echo_reply(request), lab.clock.wall() + 2ms);
  CHECK(lab.result().status == ProbeStatus::reply);
}

TEST_CASE("engine: right id and sequence but not our payload is spoofed", "[engine]") {
  Lab lab;
  lab.launch(kTarget, 1s);
  const Bytes request = lab.sent();
  lab.capture(request, lab.clock.wall());

  SECTION("a wrong cookie") { lab.capture(echo_reply(request, {.wrong_cookie = true}), lab.clock.wall() + 1ms); }
  SECTION("the cookie, but a payload of another length") {
    lab.capture(echo_reply(request, {.extra_payload = 8}), lab.clock.wall() + 1ms);
  }
  CHECK(lab.engine.stats().spoofed == 1);
  CHECK(lab.engine.in_flight() == 1);  // still waiting for the real one
  CHECK(lab.calls[0].empty());

  lab.clock.advance(1s);
  lab.engine.expire(lab.clock.now());
  CHECK(lab.result().status == ProbeStatus::timeout);
  CHECK(lab.engine.stats().timeouts == 1);
}

TEST_CASE("engine: garbage is malformed, other traffic is foreign", "[engine]") {
  Lab lab;
  lab.launch(kTarget);
  const WallTime t = lab.clock.wall();

  lab.capture(Bytes{0x45, 0x00, 0x00}, t);
  lab.capture(Bytes(40, 0xff), t);
  lab.wire.capture(DLT_EN10MB, Bytes(10, 0), t);
  CHECK(lab.engine.stats().malformed == 3);

  {
    Tins::IP tcp(tins4(kUs), tins4(kTarget));
    tcp /= Tins::TCP(kIdent, 80);  // even aimed at a port numbered like our identifier
    lab.capture(tcp.serialize(), t);
  }
  lab.capture(echo_reply(lab.sent(), {.ident = static_cast<std::uint16_t>(decode(lab.sent()).l4.icmp_id + 1)}),
              t);  // someone else's ping: no probe of ours has its identifier
  {
    Tins::IP ts(tins4(kUs), tins4(kTarget));
    Tins::ICMP icmp(Tins::ICMP::TIMESTAMP_REPLY);
    icmp.id(kIdent);
    ts /= icmp;
    lab.capture(ts.serialize(), t);
  }
  {
    Tins::IP udp(tins4(kTarget), tins4(kUs));
    udp /= Tins::UDP(33434, 40000);
    lab.capture(icmp_error(kRouter, udp.serialize(), 11, 0), t);  // an error quoting not an echo
  }
  const auto s = lab.engine.stats();
  CHECK(s.foreign == 3);
  CHECK(s.stray == 1);  // echo identifiers are drawn per probe: the filter cannot tell others' replies
  CHECK(s.captured == 7);
  CHECK(s.spoofed + s.late + s.duplicate == 0);
  CHECK(lab.engine.in_flight() == 1);
  CHECK(lab.calls[0].empty());
}

TEST_CASE("engine: an ICMP error quoting our request ends the probe as unreachable", "[engine]") {
  Lab lab;
  lab.launch(kTarget);
  const Bytes request = lab.sent();
  const WallTime t0 = lab.clock.wall() + 20us;
  lab.capture(request, t0);

  SECTION("host unreachable from a router, quoting 28 bytes") {
    lab.capture(icmp_error(kRouter, request, 3, 1), t0 + 1500us);
    const ProbeResult& r = lab.result();
    CHECK(r.status == ProbeStatus::unreachable);
    CHECK(r.reply_from == kRouter);
    CHECK(r.reply_ttl == 250);
    CHECK(r.icmp_type == 3);
    CHECK(r.icmp_code == 1);
    CHECK(r.error == "host unreachable");
    REQUIRE(r.rtt);
    CHECK(*r.rtt == 1500us);
  }
  SECTION("administratively prohibited, quoting the whole request") {
    lab.capture(icmp_error(kTarget, request, 3, 13, request.size()), t0 + 1ms);
    CHECK(lab.result().status == ProbeStatus::unreachable);
    CHECK(lab.result().reply_from == kTarget);
    CHECK(lab.result().error == "communication administratively prohibited");
  }
  SECTION("time to live exceeded in transit") {
    lab.capture(icmp_error(kRouter, request, 11, 0), t0 + 1ms);
    CHECK(lab.result().status == ProbeStatus::unreachable);
    CHECK(lab.result().icmp_type == 11);
    CHECK(lab.result().error == "time to live exceeded");
  }
  CHECK(lab.engine.stats().answered == 1);
  CHECK(lab.engine.in_flight() == 0);

  // The reply arriving after all: the probe has its answer.
  lab.capture(echo_reply(request), t0 + 5ms);
  CHECK(lab.engine.stats().duplicate == 1);
  CHECK(lab.calls[0].size() == 1);
}

TEST_CASE("engine: an ICMP error quoting a request we did not send as such is spoofed", "[engine]") {
  Lab lab;
  lab.launch(kTarget);
  const Bytes request = lab.sent();
  Bytes forged = request;  // our destination, identifier and sequence ...
  SECTION("another source address") { forged[15] ^= 0x01; }
  SECTION("another IP identifier") { forged[5] ^= 0x01; }
  lab.capture(icmp_error(kRouter, forged, 3, 1), lab.clock.wall() + 1ms);
  CHECK(lab.engine.stats().spoofed == 1);
  CHECK(lab.engine.in_flight() == 1);
  CHECK(lab.calls[0].empty());

  lab.capture(echo_reply(request), lab.clock.wall() + 2ms);
  CHECK(lab.result().status == ProbeStatus::reply);
}

TEST_CASE("engine: without the outgoing copy the RTT falls back to the wall clock at send", "[engine]") {
  Lab lab;
  const WallTime at_send = lab.clock.wall();
  lab.launch(kTarget);
  lab.capture(echo_reply(lab.sent()), at_send + 300us);
  const ProbeResult& r = lab.result();
  CHECK(r.status == ProbeStatus::reply);
  CHECK_FALSE(r.sent_kernel_stamp);
  CHECK(r.sent == at_send);
  REQUIRE(r.rtt);
  CHECK(*r.rtt == 300us);
  CHECK(r.rtt_clock == "kernel_rx");
  CHECK(lab.engine.stats().tx_stamp_missing == 1);
  CHECK(lab.engine.stats().rx_stamp_missing == 0);
}

TEST_CASE("engine: an answer without a kernel stamp is taken, and its record says its clock", "[engine]") {
  Lab lab;
  const WallTime t0 = lab.clock.wall();
  lab.launch(kTarget);
  const Bytes request = lab.sent();
  SECTION("the send stamped by the kernel, the answer by the wall clock") {
    lab.capture(request, t0);
    lab.wire.user_clock = true;
    lab.capture(echo_reply(request), t0 + 400us);
    lab.wire.user_clock = false;
    const ProbeResult& r = lab.result();
    CHECK(r.status == ProbeStatus::reply);
    REQUIRE(r.rtt);
    CHECK(*r.rtt == 400us);
    CHECK(r.rtt_clock == "kernel_tx");
    CHECK(lab.engine.stats().rx_stamp_missing == 1);
    CHECK(lab.engine.stats().tx_stamp_missing == 0);
  }
  SECTION("neither end stamped by the kernel") {
    lab.wire.user_clock = true;
    lab.capture(echo_reply(request), t0 + 400us);
    lab.wire.user_clock = false;
    CHECK(lab.result().rtt_clock == "user");
    CHECK(lab.engine.stats().rx_stamp_missing == 1);
    CHECK(lab.engine.stats().tx_stamp_missing == 1);
  }
  // The next probe, answered with kernel stamps, says nothing: the slot forgot.
  const std::size_t next = lab.launch(kTarget);
  const Bytes again = lab.sent(1);
  lab.capture(again, t0 + 1ms);
  lab.capture(echo_reply(again), t0 + 1ms + 100us);
  CHECK(lab.result(next).status == ProbeStatus::reply);
  CHECK(lab.result(next).rtt_clock.empty());
}

TEST_CASE("engine: failures before the wire are results with status error", "[engine]") {
  Lab lab;
  SECTION("the send fails") {
    lab.wire.send_error = "sendto 198.18.0.1: Network is unreachable";
    lab.launch(kTarget);
    CHECK(lab.result().error == "sendto 198.18.0.1: Network is unreachable");
    CHECK(lab.engine.stats().send_errors == 1);
  }
  SECTION("no route, no source address") {
    lab.wire.prepare_error = "no route to 198.18.0.1";
    lab.launch(kTarget);
    CHECK(lab.result().error == "no route to 198.18.0.1");
    CHECK(lab.engine.stats().send_errors == 0);
  }
  // Called back at once, from inside launch.
  CHECK(lab.result().status == ProbeStatus::error);
  CHECK_FALSE(lab.result().rtt);
  CHECK(lab.wire.sent.empty());
  CHECK(lab.engine.in_flight() == 0);
  CHECK_FALSE(lab.engine.next_deadline());
  const auto s = lab.engine.stats();
  CHECK(s.launched == 1);
  CHECK(s.sent == 0);
  CHECK(s.answered == 0);
  CHECK(s.timeouts == 0);

  // The engine carries on: the next probe works.
  lab.wire.send_error.clear();
  lab.wire.prepare_error.clear();
  const std::size_t next = lab.launch(kTarget);
  lab.capture(echo_reply(lab.sent()), lab.clock.wall() + 1ms);
  CHECK(lab.result(next).status == ProbeStatus::reply);
}

TEST_CASE("engine: many probes in flight each get their own answer, exactly once", "[engine]") {
  Lab lab;
  const std::vector<IpAddress> targets = {kTarget, kTarget, kOtherTarget, kTarget6};
  for (const auto& t : targets) lab.launch(t, 1s);
  REQUIRE(lab.wire.sent.size() == targets.size());
  CHECK(lab.engine.in_flight() == targets.size());
  // Two probes to one address at once: told apart by their sequence numbers.
  CHECK(decode(lab.sent(0)).l4.icmp_seq != decode(lab.sent(1)).l4.icmp_seq);

  const WallTime t0 = lab.clock.wall();
  for (std::size_t i = 0; i < targets.size(); ++i) lab.capture(lab.sent(i), t0 + 1us * i);
  // Answers in reverse order; probe 2 gets none.
  lab.capture(echo_reply(lab.sent(3)), t0 + 900us);
  lab.capture(icmp_error(kRouter, lab.sent(1), 3, 1), t0 + 800us);
  lab.capture(echo_reply(lab.sent(0)), t0 + 700us);
  lab.clock.advance(1s);
  lab.engine.expire(lab.clock.now());

  CHECK(lab.result(0).status == ProbeStatus::reply);
  CHECK(*lab.result(0).rtt == 700us);
  CHECK(lab.result(1).status == ProbeStatus::unreachable);
  CHECK(*lab.result(1).rtt == 799us);
  CHECK(lab.result(2).status == ProbeStatus::timeout);
  CHECK(lab.result(2).target == kOtherTarget);
  CHECK(lab.result(3).status == ProbeStatus::reply);
  CHECK(lab.result(3).target == kTarget6);
  CHECK(lab.result(3).reply_from == kTarget6);
  CHECK(*lab.result(3).rtt == 897us);

  const auto s = lab.engine.stats();
  CHECK(s.launched == 4);
  CHECK(s.answered == 3);
  CHECK(s.timeouts == 1);
  CHECK(s.spoofed + s.stray + s.late + s.duplicate + s.foreign + s.malformed == 0);
  CHECK(lab.engine.in_flight() == 0);
}

TEST_CASE("engine: IPv6 echo, replies and cookies", "[engine]") {
  Lab lab;
  lab.launch(kTarget6);
  const Bytes request = lab.sent();
  const auto p = decode(request);
  CHECK(p.ip.src == kUs6);
  CHECK(p.ip.dst == kTarget6);
  CHECK(p.l4.proto == 58);
  CHECK(p.l4.icmp_type == 128);

  const WallTime t0 = lab.clock.wall() + 5us;
  lab.wire.capture(DLT_EN10MB, ethernet(request), t0);
  lab.capture(echo_reply(request, {.wrong_cookie = true}), t0 + 100us);
  CHECK(lab.engine.stats().spoofed == 1);
  lab.wire.capture(DLT_EN10MB, ethernet(echo_reply(request)), t0 + 250us);
  CHECK(lab.result().status == ProbeStatus::reply);
  CHECK(*lab.result().rtt == 250us);
  CHECK(lab.result().sent_kernel_stamp);
}

TEST_CASE("engine: a callback may launch the next probe", "[engine]") {
  Lab lab;
  int launched_from_callback = 0;
  std::vector<ProbeStatus> statuses;
  std::function<void(const ProbeResult&)> again = [&](const ProbeResult& r) {
    statuses.push_back(r.status);
    if (launched_from_callback++ < 2)
      lab.engine.launch(std::make_unique<outpost::IcmpEchoProbe>(kTarget, 1s), again);
  };
  lab.engine.launch(std::make_unique<outpost::IcmpEchoProbe>(kTarget, 1s), again);
  lab.capture(echo_reply(lab.sent(0)), lab.clock.wall() + 1ms);  // answers #1, launches #2
  REQUIRE(lab.wire.sent.size() == 2);
  lab.clock.advance(1s);
  lab.engine.expire(lab.clock.now());  // #2 times out, launches #3
  REQUIRE(lab.wire.sent.size() == 3);
  lab.capture(echo_reply(lab.sent(2)), lab.clock.wall() + 1ms);
  CHECK(statuses == std::vector<ProbeStatus>{ProbeStatus::reply, ProbeStatus::timeout, ProbeStatus::reply});
  CHECK(lab.engine.in_flight() == 0);
  CHECK(lab.engine.stats().launched == 3);
}

namespace {
// A probe on an ordinary socket, as far as the engine sees it: it reports its
// own send, then finishes with a timeout.
class SocketSendProbe final : public outpost::Probe {
 public:
  explicit SocketSendProbe(bool ok) : ok_(ok) {}
  void start(outpost::ProbeContext& ctx) override {
    ctx.count_socket_send(ok_);
    if (!ok_) result_.status = ProbeStatus::error;
    finished_ = !ok_;
    if (ok_) ctx.arm_timeout(1s);
  }
  void on_sent(WallTime) override {}
  bool on_packet(const DecodedPacket&, WallTime) override { return false; }
  void on_timeout() override {
    result_.status = ProbeStatus::timeout;
    finished_ = true;
  }
  bool finished() const override { return finished_; }
  const ProbeResult& result() const override { return result_; }

 private:
  bool ok_;
  bool finished_ = false;
  ProbeResult result_;
};
}  // namespace

TEST_CASE("engine: probes on ordinary sockets count in sent and send_errors", "[engine]") {
  Lab lab;
  int done = 0;
  lab.engine.launch(std::make_unique<SocketSendProbe>(true), [&](const ProbeResult&) { ++done; });
  lab.engine.launch(std::make_unique<SocketSendProbe>(true), [&](const ProbeResult&) { ++done; });
  lab.engine.launch(std::make_unique<SocketSendProbe>(false), [&](const ProbeResult&) { ++done; });
  lab.clock.advance(1s);
  lab.engine.expire(lab.clock.now());
  CHECK(done == 3);
  CHECK(lab.engine.stats().sent == 2);
  CHECK(lab.engine.stats().send_errors == 1);
  CHECK(lab.wire.sent.empty());  // nothing went through the raw wire
}

TEST_CASE("engine: a probe that never left this host says so (local_error); a timeout does not", "[engine]") {
  Lab lab;
  lab.wire.send_error = "sendto 198.18.0.1: Network is unreachable";
  const auto sent_fail = lab.launch(kTarget);
  CHECK(lab.result(sent_fail).status == ProbeStatus::error);
  CHECK(lab.result(sent_fail).local_error);

  lab.wire.send_error.clear();
  lab.wire.prepare_error = "no route to 198.18.0.1";
  const auto no_route = lab.launch(kTarget);
  CHECK(lab.result(no_route).status == ProbeStatus::error);
  CHECK(lab.result(no_route).local_error);

  lab.wire.prepare_error.clear();
  const auto lost = lab.launch(kTarget, 1s);
  lab.clock.advance(2s);
  lab.engine.expire(lab.clock.now());
  CHECK(lab.result(lost).status == ProbeStatus::timeout);
  CHECK_FALSE(lab.result(lost).local_error);
}

TEST_CASE("engine: an answer stamped after the probe's deadline is late, however late the loop reads it",
          "[engine]") {
  Lab lab;
  const auto i = lab.launch(kTarget, 1s);
  const auto j = lab.launch(kTarget, 1s);
  REQUIRE(lab.wire.sent.size() == 2);
  // Both answers are read 3 s later (a stalled loop), before expire runs:
  // the first arrived in time, the second after its deadline.
  const WallTime start = lab.clock.wall();
  const auto reply_i = echo_reply(lab.sent(0));
  const auto reply_j = echo_reply(lab.sent(1));
  lab.clock.advance(3s);
  lab.capture(reply_i, start + 200ms);
  lab.capture(reply_j, start + 1500ms);
  CHECK(lab.result(i).status == ProbeStatus::reply);
  CHECK(lab.result(j).status == ProbeStatus::timeout);
  CHECK(lab.engine.stats().late == 1);
}

TEST_CASE("engine: the wall clock set forward while probes are out: no answer late, no RTT a day long, no wait a day long",
          "[engine][clock]") {
  const bool queued = GENERATE(false, true);
  INFO((queued ? "j's packet leaves after the step (a sending thread behind)" : "j sent in place"));
  Lab lab;
  lab.wire.queueing = queued;
  const WallTime t0 = lab.clock.wall();
  const auto i = lab.launch(kTarget, 1s);
  const auto j = lab.launch(kOtherTarget, 1s);
  if (queued) lab.wire.left = 1;
  lab.capture(lab.sent(0), t0);  // i left before the step
  if (!queued) lab.capture(lab.sent(1), t0);
  lab.clock.advance(100ms);
  lab.clock.step_wall(24h);  // a first NTP sync, say
  if (queued) {
    lab.wire.left = 2;
    lab.capture(lab.sent(1), lab.clock.wall());  // j left just after the step
  }
  lab.clock.advance(100ms);
  // i's answer, stamped after the step: 24 h after its send stamp.
  lab.capture(echo_reply(lab.sent(0)), lab.clock.wall());
  const ProbeResult& r = lab.result(i);
  CHECK(r.status == ProbeStatus::reply);
  CHECK(r.rtt == Duration(200ms));  // the steady clock's, from its launch
  CHECK(r.rtt_clock == "user");
  CHECK(lab.engine.stats().clock_stepped == 1);
  CHECK(lab.engine.stats().late == 0);
  // j, unanswered, times out within a second of the steady clock, not a day later.
  REQUIRE(lab.engine.next_deadline());
  CHECK(*lab.engine.next_deadline() <= lab.clock.now() + 1s);
  lab.clock.advance(1s);
  lab.engine.expire(lab.clock.now());
  CHECK(lab.result(j).status == ProbeStatus::timeout);
  CHECK(lab.engine.in_flight() == 0);
}

TEST_CASE("engine: the wall clock set back while a probe is out: no negative RTT", "[engine][clock]") {
  Lab lab;
  const auto i = lab.launch(kTarget, 1s);
  lab.capture(lab.sent(0), lab.clock.wall());
  lab.clock.advance(50ms);
  lab.clock.step_wall(-1h);
  lab.clock.advance(250ms);
  lab.capture(echo_reply(lab.sent(0)), lab.clock.wall());
  const ProbeResult& r = lab.result(i);
  CHECK(r.status == ProbeStatus::reply);
  REQUIRE(r.rtt);
  CHECK(*r.rtt == Duration(300ms));
  CHECK(r.rtt_clock == "user");
  CHECK(lab.engine.stats().clock_stepped == 1);
  // A probe out and back on one side of the step keeps its kernel RTT.
  const auto k = lab.launch(kTarget, 1s);
  const WallTime sent = lab.clock.wall();
  lab.capture(lab.sent(1), sent);
  lab.clock.advance(300ms);
  lab.capture(echo_reply(lab.sent(1)), sent + 7ms);  // stamped 7 ms after, read 300 ms after
  CHECK(*lab.result(k).rtt == Duration(7ms));
  CHECK(lab.result(k).rtt_clock.empty());
  CHECK(lab.engine.stats().clock_stepped == 1);
}

TEST_CASE("engine: the next deadline is that of a probe still running, never of one answered", "[engine]") {
  Lab lab;
  const WallTime t0 = lab.clock.wall();
  const outpost::SteadyTime s0 = lab.clock.now();
  CHECK_FALSE(lab.engine.next_deadline());
  lab.launch(kTarget, 1s);
  lab.launch(kOtherTarget, 3s);
  CHECK(lab.engine.next_deadline() == s0 + 1s);
  // The first is answered: an idle loop need not wake at its deadline.
  lab.capture(lab.sent(0), t0);
  lab.capture(echo_reply(lab.sent(0)), t0 + 1ms);
  CHECK(lab.result(0).status == ProbeStatus::reply);
  CHECK(lab.engine.next_deadline() == s0 + 3s);
  lab.capture(lab.sent(1), t0);
  lab.capture(echo_reply(lab.sent(1)), t0 + 2ms);
  CHECK_FALSE(lab.engine.next_deadline());
  // A slot used again keeps only its new probe's deadline.
  lab.clock.advance(10ms);
  lab.launch(kRouter, 500ms);
  CHECK(lab.engine.next_deadline() == s0 + 10ms + 500ms);
  lab.clock.advance(500ms);
  lab.engine.expire(lab.clock.now());
  CHECK(lab.result(2).status == ProbeStatus::timeout);
  CHECK_FALSE(lab.engine.next_deadline());
}

TEST_CASE("engine: settle_sends reads the capture only after a packet went out", "[engine]") {
  Lab lab;
  const WallTime t0 = lab.clock.wall();
  CHECK(lab.engine.settle_sends() == 0);
  CHECK(lab.wire.drains == 0);  // nothing sent: nothing to read back
  lab.launch(kTarget, 1s);
  // Our own copy and the answer are in the ring, not yet read.
  lab.wire.ring.push_back({DLT_RAW, lab.sent(0), t0});
  lab.wire.ring.push_back({DLT_RAW, echo_reply(lab.sent(0)), t0 + 5ms});
  CHECK(lab.engine.settle_sends() == 2);
  CHECK(lab.wire.drains == 1);
  CHECK(lab.result(0).status == ProbeStatus::reply);
  CHECK(*lab.result(0).rtt == 5ms);
  CHECK(lab.engine.settle_sends() == 0);
  CHECK(lab.wire.drains == 1);
  // A failed send is no packet out.
  lab.wire.send_error = "no buffer space";
  lab.launch(kOtherTarget, 1s);
  CHECK(lab.engine.settle_sends() == 0);
  CHECK(lab.wire.drains == 1);
}

TEST_CASE("engine: a datagram left to the sending thread is not read back before the wait", "[engine]") {
  // Its copy comes when the thread has sent it, and wakes the loop then; a
  // read now would find nothing.
  Lab lab;
  lab.wire.queueing = true;
  lab.launch(kTarget, 1s);
  REQUIRE(lab.wire.tokens.size() == 1);
  CHECK(lab.engine.settle_sends() == 0);
  CHECK(lab.wire.drains == 0);
  // Sent in place (the thread asleep, or its ring full): read back as before.
  lab.wire.queueing = false;
  lab.launch(kOtherTarget, 1s);
  lab.wire.ring.push_back({DLT_RAW, lab.sent(1), lab.clock.wall()});
  CHECK(lab.engine.settle_sends() == 1);
  CHECK(lab.wire.drains == 1);
}

TEST_CASE("engine: a queued datagram that fails to go ends its probe as a local error, once", "[engine]") {
  Lab lab;
  lab.wire.queueing = true;
  const auto i = lab.launch(kTarget, 1s);
  const auto j = lab.launch(kOtherTarget, 1s);
  CHECK(lab.engine.stats().sent == 2);
  CHECK(lab.calls[i].empty());
  lab.wire.fail(0, "send to 198.18.0.1: Network is unreachable");
  CHECK(lab.result(i).status == ProbeStatus::error);
  CHECK(lab.result(i).error == "send to 198.18.0.1: Network is unreachable");
  CHECK(lab.result(i).local_error);
  CHECK(lab.engine.stats().sent == 1);
  CHECK(lab.engine.stats().send_errors == 1);
  CHECK(lab.engine.in_flight() == 1);
  // The other one is answered; a failure reported for a probe over already
  // is counted, and calls nothing.
  lab.wire.left = 2;
  lab.capture(lab.sent(1), lab.clock.wall());
  lab.capture(echo_reply(lab.sent(1)), lab.clock.wall() + 1ms);
  CHECK(lab.result(j).status == ProbeStatus::reply);
  lab.wire.fail(1, "late news");
  lab.wire.fail(0, "late news");
  CHECK(lab.calls[i].size() == 1);
  CHECK(lab.calls[j].size() == 1);
  CHECK(lab.engine.stats().send_errors == 3);
}

TEST_CASE("engine: a probe's wait counts from its packet leaving, not from its launch", "[engine]") {
  const bool queued = GENERATE(false, true);
  INFO((queued ? "a sending thread behind" : "sent in place, the capture's stamp later than the launch"));
  Lab lab;
  lab.wire.queueing = queued;
  const WallTime t0 = lab.clock.wall();
  const auto i = lab.launch(kTarget, 1s);
  const auto j = lab.launch(kOtherTarget, 1s);
  if (queued) {
    // At the deadline, neither has left: no timeout yet.
    lab.clock.advance(1s);
    lab.engine.expire(lab.clock.now());
    CHECK(lab.calls[i].empty());
    CHECK(lab.calls[j].empty());
    CHECK(lab.engine.stats().timeouts == 0);
    lab.clock.advance(500ms);
    lab.wire.left = 2;
  } else {
    lab.clock.advance(500ms);
  }
  // Both left 500 ms (or 1.5 s) after launch; i is answered 900 ms later,
  // past its launch's deadline but within its own second.
  const WallTime left = t0 + (queued ? 1500ms : 500ms);
  lab.capture(lab.sent(0), left);
  lab.capture(lab.sent(1), left);
  lab.clock.set(lab.clock.now() + 900ms);
  lab.engine.expire(lab.clock.now());
  CHECK(lab.calls[i].empty());
  lab.capture(echo_reply(lab.sent(0)), left + 900ms);
  CHECK(lab.result(i).status == ProbeStatus::reply);
  CHECK(lab.result(i).rtt == Duration(900ms));
  // j, unanswered, times out a second after it left, and not before.
  lab.clock.set(lab.clock.now() + 99ms);
  lab.engine.expire(lab.clock.now());
  CHECK(lab.calls[j].empty());
  REQUIRE(lab.engine.next_deadline());
  lab.clock.set(*lab.engine.next_deadline());
  lab.engine.expire(lab.clock.now());
  CHECK(lab.result(j).status == ProbeStatus::timeout);
  CHECK(lab.clock.wall() - left == Duration(1s));
  CHECK(lab.engine.stats().late == 0);
}

TEST_CASE("engine: the memory of finished probes is reserved only where a growth would stall the loop", "[engine]") {
  outpost::EngineOptions o;
  CHECK(outpost::finished_reserve(o) == 0);  // rate not known: it grows
  o.expected_pps = 1100;                     // 33,000 flows over 30 s: grows, at most 16,500 moved at once
  CHECK(outpost::finished_reserve(o) == 0);
  o.expected_pps = 3000;  // 90,000 flows
  CHECK(outpost::finished_reserve(o) == 90000);
  o.expected_pps = 120000;  // capped
  CHECK(outpost::finished_reserve(o) == o.remember_finished_max);
  o.remember_finished = std::chrono::seconds(10);
  o.expected_pps = 6000;  // 60,000 flows: below the line
  CHECK(outpost::finished_reserve(o) == 0);
}
