// bench_outputs: how many records per second one output sustains to its real
// server on loopback, at what CPU and memory; and the spool's own rate on disk.
// Leaves to others: starting the servers and tabulating the figures (scripts/bench).
//
//   bench_outputs --kind KIND --url URL [--records N] [--state-dir DIR]
//                 [--batch-bytes B] [--mix series|probe|all] [--deadline S]
//   bench_outputs --kind spool [--records N] [--state-dir DIR] [--batch-records R]
//
// KIND: file (URL is a path), http, influx, prometheus_remote_write, nats.
// The records are written 1,000 at a time, each chunk followed by one turn of
// the loop that does not wait, so the transport is pumped while the spool
// buffers; then the output is flushed and the loop turns until it is drained
// (or the deadline passes). One line of key=value figures goes to stdout; the
// exit code is 1 when fewer records were delivered than the output took in,
// 2 on bad arguments.
//
// Series records: ceil(N / 50) targets, each with windows of 60 s one after
// the other ending about 6 minutes ago, so that every series' samples move
// forward in time and stay within the last hour (what Prometheus accepts).
// Target names carry the process id, so a second run into the same server
// makes new series instead of going back in time on the old ones.

#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "event_loop.hpp"
#include "json_lines.hpp"
#include "loop_reactor.hpp"
#include "outputs.hpp"
#include "records.hpp"
#include "spool.hpp"
#include "syncer.hpp"

namespace outpost {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

constexpr int kChunk = 1000;           // records written between two turns of the loop
constexpr int kWindowsPerTarget = 50;  // series windows per target (50 minutes of them)

struct Options {
  std::string kind;
  std::string url;
  std::uint64_t records = 200000;
  std::string state_dir;
  std::uint64_t batch_bytes = 1 << 20;
  std::string mix = "series";
  int deadline_s = 600;
  int batch_records = 100;  // spool: records per batch
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_outputs: %s\n"
               "usage: bench_outputs --kind file|http|influx|prometheus_remote_write|nats --url URL\n"
               "                     [--records N] [--state-dir DIR] [--batch-bytes B] [--mix series|probe|all]\n"
               "                     [--deadline S]\n"
               "       bench_outputs --kind spool [--records N] [--state-dir DIR] [--batch-records R]\n",
               why.c_str());
  std::exit(2);
}

std::uint64_t number(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v == 0) usage(flag + " wants a positive number, not '" + text + "'");
  return v;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") usage("how to call it");
    if (i + 1 >= argc) usage(flag + " wants a value");
    const std::string value = argv[++i];
    if (flag == "--kind") o.kind = value;
    else if (flag == "--url") o.url = value;
    else if (flag == "--records") o.records = number(flag, value);
    else if (flag == "--state-dir") o.state_dir = value;
    else if (flag == "--batch-bytes") o.batch_bytes = number(flag, value);
    else if (flag == "--mix") o.mix = value;
    else if (flag == "--deadline") o.deadline_s = static_cast<int>(number(flag, value));
    else if (flag == "--batch-records") o.batch_records = static_cast<int>(number(flag, value));
    else usage("unknown option " + flag);
  }
  if (o.kind.empty()) usage("--kind is needed");
  if (o.kind != "spool" && o.url.empty()) usage("--url is needed");
  if (o.mix != "series" && o.mix != "probe" && o.mix != "all") usage("--mix wants series, probe or all");
  return o;
}

// CPU seconds (user + system) of the whole process, its threads included, and its peak RSS.
struct Usage {
  double cpu_s = 0;
  double peak_rss_mb = 0;
};
Usage usage_now() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return {secs(ru.ru_utime) + secs(ru.ru_stime), static_cast<double>(ru.ru_maxrss) / 1024.0};
}

double seconds_since(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }

// The synthetic records: record i is about target i % targets and window
// i / targets, so every series moves forward in time as i grows.
class RecordMaker {
 public:
  RecordMaker(std::uint64_t records, WallTime now) {
    targets_ = std::max<std::uint64_t>(1, (records + kWindowsPerTarget - 1) / kWindowsPerTarget);
    const auto minute = std::chrono::duration_cast<Duration>(60s);
    const WallTime floor_minute = WallTime((now.time_since_epoch() / minute) * minute);
    base_ = floor_minute - std::chrono::duration_cast<Duration>(55min);
  }

  Record make(std::uint64_t i, const std::string& mix) const {
    if (mix == "series") return series(i);
    if (mix == "probe") return probe(i);
    if (i % 1000 == 999) return event(i);
    if (i % 2) return probe(i);
    return series(i);
  }

  SeriesRecord series(std::uint64_t i) const {
    SeriesWindow w;
    w.key = key(i);
    w.start = window_start(i);
    w.length = 60s;
    w.sent = 60;
    w.timeouts = i % 7 == 0 ? 1 : 0;
    w.received = w.sent - w.timeouts;
    const double base = 5.0 + static_cast<double>(i % 97) / 10.0;
    w.rtt = RttSummary{base, base * 1.1, base * 1.05, base * 1.6, base * 2.2, base * 0.15};
    return series_record(kAgent, w);
  }

  ProbeRecord probe(std::uint64_t i) const {
    const SeriesKey k = key(i);
    ProbeResult r;
    r.status = i % 50 == 0 ? ProbeStatus::timeout : ProbeStatus::reply;
    r.target = IpAddress::v4(0x7f000001u + static_cast<std::uint32_t>(target_of(i) % 250));
    r.sent = window_start(i) + std::chrono::seconds(i % 60);
    r.sent_kernel_stamp = true;
    r.sequence = static_cast<std::uint16_t>(i);
    if (r.status == ProbeStatus::reply) {
      r.rtt = std::chrono::microseconds(5000 + static_cast<int>(i % 9000));
      r.reply_from = r.target;
      r.reply_ttl = 57;
      r.icmp_type = 0;
      r.icmp_code = 0;
    }
    return probe_record({kAgent, k.target, k.group, k.method, k.port, 4}, r);
  }

  EventRecord event(std::uint64_t i) const {
    const SeriesKey k = key(i);
    DetectorEvent e;
    e.kind = EventKind::target_down;
    e.target = k.target;
    e.group = k.group;
    e.af = 4;
    e.start = window_start(i);
    e.last_ok = e.start - std::chrono::duration_cast<Duration>(1s);
    return event_record(kAgent, e, nullptr, e.start + std::chrono::duration_cast<Duration>(3s));
  }

  std::uint64_t targets() const { return targets_; }
  static constexpr const char* kAgent = "bench";

 private:
  std::uint64_t target_of(std::uint64_t i) const { return i % targets_; }
  WallTime window_start(std::uint64_t i) const {
    return base_ + std::chrono::duration_cast<Duration>(std::chrono::minutes(i / targets_));
  }
  SeriesKey key(std::uint64_t i) const {
    const std::uint64_t t = target_of(i);
    char name[48];
    std::snprintf(name, sizeof name, "r%ld-t%06llu", static_cast<long>(getpid()), static_cast<unsigned long long>(t));
    SeriesKey k;
    k.target = name;
    k.group = "g" + std::to_string(t % 16);
    static const char* const kMethods[] = {"icmp", "tcp", "dns"};
    k.method = kMethods[t % 3];
    k.port = k.method == std::string("tcp") ? 443 : 0;
    k.af = 4;
    return k;
  }

  std::uint64_t targets_ = 1;
  WallTime base_{};
};

OutputSpec spec_for(const Options& o) {
  OutputSpec spec;
  if (o.kind == "file") spec.kind = OutputSpec::Kind::file;
  else if (o.kind == "http") spec.kind = OutputSpec::Kind::http;
  else if (o.kind == "influx") spec.kind = OutputSpec::Kind::influx;
  else if (o.kind == "prometheus_remote_write") spec.kind = OutputSpec::Kind::prometheus_remote_write;
  else if (o.kind == "nats") spec.kind = OutputSpec::Kind::nats;
  else usage("unknown kind '" + o.kind + "'");
  spec.target = o.url;
  spec.name = "bench-" + o.kind;
  spec.batch_bytes = o.batch_bytes;
  // Room for every record: the bench measures delivery, not eviction.
  spec.spool_bytes = 64ull << 30;
  spec.stream = "OUTPOST_BENCH";
  spec.subject = "outpostbench";
  return spec;
}

std::string temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "outpost-bench.XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("cannot make a temporary directory");
  return pattern;
}

// One output to its server: the figures, or exit 1 when records went missing.
int bench_output(const Options& o, const std::string& state_dir) {
  const OutputSpec spec = spec_for(o);
  SystemClock clock;
  EventLoop loop(clock);
  LoopReactor reactor(loop);
  Outputs outputs;
  outputs.attach(reactor, RecordMaker::kAgent, state_dir);
  if (std::string why = outputs.apply({spec}); !why.empty()) {
    std::fprintf(stderr, "bench_outputs: cannot make the output: %s\n", why.c_str());
    return 2;
  }
  const Output& output = *outputs.outputs().front();
  const RecordMaker maker(o.records, clock.wall());

  const Usage u0 = usage_now();
  const auto t0 = Steady::now();
  for (std::uint64_t i = 0; i < o.records;) {
    const std::uint64_t end = std::min<std::uint64_t>(o.records, i + kChunk);
    for (; i < end; ++i) outputs.write(maker.make(i, o.mix));
    if (!loop.run_once(false)) {
      std::fprintf(stderr, "bench_outputs: the loop failed: %s\n", loop.error().c_str());
      return 1;
    }
  }
  const double write_s = seconds_since(t0);
  outputs.flush();
  // A tick bounds each wait, so the deadline is seen even when nothing happens.
  const auto deadline = t0 + std::chrono::seconds(o.deadline_s);
  std::function<void()> tick = [&] { loop.after(100ms, tick); };
  tick();
  while (!outputs.drained() && Steady::now() < deadline) {
    if (!loop.run_once(true)) {
      std::fprintf(stderr, "bench_outputs: the loop failed: %s\n", loop.error().c_str());
      return 1;
    }
  }
  const double seconds = seconds_since(t0);
  const Usage u1 = usage_now();
  const double cpu_s = u1.cpu_s - u0.cpu_s;
  const OutputStats& st = output.stats();
  const bool drained = outputs.drained();

  std::printf(
      "kind=%s mix=%s records=%llu taken=%llu seconds=%.3f write_s=%.3f records_per_s=%.0f cpu_s=%.3f "
      "cpu_s_per_10k=%.4f peak_rss_mb=%.1f delivered_records=%llu batches=%llu failures=%llu rejected_records=%llu "
      "evicted_records=%llu targets=%llu drained=%d\n",
      o.kind.c_str(), o.mix.c_str(), static_cast<unsigned long long>(o.records),
      static_cast<unsigned long long>(st.records), seconds, write_s, static_cast<double>(o.records) / seconds, cpu_s,
      cpu_s * 10000.0 / static_cast<double>(o.records), u1.peak_rss_mb,
      static_cast<unsigned long long>(st.delivered_records), static_cast<unsigned long long>(st.delivered),
      static_cast<unsigned long long>(st.failures), static_cast<unsigned long long>(st.rejected_records),
      static_cast<unsigned long long>(output.spool().stats().evicted_records),
      static_cast<unsigned long long>(maker.targets()), drained ? 1 : 0);
  std::fflush(stdout);

  // Every record the output took in must have reached the server; only remote
  // write may take fewer than were written (it does not carry probe records).
  bool ok = drained && st.delivered_records == st.records;
  if (spec.kind != OutputSpec::Kind::prometheus_remote_write) ok = ok && st.records == o.records;
  if (!ok) {
    std::fprintf(stderr, "bench_outputs: %s: %llu of %llu records delivered (%llu taken in)%s\n", o.kind.c_str(),
                 static_cast<unsigned long long>(st.delivered_records), static_cast<unsigned long long>(o.records),
                 static_cast<unsigned long long>(st.records), drained ? "" : "; not drained by the deadline");
    for (const std::string& line : outputs.stats_lines()) std::fprintf(stderr, "  %s\n", line.c_str());
    return 1;
  }
  return 0;
}

// The spool alone: N records in batches of R series records (JSON Lines)
// appended to disk, synced, replayed by a fresh Spool over the same
// directory, then read back and acknowledged one by one.
int bench_spool(const Options& o, const std::string& state_dir) {
  const RecordMaker maker(o.records, SystemClock().wall());
  const std::uint64_t per_batch = static_cast<std::uint64_t>(o.batch_records);
  const std::uint64_t batches = (o.records + per_batch - 1) / per_batch;
  // The payloads are encoded before the clock starts (encoding is not the
  // spool's work); 64 distinct ones are reused in turn.
  std::vector<std::string> payloads;
  for (std::uint64_t b = 0; b < std::min<std::uint64_t>(64, batches); ++b) {
    std::string p;
    for (std::uint64_t r = 0; r < per_batch; ++r) p += to_json_line(maker.series(b * per_batch + r));
    payloads.push_back(std::move(p));
  }
  const std::string dir = state_dir + "/spool/bench";
  std::uint64_t bytes = 0;
  std::uint64_t records = 0;
  auto phase = [](auto&& body, double& wall, double& cpu) {
    const Usage u0 = usage_now();
    const auto t0 = Steady::now();
    body();
    wall = seconds_since(t0);
    cpu = usage_now().cpu_s - u0.cpu_s;
  };
  double append_s = 0, append_cpu = 0, replay_s = 0, replay_cpu = 0, read_s = 0, read_cpu = 0;
  std::uint64_t replayed = 0, delivered_batches = 0, delivered_records = 0, corrupt = 0;
  {
    Syncer syncer;
    Spool spool(dir, 64ull << 30, &syncer);
    phase(
        [&] {
          for (std::uint64_t b = 0; b < batches; ++b) {
            Batch batch;
            batch.id = "bench-" + std::to_string(b);
            batch.cls = RecordClass::series;
            batch.records = static_cast<std::uint32_t>(std::min(per_batch, o.records - b * per_batch));
            batch.payload = payloads[b % payloads.size()];
            batch.created = SystemClock().wall();
            bytes += batch.payload.size();
            records += batch.records;
            spool.append(std::move(batch));
          }
          spool.sync();
          syncer.drain();
        },
        append_s, append_cpu);
  }
  {
    std::unique_ptr<Spool> spool;
    phase([&] { spool = std::make_unique<Spool>(dir, 64ull << 30); }, replay_s, replay_cpu);
    replayed = spool->stats().replayed;
    phase(
        [&] {
          while (const Batch* b = spool->next()) {
            delivered_records += b->records;
            ++delivered_batches;
            spool->delivered(b->id);
          }
        },
        read_s, read_cpu);
    corrupt = spool->stats().corrupt;
  }
  const double seconds = append_s + replay_s + read_s;
  const double cpu_s = append_cpu + replay_cpu + read_cpu;
  const double rec = static_cast<double>(records);
  std::printf(
      "kind=spool records=%llu batches=%llu batch_records=%llu bytes=%llu seconds=%.3f records_per_s=%.0f "
      "append_s=%.3f append_batches_per_s=%.0f append_mb_per_s=%.1f append_records_per_s=%.0f "
      "replay_s=%.3f read_s=%.3f read_records_per_s=%.0f cpu_s=%.3f cpu_s_per_10k=%.4f "
      "append_cpu_s_per_10k=%.4f read_cpu_s_per_10k=%.4f peak_rss_mb=%.1f delivered_records=%llu failures=0 corrupt=%llu\n",
      static_cast<unsigned long long>(records), static_cast<unsigned long long>(batches),
      static_cast<unsigned long long>(per_batch), static_cast<unsigned long long>(bytes), seconds, rec / seconds,
      append_s, static_cast<double>(batches) / append_s, static_cast<double>(bytes) / 1e6 / append_s, rec / append_s,
      replay_s, read_s, rec / read_s, cpu_s, cpu_s * 1e4 / rec, append_cpu * 1e4 / rec, read_cpu * 1e4 / rec,
      usage_now().peak_rss_mb, static_cast<unsigned long long>(delivered_records),
      static_cast<unsigned long long>(corrupt));
  std::fflush(stdout);
  if (replayed != batches || delivered_batches != batches || delivered_records != records || corrupt != 0) {
    std::fprintf(stderr, "bench_outputs: spool: %llu batches appended, %llu replayed, %llu delivered, %llu corrupt\n",
                 static_cast<unsigned long long>(batches), static_cast<unsigned long long>(replayed),
                 static_cast<unsigned long long>(delivered_batches), static_cast<unsigned long long>(corrupt));
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace outpost

int main(int argc, char** argv) {
  const outpost::Options o = outpost::parse_options(argc, argv);
  auto logger = spdlog::stderr_color_mt("bench");
  logger->set_level(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  // A directory of its own unless one is given; removed at the end when made here.
  const bool own_dir = o.state_dir.empty();
  int rc = 1;
  try {
    const std::string dir = own_dir ? outpost::temp_dir() : o.state_dir;
    rc = o.kind == "spool" ? outpost::bench_spool(o, dir) : outpost::bench_output(o, dir);
    if (own_dir) std::filesystem::remove_all(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_outputs: %s\n", e.what());
    return 1;
  }
  return rc;
}
