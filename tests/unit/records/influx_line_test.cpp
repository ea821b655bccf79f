// The Influx line protocol encoding, pinned byte for byte: one line per series, probe and
// event record and their variants (tcp port, dns rcode, errors, verdicts, outages that
// ended), escaping of tag values and string fields, fields left out when absent or not
// finite, no line for traces, and the Record overload agreeing with the typed ones.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include "influx_line.hpp"
#include "records.hpp"

using namespace std::chrono_literals;
using outpost::DetectorEvent;
using outpost::EventKind;
using outpost::IpAddress;
using outpost::ProbeLabels;
using outpost::ProbeResult;
using outpost::ProbeStatus;
using outpost::Record;
using outpost::RttSummary;
using outpost::SeriesWindow;
using outpost::Verdict;
using outpost::WallTime;
using outpost::Where;
using outpost::influx_lines;

namespace {

WallTime at(std::int64_t seconds, std::int64_t nanos = 0) {
  return WallTime(std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos));
}

// 2014-12-22T16:15:00Z and 01:46 the next day, 9 h 31 min (34,260 s) later.
constexpr std::int64_t k1615 = 1419264900;
constexpr std::int64_t k0146 = k1615 + 9 * 3600 + 31 * 60;

IpAddress ip(const char* text) {
  const auto a = IpAddress::parse(text);
  REQUIRE(a);
  return *a;
}

SeriesWindow window(const char* method, int port = 0, int af = 4) {
  SeriesWindow w;
  w.key = {"naenara", "kp", method, port, af};
  w.start = at(k1615);
  w.length = 60s;
  w.sent = 20;
  w.received = 19;
  w.timeouts = 1;
  return w;
}

ProbeLabels labels(const char* method, int port = 0) { return {"fra-1", "naenara", "kp", method, port, 4}; }

ProbeResult result(ProbeStatus status) {
  ProbeResult r;
  r.status = status;
  r.target = ip("175.45.176.71");
  r.sent = at(k1615, 123456789);
  r.sequence = 42;
  return r;
}

std::string lines_of(const outpost::SeriesRecord& r) { return influx_lines(Record(r)); }

}  // namespace

TEST_CASE("influx_line: series records", "[records][influx]") {
  SECTION("an icmp window with RTTs: integers, floats, the bool, at the window's start") {
    SeriesWindow w = window("icmp");
    w.rtt = RttSummary{10.5, 12.25, 12, 15.5, 16, 1.5};
    CHECK(lines_of(outpost::series_record("fra-1", w)) ==
          "outpost_series,af=4,agent=fra-1,group=kp,method=icmp,target=naenara "
          "sent=20i,received=19i,timeouts=1i,unreachable=0i,errors=0i,loss=0.05,window_s=60,partial=false,"
          "rtt_min_ms=10.5,rtt_avg_ms=12.25,rtt_p50_ms=12,rtt_p95_ms=15.5,rtt_max_ms=16,rtt_stddev_ms=1.5 "
          "1419264900000000000\n");
  }
  SECTION("a partial tcp window with nothing answered: no RTT fields, the port, no af when unknown") {
    SeriesWindow w = window("tcp", 443, 0);
    w.length = 2500ms;
    w.sent = 3;
    w.received = 0;
    w.timeouts = 1;
    w.unreachable = 1;
    w.errors = 1;
    w.partial = true;
    CHECK(lines_of(outpost::series_record("fra-1", w)) ==
          "outpost_series,agent=fra-1,group=kp,method=tcp,port=443,target=naenara "
          "sent=3i,received=0i,timeouts=1i,unreachable=1i,errors=1i,loss=1,window_s=2.5,partial=true "
          "1419264900000000000\n");
  }
  SECTION("nothing sent: loss 0") {
    SeriesWindow w = window("icmp");
    w.sent = w.received = w.timeouts = 0;
    CHECK(lines_of(outpost::series_record("fra-1", w)) ==
          "outpost_series,af=4,agent=fra-1,group=kp,method=icmp,target=naenara "
          "sent=0i,received=0i,timeouts=0i,unreachable=0i,errors=0i,loss=0,window_s=60,partial=false "
          "1419264900000000000\n");
  }
  SECTION("NaN and infinite RTT fields are left out, the others stay") {
    SeriesWindow w = window("icmp");
    w.rtt = RttSummary{0.125, 0.125, 0.125, std::numeric_limits<double>::infinity(), 0.125,
                       std::numeric_limits<double>::quiet_NaN()};
    const std::string line = lines_of(outpost::series_record("fra-1", w));
    CHECK(line ==
          "outpost_series,af=4,agent=fra-1,group=kp,method=icmp,target=naenara "
          "sent=20i,received=19i,timeouts=1i,unreachable=0i,errors=0i,loss=0.05,window_s=60,partial=false,"
          "rtt_min_ms=0.125,rtt_avg_ms=0.125,rtt_p50_ms=0.125,rtt_max_ms=0.125 1419264900000000000\n");
    CHECK(line.find("nan") == std::string::npos);
    CHECK(line.find("inf") == std::string::npos);
  }
  SECTION("floats read back to the same double") {
    SeriesWindow w = window("icmp");
    w.rtt = RttSummary{0.1 + 0.2, 1.0 / 3.0, 1e-7, 123456.789, 2e21, 0};
    CHECK(lines_of(outpost::series_record("fra-1", w)) ==
          "outpost_series,af=4,agent=fra-1,group=kp,method=icmp,target=naenara "
          "sent=20i,received=19i,timeouts=1i,unreachable=0i,errors=0i,loss=0.05,window_s=60,partial=false,"
          "rtt_min_ms=0.30000000000000004,rtt_avg_ms=0.3333333333333333,rtt_p50_ms=1e-07,"
          "rtt_p95_ms=123456.789,rtt_max_ms=2e+21,rtt_stddev_ms=0 1419264900000000000\n");
  }
}

TEST_CASE("influx_line: escaping", "[records][influx]") {
  SECTION("tag values with spaces, commas and equals signs; empty tags left out") {
    SeriesWindow w = window("icmp", 0, 6);
    w.key.target = "web 1,dc=fra";
    w.key.group = "";
    CHECK(lines_of(outpost::series_record("vantage one", w)) ==
          "outpost_series,af=6,agent=vantage\\ one,method=icmp,target=web\\ 1\\,dc\\=fra "
          "sent=20i,received=19i,timeouts=1i,unreachable=0i,errors=0i,loss=0.05,window_s=60,partial=false "
          "1419264900000000000\n");
  }
  SECTION("backslashes in tag values: spelled \\x5c where a reader could take them for an escape") {
    SeriesWindow w = window("icmp");
    w.key.target = "odd\\";        // at the end: would escape the separator after it
    w.key.group = "a\\ b\\\\c\\\n";  // before an escaped space, another backslash, a newline
    const std::string line = lines_of(outpost::series_record("x\\y", w));  // harmless: as it is
    CHECK(line ==
          "outpost_series,af=4,agent=x\\y,group=a\\x5c\\ b\\x5c\\c\\x5c\\n,method=icmp,target=odd\\x5c "
          "sent=20i,received=19i,timeouts=1i,unreachable=0i,errors=0i,loss=0.05,window_s=60,partial=false "
          "1419264900000000000\n");
  }
  SECTION("a newline in a tag value is written as the two characters \\n") {
    SeriesWindow w = window("icmp");
    w.key.target = "two\nlines\r";
    const std::string line = lines_of(outpost::series_record("fra-1", w));
    CHECK(line.find(",target=two\\nlines\\r sent=20i,") != std::string::npos);
    CHECK(line.find('\n') == line.size() - 1);
    CHECK(line.find('\r') == std::string::npos);
  }
  SECTION("string fields: quotes and backslashes escaped, newlines as \\n, commas, spaces and = kept") {
    ProbeResult r = result(ProbeStatus::error);
    r.error = "connect: \"no route\", C:\\path=x\nsecond line";
    CHECK(influx_lines(Record(outpost::probe_record(labels("tcp", 443), r))) ==
          "outpost_probe,af=4,agent=fra-1,group=kp,method=tcp,port=443,status=error,target=naenara "
          "address=\"175.45.176.71\",error=\"connect: \\\"no route\\\", C:\\\\path=x\\nsecond line\","
          "answered=false 1419264900123456789\n");
  }
}

TEST_CASE("influx_line: probe records", "[records][influx]") {
  SECTION("an icmp reply: rtt, address, answered, at the send time in ns") {
    ProbeResult r = result(ProbeStatus::reply);
    r.rtt = 12345us;
    CHECK(influx_lines(Record(outpost::probe_record(labels("icmp"), r))) ==
          "outpost_probe,af=4,agent=fra-1,group=kp,method=icmp,status=reply,target=naenara "
          "rtt_ms=12.345,address=\"175.45.176.71\",answered=true 1419264900123456789\n");
  }
  SECTION("a tcp refused: the host answered, the port tag") {
    ProbeResult r = result(ProbeStatus::refused);
    r.rtt = 800us;
    CHECK(influx_lines(Record(outpost::probe_record(labels("tcp", 22), r))) ==
          "outpost_probe,af=4,agent=fra-1,group=kp,method=tcp,port=22,status=refused,target=naenara "
          "rtt_ms=0.8,address=\"175.45.176.71\",answered=true 1419264900123456789\n");
  }
  SECTION("a timeout: no rtt, not answered") {
    CHECK(influx_lines(Record(outpost::probe_record(labels("icmp"), result(ProbeStatus::timeout)))) ==
          "outpost_probe,af=4,agent=fra-1,group=kp,method=icmp,status=timeout,target=naenara "
          "address=\"175.45.176.71\",answered=false 1419264900123456789\n");
  }
  SECTION("a dns answer carries its rcode") {
    ProbeResult r = result(ProbeStatus::reply);
    r.rtt = 2ms;
    r.dns = outpost::DnsAnswerInfo{};
    r.dns->rcode = "NXDOMAIN";
    CHECK(influx_lines(Record(outpost::probe_record(labels("dns"), r))) ==
          "outpost_probe,af=4,agent=fra-1,group=kp,method=dns,status=reply,target=naenara "
          "rtt_ms=2,address=\"175.45.176.71\",rcode=\"NXDOMAIN\",answered=true 1419264900123456789\n");
  }
  SECTION("a dns probe with no answer has no rcode") {
    ProbeResult r = result(ProbeStatus::timeout);
    r.dns = outpost::DnsAnswerInfo{};
    CHECK(influx_lines(Record(outpost::probe_record(labels("dns"), r))) ==
          "outpost_probe,af=4,agent=fra-1,group=kp,method=dns,status=timeout,target=naenara "
          "address=\"175.45.176.71\",answered=false 1419264900123456789\n");
  }
  SECTION("a probe never attempted: the configured name, the error, the task's family") {
    const auto rec = outpost::probe_error_record(labels("icmp"), "naenara.com.kp", at(k1615), "");
    CHECK(influx_lines(Record(rec)) ==
          "outpost_probe,af=4,agent=fra-1,group=kp,method=icmp,status=error,target=naenara "
          "address=\"naenara.com.kp\",error=\"unknown error\",answered=false 1419264900000000000\n");
  }
}

TEST_CASE("influx_line: event records", "[records][influx]") {
  DetectorEvent down;
  down.kind = EventKind::target_down;
  down.target = "naenara";
  down.group = "kp";
  down.af = 4;
  down.start = at(k1615);
  down.last_ok = at(k1615 - 30);

  SECTION("a target going down with its verdict, at the record's time") {
    Verdict v;
    v.where = Where::upstream;
    v.last_hop = ip("192.0.2.1");
    v.last_hop_asn = 64500;
    v.last_ttl = 7;
    v.reason = "the last hop, \"AS64500\", answers; C:\\ is not a path";
    CHECK(influx_lines(Record(outpost::event_record("fra-1", down, &v, at(k1615 + 90)))) ==
          "outpost_event,af=4,agent=fra-1,group=kp,kind=target_down,target=naenara "
          "down=1i,start=1419264900000000000i,where=\"upstream\",last_hop=\"192.0.2.1\",last_hop_asn=64500i,"
          "last_ttl=7i,reason=\"the last hop, \\\"AS64500\\\", answers; C:\\\\ is not a path\" "
          "1419264990000000000\n");
  }
  SECTION("a verdict with no last hop known: no last_hop nor its ASN") {
    Verdict v;
    v.where = Where::unknown;
    v.reason = "no trace";
    CHECK(influx_lines(Record(outpost::event_record("fra-1", down, &v, at(k1615 + 90)))) ==
          "outpost_event,af=4,agent=fra-1,group=kp,kind=target_down,target=naenara "
          "down=1i,start=1419264900000000000i,where=\"unknown\",last_ttl=0i,reason=\"no trace\" "
          "1419264990000000000\n");
  }
  SECTION("the target back up: end and duration, down 0") {
    DetectorEvent up = down;
    up.kind = EventKind::target_up;
    up.end = at(k0146);
    CHECK(influx_lines(Record(outpost::event_record("fra-1", up, nullptr, at(k0146, 500000000)))) ==
          "outpost_event,af=4,agent=fra-1,group=kp,kind=target_up,target=naenara "
          "down=0i,start=1419264900000000000i,end=1419299160000000000i,duration_s=34260 "
          "1419299160500000000\n");
  }
  SECTION("the vantage down: no target, group or family tags") {
    DetectorEvent e;
    e.kind = EventKind::vantage_down;
    e.start = at(k1615, 250000000);
    e.targets = {"a", "b"};
    CHECK(influx_lines(Record(outpost::event_record("fra-1", e, nullptr, at(k1615 + 60)))) ==
          "outpost_event,agent=fra-1,kind=vantage_down down=1i,start=1419264900250000000i "
          "1419264960000000000\n");
  }
  SECTION("flapping is not down") {
    DetectorEvent e = down;
    e.kind = EventKind::target_flapping;
    e.changes = 6;
    CHECK(influx_lines(Record(outpost::event_record("fra-1", e, nullptr, at(k1615 + 60)))) ==
          "outpost_event,af=4,agent=fra-1,group=kp,kind=target_flapping,target=naenara "
          "down=0i,start=1419264900000000000i 1419264960000000000\n");
  }
}

TEST_CASE("influx_line: traces have no line; the Record overload is the typed one", "[records][influx]") {
  outpost::TraceRecord trace;
  trace.labels = labels("icmp");
  CHECK(influx_lines(Record(trace)).empty());
  CHECK(influx_lines(trace).empty());

  ProbeResult r = result(ProbeStatus::reply);
  r.rtt = 1ms;
  const auto probe = outpost::probe_record(labels("icmp"), r);
  CHECK(influx_lines(Record(probe)) == influx_lines(probe));
  const auto series = outpost::series_record("fra-1", window("icmp"));
  CHECK(influx_lines(Record(series)) == influx_lines(series));
}
