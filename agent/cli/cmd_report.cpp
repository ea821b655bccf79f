// `outpost report -i RESULTS.jsonl -o report.html`: one self-contained page
// from the records files of one or more agents (charts, outages, verdicts,
// the summary table). Lines it cannot use are reported as FILE:LINE and skipped.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "asn_table.hpp"
#include "cli_common.hpp"
#include "commands.hpp"
#include "report_html.hpp"
#include "report_reader.hpp"

namespace outpost {

namespace {

const char* const kReportUsage =
    "usage: outpost report -i RESULTS.jsonl [-i MORE.jsonl ...] -o REPORT.html [--from TIME] [--to TIME]\n"
    "                      [--group NAME] [--asn-names FILE]   (TIME: RFC 3339, e.g. 2026-12-01T16:15:00Z)";

std::optional<report::Seconds> time_option(const po::variables_map& vm, const char* name) {
  if (!vm.count(name)) return std::nullopt;
  return report::parse_rfc3339(vm[name].as<std::string>());
}

}  // namespace

int report_command(int argc, char** argv) {
  po::options_description opts("outpost report options");
  opts.add_options()("input,i", po::value<std::vector<std::string>>()->required(),
                     "a records file (JSON Lines, as `run` writes); repeat for several agents; - reads standard input")(
      "output,o", po::value<std::string>()->required(), "the page to write (HTML)")(
      "from", po::value<std::string>(), "start of the period (RFC 3339); default: the records' first")(
      "to", po::value<std::string>(), "end of the period (RFC 3339); default: the records' last")(
      "group", po::value<std::string>(), "only this group's targets (and the vantage point's own outages)")(
      "asn-names", po::value<std::string>(), "ASN names (JSON object, as pyasn's asnames.json) for the traces")(
      "max-points", po::value<long long>()->default_value(300), "buckets per chart (10 to 5000); the table uses every window")(
      "help,h", "this help");
  po::positional_options_description positional;
  po::variables_map vm;
  bool help = false;
  if (!parse_command_line(argc, argv, opts, positional, vm, kReportUsage, &help)) return kExitUsage;
  if (help) return kExitOk;

  report::ReadOptions read;
  report::RenderOptions render;
  for (const char* name : {"from", "to"}) {
    if (vm.count(name) && !time_option(vm, name)) {
      std::cerr << "outpost report: --" << name << ": '" << vm[name].as<std::string>()
                << "' is not an RFC 3339 time (e.g. 2026-12-01T16:15:00Z)\n";
      return kExitUsage;
    }
  }
  read.from = render.from = time_option(vm, "from");
  read.to = render.to = time_option(vm, "to");
  if (read.from && read.to && *read.to <= *read.from) {
    std::cerr << "outpost report: --to must come after --from\n";
    return kExitUsage;
  }
  if (vm.count("group")) read.group = render.group = vm["group"].as<std::string>();
  const auto points = integer_option(vm, "max-points", "report", 10, 5000);
  if (!points) return kExitUsage;
  render.max_points = static_cast<std::size_t>(*points);

  AsnTable names;
  if (vm.count("asn-names")) {
    std::string error;
    if (!names.load_names(vm["asn-names"].as<std::string>(), &error)) {
      std::cerr << "outpost report: --asn-names: " << error << "\n";
      return kExitFailure;
    }
    render.name_of = [&names](std::uint32_t asn) { return names.name_of(asn); };
  }

  report::Reader reader(read);
  for (const auto& path : vm["input"].as<std::vector<std::string>>()) {
    render.inputs.push_back(path);
    if (path == "-") {
      reader.read(std::cin, "<stdin>");
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::cerr << "outpost report: cannot read " << path << ": " << std::strerror(errno) << "\n";
      return kExitFailure;
    }
    reader.read(in, path);
    if (in.bad()) {
      std::cerr << "outpost report: error reading " << path << ": " << std::strerror(errno) << "\n";
      return kExitFailure;
    }
  }
  const report::Dataset data = reader.finish();
  for (const auto& p : data.problems) std::cerr << p.file << ":" << p.line << ": skipped: " << p.message << "\n";
  if (data.bad_lines > data.problems.size())
    std::cerr << "outpost report: and " << data.bad_lines - data.problems.size() << " more lines skipped\n";

  const std::string page = report::render_html(data, render);
  // Written beside the target and renamed over it, so a reader never sees half a page.
  const std::string path = vm["output"].as<std::string>();
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << page;
    out.flush();
    if (!out) {
      std::cerr << "outpost report: cannot write " << partial << ": " << std::strerror(errno) << "\n";
      std::remove(partial.c_str());
      return kExitFailure;
    }
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    std::cerr << "outpost report: cannot write " << path << ": " << std::strerror(errno) << "\n";
    std::remove(partial.c_str());
    return kExitFailure;
  }
  std::cerr << "outpost report: " << path << ": " << page.size() << " bytes, " << data.series.size() << " series, "
            << data.events.size() << " events, " << data.traces.size() << " traces, " << data.bad_lines
            << " lines skipped\n";
  return kExitOk;
}

}  // namespace outpost
