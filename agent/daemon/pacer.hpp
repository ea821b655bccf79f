// The rate-capped launch queue for probes outside the schedule (trace hops,
// direct probes of a router, vantage checks): each goes to the engine as soon
// as the shared token bucket (agent.max_pps) allows — at once when it has a
// token, also from inside a packet callback, else on a timer at the moment
// the bucket refills. Scheduled probes take their tokens from the same bucket:
// the pacer's probes also keep within a share of the rate of their own (what
// the schedule leaves), so that a start-up's 100,000 baseline traces do not
// take the tokens the instant they appear and make every scheduled probe
// late. Within its share a launch goes even when the schedule has booked
// every token, borrowing one (the schedule then waits for it), so traces run
// under any schedule. Urgent probes (vantage checks) go at once, ahead of the
// queue, outside the share, borrowing when the bucket is empty.
// Leaves to others: what the probes are (callers), the rates (agent, scheduler).
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
  // The most probes per second that ordinary launches take from it (0: no
  // limit but the bucket's). Launches queued already wait for the new share.
  void set_share(double pps);
  // Queued behind what waits already (urgent: ahead of every ordinary
  // probe, outside the share); `done` is called once with the result.
  void launch(std::unique_ptr<Probe> probe, Engine::Done done, bool urgent = false);
  // Ends every queued probe at once with `result` (the probes are not sent).
  void cancel_all(const ProbeResult& result);
  // From now on, launch ends each probe with `result` instead (on the next turn of the loop).
  void refuse(ProbeResult result);
  std::size_t queued() const { return queue_.size() + urgent_.size(); }
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
  bool take_ordinary(SteadyTime now);

  EventLoop& loop_;
  Engine& engine_;
  TokenBucket* bucket_ = nullptr;
  std::optional<TokenBucket> share_;  // ordinary launches' own limit
  std::deque<Pending> urgent_;
  std::deque<Pending> queue_;
  EventLoop::TimerId timer_ = 0;
  SteadyTime timer_at_{};
  bool draining_ = false;
  std::optional<ProbeResult> refusal_;
  std::function<void()> launched_;
  std::uint64_t waits_ = 0;
  // The first this many of each queue are in waits_ already.
  std::size_t counted_urgent_ = 0;
  std::size_t counted_queue_ = 0;
};

}  // namespace outpost
