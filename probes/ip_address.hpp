// A typed IPv4 or IPv6 address: parsing, formatting, hashing, ordering.
// Leaves to others: routes, interfaces and name resolution.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

struct sockaddr_storage;

namespace outpost {

class IpAddress {
 public:
  enum class Family : std::uint8_t { none, v4, v6 };

  IpAddress() = default;
  static IpAddress v4(std::uint32_t host_order);
  static IpAddress v4_bytes(const std::uint8_t* network_order);   // 4 bytes
  static IpAddress v6_bytes(const std::uint8_t* network_order);   // 16 bytes
  static std::optional<IpAddress> parse(std::string_view text);
  static std::optional<IpAddress> from_sockaddr(const sockaddr_storage& sa);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::v4; }
  bool is_v6() const { return family_ == Family::v6; }
  explicit operator bool() const { return family_ != Family::none; }

  // IPv4 only: the address in host byte order.
  std::uint32_t v4_host_order() const;
  // The address bytes in network order: 4 for v4, 16 for v6.
  const std::uint8_t* bytes() const { return bytes_.data(); }
  std::size_t size() const { return family_ == Family::v4 ? 4 : family_ == Family::v6 ? 16 : 0; }
  // Fills a sockaddr_in/sockaddr_in6 with this address and port; returns its length.
  unsigned to_sockaddr(sockaddr_storage& sa, std::uint16_t port = 0) const;

  std::string to_string() const;
  std::size_t hash() const;

  auto operator<=>(const IpAddress&) const = default;
  bool operator==(const IpAddress&) const = default;

 private:
  Family family_ = Family::none;
  std::array<std::uint8_t, 16> bytes_{};
};

}  // namespace outpost

template <>
struct std::hash<outpost::IpAddress> {
  std::size_t operator()(const outpost::IpAddress& a) const noexcept { return a.hash(); }
};
