#include "sim_net.hpp"

#include <netinet/in.h>
#include <pcap/dlt.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace outpost::sim {
namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr std::uint8_t kEchoRequest4 = 8, kEchoReply4 = 0, kUnreachable4 = 3, kTimeExceeded4 = 11;
constexpr std::uint8_t kEchoRequest6 = 128, kEchoReply6 = 129, kUnreachable6 = 1, kTimeExceeded6 = 3;
constexpr std::uint8_t kPortUnreachable4 = 3, kPortUnreachable6 = 4;
constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr int kInitialTtl = 64;

std::uint16_t get16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t get32(const std::uint8_t* p) { return static_cast<std::uint32_t>(get16(p)) << 16 | get16(p + 2); }
void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
  put16(p, static_cast<std::uint16_t>(v >> 16));
  put16(p + 2, static_cast<std::uint16_t>(v));
}

// RFC 1071: the ones' complement sum of 16-bit words, folded at the end.
std::uint32_t add_words(const std::uint8_t* p, std::size_t n, std::uint32_t sum) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += get16(p + i);
  if (n & 1) sum += static_cast<std::uint32_t>(p[n - 1]) << 8;
  return sum;
}
std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool in_prefix(const IpAddress& addr, const IpAddress& network, int length) {
  if (addr.family() != network.family()) return false;
  const std::uint8_t* a = addr.bytes();
  const std::uint8_t* n = network.bytes();
  const int whole = length / 8;
  if (std::memcmp(a, n, static_cast<std::size_t>(whole)) != 0) return false;
  const int rest = length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (n[whole] & mask);
}

// An IP datagram's header, written in front of a transport part of l4_size
// bytes (zeroed); the transport part starts at the returned vector's
// l4_offset(v6).
std::size_t l4_offset(bool v6) { return v6 ? 40 : 20; }

Bytes ip_datagram(const IpAddress& src, const IpAddress& dst, std::uint8_t proto, int ttl, std::uint16_t id,
                  std::size_t l4_size) {
  const bool v6 = dst.is_v6();
  Bytes b(l4_offset(v6) + l4_size, 0);
  std::uint8_t* h = b.data();
  const auto hop_limit = static_cast<std::uint8_t>(std::clamp(ttl, 0, 255));
  if (v6) {
    h[0] = 0x60;
    put16(h + 4, static_cast<std::uint16_t>(l4_size));
    h[6] = proto;
    h[7] = hop_limit;
    std::memcpy(h + 8, src.bytes(), 16);
    std::memcpy(h + 24, dst.bytes(), 16);
  } else {
    h[0] = 0x45;
    put16(h + 2, static_cast<std::uint16_t>(b.size()));
    put16(h + 4, id);
    h[8] = hop_limit;
    h[9] = proto;
    std::memcpy(h + 12, src.bytes(), 4);
    std::memcpy(h + 16, dst.bytes(), 4);
    put16(h + 10, fold(add_words(h, 20, 0)));
  }
  return b;
}

// Fills the transport checksum of a datagram ip_datagram made (ICMP, ICMPv6, TCP).
void seal(Bytes& b) {
  const bool v6 = (b[0] >> 4) == 6;
  const std::size_t off = l4_offset(v6);
  const std::uint8_t proto = v6 ? b[6] : b[9];
  const std::size_t len = b.size() - off;
  const std::size_t field = off + (proto == IPPROTO_TCP ? 16 : 2);
  put16(&b[field], 0);
  std::uint32_t sum = 0;
  if (v6) {
    sum = add_words(&b[8], 32, 0);  // the pseudo-header: addresses, length, next header
    sum += static_cast<std::uint32_t>(len >> 16) + static_cast<std::uint32_t>(len & 0xffff) + proto;
  } else if (proto != IPPROTO_ICMP) {
    sum = add_words(&b[12], 8, 0);
    sum += static_cast<std::uint32_t>(len) + proto;
  }
  put16(&b[field], fold(add_words(&b[off], len, sum)));
}

}  // namespace

// A sent datagram's fields, as the sim reads them.
struct SimNet::Sent {
  bool v6 = false;
  std::uint8_t proto = 0;
  int ttl = 0;
  IpAddress src;
  IpAddress dst;
  std::size_t l4 = 0;  // where the transport header starts
  std::size_t size = 0;

  static std::optional<Sent> read(std::span<const std::uint8_t> b) {
    Sent s;
    s.size = b.size();
    if (b.size() < 20) return std::nullopt;
    const int version = b[0] >> 4;
    if (version == 4) {
      s.l4 = static_cast<std::size_t>(b[0] & 0x0f) * 4;
      if (s.l4 < 20 || b.size() < s.l4) return std::nullopt;
      s.proto = b[9];
      s.ttl = b[8];
      s.src = IpAddress::v4_bytes(&b[12]);
      s.dst = IpAddress::v4_bytes(&b[16]);
    } else if (version == 6) {
      if (b.size() < 40) return std::nullopt;
      s.v6 = true;
      s.l4 = 40;
      s.proto = b[6];
      s.ttl = b[7];
      s.src = IpAddress::v6_bytes(&b[8]);
      s.dst = IpAddress::v6_bytes(&b[24]);
    } else {
      return std::nullopt;
    }
    return s;
  }
  std::size_t l4_size() const { return size - l4; }
  bool is_echo_request(std::span<const std::uint8_t> b) const {
    if (l4_size() < 8) return false;
    return v6 ? proto == IPPROTO_ICMPV6 && b[l4] == kEchoRequest6 : proto == IPPROTO_ICMP && b[l4] == kEchoRequest4;
  }
};

SimNet::SimNet(Clock& clock, EventLoop& loop, IpAddress vantage_v4, IpAddress vantage_v6)
    : clock_(clock), loop_(loop), vantage_v4_(vantage_v4), vantage_v6_(vantage_v6) {
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  loop_.watch(event_fd_, [this] { on_readable(); });
}

SimNet::~SimNet() {
  loop_.unwatch(event_fd_);
  close(event_fd_);
}

// ---- topology and faults ----

void SimNet::add_path(std::string_view prefix, std::vector<IpAddress> routers) {
  const auto slash = prefix.find('/');
  const auto network = IpAddress::parse(prefix.substr(0, slash));
  if (!network) throw std::invalid_argument("sim: bad prefix '" + std::string(prefix) + "'");
  int length = network->is_v6() ? 128 : 32;
  if (slash != std::string_view::npos) {
    const char* begin = prefix.data() + slash + 1;
    const char* end = prefix.data() + prefix.size();
    auto [p, ec] = std::from_chars(begin, end, length);
    if (ec != std::errc() || p != end) throw std::invalid_argument("sim: bad prefix '" + std::string(prefix) + "'");
  }
  add_path(*network, length, std::move(routers));
}

void SimNet::add_path(const IpAddress& network, int prefix_length, std::vector<IpAddress> routers) {
  const int bits = network.is_v6() ? 128 : network.is_v4() ? 32 : -1;
  if (bits < 0 || prefix_length < 0 || prefix_length > bits)
    throw std::invalid_argument("sim: bad prefix length " + std::to_string(prefix_length));
  for (const auto& r : routers)
    if (r.family() != network.family())
      throw std::invalid_argument("sim: router " + r.to_string() + " is not of the family of " + network.to_string());
  Path path{network, prefix_length, std::move(routers)};
  const auto at = std::upper_bound(paths_.begin(), paths_.end(), prefix_length,
                                   [](int len, const Path& p) { return len > p.length; });
  paths_.insert(at, std::move(path));
  router_at_.clear();
  for (std::size_t i = 0; i < paths_.size(); ++i)
    for (std::size_t k = 0; k < paths_[i].routers.size(); ++k)
      router_at_.emplace(paths_[i].routers[k], std::pair{i, k});
}

void SimNet::add_host(SimHost host) {
  if (!host.addr) throw std::invalid_argument("sim: a host needs an address");
  std::sort(host.open_ports.begin(), host.open_ports.end());
  hosts_[host.addr] = Host{host.answers_echo, std::move(host.open_ports)};
}

void SimNet::add_host(const IpAddress& addr, bool answers_echo, std::vector<std::uint16_t> open_ports) {
  add_host(SimHost{addr, answers_echo, std::move(open_ports)});
}

void SimNet::drop_forward(const IpAddress& router, bool on) {
  if (on) dropping_.insert(router);
  else dropping_.erase(router);
}

void SimNet::host_down(const IpAddress& addr, bool down) {
  if (down) down_.insert(addr);
  else down_.erase(addr);
}

void SimNet::loss(double fraction, std::uint64_t seed) {
  loss_ = std::clamp(fraction, 0.0, 1.0);
  rng_ = seed;
}

bool SimNet::lose() {
  if (loss_ <= 0) return false;
  ++stats_.loss_rolls;
  const double u = static_cast<double>(splitmix64(rng_) >> 11) * 0x1.0p-53;
  if (u >= loss_) return false;
  ++stats_.dropped_loss;
  return true;
}

std::uint64_t SimNet::sent_to(const IpAddress& dst) const {
  auto it = sent_to_.find(dst);
  return it == sent_to_.end() ? 0 : it->second;
}

void SimNet::keep_send_log(std::size_t records) {
  log_keep_ = records;
  while (send_log_.size() > log_keep_) send_log_.pop_front();
}

// ---- the Wire ----

IpAddress SimNet::prepare(const IpAddress& dst, std::string* error) {
  if (uplink_ == Uplink::send_error) {
    *error = "no route to " + dst.to_string() + ": " + std::strerror(ENETUNREACH);
    return {};
  }
  const IpAddress& source = dst.is_v6() ? vantage_v6_ : vantage_v4_;
  if (!source) {
    *error = "no route to " + dst.to_string() + ": " + std::strerror(ENETUNREACH);
    return {};
  }
  return source;
}

bool SimNet::send(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string* error) {
  if (uplink_ == Uplink::send_error) {
    ++stats_.send_errors;
    *error = "send to " + dst.to_string() + ": " + std::strerror(ENETUNREACH);
    return false;
  }
  const SteadyTime now = clock_.now();
  ++stats_.sent;
  ++sent_to_[dst];
  const auto sent = Sent::read(datagram);
  if (log_keep_ > 0) {
    const auto ttl = static_cast<std::uint8_t>(sent ? sent->ttl : 0);
    send_log_.push_back({now, dst, sent ? sent->proto : std::uint8_t{0}, ttl});
    if (send_log_.size() > log_keep_) send_log_.pop_front();
  }
  // What is due comes first, so the ring stays in time order.
  release_due(now);
  push_ring(clock_.wall(), Bytes(datagram.begin(), datagram.end()));
  if (!sent) {
    ++stats_.malformed;
    return true;
  }
  if (uplink_ == Uplink::silent) {
    ++stats_.dropped_uplink;
    return true;
  }
  if (lose()) return true;
  forward(*sent, datagram);
  return true;
}

// ---- the network ----

const SimNet::Path* SimNet::path_for(const IpAddress& dst) const {
  for (const auto& p : paths_)
    if (in_prefix(dst, p.network, p.length)) return &p;
  return nullptr;
}

void SimNet::forward(const Sent& d, std::span<const std::uint8_t> datagram) {
  // Toward a router's own address: the routers before it, then it.
  std::span<const IpAddress> routers;
  bool to_router = false;
  if (auto it = router_at_.find(d.dst); it != router_at_.end()) {
    const Path& p = paths_[it->second.first];
    routers = std::span<const IpAddress>(p.routers.data(), it->second.second + 1);
    to_router = true;
  } else if (const Path* p = path_for(d.dst)) {
    routers = p->routers;
  } else {
    ++stats_.unrouted;
    return;
  }
  for (std::size_t j = 0; j < routers.size(); ++j) {
    const int hop = static_cast<int>(j) + 1;
    const IpAddress& router = routers[j];
    if (to_router && j + 1 == routers.size()) {
      if (!d.is_echo_request(datagram)) {
        ++stats_.unanswered;
        return;
      }
      Bytes reply = ip_datagram(router, d.src, d.proto, kInitialTtl - (hop - 1), next_ip_id_++, d.l4_size());
      std::memcpy(&reply[l4_offset(d.v6)], &datagram[d.l4], d.l4_size());
      reply[l4_offset(d.v6)] = d.v6 ? kEchoReply6 : kEchoReply4;
      seal(reply);
      answer(std::move(reply), hop);
      return;
    }
    if (d.ttl <= hop) {
      router_answer(d, datagram, router, hop);
      return;
    }
    if (!dropping_.empty() && dropping_.count(router)) {
      ++stats_.dropped_forward;
      return;
    }
  }
  const int hop = static_cast<int>(routers.size()) + 1;
  auto host = hosts_.find(d.dst);
  if (host == hosts_.end()) {
    ++stats_.no_host;
    return;
  }
  if (!down_.empty() && down_.count(d.dst)) {
    ++stats_.dropped_host_down;
    return;
  }
  host_answer(d, datagram, host->second, hop);
}

namespace {

// An ICMP error from `from` quoting the whole datagram, with the TTL it arrived with.
Bytes icmp_error(const IpAddress& from, const IpAddress& to, bool v6, std::uint8_t type, std::uint8_t code,
                 int reply_ttl, std::uint16_t id, std::span<const std::uint8_t> quoted, int arrival_ttl) {
  const std::uint8_t proto = v6 ? std::uint8_t{IPPROTO_ICMPV6} : std::uint8_t{IPPROTO_ICMP};
  Bytes e = ip_datagram(from, to, proto, reply_ttl, id, 8 + quoted.size());
  const std::size_t off = l4_offset(v6);
  e[off] = type;
  e[off + 1] = code;
  std::uint8_t* q = &e[off + 8];
  std::memcpy(q, quoted.data(), quoted.size());
  const auto ttl = static_cast<std::uint8_t>(std::max(arrival_ttl, 0));
  if (v6) {
    q[7] = ttl;
  } else {
    q[8] = ttl;
    const std::size_t header = static_cast<std::size_t>(q[0] & 0x0f) * 4;
    put16(q + 10, 0);
    put16(q + 10, fold(add_words(q, header, 0)));
  }
  seal(e);
  return e;
}

}  // namespace

void SimNet::router_answer(const Sent& d, std::span<const std::uint8_t> datagram, const IpAddress& router, int hop) {
  answer(icmp_error(router, d.src, d.v6, d.v6 ? kTimeExceeded6 : kTimeExceeded4, 0, kInitialTtl - (hop - 1),
                    next_ip_id_++, datagram, d.ttl - (hop - 1)),
         hop);
}

void SimNet::host_answer(const Sent& d, std::span<const std::uint8_t> datagram, const Host& host, int hop) {
  const int reply_ttl = kInitialTtl - (hop - 1);
  const std::uint8_t* t = &datagram[d.l4];
  if (d.is_echo_request(datagram)) {
    if (!host.answers_echo) {
      ++stats_.unanswered;
      return;
    }
    Bytes reply = ip_datagram(d.dst, d.src, d.proto, reply_ttl, next_ip_id_++, d.l4_size());
    std::memcpy(&reply[l4_offset(d.v6)], t, d.l4_size());
    reply[l4_offset(d.v6)] = d.v6 ? kEchoReply6 : kEchoReply4;
    reply[l4_offset(d.v6) + 1] = 0;
    seal(reply);
    answer(std::move(reply), hop);
    return;
  }
  if (d.proto == IPPROTO_TCP && d.l4_size() >= 20 && (t[13] & (kSyn | kAck | kRst | kFin)) == kSyn) {
    const std::uint16_t sport = get16(t), dport = get16(t + 2);
    const std::uint32_t seq = get32(t + 4);
    const bool open = std::binary_search(host.open_ports.begin(), host.open_ports.end(), dport);
    Bytes seg = ip_datagram(d.dst, d.src, IPPROTO_TCP, reply_ttl, next_ip_id_++, 20);
    std::uint8_t* s = &seg[l4_offset(d.v6)];
    put16(s, dport);
    put16(s + 2, sport);
    std::uint64_t isn_state = d.dst.hash() ^ (static_cast<std::uint64_t>(sport) << 16 | dport);
    put32(s + 4, open ? static_cast<std::uint32_t>(splitmix64(isn_state)) : 0);
    put32(s + 8, seq + 1);
    s[12] = 5 << 4;
    s[13] = open ? (kSyn | kAck) : (kRst | kAck);
    put16(s + 14, open ? 65535 : 0);
    seal(seg);
    answer(std::move(seg), hop);
    return;
  }
  if (d.proto == IPPROTO_UDP) {
    answer(icmp_error(d.dst, d.src, d.v6, d.v6 ? kUnreachable6 : kUnreachable4,
                      d.v6 ? kPortUnreachable6 : kPortUnreachable4, reply_ttl, next_ip_id_++, datagram,
                      d.ttl - (hop - 1)),
           hop);
    return;
  }
  ++stats_.unanswered;
}

void SimNet::answer(Bytes datagram, int hop) {
  if (lose()) return;
  ++stats_.answers;
  const Duration rtt = 2 * hop * hop_delay_;
  in_flight_.push_back({clock_.now() + rtt, clock_.wall() + rtt, next_order_++, std::move(datagram)});
  std::push_heap(in_flight_.begin(), in_flight_.end(), [](const Frame& a, const Frame& b) {
    return a.at != b.at ? a.at > b.at : a.order > b.order;
  });
  signal();
}

// ---- delivery ----

void SimNet::release_due(SteadyTime now) {
  auto later = [](const Frame& a, const Frame& b) { return a.at != b.at ? a.at > b.at : a.order > b.order; };
  while (!in_flight_.empty() && in_flight_.front().at <= now) {
    std::pop_heap(in_flight_.begin(), in_flight_.end(), later);
    Frame f = std::move(in_flight_.back());
    in_flight_.pop_back();
    push_ring(f.stamp, std::move(f.bytes));
  }
}

std::optional<SteadyTime> SimNet::next_arrival() const {
  if (in_flight_.empty()) return std::nullopt;
  return in_flight_.front().at;
}

void SimNet::push_ring(WallTime stamp, Bytes bytes) {
  if (ring_capacity_ > 0 && ring_.size() >= ring_capacity_) {
    ++stats_.ring_dropped;
    return;
  }
  ring_.push_back({SteadyTime{}, stamp, 0, std::move(bytes)});
  signal();
}

void SimNet::signal() {
  if (signalled_) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = write(event_fd_, &one, sizeof one);
  signalled_ = true;
}

void SimNet::on_readable() {
  // Frames that enter the ring while these are handed over (our own probes
  // leaving) wait for the next turn.
  batch_.clear();
  std::swap(batch_, ring_);
  for (auto& f : batch_) {
    ++stats_.delivered;
    if (handler_) handler_(DLT_RAW, f.bytes.data(), f.bytes.size(), f.stamp);
  }
  batch_.clear();
  // Readable while anything is in the ring or in flight: two system calls
  // per burst of traffic rather than per frame.
  if (ring_.empty() && in_flight_.empty() && signalled_) {
    std::uint64_t count;
    [[maybe_unused]] auto n = read(event_fd_, &count, sizeof count);
    signalled_ = false;
  }
}

// ---- the driver ----

bool SimDriver::due_now() {
  const SteadyTime now = clock_.now();
  if (net_.ring_size() > 0) return true;
  if (auto a = net_.next_arrival(); a && *a <= now) return true;
  if (auto t = loop_.next_timer(); t && *t <= now) return true;
  return false;
}

bool SimDriver::run_until(SteadyTime end) {
  while (true) {
    net_.release_due(clock_.now());
    ++turns_;
    if (!loop_.run_once(false)) {
      failed_ = true;
      return false;
    }
    if (loop_.stopping()) return true;
    if (due_now()) continue;
    const SteadyTime now = clock_.now();
    if (now >= end) return true;
    SteadyTime next = end;
    if (auto t = loop_.next_timer(); t && *t < next) next = *t;
    if (auto a = net_.next_arrival(); a && *a < next) next = *a;
    clock_.set(next);
  }
}

void SimDriver::stall(Duration d) {
  clock_.advance(d);
  net_.release_due(clock_.now());
}

}  // namespace outpost::sim
