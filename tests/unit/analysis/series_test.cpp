// Series: windows aligned to the wall clock, counts and loss per status, RTT
// statistics (exact, and within a bucket past 256 answers), each window closed once at end + grace, late results dropped,
// and the `series` record's fields.

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "clock.hpp"
#include "json_lines.hpp"
#include "records.hpp"
#include "series.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using outpost::Duration;
using outpost::FakeClock;
using outpost::ProbeResult;
using outpost::ProbeStatus;
using outpost::SeriesAggregator;
using outpost::SeriesKey;
using outpost::SeriesWindow;
using outpost::WallTime;
using outpost::window_start;

namespace {

// 2014-12-22T16:15:00Z, the moment in ARCHITECTURE.md's story.
constexpr std::int64_t k1615 = 1419264900;

WallTime at(std::int64_t seconds, std::int64_t nanos = 0) {
  return WallTime(std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos));
}
// 16:MM:SS on that day.
WallTime hms(int minute, int second, std::int64_t nanos = 0) {
  return at(k1615 + (minute - 15) * 60 + second, nanos);
}

ProbeResult result(ProbeStatus status, WallTime sent, std::optional<Duration> rtt = std::nullopt) {
  ProbeResult r;
  r.status = status;
  r.sent = sent;
  r.rtt = rtt;
  return r;
}
ProbeResult reply(WallTime sent, double rtt_ms) {
  return result(ProbeStatus::reply, sent,
                std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::milli>(rtt_ms)));
}

const SeriesKey kIcmp{"naenara", "kp", "icmp", 0};
const SeriesKey kTcp{"naenara", "kp", "tcp", 80};
const SeriesKey kControl{"quad9", "control", "icmp", 0};

}  // namespace

TEST_CASE("window_start: floor of the send time, from the Unix epoch", "[series]") {
  CHECK(window_start(hms(15, 59, 900000000), 60s) == hms(15, 0));
  CHECK(window_start(hms(15, 59, 999999999), 60s) == hms(15, 0));
  CHECK(window_start(hms(16, 0), 60s) == hms(16, 0));
  CHECK(window_start(hms(15, 0), 60s) == hms(15, 0));
  CHECK(window_start(hms(17, 30), 300s) == hms(15, 0));  // 16:15 is on a 5-minute boundary
  CHECK(window_start(hms(20, 0), 300s) == hms(20, 0));
  CHECK(window_start(at(20), 7s) == at(14));
  CHECK(window_start(at(0, 1), 500ms) == at(0));
  CHECK(window_start(at(1, 700000000), 500ms) == at(1, 500000000));
  // Before the epoch: still a floor, not a truncation toward zero.
  CHECK(window_start(WallTime(-1ns), 60s) == at(-60));
  CHECK(window_start(at(-60), 60s) == at(-60));
}

TEST_CASE("series: a probe counts in the window of its send time", "[series]") {
  SeriesAggregator series(60s, 5s);
  REQUIRE(series.add(kIcmp, reply(hms(15, 59, 900000000), 7)));  // sent 16:15:59.9
  REQUIRE(series.add(kIcmp, reply(hms(16, 0), 9)));               // sent 16:16:00.0
  const auto closed = series.close_due(hms(18, 0));
  REQUIRE(closed.size() == 2);
  CHECK(closed[0].start == hms(15, 0));
  CHECK(closed[0].length == 60s);
  CHECK(closed[0].end() == hms(16, 0));
  CHECK(closed[0].sent == 1);
  CHECK(closed[0].rtt->max == Approx(7));
  CHECK(closed[1].start == hms(16, 0));
  CHECK(closed[1].sent == 1);
  CHECK(closed[1].rtt->max == Approx(9));
}

TEST_CASE("series: RTT statistics against values worked out by hand", "[series]") {
  // Sorted 1 2 3 4 10 (ms): sum 20, mean 4. p50: rank 2, so 3.
  // p95: rank 0.95 * 4 = 3.8, so 4 + 0.8 * (10 - 4) = 8.8.
  // Population variance: (9 + 4 + 1 + 0 + 36) / 5 = 10.
  SeriesAggregator series(60s, 2s);
  int i = 0;
  for (double ms : {4.0, 10.0, 1.0, 3.0, 2.0}) series.add(kIcmp, reply(hms(15, 10 * i++), ms));
  const auto closed = series.close_due(hms(16, 2));
  REQUIRE(closed.size() == 1);
  const SeriesWindow& w = closed[0];
  CHECK(w.sent == 5);
  CHECK(w.received == 5);
  CHECK(w.loss() == 0);
  REQUIRE(w.rtt);
  CHECK(w.rtt->min == Approx(1));
  CHECK(w.rtt->avg == Approx(4));
  CHECK(w.rtt->p50 == Approx(3));
  CHECK(w.rtt->p95 == Approx(8.8));
  CHECK(w.rtt->max == Approx(10));
  CHECK(w.rtt->stddev == Approx(std::sqrt(10.0)));
}

TEST_CASE("series: a window of 60,000 answers, p50 and p95 within 1/128 of the exact ones", "[series]") {
  // 1,000 answers a second over a minute, RTTs from 10.000 to 69.999 ms in a
  // scrambled order: sorted they are 10 + k / 1000 ms, so the exact p50 is at
  // rank 29,999.5 (39.9995 ms) and p95 at rank 56,999.05 (66.99905 ms).
  SeriesAggregator series(60s, 2s);
  for (int k = 0; k < 60000; ++k) {
    const int j = (k * 7919) % 60000;  // 7919 is prime to 60,000: every j once
    series.add(kIcmp, reply(hms(15, k / 1000, (k % 1000) * 1000000LL), 10 + j / 1000.0));
  }
  const auto closed = series.close_due(hms(16, 2));
  REQUIRE(closed.size() == 1);
  const SeriesWindow& w = closed[0];
  CHECK(w.received == 60000);
  REQUIRE(w.rtt);
  CHECK(w.rtt->min == Approx(10));
  CHECK(w.rtt->max == Approx(69.999));
  CHECK(w.rtt->avg == Approx(39.9995));
  CHECK(std::abs(w.rtt->p50 - 39.9995) <= 39.9995 / 128);
  CHECK(std::abs(w.rtt->p95 - 66.99905) <= 66.99905 / 128);
  // Population stddev of 60,000 evenly spaced values 1 us apart: spread * sqrt((n^2 - 1) / 12) / n.
  CHECK(w.rtt->stddev == Approx(0.001 * std::sqrt((60000.0 * 60000.0 - 1) / 12)).epsilon(1e-6));
}

TEST_CASE("series: loss and the count of each status", "[series]") {
  SeriesAggregator series(60s, 2s);
  // 10 sent: 6 replies, 1 refused (the host answered), 1 timeout, 1 unreachable, 1 error.
  for (int s = 0; s < 6; ++s) series.add(kTcp, reply(hms(15, s), 20 + s));
  series.add(kTcp, result(ProbeStatus::refused, hms(15, 6), 30ms));
  series.add(kTcp, result(ProbeStatus::timeout, hms(15, 7)));
  series.add(kTcp, result(ProbeStatus::unreachable, hms(15, 8)));
  series.add(kTcp, result(ProbeStatus::error, hms(15, 9)));
  series.add(kTcp, result(ProbeStatus::timeout, hms(15, 10)));  // a second timeout: 11 sent
  const auto closed = series.close_due(hms(17, 0));
  REQUIRE(closed.size() == 1);
  const SeriesWindow& w = closed[0];
  CHECK(w.key == kTcp);
  CHECK(w.sent == 11);
  CHECK(w.received == 7);
  CHECK(w.timeouts == 2);
  CHECK(w.unreachable == 1);
  CHECK(w.errors == 1);
  CHECK(w.sent == w.received + w.timeouts + w.unreachable + w.errors);
  CHECK(w.loss() == Approx(4.0 / 11.0));
  REQUIRE(w.rtt);
  CHECK(w.rtt->min == Approx(20));
  CHECK(w.rtt->max == Approx(30));  // the RST's RTT is a sample too
  CHECK_FALSE(w.partial);
}

TEST_CASE("series: no RTT when nothing was received", "[series]") {
  SeriesAggregator series(60s, 2s);
  for (int s = 0; s < 60; s += 10) series.add(kIcmp, result(ProbeStatus::timeout, hms(15, s)));
  series.add(kIcmp, result(ProbeStatus::unreachable, hms(15, 55)));
  // An answer without an RTT is received but gives no sample.
  series.add(kTcp, result(ProbeStatus::refused, hms(15, 1)));
  const auto closed = series.close_due(hms(17, 0));
  REQUIRE(closed.size() == 2);
  CHECK(closed[0].key == kIcmp);
  CHECK(closed[0].sent == 7);
  CHECK(closed[0].received == 0);
  CHECK(closed[0].loss() == 1.0);
  CHECK_FALSE(closed[0].rtt);
  CHECK(closed[1].key == kTcp);
  CHECK(closed[1].received == 1);
  CHECK(closed[1].loss() == 0.0);
  CHECK_FALSE(closed[1].rtt);
}

TEST_CASE("series: a window closes at end + grace, exactly once", "[series]") {
  SeriesAggregator series(60s, 5s);
  CHECK_FALSE(series.next_close());
  CHECK(series.close_due(hms(30, 0)).empty());  // nothing open: nothing to close
  series.add(kIcmp, reply(hms(31, 30), 5));
  series.add(kIcmp, reply(hms(31, 59, 999999999), 6));
  REQUIRE(series.next_close());
  CHECK(*series.next_close() == hms(32, 5));
  CHECK(series.close_due(hms(31, 59)).empty());
  CHECK(series.close_due(hms(32, 0)).empty());                // the end: results may still come
  CHECK(series.close_due(hms(32, 4, 999999999)).empty());     // one nanosecond before end + grace
  // The probe sent at 16:31:59.999999999 answered late in the grace time: still counted.
  series.add(kIcmp, result(ProbeStatus::timeout, hms(31, 59, 500000000)));
  const auto closed = series.close_due(hms(32, 5));
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].start == hms(31, 0));
  CHECK(closed[0].sent == 3);
  CHECK(closed[0].received == 2);
  CHECK_FALSE(series.next_close());
  CHECK(series.open_windows() == 0);
  CHECK(series.close_due(hms(32, 5)).empty());
  CHECK(series.close_due(hms(40, 0)).empty());
  CHECK(series.late_results() == 0);
}

TEST_CASE("series: a result for a closed window is counted as late and dropped", "[series]") {
  SeriesAggregator series(60s, 5s);
  series.add(kIcmp, reply(hms(15, 10), 5));
  series.add(kIcmp, reply(hms(16, 10), 5));
  const auto first = series.close_due(hms(16, 5));
  REQUIRE(first.size() == 1);
  CHECK(first[0].sent == 1);

  // Sent 16:15:50 but only handed over now: its window is gone.
  CHECK_FALSE(series.add(kIcmp, reply(hms(15, 50), 7)));
  CHECK(series.late_results() == 1);
  // Also for a key that had nothing in that window: it is closed for every key.
  CHECK_FALSE(series.add(kTcp, result(ProbeStatus::timeout, hms(15, 55))));
  CHECK(series.late_results() == 2);
  // The open window still takes results.
  CHECK(series.add(kIcmp, reply(hms(16, 20), 9)));

  const auto second = series.close_due(hms(17, 5));
  REQUIRE(second.size() == 1);  // no window reopened for 16:15
  CHECK(second[0].start == hms(16, 0));
  CHECK(second[0].sent == 2);
  CHECK(second[0].rtt->max == Approx(9));
  CHECK(series.late_results() == 2);
}

TEST_CASE("series: several keys interleaved", "[series]") {
  SeriesAggregator series(60s, 3s);
  const auto icmp = series.key_id(kIcmp);
  const auto tcp = series.key_id(kTcp);
  const auto control = series.key_id(kControl);
  CHECK(series.key_id(kIcmp) == icmp);  // stable
  CHECK(series.key_id(SeriesKey{"naenara", "kp", "tcp", 80}) == tcp);
  CHECK(series.key_id(SeriesKey{"naenara", "kp", "tcp", 443}) != tcp);
  CHECK(icmp != tcp);
  CHECK(tcp != control);

  // Over 16:15-16:17: naenara goes dark at 16:16 on icmp and tcp; the control target stays fine.
  for (int s = 0; s < 120; s += 10) {
    const WallTime t = hms(15, 0) + std::chrono::seconds(s);
    const bool dark = s >= 60;
    series.add(control, reply(t + 1s, 2));
    series.add(tcp, dark ? result(ProbeStatus::timeout, t + 2s) : reply(t + 2s, 40));
    series.add(icmp, dark ? result(ProbeStatus::timeout, t) : reply(t, 30 + s));
  }
  CHECK(series.open_windows() == 6);
  // Due at 16:16:03: the 16:15 windows, in the order the keys were first seen.
  const auto first = series.close_due(hms(16, 3));
  REQUIRE(first.size() == 3);
  CHECK(first[0].key == kIcmp);
  CHECK(first[1].key == kTcp);
  CHECK(first[2].key == kControl);
  for (const auto& w : first) {
    CHECK(w.start == hms(15, 0));
    CHECK(w.sent == 6);
    CHECK(w.received == 6);
  }
  CHECK(first[0].rtt->min == Approx(30));
  CHECK(first[0].rtt->max == Approx(80));
  CHECK(first[0].rtt->avg == Approx(55));
  CHECK(first[1].rtt->avg == Approx(40));
  CHECK(first[2].rtt->avg == Approx(2));

  const auto second = series.close_due(hms(17, 3));
  REQUIRE(second.size() == 3);
  CHECK(second[0].key == kIcmp);
  CHECK(second[0].loss() == 1.0);
  CHECK_FALSE(second[0].rtt);
  CHECK(second[1].key == kTcp);
  CHECK(second[1].timeouts == 6);
  CHECK(second[2].key == kControl);
  CHECK(second[2].loss() == 0.0);
}

TEST_CASE("series: close_due hands back windows in time order", "[series]") {
  SeriesAggregator series(60s, 1s);
  series.add(kTcp, reply(hms(17, 0), 1));
  series.add(kIcmp, reply(hms(16, 0), 1));
  series.add(kTcp, reply(hms(15, 0), 1));
  series.add(kIcmp, reply(hms(15, 30), 1));
  const auto closed = series.close_due(hms(20, 0));
  REQUIRE(closed.size() == 4);
  CHECK(closed[0].start == hms(15, 0));
  CHECK(closed[0].key == kTcp);  // first seen
  CHECK(closed[1].start == hms(15, 0));
  CHECK(closed[1].key == kIcmp);
  CHECK(closed[2].start == hms(16, 0));
  CHECK(closed[3].start == hms(17, 0));
}

TEST_CASE("series: an agent's loop on a fake clock closes each window once", "[series]") {
  FakeClock clock;  // starts at 16:15:00
  const Duration timeout = 2s;
  SeriesAggregator series(60s, timeout, clock.wall());
  std::vector<SeriesWindow> emitted;
  // One probe a second for 3 minutes; every fifth times out (its result comes at sent + timeout).
  std::vector<std::pair<WallTime, ProbeResult>> in_flight;
  for (int tick = 0; tick < 180; ++tick) {
    const WallTime now = clock.wall();
    if (tick % 5 == 4) in_flight.emplace_back(now + timeout, result(ProbeStatus::timeout, now));
    else series.add(kIcmp, reply(now, 10));
    clock.advance(500ms);
    for (auto it = in_flight.begin(); it != in_flight.end();) {
      if (it->first <= clock.wall()) {
        CHECK(series.add(kIcmp, it->second));
        it = in_flight.erase(it);
      } else {
        ++it;
      }
    }
    if (auto due = series.next_close(); due && *due <= clock.wall())
      for (auto& w : series.close_due(clock.wall())) emitted.push_back(w);
    clock.advance(500ms);
  }
  clock.advance(10s);
  for (auto& [when, r] : in_flight) series.add(kIcmp, r);
  for (auto& w : series.close_due(clock.wall())) emitted.push_back(w);
  REQUIRE(emitted.size() == 3);
  std::set<WallTime> starts;
  for (const auto& w : emitted) {
    starts.insert(w.start);
    CHECK(w.sent == 60);
    CHECK(w.received == 48);
    CHECK(w.timeouts == 12);
    CHECK(w.loss() == Approx(0.2));
    CHECK_FALSE(w.partial);
  }
  CHECK(starts == std::set<WallTime>{hms(15, 0), hms(16, 0), hms(17, 0)});
  CHECK(series.late_results() == 0);
}

TEST_CASE("series: close_all at shutdown", "[series]") {
  SeriesAggregator series(60s, 5s);
  series.add(kIcmp, reply(hms(15, 30), 5));
  series.add(kIcmp, reply(hms(16, 10), 6));
  series.add(kTcp, result(ProbeStatus::timeout, hms(16, 20)));
  // Stopping at 16:16:30: the 16:15 window is whole (only its grace is cut
  // short), the 16:16 windows are not.
  const auto closed = series.close_all(hms(16, 30));
  REQUIRE(closed.size() == 3);
  CHECK(closed[0].start == hms(15, 0));
  CHECK_FALSE(closed[0].partial);
  CHECK(closed[1].start == hms(16, 0));
  CHECK(closed[1].key == kIcmp);
  CHECK(closed[1].partial);
  CHECK(closed[2].key == kTcp);
  CHECK(closed[2].partial);
  CHECK(closed[2].sent == 1);
  CHECK(series.open_windows() == 0);
  CHECK_FALSE(series.next_close());
  // What arrives afterwards cannot change what was emitted.
  CHECK_FALSE(series.add(kIcmp, reply(hms(16, 25), 7)));
  CHECK_FALSE(series.add(kControl, reply(hms(16, 29), 7)));
  CHECK(series.late_results() == 2);
  CHECK(series.close_all(hms(16, 31)).empty());
  CHECK(series.close_due(hms(20, 0)).empty());
}

TEST_CASE("series: the window the agent started in is partial", "[series]") {
  SeriesAggregator series(60s, 5s, hms(15, 42));
  series.add(kIcmp, reply(hms(15, 42), 5));
  series.add(kIcmp, reply(hms(16, 0), 5));
  const auto closed = series.close_due(hms(17, 5));
  REQUIRE(closed.size() == 2);
  CHECK(closed[0].partial);
  CHECK_FALSE(closed[1].partial);
  // Started exactly on a boundary: that window is whole.
  SeriesAggregator aligned(60s, 5s, hms(15, 0));
  aligned.add(kIcmp, reply(hms(15, 1), 5));
  const auto whole = aligned.close_due(hms(17, 0));
  REQUIRE(whole.size() == 1);
  CHECK_FALSE(whole[0].partial);
}

TEST_CASE("series: a window must be positive and grace not negative", "[series]") {
  CHECK_THROWS_AS(SeriesAggregator(0s, 1s), std::invalid_argument);
  CHECK_THROWS_AS(SeriesAggregator(-60s, 1s), std::invalid_argument);
  CHECK_THROWS_AS(SeriesAggregator(60s, -1s), std::invalid_argument);
  CHECK_NOTHROW(SeriesAggregator(60s, 0s));
  SeriesAggregator series(60s, 0s);
  series.add(kIcmp, reply(hms(15, 0), 1));
  CHECK(series.close_due(hms(15, 59, 999999999)).empty());
  CHECK(series.close_due(hms(16, 0)).size() == 1);  // no grace: due at the end
}

TEST_CASE("series_record: the fields of a window with answers", "[series][records]") {
  SeriesAggregator series(60s, 2s);
  int i = 0;
  for (double ms : {4.0, 10.0, 1.0, 3.0, 2.0}) series.add(kIcmp, reply(hms(15, 10 * i++), ms));
  series.add(kIcmp, result(ProbeStatus::timeout, hms(15, 55)));
  const auto closed = series.close_due(hms(17, 0));
  REQUIRE(closed.size() == 1);
  const json j = outpost::to_json(outpost::series_record("fra-1", closed[0]));

  std::set<std::string> fields;
  for (const auto& [k, v] : j.items()) fields.insert(k);
  CHECK(fields == std::set<std::string>{"type", "agent", "time", "target", "group", "method", "window_start",
                                        "window_s", "sent", "received", "loss", "timeouts", "unreachable",
                                        "errors", "rtt_min_ms", "rtt_avg_ms", "rtt_p50_ms", "rtt_p95_ms",
                                        "rtt_max_ms", "rtt_stddev_ms", "partial"});
  CHECK(j.at("type") == "series");
  CHECK(j.at("agent") == "fra-1");
  CHECK(j.at("time") == "2014-12-22T16:15:00.000000Z");
  CHECK(j.at("window_start") == "2014-12-22T16:15:00.000000Z");
  CHECK(j.at("target") == "naenara");
  CHECK(j.at("group") == "kp");
  CHECK(j.at("method") == "icmp");
  CHECK(j.at("window_s").is_number_integer());
  CHECK(j.at("window_s") == 60);
  CHECK(j.at("sent") == 6);
  CHECK(j.at("received") == 5);
  CHECK(j.at("loss").get<double>() == Approx(1.0 / 6.0));
  CHECK(j.at("timeouts") == 1);
  CHECK(j.at("unreachable") == 0);
  CHECK(j.at("errors") == 0);
  CHECK(j.at("rtt_min_ms").get<double>() == Approx(1));
  CHECK(j.at("rtt_avg_ms").get<double>() == Approx(4));
  CHECK(j.at("rtt_p50_ms").get<double>() == Approx(3));
  CHECK(j.at("rtt_p95_ms").get<double>() == Approx(8.8));
  CHECK(j.at("rtt_max_ms").get<double>() == Approx(10));
  CHECK(j.at("rtt_stddev_ms").get<double>() == Approx(std::sqrt(10.0)));
  CHECK(j.at("partial") == false);
}

TEST_CASE("series_record: tcp has a port, no rtt fields when nothing was received", "[series][records]") {
  SeriesAggregator series(500ms, 0s);
  series.add(kTcp, result(ProbeStatus::timeout, hms(15, 1, 600000000)));
  series.add(kTcp, result(ProbeStatus::error, hms(15, 1, 700000000)));
  const auto closed = series.close_all(hms(15, 1, 800000000));
  REQUIRE(closed.size() == 1);
  const json j = outpost::to_json(outpost::series_record("fra-1", closed[0]));

  std::set<std::string> fields;
  for (const auto& [k, v] : j.items()) fields.insert(k);
  CHECK(fields == std::set<std::string>{"type", "agent", "time", "target", "group", "method", "port",
                                        "window_start", "window_s", "sent", "received", "loss", "timeouts",
                                        "unreachable", "errors", "partial"});
  CHECK(j.at("method") == "tcp");
  CHECK(j.at("port") == 80);
  CHECK(j.at("window_start") == "2014-12-22T16:15:01.500000Z");
  CHECK(j.at("window_s").get<double>() == Approx(0.5));
  CHECK(j.at("sent") == 2);
  CHECK(j.at("received") == 0);
  CHECK(j.at("loss").get<double>() == 1.0);
  CHECK(j.at("timeouts") == 1);
  CHECK(j.at("errors") == 1);
  CHECK(j.at("partial") == true);
}

TEST_CASE("series: closing a few windows at a time keeps their order, and the rest stay due", "[series]") {
  SeriesAggregator series(60s, 2s);
  std::vector<SeriesKey> keys;
  for (int i = 0; i < 5; ++i) {
    keys.push_back({"t" + std::to_string(i), "g", "icmp", 0, 4});
    series.add(keys.back(), reply(hms(15, 10 + i), 5));
  }
  series.add(keys[0], reply(hms(16, 10), 5));  // the next window: not due
  std::vector<std::string> order;
  auto emit = [&](SeriesWindow&& w) { order.push_back(w.key.target); };
  CHECK(series.close_due(hms(16, 2), emit, 2));  // more remain
  CHECK(order == std::vector<std::string>{"t0", "t1"});
  REQUIRE(series.next_close());
  CHECK(*series.next_close() <= hms(16, 2));  // due still: the caller comes back at once
  // A result for a window that is closing is late, as for one closed.
  CHECK_FALSE(series.add(keys[3], reply(hms(15, 59), 5)));
  CHECK(series.late_results() == 1);
  CHECK(series.close_due(hms(16, 2), emit, 2));
  CHECK_FALSE(series.close_due(hms(16, 2), emit, 2));  // the last one: none remain
  CHECK(order == std::vector<std::string>{"t0", "t1", "t2", "t3", "t4"});
  CHECK(series.open_windows() == 1);
  CHECK_FALSE(series.close_due(hms(16, 3), emit, 0));  // nothing due
}
