#include <catch2/catch.hpp>
#include <limits>
#include <sstream>

#include "report_reader.hpp"

using namespace outpost::report;

namespace {

const char* const kSeries =
    R"({"type":"series","agent":"fra","time":"2026-12-01T00:00:00Z","target":"t1","group":"kp","method":"icmp",)"
    R"("window_start":"2026-12-01T00:00:00Z","window_s":60,"sent":10,"received":9,"loss":0.1,"rtt_min_ms":1,)"
    R"("rtt_p50_ms":2,"rtt_p95_ms":3,"rtt_max_ms":4,"future_field":{"x":1}})";

Dataset read(const std::string& text, ReadOptions options = {}) {
  Reader reader(std::move(options));
  std::istringstream in(text);
  reader.read(in, "r.jsonl");
  return reader.finish();
}

}  // namespace

TEST_CASE("report reader: RFC 3339 times") {
  CHECK(parse_rfc3339("1970-01-01T00:00:00Z") == 0.0);
  CHECK(*parse_rfc3339("2014-12-22T16:15:00.123456Z") == Approx(1419264900.123456));
  CHECK(*parse_rfc3339("2014-12-23T01:15:00+09:00") == Approx(1419264900));
  CHECK(*parse_rfc3339("2014-12-22T11:15:00-05:00") == Approx(1419264900));
  for (const char* bad : {"", "2014-12-22", "2014-12-22T16:15:00", "2014-13-22T16:15:00Z", "2014-12-22T16:15:00.Z",
                          "2014-12-22T16:15:00Zjunk", "yesterday"})
    CHECK(!parse_rfc3339(bad));
  CHECK(utc_text(1419264900.9) == "2014-12-22 16:15:00");
  CHECK(duration_text(34260) == "9 h 31 min");
  CHECK(duration_text(12.4) == "12 s");
  // To the nearest second, halves up; times before 1970 to the second they fall in.
  CHECK(duration_text(59.49) == "59 s");
  CHECK(duration_text(59.5) == "1 min 0 s");
  CHECK(duration_text(0.5) == "1 s");
  CHECK(duration_text(0.4999) == "0 s");
  CHECK(utc_text(-0.5) == "1969-12-31 23:59:59");
  CHECK(utc_text(-1.0) == "1969-12-31 23:59:59");
  CHECK(utc_text(-1.25) == "1969-12-31 23:59:58");
  CHECK(utc_text(0.999) == "1970-01-01 00:00:00");
}

TEST_CASE("report reader: bad lines are skipped with their line numbers, the rest is kept") {
  const std::string text = std::string(kSeries) + "\n" +                                   // 1 fine (an extra field)
                           R"({"type":"series","agent":"fra","time":"2026-12-01T00:01)" "\n"  // 2 cut short
                           "\n"                                                                // 3 empty: not a problem
                           R"({"type":"probe","agent":"fra","time":"x"})" "\n"              // 4 another type: ignored
                           R"({"type":"whatever","agent":"fra"})" "\n"                       // 5 unknown type: ignored
                           R"([1,2,3])" "\n"                                                   // 6 not an object
                           R"({"type":"series","agent":"fra","time":"2026-12-01T00:01:00Z","target":"t1","group":"kp",)"
                           R"("method":"icmp","window_start":"2026-12-01T00:01:00Z","window_s":60,"received":1,"loss":0})"
                           "\n"  // 7 no sent
                           + std::string(kSeries) + std::string(kSeries) + "\n"  // 8 two records on one line
                           R"({"type":"event","agent":"fra","time":"2026-12-01T00:02:00Z","kind":"target_down",)"
                           R"("target":"t1","group":"kp","start":"yesterday"})" "\n"  // 9 a bad time
                           R"({"type":"event","agent":"fra","time":"2026-12-01T00:02:00Z","kind":"target_up",)"
                           R"("target":"t1","group":"kp","start":"2026-12-01T00:01:00Z"})" "\n"  // 10 an up without end
                           R"({"agent":"fra"})" "\n"                                             // 11 no type
                           R"({"type":"event","agent":"fra","time":"2026-12-01T00:02:00Z","kind":"target_flapping"})";  // 12 ignored, no newline
  const Dataset d = read(text);
  REQUIRE(d.problems.size() == 7);
  CHECK(d.bad_lines == 7);
  std::vector<std::size_t> lines;
  for (const auto& p : d.problems) {
    CHECK(p.file == "r.jsonl");
    lines.push_back(p.line);
  }
  CHECK(lines == std::vector<std::size_t>{2, 6, 7, 8, 9, 10, 11});
  CHECK(d.problems[2].message == "missing field 'sent'");
  CHECK(d.problems[4].message == "field 'start' is not an RFC 3339 time");
  CHECK(d.problems[5].message == "missing field 'end'");
  CHECK(d.problems[6].message == "missing field 'type'");
  CHECK(d.records_other == 3);
  CHECK(d.records_used == 1);
  REQUIRE(d.series.size() == 1);
  CHECK(d.series[0].windows.size() == 1);
  CHECK(*d.series[0].windows[0].rtt_p95 == 3);
}

TEST_CASE("report reader: series per agent, target and method; the period and the group filter") {
  std::string text;
  for (int i = 0; i < 5; ++i) {
    std::string line = kSeries;
    const std::string minute = "00:0" + std::to_string(4 - i) + ":00Z";  // written out of order
    for (auto at = line.find("00:00:00Z"); at != std::string::npos; at = line.find("00:00:00Z", at + 9))
      line.replace(at, 9, minute);
    text += line + "\n";
  }
  text += kSeries;  // the same window again (the file read twice)
  text += "\n";
  std::string other = kSeries;
  other.replace(other.find("\"agent\":\"fra\""), 13, "\"agent\":\"ams\"");
  other.replace(other.find("\"method\":\"icmp\""), 15, "\"method\":\"tcp\",\"port\":80");
  text += other + "\n";
  const Dataset all = read(text);
  REQUIRE(all.series.size() == 2);
  CHECK(all.series[0].windows.size() == 5);
  CHECK(all.series[0].windows.front().start < all.series[0].windows.back().start);
  CHECK(all.series[1].agent == "ams");
  CHECK(all.series[1].method == "tcp:80");
  CHECK(all.latest == *parse_rfc3339("2026-12-01T00:05:00Z"));

  ReadOptions period;
  period.from = parse_rfc3339("2026-12-01T00:02:30Z");
  period.to = parse_rfc3339("2026-12-01T00:03:10Z");
  const Dataset some = read(text, period);
  REQUIRE(some.series.size() == 1);
  CHECK(some.series[0].windows.size() == 2);  // 00:02 and 00:03 overlap the period
  CHECK(some.outside == 5);

  ReadOptions group;
  group.group = "other";
  CHECK(read(text, group).series.empty());
}

TEST_CASE("report reader: a file read twice counts once") {
  const std::string text =
      R"({"type":"trace","agent":"fra","time":"2026-12-01T00:00:00.5Z","target":"t1","group":"kp","address":"198.18.0.1",)"
      R"("method":"icmp","reason":"baseline","reached":true,"hops":[{"ttl":1,"addr":"198.19.0.2","asn":64496}]})" "\n"
      R"({"type":"event","agent":"fra","time":"2026-12-01T00:02:00Z","kind":"target_down","target":"t1","group":"kp",)"
      R"("start":"2026-12-01T00:01:00Z"})" "\n";
  Reader reader({});
  for (int i = 0; i < 2; ++i) {
    std::istringstream in(text);
    reader.read(in, "r.jsonl");
  }
  const Dataset d = reader.finish();
  CHECK(d.traces.size() == 1);
  CHECK(d.events.size() == 1);
  CHECK(d.traces[0].hops.size() == 1);
  CHECK(*d.traces[0].hops[0].asn == 64496);
}

TEST_CASE("report reader: a line too long is skipped without being kept; lines around it are read") {
  std::string text = std::string(kSeries) + "\n" + std::string(kMaxLineBytes + 10, 'x') + "\n" + kSeries;
  text.replace(text.rfind("00:00:00Z\",\"target"), 9, "00:01:00Z");
  const Dataset d = read(text);
  REQUIRE(d.problems.size() == 1);
  CHECK(d.problems[0].line == 2);
  CHECK(d.problems[0].message == "longer than 4 MiB: not a record");
  REQUIRE(d.series.size() == 1);
  CHECK(d.series[0].windows.size() == 1);  // both lines are of one window
  CHECK(d.records_used == 2);
  // A line exactly at the bound is read (and is no JSON).
  const Dataset edge = read(std::string(kMaxLineBytes, 'y'));
  REQUIRE(edge.problems.size() == 1);
  CHECK(edge.problems[0].message.find("not a JSON object") == 0);
}

TEST_CASE("report reader: a window of 6e30 s or a port of 1e30 is a bad line, not a time_t overflow") {
  // Found by fuzz_report: window_s 6066666666666666666666666666666 made the
  // period's end a double no time_t holds, cast while writing the page.
  std::string huge_window = kSeries;
  huge_window.replace(huge_window.find("\"window_s\":60"), 13, "\"window_s\":6066666666666666666666666666666");
  std::string huge_port = kSeries;
  huge_port.replace(huge_port.find("\"method\":\"icmp\""), 15, "\"method\":\"tcp\",\"port\":1e30");
  const Dataset d = read(huge_window + "\n" + huge_port + "\n" + kSeries + "\n");
  REQUIRE(d.problems.size() == 2);
  CHECK(d.problems[0].line == 1);
  CHECK(d.problems[0].message == "field 'window_s' is not in (0, 1 year]");
  CHECK(d.problems[1].line == 2);
  CHECK(d.problems[1].message == "field 'port' is not a port");
  CHECK(d.records_used == 1);
  // And what writes times and durations takes any double.
  CHECK(utc_text(6.07e30) == "(out of range)");
  CHECK(utc_text(-1e300) == "(out of range)");
  CHECK(utc_text(std::numeric_limits<double>::quiet_NaN()) == "(out of range)");
  CHECK(utc_text(253402300799.0) == "9999-12-31 23:59:59");
  CHECK(duration_text(std::numeric_limits<double>::quiet_NaN()) == "0 s");
  CHECK(duration_text(1e300) == duration_text(1e15));
}
