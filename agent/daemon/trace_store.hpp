// The last good trace of each target, packed: a daemon of 100,000 targets
// holds one trace per target for hours, and as TraceResult structs (hops of
// 96 bytes, strings, a map node each) they were 80 MB on the lab's 4-hop
// paths. Here each is one byte string of varints — about 100 bytes for such
// a path — unpacked only when a verdict or a save needs it, held with its
// key in one allocation and found through a PositionIndex (no map node).
// Packing loses nothing: unpack(pack(t)) == t, field for field.
// Leaves to others: which trace is the last good one (investigator), saving
// them (state_store).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "position_index.hpp"
#include "traceroute.hpp"

namespace outpost {

std::string pack_trace(const TraceResult& trace);
// nullopt when `bytes` are not a packed trace (never, for pack_trace's own).
std::optional<TraceResult> unpack_trace(std::string_view bytes);

class TraceStore {
 public:
  void put(const std::string& key, const TraceResult& trace);
  std::optional<TraceResult> get(const std::string& key) const;
  bool erase(const std::string& key);
  std::size_t size() const { return entries_.size(); }
  // Each trace in the order of its key, unpacked one at a time.
  void for_each(const std::function<void(const std::string& key, const TraceResult& trace)>& visit) const;

 private:
  std::optional<std::uint32_t> find(std::string_view key) const;

  std::vector<std::string> entries_;  // each: the key's length (a varint), the key, the packed trace
  PositionIndex index_;  // entries_ by key
};

}  // namespace outpost
