// Summary statistics of RTT samples: min, avg, percentiles, max, stddev.
// Exact over the samples given. Leaves to others: windows and counting loss.
#pragma once

#include <optional>
#include <vector>

#include "records.hpp"  // RttSummary

namespace outpost {

// nullopt for no samples. Percentiles by linear interpolation between closest
// ranks; stddev is the population standard deviation (as ping's mdev).
std::optional<RttSummary> summarize_rtts(std::vector<double> samples_ms);

}  // namespace outpost
