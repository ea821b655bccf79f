#include "traceroute.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <charconv>

#include "icmp_echo.hpp"
#include "ip_forge.hpp"
#include "raw_probe.hpp"
#include "tcp_syn.hpp"

namespace outpost {

std::optional<TraceSpec> parse_trace_method(const std::string& text, std::string* error) {
  TraceSpec spec;
  if (text == "icmp") return spec;
  if (text == "udp") {
    spec.method = TraceMethod::udp;
    return spec;
  }
  if (text.rfind("tcp:", 0) == 0) {
    unsigned port = 0;
    const char* begin = text.data() + 4;
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(begin, end, port);
    if (ec == std::errc() && p == end && port >= 1 && port <= 65535) {
      spec.method = TraceMethod::tcp;
      spec.port = static_cast<std::uint16_t>(port);
      return spec;
    }
  }
  *error = "unknown trace method '" + text + "' (expected icmp, udp or tcp:PORT)";
  return std::nullopt;
}

std::string trace_method_name(TraceMethod method) {
  switch (method) {
    case TraceMethod::icmp: return "icmp";
    case TraceMethod::udp: return "udp";
    case TraceMethod::tcp: return "tcp";
  }
  return "icmp";
}

// ---- the UDP hop probe ----

std::size_t udp_trace_probe_size(const UdpTraceRequest& r) {
  // The payload's first word absorbs the checksum's difference.
  return ip_forge::header_size(r.dst) + 8 + std::max<std::size_t>(r.payload_size, 2);
}

// Written field by field into the caller's buffer; a test holds it to
// libtins' serialization, byte for byte.
std::size_t forge_udp_trace_probe(const UdpTraceRequest& r, std::span<std::uint8_t> out) {
  const std::size_t size = udp_trace_probe_size(r);
  if (out.size() < size) return 0;
  std::uint8_t* d = out.data();
  const std::size_t ip = ip_forge::write_header(d, r.src, r.dst, IPPROTO_UDP, r.ttl, r.ip_id, size);
  std::uint8_t* udp = d + ip;
  ip_forge::put16(udp, r.sport);
  ip_forge::put16(udp + 2, r.dport);
  ip_forge::put16(udp + 4, static_cast<std::uint16_t>(size - ip));
  ip_forge::put16(udp + 6, 0);
  std::uint8_t* payload = udp + 8;
  payload[0] = payload[1] = 0;
  for (std::size_t i = 2; i < size - ip - 8; ++i) payload[i] = static_cast<std::uint8_t>('@' + i);
  ip_forge::put16(udp + 6, ip_forge::transport_checksum(out.first(size), IPPROTO_UDP));
  // The first payload word absorbs the difference: the checksum becomes the probe's identity.
  paris_fix_checksum(out.first(size), ip + 6, ip + 8, r.checksum);
  return size;
}

std::vector<std::uint8_t> forge_udp_trace_probe(const UdpTraceRequest& r) {
  std::vector<std::uint8_t> bytes(udp_trace_probe_size(r));
  forge_udp_trace_probe(r, bytes);
  return bytes;
}

namespace {
bool in_trace_ports(std::uint16_t port) { return port >= kTraceFirstPort && port <= kTraceLastPort; }
}  // namespace

std::string udp_trace_filter(const FilterParams&) {
  return "udp and src portrange " + std::to_string(kTraceFirstPort) + "-" + std::to_string(kTraceLastPort);
}

std::optional<Classified> udp_trace_classify(const DecodedPacket& p, const FilterParams&) {
  if (p.l4.proto == IPPROTO_UDP && in_trace_ports(p.l4.sport))
    return Classified{{FlowProto::udp, p.ip.dst, p.l4.sport, p.l4.checksum}, true};
  if (stops_datagram(p) && p.quote->l4.proto == IPPROTO_UDP && in_trace_ports(p.quote->l4.sport)) {
    const auto& q = *p.quote;
    return Classified{{FlowProto::udp, q.ip.dst, q.l4.sport, q.l4.checksum}, false};
  }
  return std::nullopt;
}

std::uint16_t udp_trace_checksum(const FlowSecret& secret, const IpAddress& dst, std::uint16_t sport,
                                 std::uint16_t dport, std::uint32_t probe_id) {
  // A keyed permutation of 1..0xfffe applied to the probe's number: a
  // six-round Feistel network over its two bytes, SipHash of the flow the
  // round function, walked on while it lands on 0 or 0xffff. Distinct for
  // every probe of a trace (a late answer never lands on a later probe), and
  // unpredictable without the key.
  std::uint16_t x = static_cast<std::uint16_t>(1 + probe_id % 0xfffe);
  do {
    std::uint8_t left = static_cast<std::uint8_t>(x >> 8), right = static_cast<std::uint8_t>(x);
    for (std::uint32_t round = 0; round < 6; ++round) {
      const auto f = static_cast<std::uint8_t>(flow_cookie(secret, {FlowProto::udp, dst, sport, dport, round << 8 | right}));
      const std::uint8_t next_right = left ^ f;
      left = right;
      right = next_right;
    }
    x = static_cast<std::uint16_t>(left << 8 | right);
  } while (x == 0 || x == 0xffff);
  return x;
}

UdpTraceProbe::UdpTraceProbe(IpAddress target, Duration timeout, std::uint8_t ttl, std::uint16_t sport,
                             std::uint16_t dport, std::uint32_t probe_id)
    : probe_id_(probe_id), timeout_(timeout) {
  request_.dst = target;
  request_.ttl = ttl;
  request_.sport = sport;
  request_.dport = dport;
  result_.target = target;
}

void UdpTraceProbe::start(ProbeContext& ctx) {
  result_.sent = ctx.wall_now();
  request_.src = ctx.source_for(request_.dst, &result_.error);
  request_.ip_id = ctx.next_ip_id();
  auto fail = [&](std::string why) {
    finished_ = true;
    result_.status = ProbeStatus::error;
    if (!why.empty()) result_.error = std::move(why);
  };
  if (!request_.src) return fail("");
  request_.checksum = udp_trace_checksum(ctx.secret(), request_.dst, request_.sport, request_.dport, probe_id_);
  result_.sequence = request_.checksum;
  if (!ctx.expect({FlowProto::udp, request_.dst, request_.sport, request_.checksum}))
    return fail("trace flow already in use toward " + request_.dst.to_string());
  ip_forge::DatagramBuffer buffer;
  const auto datagram = buffer.of_size(udp_trace_probe_size(request_));
  forge_udp_trace_probe(request_, datagram);
  result_.sent = ctx.wall_now();
  if (!ctx.send(request_.dst, datagram, &result_.error)) return fail("");
  ctx.arm_timeout(timeout_);
}

void UdpTraceProbe::on_sent(WallTime kernel_tx) { note_kernel_send(result_, kernel_tx); }

bool UdpTraceProbe::on_packet(const DecodedPacket& p, WallTime kernel_rx) {
  if (finished_ || !stops_datagram(p)) return false;
  // The quote must be our datagram: our source and IP id, our ports, and the
  // checksum (the flow key already matched it) no one off-path can guess.
  const auto& q = *p.quote;
  if (q.ip.src != request_.src || (q.ip.src.is_v4() && q.ip.id != request_.ip_id)) return false;
  if (q.l4.dport != request_.dport || q.l4.checksum != request_.checksum) return false;
  const bool port_unreachable = (p.l4.proto == IPPROTO_ICMP && p.l4.icmp_type == 3 && p.l4.icmp_code == 3) ||
                                (p.l4.proto == IPPROTO_ICMPV6 && p.l4.icmp_type == 1 && p.l4.icmp_code == 4);
  // The destination's port unreachable is the UDP trace's "reply".
  const bool reached = port_unreachable && p.ip.src == request_.dst;
  finished_ = true;
  fill_answer(result_, reached ? ProbeStatus::reply : ProbeStatus::unreachable, kernel_rx, p);
  return true;
}

void UdpTraceProbe::on_send_error(const std::string& error) { note_send_error(result_, finished_, error); }

void UdpTraceProbe::on_timeout() {
  if (finished_) return;
  finished_ = true;
  result_.status = ProbeStatus::timeout;
}

// ---- the TCP hop probe ----

namespace {
constexpr std::uint8_t kFin = 0x01, kSynFlag = 0x02, kRstFlag = 0x04, kAckFlag = 0x10;
}

std::string tcp_trace_filter(const FilterParams&) {
  const std::string range = std::to_string(kTraceFirstPort) + "-" + std::to_string(kTraceLastPort);
  return "tcp and (src portrange " + range + " or dst portrange " + range + ")";
}

std::optional<Classified> tcp_trace_classify(const DecodedPacket& p, const FilterParams&) {
  if (p.l4.proto == IPPROTO_TCP) {
    const auto& t = p.l4;
    if (in_trace_ports(t.sport)) {
      // Our SYN leaving; anything else of ours (the kernel's RST to a SYN-ACK) matches no probe.
      const bool bare_syn = (t.tcp_flags & (kSynFlag | kAckFlag | kRstFlag | kFin)) == kSynFlag;
      return Classified{{FlowProto::tcp_trace, p.ip.dst, t.sport, t.dport, bare_syn ? t.tcp_seq : 0}, true};
    }
    if (in_trace_ports(t.dport) && (t.tcp_flags & kAckFlag))
      return Classified{{FlowProto::tcp_trace, p.ip.src, t.dport, t.sport, t.tcp_ack - 1}, false};
    return std::nullopt;
  }
  if (stops_datagram(p) && p.quote->l4.proto == IPPROTO_TCP && in_trace_ports(p.quote->l4.sport)) {
    const auto& q = *p.quote;
    return Classified{{FlowProto::tcp_trace, q.ip.dst, q.l4.sport, q.l4.dport, q.l4.tcp_seq}, false};
  }
  return std::nullopt;
}

TcpTraceProbe::TcpTraceProbe(IpAddress target, Duration timeout, std::uint8_t ttl, std::uint16_t sport,
                             std::uint16_t dport, std::uint32_t probe_id)
    : dst_(target), sport_(sport), dport_(dport), ttl_(ttl), probe_id_(probe_id), timeout_(timeout) {
  result_.target = target;
}

void TcpTraceProbe::start(ProbeContext& ctx) {
  result_.sent = ctx.wall_now();
  auto fail = [&](std::string why) {
    finished_ = true;
    result_.status = ProbeStatus::error;
    if (!why.empty()) result_.error = std::move(why);
  };
  src_ = ctx.source_for(dst_, &result_.error);
  if (!src_) return fail("");
  ip_id_ = ctx.next_ip_id();
  // A keyed hash of the trace's flow and the probe's number: no probe's ISN
  // tells another's. (A taken flow key, two ISNs alike: the next draw.)
  bool claimed = false;
  for (std::uint32_t attempt = 0; attempt < 8 && !claimed; ++attempt) {
    isn_ = static_cast<std::uint32_t>(
        flow_cookie(ctx.secret(), {FlowProto::tcp_trace, dst_, sport_, dport_, probe_id_ ^ attempt << 24}));
    if (isn_ == 0) isn_ = 1;  // 0 stands for "no probe" in the classifier
    claimed = ctx.expect({FlowProto::tcp_trace, dst_, sport_, dport_, isn_});
  }
  result_.sequence = static_cast<std::uint16_t>(probe_id_);
  if (!claimed) return fail("trace flow already in use toward " + dst_.to_string());
  SynSegment syn;
  syn.src = src_;
  syn.dst = dst_;
  syn.sport = sport_;
  syn.dport = dport_;
  syn.isn = isn_;
  syn.ip_id = ip_id_;
  syn.ttl = ttl_;
  syn.mss = dst_.is_v6() ? 1440 : 1460;
  std::array<std::uint8_t, kTcpSynMaxSize> datagram;
  const std::size_t size = forge_tcp_syn(syn, datagram);
  result_.sent = ctx.wall_now();
  if (!ctx.send(dst_, std::span(datagram).first(size), &result_.error)) return fail("");
  ctx.arm_timeout(timeout_);
}

void TcpTraceProbe::on_sent(WallTime kernel_tx) { note_kernel_send(result_, kernel_tx); }

bool TcpTraceProbe::on_packet(const DecodedPacket& p, WallTime kernel_rx) {
  if (finished_) return false;
  if (p.l4.proto == IPPROTO_TCP) {
    // The destination's SYN-ACK (port open) or RST (closed): it was reached either way.
    if (p.ip.src != dst_ || p.l4.tcp_ack != isn_ + 1 || !(p.l4.tcp_flags & (kSynFlag | kRstFlag))) return false;
    finished_ = true;
    fill_answer(result_, ProbeStatus::reply, kernel_rx, p);
    return true;
  }
  if (!stops_datagram(p)) return false;
  const auto& q = *p.quote;
  if (q.ip.src != src_ || (q.ip.src.is_v4() && q.ip.id != ip_id_) || q.l4.tcp_seq != isn_) return false;
  // Whoever sends it, even from the destination's address: a router's answer, not the target's.
  finished_ = true;
  fill_answer(result_, ProbeStatus::unreachable, kernel_rx, p);
  return true;
}

void TcpTraceProbe::on_send_error(const std::string& error) { note_send_error(result_, finished_, error); }

void TcpTraceProbe::on_timeout() {
  if (finished_) return;
  finished_ = true;
  result_.status = ProbeStatus::timeout;
}

// ---- the trace ----

std::uint32_t Trace::flow_id_for(TraceMethod method, std::uint32_t flow_seed) {
  switch (method) {
    case TraceMethod::icmp:  // any fixed checksum but 0 and 0xffff
      return 1 + flow_seed % 0xfffd;
    case TraceMethod::udp:
    case TraceMethod::tcp:
      break;
  }
  return kTraceFirstPort + flow_seed % (kTraceLastPort - kTraceFirstPort + 1);
}

std::shared_ptr<Trace> Trace::create(TraceSpec spec, IpAddress target, std::uint32_t flow_seed, WallTime now,
                                     Launch launch, Done done) {
  return std::shared_ptr<Trace>(new Trace(spec, target, flow_seed, now, std::move(launch), std::move(done)));
}

Trace::Trace(TraceSpec spec, IpAddress target, std::uint32_t flow_seed, WallTime now, Launch launch, Done done)
    : spec_(spec), launch_(std::move(launch)), done_(std::move(done)) {
  spec_.first_ttl = std::clamp(spec_.first_ttl, 1, 255);
  spec_.max_ttl = std::clamp(spec_.max_ttl, spec_.first_ttl, 255);
  spec_.attempts = std::max(1, spec_.attempts);
  spec_.gap_limit = std::max(1, spec_.gap_limit);
  spec_.parallel = std::max(1, spec_.parallel);
  if (spec_.method == TraceMethod::udp && spec_.port == 0) spec_.port = kTraceUdpDefaultPort;
  if (spec_.start_ttl <= spec_.first_ttl || spec_.start_ttl > spec_.max_ttl) spec_.start_ttl = spec_.first_ttl;
  result_.target = target;
  result_.spec = spec_;
  result_.started = now;
  result_.flow_id = flow_id_for(spec_.method, flow_seed);
  for (int ttl = spec_.first_ttl; ttl <= spec_.max_ttl; ++ttl) {
    HopState h;
    h.hop.ttl = ttl;
    hops_.push_back(h);
  }
  next_ttl_ = spec_.start_ttl;
  back_ttl_ = spec_.start_ttl - 1;
}

std::unique_ptr<Probe> Trace::make_hop_probe(int ttl, Duration timeout) {
  const auto t = static_cast<std::uint8_t>(ttl);
  switch (spec_.method) {
    case TraceMethod::icmp:
      return std::make_unique<IcmpEchoProbe>(result_.target, timeout, t, 56,
                                             static_cast<std::uint16_t>(result_.flow_id));
    case TraceMethod::udp:
      // Every probe's checksum differs, drawn from its number: it is the probe's identity.
      return std::make_unique<UdpTraceProbe>(result_.target, timeout, t,
                                             static_cast<std::uint16_t>(result_.flow_id), spec_.port,
                                             next_probe_id_++);
    case TraceMethod::tcp:
      return std::make_unique<TcpTraceProbe>(result_.target, timeout, t,
                                             static_cast<std::uint16_t>(result_.flow_id), spec_.port,
                                             next_probe_id_++);
  }
  return nullptr;
}

void Trace::start() { launch_more(); }

int ttl_from_reply_ttl(int reply_ttl) {
  if (reply_ttl <= 0 || reply_ttl > 255) return 0;
  for (int initial : {32, 64, 128, 255})
    if (reply_ttl <= initial) return initial - reply_ttl + 1;
  return 0;
}

int Trace::end_ttl() const {
  // Nothing is needed past the destination, past a router that said
  // unreachable, or past a run of gap_limit silent hops.
  // Silent hops below start_ttl, probed backward, end nothing: the
  // hops past them are known already.
  int silent_run = 0;
  for (const auto& h : hops_) {
    if (h.finished && (h.hop.is_target || h.halts)) return h.hop.ttl;
    if (h.finished && !h.hop.addr && h.hop.ttl >= spec_.start_ttl) {
      if (++silent_run >= spec_.gap_limit) return h.hop.ttl;
    } else {
      silent_run = 0;
    }
  }
  return spec_.max_ttl;
}

bool Trace::over() {
  if (!done_called_ && aborted_ && in_flight_ == 0) finish();
  return done_called_ || aborted_;
}

void Trace::launch_more() {
  if (over()) return;
  if (backward_) return probe_backward();
  const auto lowest_open = [&] {
    for (const auto& h : hops_)
      if (!h.finished && h.hop.ttl >= spec_.start_ttl) return h.hop.ttl;
    return spec_.max_ttl + 1;
  };
  // Up to the expected TTL until every hop before it is known: past it only
  // when the destination did not answer there.
  const auto limit = [&](int lowest) {
    const int end = end_ttl();
    return spec_.expected_ttl > 0 && lowest <= spec_.expected_ttl ? std::min(end, spec_.expected_ttl) : end;
  };
  // Judged again after each probe: answers taken between sends (take_) may
  // have settled hops, the destination's among them.
  for (int lowest = lowest_open(); !aborted_ && !done_called_ && next_ttl_ <= limit(lowest) &&
                                   next_ttl_ < lowest + spec_.parallel;
       lowest = lowest_open()) {
    send(next_ttl_++);
    if (take_ && defer_) take_();
  }
  if (over()) return;  // a send that failed at once
  const int lowest = lowest_open();
  const int end = end_ttl();
  // Settled once every hop from start_ttl up to the end is: probes sent
  // past it (before the end was known) are not waited for.
  if (lowest > end && next_ttl_ > end) {
    backward_ = true;
    probe_backward();
  }
}

void Trace::launch_more_soon() {
  if (!defer_) return launch_more();
  if (launch_queued_) return;
  launch_queued_ = true;
  // Held by the call: the answer that asked for it may have been the last
  // thing that held the trace.
  defer_([self = shared_from_this()] {
    self->launch_queued_ = false;
    self->launch_more();
  });
}

void Trace::probe_backward() {
  // One TTL at a time, so that each answer can stop the trace before the
  // next probe goes.
  for (;; --back_ttl_) {
    if (back_ttl_ < spec_.first_ttl) return finish();
    const HopState& h = hops_[static_cast<std::size_t>(back_ttl_ - spec_.first_ttl)];
    if (!h.finished) {
      if (h.attempts_made == 0) send(back_ttl_);
      return;
    }
    // A router's time exceeded (not the destination, found nearer than
    // thought, nor an unreachable) from an address with a known path.
    if (known_ && h.hop.addr && !h.hop.is_target && !h.halts && adopt_known(back_ttl_)) return finish();
  }
}

bool Trace::adopt_known(int ttl) {
  const auto prefix = known_(ttl, hops_[static_cast<std::size_t>(ttl - spec_.first_ttl)].hop.addr);
  if (!prefix || prefix->size() != static_cast<std::size_t>(ttl - spec_.first_ttl)) return false;
  for (std::size_t i = 0; i < prefix->size(); ++i)
    if ((*prefix)[i].ttl != spec_.first_ttl + static_cast<int>(i) || !(*prefix)[i].reused_from) return false;
  for (std::size_t i = 0; i < prefix->size(); ++i) {
    HopState& h = hops_[i];
    h.hop = (*prefix)[i];
    h.hop.probes_sent = 0;
    h.hop.is_target = false;
    h.finished = true;
  }
  return true;
}

namespace {
// A hop probe that says when it starts: a launch through the agent's rate
// cap may wait in its queue, and the wait for an early retry counts from
// the probe's start, not from its launch (at a start-up of 256 baselines,
// every hop was sent twice, its retry due before its first attempt left).
class StartTold final : public Probe {
 public:
  StartTold(std::unique_ptr<Probe> probe, std::function<void()> started)
      : probe_(std::move(probe)), started_(std::move(started)) {}
  void start(ProbeContext& ctx) override {
    probe_->start(ctx);
    started_();
  }
  void on_sent(WallTime kernel_tx) override { probe_->on_sent(kernel_tx); }
  bool on_packet(const DecodedPacket& packet, WallTime kernel_rx) override {
    return probe_->on_packet(packet, kernel_rx);
  }
  void on_timeout() override { probe_->on_timeout(); }
  void on_send_error(const std::string& error) override { probe_->on_send_error(error); }
  void on_ready(ProbeContext& ctx, int fd, std::uint32_t events) override { probe_->on_ready(ctx, fd, events); }
  bool finished() const override { return probe_->finished(); }
  const ProbeResult& result() const override { return probe_->result(); }

 private:
  std::unique_ptr<Probe> probe_;
  std::function<void()> started_;
};
}  // namespace

void Trace::send(int ttl, std::optional<Duration> timeout) {
  HopState& h = hops_[static_cast<std::size_t>(ttl - spec_.first_ttl)];
  h.last_timeout = timeout.value_or(spec_.timeout);
  ++h.attempts_made;
  ++h.hop.probes_sent;
  ++h.outstanding;
  ++in_flight_;
  const int attempt = h.attempts_made;
  auto self = shared_from_this();
  std::unique_ptr<Probe> probe = make_hop_probe(ttl, h.last_timeout);
  if (after_ && attempt < spec_.attempts)
    probe = std::make_unique<StartTold>(std::move(probe), [weak = weak_from_this(), ttl, attempt] {
      if (auto trace = weak.lock(); trace && !trace->done_called_ && !trace->aborted_)
        trace->arm_retry(ttl, attempt, kRetryFloor, {});
    });
  launch_(std::move(probe), [self, ttl](const ProbeResult& r) { self->on_result(ttl, r); });
}

Duration Trace::retry_wait() const {
  // Three times the slowest answer so far (a router's ICMP comes from its
  // slow path), as traceroute's "here" factor; before any answer, the path's
  // times are unknown: a quarter of the timeout.
  std::optional<Duration> slowest;
  for (const auto& h : hops_)
    if (h.finished && h.hop.rtt) slowest = std::max(slowest.value_or(Duration{}), *h.hop.rtt);
  const Duration wait = slowest ? std::max<Duration>(kRetryFloor, 3 * *slowest) : spec_.timeout / 4;
  return std::min(wait, spec_.timeout);
}

void Trace::arm_retry(int ttl, int attempt, Duration delay, Duration waited) {
  after_(delay, [weak = weak_from_this(), ttl, attempt, delay, waited] {
    if (auto self = weak.lock()) self->on_retry_timer(ttl, attempt, waited + delay);
  });
}

void Trace::on_retry_timer(int ttl, int attempt, Duration waited) {
  if (done_called_ || aborted_) return;
  const HopState& h = hops_[static_cast<std::size_t>(ttl - spec_.first_ttl)];
  // Answered, timed out (and retried from there), or retried already.
  if (h.finished || h.outstanding == 0 || h.attempts_made != attempt) return;
  const Duration wait = retry_wait();
  if (waited < wait) return arm_retry(ttl, attempt, wait - waited, waited);
  if (ttl > end_ttl()) return;  // past the end now known: not needed
  // The retry ends when the earlier attempt does (the hop's deadline), but
  // waits at least as long as the earlier one went unanswered before it.
  send(ttl, std::max(h.last_timeout - waited, waited));
}

void Trace::on_result(int ttl, const ProbeResult& r) {
  --in_flight_;
  if (done_called_) return;  // a probe past the end, answered after the trace was over
  HopState& h = hops_[static_cast<std::size_t>(ttl - spec_.first_ttl)];
  --h.outstanding;
  // An attempt of a hop another attempt settled already (an early retry).
  if (h.finished) {
    if (aborted_) launch_more_soon();  // the last probe in flight may be this one
    return;
  }
  if (r.status == ProbeStatus::error) {
    // No route, no capture, or the agent stopping: more TTLs would fail alike.
    h.finished = true;
    aborted_ = true;
    if (result_.error.empty()) result_.error = r.error;
  } else if (r.status == ProbeStatus::timeout) {
    if (h.outstanding > 0) return;  // an early retry of it is still waiting
    if (!aborted_ && h.attempts_made < spec_.attempts && ttl <= end_ttl()) {
      send(ttl);
      return;
    }
    h.finished = true;
  } else {
    TraceHop& hop = h.hop;
    hop.addr = r.reply_from;
    hop.rtt = r.rtt;
    hop.rtt_clock = r.rtt_clock;
    hop.icmp_type = r.icmp_type;
    hop.icmp_code = r.icmp_code;
    hop.quoted_ttl = r.quoted_ttl;
    hop.reply_ttl = r.reply_ttl;
    hop.mpls = r.mpls;
    // Only the destination's own answer type (echo reply, SYN-ACK or RST, its
    // port unreachable) is a reply: an ICMP error that merely comes from the
    // target's address, a time exceeded say, could be anyone's forgery.
    hop.is_target = r.status == ProbeStatus::reply;
    // A router's unreachable (not a time exceeded) means nothing goes further.
    const bool time_exceeded = (r.icmp_type == 11 && hop.addr.is_v4()) || (r.icmp_type == 3 && hop.addr.is_v6());
    h.halts = !hop.is_target && r.status == ProbeStatus::unreachable && !time_exceeded;
    h.finished = true;
  }
  launch_more_soon();
}

void Trace::finish() {
  if (done_called_) return;
  done_called_ = true;
  const int end = end_ttl();
  bool halted = false;
  for (const auto& h : hops_) {
    // Below start_ttl, a hop left unprobed (the trace aborted) keeps its
    // place, silent with no probe: hops stay one per TTL from first_ttl.
    if (h.hop.ttl > end || (h.attempts_made == 0 && !h.hop.reused_from && h.hop.ttl >= spec_.start_ttl)) break;
    result_.hops.push_back(h.hop);
    if (h.hop.is_target) result_.reached = true;
    halted = halted || h.halts;
  }
  if (result_.stop_reason.empty()) {
    if (result_.reached) result_.stop_reason = "reached";
    else if (halted) result_.stop_reason = "unreachable";
    else if (aborted_) result_.stop_reason = "error";
    else if (end < spec_.max_ttl) result_.stop_reason = "gap";
    else result_.stop_reason = "max_ttl";
  }
  auto done = std::move(done_);
  done(result_);
}

}  // namespace outpost
