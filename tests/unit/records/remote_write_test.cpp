// The Prometheus remote-write encoding: the protobuf bytes of whole TimeSeries pinned
// (multi-byte varints, a double, zero values left out, a label value longer than 127 bytes
// and so two-byte lengths), the gauges of series and event records read back through a
// small protobuf reader (names, sorted labels, values in seconds, NaN left out), no series
// for probes and traces, concatenation as a WriteRequest, and the snappy body round trip.

#include <catch2/catch.hpp>
#include <snappy.h>

#include <bit>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "records.hpp"
#include "remote_write.hpp"

using namespace std::chrono_literals;
using outpost::DetectorEvent;
using outpost::EventKind;
using outpost::Record;
using outpost::RttSummary;
using outpost::SeriesWindow;
using outpost::WallTime;
using outpost::remote_write_series;

namespace {

WallTime at(std::int64_t seconds, std::int64_t nanos = 0) {
  return WallTime(std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos));
}

constexpr std::int64_t k1615 = 1419264900;  // 2014-12-22T16:15:00Z
constexpr std::int64_t k0146 = k1615 + 9 * 3600 + 31 * 60;

// "0a 1f" -> the two bytes.
std::string hex(std::string_view text) {
  std::string out;
  int high = -1;
  for (const char c : text) {
    if (c == ' ') continue;
    const int v = c <= '9' ? c - '0' : c - 'a' + 10;
    if (high < 0) high = v;
    else {
      out += static_cast<char>(high << 4 | v);
      high = -1;
    }
  }
  REQUIRE(high < 0);
  return out;
}

// A reader for what the tests check, apart from the encoder: WriteRequest field 1 entries.
struct Series {
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<std::pair<double, std::int64_t>> samples;
  std::string name() const { return labels.empty() ? "" : labels.front().second; }
};

struct Reader {
  std::string_view in;
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      REQUIRE(!in.empty());
      const auto b = static_cast<std::uint8_t>(in.front());
      in.remove_prefix(1);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    FAIL("varint too long");
    return 0;
  }
  std::string_view bytes() {
    const auto n = varint();
    REQUIRE(n <= in.size());
    const auto out = in.substr(0, n);
    in.remove_prefix(n);
    return out;
  }
  std::uint64_t fixed64() {
    REQUIRE(in.size() >= 8);
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<std::uint8_t>(in[i]);
    in.remove_prefix(8);
    return v;
  }
};

std::vector<Series> read_write_request(std::string_view body) {
  std::vector<Series> out;
  Reader request{body};
  while (!request.in.empty()) {
    REQUIRE(request.varint() == (1 << 3 | 2));
    Reader ts{request.bytes()};
    Series s;
    while (!ts.in.empty()) {
      const auto key = ts.varint();
      Reader m{ts.bytes()};
      if (key == (1 << 3 | 2)) {
        std::pair<std::string, std::string> label;
        while (!m.in.empty()) {
          const auto k = m.varint();
          REQUIRE((k == (1 << 3 | 2) || k == (2 << 3 | 2)));
          (k == (1 << 3 | 2) ? label.first : label.second) = std::string(m.bytes());
        }
        s.labels.push_back(label);
      } else {
        REQUIRE(key == (2 << 3 | 2));
        std::pair<double, std::int64_t> sample{0.0, 0};
        while (!m.in.empty()) {
          const auto k = m.varint();
          if (k == (1 << 3 | 1)) sample.first = std::bit_cast<double>(m.fixed64());
          else {
            REQUIRE(k == (2 << 3 | 0));
            sample.second = static_cast<std::int64_t>(m.varint());
          }
        }
        s.samples.push_back(sample);
      }
    }
    out.push_back(s);
  }
  return out;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

SeriesWindow window(const char* method, int port = 0) {
  SeriesWindow w;
  w.key = {"naenara", "kp", method, port, 4};
  w.start = at(k1615, 999999);  // 16:15:00.000999999: 1419264900000 ms
  w.length = 60s;
  w.sent = 20;
  w.received = 19;
  w.timeouts = 1;
  return w;
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

}  // namespace

TEST_CASE("remote_write: the protobuf bytes of a TimeSeries", "[records][remote_write]") {
  // Each Label is a TimeSeries field 1 (0a, length) holding name (0a, length, bytes)
  // and value (12, length, bytes); the Sample is field 2 (12, length) holding the double
  // (09, 8 bytes little-endian) and the timestamp (10, varint).
  const std::string labels = hex("0a 1f 0a 08") + "__name__" + hex("12 13") + "outpost_target_down" +  //
                             hex("0a 07 0a 02") + "af" + hex("12 01") + "4" +                          //
                             hex("0a 0e 0a 05") + "agent" + hex("12 05") + "fra-1" +                   //
                             hex("0a 0b 0a 05") + "group" + hex("12 02") + "kp" +                      //
                             hex("0a 11 0a 06") + "target" + hex("12 07") + "naenara";

  SECTION("target_down: value 1.0, the time in ms as a 6-byte varint") {
    const auto rec = outpost::event_record("fra-1", target_event(EventKind::target_down), nullptr, at(k1615 + 90));
    // 1419264990000 ms = b0 b6 a4 96 a7 29; 1.0 = 00 00 00 00 00 00 f0 3f.
    CHECK(remote_write_series(Record(rec)) ==
          hex("0a 6c") + labels + hex("12 10  09 00 00 00 00 00 00 f0 3f  10 b0 b6 a4 96 a7 29"));
  }
  SECTION("target_up: value 0 is left out of the Sample; the outage's duration follows") {
    DetectorEvent e = target_event(EventKind::target_up);
    e.end = at(k0146);
    const auto rec = outpost::event_record("fra-1", e, nullptr, at(k0146, 500000000));
    const std::string duration_labels =
        hex("0a 2b 0a 08") + "__name__" + hex("12 1f") + "outpost_outage_duration_seconds" + labels.substr(33);
    // 1419299160500 ms = b4 83 ca a6 a7 29; 34260.0 = 00 00 00 00 80 ba e0 40.
    CHECK(remote_write_series(Record(rec)) ==
          hex("0a 63") + labels + hex("12 07  10 b4 83 ca a6 a7 29") +  //
              hex("0a 78") + duration_labels + hex("12 10  09 00 00 00 00 80 ba e0 40  10 b4 83 ca a6 a7 29"));
  }
  SECTION("a label value of 130 bytes: two-byte lengths for it, its Label and the TimeSeries") {
    SeriesWindow w = window("tcp", 443);
    w.key.target = std::string(130, 't');
    w.key.af = 0;
    const std::string got = remote_write_series(Record(outpost::series_record("fra-1", w)));
    const std::string first =
        hex("0a fc 01") +                                                                        //
        hex("0a 1f 0a 08") + "__name__" + hex("12 13") + "outpost_probes_sent" +                //
        hex("0a 0e 0a 05") + "agent" + hex("12 05") + "fra-1" +                                  //
        hex("0a 0b 0a 05") + "group" + hex("12 02") + "kp" +                                     //
        hex("0a 0d 0a 06") + "method" + hex("12 03") + "tcp" +                                   //
        hex("0a 0b 0a 04") + "port" + hex("12 03") + "443" +                                     //
        hex("0a 8d 01 0a 06") + "target" + hex("12 82 01") + std::string(130, 't') +             //
        hex("12 10  09 00 00 00 00 00 00 34 40  10 a0 f7 9e 96 a7 29");  // 20.0 at 1419264900000 ms
    REQUIRE(got.size() > first.size());
    CHECK(got.substr(0, first.size()) == first);
  }
}

TEST_CASE("remote_write: series records", "[records][remote_write]") {
  SECTION("the gauges, sorted labels with __name__ first, RTTs in seconds, at the window's start") {
    SeriesWindow w = window("icmp");
    w.rtt = RttSummary{10.5, 12.25, 12, 15.5, 16, 1.5};
    const auto all = read_write_request(remote_write_series(Record(outpost::series_record("fra-1", w))));
    const std::vector<std::pair<std::string, double>> want = {
        {"outpost_probes_sent", 20},           {"outpost_probes_received", 19},
        {"outpost_loss_ratio", 0.05},          {"outpost_rtt_min_seconds", 0.0105},
        {"outpost_rtt_avg_seconds", 0.01225},  {"outpost_rtt_p50_seconds", 0.012},
        {"outpost_rtt_p95_seconds", 0.0155},   {"outpost_rtt_max_seconds", 0.016},
        {"outpost_rtt_stddev_seconds", 0.0015}};
    REQUIRE(all.size() == want.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
      INFO(want[i].first);
      CHECK(all[i].labels == Labels{{"__name__", want[i].first},
                                    {"af", "4"},
                                    {"agent", "fra-1"},
                                    {"group", "kp"},
                                    {"method", "icmp"},
                                    {"target", "naenara"}});
      REQUIRE(all[i].samples.size() == 1);
      CHECK(all[i].samples[0].first == Approx(want[i].second));
      CHECK(all[i].samples[0].second == 1419264900000);
    }
  }
  SECTION("no RTT: only the counts and the loss; empty labels left out") {
    SeriesWindow w = window("tcp", 22);
    w.key.group = "";
    w.received = 0;
    w.timeouts = 20;
    const auto all = read_write_request(remote_write_series(Record(outpost::series_record("fra-1", w))));
    REQUIRE(all.size() == 3);
    CHECK(all[0].labels == Labels{{"__name__", "outpost_probes_sent"}, {"af", "4"}, {"agent", "fra-1"},
                                  {"method", "tcp"}, {"port", "22"}, {"target", "naenara"}});
    CHECK(all[1].name() == "outpost_probes_received");
    CHECK(all[1].samples[0].first == 0.0);
    CHECK(all[2].name() == "outpost_loss_ratio");
    CHECK(all[2].samples[0].first == 1.0);
  }
  SECTION("a NaN value is not written; an infinite one is") {
    SeriesWindow w = window("icmp");
    w.rtt = RttSummary{1, 1, 1, 1, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()};
    const auto all = read_write_request(remote_write_series(Record(outpost::series_record("fra-1", w))));
    REQUIRE(all.size() == 8);
    CHECK(all[7].name() == "outpost_rtt_max_seconds");
    CHECK(all[7].samples[0].first == std::numeric_limits<double>::infinity());
    for (const auto& s : all) CHECK(s.name() != "outpost_rtt_stddev_seconds");
  }
}

TEST_CASE("remote_write: event records", "[records][remote_write]") {
  const WallTime now = at(k1615 + 90, 123456789);  // 1419264990123 ms
  struct Case {
    EventKind kind;
    std::string name;
    double value;
    Labels labels;
  };
  const std::vector<Case> cases = {
      {EventKind::target_down, "outpost_target_down", 1, {{"af", "4"}, {"agent", "fra-1"}, {"group", "kp"}, {"target", "naenara"}}},
      {EventKind::group_down, "outpost_group_down", 1, {{"agent", "fra-1"}, {"group", "kp"}}},
      {EventKind::group_up, "outpost_group_down", 0, {{"agent", "fra-1"}, {"group", "kp"}}},
      {EventKind::vantage_down, "outpost_vantage_down", 1, {{"agent", "fra-1"}, {"group", "kp"}}},
      {EventKind::vantage_up, "outpost_vantage_down", 0, {{"agent", "fra-1"}, {"group", "kp"}}},
      {EventKind::target_flapping, "outpost_target_flapping", 1, {{"agent", "fra-1"}, {"group", "kp"}, {"target", "naenara"}}},
      {EventKind::target_stable, "outpost_target_flapping", 0, {{"agent", "fra-1"}, {"group", "kp"}, {"target", "naenara"}}},
  };
  for (const auto& c : cases) {
    INFO(outpost::to_string(c.kind));
    DetectorEvent e = target_event(c.kind);
    const bool up = c.kind == EventKind::group_up || c.kind == EventKind::vantage_up;
    if (up || c.kind == EventKind::target_stable) e.end = at(k1615 + 60, 250000000);
    const auto all = read_write_request(remote_write_series(Record(outpost::event_record("fra-1", e, nullptr, now))));
    REQUIRE(all.size() == (up ? 2u : 1u));
    Labels want{{"__name__", c.name}};
    want.insert(want.end(), c.labels.begin(), c.labels.end());
    CHECK(all[0].labels == want);
    CHECK(all[0].samples == std::vector<std::pair<double, std::int64_t>>{{c.value, 1419264990123}});
    if (up) {
      want[0].second = "outpost_outage_duration_seconds";
      CHECK(all[1].labels == want);
      CHECK(all[1].samples == std::vector<std::pair<double, std::int64_t>>{{60.25, 1419264990123}});
    }
  }
  SECTION("a vantage event with no group carries only the agent") {
    DetectorEvent e;
    e.kind = EventKind::vantage_down;
    e.start = at(k1615);
    const auto all = read_write_request(remote_write_series(Record(outpost::event_record("fra-1", e, nullptr, now))));
    REQUIRE(all.size() == 1);
    CHECK(all[0].labels == Labels{{"__name__", "outpost_vantage_down"}, {"agent", "fra-1"}});
  }
  SECTION("an up event whose end is unknown has no duration") {
    const auto rec = outpost::event_record("fra-1", target_event(EventKind::target_up), nullptr, now);
    CHECK(read_write_request(remote_write_series(Record(rec))).size() == 1);
  }
}

TEST_CASE("remote_write: probes and traces have no series; records concatenate", "[records][remote_write]") {
  outpost::ProbeRecord probe;
  probe.labels = {"fra-1", "naenara", "kp", "icmp", 0, 4};
  probe.result.status = outpost::ProbeStatus::reply;
  probe.result.rtt = 1ms;
  CHECK(remote_write_series(Record(probe)).empty());
  CHECK(remote_write_series(Record(outpost::TraceRecord{})).empty());

  const std::string a = remote_write_series(Record(outpost::series_record("fra-1", window("icmp"))));
  const std::string b = remote_write_series(
      Record(outpost::event_record("fra-1", target_event(EventKind::target_down), nullptr, at(k1615 + 90))));
  const auto all = read_write_request(a + b);
  REQUIRE(all.size() == 4);
  CHECK(all[2].name() == "outpost_loss_ratio");
  CHECK(all[3].name() == "outpost_target_down");
}

TEST_CASE("remote_write: the body is a snappy block that gives the WriteRequest back", "[records][remote_write]") {
  CHECK(outpost::kRemoteWriteContentEncoding == "snappy");
  CHECK(outpost::kRemoteWriteContentType == "application/x-protobuf");
  CHECK(outpost::kRemoteWriteVersion == "0.1.0");

  std::string request;
  for (int i = 0; i < 50; ++i) {
    SeriesWindow w = window("icmp");
    w.key.target = "target-" + std::to_string(i);
    w.rtt = RttSummary{1, 2, 2, 3, 4, 0.5};
    request += remote_write_series(Record(outpost::series_record("fra-1", w)));
  }
  const std::string body = outpost::remote_write_body(request);
  CHECK(snappy::IsValidCompressedBuffer(body.data(), body.size()));
  CHECK(body.size() < request.size());
  // The raw block format starts with the uncompressed length as a varint (the framing
  // format would start with its stream identifier, ff 06 00 00 "sNaPpY").
  Reader head{body};
  CHECK(head.varint() == request.size());
  std::string back;
  REQUIRE(snappy::Uncompress(body.data(), body.size(), &back));
  CHECK(back == request);

  const std::string empty = outpost::remote_write_body("");
  REQUIRE(snappy::Uncompress(empty.data(), empty.size(), &back));
  CHECK(back.empty());
}
