// The dns probe: answers checked against `expect`, and DnsProbe driven by a
// fake context against a server on loopback (no root; nothing leaves the
// host), with answers from the fixtures the codec's tests parse.

#include "test_bytes.hpp"
#include "dns.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using outpost::DnsQuestion;
using outpost::IpAddress;
using outpost::ProbeStatus;

namespace {

using namespace test_bytes;

const DnsQuestion kWwwA{"www.lab.test", 1};

}  // namespace

TEST_CASE("dns: check_dns_expect", "[dns]") {
  outpost::DnsAnswerInfo info;
  info.rcode = "NOERROR";
  info.answers = {"198.18.0.1", "www.lab.test"};
  CHECK(outpost::check_dns_expect({}, info).empty());
  CHECK(outpost::check_dns_expect({"198.18.0.1"}, info).empty());
  CHECK(outpost::check_dns_expect({"WWW.lab.test.", "198.18.0.1"}, info).empty());
  CHECK(outpost::check_dns_expect({"198.18.0.1", "198.18.0.9"}, info) ==
        "expected [198.18.0.9] among the answers, got NOERROR [198.18.0.1, www.lab.test]");
  info.rcode = "NXDOMAIN";
  info.answers.clear();
  CHECK(outpost::check_dns_expect({"198.18.0.1"}, info) == "expected [198.18.0.1] among the answers, got NXDOMAIN []");
}

// ------------------------------------------------------- the probe, on loopback

namespace {

// Watches as the engine does: a real epoll set, with the events asked for.
class FakeContext final : public outpost::ProbeContext {
 public:
  FakeContext() : epoll_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~FakeContext() override { close(epoll_); }
  FakeContext(const FakeContext&) = delete;
  FakeContext& operator=(const FakeContext&) = delete;

  std::vector<int> watched;
  std::vector<outpost::FlowKey> expected;
  std::vector<outpost::Duration> timeouts;
  outpost::WallTime wall{std::chrono::seconds(1419264900)};

  IpAddress source_for(const IpAddress&, std::string*) override { return {}; }
  std::uint16_t next_ip_id() override { return 0; }
  std::uint16_t next_icmp_ident() override { return 0; }
  std::uint16_t next_icmp_sequence() override { return 0; }
  std::uint16_t next_dns_id() override { return 0x0d05; }
  const outpost::FlowSecret& secret() const override { static const outpost::FlowSecret none{}; return none; }
  outpost::WallTime wall_now() override { return wall; }
  bool expect(const outpost::FlowKey& key) override {
    expected.push_back(key);
    return true;
  }
  bool send(const IpAddress&, std::span<const std::uint8_t>, std::string* error) override {
    *error = "dns must not send raw packets";
    return false;
  }
  void arm_timeout(outpost::Duration d) override { timeouts.push_back(d); }
  bool watch(int fd, std::uint32_t events) override {
    watched.push_back(fd);
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    return epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }
  // Waits up to 2 s for a watched socket and hands it to the probe, as the
  // engine does; false when nothing stirred.
  bool step(outpost::Probe& probe) { return step_for(probe, 2000); }
  bool step_for(outpost::Probe& probe, int ms) {
    epoll_event ev{};
    if (epoll_wait(epoll_, &ev, 1, ms) != 1) return false;
    probe.on_ready(*this, ev.data.fd, ev.events);
    return true;
  }

 private:
  int epoll_;
};

const IpAddress kLoopback = *IpAddress::parse("127.0.0.1");
const IpAddress kLoopback6 = *IpAddress::parse("::1");

bool wait_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 2000) == 1;
}

// A DNS server on 127.0.0.1, UDP and TCP on one port, played by the test step
// by step (from a thread of its own where the probe must run meanwhile).
// Each step waits at most 2 s and says whether it worked.
class LoopbackServer {
 public:
  explicit LoopbackServer(IpAddress addr = kLoopback) {
    outpost::keep_kernel_timestamps_on();  // waits until the kernel stamps datagrams
    // The kernel picks the UDP port; TCP may have that one taken: then again.
    const int family = addr.is_v6() ? AF_INET6 : AF_INET;
    for (int attempt = 0; attempt < 20 && !ok_; ++attempt) {
      if (udp_ >= 0) close(udp_), close(tcp_);
      udp_ = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      tcp_ = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_storage sa{};
      socklen_t len = addr.to_sockaddr(sa, 0);
      ok_ = bind(udp_, reinterpret_cast<sockaddr*>(&sa), len) == 0 &&
            getsockname(udp_, reinterpret_cast<sockaddr*>(&sa), &len) == 0 &&
            bind(tcp_, reinterpret_cast<sockaddr*>(&sa), len) == 0 && listen(tcp_, 4) == 0;
      port_ = ntohs(addr.is_v6() ? reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port
                                 : reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
    }
  }
  ~LoopbackServer() {
    close(udp_);
    close(tcp_);
    if (conn_ >= 0) close(conn_);
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  bool ok() const { return ok_; }
  std::uint16_t port() const { return port_; }

  // The next query over UDP, or nothing.
  Bytes receive() {
    Bytes buf(512);
    peer_len_ = sizeof peer_;
    const ssize_t n = wait_readable(udp_)
                          ? recvfrom(udp_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&peer_), &peer_len_)
                          : -1;
    buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return buf;
  }
  bool answer(const Bytes& m) {
    return sendto(udp_, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&peer_), peer_len_) ==
           static_cast<ssize_t>(m.size());
  }
  // Accepts the probe's connection and reads its length-prefixed query, or nothing.
  Bytes receive_tcp() {
    if (!wait_readable(tcp_) || (conn_ = accept(tcp_, nullptr, nullptr)) < 0) return {};
    Bytes in;
    while (in.size() < 2 || in.size() < 2u + be16(in, 0)) {
      std::uint8_t chunk[512];
      const ssize_t n = wait_readable(conn_) ? recv(conn_, chunk, sizeof chunk, 0) : -1;
      if (n <= 0) return {};
      in.insert(in.end(), chunk, chunk + n);
    }
    return Bytes(in.begin() + 2, in.end());
  }
  bool answer_tcp(const Bytes& m) {
    Bytes out = {static_cast<std::uint8_t>(m.size() >> 8), static_cast<std::uint8_t>(m.size())};
    out.insert(out.end(), m.begin(), m.end());
    return send(conn_, out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size());
  }
  void hang_up_tcp() {
    close(conn_);
    conn_ = -1;
  }

 private:
  int udp_ = -1, tcp_ = -1, conn_ = -1;
  bool ok_ = false;
  std::uint16_t port_ = 0;
  sockaddr_storage peer_{};
  socklen_t peer_len_ = 0;
};

outpost::DnsProbeSpec spec_for(const LoopbackServer& server, DnsQuestion q = kWwwA,
                               std::vector<std::string> expect = {}) {
  return {std::move(q), std::move(expect), server.port()};
}

// Hands the probe its readiness until it has finished (or nothing stirs for 2 s).
void run_until_finished(outpost::DnsProbe& probe, FakeContext& ctx) {
  REQUIRE(ctx.watched.size() == 1);
  while (!probe.finished() && ctx.step(probe)) {
  }
  REQUIRE(probe.finished());
}

}  // namespace

TEST_CASE("DnsProbe: an answer over UDP, with kernel timestamps", "[dns][loopback]") {
  LoopbackServer server;
  REQUIRE(server.ok());
  FakeContext ctx;
  outpost::DnsProbe probe(kLoopback, spec_for(server, kWwwA, {"198.18.0.1"}), 2s);
  probe.start(ctx);
  REQUIRE_FALSE(probe.finished());
  CHECK(ctx.timeouts == std::vector<outpost::Duration>{2s});
  CHECK(ctx.expected.empty());  // the kernel matches the answers to the socket

  const Bytes query = server.receive();
  CHECK(query == outpost::forge_dns_query(probe.query_id(), kWwwA));
  const Bytes answer = read_hex_fixture("dns_answer_www_a.hex");
  // Counted and ignored: another id, a malformed one, an answer to another question.
  CHECK(server.answer(with_id(answer, static_cast<std::uint16_t>(probe.query_id() + 1))));
  CHECK(server.answer(with_id(read_hex_fixture("dns_malformed_pointer_loop.hex"), probe.query_id())));
  CHECK(server.answer(with_id(read_hex_fixture("dns_answer_wrong_question.hex"), probe.query_id())));
  CHECK(server.answer(with_id(answer, probe.query_id())));
  run_until_finished(probe, ctx);

  const auto& r = probe.result();
  CHECK(r.status == ProbeStatus::reply);
  CHECK(r.reply_from == kLoopback);
  CHECK(r.reply_ttl == 64);
  REQUIRE(r.dns);
  CHECK(r.dns->query == "www.lab.test");
  CHECK(r.dns->qtype == "A");
  CHECK(r.dns->rcode == "NOERROR");
  CHECK(r.dns->answers == std::vector<std::string>{"198.18.0.1"});
  CHECK(r.dns->transport == "udp");
  CHECK_FALSE(r.dns->truncated);
  CHECK(r.dns->ignored == 3);
  CHECK_THAT(r.dns->last_ignored, Catch::Contains("question"));
  REQUIRE(r.rtt);
  CHECK(*r.rtt > outpost::Duration::zero());
  // Both ends from SO_TIMESTAMPING: the send time is the kernel's, not the (fake) wall clock.
  CHECK(r.sent_kernel_stamp);
  CHECK(r.dns->rtt_clock == "kernel");
  CHECK(r.sent != ctx.wall);
}

TEST_CASE("DnsProbe: the send's kernel stamp is read as it is sent, leaving the socket nothing to wake for",
          "[dns][loopback]") {
  LoopbackServer server;
  REQUIRE(server.ok());
  FakeContext ctx;
  outpost::DnsProbe probe(kLoopback, spec_for(server, kWwwA, {}), 2s);
  probe.start(ctx);
  REQUIRE_FALSE(probe.finished());
  REQUIRE(ctx.watched.size() == 1);
  // Loopback stamps the datagram as send() hands it over: the stamp is in.
  CHECK(probe.result().sent_kernel_stamp);
  CHECK(probe.result().sent != ctx.wall);
  // Nothing pending on the socket: no EPOLLERR for a stamp, no datagram.
  pollfd p{ctx.watched[0], POLLIN, 0};
  CHECK(poll(&p, 1, 0) == 0);
  CHECK_FALSE(ctx.step_for(probe, 0));

  CHECK(server.receive() == outpost::forge_dns_query(probe.query_id(), kWwwA));
  CHECK(server.answer(with_id(read_hex_fixture("dns_answer_www_a.hex"), probe.query_id())));
  run_until_finished(probe, ctx);
  CHECK(probe.result().status == ProbeStatus::reply);
  CHECK(probe.result().dns->rtt_clock == "kernel");
}

TEST_CASE("DnsProbe: NXDOMAIN is a reply; an unmet expect is an error", "[dns][loopback]") {
  const bool with_expect = GENERATE(false, true);
  LoopbackServer server;
  REQUIRE(server.ok());
  FakeContext ctx;
  std::vector<std::string> expect;
  if (with_expect) expect = {"198.18.0.1"};
  outpost::DnsProbe probe(kLoopback, spec_for(server, {"nope.lab.test", 1}, expect), 2s);
  probe.start(ctx);
  CHECK_FALSE(server.receive().empty());
  CHECK(server.answer(with_id(read_hex_fixture("dns_answer_nxdomain.hex"), probe.query_id())));
  run_until_finished(probe, ctx);
  const auto& r = probe.result();
  CHECK(r.dns->rcode == "NXDOMAIN");
  CHECK(r.dns->answers.empty());
  if (with_expect) {
    CHECK(r.status == ProbeStatus::error);
    CHECK(r.error == "expected [198.18.0.1] among the answers, got NXDOMAIN []");
  } else {
    CHECK(r.status == ProbeStatus::reply);
  }
}

TEST_CASE("DnsProbe: a truncated answer is asked again over TCP", "[dns][loopback]") {
  const bool server_answers = GENERATE(true, false);
  LoopbackServer server;
  REQUIRE(server.ok());
  FakeContext ctx;
  outpost::DnsProbe probe(kLoopback, spec_for(server, {"big.lab.test", 1}), 2s);
  probe.start(ctx);
  const Bytes truncated = with_id(read_hex_fixture("dns_answer_big_udp_tc.hex"), probe.query_id());
  const Bytes whole = with_id(read_hex_fixture("dns_answer_big_tcp.hex"), probe.query_id());
  Bytes udp_query, tcp_query;
  std::thread server_side([&] {
    udp_query = server.receive();
    server.answer(truncated);
    tcp_query = server.receive_tcp();
    if (server_answers)
      server.answer_tcp(whole);
    else
      server.hang_up_tcp();
  });
  while (!probe.finished() && ctx.step(probe)) {
  }
  server_side.join();
  REQUIRE(probe.finished());
  CHECK(ctx.watched.size() == 2);  // the UDP socket, then the TCP one
  CHECK(tcp_query == udp_query);

  const auto& r = probe.result();
  CHECK(r.status == ProbeStatus::reply);
  CHECK(r.dns->truncated);
  CHECK(r.rtt);  // the UDP round trip, from kernel stamps
  if (server_answers) {
    CHECK(r.dns->transport == "tcp");
    CHECK(r.dns->answers.size() == 32);  // kept; the other 8 counted
    CHECK(r.dns->answers_dropped == 8);
    CHECK(r.dns->tcp_time);
    CHECK(r.dns->tcp_error.empty());
  } else {
    CHECK(r.dns->transport == "udp");
    CHECK(r.dns->answers.size() == 30);
    CHECK(r.dns->tcp_error == "the server closed the TCP connection before the whole answer");
  }
}

TEST_CASE("DnsProbe: no answer over TCP within the timeout keeps the UDP answer", "[dns][loopback]") {
  LoopbackServer server;
  REQUIRE(server.ok());
  FakeContext ctx;
  outpost::DnsProbe probe(kLoopback, spec_for(server, {"big.lab.test", 1}), 2s);
  probe.start(ctx);
  const Bytes truncated = with_id(read_hex_fixture("dns_answer_big_udp_tc.hex"), probe.query_id());
  CHECK_FALSE(server.receive().empty());
  CHECK(server.answer(truncated));
  REQUIRE(ctx.step(probe));
  REQUIRE_FALSE(probe.finished());  // connecting over TCP now
  CHECK(ctx.watched.size() == 2);
  // Two more copies of the answer come while TCP is tried: the UDP socket
  // stays watched, so they must be drained, not woken for without end. The
  // server never answers over TCP: nothing else but the connection being
  // up can wake the probe.
  CHECK(server.answer(truncated));
  CHECK(server.answer(truncated));
  int wakes = 0;
  const auto until = std::chrono::steady_clock::now() + 300ms;
  while (std::chrono::steady_clock::now() < until && !probe.finished()) {
    if (ctx.step_for(probe, 50)) ++wakes;
  }
  CHECK_FALSE(probe.finished());
  CHECK(wakes <= 3);
  probe.on_timeout();
  REQUIRE(probe.finished());
  const auto& r = probe.result();
  CHECK(r.status == ProbeStatus::reply);
  CHECK(r.dns->transport == "udp");
  CHECK(r.dns->answers.size() == 30);
  CHECK(r.dns->tcp_error == "no answer over TCP within the timeout");
}

TEST_CASE("DnsProbe: silence is a timeout", "[dns][loopback]") {
  LoopbackServer server;
  REQUIRE(server.ok());
  FakeContext ctx;
  outpost::DnsProbe probe(kLoopback, spec_for(server), 2s);
  probe.start(ctx);
  CHECK_FALSE(server.receive().empty());
  probe.on_timeout();
  REQUIRE(probe.finished());
  CHECK(probe.result().status == ProbeStatus::timeout);
  CHECK(probe.result().dns->rcode.empty());
  CHECK_FALSE(probe.result().rtt);
}

TEST_CASE("DnsProbe: a closed port is unreachable (ICMP port unreachable)", "[dns][loopback]") {
  std::uint16_t closed_port;
  {
    LoopbackServer gone;
    REQUIRE(gone.ok());
    closed_port = gone.port();
  }
  FakeContext ctx;
  outpost::DnsProbe probe(kLoopback, {kWwwA, {}, closed_port}, 2s);
  probe.start(ctx);
  run_until_finished(probe, ctx);
  const auto& r = probe.result();
  CHECK(r.status == ProbeStatus::unreachable);
  CHECK(r.error == "port unreachable");
  CHECK(r.icmp_type == 3);
  CHECK(r.icmp_code == 3);
  CHECK(r.reply_from == kLoopback);
  CHECK(r.dns->rcode.empty());
}

TEST_CASE("DnsProbe: without an event loop it cannot run", "[dns]") {
  class NoLoop final : public outpost::ProbeContext {
   public:
    IpAddress source_for(const IpAddress&, std::string*) override { return {}; }
    std::uint16_t next_ip_id() override { return 0; }
    std::uint16_t next_icmp_ident() override { return 0; }
    std::uint16_t next_icmp_sequence() override { return 0; }
    std::uint16_t next_dns_id() override { return 0x0d05; }
    const outpost::FlowSecret& secret() const override { static const outpost::FlowSecret none{}; return none; }
    outpost::WallTime wall_now() override { return {}; }
    bool expect(const outpost::FlowKey&) override { return true; }
    bool send(const IpAddress&, std::span<const std::uint8_t>, std::string*) override { return false; }
    void arm_timeout(outpost::Duration) override {}
    bool watch(int, std::uint32_t) override { return false; }
  } ctx;
  outpost::DnsProbe probe(kLoopback, {kWwwA, {}, 9}, 2s);
  probe.start(ctx);
  REQUIRE(probe.finished());
  CHECK(probe.result().status == ProbeStatus::error);
  CHECK_THAT(probe.result().error, Catch::Contains("event loop"));
}

TEST_CASE("DnsProbe: IPv6, an answer and then a closed port", "[dns][loopback]") {
  std::uint16_t closed_port;
  {
    LoopbackServer server(kLoopback6);
    if (!server.ok()) {
      WARN("no IPv6 on loopback here: skipped");
      return;
    }
    FakeContext ctx;
    outpost::DnsProbe probe(kLoopback6, spec_for(server), 2s);
    probe.start(ctx);
    CHECK_FALSE(server.receive().empty());
    CHECK(server.answer(with_id(read_hex_fixture("dns_answer_www_a.hex"), probe.query_id())));
    run_until_finished(probe, ctx);
    CHECK(probe.result().status == ProbeStatus::reply);
    CHECK(probe.result().reply_from == kLoopback6);
    CHECK(probe.result().reply_ttl == 64);  // the hop limit
    CHECK(probe.result().dns->rtt_clock == "kernel");
    closed_port = server.port();
  }
  FakeContext ctx;
  outpost::DnsProbe probe(kLoopback6, {kWwwA, {}, closed_port}, 2s);
  probe.start(ctx);
  run_until_finished(probe, ctx);
  CHECK(probe.result().status == ProbeStatus::unreachable);
  CHECK(probe.result().error == "port unreachable");
  CHECK(probe.result().icmp_type == 1);
  CHECK(probe.result().icmp_code == 4);
}
