// The worker that runs blocking jobs off the loop: jobs run on its thread,
// their completions come back on the loop's thread in order; and when its
// eventfd cannot be made, the constructor says so (a start-up error naming
// eventfd), instead of leaving the worker deaf at run time.

#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "async_worker.hpp"
#include "clock.hpp"
#include "event_loop.hpp"

using namespace std::chrono_literals;
using outpost::AsyncWorker;
using outpost::EventLoop;
using outpost::SystemClock;

TEST_CASE("async worker: jobs run off the loop's thread, completions on it, in order", "[async_worker]") {
  SystemClock clock;
  EventLoop loop(clock);
  AsyncWorker worker(loop);
  const auto loop_thread = std::this_thread::get_id();
  std::vector<int> done;
  std::vector<bool> off_loop(3, false);
  for (int i = 0; i < 3; ++i)
    worker.run([&, i] { off_loop[i] = std::this_thread::get_id() != loop_thread; },
               [&, i] {
                 CHECK(std::this_thread::get_id() == loop_thread);
                 done.push_back(i);
                 if (done.size() == 3) loop.stop();
               });
  loop.after(10s, [&] { loop.stop(); });  // a bound, never reached when it works
  REQUIRE(loop.run());
  CHECK(done == std::vector<int>{0, 1, 2});
  CHECK(off_loop == std::vector<bool>{true, true, true});
}

TEST_CASE("async worker: no eventfd is a start-up error that names it", "[async_worker]") {
  SystemClock clock;
  EventLoop loop(clock);
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  // The lowest free descriptor number is the limit: the next one cannot be made.
  const int lowest = dup(0);
  REQUIRE(lowest >= 0);
  close(lowest);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &tight) == 0);
  std::exception_ptr failure;
  try {
    AsyncWorker worker(loop);
  } catch (...) {
    failure = std::current_exception();  // looked at once descriptors can be had again
  }
  REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
  REQUIRE(failure);
  std::string message;
  try {
    std::rethrow_exception(failure);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  CHECK(message.find("eventfd") != std::string::npos);
}
