// What outlives the process: the detector's states and the last good traces,
// in one JSON file, DIR/state.json, written whole and atomically (a
// temporary file, fsync, rename, fsync of the directory) and read back at
// start-up as untrusted input: sizes bounded, types checked, and a file that
// cannot be used is a message, never a crash.
// Leaves to others: when to save and what of it to restore (agent), the states themselves (detector, investigator).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detector.hpp"
#include "trace_store.hpp"
#include "traceroute.hpp"

namespace outpost {

// The format's version: a file of a newer one is not read. 2: a trace hop
// may have an 11th element, when a reused hop was probed (version 1 files
// are read as they are).
inline constexpr int kStateVersion = 2;
// A larger file is not read (some thousand bytes a target with its traces).
inline constexpr std::uint64_t kStateMaxBytes = 64ull << 20;

struct SavedState {
  WallTime written{};
  DetectorSnapshot detector;
  std::map<std::string, TraceResult> last_good;  // by target key: NAME, or NAME/4 and NAME/6
};

std::string encode_state(const SavedState& state);
// The last good traces alone, as the state holds them ...
std::string encode_traces(const std::map<std::string, TraceResult>& traces);
// (the same from the packed store, unpacked one trace at a time) ...
std::string encode_traces(const TraceStore& traces);
// ... given here in place of state.last_good (not read then): the agent's
// traces are in a TraceStore, not in a SavedState's map.
std::string encode_state(const SavedState& state, std::string_view traces_json);
// nullopt and *error when the text is not a state of a version this build reads.
std::optional<SavedState> decode_state(std::string_view text, std::string* error);

class StateStore {
 public:
  explicit StateStore(std::string dir);
  const std::string& path() const { return path_; }

  // nullopt when there is no file (*problem left empty), or when it cannot be
  // used (*problem says why, naming the file). Never throws.
  std::optional<SavedState> load(std::string* problem) const;
  // Writes the whole state (creating the directory if need be); false and
  // *error when it could not (the file before stays whole). Never throws.
  bool save(const SavedState& state, std::string* error) const;
  // The same with the traces encoded already (encode_traces).
  bool save(const SavedState& state, std::string_view traces_json, std::string* error) const;

 private:
  std::string dir_;
  std::string path_;
  std::string temp_path_;
};

}  // namespace outpost
