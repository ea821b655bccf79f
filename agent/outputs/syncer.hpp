// The one background thread that fdatasyncs files on request, so the event
// loop never blocks on a disk flush (the spool, the durable JSON Lines file).
// Leaves to others: when to ask (the spool and the file output decide).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "log_limiter.hpp"

namespace outpost {

class Syncer {
 public:
  Syncer();
  // Syncs what is still queued, then joins the thread.
  ~Syncer();
  Syncer(const Syncer&) = delete;
  Syncer& operator=(const Syncer&) = delete;

  // Queues an fdatasync of `fd`'s file. The fd is dup()ed here, so the caller
  // may close or rotate its own descriptor at once; the duplicate is closed
  // after the sync. A request for a file already waiting in the queue is
  // folded into that one (its sync, still to come, covers what was written).
  // A failure (the dup, or the sync) is counted and logged.
  void sync(int fd);

  // Blocks until every request made before the call has been synced.
  void drain();

  std::uint64_t synced() const { return synced_.load(); }
  std::uint64_t failures() const { return failures_.load(); }
  std::uint64_t folded() const { return folded_.load(); }

 private:
  struct Request {
    int fd;
    std::uint64_t dev, ino;
  };
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<Request> queue_;
  LogLimiter warn_{std::chrono::minutes(1)};  // under mutex_
  bool busy_ = false;
  bool stop_ = false;
  std::atomic<std::uint64_t> synced_{0}, failures_{0}, folded_{0};
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace outpost
