// Which configs make a run load the packet module (outpost-tins.so): only
// those that build DNS queries with it, so that any other agent never pays
// for libtins and what it links.

#include <catch2/catch.hpp>

#include <string>

#include "cli_common.hpp"

using namespace outpost;

namespace {

Config config_of(const std::string& probes, const std::string& traceroute = "") {
  const std::string text = "agent:\n  id: t\ndefaults:\n  interval: 10s\n  timeout: 1s\n  probes: [" + probes +
                           "]\n" + traceroute +
                           "groups:\n  - name: g\n    targets:\n      - { name: a, address: 127.0.0.1 }\n"
                           "      - { name: b, address: 127.0.0.2, probes: [icmp] }\n";
  ConfigLoad load = load_config_string(text, "test.yaml");
  std::string errors;
  for (const auto& e : load.errors) errors += e.to_string() + "\n";
  INFO(text << errors);
  REQUIRE(load.config);
  return *load.config;
}

}  // namespace

TEST_CASE("run: the packet module only for a config that forges with it", "[cli][module]") {
  CHECK_FALSE(forges_with_packet_module(config_of("icmp")));
  CHECK_FALSE(forges_with_packet_module(config_of("icmp", "traceroute:\n  method: icmp\n")));
  // TCP SYNs and UDP and TCP trace probes are forged by hand: no module.
  CHECK_FALSE(forges_with_packet_module(config_of("icmp, tcp:443")));
  CHECK_FALSE(forges_with_packet_module(config_of("tcp_connect:80")));
  CHECK_FALSE(forges_with_packet_module(config_of("icmp", "traceroute:\n  method: udp\n")));
  CHECK_FALSE(forges_with_packet_module(config_of("tcp:80", "traceroute:\n  method: tcp:80\n")));
}

TEST_CASE("run: one target's DNS probe is enough to need the packet module", "[cli][module]") {
  const std::string text =
      "agent:\n  id: t\ndefaults:\n  interval: 10s\n  timeout: 1s\n  probes: [icmp]\n"
      "groups:\n  - name: g\n    targets:\n      - { name: a, address: 127.0.0.1 }\n"
      "      - { name: d, address: 127.0.0.3, probes: [dns], dns: { query: example.test, type: A } }\n";
  ConfigLoad load = load_config_string(text, "test.yaml");
  REQUIRE(load.config);
  CHECK(forges_with_packet_module(*load.config));
  load.config->groups[0].targets.pop_back();
  CHECK_FALSE(forges_with_packet_module(*load.config));
}
