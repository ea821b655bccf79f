#include "plan.hpp"

#include <algorithm>
#include <unordered_set>

#include "probe_factory.hpp"

namespace outpost {
namespace {

// The families a configured target is probed over: its literal address's,
// else those its `family` asks for (0: auto).
std::vector<int> wanted_families(const Target& target) {
  if (!target.address.empty()) {
    auto literal = IpAddress::parse(target.address);
    return {literal && literal->is_v6() ? 6 : 4};
  }
  switch (target.family) {
    case TargetFamily::v4: return {4};
    case TargetFamily::v6: return {6};
    case TargetFamily::both: return {4, 6};
    case TargetFamily::automatic: break;
  }
  return {0};
}

std::string task_key(const std::string& target_key, const PlannedTask& task) {
  return target_key + '\n' + task.method.record_name() + '\n' + std::to_string(task.method.port);
}

}  // namespace

std::vector<std::string> host_names(const Config& config) {
  std::vector<std::string> names;
  std::unordered_set<std::string> seen;
  for (const auto& group : config.groups)
    for (const auto& target : group.targets)
      if (target.address.empty() && seen.insert(target.host).second) names.push_back(target.host);
  return names;
}

IpAddress pick_address(const HostAddresses& a, int want_af, std::string* error) {
  switch (want_af) {
    case 4:
      if (!a.v4) *error = a.error4;
      return a.v4;
    case 6:
      if (!a.v6) *error = a.error6;
      return a.v6;
    default:
      if (a.v4) return a.v4;
      if (a.v6) return a.v6;
      *error = a.error4 == a.error6 || a.error6.empty() ? a.error4 : a.error4 + "; " + a.error6;
      return {};
  }
}

std::optional<Plan> make_plan(const Config& config, const std::unordered_map<std::string, HostAddresses>& hosts,
                              bool raw, std::string* error) {
  auto trace_spec = parse_trace_method(config.traceroute.method, error);
  if (!trace_spec) return std::nullopt;
  Plan plan;
  plan.agent_id = config.agent.id;
  plan.max_pps = config.agent.max_pps;
  plan.resolve_interval = config.agent.resolve_interval;
  plan.window = config.report.window;
  plan.detect = {config.detect.down_after, config.detect.up_after, config.detect.group_fraction,
                 config.detect.flap_count, config.detect.flap_window};
  plan.trace_spec = *trace_spec;
  plan.trace_spec.max_ttl = config.traceroute.max_ttl;
  plan.trace_spec.attempts = config.traceroute.attempts;
  plan.trace_spec.gap_limit = config.traceroute.gap_limit;
  plan.trace_spec.parallel = config.traceroute.parallel;
  plan.trace_spec.timeout = config.traceroute.timeout;
  plan.baseline_interval = config.traceroute.baseline_interval;
  plan.reuse_hops = config.traceroute.reuse_hops;
  plan.max_failure_traces = static_cast<std::size_t>(config.traceroute.max_failure_traces);
  plan.max_queued_failures = static_cast<std::size_t>(config.traceroute.max_queued_failures);
  Duration shortest_interval = config.traceroute.baseline_interval;

  // Exact sizes first: grown by doubling, the vectors of 100,000 targets
  // kept a third of their capacity unused and copied everything as they grew.
  std::size_t targets = 0, tasks = 0;
  for (const auto& group : config.groups)
    for (const auto& target : group.targets) {
      const std::size_t families = wanted_families(target).size();
      targets += families;
      tasks += families * target.probes.size();
    }
  plan.targets.reserve(targets);
  plan.tasks.reserve(tasks);
  if (raw) plan.traces.reserve(targets);

  for (const auto& group : config.groups) {
    plan.groups.push_back(group.name);
    for (const auto& target : group.targets) {
      const auto families = wanted_families(target);
      for (int want : families) {
        PlannedTarget t;
        t.both_families = families.size() > 1;
        t.key = t.both_families ? target.name + "/" + std::to_string(want) : target.name;
        t.group = static_cast<std::uint32_t>(plan.groups.size() - 1);
        t.control = group.control;
        t.want_af = target.address.empty() ? want : 0;
        t.by_name = target.address.empty();
        t.address_text = t.by_name ? target.host : target.address;
        if (!target.address.empty()) {
          auto literal = IpAddress::parse(target.address);
          if (literal) t.address = *literal;
          else t.error = "bad address '" + target.address + "'";
        } else if (auto it = hosts.find(target.host); it != hosts.end()) {
          t.address = pick_address(it->second, want, &t.error);
        } else {
          t.error = "cannot resolve host '" + target.host + "'";
        }
        t.af = t.address ? family_of(t.address) : want;
        if (!t.error.empty()) plan.warnings.push_back("target " + t.key + ": " + t.error);
        t.upstream_asn = group.upstream_asn;
        t.interval = target.interval;
        // While suspect: the configured interval, else a quarter of the target's,
        // never shorter than its timeout nor longer than its interval.
        const Duration suspect = config.detect.suspect_interval.count() > 0 ? config.detect.suspect_interval
                                                                             : target.interval / 4;
        t.suspect_interval = std::min(std::max(suspect, target.timeout), target.interval);
        const std::size_t target_index = plan.targets.size();
        int method_index = 0;
        const auto dns = target.dns ? std::make_shared<const DnsQuery>(*target.dns) : nullptr;
        for (const auto& configured : target.probes) {
          const ProbeMethod method = raw ? configured : without_raw_socket(configured);
          PlannedTask task;
          task.method = method;
          task.timeout = target.timeout;
          task.interval = target.interval;
          task.dns = dns;
          task.target = target_index;
          task.method_index = method_index++;
          if (needs_raw_socket(method) && !raw) {
            task.error = "probe method " + method.text() + " needs CAP_NET_RAW";
          } else {
            // A probe toward any address tells whether the method can be built at all.
            const IpAddress probe_to = t.address ? t.address : *IpAddress::parse(t.af == 6 ? "::1" : "127.0.0.1");
            make_probe(method, probe_to, target.timeout, task.dns.get(), &task.error);
          }
          if (!task.error.empty()) plan.warnings.push_back("target " + t.key + ": " + task.error);
          if ((method.kind == ProbeMethod::Kind::tcp || method.kind == ProbeMethod::Kind::tcp_connect) && !t.tcp_port)
            t.tcp_port = method.port;
          if (t.task_count++ == 0) t.first_task = static_cast<std::uint32_t>(plan.tasks.size());
          plan.tasks.push_back(std::move(task));
        }
        plan.longest_timeout = std::max(plan.longest_timeout, target.timeout);
        shortest_interval = std::min(shortest_interval, target.interval);
        if (raw) {
          t.trace_task = plan.traces.size();
          plan.traces.push_back({target_index});
        }
        plan.targets.push_back(std::move(t));
      }
    }
  }
  // The first baselines come within one probe interval of start-up, so that
  // a failure soon after start has a path to compare with.
  plan.trace_spread = shortest_interval;
  return plan;
}

ProbeLabels Plan::labels(const PlannedTask& task) const {
  const PlannedTarget& t = targets[task.target];
  return {agent_id, std::string(t.name()), groups[t.group], task.method.record_name(), task.method.port, t.af};
}

PlanDiff diff_plans(const Plan& before, const Plan& after) {
  PlanDiff diff;
  std::unordered_map<std::string, std::size_t> old_tasks, old_traces;
  for (std::size_t i = 0; i < before.tasks.size(); ++i)
    old_tasks.emplace(task_key(before.targets[before.tasks[i].target].key, before.tasks[i]), i);
  for (std::size_t i = 0; i < before.traces.size(); ++i)
    old_traces.emplace(before.targets[before.traces[i].target].key, i);
  diff.tasks.resize(after.tasks.size());
  for (std::size_t i = 0; i < after.tasks.size(); ++i) {
    auto it = old_tasks.find(task_key(after.targets[after.tasks[i].target].key, after.tasks[i]));
    if (it != old_tasks.end()) diff.tasks[i] = it->second;
  }
  diff.traces.resize(after.traces.size());
  for (std::size_t i = 0; i < after.traces.size(); ++i) {
    auto it = old_traces.find(after.targets[after.traces[i].target].key);
    if (it != old_traces.end()) diff.traces[i] = it->second;
  }
  return diff;
}

}  // namespace outpost
