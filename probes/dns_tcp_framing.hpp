// DNS over TCP framing (RFC 1035 4.2.2, RFC 7766 8): each message behind a
// two-byte length, the stream read in whatever pieces it arrives in.
// Leaves to others: the socket and its timeouts (dns.hpp), what a message says (dns_message.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace outpost {

// The message behind its two-byte length, as it goes on a TCP stream;
// empty when the message is longer than a length can say (65535 bytes).
std::vector<std::uint8_t> frame_dns_tcp(std::span<const std::uint8_t> message);

// Takes a TCP stream's bytes as they come and hands out the whole messages
// in it, in order. A length of 0 is an (empty) message of its own; bytes of
// a message not yet whole are held, at most 2 + 65535 of them plus the last
// piece fed.
class DnsTcpReader {
 public:
  // Appends what arrived.
  void feed(std::span<const std::uint8_t> bytes);
  // The next whole message, without its length; nullopt until one has come
  // whole. The span stays valid until the next feed() or next().
  std::optional<std::span<const std::uint8_t>> next();
  // Bytes fed and not yet handed out (lengths included).
  std::size_t pending() const { return buffer_.size() - start_; }

 private:
  std::vector<std::uint8_t> buffer_;
  std::size_t start_ = 0;  // where the next length begins
};

}  // namespace outpost
