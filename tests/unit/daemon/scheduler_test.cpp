// The scheduler and its token bucket on a fake clock: first runs spread
// evenly over the interval, no drift, the global rate cap used and not
// exceeded, interval changes, removal, and missed rounds skipped.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <vector>

#include "clock.hpp"
#include "scheduler.hpp"

using namespace std::chrono_literals;
using outpost::Duration;
using outpost::FakeClock;
using outpost::Scheduler;
using outpost::SteadyTime;
using outpost::TokenBucket;

namespace {

// Runs the scheduler as the agent does (sleep until next_wake, then
// take_due) until `end`; returns each task's run times.
struct Run {
  std::vector<std::vector<SteadyTime>> times;  // per task id
  std::vector<SteadyTime> all;                 // every launch, in order
  std::size_t largest_batch = 0;
  std::size_t wakes = 0;
};

Run drive(Scheduler& s, FakeClock& clock, SteadyTime end, std::size_t tasks) {
  Run run;
  run.times.resize(tasks);
  for (;;) {
    const auto wake = s.next_wake(clock.now());
    if (!wake || *wake >= end) break;
    REQUIRE(*wake >= clock.now());
    clock.set(*wake);
    const auto due = s.take_due(clock.now());
    ++run.wakes;
    REQUIRE(run.wakes < 10'000'000);  // a wake that takes nothing, forever, would be a bug
    run.largest_batch = std::max(run.largest_batch, due.size());
    for (auto id : due) {
      run.times.at(id).push_back(clock.now());
      run.all.push_back(clock.now());
    }
  }
  clock.set(end);
  return run;
}

}  // namespace

TEST_CASE("scheduler: 10,000 tasks at 60 s spread evenly, without drift, each once per interval", "[scheduler]") {
  FakeClock clock;
  Scheduler s(100000);
  constexpr std::size_t kTasks = 10000;
  for (std::size_t i = 0; i < kTasks; ++i) s.add(60s);
  CHECK(s.size() == kTasks);
  CHECK(s.demanded_pps() == Approx(10000.0 / 60));
  const SteadyTime start = clock.now();
  s.start(start);

  const Run run = drive(s, clock, start + 3 * 60s, kTasks);

  // Launches per second over the first interval: 10,000 / 60 = 166.7, every second.
  std::map<std::int64_t, int> per_second;
  for (SteadyTime t : run.all)
    if (t < start + 60s) ++per_second[std::chrono::duration_cast<std::chrono::seconds>(t - start).count()];
  REQUIRE(per_second.size() == 60);
  for (const auto& [second, n] : per_second) {
    INFO("second " << second);
    CHECK(n >= 160);
    CHECK(n <= 175);
  }
  // Never a burst: one task per wake, 6 ms apart.
  CHECK(run.largest_batch == 1);
  for (std::size_t i = 1; i < run.all.size(); ++i) REQUIRE(run.all[i] - run.all[i - 1] == 6ms);

  // Task k runs at start + k * 6 ms + n * 60 s, exactly, for n = 0, 1, 2.
  for (std::size_t k = 0; k < kTasks; ++k) {
    INFO("task " << k);
    REQUIRE(run.times[k].size() == 3);
    for (std::size_t n = 0; n < 3; ++n) REQUIRE(run.times[k][n] == start + 6ms * k + 60s * n);
  }
  CHECK(s.lagged() == 0);
}

TEST_CASE("scheduler: the global rate cap is used, and never exceeded", "[scheduler][rate]") {
  FakeClock clock;
  const double burst = GENERATE(0.0, 20.0);  // 0: the default, 1% of a second's worth (here 1)
  const double effective_burst = burst > 0 ? burst : 1;
  Scheduler s(100, burst);
  for (int i = 0; i < 1000; ++i) s.add(1s);  // 1,000 pps asked for, 100 allowed
  const SteadyTime start = clock.now();
  s.start(start);

  const Run run = drive(s, clock, start + 10s, 1000);
  INFO("burst " << effective_burst << ", taken " << run.all.size());
  CHECK(run.all.size() <= 100 * 10 + effective_burst);
  CHECK(run.all.size() >= 0.95 * 100 * 10);

  // In no window of one second more than the rate plus the burst.
  for (std::size_t i = 0, j = 0; i < run.all.size(); ++i) {
    while (run.all[i] - run.all[j] >= 1s) ++j;
    REQUIRE(i - j + 1 <= 100 + effective_burst);
  }
  // Demand above the cap: rounds are skipped, and counted.
  CHECK(s.lagged() > 0);
}

TEST_CASE("scheduler: next_wake is in the future while the bucket is empty", "[scheduler][rate]") {
  FakeClock clock;
  Scheduler s(100);  // burst 1
  for (int i = 0; i < 10; ++i) s.add(1s);
  const SteadyTime t0 = clock.now();
  s.start(t0);
  clock.advance(1s);  // all ten are due

  auto due = s.take_due(clock.now());
  CHECK(due.size() == 1);  // the burst
  CHECK(s.take_due(clock.now()).empty());
  const auto wake = s.next_wake(clock.now());
  REQUIRE(wake);
  CHECK(*wake > clock.now());
  CHECK(*wake <= clock.now() + 10ms + 1us);  // one token at 100/s
  CHECK(*wake >= clock.now() + 10ms - 1us);
  CHECK(s.take_due(*wake - 1ms).empty());
  CHECK(s.take_due(*wake).size() == 1);
}

TEST_CASE("scheduler: mixed intervals spread each group evenly over its own interval", "[scheduler]") {
  FakeClock clock;
  Scheduler s(100000);
  struct Group {
    Duration interval;
    int n;
  };
  const std::vector<Group> groups = {{10s, 100}, {60s, 30}, {1s, 7}};
  std::map<Duration::rep, std::vector<Scheduler::TaskId>> ids;
  // Added interleaved: the spread is per interval, not per insertion order.
  for (int i = 0; i < 100; ++i)
    for (const auto& g : groups)
      if (i < g.n) ids[g.interval.count()].push_back(s.add(g.interval));
  const SteadyTime start = clock.now();
  s.start(start);

  const Run run = drive(s, clock, start + 60s, s.size());
  for (const auto& g : groups) {
    INFO("interval " << g.interval.count() << " ns, " << g.n << " tasks");
    const auto& group = ids.at(g.interval.count());
    for (int k = 0; k < g.n; ++k) {
      const auto& times = run.times.at(group[k]);
      REQUIRE(times.size() == static_cast<std::size_t>(60s / g.interval));
      CHECK(times[0] == start + Duration(g.interval.count() * k / g.n));  // k / n of the way in
      for (std::size_t n = 1; n < times.size(); ++n) REQUIRE(times[n] - times[n - 1] == g.interval);
    }
  }
  // The 1 s group: 7 tasks 142.857 ms apart, to the nanosecond.
  const auto& ones = ids.at(Duration(1s).count());
  CHECK(run.times[ones[1]][0] - run.times[ones[0]][0] == 142857142ns);
  CHECK(run.times[ones[6]][0] - start == 857142857ns);
}

TEST_CASE("scheduler: set_interval takes effect from the next run", "[scheduler]") {
  FakeClock clock;
  Scheduler s(1000);
  const auto id = s.add(60s);
  const SteadyTime t0 = clock.now();
  s.start(t0);
  REQUIRE(s.take_due(t0) == std::vector<Scheduler::TaskId>{id});
  CHECK(s.next_wake(t0) == t0 + 60s);

  SECTION("shorter: the next run comes sooner") {
    s.set_interval(id, 10s, t0 + 1s);
    CHECK(s.interval(id) == 10s);
    CHECK(s.next_wake(t0 + 1s) == t0 + 10s);
    CHECK(s.take_due(t0 + 10s - 1ns).empty());
    CHECK(s.take_due(t0 + 10s) == std::vector<Scheduler::TaskId>{id});
    CHECK(s.next_wake(t0 + 10s) == t0 + 20s);
  }
  SECTION("shorter than the time already waited: the next run is now") {
    s.set_interval(id, 10s, t0 + 45s);
    CHECK(s.take_due(t0 + 45s) == std::vector<Scheduler::TaskId>{id});
    CHECK(s.next_wake(t0 + 45s) == t0 + 55s);
    CHECK(s.lagged() == 0);
  }
  SECTION("longer: the next run comes later") {
    s.set_interval(id, 120s, t0 + 1s);
    CHECK(s.take_due(t0 + 60s).empty());
    CHECK(s.next_wake(t0 + 60s) == t0 + 120s);
  }
  SECTION("the same interval: nothing changes") {
    s.set_interval(id, 60s, t0 + 1s);
    CHECK(s.next_wake(t0 + 1s) == t0 + 60s);
  }
  // Never twice for one change.
  CHECK(s.take_due(t0 + 119s).size() <= 1);
}

TEST_CASE("scheduler: a removed task runs no more", "[scheduler]") {
  FakeClock clock;
  Scheduler s(1000);
  const auto a = s.add(3s), b = s.add(3s), c = s.add(3s);
  const SteadyTime start = clock.now();
  s.start(start);
  CHECK(s.demanded_pps() == Approx(1.0));

  s.remove(b);
  s.remove(b);  // twice is harmless
  CHECK(s.size() == 2);
  CHECK(s.demanded_pps() == Approx(2.0 / 3));

  const Run run = drive(s, clock, start + 10s, 3);
  CHECK(run.times[b].empty());
  CHECK(run.times[a] == std::vector<SteadyTime>{start, start + 3s, start + 6s, start + 9s});
  CHECK(run.times[c] == std::vector<SteadyTime>{start + 2s, start + 5s, start + 8s});

  s.remove(a);
  s.remove(c);
  CHECK(s.size() == 0);
  CHECK_FALSE(s.next_wake(clock.now()));
  CHECK(s.take_due(clock.now() + 1h).empty());
}

TEST_CASE("scheduler: missed rounds are skipped and counted, not sent in a burst", "[scheduler][lag]") {
  FakeClock clock;
  Scheduler s(1000);  // burst 10: room for a burst, if the scheduler wanted one
  const auto id = s.add(10s);
  const SteadyTime t0 = clock.now();
  s.start(t0);
  REQUIRE(s.take_due(t0).size() == 1);

  // The process stalls: its next run was due at t0 + 10 s; it wakes 5 intervals later.
  clock.set(t0 + 10s + 5 * 10s);
  CHECK(s.take_due(clock.now()) == std::vector<Scheduler::TaskId>{id});  // once, not 6 times, not twice
  CHECK(s.take_due(clock.now()).empty());
  CHECK(s.lagged() == 5);  // the rounds of t0 + 10, 20, 30, 40, 50 s
  // The phase is kept: the next run is on the original grid.
  CHECK(s.next_wake(clock.now()) == t0 + 70s);

  SECTION("a stall of a round and a half") {
    clock.set(t0 + 70s + 15s);
    CHECK(s.take_due(clock.now()).size() == 1);
    CHECK(s.take_due(clock.now()).empty());
    CHECK(s.lagged() == 6);
    CHECK(s.next_wake(clock.now()) == t0 + 90s);
  }
  SECTION("late by less than a round: nothing is skipped") {
    clock.set(t0 + 79s);
    CHECK(s.take_due(clock.now()).size() == 1);
    CHECK(s.lagged() == 5);
    CHECK(s.next_wake(clock.now()) == t0 + 80s);
  }
}

TEST_CASE("scheduler: after a stall, many tasks catch up once each and keep their phase", "[scheduler][lag]") {
  FakeClock clock;
  Scheduler s(100000);
  for (int i = 0; i < 100; ++i) s.add(10s);
  const SteadyTime start = clock.now();
  s.start(start);
  drive(s, clock, start + 10s, 100);  // one normal round

  clock.set(start + 60s);  // stalled for 5 intervals
  const auto caught_up = s.take_due(clock.now());
  CHECK(caught_up.size() == 100);
  std::vector<Scheduler::TaskId> sorted = caught_up;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());  // each once
  CHECK(s.take_due(clock.now()).empty());

  const Run after = drive(s, clock, start + 70s, 100);
  for (int k = 0; k < 100; ++k) {
    INFO("task " << k);
    // Task k (phase k * 100 ms) ran at start + 60 s for its round of start + 50 s + k * 100 ms,
    // and next on its grid at start + 60 s + k * 100 ms (task 0: start + 70 s).
    if (k == 0) CHECK(after.times[k].empty());
    else CHECK(after.times[k] == std::vector<SteadyTime>{start + 60s + 100ms * k});
  }
}

TEST_CASE("TokenBucket: starts full, refills at its rate, holds at most its burst", "[scheduler][bucket]") {
  FakeClock clock;
  TokenBucket b(10, 5);
  CHECK(b.rate() == 10);
  const SteadyTime t0 = clock.now();
  for (int i = 0; i < 5; ++i) CHECK(b.take(t0));
  CHECK_FALSE(b.take(t0));
  CHECK(b.available_at(t0) > t0);
  CHECK(b.available_at(t0) <= t0 + 100ms + 2ns);
  CHECK(b.available_at(t0) >= t0 + 100ms);
  CHECK_FALSE(b.take(t0 + 99ms));
  CHECK(b.take(t0 + 100ms + 1ns));
  CHECK_FALSE(b.take(t0 + 100ms + 1ns));

  // A long idle time saves up no more than the burst.
  const SteadyTime t1 = t0 + 1h;
  CHECK(b.available_at(t1) == t1);
  for (int i = 0; i < 5; ++i) CHECK(b.take(t1));
  CHECK_FALSE(b.take(t1));
}

TEST_CASE("TokenBucket: several tokens at once, and a clock that seems to go back", "[scheduler][bucket]") {
  FakeClock clock;
  TokenBucket b(100, 10);
  const SteadyTime t0 = clock.now();
  CHECK(b.take(t0, 4));
  CHECK(b.take(t0, 6));
  CHECK_FALSE(b.take(t0, 1));
  CHECK(b.available_at(t0, 3) >= t0 + 30ms);
  CHECK_FALSE(b.take(t0 + 20ms, 3));  // 2 tokens there
  CHECK(b.take(t0 + 20ms, 2));
  // An earlier time than the last seen adds nothing (and takes nothing away).
  CHECK_FALSE(b.take(t0 + 10ms, 1));
  CHECK(b.take(t0 + 30ms, 1));
}

TEST_CASE("scheduler: run_at moves a started task's next run and keeps its interval from there", "[scheduler]") {
  FakeClock clock;
  Scheduler s(1000);
  const auto a = s.add(60s);
  const auto b = s.add(60s);
  CHECK_FALSE(s.next_run(a));  // not started
  const SteadyTime t0 = clock.now();
  s.start(t0);
  REQUIRE(s.next_run(a) == t0);
  REQUIRE(s.next_run(b) == t0 + 30s);
  s.run_at(a, t0 + 17s);
  CHECK(s.next_run(a) == t0 + 17s);
  CHECK(s.take_due(t0 + 16s).empty());  // its old slot is gone
  CHECK(s.take_due(t0 + 17s) == std::vector<Scheduler::TaskId>{a});
  CHECK(s.next_run(a) == t0 + 77s);
  CHECK(s.take_due(t0 + 30s) == std::vector<Scheduler::TaskId>{b});
  CHECK(s.take_due(t0 + 76s).empty());
  CHECK(s.take_due(t0 + 77s) == std::vector<Scheduler::TaskId>{a});
  s.remove(b);
  CHECK_FALSE(s.next_run(b));
}
