// Small pieces the subcommands share: option parsing with clear errors,
// duration options, logging set-up, and getting the engine ready.
// Leaves to others: each subcommand's own options.
#pragma once

#include <boost/program_options.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "engine.hpp"
#include "event_loop.hpp"
#include "wire.hpp"
#include "outpost_config.hpp"
#include "privileges.hpp"

namespace outpost {

namespace po = boost::program_options;

// Parses argv against the options; on error prints "outpost CMD: message" and
// the usage, returning false. Sets *help when --help was given (usage printed).
bool parse_command_line(int argc, char** argv, const po::options_description& visible,
                        const po::positional_options_description& positional, po::variables_map& vm,
                        const char* usage, bool* help);

// A duration option's value (at most kMaxDuration, a year), or nullopt after
// printing an error naming the option.
std::optional<Duration> duration_option(const po::variables_map& vm, const char* name, const char* command);

// An integer option's value if it lies in [low, high], or nullopt after
// printing "outpost COMMAND: --NAME: expected an integer from LOW to HIGH, got VALUE".
// Declare the option as po::value<long long>, so that a negative number is
// seen as one (boost would wrap "-1" into an unsigned type).
std::optional<long long> integer_option(const po::variables_map& vm, const char* name, const char* command,
                                        long long low, long long high);

// -4 and -6 (as ping's and traceroute's): a host name's IPv4 or IPv6
// address only, and a literal address of the other family an error.
void add_family_options(po::options_description& opts);
// The family they ask for (automatic with neither), or nullopt after
// printing an error when both are given.
std::optional<TargetFamily> family_option(const po::variables_map& vm, const char* command);

// Logs to standard error at info (debug when verbose): time-stamped and
// coloured at a terminal. Started by systemd with standard error on the
// journal's stream (JOURNAL_STREAM), each line is "<N>message" instead, N its
// syslog priority, which the journal files it under.
void init_logging(bool verbose);

// The shortest interval `outpost ping` allows a user other than root: a
// binary given CAP_NET_RAW by setcap must be no flood tool for every user.
inline constexpr Duration kMinUserPingInterval = std::chrono::milliseconds(10);
// "" when a process of real uid `uid` may ping at `interval`, else the
// refusal (without the "outpost ping: " prefix).
std::string ping_interval_refusal(Duration interval, uid_t uid);

// Text for the terminal, by write(2) to standard output (all of it, or up
// to a closed pipe): a one-shot trace's first printf (stdio's buffer, the
// formatting code and its page faults) was about 0.1 ms of its 4 ms.
void write_stdout(std::string_view text);
// `text` padded with spaces to `width` (as printf's %-Ns and %Ns); longer text is kept whole.
std::string left_aligned(std::string text, std::size_t width);
std::string right_aligned(std::string text, std::size_t width);
// Milliseconds with three decimals, from whole microseconds (halves up), as
// printf's %.3f of the milliseconds; a negative duration is 0.000.
std::string milliseconds_text(Duration d);

// Loads the packet module (probes/tins_forge.hpp) for a command that will
// build a DNS query, so that a missing or broken module stops it at start
// with a message naming the paths, never in mid-run: kExitOk, or
// kExitFailure after "outpost COMMAND: why".
int require_packet_module(const char* command);
// Whether a run of `config` builds DNS queries, the only packets it forges
// with the packet module (every other probe's, and every trace's, are forged
// by hand). A run loads the module only then (at start, or at the reload
// that first needs it, which it refuses when the module cannot be loaded):
// libtins and what it links (libcrypto, libpcap's shared library and its
// chain, libstdc++'s) cost about 12 ms and 200 page faults to load.
bool forges_with_packet_module(const Config& config);

// The wire and the engine on it, as run and ping use them.
struct ProbingStack {
  // After a command at the terminal: on stderr, how many answers were timed
  // from a user-space send time (the kernel gave no stamp of the probe
  // leaving) or receive time (no stamp of the answer's arrival), and how
  // many frames the kernel dropped; nothing when there were none.
  void warn_clock_fallbacks(const char* command) const;
  // The capture ring holds an eighth of a second of probes and answers at
  // max_pps (at least min_ring bytes, at most 64 MiB). The daemon keeps a
  // second of them at least, for its loop's longer stalls, and never less
  // than 256 KiB: 4 MiB from 6,000 probes/s on. A command at the terminal
  // (ping, trace; max_pps 1,000) takes 128 KiB, about 370 frames, since the
  // kernel allocates and zeroes the whole ring before the first probe: 1 MiB
  // took 0.8-3.4 ms of `outpost ping -c 1`.
  static constexpr int kDaemonRing = 4 << 20;
  static constexpr int kDaemonRingLeast = 256 << 10;
  static constexpr int kTerminalRing = 128 << 10;
  // max_pps from which raw datagrams go out from a sending thread (SendQueue).
  static constexpr double kSendThreadPps = 40000;
  // With the sending thread, the loop wakes at most this often (EventLoop::coalesce_wakes).
  static constexpr Duration kCoalesceGap = std::chrono::microseconds(50);
  // capture_types: the probe types a command at the terminal sends (registry.hpp;
  // empty, as for the daemon: all of them), whose packets alone the capture
  // takes. ipv6: whether anything may go out over IPv6 (false: a command at
  // the terminal with an IPv4 target, which opens no IPv6 raw socket).
  ProbingStack(Clock& clock, const std::string& interface, double max_pps = 1000, int min_ring = kDaemonRing,
               std::vector<std::string_view> capture_types = {}, bool ipv6 = true);
  // Checks CAP_NET_RAW, opens the raw sockets and the capture, then drops
  // privileges for good (drop_privileges: to run_as when given, keeping
  // CAP_NET_RAW alone) and has the loop watch the captures. Without
  // CAP_NET_RAW: kExitPrivilege after a message naming it when
  // raw_required, else a run on ordinary sockets only (raw stays false) with
  // every capability dropped. A step of the drop that fails is fatal:
  // kExitPrivilege after a message naming it.
  int prepare(EventLoop& loop, const char* command, bool raw_required = true,
              const std::optional<RunAs>& run_as = std::nullopt);
  // Launches a probe at once (no rate cap: for a person at a terminal) and
  // keeps the engine's timeouts running on the loop.
  void launch(std::unique_ptr<Probe> probe, Engine::Done done);

  FilterParams params;
  RawWire wire;
  Engine engine;
  bool raw = false;  // raw sockets and capture are there

 private:
  void expire_due();
  EventLoop* loop_ = nullptr;
  EventLoop::TimerId deadline_timer_ = 0;
  double max_pps_;
};

}  // namespace outpost
