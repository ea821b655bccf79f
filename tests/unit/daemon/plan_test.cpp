// The plan: a config compiled into targets (one per address family), probe
// tasks and baseline traces, with host names' addresses given; and the diff
// a reload keeps task phases by. Pure: no lookups, no sockets.

#include <catch2/catch.hpp>

#include <string>
#include <unordered_map>

#include "plan.hpp"

using namespace std::chrono_literals;
using namespace outpost;

namespace {

Config load(const std::string& yaml) {
  ConfigLoad load = load_config_string(yaml, "plan.yaml");
  for (const auto& e : load.errors) UNSCOPED_INFO(e.to_string());
  REQUIRE(load.errors.empty());
  return *load.config;
}

HostAddresses dual(const char* v4, const char* v6) {
  HostAddresses a;
  if (v4) a.v4 = *IpAddress::parse(v4);
  else a.error4 = "host has no IPv4 address";
  if (v6) a.v6 = *IpAddress::parse(v6);
  else a.error6 = "host has no IPv6 address";
  return a;
}

const PlannedTarget& target(const Plan& plan, const std::string& key) {
  for (const auto& t : plan.targets)
    if (t.key == key) return t;
  FAIL("no target " << key);
  throw;
}

const char* const kConfig = R"(
agent: { id: fra-1, max_pps: 500 }
defaults: { interval: 10s, timeout: 1s, probes: [icmp, "tcp:443"] }
groups:
  - name: kp
    upstream_asn: 4837
    targets:
      - { name: naenara, address: 175.45.176.71 }
      - { name: web, host: www.example.kp, family: both }
      - { name: six, host: six.example.kp, family: 6 }
      - { name: any, host: four.example.kp }
      - { name: lost, host: nowhere.example.kp, family: both }
  - name: control
    control: true
    targets:
      - { name: anchor, address: "2001:db8::53", probes: [icmp], interval: 2s }
)";

std::unordered_map<std::string, HostAddresses> hosts() {
  return {{"www.example.kp", dual("175.45.176.80", "2001:db8:ab::80")},
          {"six.example.kp", dual("175.45.176.6", "2001:db8:ab::6")},
          {"four.example.kp", dual("175.45.176.4", nullptr)}};
}

}  // namespace

TEST_CASE("plan: one target per family, keys, families and addresses", "[plan]") {
  const Config config = load(kConfig);
  std::string error;
  const auto plan = make_plan(config, hosts(), true, &error);
  REQUIRE(plan);
  CHECK(error.empty());
  // naenara, web/4, web/6, six, any, lost/4, lost/6, anchor
  REQUIRE(plan->targets.size() == 8);
  CHECK(target(*plan, "naenara").af == 4);
  CHECK(target(*plan, "naenara").address == *IpAddress::parse("175.45.176.71"));
  CHECK(target(*plan, "web/4").address == *IpAddress::parse("175.45.176.80"));
  CHECK(target(*plan, "web/4").name() == "web");
  CHECK(target(*plan, "anchor").name() == "anchor");
  CHECK(target(*plan, "web/6").address == *IpAddress::parse("2001:db8:ab::80"));
  CHECK(target(*plan, "web/6").af == 6);
  // family 6: the IPv6 address, although the name has an IPv4 one.
  CHECK(target(*plan, "six").address == *IpAddress::parse("2001:db8:ab::6"));
  CHECK(target(*plan, "any").address == *IpAddress::parse("175.45.176.4"));
  // Not resolving: no address, an error, and the family still known.
  CHECK_FALSE(target(*plan, "lost/6").address);
  CHECK(target(*plan, "lost/6").af == 6);
  CHECK_FALSE(target(*plan, "lost/6").error.empty());
  CHECK(target(*plan, "anchor").control);
  CHECK(target(*plan, "anchor").af == 6);
  CHECK(target(*plan, "naenara").upstream_asn == 4837u);
  CHECK(target(*plan, "naenara").tcp_port == 443);
  CHECK_FALSE(plan->warnings.empty());  // lost/4 and lost/6
}

TEST_CASE("plan: a dual-stack name never falls back from one family to the other", "[plan]") {
  const Config config = load(R"(
agent: { id: a }
groups:
  - name: g
    targets:
      - { name: v4only, host: v4only.test, family: both }
      - { name: want6, host: v4only.test, family: 6 }
)");
  std::string error;
  const auto plan = make_plan(config, {{"v4only.test", dual("198.18.0.1", nullptr)}}, true, &error);
  REQUIRE(plan);
  CHECK(target(*plan, "v4only/4").address == *IpAddress::parse("198.18.0.1"));
  CHECK_FALSE(target(*plan, "v4only/6").address);
  CHECK(target(*plan, "v4only/6").error == "host has no IPv6 address");
  CHECK_FALSE(target(*plan, "want6").address);
}

TEST_CASE("plan: tasks are target × method with labels carrying af", "[plan]") {
  const Config config = load(kConfig);
  std::string error;
  const auto plan = make_plan(config, hosts(), true, &error);
  REQUIRE(plan);
  // 7 targets × 2 methods + anchor × 1
  CHECK(plan->tasks.size() == 15);
  const auto& web6 = target(*plan, "web/6");
  REQUIRE(web6.task_count == 2);
  const PlannedTask& icmp = plan->tasks[web6.first_task];
  const PlannedTask& tcp = plan->tasks[web6.first_task + 1];
  CHECK(plan->labels(icmp).target == "web");
  CHECK(plan->labels(icmp).group == "kp");
  CHECK(plan->labels(icmp).agent == "fra-1");
  CHECK(plan->labels(icmp).af == 6);
  CHECK(plan->labels(icmp).method == "icmp");
  CHECK(icmp.method_index == 0);
  CHECK(plan->labels(tcp).method == "tcp");
  CHECK(plan->labels(tcp).port == 443);
  CHECK(tcp.method_index == 1);
  CHECK(icmp.interval == 10s);
  CHECK(plan->tasks[target(*plan, "anchor").first_task].interval == 2s);
  CHECK(plan->longest_timeout == 1s);
  CHECK(plan->trace_spread == 2s);  // the shortest interval
  CHECK(plan->traces.size() == 8);  // a baseline per target, with raw sockets
  // The suspect interval: a quarter of the interval, never below the timeout.
  CHECK(target(*plan, "naenara").suspect_interval == 2500ms);
  CHECK(target(*plan, "anchor").suspect_interval == 1s);
}

TEST_CASE("plan: without raw sockets, icmp cannot run, tcp connects, and there are no traces", "[plan]") {
  const Config config = load(kConfig);
  std::string error;
  const auto plan = make_plan(config, hosts(), false, &error);
  REQUIRE(plan);
  const auto& t = target(*plan, "naenara");
  CHECK(plan->tasks[t.first_task + 0].error == "probe method icmp needs CAP_NET_RAW");
  CHECK(plan->tasks[t.first_task + 1].method.kind == ProbeMethod::Kind::tcp_connect);
  CHECK(plan->tasks[t.first_task + 1].error.empty());
  CHECK(plan->traces.empty());
}

TEST_CASE("plan: the diff of a reload pairs the tasks that stay", "[plan]") {
  const Config before_config = load(kConfig);
  std::string text = kConfig;
  // One target fewer, one method more for another.
  text.replace(text.find("      - { name: naenara, address: 175.45.176.71 }\n"),
               std::string("      - { name: naenara, address: 175.45.176.71 }\n").size(), "");
  text.replace(text.find("probes: [icmp], interval: 2s"), std::string("probes: [icmp]").size(),
               "probes: [icmp, \"tcp:53\"]");
  const Config after_config = load(text);
  std::string error;
  const auto before = make_plan(before_config, hosts(), true, &error);
  const auto after = make_plan(after_config, hosts(), true, &error);
  REQUIRE(before);
  REQUIRE(after);
  const PlanDiff diff = diff_plans(*before, *after);
  REQUIRE(diff.tasks.size() == after->tasks.size());
  int kept = 0, added = 0;
  for (std::size_t i = 0; i < diff.tasks.size(); ++i) {
    const auto& now = after->tasks[i];
    if (!diff.tasks[i]) {
      ++added;
      CHECK(after->targets[now.target].key == "anchor");
      CHECK(after->labels(now).method == "tcp");
      continue;
    }
    ++kept;
    const auto& then = before->tasks[*diff.tasks[i]];
    CHECK(before->targets[then.target].key == after->targets[now.target].key);
    CHECK(before->labels(then).method == after->labels(now).method);
    CHECK(before->labels(then).port == after->labels(now).port);
  }
  CHECK(kept == 13);
  CHECK(added == 1);
  for (std::size_t i = 0; i < diff.traces.size(); ++i) CHECK(diff.traces[i].has_value());
}

TEST_CASE("plan: host_names lists each name once, in config order", "[plan]") {
  const Config config = load(kConfig);
  CHECK(host_names(config) ==
        std::vector<std::string>{"www.example.kp", "six.example.kp", "four.example.kp", "nowhere.example.kp"});
}
