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

// RttAccumulator: the same summary while it keeps every sample; past
// kExactSamples, exact min, max, avg and stddev, and p50 and p95 within one
// bucket (1/128 of the value) of the exact ones.

#include <chrono>
#include <random>

using outpost::RttAccumulator;
using ns = std::chrono::nanoseconds;

TEST_CASE("RttAccumulator: buckets tile the line, each at most 1/128 of its values wide", "[rtt_stats]") {
  std::uint64_t expect_lower = 0;
  for (std::uint32_t i = 0; i < 40 * 128; ++i) {
    const std::uint64_t lower = RttAccumulator::bucket_lower(i), width = RttAccumulator::bucket_width(i);
    REQUIRE(lower == expect_lower);  // no gap, no overlap
    CHECK(RttAccumulator::bucket(lower) == i);
    CHECK(RttAccumulator::bucket(lower + width - 1) == i);
    if (lower >= 128) CHECK(width * 128 <= lower);
    expect_lower = lower + width;
  }
  CHECK(RttAccumulator::bucket(0) == 0);
  CHECK(RttAccumulator::bucket(127) == 127);
  CHECK(RttAccumulator::bucket(128) == 128);
  CHECK(RttAccumulator::bucket(256) == 256);   // octave 8: 2 ns buckets
  CHECK(RttAccumulator::bucket(257) == 256);
  CHECK(RttAccumulator::bucket(258) == 257);
  CHECK(RttAccumulator::bucket(~std::uint64_t{0}) < 64 * 128);
}

TEST_CASE("RttAccumulator: up to 256 answers, the exact summary", "[rtt_stats]") {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> rtt_ms(1.0, 0.8);
  RttAccumulator acc;
  CHECK_FALSE(acc.summary());
  std::vector<double> kept;
  for (std::size_t n = 1; n <= RttAccumulator::kExactSamples; ++n) {
    const auto v = static_cast<std::int64_t>(rtt_ms(random) * 1e6);
    acc.add(ns(v));
    kept.push_back(static_cast<double>(v) / 1e6);
  }
  REQUIRE(acc.exact());
  REQUIRE(acc.count() == RttAccumulator::kExactSamples);
  const auto got = acc.summary();
  const auto want = summarize_rtts(kept);
  REQUIRE(got);
  REQUIRE(want);
  CHECK(got->min == want->min);
  CHECK(got->avg == want->avg);
  CHECK(got->p50 == want->p50);
  CHECK(got->p95 == want->p95);
  CHECK(got->max == want->max);
  CHECK(got->stddev == want->stddev);
}

namespace {
void check_close_to_exact(const std::vector<std::int64_t>& values) {
  RttAccumulator acc;
  std::vector<double> ms;
  for (auto v : values) {
    acc.add(ns(v));
    ms.push_back(static_cast<double>(v) / 1e6);
  }
  REQUIRE_FALSE(acc.exact());
  CHECK(acc.count() == values.size());
  const auto got = acc.summary();
  const auto want = summarize_rtts(ms);
  REQUIRE(got);
  REQUIRE(want);
  CHECK(got->min == want->min);
  CHECK(got->max == want->max);
  CHECK(got->avg == Approx(want->avg).epsilon(1e-9));
  CHECK(got->stddev == Approx(want->stddev).epsilon(1e-6).margin(1e-12));
  // One bucket: 1/128 of the value (1 ns below 128 ns), and a ns of rounding.
  CHECK(std::abs(got->p50 - want->p50) <= want->p50 / 128 + 2e-6);
  CHECK(std::abs(got->p95 - want->p95) <= want->p95 / 128 + 2e-6);
}
}  // namespace

TEST_CASE("RttAccumulator: past 256 answers, percentiles within a bucket of the exact ones", "[rtt_stats]") {
  std::mt19937_64 random(11);
  SECTION("a long-tailed path, 100,000 answers") {
    std::lognormal_distribution<double> rtt_ms(2.0, 1.0);
    std::vector<std::int64_t> v;
    for (int i = 0; i < 100000; ++i) v.push_back(static_cast<std::int64_t>(rtt_ms(random) * 1e6));
    check_close_to_exact(v);
  }
  SECTION("two paths, 5 ms and 180 ms, and 257 answers: just past the switch") {
    std::normal_distribution<double> near(5e6, 2e5), far(180e6, 3e6);
    std::vector<std::int64_t> v;
    for (int i = 0; i < 257; ++i) v.push_back(static_cast<std::int64_t>(i % 3 == 0 ? far(random) : near(random)));
    check_close_to_exact(v);
  }
  SECTION("the same RTT again and again, and the smallest first then the largest") {
    std::vector<std::int64_t> v(3000, 1234567);
    v.push_back(1);
    v.push_back(900'000'000);
    check_close_to_exact(v);
    std::vector<std::int64_t> w;
    for (int i = 0; i < 1000; ++i) w.push_back(i < 500 ? 900'000'000 - i : 50 + i);  // the range grows down
    check_close_to_exact(w);
  }
  SECTION("loopback: tens of microseconds, and sub-microsecond values") {
    std::uniform_int_distribution<std::int64_t> us(0, 60'000);
    std::vector<std::int64_t> v;
    for (int i = 0; i < 20000; ++i) v.push_back(us(random));
    check_close_to_exact(v);
  }
}

TEST_CASE("RttAccumulator: a negative RTT counts as zero", "[rtt_stats]") {
  RttAccumulator acc;
  acc.add(ns(-5));
  acc.add(ns(3'000'000));
  const auto s = acc.summary();
  REQUIRE(s);
  CHECK(s->min == 0);
  CHECK(s->max == 3.0);
}
