// `outpost run` and `outpost check`.
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "agent.hpp"
#include "cli_common.hpp"
#include "commands.hpp"
#include "host_resolver.hpp"
#include "scheduler.hpp"

namespace outpost {
namespace {

void print_errors(const ConfigLoad& load) {
  for (const auto& e : load.errors) std::cerr << e.to_string() << "\n";
}

void log_engine_stats(const Engine& engine) {
  const EngineStats s = engine.stats();
  spdlog::info(
      "engine: launched={} sent={} send_errors={} answered={} timeouts={} captured={} malformed={} foreign={} "
      "stray={} late={} duplicate={} spoofed={} tx_stamp_missing={} capture_dropped={}",
      s.launched, s.sent, s.send_errors, s.answered, s.timeouts, s.captured, s.malformed, s.foreign, s.stray, s.late,
      s.duplicate, s.spoofed, s.tx_stamp_missing, s.capture_dropped);
}

void log_agent_stats(const Agent& agent) {
  const AgentStats& a = agent.stats();
  const InvestigatorStats& i = agent.investigations();
  spdlog::info(
      "agent: records={} vantage_checks={} local_errors={} reordered={} stale_results={}; investigations: "
      "baselines={} failure_traces={} merged={} dropped={}",
      a.records, a.vantage_checks, a.local_errors, a.reordered, a.stale_results, i.baselines, i.started, i.merged,
      i.dropped);
}

}  // namespace

int check_command(int argc, char** argv) {
  po::options_description opts("outpost check options");
  opts.add_options()("config,c", po::value<std::string>()->required(), "the YAML config to validate")(
      "help,h", "this help");
  po::variables_map vm;
  bool help = false;
  if (!parse_command_line(argc, argv, opts, {}, vm, "usage: outpost check -c FILE", &help)) return kExitUsage;
  if (help) return kExitOk;
  const auto path = vm["config"].as<std::string>();
  const ConfigLoad load = load_config_file(path);
  if (!load.errors.empty()) {
    print_errors(load);
    return kExitFailure;
  }
  const Config& c = *load.config;
  std::size_t targets = 0;
  Scheduler demand(c.agent.max_pps);
  for (const auto& g : c.groups) {
    targets += g.targets.size();
    for (const auto& t : g.targets)
      // A name probed over both families is two targets.
      for (int af = 0; af < (t.address.empty() && t.family == TargetFamily::both ? 2 : 1); ++af)
        for (std::size_t i = 0; i < t.probes.size(); ++i) demand.add(t.interval);
  }
  std::cout << path << ": ok: agent " << c.agent.id << ", " << c.groups.size() << " groups, " << targets
            << " targets, " << demand.size() << " probe tasks, " << demand.demanded_pps() << " probes/s of max_pps "
            << c.agent.max_pps << "\n";
  if (demand.demanded_pps() > c.agent.max_pps)
    std::cout << path << ": warning: the targets ask for more probes/s than agent.max_pps; intervals will stretch\n";
  return kExitOk;
}

int run_command(int argc, char** argv) {
  po::options_description opts("outpost run options");
  opts.add_options()("config,c", po::value<std::string>()->required(), "the YAML config")(
      "for", po::value<std::string>(), "run this long (e.g. 90s), then flush and exit")(
      "output,o", po::value<std::string>(), "also write records to this JSON Lines file ('-': standard output)")(
      "verbose,v", "debug logging")("help,h", "this help");
  po::variables_map vm;
  bool help = false;
  if (!parse_command_line(argc, argv, opts, {}, vm, "usage: outpost run -c FILE [--for DURATION] [--output FILE.jsonl]",
                          &help))
    return kExitUsage;
  if (help) return kExitOk;
  init_logging(vm.count("verbose") > 0);

  SystemClock clock;
  EventLoop loop(clock);
  // Signals first: a SIGTERM or SIGHUP during a slow start (config, name
  // lookups, the ASN table) waits in the loop's signalfd instead of killing
  // the process, and is handled on the loop's first turn.
  Agent* agent = nullptr;
  std::function<void()> reload;
  bool stop_asked = false;
  auto stop = [&] {
    stop_asked = true;
    if (agent) agent->stop();
    else loop.stop();
  };
  loop.on_signal(SIGTERM, stop);
  loop.on_signal(SIGINT, stop);
  loop.on_signal(SIGHUP, [&] {
    if (reload) reload();
  });
  loop.on_signal(SIGPIPE, [] {});  // a closed reader of --output - is an output error, not a kill

  const auto path = vm["config"].as<std::string>();
  ConfigLoad load = load_config_file(path);
  if (!load.errors.empty()) {
    print_errors(load);
    return kExitFailure;
  }
  std::optional<Duration> run_for;
  if (vm.count("for") && !(run_for = duration_option(vm, "for", "run"))) return kExitUsage;

  ProbingStack stack(clock, load.config->agent.interface, load.config->agent.max_pps);
  // ICMP needs raw sockets; TCP and DNS can do without (tcp:PORT then connects).
  bool icmp = false;
  for (const auto& g : load.config->groups)
    for (const auto& t : g.targets)
      for (const auto& m : t.probes) icmp = icmp || m.kind == ProbeMethod::Kind::icmp;
  if (int rc = stack.prepare(loop, "run", icmp); rc != kExitOk) return rc;
  Engine& engine = stack.engine;

  Outputs outputs;
  try {
    for (const auto& o : load.config->report.outputs) outputs.add(std::make_unique<JsonlFile>(o.target));
    if (vm.count("output")) outputs.add(std::make_unique<JsonlFile>(vm["output"].as<std::string>()));
    if (outputs.empty()) outputs.add(std::make_unique<JsonlFile>("-"));
  } catch (const std::exception& e) {
    std::cerr << "outpost run: " << e.what() << "\n";
    return kExitFailure;
  }

  SystemResolver resolver(loop);
  Agent the_agent({loop, engine, outputs, resolver, asn_files_loader(), stack.raw, {}});
  if (auto error = the_agent.apply(*load.config); !error.empty()) {
    std::cerr << path << ": " << error << "\n";
    return kExitFailure;
  }
  agent = &the_agent;
  reload = [&] {
    ConfigLoad again = load_config_file(path);
    if (!again.errors.empty()) {
      for (const auto& e : again.errors) spdlog::error("reload refused: {}", e.to_string());
      return;
    }
    if (auto error = the_agent.apply(*again.config); !error.empty()) {
      spdlog::error("reload refused: {}: {}", path, error);
      return;
    }
    spdlog::info("reloaded {}", path);
  };
  loop.on_signal(SIGUSR1, [&] {
    log_engine_stats(engine);
    log_agent_stats(the_agent);
  });
  if (run_for) loop.after(*run_for, [&] { the_agent.stop(); });
  // Records reach the files at least once a second.
  std::function<void()> flush_tick = [&] {
    outputs.flush();
    loop.after(std::chrono::seconds(1), flush_tick);
  };
  loop.after(std::chrono::seconds(1), flush_tick);

  spdlog::info("outpost agent {} running{}", load.config->agent.id,
               run_for ? " for " + format_duration(*run_for) : std::string());
  the_agent.start();
  if (stop_asked) the_agent.stop();  // asked while starting
  const bool ok = loop.run();
  if (!ok) {
    // The loop's barrier: whatever failed, what was measured is written before the exit.
    spdlog::critical("{}; flushing and exiting", loop.error());
    the_agent.flush_now();
  }
  outputs.flush();
  log_engine_stats(engine);
  log_agent_stats(the_agent);
  spdlog::info("stopped: {} records written", the_agent.stats().records);
  return ok ? kExitOk : kExitSoftware;
}

}  // namespace outpost
