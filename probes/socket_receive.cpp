#include "socket_receive.hpp"

#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
// After <time.h>: scm_timestamping holds struct timespec.
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

namespace outpost {
namespace {

struct Read {
  std::optional<WallTime> stamp;
  int hop_limit = -1;
  IpAddress dst;  // IPV6_PKTINFO
};

Read read_control(msghdr& msg) {
  Read r;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    const std::size_t len = c->cmsg_len - CMSG_LEN(0);
    if (const auto stamp = software_stamp(*c)) {
      r.stamp = stamp;
    } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_HOPLIMIT && len >= sizeof(int)) {
      std::memcpy(&r.hop_limit, CMSG_DATA(c), sizeof(int));
    } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_PKTINFO && len >= sizeof(in6_pktinfo)) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      r.dst = IpAddress::v6_bytes(info.ipi6_addr.s6_addr);
    }
  }
  return r;
}

}  // namespace

std::optional<WallTime> software_stamp(const cmsghdr& c) {
  if (c.cmsg_level != SOL_SOCKET || c.cmsg_type != SCM_TIMESTAMPING || c.cmsg_len < CMSG_LEN(sizeof(scm_timestamping)))
    return std::nullopt;
  scm_timestamping ts;
  std::memcpy(&ts, CMSG_DATA(&c), sizeof ts);
  if (!ts.ts[0].tv_sec && !ts.ts[0].tv_nsec) return std::nullopt;
  return WallTime(std::chrono::seconds(ts.ts[0].tv_sec) + std::chrono::nanoseconds(ts.ts[0].tv_nsec));
}

namespace {

// A UDP socket on loopback for datagrams to itself, never closed: it reports
// the kernel's receive stamps from the start, and asks for them once
// keep_kernel_timestamps_on() does. fd -1 where there is no loopback.
struct SelfSocket {
  int fd = -1;
  sockaddr_in self{};
};

const SelfSocket& self_socket() {
  static const SelfSocket socket_to_self = [] {
    SelfSocket s;
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return s;
    // Reporting alone (no SOF_TIMESTAMPING_RX_SOFTWARE, no
    // SOF_TIMESTAMPING_OPT_RX_FILTER): a datagram comes with the stamp the
    // kernel gave it on the way in, which it does while any socket asks.
    const int report = SOF_TIMESTAMPING_SOFTWARE;
    // A datagram to itself is queued before sendto() returns, but for the
    // kernel putting its receive work off: a short wait, never a hang.
    const timeval wait{0, 2000};
    sockaddr_in self{};
    self.sin_family = AF_INET;
    self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof self;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &report, sizeof report) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait) != 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&self), len) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len) != 0) {
      close(fd);
      return s;
    }
    s.fd = fd;
    s.self = self;
    return s;
  }();
  return socket_to_self;
}

// Sends a byte to itself and reads one back: whether it came stamped.
bool comes_back_stamped(const SelfSocket& s) {
  char byte = 0;
  if (sendto(s.fd, &byte, 1, 0, reinterpret_cast<const sockaddr*>(&s.self), sizeof s.self) != 1) return false;
  char control[256];
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  if (recvmsg(s.fd, &msg, 0) != 1) return false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (software_stamp(*c)) return true;
  return false;
}

}  // namespace

bool kernel_timestamps_already_on() {
  const SelfSocket& s = self_socket();
  return s.fd >= 0 && comes_back_stamped(s);
}

bool keep_kernel_timestamps_on() {
  static const bool on = []() -> bool {
    const int stamping = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    const SelfSocket& s = self_socket();
    if (s.fd < 0) {
      // No loopback to see the switch on: a socket asks all the same, for
      // the process's life, and stamps come when they come.
      const int holder = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (holder >= 0) setsockopt(holder, SOL_SOCKET, SO_TIMESTAMPING, &stamping, sizeof stamping);
      return false;
    }
    if (setsockopt(s.fd, SOL_SOCKET, SO_TIMESTAMPING, &stamping, sizeof stamping) != 0) return false;
    // The kernel switches stamps on a moment later (a deferred work item):
    // wait, at most 0.2 s once per process, until a datagram to ourselves on
    // loopback comes stamped. The wait is by the clock, with a pause between
    // tries: an unstamped datagram comes back at once, so a count of tries
    // alone can run out well before the kernel has caught up.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    for (bool first = true; first || std::chrono::steady_clock::now() < deadline; first = false) {
      if (!first) {
        const timespec pause{0, 200'000};
        nanosleep(&pause, nullptr);
      }
      if (comes_back_stamped(s)) return true;
    }
    return false;
  }();
  return on;
}

bool ask_send_stamps(int raw_fd, bool on) {
  const int flags = on ? SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE : 0;
  return setsockopt(raw_fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) == 0;
}

namespace {

// A raw socket of `protocol` that stamps what it receives, bound to
// `interface` when one is given, with the kernel filter `filter` when one is
// given (and nothing it let in before the filter was on); -1 with *error.
int open_receiver(bool v6, int protocol, const char* name, std::span<const sock_filter> filter,
                  const std::string& interface, std::string* error) {
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) {
    *error = std::string(name) + " socket: " + std::strerror(errno);
    return -1;
  }
  const int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  const int on = 1;
  bool ok = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) == 0;
  if (v6)
    ok = ok && setsockopt(fd, SOL_IPV6, IPV6_RECVPKTINFO, &on, sizeof on) == 0 &&
         setsockopt(fd, SOL_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on) == 0;
  if (ok && !interface.empty())
    ok = setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, interface.c_str(), interface.size()) == 0;
  if (ok && !filter.empty()) {
    const sock_fprog program{static_cast<unsigned short>(filter.size()), const_cast<sock_filter*>(filter.data())};
    ok = setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) == 0;
    // What came in between the socket and its filter: nothing of ours (no
    // probe of this protocol has gone yet), maybe the host's own traffic.
    // Bounded: what the filter lets in (another outpost's answers) may keep
    // coming, and is counted and ignored like any stranger's.
    std::array<std::uint8_t, 64> discard;
    for (int n = 0; ok && n < 4096 && recv(fd, discard.data(), discard.size(), MSG_DONTWAIT | MSG_TRUNC) >= 0; ++n) {
    }
  }
  if (!ok) {
    *error = std::string(name) + " socket options: " + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int open_icmp_receiver(bool v6, const std::string& interface, std::string* error) {
  return open_receiver(v6, v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}, v6 ? "ICMPv6" : "ICMP", {}, interface,
                       error);
}

int open_tcp_receiver(bool v6, std::uint16_t first_port, const std::string& interface, std::string* error) {
  // The kernel's filter (classic BPF) lets in a segment whose destination
  // port is first_port or above. An IPv4 raw socket's filter sees the IP
  // header first (its length in the low nibble of byte 0: the BPF_MSH load);
  // an IPv6 one's sees the TCP header first.
  const std::array<sock_filter, 5> v4{{
      {BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0},
      {BPF_LD | BPF_H | BPF_IND, 0, 0, 2},
      {BPF_JMP | BPF_JGE | BPF_K, 0, 1, first_port},
      {BPF_RET | BPF_K, 0, 0, 0xffff},
      {BPF_RET | BPF_K, 0, 0, 0},
  }};
  const std::array<sock_filter, 4> v6_filter{{
      {BPF_LD | BPF_H | BPF_ABS, 0, 0, 2},
      {BPF_JMP | BPF_JGE | BPF_K, 0, 1, first_port},
      {BPF_RET | BPF_K, 0, 0, 0xffff},
      {BPF_RET | BPF_K, 0, 0, 0},
  }};
  return v6 ? open_receiver(true, IPPROTO_TCP, "TCP (IPv6)", v6_filter, interface, error)
            : open_receiver(false, IPPROTO_TCP, "TCP", v4, interface, error);
}

int read_receiver(int fd, bool v6, std::uint8_t protocol, int max, const DatagramHandler& handler) {
  // IPv4: the whole datagram. IPv6: the message (ICMPv6, TCP), after the
  // room for the header put back in front.
  std::array<std::uint8_t, 2048> buf;
  const std::size_t room = v6 ? 40 : 0;
  int n = 0;
  for (; n < max; ++n) {
    alignas(cmsghdr) std::array<std::uint8_t, 256> control;
    sockaddr_storage from{};
    iovec iov{buf.data() + room, buf.size() - room};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t got = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
    if (got < 0) break;  // drained (or an error: the next readiness tries again)
    const Read r = read_control(msg);
    // Cut to what was read (MSG_TRUNC gives the datagram's whole length).
    const std::size_t size = std::min(static_cast<std::size_t>(got), buf.size() - room);
    if (v6) {
      const auto src = IpAddress::from_sockaddr(from);
      if (!src || !r.dst) continue;
      write_ipv6_header(buf, size, protocol, r.hop_limit, *src, r.dst);
    }
    handler(buf.data(), room + size, r.stamp);
  }
  return n;
}

int read_send_stamps(int raw_fd, int max, const DatagramHandler& handler) {
  std::array<std::uint8_t, 2048> buf;
  int n = 0;
  for (; n < max; ++n) {
    alignas(cmsghdr) std::array<std::uint8_t, 256> control;
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t got = recvmsg(raw_fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (got < 0) break;
    const Read r = read_control(msg);
    if (!r.stamp || (msg.msg_flags & MSG_TRUNC)) continue;
    const std::span<const std::uint8_t> looped(buf.data(), static_cast<std::size_t>(got));
    if (const auto at = looped_ip_offset(looped)) handler(looped.data() + *at, looped.size() - *at, r.stamp);
  }
  return n;
}

std::optional<std::size_t> looped_ip_offset(std::span<const std::uint8_t> looped) {
  auto be16 = [&](std::size_t at) { return static_cast<std::size_t>(looped[at] << 8 | looped[at + 1]); };
  // An IP header at `at` whose own length ends where the datagram does.
  auto ip_at = [&](std::size_t at) {
    if (looped.size() < at + 20) return false;
    const std::uint8_t version = looped[at] >> 4;
    if (version == 4) return (looped[at] & 0x0f) >= 5 && at + be16(at + 2) == looped.size();
    return version == 6 && looped.size() >= at + 40 && at + 40 + be16(at + 4) == looped.size();
  };
  auto ip_type = [](std::size_t t) { return t == 0x0800 || t == 0x86DD; };
  // Ethernet, then with one VLAN tag; then none (a tunnel, loopback's own
  // zeroed Ethernet header aside).
  if (looped.size() >= 14 && ip_type(be16(12)) && ip_at(14)) return 14;
  if (looped.size() >= 18 && (be16(12) == 0x8100 || be16(12) == 0x88A8) && ip_type(be16(16)) && ip_at(18)) return 18;
  if (ip_at(0)) return 0;
  return std::nullopt;
}

void write_ipv6_header(std::span<std::uint8_t> out, std::size_t payload, std::uint8_t next_header, int hop_limit,
                       const IpAddress& src, const IpAddress& dst) {
  out[0] = 0x60;
  out[1] = out[2] = out[3] = 0;
  out[4] = static_cast<std::uint8_t>(payload >> 8);
  out[5] = static_cast<std::uint8_t>(payload);
  out[6] = next_header;
  out[7] = static_cast<std::uint8_t>(hop_limit < 0 ? 0 : hop_limit);
  std::memcpy(out.data() + 8, src.bytes(), 16);
  std::memcpy(out.data() + 24, dst.bytes(), 16);
}

}  // namespace outpost
