// JSON Lines to a Dataset. A line is parsed whole with nlohmann-json; a field
// that is required and missing (or of the wrong kind) skips the line with a
// problem, so one bad line costs one line, never the report.
#include "report_reader.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <tuple>
#include <vector>

namespace outpost::report {

namespace {

using nlohmann::json;

// A required field missing or of the wrong kind: the line is skipped.
struct LineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const json& field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) throw LineError(std::string("missing field '") + name + "'");
  return *it;
}

std::string text(const json& j, const char* name) {
  const json& v = field(j, name);
  if (!v.is_string()) throw LineError(std::string("field '") + name + "' is not a string");
  return v.get<std::string>();
}

std::string text_or(const json& j, const char* name, std::string fallback = {}) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

double number(const json& j, const char* name) {
  const json& v = field(j, name);
  if (!v.is_number()) throw LineError(std::string("field '") + name + "' is not a number");
  return v.get<double>();
}

std::optional<double> number_opt(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

std::uint64_t count(const json& j, const char* name) {
  const double v = number(j, name);
  if (v < 0 || v > 1e15) throw LineError(std::string("field '") + name + "' is out of range");
  return static_cast<std::uint64_t>(v);
}

std::optional<std::uint32_t> asn_opt(const json& j, const char* name) {
  auto v = number_opt(j, name);
  if (!v || *v < 0 || *v > 4294967295.0) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

Seconds time_field(const json& j, const char* name) {
  auto t = parse_rfc3339(text(j, name));
  if (!t) throw LineError(std::string("field '") + name + "' is not an RFC 3339 time");
  return *t;
}

std::optional<Seconds> time_opt(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return time_field(j, name);
}

std::string method_of(const json& j) {
  std::string method = text(j, "method");
  if (auto port = number_opt(j, "port"); port && method != "icmp" && method != "dns") {
    if (!(*port >= 0 && *port <= 65535)) throw LineError("field 'port' is not a port");
    method += ":" + std::to_string(static_cast<long long>(*port));
  }
  return method;
}

Window window_of(const json& j) {
  Window w;
  w.start = time_field(j, "window_start");
  w.length = number(j, "window_s");
  // At most a year: the page's times must stay dates (a fuzzed 6e30 overflowed time_t).
  if (!(w.length > 0 && w.length <= 366 * 86400.0)) throw LineError("field 'window_s' is not in (0, 1 year]");
  w.sent = count(j, "sent");
  w.received = count(j, "received");
  if (w.received > w.sent) throw LineError("received is above sent");
  number(j, "loss");  // required by the contract; recomputed from sent and received
  w.rtt_min = number_opt(j, "rtt_min_ms");
  w.rtt_p50 = number_opt(j, "rtt_p50_ms");
  w.rtt_p95 = number_opt(j, "rtt_p95_ms");
  w.rtt_max = number_opt(j, "rtt_max_ms");
  // A window's RTTs are all there or not at all.
  if (!w.rtt_min || !w.rtt_p50 || !w.rtt_p95 || !w.rtt_max) w.rtt_min = w.rtt_p50 = w.rtt_p95 = w.rtt_max = std::nullopt;
  if (w.received == 0) w.rtt_min = w.rtt_p50 = w.rtt_p95 = w.rtt_max = std::nullopt;
  return w;
}

Trace trace_of(const json& j, const std::string& agent) {
  Trace t;
  t.agent = agent;
  t.target = text(j, "target");
  t.group = text_or(j, "group");
  t.address = text(j, "address");
  t.method = method_of(j);
  t.reason = text(j, "reason");
  t.time_text = text(j, "time");
  t.time = time_field(j, "time");
  const json& reached = field(j, "reached");
  if (!reached.is_boolean()) throw LineError("field 'reached' is not a boolean");
  t.reached = reached.get<bool>();
  const json& hops = field(j, "hops");
  if (!hops.is_array()) throw LineError("field 'hops' is not a list");
  for (const json& h : hops) {
    if (!h.is_object()) throw LineError("a hop is not an object");
    Hop hop;
    hop.ttl = static_cast<int>(number(h, "ttl"));
    hop.addr = text_or(h, "addr");
    hop.asn = asn_opt(h, "asn");
    hop.asn_name = text_or(h, "asn_name");
    hop.rtt_ms = number_opt(h, "rtt_ms");
    hop.reused_from = text_or(h, "reused_from");
    t.hops.push_back(std::move(hop));
  }
  return t;
}

std::optional<VerdictInfo> verdict_of(const json& j) {
  auto it = j.find("verdict");
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) throw LineError("field 'verdict' is not an object");
  const json& v = *it;
  VerdictInfo info;
  info.where = text(v, "where");
  info.last_hop = text_or(v, "last_hop");
  info.last_hop_asn = asn_opt(v, "last_hop_asn");
  info.last_ttl = static_cast<int>(number_opt(v, "last_ttl").value_or(0));
  info.baseline_reached_asn = asn_opt(v, "baseline_reached_asn");
  info.trace = text_or(v, "trace");
  info.reason = text_or(v, "reason");
  return info;
}

Event event_of(const json& j, const std::string& agent) {
  Event e;
  e.agent = agent;
  e.time = time_field(j, "time");
  e.kind = text(j, "kind");
  e.target = text_or(j, "target");
  e.group = text_or(j, "group");
  if (auto it = j.find("targets"); it != j.end() && it->is_array())
    for (const json& t : *it)
      if (t.is_string()) e.targets.push_back(t.get<std::string>());
  e.start = time_field(j, "start");
  e.end = time_opt(j, "end");
  const bool target_event = e.kind == "target_down" || e.kind == "target_up";
  if (target_event && e.target.empty()) throw LineError("missing field 'target'");
  if (!target_event && e.group.empty() && e.kind != "vantage_down" && e.kind != "vantage_up")
    throw LineError("missing field 'group'");
  if ((e.kind == "target_up" || e.kind == "group_up" || e.kind == "vantage_up") && !e.end)
    throw LineError("missing field 'end'");
  if (e.end && *e.end < e.start) throw LineError("end is before start");
  e.verdict = verdict_of(j);
  return e;
}

bool known_event_kind(const std::string& kind) {
  return kind == "target_down" || kind == "target_up" || kind == "group_down" || kind == "group_up" ||
         kind == "vantage_down" || kind == "vantage_up";
}

}  // namespace

void Reader::problem(const std::string& file, std::size_t line, std::string message) {
  ++data_.bad_lines;
  if (data_.problems.size() < kMaxProblemsKept) data_.problems.push_back({file, line, std::move(message)});
}

bool Reader::in_period(Seconds begin, Seconds end) const {
  return !(options_.from && end < *options_.from) && !(options_.to && begin > *options_.to);
}

void Reader::note_time(Seconds t) {
  if (options_.to) t = std::min(t, *options_.to);
  data_.latest = std::max(data_.latest, t);
}

void Reader::read(std::istream& in, const std::string& file) {
  // Read in chunks, a line kept up to kMaxLineBytes: a file without newlines
  // costs that much memory at most, never the whole file.
  std::string line;
  std::size_t number = 0;
  bool too_long = false;
  std::vector<char> chunk(1 << 16);
  auto end_line = [&] {
    ++number;
    if (too_long) problem(file, number, "longer than " + std::to_string(kMaxLineBytes >> 20) + " MiB: not a record");
    else read_line(line, file, number);
    line.clear();
    too_long = false;
  };
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const char* at = chunk.data();
    const char* const last = at + in.gcount();
    while (at < last) {
      const char* newline = std::find(at, last, '\n');
      if (!too_long) {
        if (line.size() + static_cast<std::size_t>(newline - at) > kMaxLineBytes) {
          too_long = true;
          line.clear();
        } else {
          line.append(at, newline);
        }
      }
      if (newline == last) break;
      end_line();
      at = newline + 1;
    }
  }
  if (!line.empty() || too_long) end_line();
}

void Reader::read_line(std::string_view line, const std::string& file, std::size_t number) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;
  ++data_.lines;
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded()) {
    problem(file, number, "not a JSON object (cut short, or two records on one line?)");
    return;
  }
  if (!j.is_object()) {
    problem(file, number, "not a JSON object");
    return;
  }
  try {
    const std::string type = text(j, "type");
    if (type != "series" && type != "trace" && type != "event") {
      ++data_.records_other;
      return;
    }
    const std::string agent = text(j, "agent");
    time_field(j, "time");
    if (type == "series") {
      const std::string group = text(j, "group"), target = text(j, "target"), method = method_of(j);
      const int af = static_cast<int>(number_opt(j, "af").value_or(0));
      Window w = window_of(j);
      if (!in_period(w.start, w.end()) || (!options_.group.empty() && group != options_.group)) {
        ++data_.outside;
        return;
      }
      auto key = std::make_tuple(agent, group, target, method, af);
      auto [it, added] = series_index_.emplace(key, data_.series.size());
      if (added) data_.series.push_back(Series{agent, group, target, method, af, {}});
      note_time(w.end());
      data_.series[it->second].windows.push_back(std::move(w));
    } else if (type == "trace") {
      Trace t = trace_of(j, agent);
      if (!options_.group.empty() && t.group != options_.group) {
        ++data_.outside;
        return;
      }
      data_.traces.push_back(std::move(t));
    } else {
      if (!known_event_kind(text(j, "kind"))) {
        ++data_.records_other;  // flapping notices and kinds to come, whatever fields they carry
        return;
      }
      Event e = event_of(j, agent);
      const bool vantage = e.kind == "vantage_down" || e.kind == "vantage_up";
      if (!in_period(e.start, e.end.value_or(e.time)) ||
          (!options_.group.empty() && !vantage && e.group != options_.group)) {
        ++data_.outside;
        return;
      }
      note_time(e.end.value_or(e.time));
      data_.events.push_back(std::move(e));
    }
    ++data_.records_used;
  } catch (const LineError& error) {
    problem(file, number, error.what());
  } catch (const json::exception& error) {
    problem(file, number, error.what());
  }
}

Dataset Reader::finish() {
  for (Series& s : data_.series) {
    std::stable_sort(s.windows.begin(), s.windows.end(),
                     [](const Window& a, const Window& b) { return a.start < b.start; });
    s.windows.erase(std::unique(s.windows.begin(), s.windows.end(),
                                [](const Window& a, const Window& b) { return a.start == b.start; }),
                    s.windows.end());
  }
  // Events in time order; the same event read twice (one file given twice) counts once.
  auto event_key = [](const Event& e) { return std::tie(e.time, e.agent, e.kind, e.target, e.group, e.start); };
  std::stable_sort(data_.events.begin(), data_.events.end(),
                   [&](const Event& a, const Event& b) { return event_key(a) < event_key(b); });
  data_.events.erase(std::unique(data_.events.begin(), data_.events.end(),
                                 [&](const Event& a, const Event& b) { return event_key(a) == event_key(b); }),
                     data_.events.end());
  auto trace_key = [](const Trace& t) { return std::tie(t.time, t.agent, t.target, t.reason, t.method); };
  std::stable_sort(data_.traces.begin(), data_.traces.end(),
                   [&](const Trace& a, const Trace& b) { return trace_key(a) < trace_key(b); });
  data_.traces.erase(std::unique(data_.traces.begin(), data_.traces.end(),
                                 [&](const Trace& a, const Trace& b) { return trace_key(a) == trace_key(b); }),
                     data_.traces.end());
  series_index_.clear();
  return std::move(data_);
}

}  // namespace outpost::report
