#include "metrics_endpoint.hpp"

#include <prometheus/exposer.h>

#include <chrono>
#include <stdexcept>
#include <vector>

#ifndef OUTPOST_VERSION
#define OUTPOST_VERSION "unknown"
#endif

namespace outpost {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

MetricsEndpoint::MetricsEndpoint(const std::string& address)
    : address_(address), metrics_(std::make_shared<SelfMetrics>(OUTPOST_VERSION, now_seconds())) {
  // Two threads serve scrapes; a client that stalls is dropped after 10 s.
  std::vector<std::string> options{"listening_ports", address, "num_threads", "2", "request_timeout_ms", "10000"};
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(std::move(options));
  } catch (const std::exception& e) {
    throw std::runtime_error("agent.metrics: cannot listen on " + address + ": " + e.what());
  }
  exposer_->RegisterCollectable(metrics_);
}

MetricsEndpoint::~MetricsEndpoint() {
  stop();
  exposer_.reset();  // its threads end before the metrics go
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
  if (take_) metrics_->update(take_());
}

void MetricsEndpoint::stop() {
  if (timer_ && loop_) loop_->cancel(timer_);
  timer_ = 0;
}

int MetricsEndpoint::port() const {
  const auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace outpost
