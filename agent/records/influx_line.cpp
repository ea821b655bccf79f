#include "influx_line.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace outpost {
namespace {

// Writes `text` with a backslash before each of `special`, newlines as `\n`, and a
// backslash that a reader could take for an escape (before a special character, another
// backslash or the end) as `\x5c` (see the header).
void append_escaped_name(std::string& out, std::string_view text, std::string_view special) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      const bool exposed = i + 1 == text.size() || text[i + 1] == '\\' || text[i + 1] == '\n' ||
                           text[i + 1] == '\r' || special.find(text[i + 1]) != std::string_view::npos;
      out += exposed ? "\\x5c" : "\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      if (special.find(c) != std::string_view::npos) out += '\\';
      out += c;
    }
  }
}

constexpr std::string_view kMeasurementSpecial = ", ";
constexpr std::string_view kKeySpecial = ",= ";

void append_string_field(std::string& out, std::string_view text) {
  out += '"';
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  out += '"';
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Shortest round-trip form; the caller has checked the value is finite.
void append_float(std::string& out, double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

std::int64_t to_int(std::uint64_t v) {
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(v, kMax));
}

std::int64_t to_ns(WallTime t) { return t.time_since_epoch().count(); }

// One line: tags sorted by key at the end, fields in the order added.
class Line {
 public:
  explicit Line(std::string_view measurement) : measurement_(measurement) {}

  Line& tag(std::string_view key, std::string_view value) {
    if (!value.empty()) tags_.emplace_back(key, value);
    return *this;
  }
  Line& tag(std::string_view key, int value) {
    if (value) tags_.emplace_back(key, std::to_string(value));
    return *this;
  }
  Line& field_int(std::string_view key, std::int64_t value) {
    append_key(key);
    append_int(fields_, value);
    fields_ += 'i';
    return *this;
  }
  Line& field_float(std::string_view key, double value) {
    if (!std::isfinite(value)) return *this;
    append_key(key);
    append_float(fields_, value);
    return *this;
  }
  Line& field_bool(std::string_view key, bool value) {
    append_key(key);
    fields_ += value ? "true" : "false";
    return *this;
  }
  Line& field_string(std::string_view key, std::string_view value) {
    append_key(key);
    append_string_field(fields_, value);
    return *this;
  }

  // The whole line with its newline, or nothing when no field was written.
  std::string finish(WallTime time) {
    if (fields_.empty()) return {};
    std::stable_sort(tags_.begin(), tags_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out;
    append_escaped_name(out, measurement_, kMeasurementSpecial);
    for (const auto& [key, value] : tags_) {
      out += ',';
      append_escaped_name(out, key, kKeySpecial);
      out += '=';
      append_escaped_name(out, value, kKeySpecial);
    }
    out += ' ';
    out += fields_;
    out += ' ';
    append_int(out, to_ns(time));
    out += '\n';
    return out;
  }

 private:
  void append_key(std::string_view key) {
    if (!fields_.empty()) fields_ += ',';
    append_escaped_name(fields_, key, kKeySpecial);
    fields_ += '=';
  }

  std::string measurement_;
  std::vector<std::pair<std::string, std::string>> tags_;
  std::string fields_;
};

}  // namespace

std::string influx_lines(const SeriesRecord& record) {
  const SeriesWindow& w = record.window;
  Line line("outpost_series");
  line.tag("af", w.key.af).tag("agent", record.agent).tag("group", w.key.group).tag("method", w.key.method);
  if (w.key.method == "tcp") line.tag("port", w.key.port);
  line.tag("target", w.key.target);
  line.field_int("sent", to_int(w.sent))
      .field_int("received", to_int(w.received))
      .field_int("timeouts", to_int(w.timeouts))
      .field_int("unreachable", to_int(w.unreachable))
      .field_int("errors", to_int(w.errors))
      .field_float("loss", w.loss())
      .field_float("window_s", std::chrono::duration<double>(w.length).count())
      .field_bool("partial", w.partial);
  if (w.rtt) {
    line.field_float("rtt_min_ms", w.rtt->min)
        .field_float("rtt_avg_ms", w.rtt->avg)
        .field_float("rtt_p50_ms", w.rtt->p50)
        .field_float("rtt_p95_ms", w.rtt->p95)
        .field_float("rtt_max_ms", w.rtt->max)
        .field_float("rtt_stddev_ms", w.rtt->stddev);
  }
  return line.finish(w.start);
}

std::string influx_lines(const ProbeRecord& record) {
  const ProbeLabels& labels = record.labels;
  const ProbeResult& r = record.result;
  Line line("outpost_probe");
  line.tag("af", record.af).tag("agent", labels.agent).tag("group", labels.group).tag("method", labels.method);
  if (labels.method == "tcp") line.tag("port", labels.port);
  line.tag("status", to_string(r.status)).tag("target", labels.target);
  if (r.rtt) line.field_float("rtt_ms", to_ms(*r.rtt));
  line.field_string("address", record.address);
  if (r.status == ProbeStatus::error) line.field_string("error", r.error.empty() ? "unknown error" : r.error);
  if (r.dns && !r.dns->rcode.empty()) line.field_string("rcode", r.dns->rcode);
  line.field_bool("answered", r.status == ProbeStatus::reply || r.status == ProbeStatus::refused);
  return line.finish(r.sent);
}

std::string influx_lines(const EventRecord& record) {
  const DetectorEvent& e = record.event;
  Line line("outpost_event");
  line.tag("af", e.af).tag("agent", record.agent).tag("group", e.group).tag("kind", to_string(e.kind));
  line.tag("target", e.target);
  line.field_int("down", is_down(e.kind) ? 1 : 0).field_int("start", to_ns(e.start));
  if (e.end) {
    line.field_int("end", to_ns(*e.end)).field_float("duration_s", std::chrono::duration<double>(*e.end - e.start).count());
  }
  if (record.verdict) {
    const Verdict& v = *record.verdict;
    line.field_string("where", to_string(v.where));
    if (v.last_hop) line.field_string("last_hop", v.last_hop.to_string());
    if (v.last_hop_asn) line.field_int("last_hop_asn", *v.last_hop_asn);
    line.field_int("last_ttl", v.last_ttl).field_string("reason", v.reason);
  }
  return line.finish(record.time);
}

std::string influx_lines(const TraceRecord&) { return {}; }

std::string influx_lines(const Record& record) {
  return std::visit([](const auto& r) { return influx_lines(r); }, record);
}

}  // namespace outpost
