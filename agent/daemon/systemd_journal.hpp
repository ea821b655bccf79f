// Log lines for the systemd journal: whether standard error is the journal's
// stream (systemd sets JOURNAL_STREAM to its device:inode), and the line
// format there: "<N>" with the syslog priority, no time stamp, no colour.
// Leaves to others: setting up the logger (the CLI) and choosing the level.
#pragma once

#include <spdlog/common.h>
#include <spdlog/formatter.h>

#include <memory>
#include <optional>
#include <string>

namespace outpost {

// True when `fd` is the stream named by `journal_stream` ("DEV:INODE", as in
// JOURNAL_STREAM); false for nullptr, a malformed value or another file.
bool is_journal_stream(const char* journal_stream, int fd);
// The same for standard error and this process's JOURNAL_STREAM.
bool stderr_is_journal();

// The syslog priority the journal files a line of this level under:
// debug 7, info 6, warn 4, error 3, critical 2 (trace as debug).
int journal_priority(spdlog::level::level_enum level);
// Formats "<N>message\n", N from journal_priority().
std::unique_ptr<spdlog::formatter> journal_formatter();

// debug, info, warn or error as a level; nullopt for another name.
std::optional<spdlog::level::level_enum> log_level_named(const std::string& name);

}  // namespace outpost
