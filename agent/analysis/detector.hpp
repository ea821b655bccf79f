// Outage detection: a state machine per target (up -> down after down_after
// failed rounds, down -> up after up_after good rounds), per group (down when
// a fraction of its targets is down), and for the vantage point itself (its
// control targets all down). While the control targets are failing, target
// and group outages are held back rather than blamed on the targets; flapping
// targets are reported once as flapping instead of as a storm of events.
// Its state goes out and comes back as plain data (DetectorSnapshot), for a
// reload and across a restart. Pure: results and times come in, events come
// out; tested with fake times.
// Leaves to others: storing snapshots (daemon), probing faster while suspect (agent), verdicts (correlator).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "position_index.hpp"
#include "probe.hpp"
#include "records.hpp"  // DetectorEvent

namespace outpost {

struct DetectSettings {
  int down_after = 3;             // consecutive failed rounds before a target is down
  int up_after = 2;               // consecutive good rounds before it is up again
  double group_fraction = 0.5;    // a group is down when at least this fraction of its targets is
  int flap_count = 4;             // this many down/up changes within flap_window make a target flapping
  Duration flap_window = std::chrono::minutes(10);
};

// A target's state, as its detector knew it (by name): the streaks, the open
// outage and whether it went out as an event, the flapping history.
struct TargetState {
  std::string name;
  bool control = false;
  bool down = false;
  int fails = 0;                     // failed rounds in a row (while up)
  int goods = 0;                     // good rounds in a row (while down)
  WallTime streak_start{};           // the first failed probe of the failing streak: the outage's start
  // Per probe method: its first failure since its last success, and whether it ever answered.
  std::vector<std::optional<WallTime>> failing_since;
  std::vector<bool> ever_ok;
  std::optional<WallTime> last_ok;   // the last good probe
  WallTime recovery_start{};         // the first good probe after being down
  bool reported_down = false;        // a target_down went out (so a target_up will)
  bool pending_down = false;         // down, held back until the vantage point is vouched for
  WallTime down_decided{};           // the send time of the result that took it down
  std::vector<WallTime> changes;     // reported state changes within the flap window
  bool flapping = false;
};

struct GroupState {
  std::string name;
  bool control = false;
  bool down = false;
  WallTime start{};
};

// All a detector knows that outlives its configuration.
struct DetectorSnapshot {
  std::vector<TargetState> targets;
  std::vector<GroupState> groups;
  bool vantage_down = false;
  WallTime vantage_start{};
  std::optional<WallTime> last_control_ok;  // the latest send time of a probe a control target answered
  bool check_wanted = false;
};

class Detector {
 public:
  explicit Detector(DetectSettings settings);

  // Registration, before any result. methods: how many probe methods the
  // target has. Names are unique: a second registration of a name is ignored.
  void add_target(const std::string& name, const std::string& group, bool control, int methods);
  // Room for this many targets, so that registering 100,000 does not leave
  // a third of the vector's capacity unused.
  void reserve(std::size_t targets);

  // After registration, on a reload: takes over what `old` knew of each target
  // that both know by name (and as a control target or not): its state, its
  // streaks and its open outage, so that a reload neither forgets an outage
  // (its *_up still comes) nor reports it again. Groups and the vantage point
  // keep their state and are judged again from their (perhaps new) members:
  // the events that follow from that are in take_events. While the vantage
  // point is down, a control target new to the config counts as down until it
  // answers. What only `old` knew is forgotten, open outage and all: the names
  // of the targets it knew as down are returned (and old.vantage_down() says
  // whether the vantage point was, if there are no control targets now).
  std::vector<std::string> carry_over(const Detector& old, WallTime now);

  DetectorSnapshot snapshot() const;
  // After registration: takes over a snapshot's state as carry_over does an
  // old detector's (targets matched by name and control-ness; what the
  // snapshot knows of no registered target is forgotten, and the names of
  // those it knew as reported down are returned). Restored outages end with
  // their *_up, carrying their original start; none is reported again.
  // keep_undecided false (a stale snapshot: the process was gone too long for
  // its streaks to mean anything now): only what went out as events is taken
  // — reported outages, down groups, the vantage point's outage, flapping —
  // while failing streaks, recoveries under way and outages held back start
  // afresh.
  std::vector<std::string> restore(const DetectorSnapshot& snapshot, WallTime now, bool keep_undecided = true);
  // Bumped by every change a snapshot would show beyond the time of the last
  // good probe of a healthy target: when it has not moved, there is nothing new to save.
  std::uint64_t revision() const { return revision_; }

  // One probe's outcome: ok means the target answered (reply or refused).
  // Results of one target come in send order.
  void on_result(const std::string& target, int method, bool ok, WallTime sent);

  std::vector<DetectorEvent> take_events();

  // Between the first failure and the verdict, or the first success and
  // recovery: when the agent should probe faster.
  bool suspect(const std::string& target) const;
  bool vantage_down() const { return vantage_down_; }
  bool is_group_down(const std::string& group) const;

  // Blame the vantage point first: with control targets configured, a target
  // that goes down is reported only once a control target has answered a
  // probe sent at or after the result that took it down; until then it is
  // held, and a vantage check is wanted (the agent probes the control
  // targets at once). If they fail instead, the vantage point's own outage
  // follows and the held targets are never blamed.
  bool vantage_check_wanted() const { return check_wanted_; }
  void vantage_check_started() { check_wanted_ = false; }
  // A probe that never left this host (a local send error): evidence against
  // the vantage point, so its control targets are asked at once.
  void want_vantage_check() {
    if (!controls_.empty()) check_wanted_ = true;
  }
  // Whether any control target is failing now (suspect or down).
  bool vantage_failing() const;
  bool is_target_down(const std::string& target) const;
  // What is down now, from the groups' own counts (a walk over the groups,
  // not the targets): targets reported down and still down, and groups down.
  struct DownTally {
    std::size_t targets_down = 0;
    std::size_t groups = 0;
    std::size_t groups_down = 0;
  };
  DownTally down_tally() const;

 private:
  // A target's state of one probe method.
  struct Method {
    std::optional<WallTime> failing_since;  // its first failure since its own last success
    std::int8_t round = -1;                 // this round's result: -1 none yet, 0 failed, 1 answered
    // Whether it ever succeeded (a method that always fails, e.g. filtered
    // ICMP, says nothing about when an outage began).
    bool ever_ok = false;
  };
  // 100,000 of these in a daemon: its per-method state lives in methods_
  // (not in vectors of its own, three allocations each), its group by index.
  struct Target {
    std::string name;
    std::uint32_t group_index = 0;
    std::uint32_t first_method = 0;         // its methods are methods_[first_method, first_method + methods)
    std::uint16_t methods = 1;
    bool control = false;
    bool down = false;
    bool reported_down = false;             // a target_down went out (so a target_up will)
    bool pending_down = false;              // down, held back until the vantage point is vouched for
    bool flapping = false;
    bool counted = false;                   // counted in its group's down_count (reported down, still down)
    int fails = 0;
    int goods = 0;
    WallTime round_start{};
    WallTime streak_start{};                // first failed probe of the failing streak
    std::optional<WallTime> last_ok;        // last good probe
    WallTime recovery_start{};              // first good probe after being down
    WallTime down_decided{};                // the send time of the result that took it down
    // Reported state changes within the flap window: a few at most, and an
    // empty vector costs no allocation (a deque allocates even when empty,
    // which at 100,000 targets was 58 MB).
    std::vector<WallTime> changes;
  };
  struct Group {
    std::string name;
    std::vector<std::size_t> members;
    bool control = false;
    bool down = false;
    WallTime start{};
    std::size_t down_count = 0;  // members reported down and still down
    bool dirty = false;          // down_count changed since update_groups last looked
  };

  std::span<Method> methods_of(const Target& t) { return {methods_.data() + t.first_method, t.methods}; }
  std::span<const Method> methods_of(const Target& t) const {
    return {methods_.data() + t.first_method, t.methods};
  }
  const std::string& group_of(const Target& t) const { return groups_[t.group_index].name; }
  // The index of the target of this name.
  std::optional<std::size_t> find(std::string_view name) const;
  void end_round(Target& t, WallTime now);
  WallTime outage_start(const Target& t) const;
  void on_target_down(Target& t, WallTime decided);
  void on_target_up(Target& t, WallTime now);
  void report(Target& t, EventKind kind, WallTime now);
  // A target's down state as its group counts it: call after any change to
  // its down or reported_down. Marks the group for update_groups.
  void sync_group_count(Target& t);
  // Judges the groups whose counts changed (each result costs O(1), not a
  // walk over every target: groups of tens of thousands of targets).
  void update_groups(WallTime now);
  void update_vantage(WallTime now);
  void release_pending();
  bool note_change(Target& t, WallTime now);  // false while flapping (the event is swallowed)
  void settle_flapping(WallTime now);

  DetectSettings settings_;
  std::vector<Target> targets_;
  std::vector<Method> methods_;  // every target's, in registration order
  PositionIndex index_;          // targets_ by name
  std::vector<Group> groups_;
  std::vector<std::size_t> dirty_groups_;
  std::vector<std::size_t> controls_;  // indices of the control targets
  std::vector<std::size_t> flapping_;  // indices of the targets flapping now
  std::vector<DetectorEvent> events_;
  bool vantage_down_ = false;
  WallTime vantage_start_{};
  std::optional<WallTime> last_control_ok_;  // the latest send time of a probe a control target answered
  std::size_t pending_ = 0;                  // targets held back
  bool check_wanted_ = false;
  std::uint64_t revision_ = 0;
};

}  // namespace outpost
