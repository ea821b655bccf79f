// The engine's memory of probes already over: late, duplicate or unknown,
// forgetting on time and at its cap, a flow seen again, and a long random
// run checked against a plain map (growth, wrap-around and backward-shift
// deletion all included), its size at a million flows, and room reserved.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "finished_memory.hpp"

using namespace std::chrono_literals;
using outpost::FinishedMemory;
using outpost::FlowKey;
using outpost::FlowProto;
using outpost::IpAddress;
using outpost::SteadyTime;
using Kind = FinishedMemory::Kind;

namespace {

FlowKey key(std::uint32_t n) {
  FlowKey k;
  k.proto = FlowProto::icmp_echo;
  k.remote = *IpAddress::parse("198.18.0." + std::to_string(1 + n % 200));
  k.a = static_cast<std::uint16_t>(n / 200);
  k.b = static_cast<std::uint16_t>(n * 7919u);
  return k;
}

const SteadyTime t0 = SteadyTime{} + 1000s;

}  // namespace

TEST_CASE("finished memory: answered, timed out, unknown", "[finished]") {
  FinishedMemory m(100, 42);
  CHECK(m.find(key(1)) == Kind::unknown);
  m.remember(key(1), false, t0 + 30s);
  m.remember(key(2), true, t0 + 30s);
  CHECK(m.find(key(1)) == Kind::answered);
  CHECK(m.find(key(2)) == Kind::timed_out);
  CHECK(m.find(key(3)) == Kind::unknown);
  CHECK(m.size() == 2);
}

TEST_CASE("finished memory: a flow is forgotten at its time, not before", "[finished]") {
  FinishedMemory m(100, 7);
  m.remember(key(1), false, t0 + 30s);
  m.remember(key(2), true, t0 + 31s);
  m.forget_until(t0 + 29s);
  CHECK(m.find(key(1)) == Kind::answered);
  m.forget_until(t0 + 30s);
  CHECK(m.find(key(1)) == Kind::unknown);
  CHECK(m.find(key(2)) == Kind::timed_out);
  m.forget_until(t0 + 31s);
  CHECK(m.find(key(2)) == Kind::unknown);
  CHECK(m.size() == 0);
}

TEST_CASE("finished memory: at its cap the oldest flows go first", "[finished]") {
  FinishedMemory m(100, 9);
  for (std::uint32_t n = 0; n < 1000; ++n) m.remember(key(n), n % 2 == 1, t0 + 30s);
  CHECK(m.size() == 100);
  int kept = 0, wrong = 0;
  for (std::uint32_t n = 0; n < 1000; ++n) {
    const Kind k = m.find(key(n));
    if (n < 900) {
      wrong += k != Kind::unknown;
    } else {
      ++kept;
      wrong += k != (n % 2 ? Kind::timed_out : Kind::answered);
    }
  }
  CHECK(kept == 100);
  CHECK(wrong == 0);
}

TEST_CASE("finished memory: a flow remembered again keeps its newer entry", "[finished]") {
  FinishedMemory m(100, 3);
  m.remember(key(5), true, t0 + 10s);
  m.remember(key(6), false, t0 + 15s);
  m.remember(key(5), false, t0 + 20s);
  CHECK(m.find(key(5)) == Kind::answered);
  // The older entry's time comes: the newer one stays.
  m.forget_until(t0 + 10s);
  CHECK(m.find(key(5)) == Kind::answered);
  CHECK(m.find(key(6)) == Kind::answered);
  m.forget_until(t0 + 20s);
  CHECK(m.find(key(5)) == Kind::unknown);
  CHECK(m.find(key(6)) == Kind::unknown);
}

TEST_CASE("finished memory: a long random run agrees with a plain map", "[finished]") {
  // Few enough distinct flows (3,000) that their 31-bit fingerprints do not
  // collide with this salt; enough operations to grow, wrap and delete a lot.
  constexpr std::size_t cap = 1500;
  FinishedMemory m(cap, 0x5eed);
  std::map<std::uint32_t, std::pair<Kind, std::uint64_t>> model;  // flow -> kind, the sequence number of its entry
  std::vector<std::pair<std::uint32_t, SteadyTime>> order;         // every entry, oldest first
  std::size_t oldest = 0;
  std::mt19937 rng(1234);
  SteadyTime now = t0;
  int mismatches = 0;
  for (int step = 0; step < 60000; ++step) {
    now += std::chrono::milliseconds(rng() % 7);
    const std::uint32_t flow = rng() % 3000;
    const bool timed_out = rng() % 3 == 0;
    const SteadyTime forget_at = now + 500ms;
    // The model: at the cap, the oldest entry goes (and its flow, when that
    // entry is the flow's latest).
    if (order.size() - oldest == cap) {
      const auto [f, _] = order[oldest];
      auto it = model.find(f);
      if (it != model.end() && it->second.second == oldest) model.erase(it);
      ++oldest;
    }
    m.remember(key(flow), timed_out, forget_at);
    model[flow] = {timed_out ? Kind::timed_out : Kind::answered, order.size()};
    order.emplace_back(flow, forget_at);
    if (step % 5 == 0) {
      m.forget_until(now);
      while (oldest < order.size() && order[oldest].second <= now) {
        auto it = model.find(order[oldest].first);
        if (it != model.end() && it->second.second == oldest) model.erase(it);
        ++oldest;
      }
    }
    if (step % 97 == 0) {
      for (std::uint32_t f = 0; f < 3000; ++f) {
        auto it = model.find(f);
        const Kind want = it == model.end() ? Kind::unknown : it->second.first;
        mismatches += m.find(key(f)) != want;
      }
      mismatches += m.size() != order.size() - oldest;
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("finished memory: a million flows in under 17 MiB", "[finished]") {
  constexpr std::size_t million = std::size_t{1} << 20;
  FinishedMemory m(million, 11);
  std::vector<IpAddress> hosts;
  for (int h = 0; h < 256; ++h) hosts.push_back(*IpAddress::parse("198.18.0." + std::to_string(h)));
  FlowKey k;
  for (std::uint32_t n = 0; n < million + 1000; ++n) {
    k.remote = hosts[n & 0xff];
    k.a = static_cast<std::uint16_t>(n >> 8);
    m.remember(k, false, t0 + 30s);
  }
  CHECK(m.size() == million);
  CHECK(m.find(k) == Kind::answered);
  CHECK(m.bytes() <= 17u * 1024 * 1024);
}

TEST_CASE("finished memory: reserved room holds that many flows without growing", "[finished]") {
  FinishedMemory m(100000, 5);  // 20,000 flows: no two fingerprints alike with this salt
  m.remember(key(0), false, t0 + 30s);  // kept through the reserve
  const std::size_t before = m.bytes();
  m.reserve(20000);
  const std::size_t reserved = m.bytes();
  CHECK(reserved > before);
  CHECK(m.find(key(0)) == Kind::answered);
  for (std::uint32_t n = 1; n < 20000; ++n) m.remember(key(n), n % 3 == 0, t0 + 30s);
  CHECK(m.size() == 20000);
  CHECK(m.bytes() == reserved);  // no growth: no entry moved
  int wrong = 0;
  for (std::uint32_t n = 0; n < 20000; ++n) wrong += m.find(key(n)) != (n && n % 3 == 0 ? Kind::timed_out : Kind::answered);
  CHECK(wrong == 0);
  // Past the reserve it grows as before; a reserve beyond the cap stops at the cap.
  m.remember(key(20000), false, t0 + 30s);
  CHECK(m.bytes() > reserved);
  FinishedMemory capped(1000, 5);
  capped.reserve(1 << 20);
  for (std::uint32_t n = 0; n < 1500; ++n) capped.remember(key(n), false, t0 + 30s);
  CHECK(capped.size() == 1000);
  CHECK(capped.find(key(1499)) == Kind::answered);
  CHECK(capped.find(key(0)) == Kind::unknown);
}
