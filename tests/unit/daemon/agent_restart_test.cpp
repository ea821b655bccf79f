// The daemon killed and started again, in simulated time: each run is a
// process of its own (loop, simulated network, engine, Agent) over one clock
// and one record capture, sharing only agent.state_dir. An outage open at the
// crash is reported once, and its target_up carries the first run's start,
// also when the crash came while the target was only suspect; the last good
// traces are there from the restart's first moment.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
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

namespace {

IpAddress ip(const std::string& text) { return IpAddress::parse(text).value(); }

const IpAddress kUs4 = ip("198.19.0.1");
const IpAddress kUs6 = ip("2001:2::1");
const IpAddress kIsp = ip("198.19.0.2"), kCarrier = ip("198.19.0.6"), kBorder = ip("198.19.0.10");
const IpAddress kNet2 = ip("198.18.1.1");

// Every record of every run, with the simulated time it was written.
struct Journal {
  struct Entry {
    Record record;
    WallTime written;
  };
  std::vector<Entry> entries;

  std::vector<EventRecord> events_of(EventKind kind) const {
    std::vector<EventRecord> out;
    for (const auto& e : entries)
      if (auto* ev = std::get_if<EventRecord>(&e.record); ev && ev->event.kind == kind) out.push_back(*ev);
    return out;
  }
  std::string describe_events() const {
    std::string s;
    for (const auto& e : entries)
      if (auto* ev = std::get_if<EventRecord>(&e.record)) s += to_json(*ev).dump() + "\n";
    return s;
  }
};

class JournalSink final : public RecordSink {
 public:
  JournalSink(Clock& clock, Journal& journal) : clock_(clock), journal_(journal) {}
  void write(const Record& r) override { journal_.entries.push_back({r, clock_.wall()}); }
  void flush() override {}

 private:
  Clock& clock_;
  Journal& journal_;
};

// A directory of its own under the temporary directory, removed at the end.
struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "outpost-restart-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::string config_with(const std::string& state_dir) {
  return R"(
agent: { id: sim-1, max_pps: 100000, state_dir: ")" + state_dir + R"(" }
defaults: { interval: 1s, timeout: 500ms, probes: [icmp, "tcp:80"] }
detect: { down_after: 3, up_after: 2, suspect_interval: 500ms }
traceroute: { method: icmp, timeout: 200ms, baseline_interval: 1h }
report: { window: 10s }
groups:
  - name: lab
    upstream_asn: 64500
    targets:
      - { name: net1, address: 198.18.0.1 }
      - { name: net2, address: 198.18.1.1 }
      - { name: net3, address: 198.18.2.1 }
      - { name: net4, address: 198.18.3.1 }
  - name: control
    control: true
    targets:
      - { name: anchor, address: 198.19.1.1, probes: [icmp] }
      - { name: anchor2, address: 198.19.1.2, probes: [icmp] }
)";
}

// One process: everything but the clock, the journal and the state directory.
struct Process {
  EventLoop loop;
  SimNet net;
  Engine engine;
  SimDriver driver;
  TableResolver resolver{loop};
  Outputs outputs;
  std::unique_ptr<Agent> agent;

  Process(FakeClock& clock, Journal& journal)
      : loop(clock), net(clock, loop, kUs4, kUs6), engine(clock, net, FilterParams{0x4d2e}), driver(clock, loop, net) {
    net.add_path("198.18.0.0/16", {kIsp, kCarrier, kBorder});
    net.add_path("198.19.1.0/24", {kIsp});
    for (int n = 0; n < 4; ++n) net.add_host(ip("198.18." + std::to_string(n) + ".1"), true, {80});
    net.add_host(ip("198.19.1.1"), true, {});
    net.add_host(ip("198.19.1.2"), true, {});
    outputs.add(std::make_unique<JournalSink>(clock, journal));
    agent = std::make_unique<Agent>(AgentServices{
        loop, engine, outputs, resolver,
        [](const Config&, std::string*) -> std::shared_ptr<const AsnTable> { return nullptr; }, true, std::nullopt});
  }
  ~Process() { agent.reset(); }  // before the engine that may still hold its callbacks

  void apply(const std::string& yaml) {
    ConfigLoad load = load_config_string(yaml, "sim.yaml");
    for (const auto& e : load.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(load.errors.empty());
    REQUIRE(agent->apply(*load.config) == "");
  }
  void run_for(Duration d) { REQUIRE(driver.run_for(d)); }
  void stop() {
    agent->stop();
    REQUIRE(driver.run_for(30s));
    CHECK(agent->finished());
  }
};

// The send time of the first failed probe toward `target` at or after `from`.
std::optional<WallTime> first_failure(const Journal& journal, const std::string& target, WallTime from) {
  for (const auto& e : journal.entries)
    if (auto* p = std::get_if<ProbeRecord>(&e.record);
        p && p->labels.target == target && p->result.sent >= from && p->result.status != ProbeStatus::reply &&
        p->result.status != ProbeStatus::refused)
      return p->result.sent;
  return std::nullopt;
}

}  // namespace

TEST_CASE("agent restart: an outage open at a crash is reported once, and its target_up has the first run's start",
          "[agent][sim][restart]") {
  TempDir dir;
  FakeClock clock;
  Journal journal;
  const std::string config = config_with(dir.path);
  WallTime broke{}, restarted{}, healed{};
  {
    Process first(clock, journal);
    first.apply(config);
    first.agent->start();
    first.run_for(20s);
    REQUIRE(first.agent->last_good_trace("net1"));
    broke = clock.wall();
    first.net.host_down(kNet2, true);
    first.run_for(15s);
    REQUIRE(journal.events_of(EventKind::target_down).size() == 1);
    first.run_for(2s);
    // Killed: no stop(), no flush; whatever was saved on the way stands.
  }
  clock.advance(10s);  // the time it takes to come back
  {
    Process second(clock, journal);
    second.net.host_down(kNet2, true);
    second.apply(config);
    // The last good traces are back before any baseline of this run.
    REQUIRE(second.agent->last_good_trace("net1"));
    CHECK(second.agent->last_good_trace("net1")->reached);
    CHECK(second.agent->last_good_trace("net1")->target == ip("198.18.0.1"));
    second.agent->start();
    restarted = clock.wall();
    second.run_for(15s);
    healed = clock.wall();
    second.net.host_down(kNet2, false);
    second.run_for(15s);
    second.stop();
  }
  INFO(journal.describe_events());
  const auto down = journal.events_of(EventKind::target_down);
  REQUIRE(down.size() == 1);
  CHECK(down[0].event.target == "net2");
  const auto up = journal.events_of(EventKind::target_up);
  REQUIRE(up.size() == 1);
  CHECK(up[0].event.target == "net2");
  CHECK(up[0].event.start == down[0].event.start);
  CHECK(up[0].event.start >= broke);
  CHECK(up[0].event.start < restarted);
  REQUIRE(up[0].event.end);
  CHECK(*up[0].event.end >= healed);
  CHECK(*up[0].event.end - healed <= 1s);
  // The outage's duration spans both runs and the time between.
  CHECK(*up[0].event.end - up[0].event.start >= 35s);
  CHECK(journal.events_of(EventKind::group_down).empty());
  CHECK(journal.events_of(EventKind::vantage_down).empty());
  CHECK(std::filesystem::exists(dir.path + "/state.json"));
  CHECK_FALSE(std::filesystem::exists(dir.path + "/state.json.tmp"));
}

TEST_CASE("agent restart: a crash while a target is only suspect keeps its outage's start", "[agent][sim][restart]") {
  TempDir dir;
  FakeClock clock;
  Journal journal;
  const std::string config = config_with(dir.path);
  WallTime broke{}, restarted{};
  {
    Process first(clock, journal);
    first.apply(config);
    first.agent->start();
    first.run_for(20s);
    broke = clock.wall();
    first.net.host_down(kNet2, true);
    first.run_for(1200ms);  // a failed round or two of the three it takes
    REQUIRE(first_failure(journal, "net2", broke));
    REQUIRE(journal.events_of(EventKind::target_down).empty());
  }
  const WallTime first_failed = *first_failure(journal, "net2", broke);
  clock.advance(3s);
  {
    Process second(clock, journal);
    second.net.host_down(kNet2, true);
    second.apply(config);
    second.agent->start();
    restarted = clock.wall();
    second.run_for(10s);
    REQUIRE(journal.events_of(EventKind::target_down).size() == 1);
    second.net.host_down(kNet2, false);
    second.run_for(10s);
    second.stop();
  }
  INFO(journal.describe_events());
  const auto down = journal.events_of(EventKind::target_down);
  REQUIRE(down.size() == 1);
  CHECK(down[0].event.start == first_failed);
  CHECK(down[0].event.start < restarted);
  REQUIRE(down[0].event.last_ok);
  CHECK(*down[0].event.last_ok < broke + 1s);
  const auto up = journal.events_of(EventKind::target_up);
  REQUIRE(up.size() == 1);
  CHECK(up[0].event.start == first_failed);
}

TEST_CASE("agent restart: a state file that cannot be read is a warning, and the run goes on", "[agent][sim][restart]") {
  TempDir dir;
  FakeClock clock;
  Journal journal;
  {
    std::FILE* f = std::fopen((dir.path + "/state.json").c_str(), "w");
    REQUIRE(f);
    std::fputs("{\"version\": 1, \"targets\": [{\"name\": ", f);
    std::fclose(f);
  }
  Process p(clock, journal);
  p.apply(config_with(dir.path));
  p.agent->start();
  p.run_for(20s);
  p.stop();
  CHECK(journal.events_of(EventKind::target_down).empty());
  // Saved afresh at the stop: the file is whole again.
  std::string problem;
  auto saved = StateStore(dir.path).load(&problem);
  INFO(problem);
  REQUIRE(saved);
  CHECK(saved->detector.targets.size() == 6);
  for (const char* t : {"net1", "net2", "net3", "net4"}) CHECK(saved->last_good.count(t));
}

TEST_CASE("agent restart: a crash while the target_down waits for its failure trace loses no event",
          "[agent][sim][restart]") {
  TempDir dir;
  FakeClock clock;
  Journal journal;
  // Slow trace probes: the failure trace runs for seconds after the detector decided.
  std::string config = config_with(dir.path);
  config.replace(config.find("timeout: 200ms"), 14, "timeout: 2s");
  WallTime broke{}, restarted{};
  {
    Process first(clock, journal);
    first.apply(config);
    first.agent->start();
    first.run_for(20s);
    broke = clock.wall();
    first.net.host_down(kNet2, true);
    // Until the failure trace starts: the outage is decided, its record not written.
    for (int i = 0; i < 400 && first.agent->investigations().started == 0; ++i) first.run_for(50ms);
    REQUIRE(first.agent->investigations().started == 1);
    first.run_for(1500ms);  // the state is saved meanwhile (within a second of the event)
    REQUIRE(journal.events_of(EventKind::target_down).empty());
    // Killed with the record still owed.
  }
  clock.advance(5s);
  {
    Process second(clock, journal);
    second.net.host_down(kNet2, true);
    second.apply(config);
    second.agent->start();
    restarted = clock.wall();
    second.run_for(20s);
    second.net.host_down(kNet2, false);
    second.run_for(15s);
    second.stop();
  }
  INFO(journal.describe_events());
  const auto down = journal.events_of(EventKind::target_down);
  REQUIRE(down.size() == 1);  // owed by the first run, written by the second
  CHECK(down[0].event.target == "net2");
  CHECK(down[0].event.start >= broke);
  CHECK(down[0].event.start < restarted);  // the first run's start
  const auto up = journal.events_of(EventKind::target_up);
  REQUIRE(up.size() == 1);
  CHECK(up[0].event.start == down[0].event.start);
}

TEST_CASE("agent stop: when the last thing in flight is a trace, its end finishes the agent", "[agent][sim][restart]") {
  TempDir dir;
  FakeClock clock;
  Journal journal;
  std::string config = config_with(dir.path);
  config.replace(config.find("timeout: 200ms"), 14, "timeout: 2s");  // trace probes outlast every task probe
  // A tight rate cap: the trace's probes wait in the pacer, and at the stop
  // they end by refusal, on the loop's next turns.
  config.replace(config.find("max_pps: 100000"), 15, "max_pps: 12");
  Process p(clock, journal);
  p.apply(config);
  p.agent->start();
  p.run_for(20s);
  p.net.host_down(kNet2, true);
  for (int i = 0; i < 400 && p.agent->investigations().started == 0; ++i) p.run_for(50ms);
  REQUIRE(p.agent->investigations().started == 1);
  p.agent->stop();
  // The task probes end within their 500 ms; the failure trace's within seconds after.
  REQUIRE(p.driver.run_for(30s));
  CHECK(p.agent->finished());
  CHECK(journal.events_of(EventKind::target_down).size() == 1);  // written when its trace ended
}
