// The packet ring that a command at the terminal reads its IPv4 answers
// from (answer_ring.hpp), and RawWire reading them through it, in a network
// namespace of its own (netns_child.hpp). Only its loopback; every packet
// stays inside it.

#include "answer_ring.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcap/dlt.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "clock.hpp"
#include "icmp_echo.hpp"
#include "netns_child.hpp"
#include "packet_decode.hpp"
#include "socket_receive.hpp"
#include "wire.hpp"

using outpost::IpAddress;
using Bytes = std::vector<std::uint8_t>;

namespace {

const IpAddress kLoopback4 = *IpAddress::parse("127.0.0.1");
const IpAddress kLoopback6 = *IpAddress::parse("::1");
constexpr std::uint16_t kFirst = 61000;

const IpAddress& loopback(bool v6) { return v6 ? kLoopback6 : kLoopback4; }

Bytes echo_request(std::uint16_t sequence, bool v6) {
  outpost::EchoRequest r;
  r.src = loopback(v6);
  r.dst = loopback(v6);
  r.ident = 0x1234;
  r.sequence = sequence;
  Bytes out(outpost::echo_request_size(r));
  outpost::forge_echo_request(r, out);
  return out;
}

bool send_raw(const Bytes& datagram, bool v6) {
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  sockaddr_storage sa{};
  const socklen_t len = loopback(v6).to_sockaddr(sa);
  const bool ok = fd >= 0 && sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&sa),
                                    len) == static_cast<ssize_t>(datagram.size());
  if (fd >= 0) close(fd);
  return ok;
}

// A TCP listener on loopback at `port` (0: the kernel's pick); its port, or 0.
std::uint16_t listen_at(int fd, std::uint16_t port, bool v6) {
  sockaddr_storage sa{};
  socklen_t len = loopback(v6).to_sockaddr(sa, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 || listen(fd, 4) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return 0;
  // The port is at the same place in sockaddr_in and sockaddr_in6.
  return ntohs(reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
}

bool connect_to(std::uint16_t port, bool v6) {
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage sa{};
  const socklen_t len = loopback(v6).to_sockaddr(sa, port);
  const bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), len) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

struct Seen {
  int echo_requests = 0, echo_replies = 0, udp = 0, tcp_below = 0, syn_above = 0, other = 0, handed = 0;
  bool stamps_in_time = true;
};

// Brings the namespace's loopback up; "" or why not.
std::string loopback_up(bool v6) {
  if (!outpost::test::run("ip link set lo up")) return "skip: ip cannot bring loopback up";
  if (v6 && !outpost::test::run("ip -6 addr show dev lo | grep -q ::1")) return "skip: no IPv6 on loopback";
  return "";
}

template <bool V6>
std::string ring_checks() {
  if (auto why = outpost::test::enter_namespace(); !why.empty()) return why;
  if (auto why = loopback_up(V6); !why.empty()) return why;
  const IpAddress& kLoopback = loopback(V6);
  const int family = V6 ? AF_INET6 : AF_INET;
  const int icmp = V6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
  const int request_type = V6 ? 128 : 8;
  outpost::AnswerRing ring;
  std::string error;
  if (!ring.open("", V6, kFirst, 32, &error)) return "skip: " + error;
  if (ring.frames() != 32) return "a ring of " + std::to_string(ring.frames()) + " frames, not 32";

  // One round: an echo request, a UDP datagram, TCP to a port below the
  // first and to one above; what the ring hands on, in *seen; "" or why not.
  int round_number = 0;
  auto round = [&](Seen* seen, int* taken) -> std::string {
    const auto before = std::chrono::system_clock::now();
    const auto sequence = static_cast<std::uint16_t>(7 + round_number++);
    // An echo request to ourselves: loopback brings it in (the host sends
    // it: the ring skips that copy), then the kernel's reply.
    if (!send_raw(echo_request(sequence, V6), V6)) return "raw send failed";
    // A UDP datagram to a bound socket (no ICMP error comes back).
    const int udp = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_storage sa{};
    socklen_t len = kLoopback.to_sockaddr(sa, kFirst + 1);
    if (udp < 0 || bind(udp, reinterpret_cast<sockaddr*>(&sa), len) != 0) return "UDP bind failed";
    if (sendto(udp, "x", 1, 0, reinterpret_cast<sockaddr*>(&sa), len) != 1) return "UDP send failed";
    // TCP to a port at kFirst and above, and to one below.
    const int above = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int below = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const std::uint16_t port_above = listen_at(above, kFirst + 2, V6);
    const std::uint16_t port_below = listen_at(below, 0, V6);
    if (!port_above || !port_below) return "TCP listen failed";
    if (port_below >= kFirst) return "skip: the kernel's ephemeral ports reach " + std::to_string(port_below);
    if (!connect_to(port_below, V6) || !connect_to(port_above, V6)) return "TCP connect failed";

    auto handler = [&](const std::uint8_t* data, std::size_t size, std::optional<outpost::WallTime> stamp) {
      const auto after = std::chrono::system_clock::now();
      if (!stamp || *stamp < before || *stamp > after) seen->stamps_in_time = false;
      ++seen->handed;
      const auto p = outpost::decode_frame(DLT_RAW, data, size, nullptr);
      if (!p) {
        ++seen->other;
      } else if (p->l4.proto == icmp && p->l4.icmp_id == 0x1234 && p->l4.icmp_seq == sequence) {
        ++(p->l4.icmp_type == request_type ? seen->echo_requests : seen->echo_replies);
      } else if (p->l4.proto == IPPROTO_UDP) {
        ++seen->udp;
      } else if (p->l4.proto == IPPROTO_TCP && p->l4.dport < kFirst) {
        ++seen->tcp_below;
      } else if (p->l4.proto == IPPROTO_TCP) {
        seen->syn_above += p->l4.dport == port_above && (p->l4.tcp_flags & 0x12) == 0x02;
      } else {
        ++seen->other;
      }
    };
    pollfd p{ring.fd(), POLLIN, 0};
    for (int n = 0; poll(&p, 1, 200) == 1 && (n = ring.read(64, handler)) > 0;) *taken += n;
    close(udp), close(above), close(below);
    if (seen->echo_requests != 1) return "echo requests seen: " + std::to_string(seen->echo_requests) + " (not 1)";
    if (seen->echo_replies != 1) return "echo replies seen: " + std::to_string(seen->echo_replies) + " (not 1)";
    if (seen->udp) return "a UDP datagram passed the filter";
    if (seen->tcp_below) return "a TCP segment to a port below the first passed the filter";
    if (seen->syn_above != 1) return "SYNs to the port above: " + std::to_string(seen->syn_above) + " (not 1)";
    if (seen->other) return "frames that are none of these: " + std::to_string(seen->other);
    if (!seen->stamps_in_time) return "a frame stamped outside the time it could have come";
    if (ring.dropped() != 0) return "frames dropped";
    return "";
  };

  // First round: no kernel filter yet; the UDP datagram and the segments
  // to the port below come into the ring, read() keeps them back and
  // attaches the filter at the first of them.
  if (ring.filtering()) return "the kernel filter is attached before anything came in";
  Seen first;
  int taken = 0;
  if (auto why = round(&first, &taken); !why.empty()) return "first round: " + why;
  if (!ring.filtering()) return "no kernel filter after unwanted frames";
  const std::uint64_t unwanted = ring.unwanted();
  if (unwanted == 0 || static_cast<int>(unwanted) + first.handed != taken)
    return "first round: " + std::to_string(taken) + " frames taken, " + std::to_string(first.handed) +
           " handed on, " + std::to_string(unwanted) + " unwanted";
  // Second round: the kernel filter keeps them out of the ring.
  Seen second;
  taken = 0;
  if (auto why = round(&second, &taken); !why.empty()) return "second round: " + why;
  if (ring.unwanted() != unwanted)
    return "second round: " + std::to_string(ring.unwanted() - unwanted) + " unwanted frames passed the kernel filter";
  if (taken != second.handed)
    return "second round: " + std::to_string(taken) + " frames taken, " + std::to_string(second.handed) + " handed on";
  return "ok";
}

// The ring's size: whole blocks, from one to kMaxBlocks; when it is full,
// the kernel drops what comes and counts it.
std::string size_checks() {
  if (auto why = outpost::test::enter_namespace(); !why.empty()) return why;
  if (auto why = loopback_up(false); !why.empty()) return why;
  constexpr unsigned kPer = outpost::AnswerRing::kFramesPerBlock;
  for (const auto& [asked, held] : std::vector<std::pair<unsigned, unsigned>>{
           {0, kPer}, {1, kPer}, {kPer + 1, 2 * kPer}, {100000, kPer * outpost::AnswerRing::kMaxBlocks}}) {
    outpost::AnswerRing ring;
    std::string error;
    if (!ring.open("", false, 0, asked, &error)) return "skip: " + error;
    if (ring.frames() != held)
      return std::to_string(asked) + " frames asked: " + std::to_string(ring.frames()) + ", not " + std::to_string(held);
  }
  outpost::AnswerRing ring;
  std::string error;
  if (!ring.open("", false, 0, kPer, &error)) return "skip: " + error;
  // Each echo request comes in once, and its reply: 2 frames each.
  constexpr int kRequests = 10;
  for (int i = 0; i < kRequests; ++i)
    if (!send_raw(echo_request(static_cast<std::uint16_t>(100 + i), false), false)) return "raw send failed";
  int taken = 0;
  pollfd p{ring.fd(), POLLIN, 0};
  while (poll(&p, 1, 200) == 1) {
    const int n = ring.read(64, [](const std::uint8_t*, std::size_t, std::optional<outpost::WallTime>) {});
    if (n == 0) break;
    taken += n;
  }
  if (taken != static_cast<int>(kPer)) return "frames read from a full ring: " + std::to_string(taken);
  if (ring.dropped() != 2 * kRequests - kPer) return "dropped: " + std::to_string(ring.dropped());
  return "ok";
}

// screen(): frames that only wait in the ring; the filter goes on at the
// first unwanted one, and nothing is taken.
std::string screen_checks() {
  if (auto why = outpost::test::enter_namespace(); !why.empty()) return why;
  if (auto why = loopback_up(false); !why.empty()) return why;
  outpost::AnswerRing ring;
  std::string error;
  if (!ring.open("", false, kFirst, 32, &error)) return "skip: " + error;
  auto wait_for_frames = [&] {
    pollfd p{ring.fd(), POLLIN, 0};
    return poll(&p, 1, 1000) == 1;
  };
  ring.screen();  // an empty ring
  if (ring.filtering()) return "the filter went on for an empty ring";
  // An echo request and its reply: wanted.
  if (!send_raw(echo_request(21, false), false)) return "raw send failed";
  if (!wait_for_frames()) return "the echo exchange never came into the ring";
  ring.screen();
  if (ring.filtering()) return "the filter went on for wanted frames";
  // Then a UDP datagram, behind them.
  const int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_storage sa{};
  const socklen_t len = kLoopback4.to_sockaddr(sa, kFirst + 3);
  if (udp < 0 || bind(udp, reinterpret_cast<sockaddr*>(&sa), len) != 0) return "UDP bind failed";
  if (sendto(udp, "x", 1, 0, reinterpret_cast<sockaddr*>(&sa), len) != 1) return "UDP send failed";
  close(udp);
  ring.screen();
  if (!ring.filtering()) return "no filter with a UDP datagram waiting in the ring";
  if (ring.unwanted() != 0) return "screen() took a frame";
  int handed = 0, taken = 0;
  for (int n = 0; (n = ring.read(64, [&](const std::uint8_t*, std::size_t, std::optional<outpost::WallTime>) {
                    ++handed;
                  })) > 0;)
    taken += n;
  if (taken != 3 || handed != 2 || ring.unwanted() != 1)
    return "then read: " + std::to_string(taken) + " frames taken, " + std::to_string(handed) + " handed on, " +
           std::to_string(ring.unwanted()) + " unwanted (expected 3, 2, 1)";
  return "ok";
}

// RawWire with answers_on_ring: the echo reply to its own echo request comes
// through the descriptor it handed on, with the ring's stamp. StampsOn:
// while receive stamps are on (held here by the process's own stamping
// socket, keep_kernel_timestamps_on(), as another program's may be), that
// descriptor is a raw ICMP socket's (no ring), its answers stamped by the
// kernel all the same; otherwise the ring is asked for, whatever other
// programs hold.
template <bool V6, bool StampsOn = false>
std::string wire_checks() {
  if (auto why = outpost::test::enter_namespace(); !why.empty()) return why;
  if (auto why = loopback_up(V6); !why.empty()) return why;
  if (StampsOn && !outpost::keep_kernel_timestamps_on()) return "receive stamps never came on";
  const IpAddress& kLoopback = loopback(V6);
  outpost::SystemClock clock;
  outpost::RawWireOptions options;
  options.receive_on_sockets = true;
  options.answers_on_ring = true;
  options.sockets_when_stamps_on = StampsOn;
  options.watch_routes = false;
  options.ipv6 = V6;
  outpost::RawWire wire(clock, options, outpost::FilterParams{0x1234});
  std::vector<int> watched;
  wire.set_fd_watcher([&](int fd) { watched.push_back(fd); });
  std::string error;
  if (!wire.open(&error)) return "skip: " + error;
  const std::size_t raw_sockets = watched.size();  // the raw socket, for its send stamps
  if (wire.prepare(kLoopback, &error) != kLoopback) return "prepare: " + error;
  if (watched.size() != raw_sockets + 1) return "prepare handed on " + std::to_string(watched.size() - raw_sockets) +
                                                " descriptors, not one receiver's";
  int domain = -1;
  socklen_t domain_len = sizeof domain;
  if (getsockopt(watched.back(), SOL_SOCKET, SO_DOMAIN, &domain, &domain_len) != 0) return "SO_DOMAIN failed";
  const int expected = StampsOn ? (V6 ? AF_INET6 : AF_INET) : AF_PACKET;
  if (domain != expected)
    return "the receiver's domain is " + std::to_string(domain) + ", not " + std::to_string(expected) +
           (StampsOn ? " (a raw socket)" : " (the ring)");
  int replies = 0, unstamped_sends = 0;
  wire.set_frame_handler([&](int link_type, const std::uint8_t* data, std::size_t size, outpost::WallTime) {
    const auto p = outpost::decode_frame(link_type, data, size, nullptr);
    if (p && p->l4.proto == (V6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}) && p->l4.icmp_type == (V6 ? 129 : 0) &&
        p->l4.icmp_seq == 9)
      ++replies;
    if (wire.frame_from_user_clock()) ++unstamped_sends;
  });
  if (!wire.send(kLoopback, echo_request(9, V6), &error)) return "send: " + error;
  pollfd p{watched.back(), POLLIN, 0};
  if (poll(&p, 1, 2000) != 1) return "the ring's descriptor never became readable";
  wire.on_readable(watched.back());
  if (replies != 1) return "replies handed on: " + std::to_string(replies) + " (not 1)";
  if (unstamped_sends) return "a frame timed by the user-space clock";
  return "ok";
}

}  // namespace

TEST_CASE("answer ring: ICMP and TCP to the first port and above, stamped, each once", "[answer_ring]") {
  outpost::test::run_in_child(ring_checks<false>, "answer ring test");
}

TEST_CASE("answer ring, IPv6: ICMPv6 and TCP to the first port and above, stamped, each once", "[answer_ring]") {
  outpost::test::run_in_child(ring_checks<true>, "IPv6 answer ring test");
}

TEST_CASE("raw wire with answers_on_ring: the answer comes from the ring", "[answer_ring]") {
  outpost::test::run_in_child(wire_checks<false>, "answer ring wire test");
}

TEST_CASE("raw wire with answers_on_ring, IPv6: the answer comes from the ring", "[answer_ring]") {
  outpost::test::run_in_child(wire_checks<true>, "IPv6 answer ring wire test");
}

TEST_CASE("raw wire with answers_on_ring while receive stamps are on: the answer comes from a raw socket, stamped",
          "[answer_ring]") {
  outpost::test::run_in_child(wire_checks<false, true>, "answer ring wire test, stamps on");
}

TEST_CASE("raw wire with answers_on_ring while receive stamps are on, IPv6: from a raw socket, stamped",
          "[answer_ring]") {
  outpost::test::run_in_child(wire_checks<true, true>, "IPv6 answer ring wire test, stamps on");
}

TEST_CASE("answer ring: screen() attaches the filter for an unwanted frame waiting, and takes nothing",
          "[answer_ring]") {
  outpost::test::run_in_child(screen_checks, "answer ring screen test");
}

TEST_CASE("answer ring: whole blocks, and what a full ring drops is counted", "[answer_ring]") {
  outpost::test::run_in_child(size_checks, "answer ring size test");
}

// What read() keeps back until the kernel filter is attached: the same as
// that filter (the two rounds of the ring tests above check the filter).
TEST_CASE("answer ring: wanted() takes what the kernel filter takes", "[answer_ring]") {
  using outpost::AnswerRing;
  auto v4 = [](std::uint8_t proto, std::uint16_t fragment, std::uint8_t ihl, std::uint16_t dport) {
    Bytes d(std::size_t{ihl} * 4 + 20, 0);
    d[0] = static_cast<std::uint8_t>(0x40 | ihl);
    d[6] = static_cast<std::uint8_t>(fragment >> 8), d[7] = static_cast<std::uint8_t>(fragment);
    d[9] = proto;
    d[std::size_t{ihl} * 4 + 2] = static_cast<std::uint8_t>(dport >> 8);
    d[std::size_t{ihl} * 4 + 3] = static_cast<std::uint8_t>(dport);
    return d;
  };
  auto v6 = [](std::uint8_t next, std::uint8_t inner, std::uint16_t at42) {
    Bytes d(60, 0);
    d[0] = 0x60;
    d[6] = next;
    d[40] = inner;
    d[42] = static_cast<std::uint8_t>(at42 >> 8), d[43] = static_cast<std::uint8_t>(at42);
    return d;
  };
  auto wanted = [](const Bytes& d, bool is6, std::uint16_t first, std::size_t size = 0) {
    return AnswerRing::wanted(d.data(), size ? size : d.size(), is6, first);
  };
  // IPv4: ICMP, whole or a first fragment; never a later fragment.
  CHECK(wanted(v4(IPPROTO_ICMP, 0, 5, 0), false, kFirst));
  CHECK(wanted(v4(IPPROTO_ICMP, 0x2000, 5, 0), false, kFirst));  // more fragments, offset 0
  CHECK_FALSE(wanted(v4(IPPROTO_ICMP, 0x0001, 5, 0), false, kFirst));
  CHECK_FALSE(wanted(v4(IPPROTO_ICMP, 0, 5, 0), false, kFirst, 9));  // too short to tell
  // TCP from the first port up, past IP options too; none with no first port.
  CHECK(wanted(v4(IPPROTO_TCP, 0, 5, kFirst), false, kFirst));
  CHECK(wanted(v4(IPPROTO_TCP, 0, 7, 65535), false, kFirst));
  CHECK_FALSE(wanted(v4(IPPROTO_TCP, 0, 5, kFirst - 1), false, kFirst));
  CHECK_FALSE(wanted(v4(IPPROTO_TCP, 0, 7, kFirst), false, kFirst, 7 * 4 + 3));
  CHECK_FALSE(wanted(v4(IPPROTO_TCP, 0, 5, kFirst), false, 0));
  CHECK_FALSE(wanted(v4(IPPROTO_UDP, 0, 5, kFirst), false, kFirst));
  // IPv6: ICMPv6, also behind a first fragment's header; TCP from the first port up.
  CHECK(wanted(v6(IPPROTO_ICMPV6, 0, 0), true, kFirst));
  CHECK(wanted(v6(IPPROTO_FRAGMENT, IPPROTO_ICMPV6, 0x0001), true, kFirst));  // offset 0, more to come
  CHECK_FALSE(wanted(v6(IPPROTO_FRAGMENT, IPPROTO_ICMPV6, 0x0008), true, kFirst));
  CHECK_FALSE(wanted(v6(IPPROTO_FRAGMENT, IPPROTO_UDP, 0), true, kFirst));
  CHECK(wanted(v6(IPPROTO_TCP, 0, kFirst), true, kFirst));
  CHECK_FALSE(wanted(v6(IPPROTO_TCP, 0, kFirst - 1), true, kFirst));
  CHECK_FALSE(wanted(v6(IPPROTO_TCP, 0, kFirst), true, 0));
  CHECK_FALSE(wanted(v6(IPPROTO_UDP, 0, 0), true, kFirst));
  CHECK_FALSE(wanted(v6(IPPROTO_ICMPV6, 0, 0), true, kFirst, 39));
}
