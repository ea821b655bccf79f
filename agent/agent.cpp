#include "agent.hpp"

#include <spdlog/spdlog.h>

#include "icmp_echo.hpp"
#include "resolve.hpp"

namespace outpost {

std::unique_ptr<Probe> make_probe(const ProbeMethod& method, const IpAddress& address, Duration timeout,
                                  std::string* error) {
  switch (method.kind) {
    case ProbeMethod::Kind::icmp:
      return std::make_unique<IcmpEchoProbe>(address, timeout);
    default:
      *error = "probe method " + method.text() + " is not available in this build";
      return nullptr;
  }
}

Agent::Agent(EventLoop& loop, Engine& engine, Outputs& outputs) : loop_(loop), engine_(engine), outputs_(outputs) {}

void Agent::apply(const Config& config) {
  std::vector<Task> tasks;
  auto scheduler = std::make_unique<Scheduler>(config.agent.max_pps);
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
        if (task.error.empty() && !make_probe(method, resolved.address, target.timeout, &task.error))
          spdlog::warn("target {}: {}", target.name, task.error);
        scheduler->add(target.interval);
        tasks.push_back(std::move(task));
      }
    }
  }
  const double demand = scheduler->demanded_pps();
  if (demand > config.agent.max_pps)
    spdlog::warn("the targets ask for {:.1f} probes/s but agent.max_pps is {}: intervals will stretch", demand,
                 config.agent.max_pps);
  spdlog::info("{} tasks ({:.1f} probes/s) over {} groups", tasks.size(), demand, config.groups.size());
  tasks_ = std::move(tasks);
  scheduler_ = std::move(scheduler);
  if (started_) {
    scheduler_->start(loop_.clock().now());
    rearm();
  }
}

void Agent::start() {
  started_ = true;
  scheduler_->start(loop_.clock().now());
  rearm();
}

void Agent::stop() {
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("stopping: {} probes in flight", engine_.in_flight());
  finish_if_idle();
}

void Agent::finish_if_idle() {
  if (!stopping_ || engine_.in_flight() > 0) return;
  outputs_.flush();
  loop_.stop();
}

void Agent::run_task(const Task& task) {
  if (!task.error.empty()) {
    outputs_.write(probe_error_record(task.labels, task.address_text, loop_.clock().wall(), task.error));
    ++records_;
    return;
  }
  std::string error;
  auto probe = make_probe(task.method, task.address, task.timeout, &error);
  // Labels are copied into the callback: a reload may replace tasks_ while this probe is in flight.
  engine_.launch(std::move(probe), [this, labels = task.labels](const ProbeResult& result) {
    outputs_.write(probe_record(labels, result));
    ++records_;
    finish_if_idle();
  });
}

void Agent::tick() {
  tick_timer_ = 0;
  const SteadyTime now = loop_.clock().now();
  engine_.expire(now);
  if (!stopping_) {
    for (Scheduler::TaskId id : scheduler_->take_due(now)) run_task(tasks_[id]);
  }
  finish_if_idle();
  if (!loop_.stopping()) rearm();
}

void Agent::rearm() {
  const SteadyTime now = loop_.clock().now();
  std::optional<SteadyTime> when = engine_.next_deadline();
  if (!stopping_) {
    if (auto s = scheduler_->next_wake(now); s && (!when || *s < *when)) when = s;
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
