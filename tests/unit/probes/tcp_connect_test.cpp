// TCP connect: what each connect() outcome means, and TcpConnectProbe driven
// by a fake context against listening and closed ports on loopback (no root;
// nothing leaves the host).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <string>
#include <vector>

#include "tcp_connect.hpp"

using namespace std::chrono_literals;
using outpost::IpAddress;
using outpost::ProbeStatus;

TEST_CASE("connect_status: what a finished connect() means", "[tcp_connect]") {
  CHECK(outpost::connect_status(0) == ProbeStatus::reply);
  CHECK(outpost::connect_status(ECONNREFUSED) == ProbeStatus::refused);
  CHECK(outpost::connect_status(EHOSTUNREACH) == ProbeStatus::unreachable);
  CHECK(outpost::connect_status(ENETUNREACH) == ProbeStatus::unreachable);
  CHECK(outpost::connect_status(ETIMEDOUT) == ProbeStatus::timeout);
  CHECK(outpost::connect_status(EACCES) == ProbeStatus::error);
  CHECK(outpost::connect_status(EADDRNOTAVAIL) == ProbeStatus::error);
}

namespace {

class FakeContext final : public outpost::ProbeContext {
 public:
  bool can_watch = true;
  std::vector<std::pair<int, std::uint32_t>> watched;
  std::vector<outpost::Duration> timeouts;
  outpost::WallTime wall{std::chrono::seconds(1419264900)};

  IpAddress source_for(const IpAddress&, std::string*) override { return {}; }  // not asked: no forging
  std::uint16_t next_ip_id() override { return 0; }
  std::uint16_t next_icmp_ident() override { return 0; }
  std::uint16_t next_icmp_sequence() override { return 0; }
  std::uint16_t next_dns_id() override { return 0x0d05; }
  const outpost::FlowSecret& secret() const override { static const outpost::FlowSecret none{}; return none; }
  outpost::WallTime wall_now() override { return wall; }
  bool expect(const outpost::FlowKey&) override { return false; }
  bool send(const IpAddress&, std::span<const std::uint8_t>, std::string* error) override {
    *error = "tcp_connect must not send raw packets";
    return false;
  }
  void arm_timeout(outpost::Duration d) override { timeouts.push_back(d); }
  bool watch(int fd, std::uint32_t events) override {
    if (!can_watch) return false;
    watched.emplace_back(fd, events);
    return true;
  }
};

// A TCP socket bound to a free loopback port; listening or not (closed: connects are refused).
class LoopbackPort {
 public:
  explicit LoopbackPort(bool listening) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    socklen_t len = sizeof sa;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    port_ = ntohs(sa.sin_port);
    if (listening) REQUIRE(listen(fd_, 8) == 0);
  }
  ~LoopbackPort() { close(fd_); }
  LoopbackPort(const LoopbackPort&) = delete;
  LoopbackPort& operator=(const LoopbackPort&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// What the event loop does: waits for the watched events, hands them to the probe.
void run_until_ready(outpost::TcpConnectProbe& probe, FakeContext& ctx, int fd, std::uint32_t events) {
  pollfd p{fd, static_cast<short>(events), 0};
  REQUIRE(poll(&p, 1, 5000) == 1);
  std::uint32_t ready = 0;
  if (p.revents & POLLOUT) ready |= EPOLLOUT;
  if (p.revents & POLLERR) ready |= EPOLLERR;
  if (p.revents & POLLHUP) ready |= EPOLLHUP;
  probe.on_ready(ctx, fd, ready);
}

}  // namespace

TEST_CASE("TcpConnectProbe on loopback: open port is reply, closed port is refused", "[tcp_connect][loopback]") {
  FakeContext ctx;
  const auto loopback = *IpAddress::parse("127.0.0.1");
  const bool open = GENERATE(true, false);
  LoopbackPort port(open);

  outpost::TcpConnectProbe probe(loopback, port.port(), 2s);
  probe.start(ctx);
  if (!probe.finished()) {
    REQUIRE(ctx.watched.size() == 1);
    CHECK(ctx.watched[0].second == EPOLLOUT);
    CHECK(ctx.timeouts == std::vector<outpost::Duration>{2s});
    run_until_ready(probe, ctx, ctx.watched[0].first, EPOLLOUT);
  }
  REQUIRE(probe.finished());
  const auto& r = probe.result();
  CHECK(r.status == (open ? ProbeStatus::reply : ProbeStatus::refused));
  CHECK(r.target == loopback);
  CHECK(r.sent == ctx.wall);
  CHECK_FALSE(r.sent_kernel_stamp);
  CHECK(r.rtt);  // the kernel's handshake sample, or the time connect() took
  CHECK(r.error.empty());
  CHECK_FALSE(r.reply_from);  // the socket does not show the answering packet
}

TEST_CASE("TcpConnectProbe: a timeout ends it, and a late readiness changes nothing", "[tcp_connect][loopback]") {
  FakeContext ctx;
  LoopbackPort port(true);
  outpost::TcpConnectProbe probe(*IpAddress::parse("127.0.0.1"), port.port(), 1s);
  probe.start(ctx);
  REQUIRE_FALSE(probe.finished());
  probe.on_timeout();
  REQUIRE(probe.finished());
  CHECK(probe.result().status == ProbeStatus::timeout);
  run_until_ready(probe, ctx, ctx.watched.at(0).first, EPOLLOUT);
  CHECK(probe.result().status == ProbeStatus::timeout);
  CHECK_FALSE(probe.result().rtt);
}

TEST_CASE("TcpConnectProbe without an event loop fails as data, not exceptions", "[tcp_connect]") {
  FakeContext ctx;
  ctx.can_watch = false;
  LoopbackPort port(true);
  outpost::TcpConnectProbe probe(*IpAddress::parse("127.0.0.1"), port.port(), 1s);
  probe.start(ctx);
  REQUIRE(probe.finished());
  CHECK(probe.result().status == ProbeStatus::error);
  CHECK(probe.result().error == "tcp_connect needs an event loop to watch its socket");
  CHECK(ctx.timeouts.empty());
  CHECK_FALSE(probe.result().rtt);
}
