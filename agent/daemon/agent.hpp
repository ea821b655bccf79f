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
#include "async_resolver.hpp"
#include "correlator.hpp"
#include "detector.hpp"
#include "scheduler.hpp"
#include "series.hpp"
#include "traceroute.hpp"
#include "asn_table.hpp"

namespace outpost {

// Makes the engine's probe for one configured method, or nullptr with *error
// (a dns probe without a usable query). `dns` is the target's dns block
// (the dns method needs it; the others ignore it).
std::unique_ptr<Probe> make_probe(const ProbeMethod& method, const IpAddress& address, Duration timeout,
                                  const DnsQuery* dns, std::string* error);

// Whether the method needs raw sockets (icmp, tcp:PORT); tcp:PORT has an
// unprivileged stand-in, tcp_connect:PORT.
bool needs_raw_socket(const ProbeMethod& method);
ProbeMethod without_raw_socket(ProbeMethod method);

class Agent {
 public:
  Agent(EventLoop& loop, Engine& engine, Outputs& outputs);
  // Without raw sockets (no CAP_NET_RAW): tcp:PORT runs as tcp_connect:PORT,
  // icmp cannot run, and there are no traces. Set before apply.
  void set_raw(bool raw) { raw_ = raw; }

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
    std::size_t target = 0;      // index into targets_
    int method_index = 0;        // among the target's methods, for the detector's rounds
    std::size_t series_key = 0;  // the series aggregator's id for target × method
  };

  // What the detector and the correlator need to know of a target.
  struct TargetInfo {
    std::string name;
    std::string group;
    bool control = false;
    IpAddress address;
    std::optional<std::uint32_t> upstream_asn;  // its group's
    std::optional<std::uint16_t> tcp_port;      // failure traces follow the first tcp:PORT probe's flow
    std::vector<Scheduler::TaskId> tasks;
    Duration interval{};
    Duration suspect_interval{};
    bool fast = false;  // probing at suspect_interval now
    std::string host;   // configured by host name: looked up again now and then, off the loop
    SteadyTime next_resolve{};
    bool resolving = false;
    std::optional<std::size_t> trace_task;  // its baseline traces' task, with raw sockets
  };

  struct TraceTask {
    ProbeLabels labels;
    IpAddress address;
  };
  struct PendingLaunch {
    std::unique_ptr<Probe> probe;
    Engine::Done done;
  };

  // On a reload: each task of `after` that `before` had too (same target,
  // method and port), with an address in both, runs next one interval after
  // its last run, not as if new.
  template <typename T>
  static void keep_phase(const Scheduler& before, const std::vector<T>& before_tasks, Scheduler& after,
                         const std::vector<T>& after_tasks, SteadyTime now);
  void tick();
  void rearm();
  void run_task(const Task& task);
  void run_trace(const TraceTask& task, const std::string& reason);
  // Trace probes wait here for the rate cap; regular probes go first.
  void launch_paced(std::unique_ptr<Probe> probe, Engine::Done done);
  void drain_pending(SteadyTime now);
  void write(Record record);
  void finish_if_idle();
  // A probe's result through the series and the detector.
  void observe(const Task& task, const ProbeResult& result);
  void adjust_speed(TargetInfo& target);
  void handle_event(DetectorEvent event);
  // A *_down event: a failure trace toward the target, a direct probe of the
  // last router that answered, then the event with its verdict.
  void investigate(DetectorEvent event);
  void check_alive(const IpAddress& router, std::function<void(bool)> done);
  void conclude(const DetectorEvent& event, const TargetInfo& target, const TraceResult* failure,
                std::optional<bool> last_hop_alive);
  void emit_series(std::vector<SeriesWindow> windows);
  // A target configured by host name is looked up again, off the loop: every
  // agent.resolve_interval while it resolves (a changed address is probed from then
  // on; a failed lookup keeps the old one), and while it does not, at most
  // once per probe interval, between every 5 s and every minute.
  void resolve_again(std::size_t target);
  Duration resolve_interval_ = std::chrono::minutes(5);
  const TargetInfo* find_target(const std::string& name) const;

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
  std::string agent_id_;
  std::vector<TargetInfo> targets_;
  std::unordered_map<std::string, std::size_t> target_index_;
  std::unique_ptr<Detector> detector_;
  std::unique_ptr<AsyncResolver> resolver_;
  std::unique_ptr<SeriesAggregator> series_;
  Duration series_window_{};
  std::uint64_t generation_ = 0;  // bumped by apply: results of older tasks feed no newer state
  std::size_t investigations_ = 0;
  bool finished_ = false;
  bool raw_ = true;
  EventLoop::TimerId tick_timer_ = 0;
  SteadyTime tick_at_{};
  bool stopping_ = false;
  bool started_ = false;
  std::uint64_t records_ = 0;
};

}  // namespace outpost
