// `outpost run` and `outpost check`.
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "agent.hpp"
#include "cli_common.hpp"
#include "commands.hpp"
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

  const auto path = vm["config"].as<std::string>();
  ConfigLoad load = load_config_file(path);
  if (!load.errors.empty()) {
    print_errors(load);
    return kExitFailure;
  }
  std::optional<Duration> run_for;
  if (vm.count("for") && !(run_for = duration_option(vm, "for", "run"))) return kExitUsage;

  SystemClock clock;
  EventLoop loop(clock);
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
    for (const auto& o : load.config->report.outputs) outputs.add(std::make_unique<JsonlFile>(o.file));
    if (vm.count("output")) outputs.add(std::make_unique<JsonlFile>(vm["output"].as<std::string>()));
    if (outputs.empty()) outputs.add(std::make_unique<JsonlFile>("-"));
  } catch (const std::exception& e) {
    std::cerr << "outpost run: " << e.what() << "\n";
    return kExitFailure;
  }

  Agent agent(loop, engine, outputs);
  agent.set_raw(stack.raw);
  if (auto error = agent.apply(*load.config); !error.empty()) {
    std::cerr << path << ": " << error << "\n";
    return kExitFailure;
  }

  loop.on_signal(SIGTERM, [&] { agent.stop(); });
  loop.on_signal(SIGINT, [&] { agent.stop(); });
  loop.on_signal(SIGHUP, [&] {
    ConfigLoad reload = load_config_file(path);
    if (!reload.errors.empty()) {
      for (const auto& e : reload.errors) spdlog::error("reload refused: {}", e.to_string());
      return;
    }
    if (auto error = agent.apply(*reload.config); !error.empty()) {
      spdlog::error("reload refused: {}: {}", path, error);
      return;
    }
    spdlog::info("reloaded {}", path);
  });
  loop.on_signal(SIGUSR1, [&] { log_engine_stats(engine); });
  if (run_for) loop.after(*run_for, [&] { agent.stop(); });
  // Records reach the files at least once a second.
  std::function<void()> flush_tick = [&] {
    outputs.flush();
    loop.after(std::chrono::seconds(1), flush_tick);
  };
  loop.after(std::chrono::seconds(1), flush_tick);

  spdlog::info("outpost agent {} running{}", load.config->agent.id,
               run_for ? " for " + format_duration(*run_for) : std::string());
  agent.start();
  loop.run();
  outputs.flush();
  log_engine_stats(engine);
  spdlog::info("stopped: {} records written", agent.records_written());
  return kExitOk;
}

}  // namespace outpost
