#include "agent.hpp"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_set>

#include "dns_message.hpp"
#include "probe_factory.hpp"

namespace outpost {
namespace {

constexpr const char* kStopping = "agent stopping";

// Saves of the state: soon after a detector event (no more often than this) ...
constexpr Duration kEventSaveGap = std::chrono::seconds(1);
// ... at most once every five seconds after other changes of the detector's ...
constexpr Duration kSaveGap = std::chrono::seconds(5);
// ... and at most once a minute after new last good traces alone (an hour's baselines spread out).
constexpr Duration kTraceSaveGap = std::chrono::minutes(1);

// A probe that waited for the rate cap when the agent stopped: never sent.
ProbeResult cancelled_result() {
  ProbeResult r;
  r.status = ProbeStatus::error;
  r.error = kStopping;
  return r;
}

}  // namespace

AsnLoader asn_files_loader() {
  return [](const Config& config, std::string* error) -> std::shared_ptr<const AsnTable> {
    if (config.asn_table.empty()) return nullptr;
    const auto begin = std::chrono::steady_clock::now();
    AsnLoadReport report;
    auto table = AsnTable::load(config.asn_table, &report, error);
    if (!table) {
      *error = "asn_table: " + *error;
      return nullptr;
    }
    if (!config.asn_names.empty() && !table->load_names(config.asn_names, error)) {
      *error = "asn_names: " + *error;
      return nullptr;
    }
    for (const auto& p : report.problems) spdlog::warn("asn_table: skipped {}", p);
    spdlog::info("asn_table {}: {} prefixes ({} bad lines skipped) in {:.3f} s", config.asn_table, report.prefixes,
                 report.skipped, std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    return std::make_shared<const AsnTable>(std::move(*table));
  };
}

Agent::Agent(AgentServices services)
    : loop_(services.loop),
      base_wake_gap_(services.loop.coalesce_gap()),
      engine_(services.engine),
      outputs_(services.outputs),
      resolver_(services.resolver),
      load_asns_(std::move(services.load_asns)),
      raw_(services.raw),
      limits_(services.investigations),
      pacer_(loop_, engine_),
      investigator_(loop_, pacer_, [this](Record r) { write(std::move(r)); }),
      refresher_(resolver_, [this](std::size_t target, const IpAddress& a) { on_address_changed(target, a); }) {
  // The plan's gap between wakes, but not while an output sends batches (a
  // spool filled during a collector's outage would go out at a round trip
  // per gap). Probes waiting in the pacer for tokens keep the cap's times
  // within a gap: its timer is exact (trace probes go one by one, for the
  // routers' ICMP rate limits), and what else is due comes along.
  gap_hook_ = loop_.before_wait([this] {
    loop_.coalesce_wakes(outputs_.sending() ? base_wake_gap_ : wake_gap_now());
  });
  // Probes launched outside a tick (trace hops from a packet callback) need their timeouts armed.
  pacer_.on_launched([this] {
    if (!in_tick_) rearm();
  });
  // A stopping agent may be waiting for nothing but a trace: when the last
  // one ends (no probe result, no tick follows), it finishes there.
  investigator_.on_settled([this] {
    finish_if_idle();
    if (!finished_ && !in_tick_) rearm();  // a baseline waiting for a place may start
  });
}

Agent::~Agent() {
  // Nothing is saved here: what stop() and flush_now() saved stands, as after a crash.
  if (tick_timer_) loop_.cancel(tick_timer_);
  if (save_timer_) loop_.cancel(save_timer_);
  loop_.forget_before_wait(gap_hook_);
  loop_.coalesce_wakes(base_wake_gap_);
}

std::string Agent::apply(const Config& config, Config* release_groups) {
  std::string error;
  auto asns = load_asns_(config, &error);
  if (!error.empty()) return error;

  // Host names the running config knows are not looked up here (a blocking
  // lookup would stall the probing): they are refreshed off the loop right
  // after. The others are looked up side by side.
  std::unordered_map<std::string, HostAddresses> hosts = refresher_.known();
  std::vector<std::string> unknown;
  for (const auto& name : host_names(config))
    if (!hosts.count(name)) unknown.push_back(name);
  const auto answers = resolver_.lookup_now(unknown);
  std::unordered_set<std::string> fresh;
  for (std::size_t i = 0; i < unknown.size(); ++i) {
    hosts[unknown[i]] = answers[i];
    refresher_.remember(unknown[i], answers[i]);
    fresh.insert(unknown[i]);
  }

  auto plan = make_plan(config, hosts, raw_, &error);
  if (!plan) return error;
  if (release_groups) std::vector<Group>().swap(release_groups->groups);  // config.groups is not read after this
  // A few of each, then a count: a list of 100,000 targets with a wrong
  // block or no route says so in a screenful, not in 100,000 lines.
  constexpr std::size_t kWarnings = 20;
  constexpr std::size_t kStartRouteChecks = 1024;
  for (std::size_t i = 0; i < std::min(plan->warnings.size(), kWarnings); ++i) spdlog::warn("{}", plan->warnings[i]);
  if (plan->warnings.size() > kWarnings)
    spdlog::warn("... and {} more such warnings of the config's targets", plan->warnings.size() - kWarnings);
  if (raw_) {
    // The routes of the control targets and of the first others are asked
    // now, so that a host without a route, or a wrong interface, says so at
    // once and the captures are open before the first probe. The rest are
    // asked as each is first probed (a failure is then logged and in its
    // probe records): a lookup is a few system calls, and 100,000 of them
    // were a third of the start-up.
    std::size_t unroutable = 0, checked = 0, with_address = 0;
    auto check = [&](const PlannedTarget& t) {
      ++checked;
      if (auto why = engine_.prepare(t.address); !why.empty() && ++unroutable <= kWarnings)
        spdlog::warn("target {}: {}", t.key, why);
    };
    for (const auto& t : plan->targets)
      if (t.address && t.control) check(t);
    for (const auto& t : plan->targets) {
      if (!t.address) continue;
      ++with_address;
      if (!t.control && checked < kStartRouteChecks) check(t);
    }
    if (unroutable > kWarnings)
      spdlog::warn("... and {} more targets that cannot be probed now", unroutable - kWarnings);
    if (checked < with_address)
      spdlog::info("routes checked for {} of {} targets at start; the others' are checked as they are first probed",
                   checked, with_address);
  }

  auto scheduler = std::make_unique<Scheduler>(plan->max_pps);
  scheduler->reserve(plan->tasks.size());
  for (const auto& task : plan->tasks) scheduler->add(task.interval);
  auto trace_scheduler = std::make_unique<Scheduler>(plan->max_pps);
  trace_scheduler->reserve(plan->traces.size());
  for (std::size_t i = 0; i < plan->traces.size(); ++i) trace_scheduler->add(plan->baseline_interval);
  auto detector = std::make_unique<Detector>(plan->detect);
  detector->reserve(plan->targets.size());
  std::vector<std::size_t> methods(plan->targets.size(), 0);
  for (const auto& task : plan->tasks) ++methods[task.target];
  for (std::size_t i = 0; i < plan->targets.size(); ++i) {
    const auto& t = plan->targets[i];
    detector->add_target(t.key, plan->groups[t.group], t.control, static_cast<int>(methods[i]));
  }
  const double demand = scheduler->demanded_pps();
  if (demand > plan->max_pps)
    spdlog::warn("the targets ask for {:.1f} probes/s but agent.max_pps is {}: intervals will stretch", demand,
                 plan->max_pps);
  else if (demand > 0.95 * plan->max_pps)
    spdlog::warn("the targets ask for {:.1f} probes/s of agent.max_pps {}: traces take their share ({:.1f}/s) "
                 "from the schedule, whose probes will then leave late; leave max_pps some room above the demand",
                 demand, plan->max_pps, 0.05 * plan->max_pps);
  spdlog::info("{} tasks ({:.1f} probes/s) over {} targets; a baseline trace per target every {}", plan->tasks.size(),
               demand, plan->targets.size(), format_duration(plan->baseline_interval));
  plan_wake_gap_ = std::max(base_wake_gap_, wake_gap(*plan, demand, raw_, false));
  suspect_wake_gap_ = std::max(base_wake_gap_, wake_gap(*plan, demand, raw_, true));
  spdlog::debug("the loop wakes at most every {:.1f} ms ({:.1f} ms while a target is suspect)",
                std::chrono::duration<double, std::milli>(plan_wake_gap_).count(),
                std::chrono::duration<double, std::milli>(suspect_wake_gap_).count());
  // A launch counts as late past the gap it was allowed.
  scheduler->allow_lateness(plan_wake_gap_);

  // Series go on across a reload with the same window; a new window closes the old ones first.
  const WallTime now_wall = loop_.clock().wall();
  const SteadyTime now = loop_.clock().now();
  // Results may come in up to the longest timeout after a window's end.
  const Duration grace = plan->longest_timeout + std::chrono::seconds(1);
  if (series_ && (series_->window() != plan->window || series_->grace() < grace)) {
    series_->close_all(now_wall, [this](SeriesWindow&& w) { write(series_record(plan_.agent_id, std::move(w))); });
    series_.reset();
  }
  if (!series_) series_ = std::make_unique<SeriesAggregator>(plan->window, grace, now_wall);
  std::vector<TaskRun> runs(plan->tasks.size());
  series_->reserve(plan->tasks.size());
  for (std::size_t i = 0; i < plan->tasks.size(); ++i) {
    const auto l = plan->labels(plan->tasks[i]);
    runs[i].series_key = series_->key_id({l.target, l.group, l.method, l.port, l.af});
  }

  // What the detector knew goes on for the targets that stay: an outage open
  // across a reload still ends with its *_up, and is not reported twice.
  if (!detector_ && !config.agent.state_dir.empty()) {
    state_ = std::make_unique<StateStore>(config.agent.state_dir);
    restore_state(*state_, *detector, *plan);
  }
  if (detector_) {
    for (const auto& name : detector->carry_over(*detector_, now_wall))
      spdlog::warn("reload: target {} was down; it is gone from the config (or changed role), its outage stays open",
                   name);
    if (detector_->vantage_down() && !detector->vantage_down())
      spdlog::warn("reload: the vantage point was down; with no control targets now, its outage stays open");
  }

  const PlanDiff diff = diff_plans(plan_, *plan);
  ++generation_;
  Plan old_plan = std::move(plan_);
  auto old_scheduler = std::move(scheduler_);
  auto old_trace_scheduler = std::move(trace_scheduler_);
  if (old_scheduler) lateness_before_.merge(old_scheduler->lateness());
  plan_ = std::move(*plan);
  runs_ = std::move(runs);
  waiting_.clear();  // the old tasks' answers, held for their turn: stale now
  scheduler_ = std::move(scheduler);
  trace_scheduler_ = std::move(trace_scheduler);
  detector_ = std::move(detector);
  asns_ = std::move(asns);
  target_runs_.assign(plan_.targets.size(), TargetRun{});
  fast_targets_ = 0;  // adjust_speed counts them again
  target_index_.clear();
  target_index_.reserve(plan_.targets.size());
  control_tasks_.clear();
  check_gap_ = Duration::max();
  for (std::size_t i = 0; i < plan_.targets.size(); ++i) {
    const auto& t = plan_.targets[i];
    if (!find_target(t.key)) target_index_.insert(PositionIndex::hash(t.key), static_cast<std::uint32_t>(i));
    if (!t.control) continue;
    for (std::size_t id : t.tasks()) control_tasks_.push_back(id);
    check_gap_ = std::min(check_gap_, t.suspect_interval);
  }
  pacer_.set_bucket(&scheduler_->bucket());
  // Traces and router probes take what the schedule leaves of the rate cap,
  // less a tenth for slack (at least a twentieth of the cap, so that an
  // overbooked schedule still lets traces run).
  pacer_.set_share(std::max(0.9 * (plan_.max_pps - demand), 0.05 * plan_.max_pps));
  InvestigationLimits limits = limits_.value_or(InvestigationLimits{plan_.max_failure_traces, plan_.max_queued_failures});
  // A known hop's path is reused while it was probed within one baseline interval.
  limits.reuse_max_age = plan_.reuse_hops ? plan_.baseline_interval : Duration{};
  investigator_.configure(plan_.agent_id, plan_.trace_spec, asns_, limits, raw_);
  restore_traces();

  std::vector<HostRefresher::Entry> named;
  for (std::size_t i = 0; i < plan_.targets.size(); ++i)
    if (const auto& t = plan_.targets[i]; t.by_name)
      named.push_back(
          {i, t.key, t.address_text, t.want_af, t.address, t.interval, fresh.count(t.address_text) > 0});
  refresher_.reset(plan_.targets.size(), std::move(named), plan_.resolve_interval, now);

  if (started_) {
    scheduler_->start(now);
    trace_scheduler_->start(now + plan_.longest_timeout, plan_.trace_spread);  // as in start()
    // The tasks that stay keep their phase: no probe or baseline trace sooner
    // than one (new) interval after the last. A task whose address was
    // unknown has nothing to keep: it starts as new.
    auto keep_phase = [&](const auto& pairs, const auto& old_items, const auto& new_items, const Scheduler& before,
                          Scheduler& after, auto interval_of) {
      for (std::size_t id = 0; id < pairs.size(); ++id) {
        const auto old = pairs[id];
        if (!old || !old_plan.targets[old_items[*old].target].address ||
            !plan_.targets[new_items[id].target].address)
          continue;
        if (const auto next = before.next_run(static_cast<Scheduler::TaskId>(*old))) {
          const SteadyTime last = *next - before.interval(static_cast<Scheduler::TaskId>(*old));
          after.run_at(static_cast<Scheduler::TaskId>(id), std::max(now, last + interval_of(id)));
        }
      }
    };
    keep_phase(diff.tasks, old_plan.tasks, plan_.tasks, *old_scheduler, *scheduler_,
               [&](std::size_t id) { return plan_.tasks[id].interval; });
    keep_phase(diff.traces, old_plan.traces, plan_.traces, *old_trace_scheduler, *trace_scheduler_,
               [&](std::size_t) { return plan_.baseline_interval; });
    for (std::size_t i = 0; i < plan_.targets.size(); ++i) adjust_speed(i);  // suspect targets carried over stay fast
    handle_events();
    rearm();
  }
  return {};
}

void Agent::start() {
  started_ = true;
  const SteadyTime now = loop_.clock().now();
  scheduler_->start(now);
  // Each first baseline a timeout after its target's first probe (their
  // phases match when each target has one probe): its answer says how far
  // the target is, and the trace sends nothing past that.
  trace_scheduler_->start(now + plan_.longest_timeout, plan_.trace_spread);
  for (std::size_t i = 0; i < plan_.targets.size(); ++i) adjust_speed(i);  // suspect at the restart: fast at once
  rearm();
}

namespace {
std::string down_key(const std::string& name, int af) { return name + "\n" + std::to_string(af); }
}  // namespace

void Agent::write(Record record) {
  if (const auto* e = std::get_if<EventRecord>(&record); e && e->event.kind == EventKind::target_down)
    if (auto it = unwritten_down_.find(down_key(e->event.target, e->event.af)); it != unwritten_down_.end())
      unwritten_down_.erase(it);
  outputs_.write(record);
  ++stats_.records;
}

void Agent::count_probe(const std::string& method, const ProbeResult& result) {
  ProbeCounts& c = probe_counts_[method];
  ++c.by_status[static_cast<std::size_t>(result.status)];
  // As the record counts them: past what it keeps, and only when the server answered.
  if (const auto& d = result.dns; d && !d->rcode.empty())
    c.dns_answers_dropped += d->answers_dropped + (d->answers.size() - std::min(d->answers.size(), kDnsMaxAnswersKept));
}

DownCounts Agent::down_counts() const {
  DownCounts c;
  if (!detector_) return c;
  const Detector::DownTally t = detector_->down_tally();
  c.targets = plan_.targets.size();
  c.targets_down = t.targets_down;
  c.groups = t.groups;
  c.groups_down = t.groups_down;
  c.vantage_down = detector_->vantage_down();
  return c;
}

void Agent::stop() {
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("stopping: {} probes in flight, {} investigations and traces", engine_.in_flight(),
               investigator_.busy());
  // Probes still waiting for the rate cap are not sent: their traces end now.
  pacer_.refuse(cancelled_result());
  pacer_.cancel_all(cancelled_result());
  investigator_.stop();
  save_state();
  finish_if_idle();
}

void Agent::finish_if_idle() {
  if (finished_ || !stopping_ || engine_.in_flight() > 0 || investigator_.busy() > 0 || check_probes_ > 0) return;
  flush_now();
  loop_.stop();
}

void Agent::flush_now() {
  if (finished_) return;
  finished_ = true;
  if (tick_timer_) {
    loop_.cancel(tick_timer_);
    tick_timer_ = 0;
  }
  if (series_)
    series_->close_all(loop_.clock().wall(),
                       [this](SeriesWindow&& w) { write(series_record(plan_.agent_id, std::move(w))); });
  save_state();
  if (save_timer_) {
    loop_.cancel(save_timer_);
    save_timer_ = 0;
  }
  outputs_.flush();
}

void Agent::restore_state(const StateStore& store, Detector& detector, const Plan& plan) {
  std::string problem;
  auto saved = store.load(&problem);
  if (!saved) {
    if (!problem.empty()) spdlog::warn("state: {}; starting without it", problem);
    return;
  }
  const WallTime now = loop_.clock().wall();
  // Fresh: written within the flap window. Older, the streaks it holds say
  // nothing of now; what went out as events is restored all the same (the
  // first probes end such an outage, with its start), nothing else.
  const Duration age = now - saved->written;
  const bool fresh = age <= plan.detect.flap_window && age >= -plan.detect.flap_window;
  for (const auto& name : detector.restore(saved->detector, now, fresh))
    spdlog::warn("state: target {} was down; it is gone from the config (or changed role), its outage stays open",
                 name);
  spdlog::info("state: {} restored ({} targets, {} last good traces), written {} ago{}", store.path(),
               saved->detector.targets.size(), saved->last_good.size(),
               format_duration(std::chrono::duration_cast<std::chrono::seconds>(age)),
               fresh ? "" : ": only the outages reported before it are taken");
  restored_traces_ = std::move(saved->last_good);
}

void Agent::restore_traces() {
  if (restored_traces_.empty()) return;
  // A trace toward an address the target no longer has is no baseline for it.
  for (auto& [key, trace] : restored_traces_)
    if (const PlannedTarget* t = find_target(key); t && t->address && t->address == trace.target)
      investigator_.restore_last_good(key, std::move(trace));
  restored_traces_.clear();
}

void Agent::consider_save(bool urgent) {
  if (!state_ || finished_ || !detector_) return;
  const bool detector_moved = detector_->revision() != saved_detector_revision_;
  if (!detector_moved && investigator_.last_good_revision() == saved_traces_revision_) return;
  const SteadyTime now = loop_.clock().now();
  // A large state (100,000 targets: tens of megabytes, a good part of a
  // second to write) is saved less often, so saves take at most about a
  // twentieth of the loop's time.
  const Duration gap =
      std::max<Duration>(urgent ? kEventSaveGap : detector_moved ? kSaveGap : kTraceSaveGap, 20 * save_cost_);
  const SteadyTime at = last_save_ ? std::max(now, *last_save_ + gap) : now;
  if (save_timer_) {
    if (save_at_ <= at) return;
    loop_.cancel(save_timer_);
  }
  save_at_ = at;
  save_timer_ = loop_.at(at, [this] {
    save_timer_ = 0;
    save_state();
  });
}

void Agent::save_state() {
  if (!state_ || !detector_) return;
  const auto began = std::chrono::steady_clock::now();
  write_state();
  // The save's text and snapshot of a large state are tens of megabytes,
  // freed again at once: glibc keeps them unless told.
  if (plan_.targets.size() >= 10000) ::malloc_trim(0);
  // What a save costs in real time spaces the next ones (consider_save).
  save_cost_ = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - began);
}

void Agent::write_state() {
  SavedState s;
  s.written = loop_.clock().wall();
  s.detector = detector_->snapshot();
  // A target_down still waiting for its failure trace has not been written:
  // saved as held back, a restart reports it (with its start) instead of
  // taking it as told.
  if (!unwritten_down_.empty())
    for (auto& t : s.detector.targets) {
      const PlannedTarget* target = find_target(t.name);
      if (!t.down || !t.reported_down || !target ||
          !unwritten_down_.count(down_key(std::string(target->name()), target->af)))
        continue;
      t.reported_down = false;
      t.pending_down = true;
      if (t.down_decided == WallTime{}) t.down_decided = t.streak_start;
    }
  // The traces, the file's bulk, are encoded for each save and not kept:
  // with 100,000 targets their text is 35 MB, and a baseline ends every
  // few hundred milliseconds, so a kept copy was nearly never reused.
  const std::string traces_json = encode_traces(investigator_.last_good_traces());
  std::string error;
  last_save_ = loop_.clock().now();
  if (!state_->save(s, traces_json, &error)) {
    spdlog::warn("state: cannot save: {}", error);
    return;
  }
  saved_detector_revision_ = detector_->revision();
  saved_traces_revision_ = investigator_.last_good_revision();
}

void Agent::run_task(std::size_t id, bool out_of_schedule) {
  const PlannedTask& task = plan_.tasks[id];
  const PlannedTarget& target = plan_.targets[task.target];
  if (!out_of_schedule) refresher_.maybe_refresh(task.target, loop_.clock().now());
  const std::uint64_t seq = runs_[id].next_seq++;
  const std::string& error = !target.address ? target.error : task.error;
  if (!target.address || !task.error.empty()) {
    ProbeResult failed;
    failed.status = ProbeStatus::error;
    failed.sent = loop_.clock().wall();
    failed.error = error;
    write(probe_error_record(plan_.labels(task), target.address_text, failed.sent, error));
    count_probe(task.method.record_name(), failed);
    deliver(id, seq, failed);
    return;
  }
  std::string why;
  auto probe = make_probe(task.method, target.address, task.timeout, task.dns.get(), &why);
  auto done = [this, id, seq, generation = generation_](const ProbeResult& r) {
    if (generation == generation_) {
      const PlannedTask& task = plan_.tasks[id];
      write(probe_record(plan_.labels(task), r));
      count_probe(task.method.record_name(), r);
      if (!finished_) deliver(id, seq, r);
    } else {
      ++stats_.stale_results;
    }
    finish_if_idle();
  };
  if (out_of_schedule) {
    ++check_probes_;
    pacer_.launch(std::move(probe), [this, done](const ProbeResult& r) {
      --check_probes_;
      done(r);
      if (check_probes_ == 0 && check_again_ && !stopping_) run_vantage_check();
    }, /*urgent=*/true);
  } else {
    engine_.launch(std::move(probe), std::move(done));
  }
}

Duration Agent::wake_gap(const Plan& plan, double demanded_pps, bool raw, bool with_suspects) {
  // Each wake from a long sleep costs far more than the probe it launches
  // (caches and the CPU cold: 200 us a probe at 25 probes/s, 40 us at
  // 1,000/s). So the loop gathers what comes due over a gap: launches then
  // leave up to the gap late (4% of the shortest interval, a suspect
  // interval's included with_suspects; at most 250 ms), and answers are read
  // up to the gap late, which changes no RTT and no timeout: the capture's
  // stamps time them. The suspect intervals count only while a target is
  // suspect (wake_gap_now): a quiet day pays no wakes for an outage's pace.
  // Not where a user-space clock times an answer: tcp_connect (no raw
  // sockets); and at most 1 ms with DNS, whose TCP retry (tcp_ms) is timed
  // on the loop's clock.
  if (!raw || plan.tasks.empty()) return Duration::zero();
  Duration shortest = Duration::max();
  Duration most = std::chrono::milliseconds(250);
  for (const auto& task : plan.tasks) {
    if (task.method.kind == ProbeMethod::Kind::tcp_connect) return Duration::zero();
    // A query's answer is timed by the kernel, but its TCP retry (tcp_ms) on the loop's clock.
    if (task.method.kind == ProbeMethod::Kind::dns) most = std::min<Duration>(most, std::chrono::milliseconds(1));
    shortest = std::min(shortest, task.interval);
  }
  if (with_suspects)
    for (const auto& target : plan.targets)
      if (target.suspect_interval > Duration::zero()) shortest = std::min(shortest, target.suspect_interval);
  Duration gap = std::min<Duration>(shortest / 25, most);
  // What comes due over a gap must fit in the rate cap's burst (Scheduler:
  // 1% of max_pps), or the cap, not the schedule, would set the pace.
  if (demanded_pps > 0) {
    const double burst = std::max(1.0, plan.max_pps / 100.0);
    gap = std::min(gap, std::chrono::duration_cast<Duration>(std::chrono::duration<double>(0.5 * burst / demanded_pps)));
  }
  return gap;
}

LaunchLateness Agent::launch_lateness() const {
  LaunchLateness all = lateness_before_;
  if (scheduler_) all.merge(scheduler_->lateness());
  return all;
}

void Agent::deliver(std::size_t id, std::uint64_t seq, const ProbeResult& result) {
  TaskRun& run = runs_[id];
  if (seq != run.next_to_observe) {
    // An answer that came before an earlier probe's: it waits its turn.
    waiting_.emplace(std::pair{id, seq}, result);
    ++stats_.reordered;
    return;
  }
  observe(id, result);
  ++run.next_to_observe;
  for (auto it = waiting_.find({id, run.next_to_observe}); it != waiting_.end();
       it = waiting_.find({id, run.next_to_observe})) {
    const ProbeResult next = std::move(it->second);
    waiting_.erase(it);
    observe(id, next);
    ++run.next_to_observe;
  }
}

void Agent::observe(std::size_t id, const ProbeResult& result) {
  // Never sent (the agent stopped first): it says nothing about anyone.
  if (stopping_ && result.status == ProbeStatus::error && result.error == kStopping) return;
  series_->add(runs_[id].series_key, result);
  const PlannedTask& task = plan_.tasks[id];
  const PlannedTarget& target = plan_.targets[task.target];
  if (result.local_error)
    local_error_log_.warn(loop_.clock().now(), "target " + target.key + " (" + task.method.text() +
                                                   "): cannot be probed: " + result.error);
  if (result.local_error && !target.control) {
    // It never left this host: evidence against the vantage point, not the target.
    ++stats_.local_errors;
    detector_->want_vantage_check();
  } else {
    // A target that answers is up, also with a closed port (refused) or a DNS error code.
    const bool ok = result.status == ProbeStatus::reply || result.status == ProbeStatus::refused;
    if (ok && result.reply_ttl > 0 && result.reply_from == target.address)
      target_runs_[task.target].expected_ttl = static_cast<std::uint8_t>(ttl_from_reply_ttl(result.reply_ttl));
    detector_->on_result(target.key, task.method_index, ok, result.sent);
    adjust_speed(task.target);
  }
  handle_events();
}

void Agent::handle_events() {
  auto events = detector_->take_events();
  for (auto& event : events) handle_event(std::move(event));
  if (detector_->vantage_check_wanted()) run_vantage_check();
  consider_save(!events.empty());
}

void Agent::run_vantage_check() {
  if (stopping_ || control_tasks_.empty()) return;
  const SteadyTime now = loop_.clock().now();
  if (check_probes_ > 0 || (last_check_ && now < *last_check_ + check_gap_)) {
    // One check at a time, no more often than the control targets' suspect interval.
    check_again_ = true;
    if (check_probes_ == 0 && !tick_timer_) rearm();
    return;
  }
  check_again_ = false;
  detector_->vantage_check_started();
  last_check_ = now;
  ++stats_.vantage_checks;
  for (std::size_t id : control_tasks_) run_task(id, true);
}

void Agent::adjust_speed(std::size_t index) {
  const PlannedTarget& target = plan_.targets[index];
  TargetRun& run = target_runs_[index];
  const bool fast = detector_->suspect(target.key);
  if (fast == run.fast || target.suspect_interval >= target.interval) return;
  run.fast = fast;
  // While one target is suspect the loop keeps its pace (wake_gap_now).
  fast ? ++fast_targets_ : --fast_targets_;
  scheduler_->allow_lateness(wake_gap_now());
  const SteadyTime now = loop_.clock().now();
  for (std::size_t id : target.tasks())
    scheduler_->set_interval(static_cast<Scheduler::TaskId>(id), fast ? target.suspect_interval : target.interval, now);
  spdlog::debug("target {}: probing every {}", target.key, format_duration(fast ? target.suspect_interval : target.interval));
  if (!stopping_) rearm();
}

const PlannedTarget* Agent::find_target(const std::string& key) const {
  const auto at = target_index_.find(PositionIndex::hash(key),
                                     [&](std::uint32_t i) { return plan_.targets[i].key == key; });
  return at ? &plan_.targets[*at] : nullptr;
}

TraceTarget Agent::trace_target(const PlannedTarget& t) const {
  return {t.key, std::string(t.name()), plan_.groups[t.group], t.af, t.address,
          std::string(t.host()), t.upstream_asn, t.tcp_port};
}

void Agent::handle_event(DetectorEvent event) {
  // The detector knows targets by key; records name them as configured, with their family.
  const PlannedTarget* target = find_target(event.target);
  if (target) {
    event.target = std::string(target->name());
    event.af = target->af;
  }
  if (event.kind == EventKind::target_down) unwritten_down_.insert(down_key(event.target, event.af));
  if (!is_down(event.kind)) {
    if (event.kind == EventKind::target_up || event.kind == EventKind::group_up) investigator_.recovered(event.group);
    write(event_record(plan_.agent_id, event, nullptr, loop_.clock().wall()));
    return;
  }
  // The target to trace toward: the event's own, or the first of the group's
  // (or, for the vantage point, of the control targets) that is down.
  if (!target && !event.targets.empty()) target = find_target(event.targets.front());
  TraceTarget toward;
  if (target) toward = trace_target(*target);
  else toward.name = event.targets.empty() ? event.target : event.targets.front();
  const bool group_dark = event.kind == EventKind::target_down && detector_->is_group_down(event.group);
  investigator_.investigate(std::move(event), toward, group_dark);
  finish_if_idle();
}

void Agent::on_address_changed(std::size_t index, const IpAddress& address) {
  PlannedTarget& t = plan_.targets[index];
  t.address = address;
  t.error.clear();
  t.af = family_of(address);
  target_runs_[index].expected_ttl = 0;  // another host: its distance is not known yet
  if (raw_) engine_.prepare(address);
  investigator_.forget(t.key);
  if (t.trace_task) {
    // A baseline trace toward the new address now: a failure soon after has a path to compare with.
    if (!stopping_) {
      trace_scheduler_->run_at(static_cast<Scheduler::TaskId>(*t.trace_task), loop_.clock().now());
      rearm();
    }
  }
}

void Agent::tick() {
  tick_timer_ = 0;
  in_tick_ = true;
  const SteadyTime now = loop_.clock().now();
  engine_.expire(now);
  // At most a few thousand windows a turn: 100,000 series closing at one
  // window's end held the loop 0.6 s, and every probe due meanwhile left late.
  constexpr std::size_t kWindowsPerTick = 2000;
  series_->close_due(loop_.clock().wall(),
                     [this](SeriesWindow&& w) { write(series_record(plan_.agent_id, std::move(w))); },
                     kWindowsPerTick);
  if (!stopping_) {
    for (Scheduler::TaskId id : scheduler_->take_due(now)) run_task(id);
    // Baselines with no place yet stay due: a trace that ends makes room (on_settled).
    for (Scheduler::TaskId id : trace_scheduler_->take_due(now, investigator_.baseline_room())) {
      const std::size_t index = plan_.traces[id].target;
      TraceTarget toward = trace_target(plan_.targets[index]);
      toward.expected_ttl = target_runs_[index].expected_ttl;
      investigator_.baseline(toward);
    }
    if (check_again_ && check_probes_ == 0) run_vantage_check();
    consider_save(false);  // new last good traces
  }
  in_tick_ = false;
  finish_if_idle();
  if (!finished_) rearm();
}

void Agent::rearm() {
  if (finished_ || !series_) return;
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
    if (investigator_.baseline_room() > 0) sooner(trace_scheduler_->next_wake(now));
    if (check_again_ && check_probes_ == 0 && last_check_) sooner(*last_check_ + check_gap_);
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
