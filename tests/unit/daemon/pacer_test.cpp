// The pacer: probes outside the schedule go to the engine at once while the
// shared bucket has tokens, the rest on a timer when it refills, in order;
// cancel_all ends what waits; refuse ends what comes later, on the next turn.

#include <catch2/catch.hpp>

#include <functional>
#include <vector>

#include "clock.hpp"
#include "engine.hpp"
#include "event_loop.hpp"
#include "icmp_echo.hpp"
#include "pacer.hpp"
#include "scheduler.hpp"
#include "sim_net.hpp"

using namespace std::chrono_literals;
using namespace outpost;

namespace {

struct PacerLab {
  FakeClock clock;
  EventLoop loop{clock};
  sim::SimNet net{clock, loop, *IpAddress::parse("198.19.0.1"), *IpAddress::parse("2001:db8::1")};
  Engine engine{clock, net, FilterParams{0x1234}};
  sim::SimDriver driver{clock, loop, net};
  Pacer pacer{loop, engine};
  std::vector<int> done;
  PacerLab() {
    net.add_path("198.18.0.0/24", {*IpAddress::parse("198.19.0.2")});
    net.add_host(*IpAddress::parse("198.18.0.1"));
  }
  void launch(int n) {
    pacer.launch(std::make_unique<IcmpEchoProbe>(*IpAddress::parse("198.18.0.1"), 1s),
                 [this, n](const ProbeResult&) { done.push_back(n); });
  }
};

}  // namespace

TEST_CASE("pacer: at once while there are tokens, then as the bucket refills, in order", "[pacer]") {
  PacerLab lab;
  TokenBucket bucket(10, 2);  // 10 a second, 2 at once
  lab.pacer.set_bucket(&bucket);
  for (int i = 0; i < 5; ++i) lab.launch(i);
  CHECK(lab.engine.stats().launched == 2);  // no tick needed for the first ones
  CHECK(lab.pacer.queued() == 3);
  REQUIRE(lab.driver.run_for(150ms));
  CHECK(lab.engine.stats().launched == 3);
  REQUIRE(lab.driver.run_for(2s));
  CHECK(lab.engine.stats().launched == 5);
  CHECK(lab.pacer.queued() == 0);
  CHECK(lab.done == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("pacer: cancel_all ends what waits; refuse ends what comes later, on the next turn", "[pacer]") {
  PacerLab lab;
  TokenBucket bucket(1, 1);
  lab.pacer.set_bucket(&bucket);
  for (int i = 0; i < 3; ++i) lab.launch(i);
  CHECK(lab.engine.stats().launched == 1);
  ProbeResult cancelled;
  cancelled.status = ProbeStatus::error;
  cancelled.error = "stopping";
  lab.pacer.cancel_all(cancelled);
  CHECK(lab.done == std::vector<int>{1, 2});
  lab.pacer.refuse(cancelled);
  lab.launch(3);
  CHECK(lab.done == std::vector<int>{1, 2});  // not inside the caller
  REQUIRE(lab.driver.run_for(2s));
  CHECK(lab.done == std::vector<int>{1, 2, 3, 0});  // 3 refused on the next turn, 0 answered 4 ms later
  CHECK(lab.engine.stats().launched == 1);
}

TEST_CASE("pacer: waits counts each probe that had to wait for a token, once", "[pacer]") {
  PacerLab lab;
  TokenBucket bucket(10, 2);
  lab.pacer.set_bucket(&bucket);
  for (int i = 0; i < 2; ++i) lab.launch(i);
  CHECK(lab.pacer.waits() == 0);  // both had a token
  for (int i = 2; i < 5; ++i) lab.launch(i);
  CHECK(lab.pacer.waits() == 3);
  REQUIRE(lab.driver.run_for(150ms));  // one more left; the two still queued are not counted again
  CHECK(lab.pacer.queued() == 2);
  CHECK(lab.pacer.waits() == 3);
  lab.launch(5);
  CHECK(lab.pacer.waits() == 4);
  REQUIRE(lab.driver.run_for(2s));
  CHECK(lab.pacer.queued() == 0);
  CHECK(lab.pacer.waits() == 4);
  lab.launch(6);  // the bucket has refilled
  CHECK(lab.pacer.waits() == 4);
}

TEST_CASE("pacer: ordinary launches keep to their share of the bucket; the rest is left to the schedule", "[pacer]") {
  PacerLab lab;
  TokenBucket bucket(100, 1);  // 100 a second
  lab.pacer.set_bucket(&bucket);
  lab.pacer.set_share(20);  // of which the pacer may take 20
  for (int i = 0; i < 40; ++i) lab.launch(i);
  REQUIRE(lab.driver.run_for(1s));
  // One at once, then about 20 a second: never the bucket's 100.
  CHECK(lab.engine.stats().launched >= 19);
  CHECK(lab.engine.stats().launched <= 22);
  // Tokens are left for scheduled probes: the bucket has refilled.
  CHECK(bucket.take(lab.clock.now()));
  lab.pacer.set_share(0);  // no share: the bucket alone
  REQUIRE(lab.driver.run_for(1s));
  CHECK(lab.engine.stats().launched == 40);
  CHECK(lab.done.size() == 40);
}

TEST_CASE("pacer: an urgent launch goes ahead of the queue and outside the share", "[pacer]") {
  PacerLab lab;
  TokenBucket bucket(10, 1);
  lab.pacer.set_bucket(&bucket);
  lab.pacer.set_share(1);
  for (int i = 0; i < 5; ++i) lab.launch(i);
  CHECK(lab.engine.stats().launched == 1);
  REQUIRE(lab.driver.run_for(150ms));  // the bucket has a token again; the share has not
  CHECK(lab.engine.stats().launched == 1);
  lab.pacer.launch(std::make_unique<IcmpEchoProbe>(*IpAddress::parse("198.18.0.1"), 1s),
                   [&lab](const ProbeResult&) { lab.done.push_back(100); }, /*urgent=*/true);
  CHECK(lab.engine.stats().launched == 2);  // at once, with the bucket's token
  REQUIRE(lab.driver.run_for(100ms));
  CHECK(lab.done == std::vector<int>{0, 100});
  CHECK(lab.pacer.queued() == 4);
  lab.pacer.cancel_all(ProbeResult{});
  CHECK(lab.pacer.queued() == 0);
}

TEST_CASE("pacer: an urgent launch goes at once, borrowing when the bucket is empty", "[pacer]") {
  PacerLab lab;
  TokenBucket bucket(10, 1);  // a token every 100 ms
  lab.pacer.set_bucket(&bucket);
  lab.pacer.set_share(1);  // one a second for ordinary launches
  for (int i = 0; i < 3; ++i) lab.launch(i);
  CHECK(lab.engine.stats().launched == 1);  // the bucket is empty now; the others wait for the share
  lab.pacer.launch(std::make_unique<IcmpEchoProbe>(*IpAddress::parse("198.18.0.1"), 1s),
                   [&lab](const ProbeResult&) { lab.done.push_back(100); }, /*urgent=*/true);
  CHECK(lab.engine.stats().launched == 2);  // at once, on a borrowed token
  // The schedule pays it back: no token for 100 ms more than otherwise.
  CHECK_FALSE(bucket.take(lab.clock.now() + 150ms));
  CHECK(bucket.take(lab.clock.now() + 210ms));
  REQUIRE(lab.driver.run_for(3s));
  CHECK(lab.engine.stats().launched == 4);
}

TEST_CASE("pacer: within its share a launch goes even when the schedule books every token", "[pacer]") {
  PacerLab lab;
  TokenBucket bucket(100, 1);  // 100 a second
  lab.pacer.set_bucket(&bucket);
  lab.pacer.set_share(5);
  for (int i = 0; i < 20; ++i) lab.launch(i);
  // A schedule that takes each token the moment it is there, for 2 s.
  std::uint64_t scheduled = 0;
  const SteadyTime end = lab.clock.now() + 2s;
  std::function<void()> schedule = [&] {
    while (bucket.take(lab.clock.now())) ++scheduled;
    if (lab.clock.now() < end) lab.loop.at(bucket.available_at(lab.clock.now()), schedule);
  };
  schedule();
  REQUIRE(lab.driver.run_for(2s));
  const std::uint64_t paced = lab.engine.stats().launched;
  // About 5 a second for the pacer: it is not starved...
  CHECK(paced >= 9);
  CHECK(paced <= 12);
  // ...and the two together keep to the bucket's 100 a second (and its one at once).
  CHECK(scheduled + paced <= 2 * 100 + 2);
  CHECK(scheduled >= 2 * 100 - 12 - 2);
}
