#include "tcp_connect.hpp"

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "packet_decode.hpp"

namespace outpost {
namespace {

std::uint16_t port_of(const sockaddr_storage& sa) {
  if (sa.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(sa).sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in&>(sa).sin_port);
}

}  // namespace

ProbeStatus connect_status(int err) {
  switch (err) {
    case 0: return ProbeStatus::reply;
    case ECONNREFUSED: return ProbeStatus::refused;
    case EHOSTUNREACH:
    case ENETUNREACH: return ProbeStatus::unreachable;
    case ETIMEDOUT: return ProbeStatus::timeout;
    default: return ProbeStatus::error;
  }
}

TcpConnectProbe::TcpConnectProbe(IpAddress target, std::uint16_t port, Duration timeout)
    : port_(port), timeout_(timeout) {
  result_.target = target;
}

// A plain close(), no SO_LINGER 0: a connected socket ends with an orderly
// FIN exchange, so the server sees a client that hung up (no "connection
// reset" in its logs, nothing an IDS takes for a scan), and the TIME_WAIT is
// ours, the active closer's, not the target's. Linger 0 would spare that
// TIME_WAIT, but it only blocks reusing the same four-tuple: ephemeral ports
// are chosen per destination and the kernel caps TIME_WAIT sockets
// (tcp_max_tw_buckets), so probing never runs out of ports. (A server that
// already sent a banner gets an RST anyway: unread data, RFC 2525.) A connect
// still in progress is simply dropped, nothing sent.
TcpConnectProbe::~TcpConnectProbe() {
  if (fd_ >= 0) close(fd_);
}

void TcpConnectProbe::start(ProbeContext& ctx) {
  const IpAddress& target = result_.target;
  result_.sent = ctx.wall_now();
  fd_ = socket(target.is_v6() ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd_ < 0) return fail(std::string("socket: ") + std::strerror(errno));
  // ICMP errors about our SYN also go to the socket's error queue: who said
  // unreachable, and which ICMP type and code.
  const int on = 1;
  if (target.is_v6()) setsockopt(fd_, SOL_IPV6, IPV6_RECVERR, &on, sizeof on);
  else setsockopt(fd_, SOL_IP, IP_RECVERR, &on, sizeof on);
  sockaddr_storage sa;
  const socklen_t len = target.to_sockaddr(sa, port_);
  started_ = std::chrono::steady_clock::now();
  if (connect(fd_, reinterpret_cast<const sockaddr*>(&sa), len) == 0) {
    ctx.count_socket_send(true);
    return finish(0, true);
  }
  // Failed at once, before anything left (no route, no local address...).
  if (const int err = errno; err != EINPROGRESS) {
    ctx.count_socket_send(false);
    return finish(err, false);
  }
  ctx.count_socket_send(true);
  // The flow is ours (the kernel chose the local port): the engine counts
  // probes in flight by their flow keys. The capture never sees it (not a
  // tcp_syn port), so nothing is ever delivered to on_packet.
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &local_len) == 0)
    ctx.expect({FlowProto::tcp, target, port_of(local), port_});
  if (!ctx.watch(fd_, EPOLLOUT)) return fail("tcp_connect needs an event loop to watch its socket");
  ctx.arm_timeout(timeout_);
}

void TcpConnectProbe::on_ready(ProbeContext&, int fd, std::uint32_t events) {
  if (finished_ || fd != fd_) return;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == 0) {
    sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    if (getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) return;  // not connected yet
  }
  finish(err, true);
}

void TcpConnectProbe::on_timeout() {
  if (finished_) return;
  finished_ = true;
  result_.status = ProbeStatus::timeout;
}

void TcpConnectProbe::finish(int err, bool answered) {
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  finished_ = true;
  result_.status = connect_status(err);
  // An ICMP error about our SYN (the kernel turns them into errno values,
  // even port unreachable into ECONNREFUSED) is unreachable, as for tcp_syn.
  if (err != 0 && answered && read_icmp_error()) result_.status = ProbeStatus::unreachable;
  else if (result_.status == ProbeStatus::error || result_.status == ProbeStatus::unreachable)
    result_.error = std::string("connect: ") + std::strerror(err);
  if (!answered || result_.status == ProbeStatus::error || result_.status == ProbeStatus::timeout) return;
  // The RTT of a connection is the kernel's own: TCP_INFO's tcpi_rtt, read
  // right after connect, is the smoothed RTT after exactly one sample, the
  // SYN to SYN-ACK time the kernel measured (in microseconds). It is 0 when
  // the kernel took no sample (a retransmitted SYN, Karn's rule). Then, and
  // for a refusal or an ICMP error, the time connect() took on the steady clock.
  result_.rtt = std::chrono::duration_cast<Duration>(elapsed);
  if (result_.status == ProbeStatus::reply) {
    tcp_info info{};
    socklen_t len = sizeof info;
    if (getsockopt(fd_, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && info.tcpi_rtt > 0)
      result_.rtt = std::chrono::microseconds(info.tcpi_rtt);
  }
}

void TcpConnectProbe::fail(std::string error) {
  finished_ = true;
  result_.status = ProbeStatus::error;
  result_.error = std::move(error);
}

// The ICMP error the kernel queued for our SYN (IP_RECVERR), if any: fills
// who sent it and what it says.
bool TcpConnectProbe::read_icmp_error() {
  alignas(cmsghdr) char control[512];
  msghdr msg{};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  if (recvmsg(fd_, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    const bool v4 = c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR;
    const bool v6 = c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR;
    if (!(v4 || v6) || c->cmsg_len < CMSG_LEN(sizeof(sock_extended_err))) continue;
    sock_extended_err ee;
    std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
    if (ee.ee_origin != SO_EE_ORIGIN_ICMP && ee.ee_origin != SO_EE_ORIGIN_ICMP6) continue;
    // The offender's address follows the extended error (SO_EE_OFFENDER).
    sockaddr_storage offender{};
    const std::size_t data_len = c->cmsg_len - CMSG_LEN(0);
    std::memcpy(&offender, CMSG_DATA(c) + sizeof ee,
                std::min(data_len - sizeof ee, sizeof(sockaddr_in6)));
    result_.reply_from = IpAddress::from_sockaddr(offender).value_or(IpAddress{});
    result_.icmp_type = ee.ee_type;
    result_.icmp_code = ee.ee_code;
    result_.error = describe_icmp_error(static_cast<std::uint8_t>(ee.ee_origin == SO_EE_ORIGIN_ICMP ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6}),
                                        ee.ee_type, ee.ee_code);
    return true;
  }
  return false;
}

}  // namespace outpost
