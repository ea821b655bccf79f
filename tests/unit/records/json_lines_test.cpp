// The JSON Lines encoding, pinned whole: for each record type (probe, series,
// trace, event) and its variants, the exact object written, key for key and
// with the kind of each number; CONTRACT.md's required fields; record_type();
// and to_json_line's framing (one newline) and its handling of invalid UTF-8.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "json_lines.hpp"
#include "records.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using outpost::DetectorEvent;
using outpost::Duration;
using outpost::EventKind;
using outpost::HopAsn;
using outpost::IpAddress;
using outpost::ProbeLabels;
using outpost::ProbeResult;
using outpost::ProbeStatus;
using outpost::Record;
using outpost::SeriesWindow;
using outpost::TraceHop;
using outpost::TraceMethod;
using outpost::TraceResult;
using outpost::Verdict;
using outpost::WallTime;
using outpost::Where;

namespace {

WallTime at(std::int64_t seconds, std::int64_t nanos = 0) {
  return WallTime(std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos));
}

// 2014-12-22T16:15:00Z, the outage of ARCHITECTURE.md's story, which ends
// at 01:46 UTC the next day: 9 h 31 min later.
constexpr std::int64_t k1615 = 1419264900;
constexpr std::int64_t k0146 = k1615 + 9 * 3600 + 31 * 60;

IpAddress ip(const char* text) {
  const auto a = IpAddress::parse(text);
  REQUIRE(a);
  return *a;
}

// The whole object: dump() writes keys in order and tells 60 from 60.0 and
// 1 from true, which json's operator== would let pass.
void check_json(const json& got, const json& want) { CHECK(got.dump() == want.dump()); }

// Each of CONTRACT.md's required fields is there.
void check_has(const json& j, const std::vector<std::string>& fields) {
  for (const auto& f : fields) {
    INFO(f << " in " << j.dump());
    CHECK(j.contains(f));
  }
}

ProbeLabels labels(const char* method, int port = 0) { return {"fra-1", "naenara", "kp", method, port, 4}; }

ProbeResult result(ProbeStatus status, const char* target = "175.45.176.71") {
  ProbeResult r;
  r.status = status;
  r.target = ip(target);
  r.sent = at(k1615, 123456789);
  r.sent_kernel_stamp = true;
  r.sequence = 42;
  return r;
}

json probe_json(const ProbeLabels& l, const ProbeResult& r) {
  return outpost::to_json(outpost::probe_record(l, r));
}

// What every probe record of naenara (175.45.176.71) from fra-1 starts with.
json probe_head(const char* method, const char* status) {
  return {{"type", "probe"},          {"agent", "fra-1"}, {"time", "2014-12-22T16:15:00.123456Z"},
          {"target", "naenara"},      {"group", "kp"},    {"address", "175.45.176.71"},
          {"af", 4},                  {"method", method}, {"status", status}};
}

outpost::DnsAnswerInfo dns_info() {
  outpost::DnsAnswerInfo d;
  d.query = "naenara.com.kp";
  d.qtype = "A";
  return d;
}

const std::vector<std::string> kProbeContract = {"type", "agent", "time", "af", "target", "group", "address",
                                                 "method", "status"};

}  // namespace

// ---------------------------------------------------------------- probe

TEST_CASE("json_lines: probe records of each status", "[records][json]") {
  SECTION("reply (icmp): rtt_ms, who answered, seq") {
    ProbeResult r = result(ProbeStatus::reply);
    r.rtt = 250us;
    r.reply_from = r.target;
    r.reply_ttl = 57;
    r.icmp_type = 0;
    r.icmp_code = 0;
    json want = probe_head("icmp", "reply");
    want.update({{"rtt_ms", 0.25}, {"reply_from", "175.45.176.71"}, {"reply_ttl", 57}, {"seq", 42}});
    const json j = probe_json(labels("icmp"), r);
    check_json(j, want);
    check_has(j, kProbeContract);
    check_has(j, {"rtt_ms"});
    CHECK_FALSE(j.contains("rtt_clock"));  // kernel stamps at both ends: nothing to say
    CHECK(outpost::to_json_line(outpost::probe_record(labels("icmp"), r)) == j.dump() + "\n");
  }
  SECTION("reply timed from the wall clock at one end: rtt_clock says which") {
    ProbeResult r = result(ProbeStatus::reply);
    r.rtt = 250us;
    r.rtt_clock = "kernel_tx";
    r.reply_from = r.target;
    r.reply_ttl = 57;
    json want = probe_head("icmp", "reply");
    want.update({{"rtt_ms", 0.25}, {"rtt_clock", "kernel_tx"}, {"reply_from", "175.45.176.71"}, {"reply_ttl", 57},
                 {"seq", 42}});
    const json j = probe_json(labels("icmp"), r);
    check_json(j, want);
    // The agent's own writer, byte for byte the same line.
    CHECK(outpost::to_json_line(outpost::probe_record(labels("icmp"), r)) == j.dump() + "\n");
    r.rtt.reset();  // no RTT: no clock to speak of
    r.status = ProbeStatus::timeout;
    CHECK_FALSE(probe_json(labels("icmp"), r).contains("rtt_clock"));
    CHECK_FALSE(json::parse(outpost::to_json_line(outpost::probe_record(labels("icmp"), r))).contains("rtt_clock"));
  }
  SECTION("timeout: no rtt_ms, no error, no one answered") {
    json want = probe_head("icmp", "timeout");
    want["seq"] = 42;
    check_json(probe_json(labels("icmp"), result(ProbeStatus::timeout)), want);
  }
  SECTION("unreachable: a router's ICMP error, its type, code and what it means") {
    ProbeResult r = result(ProbeStatus::unreachable);
    r.rtt = 1500us;
    r.reply_from = ip("198.18.0.254");
    r.reply_ttl = 250;
    r.icmp_type = 3;
    r.icmp_code = 1;
    r.error = "host unreachable";
    json want = probe_head("icmp", "unreachable");
    want.update({{"rtt_ms", 1.5},
                 {"reply_from", "198.18.0.254"},
                 {"reply_ttl", 250},
                 {"icmp_type", 3},
                 {"icmp_code", 1},
                 {"detail", "host unreachable"},
                 {"seq", 42}});
    check_json(probe_json(labels("icmp"), r), want);
  }
  SECTION("unreachable without an ICMP error (an errno from connect): no icmp_type or icmp_code") {
    ProbeResult r = result(ProbeStatus::unreachable);
    r.error = "connect: No route to host";
    json want = probe_head("tcp", "unreachable");
    want.update({{"port", 443}, {"detail", "connect: No route to host"}});
    check_json(probe_json(labels("tcp", 443), r), want);
  }
  SECTION("refused (tcp): the port, the RST's rtt, no seq") {
    ProbeResult r = result(ProbeStatus::refused);
    r.rtt = 3ms;
    r.reply_from = r.target;
    r.reply_ttl = 52;
    json want = probe_head("tcp", "refused");
    want.update({{"port", 80}, {"rtt_ms", 3.0}, {"reply_from", "175.45.176.71"}, {"reply_ttl", 52}});
    const json j = probe_json(labels("tcp", 80), r);
    check_json(j, want);
    check_has(j, {"port"});
  }
  SECTION("error: its message, no rtt_ms, no seq") {
    ProbeResult r = result(ProbeStatus::error);
    r.sent_kernel_stamp = false;
    r.error = "sendto 175.45.176.71: Network is unreachable";
    json want = probe_head("icmp", "error");
    want["error"] = "sendto 175.45.176.71: Network is unreachable";
    const json j = probe_json(labels("icmp"), r);
    check_json(j, want);
    check_has(j, {"error"});

    r.error.clear();
    want["error"] = "unknown error";
    check_json(probe_json(labels("icmp"), r), want);
  }
}

TEST_CASE("json_lines: dns probe records", "[records][json]") {
  SECTION("an answer over UDP: rcode, answers, truncated and the rest") {
    ProbeResult r = result(ProbeStatus::reply, "198.18.0.53");
    r.rtt = 1200us;
    r.reply_from = r.target;
    r.reply_ttl = 64;
    r.dns = dns_info();
    r.dns->rcode = "NOERROR";
    r.dns->answers = {"175.45.176.71", "175.45.176.72"};
    r.dns->transport = "udp";
    r.dns->rtt_clock = "kernel";
    json want = probe_head("dns", "reply");
    want.update({{"address", "198.18.0.53"},
                 {"rtt_ms", 1.2},
                 {"reply_from", "198.18.0.53"},
                 {"reply_ttl", 64},
                 {"query", "naenara.com.kp"},
                 {"qtype", "A"},
                 {"rcode", "NOERROR"},
                 {"answers", json::array({"175.45.176.71", "175.45.176.72"})},
                 {"answer_count", 2},
                 {"truncated", false},
                 {"transport", "udp"},
                 {"rtt_clock", "kernel"}});
    const json j = probe_json(labels("dns"), r);
    check_json(j, want);
    check_has(j, kProbeContract);
    check_has(j, {"rtt_ms", "rcode", "answers", "truncated"});
  }
  SECTION("NXDOMAIN is a reply with no answers; truncated, then TCP; datagrams ignored on the way") {
    ProbeResult r = result(ProbeStatus::reply, "198.18.0.53");
    r.rtt = 2ms;
    r.reply_from = r.target;
    r.reply_ttl = 64;
    r.dns = dns_info();
    r.dns->rcode = "NXDOMAIN";
    r.dns->truncated = true;
    r.dns->transport = "tcp";
    r.dns->rtt_clock = "kernel_rx";
    r.dns->tcp_time = 4500us;
    r.dns->ignored = 2;
    r.dns->last_ignored = "id 0x4243, expected 0x4242";
    json want = probe_head("dns", "reply");
    want.update({{"address", "198.18.0.53"},
                 {"rtt_ms", 2.0},
                 {"reply_from", "198.18.0.53"},
                 {"reply_ttl", 64},
                 {"query", "naenara.com.kp"},
                 {"qtype", "A"},
                 {"rcode", "NXDOMAIN"},
                 {"answers", json::array()},
                 {"answer_count", 0},
                 {"truncated", true},
                 {"transport", "tcp"},
                 {"rtt_clock", "kernel_rx"},
                 {"tcp_ms", 4.5},
                 {"ignored", 2},
                 {"ignored_last", "id 0x4243, expected 0x4242"}});
    check_json(probe_json(labels("dns"), r), want);
  }
  SECTION("an unmet expect is an error that keeps the answer; a TCP retry that failed says why") {
    ProbeResult r = result(ProbeStatus::error, "198.18.0.53");
    r.rtt = 1ms;
    r.reply_from = r.target;
    r.reply_ttl = 64;
    r.error = "expected [175.45.176.71] among the answers, got SERVFAIL []";
    r.dns = dns_info();
    r.dns->rcode = "SERVFAIL";
    r.dns->truncated = true;
    r.dns->transport = "udp";
    r.dns->rtt_clock = "kernel";
    r.dns->tcp_error = "TCP connect: Connection refused";
    json want = probe_head("dns", "error");
    want.update({{"address", "198.18.0.53"},
                 {"rtt_ms", 1.0},
                 {"error", "expected [175.45.176.71] among the answers, got SERVFAIL []"},
                 {"reply_from", "198.18.0.53"},
                 {"reply_ttl", 64},
                 {"query", "naenara.com.kp"},
                 {"qtype", "A"},
                 {"rcode", "SERVFAIL"},
                 {"answers", json::array()},
                 {"answer_count", 0},
                 {"truncated", true},
                 {"transport", "udp"},
                 {"rtt_clock", "kernel"},
                 {"tcp_error", "TCP connect: Connection refused"}});
    check_json(probe_json(labels("dns"), r), want);
  }
  SECTION("no answer: the question only, no rcode, answers or rtt_clock") {
    ProbeResult r = result(ProbeStatus::timeout, "198.18.0.53");
    r.dns = dns_info();
    r.dns->rtt_clock = "kernel";  // set, but with no rtt it is not written
    json want = probe_head("dns", "timeout");
    want.update({{"address", "198.18.0.53"}, {"query", "naenara.com.kp"}, {"qtype", "A"}});
    check_json(probe_json(labels("dns"), r), want);
  }
}

TEST_CASE("json_lines: an IPv6 probe carries af 6", "[records][json]") {
  ProbeResult r = result(ProbeStatus::reply, "2001:db8::71");
  r.rtt = 31250us;
  r.reply_from = r.target;
  r.reply_ttl = 61;
  r.icmp_type = 129;
  r.icmp_code = 0;
  json want = probe_head("icmp", "reply");
  want.update({{"address", "2001:db8::71"},
               {"af", 6},
               {"rtt_ms", 31.25},
               {"reply_from", "2001:db8::71"},
               {"reply_ttl", 61},
               {"seq", 42}});
  check_json(probe_json(labels("icmp"), r), want);  // the labels say 4: the address wins
}

TEST_CASE("json_lines: a probe that could not be attempted", "[records][json]") {
  ProbeLabels l = labels("tcp", 443);
  l.af = 6;
  const auto rec = outpost::probe_error_record(l, "naenara.com.kp", at(k1615, 123456789),
                                               "naenara.com.kp: no AAAA record");
  check_json(outpost::to_json(rec), {{"type", "probe"},
                                     {"agent", "fra-1"},
                                     {"time", "2014-12-22T16:15:00.123456Z"},
                                     {"target", "naenara"},
                                     {"group", "kp"},
                                     {"address", "naenara.com.kp"},
                                     {"af", 6},
                                     {"method", "tcp"},
                                     {"port", 443},
                                     {"status", "error"},
                                     {"error", "naenara.com.kp: no AAAA record"}});
}

// ---------------------------------------------------------------- series

TEST_CASE("json_lines: series records", "[records][json]") {
  SeriesWindow w;
  w.key = {"naenara", "kp", "icmp", 0, 4};
  w.start = at(k1615);
  w.length = 60s;
  w.sent = 6;
  w.received = 5;
  w.timeouts = 1;
  json want = {{"type", "series"},
               {"agent", "fra-1"},
               {"time", "2014-12-22T16:15:00.000000Z"},
               {"target", "naenara"},
               {"group", "kp"},
               {"af", 4},
               {"method", "icmp"},
               {"window_start", "2014-12-22T16:15:00.000000Z"},
               {"window_s", 60},
               {"sent", 6},
               {"received", 5},
               {"loss", 1.0 / 6.0},
               {"timeouts", 1},
               {"unreachable", 0},
               {"errors", 0},
               {"partial", false}};
  const std::vector<std::string> contract = {"type", "agent", "time", "af", "target", "group", "method",
                                             "window_start", "window_s", "sent", "received", "loss"};
  const std::vector<std::string> rtt_fields = {"rtt_min_ms", "rtt_avg_ms", "rtt_p50_ms",
                                               "rtt_p95_ms", "rtt_max_ms", "rtt_stddev_ms"};

  SECTION("with answers: every rtt field") {
    w.rtt = outpost::RttSummary{1.0, 4.0, 3.0, 8.8, 10.0, 3.25};
    want.update({{"rtt_min_ms", 1.0},
                 {"rtt_avg_ms", 4.0},
                 {"rtt_p50_ms", 3.0},
                 {"rtt_p95_ms", 8.8},
                 {"rtt_max_ms", 10.0},
                 {"rtt_stddev_ms", 3.25}});
    const json j = outpost::to_json(outpost::series_record("fra-1", w));
    check_json(j, want);
    check_has(j, contract);
    check_has(j, rtt_fields);
  }
  SECTION("nothing received: no rtt field at all; tcp with its port, IPv6, a partial half second") {
    w.key = {"naenara", "kp", "tcp", 80, 6};
    w.start = at(k1615, 500000000);
    w.length = 500ms;
    w.sent = 2;
    w.received = 0;
    w.timeouts = 0;
    w.unreachable = 1;
    w.errors = 1;
    w.partial = true;
    const json j = outpost::to_json(outpost::series_record("fra-1", w));
    check_json(j, {{"type", "series"},
                   {"agent", "fra-1"},
                   {"time", "2014-12-22T16:15:00.500000Z"},
                   {"target", "naenara"},
                   {"group", "kp"},
                   {"af", 6},
                   {"method", "tcp"},
                   {"port", 80},
                   {"window_start", "2014-12-22T16:15:00.500000Z"},
                   {"window_s", 0.5},
                   {"sent", 2},
                   {"received", 0},
                   {"loss", 1.0},
                   {"timeouts", 0},
                   {"unreachable", 1},
                   {"errors", 1},
                   {"partial", true}});
    check_has(j, contract);
    for (const auto& f : rtt_fields) CHECK_FALSE(j.contains(f));
  }
  SECTION("nothing sent: loss 0, no af when the key has none") {
    w.key.af = 0;
    w.sent = w.received = w.timeouts = 0;
    const json j = outpost::to_json(outpost::series_record("fra-1", w));
    CHECK_FALSE(j.contains("af"));
    CHECK(j.at("loss").dump() == "0.0");
  }
}

// ---------------------------------------------------------------- trace

namespace {

TraceHop answered(int ttl, const char* addr, Duration rtt, int icmp_type, int icmp_code, int quoted_ttl,
                  int reply_ttl) {
  TraceHop h;
  h.ttl = ttl;
  h.addr = ip(addr);
  h.rtt = rtt;
  h.icmp_type = icmp_type;
  h.icmp_code = icmp_code;
  h.quoted_ttl = quoted_ttl;
  h.reply_ttl = reply_ttl;
  h.probes_sent = 1;
  return h;
}

TraceHop silent(int ttl, int probes) {
  TraceHop h;
  h.ttl = ttl;
  h.probes_sent = probes;
  return h;
}

// A prefix-to-ASN table by hand: the hops' networks, and none for the rest.
outpost::AsnLookup table() {
  return [](const IpAddress& a) -> std::optional<HopAsn> {
    const std::string s = a.to_string();
    if (s == "198.18.0.1") return HopAsn{64500, "", "VANTAGE-NET"};
    if (s == "198.19.0.6") return HopAsn{4837, "", "CHINA169-BACKBONE CHINA UNICOM China169 Backbone, CN"};
    if (s == "198.19.0.9") return HopAsn{4837, "4837_9808", ""};
    if (s == "175.45.176.71" || s == "2001:db8::71") return HopAsn{131279, "", "STAR-KP"};
    if (s == "2001:db8:1::1") return HopAsn{64500, "", ""};
    return std::nullopt;
  };
}

json trace_head(const char* time, const char* address, int af, const char* method) {
  return {{"type", "trace"},   {"agent", "fra-1"},      {"time", time}, {"target", "naenara"}, {"group", "kp"},
          {"address", address}, {"af", af},             {"method", method}};
}

const std::vector<std::string> kTraceContract = {"type", "agent", "time", "af", "target", "address",
                                                 "method", "reason", "reached", "hops"};

}  // namespace

TEST_CASE("json_lines: an ICMP trace that reached its target", "[records][json]") {
  TraceResult t;
  t.target = ip("175.45.176.71");
  t.started = at(k1615, 500000000);
  t.flow_id = 4660;
  t.reached = true;
  t.stop_reason = "reached";
  t.hops.push_back(answered(1, "198.18.0.1", 1ms, 11, 0, 1, 64));
  t.hops.push_back(silent(2, 2));
  TraceHop mpls = answered(3, "198.19.0.6", 12500us, 11, 0, 1, 253);
  mpls.mpls = {{16001, 0, false, 1}, {24005, 5, true, 1}};
  mpls.probes_sent = 2;
  t.hops.push_back(mpls);
  TraceHop fallback = answered(4, "198.19.0.9", 80ms, 11, 0, 2, 252);
  fallback.rtt_clock = "kernel_tx";  // its answer came without a kernel stamp
  t.hops.push_back(fallback);
  t.hops.push_back(answered(5, "203.0.113.5", 90ms, 11, 0, -1, 251));  // not in the table; no quote's TTL
  TraceHop target = answered(6, "175.45.176.71", 95250us, 0, 0, -1, 58);
  target.is_target = true;
  t.hops.push_back(target);

  const auto rec = outpost::trace_record({"fra-1", "naenara", "kp", "icmp", 0, 0}, t, "failure", table());
  json want = trace_head("2014-12-22T16:15:00.500000Z", "175.45.176.71", 4, "icmp");
  want.update({{"flow_id", 4660},
               {"reason", "failure"},
               {"reached", true},
               {"stop_reason", "reached"},
               {"hops", json::array({
                            json{{"ttl", 1},
                                 {"asn", 64500},
                                 {"asn_name", "VANTAGE-NET"},
                                 {"probes", 1},
                                 {"addr", "198.18.0.1"},
                                 {"rtt_ms", 1.0},
                                 {"icmp_type", 11},
                                 {"icmp_code", 0},
                                 {"quoted_ttl", 1},
                                 {"reply_ttl", 64}},
                            json{{"ttl", 2}, {"asn", nullptr}, {"probes", 2}},
                            json{{"ttl", 3},
                                 {"asn", 4837},
                                 {"asn_name", "CHINA169-BACKBONE CHINA UNICOM China169 Backbone, CN"},
                                 {"probes", 2},
                                 {"addr", "198.19.0.6"},
                                 {"rtt_ms", 12.5},
                                 {"icmp_type", 11},
                                 {"icmp_code", 0},
                                 {"quoted_ttl", 1},
                                 {"reply_ttl", 253},
                                 {"mpls", json::array({json{{"label", 16001}, {"exp", 0}, {"s", false}, {"ttl", 1}},
                                                       json{{"label", 24005}, {"exp", 5}, {"s", true}, {"ttl", 1}}})}},
                            json{{"ttl", 4},
                                 {"asn", 4837},
                                 {"asn_origin", "4837_9808"},
                                 {"probes", 1},
                                 {"addr", "198.19.0.9"},
                                 {"rtt_ms", 80.0},
                                 {"rtt_clock", "kernel_tx"},
                                 {"icmp_type", 11},
                                 {"icmp_code", 0},
                                 {"quoted_ttl", 2},
                                 {"reply_ttl", 252}},
                            json{{"ttl", 5},
                                 {"asn", nullptr},
                                 {"probes", 1},
                                 {"addr", "203.0.113.5"},
                                 {"rtt_ms", 90.0},
                                 {"icmp_type", 11},
                                 {"icmp_code", 0},
                                 {"reply_ttl", 251}},
                            json{{"ttl", 6},
                                 {"asn", 131279},
                                 {"asn_name", "STAR-KP"},
                                 {"probes", 1},
                                 {"addr", "175.45.176.71"},
                                 {"rtt_ms", 95.25},
                                 {"icmp_type", 0},
                                 {"icmp_code", 0},
                                 {"reply_ttl", 58},
                                 {"target", true}},
                        })}});
  const json j = outpost::to_json(rec);
  check_json(j, want);
  check_has(j, kTraceContract);
  for (const auto& hop : j.at("hops")) check_has(hop, {"ttl", "asn"});
}

TEST_CASE("json_lines: a baseline's hops taken from another path say when they were probed, with no RTT",
          "[records][json]") {
  TraceResult t;
  t.target = ip("175.45.176.71");
  t.started = at(k1615, 500000000);
  t.reached = true;
  t.stop_reason = "reached";
  TraceHop reused = answered(1, "198.18.0.1", 1ms, 11, 0, -1, -1);
  reused.rtt.reset();
  reused.probes_sent = 0;
  reused.reused_from = at(k1615 - 600, 250000000);
  t.hops.push_back(reused);
  TraceHop reused_silent = silent(2, 0);
  reused_silent.reused_from = at(k1615 - 600, 250000000);
  t.hops.push_back(reused_silent);
  t.hops.push_back(answered(3, "198.19.0.6", 12500us, 11, 0, 1, 253));
  TraceHop target = answered(4, "175.45.176.71", 95250us, 0, 0, -1, 58);
  target.is_target = true;
  t.hops.push_back(target);
  const json j = to_json(outpost::trace_record({"fra-1", "naenara", "kp", "icmp", 0, 0}, t, "baseline", table()));
  const json& hops = j.at("hops");
  REQUIRE(hops.size() == 4);
  CHECK(hops[0] == json{{"ttl", 1},
                        {"asn", 64500},
                        {"asn_name", "VANTAGE-NET"},
                        {"probes", 0},
                        {"reused_from", "2014-12-22T16:05:00.250000Z"},
                        {"addr", "198.18.0.1"},
                        {"icmp_type", 11},
                        {"icmp_code", 0}});
  CHECK(hops[1] == json{{"ttl", 2}, {"asn", nullptr}, {"probes", 0}, {"reused_from", "2014-12-22T16:05:00.250000Z"}});
  CHECK_FALSE(hops[2].contains("reused_from"));
  CHECK_FALSE(hops[3].contains("reused_from"));
}

TEST_CASE("json_lines: trace hops without an ASN table are all asn null", "[records][json]") {
  TraceResult t;
  t.target = ip("175.45.176.71");
  t.started = at(k1615);
  t.hops.push_back(answered(1, "198.18.0.1", 1ms, 11, 0, 1, 64));
  t.hops.push_back(silent(2, 2));
  const json j = outpost::to_json(outpost::trace_record({"fra-1", "naenara", "kp", "icmp", 0, 0}, t, "manual", {}));
  REQUIRE(j.at("hops").size() == 2);
  CHECK(j.at("hops")[0].at("asn").is_null());
  CHECK(j.at("hops")[0].at("addr") == "198.18.0.1");
  check_json(j.at("hops")[1], {{"ttl", 2}, {"asn", nullptr}, {"probes", 2}});
  CHECK(j.at("reason") == "manual");
  CHECK(j.at("reached") == false);
}

TEST_CASE("json_lines: a TCP trace carries its port; the target's SYN-ACK has no ICMP fields", "[records][json]") {
  TraceResult t;
  t.target = ip("175.45.176.71");
  t.spec.method = TraceMethod::tcp;
  t.spec.port = 443;
  t.started = at(k1615);
  t.flow_id = 33500;
  t.reached = true;
  t.stop_reason = "reached";
  t.hops.push_back(answered(1, "198.18.0.1", 1ms, 11, 0, 1, 64));
  TraceHop synack = answered(2, "175.45.176.71", 90ms, -1, -1, -1, 52);
  synack.is_target = true;
  t.hops.push_back(synack);
  const auto rec = outpost::trace_record({"fra-1", "naenara", "kp", "tcp", 443, 0}, t, "baseline", table());
  json want = trace_head("2014-12-22T16:15:00.000000Z", "175.45.176.71", 4, "tcp");
  want.update({{"port", 443},
               {"flow_id", 33500},
               {"reason", "baseline"},
               {"reached", true},
               {"stop_reason", "reached"},
               {"hops", json::array({json{{"ttl", 1},
                                          {"asn", 64500},
                                          {"asn_name", "VANTAGE-NET"},
                                          {"probes", 1},
                                          {"addr", "198.18.0.1"},
                                          {"rtt_ms", 1.0},
                                          {"icmp_type", 11},
                                          {"icmp_code", 0},
                                          {"quoted_ttl", 1},
                                          {"reply_ttl", 64}},
                                     json{{"ttl", 2},
                                          {"asn", 131279},
                                          {"asn_name", "STAR-KP"},
                                          {"probes", 1},
                                          {"addr", "175.45.176.71"},
                                          {"rtt_ms", 90.0},
                                          {"reply_ttl", 52},
                                          {"target", true}}})}});
  check_json(outpost::to_json(rec), want);
}

TEST_CASE("json_lines: a UDP trace over IPv6 that ended in an error", "[records][json]") {
  TraceResult t;
  t.target = ip("2001:db8::71");
  t.spec.method = TraceMethod::udp;
  t.spec.port = 33434;
  t.started = at(k1615);
  t.flow_id = 40001;
  t.stop_reason = "error";
  t.error = "sendto: Network is unreachable";
  t.hops.push_back(answered(1, "2001:db8:1::1", 2ms, 3, 0, 1, 64));  // ICMPv6 time exceeded
  t.hops.push_back(silent(2, 1));
  const auto rec = outpost::trace_record({"fra-1", "naenara", "kp", "udp", 0, 0}, t, "failure", table());
  json want = trace_head("2014-12-22T16:15:00.000000Z", "2001:db8::71", 6, "udp");
  want.update({{"port", 33434},
               {"flow_id", 40001},
               {"reason", "failure"},
               {"reached", false},
               {"stop_reason", "error"},
               {"error", "sendto: Network is unreachable"},
               {"hops", json::array({json{{"ttl", 1},
                                          {"asn", 64500},
                                          {"probes", 1},
                                          {"addr", "2001:db8:1::1"},
                                          {"rtt_ms", 2.0},
                                          {"icmp_type", 3},
                                          {"icmp_code", 0},
                                          {"quoted_ttl", 1},
                                          {"reply_ttl", 64}},
                                     json{{"ttl", 2}, {"asn", nullptr}, {"probes", 1}}})}});
  const json j = outpost::to_json(rec);
  check_json(j, want);
  check_has(j, kTraceContract);
}

// ---------------------------------------------------------------- event

namespace {

Verdict upstream_verdict() {
  Verdict v;
  v.where = Where::upstream;
  v.last_hop = ip("198.19.0.6");
  v.last_hop_asn = 4837;
  v.last_ttl = 7;
  v.baseline_reached_asn = 131279;
  v.trace = at(k1615, 500000000);
  v.last_hop_alive = true;
  v.have_baseline = true;
  v.reason = "the path dies after hop 7, the last router of the upstream AS4837";
  return v;
}

json upstream_verdict_json() {
  return {{"where", "upstream"},
          {"last_hop", "198.19.0.6"},
          {"last_hop_asn", 4837},
          {"last_ttl", 7},
          {"baseline_reached_asn", 131279},
          {"trace", "2014-12-22T16:15:00.500000Z"},
          {"have_baseline", true},
          {"last_hop_alive", true},
          {"reason", "the path dies after hop 7, the last router of the upstream AS4837"}};
}

DetectorEvent target_event(EventKind kind) {
  DetectorEvent e;
  e.kind = kind;
  e.target = "naenara";
  e.group = "kp";
  e.af = 4;
  e.start = at(k1615);
  return e;
}

json event_json(const DetectorEvent& e, const Verdict* v = nullptr) {
  return outpost::to_json(outpost::event_record("fra-1", e, v, at(k1615 + 60, 250000)));
}

json event_head(const char* kind) {
  return {{"type", "event"}, {"agent", "fra-1"}, {"time", "2014-12-22T16:16:00.000250Z"}, {"kind", kind}};
}

}  // namespace

TEST_CASE("json_lines: target events", "[records][json]") {
  SECTION("target_down: af, start, the last good probe, the verdict") {
    DetectorEvent e = target_event(EventKind::target_down);
    e.last_ok = at(k1615 - 30);
    const Verdict v = upstream_verdict();
    json want = event_head("target_down");
    want.update({{"target", "naenara"},
                 {"group", "kp"},
                 {"af", 4},
                 {"start", "2014-12-22T16:15:00.000000Z"},
                 {"last_ok", "2014-12-22T16:14:30.000000Z"},
                 {"verdict", upstream_verdict_json()}});
    const json j = event_json(e, &v);
    check_json(j, want);
    check_has(j, {"type", "agent", "time", "af", "kind", "target", "start", "verdict"});
    check_has(j.at("verdict"), {"where", "last_hop", "last_hop_asn", "last_ttl", "baseline_reached_asn", "trace"});
  }
  SECTION("target_up: end, and duration_s to the second (9 h 31 min)") {
    DetectorEvent e = target_event(EventKind::target_up);
    e.af = 6;
    e.end = at(k0146);
    json want = event_head("target_up");
    want.update({{"target", "naenara"},
                 {"group", "kp"},
                 {"af", 6},
                 {"start", "2014-12-22T16:15:00.000000Z"},
                 {"end", "2014-12-23T01:46:00.000000Z"},
                 {"duration_s", 34260.0}});
    const json j = event_json(e);
    check_json(j, want);
    CHECK(j.at("duration_s").get<double>() == 34260.0);
    check_has(j, {"type", "agent", "time", "af", "kind", "target", "start", "end", "duration_s"});
  }
  SECTION("duration_s keeps fractions of a second") {
    DetectorEvent e = target_event(EventKind::target_up);
    e.end = at(k1615 + 90, 500000000);
    CHECK(event_json(e).at("duration_s").dump() == "90.5");
  }
  SECTION("target_flapping: the number of changes") {
    DetectorEvent e = target_event(EventKind::target_flapping);
    e.changes = 6;
    json want = event_head("target_flapping");
    want.update({{"target", "naenara"},
                 {"group", "kp"},
                 {"af", 4},
                 {"start", "2014-12-22T16:15:00.000000Z"},
                 {"changes", 6}});
    check_json(event_json(e), want);
  }
  SECTION("target_stable: the state it settled in") {
    DetectorEvent e = target_event(EventKind::target_stable);
    e.state = "down";
    json want = event_head("target_stable");
    want.update({{"target", "naenara"},
                 {"group", "kp"},
                 {"af", 4},
                 {"start", "2014-12-22T16:15:00.000000Z"},
                 {"state", "down"}});
    check_json(event_json(e), want);
  }
}

TEST_CASE("json_lines: group and vantage events", "[records][json]") {
  SECTION("group_down: the targets that are down, the verdict") {
    DetectorEvent e;
    e.kind = EventKind::group_down;
    e.group = "kp";
    e.targets = {"naenara", "kcna", "rodong", "airkoryo"};
    e.start = at(k1615);
    const Verdict v = upstream_verdict();
    json want = event_head("group_down");
    want.update({{"group", "kp"},
                 {"targets", json::array({"naenara", "kcna", "rodong", "airkoryo"})},
                 {"start", "2014-12-22T16:15:00.000000Z"},
                 {"verdict", upstream_verdict_json()}});
    const json j = event_json(e, &v);
    check_json(j, want);
    check_has(j, {"type", "agent", "time", "kind", "group", "start", "verdict"});
  }
  SECTION("group_up: end and duration_s") {
    DetectorEvent e;
    e.kind = EventKind::group_up;
    e.group = "kp";
    e.start = at(k1615);
    e.end = at(k0146);
    json want = event_head("group_up");
    want.update({{"group", "kp"},
                 {"start", "2014-12-22T16:15:00.000000Z"},
                 {"end", "2014-12-23T01:46:00.000000Z"},
                 {"duration_s", 34260.0}});
    check_json(event_json(e), want);
  }
  SECTION("vantage_down: the control targets that are down, a verdict that blames us") {
    DetectorEvent e;
    e.kind = EventKind::vantage_down;
    e.group = "control";
    e.targets = {"anchor1", "anchor2"};
    e.start = at(k1615);
    Verdict v;
    v.where = Where::vantage;
    v.last_hop = ip("198.18.0.1");
    v.last_hop_asn = 64500;
    v.last_ttl = 1;
    v.reason = "the control targets fail too: the vantage point's own network";
    json want = event_head("vantage_down");
    want.update({{"group", "control"},
                 {"targets", json::array({"anchor1", "anchor2"})},
                 {"start", "2014-12-22T16:15:00.000000Z"},
                 {"verdict",
                  {{"where", "vantage"},
                   {"last_hop", "198.18.0.1"},
                   {"last_hop_asn", 64500},
                   {"last_ttl", 1},
                   {"baseline_reached_asn", nullptr},
                   {"trace", nullptr},
                   {"have_baseline", false},
                   {"reason", "the control targets fail too: the vantage point's own network"}}}});
    check_json(event_json(e, &v), want);
  }
  SECTION("vantage_up: end and duration_s") {
    DetectorEvent e;
    e.kind = EventKind::vantage_up;
    e.group = "control";
    e.start = at(k1615);
    e.end = at(k1615 + 300);
    json want = event_head("vantage_up");
    want.update({{"group", "control"},
                 {"start", "2014-12-22T16:15:00.000000Z"},
                 {"end", "2014-12-22T16:20:00.000000Z"},
                 {"duration_s", 300.0}});
    check_json(event_json(e), want);
  }
}

TEST_CASE("json_lines: a verdict that knows nothing is nulls, not absences", "[records][json]") {
  check_json(outpost::verdict_json(Verdict{}), {{"where", "unknown"},
                                                {"last_hop", nullptr},
                                                {"last_hop_asn", nullptr},
                                                {"last_ttl", 0},
                                                {"baseline_reached_asn", nullptr},
                                                {"trace", nullptr},
                                                {"have_baseline", false},
                                                {"reason", ""}});
  for (const Where w : {Where::upstream, Where::target_network, Where::before_upstream, Where::vantage, Where::unknown}) {
    Verdict v;
    v.where = w;
    CHECK(outpost::verdict_json(v).at("where") == std::string(outpost::to_string(w)));
  }
  Verdict v;
  v.last_hop_alive = false;
  CHECK(outpost::verdict_json(v).at("last_hop_alive") == false);
}

// ---------------------------------------------------------------- the variant and the line

TEST_CASE("json_lines: record_type and to_json for each alternative of Record", "[records][json]") {
  const Record probe = outpost::probe_record(labels("icmp"), result(ProbeStatus::timeout));
  SeriesWindow w;
  w.key = {"naenara", "kp", "icmp", 0, 4};
  w.length = 60s;
  const Record series = outpost::series_record("fra-1", w);
  TraceResult t;
  t.target = ip("175.45.176.71");
  const Record trace = outpost::trace_record(labels("icmp"), t, "manual", {});
  const Record event = outpost::event_record("fra-1", target_event(EventKind::target_up), nullptr, at(k1615));

  CHECK(outpost::record_type(probe) == "probe");
  CHECK(outpost::record_type(series) == "series");
  CHECK(outpost::record_type(trace) == "trace");
  CHECK(outpost::record_type(event) == "event");
  for (const Record* r : {&probe, &series, &trace, &event}) {
    const json j = outpost::to_json(*r);
    CHECK(j.at("type") == std::string(outpost::record_type(*r)));
    check_json(j, std::visit([](const auto& alt) { return outpost::to_json(alt); }, *r));
    check_has(j, {"type", "agent", "time"});
  }
}

TEST_CASE("json_lines: to_json_line is the object and exactly one newline", "[records][json]") {
  ProbeResult r = result(ProbeStatus::error);
  r.error = "two\nlines";
  const Record rec = outpost::probe_record(labels("icmp"), r);
  const std::string line = outpost::to_json_line(rec);
  REQUIRE_FALSE(line.empty());
  CHECK(line.back() == '\n');
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);  // the one in the message is escaped
  CHECK(line == outpost::to_json(rec).dump() + "\n");
  CHECK(json::parse(line).at("error") == "two\nlines");
}

TEST_CASE("json_lines: invalid UTF-8 in a field is replaced, never thrown on", "[records][json]") {
  ProbeResult r = result(ProbeStatus::reply, "198.18.0.53");
  r.rtt = 1ms;
  r.dns = dns_info();
  r.dns->rcode = "NOERROR";
  r.dns->answers = {"caf\xc3\xa9", "bad\xff\xfe", "cut\xe2\x82"};
  r.dns->transport = "udp";
  r.dns->last_ignored = "\x80";
  r.dns->ignored = 1;
  const Record rec = outpost::probe_record(labels("dns"), r);
  std::string line;
  REQUIRE_NOTHROW(line = outpost::to_json_line(rec));
  CHECK(line.back() == '\n');
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
  json back;
  REQUIRE_NOTHROW(back = json::parse(line));
  const std::string fffd = "\xef\xbf\xbd";  // U+FFFD REPLACEMENT CHARACTER
  CHECK(back.at("answers") == json::array({"caf\xc3\xa9", "bad" + fffd + fffd, "cut" + fffd}));
  CHECK(back.at("ignored_last") == fffd);
  CHECK(back.at("rcode") == "NOERROR");
  CHECK(back.at("answer_count") == 3);
}
