#include "metrics_endpoint.hpp"

#include <chrono>
#include <stdexcept>
#include <string>

#include "metrics_exposer.hpp"

#ifndef OUTPOST_VERSION
#define OUTPOST_VERSION "unknown"
#endif

namespace outpost {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The module reports what failed; the exception is thrown here, on the executable's side.
void* open_exposer(const std::string& address) {
  std::string error;
  void* exposer = metrics_exposer().open(address, OUTPOST_VERSION, now_seconds(), &error);
  if (!exposer) throw std::runtime_error(error.empty() ? "agent.metrics: cannot listen on " + address : error);
  return exposer;
}

}  // namespace

MetricsEndpoint::MetricsEndpoint(const std::string& address) : address_(address), exposer_(open_exposer(address)) {}

MetricsEndpoint::~MetricsEndpoint() {
  stop();
  metrics_exposer().close(exposer_);
}

void MetricsEndpoint::start(EventLoop& loop, TakeSnapshot take, Duration every) {
  stop();
  loop_ = &loop;
  take_ = std::move(take);
  every_ = every;
  tick();
}

void MetricsEndpoint::tick() {
  timer_ = 0;
  publish();
  timer_ = loop_->after(every_, [this] { tick(); });
}

void MetricsEndpoint::publish() {
  if (!take_) return;
  if (std::string error; !metrics_exposer().update(exposer_, take_(), &error)) throw std::runtime_error(error);
}

void MetricsEndpoint::stop() {
  if (timer_ && loop_) loop_->cancel(timer_);
  timer_ = 0;
}

int MetricsEndpoint::port() const { return metrics_exposer().port(exposer_); }

}  // namespace outpost
