// The state file: a round trip keeps every field the detector and the
// correlator read; a file that is cut short, damaged, too large, of the wrong
// types or of a newer format is refused with a message naming it, never with
// an exception; a save replaces the file whole and leaves no temporary file.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "state_store.hpp"

using namespace std::chrono_literals;
using namespace outpost;

namespace {

const WallTime kBase = WallTime{} + std::chrono::seconds(1419264900);

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }

// A directory of its own under the temporary directory, removed at the end.
struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "outpost-state-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

SavedState sample() {
  SavedState s;
  s.written = kBase + 123456789ns;
  TargetState a;
  a.name = "net1";
  a.down = true;
  a.fails = 3;
  a.goods = 1;
  a.streak_start = kBase + 10s;
  a.failing_since = {kBase + 10s, std::nullopt};
  a.ever_ok = {true, false};
  a.last_ok = kBase + 5s;
  a.recovery_start = kBase + 90s;
  a.reported_down = true;
  a.down_decided = kBase + 30s;
  a.changes = {kBase + 10s, kBase + 40s};
  a.flapping = false;
  TargetState c;
  c.name = "anchor";
  c.control = true;
  c.pending_down = true;
  c.flapping = true;
  s.detector.targets = {a, c};
  s.detector.groups = {{"lab", false, true, kBase + 10s}, {"control", true, false, WallTime{}}};
  s.detector.vantage_down = true;
  s.detector.vantage_start = kBase + 20s;
  s.detector.last_control_ok = kBase + 19s;
  s.detector.check_wanted = true;

  TraceResult t;
  t.target = ip("198.18.0.1");
  t.spec.method = TraceMethod::tcp;
  t.spec.port = 443;
  t.spec.max_ttl = 20;
  t.spec.timeout = 200ms;
  t.started = kBase + 1s;
  TraceHop h1;
  h1.ttl = 1;
  h1.addr = ip("198.19.0.2");
  h1.rtt = 1234567ns;
  h1.icmp_type = 11;
  h1.icmp_code = 0;
  h1.quoted_ttl = 1;
  h1.reply_ttl = 64;
  h1.probes_sent = 1;
  h1.mpls = {{16004, 0, true, 1}};
  TraceHop h2;  // silent
  h2.ttl = 2;
  h2.probes_sent = 2;
  h2.reused_from = WallTime(1700000000123456789ns);
  TraceHop h3;
  h3.ttl = 3;
  h3.addr = ip("198.18.0.1");
  h3.rtt = 3ms;
  h3.is_target = true;
  t.hops = {h1, h2, h3};
  t.reached = true;
  t.stop_reason = "reached";
  t.flow_id = 61007;
  s.last_good["net1"] = t;
  TraceResult v6 = t;
  v6.target = ip("2001:2:0:1::1");
  v6.hops = {h2};
  v6.hops[0].addr = ip("2001:2:0:ff00::2");
  s.last_good["web/6"] = v6;
  return s;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("state store: a round trip keeps the detector's state and the traces", "[state]") {
  TempDir dir;
  StateStore store(dir.path + "/sub");  // made on the first save
  const SavedState s = sample();
  std::string error;
  REQUIRE(store.save(s, &error));
  CHECK(error.empty());
  CHECK(store.path() == dir.path + "/sub/state.json");
  CHECK_FALSE(std::filesystem::exists(dir.path + "/sub/state.json.tmp"));

  std::string problem = "stale";
  auto back = store.load(&problem);
  REQUIRE(back);
  CHECK(problem.empty());
  CHECK(back->written == s.written);
  // Encoded again, the same text: every field came back.
  CHECK(encode_state(*back) == encode_state(s));

  const auto& a = back->detector.targets.at(0);
  CHECK(a.name == "net1");
  CHECK(a.down);
  CHECK(a.reported_down);
  CHECK(a.streak_start == kBase + 10s);
  REQUIRE(a.failing_since.size() == 2);
  CHECK(a.failing_since[0] == kBase + 10s);
  CHECK_FALSE(a.failing_since[1]);
  CHECK(a.last_ok == kBase + 5s);
  CHECK(a.changes.size() == 2);
  CHECK(back->detector.targets.at(1).control);
  CHECK(back->detector.targets.at(1).pending_down);
  CHECK(back->detector.groups.at(0).down);
  CHECK(back->detector.vantage_down);
  CHECK(back->detector.last_control_ok == kBase + 19s);

  const auto& t = back->last_good.at("net1");
  CHECK(t.target == ip("198.18.0.1"));
  CHECK(t.spec.method == TraceMethod::tcp);
  CHECK(t.spec.port == 443);
  CHECK(t.spec.timeout == 200ms);
  CHECK(t.reached);
  CHECK(t.flow_id == 61007u);
  REQUIRE(t.hops.size() == 3);
  CHECK(t.hops[0].addr == ip("198.19.0.2"));
  CHECK(t.hops[0].rtt == Duration(1234567));
  CHECK(t.hops[0].mpls == std::vector<MplsEntry>{{16004, 0, true, 1}});
  CHECK_FALSE(t.hops[1].addr);
  CHECK_FALSE(t.hops[1].rtt);
  CHECK(t.hops[1].reused_from == WallTime(1700000000123456789ns));
  CHECK_FALSE(t.hops[0].reused_from);
  CHECK(t.hops[2].is_target);
  CHECK(back->last_good.at("web/6").hops.at(0).addr == ip("2001:2:0:ff00::2"));

  // A second save replaces the file whole.
  SavedState empty;
  REQUIRE(store.save(empty, &error));
  back = store.load(&problem);
  REQUIRE(back);
  CHECK(back->detector.targets.empty());
  CHECK(back->last_good.empty());
}

TEST_CASE("state store: traces from the packed store, put in any order, encode as the sorted map does", "[state]") {
  const SavedState s = sample();
  REQUIRE(s.last_good.size() >= 2);
  TraceStore store;
  for (auto it = s.last_good.rbegin(); it != s.last_good.rend(); ++it) store.put(it->first, it->second);
  const std::string text = encode_traces(store);
  CHECK(text == encode_traces(s.last_good));
  const auto parsed = nlohmann::json::parse(text);
  REQUIRE(parsed.size() == s.last_good.size());
  CHECK(parsed.begin().key() == s.last_good.begin()->first);
}

TEST_CASE("state store: no file is no state and no problem", "[state]") {
  TempDir dir;
  StateStore store(dir.path);
  std::string problem = "stale";
  CHECK_FALSE(store.load(&problem));
  CHECK(problem.empty());
}

TEST_CASE("state store: a file from before reused hops (version 1, 10 fields a hop) still loads", "[state]") {
  TempDir dir;
  StateStore store(dir.path);
  nlohmann::json j = nlohmann::json::parse(encode_state(sample()));
  CHECK(j["version"] == 2);
  j["version"] = 1;
  for (auto& [key, trace] : j["last_good"].items())
    for (auto& hop : trace["hops"]) {
      REQUIRE(hop.size() == 11);
      hop.erase(10);
    }
  write_file(store.path(), j.dump());
  std::string problem;
  const auto back = store.load(&problem);
  INFO(problem);
  REQUIRE(back);
  const auto& t = back->last_good.at("net1");
  REQUIRE(t.hops.size() == 3);
  CHECK(t.hops[2].is_target);
  for (const auto& h : t.hops) CHECK_FALSE(h.reused_from);
}

TEST_CASE("state store: a file that cannot be used is refused with a message naming it", "[state]") {
  TempDir dir;
  StateStore store(dir.path);
  const std::string good = encode_state(sample());
  nlohmann::json j = nlohmann::json::parse(good);

  auto with = [&](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json copy = j;
    change(copy);
    return copy.dump();
  };
  struct Case {
    const char* what;
    std::string text;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"empty", "", "not JSON"},
      {"cut short", good.substr(0, good.size() / 2), "not JSON"},
      {"damaged", std::string(good).replace(good.size() / 3, 5, "\x01\xff}]\""), "not JSON"},
      {"not an object", "[1,2,3]", "not a JSON object"},
      {"no version", with([](auto& x) { x.erase("version"); }), "no version"},
      {"a newer version", with([](auto& x) { x["version"] = kStateVersion + 1; }), "newer"},
      {"a version as text", with([](auto& x) { x["version"] = "1"; }), "version: not an integer"},
      {"targets not an array", with([](auto& x) { x["targets"] = 7; }), "targets: not an array"},
      {"a name of the wrong type", with([](auto& x) { x["targets"][0]["name"] = 12; }), "targets[0].name"},
      {"a time as a float", with([](auto& x) { x["targets"][0]["streak_start"] = 1.5; }), "streak_start"},
      {"a negative streak", with([](auto& x) { x["targets"][0]["fails"] = -3; }), "fails: out of range"},
      {"a huge time", with([](auto& x) { x["written"] = 18446744073709551615ull; }), "written: out of range"},
      {"a boolean as a number", with([](auto& x) { x["vantage"]["down"] = 1; }), "vantage.down"},
      {"a bad address", with([](auto& x) { x["last_good"]["net1"]["hops"][0][1] = "999.1.1.1"; }),
       "addr: not an address"},
      {"a bad trace method", with([](auto& x) { x["last_good"]["net1"]["spec"]["method"] = "gre"; }), "method"},
      {"too many hops", with([](auto& x) {
         auto& hops = x["last_good"]["net1"]["hops"];
         const nlohmann::json hop = hops[0];
         for (int i = 0; i < 300; ++i) hops.push_back(hop);
       }),
       "more than 256"},
      {"a bad MPLS entry", with([](auto& x) { x["last_good"]["net1"]["hops"][0][9] = {{1, 2}}; }), "mpls"},
      {"a hop cut short", with([](auto& x) {
         x["last_good"]["net1"]["hops"][0].erase(10);
         x["last_good"]["net1"]["hops"][0].erase(9);
       }),
       "10 or 11 fields"},
      {"a bad reuse time", with([](auto& x) { x["last_good"]["net1"]["hops"][0][10] = "yesterday"; }), "reused_from"},
      {"last_good not an object", with([](auto& x) { x["last_good"] = nlohmann::json::array(); }), "last_good"},
      {"deeply nested", std::string(100000, '[') + std::string(100000, ']'), "not a JSON object"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    write_file(store.path(), c.text);
    std::string problem;
    std::optional<SavedState> s;
    REQUIRE_NOTHROW(s = store.load(&problem));
    INFO(problem);
    CHECK_FALSE(s);
    CHECK(problem.find(store.path()) == 0);
    CHECK(problem.find(c.says) != std::string::npos);
  }

  SECTION("too large: refused before it is read") {
    std::string big = good;
    big.resize(kStateMaxBytes + 1, ' ');
    write_file(store.path(), big);
    std::string problem;
    CHECK_FALSE(store.load(&problem));
    CHECK(problem.find("larger than") != std::string::npos);
  }
  SECTION("a directory where the file should be") {
    std::filesystem::remove(store.path());
    std::filesystem::create_directory(store.path());
    std::string problem;
    CHECK_FALSE(store.load(&problem));
    CHECK(problem.find(store.path()) == 0);
  }
}

TEST_CASE("state store: a save that cannot be written says so and leaves the file before it whole", "[state]") {
  TempDir dir;
  StateStore store(dir.path);
  std::string error;
  REQUIRE(store.save(sample(), &error));
  const std::string before = read_file(store.path());
  // The temporary file's place is taken by a directory: the write fails.
  std::filesystem::create_directory(store.path() + ".tmp");
  std::filesystem::create_directory(store.path() + ".tmp/x");
  CHECK_FALSE(store.save(SavedState{}, &error));
  CHECK(error.find("state.json.tmp") != std::string::npos);
  CHECK(read_file(store.path()) == before);
}

TEST_CASE("state store: the size and cost of a thousand targets with their traces", "[state]") {
  TempDir dir;
  StateStore store(dir.path);
  SavedState s;
  const SavedState one = sample();
  for (int i = 0; i < 1000; ++i) {
    TargetState t = one.detector.targets[0];
    t.name = "target-" + std::to_string(i);
    s.detector.targets.push_back(t);
    TraceResult trace = one.last_good.at("net1");
    while (trace.hops.size() < 12) trace.hops.insert(trace.hops.begin(), one.last_good.at("net1").hops[0]);
    s.last_good[t.name] = trace;
  }
  const auto begin = std::chrono::steady_clock::now();
  std::string error;
  REQUIRE(store.save(s, &error));
  const double save_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count();
  const auto bytes = std::filesystem::file_size(store.path());
  const auto load_begin = std::chrono::steady_clock::now();
  std::string problem;
  auto back = store.load(&problem);
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_begin).count();
  REQUIRE(back);
  CHECK(back->detector.targets.size() == 1000);
  CHECK(back->last_good.size() == 1000);
  std::printf("state store: 1000 targets, 1000 traces of 12 hops: %ju bytes, saved in %.1f ms, loaded in %.1f ms\n",
              static_cast<std::uintmax_t>(bytes), save_ms, load_ms);
}
