#include "detector.hpp"

#include <algorithm>
#include <cmath>

namespace outpost {

Detector::Detector(DetectSettings settings) : settings_(settings) {
  settings_.down_after = std::max(1, settings_.down_after);
  settings_.up_after = std::max(1, settings_.up_after);
  settings_.flap_count = std::max(2, settings_.flap_count);
}

void Detector::reserve(std::size_t targets) {
  targets_.reserve(targets);
  methods_.reserve(targets);
  index_.reserve(targets);
}

std::optional<std::size_t> Detector::find(std::string_view name) const {
  return index_.find(PositionIndex::hash(name), [&](std::uint32_t i) { return targets_[i].name == name; });
}

void Detector::add_target(const std::string& name, const std::string& group, bool control, int methods) {
  if (find(name)) return;  // names are unique: the first registration stands
  const std::size_t idx = targets_.size();
  Target t;
  t.name = name;
  t.control = control;
  t.methods = static_cast<std::uint16_t>(std::clamp(methods, 1, 0xffff));
  t.first_method = static_cast<std::uint32_t>(methods_.size());
  methods_.resize(methods_.size() + t.methods);
  // Most targets join the group registered last: look there first.
  auto g = !groups_.empty() && groups_.back().name == group
               ? groups_.end() - 1
               : std::find_if(groups_.begin(), groups_.end(), [&](const Group& x) { return x.name == group; });
  if (g == groups_.end()) {
    groups_.push_back({group, {}, control, false, {}});
    g = groups_.end() - 1;
  }
  g->members.push_back(idx);
  t.group_index = static_cast<std::uint32_t>(g - groups_.begin());
  targets_.push_back(std::move(t));
  index_.insert(PositionIndex::hash(name), static_cast<std::uint32_t>(idx));
  if (control) controls_.push_back(idx);
}

void Detector::sync_group_count(Target& t) {
  const bool counted = t.reported_down && t.down;
  if (counted == t.counted) return;
  t.counted = counted;
  Group& g = groups_[t.group_index];
  g.down_count = counted ? g.down_count + 1 : g.down_count - 1;
  if (!g.dirty) {
    g.dirty = true;
    dirty_groups_.push_back(t.group_index);
  }
}

std::vector<std::string> Detector::carry_over(const Detector& old, WallTime now) {
  return restore(old.snapshot(), now, true);
}

DetectorSnapshot Detector::snapshot() const {
  DetectorSnapshot s;
  s.targets.reserve(targets_.size());
  for (const Target& t : targets_) {
    TargetState x;
    x.name = t.name;
    x.control = t.control;
    x.down = t.down;
    x.fails = t.fails;
    x.goods = t.goods;
    x.streak_start = t.streak_start;
    for (const Method& m : methods_of(t)) {
      x.failing_since.push_back(m.failing_since);
      x.ever_ok.push_back(m.ever_ok);
    }
    x.last_ok = t.last_ok;
    x.recovery_start = t.recovery_start;
    x.reported_down = t.reported_down;
    x.pending_down = t.pending_down;
    x.down_decided = t.down_decided;
    x.changes.assign(t.changes.begin(), t.changes.end());
    x.flapping = t.flapping;
    s.targets.push_back(std::move(x));
  }
  for (const Group& g : groups_) s.groups.push_back({g.name, g.control, g.down, g.start});
  s.vantage_down = vantage_down_;
  s.vantage_start = vantage_start_;
  s.last_control_ok = last_control_ok_;
  s.check_wanted = check_wanted_;
  return s;
}

std::vector<std::string> Detector::restore(const DetectorSnapshot& snapshot, WallTime now, bool keep_undecided) {
  ++revision_;
  std::vector<std::string> forgotten;
  std::vector<bool> carried(targets_.size(), false);
  for (const TargetState& before : snapshot.targets) {
    const auto at = find(before.name);
    if (!at || targets_[*at].control != before.control || carried[*at]) {
      if (before.down && before.reported_down) forgotten.push_back(before.name);
      continue;
    }
    carried[*at] = true;
    Target& t = targets_[*at];
    t.down = before.down;
    t.fails = std::max(0, before.fails);
    t.goods = std::max(0, before.goods);
    t.streak_start = before.streak_start;
    t.last_ok = before.last_ok;
    t.recovery_start = before.recovery_start;
    t.reported_down = before.reported_down;
    t.pending_down = before.pending_down;
    t.down_decided = before.down_decided;
    t.changes.assign(before.changes.begin(), before.changes.end());
    t.flapping = before.flapping;
    const auto methods = methods_of(t);
    const bool same_methods = before.failing_since.size() == methods.size() && before.ever_ok.size() == methods.size();
    for (std::size_t m = 0; m < methods.size(); ++m) {
      methods[m].round = -1;  // the old round's probes were of old tasks
      // Other probe methods: their per-method history starts afresh.
      methods[m].failing_since = same_methods ? before.failing_since[m] : std::nullopt;
      methods[m].ever_ok = same_methods && before.ever_ok[m];
    }
    if (!t.down) t.reported_down = false;  // an outage that ended is no open outage
    if (!keep_undecided) {
      // What went out as events stays: a reported outage, the control targets of the vantage point's.
      const bool decided = t.reported_down || (t.control && snapshot.vantage_down);
      if (t.down && !decided) {
        // Down but never reported (held back): judged afresh.
        t.down = false;
        t.pending_down = false;
      }
      if (!t.down) t.fails = 0;
      t.goods = 0;
      for (Method& m : methods_of(t)) m.failing_since.reset();
    }
    if (!t.down) t.pending_down = false;
  }
  last_control_ok_ = snapshot.last_control_ok;
  check_wanted_ = snapshot.check_wanted && !controls_.empty();
  pending_ = 0;
  flapping_.clear();
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    sync_group_count(targets_[i]);
    if (targets_[i].flapping) flapping_.push_back(i);
    if (targets_[i].pending_down) ++pending_;
  }
  if (pending_ > 0 && !controls_.empty()) check_wanted_ = true;  // held back: ask the control targets
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    Group& g = groups_[i];
    if (!g.dirty) {
      g.dirty = true;  // judged again below, whatever changed
      dirty_groups_.push_back(i);
    }
    auto before = std::find_if(snapshot.groups.begin(), snapshot.groups.end(),
                               [&](const GroupState& x) { return x.name == g.name && x.control == g.control; });
    if (before == snapshot.groups.end()) continue;
    g.down = before->down;
    g.start = before->start;
  }
  const bool controls = !controls_.empty();
  if (snapshot.vantage_down && controls) {
    vantage_down_ = true;
    vantage_start_ = snapshot.vantage_start;
    // A control target new to this config vouches for the vantage point only
    // once it has answered: until then it counts as down.
    for (std::size_t i = 0; i < targets_.size(); ++i) {
      Target& t = targets_[i];
      if (!t.control || carried[i]) continue;
      t.down = true;
      t.fails = settings_.down_after;
      t.streak_start = now;
    }
  }
  if (controls) update_vantage(now);
  update_groups(now);
  return forgotten;
}

void Detector::on_result(const std::string& name, int method, bool ok, WallTime sent) {
  const auto at = find(name);
  if (!at) return;
  Target& t = targets_[*at];
  const auto m = static_cast<std::size_t>(std::clamp(method, 0, t.methods - 1));
  settle_flapping(sent);
  auto methods = methods_of(t);
  // A method reporting twice before the others (their phases drifted): the round is over.
  if (methods[m].round >= 0) end_round(t, sent);
  if (std::none_of(methods.begin(), methods.end(), [](const Method& x) { return x.round >= 0; })) t.round_start = sent;
  // The first good probe of the first good round while down: the outage's end
  // (the round may have begun with another method's failure).
  const bool first_ok_in_round =
      ok && std::none_of(methods.begin(), methods.end(), [](const Method& x) { return x.round == 1; });
  if (first_ok_in_round && t.down && t.goods == 0) t.recovery_start = sent;
  Method& here = methods[m];
  here.round = ok ? 1 : 0;
  if (ok && t.control && (!last_control_ok_ || sent > *last_control_ok_)) last_control_ok_ = sent;
  if (ok) {
    t.last_ok = sent;
    if (!here.ever_ok || here.failing_since) ++revision_;
    here.ever_ok = true;
    here.failing_since.reset();
  } else if (!here.failing_since) {
    here.failing_since = sent;  // perhaps in a round that another method still saved
    ++revision_;
  }
  if (std::all_of(methods.begin(), methods.end(), [](const Method& x) { return x.round >= 0; })) end_round(t, sent);
  // A control target's answer may vouch for the vantage point now.
  if (ok && t.control && pending_ > 0 && !vantage_failing()) release_pending();
}

// The first failure of a method that used to answer; the round's first probe
// when none ever did.
WallTime Detector::outage_start(const Target& t) const {
  std::optional<WallTime> start;
  for (const Method& m : methods_of(t))
    if (m.ever_ok && m.failing_since && (!start || *m.failing_since < *start)) start = m.failing_since;
  return start.value_or(t.round_start);
}

void Detector::end_round(Target& t, WallTime now) {
  bool any = false, ok = false;
  for (Method& m : methods_of(t)) {
    if (m.round >= 0) {
      any = true;
      ok = ok || m.round == 1;
    }
    m.round = -1;
  }
  if (!any) return;
  if (t.down || !ok || t.fails > 0) ++revision_;  // all but a good round of a healthy target
  // A round fails when every probe method of the target failed.
  if (!t.down) {
    if (ok) {
      t.fails = 0;
    } else {
      if (t.fails++ == 0) t.streak_start = outage_start(t);
      if (t.fails >= settings_.down_after) {
        t.down = true;
        t.goods = 0;
        on_target_down(t, now);
      }
    }
  } else if (!ok) {
    t.goods = 0;
  } else {
    ++t.goods;  // the first good round's recovery_start was set by on_result
    if (t.goods >= settings_.up_after) {
      t.down = false;
      t.fails = 0;
      on_target_up(t, now);
    }
  }
  sync_group_count(t);
  if (t.control) update_vantage(now);
  update_groups(t.recovery_start);
}

bool Detector::vantage_failing() const {
  if (vantage_down_) return true;
  return std::any_of(controls_.begin(), controls_.end(), [this](std::size_t i) {
    const Target& t = targets_[i];
    return !t.down && t.fails > 0;
  });
}

void Detector::on_target_down(Target& t, WallTime decided) {
  if (t.control || vantage_down_) return;  // controls speak through vantage events; our own outage hides theirs
  const bool vouched = controls_.empty() || (last_control_ok_ && *last_control_ok_ >= decided);
  if (vantage_failing() || !vouched) {
    // Wait: is it them, or us?
    if (!t.pending_down) ++pending_;
    t.pending_down = true;
    t.down_decided = decided;
    if (!controls_.empty()) check_wanted_ = true;
    return;
  }
  report(t, EventKind::target_down, t.streak_start);
}

void Detector::on_target_up(Target& t, WallTime now) {
  if (t.pending_down) {
    t.pending_down = false;
    --pending_;
    return;
  }
  if (t.reported_down) report(t, EventKind::target_up, now);
}

void Detector::report(Target& t, EventKind kind, WallTime now) {
  ++revision_;
  t.reported_down = kind == EventKind::target_down;
  sync_group_count(t);
  if (!note_change(t, now)) return;
  DetectorEvent e;
  e.kind = kind;
  e.target = t.name;
  e.group = group_of(t);
  e.start = t.streak_start;
  e.last_ok = t.last_ok && *t.last_ok < t.streak_start ? t.last_ok : std::nullopt;
  if (kind == EventKind::target_up) e.end = t.recovery_start;
  events_.push_back(std::move(e));
}

bool Detector::note_change(Target& t, WallTime now) {
  t.changes.push_back(now);
  const auto stale = std::find_if(t.changes.begin(), t.changes.end(),
                                  [&](WallTime c) { return c + settings_.flap_window >= now; });
  t.changes.erase(t.changes.begin(), stale);
  if (t.flapping) return false;
  if (static_cast<int>(t.changes.size()) < settings_.flap_count) return true;
  t.flapping = true;
  flapping_.push_back(static_cast<std::size_t>(&t - targets_.data()));
  DetectorEvent e;
  e.kind = EventKind::target_flapping;
  e.target = t.name;
  e.group = group_of(t);
  e.start = t.changes.front();
  e.changes = static_cast<int>(t.changes.size());
  events_.push_back(std::move(e));
  return false;
}

void Detector::settle_flapping(WallTime now) {
  for (std::size_t k = 0; k < flapping_.size();) {
    Target& t = targets_[flapping_[k]];
    if (t.changes.empty() || t.changes.back() + settings_.flap_window > now) {
      ++k;
      continue;
    }
    flapping_[k] = flapping_.back();
    flapping_.pop_back();
    t.flapping = false;
    ++revision_;
    DetectorEvent e;
    e.kind = EventKind::target_stable;
    e.target = t.name;
    e.group = group_of(t);
    e.start = t.changes.front();
    e.end = t.changes.back();
    e.changes = static_cast<int>(t.changes.size());
    e.state = t.reported_down ? "down" : "up";
    t.changes.clear();
    events_.push_back(std::move(e));
  }
}

void Detector::update_vantage(WallTime now) {
  std::vector<const Target*> controls;
  for (std::size_t i : controls_) controls.push_back(&targets_[i]);
  if (controls.empty()) return;
  const bool all_down = std::all_of(controls.begin(), controls.end(), [](const Target* t) { return t->down; });
  if (!vantage_down_ && all_down) {
    vantage_down_ = true;
    ++revision_;
    DetectorEvent e;
    e.kind = EventKind::vantage_down;
    e.group = group_of(*controls.front());  // the (first) control group: the vantage point's own
    e.start = controls.front()->streak_start;
    for (const Target* c : controls) {
      e.start = std::min(e.start, c->streak_start);
      e.targets.push_back(c->name);
    }
    vantage_start_ = e.start;
    events_.push_back(std::move(e));
    for (auto& t : targets_) t.pending_down = false;  // it was us, not them
    pending_ = 0;
  } else if (vantage_down_ && !all_down) {
    vantage_down_ = false;
    ++revision_;
    DetectorEvent e;
    e.kind = EventKind::vantage_up;
    e.group = group_of(*controls.front());
    e.start = vantage_start_;
    e.end = now;
    for (const Target* c : controls)
      if (!c->down) e.end = std::min(*e.end, c->recovery_start);
    events_.push_back(std::move(e));
    // Targets that failed while we could not see: judge them afresh from now.
    for (auto& t : targets_) {
      if (t.control || !t.down || t.reported_down) continue;
      t.down = false;
      t.fails = 0;
      t.goods = 0;
      for (Method& m : methods_of(t)) m.failing_since.reset();
    }
  }
  if (!vantage_failing()) release_pending();
}

void Detector::release_pending() {
  if (pending_ == 0 || vantage_down_) return;
  for (auto& t : targets_) {
    if (!t.pending_down) continue;
    // Held until a control target answered a probe sent after it went down.
    if (!controls_.empty() && (!last_control_ok_ || *last_control_ok_ < t.down_decided)) continue;
    t.pending_down = false;
    --pending_;
    if (t.down) report(t, EventKind::target_down, t.streak_start);
  }
}

void Detector::update_groups(WallTime end_hint) {
  if (dirty_groups_.empty()) return;
  std::sort(dirty_groups_.begin(), dirty_groups_.end());  // events in the groups' order
  for (std::size_t gi : dirty_groups_) {
    Group& g = groups_[gi];
    g.dirty = false;
    if (g.control) continue;
    const auto n = static_cast<double>(g.members.size());
    const auto need = static_cast<std::size_t>(std::max(1.0, std::ceil(settings_.group_fraction * n - 1e-9)));
    const bool down = g.down_count >= need;
    if (down == g.down) continue;
    g.down = down;
    ++revision_;
    std::vector<WallTime> starts;
    std::vector<std::string> names;
    for (std::size_t i : g.members) {
      const Target& t = targets_[i];
      if (t.counted) {
        starts.push_back(t.streak_start);
        names.push_back(t.name);
      }
    }
    DetectorEvent e;
    e.group = g.name;
    e.targets = names;
    if (down) {
      // The group went down when the need-th of its targets did.
      std::sort(starts.begin(), starts.end());
      g.start = starts[need - 1];
      e.kind = EventKind::group_down;
      e.start = g.start;
    } else {
      e.kind = EventKind::group_up;
      e.start = g.start;
      e.end = end_hint;
      e.targets.clear();  // the group is back, whatever few may still be down
    }
    events_.push_back(std::move(e));
  }
  dirty_groups_.clear();
}

std::vector<DetectorEvent> Detector::take_events() {
  std::vector<DetectorEvent> out;
  out.swap(events_);
  return out;
}

bool Detector::suspect(const std::string& name) const {
  const auto at = find(name);
  if (!at) return false;
  const Target& t = targets_[*at];
  return t.down ? t.goods > 0 : t.fails > 0;
}

bool Detector::is_group_down(const std::string& group) const {
  for (const auto& g : groups_)
    if (g.name == group) return g.down;
  return false;
}

Detector::DownTally Detector::down_tally() const {
  DownTally t;
  t.groups = groups_.size();
  for (const auto& g : groups_) {
    t.targets_down += g.down_count;
    if (g.down) ++t.groups_down;
  }
  return t;
}

bool Detector::is_target_down(const std::string& name) const {
  const auto at = find(name);
  return at && targets_[*at].down;
}

}  // namespace outpost
