// The correlator's verdicts over synthetic traces through the lab's networks
// (TESTBED.md): vp -> isp AS64496 -> carrier AS64500 -> border AS64510 -> the
// target networks 198.18.0.0/22 (AS64510), with the carrier as the group's
// upstream. Where the failure trace dies, compared with the last good trace.

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "correlator.hpp"
#include "asn_table.hpp"
#include "json_lines.hpp"
#include "records.hpp"

using outpost::AsnTable;
using outpost::IpAddress;
using outpost::TraceHop;
using outpost::TraceResult;
using outpost::Verdict;
using outpost::VerdictInput;
using outpost::WallTime;
using outpost::Where;

namespace {

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  REQUIRE(a);
  return *a;
}

const char* const kIsp = "198.19.0.2";      // AS64496
const char* const kCarrier = "198.19.0.6";  // AS64500
const char* const kBorder = "198.19.0.10";  // AS64510
const char* const kTarget = "198.18.0.1";   // AS64510

constexpr std::uint32_t kIspAsn = 64496, kCarrierAsn = 64500, kTargetAsn = 64510;

AsnTable lab_table() {
  outpost::AsnLoadReport report;
  auto t = AsnTable::parse(
      "# the lab's links and target networks\n"
      "198.19.0.0/30\t64496\n"
      "198.19.0.4/30\t64500\n"
      "198.19.0.8/30\t64510\n"
      "198.18.0.0/22\t64510\n"
      "198.19.1.0/24\t64520\n",
      "lab", &report);
  REQUIRE(report.skipped == 0);
  REQUIRE(report.prefixes == 5);
  return t;
}

const WallTime kBaselineTime = WallTime{} + std::chrono::seconds(1419264000);
const WallTime kFailureTime = WallTime{} + std::chrono::seconds(1419264900);  // 2014-12-22T16:15:00Z

TraceHop hop(int ttl, const char* addr = nullptr, bool is_target = false) {
  TraceHop h;
  h.ttl = ttl;
  if (addr) {
    h.addr = ip(addr);
    h.icmp_type = is_target ? 0 : 11;
    h.rtt = std::chrono::milliseconds(ttl);
  }
  h.is_target = is_target;
  h.probes_sent = addr ? 1 : 2;
  return h;
}

TraceResult trace(std::vector<TraceHop> hops, bool reached, WallTime when, const char* stop) {
  TraceResult t;
  t.target = ip(kTarget);
  t.started = when;
  t.hops = std::move(hops);
  t.reached = reached;
  t.stop_reason = stop;
  return t;
}

// The last good trace: isp, carrier, border, target in 4 hops.
TraceResult baseline() {
  return trace({hop(1, kIsp), hop(2, kCarrier), hop(3, kBorder), hop(4, kTarget, true)}, true, kBaselineTime,
               "reached");
}

// A failure trace: these hops answer, then gap_limit silent ones.
TraceResult dies_after(std::vector<const char*> answering, int silent = 5) {
  std::vector<TraceHop> hops;
  int ttl = 1;
  for (const char* a : answering) hops.push_back(hop(ttl++, a));
  for (int i = 0; i < silent; ++i) hops.push_back(hop(ttl++));
  return trace(std::move(hops), false, kFailureTime, "gap");
}

struct Case {
  std::shared_ptr<const AsnTable> asns = std::make_shared<const AsnTable>(lab_table());
  TraceResult good = baseline();
  TraceResult bad;
  VerdictInput in;
  Case() {
    in.target = ip(kTarget);
    in.baseline = &good;
    in.failure = &bad;
    in.asn_of = [table = asns](const IpAddress& a) -> std::optional<std::uint32_t> {
      auto m = table->lookup(a);
      if (!m) return std::nullopt;
      return m->origin.primary();
    };
    in.upstream_asn = kCarrierAsn;
  }
  Verdict judge() { return outpost::judge(in); }
};

}  // namespace

TEST_CASE("correlator: where names", "[correlator]") {
  CHECK(outpost::to_string(Where::upstream) == "upstream");
  CHECK(outpost::to_string(Where::target_network) == "target_network");
  CHECK(outpost::to_string(Where::before_upstream) == "before_upstream");
  CHECK(outpost::to_string(Where::vantage) == "vantage");
  CHECK(outpost::to_string(Where::unknown) == "unknown");
}

TEST_CASE("correlator: the path dies after the carrier's router: upstream", "[correlator]") {
  Case c;
  c.bad = dies_after({kIsp, kCarrier});
  const Verdict v = c.judge();
  INFO(v.reason);
  CHECK(v.where == Where::upstream);
  CHECK(v.last_hop == ip(kCarrier));
  REQUIRE(v.last_hop_asn);
  CHECK(*v.last_hop_asn == kCarrierAsn);
  CHECK(v.last_ttl == 2);
  REQUIRE(v.baseline_reached_asn);
  CHECK(*v.baseline_reached_asn == kTargetAsn);
  REQUIRE(v.trace);
  CHECK(*v.trace == kFailureTime);
  CHECK(v.have_baseline);
  CHECK_FALSE(v.last_hop_alive);
  CHECK(v.reason.find("hop 2") != std::string::npos);
  CHECK(v.reason.find("AS64500") != std::string::npos);
  CHECK(v.reason.find("upstream") != std::string::npos);
}

TEST_CASE("correlator: the path dies after the border, in the target's own network", "[correlator]") {
  Case c;
  c.bad = dies_after({kIsp, kCarrier, kBorder});
  const Verdict v = c.judge();
  INFO(v.reason);
  CHECK(v.where == Where::target_network);
  CHECK(v.last_hop == ip(kBorder));
  REQUIRE(v.last_hop_asn);
  CHECK(*v.last_hop_asn == kTargetAsn);
  CHECK(v.last_ttl == 3);
  REQUIRE(v.baseline_reached_asn);
  CHECK(*v.baseline_reached_asn == kTargetAsn);
}

TEST_CASE("correlator: the path dies before the carrier the baseline shows at TTL 2: before_upstream",
          "[correlator]") {
  Case c;
  c.bad = dies_after({kIsp});
  const Verdict v = c.judge();
  INFO(v.reason);
  CHECK(v.where == Where::before_upstream);
  CHECK(v.last_hop == ip(kIsp));
  REQUIRE(v.last_hop_asn);
  CHECK(*v.last_hop_asn == kIspAsn);
  CHECK(v.last_ttl == 1);
  CHECK(v.reason.find("hop 2") != std::string::npos);  // where the carrier was in the last good trace
}

TEST_CASE("correlator: a path through another AS that dies later than the carrier's TTL is not before it",
          "[correlator]") {
  // The new path detours through AS64520 at TTL 3 and dies there: not the
  // carrier, not the target, and past the carrier's TTL in the baseline.
  Case c;
  c.bad = dies_after({kIsp, "198.19.1.1", "198.19.1.5"});
  const Verdict v = c.judge();
  INFO(v.reason);
  CHECK(v.where == Where::unknown);
  REQUIRE(v.last_hop_asn);
  CHECK(*v.last_hop_asn == 64520);
  CHECK(v.last_ttl == 3);
}

TEST_CASE("correlator: nothing answers the failure trace: before_upstream", "[correlator]") {
  Case c;
  c.bad = dies_after({}, 5);
  const Verdict v = c.judge();
  INFO(v.reason);
  CHECK(v.where == Where::before_upstream);
  CHECK_FALSE(v.last_hop);
  CHECK_FALSE(v.last_hop_asn);
  CHECK(v.last_ttl == 0);
  REQUIRE(v.trace);
  CHECK(*v.trace == kFailureTime);
}

TEST_CASE("correlator: the control targets fail too: vantage", "[correlator]") {
  SECTION("with a failure trace: its last hop is still given") {
    Case c;
    c.bad = dies_after({kIsp, kCarrier});
    c.in.vantage_failing = true;
    const Verdict v = c.judge();
    INFO(v.reason);
    CHECK(v.where == Where::vantage);
    CHECK(v.last_hop == ip(kCarrier));
    CHECK(v.last_ttl == 2);
    REQUIRE(v.trace);
  }
  SECTION("without one") {
    Case c;
    c.in.failure = nullptr;
    c.in.vantage_failing = true;
    const Verdict v = c.judge();
    INFO(v.reason);
    CHECK(v.where == Where::vantage);
    CHECK_FALSE(v.last_hop);
    CHECK_FALSE(v.trace);
    CHECK(v.reason.find("control targets") != std::string::npos);
  }
}

TEST_CASE("correlator: the failure trace still reaches the target: the service is down, the host is up",
          "[correlator]") {
  Case c;
  c.bad = trace({hop(1, kIsp), hop(2, kCarrier), hop(3, kBorder), hop(4, kTarget, true)}, true, kFailureTime,
                "reached");
  const Verdict v = c.judge();
  INFO(v.reason);
  CHECK(v.where == Where::target_network);
  CHECK(v.last_hop == ip(kTarget));
  REQUIRE(v.last_hop_asn);
  CHECK(*v.last_hop_asn == kTargetAsn);
  CHECK(v.last_ttl == 4);
  CHECK(v.reason.find("198.18.0.1") != std::string::npos);
}

TEST_CASE("correlator: a last hop that does not answer direct probes gives unknown", "[correlator]") {
  Case c;
  c.bad = dies_after({kIsp, kCarrier});
  c.in.last_hop_alive = false;
  const Verdict v = c.judge();
  INFO(v.reason);
  CHECK(v.where == Where::unknown);
  CHECK(v.last_hop == ip(kCarrier));
  REQUIRE(v.last_hop_alive);
  CHECK_FALSE(*v.last_hop_alive);
  CHECK(v.reason.find("rate-limiting") != std::string::npos);

  // Alive: the ordinary verdict.
  c.in.last_hop_alive = true;
  CHECK(c.judge().where == Where::upstream);
}

TEST_CASE("correlator: no baseline and no upstream: unknown", "[correlator]") {
  Case c;
  c.bad = dies_after({kIsp, kCarrier});
  c.in.baseline = nullptr;
  c.in.upstream_asn.reset();
  const Verdict v = c.judge();
  INFO(v.reason);
  CHECK(v.where == Where::unknown);
  CHECK_FALSE(v.have_baseline);
  CHECK_FALSE(v.baseline_reached_asn);
  CHECK(v.last_hop == ip(kCarrier));
  REQUIRE(v.last_hop_asn);
  CHECK(*v.last_hop_asn == kCarrierAsn);
  CHECK(v.reason.find("no good trace") != std::string::npos);
}

TEST_CASE("correlator: without a baseline the target address names the target's network", "[correlator]") {
  Case c;
  c.in.baseline = nullptr;
  c.bad = dies_after({kIsp, kCarrier, kBorder});
  CHECK(c.judge().where == Where::target_network);
  c.bad = dies_after({kIsp, kCarrier});
  CHECK(c.judge().where == Where::upstream);  // the upstream ASN is still known
}

TEST_CASE("correlator: without a failure trace nor a failing vantage: unknown", "[correlator]") {
  Case c;
  c.in.failure = nullptr;
  const Verdict v = c.judge();
  CHECK(v.where == Where::unknown);
  CHECK_FALSE(v.trace);
  CHECK(v.have_baseline);
  REQUIRE(v.baseline_reached_asn);
  CHECK(*v.baseline_reached_asn == kTargetAsn);
}

TEST_CASE("correlator: last_router skips silent hops and the target", "[correlator]") {
  const TraceResult good = baseline();
  const TraceHop* last = outpost::last_router(good);
  REQUIRE(last);
  CHECK(last->addr == ip(kBorder));
  const TraceResult bad = dies_after({kIsp, kCarrier}, 3);
  last = outpost::last_router(bad);
  REQUIRE(last);
  CHECK(last->ttl == 2);
  CHECK(outpost::last_router(dies_after({}, 3)) == nullptr);
}

TEST_CASE("correlator: verdict_json carries exactly the contract's fields", "[correlator]") {
  Case c;
  c.bad = dies_after({kIsp, kCarrier});
  const auto j = outpost::verdict_json(c.judge());
  std::set<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
  // CONTRACT.md's verdict, plus have_baseline and reason.
  CHECK(keys == std::set<std::string>{"where", "last_hop", "last_hop_asn", "last_ttl", "baseline_reached_asn",
                                      "trace", "have_baseline", "reason"});
  CHECK(j["where"] == "upstream");
  CHECK(j["last_hop"] == "198.19.0.6");
  CHECK(j["last_hop_asn"] == 64500);
  CHECK(j["last_ttl"] == 2);
  CHECK(j["baseline_reached_asn"] == 64510);
  CHECK(j["trace"] == "2014-12-22T16:15:00.000000Z");
  CHECK(j["trace"] == outpost::rfc3339(kFailureTime));
  CHECK(j["have_baseline"] == true);
  CHECK(j["reason"].is_string());
  CHECK_FALSE(j["reason"].get<std::string>().empty());

  SECTION("last_hop_alive appears when it was checked") {
    c.in.last_hop_alive = true;
    const auto k = outpost::verdict_json(c.judge());
    REQUIRE(k.contains("last_hop_alive"));
    CHECK(k["last_hop_alive"] == true);
    CHECK(k.size() == j.size() + 1);
  }
  SECTION("what is not known is null, not absent") {
    Case none;
    none.in.failure = nullptr;
    none.in.baseline = nullptr;
    const auto k = outpost::verdict_json(none.judge());
    CHECK(k.size() == j.size());
    CHECK(k["where"] == "unknown");
    CHECK(k["last_hop"].is_null());
    CHECK(k["last_hop_asn"].is_null());
    CHECK(k["baseline_reached_asn"].is_null());
    CHECK(k["trace"].is_null());
    CHECK(k["last_ttl"] == 0);
    CHECK(k["have_baseline"] == false);
  }
}
