#include "event_loop.hpp"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace outpost {

EventLoop::EventLoop(Clock& clock) : clock_(clock) {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (epoll_ < 0 || timerfd_ < 0) throw std::runtime_error(std::string("event loop: ") + std::strerror(errno));
  sigemptyset(&signals_);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = timerfd_;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, timerfd_, &ev);
}

EventLoop::~EventLoop() {
  if (signalfd_ >= 0) close(signalfd_);
  close(timerfd_);
  close(epoll_);
}

void EventLoop::watch(int fd, Callback on_readable) {
  watch_events(fd, EPOLLIN, [cb = std::move(on_readable)](std::uint32_t) { cb(); });
}

void EventLoop::watch_events(int fd, std::uint32_t events, ReadyCallback on_ready) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  fds_[fd] = std::move(on_ready);
  // A closed fd leaves epoll by itself: its number may come back as a new one.
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0 && errno == EEXIST) epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::unwatch(int fd) {
  if (fds_.erase(fd)) epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::at(SteadyTime when, Callback cb) {
  const TimerId id = next_id_++;
  timers_.push({when, id});
  callbacks_.emplace(id, std::move(cb));
  return id;
}

EventLoop::TimerId EventLoop::at_exact(SteadyTime when, Callback cb) {
  const TimerId id = at(when, std::move(cb));
  exact_.push({when, id});
  return id;
}

void EventLoop::cancel(TimerId id) {
  if (callbacks_.erase(id)) cancelled_.insert(id);
}

void EventLoop::on_signal(int signo, Callback cb) {
  sigaddset(&signals_, signo);
  sigprocmask(SIG_BLOCK, &signals_, nullptr);
  signal_handlers_[signo] = std::move(cb);
  const bool fresh = signalfd_ < 0;
  signalfd_ = signalfd(signalfd_, &signals_, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fresh) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = signalfd_;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, signalfd_, &ev);
  }
}

void EventLoop::run_deferred() {
  while (!deferred_.empty()) {
    std::vector<Callback> due;
    due.swap(deferred_);
    for (auto& cb : due) cb();
  }
}

void EventLoop::run_due_timers() {
  run_deferred();
  const SteadyTime now = clock_.now();
  while (!timers_.empty() && timers_.top().when <= now) {
    const Timer t = timers_.top();
    timers_.pop();
    if (cancelled_.erase(t.id)) continue;
    auto it = callbacks_.find(t.id);
    if (it == callbacks_.end()) continue;
    Callback cb = std::move(it->second);
    callbacks_.erase(it);
    cb();
    run_deferred();
    // What the timer sent is read back before the next timer runs: with
    // coalesced wakes several come due in one turn, and a later one (a
    // trace's retry) must see the answer that came meanwhile.
    for (const auto& [id, settle] : before_wait_) {
      settle();
      run_deferred();
    }
  }
}

std::optional<SteadyTime> EventLoop::next_deadline() {
  while (!timers_.empty() && cancelled_.erase(timers_.top().id)) timers_.pop();
  if (timers_.empty()) return std::nullopt;
  return timers_.top().when;
}

std::optional<SteadyTime> EventLoop::next_exact() {
  while (!exact_.empty() && !callbacks_.contains(exact_.top().id)) exact_.pop();
  if (exact_.empty()) return std::nullopt;
  return exact_.top().when;
}

void EventLoop::arm_timerfd() {
  itimerspec spec{};
  if (const auto next = next_deadline()) {
    const auto ns = next->time_since_epoch().count();
    // steady_clock is CLOCK_MONOTONIC on Linux: arm at the absolute time.
    spec.it_value.tv_sec = ns / 1000000000;
    spec.it_value.tv_nsec = ns % 1000000000;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  }
  timerfd_settime(timerfd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

void EventLoop::handle_signals() {
  signalfd_siginfo info;
  while (read(signalfd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    auto it = signal_handlers_.find(static_cast<int>(info.ssi_signo));
    if (it != signal_handlers_.end()) it->second();
  }
}

int EventLoop::wait(epoll_event* events, int max_events) {
  if (min_gap_ > Duration::zero()) {
    if (last_wake_) {
      SteadyTime until = *last_wake_ + min_gap_;
      if (const auto exact = next_exact(); exact && *exact < until) until = *exact;
      if (clock_.now() < until) {
        const auto ns = until.time_since_epoch().count();
        const timespec resume{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &resume, nullptr) == EINTR) {
        }
      }
    }
    const int n = wait_now(events, max_events);
    last_wake_ = clock_.now();
    return n;
  }
  return wait_now(events, max_events);
}

int EventLoop::wait_now(epoll_event* events, int max_events) {
  if (use_pwait2_) {
    // One system call per wake, where a timerfd takes three (arm, wait, read).
    timespec timeout{};
    const timespec* until = nullptr;
    if (const auto next = next_deadline()) {
      const auto ns = std::max<std::int64_t>(0, (*next - clock_.now()).count());  // 0: a timer is due
      timeout.tv_sec = ns / 1000000000;
      timeout.tv_nsec = ns % 1000000000;
      until = &timeout;
    }
    const int n = epoll_pwait2(epoll_, events, max_events, until, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    use_pwait2_ = false;  // a kernel before 5.11
  }
  arm_timerfd();
  return epoll_wait(epoll_, events, max_events, -1);
}

bool EventLoop::run_once(bool block) {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  // The loop's barrier (no exception crosses it): a callback that throws
  // ends the run with the reason in error(); the caller flushes and exits.
  try {
    run_deferred();
    for (const auto& [id, cb] : before_wait_) {
      cb();
      run_deferred();
    }
    if (stopping_) return true;  // what they did ended the run: no wait
    int n;
    if (block) {
      n = wait(events, kMaxEvents);
    } else {
      n = epoll_wait(epoll_, events, kMaxEvents, 0);
    }
    if (n < 0) {
      if (errno != EINTR) {
        error_ = std::string("epoll: ") + std::strerror(errno);
        stopping_ = true;
        return false;
      }
      n = 0;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == timerfd_) {
        std::uint64_t expirations;
        [[maybe_unused]] auto r = read(timerfd_, &expirations, sizeof expirations);
      } else if (fd == signalfd_) {
        handle_signals();
      } else if (auto it = fds_.find(fd); it != fds_.end()) {
        ReadyCallback cb = it->second;  // a copy: the callback may unwatch itself
        cb(events[i].events);
      }
      run_deferred();
    }
    run_due_timers();
  } catch (const std::exception& e) {
    error_ = std::string("uncaught exception in the event loop: ") + e.what();
    stopping_ = true;
    return false;
  } catch (...) {
    error_ = "uncaught exception in the event loop";
    stopping_ = true;
    return false;
  }
  return true;
}

bool EventLoop::run() {
  while (!stopping_)
    if (!run_once(true)) return false;
  return error_.empty();
}

}  // namespace outpost
