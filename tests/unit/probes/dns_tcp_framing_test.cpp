// DNS over TCP framing: the length prefix, a stream read in any pieces,
// several messages in one read, a length of 0, a length past what came.

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "dns_tcp_framing.hpp"

using outpost::DnsTcpReader;
using outpost::frame_dns_tcp;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes message(std::size_t size, std::uint8_t fill) { return Bytes(size, fill); }

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes next_bytes(DnsTcpReader& reader) {
  auto m = reader.next();
  REQUIRE(m);
  return Bytes(m->begin(), m->end());
}

}  // namespace

TEST_CASE("dns tcp framing: the length goes first, big-endian", "[dns][tcp_framing]") {
  CHECK(frame_dns_tcp(Bytes{0xaa, 0xbb, 0xcc}) == Bytes{0x00, 0x03, 0xaa, 0xbb, 0xcc});
  CHECK(frame_dns_tcp(message(300, 7)).size() == 302);
  CHECK(frame_dns_tcp(message(300, 7))[0] == 0x01);
  CHECK(frame_dns_tcp(message(300, 7))[1] == 0x2c);
  CHECK(frame_dns_tcp(Bytes{}) == Bytes{0x00, 0x00});
  CHECK(frame_dns_tcp(message(65535, 1)).size() == 65537);
  CHECK(frame_dns_tcp(message(65536, 1)).empty());  // no length says it
}

TEST_CASE("dns tcp framing: a message read a byte at a time comes out once whole", "[dns][tcp_framing]") {
  const Bytes m = message(40, 0x5a);
  const Bytes stream = frame_dns_tcp(m);
  DnsTcpReader reader;
  for (std::size_t i = 0; i + 1 < stream.size(); ++i) {
    reader.feed({&stream[i], 1});
    CHECK_FALSE(reader.next());
  }
  reader.feed({&stream.back(), 1});
  CHECK(next_bytes(reader) == m);
  CHECK_FALSE(reader.next());
  CHECK(reader.pending() == 0);
}

TEST_CASE("dns tcp framing: several messages in one read, and the start of the next", "[dns][tcp_framing]") {
  const Bytes a = message(3, 1), b = message(700, 2), c = message(50, 3);
  const Bytes framed_c = frame_dns_tcp(c);
  const Bytes stream = concat({frame_dns_tcp(a), frame_dns_tcp(b), Bytes(framed_c.begin(), framed_c.begin() + 10)});
  DnsTcpReader reader;
  reader.feed(stream);
  CHECK(next_bytes(reader) == a);
  CHECK(next_bytes(reader) == b);
  CHECK_FALSE(reader.next());
  CHECK(reader.pending() == 10);
  reader.feed({framed_c.data() + 10, framed_c.size() - 10});
  CHECK(next_bytes(reader) == c);
  CHECK(reader.pending() == 0);
}

TEST_CASE("dns tcp framing: a length of 0 is an empty message", "[dns][tcp_framing]") {
  DnsTcpReader reader;
  reader.feed(Bytes{0, 0, 0, 1, 0x42});
  auto empty = reader.next();
  REQUIRE(empty);
  CHECK(empty->empty());
  CHECK(next_bytes(reader) == Bytes{0x42});
}

TEST_CASE("dns tcp framing: a length past what arrives gives nothing, and holds the bytes", "[dns][tcp_framing]") {
  DnsTcpReader reader;
  reader.feed(Bytes{0xff, 0xff, 1, 2, 3});
  CHECK_FALSE(reader.next());
  CHECK(reader.pending() == 5);
  reader.feed(Bytes{0x01});  // the length alone, cut
  CHECK_FALSE(reader.next());
  DnsTcpReader one;
  one.feed(Bytes{0x00});
  CHECK_FALSE(one.next());
  one.feed(Bytes{});
  CHECK_FALSE(one.next());
  one.feed(Bytes{0x01, 0x99});
  CHECK(next_bytes(one) == Bytes{0x99});
}

TEST_CASE("dns tcp framing: the largest message, in pieces of 4096 bytes", "[dns][tcp_framing]") {
  const Bytes m = message(65535, 0xee);
  const Bytes stream = concat({frame_dns_tcp(m), frame_dns_tcp(Bytes{9})});
  DnsTcpReader reader;
  std::vector<Bytes> got;
  for (std::size_t at = 0; at < stream.size(); at += 4096) {
    reader.feed({stream.data() + at, std::min<std::size_t>(4096, stream.size() - at)});
    while (auto next = reader.next()) got.emplace_back(next->begin(), next->end());
  }
  REQUIRE(got.size() == 2);
  CHECK(got[0] == m);
  CHECK(got[1] == Bytes{9});
}
