#include <catch2/catch.hpp>

#include "report_analysis.hpp"

using namespace outpost::report;

namespace {

// Windows of `length` s from t = 0, medians rising 1 ms each, every one answered.
std::vector<Window> rising(int count, double length = 60) {
  std::vector<Window> ws;
  for (int i = 0; i < count; ++i) {
    Window w;
    w.start = i * length;
    w.length = length;
    w.sent = 10;
    w.received = i % 7 == 0 ? 8 : 10;
    w.rtt_min = 10.0 + i * 0.5;
    w.rtt_p50 = 20.0 + i;
    w.rtt_p95 = 30.0 + i;
    w.rtt_max = 40.0 + i * 2;
    ws.push_back(w);
  }
  return ws;
}

VerdictInfo verdict(const std::string& where) {
  VerdictInfo v;
  v.where = where;
  v.last_hop = "203.0.113.9";
  v.last_hop_asn = 4837;
  v.last_ttl = 7;
  v.baseline_reached_asn = 131279;
  return v;
}

std::string names(std::uint32_t asn) {
  if (asn == 4837) return "CHINA169-BACKBONE";
  if (asn == 131279) return "STAR-KP";
  return "";
}

}  // namespace

TEST_CASE("report downsampling: the bucket count is bounded and the bounds survive") {
  const auto windows = rising(1440);  // one day of minute windows
  const auto buckets = downsample(windows, 0, 1440 * 60, 300);
  CHECK(buckets.size() <= 300);
  CHECK(buckets.size() >= 280);
  std::uint64_t sent = 0, received = 0;
  double lowest = 1e9, highest = 0;
  for (const Window& b : buckets) {
    sent += b.sent;
    received += b.received;
    lowest = std::min(lowest, *b.rtt_min);
    highest = std::max(highest, *b.rtt_max);
    REQUIRE(b.rtt_p50);
    CHECK(*b.rtt_min <= *b.rtt_p50);
    CHECK(*b.rtt_p50 <= *b.rtt_p95);
    CHECK(*b.rtt_p95 <= *b.rtt_max);
  }
  // Every window lands somewhere: the counts add up, and min of mins / max of maxes are the day's.
  CHECK(sent == 14400);
  CHECK(received == summarize(windows).received);
  CHECK(lowest == 10.0);
  CHECK(highest == 40.0 + 1439 * 2);

  // One bucket in detail: min of the mins, max of the maxes and p95s, median of the medians, loss from the counts.
  const auto one = downsample(rising(5), 0, 300, 1);
  REQUIRE(one.size() == 1);
  CHECK(*one[0].rtt_min == 10.0);
  CHECK(*one[0].rtt_max == 48.0);
  CHECK(*one[0].rtt_p95 == 34.0);
  CHECK(*one[0].rtt_p50 == 22.0);
  CHECK(one[0].sent == 50);
  CHECK(one[0].loss() == Approx(2.0 / 50));
  CHECK(one[0].start == 0);
  CHECK(one[0].end() == 300);
}

TEST_CASE("report downsampling: fewer windows than buckets keep one bucket each; gaps stay gaps") {
  auto windows = rising(10);
  windows.erase(windows.begin() + 3, windows.begin() + 6);
  const auto buckets = downsample(windows, 0, 600, 300);
  CHECK(buckets.size() == 7);
  CHECK(downsample({}, 0, 600, 300).empty());
  // Windows outside the period land in the edge buckets, never out of bounds.
  const auto edges = downsample(rising(10), 120, 180, 3);
  CHECK(edges.size() == 2);
  CHECK(edges.front().sent + edges.back().sent == 100);
}

TEST_CASE("report summary: the table's numbers come from every window, not from the buckets") {
  const auto windows = rising(1440);
  const Summary s = summarize(windows);
  CHECK(s.windows == 1440);
  CHECK(s.sent == 14400);
  CHECK(s.received == 14400 - 2 * 206);
  CHECK(s.loss == Approx(2.0 * 206 / 14400));
  CHECK(*s.rtt_min == 10.0);
  CHECK(*s.rtt_max == 40.0 + 1439 * 2);
  // Medians 20..1459 ms weighted by answers: the median of the medians lies in the middle.
  CHECK(*s.rtt_p50 == Approx(20 + 719.5).margin(2));
  CHECK(*s.rtt_p95 == Approx(30 + 0.95 * 1439).margin(3));
  CHECK(s.answered == 1.0);
  // The same numbers whatever the charts draw.
  const auto before = summarize(windows);
  (void)downsample(windows, 0, 1440 * 60, 10);
  CHECK(summarize(windows).rtt_p50 == before.rtt_p50);

  // Availability: time in windows with an answer, over time covered.
  auto some_dark = rising(4);
  some_dark[1].received = 0;
  some_dark[1].rtt_min = some_dark[1].rtt_p50 = some_dark[1].rtt_p95 = some_dark[1].rtt_max = std::nullopt;
  const Summary d = summarize(some_dark);
  CHECK(d.answered == Approx(0.75));
  CHECK(d.loss == Approx((2.0 + 10.0) / 40));
  CHECK(*d.rtt_max == 46.0);
  CHECK(summarize({}).rtt_p50 == std::nullopt);
}

TEST_CASE("report verdicts in words, for each `where`") {
  CHECK(verdict_text(verdict("upstream"), names) ==
        "the path dies after hop 7, 203.0.113.9, AS4837 (CHINA169-BACKBONE), inside the upstream carrier; the last "
        "good trace reached AS131279 (STAR-KP)");
  CHECK(verdict_text(verdict("before_upstream"), names) ==
        "the path dies after hop 7, 203.0.113.9, AS4837 (CHINA169-BACKBONE), before the upstream carrier (between "
        "this vantage point and the carrier); the last good trace reached AS131279 (STAR-KP)");
  CHECK(verdict_text(verdict("target_network"), names) ==
        "the path still reaches the target's own network (last answer: hop 7, 203.0.113.9, AS4837 "
        "(CHINA169-BACKBONE)), so the break is inside the target's network, or the target no longer answers; the "
        "last good trace reached AS131279 (STAR-KP)");
  CHECK(verdict_text(verdict("vantage"), names) ==
        "the vantage point's own connectivity failed (its control targets failed too): not the target's problem");
  VerdictInfo unknown = verdict("unknown");
  unknown.reason = "the last router no longer answers";
  CHECK(verdict_text(unknown, names) ==
        "where the path breaks is unknown (the last answer came from hop 7, 203.0.113.9, AS4837 (CHINA169-BACKBONE)): "
        "the last router no longer answers");
  // No names, no ASN, no hop.
  VerdictInfo bare;
  bare.where = "upstream";
  CHECK(verdict_text(bare, nullptr) == "no hop answered, inside the upstream carrier");
  VerdictInfo unnamed = verdict("upstream");
  unnamed.baseline_reached_asn.reset();
  CHECK(verdict_text(unnamed, nullptr) == "the path dies after hop 7, 203.0.113.9, AS4837, inside the upstream carrier");
}

TEST_CASE("report blame: whose problem an outage is, from the other vantage points") {
  const Interval outage{1000, 2000};
  VantageView me{"fra", {outage}, {{0, 1000}, {2000, 3000}}};
  VantageView up{"ams", {}, {{0, 3000}}};
  VantageView up2{"nyc", {}, {{0, 3000}}};
  VantageView down{"ams", {{1010, 1990}}, {{0, 1000}, {2000, 3000}}};
  VantageView partly{"nyc", {{1500, 2500}}, {{0, 1500}, {2500, 3000}}};
  VantageView no_data{"sin", {}, {{5000, 6000}}};

  SECTION("one vantage down while the others reach the target: the vantage's") {
    const Labelled l = label_outage("fra", outage, OutageScope::target, verdict("upstream"), {me, up, up2});
    CHECK(l.blame == Blame::vantage);
    CHECK(l.reached_by == std::vector<std::string>{"ams", "nyc"});
    CHECK(l.also_down.empty());
  }
  SECTION("all down: the target's, or the carrier's when the break is inside the upstream carrier") {
    CHECK(label_outage("fra", outage, OutageScope::target, verdict("target_network"), {me, down}).blame == Blame::target);
    const Labelled l = label_outage("fra", outage, OutageScope::group, verdict("upstream"), {me, down});
    CHECK(l.blame == Blame::carrier);
    CHECK(l.also_down == std::vector<std::string>{"ams"});
    CHECK(label_outage("fra", outage, OutageScope::target, std::nullopt, {me, down}).blame == Blame::target);
  }
  SECTION("an outage overlapping only in part counts as seen from both") {
    CHECK(label_outage("fra", outage, OutageScope::target, verdict("unknown"), {me, partly}).blame == Blame::target);
    CHECK(label_outage("nyc", {1500, 2500}, OutageScope::target, verdict("unknown"), {me, partly}).blame ==
          Blame::target);
  }
  SECTION("some down, some up: seen from some vantage points only") {
    const Labelled l = label_outage("fra", outage, OutageScope::target, verdict("upstream"), {me, down, up2});
    CHECK(l.blame == Blame::some_vantages);
    CHECK(l.also_down == std::vector<std::string>{"ams"});
    CHECK(l.reached_by == std::vector<std::string>{"nyc"});
  }
  SECTION("others without data then do not count; alone, the verdict decides") {
    CHECK(label_outage("fra", outage, OutageScope::target, verdict("upstream"), {me, no_data}).blame == Blame::carrier);
    CHECK(label_outage("fra", outage, OutageScope::target, verdict("upstream"), {me}).blame == Blame::carrier);
    CHECK(label_outage("fra", outage, OutageScope::target, verdict("vantage"), {me}).blame == Blame::vantage);
  }
  SECTION("the vantage point's own outage is always its own") {
    CHECK(label_outage("fra", outage, OutageScope::vantage, std::nullopt, {me, down}).blame == Blame::vantage);
  }
}

TEST_CASE("report outages: paired events, an up alone, a down still open at the end") {
  Dataset data;
  auto event = [&](const std::string& agent, const std::string& kind, const std::string& target, double time,
                   double start, std::optional<double> end) {
    Event e;
    e.agent = agent;
    e.kind = kind;
    e.target = target;
    e.group = "kp";
    e.time = time;
    e.start = start;
    e.end = end;
    if (kind.find("_down") != std::string::npos) e.verdict = verdict("upstream");
    data.events.push_back(e);
  };
  event("fra", "target_up", "a", 50, 10, 45);  // its down lies before the records
  event("fra", "target_down", "b", 105, 100, std::nullopt);
  event("fra", "target_down", "b", 106, 100, std::nullopt);  // repeated
  event("fra", "target_up", "b", 210, 100, 200);
  event("ams", "target_down", "b", 305, 300, std::nullopt);  // never comes back
  data.latest = 900;
  const auto outages = outages_of(data);
  REQUIRE(outages.size() == 3);
  CHECK(outages[0].target == "a");
  CHECK(outages[0].span.start == 10);
  CHECK(outages[0].span.end == 45);
  CHECK(!outages[0].verdict);
  CHECK(outages[1].target == "b");
  CHECK(outages[1].span.end == 200);
  CHECK(!outages[1].open);
  REQUIRE(outages[1].verdict);
  CHECK(outages[1].verdict->where == "upstream");
  CHECK(outages[2].agent == "ams");
  CHECK(outages[2].open);
  CHECK(outages[2].span.end == 900);

  Outage group;
  group.agent = "fra";
  group.scope = OutageScope::group;
  group.group = "kp";
  group.targets = {"a", "b"};
  CHECK(concerns(group, "fra", "kp", "a"));
  CHECK(!concerns(group, "fra", "kp", "c"));
  CHECK(!concerns(group, "ams", "kp", "a"));
  Outage vantage;
  vantage.agent = "ams";
  vantage.scope = OutageScope::vantage;
  CHECK(concerns(vantage, "ams", "other", "anything"));
}

TEST_CASE("report availability: time not in a target outage, out of the time the vantage point was up") {
  const Interval day{0, 1000};
  CHECK(covered_time({{100, 200}, {150, 300}, {900, 1200}}, day) == 300);
  CHECK(*availability(day, {}, {}) == 1.0);
  CHECK(*availability(day, {{100, 200}, {150, 300}}, {}) == Approx(0.8));
  // The vantage point's own outage is neither the target's down time nor its up time.
  CHECK(*availability(day, {{100, 300}}, {{200, 400}}) == Approx(1 - 100.0 / 800));
  CHECK(*availability(day, {{-50, 50}, {990, 2000}}, {}) == Approx(0.94));
  CHECK(!availability(day, {}, {{0, 1000}}));
}
