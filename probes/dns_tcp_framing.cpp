#include "dns_tcp_framing.hpp"

namespace outpost {

std::vector<std::uint8_t> frame_dns_tcp(std::span<const std::uint8_t> message) {
  if (message.size() > 0xffff) return {};
  std::vector<std::uint8_t> out;
  out.reserve(2 + message.size());
  out.push_back(static_cast<std::uint8_t>(message.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(message.size()));
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

void DnsTcpReader::feed(std::span<const std::uint8_t> bytes) {
  // What was handed out is dropped first, so the buffer holds one message's worth.
  if (start_ > 0) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

std::optional<std::span<const std::uint8_t>> DnsTcpReader::next() {
  if (pending() < 2) return std::nullopt;
  const std::size_t size = static_cast<std::size_t>(buffer_[start_] << 8 | buffer_[start_ + 1]);
  if (pending() < 2 + size) return std::nullopt;
  const std::span<const std::uint8_t> message(buffer_.data() + start_ + 2, size);
  start_ += 2 + size;
  return message;
}

}  // namespace outpost
