// The event loop's timer heap on a fake clock: run_due_timers fires what is
// due, in time order, and nothing else; cancel; timers added from callbacks.
// And run() on the real clock, with either way of waiting: timers never fire
// early, a readable pipe is handed over, stop() ends it.

#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "clock.hpp"
#include "event_loop.hpp"

using namespace std::chrono_literals;
using outpost::EventLoop;
using outpost::FakeClock;

TEST_CASE("event loop: due timers fire in time order, and only those", "[event_loop]") {
  FakeClock clock;
  EventLoop loop(clock);
  std::vector<std::string> fired;
  loop.after(3s, [&] { fired.push_back("3s"); });
  loop.after(1s, [&] { fired.push_back("1s"); });
  loop.at(clock.now() + 2s, [&] { fired.push_back("2s"); });
  loop.after(10s, [&] { fired.push_back("10s"); });
  CHECK(loop.pending_timers() == 4);

  loop.run_due_timers();
  CHECK(fired.empty());

  clock.advance(999ms);
  loop.run_due_timers();
  CHECK(fired.empty());

  clock.advance(1ms);
  loop.run_due_timers();
  CHECK(fired == std::vector<std::string>{"1s"});

  clock.advance(5s);
  loop.run_due_timers();
  CHECK(fired == std::vector<std::string>{"1s", "2s", "3s"});
  CHECK(loop.pending_timers() == 1);

  loop.run_due_timers();  // nothing fires twice
  CHECK(fired.size() == 3);

  clock.advance(1h);
  loop.run_due_timers();
  CHECK(fired == std::vector<std::string>{"1s", "2s", "3s", "10s"});
  CHECK(loop.pending_timers() == 0);
}

TEST_CASE("event loop: timers due at the same time fire in the order they were added", "[event_loop]") {
  FakeClock clock;
  EventLoop loop(clock);
  std::vector<int> fired;
  for (int i = 0; i < 5; ++i) loop.after(1s, [&fired, i] { fired.push_back(i); });
  loop.after(0s, [&fired] { fired.push_back(-1); });
  clock.advance(1s);
  loop.run_due_timers();
  CHECK(fired == std::vector<int>{-1, 0, 1, 2, 3, 4});
}

TEST_CASE("event loop: a cancelled timer does not fire", "[event_loop]") {
  FakeClock clock;
  EventLoop loop(clock);
  std::vector<std::string> fired;
  const auto a = loop.after(1s, [&] { fired.push_back("a"); });
  const auto b = loop.after(2s, [&] { fired.push_back("b"); });
  loop.after(3s, [&] { fired.push_back("c"); });
  CHECK(a != b);

  loop.cancel(b);
  CHECK(loop.pending_timers() == 2);
  loop.cancel(b);       // twice is harmless
  loop.cancel(987654);  // so is an id never given
  CHECK(loop.pending_timers() == 2);

  clock.advance(5s);
  loop.run_due_timers();
  CHECK(fired == std::vector<std::string>{"a", "c"});
  CHECK(loop.pending_timers() == 0);

  loop.cancel(a);  // already fired: harmless, counts stay right
  CHECK(loop.pending_timers() == 0);
}

TEST_CASE("event loop: a callback may cancel another timer due in the same pass", "[event_loop]") {
  FakeClock clock;
  EventLoop loop(clock);
  std::vector<std::string> fired;
  EventLoop::TimerId second = 0;
  loop.after(1s, [&] {
    fired.push_back("first");
    loop.cancel(second);
  });
  second = loop.after(2s, [&] { fired.push_back("second"); });
  clock.advance(3s);
  loop.run_due_timers();
  CHECK(fired == std::vector<std::string>{"first"});
  CHECK(loop.pending_timers() == 0);
}

TEST_CASE("event loop: a timer added from a callback runs when it is due", "[event_loop]") {
  FakeClock clock;
  EventLoop loop(clock);
  std::vector<std::string> fired;
  int ticks = 0;
  // A periodic tick that re-arms itself, as the agent's timers do.
  std::function<void()> tick = [&] {
    fired.push_back("tick" + std::to_string(++ticks));
    if (ticks < 3) loop.after(1s, tick);
  };
  loop.after(1s, tick);
  loop.after(2500ms, [&] { fired.push_back("other"); });

  clock.advance(1s);
  loop.run_due_timers();
  CHECK(fired == std::vector<std::string>{"tick1"});
  CHECK(loop.pending_timers() == 2);  // the re-armed tick, not yet due, and "other"

  clock.advance(999ms);
  loop.run_due_timers();
  CHECK(fired.size() == 1);

  clock.advance(1ms);
  loop.run_due_timers();
  CHECK(fired == std::vector<std::string>{"tick1", "tick2"});

  clock.advance(10s);  // a late wake: what is due runs, in time order
  loop.run_due_timers();
  CHECK(fired == std::vector<std::string>{"tick1", "tick2", "other", "tick3"});
  CHECK(loop.pending_timers() == 0);
}

TEST_CASE("event loop: stop is remembered", "[event_loop]") {
  FakeClock clock;
  EventLoop loop(clock);
  CHECK(&loop.clock() == &clock);
  CHECK_FALSE(loop.stopping());
  loop.after(1s, [&] { loop.stop(); });
  clock.advance(1s);
  loop.run_due_timers();
  CHECK(loop.stopping());
}

TEST_CASE("event loop: run() waits for timers and fds, by epoll_pwait2 or by timerfd", "[event_loop]") {
  const bool timerfd = GENERATE(false, true);
  INFO((timerfd ? "timerfd" : "epoll_pwait2"));
  outpost::SystemClock clock;
  EventLoop loop(clock);
  if (timerfd) loop.use_timerfd();
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  std::vector<std::string> order;
  bool early = false;
  const auto start = clock.now();
  auto at = [&](std::chrono::milliseconds d, std::string name, std::function<void()> then = {}) {
    loop.at(start + d, [&, d, name, then] {
      early = early || clock.now() < start + d;
      order.push_back(name);
      if (then) then();
    });
  };
  at(120ms, "120ms");
  at(20ms, "20ms", [&] { REQUIRE(write(pipe_fds[1], "x", 1) == 1); });
  at(150ms, "150ms", [&] { loop.stop(); });
  at(400ms, "never");  // after stop()
  loop.watch(pipe_fds[0], [&] {
    char c;
    REQUIRE(read(pipe_fds[0], &c, 1) == 1);
    order.push_back("pipe");
  });
  loop.run();
  // The pipe is read on the wake after the 20 ms timer wrote to it, before
  // the next timers (100 ms later) are due.
  CHECK(order == std::vector<std::string>{"20ms", "pipe", "120ms", "150ms"});
  CHECK_FALSE(early);
  loop.unwatch(pipe_fds[0]);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST_CASE("event loop: ready fds are handed over before the timers that came due meanwhile", "[event_loop]") {
  FakeClock clock;
  EventLoop loop(clock);
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::vector<std::string> order;
  loop.watch(fds[0], [&] {
    char c;
    REQUIRE(read(fds[0], &c, 1) == 1);
    order.push_back("read");
  });
  loop.after(1s, [&] { order.push_back("timer"); });
  // A stall: the timer came due and the data arrived while the loop did not run.
  clock.advance(2s);
  REQUIRE(write(fds[1], "x", 1) == 1);
  REQUIRE(loop.run_once(false));
  CHECK(order == std::vector<std::string>{"read", "timer"});
  loop.unwatch(fds[0]);
  close(fds[0]);
  close(fds[1]);
}

TEST_CASE("event loop: an exception out of a callback stops the loop with the reason, never terminate",
          "[event_loop]") {
  FakeClock clock;
  EventLoop loop(clock);
  bool later = false;
  loop.after(0s, [] { throw std::runtime_error("disk on fire"); });
  loop.after(0s, [&] { later = true; });
  CHECK_FALSE(loop.run_once(false));
  CHECK(loop.stopping());
  CHECK(loop.error().find("disk on fire") != std::string::npos);
  CHECK_FALSE(later);  // nothing more runs on a failed loop
  CHECK_FALSE(loop.run());
}

TEST_CASE("event loop: an epoll error ends the run with the reason, not silently", "[event_loop]") {
  FakeClock clock;
  EventLoop loop(clock);
  // Break the loop's epoll descriptor behind its back.
  int closed = 0;
  for (int fd = 3; fd < 1024; ++fd) {
    char link[64] = {};
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = readlink(path.c_str(), link, sizeof link - 1);
    if (n > 0 && std::string(link, static_cast<std::size_t>(n)) == "anon_inode:[eventpoll]") {
      close(fd);
      ++closed;
    }
  }
  REQUIRE(closed >= 1);
  CHECK_FALSE(loop.run());
  CHECK(loop.error().rfind("epoll: ", 0) == 0);
}

TEST_CASE("event loop: before_wait runs at each turn before the wait; a stop there ends the run at once",
          "[event_loop]") {
  outpost::SystemClock clock;
  EventLoop loop(clock);
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::vector<std::string> order;
  // Data put in the pipe before the wait is seen by that same wait.
  loop.before_wait([&] {
    order.push_back("before");
    if (order.size() == 1) REQUIRE(write(fds[1], "x", 1) == 1);
  });
  loop.watch(fds[0], [&] {
    char c;
    REQUIRE(read(fds[0], &c, 1) == 1);
    order.push_back("read");
  });
  REQUIRE(loop.run_once(true));
  CHECK(order == std::vector<std::string>{"before", "read"});
  // A hook that stops the loop: run() returns without waiting for the timer an hour away.
  bool fired = false;
  loop.after(std::chrono::hours(1), [&] { fired = true; });
  loop.before_wait([&] { loop.stop(); });
  const auto start = clock.now();
  CHECK(loop.run());
  CHECK(clock.now() - start < std::chrono::minutes(1));
  CHECK_FALSE(fired);
  CHECK(order == std::vector<std::string>{"before", "read", "before"});
  loop.unwatch(fds[0]);
  close(fds[0]);
  close(fds[1]);
}

TEST_CASE("event loop: coalesced wakes: at most one per gap, with what came meanwhile", "[event_loop]") {
  // The loop's own guarantee, on the real clock: a wait that would begin
  // sooner than the gap after the last wake first sleeps until then (a lower
  // bound only: the kernel never ends an absolute sleep early).
  outpost::SystemClock clock;
  EventLoop loop(clock);
  constexpr auto kGap = 150ms;
  loop.coalesce_wakes(kGap);
  int a[2], b[2];
  REQUIRE(pipe(a) == 0);
  REQUIRE(pipe(b) == 0);
  std::vector<std::string> turn;
  auto reader = [&](int fd, std::string name, std::function<void()> then = {}) {
    loop.watch(fd, [&, fd, name, then] {
      char c;
      REQUIRE(read(fd, &c, 1) == 1);
      turn.push_back(name);
      if (then) then();
    });
  };
  bool wrote = false;
  reader(a[0], "a", [&] {
    if (wrote) return;
    wrote = true;
    // Ready at once after the first wake: each would wake a loop that does not coalesce.
    REQUIRE(write(a[1], "x", 1) == 1);
    REQUIRE(write(b[1], "y", 1) == 1);
  });
  reader(b[0], "b");
  const auto before = clock.now();
  bool timer_fired = false;
  outpost::SteadyTime timer_at{};
  loop.at(before + 10ms, [&] {
    timer_fired = true;
    timer_at = clock.now();
  });
  REQUIRE(write(a[1], "x", 1) == 1);
  REQUIRE(loop.run_once());  // the first wake: no wake before it to wait for
  CHECK(turn == std::vector<std::string>{"a"});
  turn.clear();
  REQUIRE(loop.run_once());
  const auto second = clock.now();
  CHECK(second - before >= kGap);
  std::sort(turn.begin(), turn.end());
  CHECK(turn == std::vector<std::string>{"a", "b"});  // both, in the one turn
  CHECK(timer_fired);                                  // due meanwhile: it runs in that turn
  CHECK(timer_at - before >= kGap);
  for (int fd : {a[0], a[1], b[0], b[1]}) {
    if (fd == a[0] || fd == b[0]) loop.unwatch(fd);
    close(fd);
  }
}

TEST_CASE("event loop: an exact timer wakes the loop inside a coalescing gap", "[event_loop]") {
  // The gap delays ordinary timers, not exact ones (the rate cap's tokens);
  // the bounds are the sleeps' own (an absolute sleep never ends early),
  // with a second's margin for the one that must not be reached.
  outpost::SystemClock clock;
  EventLoop loop(clock);
  constexpr auto kGap = 3s;
  loop.coalesce_wakes(kGap);
  bool ordinary = false, exact = false, cancelled = false;
  outpost::SteadyTime exact_at{}, ordinary_at{};
  loop.at(clock.now(), [] {});
  REQUIRE(loop.run_once());  // a first wake (a timer due at once), for the gap to count from
  const auto wake = clock.now();
  loop.at(wake + 1s, [&] {
    ordinary = true;
    ordinary_at = clock.now();
  });
  const auto gone = loop.at_exact(wake + 10ms, [&] { cancelled = true; });
  loop.at_exact(wake + 20ms, [&] {
    exact = true;
    exact_at = clock.now();
  });
  loop.cancel(gone);
  REQUIRE(loop.run_once());
  CHECK(exact);
  CHECK_FALSE(cancelled);
  CHECK(exact_at - wake >= 20ms);
  CHECK_FALSE(ordinary);  // due at 1 s: the turn ended long before unless the machine stalled for a second
  REQUIRE(loop.run_once());
  CHECK(ordinary);
  CHECK(ordinary_at - wake >= kGap + 20ms);  // the gap counts again from the exact timer's wake
  CHECK(loop.pending_timers() == 0);
}

TEST_CASE("event loop: the before_wait work runs after each timer too", "[event_loop]") {
  // With coalesced wakes several timers come due in one turn: what one sent
  // is read back (the engine's settle) before the next runs.
  FakeClock clock;
  EventLoop loop(clock);
  std::vector<std::string> order;
  loop.before_wait([&] { order.push_back("settle"); });
  loop.after(1s, [&] { order.push_back("a"); });
  loop.after(2s, [&] { order.push_back("b"); });
  clock.advance(3s);
  loop.run_due_timers();
  CHECK(order == std::vector<std::string>{"a", "settle", "b", "settle"});
}

TEST_CASE("event loop: deferred work runs once the callback that deferred it returns, before the next",
          "[event_loop]") {
  FakeClock clock;
  EventLoop loop(clock);
  std::vector<std::string> order;
  int fds[2][2];
  for (auto& p : fds) REQUIRE(pipe(p) == 0);
  for (int i = 0; i < 2; ++i)
    loop.watch(fds[i][0], [&, i] {
      char c;
      REQUIRE(read(fds[i][0], &c, 1) == 1);
      order.push_back("read" + std::to_string(i));
      loop.defer([&, i] { order.push_back("after read" + std::to_string(i)); });
    });
  loop.before_wait([&] {
    order.push_back("settle");
    loop.defer([&] {
      order.push_back("after settle");
      // Deferred from deferred work: runs too, before the loop goes on.
      loop.defer([&] { order.push_back("after after settle"); });
    });
  });
  loop.after(1s, [&] {
    order.push_back("timer");
    loop.defer([&] { order.push_back("after timer"); });
  });
  clock.advance(2s);
  for (auto& p : fds) REQUIRE(write(p[1], "x", 1) == 1);
  REQUIRE(loop.run_once(false));
  // Both pipes are handed over in one turn, in the order epoll reports them.
  REQUIRE(order.size() == 12);
  CHECK(std::vector<std::string>(order.begin(), order.begin() + 3) ==
        std::vector<std::string>{"settle", "after settle", "after after settle"});
  const std::string first = order[3];
  const std::string second = first == "read0" ? "read1" : "read0";
  CHECK((first == "read0" || first == "read1"));
  CHECK(std::vector<std::string>(order.begin() + 3, order.end()) ==
        std::vector<std::string>{first, "after " + first, second, "after " + second, "timer", "after timer", "settle",
                                 "after settle", "after after settle"});
  // Outside any callback: before whatever the loop runs next.
  order.clear();
  loop.defer([&] { order.push_back("outside"); });
  loop.after(1s, [&] { order.push_back("timer"); });
  clock.advance(1s);
  loop.run_due_timers();
  CHECK(order == std::vector<std::string>{"outside", "timer", "settle", "after settle", "after after settle"});
  for (auto& p : fds) {
    loop.unwatch(p[0]);
    close(p[0]);
    close(p[1]);
  }
}
