// libFuzzer target for DNS-over-TCP framing (dns_tcp_framing.hpp). The first
// bytes cut the rest into the pieces reads would return (any sizes, empty
// ones too); the messages DnsTcpReader hands out must be exactly those of
// one pass over the whole stream, whatever the cut, and each is then parsed
// as DnsProbe does (parse_dns_response). A message framed by frame_dns_tcp
// must come back whole.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "dns_message.hpp"
#include "dns_tcp_framing.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;

const outpost::DnsQuestion kQuestion{"www.lab.test", 1};

// The messages of a whole stream, read in one pass.
std::vector<Bytes> reference(std::span<const std::uint8_t> stream) {
  std::vector<Bytes> out;
  std::size_t at = 0;
  while (stream.size() - at >= 2) {
    const std::size_t size = static_cast<std::size_t>(stream[at] << 8 | stream[at + 1]);
    if (stream.size() - at - 2 < size) break;
    out.emplace_back(stream.begin() + static_cast<std::ptrdiff_t>(at + 2),
                     stream.begin() + static_cast<std::ptrdiff_t>(at + 2 + size));
    at += 2 + size;
  }
  return out;
}

[[noreturn]] void fail() { std::abort(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // Byte 0: how many cut sizes follow (each one byte, a piece of 0..255 bytes,
  // the last piece taking the rest); the stream is what remains.
  const std::size_t cuts = std::min<std::size_t>(data[0] % 32, size - 1);
  const std::span<const std::uint8_t> sizes(data + 1, cuts);
  const std::span<const std::uint8_t> stream(data + 1 + cuts, size - 1 - cuts);

  const std::vector<Bytes> want = reference(stream);
  outpost::DnsTcpReader reader;
  std::vector<Bytes> got;
  std::size_t at = 0;
  auto take = [&] {
    while (auto message = reader.next()) {
      got.emplace_back(message->begin(), message->end());
      // As the probe does with the first; every one here, for the parser's sake.
      const std::uint16_t id = message->size() >= 2 ? static_cast<std::uint16_t>((*message)[0] << 8 | (*message)[1]) : 0;
      auto parsed = outpost::parse_dns_response(*message, id, kQuestion, outpost::kDnsMaxAnswersKept);
      if (!parsed.response && parsed.detail.empty()) fail();
    }
  };
  for (std::size_t i = 0; i <= cuts && at <= stream.size(); ++i) {
    const std::size_t piece = i < cuts ? std::min<std::size_t>(sizes[i], stream.size() - at) : stream.size() - at;
    reader.feed(stream.subspan(at, piece));
    at += piece;
    take();
  }
  if (got != want) fail();
  // Whatever is left is the start of a message not yet whole, and no more than that.
  std::size_t used = 0;
  for (const auto& m : want) used += 2 + m.size();
  if (reader.pending() != stream.size() - used) fail();
  if (reader.pending() >= 2 && reader.pending() >= 2 + static_cast<std::size_t>(stream[used] << 8 | stream[used + 1]))
    fail();

  // Framing the stream's tail (up to 65535 bytes) gives it back whole, alone.
  const auto tail = stream.subspan(used);
  const Bytes framed = outpost::frame_dns_tcp(tail);
  if (tail.size() > 0xffff) {
    if (!framed.empty()) fail();
    return 0;
  }
  if (framed.size() != 2 + tail.size()) fail();
  outpost::DnsTcpReader again;
  again.feed(framed);
  const auto back = again.next();
  if (!back || !std::equal(back->begin(), back->end(), tail.begin(), tail.end()) || again.pending() != 0) fail();
  return 0;
}
