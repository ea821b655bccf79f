// outpost's configuration as typed C++ values, and the YAML loader that fills them.
// Leaves to others: resolving host names, opening sockets, acting on any value.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outpost {

using Duration = std::chrono::nanoseconds;

// Where a value stood in its YAML file (1-based; 0 when not from a file).
struct SourceMark {
  int line = 0;
  int col = 0;
  bool operator==(const SourceMark&) const = default;
};

// One probe method as written in `probes:`: `icmp`, `tcp:PORT`,
// `tcp_connect:PORT` or `dns`.
struct ProbeMethod {
  enum class Kind { icmp, tcp, tcp_connect, dns };
  Kind kind = Kind::icmp;
  std::uint16_t port = 0;  // tcp and tcp_connect only

  // The record's `method` field: "icmp", "tcp" (also for tcp_connect), "dns".
  std::string record_name() const;
  // As written in the config: "icmp", "tcp:443", "tcp_connect:80", "dns".
  std::string text() const;
  bool operator==(const ProbeMethod&) const = default;
};

// Parses `icmp`, `tcp:443`, `tcp_connect:80`, `dns`; nullopt and a message
// in *error otherwise.
std::optional<ProbeMethod> parse_probe_method(std::string_view text, std::string* error);

struct DnsQuery {
  std::string query;                // the name to ask
  std::string type = "A";           // A, AAAA, NS, SOA, TXT, ...
  std::vector<std::string> expect;  // optional: answers that must be there
};

// The address families a target given by `host` is probed over, as written
// in `family:`. A literal `address` is always probed over its own family.
enum class TargetFamily {
  automatic,  // `auto`: the name's first IPv4 address, else its first IPv6 address
  v4,         // `4`: its first IPv4 address; none is an error, never a fall-back to IPv6
  v6,         // `6`: its first IPv6 address; likewise never IPv4
  both,       // `both`: its first IPv4 and its first IPv6 address, each probed on its own
};

// As written in the config: "auto", "4", "6", "both".
std::string_view family_text(TargetFamily family);

// Why an address cannot be a target, or "" when it can: every target is one
// unicast host, whose answer comes from the address probed. Refused: the
// unspecified address (0.0.0.0, ::), multicast (224.0.0.0/4, ff00::/8),
// IPv4's limited broadcast (255.255.255.255), IPv4-mapped IPv6 addresses
// (::ffff:0:0/96: the IPv4 address is the target) and IPv6 link-local
// addresses (fe80::/10, which name no interface here). `bytes` in network
// order, 4 (IPv4) or 16 (IPv6) of them. The config's literal addresses, the
// addresses host names resolve to, and the terminal commands' targets.
std::string_view target_address_problem(const std::uint8_t* bytes, std::size_t size);

struct Target {
  std::string name;
  std::string address;  // a literal IPv4/IPv6 address, or empty when `host` is used
  std::string host;     // a host name the agent resolves, or empty
  std::vector<ProbeMethod> probes;  // resolved: the target's own, else group's, else defaults
  Duration interval{};              // resolved likewise
  Duration timeout{};               // resolved likewise; may exceed interval (probes then overlap)
  // For `host`: resolved like interval. For `address`: that address's own
  // family (v4 or v6), whatever the group or defaults say.
  TargetFamily family = TargetFamily::automatic;
  std::optional<DnsQuery> dns;
  SourceMark mark;
};

struct Group {
  std::string name;
  std::optional<std::uint32_t> upstream_asn;
  bool control = false;
  std::vector<Target> targets;
  SourceMark mark;
};

// Bounds on the numbers that reach arithmetic; the loader and the command
// line refuse values outside them.
inline constexpr double kMaxPpsLowest = 0.001;        // agent.max_pps: one probe in 1000 s
inline constexpr double kMaxPpsHighest = 10'000'000;  // ... up to ten million a second
inline constexpr int kMaxProbeCount = 1000;           // detect.down_after, up_after, flap_count
inline constexpr int kTraceMaxTtl = 255;              // max_ttl, gap_limit, parallel
inline constexpr int kTraceMaxAttempts = 10;          // probes per hop
// What a config may be: its file's size, and the values (map entries, list
// items, scalars) and scalar bytes its one document stands for once every
// alias is expanded, so that a few hundred bytes of aliases cannot stand for
// millions of targets.
inline constexpr std::size_t kMaxConfigBytes = 16 << 20;
inline constexpr std::size_t kMaxConfigValues = 4'000'000;
inline constexpr std::size_t kMaxConfigExpandedBytes = 16 << 20;
// Problems listed at most; the rest are counted in one last line.
inline constexpr std::size_t kMaxConfigErrors = 1000;

struct AgentSection {
  std::string id;
  double max_pps = 1000;
  std::string interface;  // empty: the route's interface
  // Targets given by host name are looked up again this often (off the event loop).
  Duration resolve_interval = std::chrono::minutes(5);
  // Spool, detector states and baseline traces that survive a restart.
  // Empty: nothing survives; collector outputs then spool in memory only.
  std::string state_dir;
  // Once the raw sockets and the capture are open, the agent runs as this
  // user, in agent.group (default: the user's primary group) alone, with
  // CAP_NET_RAW and nothing else. Empty: it stays who it was started as.
  std::string user;
  std::string group;
  // Where user, group and state_dir stand, for what the command line finds
  // wrong with them (no such user, a directory not writable by it).
  SourceMark user_mark;
  SourceMark group_mark;
  SourceMark state_dir_mark;
  // The log's level: debug, info, warn or error (`outpost run --log-level` wins).
  std::string log_level = "info";
  // Where the Prometheus /metrics endpoint listens, as IPv4 ADDRESS:PORT
  // ("127.0.0.1:9464"; a bare PORT means 127.0.0.1:PORT). Empty: no
  // endpoint (the default).
  std::string metrics;
};

// The names agent.log_level and --log-level take, most verbose first.
inline constexpr const char* kLogLevels[] = {"debug", "info", "warn", "error"};

struct Defaults {
  Duration interval = std::chrono::seconds(30);
  Duration timeout = std::chrono::seconds(2);
  std::vector<ProbeMethod> probes{ProbeMethod{}};
  TargetFamily family = TargetFamily::automatic;
};

struct DetectSection {
  int down_after = 3;
  int up_after = 2;
  double group_fraction = 0.5;  // a group is down when at least this fraction of its targets is down
  Duration suspect_interval{};  // probe interval while a target is suspect; zero: a quarter of its interval
  int flap_count = 4;           // down/up changes within flap_window that make a target flapping
  Duration flap_window = std::chrono::minutes(10);
};

struct TracerouteSection {
  std::string method = "icmp";  // icmp | udp | tcp:PORT
  int max_ttl = 30;
  int attempts = 2;              // probes per hop before it counts as silent
  int gap_limit = 5;             // consecutive silent hops that end a trace
  int parallel = 8;              // TTLs probed at once
  Duration timeout = std::chrono::seconds(1);               // per probe
  Duration baseline_interval = std::chrono::hours(1);       // a baseline trace per target this often
  bool reuse_hops = true;  // baselines stop at a hop another target's last good path went through
  int max_failure_traces = 4;      // failure traces at once; more outages wait their turn
  int max_queued_failures = 1024;  // outages waiting for a trace; beyond, written without one
};

// One item of `report.outputs`: a JSON Lines file or a collector.
struct OutputSpec {
  enum class Kind { file, http, influx, prometheus_remote_write, nats };
  Kind kind = Kind::file;
  std::string target;  // file: the path; collectors: the URL (http(s)://... or nats://...)
  // Unique among the outputs; names the output's spool directory under
  // agent.state_dir and its log lines. Default: the kind and a short hash of
  // the target (file: the path), e.g. influx-3f2a9c1e.
  std::string name;
  bool fsync = true;                              // file: fsync at every flush
  Duration flush_interval = std::chrono::seconds(1);  // file: write and fsync this often
  Duration timeout = std::chrono::seconds(10);    // collectors: one request (or publish) at most this long
  Duration batch_age = std::chrono::seconds(5);   // collectors: a batch closes when its oldest record is this old
  std::uint64_t batch_bytes = 1 << 20;            // ... or when it is this big (encoded, before compression)
  std::uint64_t spool_bytes = 256ull << 20;       // the spool's size limit; beyond, oldest probe batches go first
  Duration retry_min = std::chrono::seconds(1);   // backoff after a failed send: from this ...
  Duration retry_max = std::chrono::minutes(5);   // ... doubling (with jitter) up to this
  std::string ca_file;                            // https: trust these CAs (PEM) instead of the system's
  std::string token_file;                         // a bearer token, read from this file (never logged)
  std::optional<bool> gzip;                       // compress request bodies (default: http no, influx yes)
  std::string stream = "OUTPOST";                 // nats: the JetStream stream (created when missing)
  std::string subject = "outpost";                // nats: subjects are SUBJECT.AGENT.CLASS (probe|series|event)
  SourceMark mark;

  std::string kind_name() const;  // "file", "http", "influx", "prometheus_remote_write", "nats"
  bool operator==(const OutputSpec&) const = default;
};

struct ReportSection {
  Duration window = std::chrono::seconds(60);
  std::vector<OutputSpec> outputs;
};

struct Config {
  std::string path;  // the file it came from
  AgentSection agent;
  Defaults defaults;
  std::string asn_table;
  std::string asn_names;
  SourceMark asn_table_mark;  // where asn_table and asn_names stand
  SourceMark asn_names_mark;
  std::vector<Group> groups;
  DetectSection detect;
  TracerouteSection traceroute;
  ReportSection report;
};

struct ConfigError {
  std::string file;
  int line = 0;  // 1-based
  int col = 0;   // 1-based
  std::string message;
  // "FILE:LINE:COL: message"
  std::string to_string() const;
};

struct ConfigLoad {
  std::optional<Config> config;     // set only when errors is empty
  std::vector<ConfigError> errors;  // every problem found, in file order
};

// Loads and validates; never throws.
ConfigLoad load_config_file(const std::string& path);
// The same from text; `name` stands for the file name in errors.
ConfigLoad load_config_string(const std::string& text, const std::string& name);

// "1048576", "512KiB", "64MiB", "2GiB" (also KB, MB, GB: powers of 1000);
// nullopt and a message in *error otherwise.
std::optional<std::uint64_t> parse_size(std::string_view text, std::string* error);

// The longest duration the config and the command line accept: a year, so
// that a clock reading plus any duration (or a few) can never overflow.
inline constexpr Duration kMaxDuration = std::chrono::hours(24 * 365);

// "500ms", "2s", "5m", "1h", also "1.5s", "100us", at most kMaxDuration;
// nullopt and a message in *error otherwise.
std::optional<Duration> parse_duration(std::string_view text, std::string* error);
// The shortest exact form: 500ms, 2s, 5m, 1h, 1500ms.
std::string format_duration(Duration d);

}  // namespace outpost
