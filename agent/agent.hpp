// The daemon over time: the configured targets × methods as scheduler tasks,
// probes launched on the engine when due, results written as records, and a
// clean stop that lets probes in flight finish and flushes every output.
// Leaves to others: packets (engine), timing (event loop), record layout (records).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine.hpp"
#include "event_loop.hpp"
#include "outpost_config.hpp"
#include "outputs.hpp"
#include "records.hpp"
#include "scheduler.hpp"

namespace outpost {

// Makes the engine's probe for one configured method, or nullptr with *error
// when this build cannot run that method.
std::unique_ptr<Probe> make_probe(const ProbeMethod& method, const IpAddress& address, Duration timeout,
                                  std::string* error);

class Agent {
 public:
  Agent(EventLoop& loop, Engine& engine, Outputs& outputs);

  // Takes a (new) configuration: resolves host names and (re)builds the tasks.
  // On a reload the new schedule starts at once; probes in flight finish.
  void apply(const Config& config);
  void start();
  // Stops scheduling; when the last probe in flight is over, flushes and stops the loop.
  void stop();
  std::uint64_t records_written() const { return records_; }

 private:
  struct Task {
    ProbeLabels labels;
    ProbeMethod method;
    std::string address_text;  // as configured, for records when unresolved
    IpAddress address;
    std::string error;  // set when the task cannot probe (unresolved name, method not built)
    Duration timeout{};
  };

  void tick();
  void rearm();
  void run_task(const Task& task);
  void finish_if_idle();

  EventLoop& loop_;
  Engine& engine_;
  Outputs& outputs_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<Task> tasks_;
  EventLoop::TimerId tick_timer_ = 0;
  SteadyTime tick_at_{};
  bool stopping_ = false;
  bool started_ = false;
  std::uint64_t records_ = 0;
};

}  // namespace outpost
