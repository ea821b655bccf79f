// The Prometheus remote write encoding of records: gauges of series and event records as
// protobuf TimeSeries (encoded here by hand), and the snappy-compressed WriteRequest body.
// Leaves to others: the records' contents (records.hpp) and the HTTP request (outputs).
//
// The messages (prometheus/prompb, remote write 1.0):
//   WriteRequest { repeated TimeSeries timeseries = 1; }
//   TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//   Label        { string name = 1; string value = 2; }
//   Sample       { double value = 1; int64 timestamp = 2; }   // timestamp in ms
// A WriteRequest is nothing but its repeated field 1, so the `timeseries` bytes of many
// records, concatenated, are a WriteRequest. Scalars equal to zero are left out, as proto3
// writes them (a Sample of value 0 carries only its timestamp).
//
// Labels are sorted by name (`__name__` first); a label with an empty value is left out.
// A NaN value is not written (Prometheus reads one NaN as a staleness marker).
//   series: outpost_probes_sent, outpost_probes_received, outpost_loss_ratio, and with RTTs
//     outpost_rtt_{min,avg,p50,p95,max,stddev}_seconds; labels agent, group, target, method,
//     af, port (tcp); at the window's start.
//   event: outpost_target_down{agent,group,target,af}, outpost_group_down{agent,group},
//     outpost_vantage_down{agent,group} = 1 on the way down, 0 on the way up;
//     outpost_target_flapping{agent,group,target} = 1 flapping, 0 stable; on *_up events also
//     outpost_outage_duration_seconds{same labels} = end - start; at the record's time.
// Probe and trace records have no time series.
#pragma once

#include <string>
#include <string_view>

#include "records.hpp"

namespace outpost {

// The headers a remote-write request carries.
inline constexpr std::string_view kRemoteWriteContentEncoding = "snappy";
inline constexpr std::string_view kRemoteWriteContentType = "application/x-protobuf";
inline constexpr std::string_view kRemoteWriteVersion = "0.1.0";  // X-Prometheus-Remote-Write-Version

// The record's WriteRequest field 1 entries (length-delimited TimeSeries), concatenated.
std::string remote_write_series(const Record& record);

// The request body: the WriteRequest `timeseries` make up, snappy-compressed (the raw
// block format, not the framing format).
std::string remote_write_body(std::string_view timeseries);

}  // namespace outpost
