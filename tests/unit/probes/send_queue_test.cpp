// The sending thread, over UDP on loopback (no privilege needed): every
// datagram queued goes out once and in order, in batches, the thread sleeping
// when the ring is empty and woken by the next push; a datagram too large
// is refused; a datagram the kernel refuses comes back as a failure with its token while
// the rest of its batch goes.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "send_queue.hpp"

using outpost::IpAddress;
using outpost::SendQueue;

namespace {

const IpAddress kLoopback = *IpAddress::parse("127.0.0.1");

// A UDP socket on 127.0.0.1 that the queue's datagrams reach, and one they leave from.
struct Loopback {
  int receiver = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int sender = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  std::uint16_t port = 0;

  Loopback() {
    REQUIRE(receiver >= 0);
    REQUIRE(sender >= 0);
    const int big = 4 << 20;
    setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    sockaddr_storage sa{};
    socklen_t len = kLoopback.to_sockaddr(sa, 0);
    REQUIRE(bind(receiver, reinterpret_cast<sockaddr*>(&sa), len) == 0);
    REQUIRE(getsockname(receiver, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    port = ntohs(reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
  }
  ~Loopback() {
    close(receiver);
    close(sender);
  }
  // The next datagram, waiting at most 2 s; empty when none came.
  std::vector<std::uint8_t> receive() {
    pollfd p{receiver, POLLIN, 0};
    if (poll(&p, 1, 2000) != 1) return {};
    std::vector<std::uint8_t> buf(256);
    const ssize_t n = recv(receiver, buf.data(), buf.size(), 0);
    buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return buf;
  }
};

std::vector<std::uint8_t> datagram_for(std::uint32_t n) {
  return {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16), static_cast<std::uint8_t>(n >> 8),
          static_cast<std::uint8_t>(n), 0x2a};
}

// Pushes until the queue takes it (the thread is sending meanwhile).
std::uint64_t push(SendQueue& q, const IpAddress& dst, const std::vector<std::uint8_t>& d, std::uint64_t token) {
  for (;;) {
    if (const std::uint64_t ticket = q.push(dst, d, token)) return ticket;
    std::this_thread::yield();
  }
}

bool readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, ms) == 1;
}

}  // namespace

TEST_CASE("SendQueue: every datagram goes out once, in order, in batches", "[send_queue]") {
  Loopback lo;
  SendQueue q(lo.sender, -1, 64, lo.port);
  constexpr std::uint32_t kCount = 3000;
  std::uint64_t last_ticket = 0;
  // In chunks that the receiving socket's buffer holds, whatever its size.
  for (std::uint32_t chunk = 0; chunk < kCount; chunk += 100) {
    for (std::uint32_t n = chunk; n < chunk + 100; ++n) {
      const std::uint64_t ticket = push(q, kLoopback, datagram_for(n), n);
      CHECK(ticket == last_ticket + 1);
      last_ticket = ticket;
    }
    for (std::uint32_t n = chunk; n < chunk + 100; ++n) {
      INFO("datagram " << n);
      REQUIRE(lo.receive() == datagram_for(n));
    }
    // Now and then the ring runs dry and the thread, its naps over, sleeps:
    // the next push must wake it (the next chunk arrives).
    if (chunk % 1000 == 900 && chunk + 100 < kCount) {
      for (int i = 0; i < 2000 && !q.asleep(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      CHECK(q.asleep());
    }
  }
  CHECK(q.sent() == kCount);
  CHECK_FALSE(q.waiting(last_ticket));
  CHECK(q.batches() >= kCount / SendQueue::kMaxBatch);
  CHECK(q.batches() <= kCount);
  CHECK_FALSE(readable(q.event_fd(), 0));
  CHECK(q.take_failures().empty());
}

TEST_CASE("SendQueue: a datagram too large for a slot is refused, for the caller to send", "[send_queue]") {
  Loopback lo;
  SendQueue q(lo.sender, -1, 64, lo.port);
  const std::vector<std::uint8_t> big(SendQueue::kMaxDatagram + 1, 0x2a);
  CHECK(q.push(kLoopback, big, 1) == 0);
  const std::vector<std::uint8_t> largest(SendQueue::kMaxDatagram, 0x2a);
  CHECK(q.push(kLoopback, largest, 2) == 1);
  CHECK(lo.receive() == largest);
}

TEST_CASE("SendQueue: a refused datagram comes back with its token; the rest of its batch goes", "[send_queue]") {
  Loopback lo;
  SendQueue q(lo.sender, -1, 256, lo.port);
  // Broadcast without SO_BROADCAST: the kernel refuses it (EACCES). No IPv6
  // socket: an IPv6 datagram cannot go (EAFNOSUPPORT).
  const IpAddress broadcast = *IpAddress::parse("255.255.255.255");
  const IpAddress v6 = *IpAddress::parse("::1");
  std::vector<std::uint64_t> refused;
  for (std::uint32_t n = 0; n < 100; ++n) {
    if (n % 25 == 7) {
      push(q, broadcast, datagram_for(n), 1000 + n);
      refused.push_back(1000 + n);
    } else if (n % 25 == 15) {
      push(q, v6, datagram_for(n), 1000 + n);
      refused.push_back(1000 + n);
    } else {
      push(q, kLoopback, datagram_for(n), 1000 + n);
    }
  }
  for (std::uint32_t n = 0; n < 100; ++n) {
    if (n % 25 == 7 || n % 25 == 15) continue;
    INFO("datagram " << n);
    REQUIRE(lo.receive() == datagram_for(n));
  }
  std::vector<SendQueue::Failure> failures;
  for (int i = 0; i < 100 && failures.size() < refused.size(); ++i) {
    if (!readable(q.event_fd(), 20)) continue;
    for (const auto& f : q.take_failures()) failures.push_back(f);
  }
  REQUIRE(failures.size() == refused.size());
  for (std::size_t k = 0; k < failures.size(); ++k) {
    INFO("failure " << k);
    CHECK(failures[k].token == refused[k]);
    CHECK(failures[k].error == (failures[k].dst.is_v6() ? EAFNOSUPPORT : EACCES));
  }
  CHECK(q.sent() == 100 - refused.size());
}
