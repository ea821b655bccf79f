#include "rtt_stats.hpp"

#include <algorithm>
#include <cmath>

namespace outpost {

namespace {
double percentile(const std::vector<double>& sorted, double p) {
  const double rank = p * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const auto hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}
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

}  // namespace outpost
