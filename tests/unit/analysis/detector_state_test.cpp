// The detector's state as plain data: a snapshot restored into a new detector
// with the same targets goes on as if nothing had happened (an outage open at
// the snapshot ends with one *_up carrying its start, and is not reported
// again), for targets, groups and the vantage point; what no longer matches
// the config is left out; a stale snapshot keeps only what went out as events.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "detector.hpp"

using namespace std::chrono_literals;
using outpost::DetectorEvent;
using outpost::DetectorSnapshot;
using outpost::DetectSettings;
using outpost::Detector;
using outpost::EventKind;
using outpost::WallTime;

namespace {

const WallTime kBase = WallTime{} + std::chrono::seconds(1419264900);
WallTime at(int seconds) { return kBase + std::chrono::seconds(seconds); }
long long secs(WallTime t) { return std::chrono::duration_cast<std::chrono::seconds>(t - kBase).count(); }

DetectSettings settings(int down_after = 3, int up_after = 2) {
  DetectSettings s;
  s.down_after = down_after;
  s.up_after = up_after;
  s.group_fraction = 0.5;
  s.flap_count = 4;
  s.flap_window = 10min;
  return s;
}

std::vector<DetectorEvent> of_kind(const std::vector<DetectorEvent>& events, EventKind kind) {
  std::vector<DetectorEvent> out;
  for (const auto& e : events)
    if (e.kind == kind) out.push_back(e);
  return out;
}

std::string describe(const std::vector<DetectorEvent>& events) {
  std::string s;
  for (const auto& e : events) {
    s += std::string(outpost::to_string(e.kind)) + "(" + e.target + "/" + e.group + " " +
         std::to_string(secs(e.start));
    if (e.end) s += ".." + std::to_string(secs(*e.end));
    if (e.last_ok) s += " last_ok " + std::to_string(secs(*e.last_ok));
    for (const auto& t : e.targets) s += " " + t;
    if (e.changes) s += " changes " + std::to_string(e.changes);
    if (!e.state.empty()) s += " " + e.state;
    s += ") ";
  }
  return s;
}

std::vector<DetectorEvent> sorted(std::vector<DetectorEvent> events) {
  // Each run of target_stable events, by target.
  auto stable = [](const DetectorEvent& e) { return e.kind == EventKind::target_stable; };
  for (auto it = events.begin(); it != events.end();) {
    auto end = std::find_if_not(it, events.end(), stable);
    std::sort(it, end, [](const DetectorEvent& x, const DetectorEvent& y) { return x.target < y.target; });
    it = end == events.end() ? end : std::find_if(end + 1, events.end(), stable);
  }
  return events;
}

// The lab: two groups of four, two control targets.
void add_lab(Detector& d) {
  for (int i = 0; i < 4; ++i) d.add_target("a" + std::to_string(i), "ga", false, 1);
  for (int i = 0; i < 4; ++i) d.add_target("b" + std::to_string(i), "gb", false, 1);
  d.add_target("c0", "control", true, 1);
  d.add_target("c1", "control", true, 1);
}

const std::vector<std::string> kNames = {"a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3", "c0", "c1"};

}  // namespace

TEST_CASE("detector state: a restored detector gives the same events as one that ran on, at any moment",
          "[detector][state]") {
  // Random outages of targets, groups and the vantage point; the run is cut
  // at a random round, its snapshot restored into a new detector, and both
  // go on with the same results.
  const auto seed = GENERATE(range(1, 41));
  std::mt19937 rng(static_cast<unsigned>(seed));
  Detector straight(settings(3, 2));
  add_lab(straight);
  std::unique_ptr<Detector> cut = std::make_unique<Detector>(settings(3, 2));
  add_lab(*cut);
  // Each target fails for stretches: a state per target flipped now and then.
  std::vector<bool> failing(kNames.size(), false);
  const int rounds = 120;
  const int restart = std::uniform_int_distribution<int>(5, rounds - 10)(rng);
  std::vector<DetectorEvent> before_straight, after_straight, before_cut, after_cut;
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t i = 0; i < kNames.size(); ++i)
      if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) failing[i] = !failing[i];
    // Now and then the vantage point's uplink fails for everyone.
    const bool dark = (r / 15) % 4 == 3 && seed % 3 == 0;
    for (std::size_t i = 0; i < kNames.size(); ++i) {
      const WallTime t = at(r * 10 + static_cast<int>(i));
      const bool ok = !dark && !failing[i];
      straight.on_result(kNames[i], 0, ok, t);
      cut->on_result(kNames[i], 0, ok, t);
    }
    // Within a round, events of targets whose flapping settles at once may come in either order.
    auto s = sorted(straight.take_events());
    auto c = sorted(cut->take_events());
    auto& into_s = r < restart ? before_straight : after_straight;
    auto& into_c = r < restart ? before_cut : after_cut;
    into_s.insert(into_s.end(), s.begin(), s.end());
    into_c.insert(into_c.end(), c.begin(), c.end());
    if (r == restart - 1) {
      const DetectorSnapshot snap = cut->snapshot();
      cut = std::make_unique<Detector>(settings(3, 2));
      add_lab(*cut);
      CHECK(cut->restore(snap, at(r * 10 + 9)).empty());
      auto restored = cut->take_events();
      INFO(describe(restored));
      CHECK(restored.empty());  // the same config: nothing to judge again
    }
  }
  INFO("seed " << seed << ", restart before round " << restart);
  INFO("straight: " << describe(after_straight));
  INFO("restored: " << describe(after_cut));
  CHECK(describe(before_cut) == describe(before_straight));
  CHECK(describe(after_cut) == describe(after_straight));
}

TEST_CASE("detector state: a target down at the restart comes back with one target_up and its original start",
          "[detector][state]") {
  Detector before(settings(3, 2));
  for (const char* n : {"a", "b", "c", "d"}) before.add_target(n, "g", false, 2);
  before.on_result("a", 0, true, at(0));
  before.on_result("a", 1, true, at(1));
  for (int r = 1; r <= 3; ++r) {
    before.on_result("a", 0, false, at(10 * r));
    before.on_result("a", 1, false, at(10 * r + 1));
  }
  auto events = before.take_events();
  REQUIRE(of_kind(events, EventKind::target_down).size() == 1);
  CHECK(secs(events[0].start) == 10);

  Detector after(settings(3, 2));
  for (const char* n : {"a", "b", "c", "d"}) after.add_target(n, "g", false, 2);
  CHECK(after.restore(before.snapshot(), at(100)).empty());
  CHECK(after.is_target_down("a"));
  CHECK(after.take_events().empty());
  // Still failing after the restart: no second target_down.
  after.on_result("a", 0, false, at(110));
  after.on_result("a", 1, false, at(111));
  CHECK(after.take_events().empty());
  after.on_result("a", 0, true, at(120));
  after.on_result("a", 1, true, at(121));
  after.on_result("a", 0, true, at(130));
  after.on_result("a", 1, true, at(131));
  events = after.take_events();
  INFO(describe(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_up);
  CHECK(secs(events[0].start) == 10);
  REQUIRE(events[0].end);
  CHECK(secs(*events[0].end) == 120);
}

TEST_CASE("detector state: a failing streak cut by the restart keeps its start", "[detector][state]") {
  Detector before(settings(3, 2));
  before.add_target("a", "g", false, 1);
  before.add_target("b", "g", false, 1);
  before.on_result("a", 0, true, at(0));
  before.on_result("a", 0, false, at(10));
  before.on_result("a", 0, false, at(20));
  REQUIRE(before.suspect("a"));
  REQUIRE(before.take_events().empty());

  Detector after(settings(3, 2));
  after.add_target("a", "g", false, 1);
  after.add_target("b", "g", false, 1);
  after.restore(before.snapshot(), at(25));
  CHECK(after.suspect("a"));
  after.on_result("a", 0, false, at(30));
  auto events = after.take_events();
  INFO(describe(events));
  const auto down = of_kind(events, EventKind::target_down);
  REQUIRE(down.size() == 1);
  CHECK(secs(down[0].start) == 10);
  REQUIRE(down[0].last_ok);
  CHECK(secs(*down[0].last_ok) == 0);
  // 1 of 2 is the group's fraction: the group went down with it.
  CHECK(of_kind(events, EventKind::group_down).size() == 1);
}

TEST_CASE("detector state: a down group and the vantage point's outage outlive the restart", "[detector][state]") {
  Detector before(settings(2, 2));
  before.add_target("c", "control", true, 1);
  for (const char* n : {"a", "b"}) before.add_target(n, "g", false, 1);
  // The group goes down (the control target answers), then the vantage point.
  for (int r = 0; r < 2; ++r) {
    before.on_result("c", 0, true, at(10 * r));
    before.on_result("a", 0, false, at(10 * r + 1));
    before.on_result("b", 0, false, at(10 * r + 2));
  }
  before.on_result("c", 0, true, at(25));
  auto events = before.take_events();
  INFO(describe(events));
  REQUIRE(of_kind(events, EventKind::group_down).size() == 1);
  before.on_result("c", 0, false, at(30));
  before.on_result("c", 0, false, at(40));
  events = before.take_events();
  INFO(describe(events));
  REQUIRE(of_kind(events, EventKind::vantage_down).size() == 1);

  Detector after(settings(2, 2));
  after.add_target("c", "control", true, 1);
  for (const char* n : {"a", "b"}) after.add_target(n, "g", false, 1);
  after.restore(before.snapshot(), at(50));
  CHECK(after.take_events().empty());
  CHECK(after.vantage_down());
  CHECK(after.is_group_down("g"));
  for (int r = 6; r < 8; ++r) {
    after.on_result("c", 0, true, at(10 * r));
    after.on_result("a", 0, true, at(10 * r + 1));
    after.on_result("b", 0, true, at(10 * r + 2));
  }
  events = after.take_events();
  INFO(describe(events));
  CHECK(events.size() == 4);  // vantage_up, a and b up, group_up: nothing went down again
  const auto vantage = of_kind(events, EventKind::vantage_up);
  REQUIRE(vantage.size() == 1);
  CHECK(secs(vantage[0].start) == 30);
  CHECK(secs(*vantage[0].end) == 60);
  const auto group = of_kind(events, EventKind::group_up);
  REQUIRE(group.size() == 1);
  CHECK(secs(group[0].start) == 1);
  const auto ups = of_kind(events, EventKind::target_up);
  REQUIRE(ups.size() == 2);
  CHECK(secs(ups[0].start) == 1);
  CHECK(secs(ups[1].start) == 2);
}

TEST_CASE("detector state: targets gone from the config or of another role are left out", "[detector][state]") {
  Detector before(settings(1, 1));
  before.add_target("x", "g", false, 1);
  before.add_target("gone", "g", false, 1);
  before.add_target("y", "g", false, 1);
  before.on_result("x", 0, false, at(0));
  before.on_result("gone", 0, false, at(1));
  before.on_result("y", 0, false, at(2));
  before.take_events();

  Detector after(settings(1, 1));
  after.add_target("x", "control", true, 1);  // now a control target
  after.add_target("y", "g", false, 3);       // other probe methods: its state stays, not per method
  after.add_target("new", "g", false, 1);
  const auto forgotten = after.restore(before.snapshot(), at(10));
  CHECK(forgotten == std::vector<std::string>{"x", "gone"});
  CHECK_FALSE(after.is_target_down("x"));
  CHECK(after.is_target_down("y"));
  CHECK_FALSE(after.is_target_down("new"));
  // The group is judged from its members now: 1 of 2 is still down (0.5).
  CHECK(after.is_group_down("g"));
  for (int m = 0; m < 3; ++m) after.on_result("y", m, true, at(20 + m));
  const auto events = after.take_events();
  INFO(describe(events));
  const auto ups = of_kind(events, EventKind::target_up);
  REQUIRE(ups.size() == 1);
  CHECK(secs(ups[0].start) == 2);
}

TEST_CASE("detector state: a stale snapshot keeps the reported outages and drops undecided streaks",
          "[detector][state]") {
  Detector before(settings(3, 2));
  for (const char* n : {"down", "suspect", "recovering", "other"}) before.add_target(n, "g", false, 1);
  for (int r = 0; r < 3; ++r) {
    before.on_result("down", 0, false, at(10 * r));
    before.on_result("recovering", 0, false, at(10 * r + 1));
  }
  before.on_result("recovering", 0, true, at(31));
  before.on_result("suspect", 0, false, at(32));
  REQUIRE(before.suspect("suspect"));
  REQUIRE(before.suspect("recovering"));
  before.take_events();

  Detector after(settings(3, 2));
  for (const char* n : {"down", "suspect", "recovering", "other"}) after.add_target(n, "g", false, 1);
  after.restore(before.snapshot(), at(7 * 24 * 3600), false);
  CHECK(after.is_target_down("down"));
  CHECK(after.is_target_down("recovering"));
  CHECK_FALSE(after.suspect("suspect"));     // its streak starts afresh
  CHECK_FALSE(after.suspect("recovering"));  // its recovery too
  CHECK(after.take_events().empty());
  const int week = 7 * 24 * 3600;
  // The suspect target fails three rounds: its outage begins now, not a week ago.
  for (int r = 0; r < 3; ++r) after.on_result("suspect", 0, false, at(week + 10 + 10 * r));
  // The down ones come back: one target_up each, with their original start.
  for (int r = 0; r < 2; ++r) {
    after.on_result("down", 0, true, at(week + 100 + 10 * r));
    after.on_result("recovering", 0, true, at(week + 101 + 10 * r));
  }
  const auto events = after.take_events();
  INFO(describe(events));
  const auto down = of_kind(events, EventKind::target_down);
  REQUIRE(down.size() == 1);
  CHECK(down[0].target == "suspect");
  CHECK(secs(down[0].start) == week + 10);
  const auto ups = of_kind(events, EventKind::target_up);
  REQUIRE(ups.size() == 2);
  CHECK(secs(ups[0].start) == 0);
  CHECK(secs(*ups[0].end) == week + 100);
  CHECK(secs(ups[1].start) == 1);
  CHECK(secs(*ups[1].end) == week + 101);
}

TEST_CASE("detector state: the revision moves with what a snapshot shows, not with a healthy target's answers",
          "[detector][state]") {
  Detector d(settings(2, 2));
  d.add_target("a", "g", false, 1);
  d.on_result("a", 0, true, at(0));
  const auto healthy = d.revision();
  d.on_result("a", 0, true, at(10));
  d.on_result("a", 0, true, at(20));
  CHECK(d.revision() == healthy);
  d.on_result("a", 0, false, at(30));
  CHECK(d.revision() != healthy);
}
