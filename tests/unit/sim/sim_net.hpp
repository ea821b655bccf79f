// A simulated network (routers, hosts, delays, faults, loss) as a Wire, and a driver running the real EventLoop in fake time.
// Leaves to others: what probes send and how answers match (probes/), when to probe (agent/); no ICMP forgery, MTU, rate limits.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "clock.hpp"
#include "event_loop.hpp"
#include "ip_address.hpp"
#include "wire.hpp"

namespace outpost::sim {

// The vantage's uplink: working, refusing sends (no route: prepare and send
// fail as the kernel's would), or silently losing everything sent.
enum class Uplink : std::uint8_t { up, send_error, silent };

struct SimHost {
  IpAddress addr;
  bool answers_echo = true;
  std::vector<std::uint16_t> open_ports;  // TCP: SYN-ACK here, RST anywhere else
};

// Counters of everything the network did. Every datagram sent ends in exactly
// one of: an answer put in flight, or one of the drop/silence counters.
struct SimStats {
  std::uint64_t sent = 0;               // datagrams send() accepted
  std::uint64_t send_errors = 0;        // refused by send() (uplink send_error)
  std::uint64_t malformed = 0;          // sent, but not an IP datagram the sim could read
  std::uint64_t dropped_uplink = 0;     // vanished: uplink silent
  std::uint64_t dropped_loss = 0;       // random loss, either direction (requests and answers)
  std::uint64_t dropped_forward = 0;    // a router with drop_forward on
  std::uint64_t dropped_host_down = 0;  // reached a host that is down
  std::uint64_t unrouted = 0;           // no path toward the destination
  std::uint64_t no_host = 0;            // the path's end holds no such host
  std::uint64_t unanswered = 0;         // reached its host or router, which answers nothing to it
  std::uint64_t answers = 0;            // answers put in flight toward the vantage (after loss)
  std::uint64_t loss_rolls = 0;         // datagrams that faced random loss (either direction)
  std::uint64_t delivered = 0;          // frames handed to the frame handler (answers and own copies)
  std::uint64_t ring_dropped = 0;       // frames lost to a full kernel ring
};

// One datagram as send() took it.
struct SendRecord {
  SteadyTime time;
  IpAddress dst;
  std::uint8_t proto = 0;  // IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP
  std::uint8_t ttl = 0;
};

// The network as the vantage sees it. A datagram toward an address crosses
// the routers of the longest matching path (hop 1 = the first router) and
// then reaches the host (one hop further). At router k it is answered by a
// time exceeded when its TTL runs out there, by an echo reply when it is an
// echo request to router k itself, and dropped when the router drops what it
// forwards. A host answers echo requests (if it does), SYNs (SYN-ACK to an
// open port, RST otherwise) and UDP (port unreachable). Each hop adds the hop
// delay each way: an answer from hop k arrives 2·k·delay after the send, with
// TTL 64 minus the routers it crosses back (64 - (k - 1)). ICMP errors quote
// the whole datagram with the TTL it arrived with.
//
// Frames reach the frame handler only through the loop: answers wait in a
// time-ordered queue, release_due() moves the due ones into a "kernel ring",
// and the loop's turn hands every ring frame over (DLT_RAW, stamped with its
// arrival time) when it reads the SimNet's eventfd. A copy of each sent
// datagram enters the ring at send time, stamped then, as the capture sees it
// leave. The eventfd is readable while the ring holds frames, and also while
// answers are in flight (a wake-up that may find the ring empty, as a
// capture's can): that saves two system calls per frame.
// The loop must outlive the SimNet.
class SimNet final : public Wire {
 public:
  SimNet(Clock& clock, EventLoop& loop, IpAddress vantage_v4, IpAddress vantage_v6);
  ~SimNet() override;
  SimNet(const SimNet&) = delete;
  SimNet& operator=(const SimNet&) = delete;

  // ---- topology (set-up time: these throw std::invalid_argument on bad input) ----
  // "198.18.0.0/24" or "2001:db8:ffff::/48"; the routers must be of its family.
  void add_path(std::string_view prefix, std::vector<IpAddress> routers);
  void add_path(const IpAddress& network, int prefix_length, std::vector<IpAddress> routers);
  void add_host(SimHost host);
  void add_host(const IpAddress& addr, bool answers_echo = true, std::vector<std::uint16_t> open_ports = {});
  // One-way delay per hop (1 ms unless told).
  void set_hop_delay(Duration d) { hop_delay_ = d; }

  // ---- faults, each undone by calling again with false / up / 0 ----
  // The router drops what it would forward; its own time exceeded and its echo replies still go out.
  void drop_forward(const IpAddress& router, bool on);
  // The host answers nothing; the routers before it still do.
  void host_down(const IpAddress& addr, bool down);
  void uplink(Uplink state) { uplink_ = state; }
  // Each datagram, either direction, is lost with this probability (deterministic for a seed).
  void loss(double fraction, std::uint64_t seed);
  // At most this many frames wait in the kernel ring; more are dropped and
  // counted (Wire::dropped). 0: unbounded (the default).
  void set_ring_capacity(std::size_t frames) { ring_capacity_ = frames; }

  // ---- time ----
  // Moves the answers due by `now` into the ring (and makes the eventfd readable).
  void release_due(SteadyTime now);
  // When the earliest answer still in flight arrives.
  std::optional<SteadyTime> next_arrival() const;
  // Frames in the ring, not yet handed to the frame handler.
  std::size_t ring_size() const { return ring_.size(); }
  std::size_t in_flight() const { return in_flight_.size(); }

  // ---- what happened ----
  const SimStats& stats() const { return stats_; }
  std::uint64_t sent_to(const IpAddress& dst) const;
  // Keeps the last `records` sends (0, the default: none; SIZE_MAX: all).
  void keep_send_log(std::size_t records);
  const std::deque<SendRecord>& send_log() const { return send_log_; }

  // ---- Wire ----
  IpAddress prepare(const IpAddress& dst, std::string* error) override;
  bool send(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string* error) override;
  void set_frame_handler(FrameHandler handler) override { handler_ = std::move(handler); }
  std::uint64_t dropped() const override { return stats_.ring_dropped; }

 private:
  struct Path {
    IpAddress network;
    int length = 0;
    std::vector<IpAddress> routers;
  };
  struct Host {
    bool answers_echo = true;
    std::vector<std::uint16_t> open_ports;
  };
  struct Frame {
    SteadyTime at;
    WallTime stamp;
    std::uint64_t order = 0;
    std::vector<std::uint8_t> bytes;
  };
  struct Sent;  // a sent datagram's fields, as the sim reads them

  const Path* path_for(const IpAddress& dst) const;
  void forward(const Sent& d, std::span<const std::uint8_t> datagram);
  void router_answer(const Sent& d, std::span<const std::uint8_t> datagram, const IpAddress& router, int hop);
  void host_answer(const Sent& d, std::span<const std::uint8_t> datagram, const Host& host, int hop);
  void answer(std::vector<std::uint8_t> datagram, int hop);
  bool lose();
  void push_ring(WallTime stamp, std::vector<std::uint8_t> bytes);
  void signal();
  void on_readable();

  Clock& clock_;
  EventLoop& loop_;
  IpAddress vantage_v4_;
  IpAddress vantage_v6_;
  int event_fd_ = -1;
  bool signalled_ = false;
  FrameHandler handler_;

  std::vector<Path> paths_;  // longest prefix first
  // A router's own address: the path it is on and its position there (first path given wins).
  std::unordered_map<IpAddress, std::pair<std::size_t, std::size_t>> router_at_;
  std::unordered_map<IpAddress, Host> hosts_;
  Duration hop_delay_ = std::chrono::milliseconds(1);

  std::unordered_set<IpAddress> dropping_;
  std::unordered_set<IpAddress> down_;
  Uplink uplink_ = Uplink::up;
  double loss_ = 0;
  std::uint64_t rng_ = 0;

  std::vector<Frame> in_flight_;  // a min-heap on (at, order)
  std::uint64_t next_order_ = 0;
  std::vector<Frame> ring_;
  std::vector<Frame> batch_;  // the ring being handed over
  std::size_t ring_capacity_ = 0;
  std::uint16_t next_ip_id_ = 1;

  SimStats stats_;
  std::unordered_map<IpAddress, std::uint64_t> sent_to_;
  std::size_t log_keep_ = 0;
  std::deque<SendRecord> send_log_;
};

// Runs the real EventLoop in simulated time: turns the loop while anything is
// due now (a timer, an arrival, a frame in the ring), then moves the clock to
// the earliest of the next timer, the next arrival and the end.
class SimDriver {
 public:
  SimDriver(FakeClock& clock, EventLoop& loop, SimNet& net) : clock_(clock), loop_(loop), net_(net) {}

  // Until the clock reads `end` and nothing more is due then, or the loop
  // stops. False when a turn failed (run_once false: see loop.error()).
  bool run_until(SteadyTime end);
  bool run_for(Duration d) { return run_until(clock_.now() + d); }
  // The process frozen for d: the clock moves, answers keep arriving into the
  // ring with their own stamps, and no loop turn runs.
  void stall(Duration d);

  bool failed() const { return failed_; }
  std::uint64_t turns() const { return turns_; }

 private:
  bool due_now();

  FakeClock& clock_;
  EventLoop& loop_;
  SimNet& net_;
  bool failed_ = false;
  std::uint64_t turns_ = 0;
};

}  // namespace outpost::sim
