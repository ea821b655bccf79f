// Targets given by host name are looked up again now and then, off the loop:
// every agent.resolve_interval while the name resolves (a changed address is
// probed from then on; a failed lookup keeps the old one), and while it does
// not, at most once per probe interval, between every 5 s and every minute.
// A lookup is due when the target is probed (no timers of its own).
// Leaves to others: the lookups (host_resolver), what a new address changes (agent).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "host_resolver.hpp"
#include "probe.hpp"

namespace outpost {

class HostRefresher {
 public:
  // A target's name now gives another address (of its family).
  using Changed = std::function<void(std::size_t target, const IpAddress& address)>;
  struct Entry {
    std::size_t target = 0;  // its index among the targets
    std::string key;   // for the log
    std::string host;  // the name looked up
    int want_af = 0;   // 4, 6, or 0 (auto)
    IpAddress address;
    Duration interval{};  // the target's probe interval
    bool fresh = false;   // looked up just now (else: due at once)
  };

  HostRefresher(HostResolver& resolver, Changed changed);
  // At start-up and each reload: `targets` targets, of which those in
  // `named` are given by host name (the others, literal addresses, are
  // never looked up). Answers to lookups of older entries are ignored.
  void reset(std::size_t targets, std::vector<Entry> named, Duration resolve_interval, SteadyTime now);
  void maybe_refresh(std::size_t target, SteadyTime now);
  // What each name gave (per family, its last address, or why it has none):
  // a reload does not ask again.
  const std::unordered_map<std::string, HostAddresses>& known() const { return known_; }
  void remember(const std::string& host, const HostAddresses& addresses);

 private:
  struct State {
    Entry entry;
    SteadyTime next{};
    bool resolving = false;
  };
  static constexpr std::uint32_t kNoHost = UINT32_MAX;
  Duration retry_interval(const State& s) const;

  HostResolver& resolver_;
  Changed changed_;
  // Only the targets given by name have a state; the others (often all of
  // 100,000) cost a slot of four bytes.
  std::vector<State> states_;
  std::vector<std::uint32_t> slots_;  // per target: its index in states_, or kNoHost
  Duration resolve_interval_{};
  std::uint64_t generation_ = 0;
  std::unordered_map<std::string, HostAddresses> known_;
};

}  // namespace outpost
