// RouteFinder on loopback (no root; a UDP connect() sends nothing): the
// source and interface toward 127.0.0.1, the table of local addresses read
// once and again only when it is old, and a bound interface that does not
// exist named in the error.

#include <catch2/catch.hpp>
#include <string>

#include "wire.hpp"

using namespace std::chrono_literals;
using outpost::IpAddress;
using outpost::RouteFinder;
using outpost::SteadyTime;

TEST_CASE("route finder: loopback is reached from 127.0.0.1 on lo", "[route]") {
  RouteFinder finder({}, 30s);
  const SteadyTime t0{};
  const auto route = finder.find(*IpAddress::parse("127.0.0.1"), t0);
  INFO(route.error);
  CHECK(route.error.empty());
  CHECK(route.source == *IpAddress::parse("127.0.0.1"));
  CHECK(route.interface == "lo");
  CHECK(finder.table_reads() == 1);

  SECTION("later lookups reuse the socket and the table until it is old") {
    for (int i = 0; i < 5; ++i) {
      const auto again = finder.find(*IpAddress::parse("127.0.0.1"), t0 + 29s);
      CHECK(again.interface == "lo");
    }
    CHECK(finder.table_reads() == 1);
    const auto late = finder.find(*IpAddress::parse("127.0.0.1"), t0 + 30s);
    CHECK(late.interface == "lo");
    CHECK(finder.table_reads() == 2);
  }
}

TEST_CASE("route finder: other loopback addresses share the answer", "[route]") {
  RouteFinder finder;
  for (const char* dst : {"127.0.0.1", "127.0.0.2", "127.1.2.3", "127.0.0.1"}) {
    const auto route = finder.find(*IpAddress::parse(dst), SteadyTime{});
    INFO(dst << ": " << route.error);
    CHECK(route.error.empty());
    CHECK(route.interface == "lo");
    CHECK(route.source.is_v4());
  }
}

TEST_CASE("route finder: a bound interface that does not exist is named", "[route]") {
  RouteFinder finder("nosuchif0");
  const auto route = finder.find(*IpAddress::parse("127.0.0.1"), SteadyTime{});
  CHECK(!route.source);
  CHECK(route.error.find("interface nosuchif0") != std::string::npos);
}

TEST_CASE("route finder: the source alone reads no table, and the interface comes later", "[route]") {
  RouteFinder finder;
  const SteadyTime t0{};
  const auto route = finder.find(*IpAddress::parse("127.0.0.1"), t0, false);
  INFO(route.error);
  CHECK(route.error.empty());
  CHECK(route.source == *IpAddress::parse("127.0.0.1"));
  CHECK(route.interface.empty());
  CHECK(finder.table_reads() == 0);
  // What a wire that falls back to a capture asks next.
  CHECK(finder.interface_of(route.source, t0) == "lo");
  CHECK(finder.table_reads() == 1);
  CHECK(finder.interface_of(*IpAddress::parse("192.0.2.77"), t0).empty());
}
