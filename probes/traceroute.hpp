// Paris traceroute: per-TTL probes that all keep one flow identifier (the
// fields load balancers hash), sent in parallel through a caller-supplied
// (rate-limited) launcher, with attempts per hop, a stop at the destination
// and after N silent hops; and the UDP hop probe it needs (ICMP hops reuse the
// echo probe with a fixed checksum).
// Leaves to others: the rate cap (the launcher), ASNs and baselines (agent).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine.hpp"
#include "probe.hpp"
#include "registry.hpp"

namespace outpost {

enum class TraceMethod : std::uint8_t { icmp, udp, tcp };

struct TraceSpec {
  TraceMethod method = TraceMethod::icmp;
  std::uint16_t port = 0;  // tcp: the destination port; udp: 0 means 33434
  int first_ttl = 1;
  int max_ttl = 30;
  int attempts = 2;     // probes per hop before it counts as silent
  int gap_limit = 5;    // consecutive silent hops that end the trace
  int parallel = 8;     // TTLs in flight at once
  // The TTL the destination is expected at (0: unknown), from the TTL of
  // its last answer: no probe goes past it until every hop up to it is
  // known, so that a trace of a path as long as expected sends one probe
  // per hop and none beyond the destination.
  int expected_ttl = 0;
  // Where probing starts (0 or first_ttl: at first_ttl, forward only).
  // Above first_ttl, the TTLs from here up are probed as usual, then those
  // below it one at a time, downward, until a hop answers from an address
  // the trace's KnownPrefix has a path to (Doubletree's backward probing
  // with a local stop set): the hops before it are taken from that path.
  int start_ttl = 0;
  Duration timeout = std::chrono::seconds(1);  // per probe
};

// How far away a host is, from the IP TTL (hop limit) of its answer: its
// initial TTL taken as the smallest of 32, 64, 128 and 255 at least as large,
// the hops back assumed as many as the hops there. The TTL at which a probe
// reaches it (1 for a neighbour); 0 when ttl is out of range. Pure.
int ttl_from_reply_ttl(int reply_ttl);

// "icmp", "udp", "tcp:PORT"; nullopt with *error otherwise.
std::optional<TraceSpec> parse_trace_method(const std::string& text, std::string* error);
std::string trace_method_name(TraceMethod method);  // "icmp" | "udp" | "tcp"

struct TraceHop {
  int ttl = 0;
  IpAddress addr;                // empty: silent
  std::optional<Duration> rtt;
  std::string rtt_clock;         // as ProbeResult::rtt_clock: empty with kernel stamps at both ends
  int icmp_type = -1;
  int icmp_code = -1;
  int quoted_ttl = -1;
  int reply_ttl = -1;
  std::vector<MplsEntry> mpls;
  int probes_sent = 0;
  bool is_target = false;        // the destination's own answer type came at this TTL (not just its address)
  // Set: this trace did not probe the hop, it was taken from an earlier
  // trace that did, at this time, and went through the same next hop at
  // the same TTL (TraceSpec::start_ttl). Such a hop has no RTT.
  std::optional<WallTime> reused_from;
};

struct TraceResult {
  IpAddress target;
  TraceSpec spec;
  WallTime started;
  std::vector<TraceHop> hops;    // TTL first_ttl.. in order, silent hops included
  bool reached = false;
  // "reached", "unreachable" (a router said so), "gap" (N silent hops), "max_ttl", "error"
  std::string stop_reason;
  std::uint32_t flow_id = 0;     // icmp: the fixed checksum; udp/tcp: the source port
  std::string error;
};

// Source ports of UDP and TCP traces: outside Linux's default ephemeral
// range, so the kernel's own sockets never use them, and below tcp_syn's.
inline constexpr std::uint16_t kTraceFirstPort = 61000;
inline constexpr std::uint16_t kTraceLastPort = 61999;
inline constexpr std::uint16_t kTraceUdpDefaultPort = 33434;

struct UdpTraceRequest {
  IpAddress src;
  IpAddress dst;
  std::uint16_t sport = 0;
  std::uint16_t dport = kTraceUdpDefaultPort;
  std::uint16_t ip_id = 0;
  std::uint8_t ttl = 1;
  std::uint16_t checksum = 1;  // the probe's identity within the flow (never 0 or 0xffff): udp_trace_checksum
  std::size_t payload_size = 12;
};

// The whole IP datagram with the UDP checksum forced to request.checksum. Pure.
std::vector<std::uint8_t> forge_udp_trace_probe(const UdpTraceRequest& request);
// The same into `out` (a probe's own buffer: no allocation on its way out):
// its size, or 0 when `out` is shorter than udp_trace_probe_size(request).
std::size_t forge_udp_trace_probe(const UdpTraceRequest& request, std::span<std::uint8_t> out);
std::size_t udp_trace_probe_size(const UdpTraceRequest& request);
std::string udp_trace_filter(const FilterParams& params);
std::optional<Classified> udp_trace_classify(const DecodedPacket& packet, const FilterParams& params);
std::string tcp_trace_filter(const FilterParams& params);
std::optional<Classified> tcp_trace_classify(const DecodedPacket& packet, const FilterParams& params);

// The UDP checksum of a trace's probe, its identity: a keyed permutation of
// its number within the flow, never 0 or 0xffff, distinct for up to 65534
// probes. Routers quote it; an off-path host cannot guess it.
std::uint16_t udp_trace_checksum(const FlowSecret& secret, const IpAddress& dst, std::uint16_t sport,
                                 std::uint16_t dport, std::uint32_t probe_id);

// One UDP probe of a trace: answered by an ICMP error that quotes it (time
// exceeded from a router, port unreachable from the destination).
class UdpTraceProbe final : public Probe {
 public:
  UdpTraceProbe(IpAddress target, Duration timeout, std::uint8_t ttl, std::uint16_t sport, std::uint16_t dport,
                std::uint32_t probe_id);
  void start(ProbeContext& ctx) override;
  void on_sent(WallTime kernel_tx) override;
  bool on_packet(const DecodedPacket& packet, WallTime kernel_rx) override;
  void on_timeout() override;
  void on_send_error(const std::string& error) override;
  bool finished() const override { return finished_; }
  const ProbeResult& result() const override { return result_; }

 private:
  UdpTraceRequest request_;
  std::uint32_t probe_id_;
  Duration timeout_;
  ProbeResult result_;
  bool finished_ = false;
};

// One TCP SYN of a trace: the ports stay the trace's, the sequence number
// (a keyed hash of the flow and the probe's number) tells the probes apart:
// quoted by routers, acknowledged+1 by the target. Only the target's SYN-ACK
// or RST reaches it; an ICMP error from its address is no answer of a TCP stack.
class TcpTraceProbe final : public Probe {
 public:
  TcpTraceProbe(IpAddress target, Duration timeout, std::uint8_t ttl, std::uint16_t sport, std::uint16_t dport,
                std::uint32_t probe_id);
  void start(ProbeContext& ctx) override;
  void on_sent(WallTime kernel_tx) override;
  bool on_packet(const DecodedPacket& packet, WallTime kernel_rx) override;
  void on_timeout() override;
  void on_send_error(const std::string& error) override;
  bool finished() const override { return finished_; }
  const ProbeResult& result() const override { return result_; }

 private:
  IpAddress src_, dst_;
  std::uint16_t sport_, dport_, ip_id_ = 0;
  std::uint8_t ttl_;
  std::uint32_t probe_id_, isn_ = 0;
  Duration timeout_;
  ProbeResult result_;
  bool finished_ = false;
};

class Trace : public std::enable_shared_from_this<Trace> {
 public:
  // How hop probes reach the engine: directly, or through the agent's rate cap.
  using Launch = std::function<void(std::unique_ptr<Probe>, Engine::Done)>;
  using Done = std::function<void(const TraceResult&)>;

  // flow_seed picks the trace's flow identifier (fixed checksum or source port).
  static std::shared_ptr<Trace> create(TraceSpec spec, IpAddress target, std::uint32_t flow_seed, WallTime now,
                                       Launch launch, Done done);
  void start();
  // Runs a callback after a delay: the caller's event loop.
  using After = std::function<void(Duration, std::function<void()>)>;
  // With it, a hop's next attempt goes once the last one has gone
  // unanswered for retry_wait() (three times the slowest answer of this
  // trace so far, at least kRetryFloor; a quarter of the timeout before any
  // answer), not after its whole timeout, and waits as long as the earlier
  // one still does (at least as long as that one went unanswered): a hop
  // is silent one timeout after its first probe went, as when traceroute
  // sends its attempts at once, and a trace past a dead link takes one
  // timeout, not one per attempt, nor one plus the retry's wait. An answer
  // to an earlier attempt still counts. Without it (before start()),
  // attempts go one after the other, each with a whole timeout.
  void retry_early(After after) { after_ = std::move(after); }
  static constexpr Duration kRetryFloor = std::chrono::milliseconds(20);
  // Runs a callback once the caller's event loop is done handing over what
  // came in with the answer at hand (EventLoop::defer).
  using Defer = std::function<void(std::function<void()>)>;
  // With it (before start()), the TTLs that answers make room for go out
  // once every answer that came in with them is taken, not one per answer
  // as it is read: the destination's answer among them ends the window. On
  // the lab, whose 8 answers come in one read, a 4-hop trace sent 11
  // probes, 3 of them past the destination; it now sends 8.
  void launch_after_answers(Defer defer) { defer_ = std::move(defer); }
  // Hands over, now, the answers already waiting (Engine::settle_sends).
  // With it and launch_after_answers (before start()), each probe of a
  // window is followed by a look at what came in already: where answers
  // come back while the probes are still going out (a lab, a host next
  // door, whose forwarding runs in the sender's own system call), the
  // destination's answer ends the window before the TTLs past it go. On the
  // lab a 4-hop trace sent 8 probes, 4 of them past the destination; it now
  // sends 4. Further away nothing has come back yet, and a look finds nothing.
  using Take = std::function<void()>;
  void take_answers_between_sends(Take take) { take_ = std::move(take); }
  // With spec.start_ttl above first_ttl: for a hop at `ttl` that answered
  // from `addr` while probing backward, the hops first_ttl..ttl-1 of a known
  // path through it (each with reused_from set), or nullopt to go on
  // probing. Before start().
  using KnownPrefix = std::function<std::optional<std::vector<TraceHop>>(int ttl, const IpAddress& addr)>;
  void reuse_known(KnownPrefix known) { known_ = std::move(known); }
  // The flow identifier a seed gives (the fixed ICMP checksum, or the source
  // port): callers running traces side by side keep them apart with it.
  static std::uint32_t flow_id_for(TraceMethod method, std::uint32_t flow_seed);

 private:
  struct HopState {
    TraceHop hop;
    int attempts_made = 0;
    int outstanding = 0;  // attempts in flight
    Duration last_timeout{};  // how long the last attempt sent waits
    bool finished = false;
    bool halts = false;  // a router's unreachable: nothing beyond it
  };
  Trace(TraceSpec spec, IpAddress target, std::uint32_t flow_seed, WallTime now, Launch launch, Done done);
  void launch_more();
  // launch_more once the answers handed over with this one are taken
  // (launch_after_answers), or now.
  void launch_more_soon();
  // An attempt at `ttl` that waits `timeout` (the trace's, by default).
  void send(int ttl, std::optional<Duration> timeout = std::nullopt);
  void on_result(int ttl, const ProbeResult& result);
  // An early retry's timer: the hop's attempt `attempt` has waited `waited`.
  void arm_retry(int ttl, int attempt, Duration delay, Duration waited);
  void on_retry_timer(int ttl, int attempt, Duration waited);
  Duration retry_wait() const;
  std::unique_ptr<Probe> make_hop_probe(int ttl, Duration timeout);
  int end_ttl() const;  // the last TTL the trace may still need
  // Ended, or aborted (then ended once nothing is in flight): launch nothing.
  bool over();
  // Backward probing: the next TTL down, or the end at a known hop.
  void probe_backward();
  bool adopt_known(int ttl);
  void finish();

  TraceSpec spec_;
  Launch launch_;
  Done done_;
  After after_;
  Defer defer_;
  Take take_;
  KnownPrefix known_;
  TraceResult result_;
  std::vector<HopState> hops_;  // index ttl - first_ttl
  int next_ttl_;
  int back_ttl_;            // backward probing: the TTL it is at
  bool backward_ = false;   // the TTLs from start_ttl up are settled
  int in_flight_ = 0;
  std::uint32_t next_probe_id_ = 0;
  bool done_called_ = false;
  bool aborted_ = false;  // a probe could not be sent: launch nothing more
  bool launch_queued_ = false;  // launch_more_soon's call is deferred
};

}  // namespace outpost
