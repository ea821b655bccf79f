// `outpost asn -t TABLE ADDRESS...`: longest-prefix lookups in a prefix-to-ASN
// table, with the table's load time and size (what traces label hops with).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "asn_table.hpp"
#include "cli_common.hpp"
#include "commands.hpp"
#include "terminal_text.hpp"

namespace outpost {

int asn_command(int argc, char** argv) {
  po::options_description opts("outpost asn options");
  opts.add_options()("table,t", po::value<std::string>()->required(), "prefix-to-ASN table (text, or gzip)")(
      "names,n", po::value<std::string>(), "ASN names (JSON object, as pyasn's asnames.json)")(
      "address", po::value<std::vector<std::string>>()->default_value({}, ""), "addresses to look up")(
      "help,h", "this help");
  po::positional_options_description positional;
  positional.add("address", -1);
  po::variables_map vm;
  bool help = false;
  if (!parse_command_line(argc, argv, opts, positional, vm, "usage: outpost asn -t TABLE [--names FILE] ADDRESS...",
                          &help))
    return kExitUsage;
  if (help) return kExitOk;

  const auto start = std::chrono::steady_clock::now();
  AsnLoadReport report;
  std::string error;
  auto table = AsnTable::load(vm["table"].as<std::string>(), &report, &error);
  if (!table) {
    std::cerr << "outpost asn: " << error << "\n";
    return kExitFailure;
  }
  const auto loaded = std::chrono::steady_clock::now();
  if (vm.count("names") && !table->load_names(vm["names"].as<std::string>(), &error)) {
    std::cerr << "outpost asn: " << error << "\n";
    return kExitFailure;
  }
  const auto named = std::chrono::steady_clock::now();
  for (const auto& p : report.problems) std::cerr << p << "\n";
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::fprintf(stderr, "%zu prefixes, %zu bad lines skipped, loaded in %.3f s (names %.3f s), table %.1f MiB, peak RSS %.1f MiB\n",
               report.prefixes, report.skipped, std::chrono::duration<double>(loaded - start).count(),
               std::chrono::duration<double>(named - loaded).count(),
               static_cast<double>(table->memory_bytes()) / (1 << 20), static_cast<double>(ru.ru_maxrss) / 1024);
  int rc = kExitOk;
  for (const auto& text : vm["address"].as<std::vector<std::string>>()) {
    auto address = IpAddress::parse(text);
    if (!address) {
      std::cerr << "outpost asn: '" << text << "' is not an address\n";
      rc = kExitUsage;
      continue;
    }
    auto match = table->lookup(*address);
    if (!match) {
      std::cout << text << "\tunrouted\n";
      continue;
    }
    std::cout << text << "\t" << match->prefix.to_string() << "/" << match->length << "\tAS" << match->origin.text();
    if (auto name = table->name_of(match->origin.primary()); !name.empty()) std::cout << "\t" << terminal_safe(name);
    std::cout << "\n";
  }
  return rc;
}

}  // namespace outpost
