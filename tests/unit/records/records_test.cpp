// Records as CONTRACT.md fixes them: RFC 3339 times (UTC, microseconds, 'Z')
// and the fields of a `probe` record for each status.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "json_lines.hpp"
#include "records.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using outpost::IpAddress;
using outpost::ProbeLabels;
using outpost::ProbeResult;
using outpost::ProbeStatus;
using outpost::rfc3339;
using outpost::WallTime;

namespace {

WallTime at(std::int64_t seconds, std::int64_t nanos = 0) {
  return WallTime(std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos));
}

// 2014-12-22T16:15:00Z, the moment in ARCHITECTURE.md's story.
constexpr std::int64_t k1615 = 1419264900;

ProbeLabels icmp_labels() { return {"fra-1", "naenara", "kp", "icmp", 0}; }

ProbeResult result(ProbeStatus status) {
  ProbeResult r;
  r.status = status;
  r.target = *IpAddress::parse("175.45.176.71");
  r.sent = at(k1615, 123456789);
  r.sent_kernel_stamp = true;
  r.sequence = 42;
  return r;
}

// The fields every probe record has, whatever its status.
void check_common(const json& j, const ProbeLabels& labels, const std::string& status) {
  CHECK(j.at("type") == "probe");
  CHECK(j.at("agent") == labels.agent);
  CHECK(j.at("time") == "2014-12-22T16:15:00.123456Z");
  CHECK(j.at("target") == labels.target);
  CHECK(j.at("group") == labels.group);
  CHECK(j.at("address") == "175.45.176.71");
  CHECK(j.at("method") == labels.method);
  CHECK(j.at("status") == status);
}

}  // namespace

TEST_CASE("rfc3339: UTC, six digits of microseconds, a Z", "[records]") {
  CHECK(rfc3339(at(k1615, 123456789)) == "2014-12-22T16:15:00.123456Z");  // nanoseconds cut, not rounded
  CHECK(rfc3339(at(k1615)) == "2014-12-22T16:15:00.000000Z");
  CHECK(rfc3339(at(k1615, 999999999)) == "2014-12-22T16:15:00.999999Z");
  CHECK(rfc3339(at(k1615, 1000)) == "2014-12-22T16:15:00.000001Z");
  CHECK(rfc3339(at(0)) == "1970-01-01T00:00:00.000000Z");
  CHECK(rfc3339(at(951782400)) == "2000-02-29T00:00:00.000000Z");  // a leap day
  CHECK(rfc3339(at(1456790399, 500000000)) == "2016-02-29T23:59:59.500000Z");
  CHECK(rfc3339(at(4102444800)) == "2100-01-01T00:00:00.000000Z");
  CHECK(rfc3339(at(-1, 0)) == "1969-12-31T23:59:59.000000Z");
  CHECK(rfc3339(WallTime(-1000ns)) == "1969-12-31T23:59:59.999999Z");
}

TEST_CASE("rfc3339: the same as gmtime_r and printf, over the clock's whole range (1678 to 2261)", "[records]") {
  auto reference = [](WallTime t) {
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
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
    return std::string(buf);
  };
  std::mt19937_64 rng(20141222);
  // Anywhere a WallTime (64-bit nanoseconds) reaches, and a dense run around now.
  std::uniform_int_distribution<std::int64_t> any_second(-9200000000LL, 9200000000LL);
  std::uniform_int_distribution<std::int64_t> nanos(-999999999, 999999999);
  for (int i = 0; i < 200000; ++i) {
    const std::int64_t s = i % 4 == 0 ? any_second(rng) : k1615 + (any_second(rng) % (86400LL * 366 * 40));
    const WallTime t = at(s, nanos(rng));
    INFO(t.time_since_epoch().count());
    REQUIRE(rfc3339(t) == reference(t));
  }
  for (std::int64_t s : {-86401LL, -86400LL, -1LL, 0LL, 86399LL, 951868799LL, 951868800LL, 4107542399LL})
    CHECK(rfc3339(at(s)) == reference(at(s)));
}

TEST_CASE("rfc3339 does not depend on the local time zone", "[records]") {
  const char* old = std::getenv("TZ");
  const std::string saved = old ? old : "";
  setenv("TZ", "KST-9", 1);  // POSIX form: UTC+9, no zone database needed
  tzset();
  const std::string s = rfc3339(at(k1615, 123456789));
  if (old) setenv("TZ", saved.c_str(), 1);
  else unsetenv("TZ");
  tzset();
  CHECK(s == "2014-12-22T16:15:00.123456Z");
}

TEST_CASE("to_ms converts durations to fractional milliseconds", "[records]") {
  CHECK(outpost::to_ms(250us) == 0.25);
  CHECK(outpost::to_ms(12345678ns) == Approx(12.345678));
  CHECK(outpost::to_ms(2s) == 2000.0);
}

TEST_CASE("probe record: reply", "[records]") {
  ProbeResult r = result(ProbeStatus::reply);
  r.rtt = 250us;
  r.reply_from = r.target;
  r.reply_ttl = 57;
  r.icmp_type = 0;
  r.icmp_code = 0;
  const json j = outpost::to_json(outpost::probe_record(icmp_labels(), r));
  INFO(j.dump());
  check_common(j, icmp_labels(), "reply");
  REQUIRE(j.contains("rtt_ms"));
  CHECK(j.at("rtt_ms").is_number());
  CHECK(j.at("rtt_ms").get<double>() == 0.25);
  CHECK_FALSE(j.contains("error"));
  CHECK_FALSE(j.contains("port"));
}

TEST_CASE("probe record: timeout has no rtt_ms and no error", "[records]") {
  const json j = outpost::to_json(outpost::probe_record(icmp_labels(), result(ProbeStatus::timeout)));
  INFO(j.dump());
  check_common(j, icmp_labels(), "timeout");
  CHECK_FALSE(j.contains("rtt_ms"));
  CHECK_FALSE(j.contains("error"));
  CHECK_FALSE(j.contains("port"));
}

TEST_CASE("probe record: unreachable, answered by a router's ICMP error", "[records]") {
  ProbeResult r = result(ProbeStatus::unreachable);
  r.rtt = 1500us;
  r.reply_from = *IpAddress::parse("198.18.0.254");
  r.reply_ttl = 250;
  r.icmp_type = 3;
  r.icmp_code = 1;
  r.error = "host unreachable";
  const json j = outpost::to_json(outpost::probe_record(icmp_labels(), r));
  INFO(j.dump());
  check_common(j, icmp_labels(), "unreachable");
  CHECK(j.at("rtt_ms").get<double>() == 1.5);
  CHECK_FALSE(j.contains("error"));  // only for status error
  // Extra fields, allowed by the contract: who answered and why.
  CHECK(j.at("reply_from") == "198.18.0.254");
  CHECK(j.at("icmp_type") == 3);
  CHECK(j.at("icmp_code") == 1);
  CHECK(j.at("detail") == "host unreachable");
}

TEST_CASE("probe record: error carries its message and no rtt_ms", "[records]") {
  ProbeResult r = result(ProbeStatus::error);
  r.sent_kernel_stamp = false;
  r.error = "sendto 175.45.176.71: Network is unreachable";
  json j = outpost::to_json(outpost::probe_record(icmp_labels(), r));
  INFO(j.dump());
  check_common(j, icmp_labels(), "error");
  CHECK(j.at("error") == "sendto 175.45.176.71: Network is unreachable");
  CHECK_FALSE(j.contains("rtt_ms"));

  r.error.clear();  // never an error record without a message
  j = outpost::to_json(outpost::probe_record(icmp_labels(), r));
  CHECK(j.at("error").is_string());
  CHECK_FALSE(j.at("error").get<std::string>().empty());
}

TEST_CASE("probe record: port only for tcp", "[records]") {
  ProbeLabels tcp = icmp_labels();
  tcp.method = "tcp";
  tcp.port = 80;
  ProbeResult r = result(ProbeStatus::refused);
  r.rtt = 3ms;
  json j = outpost::to_json(outpost::probe_record(tcp, r));
  INFO(j.dump());
  check_common(j, tcp, "refused");
  CHECK(j.at("port") == 80);
  CHECK(j.at("port").is_number_integer());
  CHECK(j.at("rtt_ms").get<double>() == 3.0);

  ProbeLabels icmp_with_port = icmp_labels();
  icmp_with_port.port = 80;  // a stray port on an icmp probe is not written
  CHECK_FALSE(outpost::to_json(outpost::probe_record(icmp_with_port, result(ProbeStatus::timeout))).contains("port"));
}

TEST_CASE("probe_error_record: a probe that could not be attempted", "[records]") {
  ProbeLabels labels = icmp_labels();
  labels.target = "naenara";
  const json j = outpost::to_json(outpost::probe_error_record(labels, "", at(k1615, 123456789), "naenara.com.kp: name not resolved"));
  INFO(j.dump());
  CHECK(j.at("type") == "probe");
  CHECK(j.at("agent") == "fra-1");
  CHECK(j.at("time") == "2014-12-22T16:15:00.123456Z");
  CHECK(j.at("target") == "naenara");
  CHECK(j.at("group") == "kp");
  CHECK(j.at("method") == "icmp");
  CHECK(j.at("status") == "error");
  CHECK(j.at("error") == "naenara.com.kp: name not resolved");
  CHECK(j.contains("address"));
  CHECK_FALSE(j.contains("rtt_ms"));
}

TEST_CASE("to_json_line: a probe record's line is byte for byte the library's dump of to_json", "[records]") {
  std::mt19937_64 rng(175457671);
  auto pick = [&](auto lo, auto hi) {
    return std::uniform_int_distribution<long long>(static_cast<long long>(lo), static_cast<long long>(hi))(rng);
  };
  // Text of every kind: plain, quotes and backslashes, control bytes, UTF-8,
  // broken UTF-8, DEL, longer than the record's cap.
  auto text = [&] {
    static const std::vector<std::string> pieces = {"naenara", "kp", "\"", "\\", "\n", "\t", std::string(1, '\0'),
                                                    "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac",
                                                    "\xf0\x9f\x8c\x8d", "\xc3", "\xff", "\xed\xa0\x80", " ",
                                                    "175.45.176.71", "{}", "/"};
    std::string s;
    const long long n = pick(0, 3) == 0 ? pick(100, 400) : pick(0, 6);
    for (long long i = 0; i < n; ++i) s += pieces[static_cast<std::size_t>(pick(0, pieces.size() - 1))];
    return s;
  };
  const std::vector<std::string> methods = {"icmp", "tcp", "dns", "udp", ""};
  const std::vector<ProbeStatus> statuses = {ProbeStatus::reply, ProbeStatus::timeout, ProbeStatus::unreachable,
                                             ProbeStatus::error, ProbeStatus::refused};
  for (int i = 0; i < 20000; ++i) {
    outpost::ProbeRecord p;
    p.labels = {text(), text(), text(), methods[static_cast<std::size_t>(pick(0, methods.size() - 1))],
                static_cast<int>(pick(0, 65535)), static_cast<int>(pick(0, 1) * 4)};
    p.address = pick(0, 4) == 0 ? text() : "198.18.0." + std::to_string(pick(1, 254));
    p.af = static_cast<int>(pick(0, 2)) * 2;  // 0, 2 or 4: the writer does not care which
    ProbeResult& r = p.result;
    r.status = statuses[static_cast<std::size_t>(pick(0, statuses.size() - 1))];
    r.sent = at(pick(0, 4102444800LL), pick(0, 999999999));
    if (pick(0, 1)) {
      const long long scale = std::vector<long long>{1, 1000, 1000000, 1000000000}[static_cast<std::size_t>(pick(0, 3))];
      r.rtt = outpost::Duration(pick(0, 999999) * scale / 1000 + pick(0, 7));
    }
    r.error = text();
    if (pick(0, 2)) {
      r.reply_from = pick(0, 1) ? *IpAddress::parse("198.19.0." + std::to_string(pick(1, 254)))
                                : *IpAddress::parse("2001:db8::" + std::to_string(pick(1, 9999)));
    }
    r.reply_ttl = static_cast<int>(pick(-1, 255));
    r.icmp_type = static_cast<int>(pick(-1, 255));
    r.icmp_code = static_cast<int>(pick(-1, 255));
    r.sequence = static_cast<std::uint16_t>(pick(0, 65535));
    if (pick(0, 2) == 0) r.rtt_clock = pick(0, 1) ? std::string("kernel_tx") : text();
    const std::string expected = outpost::to_json(p).dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    const std::string got = outpost::to_json_line(outpost::Record{p});
    INFO("record " << i);
    REQUIRE(got == expected);
  }
}
