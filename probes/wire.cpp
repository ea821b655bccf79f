#include "wire.hpp"

#include "answer_ring.hpp"
#include "socket_receive.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace outpost {
namespace {

std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

}  // namespace

RouteFinder::RouteFinder(std::string bind_interface, Duration table_age)
    : bind_interface_(std::move(bind_interface)), table_age_(table_age) {}

RouteFinder::~RouteFinder() {
  if (fd4_ >= 0) close(fd4_);
  if (fd6_ >= 0) close(fd6_);
}

int RouteFinder::socket_for(bool v6, std::string* error) {
  int& fd = v6 ? fd6_ : fd4_;
  if (fd >= 0) return fd;
  fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno_text("socket", errno);
    return -1;
  }
  if (!bind_interface_.empty() &&
      setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, bind_interface_.c_str(), bind_interface_.size()) != 0) {
    *error = errno_text("interface " + bind_interface_, errno);
    close(fd);
    fd = -1;
  }
  return fd;
}

void RouteFinder::read_table(SteadyTime now) {
  ifaddrs* list = nullptr;
  table_time_ = now;
  table_read_ = true;
  ++table_reads_;
  if (getifaddrs(&list) != 0) return;
  interfaces_.clear();
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6)) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, i->ifa_addr, i->ifa_addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    // The first interface listed with an address keeps it, as before.
    if (auto a = IpAddress::from_sockaddr(ss)) interfaces_.try_emplace(*a, i->ifa_name);
  }
  freeifaddrs(list);
}

std::string RouteFinder::interface_of(const IpAddress& local, SteadyTime now) {
  if (!table_read_ || now - table_time_ >= table_age_) read_table(now);
  auto it = interfaces_.find(local);
  if (it == interfaces_.end() && table_time_ != now) {
    // An address added since the table was read.
    read_table(now);
    it = interfaces_.find(local);
  }
  return it == interfaces_.end() ? std::string{} : it->second;
}

Route RouteFinder::find(const IpAddress& dst, SteadyTime now, bool with_interface) {
  Route route;
  const int fd = socket_for(dst.is_v6(), &route.error);
  if (fd < 0) return route;
  // Dissolve the last association first: a connected UDP socket keeps the
  // source it was given, and the next destination may route elsewhere.
  sockaddr_storage none{};
  none.ss_family = AF_UNSPEC;
  connect(fd, reinterpret_cast<sockaddr*>(&none), sizeof(sa_family_t));
  sockaddr_storage sa;
  socklen_t len = dst.to_sockaddr(sa, 33434);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    route.error = errno_text("no route to " + dst.to_string(), errno);
    return route;
  }
  sockaddr_storage local{};
  len = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    route.error = errno_text("getsockname", errno);
    return route;
  }
  route.source = IpAddress::from_sockaddr(local).value_or(IpAddress{});
  if (!with_interface && bind_interface_.empty()) return route;
  route.interface = bind_interface_.empty() ? interface_of(route.source, now) : bind_interface_;
  if (route.interface.empty()) {
    route.error = "no interface holds " + route.source.to_string();
    route.source = {};
  }
  return route;
}

RawWire::RawWire(Clock& clock, RawWireOptions options, FilterParams filter)
    : clock_(clock), options_(std::move(options)), filter_(filter), route_finder_(options_.interface) {}

RawWire::~RawWire() {
  queue_.reset();  // the thread stops before the sockets it sends on close
  for (auto& c : captures_) pcap_close(c.handle);
  if (raw4_ >= 0) close(raw4_);
  if (raw6_ >= 0) close(raw6_);
  for (const int fd : {icmp4_, icmp6_, tcp4_, tcp6_})
    if (fd >= 0) close(fd);
  for (auto& ring : rings_) ring.reset();
  if (route_watch_ >= 0) close(route_watch_);
}

void RawWire::open_route_watch() {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return;  // routes are then kept route_cache only
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  // IPv4 routes go with a link that goes down without a message of their own: links too.
  sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE | RTMGRP_IPV6_IFADDR |
                 RTMGRP_IPV6_ROUTE | (1u << (RTNLGRP_IPV6_RULE - 1));
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return;
  }
  route_watch_ = fd;
  if (watch_fd_) watch_fd_(fd);
}

void RawWire::set_fd_watcher(std::function<void(int fd)> watch) {
  watch_fd_ = std::move(watch);
  if (watch_fd_ && route_watch_ >= 0) watch_fd_(route_watch_);
  if (watch_fd_ && queue_) watch_fd_(queue_->event_fd());
  // Send stamps raise the raw sockets' EPOLLERR.
  for (const int fd : {on_sockets_ ? raw4_ : -1, on_sockets_ ? raw6_ : -1, icmp4_, icmp6_, tcp4_, tcp6_,
                       rings_[0] ? rings_[0]->fd() : -1, rings_[1] ? rings_[1]->fd() : -1})
    if (watch_fd_ && fd >= 0) watch_fd_(fd);
}

void RawWire::read_route_changes() {
  // What changed does not matter: any change forgets every route (a few
  // system calls per destination probed again), and an overflow of the
  // socket's buffer (ENOBUFS: messages lost) counts as a change.
  alignas(nlmsghdr) char buf[8192];
  bool changed = false;
  for (;;) {
    const ssize_t n = recv(route_watch_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0 || (n < 0 && errno == ENOBUFS)) {
      changed = true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  if (!changed) return;
  routes_.clear();
  routes_kept_ = 0;
  route_finder_.forget_table();
  ++route_changes_;
}

bool RawWire::open(std::string* error) {
  auto open_raw = [&](int family, int& fd) {
    fd = socket(family, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
    if (fd < 0) return errno;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &options_.send_buffer_bytes, sizeof options_.send_buffer_bytes);
    return 0;
  };
  // agent.interface: a name that is not there (a typo) is a start-up error, not per-probe noise.
  auto bind = [&](int fd) {
    if (options_.interface.empty() ||
        setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, options_.interface.c_str(), options_.interface.size()) == 0)
      return true;
    *error = errno_text("interface " + options_.interface + " (SO_BINDTODEVICE)", errno);
    return false;
  };
  if (int err = open_raw(AF_INET, raw4_); err != 0) {
    *error = err == EPERM || err == EACCES
                 ? "raw sockets need CAP_NET_RAW (run as root, or grant it: setcap cap_net_raw+ep outpost)"
                 : errno_text("raw IPv4 socket", err);
    return false;
  }
  if (!bind(raw4_)) return false;
  if (options_.ipv6) open_raw(AF_INET6, raw6_);  // a host without IPv6 still probes IPv4
  if (raw6_ >= 0 && !bind(raw6_)) return false;
  if (options_.watch_routes && route_watch_ < 0) open_route_watch();
  on_sockets_ = options_.receive_on_sockets && ask_send_stamps(raw4_) && (raw6_ < 0 || ask_send_stamps(raw6_));
  return true;
}

bool RawWire::ensure_receiver(bool v6, std::string* error) {
  auto& ring = rings_[v6];
  int& fd = v6 ? icmp6_ : icmp4_;
  int& tcp = v6 ? tcp6_ : tcp4_;
  // Called with every probe's prepare: a receiver there already is the
  // answer, asked nothing again.
  if (ring || (fd >= 0 && (tcp >= 0 || !options_.socket_tcp_first_port))) return true;
  // Receive stamps on already: a raw socket costs about 12 µs, a ring about
  // 0.2 ms here (its packet socket, the grace periods its setting and its
  // close wait for, its pages mapped and unmapped).
  if (options_.answers_on_ring && !ring_failed_[v6] &&
      !(options_.sockets_when_stamps_on && kernel_timestamps_already_on())) {
    // No receive stamps asked for: the ring stamps its frames itself.
    auto opened = std::make_unique<AnswerRing>();
    std::string why;
    if (opened->open(options_.interface, v6, options_.socket_tcp_first_port, options_.answer_ring_frames, &why)) {
      ring = std::move(opened);
      if (watch_fd_) watch_fd_(ring->fd());
      return true;
    }
    ring_failed_[v6] = true;  // the raw sockets, then
  }
  // A raw socket's answers carry the kernel's stamp only once the kernel
  // has switched stamps on (a capture stamps its frames itself): where it
  // has not (no loopback to see it on), the wire captures after all. The
  // answer is the same for every call (it is the first one's), and the
  // first comes with the first prepare, before anything was sent.
  if (!keep_kernel_timestamps_on()) {
    on_sockets_ = false;
    for (auto& r : rings_) r.reset();  // the captures take every answer
    for (const int raw : {raw4_, raw6_})
      if (raw >= 0) ask_send_stamps(raw, false);
    return false;
  }
  if (fd < 0) {
    fd = open_icmp_receiver(v6, options_.interface, error);
    if (fd < 0) return false;
    if (watch_fd_) watch_fd_(fd);
  }
  if (options_.socket_tcp_first_port) {
    tcp = open_tcp_receiver(v6, options_.socket_tcp_first_port, options_.interface, error);
    if (tcp < 0) return false;
    if (watch_fd_) watch_fd_(tcp);
  }
  return true;
}

void RawWire::take_send_stamps() {
  stamps_due_ = false;
  for (const int fd : {raw4_, raw6_})
    if (fd >= 0)
      read_send_stamps(fd, 1 << 20, [this](const std::uint8_t* data, std::size_t size, std::optional<WallTime> stamp) {
        if (handler_) handler_(DLT_RAW, data, size, *stamp);  // always stamped: the error queue's stamps
      });
}

int RawWire::read_sockets(int max_frames) {
  take_send_stamps();
  // An answer may come in while answers are handed on, to a probe sent
  // from one of them: its send stamp, queued before it could be answered,
  // is taken first, so that the engine knows the probe left.
  const DatagramHandler answer = [this](const std::uint8_t* data, std::size_t size, std::optional<WallTime> stamp) {
    if (stamps_due_) take_send_stamps();
    const bool outer = frame_user_clock_;  // (a handler that reads the wire again)
    frame_user_clock_ = !stamp;
    if (handler_) handler_(DLT_RAW, data, size, stamp ? *stamp : clock_.wall());
    frame_user_clock_ = outer;
  };
  int n = 0;
  for (const auto& ring : rings_)
    if (ring) n += ring->read(max_frames, answer);
  if (icmp4_ >= 0) n += read_receiver(icmp4_, false, IPPROTO_ICMP, max_frames, answer);
  if (icmp6_ >= 0) n += read_receiver(icmp6_, true, IPPROTO_ICMPV6, max_frames, answer);
  if (tcp4_ >= 0) n += read_receiver(tcp4_, false, IPPROTO_TCP, max_frames, answer);
  if (tcp6_ >= 0) n += read_receiver(tcp6_, true, IPPROTO_TCP, max_frames, answer);
  return n;
}

IpAddress RawWire::prepare(const IpAddress& dst, std::string* error) {
  const SteadyTime now = clock_.now();
  auto it = routes_.find(dst);
  if (it == routes_.end() || it->second.second <= now) {
    // Entries beyond route_cache_watched_max live seconds, and a daemon of
    // 100,000 targets asks for each once a minute: the expired ones go
    // whenever the cache doubles, and at least once per route_cache, so it
    // holds the long-lived routes and those of the last few seconds, not one
    // per target (a burst of lookups, then a quiet minute, must not pin the
    // burst's entries).
    if (routes_.size() >= 2 * routes_kept_ + 1024 || (routes_.size() > 1024 && now >= next_sweep_)) {
      std::erase_if(routes_, [&](const auto& entry) { return entry.second.second <= now; });
      routes_kept_ = routes_.size();
      next_sweep_ = now + options_.route_cache;
      if (routes_.bucket_count() > 8 * routes_.size() + 1024) routes_.rehash(0);  // give back the buckets too
    }
    Route route = route_finder_.find(dst, now, !on_sockets_);
    // A failed lookup is not kept: the route may be back by the next probe
    // (a link restored), and asking again costs one failed connect().
    const Duration keep = route_watch_ >= 0 && routes_.size() < options_.route_cache_watched_max
                              ? options_.route_cache_watched
                              : options_.route_cache;
    const SteadyTime until = route.source ? now + keep : now;
    it = routes_.insert_or_assign(dst, std::pair{std::move(route), until}).first;
  }
  Route& route = it->second.first;
  if (!route.source) {
    *error = route.error;
    return {};
  }
  // A receiver that fails with on_sockets_ still set is an error; one
  // that turned it off leaves the capture to open.
  if (on_sockets_ && !ensure_receiver(dst.is_v6(), error) && on_sockets_) return {};
  if (!on_sockets_) {
    // A route found for the sockets has no interface yet: the capture needs it.
    if (route.interface.empty()) route.interface = route_finder_.interface_of(route.source, now);
    if (route.interface.empty()) {
      *error = "no interface holds " + route.source.to_string();
      return {};
    }
    if (!ensure_capture(route.interface, error)) return {};
  }
  return route.source;
}

bool RawWire::ensure_capture(const std::string& interface, std::string* error) {
  for (const auto& c : captures_)
    if (c.interface == interface) return true;
  const std::string filter = capture_filter(filter_, options_.capture_types);
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_create(interface.c_str(), errbuf);
  if (!p) {
    *error = "capture on " + interface + ": " + errbuf;
    return false;
  }
  auto fail = [&](const std::string& why) {
    *error = "capture on " + interface + ": " + why;
    pcap_close(p);
    return false;
  };
  pcap_set_snaplen(p, options_.snaplen);
  pcap_set_promisc(p, 0);
  pcap_set_immediate_mode(p, 1);
  pcap_set_buffer_size(p, options_.capture_buffer_bytes);
  pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
  if (int rc = pcap_activate(p); rc < 0)
    return fail(std::string(pcap_geterr(p)) + (rc == PCAP_ERROR_PERM_DENIED ? " (capture needs CAP_NET_RAW)" : ""));
  bpf_program program{};
  if (pcap_compile(p, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) return fail(pcap_geterr(p));
  const int set = pcap_setfilter(p, &program);
  pcap_freecode(&program);
  if (set != 0) return fail(pcap_geterr(p));
  if (pcap_setnonblock(p, 1, errbuf) != 0) return fail(errbuf);
  const int precision = pcap_get_tstamp_precision(p);
  if (precision != PCAP_TSTAMP_PRECISION_NANO) return fail("no nanosecond timestamps");
  captures_.push_back({p, pcap_get_selectable_fd(p), pcap_datalink(p), interface});
  if (watch_fd_) watch_fd_(captures_.back().fd);
  return true;
}

bool RawWire::send(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string* error) {
  const int fd = dst.is_v6() ? raw6_ : raw4_;
  if (fd < 0) {
    *error = dst.is_v6() ? "no IPv6 raw socket on this host" : "raw socket not open";
    return false;
  }
  // Unrelated datagrams already in the answer ring: its filter goes on now.
  if (const auto& ring = rings_[dst.is_v6()]) ring->screen();
  sockaddr_storage sa;
  const socklen_t len = dst.to_sockaddr(sa);
  if (sendto(fd, datagram.data(), datagram.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa), len) < 0) {
    *error = errno_text("send to " + dst.to_string(), errno);
    return false;
  }
  stamps_due_ = on_sockets_;
  return true;
}

bool RawWire::send_queued(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::uint64_t token,
                          std::uint64_t* ticket, std::string* error) {
  *ticket = 0;
  // No thread; or no socket of that family (send says so).
  if (options_.send_thread_slots == 0 || (dst.is_v6() ? raw6_ : raw4_) < 0) return send(dst, datagram, error);
  if (!queue_ || queue_->asleep()) {
    // A thread asleep (or none yet): a few datagrams a millisecond go from
    // here, and only a faster run of them wakes it (or starts it).
    const SteadyTime now = clock_.now();
    if (now - burst_start_ >= std::chrono::milliseconds(1)) {
      burst_start_ = now;
      burst_ = 0;
    }
    if (++burst_ <= options_.send_in_place_per_ms) return send(dst, datagram, error);
  }
  if (!queue_) {
    // Probes are sent only after the process dropped its privileges: the
    // thread has none of its own to keep.
    queue_ = std::make_unique<SendQueue>(raw4_, raw6_, options_.send_thread_slots);
    if (watch_fd_) watch_fd_(queue_->event_fd());
  }
  // A full ring (the thread behind): this one goes from here, at once.
  *ticket = queue_->push(dst, datagram, token);
  return *ticket != 0 || send(dst, datagram, error);
}

void RawWire::pcap_callback(u_char* user, const pcap_pkthdr* header, const u_char* bytes) {
  auto* self = reinterpret_cast<RawWire*>(user);
  // Nanosecond precision was checked at activation: ts.tv_usec holds nanoseconds.
  const WallTime stamp{std::chrono::seconds(header->ts.tv_sec) + std::chrono::nanoseconds(header->ts.tv_usec)};
  if (self->handler_) self->handler_(self->current_link_type_, bytes, header->caplen, stamp);
}

int RawWire::on_readable(int fd) {
  if (fd == route_watch_) {
    read_route_changes();
    return 0;
  }
  if (queue_ && fd == queue_->event_fd()) {
    for (const auto& f : queue_->take_failures())
      if (send_failed_) send_failed_(f.token, errno_text("send to " + f.dst.to_string(), f.error));
    return 0;
  }
  if (on_sockets_ && (fd == raw4_ || fd == raw6_ || fd == icmp4_ || fd == icmp6_ || fd == tcp4_ || fd == tcp6_ ||
                      (rings_[0] && fd == rings_[0]->fd()) || (rings_[1] && fd == rings_[1]->fd())))
    return read_sockets(kMaxFramesPerWake);
  for (auto& c : captures_) {
    if (c.fd != fd) continue;
    current_link_type_ = c.link_type;
    // Never -1 (until the ring is empty): frames that keep coming would keep
    // the loop here. On an error the next readiness tries again.
    return pcap_dispatch(c.handle, kMaxFramesPerWake, &RawWire::pcap_callback, reinterpret_cast<u_char*>(this));
  }
  return 0;
}

bool RawWire::adopt_capture(pcap_t* handle, std::string interface) {
  for (const auto& c : captures_)
    if (c.interface == interface) {
      pcap_close(handle);
      return false;
    }
  captures_.push_back({handle, pcap_get_selectable_fd(handle), pcap_datalink(handle), std::move(interface)});
  if (watch_fd_) watch_fd_(captures_.back().fd);
  return true;
}

int RawWire::drain(int max_frames) {
  int n = on_sockets_ ? read_sockets(max_frames) : 0;
  for (auto& c : captures_) {
    current_link_type_ = c.link_type;
    // Non-blocking captures: 0 at once when the ring is empty.
    const int got = pcap_dispatch(c.handle, max_frames, &RawWire::pcap_callback, reinterpret_cast<u_char*>(this));
    if (got > 0) n += got;
  }
  return n;
}

std::uint64_t RawWire::dropped() const {
  std::uint64_t n = 0;
  for (const auto& ring : rings_)
    if (ring) n += ring->dropped();
  for (const auto& c : captures_) {
    pcap_stat ps{};
    if (pcap_stats(c.handle, &ps) == 0) n += ps.ps_drop;
  }
  return n;
}

}  // namespace outpost
