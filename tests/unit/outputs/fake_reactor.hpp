// A Reactor over a FakeClock: timers run when the test advances time; no
// file descriptors (outputs under test use fake transports).
#pragma once

#include <map>
#include <utility>

#include "reactor.hpp"

namespace outpost::test {

class FakeReactor final : public Reactor {
 public:
  Clock& clock() override { return clock_; }
  FakeClock& fake_clock() { return clock_; }
  void watch(int, std::uint32_t, std::function<void(std::uint32_t)>) override {}
  void unwatch(int) override {}
  TimerId after(Duration d, std::function<void()> cb) override {
    const TimerId id = next_++;
    timers_.emplace(std::pair(clock_.now() + d, id), std::move(cb));
    return id;
  }
  void cancel(TimerId id) override {
    for (auto it = timers_.begin(); it != timers_.end(); ++it)
      if (it->first.second == id) {
        timers_.erase(it);
        return;
      }
  }
  // Moves the clock forward by `d`, running every timer that falls due on the way, in order.
  void advance(Duration d) {
    const SteadyTime end = clock_.now() + d;
    while (!timers_.empty() && timers_.begin()->first.first <= end) {
      auto it = timers_.begin();
      clock_.set(it->first.first);
      auto cb = std::move(it->second);
      timers_.erase(it);
      cb();
    }
    clock_.set(end);
  }
  std::size_t pending() const { return timers_.size(); }

 private:
  FakeClock clock_;
  TimerId next_ = 1;
  std::map<std::pair<SteadyTime, TimerId>, std::function<void()>> timers_;
};

}  // namespace outpost::test
