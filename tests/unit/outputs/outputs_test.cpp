// JsonlFile: one JSON object per line, appended, flushed; a path that cannot
// be opened is an exception at start-up. Files live in a temporary directory.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "json_lines.hpp"
#include "outputs.hpp"

using nlohmann::json;

namespace {

// A fresh directory under /tmp, removed with everything in it at the end of the test.
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
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

namespace {

outpost::Record probe(outpost::ProbeStatus status, const std::string& error = {}, int n = 0) {
  outpost::ProbeResult r;
  r.status = status;
  r.error = error;
  r.sequence = static_cast<std::uint16_t>(n);
  r.sent = outpost::WallTime(std::chrono::seconds(1419264900));
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

}  // namespace

TEST_CASE("JsonlFile writes one record per line, as the encoder makes it", "[outputs]") {
  TempDir dir;
  const std::string path = dir.file("results.jsonl");
  const outpost::Record records[] = {
      probe(outpost::ProbeStatus::reply),
      probe(outpost::ProbeStatus::error, "line one\nline two"),
      group_down(),
  };
  {
    outpost::JsonlFile file(path);
    for (const auto& r : records) file.write(r);
    CHECK(file.written() == 3);
    file.flush();
    // Flushed: all there before the file is closed.
    CHECK(read_lines(path).size() == 3);
  }
  const std::string text = read_all(path);
  CHECK(text.back() == '\n');
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    INFO(lines[i]);
    CHECK(json::parse(lines[i]) == outpost::to_json(records[i]));  // a newline inside a string stays escaped
  }
  CHECK(json::parse(lines[1]).at("error") == "line one\nline two");
  CHECK(json::parse(lines[2]).at("verdict").at("where") == "upstream");
}

TEST_CASE("JsonlFile appends to what is there", "[outputs]") {
  TempDir dir;
  const std::string path = dir.file("results.jsonl");
  { outpost::JsonlFile(path).write(probe(outpost::ProbeStatus::reply, "", 1)); }
  { outpost::JsonlFile(path).write(probe(outpost::ProbeStatus::reply, "", 2)); }  // a restart of the agent
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 2);
  CHECK(json::parse(lines[0]).at("seq") == 1);
  CHECK(json::parse(lines[1]).at("seq") == 2);
}

TEST_CASE("JsonlFile: invalid UTF-8 in a field does not lose the record", "[outputs]") {
  TempDir dir;
  const std::string path = dir.file("results.jsonl");
  {
    outpost::JsonlFile file(path);
    file.write(probe(outpost::ProbeStatus::error, std::string("bad \xff byte")));
    CHECK(file.written() == 1);
  }
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 1);
  CHECK(json::parse(lines[0]).at("error").get<std::string>().rfind("bad ", 0) == 0);
}

TEST_CASE("JsonlFile: a path that cannot be opened throws, naming it", "[outputs]") {
  TempDir dir;
  const std::string path = dir.file("no-such-dir/results.jsonl");
  try {
    outpost::JsonlFile file(path);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find(path) != std::string::npos);
  }
}

TEST_CASE("Outputs hands each record to every sink", "[outputs]") {
  TempDir dir;
  outpost::Outputs outputs;
  CHECK(outputs.empty());
  outputs.add(std::make_unique<outpost::JsonlFile>(dir.file("a.jsonl")));
  outputs.add(std::make_unique<outpost::JsonlFile>(dir.file("b.jsonl")));
  CHECK_FALSE(outputs.empty());
  outputs.write(probe(outpost::ProbeStatus::reply));
  outputs.write(group_down());
  outputs.flush();
  CHECK(read_lines(dir.file("a.jsonl")).size() == 2);
  CHECK(read_lines(dir.file("b.jsonl")) == read_lines(dir.file("a.jsonl")));
}
