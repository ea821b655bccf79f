#include "agent.hpp"

#include <spdlog/spdlog.h>

#include "dns.hpp"
#include "icmp_echo.hpp"
#include "resolve.hpp"
#include "tcp_connect.hpp"
#include "tcp_syn.hpp"

namespace outpost {
namespace {

std::unique_ptr<Probe> make_dns_probe(const IpAddress& server, Duration timeout, const DnsQuery* dns,
                                      std::string* error) {
  if (!dns) {
    *error = "probe method dns needs a dns block with a query";
    return nullptr;
  }
  DnsProbeSpec spec;
  auto type = dns_type_from_name(dns->type);
  auto name = normalize_dns_name(dns->query, error);
  if (!type) *error = "unknown dns query type '" + dns->type + "'";
  if (!type || !name) return nullptr;
  spec.question = {*name, *type};
  spec.expect = dns->expect;
  return std::make_unique<DnsProbe>(server, std::move(spec), timeout);
}

}  // namespace

std::unique_ptr<Probe> make_probe(const ProbeMethod& method, const IpAddress& address, Duration timeout,
                                  const DnsQuery* dns, std::string* error) {
  switch (method.kind) {
    case ProbeMethod::Kind::icmp:
      return std::make_unique<IcmpEchoProbe>(address, timeout);
    case ProbeMethod::Kind::tcp:
      return std::make_unique<TcpSynProbe>(address, method.port, timeout);
    case ProbeMethod::Kind::tcp_connect:
      return std::make_unique<TcpConnectProbe>(address, method.port, timeout);
    case ProbeMethod::Kind::dns:
      return make_dns_probe(address, timeout, dns, error);
    default:
      *error = "probe method " + method.text() + " is not available in this build";
      return nullptr;
  }
}

Agent::Agent(EventLoop& loop, Engine& engine, Outputs& outputs) : loop_(loop), engine_(engine), outputs_(outputs) {}

std::string Agent::apply(const Config& config) {
  std::string error;
  auto trace_spec = parse_trace_method(config.traceroute.method, &error);
  if (!trace_spec) return error;
  trace_spec->max_ttl = config.traceroute.max_ttl;
  trace_spec->attempts = config.traceroute.attempts;
  trace_spec->gap_limit = config.traceroute.gap_limit;
  trace_spec->parallel = config.traceroute.parallel;
  trace_spec->timeout = config.traceroute.timeout;

  std::shared_ptr<const AsnTable> asns;
  if (!config.asn_table.empty()) {
    const auto begin = std::chrono::steady_clock::now();
    AsnLoadReport report;
    auto table = AsnTable::load(config.asn_table, &report, &error);
    if (!table) return "asn_table: " + error;
    if (!config.asn_names.empty() && !table->load_names(config.asn_names, &error)) return "asn_names: " + error;
    for (const auto& p : report.problems) spdlog::warn("asn_table: skipped {}", p);
    spdlog::info("asn_table {}: {} prefixes ({} bad lines skipped) in {:.3f} s", config.asn_table, report.prefixes,
                 report.skipped, std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    asns = std::make_shared<const AsnTable>(std::move(*table));
  }

  std::vector<Task> tasks;
  std::vector<TraceTask> trace_tasks;
  auto scheduler = std::make_unique<Scheduler>(config.agent.max_pps);
  auto trace_scheduler = std::make_unique<Scheduler>(config.agent.max_pps);
  Duration shortest_interval = config.traceroute.baseline_interval;
  for (const auto& group : config.groups) {
    for (const auto& target : group.targets) {
      const std::string& name = target.address.empty() ? target.host : target.address;
      const Resolved resolved = resolve_target(name);
      if (!resolved.error.empty()) spdlog::warn("target {}: {}", target.name, resolved.error);
      for (const auto& method : target.probes) {
        Task task;
        task.labels = {config.agent.id, target.name, group.name, method.record_name(), method.port};
        task.method = method;
        task.address_text = name;
        task.address = resolved.address;
        task.error = resolved.error;
        task.timeout = target.timeout;
        task.dns = target.dns;
        if (task.error.empty() &&
            !make_probe(method, resolved.address, target.timeout, task.dns ? &*task.dns : nullptr, &task.error))
          spdlog::warn("target {}: {}", target.name, task.error);
        scheduler->add(target.interval);
        tasks.push_back(std::move(task));
      }
      shortest_interval = std::min(shortest_interval, target.interval);
      if (resolved.address) {
        trace_tasks.push_back({{config.agent.id, target.name, group.name, trace_method_name(trace_spec->method),
                                trace_spec->port},
                               resolved.address});
        trace_scheduler->add(config.traceroute.baseline_interval);
      }
    }
  }
  const double demand = scheduler->demanded_pps();
  if (demand > config.agent.max_pps)
    spdlog::warn("the targets ask for {:.1f} probes/s but agent.max_pps is {}: intervals will stretch", demand,
                 config.agent.max_pps);
  spdlog::info("{} tasks ({:.1f} probes/s) over {} groups; a baseline trace per target every {}", tasks.size(),
               demand, config.groups.size(), format_duration(config.traceroute.baseline_interval));
  tasks_ = std::move(tasks);
  scheduler_ = std::move(scheduler);
  trace_tasks_ = std::move(trace_tasks);
  trace_scheduler_ = std::move(trace_scheduler);
  trace_spec_ = *trace_spec;
  // The first baselines come within one probe interval of start-up, so that a
  // failure soon after start has a path to compare with.
  trace_spread_ = shortest_interval;
  asns_ = std::move(asns);
  if (started_) {
    scheduler_->start(loop_.clock().now());
    trace_scheduler_->start(loop_.clock().now(), trace_spread_);
    rearm();
  }
  return {};
}

void Agent::start() {
  started_ = true;
  scheduler_->start(loop_.clock().now());
  trace_scheduler_->start(loop_.clock().now(), trace_spread_);
  rearm();
}

const TraceResult* Agent::last_good_trace(const std::string& target) const {
  auto it = last_good_trace_.find(target);
  return it == last_good_trace_.end() ? nullptr : &it->second;
}

void Agent::write(const nlohmann::json& record) {
  outputs_.write(record);
  ++records_;
}

void Agent::launch_paced(std::unique_ptr<Probe> probe, Engine::Done done) {
  pending_.push_back({std::move(probe), std::move(done)});
  if (!tick_timer_) rearm();
}

void Agent::drain_pending(SteadyTime now) {
  while (!pending_.empty() && scheduler_->bucket().take(now)) {
    PendingLaunch launch = std::move(pending_.front());
    pending_.pop_front();
    engine_.launch(std::move(launch.probe), std::move(launch.done));
  }
}

void Agent::run_trace(const TraceTask& task, const std::string& reason) {
  ++traces_running_;
  auto trace = Trace::create(
      trace_spec_, task.address, ++trace_seed_ * 2654435761u, loop_.clock().wall(),
      [this](std::unique_ptr<Probe> probe, Engine::Done done) { launch_paced(std::move(probe), std::move(done)); },
      [this, labels = task.labels, reason, asns = asns_](const TraceResult& result) {
        --traces_running_;
        if (!stopping_) {
          write(trace_record(labels, result, reason, asns.get()));
          if (result.reached) last_good_trace_[labels.target] = result;
        }
        finish_if_idle();
      });
  trace->start();
}

void Agent::stop() {
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("stopping: {} probes in flight, {} traces running", engine_.in_flight(), traces_running_);
  // Trace probes still waiting for the rate cap are not sent: their traces end now.
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& launch : pending) {
    ProbeResult cancelled;
    cancelled.status = ProbeStatus::error;
    cancelled.error = "agent stopping";
    launch.done(cancelled);
  }
  finish_if_idle();
}

void Agent::finish_if_idle() {
  if (!stopping_ || engine_.in_flight() > 0 || traces_running_ > 0) return;
  outputs_.flush();
  loop_.stop();
}

void Agent::run_task(const Task& task) {
  if (!task.error.empty()) {
    write(probe_error_record(task.labels, task.address_text, loop_.clock().wall(), task.error));
    return;
  }
  std::string error;
  auto probe = make_probe(task.method, task.address, task.timeout, task.dns ? &*task.dns : nullptr, &error);
  // Labels are copied into the callback: a reload may replace tasks_ while this probe is in flight.
  engine_.launch(std::move(probe), [this, labels = task.labels](const ProbeResult& result) {
    write(probe_record(labels, result));
    finish_if_idle();
  });
}

void Agent::tick() {
  tick_timer_ = 0;
  const SteadyTime now = loop_.clock().now();
  engine_.expire(now);
  if (!stopping_) {
    for (Scheduler::TaskId id : scheduler_->take_due(now)) run_task(tasks_[id]);
    for (Scheduler::TaskId id : trace_scheduler_->take_due(now)) run_trace(trace_tasks_[id], "baseline");
    drain_pending(now);
  }
  finish_if_idle();
  if (!loop_.stopping()) rearm();
}

void Agent::rearm() {
  const SteadyTime now = loop_.clock().now();
  std::optional<SteadyTime> when = engine_.next_deadline();
  auto sooner = [&when](std::optional<SteadyTime> t) {
    if (t && (!when || *t < *when)) when = t;
  };
  if (!stopping_) {
    sooner(scheduler_->next_wake(now));
    sooner(trace_scheduler_->next_wake(now));
    if (!pending_.empty()) sooner(scheduler_->bucket().available_at(now));
  }
  if (!when) return;
  if (tick_timer_ != 0) {
    if (tick_at_ == *when) return;
    loop_.cancel(tick_timer_);
  }
  tick_at_ = *when;
  tick_timer_ = loop_.at(*when, [this] { tick(); });
}

}  // namespace outpost
