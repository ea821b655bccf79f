// The /metrics endpoint's server comes from a module of its own,
// outpost-metrics.so: prometheus-cpp (core and pull) and the civetweb it
// serves HTTP with are four shared libraries, which cost every command about
// 1 ms to load (on the 2-core test machine), and only `outpost run` with
// agent.metrics serves them. The module holds the self-metrics (self_metrics)
// and prometheus-cpp's exposer; metrics_endpoint drives it from the loop.
// Leaves to others: when to take a snapshot (metrics_endpoint), what it holds (snapshot).
#pragma once

#include <string>

#include "snapshot.hpp"

namespace outpost {

struct MetricsExposerApi {
  // Listens on `address` (ADDRESS:PORT) at once, serving the build info
  // (`version`) and the start time alone until the first update; throws
  // std::runtime_error naming the address when it cannot.
  void* (*open)(const std::string& address, const std::string& version, double start_time);
  // Stops serving (its threads end) and frees it.
  void (*close)(void* exposer);
  // The snapshot becomes what every later scrape gets.
  void (*update)(void* exposer, const MetricsSnapshot& snapshot);
  // The port it listens on (the kernel's pick for port 0).
  int (*port)(const void* exposer);
};

// The module's functions, loaded on the first call (open_outpost_module:
// beside the executable, else ../lib/outpost/). A program that links the
// module's source (the tests) uses that. Throws std::runtime_error naming
// the paths tried when it cannot be loaded.
const MetricsExposerApi& metrics_exposer();

}  // namespace outpost

// The module's one export; weak here, so that a program that links the
// module's source has it, and one that does not (outpost) loads the module.
extern "C" const outpost::MetricsExposerApi* outpost_metrics_exposer_table() __attribute__((weak));
