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

// No exception crosses the module's edge: the executable unwinds its own
// frames with its own copy of libgcc's unwinder (-static-libgcc, one
// library fewer to load at each start), the module with the shared one.
// What fails in the module comes back as an error text, and the
// executable's side (metrics_endpoint) throws it there.
struct MetricsExposerApi {
  // Listens on `address` (ADDRESS:PORT) at once, serving the build info
  // (`version`) and the start time alone until the first update; nullptr
  // with *error (naming the address) when it cannot.
  void* (*open)(const std::string& address, const std::string& version, double start_time, std::string* error);
  // Stops serving (its threads end) and frees it.
  void (*close)(void* exposer) noexcept;
  // The snapshot becomes what every later scrape gets; false with *error when it could not.
  bool (*update)(void* exposer, const MetricsSnapshot& snapshot, std::string* error);
  // The port it listens on (the kernel's pick for port 0); 0 when it cannot tell.
  int (*port)(const void* exposer) noexcept;
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
