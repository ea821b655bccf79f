#include "cli_common.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "privileges.hpp"
#include "systemd_journal.hpp"
#include "tcp_syn.hpp"
#include "tins_forge.hpp"
#include "traceroute.hpp"

namespace outpost {

namespace {

// Boost's message for a bad command line. Boost fills its %placeholders%
// (%canonical_option%, %value%, ...) with what was typed, replacing until
// none is left: an argument that holds a placeholder itself would have it
// replace itself for ever. Such arguments are parsed again with each '%'
// as '?', for the message only.
std::string error_text(const po::error& e, int argc, char** argv, const po::options_description& visible,
                       const po::positional_options_description& positional) {
  std::vector<std::string> args(argv, argv + argc);
  bool percent = false;
  for (auto& arg : args)
    for (char& c : arg)
      if (c == '%') c = '?', percent = true;
  if (!percent) return e.what();
  std::vector<char*> safe;
  for (auto& arg : args) safe.push_back(arg.data());
  safe.push_back(nullptr);
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, safe.data()).options(visible).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& again) {
    return again.what();
  }
  return "invalid arguments";
}

}  // namespace

bool parse_command_line(int argc, char** argv, const po::options_description& visible,
                        const po::positional_options_description& positional, po::variables_map& vm,
                        const char* usage, bool* help) {
  try {
    po::store(po::command_line_parser(argc, argv).options(visible).positional(positional).run(), vm);
    *help = vm.count("help") > 0;
    if (*help) {
      std::cout << usage << "\n" << visible;
      return true;
    }
    po::notify(vm);  // required options are checked here, after --help
  } catch (const po::error& e) {
    std::cerr << "outpost " << argv[0] << ": " << error_text(e, argc, argv, visible, positional) << "\n"
              << usage << "\n" << visible;
    return false;
  }
  return true;
}

std::optional<Duration> duration_option(const po::variables_map& vm, const char* name, const char* command) {
  std::string error;
  auto d = parse_duration(vm[name].as<std::string>(), &error);
  if (!d) std::cerr << "outpost " << command << ": --" << name << ": " << error << "\n";
  return d;
}

std::optional<long long> integer_option(const po::variables_map& vm, const char* name, const char* command,
                                        long long low, long long high) {
  const long long value = vm[name].as<long long>();
  if (value >= low && value <= high) return value;
  std::cerr << "outpost " << command << ": --" << name << ": expected an integer from " << low << " to " << high
            << ", got " << value << "\n";
  return std::nullopt;
}

void add_family_options(po::options_description& opts) {
  opts.add_options()("ipv4,4", "a host name's IPv4 address only")("ipv6,6", "a host name's IPv6 address only");
}

std::optional<TargetFamily> family_option(const po::variables_map& vm, const char* command) {
  const bool v4 = vm.count("ipv4") > 0;
  const bool v6 = vm.count("ipv6") > 0;
  if (v4 && v6) {
    std::cerr << "outpost " << command << ": -4 and -6: give one of them, not both\n";
    return std::nullopt;
  }
  return v4 ? TargetFamily::v4 : v6 ? TargetFamily::v6 : TargetFamily::automatic;
}

void init_logging(bool verbose) {
  std::shared_ptr<spdlog::logger> logger;
  if (stderr_is_journal()) {
    // The journal stamps the time itself.
    logger = spdlog::stderr_logger_mt("outpost");
    logger->set_formatter(journal_formatter());
  } else {
    logger = spdlog::stderr_color_mt("outpost");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

std::string ping_interval_refusal(Duration interval, uid_t uid) {
  if (uid == 0 || interval >= kMinUserPingInterval) return {};
  return "--interval " + format_duration(interval) + ": below " + format_duration(kMinUserPingInterval) +
         " only root may ping (a flood); ask for " + format_duration(kMinUserPingInterval) + " or more";
}

void write_stdout(std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(STDOUT_FILENO, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a closed pipe: nothing more to say
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string left_aligned(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

std::string right_aligned(std::string text, std::size_t width) {
  if (text.size() < width) text.insert(0, width - text.size(), ' ');
  return text;
}

std::string milliseconds_text(Duration d) {
  const long long ns = std::max<long long>(0, d.count());
  const long long us = ns / 1000 + (ns % 1000 >= 500 ? 1 : 0);
  const std::string fraction = std::to_string(us % 1000);
  return std::to_string(us / 1000) + "." + std::string(3 - fraction.size(), '0') + fraction;
}

int require_packet_module(const char* command) {
  const std::string why = load_tins_forge();
  if (why.empty()) return kExitOk;
  std::cerr << "outpost " << command << ": " << why << "\n";
  return kExitFailure;
}

bool forges_with_packet_module(const Config& config) {
  for (const auto& group : config.groups)
    for (const auto& target : group.targets)
      for (const auto& method : target.probes)
        if (method.kind == ProbeMethod::Kind::dns) return true;
  return false;
}

namespace {
RawWireOptions wire_options(const std::string& interface, double max_pps, int min_ring,
                            std::vector<std::string_view> capture_types, bool ipv6) {
  // Two frames per probe (ours leaving, the answer), each snaplen and the
  // ring's own header (tpacket2_hdr, sockaddr_ll, alignment) long, for an
  // eighth of a second: the loop's worst stall at 120,000 probes/s was
  // 17 ms, and a socket's default buffer (fping's) holds 2,000 frames.
  constexpr double kMax = 64 << 20;
  RawWireOptions o;
  o.interface = interface;
  const double frame = o.snaplen + 96;
  double least = min_ring;
  if (min_ring >= ProbingStack::kDaemonRing) {
    // The daemon: a second of frames at least, for its loop's longer
    // stalls (a reload's parse, a state file's write), up to min_ring. The
    // kernel zeroes the whole ring, and libpcap reads every frame's header
    // when the filter is set: for an agent at 1,100 probes/s, which fills
    // 0.77 MB a second, 4 MiB were 2-3 ms of its start and 2.9 MB of its
    // resident memory.
    least = std::clamp(max_pps * 2 * frame, double(ProbingStack::kDaemonRingLeast), double(min_ring));
  }
  o.capture_buffer_bytes = static_cast<int>(std::clamp(max_pps * 2 * frame * 0.125, least, kMax));
  // From this rate on, the kernel's send path (with a routing host's
  // forwarding, run in the sender's context) gets a core of its own; below
  // it, a thread to wake per probe would cost more than it spares.
  if (max_pps >= ProbingStack::kSendThreadPps) o.send_thread_slots = 256;
  // A command at the terminal reads its answers without a capture: from a
  // small packet ring (below), or where that cannot open, from raw ICMP
  // sockets (and raw TCP ones for TCP probes, whose answers come to their
  // own ports); its send times from the raw sockets' error queues.
  // libpcap's capture, its ring and filter, and the grace period its close
  // waits for, were about 1.5 ms of a one-probe `outpost ping`. The daemon
  // captures: a reload may add any probe type.
  o.receive_on_sockets = !capture_types.empty() && std::all_of(capture_types.begin(), capture_types.end(), [](auto t) {
    return t == "icmp_echo" || t == "udp_trace" || t == "tcp_syn" || t == "tcp_trace";
  });
  for (const auto t : capture_types) {
    const std::uint16_t first = t == "tcp_syn" ? kTcpSynFirstPort : t == "tcp_trace" ? kTraceFirstPort : 0;
    if (first && (!o.socket_tcp_first_port || first < o.socket_tcp_first_port)) o.socket_tcp_first_port = first;
  }
  // The ring stamps its frames itself: the raw sockets' stamps would first
  // have the kernel switch receive stamps on, about 0.8 ms of the CPU the
  // command runs on (where another socket holds them on already, the wire
  // takes the raw sockets after all: sockets_when_stamps_on).
  o.answers_on_ring = o.receive_on_sockets;
  o.capture_types = std::move(capture_types);
  o.ipv6 = ipv6;
  // A command at the terminal probes one target: its route is asked again
  // every route_cache (5 s) rather than watched, which serves the daemon's
  // many routes, each kept 5 minutes.
  o.watch_routes = min_ring >= ProbingStack::kDaemonRing;
  return o;
}
EngineOptions engine_options(double max_pps) {
  EngineOptions o;
  o.expected_pps = max_pps;
  return o;
}
}  // namespace

ProbingStack::ProbingStack(Clock& clock, const std::string& interface, double max_pps, int min_ring,
                           std::vector<std::string_view> capture_types, bool ipv6)
    : params(random_filter_params()),
      wire(clock, wire_options(interface, max_pps, min_ring, std::move(capture_types), ipv6), params),
      // The daemon sizes its memory of finished probes for max_pps at the
      // start, when that is many (finished_reserve); a command at the
      // terminal lets it grow, as its start-up counts for more than a pause
      // of a few ms.
      engine(clock, wire, params, engine_options(min_ring >= kDaemonRing ? max_pps : 0)), max_pps_(max_pps) {}

int ProbingStack::prepare(EventLoop& loop, const char* command, bool raw_required,
                          const std::optional<RunAs>& run_as) {
  raw = has_net_raw();
  if (!raw && raw_required) {
    std::cerr << "outpost " << command << ": " << kNeedNetRaw << "\n";
    return kExitPrivilege;
  }
  std::string error;
  if (raw && !wire.open(&error)) {
    std::cerr << "outpost " << command << ": " << error << "\n";
    // A missing privilege is exit 2; anything else (agent.interface names no
    // interface) is an error of the config.
    return error.find("CAP_NET_RAW") != std::string::npos ? kExitPrivilege : kExitFailure;
  }
  if (!raw)
    spdlog::warn("no CAP_NET_RAW: tcp:PORT probes use connect() (tcp_connect), and there are no traces");
  // Fail closed: a process that may hold anything between root and nothing
  // does not go on.
  if (auto e = drop_privileges(run_as, raw); !e.empty()) {
    std::cerr << "outpost " << command << ": dropping privileges"
              << (run_as ? " to user " + run_as->user + " (uid " + std::to_string(run_as->uid) + ")" : std::string())
              << ": " << e << "\n";
    return kExitPrivilege;
  }
  if (run_as)
    spdlog::info("switched to user {} (uid {}), group {} (gid {}), with {}", run_as->user, run_as->uid, run_as->group,
                 run_as->gid, raw ? "CAP_NET_RAW only" : "no capabilities");
  loop_ = &loop;
  wire.set_fd_watcher([this, &loop](int fd) { loop.watch(fd, [this, fd] { wire.on_readable(fd); }); });
  // The copy of each probe sent is read before the loop waits, not by a wake of its own.
  loop.before_wait([this] { engine.settle_sends(); });
  // With a sending thread, the loop that feeds it and reads the capture
  // wakes at most every kCoalesceGap: at 120,000 probes/s it woke 46,000
  // times a second for a few frames each.
  if (max_pps_ >= kSendThreadPps) loop.coalesce_wakes(kCoalesceGap);
  engine.set_fd_service({[&loop](int fd, std::uint32_t events, std::function<void(std::uint32_t)> ready) {
                           loop.watch_events(fd, events, std::move(ready));
                         },
                         [&loop](int fd) { loop.unwatch(fd); }});
  return kExitOk;
}

void ProbingStack::launch(std::unique_ptr<Probe> probe, Engine::Done done) {
  engine.launch(std::move(probe), std::move(done));
  if (deadline_timer_) loop_->cancel(deadline_timer_);
  expire_due();
}

void ProbingStack::warn_clock_fallbacks(const char* command) const {
  const EngineStats s = engine.stats();
  if (s.tx_stamp_missing)
    std::cerr << "outpost " << command << ": " << s.tx_stamp_missing
              << " answers timed from a user-space send time: the kernel gave no stamp of their probe leaving\n";
  if (s.rx_stamp_missing)
    std::cerr << "outpost " << command << ": " << s.rx_stamp_missing
              << " answers timed from a user-space receive time: the kernel gave no stamp of their arrival\n";
  if (s.capture_dropped)
    std::cerr << "outpost " << command << ": " << s.capture_dropped << " packets the kernel dropped were not taken\n";
  if (s.clock_stepped)
    std::cerr << "outpost " << command << ": " << s.clock_stepped
              << " answers timed by the steady clock: the wall clock was set while they were out\n";
}

void ProbingStack::expire_due() {
  deadline_timer_ = 0;
  engine.expire(loop_->clock().now());
  if (auto d = engine.next_deadline()) deadline_timer_ = loop_->at(*d, [this] { expire_due(); });
}

}  // namespace outpost
