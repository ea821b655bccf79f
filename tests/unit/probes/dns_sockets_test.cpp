// DNS queries sharing sockets (dns_sockets.hpp): DnsProbes driven by a fake
// context that hands them one DnsSockets, the clock a fake one for socket
// lifetimes, and by the engine itself; against a server on loopback (no
// root; nothing leaves the host).

#include "test_bytes.hpp"
#include "clock.hpp"
#include "dns.hpp"
#include "dns_sockets.hpp"
#include "engine.hpp"
#include "wire.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using outpost::DnsProbe;
using outpost::DnsQuestion;
using outpost::IpAddress;
using outpost::ProbeStatus;

namespace {

using namespace test_bytes;

const DnsQuestion kWwwA{"www.lab.test", 1};
const IpAddress kLoopback = *IpAddress::parse("127.0.0.1");

// The engine's part, played by the test: an epoll set for the sockets'
// watch, tokens for the probes, and the clock.
class SharedContext final : public outpost::ProbeContext {
 public:
  SharedContext()
      : sockets(clock,
                [this](int fd, std::uint32_t events, std::function<void(std::uint32_t)> ready) {
                  epoll_event ev{};
                  ev.events = events;
                  ev.data.fd = fd;
                  epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
                  ready_[fd] = std::move(ready);
                },
                [this](int fd) {
                  epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
                  ready_.erase(fd);
                  ++unwatched;
                },
                [this](std::uint64_t token, const outpost::DnsSocketMessage& m) {
                  if (auto it = probes_.find(token); it != probes_.end()) it->second->on_dns_message(*this, m);
                }) {}
  ~SharedContext() override { close(epoll_); }
  SharedContext(const SharedContext&) = delete;
  SharedContext& operator=(const SharedContext&) = delete;

  outpost::FakeClock clock;
  outpost::DnsSockets sockets;
  std::deque<std::uint16_t> ids;  // the ids to draw, then 0x100, 0x101, ...
  int unwatched = 0;
  outpost::WallTime wall{std::chrono::seconds(1419264900)};

  IpAddress source_for(const IpAddress&, std::string*) override { return {}; }
  std::uint16_t next_ip_id() override { return 0; }
  std::uint16_t next_icmp_ident() override { return 0; }
  std::uint16_t next_icmp_sequence() override { return 0; }
  std::uint16_t next_dns_id() override {
    if (ids.empty()) return next_id_++;
    const auto id = ids.front();
    ids.pop_front();
    return id;
  }
  const outpost::FlowSecret& secret() const override {
    static const outpost::FlowSecret none{};
    return none;
  }
  outpost::WallTime wall_now() override { return wall; }
  bool expect(const outpost::FlowKey&) override { return false; }
  bool send(const IpAddress&, std::span<const std::uint8_t>, std::string* error) override {
    *error = "dns must not send raw packets";
    return false;
  }
  void arm_timeout(outpost::Duration) override {}
  bool watch(int, std::uint32_t) override { return false; }  // the shared sockets need none
  outpost::DnsSockets* dns_sockets(std::uint64_t* token) override {
    *token = token_;
    return &sockets;
  }

  void launch(DnsProbe& probe) {
    token_ = ++last_token_;
    probes_[token_] = &probe;
    probe.start(*this);
  }
  void forget(DnsProbe& probe) {
    std::erase_if(probes_, [&](const auto& kv) { return kv.second == &probe; });
  }
  // Hands the sockets their readiness, as the loop does, until every probe
  // launched has finished or nothing stirs for 2 s.
  bool run() {
    for (;;) {
      sockets.flush();
      bool all = true;
      for (const auto& [token, probe] : probes_) all = all && probe->finished();
      if (all) return true;
      epoll_event ev{};
      if (epoll_wait(epoll_, &ev, 1, 2000) != 1) return false;
      auto ready = ready_.at(ev.data.fd);  // a copy: it may unwatch itself
      ready(ev.events);
    }
  }

 private:
  int epoll_ = epoll_create1(EPOLL_CLOEXEC);
  std::map<int, std::function<void(std::uint32_t)>> ready_;
  std::map<std::uint64_t, DnsProbe*> probes_;
  std::uint64_t token_ = 0, last_token_ = 0;
  std::uint16_t next_id_ = 0x100;
};

// A DNS server on 127.0.0.1: the test reads its queries and answers them.
class UdpServer {
 public:
  UdpServer() {
    outpost::keep_kernel_timestamps_on();
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    ok_ = bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) == 0 &&
          getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0;
    port_ = ntohs(sa.sin_port);
  }
  ~UdpServer() { close(fd_); }
  UdpServer(const UdpServer&) = delete;
  UdpServer& operator=(const UdpServer&) = delete;

  bool ok() const { return ok_; }
  std::uint16_t port() const { return port_; }

  struct Query {
    Bytes bytes;
    sockaddr_in from{};
    std::uint16_t id() const { return be16(bytes, 0); }
    std::uint16_t from_port() const { return ntohs(from.sin_port); }
  };
  // The next query, or an empty one after 2 s.
  Query receive() {
    Query q;
    q.bytes.resize(512);
    pollfd p{fd_, POLLIN, 0};
    socklen_t len = sizeof q.from;
    const ssize_t n = poll(&p, 1, 2000) == 1
                          ? recvfrom(fd_, q.bytes.data(), q.bytes.size(), 0, reinterpret_cast<sockaddr*>(&q.from), &len)
                          : -1;
    q.bytes.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return q;
  }
  bool answer(const Query& to, const Bytes& m) {
    return sendto(fd_, m.data(), m.size(), 0, reinterpret_cast<const sockaddr*>(&to.from), sizeof to.from) ==
           static_cast<ssize_t>(m.size());
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::uint16_t port_ = 0;
};

std::vector<std::unique_ptr<DnsProbe>> launch(SharedContext& ctx, const UdpServer& server, int n) {
  std::vector<std::unique_ptr<DnsProbe>> probes;
  for (int i = 0; i < n; ++i) {
    probes.push_back(std::make_unique<DnsProbe>(kLoopback, outpost::DnsProbeSpec{kWwwA, {}, server.port()}, 2s));
    ctx.launch(*probes.back());
  }
  return probes;
}

}  // namespace

TEST_CASE("DnsSockets: queries to one server share a socket, and each gets its answer and its send stamp",
          "[dns][loopback]") {
  UdpServer server;
  REQUIRE(server.ok());
  SharedContext ctx;
  auto probes = launch(ctx, server, 5);
  CHECK(ctx.sockets.sockets_open() == 1);

  std::vector<UdpServer::Query> queries;
  for (int i = 0; i < 5; ++i) queries.push_back(server.receive());
  std::set<std::uint16_t> ports, ids;
  for (std::size_t i = 0; i < queries.size(); ++i) {
    REQUIRE_FALSE(queries[i].bytes.empty());
    ports.insert(queries[i].from_port());
    ids.insert(queries[i].id());
    CHECK(queries[i].bytes == outpost::forge_dns_query(probes[i]->query_id(), kWwwA));
  }
  CHECK(ports.size() == 1);
  CHECK(ids.size() == 5);

  // First a datagram for no query in flight; then the answers, last query first.
  const Bytes answer = read_hex_fixture("dns_answer_www_a.hex");
  CHECK(server.answer(queries[0], with_id(answer, 0x7777)));
  for (auto it = queries.rbegin(); it != queries.rend(); ++it) CHECK(server.answer(*it, with_id(answer, it->id())));
  REQUIRE(ctx.run());

  for (std::size_t i = 0; i < probes.size(); ++i) {
    const auto& r = probes[i]->result();
    INFO("probe " << i);
    CHECK(r.status == ProbeStatus::reply);
    CHECK(r.reply_from == kLoopback);
    CHECK(r.dns->answers == std::vector<std::string>{"198.18.0.1"});
    CHECK(r.dns->rtt_clock == "kernel");
    CHECK(r.sent_kernel_stamp);
    REQUIRE(r.rtt);
    CHECK(*r.rtt > outpost::Duration::zero());
    // The stray datagram reached the socket each query waited on.
    CHECK(r.dns->ignored == 1);
    CHECK_THAT(r.dns->last_ignored, Catch::Contains("no query in flight"));
    // Each send its own stamp, in the order of the sends.
    if (i > 0) CHECK(r.sent > probes[i - 1]->result().sent);
  }
  CHECK(ctx.sockets.stray() == 1);
  for (const auto& p : probes) ctx.forget(*p);
  probes.clear();
  CHECK(ctx.sockets.sockets_open() == 1);  // within its second: kept for the next query
}

TEST_CASE("DnsSockets: a socket takes 64 queries, then a fresh port; the old socket closes with its last query",
          "[dns][loopback]") {
  UdpServer server;
  REQUIRE(server.ok());
  SharedContext ctx;
  auto first = launch(ctx, server, static_cast<int>(outpost::kDnsQueriesPerSocket));
  std::set<std::uint16_t> first_ports;
  for (std::size_t i = 0; i < first.size(); ++i) first_ports.insert(server.receive().from_port());
  CHECK(first_ports.size() == 1);
  auto second = launch(ctx, server, 1);
  const auto second_port = server.receive().from_port();
  CHECK(second_port != 0);
  CHECK_FALSE(first_ports.contains(second_port));
  CHECK(ctx.sockets.sockets_open() == 2);

  // The first socket stays while any of its queries waits.
  for (std::size_t i = 0; i + 1 < first.size(); ++i) {
    ctx.forget(*first[i]);
    first[i].reset();
  }
  CHECK(ctx.sockets.sockets_open() == 2);
  const int unwatched = ctx.unwatched;
  ctx.forget(*first.back());
  first.back().reset();
  CHECK(ctx.sockets.sockets_open() == 1);
  CHECK(ctx.unwatched == unwatched + 1);

  // A second later the socket takes no more queries: the next one has a new
  // socket, and the old, idle, is closed.
  ctx.forget(*second[0]);
  second.clear();
  ctx.clock.advance(outpost::kDnsSocketLifetime);
  auto third = launch(ctx, server, 1);
  const auto third_port = server.receive().from_port();
  CHECK(third_port != second_port);
  CHECK(ctx.sockets.sockets_open() == 1);
}

TEST_CASE("DnsSockets: an id in flight on the socket is not drawn for another query", "[dns][loopback]") {
  UdpServer server;
  REQUIRE(server.ok());
  SharedContext ctx;
  ctx.ids = {0x4242, 0x4242, 0x4242, 0x0001};
  auto probes = launch(ctx, server, 2);
  CHECK(probes[0]->query_id() == 0x4242);
  CHECK(probes[1]->query_id() == 0x0001);
  // Once the first query is over its id is free again.
  ctx.forget(*probes[0]);
  probes[0].reset();
  ctx.ids = {0x4242};
  auto third = launch(ctx, server, 1);
  CHECK(third[0]->query_id() == 0x4242);
}

TEST_CASE("DnsSockets: each ICMP error goes to the query it quotes, never inside the send, nor to the next send", "[dns][loopback]") {
  std::uint16_t closed_port;
  {
    UdpServer gone;
    REQUIRE(gone.ok());
    closed_port = gone.port();
  }
  SharedContext ctx;
  std::vector<std::unique_ptr<DnsProbe>> probes;
  for (int i = 0; i < 3; ++i) {
    probes.push_back(std::make_unique<DnsProbe>(kLoopback, outpost::DnsProbeSpec{kWwwA, {}, closed_port}, 2s));
    ctx.launch(*probes.back());
    // The kernel answers at once on loopback; the probe hears of it from
    // the loop (flush, or the socket's readiness), not from its own start.
    CHECK_FALSE(probes.back()->finished());
  }
  // The error about one query is the socket's pending error too, and fails
  // its next send: that query goes again from a fresh socket, and ends with
  // its own error, not the one before it.
  REQUIRE(ctx.run());
  for (const auto& p : probes) {
    const auto& r = p->result();
    CHECK(r.status == ProbeStatus::unreachable);
    CHECK(r.error == "port unreachable");
    CHECK(r.icmp_type == 3);
    CHECK(r.icmp_code == 3);
    CHECK(r.reply_from == kLoopback);
    CHECK(r.dns->ignored == 0);
  }
  CHECK(ctx.sockets.stray() == 0);
}

namespace {

// The engine's own wiring of the shared sockets: its FdService on an epoll
// set, a wire that sends nothing (DNS probes need none).
class NoWire final : public outpost::Wire {
 public:
  IpAddress prepare(const IpAddress&, std::string* error) override {
    *error = "no raw wire here";
    return {};
  }
  bool send(const IpAddress&, std::span<const std::uint8_t>, std::string* error) override {
    *error = "no raw wire here";
    return false;
  }
  void set_frame_handler(FrameHandler) override {}
};

class EngineLoop {
 public:
  EngineLoop() : engine(clock, wire, outpost::FilterParams{}) {
    engine.set_fd_service({[this](int fd, std::uint32_t events, std::function<void(std::uint32_t)> ready) {
                             epoll_event ev{};
                             ev.events = events;
                             ev.data.fd = fd;
                             if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
                             ready_[fd] = std::move(ready);
                           },
                           [this](int fd) {
                             epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
                             ready_.erase(fd);
                           }});
  }
  ~EngineLoop() { close(epoll_); }
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  outpost::SystemClock clock;
  NoWire wire;
  outpost::Engine engine;
  std::vector<outpost::ProbeResult> results;

  void launch(const IpAddress& server, std::uint16_t port) {
    engine.launch(std::make_unique<DnsProbe>(server, outpost::DnsProbeSpec{kWwwA, {}, port}, 2s),
                  [this](const outpost::ProbeResult& r) { results.push_back(r); });
  }
  // As the daemon's loop: what the engine settles before it waits, then one
  // ready socket, until `n` probes have ended or nothing stirs for 2 s.
  bool run_until(std::size_t n) {
    for (;;) {
      engine.settle_sends();
      if (results.size() >= n) return true;
      epoll_event ev{};
      if (epoll_wait(epoll_, &ev, 1, 2000) != 1) return false;
      auto ready = ready_.at(ev.data.fd);
      ready(ev.events);
    }
  }

 private:
  int epoll_ = epoll_create1(EPOLL_CLOEXEC);
  std::map<int, std::function<void(std::uint32_t)>> ready_;
};

}  // namespace

TEST_CASE("DnsSockets in the engine: probes end through their slots, strays are counted, errors come before the wait",
          "[dns][loopback]") {
  UdpServer server;
  REQUIRE(server.ok());
  EngineLoop loop;
  for (int i = 0; i < 3; ++i) loop.launch(kLoopback, server.port());
  CHECK(loop.engine.in_flight() == 3);
  std::vector<UdpServer::Query> queries;
  for (int i = 0; i < 3; ++i) queries.push_back(server.receive());
  CHECK(queries[0].from_port() == queries[2].from_port());
  const Bytes answer = read_hex_fixture("dns_answer_www_a.hex");
  CHECK(server.answer(queries[1], with_id(answer, static_cast<std::uint16_t>(queries[1].id() ^ 0x8000))));
  for (const auto& q : queries) CHECK(server.answer(q, with_id(answer, q.id())));
  REQUIRE(loop.run_until(3));
  CHECK(loop.engine.in_flight() == 0);
  for (const auto& r : loop.results) {
    CHECK(r.status == ProbeStatus::reply);
    CHECK(r.dns->rtt_clock == "kernel");
    CHECK(r.dns->ignored == 1);
  }
  auto stats = loop.engine.stats();
  CHECK(stats.stray == 1);
  CHECK(stats.answered == 3);
  CHECK(stats.sent == 3);

  // A closed port: the kernel's error is read with the send's stamp, and
  // the probe ends when the engine settles before the loop waits.
  std::uint16_t closed_port;
  {
    UdpServer gone;
    REQUIRE(gone.ok());
    closed_port = gone.port();
  }
  loop.launch(kLoopback, closed_port);
  REQUIRE(loop.run_until(4));
  CHECK(loop.results.back().status == ProbeStatus::unreachable);
  CHECK(loop.results.back().error == "port unreachable");
  CHECK(loop.engine.stats().stray == 1);
}
