// Tells systemd how the agent is doing, through sd_notify: READY once it
// runs, a STATUS line, RELOADING around a reload, STOPPING at the end, and
// WATCHDOG pings from the event loop (a stuck loop stops them, and systemd
// restarts the unit after WatchdogSec). Does nothing without NOTIFY_SOCKET.
// Leaves to others: the words of the status line, and the unit (deploy/systemd/).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "event_loop.hpp"

namespace outpost {

class SystemdNotifier {
 public:
  explicit SystemdNotifier(EventLoop& loop);
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // NOTIFY_SOCKET is set: a supervisor listens.
  bool enabled() const { return enabled_; }

  // READY=1 with STATUS=status: the agent runs (also after a reload).
  void ready(const std::string& status);
  // STATUS=status, when it differs from the last one sent.
  void status(const std::string& status);
  // RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC): a reload begins; ready() ends it.
  void reloading();
  // STOPPING=1, once.
  void stopping();

  // When systemd asks for a watchdog (WATCHDOG_USEC, and WATCHDOG_PID naming
  // this process if set): WATCHDOG=1 at once, then from a loop timer every
  // half of its interval. Returns that interval; zero when none was asked.
  Duration start_watchdog();
  // Every `every` on the loop, STATUS=line() when it changed.
  void refresh_status(Duration every, std::function<std::string()> line);

  // Messages systemd took, and those it could not be sent.
  std::uint64_t sent() const { return sent_; }
  std::uint64_t failed() const { return failed_; }

 private:
  void send(const std::string& state);
  void watchdog_tick();
  void status_tick();

  EventLoop& loop_;
  bool enabled_ = false;
  bool stopping_ = false;
  std::string last_status_;
  Duration watchdog_every_{};
  EventLoop::TimerId watchdog_timer_ = 0;
  Duration status_every_{};
  std::function<std::string()> status_line_;
  EventLoop::TimerId status_timer_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t failed_ = 0;
};

}  // namespace outpost
