// The whole daemon in simulated time, without root: the real Agent, Engine,
// probes and EventLoop over a simulated copy of the lab (TESTBED.md):
//
//   vp ── isp ── carrier ── border ──┬── net1..net4 hosts (198.18.N.1, 2001:2:0:N::1)
//   (us)  AS64496  AS64500   AS64510  └── AS64510
//          └── control host (198.19.1.1, AS64520)
//
// It tells the seed's stories: a carrier cut gives group_down with verdict
// upstream and the carrier's ASN, and group_up with the cut's duration; a
// dead host behind a healthy border gives target_network; a vantage cut
// gives only vantage_down, whatever the phases; a reload mid-outage; random
// loss with no event; a stalled loop; traces that do not wait for a tick;
// bounded investigations; dual-stack targets; a timeout longer than the interval.

#include <catch2/catch.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent.hpp"
#include "clock.hpp"
#include "engine.hpp"
#include "event_loop.hpp"
#include "host_resolver.hpp"
#include "json_lines.hpp"
#include "outputs.hpp"
#include "sim_net.hpp"

using namespace std::chrono_literals;
using namespace outpost;
using outpost::sim::SimDriver;
using outpost::sim::SimNet;
using outpost::sim::Uplink;

namespace {

IpAddress ip(const std::string& text) { return IpAddress::parse(text).value(); }

const IpAddress kUs4 = ip("198.19.0.1");
const IpAddress kUs6 = ip("2001:2::1");
const IpAddress kIsp = ip("198.19.0.2"), kCarrier = ip("198.19.0.6"), kBorder = ip("198.19.0.10");
const IpAddress kIsp6 = ip("2001:2:0:ff00::2"), kCarrier6 = ip("2001:2:0:ff01::2"), kBorder6 = ip("2001:2:0:ff02::2");
const IpAddress kControl = ip("198.19.1.1");

const char* const kAsnTable =
    "198.19.0.0/30\t64496\n"
    "198.19.0.4/30\t64500\n"
    "198.19.0.8/30\t64510\n"
    "198.18.0.0/16\t64510\n"
    "198.19.1.0/24\t64520\n"
    "2001:2:0:ff00::/64\t64496\n"
    "2001:2:0:ff01::/64\t64500\n"
    "2001:2:0:ff02::/64\t64510\n"
    "2001:2::/48\t64510\n";

// Records as the outputs get them, each with the simulated time it was written.
class Capture final : public RecordSink {
 public:
  struct Entry {
    Record record;
    WallTime written;
  };
  explicit Capture(Clock& clock) : clock_(clock) {}
  void write(const Record& r) override {
    ++counts[r.index()];
    if (keep_all || std::holds_alternative<EventRecord>(r)) entries.push_back({r, clock_.wall()});
  }
  void flush() override { ++flushes; }
  std::vector<Entry> entries;
  std::size_t counts[4] = {};  // by Record alternative: probe, series, trace, event
  bool keep_all = true;  // else only events are kept (a long run), the rest counted
  int flushes = 0;

 private:
  Clock& clock_;
};

std::string lab_config(const std::string& extra_targets = "", const std::string& settings = "") {
  return R"(
agent: { id: sim-1, max_pps: 100000 }
defaults: { interval: 1s, timeout: 500ms, probes: [icmp, "tcp:80"] }
detect: { down_after: 3, up_after: 2, suspect_interval: 500ms }
traceroute: { method: icmp, timeout: 200ms, baseline_interval: 1h }
report: { window: 10s }
)" + settings + R"(
groups:
  - name: lab
    upstream_asn: 64500
    targets:
      - { name: net1, address: 198.18.0.1 }
      - { name: net2, address: 198.18.1.1 }
      - { name: net3, address: 198.18.2.1 }
      - { name: net4, address: 198.18.3.1 }
)" + extra_targets + R"(
  - name: control
    control: true
    targets:
      - { name: anchor, address: 198.19.1.1, probes: [icmp] }
      - { name: anchor2, address: 198.19.1.2, probes: [icmp] }
)";
}

struct SimLab {
  FakeClock clock;
  EventLoop loop{clock};
  SimNet net{clock, loop, kUs4, kUs6};
  Engine engine{clock, net, FilterParams{0x4d2e}};
  SimDriver driver{clock, loop, net};
  TableResolver resolver{loop};
  Outputs outputs;
  Capture* capture = nullptr;
  std::unique_ptr<Agent> agent;
  SteadyTime t0 = clock.now();
  WallTime w0 = clock.wall();

  SimLab() {
    net.add_path("198.18.0.0/16", {kIsp, kCarrier, kBorder});
    net.add_path("2001:2::/48", {kIsp6, kCarrier6, kBorder6});
    net.add_path("198.19.1.0/24", {kIsp});
    for (int n = 0; n < 4; ++n) {
      net.add_host(ip("198.18." + std::to_string(n) + ".1"), true, {80});
      net.add_host(ip("2001:2:0:" + std::to_string(n + 1) + "::1"), true, {80});
    }
    net.add_host(kControl, true, {});
    net.add_host(ip("198.19.1.2"), true, {});
    auto sink = std::make_unique<Capture>(clock);
    capture = sink.get();
    outputs.add(std::move(sink));
    AsnLoadReport report;
    auto table = std::make_shared<const AsnTable>(AsnTable::parse(kAsnTable, "sim", &report));
    agent = std::make_unique<Agent>(AgentServices{
        loop, engine, outputs, resolver,
        [table](const Config&, std::string*) -> std::shared_ptr<const AsnTable> { return table; }, true, std::nullopt});
  }

  void apply(const std::string& yaml) {
    ConfigLoad load = load_config_string(yaml, "sim.yaml");
    for (const auto& e : load.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(load.errors.empty());
    REQUIRE(agent->apply(*load.config) == "");
  }
  void start(const std::string& yaml) {
    apply(yaml);
    agent->start();
  }
  void run_for(Duration d) { REQUIRE(driver.run_for(d)); }
  // Stops the agent and runs the loop until it has flushed and stopped.
  void stop() {
    agent->stop();
    REQUIRE(driver.run_for(30s));
    CHECK(agent->finished());
  }

  std::vector<EventRecord> events() const {
    std::vector<EventRecord> out;
    for (const auto& e : capture->entries)
      if (auto* ev = std::get_if<EventRecord>(&e.record)) out.push_back(*ev);
    return out;
  }
  std::vector<EventRecord> events_of(EventKind kind) const {
    std::vector<EventRecord> out;
    for (auto& e : events())
      if (e.event.kind == kind) out.push_back(e);
    return out;
  }
  template <typename T>
  std::vector<T> records() const {
    std::vector<T> out;
    for (const auto& e : capture->entries)
      if (auto* r = std::get_if<T>(&e.record)) out.push_back(*r);
    return out;
  }
  std::string describe_events() const {
    std::string s;
    for (const auto& e : events()) s += to_json(e).dump() + "\n";
    return s;
  }
  double seconds_since_start(WallTime t) const { return std::chrono::duration<double>(t - w0).count(); }
};

}  // namespace

TEST_CASE("agent sim: a carrier cut is group_down, upstream, the carrier's ASN; group_up has its duration",
          "[agent][sim]") {
  SimLab lab;
  lab.start(lab_config());
  lab.run_for(20s);
  CHECK(lab.events().empty());
  // Every target has a baseline that reached it.
  for (const char* t : {"net1", "net2", "net3", "net4"}) CHECK(lab.agent->last_good_trace(t));

  const WallTime cut = lab.clock.wall();
  lab.net.drop_forward(kCarrier, true);
  lab.run_for(60s);
  const WallTime healed = lab.clock.wall();
  lab.net.drop_forward(kCarrier, false);
  lab.run_for(20s);
  lab.stop();
  INFO(lab.describe_events());

  const auto down = lab.events_of(EventKind::group_down);
  REQUIRE(down.size() == 1);
  CHECK(down[0].event.group == "lab");
  REQUIRE(down[0].verdict);
  CHECK(down[0].verdict->where == Where::upstream);
  CHECK(down[0].verdict->last_hop == kCarrier);
  CHECK(down[0].verdict->last_hop_asn == 64500u);
  CHECK(down[0].verdict->baseline_reached_asn == 64510u);
  // Found within seconds: three failed rounds at the suspect interval, then the trace.
  CHECK(lab.seconds_since_start(down[0].time) - lab.seconds_since_start(cut) < 5.0);

  const auto up = lab.events_of(EventKind::group_up);
  REQUIRE(up.size() == 1);
  REQUIRE(up[0].event.end);
  const double duration = std::chrono::duration<double>(*up[0].event.end - up[0].event.start).count();
  const double truth = std::chrono::duration<double>(healed - cut).count();
  // Exact to the probing: start and end each lie within one interval of the truth.
  CHECK(up[0].event.start >= cut);
  CHECK(up[0].event.start - cut <= 1s);
  CHECK(*up[0].event.end >= healed);
  CHECK(*up[0].event.end - healed <= 1s);
  CHECK(std::abs(duration - truth) <= 1.0);
  // The vantage point was fine throughout: no vantage events; each target's outage came and went.
  CHECK(lab.events_of(EventKind::vantage_down).empty());
  CHECK(lab.events_of(EventKind::target_down).size() == 4);
  CHECK(lab.events_of(EventKind::target_up).size() == 4);
  for (const auto& e : lab.events_of(EventKind::target_down)) {
    REQUIRE(e.verdict);
    CHECK(e.verdict->where == Where::upstream);
    CHECK(e.event.af == 4);
  }
  // One failure trace served the group: not one per target.
  CHECK(lab.agent->investigations().started <= 2);
  CHECK(lab.agent->investigations().merged >= 3);
}

TEST_CASE("agent sim: a dead host behind a healthy border is target_network", "[agent][sim]") {
  SimLab lab;
  lab.start(lab_config());
  lab.run_for(15s);
  lab.net.host_down(ip("198.18.1.1"), true);
  lab.run_for(20s);
  lab.stop();
  INFO(lab.describe_events());
  const auto down = lab.events_of(EventKind::target_down);
  REQUIRE(down.size() == 1);
  CHECK(down[0].event.target == "net2");
  REQUIRE(down[0].verdict);
  CHECK(down[0].verdict->where == Where::target_network);
  CHECK(down[0].verdict->last_hop == kBorder);
  CHECK(down[0].verdict->last_hop_asn == 64510u);
  CHECK(lab.events_of(EventKind::group_down).empty());
  CHECK(lab.events_of(EventKind::vantage_down).empty());
}

TEST_CASE("agent sim: a vantage cut is only vantage_down, whatever the phases", "[agent][sim][vantage]") {
  // The hardest phases: one control target probed rarely, targets probed
  // often, the cut coming just after the control's last answer and just
  // before the targets come due.
  const Duration control_interval = GENERATE(as<Duration>{}, 2s, 10s);
  const Duration cut_offset = GENERATE(as<Duration>{}, 10ms, 490ms, 990ms, 1990ms);
  const Uplink how = GENERATE(Uplink::send_error, Uplink::silent);
  SimLab lab;
  const std::string controls = "interval: " + format_duration(control_interval);
  std::string config = lab_config();
  for (int k = 0; k < 2; ++k)
    config.replace(config.find("probes: [icmp] }"), std::string("probes: [icmp] }").size(),
                   "probes: [icmp], " + controls + " }");
  lab.start(config);
  lab.run_for(20s + cut_offset);
  const WallTime cut = lab.clock.wall();
  lab.net.uplink(how);
  lab.run_for(40s);
  lab.net.uplink(Uplink::up);
  lab.run_for(30s);
  lab.stop();
  INFO("control every " << format_duration(control_interval) << ", cut at +" << format_duration(cut_offset)
                        << ", uplink " << (how == Uplink::silent ? "silent" : "send errors"));
  INFO(lab.describe_events());
  const auto down = lab.events_of(EventKind::vantage_down);
  REQUIRE(down.size() == 1);
  CHECK(down[0].event.start >= cut);
  CHECK(lab.events_of(EventKind::vantage_up).size() == 1);
  CHECK(lab.events_of(EventKind::target_down).empty());
  CHECK(lab.events_of(EventKind::group_down).empty());
  CHECK(lab.events_of(EventKind::target_up).empty());
  // Probes that could not leave counted against the vantage point, not their targets.
  if (how == Uplink::send_error) CHECK(lab.agent->stats().local_errors > 0);
}

TEST_CASE("agent sim: a break found for one host does not explain another host's outage behind it",
          "[agent][sim]") {
  SimLab lab;
  lab.start(lab_config());
  lab.run_for(15s);
  lab.net.host_down(ip("198.18.1.1"), true);
  lab.run_for(10s);
  lab.net.host_down(ip("198.18.2.1"), true);
  lab.run_for(10s);
  lab.stop();
  INFO(lab.describe_events());
  const auto down = lab.events_of(EventKind::target_down);
  REQUIRE(down.size() == 2);
  // The path to net2 died at the border and went on to net2; net3's went on
  // to net3: each outage had a trace of its own.
  CHECK(lab.agent->investigations().started == 2);
  // Two of four down: the group is down too, and its event (traced toward
  // net2, its first target down) is explained by net2's break.
  CHECK(lab.events_of(EventKind::group_down).size() == 1);
  CHECK(lab.agent->investigations().merged == 1);
  for (const auto& e : down) {
    REQUIRE(e.verdict);
    CHECK(e.verdict->where == Where::target_network);
  }
}

TEST_CASE("agent sim: a reload in the middle of an outage neither forgets it nor reports it twice", "[agent][sim]") {
  SimLab lab;
  lab.start(lab_config());
  lab.run_for(15s);
  lab.net.drop_forward(kCarrier, true);
  lab.run_for(20s);
  REQUIRE(lab.events_of(EventKind::group_down).size() == 1);
  // A new target in another group, and a new detect setting: the outage goes on.
  lab.apply(lab_config("  - name: other\n    targets:\n      - { name: ctl2, address: 198.19.1.1 }\n"));
  lab.run_for(20s);
  lab.net.drop_forward(kCarrier, false);
  lab.run_for(20s);
  lab.stop();
  INFO(lab.describe_events());
  CHECK(lab.events_of(EventKind::group_down).size() == 1);
  CHECK(lab.events_of(EventKind::group_up).size() == 1);
  CHECK(lab.events_of(EventKind::target_down).size() == 4);
  CHECK(lab.events_of(EventKind::target_up).size() == 4);
  // ctl2 was up all along.
  CHECK(lab.events_of(EventKind::vantage_down).empty());
  for (const auto& e : lab.events()) CHECK(e.event.target != "ctl2");
}

TEST_CASE("agent sim: 10 % random loss everywhere raises no event", "[agent][sim]") {
  // A probe is lost when its request or its answer is (19 %); a round fails
  // only when every method's probe does. With two methods and a round a
  // second, three failed rounds in a row come about once per target every
  // six hours at this loss (0.19^2 for a round, then 0.19^4 for the next two
  // at the suspect interval); with three methods, once a month: that is the
  // config for a path this lossy.
  SimLab lab;
  lab.net.loss(0.10, 20141222);
  std::string config = lab_config();
  config.replace(config.find("probes: [icmp, \"tcp:80\"]"), std::string("probes: [icmp, \"tcp:80\"]").size(),
                 "probes: [icmp, \"tcp:80\", \"tcp:443\"]");
  lab.start(config);
  lab.run_for(300s);
  lab.stop();
  INFO(lab.describe_events());
  CHECK(lab.events().empty());
  // The loss is seen in the series all the same.
  std::uint64_t sent = 0, received = 0;
  for (const auto& s : lab.records<SeriesRecord>()) {
    sent += s.window.sent;
    received += s.window.received;
  }
  REQUIRE(sent > 1000);
  const double loss = 1.0 - static_cast<double>(received) / static_cast<double>(sent);
  CHECK(loss > 0.10);
  CHECK(loss < 0.30);
}

TEST_CASE("agent sim: a stall longer than the timeout turns no answered probe into a timeout", "[agent][sim]") {
  SimLab lab;
  lab.start(lab_config());
  lab.run_for(5s + 1ms);  // probes of this round have just gone out
  const auto probes_before = lab.records<ProbeRecord>().size();
  lab.driver.stall(2s);   // a slow disk, a starved process: four times the timeout
  lab.run_for(5s);
  lab.stop();
  std::size_t timeouts = 0, replies = 0;
  for (const auto& p : lab.records<ProbeRecord>()) {
    timeouts += p.result.status == ProbeStatus::timeout;
    replies += p.result.status == ProbeStatus::reply;
  }
  CHECK(lab.records<ProbeRecord>().size() > probes_before);
  CHECK(timeouts == 0);
  CHECK(replies > 0);
  CHECK(lab.events().empty());
}

TEST_CASE("agent sim: trace hops go out as answers come, not a tick later", "[agent][sim]") {
  SimLab lab;
  lab.start(lab_config());
  lab.run_for(5s);
  const auto traces = lab.records<TraceRecord>();
  REQUIRE(traces.size() >= 4);
  for (const auto& entry : lab.capture->entries) {
    const auto* t = std::get_if<TraceRecord>(&entry.record);
    if (!t) continue;
    CHECK(t->trace.reached);
    // 4 hops, 1 ms a hop each way: the whole trace is over in tens of milliseconds.
    CHECK(entry.written - t->trace.started <= 50ms);
  }
}

TEST_CASE("agent sim: a baseline trace sends no probe past where the target's answers say it is",
          "[agent][sim]") {
  SimLab lab;
  lab.start(lab_config());
  lab.run_for(5s);
  std::size_t trace_probes = 0, traces = 0;
  for (const auto& t : lab.records<TraceRecord>()) {
    CHECK(t.reason == "baseline");
    CHECK(t.trace.reached);
    REQUIRE_FALSE(t.trace.hops.empty());
    CHECK(t.trace.hops.back().is_target);
    for (const auto& hop : t.trace.hops) {
      // A hop another target's path went through is taken from it, not probed.
      CHECK(hop.probes_sent == (hop.reused_from ? 0 : 1));
      trace_probes += static_cast<std::size_t>(hop.probes_sent);
    }
    ++traces;
  }
  REQUIRE(traces >= 4);
  // The lab's targets share their first hops: most baselines stop at the border.
  CHECK(lab.agent->investigations().hops_reused > 0);
  // Every probe launched is in a probe record or in a trace's hops: none went past a destination
  // (the baselines all ended within the first interval; probes in flight have no record yet).
  CHECK(lab.engine.stats().launched == lab.records<ProbeRecord>().size() + trace_probes + lab.engine.in_flight());
}

TEST_CASE("agent sim: investigations are bounded when a large group goes dark", "[agent][sim]") {
  SimLab lab;
  std::string many = "  - name: big\n    upstream_asn: 64500\n    targets:\n";
  for (int i = 0; i < 400; ++i)
    many += "      - { name: h" + std::to_string(i) + ", address: 198.18." + std::to_string(4 + i / 200) + "." +
            std::to_string(i % 200 + 2) + ", probes: [icmp] }\n";
  for (int i = 0; i < 400; ++i) lab.net.add_host(ip("198.18." + std::to_string(4 + i / 200) + "." + std::to_string(i % 200 + 2)));
  std::string config = lab_config(many);
  config.replace(config.find("baseline_interval: 1h }"), std::string("baseline_interval: 1h }").size(),
                 "baseline_interval: 1h, max_failure_traces: 2, max_queued_failures: 100 }");
  lab.start(config);
  REQUIRE(lab.agent->plan().max_failure_traces == 2);
  lab.run_for(20s);
  REQUIRE(lab.events().empty());
  const auto baselines = lab.agent->investigations().baselines;
  lab.net.drop_forward(kCarrier, true);
  lab.run_for(30s);
  lab.stop();
  const auto& st = lab.agent->investigations();
  INFO(lab.agent->investigations().started << " traces, " << st.merged << " merged, " << st.dropped << " dropped");
  CHECK(lab.events_of(EventKind::group_down).size() == 2);  // lab and big
  CHECK(lab.events_of(EventKind::target_down).size() == 404);
  // Every event has a verdict, and almost all took their group's.
  for (const auto& e : lab.events())
    if (is_down(e.event.kind)) CHECK(e.verdict);
  CHECK(st.started + st.merged + st.dropped >= 406);
  CHECK(st.started < 120);  // not one per target: the capped queue merges into the group's trace
  CHECK(st.merged > 280);
  std::size_t failure_traces = 0;
  for (const auto& t : lab.records<TraceRecord>()) failure_traces += t.reason == "failure";
  CHECK(failure_traces == st.started);
  CHECK(st.dropped == 0);  // beyond the queue, events follow the trace running toward their group
  CHECK(lab.agent->investigations().baselines == baselines);
}

TEST_CASE("agent sim: the targets' warnings at start are a few lines and a count", "[agent][sim]") {
  // 50 targets whose names do not resolve: 20 lines say so, one counts the rest.
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  std::string ghosts;
  for (int i = 0; i < 50; ++i)
    ghosts += "      - { name: ghost" + std::to_string(i) + ", host: ghost" + std::to_string(i) + ".lab.test }\n";
  {
    SimLab lab;
    lab.start(lab_config(ghosts));
    lab.run_for(2s);
    lab.stop();
  }
  spdlog::set_default_logger(previous);
  int named = 0, counted = 0;
  for (const std::string& line : sink->last_formatted()) {
    if (line.find("target ghost") != std::string::npos) ++named;
    if (line.find("and 30 more such warnings") != std::string::npos) ++counted;
  }
  CHECK(named == 20);
  CHECK(counted == 1);
}

TEST_CASE("agent sim: a dual-stack target's families go down on their own", "[agent][sim]") {
  SimLab lab;
  HostAddresses web;
  web.v4 = ip("198.18.0.1");
  web.v6 = ip("2001:2:0:1::1");
  lab.resolver.set("web.lab.test", web);
  lab.start(lab_config("      - { name: web, host: web.lab.test, family: both }\n"));
  lab.run_for(15s);
  // The IPv6 path breaks at the carrier; IPv4 is untouched.
  lab.net.drop_forward(kCarrier6, true);
  lab.run_for(20s);
  lab.stop();
  INFO(lab.describe_events());
  const auto down = lab.events_of(EventKind::target_down);
  REQUIRE(down.size() == 1);
  CHECK(down[0].event.target == "web");
  CHECK(down[0].event.af == 6);
  REQUIRE(down[0].verdict);
  CHECK(down[0].verdict->where == Where::upstream);
  CHECK(down[0].verdict->last_hop == kCarrier6);
  // Records say which family they are about.
  bool v4 = false, v6 = false;
  for (const auto& p : lab.records<ProbeRecord>()) {
    if (p.labels.target != "web") continue;
    v4 = v4 || p.af == 4;
    v6 = v6 || p.af == 6;
    CHECK(p.af == (IpAddress::parse(p.address)->is_v6() ? 6 : 4));
  }
  CHECK(v4);
  CHECK(v6);
  for (const auto& s : lab.records<SeriesRecord>())
    if (s.window.key.target == "web") CHECK((s.window.key.af == 4 || s.window.key.af == 6));
}

TEST_CASE("agent sim: a timeout longer than the interval, several probes in flight per target", "[agent][sim]") {
  SimLab lab;
  lab.net.set_hop_delay(37500us);  // 300 ms round trips to the targets, 75 ms to the control
  std::string config = lab_config();
  config.replace(config.find("interval: 1s, timeout: 500ms"), std::string("interval: 1s, timeout: 500ms").size(),
                 "interval: 200ms, timeout: 500ms");
  config.replace(config.find("suspect_interval: 500ms"), std::string("suspect_interval: 500ms").size(),
                 "suspect_interval: 200ms");
  lab.start(config);
  lab.run_for(30s);
  lab.stop();
  INFO(lab.describe_events());
  CHECK(lab.events().empty());
  std::size_t replies = 0, others = 0;
  for (const auto& p : lab.records<ProbeRecord>()) {
    if (p.labels.target == "anchor") continue;
    (p.result.status == ProbeStatus::reply ? replies : others)++;
  }
  CHECK(replies > 4 * 2 * 100);
  CHECK(others == 0);
  for (const auto& s : lab.records<SeriesRecord>()) CHECK(s.window.loss() == 0.0);
}

// Hidden from discovery: tests/CMakeLists.txt runs it as a test of its own, started first.
TEST_CASE("agent sim: baseline traces run a bounded number at once, and every one comes", "[agent][sim]") {
  // 400 targets due for a baseline within the first second, each trace
  // taking 400 ms (50 ms a hop each way); at most 6 traces at once, the
  // others waiting for a place.
  SimLab lab;
  lab.net.set_hop_delay(50ms);
  std::string many = "  - name: big\n    upstream_asn: 64500\n    targets:\n";
  for (int i = 0; i < 400; ++i) {
    const std::string a = "198.18." + std::to_string(4 + i / 200) + "." + std::to_string(i % 200 + 2);
    many += "      - { name: h" + std::to_string(i) + ", address: " + a + ", probes: [icmp] }\n";
    lab.net.add_host(ip(a));
  }
  InvestigationLimits limits;
  limits.max_baselines = 6;
  lab.agent = std::make_unique<Agent>(AgentServices{lab.loop, lab.engine, lab.outputs, lab.resolver,
                                                    [](const Config&, std::string*) {
                                                      return std::shared_ptr<const AsnTable>();
                                                    },
                                                    true, limits});
  lab.start(lab_config(many));
  lab.run_for(120s);
  lab.stop();
  // Each baseline trace from its start to its record: never more than 6 overlap.
  std::vector<std::pair<WallTime, int>> edges;
  std::set<std::string> traced;
  for (const auto& e : lab.capture->entries)
    if (const auto* t = std::get_if<TraceRecord>(&e.record); t && t->reason == "baseline") {
      edges.emplace_back(t->trace.started, +1);
      edges.emplace_back(e.written, -1);
      traced.insert(t->labels.target);
    }
  std::sort(edges.begin(), edges.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second < b.second;  // an end before a start at one time
  });
  int running = 0, most = 0;
  for (const auto& [time, step] : edges) most = std::max(most, running += step);
  CHECK(most == 6);
  CHECK(traced.size() == 406);  // every target, control targets too
  CHECK(lab.events().empty());
}

TEST_CASE("agent sim: 10,000 targets for one simulated hour", "[agent][sim][.scale]") {
  SimLab lab;
  std::string many = "  - name: country\n    upstream_asn: 64500\n    targets:\n";
  for (int i = 0; i < 10000; ++i) {
    const std::string a = "198.18." + std::to_string(8 + i / 250) + "." + std::to_string(i % 250 + 1);
    many += "      - { name: t" + std::to_string(i) + ", address: " + a + ", probes: [icmp], interval: 60s }\n";
    lab.net.add_host(ip(a));
  }
  lab.capture->keep_all = false;
  const auto begin = std::chrono::steady_clock::now();
  lab.start(lab_config(many, ""));
  lab.run_for(30min);
  // The country goes dark behind its carrier for ten minutes.
  lab.net.drop_forward(kCarrier, true);
  lab.run_for(10min);
  lab.net.drop_forward(kCarrier, false);
  lab.run_for(20min);
  lab.stop();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  const std::size_t probes = lab.capture->counts[0];
  std::printf("agent sim: 10,000 targets for one simulated hour: %zu probes, %zu series, %zu traces, %.1f s wall\n",
              probes, lab.capture->counts[1], lab.capture->counts[2], seconds);
  CHECK(lab.capture->counts[2] >= 10000);  // a baseline per target
  const auto& st = lab.agent->investigations();
  std::printf("agent sim: the dark country: %llu failure traces, %llu events merged, %llu dropped\n",
              static_cast<unsigned long long>(st.started), static_cast<unsigned long long>(st.merged),
              static_cast<unsigned long long>(st.dropped));
  CHECK(lab.events_of(EventKind::group_down).size() == 2);  // lab and country
  CHECK(lab.events_of(EventKind::group_up).size() == 2);
  CHECK(lab.events_of(EventKind::target_down).size() == 10004);
  CHECK(lab.events_of(EventKind::vantage_down).empty());
  for (const auto& e : lab.events_of(EventKind::group_down)) {
    REQUIRE(e.verdict);
    CHECK(e.verdict->where == Where::upstream);
  }
  // A handful of traces along the one path, not one per target.
  CHECK(st.started <= 50);
  CHECK(st.started + st.merged + st.dropped == 10006);
  CHECK(probes > 10000 * 59);
}

namespace {

// A sink that fails on its n-th record, as a bug below the loop would.
class Throwing final : public RecordSink {
 public:
  explicit Throwing(int n) : left_(n) {}
  void write(const Record&) override {
    if (--left_ == 0) throw std::runtime_error("sink bug");
  }
  void flush() override {}

 private:
  int left_;
};

}  // namespace

TEST_CASE("agent sim: an exception below the loop ends the run at the barrier, and what was measured is flushed",
          "[agent][sim]") {
  SimLab lab;
  lab.outputs.add(std::make_unique<Throwing>(50));
  lab.start(lab_config());
  CHECK_FALSE(lab.driver.run_for(30s));
  CHECK(lab.loop.error().find("sink bug") != std::string::npos);
  const int flushes = lab.capture->flushes;
  lab.agent->flush_now();  // what `outpost run` does after a failed loop
  CHECK(lab.agent->finished());
  CHECK(lab.capture->flushes == flushes + 1);
  // The open windows were closed and written (partial: the run ended early).
  const auto series = lab.records<SeriesRecord>();
  REQUIRE_FALSE(series.empty());
  for (const auto& s : series) CHECK(s.window.partial);
}

TEST_CASE("agent sim: two traces toward one address at once never share a flow", "[agent][sim]") {
  SimLab lab;
  Pacer pacer(lab.loop, lab.engine);
  TokenBucket bucket(100000, 1000);
  pacer.set_bucket(&bucket);
  std::vector<TraceRecord> traces;
  Investigator investigator(lab.loop, pacer, [&](Record r) {
    if (auto* t = std::get_if<TraceRecord>(&r)) traces.push_back(*t);
  });
  for (TraceMethod method : {TraceMethod::tcp, TraceMethod::udp, TraceMethod::icmp}) {
    traces.clear();
    TraceSpec spec;
    spec.method = method;
    spec.port = method == TraceMethod::tcp ? 80 : 0;
    spec.timeout = 200ms;
    investigator.configure("sim-1", spec, nullptr, {}, true);
    TraceTarget target{"net1", "net1", "lab", 4, ip("198.18.0.1"), "", std::nullopt, std::nullopt};
    for (int i = 0; i < 3; ++i) investigator.baseline(target);  // all three at once
    REQUIRE(lab.driver.run_for(5s));
    REQUIRE(traces.size() == 3);
    INFO(trace_method_name(method));
    CHECK(traces[0].trace.flow_id != traces[1].trace.flow_id);
    CHECK(traces[1].trace.flow_id != traces[2].trace.flow_id);
    CHECK(traces[0].trace.flow_id != traces[2].trace.flow_id);
    for (const auto& t : traces) {
      CHECK(t.trace.reached);
      CHECK(t.trace.error.empty());
    }
  }
}

namespace {

// An Investigator alone over the simulated lab, its trace records kept.
struct InvestigatorLab {
  SimLab lab;
  Pacer pacer{lab.loop, lab.engine};
  TokenBucket bucket{100000, 1000};
  std::vector<TraceResult> traces;
  Investigator investigator{lab.loop, pacer, [this](Record r) {
                              if (auto* t = std::get_if<TraceRecord>(&r)) traces.push_back(t->trace);
                            }};
  InvestigatorLab() { pacer.set_bucket(&bucket); }

  static TraceTarget net(int n, int expected_ttl = 4) {
    const std::string name = "net" + std::to_string(n);
    return TraceTarget{name,         name,         "lab", 4, ip("198.18." + std::to_string(n - 1) + ".1"), "",
                       std::nullopt, std::nullopt, expected_ttl};
  }
  // A baseline toward netN, run to its end, its path the lab's: the probes
  // the engine launched for it, all in its hops when the distance is known
  // (unknown, the window overshoots the target).
  int baseline(int n, int expected_ttl = 4) {
    const auto launched = lab.engine.stats().launched;
    investigator.baseline(net(n, expected_ttl));
    REQUIRE(lab.driver.run_for(2s));
    REQUIRE_FALSE(traces.empty());
    const TraceResult& t = traces.back();
    CHECK(t.reached);
    REQUIRE(t.hops.size() == 4);
    CHECK(t.hops[0].addr == kIsp);
    CHECK(t.hops[1].addr == kCarrier);
    CHECK(t.hops[2].addr == kBorder);
    CHECK(t.hops[3].is_target);
    int probed = 0;
    for (const auto& h : t.hops) probed += h.probes_sent;
    const auto sent = static_cast<int>(lab.engine.stats().launched - launched);
    if (expected_ttl > 0) CHECK(sent == probed);
    return sent;
  }
};

}  // namespace

TEST_CASE("agent sim: baselines probe from the target back to a hop another path went through, while it is fresh",
          "[agent][sim]") {
  InvestigatorLab il;
  const bool reuse = GENERATE(true, false);
  INFO((reuse ? "reusing hops" : "not reusing hops"));
  TraceSpec spec;
  spec.method = GENERATE(TraceMethod::icmp, TraceMethod::udp);
  spec.timeout = 200ms;
  InvestigationLimits limits;
  limits.reuse_max_age = reuse ? 1h : Duration{};
  il.investigator.configure("sim-1", spec, nullptr, limits, true);
  auto& traces = il.traces;
  // The first path is probed whole, from the target back.
  CHECK(il.baseline(1) == 4);
  const WallTime first = traces.back().started;
  // The next ones stop at the border, known at TTL 3: the ISP and carrier hops are net1's.
  CHECK(il.baseline(2) == (reuse ? 2 : 4));
  if (reuse) {
    for (int i = 0; i < 2; ++i) {
      REQUIRE(traces.back().hops[static_cast<std::size_t>(i)].reused_from);
      CHECK(*traces.back().hops[static_cast<std::size_t>(i)].reused_from == first);
      CHECK_FALSE(traces.back().hops[static_cast<std::size_t>(i)].rtt);
    }
    CHECK_FALSE(traces.back().hops[2].reused_from);
    CHECK(il.investigator.stats().hops_reused == 2);
  }
  // A path reused from a path that reused it keeps the time the hops were probed.
  il.lab.clock.advance(30min);
  CHECK(il.baseline(3) == (reuse ? 2 : 4));
  if (reuse) CHECK(*traces.back().hops[0].reused_from == first);
  // Once probed longer ago than the age allowed, the first hops are probed again...
  il.lab.clock.advance(31min);
  CHECK(il.baseline(4) == 4);
  const WallTime again = traces.back().started;
  for (const auto& h : traces.back().hops) CHECK_FALSE(h.reused_from);
  // ... and taken from there on.
  CHECK(il.baseline(1) == (reuse ? 2 : 4));
  if (reuse) CHECK(*traces.back().hops[0].reused_from == again);
  // Nothing is kept to stop at when nothing is reused.
  CHECK(il.investigator.known_hops() == (reuse ? 3u : 0u));
  // A target whose distance is not known yet is probed forward, whole.
  CHECK(il.baseline(2, 0) >= 4);
  for (const auto& h : traces.back().hops) CHECK_FALSE(h.reused_from);
}

TEST_CASE("agent sim: the hops baselines may stop at are bounded, and learnt again past the bound", "[agent][sim]") {
  InvestigatorLab il;
  TraceSpec spec;
  spec.timeout = 200ms;
  InvestigationLimits limits;
  limits.reuse_max_age = 1h;
  il.investigator.configure("sim-1", spec, nullptr, limits, true);
  CHECK(il.baseline(1) == 4);
  CHECK(il.baseline(2) == 2);
  CHECK(il.investigator.known_hops() == 3);
  // Restored paths of 30 hops each through addresses of their own (data only, never probed), past the bound.
  const std::size_t paths = Investigator::kMaxKnownHops / 29 + 10;  // 29 router hops each
  auto v6 = [](std::size_t k, std::uint8_t last) {
    return IpAddress::v6_bytes(std::array<std::uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                            static_cast<std::uint8_t>(k >> 8),
                                                            static_cast<std::uint8_t>(k), last}
                                   .data());
  };
  for (std::size_t k = 0; k < paths; ++k) {
    TraceResult t;
    t.spec = spec;
    t.started = il.lab.clock.wall();
    t.reached = true;
    t.target = v6(k, 30);
    for (int ttl = 1; ttl <= 30; ++ttl) {
      TraceHop h;
      h.ttl = ttl;
      h.addr = v6(k, static_cast<std::uint8_t>(ttl));
      h.is_target = ttl == 30;
      t.hops.push_back(h);
    }
    il.investigator.restore_last_good("fill-" + std::to_string(k), t);
    REQUIRE(il.investigator.known_hops() <= Investigator::kMaxKnownHops);
  }
  // Started again past the bound: the lab's hops are no longer known, and are learnt again.
  CHECK(il.investigator.known_hops() < Investigator::kMaxKnownHops);
  CHECK(il.baseline(3) == 4);
  CHECK(il.baseline(4) == 2);
}

TEST_CASE("agent sim: a trace's flow does not tell the next one's", "[agent][sim]") {
  // A host that sees one trace's source port (or fixed checksum) must not be
  // able to tell the next trace's: consecutive traces toward one address,
  // one after the other, do not take consecutive or repeated flows.
  SimLab lab;
  Pacer pacer(lab.loop, lab.engine);
  TokenBucket bucket(100000, 1000);
  pacer.set_bucket(&bucket);
  std::vector<std::uint32_t> flows;
  Investigator investigator(lab.loop, pacer, [&](Record r) {
    if (auto* t = std::get_if<TraceRecord>(&r)) flows.push_back(t->trace.flow_id);
  });
  for (TraceMethod method : {TraceMethod::udp, TraceMethod::icmp}) {
    flows.clear();
    TraceSpec spec;
    spec.method = method;
    spec.timeout = 200ms;
    investigator.configure("sim-1", spec, nullptr, {}, true);
    TraceTarget target{"net1", "net1", "lab", 4, ip("198.18.0.1"), "", std::nullopt, std::nullopt};
    for (int i = 0; i < 16; ++i) {
      investigator.baseline(target);
      REQUIRE(lab.driver.run_for(2s));  // each trace ends before the next starts
    }
    REQUIRE(flows.size() == 16);
    INFO(trace_method_name(method));
    int steps_of_one = 0;
    for (std::size_t i = 1; i < flows.size(); ++i) steps_of_one += flows[i] == flows[i - 1] + 1;
    CHECK(steps_of_one < 4);
    CHECK(std::set<std::uint32_t>(flows.begin(), flows.end()).size() > 12);
  }
}
