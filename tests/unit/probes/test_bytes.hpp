// Byte helpers the probe tests share: addresses, big-endian reads, the RFC 1071
// checksum computed independently of the code under test, and hex fixtures.
// Leaves to others: building packets (each test builds its own).
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ip_address.hpp"

namespace test_bytes {

using Bytes = std::vector<std::uint8_t>;

inline outpost::IpAddress ip(const char* text) {
  auto a = outpost::IpAddress::parse(text);
  REQUIRE(a);
  return *a;
}

inline std::uint16_t be16(const Bytes& b, std::size_t at) {
  return static_cast<std::uint16_t>(b.at(at) << 8 | b.at(at + 1));
}

inline std::uint32_t be32(const Bytes& b, std::size_t at) {
  return static_cast<std::uint32_t>(be16(b, at)) << 16 | be16(b, at + 2);
}

// RFC 1071 Internet checksum.
inline std::uint16_t internet_checksum(const Bytes& data) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < data.size(); i += 2)
    sum += static_cast<std::uint16_t>(data[i] << 8 | (i + 1 < data.size() ? data[i + 1] : 0));
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

// The checksum the field at `field` should hold: computed with the field zeroed.
inline std::uint16_t expected_checksum(Bytes message, std::size_t field, const Bytes& pseudo_header = {}) {
  message.at(field) = 0;
  message.at(field + 1) = 0;
  Bytes all = pseudo_header;
  all.insert(all.end(), message.begin(), message.end());
  return internet_checksum(all);
}

// A hex text file in tests/fixtures: pairs of hex digits, whitespace between them, '#' comments.
inline Bytes read_hex_fixture(const std::string& name) {
  const std::string path = std::string(OUTPOST_FIXTURES) + "/" + name;
  std::ifstream in(path);
  INFO(path);
  REQUIRE(in);
  Bytes out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line.substr(0, line.find('#')));
    std::string word;
    while (words >> word) {
      REQUIRE(word.size() == 2);
      out.push_back(static_cast<std::uint8_t>(std::stoul(word, nullptr, 16)));
    }
  }
  return out;
}

// An address of the family with random bytes (any at all: forgers must not care).
template <class Random>
outpost::IpAddress random_address(Random& random, bool v6) {
  std::uint8_t bytes[16];
  for (auto& b : bytes) b = static_cast<std::uint8_t>(random());
  return v6 ? outpost::IpAddress::v6_bytes(bytes) : outpost::IpAddress::v4_bytes(bytes);
}

// A DNS message with another id (its first two bytes).
inline Bytes with_id(Bytes m, std::uint16_t id) {
  m[0] = static_cast<std::uint8_t>(id >> 8);
  m[1] = static_cast<std::uint8_t>(id);
  return m;
}

}  // namespace test_bytes
