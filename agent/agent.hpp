// The daemon over time: the configured targets × methods as scheduler tasks,
// probes launched on the engine when due, results written as records, and a
// clean stop that lets probes in flight finish and flushes every output.
// Leaves to others: packets (engine), timing (event loop), record layout (records).
#pragma once

#include <deque>
#include <memory>
#include <unordered_map>
#include <string>
#include <vector>

#include "engine.hpp"
#include "event_loop.hpp"
#include "outpost_config.hpp"
#include "outputs.hpp"
#include "records.hpp"
#include "scheduler.hpp"
#include "traceroute.hpp"

namespace outpost {

// Makes the engine's probe for one configured method, or nullptr with *error
// when this build cannot run that method. `dns` is the target's dns block
// (the dns method needs it; the others ignore it).
std::unique_ptr<Probe> make_probe(const ProbeMethod& method, const IpAddress& address, Duration timeout,
                                  const DnsQuery* dns, std::string* error);

class Agent {
 public:
  Agent(EventLoop& loop, Engine& engine, Outputs& outputs);

  // Takes a (new) configuration: loads the ASN table, resolves host names and
  // (re)builds the tasks. On a reload the new schedule starts at once; probes
  // in flight finish. Returns "" or why the config cannot be applied (then
  // nothing changed).
  std::string apply(const Config& config);
  void start();
  // Stops scheduling; when the last probe in flight is over, flushes and stops the loop.
  void stop();
  std::uint64_t records_written() const { return records_; }
  // The last trace toward the target that reached it, if any.
  const TraceResult* last_good_trace(const std::string& target) const;

 private:
  struct Task {
    ProbeLabels labels;
    ProbeMethod method;
    std::string address_text;  // as configured, for records when unresolved
    IpAddress address;
    std::string error;  // set when the task cannot probe (unresolved name, method not built)
    Duration timeout{};
    std::optional<DnsQuery> dns;
  };

  struct TraceTask {
    ProbeLabels labels;
    IpAddress address;
  };
  struct PendingLaunch {
    std::unique_ptr<Probe> probe;
    Engine::Done done;
  };

  void tick();
  void rearm();
  void run_task(const Task& task);
  void run_trace(const TraceTask& task, const std::string& reason);
  // Trace probes wait here for the rate cap; regular probes go first.
  void launch_paced(std::unique_ptr<Probe> probe, Engine::Done done);
  void drain_pending(SteadyTime now);
  void write(const nlohmann::json& record);
  void finish_if_idle();

  EventLoop& loop_;
  Engine& engine_;
  Outputs& outputs_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<Task> tasks_;
  std::unique_ptr<Scheduler> trace_scheduler_;  // its own bucket is unused: trace probes pay scheduler_'s
  std::vector<TraceTask> trace_tasks_;
  TraceSpec trace_spec_;
  Duration trace_spread_{};
  std::shared_ptr<const AsnTable> asns_;
  std::deque<PendingLaunch> pending_;
  std::unordered_map<std::string, TraceResult> last_good_trace_;
  std::uint32_t trace_seed_ = 0;
  std::size_t traces_running_ = 0;
  EventLoop::TimerId tick_timer_ = 0;
  SteadyTime tick_at_{};
  bool stopping_ = false;
  bool started_ = false;
  std::uint64_t records_ = 0;
};

}  // namespace outpost
