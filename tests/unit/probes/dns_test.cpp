// DNS: forging a query against a byte fixture, parsing answers from fixtures
// (captured from dnsmasq, or built by tests/fixtures/dns_fixtures.py and
// cross-checked with dnspython) including truncated, malformed, wrong-id and
// compressed ones, and DnsProbe driven by a fake context against a server on
// loopback (no root; nothing leaves the host).

#include "test_bytes.hpp"
#include "dns.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using outpost::DnsParseError;
using outpost::DnsQuestion;
using outpost::IpAddress;
using outpost::ProbeStatus;

namespace {

using namespace test_bytes;

constexpr std::uint16_t kId = 0x4242;
const DnsQuestion kWwwA{"www.lab.test", 1};


outpost::DnsParseResult parse(const Bytes& m, const DnsQuestion& q = kWwwA, std::uint16_t id = kId) {
  return outpost::parse_dns_response(m, id, q);
}

outpost::DnsParseResult parse_fixture(const std::string& name, const DnsQuestion& q = kWwwA) {
  return parse(read_hex_fixture(name), q);
}

std::vector<std::string> answer_texts(const outpost::DnsResponse& r) {
  std::vector<std::string> out;
  for (const auto& a : r.answers) out.push_back(a.data);
  return out;
}


// A response to www.lab.test A (id kId, NOERROR) with one record of this type and data.
Bytes one_record_answer(std::uint16_t type, const Bytes& rdata) {
  Bytes m = {0x42, 0x42, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0};
  const Bytes question = outpost::forge_dns_query(kId, kWwwA);
  m.insert(m.end(), question.begin() + 12, question.end());
  const Bytes rr = {
      0xc0, 0x0c, static_cast<std::uint8_t>(type >> 8),         static_cast<std::uint8_t>(type),        0, 1, 0, 0,
      0,    60,   static_cast<std::uint8_t>(rdata.size() >> 8), static_cast<std::uint8_t>(rdata.size())};
  m.insert(m.end(), rr.begin(), rr.end());
  m.insert(m.end(), rdata.begin(), rdata.end());
  return m;
}

}  // namespace

TEST_CASE("dns: query types and rcodes by name", "[dns]") {
  CHECK(outpost::dns_type_from_name("A") == 1);
  CHECK(outpost::dns_type_from_name("aaaa") == 28);
  for (const char* t : {"A", "AAAA", "NS", "SOA", "TXT", "CNAME", "MX", "PTR"}) {
    INFO(t);
    auto type = outpost::dns_type_from_name(t);
    REQUIRE(type);
    CHECK(outpost::dns_type_name(*type) == t);
  }
  CHECK_FALSE(outpost::dns_type_from_name("ANY"));
  CHECK(outpost::dns_type_name(65) == "TYPE65");
  CHECK(outpost::dns_rcode_name(0) == "NOERROR");
  CHECK(outpost::dns_rcode_name(2) == "SERVFAIL");
  CHECK(outpost::dns_rcode_name(3) == "NXDOMAIN");
  CHECK(outpost::dns_rcode_name(5) == "REFUSED");
  CHECK(outpost::dns_rcode_name(12) == "RCODE12");
}

TEST_CASE("dns: query names are checked and normalized", "[dns]") {
  std::string error;
  CHECK(outpost::normalize_dns_name("www.lab.test", &error) == "www.lab.test");
  CHECK(outpost::normalize_dns_name("www.lab.test.", &error) == "www.lab.test");
  CHECK(outpost::normalize_dns_name(".", &error) == "");
  CHECK(outpost::normalize_dns_name(std::string(63, 'a') + ".test", &error));
  const std::vector<std::string> bad_names = {"",
                                              "a..b",
                                              "a.b..",
                                              ".a",
                                              "with space.test",
                                              "back\\slash.test",
                                              std::string(64, 'a') + ".test",
                                              std::string(254, 'a')};
  for (const auto& bad : bad_names) {
    INFO(bad);
    error.clear();
    CHECK_FALSE(outpost::normalize_dns_name(bad, &error));
    CHECK_THAT(error, Catch::Contains("bad query name"));
  }
}

TEST_CASE("dns: forge_dns_query matches the fixture byte for byte", "[dns]") {
  const Bytes q = outpost::forge_dns_query(kId, kWwwA);
  CHECK(q == read_hex_fixture("dns_query_www_a.hex"));
  CHECK(be16(q, 0) == kId);
  CHECK(be16(q, 2) == 0x0100);  // QR 0, opcode QUERY, RD: nothing else
  CHECK(be16(q, 4) == 1);       // QDCOUNT
  CHECK(be16(q, 6) == 0);
  CHECK(be16(q, 8) == 0);
  CHECK(be16(q, 10) == 0);  // ARCOUNT 0: no EDNS, so big answers truncate at 512 bytes
  const Bytes name = {3, 'w', 'w', 'w', 3, 'l', 'a', 'b', 4, 't', 'e', 's', 't', 0};
  CHECK(Bytes(q.begin() + 12, q.begin() + 12 + static_cast<long>(name.size())) == name);
  CHECK(be16(q, 26) == 1);  // QTYPE A
  CHECK(be16(q, 28) == 1);  // QCLASS IN
  CHECK(q.size() == 30);
}

TEST_CASE("dns: forging other types and the root", "[dns]") {
  const Bytes aaaa = outpost::forge_dns_query(7, {"lab.test", 28});
  CHECK(be16(aaaa, 0) == 7);
  CHECK(be16(aaaa, aaaa.size() - 4) == 28);
  const Bytes root = outpost::forge_dns_query(1, {"", 2});
  REQUIRE(root.size() == 17);
  CHECK(root[12] == 0);  // the root: one empty label
  CHECK(be16(root, 13) == 2);
}

TEST_CASE("dns: captured dnsmasq answers", "[dns]") {
  SECTION("www.lab.test A") {
    auto r = parse_fixture("dns_answer_www_a.hex");
    REQUIRE(r.response);
    CHECK(r.error == DnsParseError::none);
    CHECK(r.response->id == kId);
    CHECK(r.response->rcode == 0);
    CHECK(r.response->authoritative);
    CHECK_FALSE(r.response->truncated);
    REQUIRE(r.response->answers.size() == 1);
    const auto& a = r.response->answers[0];
    CHECK(a.name == "www.lab.test");  // the compressed owner name
    CHECK(a.type == 1);
    CHECK(a.rclass == 1);
    CHECK(a.data == "198.18.0.1");
  }
  SECTION("NXDOMAIN") {
    auto r = parse_fixture("dns_answer_nxdomain.hex", {"nope.lab.test", 1});
    REQUIRE(r.response);
    CHECK(outpost::dns_rcode_name(r.response->rcode) == "NXDOMAIN");
    CHECK(r.response->answers.empty());
  }
  SECTION("a CNAME chain, a name compressed into the CNAME's data") {
    auto r = parse_fixture("dns_answer_cname.hex", {"alias.lab.test", 1});
    REQUIRE(r.response);
    CHECK(answer_texts(*r.response) == std::vector<std::string>{"www.lab.test", "198.18.0.1"});
    CHECK(r.response->answers[0].name == "alias.lab.test");
    CHECK(r.response->answers[1].name == "www.lab.test");
  }
  SECTION("TXT") {
    auto r = parse_fixture("dns_answer_txt.hex", {"txt.lab.test", 16});
    REQUIRE(r.response);
    CHECK(answer_texts(*r.response) == std::vector<std::string>{"outpost lab"});
  }
  SECTION("MX") {
    auto r = parse_fixture("dns_answer_mx.hex", {"lab.test", 15});
    REQUIRE(r.response);
    CHECK(answer_texts(*r.response) == std::vector<std::string>{"10 mail.lab.test"});
  }
  SECTION("question names compare ignoring ASCII case") {
    CHECK(parse_fixture("dns_answer_www_a.hex", {"WWW.Lab.TEST", 1}).response);
  }
}

TEST_CASE("dns: SOA, AAAA and SERVFAIL", "[dns]") {
  auto soa = parse_fixture("dns_answer_soa.hex", {"lab.test", 6});
  REQUIRE(soa.response);
  CHECK(answer_texts(*soa.response) ==
        std::vector<std::string>{"ns1.lab.test hostmaster.lab.test 2024010101 3600 600 86400 60"});
  auto aaaa = parse_fixture("dns_answer_aaaa.hex", {"www.lab.test", 28});
  REQUIRE(aaaa.response);
  CHECK(answer_texts(*aaaa.response) == std::vector<std::string>{"2001:db8::80"});
  auto servfail = parse_fixture("dns_answer_servfail.hex");
  REQUIRE(servfail.response);
  CHECK(outpost::dns_rcode_name(servfail.response->rcode) == "SERVFAIL");
}

TEST_CASE("dns: a truncated UDP answer, then the whole one over TCP", "[dns]") {
  auto udp = parse_fixture("dns_answer_big_udp_tc.hex", {"big.lab.test", 1});
  REQUIRE(udp.response);
  CHECK(udp.response->truncated);
  CHECK(udp.response->answers.size() == 30);
  auto tcp = parse_fixture("dns_answer_big_tcp.hex", {"big.lab.test", 1});
  REQUIRE(tcp.response);
  CHECK_FALSE(tcp.response->truncated);
  REQUIRE(tcp.response->answers.size() == 40);
  CHECK(tcp.response->answers.front().data == "198.18.9.23");
  CHECK(tcp.response->answers.back().data == "198.18.9.6");

  // TC and cut in the middle of the third record: the two complete ones stay.
  auto cut = parse_fixture("dns_truncated_cut.hex", {"big.lab.test", 1});
  REQUIRE(cut.response);
  CHECK(cut.response->truncated);
  CHECK(answer_texts(*cut.response) == std::vector<std::string>{"198.18.9.6", "198.18.9.23"});
}

TEST_CASE("dns: answers that are not ours are told apart", "[dns]") {
  auto wrong_id = parse_fixture("dns_answer_wrong_id.hex");
  CHECK_FALSE(wrong_id.response);
  CHECK(wrong_id.error == DnsParseError::wrong_id);
  CHECK(wrong_id.detail == "id 0x4243, expected 0x4242");

  auto wrong_q = parse_fixture("dns_answer_wrong_question.hex");
  CHECK_FALSE(wrong_q.response);
  CHECK(wrong_q.error == DnsParseError::wrong_question);
  CHECK_THAT(wrong_q.detail, Catch::Contains("AAAA"));

  // Another name than asked.
  CHECK(parse_fixture("dns_answer_www_a.hex", {"ww.lab.test", 1}).error == DnsParseError::wrong_question);

  // Our own query looped back is not an answer.
  CHECK(parse_fixture("dns_query_www_a.hex").error == DnsParseError::not_a_response);

  // An error rcode may come without the question; NOERROR may not.
  Bytes bare = {0x42, 0x42, 0x81, 0x82, 0, 0, 0, 0, 0, 0, 0, 0};
  auto servfail = parse(bare);
  REQUIRE(servfail.response);
  CHECK(servfail.response->rcode == 2);
  bare[3] = 0x80;
  CHECK(parse(bare).error == DnsParseError::wrong_question);
}

TEST_CASE("dns: malformed answers are refused with a reason", "[dns]") {
  const std::pair<const char*, const char*> cases[] = {
      {"dns_malformed_header.hex", "shorter than a DNS header"},
      {"dns_malformed_cut.hex", "runs past the end"},
      {"dns_malformed_pointer_loop.hex", "does not point backwards"},
      {"dns_malformed_pointer_loop2.hex", "does not point backwards"},
      {"dns_malformed_pointer_range.hex", "does not point backwards"},
      {"dns_malformed_counts.hex", "answer record 2 of 5"},
      {"dns_malformed_rdlength.hex", "not 4 bytes"},
  };
  for (const auto& [file, why] : cases) {
    INFO(file);
    auto r = parse_fixture(file);
    CHECK_FALSE(r.response);
    CHECK(r.error == DnsParseError::malformed);
    CHECK_THAT(r.detail, Catch::Contains(why));
  }
}

TEST_CASE("dns: record data that does not fit its type", "[dns]") {
  CHECK(parse(one_record_answer(28, Bytes(4, 1))).error == DnsParseError::malformed);     // AAAA of 4 bytes
  CHECK(parse(one_record_answer(16, {})).error == DnsParseError::malformed);              // TXT, no string
  CHECK(parse(one_record_answer(16, {5, 'a', 'b'})).error == DnsParseError::malformed);   // TXT string too long
  CHECK(parse(one_record_answer(5, {1, 'a', 0, 0})).error == DnsParseError::malformed);   // name shorter than data
  CHECK(parse(one_record_answer(5, {3, 'a'})).error == DnsParseError::malformed);         // name longer than data
  CHECK(parse(one_record_answer(15, {0})).error == DnsParseError::malformed);             // MX without a name
  CHECK(parse(one_record_answer(6, {0, 0, 0, 0, 0})).error == DnsParseError::malformed);  // SOA without numbers
  CHECK(parse(one_record_answer(5, {0x40, 'a', 0})).error == DnsParseError::malformed);   // extended label type
  CHECK(parse(one_record_answer(5, {0xc0, 0x02})).error == DnsParseError::malformed);     // pointer into header
  // 130 one-byte labels: a name over 255 bytes.
  Bytes long_name;
  for (int i = 0; i < 130; ++i) long_name.insert(long_name.end(), {1, 'x'});
  long_name.push_back(0);
  auto too_long = parse(one_record_answer(5, long_name));
  CHECK(too_long.error == DnsParseError::malformed);
  CHECK_THAT(too_long.detail, Catch::Contains("longer than 255"));
}

TEST_CASE("dns: unusual bytes come out as printable text", "[dns]") {
  auto txt = parse(one_record_answer(16, {4, 'a', '\n', '\\', 0xff, 1, ' '}));
  REQUIRE(txt.response);
  CHECK(txt.response->answers[0].data == "a\\010\\\\\\255 ");
  auto name = parse(one_record_answer(5, {3, 'a', '.', 'b', 0}));  // a dot inside a label
  REQUIRE(name.response);
  CHECK(name.response->answers[0].data == "a\\.b");
  auto root = parse(one_record_answer(5, {0}));
  REQUIRE(root.response);
  CHECK(root.response->answers[0].data == ".");
  auto other = parse(one_record_answer(99, {0xab, 0xcd}));
  REQUIRE(other.response);
  CHECK(other.response->answers[0].data == "\\# 2 abcd");
  CHECK(other.response->answers[0].type == 99);
}

TEST_CASE("dns: every cut of every fixture parses or is refused, never more", "[dns]") {
  const std::pair<const char*, DnsQuestion> fixtures[] = {
      {"dns_answer_www_a.hex", kWwwA},         {"dns_answer_cname.hex", {"alias.lab.test", 1}},
      {"dns_answer_soa.hex", {"lab.test", 6}}, {"dns_answer_big_tcp.hex", {"big.lab.test", 1}},
      {"dns_answer_mx.hex", {"lab.test", 15}}, {"dns_answer_big_udp_tc.hex", {"big.lab.test", 1}},
  };
  for (const auto& [file, question] : fixtures) {
    const Bytes whole = read_hex_fixture(file);
    REQUIRE(parse(whole, question).response);
    for (std::size_t n = 0; n < whole.size(); ++n) {
      INFO(file << " cut to " << n << " bytes");
      auto r = parse(Bytes(whole.begin(), whole.begin() + static_cast<long>(n)), question);
      const bool tc = whole[2] & 0x02;
      if (!tc) CHECK(r.error == DnsParseError::malformed);
      if (r.response) CHECK(r.response->answers.size() <= 30);
    }
  }
}

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
  std::uint16_t icmp_ident() const override { return 0; }
  std::uint16_t next_icmp_sequence() override { return 0; }
  std::uint64_t secret() const override { return 0; }
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

// A fixture message with the probe's id.
Bytes with_id(Bytes m, std::uint16_t id) {
  m[0] = static_cast<std::uint8_t>(id >> 8);
  m[1] = static_cast<std::uint8_t>(id);
  return m;
}

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
    CHECK(r.dns->answers.size() == 40);
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
    std::uint16_t icmp_ident() const override { return 0; }
    std::uint16_t next_icmp_sequence() override { return 0; }
    std::uint64_t secret() const override { return 0; }
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
