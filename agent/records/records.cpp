#include "records.hpp"

#include <cstdio>
#include <ctime>
#include <utility>

namespace outpost {

std::string rfc3339(WallTime t) {
  const auto ns = t.time_since_epoch().count();
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  long micros = static_cast<long>((ns % 1000000000) / 1000);
  if (micros < 0) {
    micros += 1000000;
    secs -= 1;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
  return buf;
}

double to_ms(Duration d) { return static_cast<double>(d.count()) / 1e6; }

int family_of(const IpAddress& address) {
  if (!address) return 0;
  return address.is_v6() ? 6 : 4;
}

ProbeRecord probe_record(ProbeLabels labels, const ProbeResult& result) {
  ProbeRecord r;
  r.af = result.target ? family_of(result.target) : labels.af;
  r.labels = std::move(labels);
  r.address = result.target ? result.target.to_string() : std::string();
  r.result = result;
  return r;
}

ProbeRecord probe_error_record(ProbeLabels labels, const std::string& address, WallTime time,
                               const std::string& error) {
  ProbeRecord r;
  r.af = labels.af;
  r.labels = std::move(labels);
  r.address = address;
  r.result.status = ProbeStatus::error;
  r.result.sent = time;
  r.result.error = error;
  return r;
}

double SeriesWindow::loss() const {
  return sent == 0 ? 0.0 : static_cast<double>(sent - received) / static_cast<double>(sent);
}

TraceRecord trace_record(const ProbeLabels& labels, const TraceResult& trace, const std::string& reason,
                         const AsnLookup& asn_of) {
  TraceRecord r;
  r.labels = labels;
  r.labels.af = family_of(trace.target);
  r.reason = reason;
  r.trace = trace;
  r.hop_asns.reserve(trace.hops.size());
  for (const auto& h : trace.hops)
    r.hop_asns.push_back(h.addr && asn_of ? asn_of(h.addr) : std::nullopt);
  return r;
}

std::string_view to_string(EventKind kind) {
  switch (kind) {
    case EventKind::target_down: return "target_down";
    case EventKind::target_up: return "target_up";
    case EventKind::group_down: return "group_down";
    case EventKind::group_up: return "group_up";
    case EventKind::vantage_down: return "vantage_down";
    case EventKind::vantage_up: return "vantage_up";
    case EventKind::target_flapping: return "target_flapping";
    case EventKind::target_stable: return "target_stable";
  }
  return "unknown";
}

bool is_down(EventKind kind) {
  return kind == EventKind::target_down || kind == EventKind::group_down || kind == EventKind::vantage_down;
}

std::string_view to_string(Where where) {
  switch (where) {
    case Where::upstream: return "upstream";
    case Where::target_network: return "target_network";
    case Where::before_upstream: return "before_upstream";
    case Where::vantage: return "vantage";
    case Where::unknown: return "unknown";
  }
  return "unknown";
}

EventRecord event_record(const std::string& agent, const DetectorEvent& event, const Verdict* verdict, WallTime now) {
  EventRecord r;
  r.agent = agent;
  r.time = now;
  r.event = event;
  if (verdict) r.verdict = *verdict;
  return r;
}

std::string_view record_type(const Record& record) {
  static constexpr std::string_view kNames[] = {"probe", "series", "trace", "event"};
  return kNames[record.index()];
}

}  // namespace outpost
