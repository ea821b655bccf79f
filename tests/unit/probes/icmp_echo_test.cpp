// ICMP echo: forging against a byte fixture (IPv4) and against the RFCs'
// checksums (IPv4 and IPv6), the cookie, and IcmpEchoProbe driven by a fake
// ProbeContext.

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_bytes.hpp"
#include "icmp_echo.hpp"

using namespace std::chrono_literals;
using outpost::EchoRequest;
using outpost::IpAddress;

namespace {

using namespace test_bytes;



std::uint64_t be64(const Bytes& b, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = v << 8 | b.at(at + i);
  return v;
}




EchoRequest fixture_request() {
  EchoRequest r;
  r.src = ip("198.19.0.1");
  r.dst = ip("198.18.0.1");
  r.ident = 0x1234;
  r.sequence = 7;
  r.ip_id = 0x4242;
  r.ttl = 64;
  r.cookie = 0x0102030405060708ull;
  r.payload_size = 56;
  return r;
}

// Every field of an IPv4 echo request, checked against RFC 791 / RFC 792.
void check_v4_echo_request(const Bytes& b, const EchoRequest& r) {
  const std::size_t icmp_len = 8 + std::max<std::size_t>(r.payload_size, 8);
  REQUIRE(b.size() == 20 + icmp_len);
  CHECK(b[0] == 0x45);                    // version 4, IHL 5 (no options)
  CHECK(be16(b, 2) == b.size());          // total length
  CHECK(be16(b, 4) == r.ip_id);           // identification
  CHECK((be16(b, 6) & 0x1fff) == 0);      // not a fragment
  CHECK(b[8] == r.ttl);
  CHECK(b[9] == 1);                       // protocol ICMP
  CHECK(be16(b, 10) == expected_checksum(Bytes(b.begin(), b.begin() + 20), 10));
  CHECK(IpAddress::v4_bytes(&b[12]) == r.src);
  CHECK(IpAddress::v4_bytes(&b[16]) == r.dst);

  const Bytes icmp(b.begin() + 20, b.end());
  CHECK(icmp[0] == 8);  // echo request
  CHECK(icmp[1] == 0);
  CHECK(be16(icmp, 2) == expected_checksum(icmp, 2));
  CHECK(internet_checksum(icmp) == 0);  // the receiver's check: sums to all ones
  CHECK(be16(icmp, 4) == r.ident);
  CHECK(be16(icmp, 6) == r.sequence);
  CHECK(be64(icmp, 8) == r.cookie);
}

}  // namespace

TEST_CASE("the fixture itself is a correct IPv4 ICMP echo request", "[icmp_echo][fixture]") {
  const Bytes fixture = read_hex_fixture("echo_request_v4.hex");
  REQUIRE(fixture.size() == 84);
  check_v4_echo_request(fixture, fixture_request());
  // Values written down by hand (RFC 1071 sums worked on paper).
  CHECK(be16(fixture, 10) == 0xac3f);
  CHECK(be16(fixture, 22) == 0xeaad);
  // ping's fill after the cookie: byte i holds i.
  for (std::size_t i = 8; i < 56; ++i) CHECK(fixture[28 + i] == i);
}

TEST_CASE("forge_echo_request (IPv4) equals the byte fixture", "[icmp_echo][fixture]") {
  const Bytes forged = outpost::forge_echo_request(fixture_request());
  const Bytes fixture = read_hex_fixture("echo_request_v4.hex");
  CHECK(forged == fixture);
  check_v4_echo_request(forged, fixture_request());
}

TEST_CASE("forge_echo_request (IPv4) keeps its checksums right for other fields", "[icmp_echo]") {
  EchoRequest r = fixture_request();
  SECTION("another sequence, cookie and TTL") {
    r.sequence = 0xffff;
    r.cookie = 0xfedcba9876543210ull;
    r.ttl = 1;
    r.ip_id = 0;
    check_v4_echo_request(outpost::forge_echo_request(r), r);
  }
  SECTION("an odd payload size") {
    r.payload_size = 33;
    check_v4_echo_request(outpost::forge_echo_request(r), r);
  }
  SECTION("a payload too small for the cookie is grown to 8 bytes") {
    r.payload_size = 3;
    const Bytes b = outpost::forge_echo_request(r);
    CHECK(b.size() == 20 + 8 + 8);
    check_v4_echo_request(b, r);
  }
}

TEST_CASE("forge_echo_request (IPv6): ICMPv6 echo with the pseudo-header checksum", "[icmp_echo]") {
  EchoRequest r;
  r.src = ip("2001:db8::1");
  r.dst = ip("2001:db8:ffff::2");
  r.ident = 0xbeef;
  r.sequence = 513;
  r.ttl = 57;
  r.cookie = 0x1122334455667788ull;
  r.payload_size = 56;
  const Bytes b = outpost::forge_echo_request(r);

  REQUIRE(b.size() == 40 + 8 + 56);
  CHECK(b[0] >> 4 == 6);
  CHECK(be16(b, 4) == 64);  // payload length
  CHECK(b[6] == 58);        // next header ICMPv6
  CHECK(b[7] == 57);        // hop limit
  CHECK(IpAddress::v6_bytes(&b[8]) == r.src);
  CHECK(IpAddress::v6_bytes(&b[24]) == r.dst);

  const Bytes icmp(b.begin() + 40, b.end());
  CHECK(icmp[0] == 128);
  CHECK(icmp[1] == 0);
  CHECK(be16(icmp, 4) == r.ident);
  CHECK(be16(icmp, 6) == r.sequence);
  CHECK(be64(icmp, 8) == r.cookie);

  // RFC 8200 §8.1: source, destination, upper-layer length (32 bits), 3 zero bytes, next header.
  Bytes pseudo(r.src.bytes(), r.src.bytes() + 16);
  pseudo.insert(pseudo.end(), r.dst.bytes(), r.dst.bytes() + 16);
  const auto len = static_cast<std::uint32_t>(icmp.size());
  for (int shift : {24, 16, 8, 0}) pseudo.push_back(static_cast<std::uint8_t>(len >> shift));
  pseudo.insert(pseudo.end(), {0, 0, 0, 58});
  CHECK(be16(icmp, 2) == expected_checksum(icmp, 2, pseudo));
  CHECK(be16(icmp, 2) != expected_checksum(icmp, 2));  // the pseudo-header is really in it
}

TEST_CASE("echo_cookie is a keyed hash of the probe's identity", "[icmp_echo]") {
  const auto dst = ip("198.18.0.1");
  const outpost::FlowSecret k42{42}, k43{43};
  const auto c = outpost::echo_cookie(k42, dst, 0x1234, 7);
  CHECK(c == outpost::echo_cookie(k42, dst, 0x1234, 7));
  CHECK(c != outpost::echo_cookie(k43, dst, 0x1234, 7));
  CHECK(c != outpost::echo_cookie(k42, ip("198.18.0.2"), 0x1234, 7));
  CHECK(c != outpost::echo_cookie(k42, dst, 0x1235, 7));
  CHECK(c != outpost::echo_cookie(k42, dst, 0x1234, 8));
  CHECK(c != outpost::echo_cookie(k42, ip("::ffff:198.18.0.1"), 0x1234, 7));  // the family is in it
}

// ---------------------------------------------------------------------------
// IcmpEchoProbe through a fake ProbeContext.

namespace {

class FakeContext final : public outpost::ProbeContext {
 public:
  IpAddress source = *IpAddress::parse("198.19.0.1");
  std::string source_error;
  std::string send_error;
  int free_after = 0;  // expect() refuses this many keys first
  std::vector<outpost::FlowKey> expected;
  std::vector<Bytes> sent;
  std::vector<outpost::Duration> timeouts;
  std::uint16_t sequence = 99;
  outpost::WallTime wall{std::chrono::seconds(1419264900)};

  IpAddress source_for(const IpAddress&, std::string* error) override {
    if (!source_error.empty()) {
      *error = source_error;
      return {};
    }
    return source;
  }
  std::uint16_t next_ip_id() override { return 0x4242; }
  std::uint16_t next_icmp_ident() override { return 0x1234; }
  std::uint16_t next_icmp_sequence() override { return ++sequence; }
  std::uint16_t next_dns_id() override { return 0; }
  const outpost::FlowSecret& secret() const override { return key; }
  outpost::FlowSecret key{0x5e, 0xc7, 0xe7};
  outpost::WallTime wall_now() override { return wall; }
  bool expect(const outpost::FlowKey& key) override {
    if (free_after > 0) {
      --free_after;
      return false;
    }
    expected.push_back(key);
    return true;
  }
  bool send(const IpAddress&, std::span<const std::uint8_t> d, std::string* error) override {
    if (!send_error.empty()) {
      *error = send_error;
      return false;
    }
    sent.emplace_back(d.begin(), d.end());
    return true;
  }
  void arm_timeout(outpost::Duration d) override { timeouts.push_back(d); }
  bool watch(int, std::uint32_t) override { return false; }  // ICMP echo needs no socket of its own
};

}  // namespace

TEST_CASE("IcmpEchoProbe::start forges with the context's identity and arms its timeout", "[icmp_echo][probe]") {
  FakeContext ctx;
  const auto target = ip("198.18.0.1");
  outpost::IcmpEchoProbe probe(target, 2s);
  probe.start(ctx);

  REQUIRE_FALSE(probe.finished());
  REQUIRE(ctx.sent.size() == 1);
  REQUIRE(ctx.expected.size() == 1);
  CHECK(ctx.expected[0] == outpost::FlowKey{outpost::FlowProto::icmp_echo, target, 0x1234, 100});
  CHECK(ctx.timeouts == std::vector<outpost::Duration>{2s});
  CHECK(probe.result().sequence == 100);

  EchoRequest expected = fixture_request();
  expected.sequence = 100;
  expected.cookie = outpost::echo_cookie(ctx.key, target, 0x1234, 100);
  CHECK(ctx.sent[0] == outpost::forge_echo_request(expected));
}

TEST_CASE("IcmpEchoProbe::start skips sequence numbers whose flow is taken", "[icmp_echo][probe]") {
  FakeContext ctx;
  ctx.free_after = 3;
  outpost::IcmpEchoProbe probe(ip("198.18.0.1"), 2s);
  probe.start(ctx);
  REQUIRE_FALSE(probe.finished());
  CHECK(probe.result().sequence == 103);
  REQUIRE(ctx.expected.size() == 1);
  CHECK(ctx.expected[0].b == 103);
}

TEST_CASE("IcmpEchoProbe::start fails as data, not exceptions", "[icmp_echo][probe]") {
  FakeContext ctx;
  outpost::IcmpEchoProbe probe(ip("198.18.0.1"), 2s);

  SECTION("no route toward the target") {
    ctx.source_error = "no route to 198.18.0.1";
    probe.start(ctx);
    CHECK(probe.result().error == "no route to 198.18.0.1");
    CHECK(ctx.expected.empty());
  }
  SECTION("every sequence number taken") {
    ctx.free_after = 1000;
    probe.start(ctx);
    CHECK(probe.result().error == "too many probes in flight to 198.18.0.1");
  }
  SECTION("the send fails") {
    ctx.send_error = "sendto: Operation not permitted";
    probe.start(ctx);
    CHECK(probe.result().error == "sendto: Operation not permitted");
    CHECK(ctx.timeouts.empty());
  }
  REQUIRE(probe.finished());
  CHECK(probe.result().status == outpost::ProbeStatus::error);
  CHECK(ctx.sent.empty());
  CHECK_FALSE(probe.result().rtt);
}

TEST_CASE("IcmpEchoProbe keeps the first kernel send stamp and times out once", "[icmp_echo][probe]") {
  FakeContext ctx;
  outpost::IcmpEchoProbe probe(ip("198.18.0.1"), 1s);
  probe.start(ctx);
  CHECK(probe.result().sent == ctx.wall);
  CHECK_FALSE(probe.result().sent_kernel_stamp);

  const auto t0 = ctx.wall + 30us;
  probe.on_sent(t0);
  probe.on_sent(t0 + 5us);  // loopback: the same request seen coming in
  CHECK(probe.result().sent == t0);
  CHECK(probe.result().sent_kernel_stamp);

  probe.on_timeout();
  CHECK(probe.finished());
  CHECK(probe.result().status == outpost::ProbeStatus::timeout);
  CHECK_FALSE(probe.result().rtt);
}

// The forger writes the bytes itself (no allocation per probe); libtins'
// serialization of the same request, as the forger was before, is the
// reference: byte for byte, over random requests of both families, with and
// without the Paris checksum, and odd payload sizes (with a fixed checksum,
// at least the 10 bytes it needs).
#include <random>
#include <tins/tins.h>

namespace {
Bytes forge_with_libtins(const EchoRequest& r) {
  Bytes payload(std::max<std::size_t>(r.payload_size, r.checksum ? 10 : 8));
  for (int i = 0; i < 8; ++i) payload[i] = static_cast<std::uint8_t>(r.cookie >> (56 - 8 * i));
  for (std::size_t i = 8; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i);
  if (r.checksum) payload[8] = payload[9] = 0;
  Bytes out;
  if (r.dst.is_v6()) {
    Tins::IPv6 ip(Tins::IPv6Address(r.dst.bytes()), Tins::IPv6Address(r.src.bytes()));
    ip.hop_limit(r.ttl);
    Tins::ICMPv6 icmp(Tins::ICMPv6::ECHO_REQUEST);
    icmp.identifier(r.ident);
    icmp.sequence(r.sequence);
    ip /= icmp;
    ip /= Tins::RawPDU(payload.data(), static_cast<std::uint32_t>(payload.size()));
    out = ip.serialize();
  } else {
    Tins::IP ip(Tins::IPv4Address(r.dst.to_string()), Tins::IPv4Address(r.src.to_string()));
    ip.ttl(r.ttl);
    ip.id(r.ip_id);
    Tins::ICMP icmp(Tins::ICMP::ECHO_REQUEST);
    icmp.id(r.ident);
    icmp.sequence(r.sequence);
    ip /= icmp;
    ip /= Tins::RawPDU(payload.data(), static_cast<std::uint32_t>(payload.size()));
    out = ip.serialize();
  }
  if (r.checksum) {
    const std::size_t icmp = r.dst.is_v6() ? 40 : 20;
    outpost::paris_fix_checksum(out, icmp + 2, icmp + 16, *r.checksum);
  }
  return out;
}
}  // namespace

TEST_CASE("forge_echo_request: byte for byte what libtins serializes", "[icmp_echo]") {
  std::mt19937_64 random(4242);
  auto u = [&](std::uint64_t n) { return random() % n; };
  for (int i = 0; i < 4000; ++i) {
    EchoRequest r;
    const bool v6 = i % 2 == 1;
    r.src = random_address(random, v6);
    r.dst = random_address(random, v6);
    r.ident = static_cast<std::uint16_t>(random());
    r.sequence = static_cast<std::uint16_t>(random());
    r.ip_id = static_cast<std::uint16_t>(random());
    r.ttl = static_cast<std::uint8_t>(u(256));
    r.cookie = random();
    r.payload_size = u(4) == 0 ? u(300) : 56;  // 0 to 299, odd sizes too
    if (u(3) == 0) r.checksum = static_cast<std::uint16_t>(random());
    const Bytes want = forge_with_libtins(r);
    INFO("request " << i << " v6=" << v6 << " payload=" << r.payload_size << " paris=" << r.checksum.has_value());
    REQUIRE(outpost::forge_echo_request(r) == want);
    std::array<std::uint8_t, 400> buffer;
    REQUIRE(outpost::forge_echo_request(r, buffer) == want.size());
    REQUIRE(Bytes(buffer.begin(), buffer.begin() + want.size()) == want);
    // A buffer too short is refused, not overrun.
    CHECK(outpost::forge_echo_request(r, std::span(buffer).first(want.size() - 1)) == 0);
  }
}
