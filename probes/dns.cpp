#include "dns.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
// After <time.h>: scm_timestamping holds struct timespec.
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>

#include <algorithm>
#include <array>
#include <vector>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

namespace outpost {
namespace {

using Bytes = std::span<const std::uint8_t>;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view strip_final_dot(std::string_view s) {
  if (s.size() > 1 && s.back() == '.') s.remove_suffix(1);
  return s;
}

std::string errno_text(std::string_view what, int err) { return std::string(what) + ": " + std::strerror(err); }

bool is_unreachable_errno(int err) { return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH; }

}  // namespace

std::string check_dns_expect(const std::vector<std::string>& expect, const DnsAnswerInfo& info) {
  std::vector<std::string> missing;
  for (const auto& want : expect) {
    const bool found = std::any_of(info.answers.begin(), info.answers.end(), [&](const std::string& got) {
      return iequals(strip_final_dot(want), strip_final_dot(got));
    });
    if (!found) missing.push_back(want);
  }
  if (missing.empty()) return {};
  auto list = [](const std::vector<std::string>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s + "]";
  };
  return "expected " + list(missing) + " among the answers, got " + info.rcode + " " + list(info.answers);
}

bool dns_error_quotes_query(std::span<const std::uint8_t> quoted, std::span<const std::uint8_t> query) {
  if (quoted.size() < 2 || query.size() < 2) return false;
  const std::size_t n = std::min(quoted.size(), query.size());
  return std::equal(quoted.begin(), quoted.begin() + static_cast<std::ptrdiff_t>(n), query.begin());
}

DnsProbe::DnsProbe(IpAddress server, DnsProbeSpec spec, Duration timeout)
    : server_(server), spec_(std::move(spec)), timeout_(timeout) {
  keep_kernel_timestamps_on();
  result_.target = server_;
  result_.dns.emplace();
  result_.dns->query = spec_.question.name.empty() ? "." : spec_.question.name;
  result_.dns->qtype = dns_type_name(spec_.question.type);
}

DnsProbe::~DnsProbe() {
  if (shared_) shared_->close(shared_query_);
  close_fd(tcp_);
  close_fd(udp_);
}

void DnsProbe::close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

bool DnsProbe::open_udp(std::string* error) {
  auto fail = [&](std::string_view what, int err) {
    *error = errno_text(what, err);
    return false;
  };
  const bool v6 = server_.is_v6();
  udp_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (udp_ < 0) return fail("UDP socket", errno);
  set_dns_socket_options(udp_, v6, false);
  sockaddr_storage sa{};
  const socklen_t len = server_.to_sockaddr(sa, spec_.port);
  // No bind: connect picks the source address and a random ephemeral port.
  if (connect(udp_, reinterpret_cast<const sockaddr*>(&sa), len) != 0) {
    const int err = errno;
    return fail("connect to " + server_.to_string(), err);
  }
  return true;
}

void DnsProbe::start(ProbeContext& ctx) {
  result_.sent = ctx.wall_now();
  std::uint64_t token = 0;
  if (DnsSockets* sockets = ctx.dns_sockets(&token)) return start_shared(ctx, *sockets, token);
  id_ = ctx.next_dns_id();
  query_ = forge_dns_query(id_, spec_.question);
  std::string error;
  if (!open_udp(&error)) return finish(ProbeStatus::error, error);
  if (!ctx.watch(udp_, EPOLLIN))
    return finish(ProbeStatus::error, "dns probes need an event loop to watch their socket");
  result_.sent = ctx.wall_now();  // replaced by the kernel's TX stamp when it comes
  if (send(udp_, query_.data(), query_.size(), 0) < 0) {
    const int err = errno;
    ctx.count_socket_send(false);
    return finish(is_unreachable_errno(err) ? ProbeStatus::unreachable : ProbeStatus::error, errno_text("send", err));
  }
  ctx.count_socket_send(true);
  ctx.arm_timeout(timeout_);
  // The kernel stamps the datagram as the device takes it, nearly always
  // before send() returns: read the stamp now, so that it does not raise
  // the socket's EPOLLERR and cost the loop a turn of its own.
  read_error_queue(1);
}

void DnsProbe::start_shared(ProbeContext& ctx, DnsSockets& sockets, std::uint64_t token) {
  std::string error;
  const auto query = sockets.open(server_, spec_.port, token, [&ctx] { return ctx.next_dns_id(); }, &error);
  if (!query) return finish(ProbeStatus::error, error);
  shared_ = &sockets;
  shared_query_ = query;
  id_ = query.id;
  query_ = forge_dns_query(id_, spec_.question);
  result_.sent = ctx.wall_now();  // replaced by the kernel's TX stamp when it comes
  int err = 0;
  if (!sockets.send(&shared_query_, query_, &err)) {
    ctx.count_socket_send(false);
    return finish(is_unreachable_errno(err) ? ProbeStatus::unreachable : ProbeStatus::error, errno_text("send", err));
  }
  ctx.count_socket_send(true);
  ctx.arm_timeout(timeout_);
  take_shared_stamp();
}

void DnsProbe::take_shared_stamp() {
  if (!shared_ || result_.sent_kernel_stamp) return;
  if (const auto stamp = shared_->sent_stamp(shared_query_)) {
    result_.sent = *stamp;
    result_.sent_kernel_stamp = true;
  }
}

void DnsProbe::on_dns_message(ProbeContext& ctx, const DnsSocketMessage& message) {
  if (finished_ || truncated_) return;  // answered already: TCP is under way
  take_shared_stamp();
  handle(ctx, message);
}

void DnsProbe::handle(ProbeContext& ctx, const DnsSocketMessage& m) {
  using Kind = DnsSocketMessage::Kind;
  switch (m.kind) {
    case Kind::sent_stamp:
      if (m.stamp && !result_.sent_kernel_stamp) {
        result_.sent = *m.stamp;
        result_.sent_kernel_stamp = true;
      }
      return;
    case Kind::icmp_error: return on_icmp_error(m);
    case Kind::answer: {
      auto parsed = parse_dns_response(m.payload, id_, spec_.question, kDnsMaxAnswersKept);
      if (!parsed.response) {
        ++result_.dns->ignored;
        result_.dns->last_ignored = cap_dns_text(parsed.detail, kDnsMaxDetailText);
        return;
      }
      return on_udp_answer(ctx, *parsed.response, m.stamp, m.ttl);
    }
    case Kind::ignored:
      ++result_.dns->ignored;
      result_.dns->last_ignored = m.why ? m.why : "";
      return;
  }
}

// An ICMP error about a query from this socket: ours when it quotes the query.
void DnsProbe::on_icmp_error(const DnsSocketMessage& m) {
  if (!dns_error_quotes_query(m.payload, query_)) {
    ++result_.dns->ignored;
    result_.dns->last_ignored = "an ICMP error that does not quote this query";
    return;
  }
  result_.icmp_type = m.icmp_type;
  result_.icmp_code = m.icmp_code;
  result_.reply_from = m.offender;
  result_.reply_ttl = m.ttl;  // the ICMP error's own TTL (IP_RECVTTL applies to the error queue too)
  if (m.stamp) result_.rtt = *m.stamp - result_.sent;
  finish(ProbeStatus::unreachable, describe_icmp_error(m.icmp_proto, m.icmp_type, m.icmp_code));
}

void DnsProbe::on_ready(ProbeContext& ctx, int fd, std::uint32_t events) {
  if (finished_) return;
  if (fd == udp_ && udp_ >= 0) {
    if (truncated_) return drain_udp();  // answered already: TCP is under way
    // EPOLLERR: the error queue holds something (a late stamp, an ICMP error).
    if (events & EPOLLERR) read_error_queue(kDnsMaxDatagramsPerWake);
    if (!finished_) read_udp(ctx);
  } else if (fd == tcp_ && tcp_ >= 0) {
    on_tcp_ready();
  }
}

// While TCP is tried: whatever else comes to the UDP socket is dropped, so
// that its readiness does not stay raised.
void DnsProbe::drain_udp() {
  std::array<std::uint8_t, 512> sink;
  for (int i = 0; i < kDnsMaxDatagramsPerWake; ++i)
    if (recv(udp_, sink.data(), sink.size(), MSG_DONTWAIT | MSG_TRUNC) < 0) break;
  for (int i = 0; i < kDnsMaxDatagramsPerWake; ++i)
    if (recv(udp_, sink.data(), sink.size(), MSG_DONTWAIT | MSG_ERRQUEUE) < 0) break;
}

// The error queue: our TX timestamp, and ICMP errors about the query.
void DnsProbe::read_error_queue(int max_messages) {
  std::array<std::uint8_t, 512> quote;  // an ICMP error's quote of our query (TX stamps carry none)
  DnsSocketMessage m;
  int err = 0;
  for (int i = 0; i < max_messages && !finished_; ++i) {
    const DnsRead r = read_dns_message(udp_, true, quote, &m, &err);
    if (r == DnsRead::drained || r == DnsRead::failed) return;
    if (r != DnsRead::message) continue;
    if (m.kind == DnsSocketMessage::Kind::sent_stamp) {
      if (m.stamp && !result_.sent_kernel_stamp) {
        result_.sent = *m.stamp;
        result_.sent_kernel_stamp = true;
      }
    } else if (m.kind == DnsSocketMessage::Kind::icmp_error) {
      on_icmp_error(m);
    }
  }
}

void DnsProbe::read_udp(ProbeContext& ctx) {
  // One buffer for every probe (the agent is one thread): a fresh 64 KiB
  // vector per answer cost more than the rest of reading it. On the heap: a
  // 64 KiB array in static TLS is carved out of every thread's stack, and
  // the /metrics server's threads have only 100 KiB.
  static thread_local std::vector<std::uint8_t> buf(65536);
  std::size_t bytes = 0;
  DnsSocketMessage m;
  int err = 0;
  for (int i = 0; i < kDnsMaxDatagramsPerWake && bytes < kDnsMaxBytesPerWake && !finished_ && udp_ >= 0; ++i) {
    const DnsRead r = read_dns_message(udp_, false, buf, &m, &err);
    if (r == DnsRead::drained) return;
    if (r == DnsRead::failed) return finish(ProbeStatus::error, errno_text("receive", err));
    if (r != DnsRead::message) continue;
    bytes += m.payload.size();
    handle(ctx, m);
  }
}

void DnsProbe::on_udp_answer(ProbeContext& ctx, const DnsResponse& response, std::optional<WallTime> rx, int ttl) {
  auto& dns = *result_.dns;
  result_.reply_from = server_;
  result_.reply_ttl = ttl;
  if (result_.sent_kernel_stamp && rx) {
    dns.rtt_clock = "kernel";
  } else {
    // No TX stamp (SO_TIMESTAMPING refused, or it never came): the send time is
    // the wall clock read before send(); the record says so.
    dns.rtt_clock = rx ? "kernel_rx" : "user";
    if (!rx) rx = std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
  }
  result_.rtt = *rx - result_.sent;
  if (!response.truncated) return finish_answer(response, "udp");
  dns.truncated = true;
  truncated_ = response;
  start_tcp(ctx);
}

void DnsProbe::start_tcp(ProbeContext& ctx) {
  // The TCP exchange is timed with the steady clock (connect to answer): the
  // record's rtt stays the UDP round trip from kernel stamps.
  tcp_started_ = std::chrono::steady_clock::now();
  tcp_ = socket(server_.is_v6() ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (tcp_ < 0) return give_up_tcp(errno_text("TCP socket", errno));
  sockaddr_storage sa{};
  const socklen_t len = server_.to_sockaddr(sa, spec_.port);
  if (connect(tcp_, reinterpret_cast<const sockaddr*>(&sa), len) != 0 && errno != EINPROGRESS)
    return give_up_tcp(errno_text("TCP connect", errno));
  tcp_out_ = frame_dns_tcp(query_);
  // Edge-triggered: once when the connection is up (and the query goes out),
  // then when the answer comes, without waking for a socket that stays
  // writable meanwhile.
  if (!ctx.watch(tcp_, EPOLLIN | EPOLLOUT | EPOLLET)) return give_up_tcp("no event loop to watch the TCP socket");
}

void DnsProbe::on_tcp_ready() {
  if (tcp_written_ < tcp_out_.size()) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(tcp_, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
      return give_up_tcp(errno_text("TCP connect", err));
    const ssize_t n = send(tcp_, tcp_out_.data() + tcp_written_, tcp_out_.size() - tcp_written_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      return give_up_tcp(errno_text("TCP send", errno));
    }
    tcp_written_ += static_cast<std::size_t>(n);
    if (tcp_written_ < tcp_out_.size()) return;  // the rest when there is room (the next edge)
  }
  for (;;) {
    std::array<std::uint8_t, 4096> chunk;
    const ssize_t n = recv(tcp_, chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      return give_up_tcp(errno_text("TCP receive", errno));
    }
    if (n == 0) return give_up_tcp("the server closed the TCP connection before the whole answer");
    tcp_in_.feed(Bytes(chunk.data(), static_cast<std::size_t>(n)));
    const auto message = tcp_in_.next();
    if (!message) continue;
    auto parsed = parse_dns_response(*message, id_, spec_.question, kDnsMaxAnswersKept);
    if (!parsed.response) return give_up_tcp("TCP answer: " + parsed.detail);
    result_.dns->tcp_time = std::chrono::steady_clock::now() - tcp_started_;
    return finish_answer(*parsed.response, "tcp");
  }
}

void DnsProbe::give_up_tcp(std::string why) {
  result_.dns->tcp_error = cap_dns_text(why, kDnsMaxDetailText);
  finish_answer(*truncated_, "udp");
}

void DnsProbe::finish_answer(const DnsResponse& response, const char* transport) {
  auto& dns = *result_.dns;
  dns.rcode = dns_rcode_name(response.rcode);
  dns.answers.clear();
  for (const auto& rec : response.answers) dns.answers.push_back(rec.data);
  dns.answers_dropped = response.answers_dropped;
  dns.transport = transport;
  std::string unmet = check_dns_expect(spec_.expect, dns);
  for (auto& answer : dns.answers)
    if (answer.size() > kDnsMaxAnswerText) answer = cap_dns_text(answer);
  const ProbeStatus status = unmet.empty() ? ProbeStatus::reply : ProbeStatus::error;
  finish(status, cap_dns_text(unmet, kDnsMaxDetailText));
}

void DnsProbe::on_timeout() {
  if (finished_) return;
  if (truncated_) return give_up_tcp("no answer over TCP within the timeout");
  finish(ProbeStatus::timeout);
}

void DnsProbe::finish(ProbeStatus status, std::string error) {
  take_shared_stamp();
  finished_ = true;
  result_.status = status;
  result_.error = std::move(error);
}

}  // namespace outpost
