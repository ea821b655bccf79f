// libFuzzer target for `outpost report`'s reader and page: the input is a
// records file (JSON Lines), read line by line and drawn. Beyond "no crash,
// no sanitizer report": every line is used, ignored or skipped as a problem
// naming its line, and whatever the records hold, the page has no "<script"
// (in any case) and ends as a whole document.

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "report_html.hpp"
#include "report_reader.hpp"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  outpost::report::Reader reader({});
  std::size_t number = 0, start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    reader.read_line(text.substr(start, end - start), "fuzz.jsonl", ++number);
    start = end + 1;
  }
  const outpost::report::Dataset dataset = reader.finish();
  for (const auto& p : dataset.problems) require(p.line >= 1 && p.line <= number && !p.message.empty());
  require(dataset.records_used + dataset.records_other + dataset.outside + dataset.bad_lines == dataset.lines);

  outpost::report::RenderOptions options;
  options.max_points = 20;
  std::string page = outpost::report::render_html(dataset, options);
  require(page.size() > 7 && page.compare(page.size() - 8, 8, "</html>\n") == 0);
  std::transform(page.begin(), page.end(), page.begin(), [](unsigned char c) { return std::tolower(c); });
  require(page.find("<script") == std::string::npos);
  return 0;
}
