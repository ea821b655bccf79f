// Paris traceroute through the Engine on a fake Wire and a fake clock: the
// forged probes taken off the wire (one flow identifier per trace, TTLs
// 1..N, correct checksums), a scripted path answering them (routers' time
// exceeded quoting the probe, the destination's echo reply, port unreachable
// or SYN-ACK, a router's host unreachable, silent hops whose timeouts fire on
// clock.advance + engine.expire), and paris_fix_checksum over random data.

#include <netinet/in.h>
#include <pcap/dlt.h>
#include <tins/tins.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "test_bytes.hpp"
#include "clock.hpp"
#include "engine.hpp"
#include "icmp_echo.hpp"
#include "traceroute.hpp"
#include "wire.hpp"

using namespace std::chrono_literals;
using outpost::Engine;
using outpost::IpAddress;
using outpost::ProbeResult;
using outpost::Trace;
using outpost::TraceMethod;
using outpost::TraceResult;
using outpost::TraceHop;
using outpost::TraceSpec;
using outpost::WallTime;

namespace {

using namespace test_bytes;


// For constants (set up before Catch runs: no REQUIRE here).
IpAddress addr(const char* text) { return IpAddress::parse(text).value(); }

constexpr std::uint16_t kIdent = 0x4d2e;
const IpAddress kUs = addr("198.19.0.1");
const IpAddress kTarget = addr("198.18.0.1");
const std::vector<IpAddress> kRouters = {addr("198.19.0.2"), addr("198.19.0.6"), addr("198.19.0.10")};
const IpAddress kUs6 = addr("2001:db8::1");
const IpAddress kTarget6 = addr("2001:db8:ffff::1");
const std::vector<IpAddress> kRouters6 = {addr("2001:db8:1::1"), addr("2001:db8:2::1"), addr("2001:db8:3::1")};

// ---- bytes ----



bool is_v6(const Bytes& d) { return (d.at(0) >> 4) == 6; }
std::size_t l4_offset(const Bytes& d) { return is_v6(d) ? 40 : static_cast<std::size_t>(d.at(0) & 0x0f) * 4; }
int proto_of(const Bytes& d) { return is_v6(d) ? d.at(6) : d.at(9); }
int ttl_of(const Bytes& d) { return is_v6(d) ? d.at(7) : d.at(8); }
IpAddress src_of(const Bytes& d) { return is_v6(d) ? IpAddress::v6_bytes(&d.at(8)) : IpAddress::v4_bytes(&d.at(12)); }
IpAddress dst_of(const Bytes& d) { return is_v6(d) ? IpAddress::v6_bytes(&d.at(24)) : IpAddress::v4_bytes(&d.at(16)); }

// Where the transport checksum sits, from the transport header's start.
std::size_t checksum_field(int proto) {
  switch (proto) {
    case IPPROTO_UDP: return 6;
    case IPPROTO_TCP: return 16;
    default: return 2;  // ICMP, ICMPv6
  }
}

// The pseudo-header the transport checksum covers (none for ICMPv4):
// RFC 768/793 for IPv4, RFC 8200 §8.1 for IPv6.
Bytes pseudo_header(const Bytes& d) {
  const int proto = proto_of(d);
  const std::size_t len = d.size() - l4_offset(d);
  const IpAddress src = src_of(d), dst = dst_of(d);
  Bytes p(src.bytes(), src.bytes() + src.size());
  p.insert(p.end(), dst.bytes(), dst.bytes() + dst.size());
  if (is_v6(d)) {
    for (int shift : {24, 16, 8, 0}) p.push_back(static_cast<std::uint8_t>(len >> shift));
    p.insert(p.end(), {0, 0, 0, static_cast<std::uint8_t>(proto)});
  } else {
    if (proto == IPPROTO_ICMP) return {};
    p.insert(p.end(), {0, static_cast<std::uint8_t>(proto), static_cast<std::uint8_t>(len >> 8),
                       static_cast<std::uint8_t>(len)});
  }
  return p;
}

// The transport checksum the datagram carries.
std::uint16_t stored_checksum(const Bytes& d) { return be16(d, l4_offset(d) + checksum_field(proto_of(d))); }

// The transport checksum recomputed from scratch (the field zeroed, the pseudo-header in).
std::uint16_t recomputed_checksum(const Bytes& d) {
  Bytes l4(d.begin() + static_cast<std::ptrdiff_t>(l4_offset(d)), d.end());
  const std::size_t field = checksum_field(proto_of(d));
  l4.at(field) = 0;
  l4.at(field + 1) = 0;
  Bytes all = pseudo_header(d);
  all.insert(all.end(), l4.begin(), l4.end());
  return internet_checksum(all);
}

Tins::IPv4Address tins4(const IpAddress& a) { return Tins::IPv4Address(a.to_string()); }
Tins::IPv6Address tins6(const IpAddress& a) { return Tins::IPv6Address(a.to_string()); }

// The first `len` bytes of `probe` (all of it when 0) as a router quotes the
// datagram it received: with the TTL it had on arrival.
Bytes quote_of(const Bytes& probe, std::size_t len, int arrival_ttl) {
  Bytes q(probe.begin(), probe.begin() + static_cast<std::ptrdiff_t>(len ? std::min(len, probe.size()) : probe.size()));
  if (is_v6(q)) {
    q.at(7) = static_cast<std::uint8_t>(arrival_ttl);
  } else {
    q.at(8) = static_cast<std::uint8_t>(arrival_ttl);
    q.at(10) = q.at(11) = 0;
    const std::uint16_t sum = internet_checksum(Bytes(q.begin(), q.begin() + 20));
    q.at(10) = static_cast<std::uint8_t>(sum >> 8);
    q.at(11) = static_cast<std::uint8_t>(sum);
  }
  return q;
}

// An ICMP (or ICMPv6) error from `from` to us, quoting `quote`.
Bytes icmp_error(const IpAddress& from, const Bytes& quote, int type, int code) {
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

// The destination's echo reply: addresses swapped, same identifier, sequence and payload.
Bytes echo_reply(const Bytes& request) {
  if (is_v6(request)) {
    Tins::IPv6 req(request.data(), static_cast<std::uint32_t>(request.size()));
    const auto& icmp = req.rfind_pdu<Tins::ICMPv6>();
    Tins::IPv6 reply(req.src_addr(), req.dst_addr());
    reply.hop_limit(57);
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

// The destination's SYN-ACK to a SYN: acknowledges its sequence number + 1.
Bytes syn_ack(const Bytes& syn) {
  REQUIRE_FALSE(is_v6(syn));
  Tins::IP req(syn.data(), static_cast<std::uint32_t>(syn.size()));
  const auto& tcp = req.rfind_pdu<Tins::TCP>();
  Tins::IP reply(req.src_addr(), req.dst_addr());
  reply.ttl(57);
  Tins::TCP t(tcp.sport(), tcp.dport());
  t.flags(Tins::TCP::SYN | Tins::TCP::ACK);
  t.seq(0x5eed0001);
  t.ack_seq(tcp.seq() + 1);
  reply /= t;
  return reply.serialize();
}

// ---- the fake wire and the scripted path ----

class FakeWire final : public outpost::Wire {
 public:
  std::vector<Bytes> sent;
  IpAddress prepare(const IpAddress& dst, std::string*) override { return dst.is_v6() ? kUs6 : kUs; }
  bool send(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string*) override {
    CHECK(dst == dst_of(Bytes(datagram.begin(), datagram.end())));
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

enum class Answer { time_exceeded, silent, host_unreachable };

struct PathHop {
  IpAddress router;
  Answer answer = Answer::time_exceeded;
  std::size_t quote_len = 0;   // 0: the whole datagram
  int first_answered = 1;      // the attempt it first answers (rate-limiting router)
};

// The hops 1..N before the destination; every TTL beyond reaches it.
struct Path {
  std::vector<PathHop> hops;
  bool destination_answers = true;
  std::size_t quote_len = 0;  // the destination's ICMP errors

  static Path lab(bool v6 = false, std::size_t quote_len = 0) {
    Path p;
    for (const auto& r : v6 ? kRouters6 : kRouters) p.hops.push_back({r, Answer::time_exceeded, quote_len});
    return p;
  }
  static Path silent(int n) {
    Path p;
    for (int i = 0; i < n; ++i) p.hops.push_back({{}, Answer::silent});
    p.destination_answers = false;
    return p;
  }
};

struct TraceLab {
  outpost::FakeClock clock;
  FakeWire wire;
  Engine engine{clock, wire, outpost::FilterParams{kIdent}};
  Path path;
  std::map<int, int> sent_per_ttl;
  std::size_t handled = 0;
  int in_flight = 0;
  int max_in_flight = 0;
  int done_calls = 0;
  std::optional<TraceResult> result;
  // Backward probing's stop set (spec.start_ttl), and what it was asked.
  Trace::KnownPrefix known;
  std::vector<std::pair<int, IpAddress>> asked;
  // With early retries: the trace's timers, fired as the fake clock reaches them.
  bool early = false;
  // With early: how long each probe waits before the engine starts it (a
  // rate cap's queue).
  outpost::Duration held{};
  std::multimap<outpost::SteadyTime, std::function<void()>> timers;
  outpost::Duration took{};  // from start to the result, on the fake clock
  // Launches after the answers handed over together (launch_after_answers):
  // what the trace deferred runs once pump() has delivered every answer due.
  bool batched = false;
  std::vector<std::function<void()>> deferred;
  // With batched: the answers to what was sent so far taken after each
  // probe (take_answers_between_sends), as on a path that answers while the
  // probes are still going out (looks_answer false: a path further away,
  // where a look finds nothing yet); `looks` counts the takes.
  bool between = false;
  bool looks_answer = true;
  int looks = 0;

  // The clock to the next timer or probe deadline (or by `step` when no
  // timers are used), those due fired, the answers sent.
  void advance(outpost::Duration step) {
    if (early) {
      std::optional<outpost::SteadyTime> next = engine.next_deadline();
      if (!timers.empty() && (!next || timers.begin()->first < *next)) next = timers.begin()->first;
      if (next && *next > clock.now()) clock.set(*next);
      while (!timers.empty() && timers.begin()->first <= clock.now()) {
        auto cb = std::move(timers.begin()->second);
        timers.erase(timers.begin());
        cb();
        pump();
      }
    } else {
      clock.advance(step);
    }
    engine.expire(clock.now());
    pump();
  }

  TraceResult run(TraceSpec spec, const IpAddress& target, std::uint32_t seed = 4242) {
    auto launch = [this](std::unique_ptr<outpost::Probe> probe, Engine::Done done) {
      max_in_flight = std::max(max_in_flight, ++in_flight);
      auto go = [this, done](std::unique_ptr<outpost::Probe> p) {
        engine.launch(std::move(p), [this, done](const ProbeResult& r) {
          --in_flight;
          done(r);
        });
      };
      if (held == outpost::Duration::zero()) return go(std::move(probe));
      auto shared = std::make_shared<std::unique_ptr<outpost::Probe>>(std::move(probe));
      timers.emplace(clock.now() + held, [go, shared] { go(std::move(*shared)); });
    };
    const outpost::SteadyTime start = clock.now();
    auto trace = Trace::create(spec, target, seed, clock.wall(), launch, [this, start](const TraceResult& r) {
      ++done_calls;
      result = r;
      took = clock.now() - start;
    });
    if (early)
      trace->retry_early([this](outpost::Duration d, std::function<void()> cb) {
        timers.emplace(clock.now() + d, std::move(cb));
      });
    if (batched) trace->launch_after_answers([this](std::function<void()> cb) { deferred.push_back(std::move(cb)); });
    if (between)
      trace->take_answers_between_sends([this] {
        ++looks;
        if (looks_answer) answer_sent();
      });
    if (known)
      trace->reuse_known([this](int ttl, const IpAddress& a) {
        asked.emplace_back(ttl, a);
        return known(ttl, a);
      });
    trace->start();
    pump();
    for (int i = 0; i < 1000 && !result; ++i) advance(spec.timeout);
    REQUIRE(result);
    // Probes sent past the end before it was known are not waited for by the
    // trace; they end with their own timeouts, and the trace ignores them.
    for (int i = 0; i < 10 && engine.in_flight() > 0; ++i) advance(spec.timeout);
    CHECK(done_calls == 1);
    CHECK(in_flight == 0);
    CHECK(engine.in_flight() == 0);
    return *result;
  }

  // Answers every datagram sent since the last call, as the path would
  // (with `batched`, all of them before what the trace deferred runs).
  void pump() {
    for (;;) {
      answer_sent();
      if (deferred.empty()) return;
      auto due = std::move(deferred);
      deferred.clear();
      for (auto& cb : due) cb();
    }
  }

  // Answers every datagram sent and not answered yet.
  void answer_sent() {
    while (handled < wire.sent.size()) {
      const Bytes probe = wire.sent[handled++];  // a copy: answering may send more
      const int ttl = ttl_of(probe);
      const int attempt = ++sent_per_ttl[ttl];
      if (auto answer = respond(probe, ttl, attempt))
        wire.capture(*answer, clock.wall() + std::chrono::milliseconds(ttl));  // RTT: ttl ms
    }
  }

  std::optional<Bytes> respond(const Bytes& probe, int ttl, int attempt) const {
    const bool v6 = is_v6(probe);
    // A router that rejects the destination answers for every TTL that gets to it.
    for (int k = 1; k < ttl && k <= static_cast<int>(path.hops.size()); ++k) {
      const PathHop& h = path.hops[static_cast<std::size_t>(k - 1)];
      if (h.answer == Answer::host_unreachable)
        return icmp_error(h.router, quote_of(probe, h.quote_len, ttl - k + 1), v6 ? 1 : 3, v6 ? 3 : 1);
    }
    if (ttl <= static_cast<int>(path.hops.size())) {
      const PathHop& h = path.hops[static_cast<std::size_t>(ttl - 1)];
      if (h.answer == Answer::silent || attempt < h.first_answered) return std::nullopt;
      if (h.answer == Answer::host_unreachable)
        return icmp_error(h.router, quote_of(probe, h.quote_len, 1), v6 ? 1 : 3, v6 ? 3 : 1);
      return icmp_error(h.router, quote_of(probe, h.quote_len, 1), v6 ? 3 : 11, 0);
    }
    if (!path.destination_answers) return std::nullopt;
    const IpAddress target = dst_of(probe);
    const int arrival = ttl - static_cast<int>(path.hops.size());
    switch (proto_of(probe)) {
      case IPPROTO_ICMP:
      case IPPROTO_ICMPV6: return echo_reply(probe);
      case IPPROTO_UDP: return icmp_error(target, quote_of(probe, path.quote_len, arrival), v6 ? 1 : 3, v6 ? 4 : 3);
      case IPPROTO_TCP: return syn_ack(probe);
    }
    FAIL("unexpected protocol " << proto_of(probe));
    return std::nullopt;
  }
};

TraceSpec spec_for(TraceMethod method, int parallel = 8) {
  TraceSpec s;
  s.method = method;
  s.port = method == TraceMethod::tcp ? 80 : 0;
  s.max_ttl = 30;
  s.attempts = 2;
  s.gap_limit = 5;
  s.parallel = parallel;
  s.timeout = 1s;
  return s;
}

std::string name_of(TraceMethod m) { return outpost::trace_method_name(m); }

// Every probe of the trace carries the trace's one flow identifier (the
// fields load balancers hash) and its own identity elsewhere; its transport
// checksum is right.
void check_one_flow(const std::vector<Bytes>& sent, const TraceResult& r, TraceMethod method) {
  REQUIRE_FALSE(sent.empty());
  std::set<std::uint32_t> identities;
  std::set<std::uint16_t> ip_ids;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const Bytes& d = sent[i];
    INFO("probe " << i << " (ttl " << ttl_of(d) << ")");
    const std::size_t t = l4_offset(d);
    CHECK(src_of(d) == (is_v6(d) ? kUs6 : kUs));
    CHECK(dst_of(d) == r.target);
    CHECK(stored_checksum(d) == recomputed_checksum(d));
    if (!is_v6(d)) ip_ids.insert(be16(d, 4));
    switch (method) {
      case TraceMethod::icmp:
        CHECK(proto_of(d) == (is_v6(d) ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}));
        CHECK(d.at(t) == (is_v6(d) ? 128 : 8));  // echo request
        CHECK(d.at(t + 1) == 0);
        CHECK(be16(d, t + 2) == r.flow_id);      // the fixed checksum
        identities.insert(be32(d, t + 4));       // identifier and sequence, drawn per probe
        break;
      case TraceMethod::udp:
        CHECK(proto_of(d) == IPPROTO_UDP);
        CHECK(be16(d, t) == r.flow_id);  // source port
        CHECK(be16(d, t + 2) == outpost::kTraceUdpDefaultPort);
        CHECK(be16(d, t + 4) == d.size() - t);
        // The checksum is the probe's identity: keyed, never 0 or 0xffff.
        CHECK(be16(d, t + 6) != 0);
        CHECK(be16(d, t + 6) != 0xffff);
        identities.insert(be16(d, t + 6));
        break;
      case TraceMethod::tcp:
        CHECK(proto_of(d) == IPPROTO_TCP);
        CHECK(be16(d, t) == r.flow_id);  // source port
        CHECK(be16(d, t + 2) == 80);
        CHECK(d.at(t + 13) == 0x02);     // a bare SYN
        identities.insert(be32(d, t + 4));  // the sequence number
        break;
    }
  }
  CHECK(identities.size() == sent.size());  // every probe told apart
  // IP IDs are drawn per probe: a repeat among a few dozen is rare, a run never.
  if (!is_v6(sent[0])) CHECK(ip_ids.size() + 2 >= sent.size());
  if (method != TraceMethod::icmp) {
    CHECK(r.flow_id >= outpost::kTraceFirstPort);
    CHECK(r.flow_id <= outpost::kTraceLastPort);
  } else {
    CHECK(r.flow_id != 0);
    CHECK(r.flow_id != 0xffff);
  }
}

std::vector<int> ttls_sent(const std::vector<Bytes>& sent) {
  std::vector<int> out;
  for (const auto& d : sent) out.push_back(ttl_of(d));
  return out;
}

}  // namespace

TEST_CASE("traceroute: trace methods by name", "[traceroute]") {
  std::string error;
  auto icmp = outpost::parse_trace_method("icmp", &error);
  REQUIRE(icmp);
  CHECK(icmp->method == TraceMethod::icmp);
  auto udp = outpost::parse_trace_method("udp", &error);
  REQUIRE(udp);
  CHECK(udp->method == TraceMethod::udp);
  auto tcp = outpost::parse_trace_method("tcp:443", &error);
  REQUIRE(tcp);
  CHECK(tcp->method == TraceMethod::tcp);
  CHECK(tcp->port == 443);
  for (const char* bad : {"tcp:0", "tcp:65536", "tcp:", "tcp:80x", "udp:53", "ICMP", ""}) {
    INFO(bad);
    error.clear();
    CHECK_FALSE(outpost::parse_trace_method(bad, &error));
    CHECK(error.find("unknown trace method") != std::string::npos);
  }
  CHECK(outpost::trace_method_name(TraceMethod::icmp) == "icmp");
  CHECK(outpost::trace_method_name(TraceMethod::udp) == "udp");
  CHECK(outpost::trace_method_name(TraceMethod::tcp) == "tcp");
}

TEST_CASE("traceroute: one flow identifier for all probes of a trace, TTLs 1..N, checksums right",
          "[traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  const bool v6 = GENERATE(false, true);
  INFO(name_of(method) << (v6 ? " over IPv6" : " over IPv4"));
  TraceLab lab;
  // Nothing answers, so each TTL is probed `attempts` times (a retry is the same flow too).
  lab.path = Path::silent(30);
  TraceSpec spec = spec_for(method, 4);
  spec.max_ttl = 6;
  spec.gap_limit = 10;
  const auto r = lab.run(spec, v6 ? kTarget6 : kTarget);
  CHECK(r.stop_reason == "max_ttl");
  REQUIRE(lab.wire.sent.size() == 12);
  // TTLs 1..4 first (parallel 4), each retried after its timeout, then 5 and 6.
  std::vector<int> ttls = ttls_sent(lab.wire.sent);
  CHECK(std::vector<int>(ttls.begin(), ttls.begin() + 4) == std::vector<int>{1, 2, 3, 4});
  std::sort(ttls.begin(), ttls.end());
  CHECK(ttls == std::vector<int>{1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6});
  check_one_flow(lab.wire.sent, r, method);

  // Another trace (another seed) keeps its own, different flow.
  TraceLab other;
  other.path = Path::silent(30);
  const auto r2 = other.run(spec, v6 ? kTarget6 : kTarget, 977);
  CHECK(r2.flow_id != r.flow_id);
  check_one_flow(other.wire.sent, r2, method);
}

TEST_CASE("traceroute: time exceeded quoting probe k names hop k, the destination ends the trace",
          "[traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  INFO(name_of(method));
  TraceLab lab;
  lab.path = Path::lab();
  lab.path.hops[1].quote_len = 28;  // the second router quotes only 8 bytes past the IP header
  lab.path.quote_len = 28;
  const auto r = lab.run(spec_for(method), kTarget);
  CHECK(r.target == kTarget);
  CHECK(r.reached);
  CHECK(r.stop_reason == "reached");
  CHECK(r.error.empty());
  REQUIRE(r.hops.size() == 4);  // none past the destination, though TTLs up to 8 were in flight
  for (int k = 1; k <= 3; ++k) {
    const auto& h = r.hops[static_cast<std::size_t>(k - 1)];
    INFO("hop " << k);
    CHECK(h.ttl == k);
    CHECK(h.addr == kRouters[static_cast<std::size_t>(k - 1)]);
    CHECK(h.icmp_type == 11);
    CHECK(h.icmp_code == 0);
    CHECK(h.quoted_ttl == 1);
    CHECK(h.reply_ttl == 250);
    CHECK_FALSE(h.is_target);
    CHECK(h.probes_sent == 1);
    REQUIRE(h.rtt);
    CHECK(*h.rtt == std::chrono::milliseconds(k));  // the answer went to the probe of that TTL
  }
  const auto& dest = r.hops[3];
  CHECK(dest.ttl == 4);
  CHECK(dest.addr == kTarget);
  CHECK(dest.is_target);
  CHECK(dest.reply_ttl == (method == TraceMethod::udp ? 250 : 57));
  REQUIRE(dest.rtt);
  CHECK(*dest.rtt == 4ms);
  switch (method) {
    case TraceMethod::icmp: CHECK(dest.icmp_type == 0); break;  // echo reply
    case TraceMethod::udp:                                      // port unreachable
      CHECK(dest.icmp_type == 3);
      CHECK(dest.icmp_code == 3);
      break;
    case TraceMethod::tcp: CHECK(dest.icmp_type == -1); break;  // a SYN-ACK
  }
  // Eight TTLs went out at once (parallel 8); each router's answer slid the
  // window on by one (9, 10, 11) before the destination's answer came.
  CHECK(ttls_sent(lab.wire.sent) == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  check_one_flow(lab.wire.sent, r, method);
  CHECK(lab.engine.stats().timeouts == 0);
  CHECK(lab.engine.stats().spoofed == 0);

  // The same answer again, after the trace: counted as a duplicate, nothing else.
  const auto again = lab.respond(lab.wire.sent[1], 2, 1);
  REQUIRE(again);
  lab.wire.capture(*again, lab.clock.wall());
  CHECK(lab.engine.stats().duplicate == 1);
  CHECK(lab.done_calls == 1);
}

TEST_CASE("traceroute: over IPv6, hop limit exceeded is a hop and the destination ends the trace",
          "[traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp);
  INFO(name_of(method));
  TraceLab lab;
  lab.path = Path::lab(true, 48);  // the IPv6 header and 8 bytes
  const auto r = lab.run(spec_for(method), kTarget6);
  CHECK(r.reached);
  CHECK(r.stop_reason == "reached");
  REQUIRE(r.hops.size() == 4);
  for (std::size_t i = 0; i < 3; ++i) {
    INFO("hop " << i + 1);
    CHECK(r.hops[i].addr == kRouters6[i]);
    CHECK(r.hops[i].icmp_type == 3);  // ICMPv6 time exceeded
    CHECK(r.hops[i].quoted_ttl == 1);
    CHECK_FALSE(r.hops[i].is_target);
  }
  CHECK(r.hops[3].addr == kTarget6);
  CHECK(r.hops[3].is_target);
  CHECK(r.hops[3].icmp_type == (method == TraceMethod::icmp ? 129 : 1));
  check_one_flow(lab.wire.sent, r, method);
}

TEST_CASE("traceroute: a router's host unreachable ends the trace", "[traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  INFO(name_of(method));
  TraceLab lab;
  lab.path = Path::lab();
  lab.path.hops[2].answer = Answer::host_unreachable;  // the border rejects everything past it
  const auto r = lab.run(spec_for(method), kTarget);
  CHECK_FALSE(r.reached);
  CHECK(r.stop_reason == "unreachable");
  REQUIRE(r.hops.size() == 3);
  CHECK(r.hops[0].addr == kRouters[0]);
  CHECK(r.hops[1].addr == kRouters[1]);
  CHECK(r.hops[1].icmp_type == 11);
  CHECK(r.hops[2].addr == kRouters[2]);
  CHECK(r.hops[2].icmp_type == 3);
  CHECK(r.hops[2].icmp_code == 1);
  CHECK_FALSE(r.hops[2].is_target);
  CHECK(lab.engine.stats().timeouts == 0);
}

TEST_CASE("traceroute: silent hops are retried `attempts` times, and gap_limit of them end the trace",
          "[traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  INFO(name_of(method));
  TraceLab lab;
  lab.path = Path::silent(30);
  TraceSpec spec = spec_for(method, 2);
  spec.attempts = 3;
  spec.gap_limit = 4;
  const auto r = lab.run(spec, kTarget);
  CHECK_FALSE(r.reached);
  CHECK(r.stop_reason == "gap");
  REQUIRE(r.hops.size() == 4);
  for (const auto& h : r.hops) {
    INFO("hop " << h.ttl);
    CHECK_FALSE(h.addr);
    CHECK_FALSE(h.rtt);
    CHECK(h.icmp_type == -1);
    CHECK(h.probes_sent == 3);
  }
  for (int ttl = 1; ttl <= 4; ++ttl) CHECK(lab.sent_per_ttl[ttl] == 3);
  for (const auto& [ttl, count] : lab.sent_per_ttl) {
    INFO("ttl " << ttl);
    CHECK(count <= 3);
    CHECK(ttl <= spec.gap_limit + spec.parallel - 1);  // nothing beyond the window at the gap
  }
  CHECK(lab.engine.stats().timeouts == lab.wire.sent.size());
  check_one_flow(lab.wire.sent, r, method);
}

TEST_CASE("traceroute: a silent hop in the middle is a hop without address and the trace goes on",
          "[traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  INFO(name_of(method));
  TraceLab lab;
  lab.path = Path::lab();
  lab.path.hops[1].answer = Answer::silent;
  const auto r = lab.run(spec_for(method), kTarget);
  CHECK(r.reached);
  CHECK(r.stop_reason == "reached");
  REQUIRE(r.hops.size() == 4);
  CHECK(r.hops[0].addr == kRouters[0]);
  CHECK(r.hops[1].ttl == 2);
  CHECK_FALSE(r.hops[1].addr);
  CHECK(r.hops[1].probes_sent == 2);
  CHECK(r.hops[2].addr == kRouters[2]);
  CHECK(r.hops[3].addr == kTarget);
  CHECK(r.hops[3].is_target);
  CHECK(lab.sent_per_ttl[2] == 2);
  // TTL 1's answer slid the window to 2..9; TTL 2 still open held it there.
  for (int ttl : {1, 3, 4, 5, 6, 7, 8, 9}) CHECK(lab.sent_per_ttl[ttl] == 1);
  CHECK(lab.sent_per_ttl.size() == 9);
}

TEST_CASE("traceroute: a hop that answers only a later attempt is found", "[traceroute]") {
  TraceLab lab;
  lab.path = Path::lab();
  lab.path.hops[1].first_answered = 2;  // rate-limited: drops the first probe
  const auto r = lab.run(spec_for(TraceMethod::udp), kTarget);
  CHECK(r.reached);
  REQUIRE(r.hops.size() == 4);
  CHECK(r.hops[1].addr == kRouters[1]);
  CHECK(r.hops[1].probes_sent == 2);
  CHECK(r.hops[0].probes_sent == 1);
  CHECK(lab.engine.stats().timeouts == 1);
}

TEST_CASE("traceroute: with early retries, a trace past a dead link waits one timeout, not one per attempt",
          "[traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  const bool early = GENERATE(false, true);
  INFO(name_of(method) << (early ? ", early retries" : ", one attempt after the other"));
  TraceLab lab;
  lab.early = early;
  // Hop 1 answers, hop 2 only its second probe (rate-limited), then nothing.
  lab.path = Path::silent(30);
  lab.path.hops[0] = {kRouters[0], Answer::time_exceeded};
  lab.path.hops[1] = {kRouters[1], Answer::time_exceeded, 0, 2};
  TraceSpec spec = spec_for(method);
  spec.gap_limit = 3;
  const auto r = lab.run(spec, kTarget);
  CHECK(r.stop_reason == "gap");
  REQUIRE(r.hops.size() == 5);
  CHECK(r.hops[0].addr == kRouters[0]);
  CHECK(r.hops[0].probes_sent == 1);
  CHECK(r.hops[1].addr == kRouters[1]);
  CHECK(r.hops[1].probes_sent == 2);
  for (std::size_t i = 2; i < 5; ++i) {
    INFO("hop " << i + 1);
    CHECK_FALSE(r.hops[i].addr);
    CHECK(r.hops[i].probes_sent == 2);
  }
  for (const auto& [ttl, count] : lab.sent_per_ttl) CHECK(count <= 2);
  // Fake time: each silent hop's second probe went once the first had gone
  // unanswered three times the slowest answer (hop 2, 2 ms), at least the
  // 20 ms floor, and waited as long as the first still did.
  if (early) {
    CHECK(lab.took == spec.timeout);
  } else {
    CHECK(lab.took == 2 * spec.timeout);
  }
  check_one_flow(lab.wire.sent, r, method);
}

TEST_CASE("traceroute: early retries before any answer wait a quarter of the timeout, and every attempt is made",
          "[traceroute]") {
  TraceLab lab;
  lab.early = true;
  // As the agent and `outpost trace` run it: more TTLs go once every result
  // due at that moment is taken (here all six attempts end together, at the
  // hops' deadline).
  lab.batched = true;
  lab.path = Path::silent(30);
  TraceSpec spec = spec_for(TraceMethod::udp, 2);
  spec.attempts = 3;
  spec.gap_limit = 2;
  const auto r = lab.run(spec, kTarget);
  CHECK(r.stop_reason == "gap");
  REQUIRE(r.hops.size() == 2);
  for (const auto& h : r.hops) CHECK(h.probes_sent == 3);
  CHECK(lab.sent_per_ttl.size() == 2);  // the window of 2 never slid
  CHECK(lab.took == spec.timeout);  // each hop's retries end with its first attempt
  CHECK(lab.max_in_flight == 6);
  CHECK(lab.engine.stats().timeouts == 6);
}

TEST_CASE("traceroute: an early retry near its hop's deadline still waits as long as the wait before it",
          "[traceroute]") {
  // A 30 ms timeout: the retry goes at the 20 ms floor with 10 ms of the
  // hop's timeout left, and waits 20 ms, not 10 (nor a whole 30).
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  INFO(name_of(method));
  TraceLab lab;
  lab.early = true;
  lab.path = Path::silent(30);
  lab.path.hops[0] = {kRouters[0], Answer::time_exceeded};
  TraceSpec spec = spec_for(method);
  spec.gap_limit = 3;
  spec.timeout = 30ms;
  const auto r = lab.run(spec, kTarget);
  CHECK(r.stop_reason == "gap");
  REQUIRE(r.hops.size() == 4);
  CHECK(r.hops[0].probes_sent == 1);
  for (std::size_t i = 1; i < 4; ++i) CHECK(r.hops[i].probes_sent == 2);
  CHECK(lab.took == 2 * Trace::kRetryFloor);
}

TEST_CASE("traceroute: with early retries, a path that answers at once gets one probe per hop", "[traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  INFO(name_of(method));
  TraceLab lab;
  lab.early = true;
  lab.path = Path::lab();
  TraceSpec spec = spec_for(method);
  spec.expected_ttl = 4;
  const auto r = lab.run(spec, kTarget);
  CHECK(r.reached);
  REQUIRE(r.hops.size() == 4);
  for (const auto& h : r.hops) CHECK(h.probes_sent == 1);
  CHECK(lab.wire.sent.size() == 4);
  CHECK(lab.took < Trace::kRetryFloor);
}

TEST_CASE("traceroute: answers that come in together are all taken before more TTLs go",
          "[traceroute]") {
  // The lab's way: the window's 8 answers are read at once (the fake path
  // answers every probe sent, and what the trace deferred runs after them).
  // TTLs 5-8 reach the destination: nothing goes past 8.
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  const bool early = GENERATE(false, true);
  INFO(name_of(method) << (early ? ", early retries" : ""));
  TraceLab lab;
  lab.batched = true;
  lab.early = early;
  lab.path = Path::lab();  // 3 routers: the destination at TTL 4
  const auto r = lab.run(spec_for(method), kTarget);
  CHECK(r.reached);
  REQUIRE(r.hops.size() == 4);
  CHECK(r.hops[3].is_target);
  CHECK(ttls_sent(lab.wire.sent) == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(lab.max_in_flight == 8);
  // Launched one per answer as it is read, the first three answers, the
  // routers', each send one more TTL past the window before the
  // destination's answer is taken.
  TraceLab per_answer;
  per_answer.early = early;
  per_answer.path = Path::lab();
  const auto p = per_answer.run(spec_for(method), kTarget);
  CHECK(p.reached);
  CHECK(ttls_sent(per_answer.wire.sent) == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  check_one_flow(lab.wire.sent, r, method);
  // With a look after each probe (take_answers_between_sends), on a path
  // that answers while the probes still go out: the destination's answer to
  // TTL 4 is in before TTL 5 would go. The same hops, none past it.
  TraceLab looking;
  looking.batched = true;
  looking.between = true;
  looking.early = early;
  looking.path = Path::lab();
  const auto w = looking.run(spec_for(method), kTarget);
  CHECK(w.stop_reason == "reached");
  CHECK(ttls_sent(looking.wire.sent) == std::vector<int>{1, 2, 3, 4});
  CHECK(looking.looks == 4);
  REQUIRE(w.hops.size() == r.hops.size());
  for (std::size_t i = 0; i < w.hops.size(); ++i) {
    CHECK(w.hops[i].addr == r.hops[i].addr);
    CHECK(w.hops[i].rtt == r.hops[i].rtt);
    CHECK(w.hops[i].is_target == r.hops[i].is_target);
  }
  check_one_flow(looking.wire.sent, w, method);
}

TEST_CASE("traceroute: looks between sends that find nothing change nothing", "[traceroute]") {
  // A path further away: nothing has come back while the window goes out
  // (the looks find nothing), so the window is the same 8 TTLs, and what
  // the trace finds is what it finds without the looks. A silent hop and a
  // rate-limited one on the way.
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  INFO(name_of(method));
  auto path = Path::lab();
  path.hops[1].answer = Answer::silent;
  path.hops[2].first_answered = 2;
  TraceLab lab;
  lab.batched = true;
  lab.between = true;
  lab.path = path;
  lab.looks_answer = false;
  const auto r = lab.run(spec_for(method), kTarget);
  TraceLab plain;
  plain.batched = true;
  plain.path = path;
  const auto p = plain.run(spec_for(method), kTarget);
  CHECK(lab.looks >= 8);
  CHECK(ttls_sent(lab.wire.sent) == ttls_sent(plain.wire.sent));
  REQUIRE(r.hops.size() == p.hops.size());
  for (std::size_t i = 0; i < r.hops.size(); ++i) {
    CHECK(r.hops[i].addr == p.hops[i].addr);
    CHECK(r.hops[i].probes_sent == p.hops[i].probes_sent);
  }
  CHECK(r.reached == p.reached);
  CHECK(r.stop_reason == p.stop_reason);
}

TEST_CASE("traceroute: an early retry counts from its attempt's start, not from a rate cap's queue", "[traceroute]") {
  // Each probe waits 600 ms in the queue, longer than the retry wait before
  // any answer (a quarter of the 1 s timeout): still one probe per hop.
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  INFO(name_of(method));
  TraceLab lab;
  lab.early = true;
  lab.held = std::chrono::milliseconds(600);
  lab.path = Path::lab();
  TraceSpec spec = spec_for(method);
  spec.timeout = std::chrono::seconds(1);
  spec.expected_ttl = 4;
  const auto r = lab.run(spec, kTarget);
  CHECK(r.reached);
  REQUIRE(r.hops.size() == 4);
  for (const auto& h : r.hops) CHECK(h.probes_sent == 1);
  CHECK(lab.wire.sent.size() == 4);
}

TEST_CASE("traceroute: routers up to max_ttl and no destination stops at max_ttl", "[traceroute]") {
  TraceLab lab;
  for (int i = 0; i < 12; ++i)
    lab.path.hops.push_back({IpAddress::v4(0xc6130200u + static_cast<std::uint32_t>(i)), Answer::time_exceeded});
  TraceSpec spec = spec_for(TraceMethod::icmp, 3);
  spec.max_ttl = 7;
  const auto r = lab.run(spec, kTarget);
  CHECK_FALSE(r.reached);
  CHECK(r.stop_reason == "max_ttl");
  REQUIRE(r.hops.size() == 7);
  for (std::size_t i = 0; i < 7; ++i) CHECK(r.hops[i].addr == lab.path.hops[i].router);
  CHECK(ttls_sent(lab.wire.sent) == std::vector<int>{1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("traceroute: no more than `parallel` TTLs in flight at once", "[traceroute]") {
  const int parallel = GENERATE(1, 3, 5);
  const bool answering = GENERATE(true, false);
  INFO("parallel " << parallel << (answering ? ", routers answer" : ", all silent"));
  TraceLab lab;
  if (answering) {
    for (int i = 0; i < 12; ++i)
      lab.path.hops.push_back({IpAddress::v4(0xc6130200u + static_cast<std::uint32_t>(i)), Answer::time_exceeded});
  } else {
    lab.path = Path::silent(30);
  }
  TraceSpec spec = spec_for(TraceMethod::tcp, parallel);
  spec.gap_limit = 6;
  const auto r = lab.run(spec, kTarget);
  CHECK(lab.max_in_flight == parallel);
  if (answering) {
    CHECK(r.reached);
    CHECK(r.hops.size() == 13);
  } else {
    CHECK(r.stop_reason == "gap");
    CHECK(r.hops.size() == 6);
  }
}

TEST_CASE("traceroute: with the destination's TTL expected, one probe per hop and none past it",
          "[traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  INFO(name_of(method));
  TraceLab lab;
  lab.path = Path::lab();  // 3 routers: the destination at TTL 4
  TraceSpec spec = spec_for(method);
  spec.expected_ttl = 4;
  const auto r = lab.run(spec, kTarget);
  CHECK(r.reached);
  REQUIRE(r.hops.size() == 4);
  CHECK(r.hops[3].is_target);
  CHECK(ttls_sent(lab.wire.sent) == std::vector<int>{1, 2, 3, 4});
  // Without it, the window overshoots the destination.
  TraceLab blind;
  blind.path = Path::lab();
  const auto b = blind.run(spec_for(method), kTarget);
  CHECK(b.reached);
  CHECK(blind.wire.sent.size() > 4);
  check_one_flow(lab.wire.sent, r, method);
}

TEST_CASE("traceroute: a destination farther than expected is still found, the window opening past it",
          "[traceroute]") {
  const int expected = GENERATE(1, 2, 3);
  INFO("expected at TTL " << expected << ", found at 4");
  TraceLab lab;
  lab.path = Path::lab();
  TraceSpec spec = spec_for(TraceMethod::icmp);
  spec.expected_ttl = expected;
  const auto r = lab.run(spec, kTarget);
  CHECK(r.reached);
  CHECK(r.stop_reason == "reached");
  REQUIRE(r.hops.size() == 4);
  for (int i = 0; i < 3; ++i) CHECK(r.hops[static_cast<std::size_t>(i)].addr == kRouters[static_cast<std::size_t>(i)]);
  CHECK(r.hops[3].addr == kTarget);
  // Up to the expected TTL first; nothing past it before every hop up to it answered.
  const auto ttls = ttls_sent(lab.wire.sent);
  REQUIRE(ttls.size() >= static_cast<std::size_t>(expected));
  for (int i = 0; i < expected; ++i) CHECK(ttls[static_cast<std::size_t>(i)] == i + 1);
  for (int ttl = 1; ttl <= 4; ++ttl) CHECK(lab.sent_per_ttl[ttl] == 1);
}

TEST_CASE("traceroute: a silent destination at the expected TTL does not end the trace there", "[traceroute]") {
  TraceLab lab;
  lab.path = Path::lab();
  lab.path.destination_answers = false;
  TraceSpec spec = spec_for(TraceMethod::udp);
  spec.expected_ttl = 4;
  spec.gap_limit = 3;
  const auto r = lab.run(spec, kTarget);
  CHECK_FALSE(r.reached);
  CHECK(r.stop_reason == "gap");
  CHECK(r.hops.size() == 6);  // the 3 routers, then 3 silent hops
  CHECK(lab.sent_per_ttl[6] == spec.attempts);
}

// A stop set that knows one hop: `addr` at `ttl`, with the path before it
// (routers 1..ttl-1 of `routers`), probed at `when`.
Trace::KnownPrefix knowing(int ttl, IpAddress addr, const std::vector<IpAddress>& routers, WallTime when) {
  return [=](int t, const IpAddress& a) -> std::optional<std::vector<TraceHop>> {
    if (t != ttl || a != addr) return std::nullopt;
    std::vector<TraceHop> prefix;
    for (int k = 1; k < ttl; ++k) {
      TraceHop h;
      h.ttl = k;
      h.addr = routers[static_cast<std::size_t>(k - 1)];
      h.icmp_type = 11;
      h.reused_from = when;
      prefix.push_back(h);
    }
    return prefix;
  };
}

// A baseline's spec: the destination expected at `ttl`, probing from there.
TraceSpec backward_from(int ttl, TraceMethod method = TraceMethod::icmp) {
  TraceSpec spec = spec_for(method);
  spec.expected_ttl = ttl;
  spec.start_ttl = ttl;
  return spec;
}

TEST_CASE("traceroute: probing backward from start_ttl stops at a known hop, the hops before it reused",
          "[traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  const int known_at = GENERATE(1, 2, 3);
  INFO(name_of(method) << ", the router at TTL " << known_at << " known");
  const bool v6 = GENERATE(false, true);
  if (v6 && method == TraceMethod::tcp) return;  // this fake path answers SYNs over IPv4 only
  const auto& routers = v6 ? kRouters6 : kRouters;
  TraceLab lab;
  lab.path = Path::lab(v6);
  const WallTime when = lab.clock.wall() - std::chrono::minutes(5);
  lab.known = knowing(known_at, routers[static_cast<std::size_t>(known_at - 1)], routers, when);
  const TraceSpec spec = backward_from(4, method);
  const auto r = lab.run(spec, v6 ? kTarget6 : kTarget);
  CHECK(r.reached);
  CHECK(r.stop_reason == "reached");
  // The destination first, then down one TTL at a time to the known hop: nothing below it.
  std::vector<int> expected_ttls;
  for (int ttl = 4; ttl >= known_at; --ttl) expected_ttls.push_back(ttl);
  CHECK(ttls_sent(lab.wire.sent) == expected_ttls);
  REQUIRE(r.hops.size() == 4);
  for (int ttl = 1; ttl <= 3; ++ttl) {
    const TraceHop& h = r.hops[static_cast<std::size_t>(ttl - 1)];
    INFO("TTL " << ttl);
    CHECK(h.ttl == ttl);
    CHECK(h.addr == routers[static_cast<std::size_t>(ttl - 1)]);
    if (ttl < known_at) {
      REQUIRE(h.reused_from);
      CHECK(*h.reused_from == when);
      CHECK(h.probes_sent == 0);
      CHECK_FALSE(h.rtt);
    } else {
      CHECK_FALSE(h.reused_from);
      CHECK(h.probes_sent == 1);
      CHECK(h.rtt);
    }
  }
  CHECK(r.hops[3].is_target);
  CHECK_FALSE(r.hops[3].reused_from);
  // Only routers' answers were looked up, each at its own TTL.
  std::vector<std::pair<int, IpAddress>> asked;
  for (int ttl = 3; ttl >= known_at; --ttl) asked.emplace_back(ttl, routers[static_cast<std::size_t>(ttl - 1)]);
  CHECK(lab.asked == asked);
  check_one_flow(lab.wire.sent, r, method);
}

TEST_CASE("traceroute: probing backward with nothing known probes every hop once, down to first_ttl",
          "[traceroute]") {
  TraceLab lab;
  lab.path = Path::lab();
  // Known, but at another TTL, or another address: neither stops the trace.
  auto elsewhere = knowing(2, kRouters[2], kRouters, lab.clock.wall());
  auto shifted = knowing(3, kRouters[1], kRouters, lab.clock.wall());
  lab.known = [&](int ttl, const IpAddress& a) {
    if (auto p = elsewhere(ttl, a)) return p;
    return shifted(ttl, a);
  };
  const TraceSpec spec = backward_from(4);
  const auto r = lab.run(spec, kTarget);
  CHECK(r.reached);
  CHECK(ttls_sent(lab.wire.sent) == std::vector<int>{4, 3, 2, 1});
  REQUIRE(r.hops.size() == 4);
  for (const auto& h : r.hops) {
    CHECK_FALSE(h.reused_from);
    CHECK(h.probes_sent == 1);
  }
  CHECK(lab.asked.size() == 3);
}

TEST_CASE("traceroute: a known path of the wrong shape is not taken", "[traceroute]") {
  TraceLab lab;
  lab.path = Path::lab();
  auto good = knowing(3, kRouters[2], kRouters, lab.clock.wall());
  const int fault = GENERATE(0, 1, 2);
  INFO("fault " << fault);
  lab.known = [&](int ttl, const IpAddress& a) {
    auto p = good(ttl, a);
    if (!p) return p;
    if (fault == 0) p->pop_back();               // a hop short
    if (fault == 1) p->front().ttl = 7;          // not one per TTL from first_ttl
    if (fault == 2) p->front().reused_from.reset();  // not marked as reused
    return p;
  };
  const TraceSpec spec = backward_from(4);
  const auto r = lab.run(spec, kTarget);
  CHECK(r.reached);
  CHECK(ttls_sent(lab.wire.sent) == std::vector<int>{4, 3, 2, 1});
  for (const auto& h : r.hops) CHECK_FALSE(h.reused_from);
}

TEST_CASE("traceroute: silent hops below start_ttl are retried and passed, never a gap that ends the trace",
          "[traceroute]") {
  TraceLab lab;
  lab.path = Path::lab();
  lab.path.hops[1].answer = Answer::silent;
  lab.path.hops[2].answer = Answer::silent;
  lab.known = knowing(1, kRouters[0], kRouters, lab.clock.wall());
  TraceSpec spec = backward_from(4, TraceMethod::udp);
  spec.gap_limit = 1;
  const auto r = lab.run(spec, kTarget);
  CHECK(r.reached);
  CHECK(r.stop_reason == "reached");
  CHECK(ttls_sent(lab.wire.sent) == std::vector<int>{4, 3, 3, 2, 2, 1});
  REQUIRE(r.hops.size() == 4);
  CHECK(r.hops[0].addr == kRouters[0]);
  CHECK_FALSE(r.hops[1].addr);
  CHECK_FALSE(r.hops[2].addr);
  CHECK(r.hops[3].is_target);
}

TEST_CASE("traceroute: a destination nearer than start_ttl, found going backward, ends the path there",
          "[traceroute]") {
  TraceLab lab;
  lab.path = Path::lab();  // the destination at TTL 4
  lab.known = knowing(2, kRouters[1], kRouters, lab.clock.wall());
  const TraceSpec spec = backward_from(6);
  const auto r = lab.run(spec, kTarget);
  CHECK(r.reached);
  CHECK(ttls_sent(lab.wire.sent) == std::vector<int>{6, 5, 4, 3, 2});
  REQUIRE(r.hops.size() == 4);
  CHECK(r.hops[3].is_target);
  CHECK(r.hops[0].reused_from);
  CHECK(r.hops[2].addr == kRouters[2]);
  // The destination's own answers are never looked up as known hops.
  for (const auto& [ttl, a] : lab.asked) CHECK(a != kTarget);
}

TEST_CASE("traceroute: a destination farther than start_ttl is found forward, then the hops below probed",
          "[traceroute]") {
  TraceLab lab;
  lab.path = Path::lab();
  const TraceSpec spec = backward_from(3);
  lab.known = knowing(1, kRouters[0], kRouters, lab.clock.wall());
  const auto r = lab.run(spec, kTarget);
  CHECK(r.reached);
  const auto ttls = ttls_sent(lab.wire.sent);
  REQUIRE(ttls.size() >= 4);
  CHECK(ttls[0] == 3);
  CHECK(std::vector<int>(ttls.end() - 2, ttls.end()) == std::vector<int>{2, 1});
  REQUIRE(r.hops.size() == 4);
  for (int i = 0; i < 3; ++i) CHECK(r.hops[static_cast<std::size_t>(i)].addr == kRouters[static_cast<std::size_t>(i)]);
  CHECK(r.hops[3].is_target);
}

TEST_CASE("ttl_from_reply_ttl: the TTL that reaches a host, from its answer's TTL", "[traceroute]") {
  CHECK(outpost::ttl_from_reply_ttl(64) == 1);    // a neighbour, initial 64
  CHECK(outpost::ttl_from_reply_ttl(61) == 4);
  CHECK(outpost::ttl_from_reply_ttl(33) == 32);
  CHECK(outpost::ttl_from_reply_ttl(32) == 1);    // initial 32
  CHECK(outpost::ttl_from_reply_ttl(120) == 9);   // initial 128
  CHECK(outpost::ttl_from_reply_ttl(255) == 1);
  CHECK(outpost::ttl_from_reply_ttl(240) == 16);  // initial 255
  CHECK(outpost::ttl_from_reply_ttl(1) == 32);
  CHECK(outpost::ttl_from_reply_ttl(0) == 0);
  CHECK(outpost::ttl_from_reply_ttl(-1) == 0);
  CHECK(outpost::ttl_from_reply_ttl(256) == 0);
}

TEST_CASE("forge_udp_trace_probe: the UDP checksum is forced to the probe's identity", "[traceroute]") {
  const bool v6 = GENERATE(false, true);
  INFO((v6 ? "IPv6" : "IPv4"));
  outpost::UdpTraceRequest req;
  req.src = v6 ? kUs6 : kUs;
  req.dst = v6 ? kTarget6 : kTarget;
  req.sport = 61234;
  req.dport = 33434;
  req.ip_id = 0x4242;
  req.ttl = 7;
  for (std::uint16_t identity : {1, 2, 0x1234, 0x8000, 0xfffe}) {
    INFO("identity " << identity);
    req.checksum = identity;
    const Bytes d = outpost::forge_udp_trace_probe(req);
    const std::size_t t = l4_offset(d);
    REQUIRE(d.size() == t + 8 + 12);
    CHECK(proto_of(d) == IPPROTO_UDP);
    CHECK(ttl_of(d) == 7);
    if (!v6) CHECK(be16(d, 4) == 0x4242);
    CHECK(src_of(d) == req.src);
    CHECK(dst_of(d) == req.dst);
    CHECK(be16(d, t) == 61234);
    CHECK(be16(d, t + 2) == 33434);
    CHECK(be16(d, t + 4) == 20);
    CHECK(be16(d, t + 6) == identity);
    CHECK(recomputed_checksum(d) == identity);  // valid with the pseudo-header
  }
}

// The UDP probe is written by hand into the probe's buffer; libtins'
// serialization of the same datagram, as the forger was before, is the
// reference: byte for byte, over random requests of both families, every
// payload size from the 2 bytes the checksum's word needs up.
namespace {
Bytes udp_probe_with_libtins(const outpost::UdpTraceRequest& r) {
  Bytes payload(std::max<std::size_t>(r.payload_size, 2), 0);
  for (std::size_t i = 2; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>('@' + i);
  Bytes out;
  if (r.dst.is_v6()) {
    Tins::IPv6 ip(Tins::IPv6Address(r.dst.bytes()), Tins::IPv6Address(r.src.bytes()));
    ip.hop_limit(r.ttl);
    ip /= Tins::UDP(r.dport, r.sport);
    ip /= Tins::RawPDU(payload.data(), static_cast<std::uint32_t>(payload.size()));
    out = ip.serialize();
  } else {
    Tins::IP ip(Tins::IPv4Address(r.dst.to_string()), Tins::IPv4Address(r.src.to_string()));
    ip.ttl(r.ttl);
    ip.id(r.ip_id);
    ip /= Tins::UDP(r.dport, r.sport);
    ip /= Tins::RawPDU(payload.data(), static_cast<std::uint32_t>(payload.size()));
    out = ip.serialize();
  }
  const std::size_t udp = r.dst.is_v6() ? 40 : 20;
  outpost::paris_fix_checksum(out, udp + 6, udp + 8, r.checksum);
  return out;
}
}  // namespace

TEST_CASE("forge_udp_trace_probe: byte for byte what libtins serializes", "[traceroute]") {
  std::mt19937_64 random(3434);
  for (int i = 0; i < 4000; ++i) {
    outpost::UdpTraceRequest r;
    const bool v6 = i % 2 == 1;
    r.src = random_address(random, v6);
    r.dst = random_address(random, v6);
    r.sport = static_cast<std::uint16_t>(random());
    r.dport = static_cast<std::uint16_t>(random());
    r.ip_id = static_cast<std::uint16_t>(random());
    r.ttl = static_cast<std::uint8_t>(random());
    r.checksum = static_cast<std::uint16_t>(1 + random() % 0xfffe);
    r.payload_size = random() % 4 == 0 ? random() % 300 : 12;  // 0 to 299, odd sizes too
    const Bytes want = udp_probe_with_libtins(r);
    INFO("request " << i << " v6=" << v6 << " payload=" << r.payload_size);
    REQUIRE(outpost::forge_udp_trace_probe(r) == want);
    REQUIRE(outpost::udp_trace_probe_size(r) == want.size());
    std::array<std::uint8_t, 400> buffer;
    buffer.fill(0xee);
    REQUIRE(outpost::forge_udp_trace_probe(r, buffer) == want.size());
    REQUIRE(Bytes(buffer.begin(), buffer.begin() + want.size()) == want);
    CHECK(buffer[want.size()] == 0xee);
    CHECK(outpost::forge_udp_trace_probe(r, std::span(buffer).first(want.size() - 1)) == 0);
  }
}

TEST_CASE("forge_echo_request with a fixed checksum: valid ICMP and ICMPv6 checksums", "[traceroute]") {
  const bool v6 = GENERATE(false, true);
  INFO((v6 ? "IPv6" : "IPv4"));
  outpost::EchoRequest req;
  req.src = v6 ? kUs6 : kUs;
  req.dst = v6 ? kTarget6 : kTarget;
  req.ident = kIdent;
  req.ttl = 3;
  req.checksum = 0xbeef;
  std::mt19937_64 rng(7);
  for (std::uint16_t seq = 1; seq < 50; ++seq) {
    req.sequence = seq;
    req.cookie = rng();
    const Bytes d = outpost::forge_echo_request(req);
    const std::size_t t = l4_offset(d);
    INFO("sequence " << seq);
    CHECK(be16(d, t + 2) == 0xbeef);
    CHECK(be16(d, t + 6) == seq);
    CHECK(recomputed_checksum(d) == 0xbeef);
  }
}

TEST_CASE("paris_fix_checksum: any wanted checksum but 0 and 0xffff, still a valid one", "[traceroute]") {
  std::mt19937 rng(1419264900);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> length(20, 120);
  for (int round = 0; round < 40; ++round) {
    // Random data with a valid checksum at 2..3 and a zero word at 16..17.
    Bytes data(length(rng));
    for (auto& b : data) b = static_cast<std::uint8_t>(byte(rng));
    data[2] = data[3] = data[16] = data[17] = 0;
    const std::uint16_t sum = internet_checksum(data);
    data[2] = static_cast<std::uint8_t>(sum >> 8);
    data[3] = static_cast<std::uint8_t>(sum);
    REQUIRE(internet_checksum(data) == 0);

    std::vector<std::uint16_t> wanted;
    if (round == 0) {
      for (std::uint32_t w = 1; w < 0xffff; ++w) wanted.push_back(static_cast<std::uint16_t>(w));
    } else {
      std::uniform_int_distribution<int> word(1, 0xfffe);
      for (int i = 0; i < 200; ++i) wanted.push_back(static_cast<std::uint16_t>(word(rng)));
      wanted.push_back(sum);  // what it already is
    }
    int bad = 0;
    for (std::uint16_t w : wanted) {
      Bytes fixed = data;
      outpost::paris_fix_checksum(fixed, 2, 16, w);
      const bool ok = be16(fixed, 2) == w && internet_checksum(fixed) == 0 &&
                      std::equal(fixed.begin() + 4, fixed.begin() + 16, data.begin() + 4) &&
                      std::equal(fixed.begin() + 18, fixed.end(), data.begin() + 18) && fixed[0] == data[0] &&
                      fixed[1] == data[1];
      if (!ok && ++bad <= 3)
        UNSCOPED_INFO("length " << data.size() << ": wanted " << w << ", got " << be16(fixed, 2)
                                << ", verifies to " << internet_checksum(fixed));
    }
    INFO("round " << round << ", " << wanted.size() << " wanted values");
    CHECK(bad == 0);
  }
}
