#include "engine.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace outpost {
namespace {

constexpr auto kRouteCacheFor = std::chrono::seconds(5);

std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

std::string interface_of(const IpAddress& local) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return {};
  std::string name;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, i->ifa_addr, i->ifa_addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    if (auto a = IpAddress::from_sockaddr(ss); a && *a == local) {
      name = i->ifa_name;
      break;
    }
  }
  freeifaddrs(list);
  return name;
}

}  // namespace

Route lookup_route(const IpAddress& dst, const std::string& bind_interface) {
  Route route;
  const int family = dst.is_v6() ? AF_INET6 : AF_INET;
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    route.error = errno_text("socket", errno);
    return route;
  }
  if (!bind_interface.empty() &&
      setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, bind_interface.c_str(), bind_interface.size()) != 0) {
    route.error = errno_text("interface " + bind_interface, errno);
    close(fd);
    return route;
  }
  sockaddr_storage sa;
  socklen_t len = dst.to_sockaddr(sa, 33434);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    route.error = errno_text("no route to " + dst.to_string(), errno);
    close(fd);
    return route;
  }
  sockaddr_storage local{};
  len = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  close(fd);
  route.source = IpAddress::from_sockaddr(local).value_or(IpAddress{});
  route.interface = bind_interface.empty() ? interface_of(route.source) : bind_interface;
  if (route.interface.empty()) {
    route.error = "no interface holds " + route.source.to_string();
    route.source = {};
  }
  return route;
}

// What one probe sees of the engine: its own slot.
class Engine::SlotContext final : public ProbeContext {
 public:
  SlotContext(Engine& engine, std::uint32_t slot) : engine_(engine), slot_(slot) {}

  IpAddress source_for(const IpAddress& dst, std::string* error) override {
    const Route& route = engine_.route_to(dst);
    if (!route.source) {
      *error = route.error;
      return {};
    }
    if (!engine_.ensure_capture(route.interface, error)) return {};
    return route.source;
  }
  std::uint16_t next_ip_id() override { return ++engine_.next_ip_id_; }
  std::uint16_t icmp_ident() const override { return engine_.params_.icmp_ident; }
  std::uint16_t next_icmp_sequence() override { return ++engine_.next_sequence_; }
  std::uint64_t secret() const override { return engine_.secret_; }
  WallTime wall_now() override { return engine_.clock_.wall(); }
  bool expect(const FlowKey& key) override {
    if (!engine_.flows_.emplace(key, slot_).second) return false;
    engine_.slots_[slot_].keys.push_back(key);
    return true;
  }
  bool send(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string* error) override {
    return engine_.send_datagram(dst, datagram, error);
  }
  void arm_timeout(Duration d) override {
    engine_.deadlines_.push({engine_.clock_.now() + d, slot_, engine_.slots_[slot_].generation});
  }

 private:
  Engine& engine_;
  std::uint32_t slot_;
};

Engine::Engine(Clock& clock, EngineOptions options) : clock_(clock), options_(std::move(options)) {
  std::random_device rd;
  secret_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  params_.icmp_ident = static_cast<std::uint16_t>(rd());
  next_ip_id_ = static_cast<std::uint16_t>(rd());
  next_sequence_ = static_cast<std::uint16_t>(rd());
}

Engine::~Engine() {
  for (auto& c : captures_) pcap_close(c.handle);
  if (raw4_ >= 0) close(raw4_);
  if (raw6_ >= 0) close(raw6_);
}

bool Engine::open(std::string* error) {
  auto open_raw = [&](int family, int& fd) {
    fd = socket(family, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
    if (fd < 0) return errno;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &options_.send_buffer_bytes, sizeof options_.send_buffer_bytes);
    if (!options_.interface.empty())
      setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, options_.interface.c_str(), options_.interface.size());
    return 0;
  };
  if (int err = open_raw(AF_INET, raw4_); err != 0) {
    *error = err == EPERM || err == EACCES
                 ? "raw sockets need CAP_NET_RAW (run as root, or grant it: setcap cap_net_raw+ep outpost)"
                 : errno_text("raw IPv4 socket", err);
    return false;
  }
  open_raw(AF_INET6, raw6_);  // a host without IPv6 still probes IPv4
  return true;
}

const Route& Engine::route_to(const IpAddress& dst) {
  const SteadyTime now = clock_.now();
  auto it = routes_.find(dst);
  if (it == routes_.end() || it->second.second <= now) {
    if (routes_.size() > 100000) routes_.clear();
    it = routes_.insert_or_assign(dst, std::pair{lookup_route(dst, options_.interface), now + kRouteCacheFor}).first;
  }
  return it->second.first;
}

bool Engine::ensure_capture(const std::string& interface, std::string* error) {
  for (const auto& c : captures_)
    if (c.interface == interface) return true;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_create(interface.c_str(), errbuf);
  if (!p) {
    *error = "capture on " + interface + ": " + errbuf;
    return false;
  }
  pcap_set_snaplen(p, options_.snaplen);
  pcap_set_promisc(p, 0);
  pcap_set_immediate_mode(p, 1);
  pcap_set_buffer_size(p, options_.capture_buffer_bytes);
  pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
  int rc = pcap_activate(p);
  if (rc < 0) {
    *error = "capture on " + interface + ": " + pcap_geterr(p);
    if (rc == PCAP_ERROR_PERM_DENIED) *error += " (capture needs CAP_NET_RAW)";
    pcap_close(p);
    return false;
  }
  bpf_program program{};
  const std::string filter = capture_filter(params_);
  if (pcap_compile(p, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(p, &program) != 0) {
    *error = "capture filter on " + interface + ": " + pcap_geterr(p);
    pcap_freecode(&program);
    pcap_close(p);
    return false;
  }
  pcap_freecode(&program);
  if (pcap_setnonblock(p, 1, errbuf) != 0) {
    *error = "capture on " + interface + ": " + errbuf;
    pcap_close(p);
    return false;
  }
  Capture c{p, pcap_get_selectable_fd(p), pcap_datalink(p), interface};
  captures_.push_back(c);
  if (watch_fd_) watch_fd_(c.fd);
  return true;
}

bool Engine::send_datagram(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string* error) {
  const int fd = dst.is_v6() ? raw6_ : raw4_;
  if (fd < 0) {
    *error = dst.is_v6() ? "no IPv6 raw socket on this host" : "engine not open";
    ++stats_.send_errors;
    return false;
  }
  sockaddr_storage sa;
  socklen_t len = dst.to_sockaddr(sa);
  if (sendto(fd, datagram.data(), datagram.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa), len) < 0) {
    *error = errno_text("send to " + dst.to_string(), errno);
    ++stats_.send_errors;
    return false;
  }
  ++stats_.sent;
  return true;
}

void Engine::launch(std::unique_ptr<Probe> probe, Done done) {
  std::uint32_t idx;
  if (!free_slots_.empty()) {
    idx = free_slots_.back();
    free_slots_.pop_back();
  } else {
    idx = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[idx];
  slot.probe = std::move(probe);
  slot.done = std::move(done);
  slot.active = true;
  ++stats_.launched;
  SlotContext ctx(*this, idx);
  Probe* p = slot.probe.get();
  p->start(ctx);
  if (p->finished()) complete(idx);
}

void Engine::complete(std::uint32_t idx) {
  Slot& slot = slots_[idx];
  const ProbeStatus status = slot.probe->result().status;
  for (const auto& key : slot.keys) {
    flows_.erase(key);
    remember(key, status == ProbeStatus::timeout);
  }
  if (status == ProbeStatus::timeout) ++stats_.timeouts;
  else if (status != ProbeStatus::error) ++stats_.answered;
  auto probe = std::move(slot.probe);
  auto done = std::move(slot.done);
  slot.keys.clear();
  slot.active = false;
  ++slot.generation;
  free_slots_.push_back(idx);
  if (done) done(probe->result());  // may launch more probes: slot is no longer referenced
}

void Engine::remember(const FlowKey& key, bool timed_out) {
  const SteadyTime forget_at = clock_.now() + options_.remember_finished;
  finished_[key] = {timed_out, forget_at};
  finished_order_.emplace_back(key, forget_at);
  while (finished_order_.size() > options_.remember_finished_max) {
    auto it = finished_.find(finished_order_.front().first);
    if (it != finished_.end() && it->second.forget_at == finished_order_.front().second) finished_.erase(it);
    finished_order_.pop_front();
  }
}

void Engine::forget_old(SteadyTime now) {
  while (!finished_order_.empty() && finished_order_.front().second <= now) {
    auto it = finished_.find(finished_order_.front().first);
    if (it != finished_.end() && it->second.forget_at <= now) finished_.erase(it);
    finished_order_.pop_front();
  }
}

std::optional<SteadyTime> Engine::next_deadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.top().when;
}

void Engine::expire(SteadyTime now) {
  while (!deadlines_.empty() && deadlines_.top().when <= now) {
    const Deadline d = deadlines_.top();
    deadlines_.pop();
    Slot& slot = slots_[d.slot];
    if (!slot.active || slot.generation != d.generation) continue;  // answered already
    slot.probe->on_timeout();
    if (slot.probe->finished()) complete(d.slot);
  }
  forget_old(now);
}

void Engine::pcap_callback(u_char* user, const pcap_pkthdr* header, const u_char* bytes) {
  auto* self = reinterpret_cast<Engine*>(user);
  // Nanosecond precision was asked for at activation; ts.tv_usec holds nanoseconds.
  const WallTime stamp{std::chrono::seconds(header->ts.tv_sec) + std::chrono::nanoseconds(header->ts.tv_usec)};
  self->on_frame(self->current_link_type_, bytes, header->caplen, stamp);
}

void Engine::on_readable(int fd) {
  for (auto& c : captures_) {
    if (c.fd != fd) continue;
    current_link_type_ = c.link_type;
    // Drain what is there now; on an error the next readiness tries again.
    pcap_dispatch(c.handle, -1, &Engine::pcap_callback, reinterpret_cast<u_char*>(this));
    return;
  }
}

void Engine::on_frame(int link_type, const std::uint8_t* data, std::size_t size, WallTime stamp) {
  ++stats_.captured;
  auto packet = decode_frame(link_type, data, size, nullptr);
  if (!packet) {
    ++stats_.malformed;
    return;
  }
  auto classified = classify(*packet, params_);
  if (!classified) {
    ++stats_.foreign;
    return;
  }
  if (auto it = flows_.find(classified->key); it != flows_.end()) {
    const std::uint32_t idx = it->second;
    Probe* probe = slots_[idx].probe.get();
    if (classified->outgoing) {
      probe->on_sent(stamp);
    } else if (probe->on_packet(*packet, stamp)) {
      if (!probe->result().sent_kernel_stamp) ++stats_.tx_stamp_missing;
      if (probe->finished()) complete(idx);
    } else {
      ++stats_.spoofed;
    }
    return;
  }
  if (classified->outgoing) return;  // our own packet of a probe already over (or of a peer engine)
  if (auto f = finished_.find(classified->key); f != finished_.end()) {
    if (f->second.timed_out) ++stats_.late;
    else ++stats_.duplicate;
  } else {
    ++stats_.stray;
  }
}

EngineStats Engine::stats() const {
  EngineStats s = stats_;
  for (const auto& c : captures_) {
    pcap_stat ps{};
    if (pcap_stats(c.handle, &ps) == 0) s.capture_dropped += ps.ps_drop;
  }
  return s;
}

}  // namespace outpost
