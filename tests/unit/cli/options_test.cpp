// The subcommands refuse numbers past their stated bounds with a message
// naming the option and the bound, before anything starts: no logger, no
// config, no socket, no packet. Targets are loopback all the same. `report`
// reads and writes files only: its exit codes and messages are here too.

#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"

using namespace outpost;

namespace {

struct Outcome {
  int code = -1;
  std::string err;
};

// Runs a subcommand on these arguments (the first is its name), with what
// it writes to standard error captured.
Outcome run(int (*command)(int, char**), std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::ostringstream err;
  std::streambuf* saved = std::cerr.rdbuf(err.rdbuf());
  Outcome outcome;
  try {
    outcome.code = command(static_cast<int>(args.size()), argv.data());
  } catch (...) {
    std::cerr.rdbuf(saved);
    throw;
  }
  std::cerr.rdbuf(saved);
  outcome.err = err.str();
  return outcome;
}

Outcome trace(std::vector<std::string> options) {
  options.insert(options.begin(), {"trace", "127.0.0.1"});
  return run(trace_command, options);
}

Outcome ping(std::vector<std::string> options) {
  options.insert(options.begin(), {"ping", "127.0.0.1"});
  return run(ping_command, options);
}

}  // namespace

TEST_CASE("trace: --parallel 2147483647 is refused with its bound", "[cli][bounds]") {
  const Outcome out = trace({"--parallel", "2147483647"});
  CHECK(out.code == kExitUsage);
  CHECK(out.err == "outpost trace: --parallel: expected an integer from 1 to 255, got 2147483647\n");
}

TEST_CASE("trace: every number is checked against its range", "[cli][bounds]") {
  CHECK(trace({"--max-ttl", "256"}).err == "outpost trace: --max-ttl: expected an integer from 1 to 255, got 256\n");
  CHECK(trace({"--max-ttl", "0"}).err == "outpost trace: --max-ttl: expected an integer from 1 to 255, got 0\n");
  CHECK(trace({"--max-ttl", "20", "--first-ttl", "21"}).err ==
        "outpost trace: --first-ttl: expected an integer from 1 to 20, got 21\n");
  CHECK(trace({"--attempts", "11"}).err == "outpost trace: --attempts: expected an integer from 1 to 10, got 11\n");
  CHECK(trace({"--attempts", "-1"}).err == "outpost trace: --attempts: expected an integer from 1 to 10, got -1\n");
  CHECK(trace({"--gap", "-2147483648"}).err ==
        "outpost trace: --gap: expected an integer from 1 to 255, got -2147483648\n");
  CHECK(trace({"--parallel", "0"}).code == kExitUsage);
  // Past what the type holds: boost's own message, the same exit code.
  const Outcome huge = trace({"--parallel", "99999999999999999999"});
  CHECK(huge.code == kExitUsage);
  CHECK(huge.err.find("--parallel") != std::string::npos);
  // Every bad option is named at once.
  const Outcome two = trace({"--parallel", "300", "--attempts", "99", "--timeout", "2562047h"});
  CHECK(two.code == kExitUsage);
  CHECK(two.err ==
        "outpost trace: --timeout: '2562047h' is too long (at most 8760h, a year)\n"
        "outpost trace: --attempts: expected an integer from 1 to 10, got 99\n"
        "outpost trace: --parallel: expected an integer from 1 to 255, got 300\n");
}

TEST_CASE("ping: --count, --interval and --timeout within their bounds", "[cli][bounds]") {
  const Outcome negative = ping({"--count", "-1"});
  CHECK(negative.code == kExitUsage);
  CHECK(negative.err == "outpost ping: --count: expected an integer from 0 to 1000000000, got -1\n");
  CHECK(ping({"--count", "1000000001"}).err ==
        "outpost ping: --count: expected an integer from 0 to 1000000000, got 1000000001\n");
  const Outcome interval = ping({"--interval", "2562047h"});
  CHECK(interval.code == kExitUsage);
  CHECK(interval.err == "outpost ping: --interval: '2562047h' is too long (at most 8760h, a year)\n");
  CHECK(ping({"--timeout", "9223372036854775807ns"}).err ==
        "outpost ping: --timeout: '9223372036854775807ns' is too long (at most 8760h, a year)\n");
}

TEST_CASE("ping and trace: -4 and -6 ask for one family; both at once, or a literal of the other, is refused",
          "[cli][family]") {
  // Refused before any socket: the address is checked as it is resolved.
  const Outcome both = ping({"-4", "-6"});
  CHECK(both.code == kExitUsage);
  CHECK(both.err == "outpost ping: -4 and -6: give one of them, not both\n");
  CHECK(trace({"--ipv4", "--ipv6"}).err == "outpost trace: -4 and -6: give one of them, not both\n");
  const Outcome v6 = ping({"-6", "--count", "1"});
  CHECK(v6.code == kExitFailure);
  CHECK(v6.err == "outpost ping: '127.0.0.1' is not an IPv6 address\n");
  const Outcome trace_v6 = trace({"-6"});
  CHECK(trace_v6.code == kExitFailure);
  CHECK(trace_v6.err == "outpost trace: '127.0.0.1' is not an IPv6 address\n");
  const Outcome v4 = run(ping_command, {"ping", "::1", "-4", "--count", "1"});
  CHECK(v4.code == kExitFailure);
  CHECK(v4.err == "outpost ping: '::1' is not an IPv4 address\n");
  const Outcome multicast = run(trace_command, {"trace", "ff02::1"});
  CHECK(multicast.code == kExitFailure);
  CHECK(multicast.err == "outpost trace: 'ff02::1' is a multicast address: a target must be one unicast host\n");
}

TEST_CASE("run: --for 2562047h is refused before the config is read", "[cli][bounds]") {
  const Outcome out = run(run_command, {"run", "-c", "/nonexistent/outpost.yaml", "--for", "2562047h"});
  CHECK(out.code == kExitUsage);
  CHECK(out.err == "outpost run: --for: '2562047h' is too long (at most 8760h, a year)\n");
  CHECK(run(run_command, {"run", "-c", "/nonexistent/outpost.yaml", "--for", "8761h"}).code == kExitUsage);
}

// Boost replaces the %placeholders% of its messages with what was typed
// until none is left: an argument holding one used to replace itself for
// ever (found by fuzz_values). The message shows each '%' as '?'.
TEST_CASE("options: an argument that holds a placeholder of boost's messages ends in an error", "[cli][options]") {
  auto outcome = trace({"--max-tt%canonical_option%l", "3"});
  CHECK(outcome.code == kExitUsage);
  CHECK(outcome.err.find("outpost trace: unrecognised option '--max-tt?canonical_option?l'") == 0);
  outcome = trace({"--max-ttl", "%value%"});
  CHECK(outcome.code == kExitUsage);
  CHECK(outcome.err.find("outpost trace: the argument ('?value?') for option '--max-ttl' is invalid") == 0);
}

TEST_CASE("report: exit 64 for a bad option, 1 for an unreadable file, each with a message; skipped lines named", "[cli][report]") {
  const std::string records = std::string(OUTPOST_FIXTURES) + "/report_records.jsonl";
  const auto page = std::filesystem::temp_directory_path() / ("outpost-report-test-" + std::to_string(getpid()) + ".html");
  auto report = [&](std::vector<std::string> options) {
    options.insert(options.begin(), {"report", "-i", records, "-o", page.string()});
    return run(report_command, options);
  };
  const Outcome none = run(report_command, {"report"});
  CHECK(none.code == kExitUsage);
  CHECK(none.err.find("outpost report: the option '--input' is required but missing") == 0);
  CHECK(report({"--from", "yesterday"}).err ==
        "outpost report: --from: 'yesterday' is not an RFC 3339 time (e.g. 2026-12-01T16:15:00Z)\n");
  CHECK(report({"--from", "yesterday"}).code == kExitUsage);
  CHECK(report({"--from", "2026-12-01T01:00:00Z", "--to", "2026-12-01T00:00:00Z"}).code == kExitUsage);
  CHECK(report({"--max-points", "5"}).code == kExitUsage);
  const Outcome missing = run(report_command, {"report", "-i", "/nonexistent/r.jsonl", "-o", page.string()});
  CHECK(missing.code == kExitFailure);
  CHECK(missing.err.find("outpost report: cannot read /nonexistent/r.jsonl: ") == 0);
  CHECK(!std::filesystem::exists(page));

  // The fixture's last line is cut short: named, skipped, counted on the page.
  const Outcome fine = report({});
  CHECK(fine.code == kExitOk);
  CHECK(fine.err.find(records + ":40: skipped: ") == 0);
  std::ifstream in(page);
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(html.find("1 line(s) skipped") != std::string::npos);
  CHECK(html.find("<svg class=\"chart\"") != std::string::npos);
  CHECK(html.rfind("</html>\n") == html.size() - 8);
  CHECK(!std::filesystem::exists(page.string() + ".partial"));
  std::filesystem::remove(page);
}
