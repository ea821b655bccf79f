#include "investigator.hpp"

#include <sodium.h>

#include <spdlog/spdlog.h>

#include "asn_lookup.hpp"
#include "icmp_echo.hpp"

namespace outpost {
namespace {

ProbeLabels trace_labels(const std::string& agent, const TraceTarget& t, const TraceSpec& spec) {
  return {agent, t.name, t.group, trace_method_name(spec.method), spec.port, t.af};
}

std::string flow_key(const IpAddress& address, std::uint32_t flow_id) {
  return address.to_string() + '#' + std::to_string(flow_id);
}

}  // namespace

Investigator::Investigator(EventLoop& loop, Pacer& pacer, Write write)
    : loop_(loop), pacer_(pacer), write_(std::move(write)) {}

Investigator::~Investigator() = default;

void Investigator::configure(const std::string& agent_id, const TraceSpec& spec, std::shared_ptr<const AsnTable> asns,
                             InvestigationLimits limits, bool raw) {
  agent_id_ = agent_id;
  spec_ = spec;
  // As the traces have it (a known path's method and port are compared with these).
  if (spec_.method == TraceMethod::udp && spec_.port == 0) spec_.port = kTraceUdpDefaultPort;
  asns_ = std::move(asns);
  limits_ = limits;
  limits_.max_running = std::max<std::size_t>(1, limits_.max_running);
  limits_.max_baselines = std::max<std::size_t>(1, limits_.max_baselines);
  raw_ = raw;
  start_queued();
}

std::uint32_t Investigator::next_seed(TraceMethod method, const IpAddress& address) {
  // A random flow, free toward this address: a host that saw one trace's
  // source port or checksum cannot tell the next one's.
  for (int tries = 0; tries < 1000; ++tries) {
    const std::uint32_t seed = randombytes_random();
    if (flows_.insert(flow_key(address, Trace::flow_id_for(method, seed))).second) return seed;
  }
  // A thousand draws all taken: cannot happen with the caps on running traces.
  return randombytes_random();
}

void Investigator::run_trace(const TraceTarget& target, const TraceSpec& spec, const std::string& reason,
                             std::function<void(const TraceResult&)> done, Trace::KnownPrefix known) {
  ++traces_running_;
  const std::uint32_t seed = next_seed(spec.method, target.address);
  const std::string flow = flow_key(target.address, Trace::flow_id_for(spec.method, seed));
  auto trace = Trace::create(
      spec, target.address, seed, loop_.clock().wall(),
      [this](std::unique_ptr<Probe> probe, Engine::Done probe_done) {
        pacer_.launch(std::move(probe), std::move(probe_done));
      },
      [this, labels = trace_labels(agent_id_, target, spec), reason, flow, done = std::move(done),
       asns = asns_](const TraceResult& result) {
        --traces_running_;
        flows_.erase(flow);
        // A baseline cut short by the stop is no path: it is not written.
        if (!(stopping_ && reason == "baseline")) write_(trace_record(labels, result, reason, hop_asn_lookup(asns)));
        done(result);
        if (on_settled_) on_settled_();
      });
  trace->retry_early([this](Duration d, std::function<void()> cb) { loop_.after(d, std::move(cb)); });
  trace->launch_after_answers([this](std::function<void()> cb) { loop_.defer(std::move(cb)); });
  if (known) trace->reuse_known(std::move(known));
  trace->start();
}

void Investigator::baseline(const TraceTarget& target) {
  if (stopping_ || !raw_ || !target.address) return;
  ++stats_.baselines;
  ++baselines_running_;
  // Toward a target that answers: nothing past where its answers say it is
  // (failure traces keep the whole window: the way there is in doubt).
  TraceSpec spec = spec_;
  spec.expected_ttl = target.expected_ttl;
  Trace::KnownPrefix known;
  if (limits_.reuse_max_age > Duration::zero() && target.expected_ttl > spec.first_ttl) {
    // From the target back: the hops near it are the ones paths do not share.
    spec.start_ttl = target.expected_ttl;
    known = [this](int ttl, const IpAddress& addr) { return known_prefix(ttl, addr); };
  }
  run_trace(
      target, spec, "baseline",
      [this, key = target.key](const TraceResult& result) {
        --baselines_running_;
        for (const auto& h : result.hops) stats_.hops_reused += h.reused_from ? 1 : 0;
        if (result.reached && !stopping_) {
          last_good_.put(key, result);
          ++last_good_revision_;
          note_known(key, result);
        }
      },
      std::move(known));
}

namespace {
std::string known_hop_key(int ttl, const IpAddress& addr) { return std::to_string(ttl) + ' ' + addr.to_string(); }
}  // namespace

void Investigator::note_known(const std::string& key, const TraceResult& trace) {
  if (limits_.reuse_max_age <= Duration::zero()) return known_hops_.clear();  // no hop is reused
  // Bounded: past the bound it starts again from the paths of the traces to come.
  if (known_hops_.size() + trace.hops.size() > kMaxKnownHops) known_hops_.clear();
  for (const auto& h : trace.hops)
    if (h.addr && !h.is_target) known_hops_[known_hop_key(h.ttl, h.addr)] = key;
}

std::optional<std::vector<TraceHop>> Investigator::known_prefix(int ttl, const IpAddress& addr) {
  const auto it = known_hops_.find(known_hop_key(ttl, addr));
  if (it == known_hops_.end()) return std::nullopt;
  const auto path = last_good_.get(it->second);
  const auto at = static_cast<std::size_t>(ttl - spec_.first_ttl);
  // The path changed since, or was forgotten, or was taken another way.
  if (!path || path->spec.method != spec_.method || path->spec.port != spec_.port ||
      path->spec.first_ttl != spec_.first_ttl || path->hops.size() <= at || path->hops[at].ttl != ttl ||
      path->hops[at].addr != addr) {
    known_hops_.erase(it);
    return std::nullopt;
  }
  std::vector<TraceHop> prefix(path->hops.begin(), path->hops.begin() + static_cast<std::ptrdiff_t>(at));
  const WallTime oldest_allowed = loop_.clock().wall() - limits_.reuse_max_age;
  for (auto& h : prefix) {
    // When the hop was really probed: a hop reused already keeps its time.
    if (!h.reused_from) h.reused_from = path->started;
    // Too old: the trace goes on down and probes them again, so that
    // shared first hops are still probed about once a baseline interval.
    if (*h.reused_from < oldest_allowed || h.is_target) return std::nullopt;
    h.rtt.reset();
    h.rtt_clock.clear();
    h.quoted_ttl = -1;
    h.reply_ttl = -1;
    h.probes_sent = 0;
  }
  return prefix;
}

void Investigator::restore_last_good(const std::string& key, TraceResult trace) {
  if (!trace.reached) return;
  if (const auto kept = last_good_.get(key); kept && kept->started >= trace.started) return;
  last_good_.put(key, trace);
  ++last_good_revision_;
  note_known(key, trace);
}

std::string Investigator::group_key(const DetectorEvent& event, const TraceTarget& target) const {
  if (event.kind == EventKind::vantage_down) return std::string("\n") + "vantage";
  return event.group.empty() ? target.group : event.group;
}

void Investigator::investigate(DetectorEvent event, const TraceTarget& target, bool group_dark) {
  auto c = std::make_shared<Case>(Case{std::move(event), target, {}});
  if (stopping_) {
    conclude(c, nullptr, std::nullopt);
    return;
  }
  const std::string gk = group_key(c->event, target);
  auto active = active_.find(gk);
  if (c->event.kind == EventKind::target_down) {
    // A target of a dark group, or of one whose group investigation runs: the group's verdict.
    if (active != active_.end() && (group_dark || active->second->event.kind == EventKind::group_down)) {
      active->second->followers.push_back(std::move(c->event));
      ++stats_.merged;
      return;
    }
    if (auto v = group_verdicts_.find(gk); group_dark && v != group_verdicts_.end()) {
      write_event(c->event, &v->second);
      ++stats_.merged;
      return;
    }
  }
  if (c->event.kind != EventKind::vantage_down) {
    if (const Verdict* v = explained(target)) {
      write_event(c->event, v);
      ++stats_.merged;
      return;
    }
  }
  if (c->event.kind == EventKind::group_down) {
    // The group's targets still waiting for a trace take the group's verdict.
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (group_key((*it)->event, (*it)->target) != gk) {
        ++it;
        continue;
      }
      c->followers.push_back(std::move((*it)->event));
      for (auto& f : (*it)->followers) c->followers.push_back(std::move(f));
      ++stats_.merged;
      it = queue_.erase(it);
    }
    // A trace toward one of its targets already runs: it serves the group.
    if (active != active_.end()) {
      active->second->followers.push_back(std::move(c->event));
      for (auto& f : c->followers) active->second->followers.push_back(std::move(f));
      ++stats_.merged;
      return;
    }
  }
  if (!raw_ || !target.address) {  // no traces without raw sockets, nor toward an unknown address
    conclude(c, nullptr, std::nullopt);
    return;
  }
  if (failure_traces_ >= limits_.max_running) {
    if (queue_.size() >= limits_.max_queued && active != active_.end()) {
      // No room to wait: the trace running toward its group is the best evidence there is.
      active->second->followers.push_back(std::move(c->event));
      ++stats_.merged;
      return;
    }
    if (queue_.size() >= limits_.max_queued) {
      ++stats_.dropped;
      Verdict v;
      v.reason = "no failure trace: " + std::to_string(queue_.size()) + " investigations were waiting already";
      write_event(c->event, &v);
      return;
    }
    queue_.push_back(std::move(c));
    return;
  }
  start(std::move(c));
}

void Investigator::start_queued() {
  while (!stopping_ && failure_traces_ < limits_.max_running && !queue_.empty()) {
    CasePtr c = std::move(queue_.front());
    queue_.pop_front();
    start(std::move(c));
  }
}

void Investigator::start(CasePtr c) {
  ++failure_traces_;
  ++stats_.started;
  active_[group_key(c->event, c->target)] = c;
  TraceSpec spec = spec_;
  spec.method = c->target.tcp_port ? TraceMethod::tcp : TraceMethod::icmp;
  spec.port = c->target.tcp_port.value_or(0);
  run_trace(c->target, spec, "failure", [this, c](const TraceResult& failure) {
    --failure_traces_;
    const TraceHop* last = last_router(failure);
    if (c->event.kind == EventKind::vantage_down || failure.reached || !last || stopping_) {
      conclude(c, &failure, std::nullopt);
    } else {
      // Before blaming the silence after the last router, make sure it still answers itself.
      ++concluding_;
      auto kept = std::make_shared<TraceResult>(failure);
      check_alive(last->addr, [this, c, kept](bool alive) {
        --concluding_;
        conclude(c, kept.get(), alive);
        if (on_settled_) on_settled_();
      });
    }
    start_queued();
  });
}

void Investigator::check_alive(const IpAddress& router, std::function<void(bool)> done) {
  constexpr int kProbes = 3;
  struct State {
    int left = kProbes;
    bool alive = false;
    std::function<void(bool)> done;
  };
  auto state = std::make_shared<State>();
  state->done = std::move(done);
  for (int i = 0; i < kProbes; ++i) {
    pacer_.launch(std::make_unique<IcmpEchoProbe>(router, spec_.timeout), [state](const ProbeResult& r) {
      state->alive = state->alive || r.status == ProbeStatus::reply;
      if (--state->left == 0) state->done(state->alive);
    });
  }
}

void Investigator::conclude(const CasePtr& c, const TraceResult* failure, std::optional<bool> last_hop_alive) {
  VerdictInput in;
  in.target = c->target.address;
  const auto baseline = last_good(c->target.key);
  in.baseline = baseline ? &*baseline : nullptr;
  in.failure = failure;
  in.asn_of = origin_lookup(asns_);
  in.upstream_asn = c->target.upstream_asn;
  in.vantage_failing = c->event.kind == EventKind::vantage_down;
  in.last_hop_alive = last_hop_alive;
  Verdict verdict = judge(in);
  if (!failure && !c->target.address && !c->target.host.empty() && c->event.kind != EventKind::vantage_down)
    verdict.reason = "no failure trace: its host name " + c->target.host + " does not resolve";
  else if (!failure && !raw_ && c->event.kind != EventKind::vantage_down)
    verdict.reason = "no failure trace: traces need CAP_NET_RAW";
  const std::string gk = group_key(c->event, c->target);
  if (auto it = active_.find(gk); it != active_.end() && it->second == c) active_.erase(it);
  write_event(c->event, &verdict);
  bool group = c->event.kind == EventKind::group_down;
  for (const auto& f : c->followers) {
    write_event(f, &verdict);
    group = group || f.kind == EventKind::group_down;
  }
  if (group) group_verdicts_[gk] = verdict;
  if (failure) note_break(c, *failure, verdict);
}

void Investigator::note_break(const CasePtr& c, const TraceResult& failure, const Verdict& verdict) {
  if (failure.reached || !verdict.last_hop || verdict.where == Where::unknown || verdict.where == Where::vantage)
    return;
  const auto baseline = last_good(c->target.key);
  if (!baseline) return;
  // Where the last good path went on from the hop the failure trace died at.
  IpAddress next;
  bool seen = false;
  for (const auto& h : baseline->hops) {
    if (seen && h.addr) {
      next = h.addr;
      break;
    }
    seen = seen || h.addr == verdict.last_hop;
  }
  if (!next) return;
  const WallTime now = loop_.clock().wall();
  // Breaks are kept ten minutes at most, and while nothing of their group came back.
  std::erase_if(breaks_, [&](const Break& b) { return now - b.found > std::chrono::minutes(10); });
  breaks_.push_back({c->target.group, verdict.last_hop, next, verdict, now});
  // Outages waiting for a trace that this break explains need none.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (const Verdict* v = (*it)->event.kind == EventKind::vantage_down ? nullptr : explained((*it)->target)) {
      write_event((*it)->event, v);
      for (const auto& f : (*it)->followers) write_event(f, v);
      ++stats_.merged;
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

const Verdict* Investigator::explained(const TraceTarget& target) {
  if (breaks_.empty()) return nullptr;
  const auto baseline = last_good(target.key);
  if (!baseline) return nullptr;
  const WallTime now = loop_.clock().wall();
  for (auto b = breaks_.rbegin(); b != breaks_.rend(); ++b) {
    if (now - b->found > std::chrono::minutes(10)) continue;
    bool seen = false;
    for (const auto& h : baseline->hops) {
      if (seen && h.addr) {
        if (h.addr == b->next_hop) return &b->verdict;
        break;
      }
      seen = seen || h.addr == b->last_hop;
    }
  }
  return nullptr;
}

void Investigator::recovered(const std::string& group) {
  std::erase_if(breaks_, [&](const Break& b) { return b.group == group; });
  group_verdicts_.erase(group);
}

void Investigator::write_event(const DetectorEvent& event, const Verdict* verdict) {
  write_(event_record(agent_id_, event, verdict, loop_.clock().wall()));
}

void Investigator::stop() {
  if (stopping_) return;
  stopping_ = true;
  auto queue = std::move(queue_);
  queue_.clear();
  for (auto& c : queue) conclude(c, nullptr, std::nullopt);
}

}  // namespace outpost
