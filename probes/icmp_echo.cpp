#include "icmp_echo.hpp"

#include <netinet/in.h>
#include <algorithm>
#include <array>
#include <span>

#include "ip_forge.hpp"
#include "raw_probe.hpp"

namespace outpost {
namespace {

using ip_forge::put16;

constexpr std::uint8_t kEchoRequest4 = 8, kEchoReply4 = 0;
constexpr std::uint8_t kEchoRequest6 = 128, kEchoReply6 = 129;

std::uint64_t read_cookie(const DecodedPacket& p) {
  std::uint64_t c = 0;
  for (int i = 0; i < 8; ++i) c = c << 8 | p.payload_head[i];
  return c;
}

bool is_echo_request(const TransportFields& l4) {
  return (l4.proto == IPPROTO_ICMP && l4.icmp_type == kEchoRequest4) ||
         (l4.proto == IPPROTO_ICMPV6 && l4.icmp_type == kEchoRequest6);
}

bool is_echo_reply(const TransportFields& l4) {
  return (l4.proto == IPPROTO_ICMP && l4.icmp_type == kEchoReply4) ||
         (l4.proto == IPPROTO_ICMPV6 && l4.icmp_type == kEchoReply6);
}

}  // namespace

void paris_fix_checksum(std::span<std::uint8_t> d, std::size_t checksum_offset, std::size_t adjust_offset,
                        std::uint16_t wanted) {
  // checksum = ~S; adding word a to S gives ~(S + a) = wanted when
  // a = ~wanted - S = ~wanted + current (ones' complement arithmetic).
  const std::uint16_t current = static_cast<std::uint16_t>(d[checksum_offset] << 8 | d[checksum_offset + 1]);
  std::uint32_t a = static_cast<std::uint16_t>(~wanted) + static_cast<std::uint32_t>(current);
  a = (a & 0xffff) + (a >> 16);
  d[adjust_offset] = static_cast<std::uint8_t>(a >> 8);
  d[adjust_offset + 1] = static_cast<std::uint8_t>(a);
  d[checksum_offset] = static_cast<std::uint8_t>(wanted >> 8);
  d[checksum_offset + 1] = static_cast<std::uint8_t>(wanted);
}

std::size_t echo_request_size(const EchoRequest& r) {
  // The cookie, and with a fixed checksum the word after it that absorbs the difference.
  return (r.dst.is_v6() ? 40 : 20) + 8 + std::max<std::size_t>(r.payload_size, r.checksum ? 10 : 8);
}

// Written field by field into the caller's buffer (no allocation on a
// probe's way out); a test holds it to libtins' serialization, byte for byte.
std::size_t forge_echo_request(const EchoRequest& r, std::span<std::uint8_t> out) {
  const std::size_t size = echo_request_size(r);
  if (out.size() < size) return 0;
  std::uint8_t* d = out.data();
  const bool v6 = r.dst.is_v6();
  const std::uint8_t protocol = v6 ? std::uint8_t{IPPROTO_ICMPV6} : std::uint8_t{IPPROTO_ICMP};
  const std::size_t ip = ip_forge::write_header(d, r.src, r.dst, protocol, r.ttl, r.ip_id, size);
  const std::size_t icmp_len = size - ip;
  std::uint8_t* icmp = d + ip;
  std::fill(icmp, icmp + 8, 0);
  icmp[0] = v6 ? kEchoRequest6 : kEchoRequest4;
  put16(icmp + 4, r.ident);
  put16(icmp + 6, r.sequence);
  std::uint8_t* payload = icmp + 8;
  for (int i = 0; i < 8; ++i) payload[i] = static_cast<std::uint8_t>(r.cookie >> (56 - 8 * i));
  for (std::size_t i = 8; i < icmp_len - 8; ++i) payload[i] = static_cast<std::uint8_t>(i);
  if (r.checksum) payload[8] = payload[9] = 0;  // the word paris_fix_checksum fills
  put16(icmp + 2, ip_forge::transport_checksum(out.first(size), protocol));
  if (r.checksum) paris_fix_checksum(out.first(size), ip + 2, ip + 16, *r.checksum);
  return size;
}

std::vector<std::uint8_t> forge_echo_request(const EchoRequest& r) {
  std::vector<std::uint8_t> bytes(echo_request_size(r));
  forge_echo_request(r, bytes);
  return bytes;
}

std::uint64_t echo_cookie(const FlowSecret& secret, const IpAddress& dst, std::uint16_t ident,
                          std::uint16_t sequence) {
  return flow_cookie(secret, {FlowProto::icmp_echo, dst, ident, sequence});
}

std::string icmp_echo_filter(const FilterParams&) {
  return "(icmp and (icmp[0] = 0 or icmp[0] = 8)) or (icmp6 and (ip6[40] = 128 or ip6[40] = 129))";
}

std::optional<Classified> icmp_echo_classify(const DecodedPacket& p, const FilterParams&) {
  if (is_echo_request(p.l4)) return Classified{{FlowProto::icmp_echo, p.ip.dst, p.l4.icmp_id, p.l4.icmp_seq}, true};
  if (is_echo_reply(p.l4)) return Classified{{FlowProto::icmp_echo, p.ip.src, p.l4.icmp_id, p.l4.icmp_seq}, false};
  if (stops_datagram(p) && is_echo_request(p.quote->l4)) {
    const auto& q = *p.quote;
    return Classified{{FlowProto::icmp_echo, q.ip.dst, q.l4.icmp_id, q.l4.icmp_seq}, false};
  }
  return std::nullopt;
}

IcmpEchoProbe::IcmpEchoProbe(IpAddress target, Duration timeout, std::uint8_t ttl, std::size_t payload_size,
                             std::optional<std::uint16_t> fixed_checksum)
    : timeout_(timeout) {
  request_.dst = target;
  request_.ttl = ttl;
  request_.payload_size = std::max<std::size_t>(payload_size, 10);
  request_.checksum = fixed_checksum;
  result_.target = target;
}

void IcmpEchoProbe::start(ProbeContext& ctx) {
  result_.sent = ctx.wall_now();
  request_.src = ctx.source_for(request_.dst, &result_.error);
  request_.ip_id = ctx.next_ip_id();
  if (!request_.src) {
    finished_ = true;
    result_.status = ProbeStatus::error;
    return;
  }
  // An identifier and sequence number drawn for this probe, whose flow key is
  // free (another probe to the same address may have drawn the same).
  bool claimed = false;
  for (int attempt = 0; attempt < 8 && !claimed; ++attempt) {
    request_.ident = ctx.next_icmp_ident();
    request_.sequence = ctx.next_icmp_sequence();
    claimed = ctx.expect({FlowProto::icmp_echo, request_.dst, request_.ident, request_.sequence});
  }
  result_.sequence = request_.sequence;
  if (!claimed) {
    finished_ = true;
    result_.status = ProbeStatus::error;
    result_.error = "too many probes in flight to " + request_.dst.to_string();
    return;
  }
  request_.cookie = echo_cookie(ctx.secret(), request_.dst, request_.ident, request_.sequence);
  ip_forge::DatagramBuffer buffer;
  const auto datagram = buffer.of_size(echo_request_size(request_));
  forge_echo_request(request_, datagram);
  const std::size_t icmp = request_.dst.is_v6() ? 40 : 20;
  sent_checksum_ = static_cast<std::uint16_t>(datagram[icmp + 2] << 8 | datagram[icmp + 3]);
  result_.sent = ctx.wall_now();
  std::string error;
  if (!ctx.send(request_.dst, datagram, &error)) {
    finished_ = true;
    result_.status = ProbeStatus::error;
    result_.error = error;
    return;
  }
  ctx.arm_timeout(timeout_);
}

void IcmpEchoProbe::on_sent(WallTime kernel_tx) {
  note_kernel_send(result_, kernel_tx);
}

bool IcmpEchoProbe::on_packet(const DecodedPacket& p, WallTime kernel_rx) {
  if (finished_) return false;
  if (is_echo_reply(p.l4)) {
    if (p.payload_size != request_.payload_size || read_cookie(p) != request_.cookie) return false;
    finish(ProbeStatus::reply, kernel_rx, p);
    return true;
  }
  if (stops_datagram(p)) {
    // An ICMP error must quote the datagram we sent: our source, our IP id,
    // and our ICMP checksum, which covers the cookie no one else can compute.
    const auto& q = *p.quote;
    if (q.ip.src != request_.src || (q.ip.src.is_v4() && q.ip.id != request_.ip_id)) return false;
    if (!is_echo_request(q.l4) || q.l4.checksum != sent_checksum_) return false;
    finish(ProbeStatus::unreachable, kernel_rx, p);
    return true;
  }
  return false;
}

void IcmpEchoProbe::on_send_error(const std::string& error) { note_send_error(result_, finished_, error); }

void IcmpEchoProbe::on_timeout() {
  if (finished_) return;
  finished_ = true;
  result_.status = ProbeStatus::timeout;
}

void IcmpEchoProbe::finish(ProbeStatus status, WallTime rx, const DecodedPacket& p) {
  finished_ = true;
  fill_answer(result_, status, rx, p);
}

}  // namespace outpost
