// Summary statistics of RTT samples: min, avg, percentiles, max, stddev.
// Exact over the samples given. Leaves to others: windows and counting loss.
#pragma once

#include <optional>
#include <vector>

namespace outpost {

struct RttSummary {
  double min = 0, avg = 0, p50 = 0, p95 = 0, max = 0, stddev = 0;  // milliseconds
};

// nullopt for no samples. Percentiles by linear interpolation between closest
// ranks; stddev is the population standard deviation (as ping's mdev).
std::optional<RttSummary> summarize_rtts(std::vector<double> samples_ms);

}  // namespace outpost
