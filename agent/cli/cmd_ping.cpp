// `outpost ping TARGET`: probes one target like ping(8), for a person at a terminal.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "probe_factory.hpp"
#include "json_lines.hpp"
#include "cli_common.hpp"
#include "commands.hpp"
#include "resolve.hpp"
#include "terminal_text.hpp"

namespace outpost {
namespace {

constexpr long long kMaxPingCount = 1'000'000'000;

// min/avg/max/stddev (population, as ping's mdev) of the RTTs so far, in
// constant memory however long ping runs (Welford's running variance).
struct RunningRtt {
  std::uint64_t n = 0;
  double min = 0, max = 0, mean = 0, m2 = 0;
  void add(double ms) {
    min = n == 0 ? ms : std::min(min, ms);
    max = n == 0 ? ms : std::max(max, ms);
    ++n;
    const double delta = ms - mean;
    mean += delta / static_cast<double>(n);
    m2 += delta * (ms - mean);
  }
  double stddev() const { return n ? std::sqrt(m2 / static_cast<double>(n)) : 0; }
};

// A dns answer: "reply from 198.18.0.1: NOERROR 1 answer [198.18.0.1] seq=1 time=0.201 ms".
std::string dns_reply_line(const ProbeResult& r, const DnsAnswerInfo& d, std::uint64_t n) {
  constexpr std::size_t kShown = 8;
  std::string line = "reply from " + r.reply_from.to_string() + ": " + terminal_safe(d.rcode) + " " +
                     std::to_string(d.answers.size()) + (d.answers.size() == 1 ? " answer [" : " answers [");
  for (std::size_t i = 0; i < d.answers.size() && i < kShown; ++i) line += (i ? ", " : "") + terminal_safe(d.answers[i]);
  if (d.answers.size() > kShown) line += ", ... " + std::to_string(d.answers.size() - kShown) + " more";
  line += "]";
  if (d.truncated)
    line += d.transport == "tcp" ? " (truncated over UDP, complete over TCP)"
                                 : " (truncated; TCP: " + terminal_safe(d.tcp_error) + ")";
  char tail[64];
  std::snprintf(tail, sizeof tail, " seq=%llu time=%.3f ms", static_cast<unsigned long long>(n), to_ms(*r.rtt));
  return line + tail;
}

// One probe's outcome; port is the probed TCP port (0: icmp).
std::string human_line(const ProbeResult& r, std::uint64_t n, int port) {
  if (r.dns && r.status == ProbeStatus::reply) return dns_reply_line(r, *r.dns, n);
  char buf[320], ttl[16] = "", time[32] = "";
  const auto seq = static_cast<unsigned long long>(n);
  if (r.reply_ttl >= 0) std::snprintf(ttl, sizeof ttl, " ttl=%d", r.reply_ttl);
  if (r.rtt) std::snprintf(time, sizeof time, " time=%.3f ms", to_ms(*r.rtt));
  // tcp_connect does not see the answer's packet: the target's it is.
  const std::string from = (r.reply_from ? r.reply_from : r.target).to_string();
  const std::string error = terminal_safe(r.error);
  switch (r.status) {
    case ProbeStatus::reply:
      if (port) std::snprintf(buf, sizeof buf, "open from %s: port %d seq=%llu%s%s", from.c_str(), port, seq, ttl, time);
      else std::snprintf(buf, sizeof buf, "reply from %s: seq=%llu%s%s", from.c_str(), seq, ttl, time);
      return buf;
    case ProbeStatus::refused:
      std::snprintf(buf, sizeof buf, "refused from %s: port %d closed seq=%llu%s%s", from.c_str(), port, seq, ttl, time);
      return buf;
    case ProbeStatus::unreachable:
      if (r.reply_from)
        std::snprintf(buf, sizeof buf, "%s from %s: seq=%llu%s", error.c_str(), from.c_str(), seq, time);
      else std::snprintf(buf, sizeof buf, "%s: seq=%llu%s", error.c_str(), seq, time);
      return buf;
    case ProbeStatus::timeout:
      return "timeout: seq=" + std::to_string(n);
    default:
      return "error: seq=" + std::to_string(n) + " " + error;
  }
}

}  // namespace

int ping_command(int argc, char** argv) {
  po::options_description opts("outpost ping options");
  opts.add_options()("target", po::value<std::string>()->required(), "address or host name")(
      "method,m", po::value<std::string>()->default_value("icmp"), "icmp, tcp:PORT (half-open), tcp_connect:PORT or dns (with --query)")(
      "count,c", po::value<long long>()->default_value(0), "stop after N probes (0: until interrupted; at most 1000000000)")(
      "interval,i", po::value<std::string>()->default_value("1s"), "time between probes")(
      "timeout,W", po::value<std::string>()->default_value("2s"), "how long to wait for each answer")(
      "query,q", po::value<std::string>(), "dns: the name to ask the target (a DNS server)")(
      "qtype", po::value<std::string>()->default_value("A"), "dns: A, AAAA, NS, SOA, TXT, CNAME, MX or PTR")(
      "json", "print probe records (JSON Lines) instead of human lines")("help,h", "this help");
  add_family_options(opts);
  po::positional_options_description positional;
  positional.add("target", 1);
  po::variables_map vm;
  bool help = false;
  const char* usage =
      "usage: outpost ping TARGET [-4|-6] [--method icmp|tcp:PORT|tcp_connect:PORT|dns --query NAME [--qtype TYPE]]\n"
      "                           [--count N] [--interval D] [--timeout D] [--json]";
  if (!parse_command_line(argc, argv, opts, positional, vm, usage, &help)) return kExitUsage;
  if (help) return kExitOk;

  // Every option is checked before anything starts.
  std::string error;
  auto method = parse_probe_method(vm["method"].as<std::string>(), &error);
  auto interval = duration_option(vm, "interval", "ping");
  auto timeout = duration_option(vm, "timeout", "ping");
  if (!method) std::cerr << "outpost ping: --method: " << error << "\n";
  const auto count_option = integer_option(vm, "count", "ping", 0, kMaxPingCount);
  const auto family = family_option(vm, "ping");
  if (!method || !interval || !timeout || !count_option || !family) return kExitUsage;
  if (auto refusal = ping_interval_refusal(*interval, getuid()); !refusal.empty()) {
    std::cerr << "outpost ping: " << refusal << "\n";
    return kExitUsage;
  }
  const auto count = static_cast<std::uint64_t>(*count_option);
  const bool json = vm.count("json") > 0;
  const std::string target = vm["target"].as<std::string>();

  const Resolved resolved = resolve_target(target, *family).front();
  if (!resolved.error.empty()) {
    std::cerr << "outpost ping: " << resolved.error << "\n";
    return kExitFailure;
  }
  init_logging(false);
  std::optional<DnsQuery> dns;
  if (method->kind == ProbeMethod::Kind::dns) {
    if (!vm.count("query")) {
      std::cerr << "outpost ping: --method dns needs --query NAME\n";
      return kExitUsage;
    }
    dns = DnsQuery{vm["query"].as<std::string>(), vm["qtype"].as<std::string>(), {}};
  }
  const DnsQuery* dns_query = dns ? &*dns : nullptr;
  // DNS queries are built with the packet module (every other probe by hand).
  if (method->kind == ProbeMethod::Kind::dns)
    if (int rc = require_packet_module("ping"); rc != kExitOk) return rc;
  if (!make_probe(*method, resolved.address, *timeout, dns_query, &error)) {
    std::cerr << "outpost ping: " << error << "\n";
    return kExitUsage;
  }

  SystemClock clock;
  EventLoop loop(clock);
  // The capture takes the echo's or the SYN's packets alone (and ICMP errors).
  std::vector<std::string_view> capture_types;
  if (method->kind == ProbeMethod::Kind::icmp) capture_types = {"icmp_echo"};
  if (method->kind == ProbeMethod::Kind::tcp) capture_types = {"tcp_syn"};
  ProbingStack stack(clock, "", 1000, ProbingStack::kTerminalRing, capture_types, resolved.address.is_v6());
  if (int rc = stack.prepare(loop, "ping", method->kind == ProbeMethod::Kind::icmp); rc != kExitOk) return rc;
  if (!stack.raw) method = without_raw_socket(*method);
  Engine& engine = stack.engine;

  char host[256] = "outpost";
  gethostname(host, sizeof host - 1);
  const ProbeLabels labels{host, target, "", method->record_name(), method->port};
  // A refused TCP probe (RST) is an answer: the host is up, the port closed.
  std::uint64_t sent = 0, replies = 0, refused = 0;
  RunningRtt rtts;
  bool stopping = false;

  auto finish_if_done = [&] {
    if ((stopping || (count && sent >= count)) && engine.in_flight() == 0) loop.stop();
  };
  std::function<void()> send_one = [&] {
    if (stopping || (count && sent >= count)) return;
    const std::uint64_t n = ++sent;
    std::string err;
    stack.launch(make_probe(*method, resolved.address, *timeout, dns_query, &err), [&, n](const ProbeResult& r) {
      if (r.status == ProbeStatus::reply || r.status == ProbeStatus::refused) {
        ++(r.status == ProbeStatus::reply ? replies : refused);
        if (r.rtt) rtts.add(to_ms(*r.rtt));
      }
      if (json) std::cout << to_json(probe_record(labels, r)).dump() << std::endl;
      else std::cout << human_line(r, n, method->port) << std::endl;
      finish_if_done();
    });
    if (!count || sent < count) loop.after(*interval, send_one);
  };
  auto interrupt = [&] {
    stopping = true;
    finish_if_done();
  };
  loop.on_signal(SIGINT, interrupt);
  loop.on_signal(SIGTERM, interrupt);

  if (!json)
    std::cout << "PING " << target << " (" << resolved.address.to_string() << "): " << method->text()
              << ", interval " << format_duration(*interval) << ", timeout " << format_duration(*timeout) << std::endl;
  send_one();
  loop.run();
  stack.warn_clock_fallbacks("ping");

  if (!json) {
    const double loss = sent ? 100.0 * static_cast<double>(sent - replies - refused) / static_cast<double>(sent) : 0;
    std::printf("--- %s outpost ping statistics ---\n%llu probes sent, %llu replies", target.c_str(),
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(replies));
    if (method->record_name() == "tcp")
      std::printf(", %llu refused", static_cast<unsigned long long>(refused));
    std::printf(", %.1f%% loss\n", loss);
    if (rtts.n)
      std::printf("rtt min/avg/max/stddev = %.3f/%.3f/%.3f/%.3f ms\n", rtts.min, rtts.mean, rtts.max, rtts.stddev());
  }
  return replies + refused > 0 ? kExitOk : kExitFailure;
}

}  // namespace outpost
