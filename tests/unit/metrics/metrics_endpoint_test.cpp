// The /metrics endpoint on loopback: it serves the last snapshot to a plain
// HTTP GET, takes a snapshot on the loop's timer, and a port already taken is
// an error that names the address.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include "clock.hpp"
#include "event_loop.hpp"
#include "metrics_endpoint.hpp"
#include "metrics_exposer.hpp"

using namespace std::chrono_literals;
using namespace outpost;

namespace {

// GET PATH from 127.0.0.1:PORT; the whole response (status line, headers, body).
std::string http_get(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  REQUIRE(send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return response;
}

}  // namespace

TEST_CASE("metrics endpoint: serves the loop's snapshots over HTTP on loopback", "[metrics][endpoint]") {
  FakeClock clock;
  EventLoop loop(clock);
  MetricsEndpoint endpoint("127.0.0.1:0");
  const int port = endpoint.port();
  REQUIRE(port > 0);
  std::string before = http_get(port, "/metrics");
  CHECK(before.find("200 OK") != std::string::npos);
  CHECK(before.find("outpost_build_info{version=") != std::string::npos);
  CHECK(before.find("outpost_probes_sent_total") == std::string::npos);

  int taken = 0;
  endpoint.start(loop, [&] {
    ++taken;
    MetricsSnapshot s;
    s.probes["icmp"].by_status[static_cast<std::size_t>(ProbeStatus::reply)] = static_cast<std::uint64_t>(taken);
    return s;
  });
  CHECK(taken == 1);  // one at once
  CHECK(http_get(port, "/metrics").find("outpost_probes_sent_total{method=\"icmp\"} 1\n") != std::string::npos);
  clock.advance(1s);
  loop.run_due_timers();
  CHECK(taken == 2);
  CHECK(http_get(port, "/metrics").find("outpost_probes_sent_total{method=\"icmp\"} 2\n") != std::string::npos);
  endpoint.publish();  // the final one, at the exit
  CHECK(taken == 3);
  endpoint.stop();
  clock.advance(5s);
  loop.run_due_timers();
  CHECK(taken == 3);
  CHECK(http_get(port, "/metrics").find("outpost_probes_sent_total{method=\"icmp\"} 3\n") != std::string::npos);
}

TEST_CASE("metrics endpoint: a port in use is an error naming the address", "[metrics][endpoint]") {
  MetricsEndpoint first("127.0.0.1:0");
  const std::string address = "127.0.0.1:" + std::to_string(first.port());
  try {
    MetricsEndpoint second(address);
    FAIL("a second endpoint listened on " << address);
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("cannot listen on " + address) != std::string::npos);
  }
}

TEST_CASE("metrics module: no exception leaves its table; a port in use comes back as an error text",
          "[metrics][endpoint]") {
  // The executable unwinds with its own libgcc (-static-libgcc): an
  // exception thrown through the module's edge would not reach its handler.
  MetricsEndpoint first("127.0.0.1:0");
  const std::string address = "127.0.0.1:" + std::to_string(first.port());
  const MetricsExposerApi& api = metrics_exposer();
  std::string error;
  void* exposer = reinterpret_cast<void*>(1);
  CHECK_NOTHROW(exposer = api.open(address, "test", 0.0, &error));
  CHECK(exposer == nullptr);
  CHECK(error.find("agent.metrics: cannot listen on " + address) != std::string::npos);
  // And one that listens: its port, an update, its close.
  error.clear();
  void* other = api.open("127.0.0.1:0", "test", 0.0, &error);
  REQUIRE(other != nullptr);
  CHECK(error.empty());
  CHECK(api.port(other) > 0);
  CHECK(api.update(other, MetricsSnapshot{}, &error));
  CHECK(error.empty());
  api.close(other);
}
