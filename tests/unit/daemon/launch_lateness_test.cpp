// Launch lateness on a fake clock: how late each scheduled probe leaves
// against its due time, in the scheduler (a late take_due, a rate cap that
// holds tasks back) and in the whole Agent when its loop stalls.

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent.hpp"
#include "clock.hpp"
#include "engine.hpp"
#include "event_loop.hpp"
#include "host_resolver.hpp"
#include "outputs.hpp"
#include "scheduler.hpp"
#include "sim_net.hpp"

using namespace std::chrono_literals;
using namespace outpost;

TEST_CASE("launch lateness: on time is zero, a late take_due counts its delay against the due time",
          "[scheduler][lateness]") {
  FakeClock clock;
  Scheduler s(1000);
  const auto a = s.add(1s);
  s.start(clock.now());
  CHECK(s.take_due(clock.now()).size() == 1);
  clock.advance(1s);
  CHECK(s.take_due(clock.now()).size() == 1);
  CHECK(s.lateness().launches == 2);
  CHECK(s.lateness().worst == Duration::zero());
  CHECK(s.lateness().late_10ms == 0);

  clock.advance(2s + 50ms);  // due at 2 s, handed out at 3.05 s (the round of 3 s skipped)
  REQUIRE(s.take_due(clock.now()) == std::vector<Scheduler::TaskId>{a});
  CHECK(s.lateness().launches == 3);
  CHECK(s.lateness().worst == 1050ms);
  CHECK(s.lateness().late_10ms == 1);
  CHECK(s.lateness().late_100ms == 1);
  CHECK(s.lateness().late_1s == 1);
}

TEST_CASE("launch lateness: tasks the rate cap holds back are late by their wait", "[scheduler][lateness]") {
  FakeClock clock;
  Scheduler s(100, 1);  // 100 launches a second, none saved up beyond one
  for (int i = 0; i < 50; ++i) s.add(1h);
  s.start(clock.now(), 0s);  // all due at once
  std::size_t launched = 0;
  while (launched < 50) {
    launched += s.take_due(clock.now()).size();
    const auto wake = s.next_wake(clock.now());
    REQUIRE(wake);
    if (launched < 50) clock.set(*wake);
  }
  // The k-th left k-1 token intervals (10 ms each, give or take the
  // bucket's rounding) after its due time.
  const LaunchLateness& l = s.lateness();
  CHECK(l.launches == 50);
  CHECK(l.worst >= 490ms);
  CHECK(l.worst < 491ms);
  CHECK(l.late_10ms >= 48);  // the 3rd onwards, and the 2nd if it waited a hair past 10 ms
  CHECK(l.late_10ms <= 49);
  CHECK(l.late_100ms >= 39);  // the 12th onwards (the 11th likewise)
  CHECK(l.late_100ms <= 40);
  CHECK(l.late_1s == 0);
}

TEST_CASE("launch lateness: merging keeps the worst and adds the counts", "[scheduler][lateness]") {
  LaunchLateness a, b;
  a.add(5ms);
  a.add(150ms);
  b.add(2s);
  a.merge(b);
  CHECK(a.launches == 3);
  CHECK(a.worst == 2s);
  CHECK(a.late_10ms == 2);
  CHECK(a.late_100ms == 2);
  CHECK(a.late_1s == 1);
}

namespace {
// An agent on a simulated network: 198.18.0.0/16 behind one router, each
// of `hosts` answering echo.
struct SimAgent {
  explicit SimAgent(const std::vector<IpAddress>& hosts) {
    net.add_path("198.18.0.0/16", {IpAddress::parse("198.19.0.2").value()});
    for (const auto& h : hosts) net.add_host(h, true, {80});
  }
  FakeClock clock;
  EventLoop loop{clock};
  sim::SimNet net{clock, loop, IpAddress::parse("198.19.0.1").value(), IpAddress::parse("2001:2::1").value()};
  Engine engine{clock, net, FilterParams{0x4d2e}};
  sim::SimDriver driver{clock, loop, net};
  TableResolver resolver{loop};
  Outputs outputs;
  Agent agent{AgentServices{loop, engine, outputs, resolver,
                            [](const Config&, std::string*) -> std::shared_ptr<const AsnTable> { return nullptr; },
                            true, std::nullopt}};
};
}  // namespace

TEST_CASE("launch lateness: a stalled agent loop shows as the worst lateness of its probes", "[agent][sim][lateness]") {
  SimAgent sim({IpAddress::parse("198.18.0.1").value()});
  auto& driver = sim.driver;
  auto& agent = sim.agent;
  ConfigLoad load = load_config_string(R"(
agent: { id: sim-1, max_pps: 1000 }
defaults: { interval: 1s, timeout: 500ms, probes: [icmp] }
groups:
  - name: lab
    targets:
      - { name: net1, address: 198.18.0.1 }
)",
                                       "sim.yaml");
  REQUIRE(load.errors.empty());
  REQUIRE(agent.apply(*load.config) == "");
  agent.start();

  REQUIRE(driver.run_for(5s + 1ms));  // probes at 0..5 s, each on time
  const LaunchLateness before = agent.launch_lateness();
  CHECK(before.launches == 6);
  CHECK(before.worst == Duration::zero());
  CHECK(before.late_10ms == 0);

  driver.stall(2500ms);  // the probe due at 6 s leaves at 7.501 s (the one of 7 s is skipped)
  REQUIRE(driver.run_for(3s));
  const LaunchLateness after = agent.launch_lateness();
  // 1,501 ms late, less the 40 ms its loop may gather wakes over (4% of the
  // interval; no target is suspect): counted as 1,461 ms.
  CHECK(after.worst == 1461ms);
  CHECK(after.late_10ms == 1);
  CHECK(after.late_100ms == 1);
  CHECK(after.late_1s == 1);
  CHECK(after.launches > before.launches + 1);

  agent.stop();
  REQUIRE(driver.run_for(30s));
  CHECK(agent.finished());
}

TEST_CASE("launch lateness: launches within the loop's coalescing gap count as on time", "[scheduler][lateness]") {
  FakeClock clock;
  Scheduler s(1000);
  s.add(1s);
  s.allow_lateness(20ms);
  s.start(clock.now());
  clock.advance(15ms);  // within the gap
  REQUIRE(s.take_due(clock.now()).size() == 1);
  CHECK(s.lateness().worst == Duration::zero());
  clock.advance(1s + 15ms);  // due at 1 s, out at 1.03 s: 10 ms past the gap
  REQUIRE(s.take_due(clock.now()).size() == 1);
  CHECK(s.lateness().worst == 10ms);
  CHECK(s.lateness().late_10ms == 0);
  CHECK(s.lateness().launches == 2);
}

namespace {
Plan plan_of(std::vector<std::pair<Duration, ProbeMethod::Kind>> tasks, double max_pps, Duration suspect = 0s) {
  Plan plan;
  plan.max_pps = max_pps;
  PlannedTarget target;
  target.suspect_interval = suspect;
  plan.targets.push_back(target);
  for (const auto& [interval, kind] : tasks) {
    PlannedTask t;
    t.interval = interval;
    t.method.kind = kind;
    plan.tasks.push_back(t);
  }
  return plan;
}
}  // namespace

TEST_CASE("wake gap: 4% of the shortest interval, at most 250 ms, within the rate cap's burst", "[agent][lateness]") {
  using K = ProbeMethod::Kind;
  // 10 s and 60 s: 4% of 10 s is 400 ms, so the cap of 250 ms.
  CHECK(Agent::wake_gap(plan_of({{10s, K::icmp}, {60s, K::tcp}}, 1000), 0.12, true, false) == 250ms);
  // 5 s: 200 ms, under the cap.
  CHECK(Agent::wake_gap(plan_of({{5s, K::icmp}}, 1000), 0.2, true, false) == 200ms);
  // 1 s: 40 ms; a suspect's 500 ms: 20 ms, only while one is suspect.
  CHECK(Agent::wake_gap(plan_of({{1s, K::icmp}}, 1000), 1, true, true) == 40ms);
  CHECK(Agent::wake_gap(plan_of({{1s, K::icmp}}, 1000, 500ms), 1, true, true) == 20ms);
  CHECK(Agent::wake_gap(plan_of({{1s, K::icmp}}, 1000, 500ms), 1, true, false) == 40ms);
  // 10 s with a suspect interval of 2.5 s: 100 ms while suspect, else 250 ms,
  // and within half the burst (11 at max_pps 1,100) at 25.6 probes/s: 214.8 ms.
  CHECK(Agent::wake_gap(plan_of({{10s, K::icmp}}, 1000, 2500ms), 0.1, true, true) == 100ms);
  CHECK(Agent::wake_gap(plan_of({{10s, K::icmp}}, 1000, 2500ms), 0.1, true, false) == 250ms);
  CHECK(Agent::wake_gap(plan_of({{10s, K::icmp}}, 1100, 2500ms), 25.6, true, false) ==
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(0.5 * 11 / 25.6)));
  // 1,000 probes/s asked of max_pps 1,100 (a burst of 11): half of 11 ms.
  CHECK(Agent::wake_gap(plan_of({{256ms, K::icmp}}, 1100), 1000, true, true) == 5500us);
  // A DNS query's TCP retry is timed on the loop's clock: 1 ms at most.
  CHECK(Agent::wake_gap(plan_of({{10s, K::icmp}, {10s, K::dns}}, 1000), 0.2, true, false) == 1ms);
  // No capture to time the answers, or a connect() timed in user space: none.
  CHECK(Agent::wake_gap(plan_of({{10s, K::icmp}}, 1000), 0.1, false, false) == Duration::zero());
  CHECK(Agent::wake_gap(plan_of({{10s, K::tcp_connect}}, 1000), 0.1, true, false) == Duration::zero());
  CHECK(Agent::wake_gap(plan_of({}, 1000), 0, true, true) == Duration::zero());
}

TEST_CASE("wake gap: the loop keeps a suspect target's pace only while one is suspect", "[agent][sim][lateness]") {
  const IpAddress a = IpAddress::parse("198.18.0.1").value();
  const IpAddress b = IpAddress::parse("198.18.0.2").value();
  SimAgent sim({a, b});
  auto& driver = sim.driver;
  auto& agent = sim.agent;
  auto& net = sim.net;
  // Every 5 s (a gap of 200 ms); suspect every 1.25 s (50 ms), for ten
  // failed rounds before a target is down (no longer suspect).
  ConfigLoad load = load_config_string(R"(
agent: { id: sim-1, max_pps: 1000 }
defaults: { interval: 5s, timeout: 500ms, probes: [icmp] }
detect: { down_after: 10, up_after: 1 }
groups:
  - name: lab
    targets:
      - { name: a, address: 198.18.0.1 }
      - { name: b, address: 198.18.0.2 }
)",
                                       "sim.yaml");
  REQUIRE(load.errors.empty());
  REQUIRE(agent.apply(*load.config) == "");
  agent.start();
  REQUIRE(driver.run_for(12s));
  CHECK(sim.loop.coalesce_gap() == 200ms);

  // Both fail (each within 5.5 s): suspect, and the gap shrinks; one back
  // (it answers within 1.25 s): still the other's.
  net.host_down(a, true);
  net.host_down(b, true);
  REQUIRE(driver.run_for(6s));
  CHECK(sim.loop.coalesce_gap() == 50ms);
  net.host_down(a, false);
  REQUIRE(driver.run_for(2s));
  CHECK(sim.loop.coalesce_gap() == 50ms);
  // Both back: the plan's gap again.
  net.host_down(b, false);
  REQUIRE(driver.run_for(2s));
  CHECK(sim.loop.coalesce_gap() == 200ms);
  // Down after ten failed rounds: probed at its interval again, and the gap with it.
  net.host_down(a, true);
  REQUIRE(driver.run_for(30s));
  CHECK(sim.loop.coalesce_gap() == 200ms);

  agent.stop();
  REQUIRE(driver.run_for(30s));
  CHECK(agent.finished());
}
