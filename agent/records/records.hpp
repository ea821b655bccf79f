// The records outpost writes (CONTRACT.md) as C++ types: `probe`, `series`,
// `trace` and `event`, each built from what the daemon knows, plus the
// verdict an event carries. Encoders (json_lines.hpp, and later others) write them.
// Leaves to others: how records are computed (analysis, daemon) and where they go (outputs).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "probe.hpp"
#include "traceroute.hpp"

namespace outpost {

// 2014-12-22T16:15:00.123456Z: UTC, microseconds.
std::string rfc3339(WallTime t);
double to_ms(Duration d);

// The address family a record is about: 4 or 6 (0 when no address is known).
int family_of(const IpAddress& address);

// What the agent knows of a probe beyond its result.
struct ProbeLabels {
  std::string agent;
  std::string target;
  std::string group;
  std::string method;  // icmp | tcp | dns
  int port = 0;        // tcp only
  int af = 0;          // the task's address family, for records with no address (4 or 6)
};

// One probe: `address` is the probed address as text, or the configured name
// when it could not be attempted (then result.status is error).
struct ProbeRecord {
  ProbeLabels labels;
  std::string address;
  int af = 0;
  ProbeResult result;
};
// Labels by value: a caller's temporary (the agent builds them per probe) moves in.
ProbeRecord probe_record(ProbeLabels labels, const ProbeResult& result);
// A probe that could not even be attempted (e.g. its host name did not resolve).
ProbeRecord probe_error_record(ProbeLabels labels, const std::string& address, WallTime time,
                               const std::string& error);

// RTT statistics of one window, in milliseconds.
struct RttSummary {
  double min = 0, avg = 0, p50 = 0, p95 = 0, max = 0, stddev = 0;
};

// What one series is of: the agent has one per task (target × method × family).
struct SeriesKey {
  std::string target;
  std::string group;
  std::string method;  // icmp | tcp | dns
  int port = 0;        // tcp only
  int af = 0;          // 4 or 6
  bool operator==(const SeriesKey&) const = default;
};

// One closed window of one series.
//
// How a probe counts, by its status:
//   reply, refused  sent and received: the host answered (a TCP RST says the
//                   host is up, only the port is closed). Their rtt, when the
//                   result has one, is an RTT sample.
//   timeout         sent, not received; counted in `timeouts`.
//   unreachable     sent, not received (an ICMP error came from a router, not
//                   an answer from the target); counted in `unreachable`.
//   error           sent, not received; counted in `errors`.
// So sent == received + timeouts + unreachable + errors, and loss is
// (sent - received) / sent. `rtt` is empty when there is no RTT sample.
struct SeriesWindow {
  SeriesKey key;
  WallTime start;   // floor(send time / length) * length, since the Unix epoch
  Duration length;  // the aggregator's window
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t unreachable = 0;
  std::uint64_t errors = 0;
  std::optional<RttSummary> rtt;
  // The agent did not probe for the whole window: it started after the
  // window's start, or stopped before the window's end.
  bool partial = false;

  WallTime end() const { return start + length; }
  double loss() const;  // 0..1; 0 when nothing was sent
};

// `time` is the window's start (so the records of one window from many
// agents share a time).
struct SeriesRecord {
  std::string agent;
  SeriesWindow window;
};
inline SeriesRecord series_record(const std::string& agent, SeriesWindow window) { return {agent, std::move(window)}; }

// A trace hop's network, looked up by whoever has the table.
struct HopAsn {
  std::uint32_t asn = 0;
  std::string origin;  // "A_B" for multi-origin prefixes, else empty
  std::string name;    // when AS names are loaded
};
using AsnLookup = std::function<std::optional<HopAsn>(const IpAddress&)>;

struct TraceRecord {
  ProbeLabels labels;  // method and port are the trace's
  std::string reason;  // baseline | failure | manual
  TraceResult trace;
  std::vector<std::optional<HopAsn>> hop_asns;  // one per hop of trace.hops
};
// Every hop gets its ASN through `asn_of` (may be empty: no table).
TraceRecord trace_record(const ProbeLabels& labels, const TraceResult& trace, const std::string& reason,
                         const AsnLookup& asn_of);

enum class EventKind : std::uint8_t {
  target_down, target_up, group_down, group_up, vantage_down, vantage_up, target_flapping, target_stable
};
std::string_view to_string(EventKind kind);
bool is_down(EventKind kind);  // target_down, group_down, vantage_down

// A change of state, as the detector sees it.
struct DetectorEvent {
  EventKind kind{};
  std::string target;                // target events
  std::string group;                 // group events, and the target's group on target events
  int af = 0;                        // target events: the family that went down or up (4 or 6)
  WallTime start{};                  // the first failed probe of the outage
  std::optional<WallTime> last_ok;   // the last good probe before it (the outage began after this)
  std::optional<WallTime> end;       // on the way up: the first good probe again
  std::vector<std::string> targets;  // group and vantage events: the targets that are down
  int changes = 0;                   // flapping: state changes within the flap window
  std::string state;                 // target_stable: "up" or "down"
};

enum class Where : std::uint8_t { upstream, target_network, before_upstream, vantage, unknown };
std::string_view to_string(Where where);

// Where a path breaks (the correlator's answer), carried by *_down events.
struct Verdict {
  Where where = Where::unknown;
  IpAddress last_hop;                                 // the last router (or host) that answered the failure trace
  std::optional<std::uint32_t> last_hop_asn;
  int last_ttl = 0;
  std::optional<std::uint32_t> baseline_reached_asn;  // the ASN the last good trace ended in
  std::optional<WallTime> trace;                      // the failure trace's time
  std::optional<bool> last_hop_alive;                 // answered direct probes after the trace
  bool have_baseline = false;
  std::string reason;                                 // one sentence for people
};

struct EventRecord {
  std::string agent;
  WallTime time;  // when the event was written
  DetectorEvent event;
  std::optional<Verdict> verdict;
};
EventRecord event_record(const std::string& agent, const DetectorEvent& event, const Verdict* verdict, WallTime now);

using Record = std::variant<ProbeRecord, SeriesRecord, TraceRecord, EventRecord>;

// The record's `type`: probe, series, trace, event.
std::string_view record_type(const Record& record);

}  // namespace outpost
