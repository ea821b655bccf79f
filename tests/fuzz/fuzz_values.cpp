// libFuzzer target for the parsers of single values that come from a config
// or a command line: durations, sizes, probe methods (config/), a value in
// the YAML loader's number, rate and duration fields, and the CLI's integer
// and duration options (agent/cli/cli_common). Byte 0 picks the parser, the
// rest is the text. What each accepts must lie within its stated bounds and
// read back the same from its own printed form (format_duration,
// ProbeMethod::text, the size in bytes).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <sstream>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

#include "cli_common.hpp"
#include "outpost_config.hpp"

namespace {

using outpost::Duration;

void require(bool ok) {
  if (!ok) std::abort();
}

bool duration_ok(Duration d) { return d > Duration::zero() && d <= outpost::kMaxDuration; }

void fuzz_duration(std::string_view text) {
  std::string error;
  const auto d = outpost::parse_duration(text, &error);
  if (!d) {
    require(!error.empty());
    return;
  }
  require(duration_ok(*d));
  const std::string printed = outpost::format_duration(*d);
  const auto back = outpost::parse_duration(printed, nullptr);
  require(back && *back == *d && outpost::format_duration(*back) == printed);
  // The same count of nanoseconds, written as such.
  require(outpost::parse_duration(std::to_string(d->count()) + "ns", nullptr) == d);
}

void fuzz_size(std::string_view text) {
  std::string error;
  const auto size = outpost::parse_size(text, &error);
  if (!size) {
    require(!error.empty());
    return;
  }
  // Plain bytes read back as such (up to 19 digits, what parse_size reads).
  if (*size < 10'000'000'000'000'000'000ull) require(outpost::parse_size(std::to_string(*size), nullptr) == size);
}

void fuzz_method(std::string_view text) {
  std::string error;
  const auto method = outpost::parse_probe_method(text, &error);
  if (!method) {
    require(!error.empty());
    return;
  }
  require(outpost::parse_probe_method(method->text(), nullptr) == method);
  require(!method->record_name().empty());
}

// The text as the value of one field of an otherwise valid config.
void fuzz_config_field(std::uint8_t which, std::string_view text) {
  struct Field {
    const char* section;
    const char* key;
  };
  static const Field fields[] = {
      {"agent", "max_pps"},         {"agent", "resolve_interval"}, {"defaults", "interval"},
      {"defaults", "timeout"},      {"detect", "down_after"},      {"detect", "up_after"},
      {"detect", "group_fraction"}, {"detect", "flap_count"},      {"detect", "flap_window"},
      {"detect", "suspect_interval"}, {"traceroute", "max_ttl"},   {"traceroute", "parallel"},
      {"traceroute", "attempts"},   {"traceroute", "gap_limit"},   {"traceroute", "timeout"},
      {"report", "window"},
  };
  const Field& f = fields[which % std::size(fields)];
  // One line: the value stays the field's (line breaks would make it other YAML).
  std::string value(text);
  for (char& c : value)
    if (c == '\n' || c == '\r') c = ' ';
  std::string yaml = "agent:\n  id: fuzz\n";
  const std::string section = f.section;
  if (section == "agent") yaml += "  " + std::string(f.key) + ": " + value + "\n";
  else yaml += section + ":\n  " + f.key + ": " + value + "\n";
  yaml += "groups:\n  - name: g\n    targets:\n      - name: t\n        address: 192.0.2.1\n";
  const auto load = outpost::load_config_string(yaml, "fuzz.yaml");
  require(load.config.has_value() == load.errors.empty());
  if (!load.config) return;
  const auto& c = *load.config;
  require(c.agent.max_pps >= outpost::kMaxPpsLowest && c.agent.max_pps <= outpost::kMaxPpsHighest);
  require(duration_ok(c.agent.resolve_interval) && duration_ok(c.defaults.interval) &&
          duration_ok(c.defaults.timeout) && duration_ok(c.detect.flap_window) &&
          duration_ok(c.traceroute.timeout) && duration_ok(c.report.window));
  require(c.detect.suspect_interval >= Duration::zero() && c.detect.suspect_interval <= outpost::kMaxDuration);
  require(c.detect.down_after >= 1 && c.detect.down_after <= outpost::kMaxProbeCount);
  require(c.detect.up_after >= 1 && c.detect.up_after <= outpost::kMaxProbeCount);
  require(c.detect.flap_count >= 2 && c.detect.flap_count <= outpost::kMaxProbeCount);
  require(c.detect.group_fraction > 0 && c.detect.group_fraction <= 1);
  require(c.traceroute.max_ttl >= 1 && c.traceroute.max_ttl <= outpost::kTraceMaxTtl);
  require(c.traceroute.parallel >= 1 && c.traceroute.parallel <= outpost::kTraceMaxTtl);
  require(c.traceroute.gap_limit >= 1 && c.traceroute.gap_limit <= outpost::kTraceMaxTtl);
  require(c.traceroute.attempts >= 1 && c.traceroute.attempts <= outpost::kTraceMaxAttempts);
}

// The text, cut at NULs into arguments, as a command line of `trace`-like options.
void fuzz_command_line(std::string_view text) {
  namespace po = outpost::po;
  std::vector<std::string> args{"fuzz"};
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size() && args.size() < 16; ++i) {
    if (i == text.size() || text[i] == '\0') {
      args.emplace_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  po::options_description opts("fuzz");
  opts.add_options()("help,h", "help")("count,c", po::value<long long>()->default_value(0), "count")(
      "parallel", po::value<long long>()->default_value(8), "parallel")(
      "timeout,W", po::value<std::string>()->default_value("1s"), "timeout")("for", po::value<std::string>(), "for");
  po::positional_options_description positional;
  po::variables_map vm;
  bool help = false;
  if (!outpost::parse_command_line(static_cast<int>(args.size()), argv.data(), opts, positional, vm, "usage", &help) ||
      help)
    return;
  if (auto n = outpost::integer_option(vm, "count", "fuzz", 0, 1'000'000'000)) require(*n >= 0 && *n <= 1'000'000'000);
  if (auto n = outpost::integer_option(vm, "parallel", "fuzz", 1, outpost::kTraceMaxTtl))
    require(*n >= 1 && *n <= outpost::kTraceMaxTtl);
  if (auto d = outpost::duration_option(vm, "timeout", "fuzz")) require(duration_ok(*d));
  if (vm.count("for"))
    if (auto d = outpost::duration_option(vm, "for", "fuzz")) require(duration_ok(*d));
}

// The CLI's errors and usage go to these streams: nowhere, while fuzzing.
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  static NullBuffer null;
  std::cout.rdbuf(&null);
  std::cerr.rdbuf(&null);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 5) {
    case 0: fuzz_duration(text); break;
    case 1: fuzz_size(text); break;
    case 2: fuzz_method(text); break;
    case 3: fuzz_config_field(static_cast<std::uint8_t>(data[0] / 5), text); break;
    default: fuzz_command_line(text); break;
  }
  return 0;
}
