// The spool: class order, acks that survive a restart, replay after a kill,
// torn tails and damaged bytes skipped, eviction probe-first under the size
// limit, quarantine, memory-only mode, a disk that refuses writes. Each test
// works in a fresh temporary directory.

// The library is the compiled spdlog: use its logger registry, not a header-only copy.
#define SPDLOG_COMPILED_LIB
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "spool.hpp"

namespace fs = std::filesystem;
using outpost::Batch;
using outpost::RecordClass;
using outpost::Spool;
using outpost::SpoolOptions;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string templ = "/tmp/outpost-spool-XXXXXX";
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Replaces the default logger while alive, keeping what is logged.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096)), previous_(spdlog::default_logger()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink_));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::vector<std::string> lines_with(const std::string& needle) const {
    std::vector<std::string> out;
    for (const std::string& l : sink_->last_formatted()) {
      if (l.find(needle) != std::string::npos) out.push_back(l);
    }
    return out;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

Batch make_batch(const std::string& id, RecordClass cls, std::string payload = "", std::uint32_t records = 3) {
  Batch b;
  b.id = id;
  b.cls = cls;
  b.records = records;
  b.payload = payload.empty() ? "payload of " + id + "\n" : std::move(payload);
  b.created = outpost::WallTime(std::chrono::seconds(1700000000) + std::chrono::nanoseconds(id.size()));
  return b;
}

std::uint64_t entry_size(const Batch& b) { return 32 + b.id.size() + b.payload.size(); }

// Sends everything: the ids in the order next() gives them, each delivered.
std::vector<std::string> drain(Spool& spool) {
  std::vector<std::string> ids;
  while (const Batch* b = spool.next()) {
    ids.push_back(b->id);
    spool.delivered(b->id);
    REQUIRE(ids.size() < 1000000);
  }
  return ids;
}

std::vector<fs::path> files(const std::string& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ext) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

long max_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

constexpr std::uint64_t kBig = 1ull << 30;

}  // namespace

TEST_CASE("spool: a bad length field is skipped without a big allocation", "[spool]") {
  TempDir dir;
  { Spool spool(dir.str(), kBig); }
  // Entries whose header claims a 60 MiB payload (under the cap, past the end
  // of the file), a 4 GiB one (over the cap) and a 64 KiB id.
  auto header = [](std::uint16_t id_len, std::uint32_t payload_len) {
    std::string h(32, '\0');
    h.replace(0, 4, "OPSB");
    h[4] = 1;
    h[5] = 0;
    h[6] = static_cast<char>(id_len);
    h[7] = static_cast<char>(id_len >> 8);
    for (int i = 0; i < 4; ++i) h[12 + i] = static_cast<char>(payload_len >> (8 * i));
    return h;
  };
  write_file(dir.sub("probe/0000000000000001.seg"), header(5, 60u << 20) + "abcde" + std::string(100, 'x'));
  write_file(dir.sub("probe/0000000000000002.seg"), header(5, 0xffffffffu) + "abcde" + std::string(100, 'x'));
  write_file(dir.sub("probe/0000000000000003.seg"), header(0xffff, 10) + std::string(200, 'y'));
  const long rss_before = max_rss_kib();
  LogCapture log;
  Spool spool(dir.str(), kBig);
  CHECK(max_rss_kib() - rss_before < 16 * 1024);
  CHECK(spool.pending() == 0);
  CHECK(spool.stats().corrupt == 3);
  CHECK(spool.stats().skipped_bytes == 137 + 137 + 232);
  CHECK(log.lines_with("impossible payload length 4294967295").size() == 1);
  CHECK(log.lines_with("impossible id length 65535").size() == 1);
  CHECK(log.lines_with("runs past the end of the file").size() == 1);
  // The damaged files are gone (nothing in them was worth keeping).
  CHECK(files(dir.sub("probe"), ".seg").empty());
}

TEST_CASE("spool: events first, then series, then probes, oldest first in each", "[spool]") {
  TempDir dir;
  Spool spool(dir.str(), kBig);
  CHECK(spool.next() == nullptr);
  spool.append(make_batch("p1", RecordClass::probe, "probe one", 10));
  spool.append(make_batch("s1", RecordClass::series));
  spool.append(make_batch("e1", RecordClass::event));
  spool.append(make_batch("p2", RecordClass::probe));
  spool.append(make_batch("e2", RecordClass::event));
  CHECK(spool.pending() == 5);
  CHECK(spool.pending_records() == 22);
  CHECK(spool.stats().appended == 5);

  const Batch* first = spool.next();
  REQUIRE(first != nullptr);
  CHECK(first->id == "e1");
  CHECK(first->cls == RecordClass::event);
  CHECK(first->payload == "payload of e1\n");
  // Asking again without an ack gives the same batch.
  CHECK(spool.next()->id == "e1");
  spool.delivered("e1");
  spool.delivered("no-such-batch");
  CHECK(spool.stats().delivered == 1);

  std::vector<std::string> order;
  const Batch* b;
  while ((b = spool.next()) != nullptr) {
    order.push_back(b->id);
    if (b->id == "p1") {
      CHECK(b->payload == "probe one");
      CHECK(b->records == 10);
      CHECK(b->created == make_batch("p1", RecordClass::probe).created);
    }
    spool.delivered(b->id);
  }
  CHECK(order == std::vector<std::string>{"e2", "s1", "p1", "p2"});
  CHECK(spool.pending() == 0);
  CHECK(spool.pending_records() == 0);
  CHECK(spool.bytes() == 0);
  CHECK(spool.stats().delivered == 5);
  // Segments whose batches were all delivered are deleted.
  for (const char* cls : {"probe", "series", "event"}) {
    CHECK(files(dir.sub(cls), ".seg").empty());
    CHECK(files(dir.sub(cls), ".ack").empty());
  }
}

TEST_CASE("spool: after a restart, unacknowledged batches come back and acknowledged ones do not", "[spool]") {
  TempDir dir;
  std::uint64_t bytes_before = 0;
  {
    Spool spool(dir.str(), kBig);
    for (int i = 0; i < 6; ++i) spool.append(make_batch("p" + std::to_string(i), RecordClass::probe));
    spool.append(make_batch("e0", RecordClass::event));
    spool.delivered("p1");  // out of order: an ack in the middle of a segment
    spool.delivered("p4");
    spool.delivered("e0");
    bytes_before = spool.bytes();
    // Destroyed with nothing written at close: as after a crash.
  }
  Spool spool(dir.str(), kBig);
  CHECK(spool.stats().replayed == 4);
  CHECK(spool.stats().corrupt == 0);
  CHECK(spool.pending_records() == 12);
  CHECK(spool.bytes() == bytes_before);
  CHECK(drain(spool) == std::vector<std::string>{"p0", "p2", "p3", "p5"});
}

TEST_CASE("spool: batches survive a kill -9 of the process that wrote them", "[spool]") {
  TempDir dir;
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      Spool spool(dir.str(), kBig);
      for (int i = 0; i < 50; ++i) {
        spool.append(make_batch("s" + std::to_string(i), RecordClass::series));
        if (i % 2 == 0) spool.delivered("s" + std::to_string(i));
      }
      spool.append(make_batch("e-last", RecordClass::event));
    } catch (...) {
      _exit(2);
    }
    // Never reached when the spool's files are open: killed with them.
    kill(getpid(), SIGKILL);
    _exit(3);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);

  Spool spool(dir.str(), kBig);
  CHECK(spool.stats().replayed == 26);
  std::vector<std::string> expected{"e-last"};
  for (int i = 1; i < 50; i += 2) expected.push_back("s" + std::to_string(i));
  CHECK(drain(spool) == expected);
}

TEST_CASE("spool: a torn tail is reported, counted, truncated, and later appends read back", "[spool]") {
  TempDir dir;
  std::vector<Batch> batches;
  for (int i = 0; i < 5; ++i) batches.push_back(make_batch("t" + std::to_string(i), RecordClass::series));
  {
    Spool spool(dir.str(), kBig);
    for (const Batch& b : batches) spool.append(b);
  }
  const auto segs = files(dir.sub("series"), ".seg");
  REQUIRE(segs.size() == 1);
  const std::uint64_t full = fs::file_size(segs[0]);
  // A crash in the middle of writing the last entry: 10 of its bytes made it.
  const std::uint64_t last_offset = full - entry_size(batches.back());
  fs::resize_file(segs[0], last_offset + 10);

  {
    LogCapture log;
    Spool spool(dir.str(), kBig);
    CHECK(spool.stats().replayed == 4);
    CHECK(spool.stats().corrupt == 1);
    CHECK(spool.stats().skipped_bytes == 10);
    const auto lines = log.lines_with("torn tail at offset " + std::to_string(last_offset));
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find(segs[0].string()) != std::string::npos);
    CHECK(fs::file_size(segs[0]) == last_offset);
    spool.append(make_batch("after-1", RecordClass::series));
    spool.append(make_batch("after-2", RecordClass::series));
  }
  // Later appends went to a segment of their own.
  CHECK(files(dir.sub("series"), ".seg").size() == 2);
  CHECK(fs::file_size(segs[0]) == last_offset);
  Spool spool(dir.str(), kBig);
  CHECK(spool.stats().corrupt == 0);
  CHECK(drain(spool) == std::vector<std::string>{"t0", "t1", "t2", "t3", "after-1", "after-2"});
}

TEST_CASE("spool: a damaged byte in an entry's payload skips that entry only", "[spool]") {
  TempDir dir;
  std::vector<Batch> batches;
  for (int i = 0; i < 5; ++i) {
    batches.push_back(make_batch("d" + std::to_string(i), RecordClass::probe, std::string(200, 'a' + i)));
  }
  {
    Spool spool(dir.str(), kBig);
    for (const Batch& b : batches) spool.append(b);
  }
  const auto seg = files(dir.sub("probe"), ".seg").at(0);
  std::string bytes = read_file(seg);
  const std::uint64_t third = 2 * entry_size(batches[0]);
  bytes[third + 32 + 2 + 100] ^= 0x40;  // a byte in the middle of d2's payload
  write_file(seg, bytes);

  {
    LogCapture log;
    Spool spool(dir.str(), kBig);
    CHECK(spool.stats().corrupt == 1);
    CHECK(spool.stats().skipped_bytes == entry_size(batches[2]));
    const auto lines = log.lines_with("damaged entry at offset " + std::to_string(third) + " (checksum mismatch)");
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find(seg.string()) != std::string::npos);
    spool.append(make_batch("d5", RecordClass::probe));
    const Batch* b = spool.next();
    REQUIRE(b);
    CHECK(b->payload == std::string(200, 'a'));
    spool.delivered("d0");
  }
  // The damaged entry stays where it was (counted again), the rest is whole.
  Spool spool(dir.str(), kBig);
  CHECK(spool.stats().corrupt == 1);
  CHECK(drain(spool) == std::vector<std::string>{"d1", "d3", "d4", "d5"});
}

TEST_CASE("spool: a damaged ack record means its batch is sent again", "[spool]") {
  TempDir dir;
  {
    Spool spool(dir.str(), kBig);
    for (int i = 0; i < 3; ++i) spool.append(make_batch("a" + std::to_string(i), RecordClass::event));
    spool.delivered("a0");
    spool.delivered("a1");
  }
  const auto ack = files(dir.sub("event"), ".ack").at(0);
  std::string bytes = read_file(ack);
  REQUIRE(bytes.size() == 32);
  bytes[5] ^= 1;  // the first ack's offset
  write_file(ack, bytes + "OPA");  // and a torn record after the last one
  Spool spool(dir.str(), kBig);
  CHECK(spool.stats().corrupt == 2);
  CHECK(drain(spool) == std::vector<std::string>{"a0", "a2"});
}

TEST_CASE("spool: segments roll over and are deleted once all their batches are acknowledged", "[spool]") {
  TempDir dir;
  SpoolOptions options;
  options.segment_bytes = 1000;
  Spool spool(dir.str(), kBig, nullptr, options);
  for (int i = 0; i < 40; ++i) spool.append(make_batch("r" + std::to_string(i), RecordClass::probe, std::string(100, 'r')));
  const auto segs = files(dir.sub("probe"), ".seg");
  CHECK(segs.size() >= 5);
  for (const auto& s : segs) CHECK(fs::file_size(s) <= 1000);
  for (int i = 0; i < 20; ++i) spool.delivered("r" + std::to_string(i));
  CHECK(files(dir.sub("probe"), ".seg").size() < segs.size());
  CHECK(drain(spool).size() == 20);
  CHECK(files(dir.sub("probe"), ".seg").empty());
  CHECK(spool.bytes() == 0);
}

TEST_CASE("spool: when full, probe data goes first, then series, events last", "[spool]") {
  TempDir dir;
  SpoolOptions options;
  options.segment_bytes = 600;  // four 132-byte entries a segment
  const std::uint64_t limit = 24 * 132;
  Spool spool(dir.str(), limit, nullptr, options);
  auto add = [&](const std::string& id, RecordClass cls) {
    spool.append(make_batch(id, cls, std::string(100 - id.size(), '.'), 2));
    CHECK(spool.bytes() <= limit);
  };
  for (int i = 0; i < 8; ++i) add("p" + std::to_string(i), RecordClass::probe);
  for (int i = 0; i < 8; ++i) add("s" + std::to_string(i), RecordClass::series);
  for (int i = 0; i < 8; ++i) add("e" + std::to_string(i), RecordClass::event);
  CHECK(spool.bytes() == limit);
  CHECK(spool.pending() == 24);
  const auto& evicted = spool.stats().evicted_batches;
  CHECK(evicted[0] + evicted[1] + evicted[2] == 0);

  // More events: first the probes go, oldest segment first ...
  int events = 8;
  while (evicted[0] < 8) {
    add("e" + std::to_string(events++), RecordClass::event);
    CHECK(evicted[1] == 0);
    CHECK(evicted[2] == 0);
    REQUIRE(events < 100);
  }
  CHECK(evicted[0] == 8);
  // ... then the series ...
  while (evicted[1] < 8) {
    add("e" + std::to_string(events++), RecordClass::event);
    CHECK(evicted[0] == 8);
    CHECK(evicted[2] == 0);
    REQUIRE(events < 100);
  }
  // ... and the oldest events last.
  for (int i = 0; i < 10; ++i) add("e" + std::to_string(events++), RecordClass::event);
  CHECK(evicted[2] > 0);
  CHECK(spool.stats().evicted_records == 2 * (evicted[0] + evicted[1] + evicted[2]));
  const auto left = drain(spool);
  REQUIRE(!left.empty());
  CHECK(left.back() == "e" + std::to_string(events - 1));
  CHECK(left.size() + evicted[2] == static_cast<std::size_t>(events));
  for (std::size_t i = 1; i < left.size(); ++i) {
    CHECK(std::stoi(left[i].substr(1)) == std::stoi(left[i - 1].substr(1)) + 1);
  }

  // A batch bigger than the whole spool is refused and counted.
  spool.append(make_batch("huge", RecordClass::event, std::string(limit, 'h')));
  CHECK(spool.pending() == 0);
  CHECK(evicted[2] == events - left.size() + 1);
}

TEST_CASE("spool: a quarantined batch is kept aside and never sent again", "[spool]") {
  TempDir dir;
  {
    Spool spool(dir.str(), kBig);
    spool.append(make_batch("q0", RecordClass::series));
    spool.append(make_batch("q1", RecordClass::series, "the refused payload"));
    spool.append(make_batch("q2", RecordClass::series));
    CHECK(spool.next()->id == "q0");
    spool.quarantine("q1", "HTTP 400: out of bounds");
    spool.quarantine("unknown", "ignored");
    CHECK(spool.stats().quarantined == 1);
    CHECK(spool.pending() == 2);
  }
  const std::string kept = read_file(dir.sub("quarantine.seg"));
  CHECK(kept.find("HTTP 400: out of bounds") != std::string::npos);
  CHECK(kept.find("the refused payload") != std::string::npos);
  CHECK(kept.find("q1") != std::string::npos);
  Spool spool(dir.str(), kBig);
  CHECK(drain(spool) == std::vector<std::string>{"q0", "q2"});
}

TEST_CASE("spool: memory only when no directory is given", "[spool]") {
  {
    Spool spool("", 2000);
    spool.append(make_batch("m0", RecordClass::probe, std::string(500, 'm')));
    spool.append(make_batch("m1", RecordClass::event));
    CHECK(spool.bytes() == entry_size(make_batch("m0", RecordClass::probe, std::string(500, 'm'))) +
                               entry_size(make_batch("m1", RecordClass::event)));
    const Batch* b = spool.next();
    REQUIRE(b);
    CHECK(b->id == "m1");
    // Over the limit: the probe batch goes.
    for (int i = 2; i < 6; ++i) spool.append(make_batch("m" + std::to_string(i), RecordClass::series, std::string(400, 's')));
    CHECK(spool.bytes() <= 2000);
    CHECK(spool.stats().evicted_batches[0] == 1);
    spool.quarantine("m2", "refused");
    CHECK(drain(spool) == std::vector<std::string>{"m1", "m3", "m4", "m5"});
  }
  Spool again("", 2000);
  CHECK(again.pending() == 0);
}

TEST_CASE("spool: a disk that refuses writes: batches kept in memory, in order, warned about once", "[spool]") {
  TempDir dir;
  enum class Disk { ok, full, half_then_full } disk = Disk::ok;
  SpoolOptions options;
  options.write = [&](int fd, const void* data, std::size_t len) -> ssize_t {
    if (disk == Disk::half_then_full) {
      disk = Disk::full;
      return ::write(fd, data, len / 2);
    }
    if (disk == Disk::full) {
      errno = ENOSPC;
      return -1;
    }
    return ::write(fd, data, len);
  };
  LogCapture log;
  {
    Spool spool(dir.str(), kBig, nullptr, options);
    spool.append(make_batch("w0", RecordClass::probe));
    spool.append(make_batch("w1", RecordClass::probe));
    disk = Disk::full;
    for (int i = 2; i < 6; ++i) spool.append(make_batch("w" + std::to_string(i), RecordClass::probe));
    CHECK(spool.stats().write_errors == 4);
    // Half an entry written, then the disk is full: the half is taken back.
    disk = Disk::half_then_full;
    spool.append(make_batch("w6", RecordClass::probe));
    CHECK(spool.stats().write_errors == 5);
    CHECK(log.lines_with("No space left on device").size() == 1);
    disk = Disk::ok;
    spool.append(make_batch("w7", RecordClass::probe));
    CHECK(spool.stats().write_errors == 5);
    CHECK(spool.pending() == 8);
    CHECK(spool.bytes() > 0);

    // In order, memory and disk alike.
    const Batch* b = spool.next();
    REQUIRE(b);
    CHECK(b->id == "w0");
    spool.delivered("w0");
    b = spool.next();
    REQUIRE(b);
    CHECK(b->id == "w1");
    spool.delivered("w1");
    b = spool.next();
    REQUIRE(b);
    CHECK(b->id == "w2");
    CHECK(b->payload == "payload of w2\n");
    // Destroyed before the rest is delivered: only what reached the disk stays.
  }
  Spool spool(dir.str(), kBig);
  CHECK(spool.stats().corrupt == 0);  // the half-written entry was taken back
  CHECK(drain(spool) == std::vector<std::string>{"w7"});
}

TEST_CASE("spool: a directory that cannot be used is an error naming it", "[spool]") {
  TempDir dir;
  write_file(dir.sub("plain-file"), "x");
  const std::string bad = dir.sub("plain-file") + "/spool";
  try {
    Spool spool(bad, kBig);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find(bad) != std::string::npos);
  }
  // Created with its parents; and only one spool at a time in a directory.
  Spool first(dir.sub("a/b/c"), kBig);
  CHECK(fs::is_directory(dir.sub("a/b/c/event")));
  CHECK_THROWS_WITH(Spool(dir.sub("a/b/c"), kBig), Catch::Contains("in use"));
}

TEST_CASE("spool: the pointer next() gave survives an append that evicts its batch", "[spool]") {
  TempDir dir;
  for (const std::string& where : {dir.str(), std::string()}) {
    Spool spool(where, 1000);
    spool.append(make_batch("old", RecordClass::probe, std::string(400, 'o')));
    const Batch* b = spool.next();
    REQUIRE(b);
    spool.append(make_batch("new", RecordClass::event, std::string(800, 'n')));
    CHECK(spool.stats().evicted_batches[0] == 1);
    CHECK(b->payload == std::string(400, 'o'));
    spool.delivered("old");  // evicted meanwhile: ignored
    CHECK(spool.stats().delivered == 0);
    CHECK(drain(spool) == std::vector<std::string>{"new"});
  }
}

TEST_CASE("spool: 100,000 small batches (rates printed)", "[spool][bench]") {
  TempDir dir;
  constexpr int kBatches = 100000;
  const std::string payload(100, 'b');
  using Clock = std::chrono::steady_clock;
  auto rate = [](int n, Clock::duration d) {
    return n / std::max(1e-9, std::chrono::duration<double>(d).count());
  };
  Clock::time_point t0 = Clock::now();
  {
    Spool spool(dir.str(), kBig);
    for (int i = 0; i < kBatches; ++i) {
      spool.append(make_batch("bench-" + std::to_string(i), static_cast<RecordClass>(i % 3), payload, 1));
    }
    CHECK(spool.pending() == kBatches);
  }
  const auto append_time = Clock::now() - t0;
  t0 = Clock::now();
  Spool spool(dir.str(), kBig);
  const auto replay_time = Clock::now() - t0;
  CHECK(spool.stats().replayed == kBatches);
  t0 = Clock::now();
  const std::size_t sent = drain(spool).size();
  const auto drain_time = Clock::now() - t0;
  CHECK(sent == kBatches);
  std::printf("spool bench: %d batches of %zu bytes: append %.0f/s, replay %.0f/s, next+delivered %.0f/s\n", kBatches,
              payload.size(), rate(kBatches, append_time), rate(kBatches, replay_time), rate(kBatches, drain_time));
}
