// `outpost run` and `outpost check`.
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>

#include "agent.hpp"
#include "cli_common.hpp"
#include "commands.hpp"
#include "host_resolver.hpp"
#include "loop_reactor.hpp"
#include "preflight.hpp"
#include "metrics_endpoint.hpp"
#include "scheduler.hpp"
#include "systemd_journal.hpp"
#include "systemd_notify.hpp"
#include "tins_forge.hpp"

namespace outpost {
namespace {

// Loading and planning a large config frees far more than it keeps; glibc
// keeps freed memory in its arenas, so the RSS stayed at the start-up peak.
void release_free_memory() { ::malloc_trim(0); }

void print_errors(const ConfigLoad& load) {
  for (const auto& e : load.errors) std::cerr << e.to_string() << "\n";
}

void log_engine_stats(const Engine& engine) {
  const EngineStats s = engine.stats();
  spdlog::info(
      "engine: launched={} sent={} send_errors={} answered={} timeouts={} captured={} malformed={} foreign={} "
      "stray={} late={} duplicate={} spoofed={} tx_stamp_missing={} rx_stamp_missing={} capture_dropped={} "
      "clock_stepped={}",
      s.launched, s.sent, s.send_errors, s.answered, s.timeouts, s.captured, s.malformed, s.foreign, s.stray, s.late,
      s.duplicate, s.spoofed, s.tx_stamp_missing, s.rx_stamp_missing, s.capture_dropped, s.clock_stepped);
}

void log_send_thread_stats(const RawWire& wire) {
  if (wire.thread_sent() == 0 && wire.thread_batches() == 0) return;
  spdlog::info("send thread: sent={} batches={} wakes={}", wire.thread_sent(), wire.thread_batches(),
               wire.thread_wakes());
}

void log_agent_stats(const Agent& agent) {
  const AgentStats& a = agent.stats();
  const InvestigatorStats& i = agent.investigations();
  const LaunchLateness l = agent.launch_lateness();
  spdlog::info(
      "agent: records={} vantage_checks={} local_errors={} reordered={} stale_results={}; investigations: "
      "baselines={} hops_reused={} failure_traces={} merged={} dropped={}; launches={} launch_late_max_ms={:.1f} "
      "launches_late_10ms={} launches_late_100ms={} launches_late_1s={}",
      a.records, a.vantage_checks, a.local_errors, a.reordered, a.stale_results, i.baselines, i.hops_reused, i.started,
      i.merged, i.dropped, l.launches, std::chrono::duration<double, std::milli>(l.worst).count(), l.late_10ms, l.late_100ms,
      l.late_1s);
}

void log_output_stats(const Outputs& outputs) {
  for (const auto& line : outputs.stats_lines()) spdlog::info("{}", line);
}

// report.outputs, and --output beside them; standard output when there is none.
std::vector<OutputSpec> output_specs(const Config& config, const std::optional<std::string>& extra) {
  std::vector<OutputSpec> specs = config.report.outputs;
  if (extra) {
    OutputSpec spec;
    spec.target = *extra;
    spec.name = "output-option";
    specs.push_back(std::move(spec));
  }
  if (specs.empty()) {
    OutputSpec spec;
    spec.target = "-";
    spec.name = "stdout";
    specs.push_back(std::move(spec));
  }
  return specs;
}

// Before the wire opens: agent.user (and agent.group) looked up, and a
// missing agent.state_dir made for that user, so that what the agent writes
// there after the drop is its own; as root without agent.user, a warning.
// kExitOk, or an exit code after a message.
int prepare_run_as(const Config& config, std::optional<RunAs>* run_as) {
  const AgentSection& agent = config.agent;
  if (agent.user.empty()) {
    if (geteuid() == 0)
      spdlog::warn("started as root without agent.user: the agent keeps uid 0 (with CAP_NET_RAW only); set "
                   "agent.user to run it as an ordinary user");
    return kExitOk;
  }
  std::string error;
  if (!look_up_run_as(agent.user, "", &error)) {
    std::cerr << ConfigError{config.path, agent.user_mark.line, agent.user_mark.col, "agent.user: " + error}.to_string()
              << "\n";
    return kExitFailure;
  }
  *run_as = look_up_run_as(agent.user, agent.group, &error);
  if (!*run_as) {
    std::cerr << ConfigError{config.path, agent.group_mark.line, agent.group_mark.col, "agent.group: " + error}
                     .to_string()
              << "\n";
    return kExitFailure;
  }
  if (!agent.state_dir.empty())
    if (auto e = make_state_dir(agent.state_dir, **run_as); !e.empty()) {
      std::cerr << "outpost run: " << e << "\n";
      return kExitFailure;
    }
  return kExitOk;
}

// After the drop: agent.state_dir is usable by whom the agent now is (one
// left by a run as root is not). A missing one without agent.user is made
// by the spool.
int check_state_dir(const Config& config) {
  const std::string& dir = config.agent.state_dir;
  if (dir.empty() || ::access(dir.c_str(), R_OK | W_OK | X_OK) == 0) return kExitOk;
  if (errno == ENOENT && config.agent.user.empty()) return kExitOk;
  const std::string why = std::strerror(errno);
  std::cerr << "outpost run: agent.state_dir " << dir << ": " << why << " (running as "
            << current_user_text() << "); `outpost check -c " << config.path << "` lists what it cannot use\n";
  return kExitFailure;
}

// The log level: --log-level (or -v), else agent.log_level.
void apply_log_level(const std::optional<std::string>& option, const Config& config) {
  if (auto level = log_level_named(option.value_or(config.agent.log_level))) spdlog::default_logger()->set_level(*level);
}

// systemd's STATUS= line.
std::string status_line(const Agent& agent, const Outputs& outputs) {
  // What `systemctl status` shows first: whether anything is down now.
  const DownCounts down = agent.down_counts();
  std::string line = "probing " + std::to_string(agent.plan().targets.size()) + " targets (" +
                     std::to_string(down.targets_down) + " down";
  if (down.groups_down > 0) line += ", " + std::to_string(down.groups_down) + " groups down";
  if (down.vantage_down) line += ", the vantage point down";
  return line + "), " + std::to_string(outputs.outputs().size()) + " outputs, " +
         std::to_string(agent.stats().records) + " records written";
}

// How long a stopping agent waits for its outputs to deliver what they hold;
// what is still undelivered then stays in the spools (on disk with
// agent.state_dir) for the next run.
constexpr Duration kDrainTimeout = std::chrono::seconds(5);

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
  // What run will open, as the user it will be: errors on standard error
  // (exit 1), warnings after the summary.
  PreflightOptions options;
  options.as_root = geteuid() == 0;
  const std::vector<PreflightNote> notes = preflight(c, options);
  bool refused = false;
  for (const auto& note : notes)
    if (!note.warning) {
      std::cerr << note.to_string() << "\n";
      refused = true;
    }
  auto print_warnings = [&] {
    for (const auto& note : notes)
      if (note.warning) std::cout << note.to_string() << "\n";
  };
  if (refused) {
    print_warnings();
    return kExitFailure;
  }
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
  print_warnings();
  return kExitOk;
}

int run_command(int argc, char** argv) {
  po::options_description opts("outpost run options");
  opts.add_options()("config,c", po::value<std::string>()->required(), "the YAML config")(
      "for", po::value<std::string>(), "run this long (e.g. 90s), then flush and exit")(
      "output,o", po::value<std::string>(), "also write records to this JSON Lines file ('-': standard output)")(
      "log-level", po::value<std::string>(), "debug, info, warn or error (default: agent.log_level, else info)")(
      "verbose,v", "debug logging (--log-level debug)")("help,h", "this help");
  po::variables_map vm;
  bool help = false;
  if (!parse_command_line(argc, argv, opts, {}, vm, "usage: outpost run -c FILE [--for DURATION] [--output FILE.jsonl]",
                          &help))
    return kExitUsage;
  if (help) return kExitOk;
  // --for is checked before anything starts (at most a year: the clock plus it cannot overflow).
  std::optional<Duration> run_for;
  if (vm.count("for") && !(run_for = duration_option(vm, "for", "run"))) return kExitUsage;
  std::optional<std::string> log_level;
  if (vm.count("log-level")) {
    log_level = vm["log-level"].as<std::string>();
    if (!log_level_named(*log_level)) {
      std::cerr << "outpost run: --log-level: expected debug, info, warn or error, got '" << *log_level << "'\n";
      return kExitUsage;
    }
  } else if (vm.count("verbose")) {
    log_level = "debug";
  }
  init_logging(vm.count("verbose") > 0);
  // Before any thread starts: libsodium's one-time set-up is not safe to race.
  if (sodium_init() < 0) {
    std::cerr << "outpost run: libsodium failed to initialise\n";
    return kExitSoftware;
  }

  SystemClock clock;
  EventLoop loop(clock);
  SystemdNotifier systemd(loop);  // no-op unless started by systemd (NOTIFY_SOCKET)
  // Signals first: a SIGTERM or SIGHUP during a slow start (config, name
  // lookups, the ASN table) waits in the loop's signalfd instead of killing
  // the process, and is handled on the loop's first turn.
  Agent* agent = nullptr;
  std::function<void()> reload;
  bool stop_asked = false;
  bool stop_asked_twice = false;
  auto stop = [&] {
    systemd.stopping();
    stop_asked_twice = stop_asked;
    stop_asked = true;
    if (agent && !agent->finished()) agent->stop();
    else loop.stop();  // before the start, or while the outputs drain
  };
  loop.on_signal(SIGTERM, stop);
  loop.on_signal(SIGINT, stop);
  loop.on_signal(SIGHUP, [&] {
    if (reload) reload();
  });
  loop.on_signal(SIGPIPE, [] {});  // a closed reader of --output - is an output error, not a kill
  // Blocked from the start too, so every thread made later (the outputs'
  // workers, curl's resolver) has it blocked and it reaches the loop.
  std::function<void()> report_stats;
  loop.on_signal(SIGUSR1, [&] {
    if (report_stats) report_stats();
  });

  const auto path = vm["config"].as<std::string>();
  ConfigLoad load = load_config_file(path);
  if (!load.errors.empty()) {
    print_errors(load);
    return kExitFailure;
  }
  apply_log_level(log_level, *load.config);
  ProbingStack stack(clock, load.config->agent.interface, load.config->agent.max_pps);
  // ICMP needs raw sockets; TCP and DNS can do without (tcp:PORT then connects).
  bool icmp = false;
  for (const auto& g : load.config->groups)
    for (const auto& t : g.targets)
      for (const auto& m : t.probes) icmp = icmp || m.kind == ProbeMethod::Kind::icmp;
  std::optional<RunAs> run_as;
  if (int rc = prepare_run_as(*load.config, &run_as); rc != kExitOk) return rc;
  // DNS probes build their queries with the packet module (all else by hand).
  if (forges_with_packet_module(*load.config))
    if (int rc = require_packet_module("run"); rc != kExitOk) return rc;
  if (int rc = stack.prepare(loop, "run", icmp, run_as); rc != kExitOk) return rc;
  if (int rc = check_state_dir(*load.config); rc != kExitOk) return rc;
  Engine& engine = stack.engine;

  // Self-metrics (agent.metrics): listening before any probe, and only after
  // the privileges are dropped, since the endpoint's threads start here.
  std::unique_ptr<MetricsEndpoint> metrics;
  RunCounters run_counters;
  if (const std::string& address = load.config->agent.metrics; !address.empty()) {
    try {
      metrics = std::make_unique<MetricsEndpoint>(address);
    } catch (const std::exception& e) {
      std::cerr << "outpost run: " << e.what() << "\n";
      return kExitFailure;
    }
    spdlog::info("metrics: serving http://{}/metrics", address);
  }

  // What the rest of the run needs of the first config: its agent section.
  // The groups go once the agent has its plan (with 100,000 targets they
  // held tens of megabytes for nothing).
  const AgentSection started_as = load.config->agent;
  std::optional<std::string> extra_output;
  if (vm.count("output")) extra_output = vm["output"].as<std::string>();
  LoopReactor reactor(loop);
  Outputs outputs;
  outputs.attach(reactor, started_as.id, started_as.state_dir);
  if (auto error = outputs.apply(output_specs(*load.config, extra_output)); !error.empty()) {
    std::cerr << "outpost run: " << error << "\n";
    return kExitFailure;
  }

  SystemResolver resolver(loop);
  Agent the_agent({loop, engine, outputs, resolver, asn_files_loader(), stack.raw, {}});
  if (auto error = the_agent.apply_releasing_groups(*load.config); !error.empty()) {
    std::cerr << path << ": " << error << "\n";
    return kExitFailure;
  }
  load = ConfigLoad{};
  release_free_memory();
  agent = &the_agent;
  std::function<void()> reload_config = [&] {
    ++run_counters.reloads;
    outputs.reopen();  // logrotate moved the files away
    // After the drop the file is read as agent.user (README: Privileges).
    if (::access(path.c_str(), R_OK) != 0) {
      const std::string why = std::strerror(errno);
      spdlog::error("reload refused: cannot read {}: {} (running as {}); keeping the old config", path, why,
                    current_user_text());
      return;
    }
    ConfigLoad again = load_config_file(path);
    if (!again.errors.empty()) {
      ++run_counters.reload_failures;
      for (const auto& e : again.errors) spdlog::error("reload refused: {}", e.to_string());
      return;
    }
    // The first config that forges with the packet module loads it; a
    // module that cannot be loaded is no reason to stop probing.
    if (forges_with_packet_module(*again.config)) {
      if (const std::string why = load_tins_forge(); !why.empty()) {
        ++run_counters.reload_failures;
        spdlog::error("reload refused: {}; keeping the old config", why);
        return;
      }
    }
    if (auto error = the_agent.apply_releasing_groups(*again.config); !error.empty()) {
      ++run_counters.reload_failures;
      spdlog::error("reload refused: {}: {}", path, error);
      return;
    }
    apply_log_level(log_level, *again.config);
    if (again.config->agent.metrics != started_as.metrics)
      spdlog::warn("reload: agent.metrics changes only at a restart; still {}",
                   started_as.metrics.empty() ? "off" : started_as.metrics);
    if (again.config->agent.state_dir != started_as.state_dir)
      spdlog::warn("reload: agent.state_dir changes only at a restart; still using {}", started_as.state_dir);
    if (again.config->agent.user != started_as.user || again.config->agent.group != started_as.group)
      spdlog::warn("reload: agent.user and agent.group change only at a restart");
    if (auto error = outputs.apply(output_specs(*again.config, extra_output)); !error.empty())
      spdlog::error("reload: outputs unchanged: {}", error);
    spdlog::info("reloaded {}", path);
  };
  reload = [&] {
    systemd.reloading();
    reload_config();
    release_free_memory();  // the new config, the old plan
    systemd.ready(status_line(the_agent, outputs));  // a refused reload leaves the agent running as it was
  };
  report_stats = [&] {
    log_engine_stats(engine);
    log_send_thread_stats(stack.wire);
    log_agent_stats(the_agent);
    log_output_stats(outputs);
  };
  if (metrics) metrics->start(loop, [&] { return take_snapshot(the_agent, engine, outputs, run_counters); });
  if (run_for) loop.after(*run_for, [&] { the_agent.stop(); });
  spdlog::info("outpost agent {} running{}", started_as.id,
               run_for ? " for " + format_duration(*run_for) : std::string());
  the_agent.start();
  if (stop_asked) the_agent.stop();  // asked while starting
  systemd.ready(status_line(the_agent, outputs));
  systemd.start_watchdog();
  systemd.refresh_status(std::chrono::seconds(10), [&] { return status_line(the_agent, outputs); });
  bool ok = loop.run();
  systemd.stopping();
  if (!ok) {
    // The loop's barrier: whatever failed, what was measured is written before the exit.
    spdlog::critical("{}; flushing and exiting", loop.error());
    the_agent.flush_now();
  }
  outputs.flush();
  // The final counts, served while the outputs drain (the timer goes on).
  if (metrics) metrics->publish();
  if (ok && !outputs.drained()) {
    // A little time for the collectors to take what is left; a second
    // SIGTERM ends it at once.
    spdlog::info("waiting up to {} for the outputs to deliver", format_duration(kDrainTimeout));
    const SteadyTime deadline = clock.now() + kDrainTimeout;
    std::function<void()> check = [&] {
      if (outputs.drained() || clock.now() >= deadline) loop.stop();
      else loop.after(std::chrono::milliseconds(50), check);
    };
    loop.after(std::chrono::milliseconds(50), check);
    if (!stop_asked_twice) {
      loop.resume();
      ok = loop.run();
    }
  }
  log_engine_stats(engine);
  log_send_thread_stats(stack.wire);
  log_agent_stats(the_agent);
  log_output_stats(outputs);
  spdlog::info("stopped: {} records written", the_agent.stats().records);
  if (const std::uint64_t lost = outputs.records_at_risk(); lost > 0) {
    spdlog::error("{} records were not delivered and are lost (no agent.state_dir to spool them on disk)", lost);
    return kExitFailure;
  }
  return ok ? kExitOk : kExitSoftware;
}

}  // namespace outpost
