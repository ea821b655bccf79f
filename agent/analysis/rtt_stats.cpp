#include "rtt_stats.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace outpost {

namespace {
double percentile(const std::vector<double>& sorted, double p) {
  const double rank = p * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const auto hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}

double to_ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }
}  // namespace

std::optional<RttSummary> summarize_rtts(std::vector<double> samples) {
  if (samples.empty()) return std::nullopt;
  std::sort(samples.begin(), samples.end());
  RttSummary s;
  s.min = samples.front();
  s.max = samples.back();
  double sum = 0;
  for (double v : samples) sum += v;
  s.avg = sum / static_cast<double>(samples.size());
  double sq = 0;
  for (double v : samples) sq += (v - s.avg) * (v - s.avg);
  s.stddev = std::sqrt(sq / static_cast<double>(samples.size()));
  s.p50 = percentile(samples, 0.50);
  s.p95 = percentile(samples, 0.95);
  return s;
}

// Below 2^kSubBits a bucket per ns; from there, octave e (2^e <= ns < 2^(e+1))
// splits into 2^kSubBits buckets of 2^(e - kSubBits) ns.
std::uint32_t RttAccumulator::bucket(std::uint64_t ns) {
  constexpr std::uint64_t kSub = 1U << kSubBits;
  if (ns < kSub) return static_cast<std::uint32_t>(ns);
  const int shift = std::bit_width(ns) - 1 - kSubBits;
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(shift + 1) << kSubBits) + ((ns >> shift) - kSub));
}

std::uint64_t RttAccumulator::bucket_lower(std::uint32_t index) {
  constexpr std::uint32_t kSub = 1U << kSubBits;
  if (index < kSub) return index;
  const int shift = static_cast<int>(index >> kSubBits) - 1;
  return (static_cast<std::uint64_t>(kSub) + (index & (kSub - 1))) << shift;
}

std::uint64_t RttAccumulator::bucket_width(std::uint32_t index) {
  constexpr std::uint32_t kSub = 1U << kSubBits;
  if (index < kSub) return 1;
  return std::uint64_t{1} << ((index >> kSubBits) - 1);
}

void RttAccumulator::add(std::chrono::nanoseconds rtt) {
  const std::uint64_t ns = rtt.count() > 0 ? static_cast<std::uint64_t>(rtt.count()) : 0;
  if (!big_) {
    if (samples_ms_.size() < kExactSamples) {
      samples_ms_.push_back(to_ms(ns));
      return;
    }
    big_ = std::make_unique<Histogram>();
    // The samples went in as ns / 1e6; rounding ms * 1e6 to the nearest
    // integer gives back the ns exactly (below 2^51 ns, 26 days). Done by
    // hand: llround is libm's, a library outpost need not load at all.
    for (double ms : samples_ms_) {
      const double x = ms * 1e6;
      const auto whole = static_cast<std::uint64_t>(x);
      big_->add(x - static_cast<double>(whole) >= 0.5 ? whole + 1 : whole);
    }
    samples_ms_ = {};
  }
  big_->add(ns);
}

void RttAccumulator::Histogram::add(std::uint64_t ns) {
  if (count == 0) {
    min_ns = max_ns = ns;
  } else {
    min_ns = std::min(min_ns, ns);
    max_ns = std::max(max_ns, ns);
  }
  ++count;
  const double ms = to_ms(ns);
  const double delta = ms - mean_ms;
  mean_ms += delta / static_cast<double>(count);
  m2 += delta * (ms - mean_ms);

  const std::uint32_t b = bucket(ns);
  if (counts.empty()) {
    first = b;
    counts.assign(1, 0);
  } else if (b < first) {
    counts.insert(counts.begin(), first - b, 0);
    first = b;
  } else if (b - first >= counts.size()) {
    counts.resize(b - first + 1, 0);
  }
  ++counts[b - first];
}

double RttAccumulator::Histogram::ranked(std::uint64_t k) const {
  std::uint64_t below = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const std::uint64_t c = counts[i];
    if (k < below + c) {
      // The bucket's samples spread evenly over it, each in the middle of its share.
      const auto index = static_cast<std::uint32_t>(first + i);
      const double at = static_cast<double>(bucket_lower(index)) +
                        static_cast<double>(bucket_width(index)) * (static_cast<double>(k - below) + 0.5) /
                            static_cast<double>(c);
      return std::clamp(at, static_cast<double>(min_ns), static_cast<double>(max_ns));
    }
    below += c;
  }
  return static_cast<double>(max_ns);
}

double RttAccumulator::Histogram::percentile(double p) const {
  const double rank = p * static_cast<double>(count - 1);
  const auto lo = static_cast<std::uint64_t>(std::floor(rank));
  const auto hi = std::min(lo + 1, count - 1);
  const double a = ranked(lo), b = lo == hi ? a : ranked(hi);
  return (a + (b - a) * (rank - static_cast<double>(lo))) / 1e6;
}

std::optional<RttSummary> RttAccumulator::summary() const {
  if (!big_) return summarize_rtts(samples_ms_);
  RttSummary s;
  s.min = to_ms(big_->min_ns);
  s.max = to_ms(big_->max_ns);
  s.avg = big_->mean_ms;
  s.stddev = std::sqrt(big_->m2 / static_cast<double>(big_->count));
  s.p50 = big_->percentile(0.50);
  s.p95 = big_->percentile(0.95);
  return s;
}

}  // namespace outpost
