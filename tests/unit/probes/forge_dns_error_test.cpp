// Forged ICMP errors against the dns probe. The kernel hands a connected UDP
// socket every ICMP error that quotes its addresses and ports, and an
// off-path host can guess the ports (a sweep of the ephemeral range): such an
// error counts only when its quote shows the query's id (and every quoted
// byte is the query's). The quote check is pure; on loopback, with a raw
// socket (CAP_NET_RAW; without it that part only warns), a forged port
// unreachable with another id is ignored and counted, and one quoting the
// query ends the probe unreachable.

#include "dns.hpp"
#include "test_bytes.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

using namespace std::chrono_literals;
using outpost::DnsQuestion;
using outpost::IpAddress;
using outpost::ProbeStatus;

namespace {

using namespace test_bytes;

const IpAddress kLoopback = *IpAddress::parse("127.0.0.1");
const DnsQuestion kQuestion{"www.lab.test", 1};

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
  std::uint16_t next_dns_id() override { return 0x5a17; }
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

void put16(Bytes& m, std::size_t at, std::uint16_t v) {
  m[at] = static_cast<std::uint8_t>(v >> 8);
  m[at + 1] = static_cast<std::uint8_t>(v);
}

std::uint16_t internet_checksum(const Bytes& b, std::size_t from, std::size_t to) {
  std::uint32_t sum = 0;
  for (std::size_t i = from; i < to; i += 2) sum += static_cast<std::uint32_t>(b[i] << 8 | (i + 1 < to ? b[i + 1] : 0));
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// ICMP port unreachable "from" 127.0.0.1, quoting a UDP datagram
// 127.0.0.1:sport -> 127.0.0.1:dport that carried `payload`.
Bytes port_unreachable(std::uint16_t sport, std::uint16_t dport, const Bytes& payload) {
  Bytes quote(28, 0);
  quote[0] = 0x45;
  put16(quote, 2, static_cast<std::uint16_t>(28 + payload.size()));
  quote[8] = 64;
  quote[9] = IPPROTO_UDP;
  for (std::size_t at : {12u, 16u}) {
    quote[at] = 127;
    quote[at + 3] = 1;
  }
  put16(quote, 10, internet_checksum(quote, 0, 20));
  put16(quote, 20, sport);
  put16(quote, 22, dport);
  put16(quote, 24, static_cast<std::uint16_t>(8 + payload.size()));
  quote.insert(quote.end(), payload.begin(), payload.end());

  Bytes m(28, 0);
  m[0] = 0x45;
  put16(m, 2, static_cast<std::uint16_t>(28 + quote.size()));
  m[8] = 64;
  m[9] = IPPROTO_ICMP;
  for (std::size_t at : {12u, 16u}) {
    m[at] = 127;
    m[at + 3] = 1;
  }
  m[20] = 3;  // destination unreachable
  m[21] = 3;  // port unreachable
  m.insert(m.end(), quote.begin(), quote.end());
  put16(m, 22, internet_checksum(m, 20, m.size()));
  return m;
}

std::uint16_t local_port(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
  return ntohs(sa.sin_port);
}

}  // namespace

TEST_CASE("dns_error_quotes_query: only a quote of this query's id (and bytes) is ours", "[dns][forge]") {
  const Bytes query = outpost::forge_dns_query(0x5a17, kQuestion);
  CHECK(outpost::dns_error_quotes_query(query, query));
  CHECK(outpost::dns_error_quotes_query(Bytes(query.begin(), query.begin() + 2), query));  // a short quote with the id
  Bytes other_id = query;
  other_id[1] ^= 0x01;
  CHECK_FALSE(outpost::dns_error_quotes_query(other_id, query));
  Bytes other_name = query;
  other_name.back() ^= 0x01;
  CHECK_FALSE(outpost::dns_error_quotes_query(other_name, query));
  // A quote cut to the 8 transport bytes (the ports only) proves nothing.
  CHECK_FALSE(outpost::dns_error_quotes_query(Bytes{}, query));
  CHECK_FALSE(outpost::dns_error_quotes_query(Bytes{query[0]}, query));
}

TEST_CASE("DnsProbe: a forged port unreachable quoting its ports but not its id is ignored and counted",
          "[dns][forge][loopback]") {
  const int raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (raw < 0) {
    WARN("no raw socket (needs CAP_NET_RAW): the forged error is not sent");
    return;
  }
  // A server that takes the query and never answers: only the forged errors come.
  const int server = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_storage sa{};
  socklen_t len = kLoopback.to_sockaddr(sa, 0);
  REQUIRE(bind(server, reinterpret_cast<sockaddr*>(&sa), len) == 0);
  const std::uint16_t server_port = local_port(server);

  LoopContext ctx;
  outpost::DnsProbe probe(kLoopback, {kQuestion, {}, server_port}, 2s);
  probe.start(ctx);
  REQUIRE_FALSE(probe.finished());
  REQUIRE(ctx.watched.size() == 1);
  const std::uint16_t probe_port = local_port(ctx.watched[0]);
  const Bytes query = outpost::forge_dns_query(probe.query_id(), kQuestion);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto forge = [&](const Bytes& payload) {
    const Bytes m = port_unreachable(probe_port, server_port, payload);
    REQUIRE(sendto(raw, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
            static_cast<ssize_t>(m.size()));
  };

  Bytes guessed = query;  // the right ports, a guessed id
  put16(guessed, 0, static_cast<std::uint16_t>(probe.query_id() + 1));
  forge(guessed);
  forge(Bytes{});  // the ports alone
  for (int wakes = 0; wakes < 2 && probe.result().dns->ignored < 2; ++wakes) REQUIRE(ctx.step(probe));
  CHECK_FALSE(probe.finished());
  CHECK(probe.result().dns->ignored == 2);
  CHECK_THAT(probe.result().dns->last_ignored, Catch::Contains("does not quote this query"));

  // One that quotes the query itself is taken (as the kernel's own would be).
  forge(query);
  REQUIRE(ctx.step(probe));
  REQUIRE(probe.finished());
  CHECK(probe.result().status == ProbeStatus::unreachable);
  CHECK(probe.result().reply_from == kLoopback);
  close(server);
  close(raw);
}
