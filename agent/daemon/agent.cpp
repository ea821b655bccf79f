#include "agent.hpp"

#include <spdlog/spdlog.h>

#include "asn_lookup.hpp"
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

ProbeResult cancelled_result() {
  ProbeResult r;
  r.status = ProbeStatus::error;
  r.error = "agent stopping";
  return r;
}

}  // namespace

bool needs_raw_socket(const ProbeMethod& method) {
  return method.kind == ProbeMethod::Kind::icmp || method.kind == ProbeMethod::Kind::tcp;
}

ProbeMethod without_raw_socket(ProbeMethod method) {
  if (method.kind == ProbeMethod::Kind::tcp) method.kind = ProbeMethod::Kind::tcp_connect;
  return method;
}

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
  }
  *error = "unknown probe method " + method.text();
  return nullptr;
}

Agent::Agent(EventLoop& loop, Engine& engine, Outputs& outputs)
    : loop_(loop), engine_(engine), outputs_(outputs), resolver_(std::make_unique<AsyncResolver>(loop)) {}

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
  std::vector<TargetInfo> targets;
  auto scheduler = std::make_unique<Scheduler>(config.agent.max_pps);
  auto trace_scheduler = std::make_unique<Scheduler>(config.agent.max_pps);
  auto detector = std::make_unique<Detector>(DetectSettings{config.detect.down_after, config.detect.up_after,
                                                            config.detect.group_fraction, config.detect.flap_count,
                                                            config.detect.flap_window});
  Duration longest_timeout{};
  Duration shortest_interval = config.traceroute.baseline_interval;
  // Host names the running config has resolved are not looked up again here
  // (a blocking lookup would stall the probing): they are refreshed off the
  // loop right after the reload.
  std::unordered_map<std::string, IpAddress> known_hosts;
  for (const auto& t : targets_)
    if (!t.host.empty() && t.address) known_hosts.emplace(t.host, t.address);
  // The other names are looked up here, side by side (start-up waits for
  // about the slowest lookup, not for the sum of them).
  std::unordered_map<std::string, Resolved> looked_up;
  for (const auto& group : config.groups)
    for (const auto& target : group.targets)
      if (target.address.empty() && !known_hosts.count(target.host)) looked_up.try_emplace(target.host);
  std::vector<std::string> unknown_hosts;
  for (const auto& entry : looked_up) unknown_hosts.push_back(entry.first);
  const auto answers = resolve_targets(unknown_hosts);
  for (std::size_t i = 0; i < unknown_hosts.size(); ++i) looked_up[unknown_hosts[i]] = answers[i];
  const SteadyTime now_steady = loop_.clock().now();
  for (const auto& group : config.groups) {
    for (const auto& target : group.targets) {
      const std::string& name = target.address.empty() ? target.host : target.address;
      const auto known = target.host.empty() ? known_hosts.end() : known_hosts.find(target.host);
      const Resolved resolved = !target.address.empty() ? resolve_target(target.address)
                                : known != known_hosts.end() ? Resolved{known->second, {}}
                                                             : looked_up.at(target.host);
      if (!resolved.error.empty()) spdlog::warn("target {}: {}", target.name, resolved.error);
      if (resolved.address && raw_) {
        if (auto why = engine_.prepare(resolved.address); !why.empty()) spdlog::warn("target {}: {}", target.name, why);
      }
      TargetInfo info;
      info.name = target.name;
      info.group = group.name;
      info.control = group.control;
      info.address = resolved.address;
      info.upstream_asn = group.upstream_asn;
      info.interval = target.interval;
      info.host = target.host;
      // A name is looked up again every agent.resolve_interval (off the loop); one
      // carried over from the running config or that did not resolve, at once.
      info.next_resolve = known == known_hosts.end() && resolved.address ? now_steady + config.agent.resolve_interval : now_steady;
      // While suspect: the configured interval, else a quarter of the target's,
      // never shorter than its timeout nor longer than its interval.
      const Duration suspect = config.detect.suspect_interval.count() > 0 ? config.detect.suspect_interval
                                                                           : target.interval / 4;
      info.suspect_interval = std::min(std::max(suspect, target.timeout), target.interval);
      int method_index = 0;
      for (const auto& configured : target.probes) {
        const ProbeMethod method = raw_ ? configured : without_raw_socket(configured);
        Task task;
        task.labels = {config.agent.id, target.name, group.name, method.record_name(), method.port};
        task.method = method;
        task.address_text = name;
        task.address = resolved.address;
        task.error = resolved.error;
        task.timeout = target.timeout;
        task.dns = target.dns;
        task.target = targets.size();
        task.method_index = method_index++;
        if (task.error.empty() && needs_raw_socket(method) && !raw_)
          task.error = "probe method " + method.text() + " needs CAP_NET_RAW";
        if (task.error.empty() &&
            !make_probe(method, resolved.address, target.timeout, task.dns ? &*task.dns : nullptr, &task.error))
          spdlog::warn("target {}: {}", target.name, task.error);
        if (method.kind == ProbeMethod::Kind::tcp || method.kind == ProbeMethod::Kind::tcp_connect) {
          if (!info.tcp_port) info.tcp_port = method.port;
        }
        info.tasks.push_back(scheduler->add(target.interval));
        tasks.push_back(std::move(task));
      }
      detector->add_target(target.name, group.name, group.control, method_index);
      longest_timeout = std::max(longest_timeout, target.timeout);
      shortest_interval = std::min(shortest_interval, target.interval);
      if (raw_) {  // a target whose name does not resolve yet is traced once it does
        info.trace_task = trace_tasks.size();
        trace_tasks.push_back({{config.agent.id, target.name, group.name, trace_method_name(trace_spec->method),
                                trace_spec->port},
                               resolved.address});
        trace_scheduler->add(config.traceroute.baseline_interval);
      }
      targets.push_back(std::move(info));
    }
  }
  const double demand = scheduler->demanded_pps();
  if (demand > config.agent.max_pps)
    spdlog::warn("the targets ask for {:.1f} probes/s but agent.max_pps is {}: intervals will stretch", demand,
                 config.agent.max_pps);
  spdlog::info("{} tasks ({:.1f} probes/s) over {} groups; a baseline trace per target every {}", tasks.size(),
               demand, config.groups.size(), format_duration(config.traceroute.baseline_interval));

  // Series go on across a reload with the same window; a new window closes the old ones first.
  const WallTime now_wall = loop_.clock().wall();
  if (series_ && series_window_ != config.report.window) emit_series(series_->close_all(now_wall));
  if (!series_ || series_window_ != config.report.window) {
    // Results may come in up to the longest timeout after a window's end.
    series_ = std::make_unique<SeriesAggregator>(config.report.window, longest_timeout + std::chrono::seconds(1),
                                                 now_wall);
    series_window_ = config.report.window;
  }
  for (auto& task : tasks)
    task.series_key = series_->key_id({task.labels.target, task.labels.group, task.labels.method, task.labels.port});

  // What the detector knew goes on for the targets that stay: an outage open
  // across a reload still ends with its *_up, and is not reported twice.
  if (detector_) {
    for (const auto& name : detector->carry_over(*detector_, now_wall))
      spdlog::warn("reload: target {} was down; it is gone from the config (or changed role), its outage stays open",
                   name);
    if (detector_->vantage_down() && !detector->vantage_down())
      spdlog::warn("reload: the vantage point was down; with no control targets now, its outage stays open");
  }

  ++generation_;
  agent_id_ = config.agent.id;
  resolve_interval_ = config.agent.resolve_interval;
  auto old_tasks = std::move(tasks_);
  auto old_scheduler = std::move(scheduler_);
  auto old_trace_tasks = std::move(trace_tasks_);
  auto old_trace_scheduler = std::move(trace_scheduler_);
  tasks_ = std::move(tasks);
  scheduler_ = std::move(scheduler);
  trace_tasks_ = std::move(trace_tasks);
  trace_scheduler_ = std::move(trace_scheduler);
  detector_ = std::move(detector);
  targets_ = std::move(targets);
  target_index_.clear();
  for (std::size_t i = 0; i < targets_.size(); ++i) target_index_[targets_[i].name] = i;
  trace_spec_ = *trace_spec;
  // The first baselines come within one probe interval of start-up, so that a
  // failure soon after start has a path to compare with.
  trace_spread_ = shortest_interval;
  asns_ = std::move(asns);
  if (started_) {
    const SteadyTime now = loop_.clock().now();
    scheduler_->start(now);
    trace_scheduler_->start(now, trace_spread_);
    // The tasks that stay keep their phase: no probe or baseline trace sooner
    // than one (new) interval after the last.
    keep_phase(*old_scheduler, old_tasks, *scheduler_, tasks_, now);
    keep_phase(*old_trace_scheduler, old_trace_tasks, *trace_scheduler_, trace_tasks_, now);
    for (auto& target : targets_) adjust_speed(target);  // suspect targets carried over stay fast
    for (auto& event : detector_->take_events()) handle_event(std::move(event));
    rearm();
  }
  return {};
}

namespace {
std::string phase_key(const ProbeLabels& l) { return l.target + '\n' + l.method + '\n' + std::to_string(l.port); }
}  // namespace

template <typename T>
void Agent::keep_phase(const Scheduler& before, const std::vector<T>& before_tasks, Scheduler& after,
                       const std::vector<T>& after_tasks, SteadyTime now) {
  std::unordered_map<std::string, Scheduler::TaskId> old_ids;
  for (Scheduler::TaskId id = 0; id < before_tasks.size(); ++id) old_ids.emplace(phase_key(before_tasks[id].labels), id);
  for (Scheduler::TaskId id = 0; id < after_tasks.size(); ++id) {
    auto it = old_ids.find(phase_key(after_tasks[id].labels));
    // A task whose address was unknown has nothing to keep: it starts as new.
    if (it == old_ids.end() || !before_tasks[it->second].address || !after_tasks[id].address) continue;
    const auto next = before.next_run(it->second);
    if (!next) continue;
    const SteadyTime last = *next - before.interval(it->second);
    after.run_at(id, std::max(now, last + after.interval(id)));
  }
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

void Agent::write(Record record) {
  outputs_.write(record);
  ++records_;
}

void Agent::launch_paced(std::unique_ptr<Probe> probe, Engine::Done done) {
  if (stopping_) {
    // Nothing new goes out once stopping: the probe ends at once (on the next
    // turn of the loop, not inside the caller) and its trace winds down.
    loop_.after(Duration::zero(), [done = std::move(done)] { done(cancelled_result()); });
    return;
  }
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
  if (!task.address) return;  // its name does not resolve (yet)
  ++traces_running_;
  auto trace = Trace::create(
      trace_spec_, task.address, ++trace_seed_ * 2654435761u, loop_.clock().wall(),
      [this](std::unique_ptr<Probe> probe, Engine::Done done) { launch_paced(std::move(probe), std::move(done)); },
      [this, labels = task.labels, reason, asns = asns_](const TraceResult& result) {
        --traces_running_;
        if (!stopping_) {
          write(trace_record(labels, result, reason, hop_asn_lookup(asns)));
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
  for (auto& launch : pending) launch.done(cancelled_result());
  finish_if_idle();
}

void Agent::finish_if_idle() {
  if (finished_ || !stopping_ || engine_.in_flight() > 0 || traces_running_ > 0 || investigations_ > 0) return;
  finished_ = true;
  emit_series(series_->close_all(loop_.clock().wall()));
  outputs_.flush();
  loop_.stop();
}

void Agent::run_task(const Task& task) {
  if (!task.error.empty()) {
    const WallTime now = loop_.clock().wall();
    write(probe_error_record(task.labels, task.address_text, now, task.error));
    ProbeResult failed;
    failed.status = ProbeStatus::error;
    failed.sent = now;
    observe(task, failed);
    resolve_again(task.target);
    return;
  }
  resolve_again(task.target);
  std::string error;
  auto probe = make_probe(task.method, task.address, task.timeout, task.dns ? &*task.dns : nullptr, &error);
  // The task is found again by index and generation: a reload may replace tasks_ while this probe is in flight.
  const auto id = static_cast<std::size_t>(&task - tasks_.data());
  engine_.launch(std::move(probe), [this, labels = task.labels, id, generation = generation_](const ProbeResult& r) {
    write(probe_record(labels, r));
    if (generation == generation_ && !finished_) observe(tasks_[id], r);
    finish_if_idle();
  });
}

void Agent::observe(const Task& task, const ProbeResult& result) {
  series_->add(task.series_key, result);
  // A target that answers is up, also with a closed port (refused) or a DNS error code.
  const bool ok = result.status == ProbeStatus::reply || result.status == ProbeStatus::refused;
  TargetInfo& target = targets_[task.target];
  detector_->on_result(target.name, task.method_index, ok, result.sent);
  adjust_speed(target);
  for (auto& event : detector_->take_events()) handle_event(std::move(event));
}

void Agent::adjust_speed(TargetInfo& target) {
  const bool fast = detector_->suspect(target.name);
  if (fast == target.fast || target.suspect_interval >= target.interval) return;
  target.fast = fast;
  const SteadyTime now = loop_.clock().now();
  for (Scheduler::TaskId id : target.tasks)
    scheduler_->set_interval(id, fast ? target.suspect_interval : target.interval, now);
  spdlog::debug("target {}: probing every {}", target.name,
                format_duration(fast ? target.suspect_interval : target.interval));
  if (!stopping_) rearm();
}

const Agent::TargetInfo* Agent::find_target(const std::string& name) const {
  auto it = target_index_.find(name);
  return it == target_index_.end() ? nullptr : &targets_[it->second];
}

void Agent::handle_event(DetectorEvent event) {
  if (is_down(event.kind)) {
    investigate(std::move(event));
    return;
  }
  write(event_record(agent_id_, event, nullptr, loop_.clock().wall()));
}

void Agent::investigate(DetectorEvent event) {
  // The target to trace toward: the event's own, or the first of the group's
  // (or, for the vantage point, of the control targets) that is down.
  const std::string name =
      event.kind == EventKind::target_down ? event.target : event.targets.empty() ? "" : event.targets.front();
  const TargetInfo* target = find_target(name);
  if (!target || !target->address || !raw_) {  // no traces without raw sockets
    TargetInfo none;
    none.name = name;
    conclude(event, target ? *target : none, nullptr, std::nullopt);
    return;
  }
  TraceSpec spec = trace_spec_;
  spec.method = target->tcp_port ? TraceMethod::tcp : TraceMethod::icmp;
  spec.port = target->tcp_port.value_or(0);
  const ProbeLabels labels{agent_id_, target->name, target->group, trace_method_name(spec.method), spec.port};
  ++investigations_;
  ++traces_running_;
  auto trace = Trace::create(
      spec, target->address, ++trace_seed_ * 2654435761u, loop_.clock().wall(),
      [this](std::unique_ptr<Probe> probe, Engine::Done done) { launch_paced(std::move(probe), std::move(done)); },
      [this, event = std::move(event), info = *target, labels, asns = asns_](const TraceResult& failure) {
        --traces_running_;
        write(trace_record(labels, failure, "failure", hop_asn_lookup(asns)));
        const TraceHop* last = last_router(failure);
        if (event.kind == EventKind::vantage_down || failure.reached || !last || stopping_) {
          conclude(event, info, &failure, std::nullopt);
          return;
        }
        // Before blaming the silence after the last router, make sure it still answers itself.
        auto kept = std::make_shared<TraceResult>(failure);
        check_alive(last->addr, [this, event, info, kept](bool alive) { conclude(event, info, kept.get(), alive); });
      });
  trace->start();
}

void Agent::check_alive(const IpAddress& router, std::function<void(bool)> done) {
  constexpr int kProbes = 3;
  struct State {
    int left = kProbes;
    bool alive = false;
    std::function<void(bool)> done;
  };
  auto state = std::make_shared<State>();
  state->done = std::move(done);
  for (int i = 0; i < kProbes; ++i) {
    launch_paced(std::make_unique<IcmpEchoProbe>(router, trace_spec_.timeout), [state](const ProbeResult& r) {
      state->alive = state->alive || r.status == ProbeStatus::reply;
      if (--state->left == 0) state->done(state->alive);
    });
  }
}

void Agent::conclude(const DetectorEvent& event, const TargetInfo& target, const TraceResult* failure,
                     std::optional<bool> last_hop_alive) {
  VerdictInput in;
  in.target = target.address;
  in.baseline = last_good_trace(target.name);
  in.failure = failure;
  in.asn_of = origin_lookup(asns_);
  in.upstream_asn = target.upstream_asn;
  in.vantage_failing = event.kind == EventKind::vantage_down;
  in.last_hop_alive = last_hop_alive;
  Verdict verdict = judge(in);
  if (!failure && !target.address && !target.host.empty() && event.kind != EventKind::vantage_down)
    verdict.reason = "no failure trace: its host name " + target.host + " does not resolve";
  write(event_record(agent_id_, event, &verdict, loop_.clock().wall()));
  if (failure) --investigations_;
  finish_if_idle();
}

void Agent::resolve_again(std::size_t index) {
  TargetInfo& target = targets_[index];
  const SteadyTime now = loop_.clock().now();
  if (target.host.empty() || target.resolving || now < target.next_resolve) return;
  target.resolving = true;
  // Until it resolves: at most once per probe interval, between every 5 s and every minute.
  target.next_resolve =
      now + (target.address ? resolve_interval_
                            : std::min(resolve_interval_, std::clamp<Duration>(target.interval, std::chrono::seconds(5),
                                                                               std::chrono::minutes(1))));
  resolver_->resolve(target.host, [this, index, generation = generation_](const Resolved& resolved) {
    if (generation != generation_) return;  // the config changed meanwhile
    TargetInfo& t = targets_[index];
    t.resolving = false;
    if (!resolved.address) {
      // A failed refresh keeps the address the name had; a name that never
      // resolved keeps its probes saying so.
      if (t.address)
        spdlog::warn("target {}: looking up {} again failed ({}); still probing {}", t.name, t.host, resolved.error,
                     t.address.to_string());
      return;
    }
    if (resolved.address == t.address) return;
    if (t.address)
      spdlog::info("target {}: {} resolves to {} now, no longer {}", t.name, t.host, resolved.address.to_string(),
                   t.address.to_string());
    else
      spdlog::info("target {}: {} resolves to {} now", t.name, t.host, resolved.address.to_string());
    t.address = resolved.address;
    if (raw_) engine_.prepare(t.address);
    for (Scheduler::TaskId id : t.tasks) {
      Task& task = tasks_[id];
      task.address = resolved.address;
      task.error.clear();
      if (needs_raw_socket(task.method) && !raw_) task.error = "probe method " + task.method.text() + " needs CAP_NET_RAW";
      else make_probe(task.method, task.address, task.timeout, task.dns ? &*task.dns : nullptr, &task.error);
    }
    if (t.trace_task) {
      trace_tasks_[*t.trace_task].address = resolved.address;
      // A baseline trace toward the new address now: a failure soon after
      // has a path to compare with.
      if (!stopping_) {
        trace_scheduler_->run_at(static_cast<Scheduler::TaskId>(*t.trace_task), loop_.clock().now());
        rearm();
      }
    }
  });
}

void Agent::emit_series(std::vector<SeriesWindow> windows) {
  for (const auto& w : windows) write(series_record(agent_id_, w));
}

void Agent::tick() {
  tick_timer_ = 0;
  const SteadyTime now = loop_.clock().now();
  engine_.expire(now);
  emit_series(series_->close_due(loop_.clock().wall()));
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
  if (auto close = series_->next_close()) {
    // A wall-clock time, turned into the steady clock's.
    sooner(now + std::max(Duration::zero(), *close - loop_.clock().wall()));
  }
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
