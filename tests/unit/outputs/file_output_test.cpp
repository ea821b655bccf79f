// The durable JSON Lines file: whole lines, a torn tail ended at open, a
// write the file system refuses waiting in the spool until it has room, and
// a reopen by path after the file was moved away. Files live in a temporary
// directory; time is a fake clock.

#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fake_reactor.hpp"
#include "json_lines.hpp"
#include "output.hpp"
#include "outputs.hpp"

using nlohmann::json;
using outpost::test::FakeReactor;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string templ = "/tmp/outpost-unit-XXXXXX";
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

outpost::Record probe(int n, const std::string& error = {}) {
  outpost::ProbeResult r;
  r.status = error.empty() ? outpost::ProbeStatus::reply : outpost::ProbeStatus::error;
  r.error = error;
  r.sequence = static_cast<std::uint16_t>(n);
  r.sent = outpost::WallTime(std::chrono::seconds(1419264900 + n));
  return outpost::probe_record({"fra-1", "naenara", "kp", "icmp", 0, 4}, r);
}

outpost::Record group_down() {
  outpost::DetectorEvent e;
  e.kind = outpost::EventKind::group_down;
  e.group = "kp";
  e.start = outpost::WallTime(std::chrono::seconds(1419264900));
  outpost::Verdict v;
  v.where = outpost::Where::upstream;
  return outpost::event_record("fra-1", e, &v, e.start);
}

outpost::OutputSpec file_spec(const std::string& path) {
  outpost::OutputSpec spec;
  spec.kind = outpost::OutputSpec::Kind::file;
  spec.target = path;
  spec.name = "results";
  return spec;
}

std::unique_ptr<outpost::FileOutput> file_output(FakeReactor& reactor, const std::string& path,
                                                 const std::string& spool_dir = {}) {
  return std::make_unique<outpost::FileOutput>(reactor, file_spec(path),
                                               std::make_unique<outpost::Spool>(spool_dir, 1 << 20), nullptr);
}

// Files may grow to `bytes` at most while it lives (writes beyond fail with
// EFBIG, as a full disk fails with ENOSPC).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old_) == 0);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = old_;
    limit.rlim_cur = bytes;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &limit) == 0);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

}  // namespace

TEST_CASE("file output: one record per line, written at the flush interval", "[outputs]") {
  TempDir dir;
  FakeReactor reactor;
  const std::string path = dir.file("results.jsonl");
  auto out = file_output(reactor, path);
  const outpost::Record records[] = {probe(1), probe(2, "line one\nline two"), group_down()};
  for (const auto& r : records) out->write(r);
  CHECK(read_all(path).empty());  // not yet: lines go out together
  reactor.advance(std::chrono::seconds(1));
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(json::parse(lines[i]) == outpost::to_json(records[i]));
  CHECK(out->stats().delivered_records == 3);
  CHECK(out->drained());
}

TEST_CASE("file output: a burst of records goes to the file as it comes, whole lines and in order", "[outputs]") {
  // A window's close writes a series record per target and method at once:
  // the lines must not pile up in memory until the flush timer.
  TempDir dir;
  FakeReactor reactor;
  const std::string path = dir.file("results.jsonl");
  auto out = file_output(reactor, path);
  const std::size_t line = outpost::to_json_line(probe(0)).size();
  const int burst = static_cast<int>(3 * (std::size_t{1} << 20) / line);
  for (int i = 0; i < burst; ++i) out->write(probe(i));
  const auto early = read_lines(path);  // before any timer ran
  CHECK(early.size() * line >= 2 * (std::size_t{1} << 20));
  CHECK(early.size() < static_cast<std::size_t>(burst));  // the tail waits for the timer
  reactor.advance(std::chrono::seconds(1));
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == static_cast<std::size_t>(burst));
  for (int i = 0; i < burst; i += 997) CHECK(json::parse(lines[static_cast<std::size_t>(i)]).at("seq").get<int>() == (i & 0xffff));
  CHECK(out->stats().delivered_records == static_cast<std::uint64_t>(burst));
  CHECK(out->drained());
}

TEST_CASE("file output: a burst the file system refuses waits in the spool, in order", "[outputs]") {
  TempDir dir;
  FakeReactor reactor;
  const std::string path = dir.file("results.jsonl");
  auto out = std::make_unique<outpost::FileOutput>(
      reactor, file_spec(path), std::make_unique<outpost::Spool>(dir.file("spool"), 8 << 20), nullptr);
  const std::size_t line = outpost::to_json_line(probe(0)).size();
  const int burst = static_cast<int>(2 * (std::size_t{1} << 20) / line);
  {
    FileSizeLimit full(1000);
    for (int i = 0; i < burst; ++i) out->write(probe(i));
    CHECK(read_all(path).size() <= 1000);
    CHECK(out->stats().failures == 1);  // one eager attempt, not one per record
    reactor.advance(std::chrono::seconds(1));
    CHECK(out->spool().pending_records() > 0);
  }
  reactor.advance(std::chrono::seconds(1));
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == static_cast<std::size_t>(burst));
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (json::parse(lines[i]).at("seq").get<int>() != static_cast<int>(i & 0xffff)) FAIL("line " << i << " out of order");
  CHECK(out->drained());
}

TEST_CASE("file output: a torn last line left by a crash is ended, counted and never glued onto", "[outputs]") {
  TempDir dir;
  FakeReactor reactor;
  const std::string path = dir.file("results.jsonl");
  const std::string whole = outpost::to_json_line(probe(1));
  {
    std::ofstream f(path, std::ios::binary);
    f << whole << whole.substr(0, 25);  // the crash cut the second line short
  }
  auto out = file_output(reactor, path);
  CHECK(out->file().torn_tails() == 1);
  CHECK(out->file().torn_bytes() == 25);
  out->write(probe(3));
  out->flush();
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == whole.substr(0, whole.size() - 1));
  CHECK(lines[1] == whole.substr(0, 25));  // stays a malformed line of its own
  CHECK_THROWS(json::parse(lines[1]));
  CHECK(json::parse(lines[2]).at("seq") == 3);  // whole, on its own line

  // A clean file is left alone.
  auto again = file_output(reactor, path);
  CHECK(again->file().torn_tails() == 0);
}

TEST_CASE("file output: a symbolic link is refused (O_NOFOLLOW)", "[outputs]") {
  TempDir dir;
  FakeReactor reactor;
  const std::string target = dir.file("real.jsonl");
  const std::string link = dir.file("link.jsonl");
  std::ofstream(target).close();
  REQUIRE(symlink(target.c_str(), link.c_str()) == 0);
  try {
    file_output(reactor, link);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find(link) != std::string::npos);
    CHECK(std::string(e.what()).find("symbolic link") != std::string::npos);
  }
}

TEST_CASE("file output: a path that cannot be opened throws, naming it", "[outputs]") {
  TempDir dir;
  FakeReactor reactor;
  const std::string path = dir.file("no-such-dir/results.jsonl");
  CHECK_THROWS_WITH(file_output(reactor, path), Catch::Contains(path));
}

TEST_CASE("file output: when the file system refuses a write, the records wait in the spool and follow when it has room",
          "[outputs]") {
  TempDir dir;
  FakeReactor reactor;
  const std::string path = dir.file("results.jsonl");
  auto out = file_output(reactor, path, dir.file("spool"));
  out->write(probe(1));
  reactor.advance(std::chrono::seconds(1));
  const std::size_t first = read_all(path).size();
  REQUIRE(first > 0);
  {
    FileSizeLimit full(first + 40);  // room for part of one more line, not for a whole one
    out->write(probe(2));
    out->write(probe(3));
    reactor.advance(std::chrono::seconds(1));
    CHECK(read_all(path).size() == first);  // the part that fit was taken back: no half line
    CHECK(out->stats().failures >= 1);
    CHECK(out->stats().delivered_records == 1);  // what reached the file
    CHECK(out->spool().pending_records() == 2);
    out->write(probe(4));
    reactor.advance(std::chrono::seconds(3));  // still full: tried again, still waiting
    CHECK(read_all(path).size() == first);
    CHECK(out->spool().pending_records() == 3);
    CHECK_FALSE(out->drained());
  }
  reactor.advance(std::chrono::seconds(1));  // room again
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 4);
  std::vector<int> seqs;
  for (const auto& l : lines) seqs.push_back(json::parse(l).at("seq").get<int>());
  CHECK(seqs == std::vector<int>{1, 2, 3, 4});
  CHECK(out->stats().delivered_records == 4);
  CHECK(out->drained());
}

TEST_CASE("file output: records spooled by a run that could not write are written by the next", "[outputs]") {
  TempDir dir;
  FakeReactor reactor;
  const std::string path = dir.file("results.jsonl");
  {
    auto out = file_output(reactor, path, dir.file("spool"));
    for (int i = 0; i < 10; ++i) out->write(probe(i));
    out->flush();
    const std::size_t size = read_all(path).size();
    // The results file may not grow; the spool's new, small segment may.
    FileSizeLimit full(size);
    out->write(probe(11));
    out->write(group_down());
    out->flush();  // the agent stops: the lines are in the spool on disk
    CHECK(out->spool().pending_records() == 2);
    CHECK(read_all(path).size() == size);
  }
  CHECK(read_lines(path).size() == 10);
  auto next = file_output(reactor, path, dir.file("spool"));
  reactor.advance(std::chrono::seconds(1));
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 12);
  CHECK(json::parse(lines[10]).at("seq") == 11);
  CHECK(json::parse(lines[11]).at("type") == "event");
  CHECK(next->drained());
}

TEST_CASE("file output: reopen writes to a new file at the path after the old one was moved away", "[outputs]") {
  TempDir dir;
  FakeReactor reactor;
  const std::string path = dir.file("results.jsonl");
  auto out = file_output(reactor, path);
  out->write(probe(1));
  reactor.advance(std::chrono::seconds(1));
  std::filesystem::rename(path, dir.file("results.jsonl.1"));  // logrotate
  out->write(probe(2));
  out->reopen();  // what is pending goes to the old file, then the new one is opened
  out->write(probe(3));
  reactor.advance(std::chrono::seconds(1));
  CHECK(read_lines(dir.file("results.jsonl.1")).size() == 2);
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 1);
  CHECK(json::parse(lines[0]).at("seq") == 3);
}

TEST_CASE("Outputs hands each record to every output and sink", "[outputs]") {
  TempDir dir;
  FakeReactor reactor;
  outpost::Outputs outputs;
  CHECK(outputs.empty());
  outputs.attach(reactor, "fra-1", "");
  auto a = file_spec(dir.file("a.jsonl"));
  auto b = file_spec(dir.file("b.jsonl"));
  a.name = "a";
  b.name = "b";
  REQUIRE(outputs.apply({a, b}).empty());
  CHECK_FALSE(outputs.empty());
  outputs.write(probe(1));
  outputs.write(group_down());
  outputs.flush();
  CHECK(read_lines(dir.file("a.jsonl")).size() == 2);
  CHECK(read_lines(dir.file("b.jsonl")) == read_lines(dir.file("a.jsonl")));
  CHECK(outputs.drained());
  CHECK(outputs.stats_lines().size() == 2);
}

TEST_CASE("Outputs: a reload adds, keeps, moves and removes outputs; a removed one drains, then goes", "[outputs]") {
  TempDir dir;
  FakeReactor reactor;
  outpost::Outputs outputs;
  outputs.attach(reactor, "fra-1", dir.file("state"));
  auto a = file_spec(dir.file("a.jsonl"));
  auto b = file_spec(dir.file("b.jsonl"));
  a.name = "a";
  b.name = "b";
  REQUIRE(outputs.apply({a, b}).empty());
  outputs.write(probe(1));

  // b removed, a moved to a new path, c added.
  auto moved = a;
  moved.target = dir.file("a2.jsonl");
  auto c = file_spec(dir.file("c.jsonl"));
  c.name = "c";
  REQUIRE(outputs.apply({moved, c}).empty());
  REQUIRE(outputs.outputs().size() == 2);
  CHECK(outputs.outputs()[0]->name() == "a");
  // Rebuilt over the old one's spool. (Not told by its address: freed
  // first, the old object's memory may well hold the new one.)
  CHECK(outputs.outputs()[0]->spec().target == dir.file("a2.jsonl"));
  outputs.write(probe(2));
  reactor.advance(std::chrono::seconds(2));
  CHECK(outputs.retired().empty());  // b wrote what it held, and went
  CHECK(read_lines(dir.file("b.jsonl")).size() == 1);
  CHECK(read_lines(dir.file("a.jsonl")).size() == 1);  // what a held went to its old path before the move
  const auto a2 = read_lines(dir.file("a2.jsonl"));
  REQUIRE(a2.size() == 1);
  CHECK(json::parse(a2[0]).at("seq") == 2);
  CHECK(read_lines(dir.file("c.jsonl")).size() == 1);

  // An unchanged config keeps the very same outputs.
  const outpost::Output* first = outputs.outputs()[0].get();
  REQUIRE(outputs.apply({moved, c}).empty());
  CHECK(outputs.outputs()[0].get() == first);

  // A file that cannot be opened refuses the whole reload: nothing changes.
  auto bad = file_spec(dir.file("no-such-dir/x.jsonl"));
  bad.name = "bad";
  CHECK_THAT(outputs.apply({moved, bad}), Catch::Contains("no-such-dir"));
  REQUIRE(outputs.outputs().size() == 2);
  CHECK(outputs.outputs()[1]->name() == "c");
}

TEST_CASE("Outputs::status: counters by name, kept across a rebuild and after a removed output went", "[outputs]") {
  TempDir dir;
  FakeReactor reactor;
  outpost::Outputs outputs;
  outputs.attach(reactor, "fra-1", dir.file("state"));
  auto a = file_spec(dir.file("a.jsonl"));
  auto b = file_spec(dir.file("b.jsonl"));
  a.name = "a";
  b.name = "b";
  REQUIRE(outputs.apply({a, b}).empty());
  outputs.write(probe(1));
  outputs.write(probe(2));
  outputs.flush();
  reactor.advance(std::chrono::seconds(2));
  auto status = outputs.status();
  REQUIRE(status.size() == 2);
  CHECK(status[0].name == "a");
  CHECK(status[0].kind == "file");
  CHECK(status[0].stats.records == 2);
  CHECK(status[0].stats.delivered_records == 2);
  CHECK(status[0].queued_records == 0);
  CHECK_FALSE(status[0].removed);

  // a rebuilt at a new path (new stats inside), b removed and gone.
  auto moved = a;
  moved.target = dir.file("a2.jsonl");
  REQUIRE(outputs.apply({moved}).empty());
  outputs.write(probe(3));
  outputs.flush();
  reactor.advance(std::chrono::seconds(2));
  REQUIRE(outputs.retired().empty());
  status = outputs.status();
  REQUIRE(status.size() == 2);
  CHECK(status[0].name == "a");
  CHECK(status[0].stats.records == 3);
  CHECK(status[0].stats.delivered_records == 3);
  CHECK_FALSE(status[0].removed);
  CHECK(status[1].name == "b");
  CHECK(status[1].stats.records == 2);
  CHECK(status[1].stats.delivered_records == 2);
  CHECK(status[1].removed);
}
