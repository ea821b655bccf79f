// Traces and verdicts: baseline traces toward each target (the last good
// path), and for each *_down event a failure investigation — a Paris trace
// toward the target, direct probes of the last router that answered, and the
// correlator's verdict — before the event is written. Investigations are
// bounded: at most `max_running` traces at once, the rest queued (up to
// `max_queued`; beyond, an event takes the verdict of the trace running
// toward its group, or is written without one: merged or dropped, and
// counted); the target events of a group that is dark, or going dark, take
// the group's verdict instead of a trace each (merged and counted); and an
// outage already explained by a break a failure trace found (the target's
// last good path runs through the hop where that trace died, and went on
// the same way from it) takes that verdict instead of a trace of its own. Two traces toward one address never share a flow.
// Baselines, Doubletree-style, probe from their target's distance down and
// stop at a hop another last good path went through at the same TTL.
// Leaves to others: when to trace (agent), the verdict's rules (correlator), the rate cap (pacer).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <unordered_set>
#include <string>
#include <unordered_map>
#include <vector>

#include "asn_table.hpp"
#include "correlator.hpp"
#include "event_loop.hpp"
#include "pacer.hpp"
#include "records.hpp"
#include "trace_store.hpp"
#include "traceroute.hpp"

namespace outpost {

// What a trace needs to know of its target.
struct TraceTarget {
  std::string key;  // the detector's name for it
  std::string name;
  std::string group;
  int af = 0;
  IpAddress address;
  std::string host;  // when configured by name (for the verdict's reason when it does not resolve)
  std::optional<std::uint32_t> upstream_asn;
  std::optional<std::uint16_t> tcp_port;  // failure traces follow this flow when set
  int expected_ttl = 0;  // baseline traces: where its last answer says it is (0: unknown)
};

struct InvestigationLimits {
  std::size_t max_running = 4;    // failure traces at once
  std::size_t max_queued = 1024;  // waiting for a place; beyond, dropped
  // Baseline traces at once: each holds its hops' probes until it ends, so
  // the memory and the packets of a start-up with 100,000 targets stay
  // bounded; a baseline due with no place waits for one (agent).
  std::size_t max_baselines = 256;
  // Baselines probe backward from their target and stop at a hop another
  // last good path went through at the same TTL, its hops before taken
  // from that path, while those were probed at most this long ago (zero:
  // every baseline probes its whole path).
  Duration reuse_max_age{};
};

struct InvestigatorStats {
  std::uint64_t baselines = 0;
  std::uint64_t hops_reused = 0;  // baseline hops taken from another last good path, not probed
  std::uint64_t started = 0;  // failure traces run
  std::uint64_t merged = 0;   // events that took another investigation's verdict
  std::uint64_t dropped = 0;  // events written without a trace: too many waiting
};

class Investigator {
 public:
  using Write = std::function<void(Record)>;

  Investigator(EventLoop& loop, Pacer& pacer, Write write);
  ~Investigator();

  // Before use and at each reload.
  void configure(const std::string& agent_id, const TraceSpec& spec, std::shared_ptr<const AsnTable> asns,
                 InvestigationLimits limits, bool raw);

  // Called whenever a trace or a conclusion has ended (busy() went down): a
  // stopping agent waits for that.
  void on_settled(std::function<void()> cb) { on_settled_ = std::move(cb); }

  // A baseline trace; when it reaches the target it becomes the last good path.
  void baseline(const TraceTarget& target);
  // Baselines that may start now (max_baselines less those running).
  std::size_t baseline_room() const {
    return baselines_running_ < limits_.max_baselines ? limits_.max_baselines - baselines_running_ : 0;
  }
  // A *_down event toward `target` (the event's own, or one of the group's or
  // control targets): its record is written once the verdict is known.
  // group_dark: the event's group is down already (a target event then takes
  // the group's verdict).
  void investigate(DetectorEvent event, const TraceTarget& target, bool group_dark);

  // The last trace toward the target (by key) that reached it.
  std::optional<TraceResult> last_good(const std::string& key) const { return last_good_.get(key); }
  void forget(const std::string& key) {
    if (last_good_.erase(key)) ++last_good_revision_;
  }
  // Every last good trace by key, to be saved; the revision moves with each change.
  const TraceStore& last_good_traces() const { return last_good_; }
  std::uint64_t last_good_revision() const { return last_good_revision_; }
  // A last good trace saved before a restart: verdicts use it until a baseline
  // of this run reaches the target (a newer one is kept: only a trace that
  // reached its target is taken).
  void restore_last_good(const std::string& key, TraceResult trace);
  // Traces running and investigations waiting: the agent drains them before it stops.
  std::size_t busy() const { return traces_running_ + queue_.size() + concluding_; }
  // A target or group of this group is back: the breaks found in it no longer explain anything.
  void recovered(const std::string& group);
  // Stops: queued investigations are written without a trace, and no new trace starts.
  void stop();
  const InvestigatorStats& stats() const { return stats_; }
  // Hops of last good paths that baselines may stop at (at most kMaxKnownHops).
  std::size_t known_hops() const { return known_hops_.size(); }
  static constexpr std::size_t kMaxKnownHops = 65536;  // about 6 MB at most

 private:
  struct Case {
    DetectorEvent event;
    TraceTarget target;
    std::vector<DetectorEvent> followers;  // merged: written with this case's verdict
  };
  using CasePtr = std::shared_ptr<Case>;

  std::string group_key(const DetectorEvent& event, const TraceTarget& target) const;
  void start(CasePtr c);
  void start_queued();
  void run_trace(const TraceTarget& target, const TraceSpec& spec, const std::string& reason,
                 std::function<void(const TraceResult&)> done, Trace::KnownPrefix known = {});
  // The local stop set: each hop of the last good paths, by TTL and address.
  void note_known(const std::string& key, const TraceResult& trace);
  std::optional<std::vector<TraceHop>> known_prefix(int ttl, const IpAddress& addr);
  void check_alive(const IpAddress& router, std::function<void(bool)> done);
  void conclude(const CasePtr& c, const TraceResult* failure, std::optional<bool> last_hop_alive);
  void write_event(const DetectorEvent& event, const Verdict* verdict);
  // A break a failure trace found: where the path died, and where it used to go on.
  struct Break {
    std::string group;
    IpAddress last_hop;
    IpAddress next_hop;
    Verdict verdict;
    WallTime found;
  };
  void note_break(const CasePtr& c, const TraceResult& failure, const Verdict& verdict);
  const Verdict* explained(const TraceTarget& target);
  std::uint32_t next_seed(TraceMethod method, const IpAddress& address);

  EventLoop& loop_;
  Pacer& pacer_;
  Write write_;
  std::string agent_id_;
  TraceSpec spec_;
  std::shared_ptr<const AsnTable> asns_;
  InvestigationLimits limits_;
  bool raw_ = true;
  bool stopping_ = false;
  TraceStore last_good_;
  std::uint64_t last_good_revision_ = 0;
  // "TTL address" -> the key of the last good path that last went through it.
  std::unordered_map<std::string, std::string> known_hops_;
  std::size_t traces_running_ = 0;
  std::size_t baselines_running_ = 0;
  std::size_t failure_traces_ = 0;
  std::size_t concluding_ = 0;  // failure traces done, direct probes of the last hop running
  std::function<void()> on_settled_;
  std::deque<CasePtr> queue_;
  std::unordered_map<std::string, CasePtr> active_;  // by group key: the case whose verdict the group's events take
  std::unordered_map<std::string, Verdict> group_verdicts_;  // the last verdict of each dark group
  std::vector<Break> breaks_;
  std::unordered_set<std::string> flows_;  // address and flow id of each trace running
  InvestigatorStats stats_;
};

}  // namespace outpost
