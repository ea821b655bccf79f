#include "ip_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace outpost {

IpAddress IpAddress::v4(std::uint32_t host_order) {
  std::uint32_t n = htonl(host_order);
  return v4_bytes(reinterpret_cast<const std::uint8_t*>(&n));
}

IpAddress IpAddress::v4_bytes(const std::uint8_t* p) {
  IpAddress a;
  a.family_ = Family::v4;
  std::memcpy(a.bytes_.data(), p, 4);
  return a;
}

IpAddress IpAddress::v6_bytes(const std::uint8_t* p) {
  IpAddress a;
  a.family_ = Family::v6;
  std::memcpy(a.bytes_.data(), p, 16);
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  std::uint8_t buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) return v4_bytes(buf);
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) return v6_bytes(buf);
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::from_sockaddr(const sockaddr_storage& sa) {
  if (sa.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(sa);
    return v4_bytes(reinterpret_cast<const std::uint8_t*>(&in.sin_addr));
  }
  if (sa.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(sa);
    return v6_bytes(in6.sin6_addr.s6_addr);
  }
  return std::nullopt;
}

std::uint32_t IpAddress::v4_host_order() const {
  std::uint32_t n;
  std::memcpy(&n, bytes_.data(), 4);
  return ntohl(n);
}

unsigned IpAddress::to_sockaddr(sockaddr_storage& sa, std::uint16_t port) const {
  std::memset(&sa, 0, sizeof sa);
  if (is_v4()) {
    auto& in = reinterpret_cast<sockaddr_in&>(sa);
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    std::memcpy(&in.sin_addr, bytes_.data(), 4);
    return sizeof(sockaddr_in);
  }
  if (is_v6()) {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(sa);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    std::memcpy(&in6.sin6_addr, bytes_.data(), 16);
    return sizeof(sockaddr_in6);
  }
  return 0;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    // Dotted quad by hand: inet_ntop goes through sprintf, and a record
    // (every probe's) formats its address twice.
    char* p = buf;
    for (int i = 0; i < 4; ++i) {
      const unsigned v = bytes_[i];
      if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
      if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
      *p++ = static_cast<char>('0' + v % 10);
      if (i < 3) *p++ = '.';
    }
    return std::string(buf, p);
  }
  if (is_v6()) inet_ntop(AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

std::size_t IpAddress::hash() const {
  // FNV-1a over family and bytes: cheap and good enough for flow tables.
  std::uint64_t h = 1469598103934665603ull ^ static_cast<std::uint8_t>(family_);
  for (std::size_t i = 0; i < size(); ++i) {
    h ^= bytes_[i];
    h *= 1099511628211ull;
  }
  return static_cast<std::size_t>(h);
}

}  // namespace outpost
