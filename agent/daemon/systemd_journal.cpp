#include "systemd_journal.hpp"

#include <sys/stat.h>
#include <syslog.h>

#include <spdlog/pattern_formatter.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

namespace outpost {

bool is_journal_stream(const char* journal_stream, int fd) {
  if (!journal_stream) return false;
  std::uintmax_t dev = 0, ino = 0;
  char tail = 0;
  if (std::sscanf(journal_stream, "%ju:%ju%c", &dev, &ino, &tail) != 2) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<std::uintmax_t>(st.st_dev) == dev && static_cast<std::uintmax_t>(st.st_ino) == ino;
}

bool stderr_is_journal() { return is_journal_stream(std::getenv("JOURNAL_STREAM"), 2); }

int journal_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return LOG_DEBUG;
    case spdlog::level::info: return LOG_INFO;
    case spdlog::level::warn: return LOG_WARNING;
    case spdlog::level::err: return LOG_ERR;
    default: return LOG_CRIT;
  }
}

namespace {

class PriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    char text[8];
    const int n = std::snprintf(text, sizeof text, "<%d>", journal_priority(msg.level));
    dest.append(text, text + n);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<PriorityFlag>(); }
};

}  // namespace

std::unique_ptr<spdlog::formatter> journal_formatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<PriorityFlag>('*').set_pattern("%*%v");
  return formatter;
}

std::optional<spdlog::level::level_enum> log_level_named(const std::string& name) {
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  return std::nullopt;
}

}  // namespace outpost
