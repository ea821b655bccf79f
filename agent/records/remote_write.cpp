#include "remote_write.hpp"

#include <snappy.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace outpost {
namespace {

// Protobuf wire types.
constexpr std::uint32_t kVarint = 0;
constexpr std::uint32_t kFixed64 = 1;
constexpr std::uint32_t kLengthDelimited = 2;

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void put_key(std::string& out, std::uint32_t field, std::uint32_t wire_type) { put_varint(out, field << 3 | wire_type); }

void put_bytes(std::string& out, std::uint32_t field, std::string_view bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

void put_double(std::string& out, std::uint32_t field, double v) {
  put_key(out, field, kFixed64);
  auto bits = std::bit_cast<std::uint64_t>(v);
  for (int i = 0; i < 8; ++i, bits >>= 8) out += static_cast<char>(bits & 0xff);
}

using Labels = std::vector<std::pair<std::string_view, std::string>>;

std::string label(std::string_view name, std::string_view value) {
  std::string out;
  put_bytes(out, 1, name);
  put_bytes(out, 2, value);
  return out;
}

std::string sample(double value, std::int64_t timestamp_ms) {
  std::string out;
  if (value != 0.0) put_double(out, 1, value);
  if (timestamp_ms != 0) {
    put_key(out, 2, kVarint);
    put_varint(out, static_cast<std::uint64_t>(timestamp_ms));
  }
  return out;
}

std::int64_t to_ms_since_epoch(WallTime t) {
  return std::chrono::floor<std::chrono::milliseconds>(t).time_since_epoch().count();
}

// The TimeSeries of one gauge, as a WriteRequest entry (field 1); nothing for NaN.
void put_gauge(std::string& out, std::string_view name, const Labels& labels, double value, WallTime time) {
  if (std::isnan(value)) return;
  Labels all;
  all.reserve(labels.size() + 1);
  all.emplace_back("__name__", std::string(name));
  for (const auto& l : labels)
    if (!l.second.empty()) all.push_back(l);
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string series;
  for (const auto& [n, v] : all) put_bytes(series, 1, label(n, v));
  put_bytes(series, 2, sample(value, to_ms_since_epoch(time)));
  put_bytes(out, 1, series);
}

std::string family(int af) { return af ? std::to_string(af) : std::string(); }

std::string encode(const SeriesRecord& record) {
  const SeriesWindow& w = record.window;
  Labels labels{{"agent", record.agent}, {"group", w.key.group}, {"target", w.key.target},
                {"method", w.key.method}, {"af", family(w.key.af)}};
  if (w.key.method == "tcp" && w.key.port) labels.emplace_back("port", std::to_string(w.key.port));
  std::string out;
  put_gauge(out, "outpost_probes_sent", labels, static_cast<double>(w.sent), w.start);
  put_gauge(out, "outpost_probes_received", labels, static_cast<double>(w.received), w.start);
  put_gauge(out, "outpost_loss_ratio", labels, w.loss(), w.start);
  if (w.rtt) {
    const RttSummary& r = *w.rtt;
    const std::pair<std::string_view, double> rtts[] = {
        {"outpost_rtt_min_seconds", r.min}, {"outpost_rtt_avg_seconds", r.avg},
        {"outpost_rtt_p50_seconds", r.p50}, {"outpost_rtt_p95_seconds", r.p95},
        {"outpost_rtt_max_seconds", r.max}, {"outpost_rtt_stddev_seconds", r.stddev}};
    for (const auto& [name, ms] : rtts) put_gauge(out, name, labels, ms / 1000.0, w.start);
  }
  return out;
}

std::string encode(const EventRecord& record) {
  const DetectorEvent& e = record.event;
  std::string_view name;
  double value = 0;
  Labels labels{{"agent", record.agent}, {"group", e.group}};
  switch (e.kind) {
    case EventKind::target_down:
    case EventKind::target_up:
      name = "outpost_target_down";
      labels.emplace_back("target", e.target);
      labels.emplace_back("af", family(e.af));
      value = e.kind == EventKind::target_down ? 1 : 0;
      break;
    case EventKind::group_down:
    case EventKind::group_up:
      name = "outpost_group_down";
      value = e.kind == EventKind::group_down ? 1 : 0;
      break;
    case EventKind::vantage_down:
    case EventKind::vantage_up:
      name = "outpost_vantage_down";
      value = e.kind == EventKind::vantage_down ? 1 : 0;
      break;
    case EventKind::target_flapping:
    case EventKind::target_stable:
      name = "outpost_target_flapping";
      labels.emplace_back("target", e.target);
      value = e.kind == EventKind::target_flapping ? 1 : 0;
      break;
  }
  if (name.empty()) return {};
  std::string out;
  put_gauge(out, name, labels, value, record.time);
  const bool up = e.kind == EventKind::target_up || e.kind == EventKind::group_up || e.kind == EventKind::vantage_up;
  if (up && e.end)
    put_gauge(out, "outpost_outage_duration_seconds", labels, std::chrono::duration<double>(*e.end - e.start).count(),
              record.time);
  return out;
}

std::string encode(const ProbeRecord&) { return {}; }
std::string encode(const TraceRecord&) { return {}; }

}  // namespace

std::string remote_write_series(const Record& record) {
  return std::visit([](const auto& r) { return encode(r); }, record);
}

std::string remote_write_body(std::string_view timeseries) {
  std::string out;
  snappy::Compress(timeseries.data(), timeseries.size(), &out);
  return out;
}

}  // namespace outpost
