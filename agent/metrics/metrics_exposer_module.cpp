// outpost-metrics.so: prometheus-cpp's exposer serving SelfMetrics
// (metrics_exposer.hpp says why it is a module).
#include <prometheus/exposer.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "metrics_exposer.hpp"
#include "self_metrics.hpp"

namespace outpost {
namespace {

struct Exposer {
  std::shared_ptr<SelfMetrics> metrics;
  std::unique_ptr<prometheus::Exposer> server;
};

// Every function of the table catches what it could throw (metrics_exposer.hpp).
void* open(const std::string& address, const std::string& version, double start_time, std::string* error) {
  try {
    auto e = std::make_unique<Exposer>();
    e->metrics = std::make_shared<SelfMetrics>(version, start_time);
    // Two threads serve scrapes; a client that stalls is dropped after 10 s.
    std::vector<std::string> options{"listening_ports", address, "num_threads", "2", "request_timeout_ms", "10000"};
    try {
      e->server = std::make_unique<prometheus::Exposer>(std::move(options));
    } catch (const std::exception& why) {
      *error = "agent.metrics: cannot listen on " + address + ": " + why.what();
      return nullptr;
    } catch (...) {
      *error = "agent.metrics: cannot listen on " + address;
      return nullptr;
    }
    e->server->RegisterCollectable(e->metrics);
    return e.release();
  } catch (const std::exception& why) {
    *error = "agent.metrics: " + address + ": " + why.what();
    return nullptr;
  } catch (...) {
    *error = "agent.metrics: " + address + ": an error that says nothing more";
    return nullptr;
  }
}

void close(void* exposer) noexcept {
  std::unique_ptr<Exposer> e(static_cast<Exposer*>(exposer));
  try {
    if (e) e->server.reset();  // its threads end before the metrics go
  } catch (...) {
    // Stopping the server threw: nothing is left to serve; the rest goes.
  }
}

bool update(void* exposer, const MetricsSnapshot& snapshot, std::string* error) {
  try {
    static_cast<Exposer*>(exposer)->metrics->update(snapshot);
    return true;
  } catch (const std::exception& why) {
    *error = std::string("agent.metrics: ") + why.what();
    return false;
  } catch (...) {
    *error = "agent.metrics: the update failed";
    return false;
  }
}

int port(const void* exposer) noexcept {
  try {
    const auto ports = static_cast<const Exposer*>(exposer)->server->GetListeningPorts();
    return ports.empty() ? 0 : ports.front();
  } catch (...) {
    return 0;
  }
}

}  // namespace
}  // namespace outpost

extern "C" __attribute__((visibility("default"))) const outpost::MetricsExposerApi* outpost_metrics_exposer_table() {
  static const outpost::MetricsExposerApi table{outpost::open, outpost::close, outpost::update, outpost::port};
  return &table;
}
