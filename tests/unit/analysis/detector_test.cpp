// The detector driven with fake wall times (a base time plus n seconds): every
// state transition of targets, groups and the vantage point, the hold-back of
// target outages while a control target fails, flapping, and random loss that
// must not raise an outage.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "detector.hpp"

using namespace std::chrono_literals;
using outpost::DetectorEvent;
using outpost::DetectSettings;
using outpost::Detector;
using outpost::EventKind;
using outpost::WallTime;

namespace {

// 2014-12-22T16:15:00Z
const WallTime kBase = WallTime{} + std::chrono::seconds(1419264900);

WallTime at(int seconds) { return kBase + std::chrono::seconds(seconds); }

// Seconds after kBase, for readable failure messages.
long long secs(WallTime t) { return std::chrono::duration_cast<std::chrono::seconds>(t - kBase).count(); }

std::vector<DetectorEvent> of_kind(const std::vector<DetectorEvent>& events, EventKind kind) {
  std::vector<DetectorEvent> out;
  for (const auto& e : events)
    if (e.kind == kind) out.push_back(e);
  return out;
}

std::string kinds(const std::vector<DetectorEvent>& events) {
  std::string s;
  for (const auto& e : events) s += std::string(outpost::to_string(e.kind)) + "(" + e.target + e.group + ") ";
  return s;
}

DetectSettings settings(int down_after = 3, int up_after = 2) {
  DetectSettings s;
  s.down_after = down_after;
  s.up_after = up_after;
  s.group_fraction = 0.5;
  s.flap_count = 4;
  s.flap_window = 10min;
  return s;
}

}  // namespace

TEST_CASE("detector: event kind names and which are down events", "[detector]") {
  CHECK(outpost::to_string(EventKind::target_down) == "target_down");
  CHECK(outpost::to_string(EventKind::group_up) == "group_up");
  CHECK(outpost::to_string(EventKind::vantage_down) == "vantage_down");
  CHECK(outpost::to_string(EventKind::target_flapping) == "target_flapping");
  CHECK(outpost::to_string(EventKind::target_stable) == "target_stable");
  CHECK(outpost::is_down(EventKind::target_down));
  CHECK(outpost::is_down(EventKind::group_down));
  CHECK(outpost::is_down(EventKind::vantage_down));
  CHECK_FALSE(outpost::is_down(EventKind::target_up));
  CHECK_FALSE(outpost::is_down(EventKind::target_flapping));
}

TEST_CASE("detector: target_down after exactly down_after failed rounds, target_up after up_after good ones",
          "[detector]") {
  Detector d(settings(3, 2));
  // Four targets in the group: one of them down is not a group outage.
  for (const char* name : {"a", "b", "c", "d"}) d.add_target(name, "g", false, 1);

  d.on_result("a", 0, true, at(0));
  d.on_result("a", 0, true, at(30));  // the last good probe
  CHECK_FALSE(d.suspect("a"));
  d.on_result("a", 0, false, at(60));  // the outage begins
  CHECK(d.suspect("a"));
  CHECK(d.take_events().empty());
  d.on_result("a", 0, false, at(90));
  CHECK(d.suspect("a"));
  CHECK_FALSE(d.is_target_down("a"));
  CHECK(d.take_events().empty());
  d.on_result("a", 0, false, at(120));  // the third failed round
  auto events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  const DetectorEvent& down = events[0];
  CHECK(down.kind == EventKind::target_down);
  CHECK(down.target == "a");
  CHECK(down.group == "g");
  CHECK(secs(down.start) == 60);
  REQUIRE(down.last_ok);
  CHECK(secs(*down.last_ok) == 30);
  CHECK_FALSE(down.end);
  CHECK(d.is_target_down("a"));
  CHECK_FALSE(d.suspect("a"));  // decided

  // Down stays down, silently.
  d.on_result("a", 0, false, at(150));
  CHECK(d.take_events().empty());
  CHECK_FALSE(d.suspect("a"));

  // One good round, then a failure: recovery starts over.
  d.on_result("a", 0, true, at(180));
  CHECK(d.suspect("a"));
  CHECK(d.is_target_down("a"));
  d.on_result("a", 0, false, at(210));
  CHECK_FALSE(d.suspect("a"));
  CHECK(d.take_events().empty());

  d.on_result("a", 0, true, at(240));  // the first good probe of the recovery
  CHECK(d.suspect("a"));
  CHECK(d.take_events().empty());
  d.on_result("a", 0, true, at(270));
  events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  const DetectorEvent& up = events[0];
  CHECK(up.kind == EventKind::target_up);
  CHECK(up.target == "a");
  CHECK(up.group == "g");
  CHECK(secs(up.start) == 60);
  REQUIRE(up.end);
  CHECK(secs(*up.end) == 240);
  CHECK_FALSE(d.is_target_down("a"));
  CHECK_FALSE(d.suspect("a"));

  // take_events empties the queue.
  CHECK(d.take_events().empty());
  // Unknown targets are ignored.
  d.on_result("nobody", 0, false, at(300));
  CHECK_FALSE(d.suspect("nobody"));
  CHECK_FALSE(d.is_target_down("nobody"));
  CHECK(d.take_events().empty());
}

TEST_CASE("detector: a failure streak shorter than down_after leaves no trace", "[detector]") {
  Detector d(settings(3, 2));
  d.add_target("a", "g", false, 1);
  d.add_target("b", "g", false, 1);
  d.add_target("c", "g", false, 1);
  int t = 0;
  for (int cycle = 0; cycle < 20; ++cycle) {
    d.on_result("a", 0, false, at(t += 30));
    d.on_result("a", 0, false, at(t += 30));
    CHECK(d.suspect("a"));
    d.on_result("a", 0, true, at(t += 30));
    CHECK_FALSE(d.suspect("a"));
  }
  CHECK(d.take_events().empty());
  CHECK_FALSE(d.is_target_down("a"));
}

TEST_CASE("detector: with several methods a round fails only when every method failed", "[detector]") {
  Detector d(settings(3, 2));
  d.add_target("a", "g", false, 3);
  d.add_target("b", "g", false, 1);
  d.add_target("c", "g", false, 1);
  // icmp and dns fail, tcp answers: the host is reachable.
  for (int r = 0; r < 20; ++r) {
    d.on_result("a", 0, false, at(30 * r));
    d.on_result("a", 1, true, at(30 * r + 1));
    d.on_result("a", 2, false, at(30 * r + 2));
    CHECK_FALSE(d.suspect("a"));
  }
  CHECK(d.take_events().empty());
  // Now every method fails.
  for (int r = 20; r < 22; ++r)
    for (int m = 0; m < 3; ++m) d.on_result("a", m, false, at(30 * r + m));
  CHECK(d.suspect("a"));
  CHECK(d.take_events().empty());
  d.on_result("a", 0, false, at(660));
  d.on_result("a", 1, false, at(661));
  CHECK(d.take_events().empty());  // the round is not over before its last method
  d.on_result("a", 2, false, at(662));
  auto events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_down);
  // The first failure of a method that used to answer (tcp at 601): icmp and
  // dns never answered, so their failures say nothing about when it began.
  CHECK(secs(events[0].start) == 601);
  REQUIRE(events[0].last_ok);
  CHECK(secs(*events[0].last_ok) == 30 * 19 + 1);  // tcp's last answer
}

TEST_CASE("detector: the end of an outage is the first good probe, whichever method answered it",
          "[detector]") {
  Detector d(settings(2, 2));
  d.add_target("a", "g", false, 2);
  for (int r = 0; r < 3; ++r) {
    d.on_result("a", 0, false, at(30 * r));
    d.on_result("a", 1, false, at(30 * r + 10));
  }
  auto events = d.take_events();
  REQUIRE(of_kind(events, EventKind::target_down).size() == 1);
  CHECK(secs(of_kind(events, EventKind::target_down)[0].start) == 0);
  // Method 0 still fails, method 1 answers again at 100.
  for (int r = 3; r < 5; ++r) {
    d.on_result("a", 0, false, at(30 * r));
    d.on_result("a", 1, true, at(30 * r + 10));
  }
  events = d.take_events();
  const auto ups = of_kind(events, EventKind::target_up);
  INFO(kinds(events));
  REQUIRE(ups.size() == 1);
  REQUIRE(ups[0].end);
  CHECK(secs(*ups[0].end) == 100);  // not 90: method 0 still failed then
}

TEST_CASE("detector: methods reporting out of phase", "[detector]") {
  // Two methods on different intervals (30 s and 37 s), so their phases drift
  // and one now and then reports twice before the other.
  auto drifting = [](Detector& d, bool fast_ok, bool slow_ok) {
    std::vector<std::pair<int, int>> results;  // (time, method)
    for (int r = 0; r < 60; ++r) results.push_back({30 * r, 0});
    for (int r = 0; r < 48; ++r) results.push_back({37 * r + 3, 1});
    std::stable_sort(results.begin(), results.end());
    for (auto [time, method] : results) d.on_result("a", method, method == 0 ? fast_ok : slow_ok, at(time));
  };
  SECTION("the slower method answering keeps the target up") {
    Detector d(settings(3, 2));
    d.add_target("a", "g", false, 2);
    d.add_target("b", "g", false, 1);
    d.add_target("c", "g", false, 1);  // 1 of 3 down is no group outage
    drifting(d, false, true);
    CHECK(d.take_events().empty());
    CHECK_FALSE(d.is_target_down("a"));
  }
  SECTION("the faster method answering keeps the target up") {
    Detector d(settings(3, 2));
    d.add_target("a", "g", false, 2);
    d.add_target("b", "g", false, 1);
    d.add_target("c", "g", false, 1);  // 1 of 3 down is no group outage
    drifting(d, true, false);
    CHECK(d.take_events().empty());
    CHECK_FALSE(d.is_target_down("a"));
  }
  SECTION("neither answering: down") {
    Detector d(settings(3, 2));
    d.add_target("a", "g", false, 2);
    d.add_target("b", "g", false, 1);
    d.add_target("c", "g", false, 1);  // 1 of 3 down is no group outage
    drifting(d, false, false);
    const auto events = d.take_events();
    INFO(kinds(events));
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == EventKind::target_down);
    CHECK(secs(events[0].start) == 0);
  }
  SECTION("both failing out of phase: down, from the first failed probe") {
    Detector d(settings(3, 2));
    d.add_target("a", "g", false, 2);
    d.add_target("b", "g", false, 1);
    d.add_target("c", "g", false, 1);  // 1 of 3 down is no group outage
    for (int r = 0; r < 2; ++r) {
      d.on_result("a", 1, true, at(30 * r + 15));
      d.on_result("a", 0, true, at(30 * r + 25));
    }
    // From here method 1 reports first in each round, method 0 10 s later.
    for (int r = 2; r < 5; ++r) {
      d.on_result("a", 1, false, at(30 * r + 15));
      d.on_result("a", 0, false, at(30 * r + 25));
    }
    auto events = d.take_events();
    INFO(kinds(events));
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == EventKind::target_down);
    CHECK(secs(events[0].start) == 75);
    REQUIRE(events[0].last_ok);
    CHECK(secs(*events[0].last_ok) == 55);
  }
}

TEST_CASE("detector: group_down when the group's fraction of targets is down, group_up after", "[detector]") {
  Detector d(settings(3, 2));
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  for (const auto& n : names) d.add_target(n, "kp", false, 1);
  // Round r: every target probed, target i at 30 r + i.
  auto round = [&](int r, bool a_ok, bool b_ok) {
    for (int i = 0; i < 4; ++i) {
      const bool ok = i == 0 ? a_ok : i == 1 ? b_ok : true;
      d.on_result(names[static_cast<std::size_t>(i)], 0, ok, at(30 * r + i));
    }
  };
  round(0, true, true);
  round(1, false, true);  // a fails from 30
  round(2, false, true);
  round(3, false, false);  // b fails from 91
  auto events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);  // a alone: 1 of 4 is no group outage
  CHECK(events[0].kind == EventKind::target_down);
  CHECK(events[0].target == "a");
  CHECK(secs(events[0].start) == 30);

  round(4, false, false);
  CHECK(d.take_events().empty());
  round(5, false, false);  // b's third failed round: 2 of 4
  events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == EventKind::target_down);
  CHECK(events[0].target == "b");
  CHECK(secs(events[0].start) == 91);
  CHECK(events[1].kind == EventKind::group_down);
  CHECK(events[1].group == "kp");
  CHECK(events[1].target.empty());
  CHECK(secs(events[1].start) == 91);  // when the second target went down
  CHECK(events[1].targets == std::vector<std::string>{"a", "b"});

  round(6, false, false);
  CHECK(d.take_events().empty());
  // b recovers first (its first good probe at 211): the group is back below the fraction.
  round(7, false, true);
  CHECK(d.take_events().empty());
  round(8, false, true);
  events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == EventKind::target_up);
  CHECK(events[0].target == "b");
  REQUIRE(events[0].end);
  CHECK(secs(*events[0].end) == 211);
  CHECK(events[1].kind == EventKind::group_up);
  CHECK(events[1].group == "kp");
  CHECK(secs(events[1].start) == 91);
  REQUIRE(events[1].end);
  CHECK(secs(*events[1].end) == 211);

  // a comes back too: a target_up and no second group_up.
  round(9, true, true);
  round(10, true, true);
  events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_up);
  CHECK(events[0].target == "a");
  REQUIRE(events[0].end);
  CHECK(secs(*events[0].end) == 270);
}

TEST_CASE("detector: a group of one goes down with its target", "[detector]") {
  Detector d(settings(2, 1));
  d.add_target("only", "solo", false, 1);
  d.on_result("only", 0, false, at(0));
  d.on_result("only", 0, false, at(30));
  auto events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == EventKind::target_down);
  CHECK(events[1].kind == EventKind::group_down);
  CHECK(secs(events[1].start) == 0);
  d.on_result("only", 0, true, at(60));
  events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == EventKind::target_up);
  CHECK(events[1].kind == EventKind::group_up);
  REQUIRE(events[1].end);
  CHECK(secs(*events[1].end) == 60);
}

namespace {

// Two control targets, and four ordinary targets in group g (two of them probed).
struct VantageLab {
  Detector d{settings(3, 2)};
  VantageLab() {
    d.add_target("c1", "control", true, 1);
    d.add_target("c2", "control", true, 1);
    d.add_target("a", "g", false, 1);
    d.add_target("b", "g", false, 1);
    d.add_target("x", "g", false, 1);  // never probed: up
    d.add_target("y", "g", false, 1);
  }
  // One round at 30 r; targets_first: the targets' results come before the controls'.
  void round(int r, bool controls_ok, bool a_ok, bool b_ok, bool targets_first) {
    auto targets = [&] {
      d.on_result("a", 0, a_ok, at(30 * r));
      d.on_result("b", 0, b_ok, at(30 * r + 1));
    };
    auto controls = [&] {
      d.on_result("c1", 0, controls_ok, at(30 * r + 2));
      d.on_result("c2", 0, controls_ok, at(30 * r + 3));
    };
    if (targets_first) {
      targets();
      controls();
    } else {
      controls();
      targets();
    }
  }
};

}  // namespace

TEST_CASE("detector: control targets failing with the targets make a vantage_down and no target events",
          "[detector]") {
  const bool targets_first = GENERATE(true, false);
  INFO("targets first: " << targets_first);
  VantageLab lab;
  Detector& d = lab.d;
  lab.round(0, true, true, true, targets_first);
  lab.round(1, true, true, true, targets_first);
  // Our uplink dies at 60: everything fails.
  for (int r = 2; r < 8; ++r) lab.round(r, false, false, false, targets_first);
  auto events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::vantage_down);
  CHECK(secs(events[0].start) == 62);  // c1's first failed probe
  CHECK(events[0].targets == std::vector<std::string>{"c1", "c2"});
  CHECK(d.vantage_down());
  CHECK(d.vantage_failing());
  CHECK(of_kind(events, EventKind::target_down).empty());
  CHECK(of_kind(events, EventKind::group_down).empty());

  // The uplink is back at 240: the controls recover, and so does a; b stays dark.
  lab.round(8, true, true, false, targets_first);
  CHECK(d.take_events().empty());
  lab.round(9, true, true, false, targets_first);
  events = d.take_events();
  INFO(kinds(events));
  REQUIRE_FALSE(events.empty());
  CHECK(events[0].kind == EventKind::vantage_up);
  CHECK(secs(events[0].start) == 62);
  REQUIRE(events[0].end);
  CHECK(secs(*events[0].end) == 242);  // c1's first good probe
  CHECK_FALSE(d.vantage_down());
  CHECK_FALSE(d.vantage_failing());
  CHECK(of_kind(events, EventKind::target_up).empty());  // a was never reported down
  CHECK(of_kind(events, EventKind::target_down).empty());

  // Judged afresh: b needs down_after failed rounds from now on before it is down.
  events.clear();
  for (int r = 10; r < 14; ++r) {
    lab.round(r, true, true, false, targets_first);
    for (auto& e : d.take_events()) events.push_back(e);
  }
  INFO(kinds(events));
  const auto downs = of_kind(events, EventKind::target_down);
  REQUIRE(downs.size() == 1);
  CHECK(downs[0].target == "b");
  // The failures seen while we were blind do not count: the first failure
  // after the vantage_up starts the streak (b's probe right after c1's recovery).
  CHECK(secs(downs[0].start) == (targets_first ? 301 : 271));
  CHECK(of_kind(events, EventKind::target_up).empty());
  CHECK(of_kind(events, EventKind::vantage_down).empty());
  CHECK(d.is_target_down("b"));
  CHECK_FALSE(d.is_target_down("a"));
}

TEST_CASE("detector: a target is held back while a control target is suspect, then released", "[detector]") {
  VantageLab lab;
  Detector& d = lab.d;
  lab.round(0, true, true, true, true);
  // a fails from 30; c1 fails at 32 and 62 (a blip of our own?), c2 is fine.
  for (int r = 1; r < 3; ++r) {
    d.on_result("a", 0, false, at(30 * r));
    d.on_result("b", 0, true, at(30 * r + 1));
    d.on_result("c1", 0, false, at(30 * r + 2));
    d.on_result("c2", 0, true, at(30 * r + 3));
  }
  CHECK(d.vantage_failing());
  d.on_result("a", 0, false, at(90));  // a's third failed round
  CHECK(d.is_target_down("a"));
  CHECK(d.take_events().empty());      // held back: is it them, or us?
  d.on_result("b", 0, true, at(91));
  CHECK(d.take_events().empty());
  d.on_result("c1", 0, true, at(92));  // c1 recovers: it was them
  CHECK_FALSE(d.vantage_failing());
  auto events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_down);
  CHECK(events[0].target == "a");
  CHECK(secs(events[0].start) == 30);  // its original start
  REQUIRE(events[0].last_ok);
  CHECK(secs(*events[0].last_ok) == 0);
  d.on_result("c2", 0, true, at(93));
  CHECK(d.take_events().empty());

  // And it comes back up normally.
  lab.round(4, true, true, true, true);
  lab.round(5, true, true, true, true);
  events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_up);
  REQUIRE(events[0].end);
  CHECK(secs(*events[0].end) == 120);
}

TEST_CASE("detector: a held-back target is released when the control is decided down, dropped if it recovers first",
          "[detector]") {
  VantageLab lab;
  Detector& d = lab.d;
  lab.round(0, true, true, true, true);
  for (int r = 1; r < 4; ++r) {
    d.on_result("a", 0, false, at(30 * r));
    d.on_result("c1", 0, false, at(30 * r + 2));
  }
  // c1 is now down too (not all controls: no vantage_down). a went down at
  // 90, and no control has answered a probe sent since: a is held, and the
  // detector wants the control targets asked at once.
  auto events = d.take_events();
  INFO(kinds(events));
  CHECK(of_kind(events, EventKind::vantage_down).empty());
  CHECK(of_kind(events, EventKind::target_down).empty());
  CHECK(d.vantage_check_wanted());
  d.vantage_check_started();
  CHECK_FALSE(d.vantage_check_wanted());
  // c2 answers the check: the vantage point is fine, a's target_down goes out.
  d.on_result("c2", 0, true, at(93));
  events = d.take_events();
  INFO(kinds(events));
  CHECK(of_kind(events, EventKind::target_down).size() == 1);

  VantageLab lab2;
  Detector& d2 = lab2.d;
  lab2.round(0, true, true, true, true);
  for (int r = 1; r < 3; ++r) {
    d2.on_result("a", 0, false, at(30 * r));
    d2.on_result("c1", 0, false, at(30 * r + 2));
  }
  d2.on_result("a", 0, false, at(90));  // down, held back
  d2.on_result("a", 0, true, at(120));
  d2.on_result("a", 0, true, at(150));  // up again before c1 was decided
  d2.on_result("c1", 0, true, at(152));
  events = d2.take_events();
  INFO(kinds(events));
  CHECK(events.empty());
  CHECK_FALSE(d2.is_target_down("a"));
}

TEST_CASE("detector: a single dead control target among several does not hold target events forever",
          "[detector]") {
  Detector d(settings(3, 2));
  d.add_target("c1", "control", true, 1);
  d.add_target("c2", "control", true, 1);
  d.add_target("c3", "control", true, 1);
  d.add_target("a", "g", false, 1);
  d.add_target("b", "g", false, 1);
  d.add_target("x", "g", false, 1);
  d.add_target("y", "g", false, 1);
  std::vector<DetectorEvent> events;
  // c1 dies at 0 for good, and a with it; the other controls are fine. a's
  // results come before c1's in each round, so a is held back at first.
  for (int r = 0; r < 40; ++r) {
    d.on_result("a", 0, false, at(30 * r));
    d.on_result("b", 0, r < 20, at(30 * r + 1));  // b dies at 601, long after
    d.on_result("c1", 0, false, at(30 * r + 2));
    d.on_result("c2", 0, true, at(30 * r + 3));
    d.on_result("c3", 0, true, at(30 * r + 4));
    if (r == 2) {
      const auto now = d.take_events();
      INFO(kinds(now));
      REQUIRE(now.size() == 1);  // released as soon as c1 was down
      CHECK(now[0].kind == EventKind::target_down);
      CHECK(now[0].target == "a");
      CHECK(secs(now[0].start) == 0);
    }
    for (auto& e : d.take_events()) events.push_back(e);
  }
  INFO(kinds(events));
  CHECK(of_kind(events, EventKind::vantage_down).empty());
  const auto downs = of_kind(events, EventKind::target_down);
  REQUIRE(downs.size() == 1);
  CHECK(downs[0].target == "b");
  CHECK(secs(downs[0].start) == 601);
  const auto groups = of_kind(events, EventKind::group_down);
  REQUIRE(groups.size() == 1);
  CHECK(secs(groups[0].start) == 601);
  CHECK_FALSE(d.vantage_failing());
  CHECK_FALSE(d.vantage_down());
}

TEST_CASE("detector: vantage_up ends the vantage outage at the first good control probe", "[detector]") {
  Detector d(settings(2, 2));
  d.add_target("c1", "control", true, 1);
  d.add_target("c2", "control", true, 1);
  d.add_target("a", "g", false, 1);
  for (int r = 0; r < 3; ++r) {
    d.on_result("c1", 0, false, at(100 + 30 * r));
    d.on_result("c2", 0, false, at(110 + 30 * r));
  }
  auto events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::vantage_down);
  CHECK(secs(events[0].start) == 100);
  CHECK(d.vantage_down());
  // c2 comes back first (200, 230); c1 stays down.
  d.on_result("c2", 0, true, at(200));
  d.on_result("c1", 0, false, at(205));
  CHECK(d.take_events().empty());
  CHECK(d.vantage_down());
  d.on_result("c2", 0, true, at(230));
  events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::vantage_up);
  CHECK(secs(events[0].start) == 100);
  REQUIRE(events[0].end);
  CHECK(secs(*events[0].end) == 200);
  CHECK_FALSE(d.vantage_down());
  // c1's own recovery later is no new vantage event.
  d.on_result("c1", 0, true, at(235));
  d.on_result("c1", 0, true, at(265));
  CHECK(d.take_events().empty());
}

TEST_CASE("detector: a flapping target is reported once, then stable after a quiet flap_window", "[detector]") {
  Detector d(settings(2, 1));  // flap_count 4 within 10 min
  d.add_target("a", "g", false, 1);
  d.add_target("b", "g", false, 1);
  d.add_target("c", "g", false, 1);
  std::vector<DetectorEvent> events;
  int t = 0;
  auto probe = [&](bool ok) {
    d.on_result("a", 0, ok, at(t));
    for (auto& e : d.take_events()) events.push_back(e);
    t += 30;
  };
  // down (0), up (60), down (90), up (150): the fourth change within 10 min.
  for (int cycle = 0; cycle < 2; ++cycle) {
    probe(false);
    probe(false);
    probe(true);
  }
  INFO(kinds(events));
  REQUIRE(events.size() == 4);
  CHECK(events[0].kind == EventKind::target_down);
  CHECK(secs(events[0].start) == 0);
  CHECK(events[1].kind == EventKind::target_up);
  CHECK(events[2].kind == EventKind::target_down);
  CHECK(secs(events[2].start) == 90);
  CHECK(events[3].kind == EventKind::target_flapping);
  CHECK(events[3].target == "a");
  CHECK(events[3].group == "g");
  CHECK(events[3].changes == 4);
  CHECK(secs(events[3].start) == 0);

  // It keeps flapping: no more down/up events (and no second flapping event).
  events.clear();
  for (int cycle = 0; cycle < 6; ++cycle) {
    probe(false);
    probe(false);
    probe(true);
  }
  INFO(kinds(events));
  CHECK(events.empty());
  const int last_change = t - 30;  // the last cycle's up

  // Quiet: good results for just under flap_window: still flapping.
  while (t < last_change + 600) probe(true);
  CHECK(events.empty());
  probe(true);  // at last_change + 600: quiet for flap_window
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_stable);
  CHECK(events[0].target == "a");
  CHECK(events[0].state == "up");
  REQUIRE(events[0].end);
  CHECK(secs(*events[0].end) == last_change);

  // Stable again: a new outage is reported as usual.
  events.clear();
  const int outage = t;
  probe(false);
  probe(false);
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_down);
  CHECK(secs(events[0].start) == outage);
}

TEST_CASE("detector: changes spread wider than flap_window are no flapping", "[detector]") {
  Detector d(settings(2, 1));
  d.add_target("a", "g", false, 1);
  d.add_target("b", "g", false, 1);
  d.add_target("c", "g", false, 1);
  std::vector<DetectorEvent> events;
  int t = 0;
  // A short outage (down, and up 60 s later) every 11 minutes: never 4 changes within 10 minutes.
  for (int cycle = 0; cycle < 6; ++cycle) {
    d.on_result("a", 0, false, at(t));
    d.on_result("a", 0, false, at(t + 30));
    d.on_result("a", 0, true, at(t + 60));
    for (auto& e : d.take_events()) events.push_back(e);
    t += 660;
  }
  INFO(kinds(events));
  CHECK(of_kind(events, EventKind::target_flapping).empty());
  CHECK(of_kind(events, EventKind::target_down).size() == 6);
  CHECK(of_kind(events, EventKind::target_up).size() == 6);
}

TEST_CASE("detector: 10% random loss on two methods raises no outage in 2000 rounds", "[detector]") {
  // Each probe is lost with p = 0.1, independently. A round fails only when
  // both methods fail: p = 0.1 * 0.1 = 0.01. A false target_down needs
  // down_after = 3 failed rounds in a row: 0.01^3 = 1e-6 per round, about
  // 2e-3 over 2000 rounds. (One method alone: 0.1^3 = 1e-3 per round, about
  // one false outage per 1000 rounds: why targets get several methods.) The
  // seed is fixed, so the run is the same every time.
  Detector d(settings(3, 2));
  d.add_target("a", "g", false, 2);
  d.add_target("b", "g", false, 1);
  std::mt19937 rng(20141222);
  std::bernoulli_distribution lost(0.10);
  int lost_probes = 0, failed_rounds = 0, suspect_rounds = 0;
  for (int r = 0; r < 2000; ++r) {
    const bool ok0 = !lost(rng);
    const bool ok1 = !lost(rng);
    lost_probes += !ok0 + !ok1;
    failed_rounds += !ok0 && !ok1;
    d.on_result("a", 0, ok0, at(30 * r));
    d.on_result("a", 1, ok1, at(30 * r + 5));
    suspect_rounds += d.suspect("a");
  }
  INFO("lost " << lost_probes << " probes, " << failed_rounds << " rounds failed");
  // The loss was really there (about 400 probes, about 20 rounds)...
  CHECK(lost_probes > 300);
  CHECK(lost_probes < 500);
  CHECK(failed_rounds > 5);
  CHECK(suspect_rounds == failed_rounds);  // suspect after each failed round, and only then
  // ...and raised nothing.
  const auto events = d.take_events();
  INFO(kinds(events));
  CHECK(events.empty());
  CHECK_FALSE(d.is_target_down("a"));
}

TEST_CASE("detector: an outage starts at the first failed probe, even in a round another method saved",
          "[detector]") {
  Detector d(settings(3, 2));
  d.add_target("a", "g", false, 2);
  for (int r = 0; r < 5; ++r) {
    d.on_result("a", 0, true, at(10 * r));
    d.on_result("a", 1, true, at(10 * r + 5));
  }
  // The fault lands between icmp (at 50, answered) and tcp (at 55, lost):
  // that round still counts as good, but the outage began with tcp at 55.
  d.on_result("a", 0, true, at(50));
  d.on_result("a", 1, false, at(55));
  for (int r = 6; r < 9; ++r) {
    d.on_result("a", 0, false, at(10 * r));
    d.on_result("a", 1, false, at(10 * r + 5));
  }
  const auto events = of_kind(d.take_events(), EventKind::target_down);  // (and its one-target group's)
  REQUIRE(events.size() == 1);
  CHECK(secs(events[0].start) == 55);
  REQUIRE(events[0].last_ok);
  CHECK(secs(*events[0].last_ok) == 50);
}

TEST_CASE("detector: a reload carries a target's open outage over, and its target_up still comes", "[detector][reload]") {
  Detector before(settings(2, 2));
  before.add_target("a", "kp", false, 1);
  before.add_target("b", "kp", false, 1);
  before.add_target("gone", "kp", false, 1);
  for (int r = 0; r < 3; ++r) {
    before.on_result("a", 0, r == 0, at(30 * r));       // a fails from 30
    before.on_result("b", 0, true, at(30 * r + 1));
    before.on_result("gone", 0, r == 0, at(30 * r + 2));  // gone fails from 32
  }
  auto events = before.take_events();
  INFO(kinds(events));
  REQUIRE(of_kind(events, EventKind::target_down).size() == 2);
  REQUIRE(of_kind(events, EventKind::group_down).size() == 1);  // 2 of 3

  // The new config: a and b stay (a now with two methods), gone is dropped, c is new.
  Detector after(settings(2, 2));
  after.add_target("a", "kp", false, 2);
  after.add_target("b", "kp", false, 1);
  after.add_target("c", "kp", false, 1);
  const auto forgotten = after.carry_over(before, at(100));
  CHECK(forgotten == std::vector<std::string>{"gone"});
  CHECK(after.is_target_down("a"));
  CHECK_FALSE(after.is_target_down("c"));
  // 1 of 3 down is under the group's fraction: the reload itself ends the
  // group's outage, at the reload.
  events = after.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::group_up);
  CHECK(secs(events[0].start) == 32);  // the second of its targets' first failed probe
  REQUIRE(events[0].end);
  CHECK(secs(*events[0].end) == 100);

  // a is still down: more failures raise nothing new; its recovery is one target_up
  // with the outage's original start.
  after.on_result("a", 0, false, at(120));
  after.on_result("a", 1, false, at(121));
  CHECK(after.take_events().empty());
  after.on_result("a", 0, true, at(150));
  after.on_result("a", 1, false, at(151));
  after.on_result("a", 0, true, at(180));
  after.on_result("a", 1, true, at(181));
  events = after.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_up);
  CHECK(events[0].target == "a");
  CHECK(secs(events[0].start) == 30);
  REQUIRE(events[0].end);
  CHECK(secs(*events[0].end) == 150);
}

TEST_CASE("detector: a reload keeps a down group down and a failing streak counting", "[detector][reload]") {
  Detector before(settings(3, 2));
  before.add_target("a", "kp", false, 1);
  before.add_target("b", "kp", false, 1);
  for (int r = 0; r < 3; ++r) {
    before.on_result("a", 0, false, at(30 * r));
    before.on_result("b", 0, r == 0, at(30 * r + 1));  // b: two failed rounds of three needed
  }
  auto events = before.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 2);  // a down; 1 of 2 is the group's fraction
  CHECK(events[1].kind == EventKind::group_down);

  Detector after(settings(3, 2));
  after.add_target("a", "kp", false, 1);
  after.add_target("b", "kp", false, 1);
  CHECK(after.carry_over(before, at(70)).empty());
  CHECK(after.take_events().empty());  // nothing changed: no event
  CHECK(after.suspect("b"));
  after.on_result("b", 0, false, at(91));  // b's third failed round: down, from 31
  events = after.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_down);
  CHECK(secs(events[0].start) == 31);
  // Both come back: one group_up for the outage that began before the reload.
  for (int r = 4; r < 6; ++r) {
    after.on_result("a", 0, true, at(30 * r));
    after.on_result("b", 0, true, at(30 * r + 1));
  }
  events = after.take_events();
  INFO(kinds(events));
  const auto ups = of_kind(events, EventKind::group_up);
  REQUIRE(ups.size() == 1);
  CHECK(secs(ups[0].start) == 0);
  REQUIRE(ups[0].end);
  CHECK(secs(*ups[0].end) == 121);  // b's first good probe: the group is up when both are
  CHECK(of_kind(events, EventKind::target_up).size() == 2);
}

TEST_CASE("detector: a reload while the vantage point is down keeps it down until a control answers",
          "[detector][reload]") {
  Detector before(settings(2, 2));
  before.add_target("c1", "control", true, 1);
  before.add_target("a", "g", false, 1);
  for (int r = 0; r < 2; ++r) {
    before.on_result("c1", 0, false, at(10 + 30 * r));
    before.on_result("a", 0, false, at(11 + 30 * r));
  }
  REQUIRE(of_kind(before.take_events(), EventKind::vantage_down).size() == 1);

  // A second control target is added: it vouches for nothing before it answers.
  Detector after(settings(2, 2));
  after.add_target("c1", "control", true, 1);
  after.add_target("c2", "control", true, 1);
  after.add_target("a", "g", false, 1);
  after.carry_over(before, at(60));
  CHECK(after.take_events().empty());
  CHECK(after.vantage_down());
  after.on_result("c2", 0, true, at(70));
  after.on_result("c1", 0, false, at(71));
  CHECK(after.take_events().empty());
  after.on_result("c2", 0, true, at(100));
  auto events = after.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::vantage_up);
  CHECK(secs(events[0].start) == 10);
  REQUIRE(events[0].end);
  CHECK(secs(*events[0].end) == 70);
}

TEST_CASE("detector: a target that changes from target to control starts afresh", "[detector][reload]") {
  Detector before(settings(1, 1));
  before.add_target("x", "g", false, 1);
  before.on_result("x", 0, false, at(0));
  REQUIRE(before.is_target_down("x"));
  Detector after(settings(1, 1));
  after.add_target("x", "control", true, 1);
  CHECK(after.carry_over(before, at(10)) == std::vector<std::string>{"x"});
  CHECK_FALSE(after.is_target_down("x"));
}

TEST_CASE("detector: a large group is down exactly while enough of its targets are, across random outages",
          "[detector]") {
  // 300 targets, need 150 down. Blocks of targets go dark and come back at
  // random; after every result the group's state must match the count of
  // targets whose target_down came without a target_up since.
  Detector d(settings(2, 2));
  const int n = 300;
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    names.push_back("t" + std::to_string(i));
    d.add_target(names.back(), "big", false, 1);
  }
  std::mt19937 rng(7);
  std::vector<bool> dark(n, false);
  std::vector<bool> reported(n, false);
  int reported_count = 0;
  bool group_down = false;
  int group_changes = 0;
  int mismatches = 0;
  int second = 0;
  for (int round = 0; round < 120; ++round) {
    if (round % 6 == 0) {  // a new random set of dark targets, 0 to 80% of them
      const int k = std::uniform_int_distribution<int>(0, n * 4 / 5)(rng);
      std::vector<int> order(n);
      for (int i = 0; i < n; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), rng);
      std::fill(dark.begin(), dark.end(), false);
      for (int i = 0; i < k; ++i) dark[order[static_cast<std::size_t>(i)]] = true;
    }
    for (int i = 0; i < n; ++i) {
      d.on_result(names[static_cast<std::size_t>(i)], 0, !dark[static_cast<std::size_t>(i)], at(++second));
      for (const auto& e : d.take_events()) {
        const auto idx = e.target.empty() ? 0 : std::stoul(e.target.substr(1));
        if (e.kind == EventKind::target_down && !reported[idx]) reported[idx] = true, ++reported_count;
        if (e.kind == EventKind::target_up && reported[idx]) reported[idx] = false, --reported_count;
        if (e.kind == EventKind::group_down || e.kind == EventKind::group_up) {
          CHECK(group_down != (e.kind == EventKind::group_down));
          group_down = e.kind == EventKind::group_down;
          ++group_changes;
        }
      }
      if (group_down != (reported_count >= n / 2)) ++mismatches;
    }
  }
  CHECK(mismatches == 0);
  CHECK(group_changes >= 4);  // the scenario did cross the threshold, both ways
}

TEST_CASE("detector: targets released together after a control blip take their group down with them",
          "[detector]") {
  VantageLab lab;  // group g: a, b, x, y (2 of 4 make it down)
  Detector& d = lab.d;
  lab.round(0, true, true, true, true);
  for (int r = 1; r < 4; ++r) {  // a and b fail from 30 and 31; c1 fails too, c2 does not
    d.on_result("a", 0, false, at(30 * r));
    d.on_result("b", 0, false, at(30 * r + 1));
    if (r < 3) d.on_result("c1", 0, false, at(30 * r + 2));
    d.on_result("c2", 0, true, at(30 * r + 3));
  }
  CHECK(d.is_target_down("a"));
  CHECK(d.is_target_down("b"));
  CHECK(d.take_events().empty());  // both held back while c1 is suspect
  d.on_result("c1", 0, true, at(122));  // c1 answers: it was them
  auto events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 3);
  CHECK(of_kind(events, EventKind::target_down).size() == 2);
  const auto groups = of_kind(events, EventKind::group_down);
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].group == "g");
  CHECK(secs(groups[0].start) == 31);  // the second target's first failed probe
  CHECK(groups[0].targets == std::vector<std::string>{"a", "b"});
}

TEST_CASE("detector: a target_down waits for a control target to answer a probe sent after it", "[detector][vantage]") {
  VantageLab lab;
  Detector& d = lab.d;
  lab.round(0, true, true, true, false);  // controls answered at 2 and 3
  d.on_result("a", 0, false, at(30));
  d.on_result("a", 0, false, at(60));
  CHECK_FALSE(d.vantage_check_wanted());
  d.on_result("a", 0, false, at(90));  // down now; the controls last answered probes sent at 2 and 3
  auto events = d.take_events();
  INFO(kinds(events));
  CHECK(events.empty());
  CHECK(d.is_target_down("a"));
  REQUIRE(d.vantage_check_wanted());
  d.vantage_check_started();
  // A control probe sent before a went down vouches for nothing.
  d.on_result("c1", 0, true, at(89));
  CHECK(d.take_events().empty());
  // The check's answer, sent after: a's outage is reported, from its first failure.
  d.on_result("c2", 0, true, at(91));
  events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_down);
  CHECK(events[0].target == "a");
  CHECK(secs(events[0].start) == 30);
}

TEST_CASE("detector: a control answer sent after the deciding probe lets target_down out at once",
          "[detector][vantage]") {
  VantageLab lab;
  Detector& d = lab.d;
  lab.round(0, true, true, true, false);
  d.on_result("a", 0, false, at(30));
  d.on_result("a", 0, false, at(60));
  // The control's probe, sent a second after a's third, is answered before a's times out.
  d.on_result("c1", 0, true, at(91));
  d.on_result("a", 0, false, at(90));
  const auto events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_down);
  CHECK_FALSE(d.vantage_check_wanted());
}

TEST_CASE("detector: held targets are never blamed when the check fails and the vantage goes down",
          "[detector][vantage]") {
  VantageLab lab;
  Detector& d = lab.d;
  lab.round(0, true, true, true, false);
  for (int r = 1; r <= 3; ++r) {
    d.on_result("a", 0, false, at(30 * r));
    d.on_result("b", 0, false, at(30 * r + 1));
  }
  CHECK(d.vantage_check_wanted());
  // The checks fail, again and again: the vantage point is down, not a and b.
  for (int r = 0; r < 3; ++r) {
    d.on_result("c1", 0, false, at(92 + r));
    d.on_result("c2", 0, false, at(92 + r));
  }
  auto events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::vantage_down);
  CHECK(events[0].group == "control");  // CONTRACT: every event names a target or a group
  // Back: the controls answer, and a and b answer too. No target event ever.
  for (int r = 0; r < 2; ++r) {
    d.on_result("c1", 0, true, at(200 + r));
    d.on_result("c2", 0, true, at(200 + r));
    d.on_result("a", 0, true, at(200 + r));
    d.on_result("b", 0, true, at(200 + r));
  }
  events = d.take_events();
  INFO(kinds(events));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::vantage_up);
}

TEST_CASE("detector: without control targets nothing is held and no check is wanted", "[detector][vantage]") {
  Detector d(settings(2, 1));
  d.add_target("a", "g", false, 1);
  d.add_target("b", "g", false, 1);
  d.add_target("c", "g", false, 1);
  d.on_result("a", 0, false, at(0));
  d.on_result("a", 0, false, at(10));
  d.want_vantage_check();
  CHECK_FALSE(d.vantage_check_wanted());
  const auto events = d.take_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == EventKind::target_down);
}

TEST_CASE("detector: down_tally counts targets reported down and groups down", "[detector]") {
  Detector d(settings(3, 2));
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  for (const auto& n : names) d.add_target(n, "kp", false, 1);
  d.add_target("e", "other", false, 1);
  auto round = [&](int r, int failing) {
    for (int i = 0; i < 4; ++i) d.on_result(names[static_cast<std::size_t>(i)], 0, i >= failing, at(30 * r + i));
    d.on_result("e", 0, true, at(30 * r + 4));
  };
  auto tally = [&] {
    const auto t = d.down_tally();
    return std::vector<std::size_t>{t.targets_down, t.groups, t.groups_down};
  };
  round(0, 0);
  CHECK(tally() == std::vector<std::size_t>{0, 2, 0});
  round(1, 1);
  round(2, 1);
  CHECK(tally() == std::vector<std::size_t>{0, 2, 0});  // failing, not down yet
  round(3, 2);
  CHECK(tally() == std::vector<std::size_t>{1, 2, 0});
  round(4, 2);
  round(5, 2);
  CHECK(tally() == std::vector<std::size_t>{2, 2, 1});  // 2 of 4: kp down
  for (int r = 6; r < 9; ++r) round(r, 0);
  CHECK(tally() == std::vector<std::size_t>{0, 2, 0});
}
