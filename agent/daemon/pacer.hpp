// The rate-capped launch queue for probes outside the schedule (trace hops,
// direct probes of a router, vantage checks): each goes to the engine as soon
// as the shared token bucket (agent.max_pps) allows — at once when it has a
// token, also from inside a packet callback, else on a timer at the moment
// the bucket refills. Scheduled probes take their tokens from the same bucket.
// Leaves to others: what the probes are (callers), the bucket's rate (scheduler).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <memory>

#include "engine.hpp"
#include "event_loop.hpp"
#include "scheduler.hpp"

namespace outpost {

class Pacer {
 public:
  Pacer(EventLoop& loop, Engine& engine);
  ~Pacer();
  Pacer(const Pacer&) = delete;
  Pacer& operator=(const Pacer&) = delete;

  // The bucket to take tokens from (the scheduler's); set before launching.
  void set_bucket(TokenBucket* bucket);
  // Queued behind what waits already; `done` is called once with the result.
  void launch(std::unique_ptr<Probe> probe, Engine::Done done);
  // Ends every queued probe at once with `result` (the probes are not sent).
  void cancel_all(const ProbeResult& result);
  // From now on, launch ends each probe with `result` instead (on the next turn of the loop).
  void refuse(ProbeResult result);
  std::size_t queued() const { return queue_.size(); }
  // Probes that could not go at once and waited in the queue for a token
  // (the rate cap at work), since the start; each counted once.
  std::uint64_t waits() const { return waits_; }
  // Called after probes went to the engine (their timeouts need a timer).
  void on_launched(std::function<void()> hook) { launched_ = std::move(hook); }

 private:
  struct Pending {
    std::unique_ptr<Probe> probe;
    Engine::Done done;
  };
  void drain();

  EventLoop& loop_;
  Engine& engine_;
  TokenBucket* bucket_ = nullptr;
  std::deque<Pending> queue_;
  EventLoop::TimerId timer_ = 0;
  bool draining_ = false;
  std::optional<ProbeResult> refusal_;
  std::function<void()> launched_;
  std::uint64_t waits_ = 0;
  std::size_t counted_waiting_ = 0;  // the first this many queued probes are in waits_ already
};

}  // namespace outpost
