// The /metrics endpoint (agent.metrics): prometheus-cpp's exposer on ADDRESS:PORT serving SelfMetrics, fed
// from the event loop by a timer (every second) and by publish() (before the exit). The exposer and the
// self-metrics are in the module outpost-metrics.so (metrics_exposer.hpp), loaded by the first endpoint.
// Leaves to others: what the metrics are (self_metrics), reading the agent (the snapshot function given).
#pragma once

#include <functional>
#include <string>

#include "event_loop.hpp"
#include "snapshot.hpp"

namespace outpost {

class MetricsEndpoint {
 public:
  using TakeSnapshot = std::function<MetricsSnapshot()>;

  // Listens on `address` (IPv4 ADDRESS:PORT: civetweb here has no IPv6) at once, serving
  // the build info (this build's version) alone until start(); throws std::runtime_error naming the
  // address when it cannot (the port is taken, the address is not here), or the module and why when
  // outpost-metrics.so cannot be loaded.
  // The exposer's threads are made here: open it after privileges are dropped.
  explicit MetricsEndpoint(const std::string& address);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // From now on a snapshot every `every` on the loop (and one at once).
  // `take` runs on the loop's thread only.
  void start(EventLoop& loop, TakeSnapshot take, Duration every = std::chrono::seconds(1));
  // A snapshot now (the agent has stopped: the final counts).
  void publish();
  // Stops the timer; the last snapshot stays served until destruction.
  void stop();

  const std::string& address() const { return address_; }
  // The port it listens on (as given, or the kernel's pick for port 0).
  int port() const;

 private:
  void tick();

  std::string address_;
  void* exposer_ = nullptr;  // the module's (metrics_exposer)
  EventLoop* loop_ = nullptr;
  TakeSnapshot take_;
  Duration every_{};
  EventLoop::TimerId timer_ = 0;
};

}  // namespace outpost
