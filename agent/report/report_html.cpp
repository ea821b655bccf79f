// The page, written into one string. Charts are drawn from downsampled
// buckets, a handful of <path>s per chart (one per loss colour), so a day of
// minute windows for a hundred targets stays a few megabytes; the tables use
// every window.
#include "report_html.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace outpost::report {

namespace {

// Loss colours, as SmokePing colours its median: green when nothing was lost.
struct LossClass {
  double up_to;
  const char* colour;
  const char* label;
};
constexpr LossClass kLossClasses[] = {
    {0.0, "#1a9641", "0"},         {0.02, "#3b7dd8", "&le; 2 %"},  {0.10, "#8e44ad", "&le; 10 %"},
    {0.25, "#e08a00", "&le; 25 %"}, {0.50, "#e4572e", "&le; 50 %"}, {1.0, "#b00020", "&gt; 50 %"},
};
constexpr int kLossClassCount = sizeof kLossClasses / sizeof kLossClasses[0];

int loss_class(double loss) {
  for (int i = 0; i < kLossClassCount; ++i)
    if (loss <= kLossClasses[i].up_to + 1e-12) return i;
  return kLossClassCount - 1;
}

// Chart geometry, in SVG user units.
constexpr double kLeft = 64, kPlotWidth = 1000, kRight = 12, kTop = 18, kPlotHeight = 140, kGap = 6,
                 kLossHeight = 26, kAxis = 20;
constexpr double kWidth = kLeft + kPlotWidth + kRight;
constexpr double kLossTop = kTop + kPlotHeight + kGap;
constexpr double kHeight = kLossTop + kLossHeight + kAxis;

std::string num(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string ms_text(const std::optional<double>& v) { return v ? num(*v, *v < 10 ? 2 : 1) : std::string("&ndash;"); }
std::string percent(double share) { return num(share * 100, share > 0 && share < 0.001 ? 3 : 1) + " %"; }

const char kStyle[] = R"CSS(
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:20px 28px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccc}
h3{font-size:16px;margin:22px 0 6px}h4{font-size:14px;margin:12px 0 4px}
table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#555}.empty{font-size:16px;padding:12px;background:#fff6d6;border:1px solid #e6c300}
.problems{background:#fdecea;border:1px solid #e4572e;padding:6px 10px}
svg{display:block;margin:4px 0 10px;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#333}text.row-label{font-weight:bold;fill:#222}
.axis line{stroke:#bbb;stroke-width:1}.grid{stroke:#eee;stroke-width:1}
.mm{fill:#d9d9d9}.p95{fill:#a8a8a8}
.outage-target{fill:#f4b6b6;fill-opacity:.55;stroke:#c0392b;stroke-width:1}
.outage-vantage{fill:#b9c8f0;fill-opacity:.6;stroke:#2f5bb7;stroke-width:1;stroke-dasharray:4 3}
text.outage-label{font-size:10px;fill:#6b1010}text.outage-label.vantage{fill:#1d3d80}
.reached{fill:#cfe8cf}.blame-vantage{fill:#b9c8f0;stroke:#2f5bb7;stroke-dasharray:4 3}
.blame-target{fill:#f4b6b6;stroke:#c0392b}.blame-carrier{fill:#f0a060;stroke:#a04000}.blame-some_vantages{fill:#f3d98b;stroke:#a08000}
.legend span.sw{display:inline-block;width:14px;height:10px;margin:0 4px 0 12px;vertical-align:middle;border:1px solid #999}
.verdict{border-left:4px solid #c0392b;padding:4px 10px;margin:10px 0;background:#fafafa}
.verdict.vantage{border-left-color:#2f5bb7}
table.trace td.asn{font-size:12px}tr.break td{border-top:3px solid #c0392b}
tr.break td.mark{color:#c0392b;font-weight:bold}tr.last td{font-weight:bold}
.tag{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px}
.tag.vantage{background:#b9c8f0}.tag.target{background:#f4b6b6}.tag.carrier{background:#f0a060}.tag.some_vantages{background:#f3d98b}
)CSS";

std::string blame_class(Blame blame) {
  switch (blame) {
    case Blame::vantage: return "vantage";
    case Blame::target: return "target";
    case Blame::carrier: return "carrier";
    case Blame::some_vantages: return "some_vantages";
  }
  return "target";
}

// A stable pale colour per AS, so one AS looks the same in both traces.
std::string asn_colour(std::uint32_t asn) {
  const std::uint32_t h = (asn * 2654435761u) >> 16;
  return "hsl(" + std::to_string(h % 360) + ",70%,85%)";
}

// Times on the axis: the day too when the period spans more than a day.
std::string tick_text(Seconds t, Seconds span) {
  const std::string full = utc_text(t);
  if (span > 86400) return full.substr(5, 11);
  if (span < 600) return full.substr(11, 8);
  return full.substr(11, 5);
}

struct Page {
  const Dataset& data;
  const RenderOptions& options;
  Seconds from = 0, to = 0;
  std::vector<Outage> outages;
  std::string out;
  std::set<const Trace*> traces_drawn;

  double x(Seconds t) const {
    const double share = (std::clamp(t, from, to) - from) / (to - from);
    return kLeft + share * kPlotWidth;
  }
  std::string asn_label(std::uint32_t asn, const std::string& fallback_name) const {
    std::string name = options.name_of ? options.name_of(asn) : std::string();
    if (name.empty()) name = fallback_name;
    return "AS" + std::to_string(asn) + (name.empty() ? "" : " " + name);
  }
  AsnNamer namer() const {
    // The names file first, then a name some trace carried.
    std::map<std::uint32_t, std::string> seen;
    for (const Trace& t : data.traces)
      for (const Hop& h : t.hops)
        if (h.asn && !h.asn_name.empty()) seen.emplace(*h.asn, h.asn_name);
    return [seen = std::move(seen), by_file = options.name_of](std::uint32_t asn) {
      std::string name = by_file ? by_file(asn) : std::string();
      if (name.empty())
        if (auto it = seen.find(asn); it != seen.end()) name = it->second;
      return name;
    };
  }

  void head();
  void summary_table();
  void outage_table(const std::vector<std::pair<const Outage*, Labelled>>& labelled);
  void chart(const Series& s);
  void vantage_rows(const std::string& group, const std::string& target, const std::vector<const Series*>& series,
                    std::vector<std::pair<const Outage*, Labelled>>& labelled);
  void verdict_block(const Outage& o, const AsnNamer& name_of);
  void trace_table(const Trace* baseline, const Trace* failure, int last_ttl);
  void outage_bands(const std::string& agent, const std::string& group, const std::string& target);
};

void Page::head() {
  out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width\"><title>outpost report</title><style>";
  out += kStyle;
  out += "</style></head>\n<body>\n<h1>outpost report</h1>\n";
  out += "<p class=\"meta\">Period " + html_escape(utc_text(from)) + " &ndash; " + html_escape(utc_text(to)) +
         " UTC (" + duration_text(to - from) + ")";
  if (!options.group.empty()) out += ", group <b>" + html_escape(options.group) + "</b> only";
  out += ". Read from ";
  for (std::size_t i = 0; i < options.inputs.size(); ++i)
    out += (i ? ", " : "") + std::string("<code>") + html_escape(options.inputs[i]) + "</code>";
  std::set<std::string> agents;
  for (const Series& s : data.series) agents.insert(s.agent);
  for (const Event& e : data.events) agents.insert(e.agent);
  out += ": " + std::to_string(data.records_used) + " records used (" + std::to_string(data.records_other) +
         " of other types ignored, " + std::to_string(data.outside) + " outside the period or group). Vantage points: ";
  bool first = true;
  for (const auto& a : agents) {
    out += (first ? "" : ", ") + std::string("<b>") + html_escape(a) + "</b>";
    first = false;
  }
  if (agents.empty()) out += "none";
  out += ".</p>\n";
  if (data.bad_lines) {
    out += "<div class=\"problems\" id=\"problems\"><b>" + std::to_string(data.bad_lines) +
           " line(s) skipped</b> as unreadable (also reported on standard error):<ul>";
    const std::size_t shown = std::min<std::size_t>(data.problems.size(), 20);
    for (std::size_t i = 0; i < shown; ++i) {
      const Problem& p = data.problems[i];
      out += "<li><code>" + html_escape(p.file) + ":" + std::to_string(p.line) + "</code>: " + html_escape(p.message) +
             "</li>";
    }
    if (data.bad_lines > shown) out += "<li>and " + std::to_string(data.bad_lines - shown) + " more</li>";
    out += "</ul></div>\n";
  }
  out += "<p class=\"legend meta\">Charts: median RTT coloured by the window's loss";
  for (const auto& c : kLossClasses)
    out += "<span class=\"sw\" style=\"background:" + std::string(c.colour) + "\"></span>" + c.label;
  out += "; <span class=\"sw\" style=\"background:#a8a8a8\"></span>min&ndash;p95"
         "<span class=\"sw\" style=\"background:#d9d9d9\"></span>min&ndash;max; loss drawn beneath. "
         "<span class=\"sw\" style=\"background:#f4b6b6\"></span>target or group outage"
         "<span class=\"sw\" style=\"background:#b9c8f0\"></span>the vantage point's own outage.</p>\n";
}

void Page::summary_table() {
  out += "<h2>Summary</h2>\n<p class=\"meta\">Availability: the share of the time the series covers, less the "
         "vantage point's own outages, in which the target was not in an outage (its own or its group's, as this "
         "vantage point saw it). Answered windows: the share of that time in windows with at least one answer. Loss: probes lost over probes sent. RTT from every window "
         "(never the charts' buckets): min and max exact, p50 the median of the windows' medians and p95 the 95th "
         "percentile of their p95s, each window weighted by the answers it had.</p>\n";
  out += "<table class=\"summary\"><tr><th>group</th><th>target</th><th>method</th><th>vantage point</th>"
         "<th>windows</th><th>availability</th><th>answered windows</th><th>loss</th><th>sent</th><th>p50 ms</th><th>p95 ms</th>"
         "<th>min ms</th><th>max ms</th><th>outage time</th></tr>\n";
  std::vector<const Series*> sorted;
  for (const Series& s : data.series) sorted.push_back(&s);
  std::sort(sorted.begin(), sorted.end(), [](const Series* a, const Series* b) {
    return std::tie(a->group, a->target, a->method, a->af, a->agent) < std::tie(b->group, b->target, b->method, b->af, b->agent);
  });
  for (const Series* s : sorted) {
    const Summary sum = summarize(s->windows);
    // Outage time within the series' own span, from this agent's view of the target.
    Interval span{from, to};
    if (!s->windows.empty()) span = {std::max(from, s->windows.front().start), std::min(to, s->windows.back().end())};
    std::vector<Interval> down, vantage_down;
    for (const Outage& o : outages)
      if (concerns(o, s->agent, s->group, s->target))
        (o.scope == OutageScope::vantage ? vantage_down : down).push_back(o.span);
    const Seconds total = covered_time(down, span);
    const auto available = availability(span, down, vantage_down);
    out += "<tr data-target=\"" + html_escape(s->target) + "\" data-method=\"" + html_escape(s->method) + "\"><td>" +
           html_escape(s->group) + "</td><td>" + html_escape(s->target) + (s->af ? " <small>IPv" + std::to_string(s->af) + "</small>" : "") +
           "</td><td>" + html_escape(s->method) + "</td><td>" + html_escape(s->agent) + "</td><td class=\"n\">" +
           std::to_string(sum.windows) + "</td><td class=\"n\">" + (available ? percent(*available) : std::string("&ndash;")) + "</td><td class=\"n\">" +
           percent(sum.answered) + "</td><td class=\"n\">" +
           percent(sum.loss) + "</td><td class=\"n\">" + std::to_string(sum.sent) + "</td><td class=\"n\">" +
           ms_text(sum.rtt_p50) + "</td><td class=\"n\">" + ms_text(sum.rtt_p95) + "</td><td class=\"n\">" +
           ms_text(sum.rtt_min) + "</td><td class=\"n\">" + ms_text(sum.rtt_max) + "</td><td class=\"n\">" +
           (total > 0 ? duration_text(total) : std::string("&ndash;")) + "</td></tr>\n";
  }
  out += "</table>\n";
}

void Page::outage_table(const std::vector<std::pair<const Outage*, Labelled>>& labelled) {
  out += "<h2>Outages</h2>\n";
  if (labelled.empty()) {
    out += "<p>No outage in the period.</p>\n";
    return;
  }
  out += "<table class=\"outages\"><tr><th>vantage point</th><th>what</th><th>start (UTC)</th><th>end (UTC)</th>"
         "<th>duration</th><th>whose problem</th><th>where the path breaks</th></tr>\n";
  const AsnNamer name_of = namer();
  for (const auto& [o, label] : labelled) {
    std::string what = o->scope == OutageScope::vantage ? "vantage point (control group " + o->group + ")"
                       : o->scope == OutageScope::group ? "group " + o->group
                                                        : "target " + o->target;
    out += "<tr class=\"outage-row\"><td>" + html_escape(o->agent) + "</td><td>" + html_escape(what) + "</td><td>" +
           utc_text(o->span.start) + "</td><td>" + (o->open ? "still down at " : "") + utc_text(o->span.end) +
           "</td><td class=\"n\">" + duration_text(o->span.end - o->span.start) + (o->open ? "+" : "") +
           "</td><td><span class=\"tag " + blame_class(label.blame) + "\">" + blame_text(label.blame) + "</span>";
    if (!label.also_down.empty()) {
      out += "<br><small>also down from:";
      for (const auto& a : label.also_down) out += " " + html_escape(a);
      out += "</small>";
    }
    if (!label.reached_by.empty()) {
      out += "<br><small>reached meanwhile from:";
      for (const auto& a : label.reached_by) out += " " + html_escape(a);
      out += "</small>";
    }
    out += "</td><td>" + (o->verdict ? html_escape(verdict_text(*o->verdict, name_of)) : std::string("&ndash;")) +
           "</td></tr>\n";
  }
  out += "</table>\n";
}

// Outage bands of one agent's view of one target, behind its chart's data.
void Page::outage_bands(const std::string& agent, const std::string& group, const std::string& target) {
  // Labels already written, by line: a label that would overlap one goes a line lower.
  std::vector<std::vector<std::pair<double, double>>> lines;
  for (const Outage& o : outages) {
    if (!concerns(o, agent, group, target) || o.span.end < from || o.span.start > to) continue;
    const bool vantage = o.scope == OutageScope::vantage;
    const double x0 = x(o.span.start), x1 = std::max(x(o.span.end), x0 + 2);
    const std::string when = utc_text(o.span.start) + " – " + (o.open ? "still down at " : "") +
                             utc_text(o.span.end) + " UTC (" + duration_text(o.span.end - o.span.start) + ")";
    const std::string what = vantage ? "vantage point down" : o.scope == OutageScope::group ? "group down" : "down";
    out += "<rect class=\"outage " + std::string(vantage ? "outage-vantage" : "outage-target") + "\" data-start=\"" +
           html_escape(utc_text(o.span.start)) + "\" data-end=\"" + html_escape(utc_text(o.span.end)) + "\" x=\"" +
           num(x0) + "\" y=\"" + num(kTop) + "\" width=\"" + num(x1 - x0) + "\" height=\"" +
           num(kLossTop + kLossHeight - kTop) + "\"><title>" + html_escape(what + ": " + when) + "</title></rect>";
    const std::string label = what + " " + utc_text(o.span.start).substr(11, 8) + "–" +
                              utc_text(o.span.end).substr(11, 8) + " (" + duration_text(o.span.end - o.span.start) + ")";
    // Written over the band, to the right of its start (kept inside the chart).
    const double lx = std::min(x0 + 3, kLeft + kPlotWidth - 200), lx_end = lx + 5.5 * static_cast<double>(label.size());
    std::size_t line = 0;
    auto clear = [&](const std::pair<double, double>& r) { return lx_end < r.first || lx > r.second; };
    while (line < lines.size() && !std::all_of(lines[line].begin(), lines[line].end(), clear)) ++line;
    if (line == lines.size()) lines.emplace_back();
    lines[line].emplace_back(lx, lx_end);
    out += "<text class=\"outage-label" + std::string(vantage ? " vantage" : "") + "\" x=\"" + num(lx) + "\" y=\"" +
           num(kTop - 5 + 12 * static_cast<double>(line)) + "\">" + html_escape(label) + "</text>";
  }
}

void Page::chart(const Series& s) {
  const std::vector<Window> buckets = downsample(s.windows, from, to, options.max_points);
  double top = 0;
  for (const Window& b : buckets)
    if (b.rtt_p95) top = std::max({top, *b.rtt_p95 * 1.25, *b.rtt_p50 * 1.5});
  if (top <= 0) top = 1;
  // A round scale: 1, 2 or 5 times a power of ten, the largest not above top
  // (10^k exact up to 10^22; 1 / 10^k the nearest double to 10^-k). The
  // bounds keep the loops finite when a record's RTT makes top infinite.
  double power = 1;
  if (top >= 1)
    while (power * 10 <= top && power < 1e300) power *= 10;
  else
    while (top * power < 1 && power < 1e300) power *= 10;
  const double magnitude = top >= 1 ? power : 1 / power;
  for (double step : {1.0, 2.0, 5.0, 10.0})
    if (step * magnitude >= top) {
      top = step * magnitude;
      break;
    }
  auto y = [&](double ms) { return kTop + kPlotHeight * (1 - std::min(ms, top) / top); };

  out += "<svg class=\"chart\" role=\"img\" data-target=\"" + html_escape(s.target) + "\" data-method=\"" +
         html_escape(s.method) + "\" data-agent=\"" + html_escape(s.agent) + "\" data-group=\"" + html_escape(s.group) +
         "\" data-points=\"" + std::to_string(buckets.size()) + "\" viewBox=\"0 0 " + num(kWidth, 0) + " " +
         num(kHeight, 0) + "\" width=\"" + num(kWidth, 0) + "\" height=\"" + num(kHeight, 0) + "\">";
  out += "<title>" + html_escape(s.target + " " + s.method + " from " + s.agent) + "</title>";
  // Grid and axes.
  for (int i = 0; i <= 4; ++i) {
    const double v = top * i / 4, yy = y(v);
    out += "<line class=\"grid\" x1=\"" + num(kLeft) + "\" x2=\"" + num(kLeft + kPlotWidth) + "\" y1=\"" + num(yy) +
           "\" y2=\"" + num(yy) + "\"/><text x=\"" + num(kLeft - 4) + "\" y=\"" + num(yy + 4) +
           "\" text-anchor=\"end\">" + num(v, top < 4 ? 2 : (top < 40 ? 1 : 0)) + "</text>";
  }
  out += "<text x=\"4\" y=\"" + num(kTop + kPlotHeight / 2) + "\">ms</text>";
  out += "<text x=\"4\" y=\"" + num(kLossTop + kLossHeight / 2 + 4) + "\">loss</text>";
  out += "<rect x=\"" + num(kLeft) + "\" y=\"" + num(kLossTop) + "\" width=\"" + num(kPlotWidth) + "\" height=\"" +
         num(kLossHeight) + "\" fill=\"none\" stroke=\"#ccc\"/>";
  for (int i = 0; i <= 6; ++i) {
    const Seconds t = from + (to - from) * i / 6;
    const double xx = x(t);
    out += "<line class=\"grid\" x1=\"" + num(xx) + "\" x2=\"" + num(xx) + "\" y1=\"" + num(kTop) + "\" y2=\"" +
           num(kLossTop + kLossHeight) + "\"/><text x=\"" + num(xx) + "\" y=\"" + num(kHeight - 5) +
           "\" text-anchor=\"" + (i == 0 ? "start" : i == 6 ? "end" : "middle") + "\">" + tick_text(t, to - from) +
           "</text>";
  }
  outage_bands(s.agent, s.group, s.target);

  // The data: one path per layer (and per loss colour), each bucket a step.
  std::string mm, p95, median[kLossClassCount], loss[kLossClassCount];
  const double bottom = kLossTop + kLossHeight;
  for (const Window& b : buckets) {
    const double x0 = x(b.start), x1 = std::max(x(b.end()), x0 + 0.5);
    const int cls = loss_class(b.loss());
    if (b.rtt_p50) {
      mm += "M" + num(x0) + " " + num(y(*b.rtt_max)) + "H" + num(x1) + "V" + num(y(*b.rtt_min)) + "H" + num(x0) + "Z";
      p95 += "M" + num(x0) + " " + num(y(*b.rtt_p95)) + "H" + num(x1) + "V" + num(y(*b.rtt_min)) + "H" + num(x0) + "Z";
      median[cls] += "M" + num(x0) + " " + num(y(*b.rtt_p50)) + "H" + num(x1);
    }
    if (b.sent && b.loss() > 0)
      loss[cls] += "M" + num(x0) + " " + num(bottom) + "V" + num(bottom - b.loss() * kLossHeight) + "H" + num(x1) + "V" +
                   num(bottom) + "Z";
  }
  if (!mm.empty()) out += "<path class=\"mm\" d=\"" + mm + "\"/><path class=\"p95\" d=\"" + p95 + "\"/>";
  for (int i = 0; i < kLossClassCount; ++i) {
    if (!median[i].empty())
      out += "<path class=\"median\" fill=\"none\" stroke-width=\"2\" stroke=\"" + std::string(kLossClasses[i].colour) +
             "\" d=\"" + median[i] + "\"/>";
    if (!loss[i].empty())
      out += "<path class=\"loss\" fill=\"" + std::string(kLossClasses[i].colour) + "\" d=\"" + loss[i] + "\"/>";
  }
  if (buckets.empty())
    out += "<text x=\"" + num(kLeft + kPlotWidth / 2) + "\" y=\"" + num(kTop + kPlotHeight / 2) +
           "\" text-anchor=\"middle\">no windows in the period</text>";
  out += "</svg>\n";
}

// One row per vantage point that probed the target: where it had answers,
// and where it saw the target down, labelled with whose problem that was.
void Page::vantage_rows(const std::string& group, const std::string& target, const std::vector<const Series*>& series,
                        std::vector<std::pair<const Outage*, Labelled>>& labelled) {
  std::map<std::string, VantageView> views;
  for (const Series* s : series) {
    VantageView& v = views[s->agent];
    v.agent = s->agent;
    for (const Window& w : s->windows) {
      if (w.received == 0) continue;
      // Adjacent windows merge, keeping the view small.
      if (!v.reached.empty() && w.start <= v.reached.back().end + 1e-6) v.reached.back().end = std::max(v.reached.back().end, w.end());
      else v.reached.push_back({w.start, w.end()});
    }
  }
  std::vector<const Outage*> mine;
  for (auto& [agent, view] : views)
    for (const Outage& o : outages)
      if (concerns(o, agent, group, target)) {
        view.down.push_back(o.span);
        mine.push_back(&o);
      }
  std::vector<VantageView> list;
  for (auto& [agent, view] : views) list.push_back(view);

  const double row = 20, height = 8 + row * static_cast<double>(list.size()) + kAxis;
  out += "<svg class=\"vantages\" data-target=\"" + html_escape(target) + "\" viewBox=\"0 0 " + num(kWidth, 0) + " " +
         num(height, 0) + "\" width=\"" + num(kWidth, 0) + "\" height=\"" + num(height, 0) + "\">";
  std::string notes;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const VantageView& v = list[i];
    const double top = 4 + row * static_cast<double>(i);
    std::string reached;
    for (const Interval& r : v.reached)
      if (r.end >= from && r.start <= to)
        reached += "M" + num(x(r.start)) + " " + num(top + 2) + "H" + num(std::max(x(r.end), x(r.start) + 0.5)) + "v14H" +
                   num(x(r.start)) + "Z";
    if (!reached.empty()) out += "<path class=\"reached\" d=\"" + reached + "\"/>";
    for (const Outage* o : mine) {
      if (o->agent != v.agent) continue;
      Labelled label = label_outage(o->agent, o->span, o->scope, o->verdict, list);
      const double x0 = x(o->span.start), x1 = std::max(x(o->span.end), x0 + 2);
      const std::string text = utc_text(o->span.start) + " – " + utc_text(o->span.end) + " (" +
                               duration_text(o->span.end - o->span.start) + "): " + blame_text(label.blame);
      out += "<rect class=\"down blame-" + blame_class(label.blame) + "\" data-agent=\"" + html_escape(o->agent) +
             "\" data-blame=\"" + blame_class(label.blame) + "\" x=\"" + num(x0) + "\" y=\"" + num(top + 2) +
             "\" width=\"" + num(x1 - x0) + "\" height=\"14\"><title>" + html_escape(text) + "</title></rect>";
      notes += "<li><b>" + html_escape(o->agent) + "</b> saw it down " + html_escape(text) + "</li>";
      // Each outage goes to the page's outage table once, labelled from its first target.
      if (std::none_of(labelled.begin(), labelled.end(), [&](const auto& p) { return p.first == o; }))
        labelled.emplace_back(o, std::move(label));
    }
    // The whole name, over its row: agents' names are often long and alike.
    out += "<text class=\"row-label\" x=\"" + num(kLeft + 4) + "\" y=\"" + num(top + 13) + "\">" +
           html_escape(v.agent) + "</text>";
  }
  for (int i = 0; i <= 6; ++i) {
    const Seconds t = from + (to - from) * i / 6;
    out += "<text x=\"" + num(x(t)) + "\" y=\"" + num(height - 5) + "\" text-anchor=\"" +
           (i == 0 ? "start" : i == 6 ? "end" : "middle") + "\">" + tick_text(t, to - from) + "</text>";
  }
  out += "</svg>\n";
  if (!notes.empty()) out += "<ul class=\"vantage-notes\">" + notes + "</ul>\n";
}

void Page::trace_table(const Trace* baseline, const Trace* failure, int last_ttl) {
  const AsnNamer name_of = namer();
  auto cell = [&](const Trace* t, int ttl) {
    if (!t) return std::string("<td></td><td></td>");
    auto it = std::find_if(t->hops.begin(), t->hops.end(), [&](const Hop& h) { return h.ttl == ttl; });
    if (it == t->hops.end()) return std::string("<td></td><td></td>");
    if (it->addr.empty()) return std::string("<td>*</td><td></td>");
    std::string s = "<td>" + html_escape(it->addr);
    if (it->rtt_ms) s += " <small>" + num(*it->rtt_ms, 2) + " ms</small>";
    // A baseline's hop taken from another target's path: when it was probed.
    if (!it->reused_from.empty()) s += " <small>(as probed " + html_escape(it->reused_from) + ")</small>";
    s += "</td>";
    if (it->asn) {
      std::string name = name_of(*it->asn);
      if (name.empty()) name = it->asn_name;
      s += "<td class=\"asn\" style=\"background:" + asn_colour(*it->asn) + "\">AS" + std::to_string(*it->asn) +
           (name.empty() ? "" : " " + html_escape(name)) + "</td>";
    } else {
      s += "<td class=\"asn\"></td>";
    }
    return s;
  };
  int max_ttl = 0;
  for (const Trace* t : {baseline, failure})
    if (t)
      for (const Hop& h : t->hops) max_ttl = std::max(max_ttl, h.ttl);
  out += "<table class=\"trace\"><tr><th>TTL</th><th colspan=\"2\">last good trace" +
         (baseline ? " (" + html_escape(utc_text(baseline->time)) + ", " + (baseline->reached ? "reached" : "not reached") + ")"
                   : std::string(": none in the records")) +
         "</th><th colspan=\"2\">failure trace" +
         (failure ? " (" + html_escape(utc_text(failure->time)) + " toward " + html_escape(failure->target) + " " +
                        html_escape(failure->address) + ")"
                  : std::string(": none in the records")) +
         "</th><th></th></tr>\n";
  for (int ttl = 1; ttl <= max_ttl; ++ttl) {
    const bool last = last_ttl > 0 && ttl == last_ttl, broken = last_ttl > 0 && ttl == last_ttl + 1;
    out += std::string("<tr") + (last ? " class=\"last\"" : broken ? " class=\"break\"" : "") + "><td class=\"n\">" +
           std::to_string(ttl) + "</td>" + cell(baseline, ttl) + cell(failure, ttl) + "<td class=\"mark\">" +
           (last ? "last answer" : broken ? "&#10007; the path breaks here" : "") + "</td></tr>\n";
  }
  if (last_ttl > 0 && last_ttl == max_ttl)
    out += "<tr class=\"break\"><td></td><td colspan=\"4\"></td><td class=\"mark\">&#10007; the path breaks here</td></tr>\n";
  out += "</table>\n";
}

void Page::verdict_block(const Outage& o, const AsnNamer& name_of) {
  const VerdictInfo& v = *o.verdict;
  const bool vantage = o.scope == OutageScope::vantage || v.where == "vantage";
  const std::string subject = o.scope == OutageScope::group ? "group " + o.group
                              : o.scope == OutageScope::vantage ? "the vantage point"
                                                                : o.target;
  out += "<div class=\"verdict" + std::string(vantage ? " vantage" : "") + "\" data-where=\"" + html_escape(v.where) +
         "\"><b>" + html_escape(o.agent) + "</b>: " + html_escape(subject) + " down at " + utc_text(o.span.start) +
         " UTC: <b>" + html_escape(verdict_text(v, name_of)) + "</b>.";
  if (!v.reason.empty() && v.where != "unknown") out += " <small>(the agent: " + html_escape(v.reason) + ")</small>";
  // The failure trace the verdict names, else the first after the start toward one of the outage's targets.
  const Trace* failure = nullptr;
  for (const Trace& t : data.traces)
    if (t.agent == o.agent && t.reason == "failure" && !v.trace.empty() && t.time_text == v.trace) failure = &t;
  if (!failure) {
    for (const Trace& t : data.traces) {
      const bool ours = t.target == o.target || std::find(o.targets.begin(), o.targets.end(), t.target) != o.targets.end() ||
                        (o.scope == OutageScope::group && t.group == o.group);
      if (t.agent == o.agent && t.reason == "failure" && ours && t.time >= o.span.start - 1) {
        failure = &t;
        break;
      }
    }
  }
  // The last baseline toward the same target before it: by the same method if
  // there is one (a TCP failure trace against an ICMP baseline is still the comparison the verdict made).
  const Trace* baseline = nullptr;
  const Trace* same_method = nullptr;
  if (failure)
    for (const Trace& t : data.traces)
      if (t.agent == o.agent && t.reason == "baseline" && t.target == failure->target && t.time <= failure->time) {
        baseline = &t;
        if (t.method == failure->method) same_method = &t;
      }
  if (same_method) baseline = same_method;
  // One outage's trace serves the group's other outages: drawn once, named after.
  if (failure && !traces_drawn.insert(failure).second)
    out += " <small>(the failure trace of " + html_escape(utc_text(failure->time)) + " toward " +
           html_escape(failure->target) + ", drawn above)</small>";
  else if (failure || baseline)
    trace_table(baseline, failure, v.last_ttl);
  out += "</div>\n";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string s;
  s.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': s += "&amp;"; break;
      case '<': s += "&lt;"; break;
      case '>': s += "&gt;"; break;
      case '"': s += "&quot;"; break;
      case '\'': s += "&#39;"; break;
      default: s += c;
    }
  }
  return s;
}

std::string render_html(const Dataset& data, const RenderOptions& options) {
  Page page{data, options, 0, 0, {}, {}, {}};
  // The period: as asked, else what the records span.
  Seconds first = 0, last = data.latest;
  bool any = false;
  auto see = [&](Seconds t) {
    first = any ? std::min(first, t) : t;
    any = true;
  };
  for (const Series& s : data.series)
    if (!s.windows.empty()) see(s.windows.front().start);
  for (const Event& e : data.events) see(e.start);
  page.from = options.from.value_or(any ? first : 0);
  page.to = options.to.value_or(std::max(last, page.from));
  if (page.to <= page.from) page.to = page.from + 1;
  page.outages = outages_of(data);

  page.head();
  if (data.series.empty() && data.events.empty()) {
    page.out += "<p class=\"empty\" id=\"empty\">No series or event records" +
                std::string(data.outside ? " in the period or group asked for" : "") + " in " +
                std::to_string(data.lines) + " line(s) read: nothing to show.</p>\n</body></html>\n";
    return std::move(page.out);
  }
  page.summary_table();
  const std::size_t outage_table_at = page.out.size();

  std::vector<std::pair<const Outage*, Labelled>> labelled;
  const AsnNamer name_of = page.namer();
  // group -> target -> series
  std::map<std::string, std::map<std::string, std::vector<const Series*>>> tree;
  for (const Series& s : data.series) tree[s.group][s.target].push_back(&s);
  for (const Outage& o : page.outages)
    if (o.scope == OutageScope::target) tree[o.group][o.target];
  page.out += "<h2>Charts</h2>\n";
  for (auto& [group, targets] : tree) {
    page.out += "<section class=\"group\" data-group=\"" + html_escape(group) + "\"><h2>Group " + html_escape(group) +
                "</h2>\n";
    // The group's own outages and the vantage point's, with their verdicts and traces.
    for (const Outage& o : page.outages)
      if (o.verdict && ((o.scope == OutageScope::group && o.group == group) ||
                        (o.scope == OutageScope::vantage && o.group == group)))
        page.verdict_block(o, name_of);
    for (auto& [target, series] : targets) {
      std::sort(series.begin(), series.end(), [](const Series* a, const Series* b) {
        return std::tie(a->method, a->af, a->agent) < std::tie(b->method, b->af, b->agent);
      });
      page.out += "<section class=\"target\" data-target=\"" + html_escape(target) + "\"><h3>" + html_escape(target) +
                  " <small class=\"meta\">(" + html_escape(group) + ")</small></h3>\n";
      page.vantage_rows(group, target, series, labelled);
      for (const Outage& o : page.outages)
        if (o.verdict && o.scope == OutageScope::target && o.target == target && o.group == group)
          page.verdict_block(o, name_of);
      for (const Series* s : series) {
        page.out += "<h4>" + html_escape(s->method) + (s->af ? " IPv" + std::to_string(s->af) : "") + " from " +
                    html_escape(s->agent) + "</h4>\n";
        page.chart(*s);
      }
      page.out += "</section>\n";
    }
    page.out += "</section>\n";
  }
  // Outages no chart showed (a vantage outage, a group without series) are labelled alone.
  for (const Outage& o : page.outages)
    if (std::none_of(labelled.begin(), labelled.end(), [&](const auto& p) { return p.first == &o; }))
      labelled.emplace_back(&o, label_outage(o.agent, o.span, o.scope, o.verdict, {}));
  std::sort(labelled.begin(), labelled.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first->span.start, a.first->agent) < std::tie(b.first->span.start, b.first->agent);
  });
  Page table{data, options, page.from, page.to, {}, {}, {}};
  table.outage_table(labelled);
  page.out.insert(outage_table_at, table.out);
  page.out += "<p class=\"meta\">Written by outpost report.</p>\n</body></html>\n";
  return std::move(page.out);
}

}  // namespace outpost::report
