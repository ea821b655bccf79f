// What a report says about its records: outage intervals from events, whose
// problem an outage is when several vantage points watched, the numbers of
// the summary table, the chart's downsampling, and verdicts in words.
// All pure functions of the Dataset. Leaves to others: reading (report_reader)
// and drawing (report_html).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "report_data.hpp"

namespace outpost::report {

struct Interval {
  Seconds start = 0;
  Seconds end = 0;
};
bool overlaps(const Interval& a, const Interval& b);

enum class OutageScope { target, group, vantage };

// One outage as one agent saw it: a *_down and its *_up, or a *_up alone (its
// down lies before the records), or a *_down alone, open to the end of the data.
struct Outage {
  std::string agent;
  OutageScope scope = OutageScope::target;
  std::string target;                // target outages
  std::string group;                 // the target's group; the group; vantage: the control group
  std::vector<std::string> targets;  // group and vantage outages: the targets down ("NAME/4" as "NAME")
  Interval span;
  bool open = false;                 // no *_up yet: runs to the end of the data
  std::optional<VerdictInfo> verdict;
  Seconds reported = 0;              // when the *_down was written (the *_up's time when there was none)
};
std::vector<Outage> outages_of(const Dataset& data);

// Whether an outage concerns this agent's view of this target: its own target
// outage, its group's (naming it, or naming nobody), or the agent's own
// vantage outage (which concerns all of its targets).
bool concerns(const Outage& outage, const std::string& agent, const std::string& group, const std::string& target);

// Whose problem an outage is, from what the other vantage points saw.
enum class Blame {
  vantage,        // only this vantage point: others reached the target then
  target,         // every vantage point with data saw it down
  carrier,        // the same, and the verdict put the break inside the upstream carrier
  some_vantages,  // some others saw it down too, some reached the target
};
std::string blame_text(Blame blame);

// One vantage point's view of one target over the period.
struct VantageView {
  std::string agent;
  std::vector<Interval> down;     // its outages that concern the target
  std::vector<Interval> reached;  // its windows with an answer (received > 0)
};
struct Labelled {
  Blame blame = Blame::target;
  std::vector<std::string> also_down;  // other agents down at an overlapping time
  std::vector<std::string> reached_by; // other agents that reached the target meanwhile and were not down
};
// The outage `outage` of `agent`: another agent with an overlapping outage
// (even in part) saw it too; one without, that had an answer from the target
// in a window overlapping the outage, reached it; others had no data then and
// do not count. A vantage outage, or a verdict `vantage`, is the vantage's.
Labelled label_outage(const std::string& agent, const Interval& outage, OutageScope scope,
                      const std::optional<VerdictInfo>& verdict, const std::vector<VantageView>& views);

// The time of `intervals` within `span`, overlaps counted once.
Seconds covered_time(std::vector<Interval> intervals, const Interval& span);

// A target's availability from one vantage point over `span`: the share of
// the time the vantage point was itself up (outside `vantage_down`) in which
// the target was not in an outage (`target_down`: its own and its group's).
// nullopt when the vantage point was down all along.
std::optional<double> availability(const Interval& span, const std::vector<Interval>& target_down,
                                   const std::vector<Interval>& vantage_down);

// The table's numbers for one series, from every full-resolution window.
struct Summary {
  std::size_t windows = 0;
  Seconds covered = 0;          // time the windows span (sum of their lengths)
  double answered = 0;          // share of covered time in windows with an answer
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  double loss = 0;              // (sent - received) / sent
  std::optional<double> rtt_min, rtt_p50, rtt_p95, rtt_max;
};
// rtt_p50 is the received-weighted median of the windows' medians, rtt_p95
// the received-weighted 95th percentile of their p95s; min and max are exact.
Summary summarize(const std::vector<Window>& windows);

// The windows merged into at most `max_buckets` buckets over [from, to], each
// a window itself (each window lands in the bucket holding its start): min of
// the mins, max of the maxes, median of the medians, max of the p95s, and the
// counts summed. For drawing only.
std::vector<Window> downsample(const std::vector<Window>& windows, Seconds from, Seconds to, std::size_t max_buckets);

// A verdict in words: "the path dies after hop 7, 203.0.113.9, AS4837
// (CHINA169-BACKBONE ...), inside the upstream carrier". `name_of` gives an
// AS's name, or "" when unknown.
using AsnNamer = std::function<std::string(std::uint32_t)>;
std::string verdict_text(const VerdictInfo& verdict, const AsnNamer& name_of);
std::string asn_text(std::uint32_t asn, const AsnNamer& name_of);

}  // namespace outpost::report
