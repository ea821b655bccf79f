// libFuzzer target for the YAML loader (load_config_string): any text. Beyond
// "no crash, no hang, no sanitizer report", a load either gives a config and
// no errors, or errors and no config; each error has a message and a place
// inside the text; and a config's numbers lie within the bounds the loader
// states (outpost_config.hpp), so that nothing past them reaches arithmetic.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "outpost_config.hpp"

namespace {

using outpost::Duration;

void require(bool ok) {
  if (!ok) std::abort();
}

bool duration_ok(Duration d) { return d > Duration::zero() && d <= outpost::kMaxDuration; }

void check(const outpost::Config& c) {
  require(c.agent.max_pps >= outpost::kMaxPpsLowest && c.agent.max_pps <= outpost::kMaxPpsHighest);
  require(duration_ok(c.agent.resolve_interval));
  require(duration_ok(c.defaults.interval) && duration_ok(c.defaults.timeout));
  const auto& d = c.detect;
  require(d.down_after >= 1 && d.down_after <= outpost::kMaxProbeCount);
  require(d.up_after >= 1 && d.up_after <= outpost::kMaxProbeCount);
  require(d.flap_count >= 2 && d.flap_count <= outpost::kMaxProbeCount);
  require(d.group_fraction >= 0 && d.group_fraction <= 1);
  require(d.suspect_interval >= Duration::zero() && d.suspect_interval <= outpost::kMaxDuration);
  require(duration_ok(d.flap_window));
  const auto& t = c.traceroute;
  require(t.max_ttl >= 1 && t.max_ttl <= outpost::kTraceMaxTtl);
  require(t.attempts >= 1 && t.attempts <= outpost::kTraceMaxAttempts);
  require(t.gap_limit >= 1 && t.gap_limit <= outpost::kTraceMaxTtl);
  require(t.parallel >= 1 && t.parallel <= outpost::kTraceMaxTtl);
  require(duration_ok(t.timeout) && duration_ok(t.baseline_interval));
  require(duration_ok(c.report.window));
  for (const auto& o : c.report.outputs) {
    require(duration_ok(o.flush_interval) && duration_ok(o.timeout) && duration_ok(o.batch_age));
    require(duration_ok(o.retry_min) && duration_ok(o.retry_max));
    require(!o.name.empty());
  }
  std::size_t targets = 0;
  for (const auto& g : c.groups) {
    require(!g.name.empty());
    for (const auto& target : g.targets) {
      require(!target.name.empty());
      require(target.address.empty() != target.host.empty());
      require(!target.probes.empty());
      require(duration_ok(target.interval) && duration_ok(target.timeout));
      ++targets;
    }
  }
  require(targets <= outpost::kMaxConfigValues);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto load = outpost::load_config_string(text, "fuzz.yaml");
  require(load.config.has_value() == load.errors.empty());
  require(load.errors.size() <= outpost::kMaxConfigErrors + 1);
  // yaml-cpp counts CR and some Unicode breaks as line ends too: a line per byte at most.
  const long long lines = 2 + static_cast<long long>(size);
  for (const auto& e : load.errors) {
    require(!e.message.empty() && e.file == "fuzz.yaml");
    require(e.line >= 0 && e.line <= lines && e.col >= 0);
    require(!e.to_string().empty());
  }
  if (load.config) check(*load.config);
  return 0;
}
