// The dns probe's bounds against a server on loopback that floods it: one
// readiness reads at most kDnsMaxDatagramsPerWake datagrams (and stops past
// kDnsMaxBytesPerWake) and the socket wakes the loop again for the rest; an answer of thousands of CNAMEs keeps
// 32 answers of at most 255 characters and counts the others.

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
#include <vector>

using namespace std::chrono_literals;
using outpost::DnsQuestion;
using outpost::IpAddress;
using outpost::ProbeStatus;

namespace {

using namespace test_bytes;

const IpAddress kLoopback = *IpAddress::parse("127.0.0.1");
const DnsQuestion kQuestion{"flood.lab.test", 5};  // CNAME

// Watches with a real epoll set, level-triggered as the daemon's loop is.
class LoopContext final : public outpost::ProbeContext {
 public:
  LoopContext() : epoll_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~LoopContext() override { close(epoll_); }
  LoopContext(const LoopContext&) = delete;
  LoopContext& operator=(const LoopContext&) = delete;

  IpAddress source_for(const IpAddress&, std::string*) override { return {}; }
  std::uint16_t next_ip_id() override { return 0; }
  std::uint16_t next_icmp_ident() override { return 0; }
  std::uint16_t next_icmp_sequence() override { return 0; }
  std::uint16_t next_dns_id() override { return 0x0d05; }
  const outpost::FlowSecret& secret() const override { static const outpost::FlowSecret none{}; return none; }
  outpost::WallTime wall_now() override { return outpost::WallTime(std::chrono::seconds(1419264900)); }
  bool expect(const outpost::FlowKey&) override { return true; }
  bool send(const IpAddress&, std::span<const std::uint8_t>, std::string*) override { return false; }
  void arm_timeout(outpost::Duration) override {}
  std::vector<int> watched;
  bool watch(int fd, std::uint32_t events) override {
    watched.push_back(fd);
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    return epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }
  // One turn of the loop: the probe's readiness, if any within 2 s.
  bool step(outpost::Probe& probe) {
    epoll_event ev{};
    if (epoll_wait(epoll_, &ev, 1, 2000) != 1) return false;
    probe.on_ready(*this, ev.data.fd, ev.events);
    return true;
  }

 private:
  int epoll_;
};

// A UDP server on 127.0.0.1 that answers the probe's query's source.
class Server {
 public:
  Server() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_storage sa{};
    socklen_t len = kLoopback.to_sockaddr(sa, 0);
    ok_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) == 0 &&
          getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0;
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
    const int big = 1 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  }
  ~Server() { close(fd_); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  bool ok() const { return ok_; }
  std::uint16_t port() const { return port_; }
  bool receive() {
    pollfd p{fd_, POLLIN, 0};
    std::uint8_t buf[512];
    peer_len_ = sizeof peer_;
    return poll(&p, 1, 2000) == 1 &&
           recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer_), &peer_len_) > 0;
  }
  bool answer(const Bytes& m) {
    return sendto(fd_, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&peer_), peer_len_) ==
           static_cast<ssize_t>(m.size());
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::uint16_t port_ = 0;
  sockaddr_storage peer_{};
  socklen_t peer_len_ = 0;
};

void put16(Bytes& m, std::uint16_t v) {
  m.push_back(static_cast<std::uint8_t>(v >> 8));
  m.push_back(static_cast<std::uint8_t>(v));
}

// A response with this id to kQuestion, with no records (answer count 0).
Bytes response_head(std::uint16_t id) {
  Bytes m = outpost::forge_dns_query(id, kQuestion);
  m[2] = 0x81;
  m[3] = 0x80;
  return m;
}

// The CNAME storm: a first CNAME whose data is a 255-byte name (four labels
// of 63, 63, 63 and 61 bytes: letters, or `fill`), then as many more as a
// UDP datagram holds, each named by a pointer to the question and pointing
// at that name.
Bytes cname_storm(std::uint16_t id, std::size_t* answers, std::uint8_t fill = 0) {
  Bytes m = response_head(id);
  auto record_head = [&m](std::uint16_t rdlength) {
    put16(m, 0xC00C);
    put16(m, 5);
    put16(m, 1);
    put16(m, 0);
    put16(m, 60);
    put16(m, rdlength);
  };
  record_head(255);
  const std::size_t long_name = m.size();
  for (std::size_t label : {63, 63, 63, 61}) {
    m.push_back(static_cast<std::uint8_t>(label));
    for (std::size_t i = 0; i < label; ++i) m.push_back(fill ? fill : static_cast<std::uint8_t>('a' + i % 26));
  }
  m.push_back(0);
  REQUIRE(m.size() - long_name == 255);
  *answers = 1;
  while (m.size() + 14 <= 65507) {
    record_head(2);
    put16(m, static_cast<std::uint16_t>(0xC000 | long_name));
    ++*answers;
  }
  m[6] = static_cast<std::uint8_t>(*answers >> 8);
  m[7] = static_cast<std::uint8_t>(*answers);
  return m;
}

}  // namespace

TEST_CASE("DnsProbe bounds: one wake reads at most 64 datagrams; the socket wakes again for the rest",
          "[dns][bounds][loopback]") {
  Server server;
  REQUIRE(server.ok());
  LoopContext ctx;
  outpost::DnsProbe probe(kLoopback, {kQuestion, {}, server.port()}, 2s);
  probe.start(ctx);
  REQUIRE_FALSE(probe.finished());
  REQUIRE(server.receive());
  // 74 answers that are not ours (another id), then ours. Loopback delivers
  // each before sendto returns, so all wait when the probe wakes.
  const std::uint16_t wrong_id = static_cast<std::uint16_t>(probe.query_id() + 1);
  const int extra = 10;
  for (int i = 0; i < outpost::kDnsMaxDatagramsPerWake + extra; ++i) REQUIRE(server.answer(response_head(wrong_id)));
  REQUIRE(server.answer(response_head(probe.query_id())));

  REQUIRE(ctx.step(probe));
  CHECK(probe.result().dns->ignored == static_cast<std::uint32_t>(outpost::kDnsMaxDatagramsPerWake));
  CHECK_FALSE(probe.finished());
  // Level-triggered: the rest wake the loop at its next turn.
  REQUIRE(ctx.step(probe));
  CHECK(probe.result().dns->ignored == static_cast<std::uint32_t>(outpost::kDnsMaxDatagramsPerWake + extra));
  REQUIRE(probe.finished());
  CHECK(probe.result().status == ProbeStatus::reply);
  CHECK_THAT(probe.result().dns->last_ignored, Catch::Contains("expected"));
}

TEST_CASE("DnsProbe bounds: one wake reads no more datagrams once 128 KiB were read", "[dns][bounds][loopback]") {
  Server server;
  REQUIRE(server.ok());
  LoopContext ctx;
  outpost::DnsProbe probe(kLoopback, {kQuestion, {}, server.port()}, 2s);
  probe.start(ctx);
  REQUIRE(ctx.watched.size() == 1);
  // Room for four datagrams of 60,000 bytes in the probe's socket (the kernel doubles what is asked).
  const int room = 4 * 65536;
  setsockopt(ctx.watched[0], SOL_SOCKET, SO_RCVBUF, &room, sizeof room);
  REQUIRE(server.receive());
  Bytes big = response_head(static_cast<std::uint16_t>(probe.query_id() + 1));
  big.resize(60000);
  for (int i = 0; i < 4; ++i) REQUIRE(server.answer(big));
  // 120,000 bytes are under the bound: a third is read, then no more.
  REQUIRE(ctx.step(probe));
  CHECK(probe.result().dns->ignored == 3);
  REQUIRE(ctx.step(probe));
  CHECK(probe.result().dns->ignored == 4);
  CHECK_FALSE(probe.finished());
}

TEST_CASE("DnsProbe bounds: a CNAME storm keeps 32 answers of at most 255 characters", "[dns][bounds][loopback]") {
  Server server;
  REQUIRE(server.ok());
  LoopContext ctx;
  // Expect the 255-byte name: it is checked against the answers kept, before they are cut.
  std::string long_name;
  for (std::size_t label : {63, 63, 63, 61}) {
    if (!long_name.empty()) long_name += '.';
    for (std::size_t i = 0; i < label; ++i) long_name += static_cast<char>('a' + i % 26);
  }
  REQUIRE(long_name.size() == 253);
  outpost::DnsProbe probe(kLoopback, {kQuestion, {long_name}, server.port()}, 2s);
  probe.start(ctx);
  REQUIRE(server.receive());
  std::size_t answers = 0;
  const Bytes storm = cname_storm(probe.query_id(), &answers);
  INFO(storm.size() << " bytes, " << answers << " CNAMEs");
  REQUIRE(answers > 4600);  // as many as 64 KB hold
  REQUIRE(server.answer(storm));
  while (!probe.finished() && ctx.step(probe)) {
  }
  REQUIRE(probe.finished());
  const auto& r = probe.result();
  CHECK(r.status == ProbeStatus::reply);
  CHECK(r.error.empty());
  CHECK(r.dns->ignored == 0);
  REQUIRE(r.dns->answers.size() == outpost::kDnsMaxAnswersKept);
  CHECK(r.dns->answers_dropped == answers - outpost::kDnsMaxAnswersKept);
  for (const auto& a : r.dns->answers) CHECK(a == long_name);
}

TEST_CASE("DnsProbe bounds: answers and an unmet expect are cut, on whole escapes", "[dns][bounds][loopback]") {
  Server server;
  REQUIRE(server.ok());
  LoopContext ctx;
  outpost::DnsProbe probe(kLoopback, {kQuestion, {"elsewhere.lab.test"}, server.port()}, 2s);
  probe.start(ctx);
  REQUIRE(server.receive());
  std::size_t answers = 0;
  // Names of bytes 0x01, written \001: over 1,000 characters each in full.
  REQUIRE(server.answer(cname_storm(probe.query_id(), &answers, 0x01)));
  while (!probe.finished() && ctx.step(probe)) {
  }
  REQUIRE(probe.finished());
  const auto& r = probe.result();
  CHECK(r.status == ProbeStatus::error);
  CHECK_THAT(r.error, Catch::StartsWith("expected [elsewhere.lab.test] among the answers, got NOERROR ["));
  CHECK(r.error.size() <= outpost::kDnsMaxDetailText);
  REQUIRE(r.dns->answers.size() == outpost::kDnsMaxAnswersKept);
  CHECK(r.dns->answers_dropped == answers - outpost::kDnsMaxAnswersKept);
  std::string first_label;
  for (int i = 0; i < 63; ++i) first_label += "\\001";
  for (const auto& a : r.dns->answers) CHECK(a == first_label + ".");  // the next \001 would pass 255
}
