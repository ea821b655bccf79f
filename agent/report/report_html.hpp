// The report page: one self-contained HTML file (inline CSS and SVG, nothing
// fetched, no script) with latency charts in SmokePing's manner, outage
// bands, verdicts beside their traces, the summary table and the vantage
// points side by side. Every text from the records is HTML-escaped here.
// Leaves to others: reading records (report_reader) and what they mean (report_analysis).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "report_analysis.hpp"
#include "report_data.hpp"

namespace outpost::report {

struct RenderOptions {
  std::optional<Seconds> from;  // the period; by default the data's own
  std::optional<Seconds> to;
  std::size_t max_points = 300;  // buckets per chart
  AsnNamer name_of;              // names from --asn-names (else the traces' own)
  std::vector<std::string> inputs;
  std::string group;             // --group, when given
};

// & < > " ' as entities: safe in text and in quoted attributes.
std::string html_escape(std::string_view text);

std::string render_html(const Dataset& data, const RenderOptions& options);

}  // namespace outpost::report
