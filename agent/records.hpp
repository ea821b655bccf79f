// The JSON records outpost writes (CONTRACT.md): their fields and the
// RFC 3339 times on them.
// Leaves to others: where records go (outputs) and when they are made (agent).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "asn_table.hpp"
#include "detector.hpp"
#include "probe.hpp"
#include "series.hpp"
#include "traceroute.hpp"

namespace outpost {

// 2014-12-22T16:15:00.123456Z: UTC, microseconds.
std::string rfc3339(WallTime t);

// What the agent knows of a probe beyond its result.
struct ProbeLabels {
  std::string agent;
  std::string target;
  std::string group;
  std::string method;  // icmp | tcp | dns
  int port = 0;        // tcp only
};

nlohmann::json probe_record(const ProbeLabels& labels, const ProbeResult& result);

// A probe that could not even be attempted (e.g. its host name did not resolve).
nlohmann::json probe_error_record(const ProbeLabels& labels, const std::string& address, WallTime time,
                                  const std::string& error);

double to_ms(Duration d);

// A `trace` record: reason is baseline | failure | manual. Every hop carries
// `asn` (null when silent or not in the table); `asn_name` when names are loaded.
nlohmann::json trace_record(const ProbeLabels& labels, const TraceResult& trace, const std::string& reason,
                            const AsnTable* asns);

// A `series` record for one closed window. `time` is the window's start (so the
// records of one window from many agents share a time); `window_s` is a whole
// number when the window is; the rtt_* fields are there only when the window
// has RTT samples. Beyond the contract: timeouts, unreachable, errors, partial.
nlohmann::json series_record(const std::string& agent, const SeriesWindow& window);

struct Verdict;

// An `event` record: kind, target or group, start, and on the way up end and
// duration_s; on *_down the verdict (when there is one).
nlohmann::json event_record(const std::string& agent, const DetectorEvent& event, const Verdict* verdict,
                            WallTime now);

}  // namespace outpost
