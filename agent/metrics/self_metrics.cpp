#include "self_metrics.hpp"

#include <prometheus/text_serializer.h>

#include <chrono>
#include <sstream>
#include <utility>

namespace outpost {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<std::pair<std::string, std::string>>;

// Families in the order they are first named; counters through advance().
class SelfMetrics::Builder {
 public:
  explicit Builder(SelfMetrics& metrics) : metrics_(metrics) {}

  void counter(const std::string& name, const std::string& help, const Labels& labels, std::uint64_t raw) {
    std::string key = name;
    for (const auto& [k, v] : labels) key += "\n" + k + "=" + v;
    sample(name, help, MetricType::Counter, labels).counter.value = metrics_.advance(key, raw);
  }
  void gauge(const std::string& name, const std::string& help, const Labels& labels, double value) {
    sample(name, help, MetricType::Gauge, labels).gauge.value = value;
  }
  std::vector<MetricFamily> take() { return std::move(families_); }

 private:
  ClientMetric& sample(const std::string& name, const std::string& help, MetricType type, const Labels& labels) {
    auto [it, fresh] = index_.try_emplace(name, families_.size());
    if (fresh) families_.push_back(MetricFamily{name, help, type, {}});
    MetricFamily& family = families_[it->second];
    ClientMetric& m = family.metric.emplace_back();
    for (const auto& [k, v] : labels) m.label.push_back({k, v});
    return m;
  }

  SelfMetrics& metrics_;
  std::vector<MetricFamily> families_;
  std::map<std::string, std::size_t> index_;
};

SelfMetrics::SelfMetrics(std::string version, double start_time)
    : version_(std::move(version)), start_time_(start_time) {
  update_identity_only();
}

void SelfMetrics::update_identity_only() {
  Builder b(*this);
  identity(b);
  std::lock_guard lock(mutex_);
  published_ = b.take();
}

void SelfMetrics::identity(Builder& b) const {
  b.gauge("outpost_build_info", "Always 1; the version of the running outpost is its label.",
          {{"version", version_}}, 1);
  b.gauge("outpost_start_time_seconds", "When this process started, in seconds since the epoch.", {}, start_time_);
}

double SelfMetrics::advance(const std::string& key, std::uint64_t raw) {
  auto [it, fresh] = counters_.try_emplace(key);
  Tracked& t = it->second;
  if (fresh) t.total = static_cast<double>(raw);
  else if (raw >= t.last) t.total += static_cast<double>(raw - t.last);
  else t.total += static_cast<double>(raw);  // its source started again from zero
  t.last = raw;
  return t.total;
}

void SelfMetrics::update(const MetricsSnapshot& s) {
  Builder b(*this);
  identity(b);

  // Probes, from the records written: by method, by what became of them.
  for (const auto& [method, c] : s.probes) {
    auto n = [&c](ProbeStatus status) { return c.by_status[static_cast<std::size_t>(status)]; };
    const std::uint64_t errors = n(ProbeStatus::error);
    std::uint64_t all = 0;
    for (std::uint64_t v : c.by_status) all += v;
    const Labels l{{"method", method}};
    b.counter("outpost_probes_sent_total",
              "Probes that went out, by method: probe records whose status is not error.", l, all - errors);
    b.counter("outpost_probes_answered_total",
              "Probes the target answered (status reply or refused), by method.", l,
              n(ProbeStatus::reply) + n(ProbeStatus::refused));
    b.counter("outpost_probes_unreachable_total", "Probes answered by an ICMP unreachable, by method.", l,
              n(ProbeStatus::unreachable));
    b.counter("outpost_probe_timeouts_total", "Probes that timed out, by method.", l, n(ProbeStatus::timeout));
    b.counter("outpost_probe_errors_total",
              "Probes that could not be sent (status error: no address, a local failure), by method.", l, errors);
  }
  std::uint64_t dns_dropped = 0;
  for (const auto& [method, c] : s.probes) dns_dropped += c.dns_answers_dropped;
  b.counter("outpost_dns_answers_dropped_total",
            "DNS answers beyond those a probe record keeps, left out of the records.", {}, dns_dropped);
  b.gauge("outpost_probes_in_flight", "Probes sent and not yet finished (trace hops included).", {},
          static_cast<double>(s.in_flight));

  // The engine: what left, and what was captured that finished no probe.
  const EngineStats& e = s.engine;
  b.counter("outpost_packets_sent_total",
            "Probe packets, DNS queries and connects that left, trace hops and vantage checks included.", {},
            e.sent);
  b.counter("outpost_send_errors_total", "Sends that failed on this host.", {}, e.send_errors);
  b.counter("outpost_capture_frames_total", "Frames through the capture filter.", {}, e.captured);
  b.counter("outpost_capture_dropped_total", "Frames the kernel dropped before the capture read them (pcap_stats).",
            {}, e.capture_dropped);
  b.counter("outpost_capture_malformed_total", "Captured frames that could not be decoded.", {}, e.malformed);
  const char* unmatched = "Replies that finished no probe, by why: stray (no such probe), late (it had timed out), "
                          "duplicate (it was answered), spoofed (right flow, wrong cookie).";
  b.counter("outpost_replies_unmatched_total", unmatched, {{"reason", "stray"}}, e.stray);
  b.counter("outpost_replies_unmatched_total", unmatched, {{"reason", "late"}}, e.late);
  b.counter("outpost_replies_unmatched_total", unmatched, {{"reason", "duplicate"}}, e.duplicate);
  b.counter("outpost_replies_unmatched_total", unmatched, {{"reason", "spoofed"}}, e.spoofed);

  // The agent.
  b.counter("outpost_records_total", "Records written to the outputs (probe, series, trace, event).", {},
            s.agent.records);
  b.counter("outpost_series_late_results_total",
            "Probe results that came after their series window was written, left out of it.", {},
            s.late_series_results);
  b.counter("outpost_stale_results_total", "Results of probes whose task a reload replaced (not counted in series).",
            {}, s.agent.stale_results);
  b.counter("outpost_vantage_checks_total", "Control targets probed at once before an outage was blamed.", {},
            s.agent.vantage_checks);
  b.counter("outpost_rate_limit_waits_total",
            "Probes outside the schedule (trace hops, vantage checks) that waited for agent.max_pps.", {},
            s.rate_limit_waits);
  if (s.launch_lateness) {
    const char* late = "Scheduled probes that left later than their schedule by more than `over`.";
    b.counter("outpost_launch_late_total", late, {{"over", "10ms"}}, s.launch_lateness->over_10ms);
    b.counter("outpost_launch_late_total", late, {{"over", "100ms"}}, s.launch_lateness->over_100ms);
    b.gauge("outpost_launch_late_max_seconds", "The latest a scheduled probe has left against its schedule.", {},
            std::chrono::duration<double>(s.launch_lateness->worst).count());
  }

  // Investigations.
  const InvestigatorStats& i = s.investigations;
  b.counter("outpost_investigations_total", "Failure traces run for outages.", {}, i.started);
  b.counter("outpost_investigations_merged_total", "Outages that took another investigation's verdict.", {},
            i.merged);
  b.counter("outpost_investigations_dropped_total", "Outages written without a trace: too many were waiting.", {},
            i.dropped);
  b.counter("outpost_baseline_traces_total", "Baseline traces run.", {}, i.baselines);
  b.counter("outpost_baseline_hops_reused_total",
            "Baseline hops taken from another target's last good path through the same next hop, not probed.", {},
            i.hops_reused);

  // Outputs.
  for (const OutputStatus& o : s.outputs) {
    const Labels l{{"output", o.name}, {"kind", o.kind}};
    b.counter("outpost_output_records_total", "Records an output took in.", l, o.stats.records);
    b.counter("outpost_output_pushes_total", "Batches an output delivered (acknowledged, or written to its file).", l,
              o.stats.delivered);
    b.counter("outpost_output_pushed_records_total", "Records in the batches an output delivered.", l,
              o.stats.delivered_records);
    b.counter("outpost_output_push_failures_total", "Sends or writes that failed and will be tried again.", l,
              o.stats.failures);
    b.counter("outpost_output_rejected_batches_total", "Batches a collector refused for good (quarantined).", l,
              o.stats.rejected);
    b.counter("outpost_output_evicted_records_total", "Records given up to keep a spool under its spool_bytes.", l,
              o.evicted_records);
    b.gauge("outpost_output_queue_batches", "Batches waiting in an output's spool.", l,
            static_cast<double>(o.queued_batches));
    b.gauge("outpost_output_queue_records", "Records in the batches waiting in an output's spool.", l,
            static_cast<double>(o.queued_records));
    b.gauge("outpost_output_spool_bytes", "Bytes an output's spool holds, on disk and in memory.", l,
            static_cast<double>(o.spool_bytes));
  }

  b.counter("outpost_config_reloads_total", "Reloads tried (SIGHUP).", {}, s.run.reloads);
  b.counter("outpost_config_reload_failures_total", "Reloads refused; the running config stayed.", {},
            s.run.reload_failures);

  // What is down now.
  b.gauge("outpost_targets", "Targets probed (a name probed over both families counts twice).", {},
          static_cast<double>(s.down.targets));
  b.gauge("outpost_targets_down", "Targets the detector holds down now.", {}, static_cast<double>(s.down.targets_down));
  b.gauge("outpost_groups", "Groups of targets.", {}, static_cast<double>(s.down.groups));
  b.gauge("outpost_groups_down", "Groups down now.", {}, static_cast<double>(s.down.groups_down));
  b.gauge("outpost_vantage_down", "1 while this vantage point itself is down (its control targets fail), else 0.", {},
          s.down.vantage_down ? 1 : 0);

  auto families = b.take();
  std::lock_guard lock(mutex_);
  published_.swap(families);
}

std::vector<MetricFamily> SelfMetrics::Collect() const {
  std::lock_guard lock(mutex_);
  return published_;
}

std::string SelfMetrics::text() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, Collect());
  return out.str();
}

}  // namespace outpost
