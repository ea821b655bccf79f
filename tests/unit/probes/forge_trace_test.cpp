// A trace toward a dead target, through routers one of which claims the
// target's address in its time-exceeded: only the destination's own answer
// type (echo reply; SYN-ACK or RST; port unreachable) may make a trace
// reached, never the address an ICMP error comes from.

#include <catch2/catch.hpp>

#include <optional>

#include "forge_lab.hpp"
#include "traceroute.hpp"

using namespace forge_lab;
using outpost::Trace;
using outpost::TraceMethod;
using outpost::TraceResult;
using outpost::TraceSpec;

namespace {

enum class AtTtl3 { time_exceeded_from_target, port_unreachable_from_target, real_answer };

struct TraceRun {
  Lab lab;
  std::optional<TraceResult> result;
  std::size_t handled = 0;

  void run(TraceMethod method, AtTtl3 at3) {
    TraceSpec spec;
    spec.method = method;
    spec.port = method == TraceMethod::tcp ? 80 : 0;
    spec.max_ttl = 8;
    spec.attempts = 1;
    spec.gap_limit = 3;
    spec.timeout = std::chrono::seconds(1);
    auto trace = Trace::create(
        spec, kTarget, 7, lab.clock.wall(),
        [this](std::unique_ptr<outpost::Probe> p, outpost::Engine::Done d) { lab.engine.launch(std::move(p), d); },
        [this](const TraceResult& r) { result = r; });
    trace->start();
    answer(at3);
    for (int i = 0; i < 50 && !result; ++i) {
      lab.clock.advance(spec.timeout);
      lab.engine.expire(lab.clock.now());
      answer(at3);
    }
    REQUIRE(result);
  }

  // TTL 1-2: routers; TTL 3: the forger (or the target itself); beyond: silence.
  void answer(AtTtl3 at3) {
    while (handled < lab.wire.sent.size()) {
      const Bytes probe = lab.wire.sent[handled++];
      const int ttl = ttl_of(probe);
      if (ttl <= 2) {
        lab.capture(icmp_error(addr(ttl == 1 ? "198.19.0.2" : "198.19.0.6"), probe, 11, 0));
      } else if (ttl == 3) {
        switch (at3) {
          case AtTtl3::time_exceeded_from_target: lab.capture(icmp_error(kTarget, probe, 11, 0)); break;
          case AtTtl3::port_unreachable_from_target: lab.capture(icmp_error(kTarget, probe, 3, 3)); break;
          case AtTtl3::real_answer:
            if (proto_of(probe) == IPPROTO_UDP) lab.capture(icmp_error(kTarget, probe, 3, 3));
            else if (proto_of(probe) == IPPROTO_TCP) lab.capture(tcp_answer(probe));
            else lab.capture(echo_reply(probe));
            break;
        }
      }
    }
  }
};

}  // namespace

TEST_CASE("forge: a time-exceeded from the target's address does not make a trace reached", "[forge][traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  INFO(outpost::trace_method_name(method));
  TraceRun run;
  run.run(method, AtTtl3::time_exceeded_from_target);
  const TraceResult& r = *run.result;
  CHECK_FALSE(r.reached);
  CHECK(r.stop_reason == "gap");
  REQUIRE(r.hops.size() >= 3);
  CHECK(r.hops[2].addr == kTarget);  // the hop is recorded as what it claimed
  CHECK_FALSE(r.hops[2].is_target);
  for (const auto& h : r.hops) CHECK_FALSE(h.is_target);
}

TEST_CASE("forge: for TCP traces an ICMP error from the target is no answer of the target", "[forge][traceroute]") {
  TraceRun run;
  run.run(TraceMethod::tcp, AtTtl3::port_unreachable_from_target);
  CHECK_FALSE(run.result->reached);
  CHECK(run.result->stop_reason == "unreachable");
}

TEST_CASE("forge: the destination's own answer still reaches it", "[forge][traceroute]") {
  const TraceMethod method = GENERATE(TraceMethod::icmp, TraceMethod::udp, TraceMethod::tcp);
  INFO(outpost::trace_method_name(method));
  TraceRun run;
  run.run(method, AtTtl3::real_answer);
  const TraceResult& r = *run.result;
  CHECK(r.reached);
  CHECK(r.stop_reason == "reached");
  REQUIRE(r.hops.size() == 3);
  CHECK(r.hops[2].is_target);
}
