// Name resolution off the event loop: getaddrinfo runs on one worker thread,
// and each answer comes back to the loop (through an eventfd) as a callback.
// Leaves to others: when to ask again (agent), what a name maps to (resolve).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "event_loop.hpp"
#include "resolve.hpp"

namespace outpost {

class AsyncResolver {
 public:
  using Done = std::function<void(const Resolved&)>;

  explicit AsyncResolver(EventLoop& loop);
  ~AsyncResolver();  // waits for a lookup under way to end
  AsyncResolver(const AsyncResolver&) = delete;
  AsyncResolver& operator=(const AsyncResolver&) = delete;

  // `done` runs on the loop's thread once the name is resolved (or not).
  void resolve(const std::string& name, Done done);

 private:
  struct Job {
    std::string name;
    Done done;
    Resolved result;
  };
  void work();
  void deliver();

  EventLoop& loop_;
  int eventfd_ = -1;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> requests_;
  std::deque<Job> answers_;
  bool quit_ = false;
  std::thread worker_;
};

}  // namespace outpost
