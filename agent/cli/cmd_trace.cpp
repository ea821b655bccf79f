// `outpost trace TARGET`: a Paris traceroute for a person at a terminal, hops
// as lines like traceroute/mtr with the ASN beside each address.
#include <sodium.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <string>

#include "asn_table.hpp"
#include "cli_common.hpp"
#include "commands.hpp"
#include "asn_lookup.hpp"
#include "terminal_text.hpp"
#include "json_lines.hpp"
#include "resolve.hpp"
#include "traceroute.hpp"

namespace outpost {
namespace {

std::string asn_label(const AsnTable* asns, const IpAddress& addr) {
  if (!asns) return {};
  auto m = asns->lookup(addr);
  if (!m) return "AS?";
  std::string label = "AS" + m->origin.text();
  if (auto name = asns->name_of(m->origin.primary()); !name.empty())
    label += " " + terminal_safe(name.substr(0, name.find(' ')));
  return label;
}

// The hop's line, as "%3d  %-16s %-24s %8.3f ms" and what the hop adds.
std::string hop_line(const TraceHop& h, const AsnTable* asns) {
  std::string line = right_aligned(std::to_string(h.ttl), 3) + "  ";
  if (!h.addr) return line + "*\n";
  std::string extra;
  if (h.is_target) extra += "  [target]";
  else if (const bool v6 = h.addr.is_v6(); h.icmp_type == (v6 ? 1 : 3))  // destination unreachable (ICMPv6 type 3 is time exceeded)
    extra += "  !" + describe_icmp_error(v6 ? std::uint8_t{IPPROTO_ICMPV6} : std::uint8_t{IPPROTO_ICMP}, static_cast<std::uint8_t>(h.icmp_type),
                                         static_cast<std::uint8_t>(h.icmp_code));
  for (const auto& m : h.mpls) extra += "  MPLS:L=" + std::to_string(m.label) + ",TTL=" + std::to_string(m.ttl);
  line += left_aligned(h.addr.to_string(), 16) + " " + left_aligned(asn_label(asns, h.addr), 24) + " ";
  line += right_aligned(milliseconds_text(h.rtt ? *h.rtt : Duration{}), 8) + " ms" + extra + "\n";
  return line;
}

}  // namespace

int trace_command(int argc, char** argv) {
  po::options_description opts("outpost trace options");
  opts.add_options()("target", po::value<std::string>()->required(), "address or host name")(
      "method,m", po::value<std::string>()->default_value("icmp"), "icmp | udp | tcp:PORT (Paris: one flow per trace)")(
      "max-ttl", po::value<long long>()->default_value(30), "the last TTL to probe (1 to 255)")(
      "first-ttl", po::value<long long>()->default_value(1), "the first TTL to probe (1 to --max-ttl)")(
      "attempts", po::value<long long>()->default_value(2), "probes per hop before it counts as silent (1 to 10)")(
      "gap", po::value<long long>()->default_value(5), "consecutive silent hops that end the trace (1 to 255)")(
      "parallel", po::value<long long>()->default_value(8), "TTLs probed at once (1 to 255)")(
      "timeout,W", po::value<std::string>()->default_value("1s"), "how long a hop waits, from its first probe")(
      "asn-table", po::value<std::string>(), "prefix-to-ASN table to label hops with")(
      "asn-names", po::value<std::string>(), "ASN names (JSON object, as pyasn's asnames.json)")(
      "json", "print the trace record (JSON) instead of hop lines")("help,h", "this help");
  add_family_options(opts);
  po::positional_options_description positional;
  positional.add("target", 1);
  po::variables_map vm;
  bool help = false;
  const char* usage =
      "usage: outpost trace TARGET [-4|-6] [--method icmp|udp|tcp:PORT] [--max-ttl N] [--asn-table FILE] [--json]";
  if (!parse_command_line(argc, argv, opts, positional, vm, usage, &help)) return kExitUsage;
  if (help) return kExitOk;

  // Every number is checked before anything starts, each against its bound.
  std::string error;
  auto spec = parse_trace_method(vm["method"].as<std::string>(), &error);
  auto timeout = duration_option(vm, "timeout", "trace");
  if (!spec) std::cerr << "outpost trace: --method: " << error << "\n";
  const auto max_ttl = integer_option(vm, "max-ttl", "trace", 1, kTraceMaxTtl);
  const auto first_ttl = integer_option(vm, "first-ttl", "trace", 1, max_ttl.value_or(kTraceMaxTtl));
  const auto attempts = integer_option(vm, "attempts", "trace", 1, kTraceMaxAttempts);
  const auto gap = integer_option(vm, "gap", "trace", 1, kTraceMaxTtl);
  const auto parallel = integer_option(vm, "parallel", "trace", 1, kTraceMaxTtl);
  const auto family = family_option(vm, "trace");
  if (!spec || !timeout || !max_ttl || !first_ttl || !attempts || !gap || !parallel || !family) return kExitUsage;
  spec->max_ttl = static_cast<int>(*max_ttl);
  spec->first_ttl = static_cast<int>(*first_ttl);
  spec->attempts = static_cast<int>(*attempts);
  spec->gap_limit = static_cast<int>(*gap);
  spec->parallel = static_cast<int>(*parallel);
  spec->timeout = *timeout;
  // No logger: nothing a trace runs logs (its words go to stdout and stderr
  // as they are), and spdlog's set-up was about 55 µs of every trace.

  std::shared_ptr<AsnTable> asns;
  if (vm.count("asn-table")) {
    AsnLoadReport report;
    auto loaded = AsnTable::load(vm["asn-table"].as<std::string>(), &report, &error);
    if (!loaded) {
      std::cerr << "outpost trace: " << error << "\n";
      return kExitFailure;
    }
    asns = std::make_shared<AsnTable>(std::move(*loaded));
    for (const auto& p : report.problems) std::cerr << "outpost trace: skipped " << p << "\n";
    if (vm.count("asn-names") && !asns->load_names(vm["asn-names"].as<std::string>(), &error)) {
      std::cerr << "outpost trace: " << error << "\n";
      return kExitFailure;
    }
  }

  const std::string target = vm["target"].as<std::string>();
  const Resolved resolved = resolve_target(target, *family).front();
  if (!resolved.error.empty()) {
    std::cerr << "outpost trace: " << resolved.error << "\n";
    return kExitFailure;
  }

  SystemClock clock;
  EventLoop loop(clock);
  // The capture takes the hop probes' packets alone (and ICMP errors).
  const std::string_view hop_type = spec->method == TraceMethod::icmp  ? "icmp_echo"
                                    : spec->method == TraceMethod::udp ? "udp_trace"
                                                                       : "tcp_trace";
  ProbingStack stack(clock, "", 1000, ProbingStack::kTerminalRing, {hop_type}, resolved.address.is_v6());
  // Every attempt of every TTL at once may be answered at once (on a lab,
  // while the probes are still going out), beside other ICMP the host gets.
  stack.wire.set_answer_ring_frames(static_cast<unsigned>(spec->parallel * spec->attempts) + 16);
  if (int rc = stack.prepare(loop, "trace"); rc != kExitOk) return rc;
  auto launch = [&stack](std::unique_ptr<Probe> probe, Engine::Done done) {
    stack.launch(std::move(probe), std::move(done));
  };

  char host[256] = "outpost";
  gethostname(host, sizeof host - 1);
  const ProbeLabels labels{host, target, "", trace_method_name(spec->method), spec->port};
  const bool json = vm.count("json") > 0;
  const AsnTable* table = asns.get();
  const AsnLookup hop_asns = hop_asn_lookup(asns);
  bool reached = false;
  auto trace = Trace::create(*spec, resolved.address, randombytes_random(), clock.wall(), launch,
                             [&](const TraceResult& r) {
                               reached = r.reached;
                               if (json) {
                                 std::cout << to_json(trace_record(labels, r, "manual", hop_asns)).dump() << std::endl;
                               } else {
                                 std::string text;
                                 for (const auto& h : r.hops) text += hop_line(h, table);
                                 if (!r.error.empty()) text += "error: " + terminal_safe(r.error) + "\n";
                                 text += std::string(r.reached ? "reached" : "did not reach") + " after " +
                                         std::to_string(r.hops.size()) + " hops (" + terminal_safe(r.stop_reason) + ")\n";
                                 write_stdout(text);
                               }
                               loop.stop();
                             });
  loop.on_signal(SIGINT, [&] { loop.stop(); });
  loop.on_signal(SIGTERM, [&] { loop.stop(); });
  if (!json)
    write_stdout("trace to " + target + " (" + resolved.address.to_string() + "), " + vm["method"].as<std::string>() +
                 " paris, max " + std::to_string(spec->max_ttl) + " hops\n");
  trace->retry_early([&loop](Duration d, std::function<void()> cb) { loop.after(d, std::move(cb)); });
  trace->launch_after_answers([&loop](std::function<void()> cb) { loop.defer(std::move(cb)); });
  trace->take_answers_between_sends([&stack] { stack.engine.settle_sends(); });
  trace->start();
  if (!loop.stopping()) loop.run();
  stack.warn_clock_fallbacks("trace");
  return reached ? kExitOk : kExitFailure;
}

}  // namespace outpost
