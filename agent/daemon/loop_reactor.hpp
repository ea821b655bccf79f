// The event loop as the Reactor that outputs run on.
// Leaves to others: everything; it only forwards.
#pragma once

#include "event_loop.hpp"
#include "reactor.hpp"

namespace outpost {

class LoopReactor final : public Reactor {
 public:
  explicit LoopReactor(EventLoop& loop) : loop_(loop) {}
  Clock& clock() override { return loop_.clock(); }
  void watch(int fd, std::uint32_t events, std::function<void(std::uint32_t)> on_ready) override {
    loop_.watch_events(fd, events, std::move(on_ready));
  }
  void unwatch(int fd) override { loop_.unwatch(fd); }
  TimerId after(Duration d, std::function<void()> cb) override { return loop_.after(d, std::move(cb)); }
  void cancel(TimerId id) override { loop_.cancel(id); }

 private:
  EventLoop& loop_;
};

}  // namespace outpost
