// When each target × method is probed: once per interval, the first runs of
// tasks that share an interval spread evenly over it, and every probe packet
// under one global token bucket (agent.max_pps). Pure: time comes in as an
// argument, so it is tested with a fake clock. It also keeps how late each
// task was handed out against its due time (launch lateness).
// Leaves to others: what a task probes (agent) and timers (event loop).
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

#include "probe.hpp"

namespace outpost {

class TokenBucket {
 public:
  // rate: tokens per second; burst: the most that can be saved up.
  TokenBucket(double rate, double burst);
  bool take(SteadyTime now, double n = 1);
  // Takes n tokens, even when they are not there: the bucket then goes into
  // debt, and whoever takes next waits until it is paid back. For the few
  // launches that must not wait behind a schedule that books every token;
  // over time the rate holds.
  void borrow(SteadyTime now, double n = 1);
  // When n tokens will be there (now, if they are).
  SteadyTime available_at(SteadyTime now, double n = 1);
  double rate() const { return rate_; }

 private:
  void refill(SteadyTime now);
  double rate_;
  double burst_;
  double tokens_;
  std::optional<SteadyTime> last_;
};

// How late scheduled launches left against their due time: the worst, and
// how many were later than each fixed threshold (a stalled loop, a rate cap
// below demand, a slow callback all show here).
struct LaunchLateness {
  std::uint64_t launches = 0;
  Duration worst{};
  std::uint64_t late_10ms = 0;
  std::uint64_t late_100ms = 0;
  std::uint64_t late_1s = 0;

  void add(Duration late);
  void merge(const LaunchLateness& other);
};

class Scheduler {
 public:
  using TaskId = std::uint32_t;

  // burst: packets that may go back to back; 0 picks 1% of a second's worth (at least 1).
  explicit Scheduler(double max_pps, double burst = 0);

  TaskId add(Duration interval);
  // Room for this many tasks, before adding them (no regrowth at 100,000).
  void reserve(std::size_t tasks);
  void remove(TaskId id);
  // Changes a task's interval from its next run on (sooner if the new one is shorter).
  void set_interval(TaskId id, Duration interval, SteadyTime now);
  Duration interval(TaskId id) const { return tasks_[id].interval; }

  // Sets every task's first run: the k-th of the n tasks sharing an interval
  // runs at now + spread * k / n, where spread is the interval, or at most
  // `max_spread` when given (e.g. baseline traces due soon after start-up).
  void start(SteadyTime now, std::optional<Duration> max_spread = std::nullopt);

  // A started task's next run (nullopt before start, or once removed).
  std::optional<SteadyTime> next_run(TaskId id) const;
  // After start: the task runs next at `when` instead, then every interval
  // from there (a reload keeping the phase of the tasks it keeps).
  void run_at(TaskId id, SteadyTime when);

  // The tasks due by now that the rate cap lets go, earliest first; each is
  // rescheduled one interval after its due time (no drift). Whole rounds a
  // task fell behind (a stalled process, a rate cap below demand) are skipped
  // and counted, not sent in a burst.
  // At most `limit` tasks: the others stay due, for the next call.
  std::vector<TaskId> take_due(SteadyTime now, std::size_t limit = static_cast<std::size_t>(-1));
  // When take_due has something next: the earliest due time, or when the
  // rate cap next lets a due task go.
  std::optional<SteadyTime> next_wake(SteadyTime now);

  std::size_t size() const { return live_; }
  // The rate cap, for other packets that must share it (trace probes).
  TokenBucket& bucket() { return bucket_; }
  std::uint64_t lagged() const { return lagged_; }
  // Every take_due hand-out so far: now minus the task's due time.
  const LaunchLateness& lateness() const { return lateness_; }
  // Launches up to this late (the loop's coalesced wakes) count as on time;
  // a later one counts by how much it is later still.
  void allow_lateness(Duration allowed) { allowed_late_ = allowed; }
  // Probe packets per second the tasks ask for at their intervals.
  double demanded_pps() const;

 private:
  struct Task {
    Duration interval{};
    SteadyTime next{};
    std::uint32_t generation = 0;
    bool live = false;
  };
  struct Entry {
    SteadyTime when;
    TaskId id;
    std::uint32_t generation;
    bool operator>(const Entry& o) const { return when != o.when ? when > o.when : id > o.id; }
  };
  void push(TaskId id);
  void drop_stale();

  TokenBucket bucket_;
  std::vector<Task> tasks_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue_;
  std::size_t live_ = 0;
  std::uint64_t lagged_ = 0;
  LaunchLateness lateness_;
  Duration allowed_late_{};
  bool started_ = false;
};

}  // namespace outpost
