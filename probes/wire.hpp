// The wire: raw sockets that put forged datagrams out, libpcap captures (one
// per interface in use: immediate mode, non-blocking, nanosecond kernel
// timestamps, the registry's filter) that bring every frame back, and the
// kernel's route toward each destination. An interface, so the engine is
// tested without root against a fake.
// Leaves to others: what the frames mean (engine, probes).
#pragma once

#include <pcap/pcap.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "clock.hpp"
#include "registry.hpp"
#include "send_queue.hpp"

namespace outpost {

struct Route {
  IpAddress source;
  std::string interface;
  std::string error;  // why there is no route, when source is empty
};

// Asks the kernel which source address and interface it would use toward an
// address: connect() on a UDP socket kept open for the purpose (no packet
// leaves), then the interface that holds that source, from a table of local
// addresses read again when a source is not in it or the table is older than
// table_age. A few system calls per lookup, not a socket and a netlink dump.
class RouteFinder {
 public:
  explicit RouteFinder(std::string bind_interface = {}, Duration table_age = std::chrono::seconds(30));
  ~RouteFinder();
  RouteFinder(const RouteFinder&) = delete;
  RouteFinder& operator=(const RouteFinder&) = delete;

  // with_interface false: the source alone (route.interface stays empty),
  // for a wire that reads its answers from sockets: the table of local
  // addresses is a netlink dump of links and one of addresses, about 0.3 ms
  // of a command at the terminal.
  Route find(const IpAddress& dst, SteadyTime now, bool with_interface = true);
  // The interface that holds a local address; empty when none does.
  std::string interface_of(const IpAddress& local, SteadyTime now);
  // How many times the table of local addresses was read (for tests).
  std::uint64_t table_reads() const { return table_reads_; }
  // The next lookup reads the table of local addresses again.
  void forget_table() { table_read_ = false; }

 private:
  int socket_for(bool v6, std::string* error);
  void read_table(SteadyTime now);

  std::string bind_interface_;
  Duration table_age_;
  int fd4_ = -1;
  int fd6_ = -1;
  std::unordered_map<IpAddress, std::string> interfaces_;
  SteadyTime table_time_{};
  bool table_read_ = false;
  std::uint64_t table_reads_ = 0;
};

class Wire {
 public:
  using FrameHandler = std::function<void(int link_type, const std::uint8_t* data, std::size_t size, WallTime stamp)>;
  virtual ~Wire() = default;
  // The source toward dst, with a capture running on its interface; empty with *error otherwise.
  virtual IpAddress prepare(const IpAddress& dst, std::string* error) = 0;
  virtual bool send(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string* error) = 0;
  // As send, but it may hand the datagram to a sending thread: true then
  // means queued (*ticket set, else 0), and a failure comes later, with
  // token, to the handler set by set_send_failure_handler.
  virtual bool send_queued(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::uint64_t /*token*/,
                           std::uint64_t* ticket, std::string* error) {
    *ticket = 0;
    return send(dst, datagram, error);
  }
  // Whether a queued datagram (its ticket) still waits for the sending thread.
  virtual bool waiting(std::uint64_t /*ticket*/) const { return false; }
  using SendFailureHandler = std::function<void(std::uint64_t token, const std::string& error)>;
  virtual void set_send_failure_handler(SendFailureHandler) {}
  // Where captured frames go.
  virtual void set_frame_handler(FrameHandler handler) = 0;
  // Frames the kernel dropped before the capture could read them.
  virtual std::uint64_t dropped() const { return 0; }
  // While the frame handler runs: the frame's stamp is the wall clock read
  // as it was read, not the kernel's (it came without one).
  virtual bool frame_from_user_clock() const { return false; }
  // Hands on, now, up to max_frames per capture of what the captures hold
  // already (without waiting); how many. The engine calls it before timing
  // probes out: an answer that reached this host in time but that a busy
  // loop has not read yet is still an answer.
  virtual int drain(int /*max_frames*/) { return 0; }
};

// At most this many frames are handed on per readiness of a capture. Its
// descriptor is watched level-triggered and stays readable while frames
// wait, so the loop comes back for the rest after its timers, signals and
// flushes: a flood of frames (ICMP errors from anyone pass the filter)
// cannot hold it.
inline constexpr int kMaxFramesPerWake = 256;

class AnswerRing;

struct RawWireOptions {
  std::string interface;                // send and capture only here; empty: each route's own
  int capture_buffer_bytes = 32 << 20;  // per capture
  // Enough for any answer to our probes (at most 104 bytes each): an ICMP
  // error quoting one, padded to 128 bytes with RFC 4884 extensions, with 14
  // MPLS labels behind an IPv6 header (Ethernet 14 + 40 + 8 + 128 + 8 + 56).
  // Each frame of the capture ring is about snaplen + 96 bytes.
  int snaplen = 256;
  int send_buffer_bytes = 4 << 20;
  Duration route_cache = std::chrono::seconds(5);
  // While the kernel's changes of routes, rules, addresses and links are
  // watched (rtnetlink), a route is kept this long, for this many
  // destinations at most (the ones beyond keep to route_cache): any change
  // forgets them all at once, so a daemon that probes every minute does not
  // ask the kernel again before each probe.
  Duration route_cache_watched = std::chrono::minutes(5);
  std::size_t route_cache_watched_max = 16384;
  // Whether to watch them at all: a command at the terminal, with one
  // target, asks its route again every route_cache instead.
  bool watch_routes = true;
  // Whether to open the IPv6 raw socket: a command at the terminal with an
  // IPv4 target sends nothing over IPv6.
  bool ipv6 = true;
  // Raw datagrams go out from a thread of their own (SendQueue), started
  // when first needed, with a ring of this many slots; 0: sent in place.
  // While the thread sleeps (or before it starts), up to
  // send_in_place_per_ms datagrams a millisecond still go in place: a
  // daemon that may send fast but mostly does not wakes no thread per probe.
  std::size_t send_thread_slots = 0;
  int send_in_place_per_ms = 4;
  // The probe types (registry.hpp) whose packets the captures let through,
  // besides every ICMP error; empty: all of them.
  std::vector<std::string_view> capture_types;
  // No capture: answers read from raw ICMP sockets (and raw TCP ones, with
  // socket_tcp_first_port) and send times from the raw sockets' error
  // queues (socket_receive.hpp). Where the kernel refuses send stamps, the
  // wire captures after all.
  bool receive_on_sockets = false;
  // With receive_on_sockets, for TCP probes: the lowest of their source
  // ports, to which their answers come (a raw TCP socket per family takes
  // the segments to that port and above); 0: no TCP receiver.
  std::uint16_t socket_tcp_first_port = 0;
  // With receive_on_sockets: answers come from a packet ring per family
  // (answer_ring.hpp), stamped as it takes them, rather than from raw
  // sockets, whose stamps wait for the kernel to switch receive stamps on.
  // Where a ring cannot open, that family's raw sockets.
  bool answers_on_ring = false;
  // With answers_on_ring: where receive stamps are on already (another
  // socket on the host asks for them), the raw sockets after all, whose
  // stamps then cost no switch, rather than a ring, whose setting and close
  // each wait for a network grace period (kernel_timestamps_already_on()).
  bool sockets_when_stamps_on = true;
  // The answers the ring holds before the kernel drops the next (counted in
  // dropped()): as many as may come while the loop is elsewhere. 32 serve a
  // ping, and a trace of 8 TTLs at once with 2 attempts each and other ICMP
  // besides; a trace of more TTLs at once asks for more (set_answer_ring_frames).
  unsigned answer_ring_frames = 32;
};

class RawWire final : public Wire {
 public:
  RawWire(Clock& clock, RawWireOptions options, FilterParams filter);
  ~RawWire() override;
  RawWire(const RawWire&) = delete;
  RawWire& operator=(const RawWire&) = delete;

  // Opens the raw sockets; false with *error (naming CAP_NET_RAW when that is why).
  bool open(std::string* error);
  // Told of every descriptor to watch for reading: each capture, and the
  // watch on route changes (at once, when open() opened it).
  void set_fd_watcher(std::function<void(int fd)> watch);
  // RawWireOptions::answer_ring_frames, before the first prepare(dst) of a
  // family opens its ring.
  void set_answer_ring_frames(unsigned frames) { options_.answer_ring_frames = frames; }
  // Whether route changes are watched (else routes are kept route_cache).
  bool watching_routes() const { return route_watch_ >= 0; }
  // How many times route changes made the wire forget its routes.
  std::uint64_t route_changes() const { return route_changes_; }
  // Hands on what the capture behind fd holds, at most kMaxFramesPerWake
  // frames; how many (-1 on a capture error, tried again at the next
  // readiness). For the route watch: reads the changes, and when there
  // were any forgets the routes kept; 0.
  int on_readable(int fd);
  // A capture opened elsewhere (a savefile, in tests) read as if it were the
  // capture on `interface`. The wire owns it from here: it is closed at
  // once, with false, when that interface has a capture already.
  bool adopt_capture(pcap_t* handle, std::string interface);

  IpAddress prepare(const IpAddress& dst, std::string* error) override;
  bool send(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string* error) override;
  bool send_queued(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::uint64_t token,
                   std::uint64_t* ticket, std::string* error) override;
  bool waiting(std::uint64_t ticket) const override { return queue_ && ticket && queue_->waiting(ticket); }
  void set_send_failure_handler(SendFailureHandler handler) override { send_failed_ = std::move(handler); }
  // The sending thread's counts (0 without one): datagrams, sendmmsg batches, wakes.
  std::uint64_t thread_sent() const { return queue_ ? queue_->sent() : 0; }
  std::uint64_t thread_batches() const { return queue_ ? queue_->batches() : 0; }
  std::uint64_t thread_wakes() const { return queue_ ? queue_->wakes() : 0; }
  void set_frame_handler(FrameHandler handler) override { handler_ = std::move(handler); }
  std::uint64_t dropped() const override;
  bool frame_from_user_clock() const override { return frame_user_clock_; }
  int drain(int max_frames) override;

 private:
  struct Capture {
    pcap_t* handle = nullptr;
    int fd = -1;
    int link_type = 0;
    std::string interface;
  };
  bool ensure_capture(const std::string& interface, std::string* error);
  bool ensure_receiver(bool v6, std::string* error);
  int read_sockets(int max_frames);  // send stamps first, then answers
  void take_send_stamps();
  bool stamps_due_ = false;  // sent since the error queues were last read
  void open_route_watch();
  void read_route_changes();
  static void pcap_callback(u_char* user, const pcap_pkthdr* header, const u_char* bytes);

  Clock& clock_;
  RawWireOptions options_;
  FilterParams filter_;
  int raw4_ = -1;
  int raw6_ = -1;
  bool on_sockets_ = false;  // receive_on_sockets, and the kernel stamps sends
  int icmp4_ = -1;
  int icmp6_ = -1;
  int tcp4_ = -1;  // socket_tcp_first_port
  int tcp6_ = -1;
  // answers_on_ring: each family's answers ([1]: IPv6), once it is probed;
  // where one fails to open, that family's come from its raw sockets.
  std::array<std::unique_ptr<AnswerRing>, 2> rings_;
  std::array<bool, 2> ring_failed_{};
  bool frame_user_clock_ = false;  // frame_from_user_clock
  FrameHandler handler_;
  std::function<void(int)> watch_fd_;
  std::vector<Capture> captures_;
  int current_link_type_ = 0;
  RouteFinder route_finder_;
  std::unordered_map<IpAddress, std::pair<Route, SteadyTime>> routes_;
  std::size_t routes_kept_ = 0;  // entries left by the last pruning
  SteadyTime next_sweep_{};      // when expired entries are swept out next, however few were added
  int route_watch_ = -1;         // rtnetlink, subscribed to route, rule, address and link changes
  std::uint64_t route_changes_ = 0;
  SendFailureHandler send_failed_;
  SteadyTime burst_start_{};  // datagrams sent in place this millisecond while the thread slept
  int burst_ = 0;
  std::unique_ptr<SendQueue> queue_;  // declared last: stopped first, before the sockets close
};

}  // namespace outpost
