// The sd_notify messages, read from a unix datagram socket standing in for
// systemd's (NOTIFY_SOCKET): READY with STATUS, RELOADING with
// MONOTONIC_USEC, STOPPING once, WATCHDOG pings at half of WATCHDOG_USEC
// from the loop's timers (a fake clock); nothing at all without the socket.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "clock.hpp"
#include "event_loop.hpp"
#include "systemd_notify.hpp"

using namespace std::chrono_literals;
using outpost::EventLoop;
using outpost::FakeClock;
using outpost::SystemdNotifier;

namespace {

// A datagram socket bound in a fresh directory, named by NOTIFY_SOCKET while it lives.
class NotifySocket {
 public:
  NotifySocket() {
    char dir[] = "/tmp/outpost-notify-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    dir_ = dir;
    path_ = dir_ + "/notify";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path_.size() < sizeof addr.sun_path);
    std::copy(path_.begin(), path_.end(), addr.sun_path);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  // Every message waiting, oldest first.
  std::vector<std::string> take() {
    std::vector<std::string> out;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) break;
      out.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

}  // namespace

TEST_CASE("systemd notify: READY with the status, then only a changed status", "[systemd]") {
  NotifySocket socket;
  FakeClock clock;
  EventLoop loop(clock);
  SystemdNotifier notifier(loop);
  REQUIRE(notifier.enabled());
  notifier.ready("probing 3 targets, 1 outputs, 0 records written");
  notifier.status("probing 3 targets, 1 outputs, 0 records written");  // unchanged: not sent
  notifier.status("probing 3 targets, 1 outputs, 12 records written");
  CHECK(socket.take() == std::vector<std::string>{"READY=1\nSTATUS=probing 3 targets, 1 outputs, 0 records written",
                                                  "STATUS=probing 3 targets, 1 outputs, 12 records written"});
  CHECK(notifier.sent() == 2);
  CHECK(notifier.failed() == 0);
}

TEST_CASE("systemd notify: a reload is RELOADING with the monotonic time, ended by READY", "[systemd]") {
  NotifySocket socket;
  FakeClock clock;
  EventLoop loop(clock);
  SystemdNotifier notifier(loop);
  timespec before{};
  ::clock_gettime(CLOCK_MONOTONIC, &before);
  notifier.reloading();
  notifier.ready("reloaded");
  const auto got = socket.take();
  REQUIRE(got.size() == 2);
  REQUIRE(got[0].rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
  const unsigned long long usec = std::stoull(got[0].substr(got[0].find('=', 12) + 1));
  CHECK(usec >= static_cast<unsigned long long>(before.tv_sec) * 1000000ULL);
  CHECK(got[1] == "READY=1\nSTATUS=reloaded");
}

TEST_CASE("systemd notify: STOPPING is sent once", "[systemd]") {
  NotifySocket socket;
  FakeClock clock;
  EventLoop loop(clock);
  SystemdNotifier notifier(loop);
  notifier.stopping();
  notifier.stopping();
  CHECK(socket.take() == std::vector<std::string>{"STOPPING=1"});
}

TEST_CASE("systemd notify: the watchdog pings at once, then every half interval from the loop", "[systemd]") {
  NotifySocket socket;
  ::setenv("WATCHDOG_USEC", "4000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  FakeClock clock;
  EventLoop loop(clock);
  SystemdNotifier notifier(loop);
  CHECK(notifier.start_watchdog() == 4s);
  CHECK(socket.take() == std::vector<std::string>{"WATCHDOG=1"});
  clock.advance(1999ms);
  loop.run_due_timers();
  CHECK(socket.take().empty());
  clock.advance(1ms);
  loop.run_due_timers();
  CHECK(socket.take() == std::vector<std::string>{"WATCHDOG=1"});
  // A loop that does not turn sends nothing: the pings stop with it.
  clock.advance(10s);
  CHECK(socket.take().empty());
  loop.run_due_timers();  // one late turn: one ping, the next one half an interval on
  CHECK(socket.take() == std::vector<std::string>{"WATCHDOG=1"});
}

TEST_CASE("systemd notify: no watchdog for another process's WATCHDOG_PID", "[systemd]") {
  NotifySocket socket;
  ::setenv("WATCHDOG_USEC", "4000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  FakeClock clock;
  EventLoop loop(clock);
  SystemdNotifier notifier(loop);
  CHECK(notifier.start_watchdog() == outpost::Duration::zero());
  CHECK(loop.pending_timers() == 0);
  CHECK(socket.take().empty());
}

TEST_CASE("systemd notify: the status is refreshed on the loop when it changes", "[systemd]") {
  NotifySocket socket;
  FakeClock clock;
  EventLoop loop(clock);
  SystemdNotifier notifier(loop);
  int records = 0;
  notifier.ready("0 records");
  notifier.refresh_status(10s, [&] { return std::to_string(records) + " records"; });
  clock.advance(10s);
  loop.run_due_timers();  // unchanged
  records = 7;
  clock.advance(10s);
  loop.run_due_timers();
  CHECK(socket.take() == std::vector<std::string>{"READY=1\nSTATUS=0 records", "STATUS=7 records"});
}

TEST_CASE("systemd notify: without NOTIFY_SOCKET nothing is sent and no timer is set", "[systemd]") {
  ::unsetenv("NOTIFY_SOCKET");
  ::setenv("WATCHDOG_USEC", "4000000", 1);
  FakeClock clock;
  EventLoop loop(clock);
  SystemdNotifier notifier(loop);
  CHECK_FALSE(notifier.enabled());
  notifier.ready("x");
  notifier.reloading();
  notifier.stopping();
  CHECK(notifier.start_watchdog() == outpost::Duration::zero());
  notifier.refresh_status(1s, [] { return std::string("y"); });
  CHECK(loop.pending_timers() == 0);
  CHECK(notifier.sent() == 0);
  CHECK(notifier.failed() == 0);
  ::unsetenv("WATCHDOG_USEC");
}
