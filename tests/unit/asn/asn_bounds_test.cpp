// What a prefix table or a names file may cost: /dev/zero, a gzip bomb, too
// many prefixes and names each stop the load with an error naming the bound,
// and names or bad lines with escape sequences reach no terminal as such.

#include <catch2/catch.hpp>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "asn_table.hpp"

using namespace outpost;

namespace {

// A directory of its own for one test, removed at the end.
struct TempDir {
  std::filesystem::path path;
  TempDir() : path(std::filesystem::temp_directory_path() / ("outpost-asn-bounds-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return (path / name).string();
  }
};

// A gzip file of `repeat` copies of `unit`, written in pieces.
std::string gzip_file(const std::filesystem::path& path, const std::string& unit, std::size_t repeat) {
  gzFile f = gzopen(path.c_str(), "wb9");
  REQUIRE(f);
  std::string chunk;
  for (std::size_t i = 0; i < (1u << 16) / unit.size(); ++i) chunk += unit;
  const std::size_t per_chunk = chunk.size() / unit.size();
  for (std::size_t written = 0; written < repeat; written += per_chunk) {
    const std::size_t n = std::min(per_chunk, repeat - written) * unit.size();
    REQUIRE(gzwrite(f, chunk.data(), static_cast<unsigned>(n)) == static_cast<int>(n));
  }
  REQUIRE(gzclose(f) == Z_OK);
  return path.string();
}

}  // namespace

TEST_CASE("asn bounds: /dev/zero is one endless line, refused at 4 KiB", "[asn][bounds]") {
  std::string error;
  AsnLoadReport report;
  CHECK_FALSE(AsnTable::load("/dev/zero", &report, &error));
  CHECK(error == "/dev/zero:1: a line longer than 4096 bytes: not a prefix table");
}

TEST_CASE("asn bounds: a gzip bomb without newlines is refused at 4 KiB of its first line", "[asn][bounds]") {
  TempDir dir;
  const std::string bomb = gzip_file(dir.path / "zeros.gz", std::string(1024, '\0'), 64 * 1024);  // 64 MiB
  REQUIRE(std::filesystem::file_size(bomb) < (1 << 20));
  std::string error;
  CHECK_FALSE(AsnTable::load(bomb, nullptr, &error));
  CHECK(error == bomb + ":1: a line longer than 4096 bytes: not a prefix table");
}

TEST_CASE("asn bounds: a gzip bomb of short lines is refused past the text bound", "[asn][bounds]") {
  TempDir dir;
  // 8 MiB of comment lines from a few KiB; the bound set to 1 MiB here (1 GiB by default).
  const std::string bomb = gzip_file(dir.path / "comments.gz", "#\n", 4 << 20);
  AsnLimits limits;
  limits.max_text_bytes = 1 << 20;
  std::string error;
  CHECK_FALSE(AsnTable::load(bomb, nullptr, &error, limits));
  CHECK(error == bomb + ": more than 1 MiB of text (after gunzip)");
  CHECK(AsnLimits{}.max_text_bytes == 1ull << 30);
}

TEST_CASE("asn bounds: a line at the bound is read, one byte more is not", "[asn][bounds]") {
  AsnLimits limits;
  limits.max_line_bytes = 32;
  std::string line = "10.0.0.0/8\t64500";
  line += std::string(32 - line.size(), ' ');
  std::string error;
  auto table = AsnTable::parse(line + "\n" + line, "t", nullptr, &error, limits);
  REQUIRE(table);
  CHECK(table->size() == 2);
  CHECK_FALSE(AsnTable::parse(line + " \n", "t", nullptr, &error, limits));
  CHECK(error == "t:1: a line longer than 32 bytes: not a prefix table");
  CHECK_FALSE(AsnTable::parse("\n" + line + " ", "t", nullptr, &error, limits));
  CHECK(error == "t:2: a line longer than 32 bytes: not a prefix table");
}

TEST_CASE("asn bounds: prefixes and origins past their bounds", "[asn][bounds]") {
  AsnLimits limits;
  limits.max_prefixes = 2;
  std::string error;
  CHECK(AsnTable::parse("10.0.0.0/8 1\n10.1.0.0/16 2\n", "t", nullptr, &error, limits));
  CHECK_FALSE(AsnTable::parse("10.0.0.0/8 1\n# a comment\n10.1.0.0/16 2\n10.2.0.0/16 3\n", "t", nullptr, &error, limits));
  CHECK(error == "t:4: more than 2 prefixes");

  limits = {};
  limits.max_origin_asns = 4;
  CHECK(AsnTable::parse("10.0.0.0/8 1_2\n10.1.0.0/16 1_2\n10.2.0.0/16 3_4\n", "t", nullptr, &error, limits));
  CHECK_FALSE(AsnTable::parse("10.0.0.0/8 1_2\n10.1.0.0/16 3_4_5\n", "t", nullptr, &error, limits));
  CHECK(error == "t:2: more than 4 ASNs over all distinct origins");
  CHECK(AsnLimits{}.max_prefixes == 10'000'000);
}

TEST_CASE("asn bounds: a bad line is quoted with its escape sequences made visible", "[asn][bounds]") {
  AsnLoadReport report;
  AsnTable::parse("10.0.0.0/8\t\x1b[2J\x1b[31mAS1\x07\n" + std::string(300, 'x') + "\n", "t", &report);
  REQUIRE(report.problems.size() == 2);
  CHECK(report.problems[0] == "t:1: bad ASN: '10.0.0.0/8\t\\x1b[2J\\x1b[31mAS1\\x07'");
  CHECK(report.problems[1] ==
        "t:2: expected PREFIX<TAB>LEN<TAB>ASN or PREFIX/LEN<TAB>ASN: '" + std::string(200, 'x') + "'");
}

TEST_CASE("asn bounds: names are made terminal-safe and cut as they are read", "[asn][bounds]") {
  TempDir dir;
  const std::string names = dir.file("names.json", R"({"64500": "EVIL\u001b[2J\u001b]0;owned\u0007 NET", )"
                                                   R"("64501": "RTL\u202egnp.exe", "64502": ")" +
                                                       std::string(1000, 'L') + R"(", "64503": "Zürich AG"})");
  auto table = AsnTable::parse("10.0.0.0/8 64500\n", "t", nullptr);
  std::string error;
  REQUIRE(table.load_names(names, &error));
  CHECK(table.name_of(64500) == "EVIL\\x1b[2J\\x1b]0;owned\\x07 NET");
  CHECK(table.name_of(64501) == "RTL\\xe2\\x80\\xaegnp.exe");
  CHECK(table.name_of(64502) == std::string(255, 'L'));
  CHECK(table.name_of(64503) == "Zürich AG");
}

TEST_CASE("asn bounds: a names file past its size or count bound is refused", "[asn][bounds]") {
  auto table = AsnTable::parse("10.0.0.0/8 64500\n", "t", nullptr);
  std::string error;
  CHECK_FALSE(table.load_names("/dev/zero", &error));
  CHECK(error == "/dev/zero: larger than 32 MiB: not a names file");

  TempDir dir;
  const std::string names = dir.file("names.json", R"({"1": "A", "2": "B", "3": "C"})");
  AsnLimits limits;
  limits.max_names = 2;
  CHECK_FALSE(table.load_names(names, &error, limits));
  CHECK(error == names + ": not a JSON object of ASN to name: more than 2 names");
  limits.max_names = 3;
  CHECK(table.load_names(names, &error, limits));
  CHECK(table.name_of(3) == "C");

  // Deep nesting and values of other types are passed over, never kept.
  const std::string odd =
      dir.file("odd.json", R"({"1": [[[[{"2": "x"}]]]], "3": {"4": "y"}, "5": 7, "6": "six", "x": "z"})");
  REQUIRE(table.load_names(odd, &error));
  CHECK(table.name_of(1).empty());
  CHECK(table.name_of(2).empty());
  CHECK(table.name_of(4).empty());
  CHECK(table.name_of(6) == "six");
  CHECK(table.name_of(3).empty());  // the earlier file's names are replaced

  for (const char* text : {"[1, 2]", "\"x\"", "{\"1\": \"a\"", "{} {}", ""}) {
    INFO(text);
    CHECK_FALSE(table.load_names(dir.file("bad.json", text), &error));
    CHECK(error.find("not a JSON object of ASN to name") != std::string::npos);
  }
}
