#include "pacer.hpp"

namespace outpost {

Pacer::Pacer(EventLoop& loop, Engine& engine) : loop_(loop), engine_(engine) {}

Pacer::~Pacer() {
  if (timer_) loop_.cancel(timer_);
}

void Pacer::set_bucket(TokenBucket* bucket) {
  bucket_ = bucket;
  if (!queue_.empty()) drain();
}

void Pacer::launch(std::unique_ptr<Probe> probe, Engine::Done done) {
  if (refusal_) {
    // Ended on the next turn of the loop, not inside the caller.
    loop_.after(Duration::zero(), [done = std::move(done), r = *refusal_] { done(r); });
    return;
  }
  queue_.push_back({std::move(probe), std::move(done)});
  drain();
}

void Pacer::drain() {
  if (draining_) return;  // a probe finishing at once may launch more: the outer loop takes them
  draining_ = true;
  const SteadyTime now = loop_.clock().now();
  bool launched = false;
  while (!queue_.empty() && bucket_ && bucket_->take(now)) {
    Pending next = std::move(queue_.front());
    queue_.pop_front();
    if (counted_waiting_ > 0) --counted_waiting_;
    engine_.launch(std::move(next.probe), std::move(next.done));
    launched = true;
  }
  draining_ = false;
  // What is left waits for the bucket: counted once each, however long.
  if (bucket_ && queue_.size() > counted_waiting_) {
    waits_ += queue_.size() - counted_waiting_;
    counted_waiting_ = queue_.size();
  }
  if (launched && launched_) launched_();
  if (queue_.empty() || !bucket_ || timer_) return;
  timer_ = loop_.at(bucket_->available_at(now), [this] {
    timer_ = 0;
    drain();
  });
}

void Pacer::cancel_all(const ProbeResult& result) {
  auto queue = std::move(queue_);
  queue_.clear();
  counted_waiting_ = 0;
  if (timer_) {
    loop_.cancel(timer_);
    timer_ = 0;
  }
  for (auto& p : queue) p.done(result);
}

void Pacer::refuse(ProbeResult result) { refusal_ = std::move(result); }

}  // namespace outpost
