// Keeps a repeated error from flooding the log: the first occurrence at once,
// then at most one line per interval, which says how many were held back.
// Leaves to others: the wording of each message, and locking (one limiter
// belongs to one thread, or to the caller's mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "probe.hpp"

namespace outpost {

class LogLimiter {
 public:
  enum class Level { warn, error };

  explicit LogLimiter(Duration every = std::chrono::seconds(30)) : every_(every) {}

  // True when this occurrence is to be logged; `held_back` is then how many
  // were counted without a line since the last one logged.
  bool allow(SteadyTime now, std::uint64_t& held_back);
  // Logs `message` when due, with " (N more suppressed)" after it when
  // occurrences were held back; counts it otherwise.
  void warn(SteadyTime now, const std::string& message) { log(Level::warn, now, message); }
  void error(SteadyTime now, const std::string& message) { log(Level::error, now, message); }

  // Occurrences held back since the start, and those still waiting for the next line.
  std::uint64_t suppressed() const { return suppressed_total_; }
  std::uint64_t held_back() const { return held_; }

 private:
  void log(Level level, SteadyTime now, const std::string& message);

  Duration every_;
  std::optional<SteadyTime> last_;
  std::uint64_t held_ = 0;
  std::uint64_t suppressed_total_ = 0;
};

// "message", or "message (N more suppressed)" when N > 0.
std::string with_suppressed(const std::string& message, std::uint64_t held_back);

}  // namespace outpost
