// Receiving without a capture (socket_receive.hpp): finding the datagram in
// what the error queue loops back with a send stamp, and the IPv6 header put
// back in front of an ICMPv6 message, both decoded as the engine decodes a
// capture's frames. The sockets themselves need CAP_NET_RAW: the lab tests
// (test_trace, test_ipv6_lab, test_agent_rtt_vs_ping) run them.

#include "socket_receive.hpp"

#include <arpa/inet.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <pcap/dlt.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <vector>

#include "icmp_echo.hpp"
#include "packet_decode.hpp"

using outpost::IpAddress;
using Bytes = std::vector<std::uint8_t>;

namespace {

const IpAddress kUs = *IpAddress::parse("198.19.0.1");
const IpAddress kTarget = *IpAddress::parse("198.18.2.1");
const IpAddress kUs6 = *IpAddress::parse("2001:db8::1");
const IpAddress kTarget6 = *IpAddress::parse("2001:2:0:2::1");

Bytes echo_request(const IpAddress& src, const IpAddress& dst, std::size_t payload) {
  outpost::EchoRequest r;
  r.src = src;
  r.dst = dst;
  r.ident = 0x1234;
  r.sequence = 7;
  r.ttl = 5;
  r.payload_size = payload;
  Bytes out(outpost::echo_request_size(r));
  outpost::forge_echo_request(r, out);
  return out;
}

Bytes with_link(const Bytes& link, const Bytes& datagram) {
  Bytes out = link;
  out.insert(out.end(), datagram.begin(), datagram.end());
  return out;
}

const Bytes kEther4 = {0xce, 0x74, 0x39, 0x4d, 0xb3, 0x4f, 0xb6, 0xbd, 0x1d, 0x0b, 0x30, 0xf7, 0x08, 0x00};
const Bytes kEther6 = {0xce, 0x74, 0x39, 0x4d, 0xb3, 0x4f, 0xb6, 0xbd, 0x1d, 0x0b, 0x30, 0xf7, 0x86, 0xdd};
const Bytes kVlan4 = {0xce, 0x74, 0x39, 0x4d, 0xb3, 0x4f, 0xb6, 0xbd, 0x1d, 0x0b, 0x30, 0xf7, 0x81, 0x00, 0x00, 0x2a, 0x08, 0x00};

}  // namespace

TEST_CASE("looped_ip_offset: the datagram behind any link header, or none", "[socket_receive]") {
  for (std::size_t payload : {16u, 56u, 1000u}) {
    INFO("payload " << payload);
    const Bytes v4 = echo_request(kUs, kTarget, payload);
    const Bytes v6 = echo_request(kUs6, kTarget6, payload);
    CHECK(outpost::looped_ip_offset(with_link(kEther4, v4)) == std::optional<std::size_t>(14));
    CHECK(outpost::looped_ip_offset(with_link(kEther6, v6)) == std::optional<std::size_t>(14));
    CHECK(outpost::looped_ip_offset(with_link(kVlan4, v4)) == std::optional<std::size_t>(18));
    CHECK(outpost::looped_ip_offset(v4) == std::optional<std::size_t>(0));  // a tunnel: no link header
    CHECK(outpost::looped_ip_offset(v6) == std::optional<std::size_t>(0));

    // Decoded from there, it is our echo request, as from a capture.
    const Bytes looped = with_link(kEther4, v4);
    const auto at = *outpost::looped_ip_offset(looped);
    const auto packet = outpost::decode_frame(DLT_RAW, looped.data() + at, looped.size() - at, nullptr);
    REQUIRE(packet);
    CHECK(packet->ip.src == kUs);
    CHECK(packet->ip.dst == kTarget);
    CHECK(packet->l4.icmp_id == 0x1234);
    CHECK(packet->l4.icmp_seq == 7);
  }
  // A datagram cut short, or one with bytes after it, or no IP at all: none.
  const Bytes v4 = echo_request(kUs, kTarget, 56);
  Bytes cut = with_link(kEther4, v4);
  cut.pop_back();
  CHECK_FALSE(outpost::looped_ip_offset(cut));
  Bytes longer = with_link(kEther4, v4);
  longer.push_back(0);
  CHECK_FALSE(outpost::looped_ip_offset(longer));
  CHECK_FALSE(outpost::looped_ip_offset(Bytes(64, 0)));
  CHECK_FALSE(outpost::looped_ip_offset(Bytes{}));
  CHECK_FALSE(outpost::looped_ip_offset(Bytes(10, 0x45)));
}

TEST_CASE("write_ipv6_header: an ICMPv6 message decodes as the datagram that brought it", "[socket_receive]") {
  // What a raw ICMPv6 socket reads: the message alone (here, an echo request's).
  const Bytes whole = echo_request(kTarget6, kUs6, 56);
  Bytes buf(whole.size());
  std::copy(whole.begin() + 40, whole.end(), buf.begin() + 40);
  outpost::write_ipv6_header(buf, whole.size() - 40, IPPROTO_ICMPV6, 61, kTarget6, kUs6);
  const auto packet = outpost::decode_frame(DLT_RAW, buf.data(), buf.size(), nullptr);
  REQUIRE(packet);
  CHECK(packet->ip.src == kTarget6);
  CHECK(packet->ip.dst == kUs6);
  CHECK(packet->ip.ttl == 61);
  CHECK(packet->l4.icmp_id == 0x1234);
  CHECK(packet->l4.icmp_seq == 7);
  // The header is the one the forge wrote, but for the hop limit.
  Bytes expected(whole.begin(), whole.begin() + 40);
  expected[7] = 61;
  CHECK(Bytes(buf.begin(), buf.begin() + 40) == expected);
}

TEST_CASE("keep_kernel_timestamps_on: another socket's datagram comes stamped", "[socket_receive]") {
  // Only loopback: a socket of the test's own, asking for receive stamps,
  // sends a datagram to itself once the wait says stamps are on.
  REQUIRE(outpost::keep_kernel_timestamps_on());
  REQUIRE(outpost::keep_kernel_timestamps_on());  // idempotent: one holder, one wait
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  const int stamping = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  REQUIRE(setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &stamping, sizeof stamping) == 0);
  sockaddr_in self{};
  self.sin_family = AF_INET;
  self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof self;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&self), len) == 0);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len) == 0);
  char byte = 1;
  REQUIRE(sendto(fd, &byte, 1, 0, reinterpret_cast<sockaddr*>(&self), len) == 1);
  pollfd p{fd, POLLIN, 0};
  REQUIRE(poll(&p, 1, 2000) == 1);
  alignas(cmsghdr) char control[256];
  iovec iov{&byte, 1};
  msghdr msg{.msg_name = nullptr, .msg_namelen = 0, .msg_iov = &iov, .msg_iovlen = 1,
             .msg_control = control, .msg_controllen = sizeof control, .msg_flags = 0};
  REQUIRE(recvmsg(fd, &msg, 0) == 1);
  std::optional<outpost::WallTime> stamp;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (auto s = outpost::software_stamp(*c)) stamp = s;
  close(fd);
  REQUIRE(stamp.has_value());
  CHECK(stamp->time_since_epoch().count() > 0);
}

namespace {

// fd listening on `addr` at a port of [lo, hi] (the first free one; 0..0:
// the kernel's pick); the port, or 0 when none was free.
std::uint16_t listen_in(int fd, const IpAddress& addr, std::uint16_t lo, std::uint16_t hi) {
  for (unsigned port = lo; port <= hi; ++port) {
    sockaddr_storage sa{};
    socklen_t len = addr.to_sockaddr(sa, static_cast<std::uint16_t>(port));
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) continue;
    if (listen(fd, 4) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
    return ntohs(addr.is_v6() ? reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port
                              : reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
  }
  return 0;
}

// Connects to `port` on `addr` (blocking: loopback answers at once); whether it did.
bool connect_to(const IpAddress& addr, std::uint16_t port) {
  const int fd = socket(addr.is_v6() ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage sa{};
  const socklen_t len = addr.to_sockaddr(sa, port);
  const bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), len) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

}  // namespace

TEST_CASE("open_tcp_receiver: the segments to first_port and above, stamped, and none to a port below",
          "[socket_receive]") {
  if (geteuid() != 0) {
    WARN("skipped: a raw TCP socket needs CAP_NET_RAW (run as root)");
    return;
  }
  REQUIRE(outpost::keep_kernel_timestamps_on());
  constexpr std::uint16_t kFirst = 61000;
  for (const IpAddress& addr : {*IpAddress::parse("127.0.0.1"), *IpAddress::parse("::1")}) {
    const bool v6 = addr.is_v6();
    INFO(addr.to_string());
    std::string error;
    const int receiver = outpost::open_tcp_receiver(v6, kFirst, "", &error);
    if (v6 && receiver < 0) {
      WARN("skipped for IPv6: " << error);
      continue;
    }
    REQUIRE(receiver >= 0);
    // One listener at the receiver's ports, one below them (the kernel's
    // pick: its ephemeral ports end below 61000 unless set otherwise).
    const int above = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int below = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const std::uint16_t port_above = listen_in(above, addr, kFirst, kFirst + 999);
    const std::uint16_t port_below = listen_in(below, addr, 0, 0);
    REQUIRE(port_above >= kFirst);
    REQUIRE(port_below != 0);
    if (port_below >= kFirst) {
      WARN("skipped: the kernel's ephemeral ports reach " << port_below);
      close(above), close(below), close(receiver);
      continue;
    }
    REQUIRE(connect_to(addr, port_below));
    REQUIRE(connect_to(addr, port_above));

    // Every segment read is TCP to a port of ours, decoded with the header
    // put back (IPv6), and kernel-stamped; the SYN to port_above among them.
    std::vector<std::uint16_t> dports;
    bool syn = false, all_stamped = true;
    const auto handler = [&](const std::uint8_t* data, std::size_t size, std::optional<outpost::WallTime> stamp) {
      const auto packet = outpost::decode_frame(DLT_RAW, data, size, nullptr);
      REQUIRE(packet);
      CHECK(packet->ip.src == addr);
      CHECK(packet->l4.proto == IPPROTO_TCP);
      dports.push_back(packet->l4.dport);
      syn = syn || (packet->l4.dport == port_above && (packet->l4.tcp_flags & 0x12) == 0x02);
      all_stamped = all_stamped && stamp.has_value();
    };
    pollfd p{receiver, POLLIN, 0};
    while (poll(&p, 1, 200) == 1 && outpost::read_receiver(receiver, v6, IPPROTO_TCP, 64, handler) > 0) {
    }
    close(above), close(below), close(receiver);
    CHECK(syn);
    CHECK(all_stamped);
    REQUIRE_FALSE(dports.empty());
    for (const auto d : dports) CHECK(d >= kFirst);
  }
}
