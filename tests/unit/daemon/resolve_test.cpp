// resolve_target and resolve_targets on what needs no name server: literal
// addresses, malformed names, `localhost` from the hosts file, and the choice
// among a name's addresses by family (nothing leaves the host).

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "resolve.hpp"

using outpost::IpAddress;

TEST_CASE("resolve_target: a literal address is taken as it is", "[resolve]") {
  CHECK(outpost::resolve_target("198.18.0.1").address == *IpAddress::parse("198.18.0.1"));
  CHECK(outpost::resolve_target("2001:db8::1").address == *IpAddress::parse("2001:db8::1"));
  CHECK(outpost::resolve_target("198.18.0.1").error.empty());
}

TEST_CASE("resolve_targets: answers in the names' order, whatever the threads", "[resolve]") {
  std::vector<std::string> names;
  for (int i = 0; i < 200; ++i) names.push_back("198.18." + std::to_string(i / 64) + "." + std::to_string(i % 64 + 1));
  names.push_back("2001:db8::7");
  names.push_back("198.18.0.1");  // a repeat
  for (unsigned parallel : {0u, 1u, 3u, 16u, 500u}) {
    const auto out = outpost::resolve_targets(names, parallel);
    REQUIRE(out.size() == names.size());
    bool all = true;
    for (std::size_t i = 0; i < names.size(); ++i) all = all && out[i].address == *IpAddress::parse(names[i]);
    INFO("parallel " << parallel);
    CHECK(all);
  }
  CHECK(outpost::resolve_targets({}).empty());
}

TEST_CASE("resolve_targets: a name that cannot be a host name fails alone", "[resolve]") {
  // An empty name is refused by getaddrinfo before any lookup.
  const auto out = outpost::resolve_targets({"198.18.0.9", "", "198.18.0.10"}, 4);
  REQUIRE(out.size() == 3);
  CHECK(out[0].address == *IpAddress::parse("198.18.0.9"));
  CHECK(!out[1].address);
  CHECK(out[1].error.find("cannot resolve host ''") == 0);
  CHECK(out[2].address == *IpAddress::parse("198.18.0.10"));
}

// --- by family ---------------------------------------------------------------

namespace {

using outpost::Resolved;
using outpost::TargetFamily;
using Family = IpAddress::Family;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

}  // namespace

TEST_CASE("resolve_target by family: a literal answers for its own family only", "[resolve]") {
  const auto v4_as_4 = outpost::resolve_target("198.18.0.1", TargetFamily::v4);
  REQUIRE(v4_as_4.size() == 1);
  CHECK(v4_as_4[0].address == ip("198.18.0.1"));
  CHECK(v4_as_4[0].family == Family::v4);
  CHECK(v4_as_4[0].error.empty());

  const auto v4_as_6 = outpost::resolve_target("198.18.0.1", TargetFamily::v6);
  REQUIRE(v4_as_6.size() == 1);
  CHECK(!v4_as_6[0].address);
  CHECK(v4_as_6[0].family == Family::v6);
  CHECK(v4_as_6[0].error == "'198.18.0.1' is not an IPv6 address");

  const auto v6_as_both = outpost::resolve_target("2001:db8::1", TargetFamily::both);
  REQUIRE(v6_as_both.size() == 2);
  CHECK(!v6_as_both[0].address);
  CHECK(v6_as_both[0].family == Family::v4);
  CHECK(v6_as_both[0].error == "'2001:db8::1' is not an IPv4 address");
  CHECK(v6_as_both[1].address == ip("2001:db8::1"));
  CHECK(v6_as_both[1].family == Family::v6);

  const auto v6_auto = outpost::resolve_target("2001:db8::1", TargetFamily::automatic);
  REQUIRE(v6_auto.size() == 1);
  CHECK(v6_auto[0].address == ip("2001:db8::1"));
  CHECK(v6_auto[0].family == Family::none);
}

TEST_CASE("choose_addresses: the first of each family, never one for the other", "[resolve]") {
  // As getaddrinfo may list a dual-stack name: IPv6 first.
  const std::vector<IpAddress> dual = {ip("2001:db8::a"), ip("198.18.0.1"), ip("198.18.0.2"), ip("2001:db8::b")};
  const std::vector<IpAddress> v4_only = {ip("198.18.0.1"), ip("198.18.0.2")};
  const std::vector<IpAddress> v6_only = {ip("2001:db8::a"), ip("2001:db8::b")};

  SECTION("auto: the first IPv4 address, else the first IPv6 address") {
    CHECK(outpost::choose_addresses("n", dual, TargetFamily::automatic).at(0).address == ip("198.18.0.1"));
    CHECK(outpost::choose_addresses("n", v6_only, TargetFamily::automatic).at(0).address == ip("2001:db8::a"));
    const auto none = outpost::choose_addresses("n", {}, TargetFamily::automatic);
    REQUIRE(none.size() == 1);
    CHECK(none[0].error == "host 'n' has no IPv4 or IPv6 address");
  }
  SECTION("4 and 6: that family's first address") {
    const auto four = outpost::choose_addresses("n", dual, TargetFamily::v4);
    REQUIRE(four.size() == 1);
    CHECK(four[0].address == ip("198.18.0.1"));
    CHECK(four[0].family == Family::v4);
    const auto six = outpost::choose_addresses("n", dual, TargetFamily::v6);
    REQUIRE(six.size() == 1);
    CHECK(six[0].address == ip("2001:db8::a"));
    CHECK(six[0].family == Family::v6);
  }
  SECTION("4 and 6: a missing family is an error, not the other family") {
    const auto six = outpost::choose_addresses("www.example.kp", v4_only, TargetFamily::v6);
    REQUIRE(six.size() == 1);
    CHECK(!six[0].address);
    CHECK(six[0].error == "host 'www.example.kp' has no IPv6 address");
    const auto four = outpost::choose_addresses("www.example.kp", v6_only, TargetFamily::v4);
    REQUIRE(four.size() == 1);
    CHECK(!four[0].address);
    CHECK(four[0].error == "host 'www.example.kp' has no IPv4 address");
  }
  SECTION("both: IPv4 then IPv6, each with its own error") {
    const auto both = outpost::choose_addresses("n", dual, TargetFamily::both);
    REQUIRE(both.size() == 2);
    CHECK(both[0].address == ip("198.18.0.1"));
    CHECK(both[0].family == Family::v4);
    CHECK(both[1].address == ip("2001:db8::a"));
    CHECK(both[1].family == Family::v6);

    const auto half = outpost::choose_addresses("n", v4_only, TargetFamily::both);
    REQUIRE(half.size() == 2);
    CHECK(half[0].address == ip("198.18.0.1"));
    CHECK(half[0].error.empty());
    CHECK(!half[1].address);
    CHECK(half[1].family == Family::v6);
    CHECK(half[1].error == "host 'n' has no IPv6 address");

    const auto other_half = outpost::choose_addresses("n", v6_only, TargetFamily::both);
    REQUIRE(other_half.size() == 2);
    CHECK(other_half[0].error == "host 'n' has no IPv4 address");
    CHECK(other_half[1].address == ip("2001:db8::a"));
  }
}

TEST_CASE("choose_addresses: an address that cannot be a target is passed over, and named when it is all there is",
          "[resolve]") {
  // A filtering resolver's answer for a blocked name, a multicast group, a
  // link-local address: never probed.
  const std::vector<IpAddress> sinkhole = {ip("0.0.0.0"), ip("::")};
  const auto blocked = outpost::choose_addresses("ads.example", sinkhole, TargetFamily::both);
  REQUIRE(blocked.size() == 2);
  CHECK(!blocked[0].address);
  CHECK(blocked[0].error == "host 'ads.example' resolves to 0.0.0.0, the unspecified address: a target must be one unicast host");
  CHECK(!blocked[1].address);
  CHECK(blocked[1].error == "host 'ads.example' resolves to ::, the unspecified address: a target must be one unicast host");
  const auto blocked_auto = outpost::choose_addresses("ads.example", sinkhole, TargetFamily::automatic);
  REQUIRE(blocked_auto.size() == 1);
  CHECK(!blocked_auto[0].address);
  CHECK(blocked_auto[0].error.find("resolves to 0.0.0.0, the unspecified address") != std::string::npos);

  // A unicast address after one that is not: that one.
  const std::vector<IpAddress> mixed = {ip("224.0.0.251"), ip("fe80::1"), ip("198.18.0.7"), ip("2001:db8::7")};
  const auto both = outpost::choose_addresses("n", mixed, TargetFamily::both);
  REQUIRE(both.size() == 2);
  CHECK(both[0].address == ip("198.18.0.7"));
  CHECK(both[1].address == ip("2001:db8::7"));
  CHECK(outpost::choose_addresses("n", mixed, TargetFamily::automatic).at(0).address == ip("198.18.0.7"));

  // Auto: IPv4's only address refused, IPv6's taken.
  const auto six = outpost::choose_addresses("n", {ip("0.0.0.0"), ip("2001:db8::9")}, TargetFamily::automatic);
  CHECK(six.at(0).address == ip("2001:db8::9"));
  const auto link = outpost::choose_addresses("n", {ip("198.18.0.1"), ip("fe80::1")}, TargetFamily::v6);
  CHECK(!link.at(0).address);
  CHECK(link.at(0).error.find("resolves to fe80::1, an IPv6 link-local address") != std::string::npos);
}

TEST_CASE("resolve_target: a literal address that cannot be a target is an error for every family asked",
          "[resolve]") {
  for (const char* text : {"0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "ff02::1", "::ffff:198.18.0.1", "fe80::1"}) {
    INFO(text);
    const auto one = outpost::resolve_target(text);
    CHECK(!one.address);
    CHECK(one.error.find(std::string("'") + text + "' is ") == 0);
    const auto both = outpost::resolve_target(text, TargetFamily::both);
    REQUIRE(both.size() == 2);
    CHECK(!both[0].address);
    CHECK(!both[1].address);
    CHECK(both[0].error == one.error);
    CHECK(both[1].error == one.error);
  }
  CHECK(outpost::resolve_target("::ffff:198.18.0.1").error ==
        "'::ffff:198.18.0.1' is an IPv4-mapped IPv6 address: give its IPv4 address instead");
  CHECK(outpost::resolve_target("127.0.0.1").address == ip("127.0.0.1"));  // loopback is a host
}

TEST_CASE("resolve_target by family: localhost from the hosts file", "[resolve]") {
  // /etc/hosts always maps localhost to 127.0.0.1; whether it also maps ::1
  // varies, so the IPv6 half is either ::1 or an error, never 127.0.0.1.
  const auto four = outpost::resolve_target("localhost", TargetFamily::v4);
  REQUIRE(four.size() == 1);
  CHECK(four[0].address == ip("127.0.0.1"));

  const auto both = outpost::resolve_target("localhost", TargetFamily::both);
  REQUIRE(both.size() == 2);
  CHECK(both[0].address == ip("127.0.0.1"));
  CHECK(both[1].family == Family::v6);
  if (both[1].address) {
    CHECK(both[1].address == ip("::1"));
  } else {
    CHECK(both[1].error == "host 'localhost' has no IPv6 address");
  }
  CHECK(outpost::resolve_target("localhost").address == ip("127.0.0.1"));  // auto: IPv4 first
}

TEST_CASE("resolve_targets by family: each name under its own family, in order", "[resolve]") {
  const std::vector<std::string> names = {"198.18.0.1", "2001:db8::1", "", "198.18.0.2"};
  const std::vector<TargetFamily> families = {TargetFamily::both, TargetFamily::v6, TargetFamily::both};
  for (unsigned parallel : {0u, 1u, 2u, 16u}) {
    INFO("parallel " << parallel);
    const auto out = outpost::resolve_targets(names, families, parallel);
    REQUIRE(out.size() == 4);
    REQUIRE(out[0].size() == 2);
    CHECK(out[0][0].address == ip("198.18.0.1"));
    CHECK(out[0][1].error == "'198.18.0.1' is not an IPv6 address");
    REQUIRE(out[1].size() == 1);
    CHECK(out[1][0].address == ip("2001:db8::1"));
    REQUIRE(out[2].size() == 2);  // a failed lookup fails both halves
    CHECK(out[2][0].error.find("cannot resolve host ''") == 0);
    CHECK(out[2][1].error == out[2][0].error);
    REQUIRE(out[3].size() == 1);  // past the end of families: auto
    CHECK(out[3][0].address == ip("198.18.0.2"));
    CHECK(out[3][0].family == Family::none);
  }
  CHECK(outpost::resolve_targets(std::vector<std::string>{}, std::vector<TargetFamily>{}).empty());
}
