// The daemon over time: the Agent wires its parts together — the plan (the
// config compiled into targets and tasks), the scheduler (when each task is
// due), the engine (probes in flight), the pacer (rate-capped launches
// outside the schedule), the series and the detector (what the answers
// mean), the investigator (traces and verdicts) and the host refresher — and
// writes every record to the outputs. Its services come in from outside
// (loop and clock, engine and wire, name lookups, ASN tables), so the whole
// daemon runs in tests over a simulated network in simulated time. With
// agent.state_dir, what the detector knows and the last good traces outlive
// the process (state_store): an outage open at a restart, even a kill -9,
// is neither forgotten nor reported again, and its *_up carries its start.
// Leaves to others: packets (engine), timing (event loop), computing anything (analysis).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "asn_table.hpp"
#include "detector.hpp"
#include "engine.hpp"
#include "event_loop.hpp"
#include "host_refresher.hpp"
#include "host_resolver.hpp"
#include "investigator.hpp"
#include "log_limiter.hpp"
#include "outpost_config.hpp"
#include "outputs.hpp"
#include "pacer.hpp"
#include "plan.hpp"
#include "records.hpp"
#include "scheduler.hpp"
#include "series.hpp"
#include "state_store.hpp"

namespace outpost {

// Loads the config's ASN table (and names); nullptr with *error when it cannot.
// An empty table path gives nullptr and no error.
using AsnLoader = std::function<std::shared_ptr<const AsnTable>(const Config& config, std::string* error)>;
AsnLoader asn_files_loader();

struct AgentServices {
  EventLoop& loop;
  Engine& engine;
  Outputs& outputs;
  HostResolver& resolver;
  AsnLoader load_asns = asn_files_loader();
  // Without raw sockets (no CAP_NET_RAW): tcp:PORT runs as tcp_connect:PORT,
  // icmp cannot run, and there are no traces.
  bool raw = true;
  // Overrides traceroute.max_failure_traces and max_queued_failures when set.
  std::optional<InvestigationLimits> investigations{};
};

struct AgentStats {
  std::uint64_t records = 0;
  std::uint64_t vantage_checks = 0;   // control targets probed at once before an outage was blamed
  std::uint64_t local_errors = 0;     // probes that never left this host (not held against their targets)
  std::uint64_t reordered = 0;        // answers that came before an earlier probe's and waited for it
  std::uint64_t stale_results = 0;    // results of tasks a reload replaced (written, not counted)
};

// Probe records written for one method (the record's `method`), by their
// status (indexed by ProbeStatus), and the DNS answers they left out.
struct ProbeCounts {
  std::array<std::uint64_t, static_cast<std::size_t>(ProbeStatus::error) + 1> by_status{};
  std::uint64_t dns_answers_dropped = 0;
};

// What the detector holds down now.
struct DownCounts {
  std::size_t targets = 0;  // by key: a name probed over both families is two
  std::size_t targets_down = 0;  // reported down (a target_down written) and not up since
  std::size_t groups = 0;
  std::size_t groups_down = 0;
  bool vantage_down = false;
};

class Agent {
 public:
  explicit Agent(AgentServices services);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Takes a (new) configuration: loads the ASN table, looks up host names and
  // (re)builds the plan. On a reload the tasks that stay keep their phase and
  // their targets' state; probes in flight finish. Returns "" or why the
  // config cannot be applied (then nothing changed).
  std::string apply(const Config& config) { return apply(config, nullptr); }
  // The same, and the config's groups are released as soon as the plan is
  // made (with 100,000 targets, 25 MB that were still held while the rest of
  // the agent was built): the caller keeps only its other sections.
  std::string apply_releasing_groups(Config& config) { return apply(config, &config); }
  void start();
  // Stops scheduling (and saves the state); when the last probe and investigation is over, closes
  // the open series windows, flushes and stops the loop.
  void stop();
  // At once, whatever is in flight: closes the open windows, saves the state
  // and flushes (the loop failed, or the process is about to exit).
  void flush_now();
  bool finished() const { return finished_; }

  const AgentStats& stats() const { return stats_; }
  const InvestigatorStats& investigations() const { return investigator_.stats(); }
  // How late scheduled probes left against their due time, over the whole run (reloads included).
  LaunchLateness launch_lateness() const;
  // How long the loop may gather what comes due before it wakes (at most
  // once per this; EventLoop::coalesce_wakes): 4% of the plan's shortest
  // interval (a suspect's included with_suspects, the gap used while a
  // target is suspect), at most 250 ms (1 ms with a dns task:
  // its TCP retry's time is the loop's), within half the rate cap's burst
  // at the demanded rate; zero without raw sockets or with a tcp_connect
  // task (timed in user space). Not while probes wait in the pacer.
  static Duration wake_gap(const Plan& plan, double demanded_pps, bool raw, bool with_suspects);
  // Probe records written since the start, by method ("icmp", "tcp", "dns").
  const std::map<std::string, ProbeCounts>& probe_counts() const { return probe_counts_; }
  // Results that came after their series window was written (dropped from
  // it). The count starts again when a reload changes report.window.
  std::uint64_t late_series_results() const { return series_ ? series_->late_results() : 0; }
  // Probes outside the schedule that waited for the rate cap (Pacer::waits).
  std::uint64_t rate_limit_waits() const { return pacer_.waits(); }
  // A walk over the groups: for a periodic look (self-metrics), not per probe.
  DownCounts down_counts() const;
  // The last trace toward the target (by its key: the name, or NAME/4 and NAME/6) that reached it.
  std::optional<TraceResult> last_good_trace(const std::string& key) const { return investigator_.last_good(key); }
  const Plan& plan() const { return plan_; }

 private:
  // Results of one task go to the series and the detector in send order,
  // whenever they come (a timeout may exceed the interval).
  struct TaskRun {
    std::uint64_t next_seq = 0;
    std::uint64_t next_to_observe = 0;
    std::size_t series_key = 0;
  };
  struct TargetRun {
    bool fast = false;  // probing at its suspect interval now
    // The TTL its last answer says it is at (ttl_from_reply_ttl; 0: none
    // yet): its baseline traces send no probe past it while it holds.
    std::uint8_t expected_ttl = 0;
  };

  std::string apply(const Config& config, Config* release_groups);
  void tick();
  void rearm();
  void run_task(std::size_t id, bool out_of_schedule = false);
  void deliver(std::size_t id, std::uint64_t seq, const ProbeResult& result);
  void observe(std::size_t id, const ProbeResult& result);
  void adjust_speed(std::size_t target);
  void handle_events();
  void handle_event(DetectorEvent event);
  void run_vantage_check();
  void on_address_changed(std::size_t target, const IpAddress& address);
  TraceTarget trace_target(const PlannedTarget& t) const;
  const PlannedTarget* find_target(const std::string& key) const;
  void write(Record record);
  void count_probe(const std::string& method, const ProbeResult& result);
  void finish_if_idle();
  // The state under agent.state_dir: restored at the first apply, saved soon
  // after each detector event, at most once a second after other changes of
  // the detector's, at most once a minute after new baselines only, and at
  // stop() and flush_now().
  void restore_state(const StateStore& store, Detector& detector, const Plan& plan);
  void restore_traces();
  void consider_save(bool urgent);
  void save_state();
  void write_state();  // save_state without its bookkeeping

  EventLoop& loop_;
  Duration base_wake_gap_;       // the loop's own, before the plan's (the sending thread's)
  Duration plan_wake_gap_{};      // wake_gap of the plan, or the base if larger
  Duration suspect_wake_gap_{};   // the same while a target is suspect (its faster interval counts)
  std::size_t fast_targets_ = 0;  // targets probed at their suspect interval now
  Duration wake_gap_now() const { return fast_targets_ > 0 ? suspect_wake_gap_ : plan_wake_gap_; }
  std::uint64_t gap_hook_ = 0;    // the loop's before_wait that sets the gap
  Engine& engine_;
  Outputs& outputs_;
  HostResolver& resolver_;
  AsnLoader load_asns_;
  bool raw_;
  std::optional<InvestigationLimits> limits_;
  Pacer pacer_;
  Investigator investigator_;
  HostRefresher refresher_;

  Plan plan_;
  std::vector<TaskRun> runs_;
  std::vector<TargetRun> target_runs_;
  PositionIndex target_index_;  // plan_.targets by key
  std::vector<std::size_t> control_tasks_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Scheduler> trace_scheduler_;
  LaunchLateness lateness_before_;  // of the schedulers a reload replaced  // its own bucket is unused: trace probes pay scheduler_'s
  std::unique_ptr<Detector> detector_;
  std::unique_ptr<SeriesAggregator> series_;
  std::shared_ptr<const AsnTable> asns_;
  std::uint64_t generation_ = 0;  // bumped by apply: results of older tasks feed no newer state

  std::size_t check_probes_ = 0;  // vantage check probes in flight
  bool check_again_ = false;
  std::optional<SteadyTime> last_check_;
  Duration check_gap_{};

  std::unique_ptr<StateStore> state_;
  std::map<std::string, TraceResult> restored_traces_;  // saved before the restart, for the first apply
  std::uint64_t saved_detector_revision_ = 0;
  std::uint64_t saved_traces_revision_ = 0;
  std::optional<SteadyTime> last_save_;
  Duration save_cost_{};  // how long the last save took, in real time
  EventLoop::TimerId save_timer_ = 0;
  SteadyTime save_at_{};

  EventLoop::TimerId tick_timer_ = 0;
  SteadyTime tick_at_{};
  bool started_ = false;
  bool in_tick_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  AgentStats stats_;
  // Answers that came before an earlier probe's of their task, by (task,
  // sequence number): they wait their turn. One map for all tasks, not one
  // in each of 100,000 tasks, since it is nearly always empty.
  std::map<std::pair<std::size_t, std::uint64_t>, ProbeResult> waiting_;
  LogLimiter local_error_log_;  // probes that could not leave this host (no route, a send error)
  std::map<std::string, ProbeCounts> probe_counts_;
  // target_down events handed to the investigator whose record is not written
  // yet (by "NAME\nAF"): a state saved meanwhile shows them as held back, not
  // reported, so a crash before the record cannot lose it for good.
  std::multiset<std::string> unwritten_down_;
};

}  // namespace outpost
