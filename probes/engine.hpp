// The packet engine: raw sockets to send forged datagrams, one libpcap capture
// per interface in use (immediate mode, non-blocking, nanosecond kernel
// timestamps, filter from the probe registry), probes in flight keyed by flow,
// timeouts, and counters for everything that matched nothing.
// Leaves to others: when to probe (agent scheduler) and what results mean.
#pragma once

#include <pcap/pcap.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "clock.hpp"
#include "packet_decode.hpp"
#include "probe.hpp"
#include "registry.hpp"

namespace outpost {

struct EngineOptions {
  std::string interface;                // send and capture only here; empty: each route's own
  int capture_buffer_bytes = 32 << 20;  // per capture
  int snaplen = 512;                    // enough for ICMP errors and their quotes
  int send_buffer_bytes = 4 << 20;
  Duration remember_finished = std::chrono::seconds(30);  // to tell late/duplicate from stray
  std::size_t remember_finished_max = 1 << 20;
};

struct EngineStats {
  std::uint64_t launched = 0;
  std::uint64_t sent = 0;
  std::uint64_t send_errors = 0;
  std::uint64_t answered = 0;          // finished by a reply or an ICMP error
  std::uint64_t timeouts = 0;
  std::uint64_t captured = 0;          // frames through the capture filter
  std::uint64_t malformed = 0;         // could not be decoded
  std::uint64_t foreign = 0;           // decoded, but no probe type's packet
  std::uint64_t stray = 0;             // our type, but no such probe (ever, or long ago)
  std::uint64_t late = 0;              // for a probe that had already timed out
  std::uint64_t duplicate = 0;         // for a probe already answered
  std::uint64_t spoofed = 0;           // right flow key, wrong cookie / quote
  std::uint64_t tx_stamp_missing = 0;  // answered, but the capture missed our packet leaving
  std::uint64_t capture_dropped = 0;   // the kernel dropped frames (ring full)
};

struct Route {
  IpAddress source;
  std::string interface;
  std::string error;  // why there is no route, when source is empty
};

// Asks the kernel which source address and interface it would use toward dst.
Route lookup_route(const IpAddress& dst, const std::string& bind_interface);

class Engine {
 public:
  using Done = std::function<void(const ProbeResult&)>;

  Engine(Clock& clock, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Opens the raw sockets; false with *error (naming CAP_NET_RAW when that is why).
  bool open(std::string* error);
  // Told of every capture descriptor the engine opens, to watch for reading.
  void set_fd_watcher(std::function<void(int fd)> watch) { watch_fd_ = std::move(watch); }

  // Starts a probe; `done` is called once with its result (perhaps at once).
  void launch(std::unique_ptr<Probe> probe, Done done);

  void on_readable(int fd);
  std::optional<SteadyTime> next_deadline() const;
  void expire(SteadyTime now);

  std::size_t in_flight() const { return flows_.size(); }
  EngineStats stats() const;
  std::uint16_t icmp_ident() const { return params_.icmp_ident; }

  // Feeds one captured frame as if the capture had delivered it (tests, fuzzing).
  void on_frame(int link_type, const std::uint8_t* data, std::size_t size, WallTime stamp);

 private:
  class SlotContext;
  struct Capture {
    pcap_t* handle = nullptr;
    int fd = -1;
    int link_type = 0;
    std::string interface;
  };
  struct Slot {
    std::unique_ptr<Probe> probe;
    Done done;
    std::vector<FlowKey> keys;
    std::uint32_t generation = 0;
    bool active = false;
  };
  struct Deadline {
    SteadyTime when;
    std::uint32_t slot;
    std::uint32_t generation;
    bool operator>(const Deadline& o) const { return when > o.when; }
  };
  struct Finished {
    bool timed_out;
    SteadyTime forget_at;
  };

  const Route& route_to(const IpAddress& dst);
  bool ensure_capture(const std::string& interface, std::string* error);
  bool send_datagram(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string* error);
  void complete(std::uint32_t slot);
  void remember(const FlowKey& key, bool timed_out);
  void forget_old(SteadyTime now);
  static void pcap_callback(u_char* user, const pcap_pkthdr* header, const u_char* bytes);

  Clock& clock_;
  EngineOptions options_;
  FilterParams params_;
  std::uint64_t secret_ = 0;
  std::uint16_t next_ip_id_ = 0;
  std::uint16_t next_sequence_ = 0;
  int raw4_ = -1;
  int raw6_ = -1;
  std::function<void(int)> watch_fd_;
  std::vector<Capture> captures_;
  int current_link_type_ = 0;
  std::unordered_map<IpAddress, std::pair<Route, SteadyTime>> routes_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::unordered_map<FlowKey, std::uint32_t, FlowKeyHash> flows_;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;
  std::unordered_map<FlowKey, Finished, FlowKeyHash> finished_;
  std::deque<std::pair<FlowKey, SteadyTime>> finished_order_;
  EngineStats stats_;
};

}  // namespace outpost
