#include "tcp_syn.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <atomic>

#include <sodium.h>

#include "ip_forge.hpp"
#include "raw_probe.hpp"

namespace outpost {
namespace {

constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr std::uint32_t kPortCount = kTcpSynLastPort - kTcpSynFirstPort + 1;
constexpr int kPortAttempts = 16;

bool is_probe_port(std::uint16_t port) { return port >= kTcpSynFirstPort && port <= kTcpSynLastPort; }

// The next source port, cycling through the range. One cursor per process:
// the ports are the host's, whichever engine uses them; a random start keeps
// two processes from walking the range in step. (libsodium's draw, from
// getrandom(2): std::random_device first probes the CPU's random
// instructions with cpuid, which a virtual machine traps, about 7 µs each.)
std::uint16_t next_source_port() {
  static std::atomic<std::uint32_t> cursor{randombytes_random()};
  return static_cast<std::uint16_t>(kTcpSynFirstPort + cursor.fetch_add(1, std::memory_order_relaxed) % kPortCount);
}

}  // namespace

std::size_t tcp_syn_size(const SynSegment& s) { return ip_forge::header_size(s.dst) + 20 + (s.mss ? 4 : 0); }

// Written field by field into the caller's buffer; a test holds it to
// libtins' serialization, byte for byte.
std::size_t forge_tcp_syn(const SynSegment& s, std::span<std::uint8_t> out) {
  const std::size_t size = tcp_syn_size(s);
  if (out.size() < size) return 0;
  std::uint8_t* d = out.data();
  const std::size_t ip = ip_forge::write_header(d, s.src, s.dst, IPPROTO_TCP, s.ttl, s.ip_id, size);
  std::uint8_t* t = d + ip;
  std::fill(t, d + size, 0);
  ip_forge::put16(t, s.sport);
  ip_forge::put16(t + 2, s.dport);
  ip_forge::put32(t + 4, s.isn);
  t[12] = static_cast<std::uint8_t>((size - ip) / 4 << 4);  // the data offset, in words
  t[13] = kSyn;
  ip_forge::put16(t + 14, s.window);
  if (s.mss) {  // kind 2, length 4
    t[20] = 2;
    t[21] = 4;
    ip_forge::put16(t + 22, s.mss);
  }
  ip_forge::put16(t + 16, ip_forge::transport_checksum(out.first(size), IPPROTO_TCP));
  return size;
}

std::vector<std::uint8_t> forge_tcp_syn(const SynSegment& s) {
  std::vector<std::uint8_t> bytes(tcp_syn_size(s));
  forge_tcp_syn(s, bytes);
  return bytes;
}

std::uint32_t tcp_syn_cookie(const FlowSecret& secret, const IpAddress& dst, std::uint16_t sport, std::uint16_t dport) {
  return static_cast<std::uint32_t>(flow_cookie(secret, {FlowProto::tcp, dst, sport, dport}));
}

std::string tcp_syn_filter(const FilterParams&) {
  const std::string range = std::to_string(kTcpSynFirstPort) + "-" + std::to_string(kTcpSynLastPort);
  return "tcp and (src portrange " + range + " or dst portrange " + range + ")";
}

std::optional<Classified> tcp_syn_classify(const DecodedPacket& p, const FilterParams&) {
  if (p.l4.proto == IPPROTO_TCP) {
    const auto& t = p.l4;
    // Our SYN leaving (a bare SYN: answers always carry ACK or RST).
    if ((t.tcp_flags & (kSyn | kAck | kRst)) == kSyn && is_probe_port(t.sport))
      return Classified{{FlowProto::tcp, p.ip.dst, t.sport, t.dport}, true};
    // The target's answer to one of our ports.
    if (is_probe_port(t.dport)) return Classified{{FlowProto::tcp, p.ip.src, t.dport, t.sport}, false};
    // Our kernel's RST to a SYN-ACK: ours, leaving, and of a probe already answered.
    if (is_probe_port(t.sport)) return Classified{{FlowProto::tcp, p.ip.dst, t.sport, t.dport}, true};
    return std::nullopt;
  }
  if (stops_datagram(p) && p.quote->l4.proto == IPPROTO_TCP && is_probe_port(p.quote->l4.sport)) {
    const auto& q = *p.quote;
    return Classified{{FlowProto::tcp, q.ip.dst, q.l4.sport, q.l4.dport}, false};
  }
  return std::nullopt;
}

TcpSynProbe::TcpSynProbe(IpAddress target, std::uint16_t port, Duration timeout, std::uint8_t ttl)
    : timeout_(timeout) {
  syn_.dst = target;
  syn_.dport = port;
  syn_.ttl = ttl;
  syn_.mss = target.is_v6() ? 1440 : 1460;  // what a host on Ethernet offers
  result_.target = target;
}

void TcpSynProbe::start(ProbeContext& ctx) {
  result_.sent = ctx.wall_now();
  std::string error;
  syn_.src = ctx.source_for(syn_.dst, &error);
  if (!syn_.src) return fail(error);
  // The next port whose flow key is free (another probe to the same
  // address and port may still be in flight from it).
  bool claimed = false;
  for (int attempt = 0; attempt < kPortAttempts && !claimed; ++attempt) {
    syn_.sport = next_source_port();
    claimed = ctx.expect({FlowProto::tcp, syn_.dst, syn_.sport, syn_.dport});
  }
  if (!claimed) {
    syn_.sport = 0;
    return fail("too many probes in flight to " + syn_.dst.to_string() + " port " + std::to_string(syn_.dport));
  }
  syn_.isn = tcp_syn_cookie(ctx.secret(), syn_.dst, syn_.sport, syn_.dport);
  syn_.ip_id = ctx.next_ip_id();
  std::array<std::uint8_t, kTcpSynMaxSize> datagram;
  const std::size_t size = forge_tcp_syn(syn_, datagram);
  result_.sent = ctx.wall_now();
  if (!ctx.send(syn_.dst, std::span(datagram).first(size), &error)) return fail(error);
  ctx.arm_timeout(timeout_);
}

void TcpSynProbe::on_sent(WallTime kernel_tx) { note_kernel_send(result_, kernel_tx); }

bool TcpSynProbe::on_packet(const DecodedPacket& p, WallTime kernel_rx) {
  if (finished_) return false;
  if (p.l4.proto == IPPROTO_TCP) {
    // Only the target's answer to this very SYN acknowledges ISN+1.
    const auto& t = p.l4;
    if (!(t.tcp_flags & kAck) || t.tcp_ack != syn_.isn + 1) return false;
    if (t.tcp_flags & kRst) {
      finish(ProbeStatus::refused, kernel_rx, p);
    } else if ((t.tcp_flags & (kSyn | kFin)) == kSyn) {
      finish(ProbeStatus::reply, kernel_rx, p);
    } else {
      return false;
    }
    return true;
  }
  if (stops_datagram(p)) {
    // An ICMP error must quote our SYN: our source, our ISN.
    const auto& q = *p.quote;
    if (q.ip.src != syn_.src || q.l4.proto != IPPROTO_TCP || q.l4.tcp_seq != syn_.isn) return false;
    finish(ProbeStatus::unreachable, kernel_rx, p);
    return true;
  }
  return false;
}

void TcpSynProbe::on_send_error(const std::string& error) { note_send_error(result_, finished_, error); }

void TcpSynProbe::on_timeout() {
  if (finished_) return;
  finished_ = true;
  result_.status = ProbeStatus::timeout;
}

void TcpSynProbe::fail(std::string error) {
  finished_ = true;
  result_.status = ProbeStatus::error;
  result_.error = std::move(error);
}

void TcpSynProbe::finish(ProbeStatus status, WallTime rx, const DecodedPacket& p) {
  finished_ = true;
  fill_answer(result_, status, rx, p);
}

}  // namespace outpost
