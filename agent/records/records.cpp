#include "records.hpp"

#include <cstdint>
#include <utility>

namespace outpost {

namespace {

// The civil date of a day count since 1970-01-01 (proleptic Gregorian), by
// H. Hinnant's days_from_civil inverse: no gmtime_r (its time zone lock), no
// printf, for a timestamp on every record.
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

char* put_digits(char* p, std::uint64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return p + width;
}

}  // namespace

std::string rfc3339(WallTime t) {
  const auto ns = t.time_since_epoch().count();
  std::int64_t secs = ns / 1000000000;
  std::int64_t micros = (ns % 1000000000) / 1000;
  if (micros < 0) {
    micros += 1000000;
    secs -= 1;
  }
  std::int64_t days = secs / 86400;
  std::int64_t rest = secs % 86400;
  if (rest < 0) {
    rest += 86400;
    days -= 1;
  }
  // Nanoseconds in 64 bits reach from 1677 to 2262: always four digits of year.
  std::int64_t year;
  unsigned month, day;
  civil_from_days(days, year, month, day);
  char buf[27];
  char* p = put_digits(buf, static_cast<std::uint64_t>(year), 4);
  *p++ = '-';
  p = put_digits(p, month, 2);
  *p++ = '-';
  p = put_digits(p, day, 2);
  *p++ = 'T';
  p = put_digits(p, static_cast<std::uint64_t>(rest / 3600), 2);
  *p++ = ':';
  p = put_digits(p, static_cast<std::uint64_t>(rest / 60 % 60), 2);
  *p++ = ':';
  p = put_digits(p, static_cast<std::uint64_t>(rest % 60), 2);
  *p++ = '.';
  p = put_digits(p, static_cast<std::uint64_t>(micros), 6);
  *p++ = 'Z';
  return std::string(buf, p);
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
