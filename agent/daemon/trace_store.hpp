// The last good trace of each target, packed: a daemon of 100,000 targets
// holds one trace per target for hours, and as TraceResult structs (hops of
// 96 bytes, strings, a map node each) they were 80 MB on the lab's 4-hop
// paths. Here each is one byte string of varints — about 100 bytes for such
// a path — unpacked only when a verdict or a save needs it. Packing loses
// nothing: unpack(pack(t)) == t, field for field.
// Leaves to others: which trace is the last good one (investigator), saving
// them (state_store).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "traceroute.hpp"

namespace outpost {

std::string pack_trace(const TraceResult& trace);
// nullopt when `bytes` are not a packed trace (never, for pack_trace's own).
std::optional<TraceResult> unpack_trace(std::string_view bytes);

class TraceStore {
 public:
  void put(const std::string& key, const TraceResult& trace) { traces_[key] = pack_trace(trace); }
  std::optional<TraceResult> get(const std::string& key) const;
  bool erase(const std::string& key) { return traces_.erase(key) > 0; }
  std::size_t size() const { return traces_.size(); }
  // Each trace in the order of its key, unpacked one at a time.
  void for_each(const std::function<void(const std::string& key, const TraceResult& trace)>& visit) const;

 private:
  std::unordered_map<std::string, std::string> traces_;
};

}  // namespace outpost
