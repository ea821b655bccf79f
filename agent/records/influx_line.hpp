// The Influx line protocol encoding of records (InfluxDB 1.x /write, VictoriaMetrics /write,
// Telegraf), timestamps in nanoseconds (precision=ns): series, probe and event records.
// Leaves to others: the records' contents (records.hpp) and sending the lines (outputs).
//
// Measurements and lines:
//   outpost_series  tags af, agent, group, method, port (tcp), target; one line per window,
//                   at the window's start.
//   outpost_probe   tags af, agent, group, method, port (tcp), status, target; at the send time.
//   outpost_event   tags af, agent, group, kind, target; at the record's time.
// Trace records have no line.
//
// Escaping follows the line protocol: a backslash before comma and space in the
// measurement; before comma, '=' and space in tag keys, tag values and field keys;
// string field values in double quotes, with '"' and '\' backslash-escaped.
// Beyond the spec, so that a record is always one parseable line:
//   - a newline or carriage return, which the protocol cannot carry anywhere, is written
//     as the two characters `\n` or `\r`, in tag values and string fields alike. InfluxDB
//     1.x does not unescape them, so they are stored as those two characters: visible,
//     never dropped;
//   - in a tag value (or key), a backslash before a special character, before another
//     backslash or at the end is written as the four characters `\x5c`: InfluxDB 1.x takes
//     any backslash before a separator for an escape (and rejects a tag value ending in
//     one), while VictoriaMetrics unescapes `\\`, so no other spelling reads the same in
//     both. Any other backslash is written as it is, and both store it as it is.
// A tag with an empty value is left out (the protocol forbids it). A float that is NaN or
// infinite is left out; a line left with no field is not written. Floats are written in
// the shortest form that reads back to the same double; integers with the `i` suffix.
#pragma once

#include <string>

#include "records.hpp"

namespace outpost {

// Zero or more complete lines, each ending in '\n'; empty for traces.
std::string influx_lines(const Record& record);
std::string influx_lines(const SeriesRecord& record);
std::string influx_lines(const ProbeRecord& record);
std::string influx_lines(const EventRecord& record);
std::string influx_lines(const TraceRecord& record);

}  // namespace outpost
