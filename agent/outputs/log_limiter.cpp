#include "log_limiter.hpp"

#include <spdlog/spdlog.h>

namespace outpost {

bool LogLimiter::allow(SteadyTime now, std::uint64_t& held_back) {
  if (last_ && now - *last_ < every_) {
    ++held_;
    ++suppressed_total_;
    return false;
  }
  last_ = now;
  held_back = held_;
  held_ = 0;
  return true;
}

void LogLimiter::log(Level level, SteadyTime now, const std::string& message) {
  std::uint64_t held_back = 0;
  if (!allow(now, held_back)) return;
  const std::string line = with_suppressed(message, held_back);
  if (level == Level::error) spdlog::error("{}", line);
  else spdlog::warn("{}", line);
}

std::string with_suppressed(const std::string& message, std::uint64_t held_back) {
  if (held_back == 0) return message;
  return message + " (" + std::to_string(held_back) + " more suppressed)";
}

}  // namespace outpost
