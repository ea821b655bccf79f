// resolve_target and resolve_targets on what needs no name server: literal
// addresses and malformed names (nothing leaves the host).

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
