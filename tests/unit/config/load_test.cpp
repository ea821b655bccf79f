// Loading: the real example, the valid test configs with their resolved values,
// and every invalid-*.yaml with the exact messages it must give.

#include <arpa/inet.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "outpost_config.hpp"

using namespace std::chrono_literals;
using namespace outpost;
using Kind = ProbeMethod::Kind;

namespace {

const std::string source_dir = OUTPOST_SOURCE_DIR;
const std::string testdata_dir = source_dir + "/config/testdata";

// Loads a file that must be valid, showing its errors if it is not.
Config load_valid(const std::string& path) {
  ConfigLoad load = load_config_file(path);
  for (const ConfigError& error : load.errors) UNSCOPED_INFO(error.to_string());
  REQUIRE(load.errors.empty());
  REQUIRE(load.config.has_value());
  return *load.config;
}

const Target& target_named(const Config& config, const std::string& name) {
  for (const Group& group : config.groups) {
    for (const Target& target : group.targets) {
      if (target.name == name) return target;
    }
  }
  FAIL("no target " << name);
  throw;  // not reached
}

std::vector<ProbeMethod> methods(std::initializer_list<const char*> texts) {
  std::vector<ProbeMethod> result;
  for (const char* text : texts) result.push_back(*parse_probe_method(text, nullptr));
  return result;
}

std::vector<std::string> messages(const ConfigLoad& load) {
  std::vector<std::string> result;
  for (const ConfigError& error : load.errors) result.push_back(error.to_string());
  return result;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct InvalidCase {
  const char* file;
  std::vector<std::string> messages;  // exactly, in order, with the file name as written in the table
};

// One row per config/testdata/invalid-*.yaml; a new file without a row fails the coverage test.
const std::vector<InvalidCase> invalid_cases = {
    {"invalid-alias-bomb.yaml", {
      "invalid-alias-bomb.yaml:9:191: this alias takes the config past 16 MiB of text (an alias repeats all that its anchor names)",
    }},
    {"invalid-alias-cycle.yaml", {
      "invalid-alias-cycle.yaml:5:14: an alias inside the node it names (a cycle) is not allowed",
    }},
    {"invalid-agent-group.yaml", {
      "invalid-agent-group.yaml:5:10: agent.group: needs agent.user (the group is taken when the agent switches to that user)",
    }},
    {"invalid-agent-user.yaml", {
      "invalid-agent-user.yaml:5:9: agent.user: expected a user or group name (a letter or '_', then letters, digits, '-', '_' or '.', at most 32), got 'outpost:outpost'",
      "invalid-agent-user.yaml:6:10: agent.group: expected a user or group name (a letter or '_', then letters, digits, '-', '_' or '.', at most 32), got '65534'",
    }},
    {"invalid-bounds.yaml", {
      "invalid-bounds.yaml:4:12: agent.max_pps: expected a number from 0.001 to 10000000, got '1e-10'",
      "invalid-bounds.yaml:7:15: groups[0].interval: '2562047h' is too long (at most 8760h, a year)",
      "invalid-bounds.yaml:9:59: groups[0].targets[0].timeout: '9223372036854775807ns' is too long (at most 8760h, a year)",
      "invalid-bounds.yaml:11:15: detect.down_after: expected an integer from 1 to 1000, got '2147483647'",
      "invalid-bounds.yaml:12:15: detect.flap_count: expected an integer from 2 to 1000, got '1001'",
      "invalid-bounds.yaml:13:16: detect.flap_window: '2562047h' is too long (at most 8760h, a year)",
      "invalid-bounds.yaml:15:13: traceroute.parallel: expected an integer from 1 to 255, got '2147483647'",
      "invalid-bounds.yaml:16:13: traceroute.attempts: expected an integer from 1 to 10, got '11'",
      "invalid-bounds.yaml:17:22: traceroute.baseline_interval: '8761h' is too long (at most 8760h, a year)",
    }},
    {"invalid-address-and-host.yaml", {
      "invalid-address-and-host.yaml:8:9: groups[0].targets[0]: give either 'address' or 'host', not both",
      "invalid-address-and-host.yaml:9:9: groups[0].targets[1]: missing required key 'address' or 'host'",
    }},
    {"invalid-address.yaml", {
      "invalid-address.yaml:7:18: groups[0].targets[0].address: '10.0.0.300' is not an IPv4 or IPv6 address",
      "invalid-address.yaml:9:18: groups[0].targets[1].address: '2001:db8::g' is not an IPv4 or IPv6 address",
      "invalid-address.yaml:11:18: groups[0].targets[2].address: 'naenara.com.kp' is not an IPv4 or IPv6 address",
      "invalid-address.yaml:13:18: groups[0].targets[3].address: '175.45.176.0/24' is not an IPv4 or IPv6 address",
    }},
    {"invalid-address-special.yaml", {
      "invalid-address-special.yaml:6:39: groups[0].targets[0].address: '0.0.0.0' is the unspecified address: a target must be one unicast host",
      "invalid-address-special.yaml:7:37: groups[0].targets[1].address: '224.0.0.1' is a multicast address: a target must be one unicast host",
      "invalid-address-special.yaml:8:37: groups[0].targets[2].address: '255.255.255.255' is the limited broadcast address: a target must be one unicast host",
      "invalid-address-special.yaml:9:40: groups[0].targets[3].address: '::' is the unspecified address: a target must be one unicast host",
      "invalid-address-special.yaml:10:38: groups[0].targets[4].address: 'ff02::1' is a multicast address: a target must be one unicast host",
      "invalid-address-special.yaml:11:34: groups[0].targets[5].address: '::ffff:175.45.176.71' is an IPv4-mapped IPv6 address: give its IPv4 address instead",
      "invalid-address-special.yaml:12:38: groups[0].targets[6].address: 'fe80::1' is an IPv6 link-local address, which names no interface: give a global address",
    }},
    {"invalid-deep-nesting.yaml", {
      "invalid-deep-nesting.yaml:3:1209: YAML nested too deep: lists and maps 500 levels inside each other",
    }},
    {"invalid-dns-block-missing.yaml", {
      "invalid-dns-block-missing.yaml:8:9: groups[0].targets[0]: probe method 'dns' needs a 'dns' block with a query",
    }},
    {"invalid-dns-query.yaml", {
      "invalid-dns-query.yaml:9:45: groups[0].targets[0].dns.type: unknown query type 'AAA' (expected A, AAAA, NS, SOA, TXT, CNAME, MX or PTR)",
      "invalid-dns-query.yaml:12:23: groups[0].targets[1].dns.query: 'bad name' is not a valid domain name",
      "invalid-dns-query.yaml:12:43: groups[0].targets[1].dns.expect: expected a list of expected answers, got '175.45.176.71'",
      "invalid-dns-query.yaml:15:14: groups[0].targets[2].dns: expected a map, got 'naenara.com.kp'",
      "invalid-dns-query.yaml:18:48: groups[0].targets[3].dns.expect[0]: expected a string, got a list",
    }},
    {"invalid-duplicate-group.yaml", {
      "invalid-duplicate-group.yaml:7:11: groups[1].name: duplicate group name 'kp' (first at line 4)",
    }},
    {"invalid-duplicate-key.yaml", {
      "invalid-duplicate-key.yaml:4:3: agent: duplicate key 'id' (first at line 3)",
      "invalid-duplicate-key.yaml:8:50: groups[0].targets[0]: duplicate key 'address' (first at line 8)",
    }},
    {"invalid-duplicate-probe.yaml", {
      "invalid-duplicate-probe.yaml:8:32: groups[0].targets[0].probes[2]: duplicate probe method 'icmp'",
      "invalid-duplicate-probe.yaml:8:38: groups[0].targets[0].probes[3]: duplicate probe method 'tcp:80'",
    }},
    {"invalid-duplicate-target.yaml", {
      "invalid-duplicate-target.yaml:7:17: groups[0].targets[1].name: duplicate target name 'naenara' (first at line 6)",
      "invalid-duplicate-target.yaml:11:17: groups[1].targets[0].name: duplicate target name 'naenara' (first at line 6)",
    }},
    {"invalid-duration.yaml", {
      "invalid-duration.yaml:4:13: defaults.interval: '30' has no unit (expected ns, us, ms, s, m or h, e.g. 30s)",
      "invalid-duration.yaml:5:12: defaults.timeout: '0s': a duration must be greater than zero",
      "invalid-duration.yaml:8:15: groups[0].interval: '-5s': a duration must be greater than zero",
      "invalid-duration.yaml:9:14: groups[0].timeout: '2 s': unknown unit ' s' (expected ns, us, ms, s, m or h)",
      "invalid-duration.yaml:13:19: groups[0].targets[0].interval: '5x': unknown unit 'x' (expected ns, us, ms, s, m or h)",
      "invalid-duration.yaml:14:18: groups[0].targets[0].timeout: '1.0000000001s' is finer than a nanosecond",
      "invalid-duration.yaml:16:11: report.window: expected a duration such as 500ms, 2s, 5m or 1h, got a map",
    }},
    {"invalid-empty-groups.yaml", {
      "invalid-empty-groups.yaml:3:9: groups: expected a non-empty list of groups, got an empty list",
    }},
    {"invalid-empty-list.yaml", {
      "invalid-empty-list.yaml:4:11: defaults.probes: expected a non-empty list of probe methods such as [icmp, tcp:443], got an empty list",
      "invalid-empty-list.yaml:7:14: groups[0].targets: expected a non-empty list of targets, got an empty list",
      "invalid-empty-list.yaml:9:5: groups[1].targets: expected a non-empty list of targets, got nothing",
    }},
    {"invalid-empty-name.yaml", {
      "invalid-empty-name.yaml:3:7: agent.id: expected a non-empty string, got ''",
      "invalid-empty-name.yaml:5:5: groups[0].name: expected a string, got nothing",
      "invalid-empty-name.yaml:7:17: groups[0].targets[0].name: expected a non-empty string, got ''",
    }},
    {"invalid-empty.yaml", {
      "invalid-empty.yaml: the config is empty (expected a map with 'agent' and 'groups')",
    }},
    {"invalid-family.yaml", {
      "invalid-family.yaml:5:11: defaults.family: expected 4, 6, both or auto, got 'ipv6'",
      "invalid-family.yaml:10:60: groups[0].targets[0].family: '6' contradicts address 175.45.176.71, an IPv4 address (family is for targets given by 'host')",
      "invalid-family.yaml:11:60: groups[0].targets[1].family: '4' contradicts address 2001:db8::1, an IPv6 address (family is for targets given by 'host')",
      "invalid-family.yaml:12:63: groups[0].targets[2].family: 'both' contradicts address 175.45.176.72, an IPv4 address (family is for targets given by 'host')",
      "invalid-family.yaml:16:57: groups[0].targets[6].family: expected 4, 6, both or auto, got a list",
      "invalid-family.yaml:17:51: groups[0].targets[7].family: expected 4, 6, both or auto, got '5'",
    }},
    {"invalid-host.yaml", {
      "invalid-host.yaml:6:28: groups[0].targets[0].host: 'naenara com kp' is not a valid host name",
      "invalid-host.yaml:7:28: groups[0].targets[1].host: '-naenara.com.kp' is not a valid host name",
      "invalid-host.yaml:8:30: groups[0].targets[2].host: 'naenara..com.kp' is not a valid host name",
      "invalid-host.yaml:9:29: groups[0].targets[3].host: '10.0.0.300' is not a valid host name",
    }},
    {"invalid-log-level.yaml", {
      "invalid-log-level.yaml:4:14: agent.log_level: expected debug, info, warn or error, got 'verbose'",
    }},
    {"invalid-missing-key.yaml", {
      "invalid-missing-key.yaml:3:3: agent: missing required key 'id'",
      "invalid-missing-key.yaml:5:5: groups[0]: missing required key 'name'",
      "invalid-missing-key.yaml:5:5: groups[0]: missing required key 'targets'",
      "invalid-missing-key.yaml:8:9: groups[1].targets[0]: missing required key 'name'",
      "invalid-missing-key.yaml:9:9: groups[1].targets[1]: missing required key 'address' or 'host'",
      "invalid-missing-key.yaml:13:14: groups[1].targets[2].dns: missing required key 'query'",
      "invalid-missing-key.yaml:16:7: report.outputs[0]: an output needs one of file, http, influx, prometheus_remote_write or nats",
    }},
    {"invalid-missing-section.yaml", {
      "invalid-missing-section.yaml:2:1: missing required key 'agent'",
      "invalid-missing-section.yaml:2:1: missing required key 'groups'",
    }},
    {"invalid-not-a-map.yaml", {
      "invalid-not-a-map.yaml:2:8: agent: expected a map, got 'fra-1'",
      "invalid-not-a-map.yaml:3:11: defaults: expected a map, got a list",
      "invalid-not-a-map.yaml:5:5: groups[0]: expected a map, got 'kp'",
      "invalid-not-a-map.yaml:8:9: groups[1].targets[0]: expected a map, got 'anchor1'",
      "invalid-not-a-map.yaml:9:9: detect: expected a map, got '3'",
      "invalid-not-a-map.yaml:11:12: report.outputs: expected a list of outputs such as { file: PATH }, got '/var/lib/outpost/results.jsonl'",
    }},
    {"invalid-port.yaml", {
      "invalid-port.yaml:8:18: groups[0].targets[0].probes[0]: 'tcp:0': port must be a number from 1 to 65535",
      "invalid-port.yaml:8:25: groups[0].targets[0].probes[1]: 'tcp:65536': port must be a number from 1 to 65535",
      "invalid-port.yaml:8:36: groups[0].targets[0].probes[2]: 'tcp:http': port must be a number from 1 to 65535",
      "invalid-port.yaml:8:46: groups[0].targets[0].probes[3]: 'tcp' needs a port, e.g. tcp:443",
      "invalid-port.yaml:8:51: groups[0].targets[0].probes[4]: 'tcp_connect:80x': port must be a number from 1 to 65535",
      "invalid-port.yaml:8:68: groups[0].targets[0].probes[5]: 'tcp_connect:-1': port must be a number from 1 to 65535",
      "invalid-port.yaml:10:11: traceroute.method: 'tcp:99999': port must be a number from 1 to 65535",
    }},
    {"invalid-probe-method.yaml", {
      "invalid-probe-method.yaml:4:12: defaults.probes[0]: unknown probe method 'icmpp' (expected icmp, tcp:PORT, tcp_connect:PORT or dns)",
      "invalid-probe-method.yaml:4:19: defaults.probes[1]: unknown probe method 'udp:53' (expected icmp, tcp:PORT, tcp_connect:PORT or dns)",
      "invalid-probe-method.yaml:7:14: groups[0].probes[0]: unknown probe method 'ping' (expected icmp, tcp:PORT, tcp_connect:PORT or dns)",
      "invalid-probe-method.yaml:11:24: groups[0].targets[0].probes[1]: unknown probe method 'TCP:80' (expected icmp, tcp:PORT, tcp_connect:PORT or dns)",
      "invalid-probe-method.yaml:11:32: groups[0].targets[0].probes[2]: expected a probe method, got a list",
    }},
    {"invalid-range.yaml", {
      "invalid-range.yaml:4:12: agent.max_pps: expected a number from 0.001 to 10000000, got '0'",
      "invalid-range.yaml:7:19: groups[0].upstream_asn: expected an integer from 0 to 4294967295, got '-1'",
      "invalid-range.yaml:11:19: groups[1].upstream_asn: expected an integer from 0 to 4294967295, got '4294967296'",
      "invalid-range.yaml:15:15: detect.down_after: expected an integer from 1 to 1000, got '0'",
      "invalid-range.yaml:16:13: detect.up_after: expected an integer from 1 to 1000, got '-2'",
      "invalid-range.yaml:17:19: detect.group_fraction: expected a fraction greater than 0 and at most 1, got '1.5'",
      "invalid-range.yaml:18:15: detect.flap_count: expected an integer from 2 to 1000, got '1'",
      "invalid-range.yaml:20:12: traceroute.max_ttl: expected an integer from 1 to 255, got '256'",
    }},
    {"invalid-top-level.yaml", {
      "invalid-top-level.yaml:2:1: expected a map with 'agent' and 'groups' at the top level, got a list",
    }},
    {"invalid-traceroute-method.yaml", {
      "invalid-traceroute-method.yaml:8:11: traceroute.method: unknown traceroute method 'dns' (expected icmp, udp or tcp:PORT)",
    }},
    {"invalid-two-documents.yaml", {
      "invalid-two-documents.yaml:8:1: expected one YAML document, found 2",
    }},
    {"invalid-outputs.yaml", {
      "invalid-outputs.yaml:8:7: report.outputs[0]: an output has one kind, found 'file' and 'influx'",
      "invalid-outputs.yaml:9:15: report.outputs[1].influx: expected a URL starting with http:// or https://, got '127.0.0.1:8428/write'",
      "invalid-outputs.yaml:10:13: report.outputs[2].nats: expected a URL starting with nats:// or tls://, got 'http://127.0.0.1:4222'",
      "invalid-outputs.yaml:11:29: report.outputs[3].timeout: 'timeout' is for collector outputs only",
      "invalid-outputs.yaml:12:28: report.outputs[4].fsync: 'fsync' is for file outputs only",
      "invalid-outputs.yaml:12:48: report.outputs[4].gzip: expected true or false, got 'maybe'",
      "invalid-outputs.yaml:13:61: report.outputs[5].batch_bytes: expected a size such as 1048576, 512KiB, 64MiB or 2GiB, got '12XB'",
      "invalid-outputs.yaml:13:80: report.outputs[5].spool_bytes: size '10' out of range (1048576 to 1125899906842624 bytes)",
      "invalid-outputs.yaml:14:49: report.outputs[6].subject: expected a NATS subject such as outpost or metrics.outpost, got 'a..b'",
      "invalid-outputs.yaml:14:63: report.outputs[6].name: expected a name of letters, digits, '-' and '_' (at most 64), got 'bad name'",
      "invalid-outputs.yaml:15:7: report.outputs[7]: retry_max is shorter than retry_min",
      "invalid-outputs.yaml:17:7: report.outputs[9]: duplicate output name 'same' (first at line 16)",
      "invalid-outputs.yaml:18:7: report.outputs[10]: an output needs one of file, http, influx, prometheus_remote_write or nats",
    }},
    {"invalid-metrics.yaml", {
      "invalid-metrics.yaml:3:30: agent.metrics: expected ADDRESS:PORT such as 127.0.0.1:9464, or a PORT, got 'localhost:9464'",
    }},
    {"invalid-unknown-key.yaml", {
      "invalid-unknown-key.yaml:4:3: agent: unknown key 'max_ppz' (did you mean 'max_pps'?)",
      "invalid-unknown-key.yaml:6:3: defaults: unknown key 'intervall' (did you mean 'interval'?)",
      "invalid-unknown-key.yaml:7:1: unknown key 'grups' (did you mean 'groups'?)",
      "invalid-unknown-key.yaml:10:5: groups[0]: unknown key 'upstream' (did you mean 'upstream_asn'?)",
      "invalid-unknown-key.yaml:12:9: groups[0].targets[0]: missing required key 'address' or 'host'",
      "invalid-unknown-key.yaml:13:9: groups[0].targets[0]: unknown key 'adress' (did you mean 'address'?)",
      "invalid-unknown-key.yaml:14:39: groups[0].targets[0].dns: unknown key 'kind'",
      "invalid-unknown-key.yaml:15:9: groups[0].targets[0]: unknown key 'colour'",
      "invalid-unknown-key.yaml:19:7: report.outputs[0]: unknown key 'format'",
    }},
    {"invalid-wrong-type.yaml", {
      "invalid-wrong-type.yaml:4:12: agent.max_pps: expected a number from 0.001 to 10000000, got 'fast'",
      "invalid-wrong-type.yaml:5:14: agent.interface: expected a string, got a list",
      "invalid-wrong-type.yaml:8:19: groups[0].upstream_asn: expected an integer from 0 to 4294967295, got 'AS4837'",
      "invalid-wrong-type.yaml:9:14: groups[0].control: expected true or false, got 'maybe'",
      "invalid-wrong-type.yaml:13:17: groups[0].targets[0].probes: expected a non-empty list of probe methods such as [icmp, tcp:443], got 'icmp'",
      "invalid-wrong-type.yaml:15:15: detect.down_after: expected an integer from 1 to 1000, got '2.5'",
      "invalid-wrong-type.yaml:17:15: traceroute.reuse_hops: expected true or false, got 'sometimes'",
    }},
    {"invalid-yaml-syntax.yaml", {
      "invalid-yaml-syntax.yaml:9:9: YAML syntax error: end of sequence flow not found",
    }},
};

}  // namespace

TEST_CASE("example.yaml loads with the values it documents", "[config][example]") {
  const std::string path = source_dir + "/config/example.yaml";
  Config config = load_valid(path);
  CHECK(config.path == path);

  CHECK(config.agent.id == "fra-1");
  CHECK(config.agent.max_pps == 1000);
  CHECK(config.agent.interface.empty());
  CHECK(config.agent.resolve_interval == 5min);
  CHECK(config.defaults.interval == 30s);
  CHECK(config.defaults.timeout == 2s);
  CHECK(config.defaults.probes == methods({"icmp", "tcp:80"}));
  CHECK(config.defaults.family == TargetFamily::automatic);
  CHECK(config.asn_table == "/usr/lib/python3/dist-packages/data/ipasn_20140513.dat.gz");
  CHECK(config.asn_names == "/usr/lib/python3/dist-packages/data/asnames.json");

  REQUIRE(config.groups.size() == 2);
  const Group& kp = config.groups[0];
  CHECK(kp.name == "kp");
  CHECK(kp.upstream_asn == 4837u);
  CHECK_FALSE(kp.control);
  REQUIRE(kp.targets.size() == 4);
  // One target in each of North Korea's four /24s.
  const char* networks[] = {"175.45.176.", "175.45.177.", "175.45.178.", "175.45.179."};
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(kp.targets[i].address.rfind(networks[i], 0) == 0);
    CHECK(kp.targets[i].host.empty());
  }

  const Target& naenara = kp.targets[0];
  CHECK(naenara.name == "naenara");
  CHECK(naenara.address == "175.45.176.71");
  CHECK(naenara.probes == methods({"icmp", "tcp:80", "dns"}));
  CHECK(naenara.interval == 15s);  // the group's
  CHECK(naenara.timeout == 3s);    // the group's
  REQUIRE(naenara.dns.has_value());
  CHECK(naenara.dns->query == "naenara.com.kp");
  CHECK(naenara.dns->type == "A");
  CHECK(naenara.dns->expect.empty());

  const Target& kp177 = kp.targets[1];
  CHECK(kp177.probes == methods({"icmp", "tcp:80"}));  // the defaults'
  CHECK(kp177.interval == 15s);
  CHECK(kp177.timeout == 3s);
  CHECK_FALSE(kp177.dns.has_value());
  const Target& kp179 = kp.targets[3];
  CHECK(kp179.interval == 30s);  // its own
  CHECK(kp179.timeout == 5s);

  const Group& control = config.groups[1];
  CHECK(control.name == "control");
  CHECK(control.control);
  CHECK_FALSE(control.upstream_asn.has_value());
  REQUIRE(control.targets.size() == 2);
  CHECK(control.targets[0].address == "192.0.2.1");
  CHECK(control.targets[0].interval == 10s);
  CHECK(control.targets[0].timeout == 2s);
  CHECK(control.targets[0].probes == methods({"icmp", "tcp:80"}));
  CHECK(control.targets[1].address == "198.51.100.1");
  CHECK(control.targets[1].probes == methods({"icmp", "tcp_connect:443"}));

  CHECK(config.detect.down_after == 3);
  CHECK(config.detect.up_after == 2);
  CHECK(config.detect.group_fraction == 0.5);
  CHECK(config.detect.suspect_interval == 5s);
  CHECK(config.detect.flap_count == 4);
  CHECK(config.detect.flap_window == 10min);
  CHECK(config.traceroute.method == "icmp");
  CHECK(config.traceroute.max_ttl == 30);
  CHECK(config.traceroute.attempts == 2);
  CHECK(config.traceroute.gap_limit == 5);
  CHECK(config.traceroute.parallel == 8);
  CHECK(config.traceroute.timeout == 1s);
  CHECK(config.traceroute.baseline_interval == 1h);
  CHECK(config.traceroute.reuse_hops);
  CHECK(config.report.window == 60s);
  REQUIRE(config.report.outputs.size() == 1);
  CHECK(config.report.outputs[0].target == "/var/lib/outpost/results.jsonl");
  CHECK(config.agent.state_dir == "/var/lib/outpost");
}

TEST_CASE("valid-minimal.yaml gets every default", "[config]") {
  Config config = load_valid(testdata_dir + "/valid-minimal.yaml");
  CHECK(config.agent.id == "fra-1");
  CHECK(config.agent.max_pps == 1000);
  CHECK(config.defaults.interval == 30s);
  CHECK(config.defaults.timeout == 2s);
  CHECK(config.defaults.probes == methods({"icmp"}));
  CHECK(config.asn_table.empty());
  CHECK(config.detect.down_after == 3);
  CHECK(config.detect.up_after == 2);
  CHECK(config.traceroute.method == "icmp");
  CHECK(config.traceroute.max_ttl == 30);
  CHECK(config.report.window == 60s);
  CHECK(config.report.outputs.empty());

  REQUIRE(config.groups.size() == 1);
  const Group& group = config.groups[0];
  CHECK(group.name == "kp");
  CHECK_FALSE(group.upstream_asn.has_value());
  CHECK_FALSE(group.control);
  CHECK(group.mark.line == 5);
  CHECK(group.mark.col == 5);
  REQUIRE(group.targets.size() == 1);
  const Target& target = group.targets[0];
  CHECK(target.name == "naenara");
  CHECK(target.address == "175.45.176.71");
  CHECK(target.probes == methods({"icmp"}));
  CHECK(target.interval == 30s);
  CHECK(target.timeout == 2s);
  CHECK(target.mark.line == 7);
  CHECK(target.mark.col == 9);
}

TEST_CASE("valid-agent-user.yaml names the user and group, and where they stand", "[config][privileges]") {
  Config config = load_valid(testdata_dir + "/valid-agent-user.yaml");
  CHECK(config.agent.user == "nobody");
  CHECK(config.agent.group == "nogroup");
  CHECK(config.agent.user_mark == SourceMark{4, 9});
  CHECK(config.agent.group_mark == SourceMark{5, 10});
  CHECK(config.agent.state_dir_mark == SourceMark{6, 14});
  CHECK(config.asn_table_mark == SourceMark{7, 12});
  CHECK(config.asn_names_mark == SourceMark{});
  // Without the keys: no user to switch to, and no marks.
  Config plain = load_valid(testdata_dir + "/valid-minimal.yaml");
  CHECK(plain.agent.user.empty());
  CHECK(plain.agent.group.empty());
  CHECK(plain.agent.user_mark == SourceMark{});
}

TEST_CASE("agent.user takes account names and refuses the rest", "[config][privileges]") {
  auto user_error = [](const std::string& user) {
    ConfigLoad load = load_config_string(
        "agent: { id: a, user: " + user + " }\ngroups: [ { name: g, targets: [ { name: t, address: 192.0.2.1 } ] } ]\n",
        "c.yaml");
    return load.errors.empty() ? std::string() : load.errors[0].message;
  };
  for (const char* good : {"outpost", "_outpost", "out-post.1", "Debian-exim", "a2345678901234567890123456789012"})
    CHECK(user_error(good).empty());
  for (const char* bad : {"'0'", "'-x'", "'a b'", "'../etc'", "'a2345678901234567890123456789012x'", "'user$'"})
    CHECK_THAT(user_error(bad), Catch::Matchers::StartsWith("agent.user: expected a user or group name"));
  CHECK(user_error("''") == "agent.user: expected a non-empty string, got ''");
}

TEST_CASE("valid-inheritance.yaml resolves target, then group, then defaults", "[config]") {
  Config config = load_valid(testdata_dir + "/valid-inheritance.yaml");
  CHECK(config.agent.id == "ams-2");
  CHECK(config.agent.max_pps == 2.5);
  CHECK(config.agent.interface == "eth1");
  CHECK(config.agent.resolve_interval == 90s);
  CHECK(config.asn_table == "/srv/outpost/pfx2as.txt.gz");
  CHECK(config.asn_names == "/srv/outpost/asnames.json");
  CHECK(config.defaults.interval == 20s);
  CHECK(config.defaults.timeout == 1500ms);
  CHECK(config.defaults.probes == methods({"icmp", "tcp:443"}));

  const Target& naenara = target_named(config, "naenara");  // group, group, defaults
  CHECK(naenara.probes == methods({"icmp", "tcp_connect:80", "dns"}));
  CHECK(naenara.interval == 1min);
  CHECK(naenara.timeout == 1500ms);
  REQUIRE(naenara.dns.has_value());
  CHECK(naenara.dns->query == "naenara.com.kp");
  CHECK(naenara.dns->type == "A");

  const Target& kcna = target_named(config, "kcna");  // all its own
  CHECK(kcna.address.empty());
  CHECK(kcna.host == "kcna.kp.");
  CHECK(kcna.probes == methods({"tcp:80"}));
  CHECK(kcna.interval == 5s);
  CHECK(kcna.timeout == 250ms);
  CHECK_FALSE(kcna.dns.has_value());

  const Target& v6 = target_named(config, "v6");  // group's interval and probes, own timeout
  CHECK(v6.address == "2001:db8::1");
  CHECK(v6.interval == 1min);
  CHECK(v6.timeout == 59s);
  REQUIRE(v6.dns.has_value());
  CHECK(v6.dns->query == "1.2.0.192.in-addr.arpa");
  CHECK(v6.dns->type == "PTR");  // written "ptr"
  CHECK(v6.dns->expect == std::vector<std::string>{"naenara.com.kp.", "other.kp."});

  const Group& control = config.groups.at(1);
  CHECK(control.control);  // written "yes"
  const Target& anchor1 = target_named(config, "anchor1");  // all from defaults
  CHECK(anchor1.probes == methods({"icmp", "tcp:443"}));
  CHECK(anchor1.interval == 20s);
  CHECK(anchor1.timeout == 1500ms);
  const Target& anchor2 = target_named(config, "anchor2");
  CHECK(anchor2.host == "example.net");
  CHECK(anchor2.interval == 2s);
  CHECK(anchor2.timeout == 1500ms);

  CHECK(config.groups.at(0).upstream_asn == 4837u);
  CHECK(config.detect.down_after == 5);
  CHECK(config.detect.up_after == 1);
  CHECK(config.detect.group_fraction == 1.0);
  CHECK(config.detect.suspect_interval == 500ms);
  CHECK(config.detect.flap_count == 6);
  CHECK(config.detect.flap_window == 2min);
  CHECK(config.traceroute.method == "tcp:443");  // written "tcp:0443"
  CHECK(config.traceroute.max_ttl == 255);
  CHECK(config.traceroute.attempts == 3);
  CHECK(config.traceroute.gap_limit == 4);
  CHECK(config.traceroute.parallel == 16);
  CHECK(config.traceroute.timeout == 750ms);
  CHECK(config.traceroute.baseline_interval == 10min);
  CHECK_FALSE(config.traceroute.reuse_hops);  // written "no"
  CHECK(config.report.window == 90s);
  REQUIRE(config.report.outputs.size() == 2);
  CHECK(config.report.outputs[0].target == "/tmp/a.jsonl");
  CHECK(config.report.outputs[1].target == "/tmp/b.jsonl");
}

TEST_CASE("valid-outputs.yaml: every output kind, bare and with options", "[config]") {
  using Kind = OutputSpec::Kind;
  Config config = load_valid(testdata_dir + "/valid-outputs.yaml");
  CHECK(config.agent.state_dir == "/var/lib/outpost");
  const auto& o = config.report.outputs;
  REQUIRE(o.size() == 7);
  CHECK(o[0].kind == Kind::file);
  CHECK(o[0].target == "/var/lib/outpost/results.jsonl");
  CHECK(o[0].fsync);
  CHECK(o[0].name.rfind("file-", 0) == 0);
  CHECK(o[1].name == "fast");
  CHECK_FALSE(o[1].fsync);
  CHECK(o[1].flush_interval == 250ms);
  CHECK(o[2].kind == Kind::http);
  CHECK_FALSE(o[2].gzip.has_value());
  CHECK(o[3].kind == Kind::influx);
  CHECK(o[3].name.rfind("influx-", 0) == 0);
  CHECK(o[3].name != o[4].name);
  CHECK(o[4].name == "influx1");
  CHECK(o[4].gzip == false);
  CHECK(o[4].timeout == 3s);
  CHECK(o[4].batch_age == 2s);
  CHECK(o[4].batch_bytes == 512 * 1024);
  CHECK(o[4].spool_bytes == 64ull << 20);
  CHECK(o[4].retry_min == 500ms);
  CHECK(o[4].retry_max == 1min);
  CHECK(o[4].token_file == "/etc/outpost/influx.token");
  CHECK(o[5].kind == Kind::prometheus_remote_write);
  CHECK(o[5].ca_file == "/etc/outpost/ca.pem");
  CHECK(o[5].name.rfind("remote_write-", 0) == 0);
  CHECK(o[6].kind == Kind::nats);
  CHECK(o[6].stream == "PROBES");
  CHECK(o[6].subject == "metrics.outpost");
  // Default names are stable: the same config names its spools the same way again.
  CHECK(load_valid(testdata_dir + "/valid-outputs.yaml").report.outputs[3].name == o[3].name);
}

TEST_CASE("parse_size: bytes and binary or decimal units", "[config]") {
  std::string error;
  CHECK(parse_size("1048576", &error) == 1048576u);
  CHECK(parse_size("512KiB", &error) == 512u * 1024);
  CHECK(parse_size("2GiB", &error) == 2ull << 30);
  CHECK(parse_size("3MB", &error) == 3000000u);
  CHECK_FALSE(parse_size("", &error));
  CHECK_FALSE(parse_size("1.5MiB", &error));
  CHECK_FALSE(parse_size("99999999999999999999", &error));
  CHECK_FALSE(parse_size("20000000000GiB", &error));
  CHECK_THAT(error, Catch::Contains("20000000000GiB"));
}

TEST_CASE("valid-family.yaml: family for host names inherits; a literal address has its own", "[config]") {
  Config config = load_valid(testdata_dir + "/valid-family.yaml");
  CHECK(config.defaults.family == TargetFamily::both);
  CHECK(target_named(config, "group-6").family == TargetFamily::v6);
  CHECK(target_named(config, "own-4").family == TargetFamily::v4);
  CHECK(target_named(config, "own-auto").family == TargetFamily::automatic);
  CHECK(target_named(config, "literal-4").family == TargetFamily::v4);  // not the group's 6
  CHECK(target_named(config, "literal-6").family == TargetFamily::v6);
  CHECK(target_named(config, "defaults-both").family == TargetFamily::both);
  CHECK(target_named(config, "literal-4-auto").family == TargetFamily::v4);
}

TEST_CASE("family: auto when nothing says otherwise", "[config]") {
  Config config = load_valid(testdata_dir + "/valid-inheritance.yaml");
  CHECK(config.defaults.family == TargetFamily::automatic);
  CHECK(target_named(config, "kcna").family == TargetFamily::automatic);     // a host name
  CHECK(target_named(config, "naenara").family == TargetFamily::v4);         // 175.45.176.71
  CHECK(target_named(config, "v6").family == TargetFamily::v6);              // 2001:db8::1
}

TEST_CASE("target_address_problem: one unicast host, each refused block to its edges", "[config]") {
  auto problem = [](const char* text) {
    unsigned char b[16];
    if (inet_pton(AF_INET, text, b) == 1) return std::string(outpost::target_address_problem(b, 4));
    REQUIRE(inet_pton(AF_INET6, text, b) == 1);
    return std::string(outpost::target_address_problem(b, 16));
  };
  for (const char* fine : {"0.0.0.1", "1.0.0.0", "127.0.0.1", "169.254.1.1", "223.255.255.255", "240.0.0.1",
                           "255.255.255.254", "::1", "::2", "2001:db8::1", "fe7f:ffff::1", "fec0::1", "feff::1",
                           "::fffe:c612:1", "::1:ffff:c612:1", "64:ff9b::c612:1"}) {
    INFO(fine);
    CHECK(problem(fine).empty());
  }
  CHECK(problem("0.0.0.0").starts_with("the unspecified address"));
  CHECK(problem("::").starts_with("the unspecified address"));
  for (const char* group : {"224.0.0.0", "224.0.0.1", "239.255.255.255", "ff00::", "ff02::1", "ffff:ffff::1"}) {
    INFO(group);
    CHECK(problem(group).starts_with("a multicast address"));
  }
  CHECK(problem("255.255.255.255").starts_with("the limited broadcast address"));
  for (const char* mapped : {"::ffff:0.0.0.0", "::ffff:198.18.0.1", "::ffff:255.255.255.255"}) {
    INFO(mapped);
    CHECK(problem(mapped).starts_with("an IPv4-mapped IPv6 address"));
  }
  for (const char* link : {"fe80::", "fe80::1", "febf:ffff::1"}) {
    INFO(link);
    CHECK(problem(link).starts_with("an IPv6 link-local address"));
  }
  const std::uint8_t five[5] = {198, 18, 0, 1, 0};
  CHECK(!outpost::target_address_problem(five, 5).empty());
}

TEST_CASE("family_text writes what the config reads", "[config]") {
  CHECK(family_text(TargetFamily::automatic) == "auto");
  CHECK(family_text(TargetFamily::v4) == "4");
  CHECK(family_text(TargetFamily::v6) == "6");
  CHECK(family_text(TargetFamily::both) == "both");
}

TEST_CASE("valid-timeout-over-interval.yaml: a timeout may exceed the interval", "[config]") {
  Config config = load_valid(testdata_dir + "/valid-timeout-over-interval.yaml");
  CHECK(config.defaults.interval == 200ms);
  CHECK(config.defaults.timeout == 500ms);
  const Target& modem = target_named(config, "modem");
  CHECK(modem.interval == 200ms);
  CHECK(modem.timeout == 500ms);
  const Target& teleport = target_named(config, "teleport");
  CHECK(teleport.interval == 100ms);
  CHECK(teleport.timeout == 2s);
}

TEST_CASE("valid-empty-sections.yaml: empty optional sections keep their defaults", "[config]") {
  Config config = load_valid(testdata_dir + "/valid-empty-sections.yaml");
  CHECK(config.defaults.interval == 30s);
  CHECK(config.detect.down_after == 3);
  CHECK(config.traceroute.max_ttl == 30);
  CHECK(config.report.outputs.empty());
  const Target& target = target_named(config, "t");
  CHECK(target.address == "::1");
  CHECK(target.probes == methods({"icmp"}));
  REQUIRE(target.dns.has_value());
  CHECK(target.dns->query == ".");
  CHECK(target.dns->type == "NS");
}

TEST_CASE("every valid-*.yaml loads", "[config]") {
  for (const auto& entry : std::filesystem::directory_iterator(testdata_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("valid-", 0) != 0) continue;
    INFO(name);
    load_valid(entry.path().string());
  }
}

TEST_CASE("each invalid-*.yaml gives exactly its pinned messages", "[config][invalid]") {
  for (const InvalidCase& item : invalid_cases) {
    SECTION(item.file) {
      const std::string prefix = testdata_dir + "/";
      ConfigLoad load = load_config_file(prefix + item.file);
      CHECK_FALSE(load.config.has_value());
      std::vector<std::string> actual;
      for (const std::string& message : messages(load)) {
        REQUIRE(message.rfind(prefix, 0) == 0);  // errors name the file as it was given
        actual.push_back(message.substr(prefix.size()));
      }
      CHECK(actual == item.messages);

      // The same text under another name gives the same messages.
      ConfigLoad from_string = load_config_string(read_text(prefix + item.file), item.file);
      CHECK(messages(from_string) == item.messages);
    }
  }
}

TEST_CASE("every invalid-*.yaml has a row in the table, and every row a file", "[config][invalid]") {
  std::set<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(testdata_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("invalid-", 0) == 0 && entry.path().extension() == ".yaml") files.insert(name);
  }
  std::set<std::string> rows;
  for (const InvalidCase& item : invalid_cases) {
    CHECK(rows.insert(item.file).second);  // no row twice
    CHECK_FALSE(item.messages.empty());
  }
  for (const std::string& file : files) {
    INFO(file << " has no row in invalid_cases: pin its messages");
    CHECK(rows.count(file) == 1);
  }
  for (const std::string& row : rows) {
    INFO(row << " is in invalid_cases but not in config/testdata");
    CHECK(files.count(row) == 1);
  }
}

TEST_CASE("a file that cannot be read is one error without a position", "[config]") {
  ConfigLoad missing = load_config_file(testdata_dir + "/no-such-file.yaml");
  CHECK_FALSE(missing.config.has_value());
  CHECK(messages(missing) ==
        std::vector<std::string>{testdata_dir + "/no-such-file.yaml: cannot open: No such file or directory"});
  CHECK(missing.errors.at(0).line == 0);
  CHECK(missing.errors.at(0).col == 0);

  ConfigLoad directory = load_config_file(testdata_dir);
  CHECK(messages(directory) == std::vector<std::string>{testdata_dir + ": cannot read: Is a directory"});
}

TEST_CASE("ConfigError::to_string", "[config]") {
  CHECK(ConfigError{"cfg.yaml", 7, 5, "groups[0]: oops"}.to_string() == "cfg.yaml:7:5: groups[0]: oops");
  CHECK(ConfigError{"cfg.yaml", 0, 0, "cannot open: x"}.to_string() == "cfg.yaml: cannot open: x");
}

TEST_CASE("load_config_string collects all problems in file order", "[config]") {
  const std::string text =
      "groups:\n"
      "  - name: b\n"
      "    targets: [{ name: t, address: 192.0.2.4, timeout: 1x }]\n"
      "agent: { id: a, max_pps: -1 }\n"
      "colour: red\n";
  CHECK(messages(load_config_string(text, "cfg.yaml")) ==
        std::vector<std::string>{
            "cfg.yaml:3:55: groups[0].targets[0].timeout: '1x': unknown unit 'x' (expected ns, us, ms, s, m or h)",
            "cfg.yaml:4:26: agent.max_pps: expected a number from 0.001 to 10000000, got '-1'",
            "cfg.yaml:5:1: unknown key 'colour'",
        });
}

TEST_CASE("agent.metrics: off by default, IPv4 ADDRESS:PORT or a bare PORT on 127.0.0.1", "[config]") {
  auto load = [](const std::string& value) {
    return load_config_string("agent: { id: a" + (value.empty() ? std::string() : ", metrics: " + value) +
                                  " }\ngroups: [{ name: g, targets: [{ name: t, address: 192.0.2.1 }] }]\n",
                              "m.yaml");
  };
  CHECK(load("").config->agent.metrics.empty());
  CHECK(load("9464").config->agent.metrics == "127.0.0.1:9464");
  CHECK(load("0.0.0.0:9100").config->agent.metrics == "0.0.0.0:9100");
  CHECK(messages(load("'[::1]:9464'")) ==
        std::vector<std::string>{"m.yaml:1:26: agent.metrics: the /metrics endpoint listens on IPv4 only, got "
                                 "'[::1]:9464'"});
  CHECK(messages(load("'::1:9464'")).size() == 1);
  CHECK(messages(load("127.0.0.1:70000")) ==
        std::vector<std::string>{"m.yaml:1:26: agent.metrics: port must be a number from 1 to 65535, got "
                                 "'127.0.0.1:70000'"});
  CHECK(messages(load("0")) ==
        std::vector<std::string>{"m.yaml:1:26: agent.metrics: port must be a number from 1 to 65535, got '0'"});
  CHECK(messages(load("'[127.0.0.1]:80'")).size() == 1);
  CHECK(messages(load("'127.0.0.1:'")).size() == 1);
}

TEST_CASE("a dns: block without a dns probe is accepted", "[config]") {
  ConfigLoad load = load_config_string(
      "agent: { id: a }\n"
      "groups: [{ name: g, targets: [{ name: t, address: 192.0.2.1, dns: { query: example.com } }] }]\n",
      "cfg.yaml");
  REQUIRE(load.errors.empty());
  CHECK(load.config->groups[0].targets[0].dns->query == "example.com");
}

TEST_CASE("the loader never throws, whatever it is given", "[config]") {
  const std::vector<std::string> texts = {
      "", "~", "[", "]", "{", "a: b: c", "\t- x", "- - - -", std::string(5000, '['),
      "agent: &a { id: x }\ngroups: [*a]", "? [a]\n: b", "agent: !!binary AAAA", "\xff\xfe\x00",
      "groups: [{ name: g, targets: [{ name: t, address: 192.0.2.4, probes: [tcp:99999999999999999999] }] }]",
      "agent: { id: a, max_pps: 1e999 }", "detect: { down_after: 99999999999999999999 }",
      std::string("agent:\0 x", 9),
  };
  for (const std::string& text : texts) {
    INFO(text.substr(0, 80));
    ConfigLoad load;
    CHECK_NOTHROW(load = load_config_string(text, "fuzz.yaml"));
    CHECK_FALSE(load.errors.empty());
    CHECK(load.config.has_value() == load.errors.empty());
  }
}

namespace {

// A config of `groups` groups, each the same aliased group of `targets`
// aliased targets, each with the same aliased list of `probes` items, all
// null (values without text, so that the bound on values is met before the
// bound on text).
std::string alias_bomb(int groups, int targets, int probes) {
  std::string text = "agent: { id: a }\ndefaults: { probes: &p [";
  for (int i = 1; i <= probes; ++i) text += i > 1 ? ", ~" : "~";
  text += "] }\ngroups: [&g { name: g, targets: [&t { name: t, address: 192.0.2.1, probes: *p }";
  for (int i = 1; i < targets; ++i) text += ", *t";
  text += "] }";
  for (int i = 1; i < groups; ++i) text += ", *g";
  return text + "]\n";
}

}  // namespace

TEST_CASE("an alias bomb is refused at the alias that passes the bound, before it is built", "[config][bounds]") {
  // 1000 x 1000 x 1000: a billion probe methods from 10 KB; walked, it would
  // take hours and gigabytes.
  const std::string bomb = alias_bomb(1000, 1000, 1000);
  REQUIRE(bomb.size() < 20000);
  const ConfigLoad load = load_config_string(bomb, "bomb.yaml");
  CHECK_FALSE(load.config.has_value());
  REQUIRE(load.errors.size() == 1);
  CHECK(load.errors[0].line == 3);
  CHECK(load.errors[0].col > 1);
  CHECK(load.errors[0].message ==
        "this alias takes the config past 4000000 values (an alias repeats all that its anchor names)");
}

TEST_CASE("aliases within the bound load as if written out", "[config][bounds]") {
  const ConfigLoad shared = load_config_string(
      "agent: { id: a }\n"
      "groups:\n"
      "  - { name: a, probes: &web [icmp, tcp:443], targets: [{ name: t1, address: 192.0.2.1 }] }\n"
      "  - { name: b, probes: *web, targets: [{ name: t2, address: 192.0.2.2 }] }\n",
      "shared.yaml");
  for (const ConfigError& error : shared.errors) UNSCOPED_INFO(error.to_string());
  REQUIRE(shared.config.has_value());
  CHECK(shared.config->groups[1].targets[0].probes == methods({"icmp", "tcp:443"}));
}

TEST_CASE("a config with more values than the bound is refused without aliases too", "[config][bounds]") {
  std::string text = "agent: { id: a }\nx: [";
  for (std::size_t i = 0; i <= kMaxConfigValues; ++i) text += "1,";
  text += "1]\n";
  REQUIRE(text.size() < kMaxConfigBytes);
  const ConfigLoad load = load_config_string(text, "many.yaml");
  REQUIRE(load.errors.size() == 1);
  CHECK(load.errors[0].message == "the config has more than 4000000 values");
  CHECK(load.errors[0].line == 2);
}

TEST_CASE("an aliased long scalar counts its bytes each time it is repeated", "[config][bounds]") {
  std::string text = "agent: { id: &id " + std::string(1 << 20, 'x') + " }\nx: [";
  for (int i = 0; i < 20; ++i) text += "*id, ";
  text += "*id]\n";
  const ConfigLoad load = load_config_string(text, "long.yaml");
  REQUIRE(load.errors.size() == 1);
  CHECK(load.errors[0].message ==
        "this alias takes the config past 16 MiB of text (an alias repeats all that its anchor names)");
  CHECK(load.errors[0].line == 2);
}

TEST_CASE("a config file past 16 MiB is refused after reading one byte more, /dev/zero too", "[config][bounds]") {
  const ConfigLoad zero = load_config_file("/dev/zero");
  CHECK(messages(zero) == std::vector<std::string>{"/dev/zero: larger than 16 MiB: not a config"});
  const ConfigLoad big = load_config_string(std::string(kMaxConfigBytes + 1, '#'), "big.yaml");
  CHECK(messages(big) == std::vector<std::string>{"big.yaml: larger than 16 MiB: not a config"});
}

TEST_CASE("at most 1000 problems are listed; one last line counts the rest", "[config][bounds]") {
  std::string text = "agent: { id: a }\ngroups: [{ name: g, targets: [";
  for (int i = 0; i < 1500; ++i) text += std::string(i ? ", " : "") + "{ name: t, address: 192.0.2.1 }";
  text += "] }]\n";
  const ConfigLoad load = load_config_string(text, "dup.yaml");
  REQUIRE(load.errors.size() == kMaxConfigErrors + 1);
  CHECK(load.errors.back().to_string() == "dup.yaml: and 499 more problems");
}

TEST_CASE("a value quoted in a message cannot act on the terminal", "[config][bounds]") {
  const ConfigLoad load = load_config_string(
      "agent: { id: a, max_pps: \"\\e]0;owned\\a\\e[2J\" }\ngroups: [{ name: g, targets: [{ name: t, address: 192.0.2.1 }] }]\n",
      "esc.yaml");
  CHECK(messages(load) == std::vector<std::string>{
                              "esc.yaml:1:26: agent.max_pps: expected a number from 0.001 to 10000000, got "
                              "'\\x1b]0;owned\\x07\\x1b[2J'"});
}
