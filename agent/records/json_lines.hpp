// The JSON Lines encoding of records (CONTRACT.md): one object per record,
// with exactly the fields users rely on and documented extras.
// Leaves to others: the records' contents (records.hpp) and writing them (outputs).
#pragma once

#include <nlohmann/json.hpp>
#include <cstddef>
#include <string>

#include "records.hpp"

namespace outpost {

nlohmann::json to_json(const ProbeRecord& record);
nlohmann::json to_json(const SeriesRecord& record);
nlohmann::json to_json(const TraceRecord& record);
nlohmann::json to_json(const EventRecord& record);
nlohmann::json to_json(const Record& record);
nlohmann::json verdict_json(const Verdict& verdict);

// A probe record's line is at most this many bytes, plus its agent, target
// and group names (from the config) as JSON strings: at most 32 answers of
// 255 characters, and every other text that came from the network cut.
inline constexpr std::size_t kProbeRecordMaxBytes = 24 * 1024;

// One line, newline included; invalid UTF-8 in a field is replaced, never thrown on.
std::string to_json_line(const Record& record);

}  // namespace outpost
