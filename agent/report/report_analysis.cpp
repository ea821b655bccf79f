// Outages, blame, table numbers, downsampling and verdict sentences.
#include "report_analysis.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

namespace outpost::report {

namespace {

// "net2-www/4" names one family of a dual-stack target; the page shows targets.
std::string target_name(const std::string& name) {
  if (name.size() > 2 && name[name.size() - 2] == '/' && (name.back() == '4' || name.back() == '6'))
    return name.substr(0, name.size() - 2);
  return name;
}

bool is_up(const std::string& kind) { return kind.size() > 3 && kind.compare(kind.size() - 3, 3, "_up") == 0; }

OutageScope scope_of(const std::string& kind) {
  if (kind.rfind("group_", 0) == 0) return OutageScope::group;
  if (kind.rfind("vantage_", 0) == 0) return OutageScope::vantage;
  return OutageScope::target;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// The value under which a share q of the weight lies.
std::optional<double> weighted_quantile(std::vector<std::pair<double, double>> values, double q) {
  double total = 0;
  for (const auto& [v, w] : values) total += w;
  if (values.empty() || total <= 0) return std::nullopt;
  std::sort(values.begin(), values.end());
  double running = 0;
  for (const auto& [v, w] : values) {
    running += w;
    if (running >= q * total) return v;
  }
  return values.back().first;
}

std::optional<double> median(std::vector<double> values) {
  if (values.empty()) return std::nullopt;
  const std::size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2) return upper;
  const double lower = *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

std::string hop_text(const VerdictInfo& v, const AsnNamer& name_of) {
  std::string s = "hop " + std::to_string(v.last_ttl) + ", " + v.last_hop;
  if (v.last_hop_asn) s += ", " + asn_text(*v.last_hop_asn, name_of);
  return s;
}

}  // namespace

bool overlaps(const Interval& a, const Interval& b) { return a.start < b.end && b.start < a.end; }

std::vector<Outage> outages_of(const Dataset& data) {
  std::vector<Outage> done;
  // Open outages by (agent, scope, target or group).
  std::map<std::tuple<std::string, OutageScope, std::string>, Outage> open;
  for (const Event& e : data.events) {
    const OutageScope scope = scope_of(e.kind);
    const std::string subject =
        scope == OutageScope::target ? e.target : scope == OutageScope::group ? e.group : std::string();
    const auto key = std::make_tuple(e.agent, scope, subject);
    auto it = open.find(key);
    // What the event says of the outage, whichever end of it the event is.
    auto outage_of = [&] {
      Outage o;
      o.agent = e.agent;
      o.scope = scope;
      o.target = e.target;
      o.group = e.group;
      for (const auto& t : e.targets) o.targets.push_back(target_name(t));
      o.reported = e.time;
      return o;
    };
    if (!is_up(e.kind)) {
      if (it != open.end()) continue;  // already down: a repeated record
      Outage o = outage_of();
      o.span = {e.start, e.start};
      o.verdict = e.verdict;
      open.emplace(key, std::move(o));
      continue;
    }
    Outage o;
    if (it != open.end()) {
      o = std::move(it->second);
      open.erase(it);
    } else {
      o = outage_of();
    }
    o.span = {e.start, e.end.value_or(e.time)};
    done.push_back(std::move(o));
  }
  for (auto& [key, o] : open) {
    o.open = true;
    o.span.end = std::max(o.span.start, data.latest);
    done.push_back(std::move(o));
  }
  std::stable_sort(done.begin(), done.end(), [](const Outage& a, const Outage& b) {
    return std::tie(a.span.start, a.agent) < std::tie(b.span.start, b.agent);
  });
  return done;
}

bool concerns(const Outage& o, const std::string& agent, const std::string& group, const std::string& target) {
  if (o.agent != agent) return false;
  switch (o.scope) {
    case OutageScope::vantage: return true;
    case OutageScope::group: return o.group == group && (o.targets.empty() || contains(o.targets, target));
    case OutageScope::target: return target_name(o.target) == target && (o.group.empty() || o.group == group);
  }
  return false;
}

std::string blame_text(Blame blame) {
  switch (blame) {
    case Blame::vantage: return "the vantage point's problem";
    case Blame::target: return "the target's problem";
    case Blame::carrier: return "the carrier's problem";
    case Blame::some_vantages: return "seen from some vantage points only";
  }
  return "";
}

Labelled label_outage(const std::string& agent, const Interval& outage, OutageScope scope,
                      const std::optional<VerdictInfo>& verdict, const std::vector<VantageView>& views) {
  Labelled out;
  // A zero-length outage (start == end) still has a moment to compare.
  const Interval span{outage.start, std::max(outage.end, outage.start + 1e-6)};
  for (const VantageView& view : views) {
    if (view.agent == agent) continue;
    auto hits = [&](const std::vector<Interval>& intervals) {
      return std::any_of(intervals.begin(), intervals.end(), [&](const Interval& i) { return overlaps(i, span); });
    };
    if (hits(view.down)) out.also_down.push_back(view.agent);
    else if (hits(view.reached)) out.reached_by.push_back(view.agent);
  }
  const bool upstream = verdict && verdict->where == "upstream";
  if (scope == OutageScope::vantage || (verdict && verdict->where == "vantage")) out.blame = Blame::vantage;
  else if (!out.reached_by.empty()) out.blame = out.also_down.empty() ? Blame::vantage : Blame::some_vantages;
  else out.blame = upstream ? Blame::carrier : Blame::target;
  return out;
}

Seconds covered_time(std::vector<Interval> intervals, const Interval& span) {
  std::sort(intervals.begin(), intervals.end(), [](const Interval& a, const Interval& b) { return a.start < b.start; });
  Seconds total = 0, reach = span.start;
  for (const Interval& i : intervals) {
    const Seconds start = std::max(i.start, reach), end = std::min(i.end, span.end);
    if (end > start) total += end - start;
    reach = std::max(reach, end);
  }
  return total;
}

std::optional<double> availability(const Interval& span, const std::vector<Interval>& target_down,
                                   const std::vector<Interval>& vantage_down) {
  const Seconds vantage = covered_time(vantage_down, span);
  const Seconds up = (span.end - span.start) - vantage;
  if (up <= 0) return std::nullopt;
  std::vector<Interval> either = target_down;
  either.insert(either.end(), vantage_down.begin(), vantage_down.end());
  const Seconds target = covered_time(std::move(either), span) - vantage;
  return std::clamp(1 - target / up, 0.0, 1.0);
}

Summary summarize(const std::vector<Window>& windows) {
  Summary s;
  Seconds answered = 0;
  std::vector<std::pair<double, double>> p50s, p95s;
  for (const Window& w : windows) {
    ++s.windows;
    s.covered += w.length;
    if (w.received > 0) answered += w.length;
    s.sent += w.sent;
    s.received += w.received;
    if (!w.rtt_p50) continue;
    s.rtt_min = s.rtt_min ? std::min(*s.rtt_min, *w.rtt_min) : *w.rtt_min;
    s.rtt_max = s.rtt_max ? std::max(*s.rtt_max, *w.rtt_max) : *w.rtt_max;
    p50s.emplace_back(*w.rtt_p50, static_cast<double>(w.received));
    p95s.emplace_back(*w.rtt_p95, static_cast<double>(w.received));
  }
  s.answered = s.covered > 0 ? answered / s.covered : 0;
  s.loss = s.sent ? static_cast<double>(s.sent - s.received) / static_cast<double>(s.sent) : 0;
  s.rtt_p50 = weighted_quantile(std::move(p50s), 0.5);
  s.rtt_p95 = weighted_quantile(std::move(p95s), 0.95);
  return s;
}

std::vector<Window> downsample(const std::vector<Window>& windows, Seconds from, Seconds to, std::size_t max_buckets) {
  std::vector<Window> buckets;
  if (windows.empty() || max_buckets == 0) return buckets;
  if (to <= from) to = from + 1;
  const Seconds width = (to - from) / static_cast<double>(max_buckets);
  struct Gather {
    Window bucket;
    Seconds end = 0;
    std::vector<double> p50s;
    bool used = false;
  };
  std::vector<Gather> gather(max_buckets);
  for (const Window& w : windows) {
    const double position = std::floor((w.start - from) / width);
    const std::size_t i = static_cast<std::size_t>(std::clamp(position, 0.0, static_cast<double>(max_buckets - 1)));
    Gather& g = gather[i];
    Window& b = g.bucket;
    b.start = g.used ? std::min(b.start, w.start) : w.start;
    g.end = g.used ? std::max(g.end, w.end()) : w.end();
    g.used = true;
    b.sent += w.sent;
    b.received += w.received;
    if (!w.rtt_p50) continue;
    b.rtt_min = b.rtt_min ? std::min(*b.rtt_min, *w.rtt_min) : *w.rtt_min;
    b.rtt_max = b.rtt_max ? std::max(*b.rtt_max, *w.rtt_max) : *w.rtt_max;
    b.rtt_p95 = b.rtt_p95 ? std::max(*b.rtt_p95, *w.rtt_p95) : *w.rtt_p95;
    g.p50s.push_back(*w.rtt_p50);
  }
  for (Gather& g : gather) {
    if (!g.used) continue;
    g.bucket.length = g.end - g.bucket.start;
    g.bucket.rtt_p50 = median(std::move(g.p50s));
    buckets.push_back(g.bucket);
  }
  return buckets;
}

std::string asn_text(std::uint32_t asn, const AsnNamer& name_of) {
  std::string s = "AS" + std::to_string(asn);
  if (name_of) {
    if (std::string name = name_of(asn); !name.empty()) s += " (" + name + ")";
  }
  return s;
}

std::string verdict_text(const VerdictInfo& v, const AsnNamer& name_of) {
  const bool hop = !v.last_hop.empty();
  std::string baseline;
  if (v.baseline_reached_asn) baseline = "; the last good trace reached " + asn_text(*v.baseline_reached_asn, name_of);
  if (v.where == "upstream")
    return (hop ? "the path dies after " + hop_text(v, name_of) : std::string("no hop answered")) +
           ", inside the upstream carrier" + baseline;
  if (v.where == "before_upstream")
    return (hop ? "the path dies after " + hop_text(v, name_of) : std::string("no hop answered")) +
           ", before the upstream carrier (between this vantage point and the carrier)" + baseline;
  if (v.where == "target_network")
    return std::string("the path still reaches the target's own network") +
           (hop ? " (last answer: " + hop_text(v, name_of) + ")" : std::string()) +
           ", so the break is inside the target's network, or the target no longer answers" + baseline;
  if (v.where == "vantage")
    return "the vantage point's own connectivity failed (its control targets failed too): not the target's problem";
  std::string s = "where the path breaks is unknown";
  if (hop) s += " (the last answer came from " + hop_text(v, name_of) + ")";
  if (!v.reason.empty()) s += ": " + v.reason;
  return s;
}

}  // namespace outpost::report
