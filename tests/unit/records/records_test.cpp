// Records as CONTRACT.md fixes them: RFC 3339 times (UTC, microseconds, 'Z')
// and the fields of a `probe` record for each status.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <string>

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
