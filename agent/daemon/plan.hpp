// The plan: a Config compiled into what the daemon runs — targets (one per
// configured target and address family), probe tasks (target × method),
// baseline trace tasks and settings — and, at a reload, which tasks of the
// new plan are the old plan's (to keep their phase and state). Pure: the
// host names' addresses come in looked up, nothing is opened or sent.
// Leaves to others: running the plan (agent), looking names up (host_resolver).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "detector.hpp"
#include "host_resolver.hpp"
#include "outpost_config.hpp"
#include "records.hpp"
#include "traceroute.hpp"

namespace outpost {

// One configured target in one address family: what the detector judges.
// A daemon holds 100,000 of these: what many share (the group's name) is
// held once in the plan, and its tasks are a range, not a vector of its own.
struct PlannedTarget {
  std::string key;    // unique: the name, or NAME/4 and NAME/6 for a target probed over both families
  std::uint32_t group = 0;  // into Plan::groups
  bool both_families = false;  // the key is NAME/4 or NAME/6
  bool control = false;
  bool by_name = false;     // configured by host name: looked up again now and then
  int af = 0;         // 4 or 6; 0 while a host name has no address (family auto)
  int want_af = 0;    // the family asked for: 4, 6, or 0 (auto: IPv4, else IPv6)
  std::string address_text;  // the literal address as written, or the host name
  IpAddress address;  // empty while unknown (then error says why)
  std::string error;
  std::optional<std::uint32_t> upstream_asn;  // its group's
  std::optional<std::uint16_t> tcp_port;      // failure traces follow the first tcp:PORT probe's flow
  Duration interval{};
  Duration suspect_interval{};  // while suspect: never shorter than the timeout nor longer than the interval
  std::uint32_t first_task = 0;  // its tasks: Plan::tasks[first_task, first_task + task_count)
  std::uint32_t task_count = 0;
  std::optional<std::size_t> trace_task;   // into Plan::traces (with raw sockets)

  // The name as configured (the key without its family).
  std::string_view name() const {
    return both_families ? std::string_view(key).substr(0, key.size() - 2) : std::string_view(key);
  }
  // The host name, or "" for a literal address.
  std::string_view host() const { return by_name ? std::string_view(address_text) : std::string_view(); }
  auto tasks() const { return std::views::iota(std::size_t{first_task}, std::size_t{first_task} + task_count); }
};

// One target × probe method, probed every interval. Its record labels come
// from its target (Plan::labels): a copy of the strings in each of 100,000
// tasks cost more than the rest of the task.
struct PlannedTask {
  ProbeMethod method;  // as run: tcp:PORT without raw sockets is tcp_connect:PORT
  Duration timeout{};
  Duration interval{};
  std::shared_ptr<const DnsQuery> dns;  // the target's dns block, shared by its tasks
  std::size_t target = 0;  // into Plan::targets
  int method_index = 0;    // among the target's methods, for the detector's rounds
  std::string error;       // the method cannot run (needs raw sockets, a bad dns block)
};

// A target's baseline traces, every traceroute.baseline_interval.
struct PlannedTrace {
  std::size_t target = 0;
};

struct Plan {
  std::string agent_id;
  double max_pps = 1000;
  Duration resolve_interval{};
  Duration window{};
  Duration longest_timeout{};
  DetectSettings detect;
  TraceSpec trace_spec;
  Duration trace_spread{};  // the first baselines come within this of start-up
  Duration baseline_interval{};
  bool reuse_hops = true;  // traceroute.reuse_hops
  std::size_t max_failure_traces = 4;
  std::size_t max_queued_failures = 1024;
  std::vector<std::string> groups;  // the groups' names, in config order
  std::vector<PlannedTarget> targets;
  std::vector<PlannedTask> tasks;
  std::vector<PlannedTrace> traces;
  std::vector<std::string> warnings;  // for the log: targets without an address, methods that cannot run

  // The labels of a task's probe records.
  ProbeLabels labels(const PlannedTask& task) const;
};

// The host names of the config's targets (each once, in config order).
std::vector<std::string> host_names(const Config& config);

// The plan for a config whose host names are in `hosts` (a name not there
// counts as not resolving). raw: raw sockets are there (else tcp:PORT runs
// as tcp_connect:PORT, icmp cannot run, and there are no traces). nullopt
// with *error when the config cannot be run at all.
std::optional<Plan> make_plan(const Config& config, const std::unordered_map<std::string, HostAddresses>& hosts,
                              bool raw, std::string* error);

// The address a target of this family gets from a name's addresses, or "" and *error.
IpAddress pick_address(const HostAddresses& addresses, int want_af, std::string* error);

// At a reload: for each task (and trace task) of `after`, the same one in
// `before` (same target key, method and port), if there was one.
struct PlanDiff {
  std::vector<std::optional<std::size_t>> tasks;
  std::vector<std::optional<std::size_t>> traces;
};
PlanDiff diff_plans(const Plan& before, const Plan& after);

}  // namespace outpost
