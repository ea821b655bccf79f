// Summary statistics of RTT samples: min, avg, percentiles, max, stddev.
// Leaves to others: windows and counting loss.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "records.hpp"  // RttSummary

namespace outpost {

// Exact over the samples given. nullopt for no samples. Percentiles by linear
// interpolation between closest ranks; stddev is the population standard
// deviation (as ping's mdev).
std::optional<RttSummary> summarize_rtts(std::vector<double> samples_ms);

// One window's RTTs in bounded memory. Up to kExactSamples answers it keeps
// them all, and its summary is summarize_rtts' to the bit. Past that, min,
// max, avg and stddev stay exact (running min, max and Welford's mean and
// variance), and p50 and p95 come from a histogram whose buckets are 1/128
// of a power of two wide (1 ns wide below 128 ns): each lies within 1/128
// (0.79%) of the exact value. The histogram covers only the buckets between
// the smallest and largest RTT seen, a few KiB for RTTs spanning some
// octaves, however many answers a window holds (at 120,000 answers a second
// over a 60 s window, the samples themselves were 58 MB).
class RttAccumulator {
 public:
  static constexpr std::size_t kExactSamples = 256;
  static constexpr int kSubBits = 7;  // 128 buckets per octave

  void add(std::chrono::nanoseconds rtt);  // a negative RTT counts as 0
  std::uint64_t count() const { return big_ ? big_->count : samples_ms_.size(); }
  // Whether every sample is still kept (the summary is then exact).
  bool exact() const { return !big_; }
  std::optional<RttSummary> summary() const;

  // The bucket of a value in ns, and a bucket's [lower, lower + width).
  static std::uint32_t bucket(std::uint64_t ns);
  static std::uint64_t bucket_lower(std::uint32_t index);
  static std::uint64_t bucket_width(std::uint32_t index);

 private:
  // Past kExactSamples. Apart, so that a window of few answers (a daemon of
  // 100,000 targets has 100,000 open) costs one pointer more than its samples.
  struct Histogram {
    std::uint64_t count = 0;
    std::uint64_t min_ns = 0, max_ns = 0;
    double mean_ms = 0, m2 = 0;  // Welford
    std::uint32_t first = 0;     // the bucket counts[0] is of
    std::vector<std::uint32_t> counts;

    void add(std::uint64_t ns);
    // The k-th smallest (0-based) estimated from the buckets, in ns.
    double ranked(std::uint64_t k) const;
    double percentile(double p) const;  // in ms
  };

  std::vector<double> samples_ms_;  // while exact
  std::unique_ptr<Histogram> big_;
};

}  // namespace outpost
