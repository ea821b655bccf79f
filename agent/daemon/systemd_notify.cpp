#include "systemd_notify.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>

#include "libsystemd.hpp"

namespace outpost {

SystemdNotifier::SystemdNotifier(EventLoop& loop) : loop_(loop) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket && *socket;
}

SystemdNotifier::~SystemdNotifier() {
  if (watchdog_timer_) loop_.cancel(watchdog_timer_);
  if (status_timer_) loop_.cancel(status_timer_);
}

void SystemdNotifier::send(const std::string& state) {
  if (!enabled_) return;
  std::string why;
  try {
    const int r = systemd_daemon().notify(0, state.c_str());
    if (r > 0) {
      ++sent_;
      return;
    }
    why = r < 0 ? std::strerror(-r) : "no NOTIFY_SOCKET";
  } catch (const std::exception& e) {
    why = e.what();  // libsystemd could not be loaded
  }
  // Only the first failure is worth a line: the socket does not come back.
  if (failed_++ == 0) spdlog::warn("systemd: cannot notify: {}", why);
}

void SystemdNotifier::ready(const std::string& status) {
  last_status_ = status;
  send("READY=1\nSTATUS=" + status);
}

void SystemdNotifier::status(const std::string& status) {
  if (status == last_status_) return;
  last_status_ = status;
  send("STATUS=" + status);
}

void SystemdNotifier::reloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL + now.tv_nsec / 1000;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void SystemdNotifier::stopping() {
  if (stopping_) return;
  stopping_ = true;
  send("STOPPING=1");
}

Duration SystemdNotifier::start_watchdog() {
  if (!enabled_ || watchdog_timer_) return watchdog_every_ * 2;
  std::uint64_t usec = 0;
  try {
    if (systemd_daemon().watchdog_enabled(0, &usec) <= 0 || usec == 0) return Duration::zero();
  } catch (const std::exception& e) {
    spdlog::warn("systemd: cannot read the watchdog's interval: {}", e.what());
    return Duration::zero();
  }
  watchdog_every_ = std::chrono::microseconds(usec) / 2;
  watchdog_tick();
  return watchdog_every_ * 2;
}

void SystemdNotifier::watchdog_tick() {
  send("WATCHDOG=1");
  watchdog_timer_ = loop_.after(watchdog_every_, [this] { watchdog_tick(); });
}

void SystemdNotifier::refresh_status(Duration every, std::function<std::string()> line) {
  if (!enabled_) return;
  status_every_ = every;
  status_line_ = std::move(line);
  if (status_timer_) loop_.cancel(status_timer_);
  status_timer_ = loop_.after(status_every_, [this] { status_tick(); });
}

void SystemdNotifier::status_tick() {
  status(status_line_());
  status_timer_ = loop_.after(status_every_, [this] { status_tick(); });
}

}  // namespace outpost
