// libsystemd opened when first needed: its functions answer as libsystemd
// does, and the two that libdbus's archive calls (sd_listen_fds and
// sd_is_socket, defined in outpost and linked with libpcap's archive) reach
// libsystemd's own.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "libsystemd.hpp"

extern "C" int sd_listen_fds(int unset_environment);
extern "C" int sd_is_socket(int fd, int family, int type, int listening);

TEST_CASE("libsystemd: opened on first use, each function found", "[libsystemd]") {
  const auto& sd = outpost::systemd_daemon();
  CHECK(sd.notify != nullptr);
  CHECK(sd.watchdog_enabled != nullptr);
  CHECK(sd.listen_fds != nullptr);
  CHECK(sd.is_socket != nullptr);
  CHECK(&outpost::systemd_daemon() == &sd);  // loaded once
  // Without NOTIFY_SOCKET, sd_notify sends nothing and says so (0).
  ::unsetenv("NOTIFY_SOCKET");
  CHECK(sd.notify(0, "READY=1") == 0);
  // The watchdog's interval is read from WATCHDOG_USEC.
  ::setenv("WATCHDOG_USEC", "4000000", 1);
  ::unsetenv("WATCHDOG_PID");
  std::uint64_t usec = 0;
  CHECK(sd.watchdog_enabled(0, &usec) > 0);
  CHECK(usec == 4000000);
  ::unsetenv("WATCHDOG_USEC");
  CHECK(sd.watchdog_enabled(0, &usec) == 0);
}

TEST_CASE("libsystemd: libdbus's two calls reach libsystemd", "[libsystemd]") {
  // No socket passed: 0. Sockets passed to this process (LISTEN_PID is its
  // pid): their count, as libsystemd reads it, and the environment left.
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  CHECK(sd_listen_fds(0) == 0);
  // libsystemd takes the count only when descriptors 3.. are open (it marks
  // them close-on-exec): /dev/null takes 3 when it is free.
  const int null_fd = ::open("/dev/null", O_RDONLY);
  REQUIRE(null_fd >= 3);
  int open_from_3 = 0;
  while (::fcntl(3 + open_from_3, F_GETFD) >= 0) ++open_from_3;
  REQUIRE(open_from_3 >= 1);
  ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
  ::setenv("LISTEN_FDS", std::to_string(open_from_3).c_str(), 1);
  CHECK(sd_listen_fds(0) == open_from_3);
  // One descriptor more than are open: libsystemd refuses (-EBADF), where
  // outpost's fallback without libsystemd would have said 0.
  ::setenv("LISTEN_FDS", std::to_string(open_from_3 + 1).c_str(), 1);
  CHECK(sd_listen_fds(0) == -EBADF);
  ::close(null_fd);
  CHECK(std::getenv("LISTEN_FDS") != nullptr);
  // Another process's sockets are not ours.
  ::setenv("LISTEN_PID", std::to_string(::getpid() + 1).c_str(), 1);
  CHECK(sd_listen_fds(1) == 0);
  CHECK(std::getenv("LISTEN_FDS") == nullptr);  // unset_environment honoured

  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
  CHECK(sd_is_socket(pair[0], AF_UNIX, SOCK_STREAM, -1) == 1);
  CHECK(sd_is_socket(pair[0], AF_INET, 0, -1) == 0);
  CHECK(sd_is_socket(pair[0], AF_UNIX, SOCK_DGRAM, -1) == 0);
  ::close(pair[0]);
  ::close(pair[1]);
  CHECK(sd_is_socket(-1, AF_UNIX, 0, -1) < 0);
}
