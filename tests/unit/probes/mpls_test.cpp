// ICMP extensions (RFC 4884 / RFC 4950): a time-exceeded that carries the
// router's MPLS label stack after the quoted datagram.
#include <tins/tins.h>

#include <catch2/catch.hpp>

#include "icmp_echo.hpp"
#include "packet_decode.hpp"

using namespace outpost;

namespace {

std::vector<std::uint8_t> time_exceeded_with_mpls(const std::vector<std::uint8_t>& quoted,
                                                  const std::vector<std::uint32_t>& label_entries) {
  // ICMP header: type 11, code 0, checksum (left 0: not checked on decode),
  // unused, length of the original datagram in 32-bit words (RFC 4884), unused.
  std::vector<std::uint8_t> icmp = {11, 0, 0, 0, 0, 128 / 4, 0, 0};
  std::vector<std::uint8_t> original = quoted;
  original.resize(128, 0);  // padded to 128 bytes, as RFC 4884 asks
  icmp.insert(icmp.end(), original.begin(), original.end());
  // Extension structure header: version 2, reserved, checksum (over the structure, below).
  const std::size_t ext = icmp.size();
  icmp.insert(icmp.end(), {0x20, 0, 0, 0});
  // One object: length, class 1 (MPLS label stack), c-type 1 (incoming).
  const auto length = static_cast<std::uint16_t>(4 + 4 * label_entries.size());
  icmp.insert(icmp.end(), {static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length), 1, 1});
  for (std::uint32_t e : label_entries)
    icmp.insert(icmp.end(), {static_cast<std::uint8_t>(e >> 24), static_cast<std::uint8_t>(e >> 16),
                             static_cast<std::uint8_t>(e >> 8), static_cast<std::uint8_t>(e)});
  std::uint32_t sum = 0;
  for (std::size_t i = ext; i + 1 < icmp.size(); i += 2) sum += static_cast<std::uint32_t>(icmp[i] << 8 | icmp[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  icmp[ext + 2] = static_cast<std::uint8_t>(~sum >> 8);
  icmp[ext + 3] = static_cast<std::uint8_t>(~sum);
  Tins::IP outer(Tins::IPv4Address("198.19.0.1"), Tins::IPv4Address("198.19.0.6"));
  outer.protocol(1);
  outer /= Tins::RawPDU(icmp.data(), static_cast<std::uint32_t>(icmp.size()));
  return outer.serialize();
}

std::uint32_t entry(std::uint32_t label, std::uint8_t exp, bool bottom, std::uint8_t ttl) {
  return label << 12 | static_cast<std::uint32_t>(exp) << 9 | (bottom ? 1u : 0u) << 8 | ttl;
}

}  // namespace

TEST_CASE("decode: a time-exceeded with an MPLS label stack extension", "[decode][mpls]") {
  EchoRequest r;
  r.src = *IpAddress::parse("198.19.0.1");
  r.dst = *IpAddress::parse("198.18.0.1");
  r.ident = 0x1234;
  r.sequence = 9;
  r.ip_id = 77;
  r.ttl = 1;
  const auto request = forge_echo_request(r);
  const auto packet =
      time_exceeded_with_mpls(request, {entry(16004, 0, false, 1), entry(299792, 5, true, 254)});
  std::string why;
  auto d = decode_ip(packet.data(), packet.size(), &why);
  REQUIRE(d);
  CHECK(d->l4.icmp_type == 11);
  REQUIRE(d->quote);
  CHECK(d->quote->l4.icmp_id == 0x1234);
  CHECK(d->quote->l4.icmp_seq == 9);
  REQUIRE(d->mpls.size() == 2);
  CHECK(d->mpls[0] == MplsEntry{16004, 0, false, 1});
  CHECK(d->mpls[1] == MplsEntry{299792, 5, true, 254});
}

TEST_CASE("decode: a time-exceeded without extensions has no MPLS entries", "[decode][mpls]") {
  EchoRequest r;
  r.src = *IpAddress::parse("198.19.0.1");
  r.dst = *IpAddress::parse("198.18.0.1");
  const auto request = forge_echo_request(r);
  Tins::IP outer(Tins::IPv4Address("198.19.0.1"), Tins::IPv4Address("198.19.0.6"));
  outer /= Tins::ICMP(Tins::ICMP::TIME_EXCEEDED) / Tins::RawPDU(request.data(), 28);
  const auto bytes = outer.serialize();
  auto d = decode_ip(bytes.data(), bytes.size(), nullptr);
  REQUIRE(d);
  REQUIRE(d->quote);
  CHECK(d->mpls.empty());
}
