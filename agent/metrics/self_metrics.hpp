// The agent's self-metrics in Prometheus form: each snapshot of the loop's counters turned into metric
// families (outpost_*), counters kept monotonic, the last result handed to any thread that asks.
// Leaves to others: reading the counters (snapshot), listening and HTTP (metrics_endpoint).
//
// Why a snapshot swapped under a mutex, rather than prometheus-cpp counters
// that the loop advances: the counters live on the single event-loop thread
// and the exposer serves scrapes on its own threads. Here the loop alone
// reads its state (take_snapshot, every second and before the exit), builds
// the whole set of families, and swaps it in under a mutex; a scrape copies
// the last set under that mutex and touches nothing else. So a scrape never
// reads loop state, waits at most for one swap, and always sees one instant
// (probes sent and answered from the same moment, never half an update).
//
// Counters never go backwards: each is kept here as the running sum of the
// rises of its source. A source that starts again lower (a reload made a new
// series aggregator, or rebuilt an output) is taken to have started again
// from zero, and its new value is added; the exposed counter keeps rising.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "snapshot.hpp"

namespace outpost {

class SelfMetrics : public prometheus::Collectable {
 public:
  // version: on outpost_build_info; start_time: seconds since the epoch, on outpost_start_time_seconds.
  SelfMetrics(std::string version, double start_time);

  // The loop's thread: the snapshot becomes the families every later Collect returns.
  void update(const MetricsSnapshot& snapshot);
  // Any thread: the families of the last update (build info and start time alone before the first).
  std::vector<prometheus::MetricFamily> Collect() const override;
  // The last update in the text exposition format (what /metrics serves).
  std::string text() const;

 private:
  class Builder;
  void identity(Builder& builder) const;
  void update_identity_only();
  // The exposed value of a counter (by its name and labels) whose source reads `raw` now.
  double advance(const std::string& key, std::uint64_t raw);

  std::string version_;
  double start_time_;
  struct Tracked {
    std::uint64_t last = 0;
    double total = 0;
  };
  std::map<std::string, Tracked> counters_;  // the loop's thread only
  mutable std::mutex mutex_;
  std::vector<prometheus::MetricFamily> published_;  // under mutex_
};

}  // namespace outpost
