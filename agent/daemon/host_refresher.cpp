#include "host_refresher.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "plan.hpp"

namespace outpost {

HostRefresher::HostRefresher(HostResolver& resolver, Changed changed)
    : resolver_(resolver), changed_(std::move(changed)) {}

Duration HostRefresher::retry_interval(const State& s) const {
  if (s.entry.address) return resolve_interval_;
  return std::min(resolve_interval_,
                  std::clamp<Duration>(s.entry.interval, std::chrono::seconds(5), std::chrono::minutes(1)));
}

void HostRefresher::reset(std::size_t targets, std::vector<Entry> named, Duration resolve_interval, SteadyTime now) {
  ++generation_;
  resolve_interval_ = resolve_interval;
  states_.clear();
  states_.reserve(named.size());
  slots_.assign(targets, kNoHost);
  for (auto& entry : named) {
    if (entry.target >= targets || slots_[entry.target] != kNoHost) continue;
    slots_[entry.target] = static_cast<std::uint32_t>(states_.size());
    State s;
    s.entry = std::move(entry);
    // A name looked up just now waits a whole interval; one carried over, or
    // that did not resolve, is asked again at once.
    s.next = s.entry.fresh && s.entry.address ? now + resolve_interval_ : now;
    states_.push_back(std::move(s));
  }
}

void HostRefresher::remember(const std::string& host, const HostAddresses& addresses) {
  // A failed lookup is remembered too: a reload does not block on a name
  // already tried; it is asked again off the loop.
  auto [it, inserted] = known_.try_emplace(host, addresses);
  if (inserted) return;
  HostAddresses& known = it->second;
  // A failure keeps what the name gave before, family by family.
  if (addresses.v4 || !known.v4) {
    known.v4 = addresses.v4;
    known.error4 = addresses.error4;
  }
  if (addresses.v6 || !known.v6) {
    known.v6 = addresses.v6;
    known.error6 = addresses.error6;
  }
}

void HostRefresher::maybe_refresh(std::size_t index, SteadyTime now) {
  if (index >= slots_.size() || slots_[index] == kNoHost) return;
  const std::size_t slot = slots_[index];
  State& s = states_[slot];
  if (s.resolving || now < s.next) return;
  s.resolving = true;
  s.next = now + retry_interval(s);
  resolver_.lookup(s.entry.host, [this, slot, generation = generation_](const HostAddresses& answer) {
    if (generation != generation_) return;  // the config changed meanwhile
    State& t = states_[slot];
    t.resolving = false;
    remember(t.entry.host, answer);
    std::string error;
    const IpAddress address = pick_address(answer, t.entry.want_af, &error);
    if (!address) {
      // A failed refresh keeps the address the name had.
      if (t.entry.address)
        spdlog::warn("target {}: looking up {} again failed ({}); still probing {}", t.entry.key, t.entry.host, error,
                     t.entry.address.to_string());
      return;
    }
    if (address == t.entry.address) return;
    if (t.entry.address)
      spdlog::info("target {}: {} resolves to {} now, no longer {}", t.entry.key, t.entry.host, address.to_string(),
                   t.entry.address.to_string());
    else
      spdlog::info("target {}: {} resolves to {} now", t.entry.key, t.entry.host, address.to_string());
    t.entry.address = address;
    changed_(t.entry.target, address);
  });
}

}  // namespace outpost
