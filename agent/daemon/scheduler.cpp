#include "scheduler.hpp"

#include <algorithm>
#include <map>

namespace outpost {

TokenBucket::TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}

void TokenBucket::refill(SteadyTime now) {
  if (last_ && now > *last_) {
    tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - *last_).count() * rate_);
  }
  if (!last_ || now > *last_) last_ = now;
}

bool TokenBucket::take(SteadyTime now, double n) {
  refill(now);
  if (tokens_ + 1e-9 < n) return false;
  tokens_ -= n;
  return true;
}

void TokenBucket::borrow(SteadyTime now, double n) {
  refill(now);
  tokens_ -= n;
}

SteadyTime TokenBucket::available_at(SteadyTime now, double n) {
  refill(now);
  if (tokens_ + 1e-9 >= n) return now;
  const double wait_s = (n - tokens_) / rate_;
  return now + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(wait_s)) + Duration(1);
}

void LaunchLateness::add(Duration late) {
  using std::chrono::milliseconds;
  ++launches;
  if (late > worst) worst = late;
  late_10ms += late > milliseconds(10);
  late_100ms += late > milliseconds(100);
  late_1s += late > milliseconds(1000);
}

void LaunchLateness::merge(const LaunchLateness& other) {
  launches += other.launches;
  worst = std::max(worst, other.worst);
  late_10ms += other.late_10ms;
  late_100ms += other.late_100ms;
  late_1s += other.late_1s;
}

Scheduler::Scheduler(double max_pps, double burst)
    : bucket_(max_pps, burst > 0 ? burst : std::max(1.0, max_pps / 100.0)) {}

Scheduler::TaskId Scheduler::add(Duration interval) {
  const TaskId id = static_cast<TaskId>(tasks_.size());
  tasks_.push_back({interval, {}, 0, true});
  ++live_;
  return id;
}

void Scheduler::reserve(std::size_t tasks) {
  tasks_.reserve(tasks);
  if (queue_.empty()) {
    std::vector<Entry> room;
    room.reserve(tasks);
    queue_ = decltype(queue_)(std::greater<>{}, std::move(room));
  }
}

void Scheduler::remove(TaskId id) {
  if (!tasks_[id].live) return;
  tasks_[id].live = false;
  ++tasks_[id].generation;
  --live_;
}

void Scheduler::set_interval(TaskId id, Duration interval, SteadyTime now) {
  Task& t = tasks_[id];
  if (!t.live || t.interval == interval) return;
  const SteadyTime last = t.next - t.interval;
  t.interval = interval;
  if (!started_) return;
  t.next = std::max(now, last + interval);
  ++t.generation;
  push(id);
}

void Scheduler::start(SteadyTime now, std::optional<Duration> max_spread) {
  std::map<Duration::rep, std::vector<TaskId>> by_interval;
  for (TaskId id = 0; id < tasks_.size(); ++id)
    if (tasks_[id].live) by_interval[tasks_[id].interval.count()].push_back(id);
  for (const auto& [task_interval, ids] : by_interval) {
    const Duration::rep interval = max_spread ? std::min(task_interval, max_spread->count()) : task_interval;
    const auto n = static_cast<Duration::rep>(ids.size());
    for (Duration::rep k = 0; k < n; ++k) {
      Task& t = tasks_[ids[k]];
      // k * interval / n without overflow for long intervals and many tasks.
      t.next = now + Duration(interval / n * k + interval % n * k / n);
      ++t.generation;
      push(ids[k]);
    }
  }
  started_ = true;
}

std::optional<SteadyTime> Scheduler::next_run(TaskId id) const {
  if (!started_ || id >= tasks_.size() || !tasks_[id].live) return std::nullopt;
  return tasks_[id].next;
}

void Scheduler::run_at(TaskId id, SteadyTime when) {
  Task& t = tasks_[id];
  if (!started_ || !t.live) return;
  t.next = when;
  ++t.generation;
  push(id);
}

void Scheduler::push(TaskId id) { queue_.push({tasks_[id].next, id, tasks_[id].generation}); }

void Scheduler::drop_stale() {
  while (!queue_.empty()) {
    const Entry& e = queue_.top();
    const Task& t = tasks_[e.id];
    if (t.live && t.generation == e.generation) return;
    queue_.pop();
  }
}

std::vector<Scheduler::TaskId> Scheduler::take_due(SteadyTime now, std::size_t limit) {
  std::vector<TaskId> due;
  for (drop_stale(); due.size() < limit && !queue_.empty() && queue_.top().when <= now; drop_stale()) {
    if (!bucket_.take(now)) break;
    const Entry e = queue_.top();
    queue_.pop();
    Task& t = tasks_[e.id];
    due.push_back(e.id);
    lateness_.add(std::max(Duration::zero(), now - e.when - allowed_late_));
    t.next = e.when + t.interval;
    if (t.next <= now) {  // rounds were missed: skip them (this run stands for them), keep the phase
      const auto missed = (now - t.next) / t.interval + 1;
      t.next += t.interval * missed;
      lagged_ += static_cast<std::uint64_t>(missed);
    }
    push(e.id);
  }
  return due;
}

std::optional<SteadyTime> Scheduler::next_wake(SteadyTime now) {
  drop_stale();
  if (queue_.empty()) return std::nullopt;
  const SteadyTime when = queue_.top().when;
  if (when > now) return when;
  return bucket_.available_at(now);
}

double Scheduler::demanded_pps() const {
  double pps = 0;
  for (const auto& t : tasks_)
    if (t.live) pps += 1.0 / std::chrono::duration<double>(t.interval).count();
  return pps;
}

}  // namespace outpost
