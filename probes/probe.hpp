// The probe seam: what one probe in flight sees of the engine (ProbeContext),
// what the engine sees of a probe (Probe), and the result it leaves.
// Leaves to others: sockets and capture (engine), schedules and records (agent/).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ip_address.hpp"
#include "packet_decode.hpp"

namespace outpost {

class DnsSockets;
struct DnsSocketMessage;

using Duration = std::chrono::nanoseconds;
using SteadyTime = std::chrono::steady_clock::time_point;
// Wall-clock time with nanoseconds: kernel packet timestamps and record times.
using WallTime = std::chrono::time_point<std::chrono::system_clock, std::chrono::nanoseconds>;

enum class ProbeStatus : std::uint8_t { reply, timeout, unreachable, refused, error };
std::string_view to_string(ProbeStatus status);

// What a dns probe learned (the record's dns fields); absent for other methods.
struct DnsAnswerInfo {
  std::string query;                 // the name asked
  std::string qtype;                 // A, AAAA, ...
  std::string rcode;                 // NOERROR, NXDOMAIN, SERVFAIL, ...: empty when no answer came
  std::vector<std::string> answers;  // the answer section's data as text
  std::uint32_t answers_dropped = 0;  // answers past those kept (a record keeps kDnsMaxAnswersKept)
  bool truncated = false;            // the UDP answer had the TC bit (then TCP was tried)
  std::string transport;             // where the answers came from: udp, or tcp after truncation
  std::string rtt_clock;             // kernel: SO_TIMESTAMPING both ends; kernel_rx: fallback, user-space send time
  std::optional<Duration> tcp_time;  // the TCP retry, connect to answer (steady clock)
  std::string tcp_error;             // why the TCP retry gave nothing (the UDP answer stands)
  std::uint32_t ignored = 0;         // datagrams counted and ignored: wrong id or question, malformed
  std::string last_ignored;          // why the last of them was ignored
};

struct ProbeResult {
  ProbeStatus status = ProbeStatus::error;
  IpAddress target;
  WallTime sent;                // when the probe left: the kernel's timestamp when seen
  bool sent_kernel_stamp = false;
  std::optional<Duration> rtt;  // from kernel timestamps at both ends, when answered
  // When the RTT of a raw probe took an end from the wall clock (the kernel
  // gave no stamp): kernel_rx (the send time), kernel_tx (the receive time)
  // or user (both). Empty: kernel stamps at both ends. (DNS says its own,
  // in dns->rtt_clock.)
  std::string rtt_clock;
  IpAddress reply_from;         // who answered (the target, or a router's ICMP error)
  int reply_ttl = -1;           // IP TTL of the answer
  int icmp_type = -1;           // for ICMP answers
  int icmp_code = -1;
  int quoted_ttl = -1;          // ICMP errors: the TTL of our datagram as the router quotes it
  std::vector<MplsEntry> mpls;  // ICMP errors: the router's MPLS label stack, if it says
  std::uint16_t sequence = 0;   // the probe's sequence number on the wire
  std::string error;            // why, when status is error (or detail for unreachable)
  // The probe failed (status error, or unreachable from our own kernel)
  // because it never left this host: no route or source address toward the
  // target, or a send that failed (interface down). Says something about the
  // vantage point, nothing about the target.
  bool local_error = false;
  std::optional<DnsAnswerInfo> dns;
};

// What identifies a probe's packets on the wire, the same for the probe
// going out and for whatever comes back (reply, or ICMP error quoting it).
enum class FlowProto : std::uint8_t { icmp_echo, tcp, udp, tcp_trace };
struct FlowKey {
  FlowProto proto = FlowProto::icmp_echo;
  IpAddress remote;       // the probed address
  std::uint16_t a = 0;    // icmp: identifier; tcp/udp: local port
  std::uint16_t b = 0;    // icmp: sequence;   tcp: remote port; udp trace: the UDP checksum
  std::uint32_t c = 0;    // tcp_trace: the SYN's sequence number (the ports are the trace's, fixed)
  bool operator==(const FlowKey&) const = default;
};

struct FlowKeyHash {
  std::size_t operator()(const FlowKey& k) const noexcept {
    std::size_t h = k.remote.hash();
    h ^= (static_cast<std::size_t>(k.proto) << 56) ^ (static_cast<std::size_t>(k.a) << 16) ^ k.b ^
         (static_cast<std::size_t>(k.c) << 24);
    return h * 0x9E3779B97F4A7C15ull;
  }
};

// The key of the keyed hash (SipHash-2-4) behind every cookie: drawn from the
// kernel's random source when the engine starts, never sent.
using FlowSecret = std::array<std::uint8_t, 16>;

// The engine's services to one probe. Fakeable: unit tests drive probes with
// a fake context and fixture packets.
class ProbeContext {
 public:
  virtual ~ProbeContext() = default;
  // The local address the kernel would use toward dst (and so the one to forge).
  // Empty, with *error, when there is no route or no capture toward dst.
  virtual IpAddress source_for(const IpAddress& dst, std::string* error) = 0;
  // Fresh numbers for one probe that no earlier probe's predict (a keyed PRF
  // over a counter): IP identifier, echo identifier and sequence, DNS id.
  virtual std::uint16_t next_ip_id() = 0;
  virtual std::uint16_t next_icmp_ident() = 0;
  virtual std::uint16_t next_icmp_sequence() = 0;
  virtual std::uint16_t next_dns_id() = 0;
  // The per-engine key of the cookies that tell our answers from forged ones.
  virtual const FlowSecret& secret() const = 0;
  // The wall clock, for a record's time when no kernel timestamp is at hand.
  virtual WallTime wall_now() = 0;
  // Replies matching this key come to this probe; false when the key is taken.
  virtual bool expect(const FlowKey& key) = 0;
  // Puts the packet (a whole IP datagram) on the wire; false and *error on failure.
  virtual bool send(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string* error) = 0;
  virtual void arm_timeout(Duration d) = 0;
  // For probes on ordinary sockets (tcp_connect, dns): the engine watches fd
  // for these epoll events and calls the probe's on_ready. False when the
  // engine runs without an event loop (then such probes cannot run).
  virtual bool watch(int fd, std::uint32_t events) = 0;
  // Probes on ordinary sockets report their own send (the query, the SYN of
  // connect): the engine counts it as sent, or as a send error.
  virtual void count_socket_send(bool ok) { (void)ok; }
  // The UDP sockets that DNS queries share (dns_sockets.hpp), and *token,
  // this probe's name there: what they read for its query comes to its
  // on_dns_message. Null where there are none (each query then has a socket
  // of its own, watched with watch()).
  virtual DnsSockets* dns_sockets(std::uint64_t* token) {
    (void)token;
    return nullptr;
  }
};

// One probe in flight.
class Probe {
 public:
  virtual ~Probe() = default;
  // Forges and sends; on failure leaves a finished result with status error.
  virtual void start(ProbeContext& ctx) = 0;
  // The capture saw our own packet leave, at this kernel time.
  virtual void on_sent(WallTime kernel_tx) = 0;
  // A packet whose flow key is ours. Returns false when it is not really for
  // us (a spoofed or foreign reply): the engine counts it and ignores it.
  virtual bool on_packet(const DecodedPacket& packet, WallTime kernel_rx) = 0;
  virtual void on_timeout() = 0;
  // A datagram handed to the wire's sending thread could not be sent
  // (ProbeContext::send said true): the probe ends with status error.
  virtual void on_send_error(const std::string& error) { (void)error; }
  // A watched socket is ready (epoll event bits). The probe may watch more
  // sockets from here (ctx.watch); it closes its own sockets when it is
  // destroyed, after the engine stopped watching them, and not before.
  virtual void on_ready(ProbeContext& ctx, int fd, std::uint32_t events) {}
  // What a shared DNS socket read for this probe's query (dns_sockets.hpp).
  virtual void on_dns_message(ProbeContext& ctx, const DnsSocketMessage& message) {
    (void)ctx;
    (void)message;
  }
  virtual bool finished() const = 0;
  virtual const ProbeResult& result() const = 0;
};

}  // namespace outpost
