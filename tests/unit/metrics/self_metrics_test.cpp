// Self-metrics: a snapshot of the loop's counters becomes Prometheus
// families with the documented names, labels and values; counters never go
// backwards when their source starts again (a reload's new series or output);
// gauges follow the value down; a scrape sees one whole update at a time.

#include <catch2/catch.hpp>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "self_metrics.hpp"

using namespace std::chrono_literals;
using namespace outpost;

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

const prometheus::MetricFamily* family(const std::vector<prometheus::MetricFamily>& families,
                                       const std::string& name) {
  for (const auto& f : families)
    if (f.name == name) return &f;
  return nullptr;
}

// The value of the sample of `name` with exactly these labels, if there is one.
std::optional<double> value(const SelfMetrics& m, const std::string& name, const Labels& labels = {}) {
  const auto families = m.Collect();
  const auto* f = family(families, name);
  if (!f) return std::nullopt;
  for (const auto& sample : f->metric) {
    if (sample.label.size() != labels.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < labels.size(); ++i)
      same = same && sample.label[i].name == labels[i].first && sample.label[i].value == labels[i].second;
    if (!same) continue;
    return f->type == prometheus::MetricType::Counter ? sample.counter.value : sample.gauge.value;
  }
  return std::nullopt;
}

ProbeCounts counts(std::uint64_t reply, std::uint64_t timeout, std::uint64_t unreachable, std::uint64_t refused,
                   std::uint64_t error) {
  ProbeCounts c;
  c.by_status[static_cast<std::size_t>(ProbeStatus::reply)] = reply;
  c.by_status[static_cast<std::size_t>(ProbeStatus::timeout)] = timeout;
  c.by_status[static_cast<std::size_t>(ProbeStatus::unreachable)] = unreachable;
  c.by_status[static_cast<std::size_t>(ProbeStatus::refused)] = refused;
  c.by_status[static_cast<std::size_t>(ProbeStatus::error)] = error;
  return c;
}

OutputStatus output(std::string name, std::uint64_t delivered, std::uint64_t failures, std::uint64_t spool_bytes) {
  OutputStatus o;
  o.name = std::move(name);
  o.kind = "http";
  o.stats.records = 10 * delivered;
  o.stats.delivered = delivered;
  o.stats.delivered_records = 10 * delivered;
  o.stats.failures = failures;
  o.queued_batches = 2;
  o.queued_records = 7;
  o.spool_bytes = spool_bytes;
  return o;
}

MetricsSnapshot sample_snapshot() {
  MetricsSnapshot s;
  s.probes["icmp"] = counts(90, 5, 3, 0, 2);
  s.probes["tcp"] = counts(40, 1, 0, 9, 0);
  s.probes["dns"] = counts(20, 0, 0, 0, 1);
  s.probes["dns"].dns_answers_dropped = 8;
  s.engine.sent = 400;
  s.engine.send_errors = 1;
  s.engine.captured = 900;
  s.engine.capture_dropped = 4;
  s.engine.malformed = 2;
  s.engine.stray = 6;
  s.engine.late = 7;
  s.engine.duplicate = 8;
  s.engine.spoofed = 9;
  s.in_flight = 3;
  s.agent.records = 500;
  s.agent.stale_results = 11;
  s.agent.vantage_checks = 12;
  s.late_series_results = 13;
  s.rate_limit_waits = 14;
  s.investigations.started = 15;
  s.investigations.merged = 16;
  s.investigations.dropped = 17;
  s.investigations.baselines = 18;
  s.investigations.hops_reused = 19;
  s.outputs = {output("collector", 5, 2, 4096)};
  s.down = DownCounts{6, 1, 2, 0, false};
  s.run = RunCounters{3, 1};
  return s;
}

}  // namespace

TEST_CASE("self-metrics: build info and start time before the first snapshot", "[metrics]") {
  SelfMetrics m("1.2.3", 1700000000.5);
  CHECK(value(m, "outpost_build_info", {{"version", "1.2.3"}}) == 1.0);
  CHECK(value(m, "outpost_start_time_seconds") == 1700000000.5);
  CHECK(!value(m, "outpost_probes_sent_total", {{"method", "icmp"}}));
  CHECK(m.text().find("outpost_build_info{version=\"1.2.3\"} 1") != std::string::npos);
}

TEST_CASE("self-metrics: a snapshot maps to the documented names, labels and values", "[metrics]") {
  SelfMetrics m("1.2.3", 0);
  m.update(sample_snapshot());
  // Per method, from the records' statuses: sent = everything but error.
  CHECK(value(m, "outpost_probes_sent_total", {{"method", "icmp"}}) == 98.0);
  CHECK(value(m, "outpost_probes_answered_total", {{"method", "icmp"}}) == 90.0);
  CHECK(value(m, "outpost_probes_unreachable_total", {{"method", "icmp"}}) == 3.0);
  CHECK(value(m, "outpost_probe_timeouts_total", {{"method", "icmp"}}) == 5.0);
  CHECK(value(m, "outpost_probe_errors_total", {{"method", "icmp"}}) == 2.0);
  CHECK(value(m, "outpost_probes_sent_total", {{"method", "tcp"}}) == 50.0);
  CHECK(value(m, "outpost_probes_answered_total", {{"method", "tcp"}}) == 49.0);  // refused is an answer
  CHECK(value(m, "outpost_probes_sent_total", {{"method", "dns"}}) == 20.0);
  CHECK(value(m, "outpost_dns_answers_dropped_total") == 8.0);
  CHECK(value(m, "outpost_probes_in_flight") == 3.0);
  // The engine.
  CHECK(value(m, "outpost_packets_sent_total") == 400.0);
  CHECK(value(m, "outpost_send_errors_total") == 1.0);
  CHECK(value(m, "outpost_capture_frames_total") == 900.0);
  CHECK(value(m, "outpost_capture_dropped_total") == 4.0);
  CHECK(value(m, "outpost_capture_malformed_total") == 2.0);
  CHECK(value(m, "outpost_replies_unmatched_total", {{"reason", "stray"}}) == 6.0);
  CHECK(value(m, "outpost_replies_unmatched_total", {{"reason", "late"}}) == 7.0);
  CHECK(value(m, "outpost_replies_unmatched_total", {{"reason", "duplicate"}}) == 8.0);
  CHECK(value(m, "outpost_replies_unmatched_total", {{"reason", "spoofed"}}) == 9.0);
  // The agent, the pacer, the investigator.
  CHECK(value(m, "outpost_records_total") == 500.0);
  CHECK(value(m, "outpost_stale_results_total") == 11.0);
  CHECK(value(m, "outpost_vantage_checks_total") == 12.0);
  CHECK(value(m, "outpost_series_late_results_total") == 13.0);
  CHECK(value(m, "outpost_rate_limit_waits_total") == 14.0);
  CHECK(value(m, "outpost_investigations_total") == 15.0);
  CHECK(value(m, "outpost_investigations_merged_total") == 16.0);
  CHECK(value(m, "outpost_investigations_dropped_total") == 17.0);
  CHECK(value(m, "outpost_baseline_hops_reused_total") == 19.0);
  CHECK(value(m, "outpost_baseline_traces_total") == 18.0);
  // Outputs, by name and kind.
  const Labels out{{"output", "collector"}, {"kind", "http"}};
  CHECK(value(m, "outpost_output_records_total", out) == 50.0);
  CHECK(value(m, "outpost_output_pushes_total", out) == 5.0);
  CHECK(value(m, "outpost_output_pushed_records_total", out) == 50.0);
  CHECK(value(m, "outpost_output_push_failures_total", out) == 2.0);
  CHECK(value(m, "outpost_output_queue_batches", out) == 2.0);
  CHECK(value(m, "outpost_output_queue_records", out) == 7.0);
  CHECK(value(m, "outpost_output_spool_bytes", out) == 4096.0);
  // Reloads and what is down.
  CHECK(value(m, "outpost_config_reloads_total") == 3.0);
  CHECK(value(m, "outpost_config_reload_failures_total") == 1.0);
  CHECK(value(m, "outpost_targets") == 6.0);
  CHECK(value(m, "outpost_targets_down") == 1.0);
  CHECK(value(m, "outpost_groups") == 2.0);
  CHECK(value(m, "outpost_groups_down") == 0.0);
  CHECK(value(m, "outpost_vantage_down") == 0.0);
  CHECK(value(m, "outpost_build_info", {{"version", "1.2.3"}}) == 1.0);
}

TEST_CASE("self-metrics: every family is typed, prefixed, and counters end in _total", "[metrics]") {
  SelfMetrics m("1.2.3", 0);
  MetricsSnapshot s = sample_snapshot();
  s.launch_lateness = LatenessFigures{};
  m.update(s);
  for (const auto& f : m.Collect()) {
    INFO(f.name);
    CHECK(f.name.rfind("outpost_", 0) == 0);
    CHECK(!f.help.empty());
    CHECK(!f.metric.empty());
    const bool total = f.name.size() > 6 && f.name.compare(f.name.size() - 6, 6, "_total") == 0;
    CHECK(total == (f.type == prometheus::MetricType::Counter));
  }
  // One HELP and TYPE per family in the text, however many samples.
  const std::string text = m.text();
  CHECK(text.find("# TYPE outpost_replies_unmatched_total counter") != std::string::npos);
  CHECK(text.find("outpost_replies_unmatched_total{reason=\"spoofed\"} 9") != std::string::npos);
  CHECK(text.find("# TYPE outpost_replies_unmatched_total", text.find("# TYPE outpost_replies_unmatched_total") + 1) ==
        std::string::npos);
}

TEST_CASE("self-metrics: counters never go backwards when their source starts again", "[metrics]") {
  SelfMetrics m("x", 0);
  MetricsSnapshot s = sample_snapshot();
  m.update(s);
  CHECK(value(m, "outpost_series_late_results_total") == 13.0);
  s.late_series_results = 20;
  m.update(s);
  CHECK(value(m, "outpost_series_late_results_total") == 20.0);
  // A reload with a new report.window made a new series aggregator: its count starts at 0 again.
  s.late_series_results = 0;
  m.update(s);
  CHECK(value(m, "outpost_series_late_results_total") == 20.0);
  s.late_series_results = 3;
  m.update(s);
  CHECK(value(m, "outpost_series_late_results_total") == 23.0);
  // Started again and already past its old value by the next look: all of it is new.
  s.late_series_results = 2;
  m.update(s);
  CHECK(value(m, "outpost_series_late_results_total") == 25.0);
  // Output counters likewise; their gauges follow the value down.
  const Labels out{{"output", "collector"}, {"kind", "http"}};
  s.outputs = {output("collector", 9, 4, 8192)};
  m.update(s);
  CHECK(value(m, "outpost_output_pushes_total", out) == 9.0);
  s.outputs = {output("collector", 1, 0, 100)};
  m.update(s);
  CHECK(value(m, "outpost_output_pushes_total", out) == 10.0);
  CHECK(value(m, "outpost_output_push_failures_total", out) == 4.0);
  CHECK(value(m, "outpost_output_spool_bytes", out) == 100.0);
  // Gauges of what is down follow it both ways.
  s.down.targets_down = 0;
  s.down.vantage_down = true;
  m.update(s);
  CHECK(value(m, "outpost_targets_down") == 0.0);
  CHECK(value(m, "outpost_vantage_down") == 1.0);
}

TEST_CASE("self-metrics: a method or an output seen for the first time starts at its value", "[metrics]") {
  SelfMetrics m("x", 0);
  MetricsSnapshot s;
  m.update(s);
  CHECK(!value(m, "outpost_probes_sent_total", {{"method", "dns"}}));
  s.probes["dns"] = counts(4, 1, 0, 0, 0);
  s.outputs = {output("file", 3, 0, 0)};
  m.update(s);
  CHECK(value(m, "outpost_probes_sent_total", {{"method", "dns"}}) == 5.0);
  CHECK(value(m, "outpost_output_pushes_total", {{"output", "file"}, {"kind", "http"}}) == 3.0);
}

TEST_CASE("self-metrics: scheduler lateness only once it is reported, in seconds", "[metrics]") {
  SelfMetrics m("x", 0);
  MetricsSnapshot s;
  m.update(s);
  CHECK(!value(m, "outpost_launch_late_max_seconds"));
  CHECK(!value(m, "outpost_launch_late_total", {{"over", "10ms"}}));
  s.launch_lateness = LatenessFigures{250ms, 12, 3};
  m.update(s);
  CHECK(value(m, "outpost_launch_late_max_seconds") == Approx(0.25));
  CHECK(value(m, "outpost_launch_late_total", {{"over", "10ms"}}) == 12.0);
  CHECK(value(m, "outpost_launch_late_total", {{"over", "100ms"}}) == 3.0);
}

TEST_CASE("self-metrics: a scrape on another thread sees whole updates only", "[metrics]") {
  SelfMetrics m("x", 0);
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<int> scrapes{0};
  // sent and answered rise together in every snapshot: a scrape that saw
  // them from two different updates would find them apart.
  std::thread scraper([&] {
    while (!done) {
      const auto families = m.Collect();
      const auto* sent = family(families, "outpost_probes_sent_total");
      const auto* answered = family(families, "outpost_probes_answered_total");
      if (sent && answered && sent->metric.front().counter.value != answered->metric.front().counter.value) ++torn;
      ++scrapes;
    }
  });
  MetricsSnapshot s;
  for (std::uint64_t i = 1; i <= 2000; ++i) {
    s.probes["icmp"] = counts(i, 0, 0, 0, 0);
    m.update(s);
  }
  done = true;
  scraper.join();
  CHECK(torn == 0);
  CHECK(scrapes > 0);
  CHECK(value(m, "outpost_probes_sent_total", {{"method", "icmp"}}) == 2000.0);
}
