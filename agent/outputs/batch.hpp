// A batch: records encoded for one output, closed by size or age, the unit
// that is spooled, sent, acknowledged and deleted; and the record classes
// that decide which batches a full spool gives up first.
// Leaves to others: how records are encoded (records/) and how a batch travels (transports).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "probe.hpp"

namespace outpost {

// Each batch holds records of one class. When a spool is full, `probe`
// batches go first (oldest first), then `series`; `event` batches (events and
// traces) are kept longest.
enum class RecordClass : std::uint8_t { probe = 0, series = 1, event = 2 };
inline constexpr int kRecordClasses = 3;
std::string_view to_string(RecordClass c);

struct Batch {
  // Unique and stable: the same batch sent again (after a retry or a restart)
  // carries the same id, so a collector can drop the duplicate. Letters,
  // digits, '-' and '_' only (it is also a NATS header value and a file name part).
  std::string id;
  RecordClass cls = RecordClass::probe;
  std::uint32_t records = 0;
  std::string payload;  // encoded for the output's format, not compressed
  WallTime created{};   // when its first record was added
};

}  // namespace outpost
