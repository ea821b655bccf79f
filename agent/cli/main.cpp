// outpost: a vantage-point probing agent. Dispatches to the subcommands.
#include <cstring>
#include <iostream>
#include <string>

#include "commands.hpp"

#ifndef OUTPOST_VERSION
#define OUTPOST_VERSION "unknown"
#endif

namespace {

const char* const kUsage =
    "outpost: a vantage-point probing agent\n"
    "\n"
    "usage:\n"
    "  outpost run   -c FILE [--for DURATION] [--output FILE.jsonl]   the agent, in the foreground\n"
    "  outpost check -c FILE                                          validate a config; exit 0 ok, 1 invalid\n"
    "  outpost ping  TARGET [-4|-6] [--method icmp|tcp:PORT|tcp_connect:PORT|dns] [--count N] [--interval D] [--timeout D] [--json]\n"
    "  outpost trace TARGET [-4|-6] [--method icmp|udp|tcp:PORT] [--max-ttl N] [--asn-table FILE] [--json]\n"
    "  outpost asn   -t TABLE [--names FILE] ADDRESS...                prefix-to-ASN lookups\n"
    "  outpost report -i FILE.jsonl [-i MORE.jsonl ...] -o REPORT.html [--from T] [--to T] [--group NAME] [--asn-names FILE]\n"
    "                                                                 a self-contained HTML page of the records\n"
    "  outpost --version | --help\n"
    "\n"
    "`outpost COMMAND --help` lists a command's options. Durations: 500ms, 2s, 5m, 1h.\n";

int dispatch(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return outpost::kExitUsage;
  }
  const std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return outpost::kExitOk;
  }
  if (command == "--version" || command == "version") {
    std::cout << "outpost " << OUTPOST_VERSION << "\n";
    return outpost::kExitOk;
  }
  // Each subcommand sees its own name as argv[0].
  if (command == "run") return outpost::run_command(argc - 1, argv + 1);
  if (command == "check") return outpost::check_command(argc - 1, argv + 1);
  if (command == "ping") return outpost::ping_command(argc - 1, argv + 1);
  if (command == "trace") return outpost::trace_command(argc - 1, argv + 1);
  if (command == "asn") return outpost::asn_command(argc - 1, argv + 1);
  if (command == "report") return outpost::report_command(argc - 1, argv + 1);
  std::cerr << "outpost: unknown command '" << command << "'\n\n" << kUsage;
  return outpost::kExitUsage;
}

}  // namespace

// The process's barrier: nothing escapes main as std::terminate. The
// subcommands' outputs flush as the stack unwinds; the loop has a barrier of
// its own that flushes what the agent holds.
int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "outpost: fatal: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "outpost: fatal: unknown exception\n";
  }
  return outpost::kExitSoftware;
}
