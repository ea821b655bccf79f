#include "dns_sockets.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
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

#include "socket_receive.hpp"

namespace outpost {
namespace {

WallTime wall_from(const timespec& ts) {
  return WallTime(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

// What the control messages of one recvmsg carry.
struct Ancillary {
  std::optional<WallTime> stamp;  // SCM_TIMESTAMPING's software stamp, or SCM_TIMESTAMPNS
  int ttl = -1;
  std::optional<sock_extended_err> error;
  IpAddress offender;
};

Ancillary read_ancillary(msghdr& msg) {
  Ancillary a;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    const std::size_t data_len = c->cmsg_len - CMSG_LEN(0);
    const void* data = CMSG_DATA(c);
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING) {
      a.stamp = software_stamp(*c);
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS && data_len >= sizeof(timespec)) {
      timespec ts;
      std::memcpy(&ts, data, sizeof ts);
      a.stamp = wall_from(ts);
    } else if (((c->cmsg_level == SOL_IP && c->cmsg_type == IP_TTL) ||
                (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) &&
               data_len >= sizeof(int)) {
      std::memcpy(&a.ttl, data, sizeof(int));
    } else if (((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) &&
               data_len >= sizeof(sock_extended_err)) {
      a.error.emplace();
      std::memcpy(&*a.error, data, sizeof(sock_extended_err));
      sockaddr_storage offender{};
      std::memcpy(&offender, static_cast<const std::uint8_t*>(data) + sizeof(sock_extended_err),
                  std::min(data_len - sizeof(sock_extended_err), sizeof offender));
      if (auto addr = IpAddress::from_sockaddr(offender)) a.offender = *addr;
    }
  }
  return a;
}

bool is_unreachable_errno(int err) { return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH; }

std::uint16_t id_of(std::span<const std::uint8_t> bytes) {
  return static_cast<std::uint16_t>(bytes[0] << 8 | bytes[1]);
}

}  // namespace

DnsRead read_dns_message(int fd, bool errqueue, std::span<std::uint8_t> buf, DnsSocketMessage* out, int* err) {
  alignas(cmsghdr) std::array<std::uint8_t, 512> control;
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  const ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | (errqueue ? MSG_ERRQUEUE : 0));
  if (n < 0) {
    *err = errno;
    if (*err == EAGAIN || *err == EWOULDBLOCK || *err == EINTR) return DnsRead::drained;
    // An ICMP error's errno: the error queue holds the error itself and
    // decides (whoever sent it).
    if (!errqueue && is_unreachable_errno(*err)) return DnsRead::skipped;
    return DnsRead::failed;
  }
  *err = 0;
  const Ancillary a = read_ancillary(msg);
  *out = DnsSocketMessage{};
  out->stamp = a.stamp;
  out->ttl = a.ttl;
  const auto size = std::min(buf.size(), static_cast<std::size_t>(n));
  if (!errqueue) {
    out->kind = DnsSocketMessage::Kind::answer;
    out->payload = buf.first(size);
    return DnsRead::message;
  }
  if (!a.error) return DnsRead::skipped;
  const auto& ee = *a.error;
  if (ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING) {
    if (!a.stamp) return DnsRead::skipped;
    out->kind = DnsSocketMessage::Kind::sent_stamp;
    out->key = ee.ee_data;
    return DnsRead::message;
  }
  if (ee.ee_origin != SO_EE_ORIGIN_ICMP && ee.ee_origin != SO_EE_ORIGIN_ICMP6) return DnsRead::skipped;
  out->kind = DnsSocketMessage::Kind::icmp_error;
  out->payload = buf.first(size);
  out->icmp_proto = ee.ee_origin == SO_EE_ORIGIN_ICMP ? std::uint8_t{IPPROTO_ICMP} : std::uint8_t{IPPROTO_ICMPV6};
  out->icmp_type = ee.ee_type;
  out->icmp_code = ee.ee_code;
  out->offender = a.offender;
  return DnsRead::message;
}

bool set_dns_socket_options(int fd, bool v6, bool keyed) {
  const int on = 1;
  // ICMP errors (with who sent them) on the error queue; the answer's TTL.
  setsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_RECVERR : IP_RECVERR, &on, sizeof on);
  setsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_RECVHOPLIMIT : IP_RECVTTL, &on, sizeof on);
  // Software stamps, TX ones on the error queue without a copy of the packet.
  const int stamping = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
                       SOF_TIMESTAMPING_OPT_TSONLY | (keyed ? SOF_TIMESTAMPING_OPT_ID : 0);
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &stamping, sizeof stamping) == 0) return true;
  // Where the kernel refuses, RX stamps only: the send time is then read in
  // user space, and the record says so (rtt_clock).
  if (!keyed) setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  return false;
}

DnsSockets::DnsSockets(const Clock& clock, Watch watch, Unwatch unwatch, Deliver deliver)
    : clock_(clock), watch_(std::move(watch)), unwatch_(std::move(unwatch)), deliver_(std::move(deliver)) {}

// The event loop may be gone already (the engine outlives it): closing a
// socket takes it out of any epoll set.
DnsSockets::~DnsSockets() {
  for (auto& [serial, s] : sockets_) ::close(s->fd);
}

DnsSockets::Socket* DnsSockets::find(std::uint64_t serial) const {
  const auto it = sockets_.find(serial);
  return it == sockets_.end() ? nullptr : it->second.get();
}

bool DnsSockets::usable(const Socket& s, SteadyTime now) const {
  return !s.retired && s.queries < kDnsQueriesPerSocket && now - s.opened < kDnsSocketLifetime;
}

void DnsSockets::retire(Socket& s) {
  if (s.retired) return;
  s.retired = true;
  if (auto it = current_.find({s.server, s.port}); it != current_.end() && it->second == s.serial) current_.erase(it);
}

void DnsSockets::close_if_done(Socket& s) {
  if (!s.retired || !s.pending.empty() || s.reading) return;
  unwatch_(s.fd);
  ::close(s.fd);
  std::erase_if(deferred_, [&](const Deferred& d) { return d.socket == s.serial; });
  sockets_.erase(s.serial);  // s is gone
}

// Sockets past their time with no query in flight: closed, at most once a
// lifetime, so that a server asked once a minute keeps no socket open.
void DnsSockets::sweep(SteadyTime now) {
  if (now - last_sweep_ < kDnsSocketLifetime) return;
  last_sweep_ = now;
  std::vector<std::uint64_t> old;
  for (const auto& [serial, s] : sockets_)
    if (!usable(*s, now)) old.push_back(serial);
  for (const auto serial : old) {
    Socket* s = find(serial);
    retire(*s);
    close_if_done(*s);
  }
}

DnsSockets::Socket* DnsSockets::open_socket(const IpAddress& server, std::uint16_t port, std::string* error) {
  const bool v6 = server.is_v6();
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("UDP socket: ") + std::strerror(errno);
    return nullptr;
  }
  auto s = std::make_unique<Socket>();
  s->fd = fd;
  s->server = server;
  s->port = port;
  s->opened = clock_.now();
  s->serial = next_serial_++;
  // Without keyed stamps the socket takes one query: a stamp then is its.
  if (!set_dns_socket_options(fd, v6, true)) {
    s->keyed = false;
    set_dns_socket_options(fd, v6, false);
  }
  sockaddr_storage sa{};
  const socklen_t len = server.to_sockaddr(sa, port);
  // No bind: connect picks the source address and a random ephemeral port,
  // and the kernel drops datagrams from anyone but the server's port.
  if (connect(fd, reinterpret_cast<const sockaddr*>(&sa), len) != 0) {
    *error = "connect to " + server.to_string() + ": " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  Socket* raw = s.get();
  sockets_.emplace(raw->serial, std::move(s));
  watch_(fd, EPOLLIN, [this, serial = raw->serial](std::uint32_t events) { on_ready(serial, events); });
  return raw;
}

DnsSockets::Query DnsSockets::open(const IpAddress& server, std::uint16_t port, Token token,
                                   const std::function<std::uint16_t()>& draw, std::string* error) {
  const SteadyTime now = clock_.now();
  sweep(now);
  Socket* s = nullptr;
  if (auto it = current_.find({server, port}); it != current_.end()) {
    s = find(it->second);
    if (s && !usable(*s, now)) {
      retire(*s);
      close_if_done(*s);
      s = nullptr;
    }
  }
  if (!s) {
    s = open_socket(server, port, error);
    if (!s) return {};
    current_[{server, port}] = s->serial;
  }
  // An id no query in flight on the socket has: at most 64 of 65,536 are
  // taken, so a few draws find one.
  std::uint16_t id = draw();
  for (int i = 0; i < 64 && std::any_of(s->pending.begin(), s->pending.end(), [&](const Pending& p) { return p.id == id; });
       ++i)
    id = draw();
  s->pending.push_back({id, token, std::nullopt, std::nullopt});
  if (++s->queries >= kDnsQueriesPerSocket || !s->keyed) retire(*s);
  return {s->serial, id};
}

bool DnsSockets::send(Query* q, std::span<const std::uint8_t> datagram, int* err) {
  Socket* s = find(q->socket);
  if (!s) {
    *err = EBADF;
    return false;
  }
  if (::send(s->fd, datagram.data(), datagram.size(), 0) < 0) {
    *err = errno;
    retire(*s);
    // An ICMP error about an earlier query of the socket makes its next
    // send fail once with that error (the socket's pending error): the query
    // goes again from a fresh socket, which reports only its own send.
    if (s->sends == 0) return false;
    const auto it = std::find_if(s->pending.begin(), s->pending.end(), [&](const Pending& p) { return p.id == q->id; });
    if (it == s->pending.end()) return false;
    const Pending moved = *it;
    s->pending.erase(it);
    const IpAddress server = s->server;
    const std::uint16_t port = s->port;
    close_if_done(*s);
    std::string error;
    s = open_socket(server, port, &error);
    q->socket = 0;
    if (!s) return false;
    current_[{server, port}] = s->serial;
    s->pending.push_back(moved);
    s->queries = 1;
    if (!s->keyed) retire(*s);
    q->socket = s->serial;
    if (::send(s->fd, datagram.data(), datagram.size(), 0) < 0) {
      *err = errno;
      retire(*s);
      return false;
    }
  }
  for (auto& p : s->pending)
    if (p.id == q->id) p.key = s->sends;
  ++s->sends;
  // The kernel stamps the datagram as the device takes it, nearly always
  // before send() returns: read the stamp now, so that it does not raise
  // the socket's EPOLLERR and cost the loop a turn of its own. An ICMP error
  // read here waits for flush(): its probe may not finish inside a send.
  std::array<std::uint8_t, 512> quote;
  DnsSocketMessage m;
  int read_err = 0;
  ++s->reading;
  for (int i = 0; i < 4; ++i) {
    const DnsRead r = read_dns_message(s->fd, true, quote, &m, &read_err);
    if (r == DnsRead::drained || r == DnsRead::failed) break;
    if (r != DnsRead::message) continue;
    if (m.kind == DnsSocketMessage::Kind::sent_stamp) {
      dispatch(*s, m);
      if (m.key == s->sends - 1 || !s->keyed) break;  // ours: the rest is for the loop
      continue;
    }
    if (deferred_.size() >= kDnsMaxDatagramsPerWake) {
      ++stray_;  // a flood of errors: counted, not kept
      continue;
    }
    Deferred& d = deferred_.emplace_back(Deferred{s->serial, m, {m.payload.begin(), m.payload.end()}});
    d.message.payload = {};
  }
  --s->reading;
  return true;
}

std::optional<WallTime> DnsSockets::sent_stamp(const Query& q) const {
  if (const Socket* s = find(q.socket))
    for (const auto& p : s->pending)
      if (p.id == q.id) return p.stamp;
  return std::nullopt;
}

std::uint16_t DnsSockets::local_port(const Query& q) const {
  const Socket* s = find(q.socket);
  if (!s) return 0;
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (getsockname(s->fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
  return ntohs(sa.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
}

void DnsSockets::close(const Query& q) {
  Socket* s = find(q.socket);
  if (!s) return;
  std::erase_if(s->pending, [&](const Pending& p) { return p.id == q.id; });
  if (s->pending.empty() && clock_.now() - s->opened >= kDnsSocketLifetime) retire(*s);
  close_if_done(*s);
}

void DnsSockets::dispatch(Socket& s, const DnsSocketMessage& m) {
  using Kind = DnsSocketMessage::Kind;
  if (m.kind == Kind::sent_stamp) {
    for (auto& p : s.pending)
      if (s.keyed ? p.key == m.key : p.key.has_value()) {
        if (!p.stamp) p.stamp = m.stamp;
        return;
      }
    return;  // of a query over already
  }
  if (m.payload.size() >= 2) {
    const std::uint16_t id = id_of(m.payload);
    for (const auto& p : s.pending)
      if (p.id == id) {
        const Token token = p.token;
        return deliver_(token, m);
      }
  }
  // For no query in flight: counted once here, and in the `ignored` of every
  // query in flight on the socket (it reached the socket each waits on).
  ++stray_;
  DnsSocketMessage ignored;
  ignored.kind = Kind::ignored;
  ignored.why = m.kind == Kind::answer ? "a datagram with the id of no query in flight"
                                       : "an ICMP error that quotes no query in flight";
  std::vector<Token> tokens;
  for (const auto& p : s.pending) tokens.push_back(p.token);
  for (const Token t : tokens) deliver_(t, ignored);
}

void DnsSockets::on_ready(std::uint64_t serial, std::uint32_t events) {
  Socket* s = find(serial);
  if (!s) return;
  // One buffer for every socket (the agent is one thread): a fresh 64 KiB
  // vector per answer cost more than the rest of reading it. On the heap: a
  // 64 KiB array in static TLS is carved out of every thread's stack, and
  // the /metrics server's threads have only 100 KiB.
  static thread_local std::vector<std::uint8_t> buf(65536);
  ++s->reading;
  DnsSocketMessage m;
  int err = 0;
  // EPOLLERR: the error queue holds something (a late stamp, an ICMP error).
  if (events & EPOLLERR)
    for (int i = 0; i < kDnsMaxDatagramsPerWake; ++i) {
      const DnsRead r = read_dns_message(s->fd, true, std::span(buf.data(), 512), &m, &err);
      if (r == DnsRead::drained || r == DnsRead::failed) break;
      if (r == DnsRead::message) dispatch(*s, m);
    }
  std::size_t bytes = 0;
  for (int i = 0; i < kDnsMaxDatagramsPerWake && bytes < kDnsMaxBytesPerWake; ++i) {
    const DnsRead r = read_dns_message(s->fd, false, buf, &m, &err);
    if (r == DnsRead::drained || r == DnsRead::failed) break;  // a failed read: its queries time out
    if (r != DnsRead::message) continue;
    bytes += m.payload.size();
    dispatch(*s, m);
  }
  --s->reading;
  close_if_done(*s);
}

void DnsSockets::flush() {
  if (deferred_.empty()) return;
  std::vector<Deferred> due;
  due.swap(deferred_);
  for (auto& d : due) {
    Socket* s = find(d.socket);
    if (!s) continue;
    d.message.payload = d.payload;
    ++s->reading;
    dispatch(*s, d.message);
    --s->reading;
    close_if_done(*s);
  }
}

}  // namespace outpost
