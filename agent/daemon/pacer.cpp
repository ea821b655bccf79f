#include "pacer.hpp"

#include <algorithm>

namespace outpost {

Pacer::Pacer(EventLoop& loop, Engine& engine) : loop_(loop), engine_(engine) {}

Pacer::~Pacer() {
  if (timer_) loop_.cancel(timer_);
}

void Pacer::set_bucket(TokenBucket* bucket) {
  bucket_ = bucket;
  if (queued() > 0) drain();
}

void Pacer::set_share(double pps) {
  if (pps > 0)
    share_.emplace(pps, std::max(1.0, pps / 100.0));  // a hundredth of a second's worth at once, like the bucket's
  else
    share_.reset();
  if (timer_) {  // the timer was set for the old share
    loop_.cancel(timer_);
    timer_ = 0;
  }
  if (queued() > 0) drain();
}

void Pacer::launch(std::unique_ptr<Probe> probe, Engine::Done done, bool urgent) {
  if (refusal_) {
    // Ended on the next turn of the loop, not inside the caller.
    loop_.after(Duration::zero(), [done = std::move(done), r = *refusal_] { done(r); });
    return;
  }
  (urgent ? urgent_ : queue_).push_back({std::move(probe), std::move(done)});
  drain();
}

bool Pacer::take_ordinary(SteadyTime now) {
  if (!share_) return bucket_->take(now);
  if (share_->available_at(now) > now) return false;
  share_->take(now);
  // The share is owed even when the schedule booked every token (targets
  // that ask for all of max_pps): borrowed, the schedule waits for it.
  bucket_->borrow(now);
  return true;
}

void Pacer::drain() {
  if (draining_) return;  // a probe finishing at once may launch more: the outer loop takes them
  draining_ = true;
  const SteadyTime now = loop_.clock().now();
  bool launched = false;
  auto next = [&]() -> std::deque<Pending>* {
    if (!bucket_) return nullptr;
    if (!urgent_.empty()) {
      bucket_->borrow(now);  // a vantage check is a few probes, now: borrowed when the bucket is empty
      return &urgent_;
    }
    if (!queue_.empty() && take_ordinary(now)) return &queue_;
    return nullptr;
  };
  for (auto* from = next(); from; from = next()) {
    Pending p = std::move(from->front());
    from->pop_front();
    std::size_t& counted = from == &urgent_ ? counted_urgent_ : counted_queue_;
    if (counted > 0) --counted;
    engine_.launch(std::move(p.probe), std::move(p.done));
    launched = true;
  }
  draining_ = false;
  // What is left waits for the bucket: counted once each, however long.
  if (bucket_) {
    waits_ += urgent_.size() - counted_urgent_ + queue_.size() - counted_queue_;
    counted_urgent_ = urgent_.size();
    counted_queue_ = queue_.size();
  }
  if (launched && launched_) launched_();
  if (queued() == 0 || !bucket_) return;
  // Only ordinary launches wait (urgent ones borrow): for the share, or for
  // the bucket when there is no share.
  const SteadyTime when = share_ ? share_->available_at(now) : bucket_->available_at(now);
  if (timer_) {
    if (timer_at_ <= when) return;
    loop_.cancel(timer_);
  }
  timer_at_ = when;
  // On time even when the loop coalesces wakes: a wake per gap would let out
  // a bucket's burst each time, and a trace's share (a burst of one probe)
  // would go at one probe per gap (at 5 ms, 64/s of its 90/s).
  timer_ = loop_.at_exact(when, [this] {
    timer_ = 0;
    drain();
  });
}

void Pacer::cancel_all(const ProbeResult& result) {
  auto queue = std::move(urgent_);
  urgent_.clear();
  for (auto& p : queue_) queue.push_back(std::move(p));
  queue_.clear();
  counted_urgent_ = counted_queue_ = 0;
  if (timer_) {
    loop_.cancel(timer_);
    timer_ = 0;
  }
  for (auto& p : queue) p.done(result);
}

void Pacer::refuse(ProbeResult result) { refusal_ = std::move(result); }

}  // namespace outpost
