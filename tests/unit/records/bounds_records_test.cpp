// A probe record's size ceiling: whatever a result holds (thousands of
// answers, long text from a server), its JSON line keeps 32 answers of at
// most 255 characters, counts the rest in answers_dropped, cuts the other
// free text, and stays within kProbeRecordMaxBytes.

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "dns_message.hpp"
#include "json_lines.hpp"
#include "records.hpp"

using nlohmann::json;
using outpost::ProbeLabels;
using outpost::ProbeResult;
using outpost::ProbeStatus;

namespace {

const ProbeLabels kLabels{"vantage-1", "resolver", "dns", "dns", 0, 4};

ProbeResult dns_result() {
  ProbeResult r;
  r.status = ProbeStatus::reply;
  r.target = *outpost::IpAddress::parse("198.18.0.53");
  r.reply_from = r.target;
  r.sent = outpost::WallTime(std::chrono::seconds(1419264900));
  r.rtt = std::chrono::milliseconds(3);
  r.dns.emplace();
  r.dns->query = "storm.lab.test";
  r.dns->qtype = "CNAME";
  r.dns->rcode = "NOERROR";
  r.dns->transport = "udp";
  r.dns->rtt_clock = "kernel";
  return r;
}

// A 255-byte name as text: four labels of 63, 63, 63 and 61 characters.
std::string long_name(char c) {
  return std::string(63, c) + "." + std::string(63, c) + "." + std::string(63, c) + "." + std::string(61, c);
}

std::string line_of(const ProbeResult& r) { return outpost::to_json_line(outpost::probe_record(kLabels, r)); }

}  // namespace

TEST_CASE("records bounds: 5,000 CNAMEs of 255-byte names make a line under 16 KiB", "[records][bounds]") {
  ProbeResult r = dns_result();
  for (int i = 0; i < 5000; ++i) r.dns->answers.push_back(long_name(static_cast<char>('a' + i % 26)));
  const std::string line = line_of(r);
  INFO(line.size() << " bytes");
  CHECK(line.size() < 16 * 1024);
  const json j = json::parse(line);
  REQUIRE(j["answers"].size() == outpost::kDnsMaxAnswersKept);
  CHECK(j["answers"][0] == long_name('a'));
  CHECK(j["answers"][31] == long_name('f'));
  CHECK(j["answer_count"] == 32);
  CHECK(j["answers_dropped"] == 5000 - 32);
}

TEST_CASE("records bounds: answers_dropped adds what the probe dropped; absent when none were",
          "[records][bounds]") {
  ProbeResult r = dns_result();
  r.dns->answers = {"alias.lab.test", "198.18.0.1"};
  json j = json::parse(line_of(r));
  CHECK(j["answers"] == json::array({"alias.lab.test", "198.18.0.1"}));
  CHECK_FALSE(j.contains("answers_dropped"));
  r.dns->answers_dropped = 4000;
  r.dns->answers.assign(32, "198.18.0.1");
  j = json::parse(line_of(r));
  CHECK(j["answers"].size() == 32);
  CHECK(j["answers_dropped"] == 4000);
  r.dns->answers.assign(40, "198.18.0.1");
  j = json::parse(line_of(r));
  CHECK(j["answers"].size() == 32);
  CHECK(j["answers_dropped"] == 4008);
}

TEST_CASE("records bounds: long answers are cut to 255 characters on whole escapes", "[records][bounds]") {
  ProbeResult r = dns_result();
  std::string escaped;
  for (int i = 0; i < 300; ++i) escaped += "\\001";
  r.dns->answers = {std::string(1000, 'x'), escaped};
  const json j = json::parse(line_of(r));
  CHECK(j["answers"][0] == std::string(255, 'x'));
  CHECK(j["answers"][1].get<std::string>().size() == 252);  // 63 escapes of 4
}

TEST_CASE("records bounds: the worst a result can hold stays within the ceiling", "[records][bounds]") {
  // Every free text long and as costly as JSON makes it: answers of quotes
  // (each escaped to two bytes), error texts of control characters (six).
  const std::string control(10000, '\x01');
  SECTION("dns, an error") {
    ProbeResult r = dns_result();
    r.status = ProbeStatus::error;
    r.error = control;
    r.dns->query = std::string(253, '"');
    r.dns->answers.assign(5000, std::string(1000, '"'));
    r.dns->answers_dropped = 4'000'000'000u;
    r.dns->tcp_time = std::chrono::milliseconds(7);
    r.dns->tcp_error = control;
    r.dns->ignored = 4'000'000'000u;
    r.dns->last_ignored = control;
    const std::string line = line_of(r);
    INFO(line.size() << " bytes");
    CHECK(line.size() <= outpost::kProbeRecordMaxBytes);
    const json j = json::parse(line);
    CHECK(j["error"].get<std::string>().size() == 256);
    CHECK(j["tcp_error"].get<std::string>().size() == 256);
    CHECK(j["ignored_last"].get<std::string>().size() == 256);
    CHECK(j["answers_dropped"] == 4'000'000'000u + 5000 - 32);
  }
  SECTION("dns, unreachable with a detail") {
    ProbeResult r = dns_result();
    r.status = ProbeStatus::unreachable;
    r.error = control;
    r.icmp_type = 3;
    r.icmp_code = 3;
    const std::string line = line_of(r);
    CHECK(line.size() <= outpost::kProbeRecordMaxBytes);
    CHECK(json::parse(line)["detail"].get<std::string>().size() == 256);
  }
}
