// What outputs need of the event loop they run on: file descriptors to watch,
// timers, the clocks, and a way back onto the loop's thread from a library's
// own thread. The daemon adapts its EventLoop to it; tests use a fake.
// Leaves to others: the loop itself (daemon/event_loop).
#pragma once

#include <cstdint>
#include <functional>

#include "clock.hpp"

namespace outpost {

class Reactor {
 public:
  using TimerId = std::uint64_t;
  virtual ~Reactor() = default;
  virtual Clock& clock() = 0;
  // events: EPOLLIN and/or EPOLLOUT; the callback gets what epoll reported.
  // Watching a watched fd replaces its callback and events.
  virtual void watch(int fd, std::uint32_t events, std::function<void(std::uint32_t)> on_ready) = 0;
  virtual void unwatch(int fd) = 0;
  virtual TimerId after(Duration d, std::function<void()> cb) = 0;
  virtual void cancel(TimerId id) = 0;
};

}  // namespace outpost
