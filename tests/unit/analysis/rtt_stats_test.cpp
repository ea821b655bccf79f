// summarize_rtts against values worked out by hand: min, avg, p50 and p95 by
// linear interpolation between closest ranks, max, population stddev.

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "rtt_stats.hpp"

using outpost::summarize_rtts;

TEST_CASE("summarize_rtts: nothing to summarize", "[rtt_stats]") { CHECK_FALSE(summarize_rtts({})); }

TEST_CASE("summarize_rtts: one sample", "[rtt_stats]") {
  const auto s = summarize_rtts({12.5});
  REQUIRE(s);
  CHECK(s->min == 12.5);
  CHECK(s->avg == 12.5);
  CHECK(s->p50 == 12.5);
  CHECK(s->p95 == 12.5);
  CHECK(s->max == 12.5);
  CHECK(s->stddev == 0);
}

TEST_CASE("summarize_rtts: five evenly spaced samples", "[rtt_stats]") {
  // Sorted 10 20 30 40 50. p95: rank 0.95 * 4 = 3.8, so 40 + 0.8 * (50 - 40) = 48.
  // Population variance: (400 + 100 + 0 + 100 + 400) / 5 = 200.
  const auto s = summarize_rtts({30, 50, 10, 40, 20});
  REQUIRE(s);
  CHECK(s->min == 10);
  CHECK(s->max == 50);
  CHECK(s->avg == Approx(30));
  CHECK(s->p50 == Approx(30));
  CHECK(s->p95 == Approx(48));
  CHECK(s->stddev == Approx(std::sqrt(200.0)));
}

TEST_CASE("summarize_rtts: an even count, unsorted, with repeats", "[rtt_stats]") {
  // Sorted 1 1 2 3 4 5 6 9 (n = 8), sum 31, mean 3.875.
  // p50: rank 3.5, between 3 and 4: 3.5. p95: rank 6.65, 6 + 0.65 * (9 - 6) = 7.95.
  // Squared deviations sum to 52.875; / 8 = 6.609375; sqrt = 2.5708704751503917.
  const auto s = summarize_rtts({3, 1, 4, 1, 5, 9, 2, 6});
  REQUIRE(s);
  CHECK(s->min == 1);
  CHECK(s->max == 9);
  CHECK(s->avg == Approx(3.875));
  CHECK(s->p50 == Approx(3.5));
  CHECK(s->p95 == Approx(7.95));
  CHECK(s->stddev == Approx(2.5708704751503917));
}

TEST_CASE("summarize_rtts: two samples, as ping's mdev would give", "[rtt_stats]") {
  // 0.25 and 0.75 ms: mean 0.5, population stddev 0.25 (a sample stddev would be 0.3536).
  const auto s = summarize_rtts({0.75, 0.25});
  REQUIRE(s);
  CHECK(s->avg == Approx(0.5));
  CHECK(s->p50 == Approx(0.5));
  CHECK(s->p95 == Approx(0.725));
  CHECK(s->stddev == Approx(0.25));
}

TEST_CASE("summarize_rtts: one slow outlier moves p95 and max, not p50", "[rtt_stats]") {
  std::vector<double> samples(99, 20.0);
  samples.push_back(2000.0);
  const auto s = summarize_rtts(samples);
  REQUIRE(s);
  CHECK(s->p50 == 20.0);
  CHECK(s->p95 == 20.0);  // rank 94.05: both neighbours are 20
  CHECK(s->max == 2000.0);
  CHECK(s->avg == Approx(39.8));
  // Variance: (99 * 19.8^2 + 1960.2^2) / 100.
  CHECK(s->stddev == Approx(std::sqrt((99 * 19.8 * 19.8 + 1960.2 * 1960.2) / 100)));
}
