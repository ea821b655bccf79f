// Reads records files (JSON Lines, CONTRACT.md) into a report's Dataset:
// keeps series, trace and event records, ignores other types and unknown
// fields, and skips each line it cannot use with a problem naming FILE:LINE.
// Leaves to others: opening the files (the command) and what the records mean.
#pragma once

#include <istream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "report_data.hpp"

namespace outpost::report {

struct ReadOptions {
  std::optional<Seconds> from;  // keep what overlaps [from, to]
  std::optional<Seconds> to;
  std::string group;            // when set, this group's records only (and the vantage's own events)
};

// A line longer than this is no record (a probe record is at most 24 KiB plus
// its names, a trace of 255 hops far less than this): skipped unread.
inline constexpr std::size_t kMaxLineBytes = 4u << 20;

class Reader {
 public:
  explicit Reader(ReadOptions options) : options_(std::move(options)) {}
  void read(std::istream& in, const std::string& file);
  // One line (without its newline); `number` counts from 1.
  void read_line(std::string_view line, const std::string& file, std::size_t number);
  // The dataset, windows sorted by time and duplicates (the same file read twice) dropped.
  Dataset finish();

 private:
  void problem(const std::string& file, std::size_t line, std::string message);
  bool in_period(Seconds begin, Seconds end) const;
  void note_time(Seconds t);

  ReadOptions options_;
  Dataset data_;
  std::map<std::tuple<std::string, std::string, std::string, std::string, int>, std::size_t> series_index_;
};

}  // namespace outpost::report
