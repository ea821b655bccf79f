// Blocking work off the event loop: each job runs on one worker thread (a
// getaddrinfo, say), and its completion comes back to the loop (through an
// eventfd) as a callback on the loop's thread.
// Leaves to others: what the jobs do and when to ask for them.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "event_loop.hpp"

namespace outpost {

class AsyncWorker {
 public:
  // Throws std::runtime_error (naming eventfd) when the wake-up descriptor
  // cannot be made: a start-up error.
  explicit AsyncWorker(EventLoop& loop);
  ~AsyncWorker();  // waits for a job under way to end
  AsyncWorker(const AsyncWorker&) = delete;
  AsyncWorker& operator=(const AsyncWorker&) = delete;

  // `work` runs on the worker thread; `done` then runs on the loop's thread.
  void run(std::function<void()> work, std::function<void()> done);

 private:
  struct Job {
    std::function<void()> work;
    std::function<void()> done;
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
