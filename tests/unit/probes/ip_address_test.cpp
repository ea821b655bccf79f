// IpAddress::to_string: IPv4 formatted by hand, held to inet_ntop's text.

#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <random>
#include <string>

#include "ip_address.hpp"

using outpost::IpAddress;

namespace {
std::string ntop4(const std::array<std::uint8_t, 4>& b) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, b.data(), buf, sizeof buf);
  return buf;
}
}  // namespace

TEST_CASE("IpAddress::to_string: IPv4 as inet_ntop writes it", "[ip_address]") {
  // Every byte value in every position (the digits' edges 9/10, 99/100, 255).
  for (int pos = 0; pos < 4; ++pos)
    for (int v = 0; v < 256; ++v) {
      std::array<std::uint8_t, 4> b{1, 22, 133, 4};
      b[static_cast<std::size_t>(pos)] = static_cast<std::uint8_t>(v);
      REQUIRE(IpAddress::v4_bytes(b.data()).to_string() == ntop4(b));
    }
  std::mt19937 random(99);
  for (int i = 0; i < 100000; ++i) {
    const std::uint32_t x = random();
    const std::array<std::uint8_t, 4> b{static_cast<std::uint8_t>(x >> 24), static_cast<std::uint8_t>(x >> 16),
                                        static_cast<std::uint8_t>(x >> 8), static_cast<std::uint8_t>(x)};
    REQUIRE(IpAddress::v4_bytes(b.data()).to_string() == ntop4(b));
  }
  CHECK(IpAddress::v4_bytes(std::array<std::uint8_t, 4>{0, 0, 0, 0}.data()).to_string() == "0.0.0.0");
  CHECK(IpAddress::v4_bytes(std::array<std::uint8_t, 4>{255, 255, 255, 255}.data()).to_string() ==
        "255.255.255.255");
  CHECK(IpAddress::parse("2001:db8::1")->to_string() == "2001:db8::1");
  CHECK(IpAddress().to_string().empty());
}
