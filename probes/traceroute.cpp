#include "traceroute.hpp"

#include <netinet/in.h>
#include <tins/tins.h>

#include <algorithm>
#include <charconv>

#include "icmp_echo.hpp"
#include "raw_probe.hpp"

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

std::vector<std::uint8_t> forge_udp_trace_probe(const UdpTraceRequest& r) {
  std::vector<std::uint8_t> payload(std::max<std::size_t>(r.payload_size, 2), 0);
  for (std::size_t i = 2; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>('@' + i);
  std::vector<std::uint8_t> bytes;
  std::size_t udp_offset;
  if (r.dst.is_v6()) {
    Tins::IPv6 ip(tins_v6(r.dst), tins_v6(r.src));
    ip.hop_limit(r.ttl);
    ip /= Tins::UDP(r.dport, r.sport);
    ip /= Tins::RawPDU(payload.data(), static_cast<std::uint32_t>(payload.size()));
    bytes = ip.serialize();
    udp_offset = 40;
  } else {
    Tins::IP ip(tins_v4(r.dst), tins_v4(r.src));
    ip.ttl(r.ttl);
    ip.id(r.ip_id);
    ip /= Tins::UDP(r.dport, r.sport);
    ip /= Tins::RawPDU(payload.data(), static_cast<std::uint32_t>(payload.size()));
    bytes = ip.serialize();
    udp_offset = 20;
  }
  // The first payload word absorbs the difference: the checksum becomes the probe's identity.
  paris_fix_checksum(bytes, udp_offset + 6, udp_offset + 8, r.checksum);
  return bytes;
}

namespace {
bool in_trace_ports(std::uint16_t port) { return port >= kTraceUdpFirstPort && port <= kTraceUdpLastPort; }
}  // namespace

std::string udp_trace_filter(const FilterParams&) {
  return "udp and src portrange " + std::to_string(kTraceUdpFirstPort) + "-" + std::to_string(kTraceUdpLastPort);
}

std::optional<Classified> udp_trace_classify(const DecodedPacket& p, const FilterParams&) {
  if (p.l4.proto == IPPROTO_UDP && in_trace_ports(p.l4.sport))
    return Classified{{FlowProto::udp, p.ip.dst, p.l4.sport, p.l4.checksum}, true};
  if (p.quote && p.quote->l4.proto == IPPROTO_UDP && in_trace_ports(p.quote->l4.sport)) {
    const auto& q = *p.quote;
    return Classified{{FlowProto::udp, q.ip.dst, q.l4.sport, q.l4.checksum}, false};
  }
  return std::nullopt;
}

UdpTraceProbe::UdpTraceProbe(IpAddress target, Duration timeout, std::uint8_t ttl, std::uint16_t sport,
                             std::uint16_t dport, std::uint16_t checksum)
    : timeout_(timeout) {
  request_.dst = target;
  request_.ttl = ttl;
  request_.sport = sport;
  request_.dport = dport;
  request_.checksum = checksum;
  result_.target = target;
  result_.sequence = checksum;
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
  if (!ctx.expect({FlowProto::udp, request_.dst, request_.sport, request_.checksum}))
    return fail("trace flow already in use toward " + request_.dst.to_string());
  const auto datagram = forge_udp_trace_probe(request_);
  result_.sent = ctx.wall_now();
  if (!ctx.send(request_.dst, datagram, &result_.error)) return fail("");
  ctx.arm_timeout(timeout_);
}

void UdpTraceProbe::on_sent(WallTime kernel_tx) { note_kernel_send(result_, kernel_tx); }

bool UdpTraceProbe::on_packet(const DecodedPacket& p, WallTime kernel_rx) {
  if (finished_ || !p.quote) return false;
  const auto& q = p.quote->ip;
  if (q.src != request_.src || (q.src.is_v4() && q.id != request_.ip_id)) return false;
  const bool port_unreachable = (p.l4.proto == IPPROTO_ICMP && p.l4.icmp_type == 3 && p.l4.icmp_code == 3) ||
                                (p.l4.proto == IPPROTO_ICMPV6 && p.l4.icmp_type == 1 && p.l4.icmp_code == 4);
  // The destination's port unreachable is the UDP trace's "reply".
  const bool reached = port_unreachable && p.ip.src == request_.dst;
  finished_ = true;
  fill_answer(result_, reached ? ProbeStatus::reply : ProbeStatus::unreachable, kernel_rx, p);
  return true;
}

void UdpTraceProbe::on_timeout() {
  if (finished_) return;
  finished_ = true;
  result_.status = ProbeStatus::timeout;
}

// ---- the trace ----

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
  result_.target = target;
  result_.spec = spec_;
  result_.started = now;
  switch (spec_.method) {
    case TraceMethod::icmp:  // any fixed checksum but 0 and 0xffff
      result_.flow_id = 1 + flow_seed % 0xfffd;
      break;
    case TraceMethod::udp:
    case TraceMethod::tcp:
      result_.flow_id = kTraceUdpFirstPort + flow_seed % (kTraceUdpLastPort - kTraceUdpFirstPort + 1);
      break;
  }
  for (int ttl = spec_.first_ttl; ttl <= spec_.max_ttl; ++ttl) {
    HopState h;
    h.hop.ttl = ttl;
    hops_.push_back(h);
  }
  next_ttl_ = spec_.first_ttl;
}

std::unique_ptr<Probe> Trace::make_hop_probe(int ttl) {
  const auto t = static_cast<std::uint8_t>(ttl);
  switch (spec_.method) {
    case TraceMethod::icmp:
      return std::make_unique<IcmpEchoProbe>(result_.target, spec_.timeout, t, 56,
                                             static_cast<std::uint16_t>(result_.flow_id));
    case TraceMethod::udp: {
      // Every probe's checksum differs (1, 2, ...; never 0 or 0xffff): it is the probe's identity.
      const std::uint16_t id = next_checksum_;
      next_checksum_ = next_checksum_ >= 0xfffe ? 1 : next_checksum_ + 1;
      return std::make_unique<UdpTraceProbe>(result_.target, spec_.timeout, t,
                                             static_cast<std::uint16_t>(result_.flow_id), spec_.port, id);
    }
    case TraceMethod::tcp:
      return nullptr;
  }
  return nullptr;
}

void Trace::start() {
  if (spec_.method == TraceMethod::tcp) {
    result_.stop_reason = "error";
    result_.error = "tcp traces are not available in this build";
    finish();
    return;
  }
  launch_more();
}

int Trace::end_ttl() const {
  // Nothing is needed past the destination, past a router that said
  // unreachable, or past a run of gap_limit silent hops.
  int silent_run = 0;
  for (const auto& h : hops_) {
    if (h.finished && (h.hop.is_target || h.halts)) return h.hop.ttl;
    if (h.finished && !h.hop.addr) {
      if (++silent_run >= spec_.gap_limit) return h.hop.ttl;
    } else {
      silent_run = 0;
    }
  }
  return spec_.max_ttl;
}

void Trace::launch_more() {
  const int lowest_open = [&] {
    for (const auto& h : hops_)
      if (!h.finished) return h.hop.ttl;
    return spec_.max_ttl + 1;
  }();
  const int end = end_ttl();
  while (next_ttl_ <= end && next_ttl_ < lowest_open + spec_.parallel) send(next_ttl_++);
  if (in_flight_ == 0 && next_ttl_ > end) finish();
}

void Trace::send(int ttl) {
  HopState& h = hops_[static_cast<std::size_t>(ttl - spec_.first_ttl)];
  ++h.attempts_made;
  ++h.hop.probes_sent;
  h.in_flight = true;
  ++in_flight_;
  auto self = shared_from_this();
  launch_(make_hop_probe(ttl), [self, ttl](const ProbeResult& r) { self->on_result(ttl, r); });
}

void Trace::on_result(int ttl, const ProbeResult& r) {
  --in_flight_;
  HopState& h = hops_[static_cast<std::size_t>(ttl - spec_.first_ttl)];
  h.in_flight = false;
  if (r.status == ProbeStatus::error) {
    h.finished = true;
    if (result_.error.empty()) result_.error = r.error;
  } else if (r.status == ProbeStatus::timeout) {
    if (h.attempts_made < spec_.attempts && ttl <= end_ttl()) {
      send(ttl);
      return;
    }
    h.finished = true;
  } else {
    TraceHop& hop = h.hop;
    hop.addr = r.reply_from;
    hop.rtt = r.rtt;
    hop.icmp_type = r.icmp_type;
    hop.icmp_code = r.icmp_code;
    hop.quoted_ttl = r.quoted_ttl;
    hop.reply_ttl = r.reply_ttl;
    hop.mpls = r.mpls;
    hop.is_target = r.status == ProbeStatus::reply || r.reply_from == result_.target;
    // A router's unreachable (not a time exceeded) means nothing goes further.
    const bool time_exceeded = (r.icmp_type == 11 && hop.addr.is_v4()) || (r.icmp_type == 3 && hop.addr.is_v6());
    h.halts = !hop.is_target && r.status == ProbeStatus::unreachable && !time_exceeded;
    h.finished = true;
  }
  launch_more();
}

void Trace::finish() {
  if (done_called_) return;
  done_called_ = true;
  const int end = end_ttl();
  bool halted = false;
  for (const auto& h : hops_) {
    if (h.hop.ttl > end || h.attempts_made == 0) break;
    result_.hops.push_back(h.hop);
    if (h.hop.is_target) result_.reached = true;
    halted = halted || h.halts;
  }
  if (result_.stop_reason.empty()) {
    if (result_.reached) result_.stop_reason = "reached";
    else if (halted) result_.stop_reason = "unreachable";
    else if (!result_.error.empty() && result_.hops.empty()) result_.stop_reason = "error";
    else if (end < spec_.max_ttl) result_.stop_reason = "gap";
    else result_.stop_reason = "max_ttl";
  }
  auto done = std::move(done_);
  done(result_);
}

}  // namespace outpost
