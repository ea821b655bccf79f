// What the self-metrics show, copied out of the agent's parts on the event-loop thread into plain values.
// Leaves to others: the metric names and their exposition (self_metrics), serving them (metrics_endpoint).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent.hpp"
#include "engine.hpp"
#include "outputs.hpp"

namespace outpost {

// How late scheduled probes leave against their schedule.
struct LatenessFigures {
  Duration worst{};              // the latest launch so far
  std::uint64_t over_10ms = 0;   // launches later than 10 ms
  std::uint64_t over_100ms = 0;  // launches later than 100 ms
};

// What `outpost run` itself counts.
struct RunCounters {
  std::uint64_t reloads = 0;          // SIGHUP reloads tried
  std::uint64_t reload_failures = 0;  // ... of which refused (the old config stays)
};

struct MetricsSnapshot {
  std::map<std::string, ProbeCounts> probes;  // probe records by method
  EngineStats engine;
  std::size_t in_flight = 0;
  AgentStats agent;
  std::uint64_t late_series_results = 0;
  std::uint64_t rate_limit_waits = 0;
  InvestigatorStats investigations;
  std::vector<OutputStatus> outputs;
  DownCounts down;
  RunCounters run;
  // Absent until the scheduler reports it: its metrics are then left out.
  std::optional<LatenessFigures> launch_lateness;
};

// Everything above from the running agent: on the event-loop thread only.
MetricsSnapshot take_snapshot(const Agent& agent, const Engine& engine, const Outputs& outputs,
                              const RunCounters& run);

}  // namespace outpost
