// Loss and latency series: per target × method × wall-clock-aligned window, probe counts and RTT statistics.
// Leaves to others: when to close (the agent's loop asks next_close) and the record's JSON (records.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "position_index.hpp"
#include "probe.hpp"
#include "records.hpp"
#include "rtt_stats.hpp"

namespace outpost {

// The start of the window of length `window` holding t: floor(t / window) * window,
// counted from the Unix epoch (also before it). `window` must be positive.
WallTime window_start(WallTime t, Duration window);

// Counts results into open windows and hands each window back once, when no
// more results can come for it: at end + grace, grace being the longest a
// result can take after its probe was sent (the longest probe timeout).
// Memory: the open windows, each with at most RttAccumulator::kExactSamples
// RTTs or a histogram of them. One thread, like the rest of the agent.
class SeriesAggregator {
 public:
  // Throws std::invalid_argument when window <= 0 or grace < 0 (start-up only).
  // Windows starting before `started` (the agent's start) are marked partial.
  SeriesAggregator(Duration window, Duration grace, WallTime started = WallTime::min());

  Duration window() const { return window_; }
  Duration grace() const { return grace_; }

  // A stable small number for the key, to pass to add() instead of the key
  // (the agent may keep it per task and skip building and hashing strings).
  std::size_t key_id(const SeriesKey& key);
  // Room for this many keys (one per task), before asking their ids.
  void reserve(std::size_t keys);

  // Counts the result in the window of its send time (ProbeResult::sent).
  // A result for a window already closed (handed out by close_due/close_all)
  // is dropped and counted in late_results(): an emitted window never changes.
  // Returns whether the result was counted.
  bool add(std::size_t key_id, const ProbeResult& result);
  bool add(const SeriesKey& key, const ProbeResult& result) { return add(key_id(key), result); }

  // The windows whose end + grace <= now, in time order (ties in the order the
  // keys were first seen), each once; they are forgotten, and later results
  // for them are late.
  std::vector<SeriesWindow> close_due(WallTime now);
  // The same, one window at a time: at a window's end a daemon of 100,000
  // targets closes 100,000 windows, and need not hold them all at once. At
  // most `limit` windows (the rest stay due, in order, for the next call:
  // the caller's loop gets a turn between); true while windows due remain.
  bool close_due(WallTime now, const std::function<void(SeriesWindow&&)>& emit,
                 std::size_t limit = static_cast<std::size_t>(-1));

  // At shutdown: every open window, in the same order; a window whose end is
  // after `now` is marked partial. Results still in flight are not waited for
  // (the agent drains its probes first if it wants them). Afterwards every
  // window up to the one holding `now` counts as closed.
  std::vector<SeriesWindow> close_all(WallTime now);
  // The same, one window at a time (100,000 windows at once were 22 MB at a stop).
  void close_all(WallTime now, const std::function<void(SeriesWindow&&)>& emit);

  // When close_due will next have something to return: the earliest end + grace
  // of the open windows; nullopt when none is open.
  std::optional<WallTime> next_close() const;

  std::uint64_t late_results() const { return late_; }
  std::size_t open_windows() const { return open_.size(); }

 private:
  struct Counts {
    std::uint64_t sent = 0, received = 0, timeouts = 0, unreachable = 0, errors = 0;
    RttAccumulator rtts;
  };
  // (window start, key id): the map's order is the order windows are handed out.
  using OpenKey = std::pair<WallTime, std::size_t>;

  SeriesWindow finish(const OpenKey& at, Counts&& counts) const;

  Duration window_;
  Duration grace_;
  WallTime started_;
  // A key as kept: its group and method (shared by thousands of keys) by
  // number, each name held once in labels_.
  struct StoredKey {
    std::string target;
    std::uint32_t group = 0;
    std::uint32_t method = 0;
    int port = 0;
    int af = 0;
  };
  std::uint32_t label_id(const std::string& label);
  bool same(const StoredKey& stored, const SeriesKey& key) const;

  std::vector<StoredKey> keys_;                         // by key id
  PositionIndex ids_;                                   // keys_ by key
  std::vector<std::string> labels_;                     // group and method names
  std::unordered_map<std::string, std::uint32_t> label_ids_;
  std::map<OpenKey, Counts> open_;
  WallTime closed_until_ = WallTime::min();  // windows starting before this are closed
  std::uint64_t late_ = 0;
};

}  // namespace outpost
