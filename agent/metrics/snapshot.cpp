#include "snapshot.hpp"

namespace outpost {

MetricsSnapshot take_snapshot(const Agent& agent, const Engine& engine, const Outputs& outputs,
                              const RunCounters& run) {
  MetricsSnapshot s;
  s.probes = agent.probe_counts();
  s.engine = engine.stats();
  s.in_flight = engine.in_flight();
  s.agent = agent.stats();
  s.late_series_results = agent.late_series_results();
  s.rate_limit_waits = agent.rate_limit_waits();
  s.investigations = agent.investigations();
  s.outputs = outputs.status();
  s.down = agent.down_counts();
  s.run = run;
  // The scheduler's lateness over the whole run (reloads included).
  const LaunchLateness late = agent.launch_lateness();
  s.launch_lateness = LatenessFigures{late.worst, late.late_10ms, late.late_100ms};
  return s;
}

}  // namespace outpost
