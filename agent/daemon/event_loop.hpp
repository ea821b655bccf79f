// The single-threaded event loop: epoll over file descriptors, a timer heap
// on the injected steady clock (epoll_pwait2 waits until the earliest
// deadline, to the nanosecond; where the kernel lacks it, a timerfd armed at
// that deadline), and signals through a signalfd.
// Leaves to others: what the callbacks do; nothing here blocks but the wait.
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "clock.hpp"

struct epoll_event;

namespace outpost {

class EventLoop {
 public:
  using Callback = std::function<void()>;
  using TimerId = std::uint64_t;

  explicit EventLoop(Clock& clock);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  Clock& clock() { return clock_; }

  using ReadyCallback = std::function<void(std::uint32_t events)>;
  void watch(int fd, Callback on_readable);
  // events: EPOLLIN and/or EPOLLOUT; the callback gets what epoll reported
  // (EPOLLERR and EPOLLHUP included). Watching a watched fd replaces it.
  void watch_events(int fd, std::uint32_t events, ReadyCallback on_ready);
  void unwatch(int fd);
  TimerId at(SteadyTime when, Callback cb);
  TimerId after(Duration d, Callback cb) { return at(clock_.now() + d, std::move(cb)); }
  // A timer that coalesced wakes (coalesce_wakes) do not delay: the loop
  // wakes for it on time, and whatever else is due by then comes along. For
  // what must keep its own pace inside a gap (the rate cap's tokens).
  TimerId at_exact(SteadyTime when, Callback cb);
  void cancel(TimerId id);
  // Blocks the signals and delivers them here instead.
  void on_signal(int signo, Callback cb);
  // Called at the start of every turn, before the wait, and after each
  // timer (several may come due in one coalesced turn): work that a wake of
  // its own would cost more for (reading back the packets just sent).
  // Returns its number, for forget_before_wait (an owner that goes before the loop).
  std::uint64_t before_wait(Callback cb) {
    before_wait_.emplace_back(++next_before_wait_, std::move(cb));
    return next_before_wait_;
  }
  void forget_before_wait(std::uint64_t id) {
    std::erase_if(before_wait_, [id](const auto& entry) { return entry.first == id; });
  }

  // Runs cb as soon as the callback now running returns (an fd's, a
  // timer's, a before_wait one's), before the loop goes on; called outside
  // them, before whatever the loop runs next. For work that should see all
  // that one callback hands over: a trace takes every answer one read
  // brought in before it sends more TTLs.
  void defer(Callback cb) { deferred_.push_back(std::move(cb)); }

  // Runs due timers (and only timers): what a fake-clock test calls.
  void run_due_timers();
  // One turn of the loop: runs the before_wait callbacks (and returns if
  // they stopped the loop), waits for the earliest of fds, timers and signals
  // (with block false, or when a timer is due, does not wait at all), hands
  // over every ready fd and signal, and only then runs the timers due. I/O
  // goes first so that after a stall (a slow callback, a starved process)
  // what arrived in time is taken in before any timeout fires. Returns false
  // after an epoll error or an exception out of a callback (see error()).
  bool run_once(bool block = true);
  // Turns until stop(); false (with error()) when the loop failed.
  bool run();
  void stop() { stopping_ = true; }
  // Lets run() turn again after a stop() (a second phase, such as draining the outputs).
  void resume() { stopping_ = false; }
  // Why the loop failed: an epoll error, or what a callback threw ("" while it has not).
  const std::string& error() const { return error_; }
  // The earliest live timer, if any (a simulation advances its clock to it).
  std::optional<SteadyTime> next_timer() { return next_deadline(); }
  // Wakes at most once per `gap` (zero, the default: as soon as anything is
  // ready): a wait that would begin sooner than `gap` after the last one
  // ended first sleeps until then, and what came meanwhile is handed over
  // together. For a busy loop (tens of thousands of frames a second) whose
  // work does not need to be prompt: the capture's stamps, not the wake,
  // time the packets. Timers then run up to `gap` (and the kernel's timer
  // slack) late, at_exact timers excepted. Sleeps on CLOCK_MONOTONIC: not
  // for a fake clock.
  void coalesce_wakes(Duration gap) { min_gap_ = gap; }
  Duration coalesce_gap() const { return min_gap_; }
  // Waits with a timerfd and epoll_wait, as on kernels without epoll_pwait2
  // (where the loop falls back to it by itself); for tests of that path.
  void use_timerfd() { use_pwait2_ = false; }
  bool stopping() const { return stopping_; }
  std::size_t pending_timers() const { return timers_.size() - cancelled_.size(); }

 private:
  struct Timer {
    SteadyTime when;
    TimerId id;
    bool operator>(const Timer& o) const { return when != o.when ? when > o.when : id > o.id; }
  };
  // The earliest live deadline, cancelled timers on top popped first.
  std::optional<SteadyTime> next_deadline();
  // The earliest live deadline of the at_exact timers.
  std::optional<SteadyTime> next_exact();
  void arm_timerfd();
  // One wait for events: up to the next deadline.
  int wait(epoll_event* events, int max_events);
  int wait_now(epoll_event* events, int max_events);
  void handle_signals();
  void run_deferred();

  Clock& clock_;
  int epoll_ = -1;
  int timerfd_ = -1;
  bool use_pwait2_ = true;  // until the kernel says ENOSYS
  Duration min_gap_{0};
  std::optional<SteadyTime> last_wake_;
  int signalfd_ = -1;
  sigset_t signals_{};
  bool stopping_ = false;
  std::string error_;
  TimerId next_id_ = 1;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  // The at_exact timers again (also in timers_, which runs them); an entry
  // whose callback is gone (run or cancelled) is dropped when it comes on top.
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> exact_;
  std::unordered_map<TimerId, Callback> callbacks_;
  std::unordered_set<TimerId> cancelled_;
  std::unordered_map<int, ReadyCallback> fds_;
  std::map<int, Callback> signal_handlers_;
  std::vector<std::pair<std::uint64_t, Callback>> before_wait_;
  std::uint64_t next_before_wait_ = 0;
  std::vector<Callback> deferred_;
};

}  // namespace outpost
