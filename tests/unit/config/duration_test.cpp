// parse_duration / format_duration: the forms users write and the messages they get.

#include <catch2/catch.hpp>

#include <string>

#include "outpost_config.hpp"

using namespace std::chrono_literals;
using outpost::Duration;
using outpost::format_duration;
using outpost::parse_duration;

namespace {

Duration parsed(const std::string& text) {
  std::string error;
  auto d = parse_duration(text, &error);
  INFO(text << ": " << error);
  REQUIRE(d.has_value());
  CHECK(error.empty());
  return *d;
}

std::string rejected(const std::string& text) {
  std::string error;
  auto d = parse_duration(text, &error);
  INFO(text);
  CHECK_FALSE(d.has_value());
  return error;
}

}  // namespace

TEST_CASE("parse_duration accepts a number and a unit", "[duration]") {
  CHECK(parsed("500ms") == 500ms);
  CHECK(parsed("2s") == 2s);
  CHECK(parsed("5m") == 5min);
  CHECK(parsed("1h") == 1h);
  CHECK(parsed("100us") == 100us);
  CHECK(parsed("7ns") == 7ns);
  CHECK(parsed("1.5s") == 1500ms);
  CHECK(parsed("0.25s") == 250ms);
  CHECK(parsed("1.50s") == 1500ms);
  CHECK(parsed("1.5m") == 90s);
  CHECK(parsed("0.001ms") == 1us);
  CHECK(parsed("2.0h") == 2h);
  CHECK(parsed("+3s") == 3s);
  CHECK(parsed("0.000000001s") == 1ns);
  CHECK(parsed("8760h") == 8760h);  // the longest: a year
  CHECK(parsed("525600m") == 8760h);
}

TEST_CASE("parse_duration rejects with a clear message", "[duration]") {
  CHECK(rejected("") == "empty duration (expected e.g. 500ms, 2s, 5m, 1h)");
  CHECK(rejected("30") == "'30' has no unit (expected ns, us, ms, s, m or h, e.g. 30s)");
  CHECK(rejected("1.5") == "'1.5' has no unit (expected ns, us, ms, s, m or h, e.g. 1.5s)");
  CHECK(rejected("0s") == "'0s': a duration must be greater than zero");
  CHECK(rejected("0.0ms") == "'0.0ms': a duration must be greater than zero");
  CHECK(rejected("-1s") == "'-1s': a duration must be greater than zero");
  CHECK(rejected("5x") == "'5x': unknown unit 'x' (expected ns, us, ms, s, m or h)");
  CHECK(rejected("5sec") == "'5sec': unknown unit 'sec' (expected ns, us, ms, s, m or h)");
  CHECK(rejected("5S") == "'5S': unknown unit 'S' (expected ns, us, ms, s, m or h)");
  CHECK(rejected("2 s") == "'2 s': unknown unit ' s' (expected ns, us, ms, s, m or h)");
  CHECK(rejected("1h30m") == "'1h30m': unknown unit 'h30m' (expected ns, us, ms, s, m or h)");
  CHECK(rejected("s") == "'s' is not a duration (expected e.g. 500ms, 2s, 5m, 1h)");
  CHECK(rejected("fast") == "'fast' is not a duration (expected e.g. 500ms, 2s, 5m, 1h)");
  CHECK(rejected(".5s") == "'.5s' is not a duration (expected e.g. 500ms, 2s, 5m, 1h)");
  CHECK(rejected("1.s") == "'1.s' is not a duration (expected e.g. 500ms, 2s, 5m, 1h)");
  CHECK(rejected("--1s") == "'--1s' is not a duration (expected e.g. 500ms, 2s, 5m, 1h)");
  CHECK(rejected("1.5ns") == "'1.5ns' is finer than a nanosecond");
  CHECK(rejected("1.0000000001s") == "'1.0000000001s' is finer than a nanosecond");
  CHECK(rejected("0.1234567890123456789012345s") == "'0.1234567890123456789012345s' is finer than a nanosecond");
  CHECK(rejected("2562048h") == "'2562048h' is too long (at most 8760h, a year)");
  CHECK(rejected("99999999999999999999s") == "'99999999999999999999s' is too long (at most 8760h, a year)");
}

TEST_CASE("parse_duration refuses anything longer than a year, so no clock plus it overflows", "[duration]") {
  CHECK(outpost::kMaxDuration == 8760h);
  // Fits in int64 nanoseconds, but the steady clock plus it overflows.
  CHECK(rejected("2562047h") == "'2562047h' is too long (at most 8760h, a year)");
  CHECK(rejected("9223372036854775807ns") == "'9223372036854775807ns' is too long (at most 8760h, a year)");
  CHECK(rejected("8760.000000001h") == "'8760.000000001h' is too long (at most 8760h, a year)");
  CHECK(rejected("31536000000000001ns") == "'31536000000000001ns' is too long (at most 8760h, a year)");
  CHECK(rejected("366d") == "'366d': unknown unit 'd' (expected ns, us, ms, s, m or h)");
  // The longest accepted, added to a steady clock reading of a century of
  // uptime, is still far from the top of the representation.
  const auto century = std::chrono::steady_clock::time_point(std::chrono::hours(24 * 365 * 100));
  CHECK((std::chrono::steady_clock::time_point::max() - century) / parsed("8760h") > 100);
}

TEST_CASE("parse_duration works without an error string", "[duration]") {
  CHECK_FALSE(parse_duration("nope", nullptr).has_value());
  CHECK(parse_duration("1s", nullptr) == Duration(1s));
}

TEST_CASE("format_duration gives the shortest exact form", "[duration]") {
  CHECK(format_duration(500ms) == "500ms");
  CHECK(format_duration(2s) == "2s");
  CHECK(format_duration(5min) == "5m");
  CHECK(format_duration(1h) == "1h");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(90s) == "90s");
  CHECK(format_duration(120min) == "2h");
  CHECK(format_duration(100us) == "100us");
  CHECK(format_duration(1001ns) == "1001ns");
  CHECK(format_duration(Duration::zero()) == "0s");
  CHECK(format_duration(-2s) == "-2s");
}

TEST_CASE("format_duration and parse_duration round-trip", "[duration]") {
  for (Duration d : {Duration(1ns), Duration(999ns), Duration(1us), Duration(1500us), Duration(250ms),
                     Duration(1500ms), Duration(59s), Duration(61s), Duration(90min), Duration(25h)}) {
    INFO(d.count() << "ns");
    CHECK(parsed(format_duration(d)) == d);
  }
  for (const char* text : {"500ms", "2s", "5m", "1h", "100us", "7ns"}) {
    CHECK(format_duration(parsed(text)) == text);
  }
}
