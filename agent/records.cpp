#include "records.hpp"

#include "correlator.hpp"

#include <cstdio>
#include <ctime>

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

namespace {

nlohmann::json base_record(const ProbeLabels& labels, const std::string& address, WallTime time) {
  nlohmann::json j;
  j["type"] = "probe";
  j["agent"] = labels.agent;
  j["time"] = rfc3339(time);
  j["target"] = labels.target;
  j["group"] = labels.group;
  j["address"] = address;
  j["method"] = labels.method;
  if (labels.method == "tcp") j["port"] = labels.port;
  return j;
}

// rcode, answers, truncated (CONTRACT.md) and the rest only when the server answered.
void add_dns_fields(nlohmann::json& j, const DnsAnswerInfo& d, bool has_rtt) {
  j["query"] = d.query;
  j["qtype"] = d.qtype;
  if (!d.rcode.empty()) {
    j["rcode"] = d.rcode;
    j["answers"] = d.answers;
    j["answer_count"] = d.answers.size();
    j["truncated"] = d.truncated;
    j["transport"] = d.transport;
  }
  if (has_rtt && !d.rtt_clock.empty()) j["rtt_clock"] = d.rtt_clock;
  if (d.tcp_time) j["tcp_ms"] = to_ms(*d.tcp_time);
  if (!d.tcp_error.empty()) j["tcp_error"] = d.tcp_error;
  if (d.ignored) {
    j["ignored"] = d.ignored;
    j["ignored_last"] = d.last_ignored;
  }
}

}  // namespace

nlohmann::json probe_record(const ProbeLabels& labels, const ProbeResult& r) {
  nlohmann::json j = base_record(labels, r.target.to_string(), r.sent);
  j["status"] = std::string(to_string(r.status));
  if (r.rtt) j["rtt_ms"] = to_ms(*r.rtt);
  if (r.status == ProbeStatus::error) j["error"] = r.error.empty() ? "unknown error" : r.error;
  if (r.reply_from) {
    j["reply_from"] = r.reply_from.to_string();
    if (r.reply_ttl >= 0) j["reply_ttl"] = r.reply_ttl;
  }
  if (r.status == ProbeStatus::unreachable) {
    j["icmp_type"] = r.icmp_type;
    j["icmp_code"] = r.icmp_code;
    j["detail"] = r.error;
  }
  if (labels.method == "icmp" && r.status != ProbeStatus::error) j["seq"] = r.sequence;
  if (r.dns) add_dns_fields(j, *r.dns, r.rtt.has_value());
  return j;
}

nlohmann::json trace_record(const ProbeLabels& labels, const TraceResult& t, const std::string& reason,
                            const AsnTable* asns) {
  nlohmann::json j;
  j["type"] = "trace";
  j["agent"] = labels.agent;
  j["time"] = rfc3339(t.started);
  j["target"] = labels.target;
  j["group"] = labels.group;
  j["address"] = t.target.to_string();
  j["method"] = trace_method_name(t.spec.method);
  if (t.spec.method != TraceMethod::icmp) j["port"] = t.spec.port;
  j["flow_id"] = t.flow_id;
  j["reason"] = reason;
  j["reached"] = t.reached;
  j["stop_reason"] = t.stop_reason;
  if (!t.error.empty()) j["error"] = t.error;
  nlohmann::json hops = nlohmann::json::array();
  for (const auto& h : t.hops) {
    nlohmann::json hop;
    hop["ttl"] = h.ttl;
    hop["asn"] = nullptr;
    hop["probes"] = h.probes_sent;
    if (h.addr) {
      hop["addr"] = h.addr.to_string();
      if (auto m = asns ? asns->lookup(h.addr) : std::nullopt) {
        hop["asn"] = m->origin.primary();
        if (m->origin.asns.size() > 1) hop["asn_origin"] = m->origin.text();
        if (auto name = asns->name_of(m->origin.primary()); !name.empty()) hop["asn_name"] = name;
      }
      if (h.rtt) hop["rtt_ms"] = to_ms(*h.rtt);
      hop["icmp_type"] = h.icmp_type;
      hop["icmp_code"] = h.icmp_code;
      if (h.quoted_ttl >= 0) hop["quoted_ttl"] = h.quoted_ttl;
      hop["reply_ttl"] = h.reply_ttl;
      if (h.is_target) hop["target"] = true;
      if (!h.mpls.empty()) {
        nlohmann::json labels_json = nlohmann::json::array();
        for (const auto& m : h.mpls)
          labels_json.push_back({{"label", m.label}, {"exp", m.exp}, {"s", m.bottom}, {"ttl", m.ttl}});
        hop["mpls"] = labels_json;
      }
    }
    hops.push_back(hop);
  }
  j["hops"] = hops;
  return j;
}

nlohmann::json probe_error_record(const ProbeLabels& labels, const std::string& address, WallTime time,
                                  const std::string& error) {
  nlohmann::json j = base_record(labels, address, time);
  j["status"] = "error";
  j["error"] = error;
  return j;
}

nlohmann::json series_record(const std::string& agent, const SeriesWindow& w) {
  nlohmann::json j;
  j["type"] = "series";
  j["agent"] = agent;
  j["time"] = rfc3339(w.start);
  j["target"] = w.key.target;
  j["group"] = w.key.group;
  j["method"] = w.key.method;
  if (w.key.method == "tcp") j["port"] = w.key.port;
  j["window_start"] = rfc3339(w.start);
  if (w.length.count() % 1000000000 == 0) j["window_s"] = w.length.count() / 1000000000;
  else j["window_s"] = static_cast<double>(w.length.count()) / 1e9;
  j["sent"] = w.sent;
  j["received"] = w.received;
  j["loss"] = w.loss();
  j["timeouts"] = w.timeouts;
  j["unreachable"] = w.unreachable;
  j["errors"] = w.errors;
  if (w.rtt) {
    j["rtt_min_ms"] = w.rtt->min;
    j["rtt_avg_ms"] = w.rtt->avg;
    j["rtt_p50_ms"] = w.rtt->p50;
    j["rtt_p95_ms"] = w.rtt->p95;
    j["rtt_max_ms"] = w.rtt->max;
    j["rtt_stddev_ms"] = w.rtt->stddev;
  }
  j["partial"] = w.partial;
  return j;
}

nlohmann::json event_record(const std::string& agent, const DetectorEvent& e, const Verdict* verdict, WallTime now) {
  nlohmann::json j;
  j["type"] = "event";
  j["agent"] = agent;
  j["time"] = rfc3339(now);
  j["kind"] = std::string(to_string(e.kind));
  if (!e.target.empty()) j["target"] = e.target;
  if (!e.group.empty()) j["group"] = e.group;
  if (!e.targets.empty()) j["targets"] = e.targets;
  j["start"] = rfc3339(e.start);
  if (e.last_ok) j["last_ok"] = rfc3339(*e.last_ok);
  if (e.end) {
    j["end"] = rfc3339(*e.end);
    j["duration_s"] = std::chrono::duration<double>(*e.end - e.start).count();
  }
  if (e.changes) j["changes"] = e.changes;
  if (!e.state.empty()) j["state"] = e.state;
  if (verdict) j["verdict"] = verdict_json(*verdict);
  return j;
}

}  // namespace outpost
