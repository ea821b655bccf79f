// What `outpost report` reads from records files: the series windows, traces
// and events of one or more agents, in plain values (times as Unix seconds),
// plus the problems met on the way, each naming its file and line.
// Leaves to others: reading the lines (report_reader), what the values mean
// (report_analysis) and drawing them (report_html).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace outpost::report {

// Unix seconds with fractions (microseconds survive in a double for centuries).
using Seconds = double;

// RFC 3339 ("2014-12-22T16:15:00.123456Z", or with an offset "+09:00");
// nullopt when it is not one.
std::optional<Seconds> parse_rfc3339(const std::string& text);
// "2014-12-22 16:15:00" in UTC (the page's times, to the second).
std::string utc_text(Seconds t);
// "9 h 31 min", "12 s", "3 min 5 s".
std::string duration_text(Seconds d);

// One series window, as the `series` record gives it.
struct Window {
  Seconds start = 0;
  Seconds length = 0;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  // Absent when nothing was received.
  std::optional<double> rtt_min, rtt_p50, rtt_p95, rtt_max;
  Seconds end() const { return start + length; }
  double loss() const { return sent ? static_cast<double>(sent - received) / static_cast<double>(sent) : 0; }
};

// One series: an agent's view of one target by one method.
struct Series {
  std::string agent;
  std::string group;
  std::string target;
  std::string method;  // icmp | tcp | dns; tcp carries its port: "tcp:80"
  int af = 0;
  std::vector<Window> windows;  // sorted by start once read
};

struct Hop {
  int ttl = 0;
  std::string addr;  // empty when silent
  std::optional<std::uint32_t> asn;
  std::string asn_name;  // from the record (the agent's names), may be empty
  std::optional<double> rtt_ms;
  std::string reused_from;  // set: not probed by this trace, taken from an earlier one (its time)
};

struct Trace {
  std::string agent;
  std::string group;
  std::string target;
  std::string address;
  std::string method;
  std::string reason;  // baseline | failure | manual
  std::string time_text;  // as written: verdicts name their trace by it
  Seconds time = 0;
  bool reached = false;
  std::vector<Hop> hops;
};

struct VerdictInfo {
  std::string where;  // upstream | target_network | before_upstream | vantage | unknown
  std::string last_hop;
  std::optional<std::uint32_t> last_hop_asn;
  int last_ttl = 0;
  std::optional<std::uint32_t> baseline_reached_asn;
  std::string trace;   // the failure trace's time, as written
  std::string reason;  // the agent's own sentence
};

struct Event {
  std::string agent;
  Seconds time = 0;
  std::string kind;  // target_down, target_up, group_down, ...
  std::string target;
  std::string group;
  std::vector<std::string> targets;  // group and vantage events: the targets down
  Seconds start = 0;
  std::optional<Seconds> end;
  std::optional<VerdictInfo> verdict;
};

// A line that was skipped, and why.
inline constexpr std::size_t kMaxProblemsKept = 1000;
struct Problem {
  std::string file;
  std::size_t line = 0;
  std::string message;
};

struct Dataset {
  std::vector<Series> series;
  std::vector<Trace> traces;
  std::vector<Event> events;
  std::vector<Problem> problems;  // the first kMaxProblemsKept of them
  std::size_t bad_lines = 0;      // all the lines skipped as problems
  std::size_t lines = 0;          // non-empty lines read
  std::size_t records_used = 0;   // series, trace and event records kept
  std::size_t records_other = 0;  // other types (probe, unknown), ignored
  std::size_t outside = 0;        // records outside --from/--to or --group
  Seconds latest = 0;             // the latest time any record speaks of (open outages run to it)
};

}  // namespace outpost::report
