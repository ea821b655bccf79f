#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "asn_table.hpp"

using namespace outpost;

namespace {

const std::string kSmall = std::string(OUTPOST_FIXTURES) + "/asn_small.txt";
const std::string kPyasnDir = "/usr/lib/python3/dist-packages/data";

std::string origin_of(const AsnTable& t, const char* address) {
  auto m = t.lookup(*IpAddress::parse(address));
  return m ? m->origin.text() + " " + m->prefix.to_string() + "/" + std::to_string(m->length) : "none";
}

}  // namespace

TEST_CASE("asn table: both layouts, longest prefix wins, edges") {
  AsnLoadReport report;
  std::string error;
  auto t = AsnTable::load(kSmall, &report, &error);
  REQUIRE(t);
  CHECK(report.prefixes == 12);
  CHECK(t->size() == 12);
  CHECK(origin_of(*t, "10.9.9.9") == "64500 10.0.0.0/8");
  CHECK(origin_of(*t, "10.1.9.9") == "64501 10.1.0.0/16");
  CHECK(origin_of(*t, "10.1.2.4") == "64502_64503 10.1.2.0/24");
  CHECK(origin_of(*t, "10.1.2.3") == "64504 10.1.2.3/32");
  CHECK(origin_of(*t, "192.0.2.77") == "64505,64506 192.0.2.0/24");
  CHECK(origin_of(*t, "203.0.113.1") == "64496 0.0.0.0/0");
  CHECK(origin_of(*t, "2001:db8:2::1") == "64510 2001:db8::/32");
  CHECK(origin_of(*t, "2001:db8:1::2") == "64511 2001:db8:1::/48");
  CHECK(origin_of(*t, "2001:db8:1::1") == "64512 2001:db8:1::1/128");
  CHECK(origin_of(*t, "2001:db9::1") == "64497 ::/0");
  // The later line for the same prefix wins; the trailing comment is ignored.
  CHECK(origin_of(*t, "10.5.1.1") == "64521 10.5.0.0/16");
}

TEST_CASE("asn table: multi-origin and AS sets keep every ASN") {
  auto t = AsnTable::parse("10.0.0.0/8\t64500_64501\n198.51.100.0/24\t{64502,64503}\n203.0.113.0/24\t64504,64505\n", "t", nullptr);
  auto multi = t.lookup(*IpAddress::parse("10.1.1.1"));
  REQUIRE(multi);
  CHECK(multi->origin.asns == std::vector<std::uint32_t>{64500, 64501});
  CHECK_FALSE(multi->origin.as_set);
  CHECK(multi->origin.primary() == 64500);
  auto set = t.lookup(*IpAddress::parse("203.0.113.1"));
  REQUIRE(set);
  CHECK(set->origin.as_set);
  CHECK(set->origin.asns == std::vector<std::uint32_t>{64504, 64505});
  // Braces are not part of either layout: that line is reported, not guessed at.
  CHECK_FALSE(t.lookup(*IpAddress::parse("198.51.100.1")));
}

TEST_CASE("asn table: bad lines are reported with their line number and skipped") {
  AsnLoadReport report;
  std::string error;
  auto t = AsnTable::load(kSmall, &report, &error);
  REQUIRE(t);
  CHECK(report.skipped == 4);
  REQUIRE(report.problems.size() == 4);
  CHECK(report.problems[0] == kSmall + ":14: bad prefix length: '10.2.0.0\t33\t64500'");
  CHECK(report.problems[1] == kSmall + ":15: bad prefix: 'not-an-address/8\t1'");
  CHECK(report.problems[2] == kSmall + ":16: bad ASN: '10.3.0.0/16\tASX'");
  CHECK(report.problems[3] == kSmall + ":17: expected PREFIX<TAB>LEN<TAB>ASN or PREFIX/LEN<TAB>ASN: '10.4.0.0'");
}

TEST_CASE("asn table: an empty table matches nothing, a missing file is an error") {
  auto empty = AsnTable::parse("; nothing\n\n", "e", nullptr);
  CHECK(empty.size() == 0);
  CHECK_FALSE(empty.lookup(*IpAddress::parse("10.0.0.1")));
  std::string error;
  CHECK_FALSE(AsnTable::load("/nonexistent/table.txt", nullptr, &error));
  CHECK(error == "cannot open /nonexistent/table.txt");
}

TEST_CASE("asn table: names from a JSON object") {
  const auto dir = std::filesystem::temp_directory_path() / ("outpost-asn-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "names.json") << R"({"64500": "LAB-CARRIER", "64510": "LAB-BORDER", "x": "ignored"})";
    std::ofstream(dir / "bad.json") << "[1, 2]";
  }
  auto t = AsnTable::parse("10.0.0.0/8\t64500\n", "t", nullptr);
  std::string error;
  REQUIRE(t.load_names((dir / "names.json").string(), &error));
  CHECK(t.name_of(64500) == "LAB-CARRIER");
  CHECK(t.name_of(64999).empty());
  CHECK_FALSE(t.load_names((dir / "bad.json").string(), &error));
  CHECK(error.find("not a JSON object") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("asn table: the real 2014 and 2015 RouteViews tables (python3-pyasn's data)") {
  if (!std::filesystem::exists(kPyasnDir + "/ipasn_20140513.dat.gz")) {
    WARN("python3-pyasn's data is not installed: skipped (scripts/setup installs it)");
    return;
  }
  AsnLoadReport report;
  std::string error;
  auto v4 = AsnTable::load(kPyasnDir + "/ipasn_20140513.dat.gz", &report, &error);
  REQUIRE(v4);
  CHECK(report.prefixes == 512621);
  CHECK(report.skipped == 0);
  // North Korea's four /24s, all AS131279, in 2014.
  for (const char* a : {"175.45.176.71", "175.45.177.1", "175.45.178.200", "175.45.179.9"})
    CHECK(v4->lookup(*IpAddress::parse(a))->origin.primary() == 131279);
  CHECK(v4->lookup(*IpAddress::parse("175.45.176.71"))->length == 24);
  REQUIRE(v4->load_names(kPyasnDir + "/asnames.json", &error));
  CHECK(v4->name_of(4837).rfind("CHINA169-BACKBONE", 0) == 0);

  AsnLoadReport report6;
  auto v6 = AsnTable::load(kPyasnDir + "/ipasn6_20151101.dat.gz", &report6, &error);
  REQUIRE(v6);
  CHECK(report6.prefixes == 633831);
  CHECK(v6->lookup(*IpAddress::parse("2001:4860:4860::8888"))->origin.primary() == 15169);
}
