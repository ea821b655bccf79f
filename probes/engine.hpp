// The packet engine: probes in flight keyed by flow, captured frames matched
// to them (replies, ICMP errors quoting them, our own packets leaving for the
// kernel send time), timeouts, and counters for everything that matched nothing.
// Leaves to others: sockets and capture (wire), when to probe (agent scheduler).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "clock.hpp"
#include "dns_sockets.hpp"
#include "finished_memory.hpp"
#include "packet_decode.hpp"
#include "probe.hpp"
#include "registry.hpp"
#include "wire.hpp"

namespace outpost {

// Before it times a probe out, the engine reads up to this many rounds of
// kMaxFramesPerWake frames the capture holds already.
inline constexpr int kExpireDrainRounds = 16;

struct EngineOptions {
  Duration remember_finished = std::chrono::seconds(30);  // to tell late/duplicate from stray
  // 16 bytes each: 4 MiB, 3.7 s of probes at 70,000/s.
  std::size_t remember_finished_max = 1 << 18;
  // The most probes a second the engine will be asked for (max_pps; 0: not
  // known). The memory of finished probes is then sized at the start for
  // remember_finished of them, at most remember_finished_max, so that it
  // never grows under load: a growth moves every entry, and the one from
  // 131,072 flows held the loop for 14 ms at 120,000 probes/s.
  double expected_pps = 0;
};

// What the engine reserves of its memory of finished probes at the start
// (flows): expected_pps × remember_finished, at most remember_finished_max,
// and none below kGrowthFreeFlows. A growth from that few moves at most
// half as many entries (about 3 ms), while zeroing room for them cost an
// agent at max_pps 1,100 (33,000 flows) 200 page faults and 3 ms of CPU at
// its start, for the 770 flows that 256 targets every 10 s leave in it.
inline constexpr std::size_t kGrowthFreeFlows = 1 << 16;
std::size_t finished_reserve(const EngineOptions& options);

struct EngineStats {
  std::uint64_t launched = 0;
  std::uint64_t sent = 0;               // raw datagrams, DNS queries and connect()s that left
  std::uint64_t send_errors = 0;
  std::uint64_t answered = 0;          // finished by a reply or an ICMP error
  std::uint64_t timeouts = 0;
  std::uint64_t captured = 0;          // frames through the capture filter
  std::uint64_t malformed = 0;         // could not be decoded
  std::uint64_t foreign = 0;           // decoded, but no probe type's packet
  std::uint64_t stray = 0;             // our type, but no such probe (ever, or long ago); DNS: for no query in flight
  std::uint64_t late = 0;              // for a probe that had already timed out
  std::uint64_t duplicate = 0;         // for a probe already answered
  std::uint64_t spoofed = 0;           // right flow key, wrong cookie / quote
  std::uint64_t tx_stamp_missing = 0;  // answered, but the capture missed our packet leaving
  std::uint64_t rx_stamp_missing = 0;  // answered, but the answer came without a kernel stamp
  std::uint64_t capture_dropped = 0;   // the kernel dropped frames (ring full)
  std::uint64_t clock_stepped = 0;     // answered, but the wall clock was set between its kernel stamps
};

class Engine {
 public:
  using Done = std::function<void(const ProbeResult&)>;

  // The wire's frames come to on_frame from now on.
  Engine(Clock& clock, Wire& wire, FilterParams params, EngineOptions options = {});
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Gets the wire ready toward dst (route, capture) before the first probe,
  // so that it leaves on time; "" or why not (the probes will say so too).
  std::string prepare(const IpAddress& dst) {
    std::string error;
    wire_.prepare(dst, &error);
    return error;
  }

  // Starts a probe; `done` is called once with its result (perhaps at once).
  void launch(std::unique_ptr<Probe> probe, Done done);

  // How socket-based probes get their fds watched: the event loop's watch
  // and unwatch. Without it, those probes end with status error.
  struct FdService {
    std::function<void(int fd, std::uint32_t events, std::function<void(std::uint32_t)> ready)> watch;
    std::function<void(int fd)> unwatch;
  };
  void set_fd_service(FdService service) { fd_service_ = std::move(service); }

  // The earliest deadline of a probe still running: the deadlines of probes
  // answered since are dropped here, so that an idle loop is not woken for them.
  std::optional<SteadyTime> next_deadline();
  void expire(SteadyTime now);
  // Reads what the captures hold now if a packet was sent (not queued for
  // the sending thread) since the last call: the copies of our own packets (their send times) and any answer
  // already in. Called before the loop waits, it takes in a probe's own
  // packet without a wake of its own. How many frames.
  int settle_sends();

  // Probes started and not yet finished (socket probes have no flow key).
  std::size_t in_flight() const { return slots_.size() - free_slots_.size(); }
  EngineStats stats() const;

  // One captured frame, from the wire (or a test, or the fuzzer).
  void on_frame(int link_type, const std::uint8_t* data, std::size_t size, WallTime stamp);

 private:
  class SlotContext;
  struct Slot {
    std::unique_ptr<Probe> probe;
    Done done;
    std::vector<FlowKey> keys;
    std::vector<int> fds;
    std::uint32_t generation = 0;
    bool active = false;
    bool local_failure = false;  // a send or a route lookup failed on this host
    std::optional<WallTime> wall_deadline;  // the latest arm_timeout, on the wall clock of kernel stamps
    SteadyTime deadline{};                  // the same on the steady clock: the heap's entry that counts
    Duration timeout{};                     // as armed
    bool deadline_from_send = false;        // moved to count from the kernel's stamp of the packet leaving
    std::uint64_t ticket = 0;               // in the wire's sending queue (0: sent in place)
    bool tx_user_clock = false;             // answered, its send time from the wall clock (no kernel stamp)
    bool rx_user_clock = false;             // answered, its receive time from the wall clock
    SteadyTime armed{};                     // its first arm_timeout: the probe is out from then on
  };
  // The capture saw the probe's packet leave at kernel_tx: its timeout
  // counts from there, not from its launch (a queue before the wire, a
  // sending thread behind, must not eat into the wait for the answer).
  void count_from_send(std::uint32_t slot, WallTime kernel_tx);
  struct Deadline {
    SteadyTime when;
    std::uint32_t slot;
    std::uint32_t generation;
    bool operator>(const Deadline& o) const { return when > o.when; }
  };
  void complete(std::uint32_t slot);
  // The wire's sending thread failed to send the datagram of token's probe.
  void on_send_failure(std::uint64_t token, const std::string& error);
  void on_ready(std::uint32_t slot, std::uint32_t generation, int fd, std::uint32_t events);

  Clock& clock_;
  Wire& wire_;
  FilterParams params_;
  EngineOptions options_;
  // Two keys drawn at start: the cookies' (flow_cookie), and the one that
  // turns a counter into the probes' unpredictable numbers (next_random).
  std::uint16_t next_random();
  FlowSecret secret_{};
  FlowSecret counter_key_{};
  std::uint64_t counter_ = 0;
  // Before the slots: their DNS probes give their queries back as they go.
  // Opened with the first DNS query that has an event loop to watch it.
  std::unique_ptr<DnsSockets> dns_;
  DnsSockets* dns_sockets();
  void on_dns_message(std::uint64_t token, const DnsSocketMessage& message);
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::unordered_map<FlowKey, std::uint32_t, FlowKeyHash> flows_;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;
  FinishedMemory finished_;
  EngineStats stats_;
  FdService fd_service_;
  bool sent_since_settle_ = false;
};

}  // namespace outpost
