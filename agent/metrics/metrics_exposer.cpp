#include "metrics_exposer.hpp"

#include "shared_library.hpp"

namespace outpost {
namespace {

const MetricsExposerApi* load() {
  if (outpost_metrics_exposer_table) return outpost_metrics_exposer_table();
  return static_cast<const MetricsExposerApi*>(
      open_outpost_module("outpost-metrics.so", "outpost_metrics_exposer_table"));
}

}  // namespace

const MetricsExposerApi& metrics_exposer() {
  static const MetricsExposerApi* table = load();  // a throw leaves it for the next call to try again
  return *table;
}

}  // namespace outpost
