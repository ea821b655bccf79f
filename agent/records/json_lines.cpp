#include "json_lines.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "dns_message.hpp"

namespace outpost {
namespace {

using nlohmann::json;

// Free text in a probe record (an error, why an answer was ignored) is cut to
// this, whoever made it, so that the record keeps its ceiling.
constexpr std::size_t kMaxRecordText = 256;

std::string capped(const std::string& text) { return cap_dns_text(text, kMaxRecordText); }

json head(std::string_view type, const std::string& agent, WallTime time) {
  json j;
  j["type"] = type;
  j["agent"] = agent;
  j["time"] = rfc3339(time);
  return j;
}

// rcode, answers, truncated (CONTRACT.md) and the rest only when the server answered.
// Answers: at most kDnsMaxAnswersKept of kDnsMaxAnswerText characters each
// (the probe keeps no more; this holds the ceiling whatever made the result);
// the rest are counted in answers_dropped, written only when some were.
void add_dns_fields(json& j, const DnsAnswerInfo& d, bool has_rtt) {
  j["query"] = capped(d.query);
  j["qtype"] = capped(d.qtype);
  if (!d.rcode.empty()) {
    j["rcode"] = capped(d.rcode);
    const std::size_t kept = std::min(d.answers.size(), kDnsMaxAnswersKept);
    json answers = json::array();
    for (std::size_t i = 0; i < kept; ++i) answers.push_back(cap_dns_text(d.answers[i], kDnsMaxAnswerText));
    j["answers"] = std::move(answers);
    j["answer_count"] = kept;
    const std::uint64_t dropped = std::uint64_t{d.answers_dropped} + (d.answers.size() - kept);
    if (dropped) j["answers_dropped"] = dropped;
    j["truncated"] = d.truncated;
    j["transport"] = capped(d.transport);
  }
  if (has_rtt && !d.rtt_clock.empty()) j["rtt_clock"] = capped(d.rtt_clock);
  if (d.tcp_time) j["tcp_ms"] = to_ms(*d.tcp_time);
  if (!d.tcp_error.empty()) j["tcp_error"] = capped(d.tcp_error);
  if (d.ignored) {
    j["ignored"] = d.ignored;
    j["ignored_last"] = capped(d.last_ignored);
  }
}

json optional_number(const std::optional<std::uint32_t>& v) { return v ? json(*v) : json(nullptr); }

// A probe record's line written straight out, byte for byte what
// to_json(ProbeRecord).dump() writes (keys in order, the same escapes and
// numbers), without building the object first: one per probe, the agent's
// most frequent output, where the object's nodes and their frees cost more
// than the rest of the record.
class LineWriter {
 public:
  explicit LineWriter(std::string& out) : out_(out) { out_ += '{'; }
  void key(std::string_view k) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += k;
    out_ += "\":";
  }
  void string(std::string_view k, std::string_view v) {
    key(k);
    const bool plain = std::all_of(v.begin(), v.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u >= 0x20 && u < 0x7f && c != '"' && c != '\\';
    });
    if (plain) {
      out_ += '"';
      out_ += v;
      out_ += '"';
    } else {  // escapes, UTF-8 and its repairs: as the library does them
      out_ += json(std::string(v)).dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }
  void integer(std::string_view k, std::int64_t v) {
    key(k);
    char buf[24];
    out_.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  }
  void number(std::string_view k, double v) {
    key(k);
    if (!std::isfinite(v)) {
      out_ += "null";
      return;
    }
    char buf[64];
    out_.append(buf, nlohmann::detail::to_chars(buf, buf + sizeof buf, v));
  }
  void close() { out_ += "}\n"; }

 private:
  std::string& out_;
  bool first_ = true;
};

std::string probe_json_line(const ProbeRecord& p) {
  const ProbeLabels& labels = p.labels;
  const ProbeResult& r = p.result;
  const bool unreachable = r.status == ProbeStatus::unreachable;
  std::string out;
  out.reserve(320);
  LineWriter w(out);
  // In key order, as the library's object keeps them.
  w.string("address", p.address);
  if (p.af) w.integer("af", p.af);
  w.string("agent", labels.agent);
  if (unreachable) w.string("detail", capped(r.error));
  if (r.status == ProbeStatus::error) w.string("error", r.error.empty() ? "unknown error" : capped(r.error));
  w.string("group", labels.group);
  if (unreachable && r.icmp_code >= 0) w.integer("icmp_code", r.icmp_code);
  if (unreachable && r.icmp_type >= 0) w.integer("icmp_type", r.icmp_type);
  w.string("method", labels.method);
  if (labels.method == "tcp") w.integer("port", labels.port);
  if (r.reply_from) {
    w.string("reply_from", r.reply_from.to_string());
    if (r.reply_ttl >= 0) w.integer("reply_ttl", r.reply_ttl);
  }
  if (r.rtt && !r.rtt_clock.empty()) w.string("rtt_clock", capped(r.rtt_clock));
  if (r.rtt) w.number("rtt_ms", to_ms(*r.rtt));
  if (labels.method == "icmp" && r.status != ProbeStatus::error) w.integer("seq", r.sequence);
  w.string("status", to_string(r.status));
  w.string("target", labels.target);
  w.string("time", rfc3339(r.sent));
  w.string("type", "probe");
  w.close();
  return out;
}

}  // namespace

json to_json(const ProbeRecord& p) {
  const ProbeLabels& labels = p.labels;
  const ProbeResult& r = p.result;
  json j = head("probe", labels.agent, r.sent);
  j["target"] = labels.target;
  j["group"] = labels.group;
  j["address"] = p.address;
  if (p.af) j["af"] = p.af;
  j["method"] = labels.method;
  if (labels.method == "tcp") j["port"] = labels.port;
  j["status"] = std::string(to_string(r.status));
  if (r.rtt) j["rtt_ms"] = to_ms(*r.rtt);
  // A raw probe's fallback clock; a DNS probe's (dns.rtt_clock) comes with its fields.
  if (r.rtt && !r.dns && !r.rtt_clock.empty()) j["rtt_clock"] = capped(r.rtt_clock);
  if (r.status == ProbeStatus::error) j["error"] = r.error.empty() ? "unknown error" : capped(r.error);
  if (r.reply_from) {
    j["reply_from"] = r.reply_from.to_string();
    if (r.reply_ttl >= 0) j["reply_ttl"] = r.reply_ttl;
  }
  if (r.status == ProbeStatus::unreachable) {
    if (r.icmp_type >= 0) j["icmp_type"] = r.icmp_type;
    if (r.icmp_code >= 0) j["icmp_code"] = r.icmp_code;
    j["detail"] = capped(r.error);
  }
  if (labels.method == "icmp" && r.status != ProbeStatus::error) j["seq"] = r.sequence;
  if (r.dns) add_dns_fields(j, *r.dns, r.rtt.has_value());
  return j;
}

json to_json(const SeriesRecord& s) {
  const SeriesWindow& w = s.window;
  json j = head("series", s.agent, w.start);
  j["target"] = w.key.target;
  j["group"] = w.key.group;
  if (w.key.af) j["af"] = w.key.af;
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

json to_json(const TraceRecord& r) {
  const TraceResult& t = r.trace;
  json j = head("trace", r.labels.agent, t.started);
  j["target"] = r.labels.target;
  j["group"] = r.labels.group;
  j["address"] = t.target.to_string();
  if (const int af = family_of(t.target)) j["af"] = af;
  j["method"] = trace_method_name(t.spec.method);
  if (t.spec.method != TraceMethod::icmp) j["port"] = t.spec.port;
  j["flow_id"] = t.flow_id;
  j["reason"] = r.reason;
  j["reached"] = t.reached;
  j["stop_reason"] = t.stop_reason;
  if (!t.error.empty()) j["error"] = t.error;
  json hops = json::array();
  for (std::size_t i = 0; i < t.hops.size(); ++i) {
    const TraceHop& h = t.hops[i];
    json hop;
    hop["ttl"] = h.ttl;
    hop["asn"] = nullptr;
    hop["probes"] = h.probes_sent;
    // Not probed by this trace: when the trace it was taken from probed it.
    if (h.reused_from) hop["reused_from"] = rfc3339(*h.reused_from);
    if (h.addr) {
      hop["addr"] = h.addr.to_string();
      if (i < r.hop_asns.size() && r.hop_asns[i]) {
        const HopAsn& a = *r.hop_asns[i];
        hop["asn"] = a.asn;
        if (!a.origin.empty()) hop["asn_origin"] = a.origin;
        if (!a.name.empty()) hop["asn_name"] = a.name;
      }
      if (h.rtt) hop["rtt_ms"] = to_ms(*h.rtt);
      if (h.rtt && !h.rtt_clock.empty()) hop["rtt_clock"] = capped(h.rtt_clock);
      if (h.icmp_type >= 0) hop["icmp_type"] = h.icmp_type;
      if (h.icmp_code >= 0) hop["icmp_code"] = h.icmp_code;
      if (h.quoted_ttl >= 0) hop["quoted_ttl"] = h.quoted_ttl;
      if (h.reply_ttl >= 0) hop["reply_ttl"] = h.reply_ttl;
      if (h.is_target) hop["target"] = true;
      if (!h.mpls.empty()) {
        json labels = json::array();
        for (const auto& m : h.mpls) labels.push_back({{"label", m.label}, {"exp", m.exp}, {"s", m.bottom}, {"ttl", m.ttl}});
        hop["mpls"] = labels;
      }
    }
    hops.push_back(hop);
  }
  j["hops"] = hops;
  return j;
}

json verdict_json(const Verdict& v) {
  json j;
  j["where"] = std::string(to_string(v.where));
  j["last_hop"] = v.last_hop ? json(v.last_hop.to_string()) : json(nullptr);
  j["last_hop_asn"] = optional_number(v.last_hop_asn);
  j["last_ttl"] = v.last_ttl;
  j["baseline_reached_asn"] = optional_number(v.baseline_reached_asn);
  j["trace"] = v.trace ? json(rfc3339(*v.trace)) : json(nullptr);
  j["have_baseline"] = v.have_baseline;
  if (v.last_hop_alive) j["last_hop_alive"] = *v.last_hop_alive;
  j["reason"] = v.reason;
  return j;
}

json to_json(const EventRecord& r) {
  const DetectorEvent& e = r.event;
  json j = head("event", r.agent, r.time);
  j["kind"] = std::string(to_string(e.kind));
  if (!e.target.empty()) j["target"] = e.target;
  if (!e.group.empty()) j["group"] = e.group;
  if (e.af) j["af"] = e.af;
  if (!e.targets.empty()) j["targets"] = e.targets;
  j["start"] = rfc3339(e.start);
  if (e.last_ok) j["last_ok"] = rfc3339(*e.last_ok);
  if (e.end) {
    j["end"] = rfc3339(*e.end);
    j["duration_s"] = std::chrono::duration<double>(*e.end - e.start).count();
  }
  if (e.changes) j["changes"] = e.changes;
  if (!e.state.empty()) j["state"] = e.state;
  if (r.verdict) j["verdict"] = verdict_json(*r.verdict);
  return j;
}

json to_json(const Record& record) {
  return std::visit([](const auto& r) { return to_json(r); }, record);
}

std::string to_json_line(const Record& record) {
  if (const auto* p = std::get_if<ProbeRecord>(&record); p && !p->result.dns) return probe_json_line(*p);
  return to_json(record).dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace outpost
