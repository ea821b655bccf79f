#include "ip_forge.hpp"

#include <netinet/in.h>

#include <algorithm>

namespace outpost::ip_forge {

std::uint32_t ones_sum(std::span<const std::uint8_t> data, std::uint32_t sum) {
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
  if (i < data.size()) sum += static_cast<std::uint32_t>(data[i] << 8);
  return sum;
}

std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

std::size_t write_header(std::uint8_t* d, const IpAddress& src, const IpAddress& dst, std::uint8_t protocol,
                         std::uint8_t ttl, std::uint16_t ip_id, std::size_t size) {
  if (dst.is_v6()) {
    std::fill(d, d + 40, 0);
    d[0] = 0x60;
    put16(d + 4, static_cast<std::uint16_t>(size - 40));
    d[6] = protocol;
    d[7] = ttl;
    std::copy_n(src.bytes(), 16, d + 8);
    std::copy_n(dst.bytes(), 16, d + 24);
    return 40;
  }
  std::fill(d, d + 20, 0);
  d[0] = 0x45;
  put16(d + 2, static_cast<std::uint16_t>(size));
  put16(d + 4, ip_id);
  d[8] = ttl;
  d[9] = protocol;
  std::copy_n(src.bytes(), 4, d + 12);
  std::copy_n(dst.bytes(), 4, d + 16);
  put16(d + 10, fold(ones_sum({d, 20})));
  return 20;
}

std::uint16_t transport_checksum(std::span<const std::uint8_t> datagram, std::uint8_t protocol) {
  const bool v6 = (datagram[0] >> 4) == 6;
  const std::size_t header = v6 ? 40 : 20;
  const auto segment = datagram.subspan(header);
  if (!v6 && protocol == IPPROTO_ICMP) return fold(ones_sum(segment));
  // The pseudo-header: both addresses, the segment's length, the protocol.
  std::uint32_t sum = ones_sum(v6 ? datagram.subspan(8, 32) : datagram.subspan(12, 8));
  const auto length = static_cast<std::uint32_t>(segment.size());
  sum += (length >> 16) + (length & 0xffff) + protocol;
  return fold(ones_sum(segment, sum));
}

}  // namespace outpost::ip_forge
