// The compact YAML tree the config loader reads: the same values, in the
// same order and at the same marks as yaml-cpp's own YAML::LoadAll, in a
// fraction of the memory.
#include "outpost_config.hpp"
#include "yaml_tree.hpp"

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using outpost::yaml::Kind;
using outpost::yaml::NodeRef;
using outpost::yaml::Tree;
using outpost::yaml::YamlRefused;

namespace {

Tree parse(const std::string& text) {
  return Tree::parse(text, outpost::kMaxConfigValues, outpost::kMaxConfigExpandedBytes);
}

Kind kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return Kind::scalar;
    case YAML::NodeType::Sequence: return Kind::sequence;
    case YAML::NodeType::Map: return Kind::map;
    default: return Kind::null;
  }
}

// Walks both trees side by side; `path` says where they differ.
void same(const NodeRef& ours, const YAML::Node& theirs, const std::string& path) {
  INFO(path);
  REQUIRE(ours.kind() == kind_of(theirs));
  CHECK(ours.Mark().line == theirs.Mark().line);
  CHECK(ours.Mark().column == theirs.Mark().column);
  CHECK(ours.Mark().pos == theirs.Mark().pos);
  if (ours.IsScalar()) CHECK(ours.Scalar() == theirs.Scalar());
  REQUIRE(ours.size() == (ours.IsScalar() || ours.IsNull() ? 0 : theirs.size()));
  if (ours.IsSequence()) {
    for (std::size_t i = 0; i < ours.size(); ++i) same(ours.item(i), theirs[i], path + "[" + std::to_string(i) + "]");
  } else if (ours.IsMap()) {
    std::size_t i = 0;
    for (const auto& entry : theirs) {
      same(ours.key(i), entry.first, path + ".key" + std::to_string(i));
      same(ours.value(i), entry.second, path + ".value" + std::to_string(i));
      ++i;
    }
  }
}

void same_documents(const std::string& text, const std::string& name) {
  INFO(name);
  const Tree tree = parse(text);
  const std::vector<NodeRef> ours = tree.documents();
  const std::vector<YAML::Node> theirs = YAML::LoadAll(text);
  REQUIRE(ours.size() == theirs.size());
  for (std::size_t i = 0; i < ours.size(); ++i) same(ours[i], theirs[i], "document" + std::to_string(i));
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("yaml tree: every config in the repo reads as yaml-cpp reads it", "[config][yaml]") {
  std::size_t compared = 0;
  std::vector<std::filesystem::path> files{std::filesystem::path(OUTPOST_SOURCE_DIR) / "config/example.yaml"};
  for (const auto& entry : std::filesystem::directory_iterator(std::string(OUTPOST_SOURCE_DIR) + "/config/testdata"))
    files.push_back(entry.path());
  for (const auto& path : files) {
    const std::string name = path.filename().string();
    // The bomb, the cycle, the syntax error and the nesting past yaml-cpp's
    // depth are refused (tested below and in load_test).
    if (name == "invalid-alias-bomb.yaml" || name == "invalid-alias-cycle.yaml" || name == "invalid-yaml-syntax.yaml" ||
        name == "invalid-deep-nesting.yaml")
      continue;
    same_documents(read_file(path), name);
    ++compared;
  }
  CHECK(compared >= 40);
}

TEST_CASE("yaml tree: styles, nulls, anchors and documents read as yaml-cpp reads them", "[config][yaml]") {
  const char* texts[] = {
      "",
      "---\n",
      "a: 1\n---\nb: 2\n",
      "a:\nb: ~\nc: null\nd: ''\n",
      "list: [1, [2, 3], {x: y}, , ]\n",
      "? complex key\n: value\n? [a, b]\n: c\n",
      "block: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
      "a: &x {k: v, l: [1, 2]}\nb: *x\nc: [*x, *x]\n",
      "same: 1\nsame: 2\n",
      "- - - deep\n    - er\n  - x\n- y\n",
      "quoted: \"a\\tb\\u00e9\"\nsingle: 'it''s'\n",
      "key: value # comment\n# only a comment\n",
      "!!str 1: !!int '2'\n",
  };
  for (const char* text : texts) same_documents(text, text);
}

TEST_CASE("yaml tree: an alias shares its anchor's entries instead of copying them", "[config][yaml]") {
  const Tree once = parse("a: &x [1, 2, 3, 4, 5, 6, 7, 8]\n");
  const Tree many = parse("a: &x [1, 2, 3, 4, 5, 6, 7, 8]\nb: [*x, *x, *x, *x, *x, *x, *x, *x]\n");
  // 'b', its list and nothing more per alias.
  CHECK(many.entry_count() == once.entry_count() + 2);
  const NodeRef root = many.documents().at(0);
  const NodeRef b = root.value(1);
  REQUIRE(b.size() == 8);
  CHECK(b.item(7).size() == 8);
  CHECK(b.item(7).item(7).Scalar() == "8");
}

TEST_CASE("yaml tree: the expanded size is bounded, at the value or alias that passes it", "[config][yaml]") {
  SECTION("values") {
    try {
      (void)Tree::parse("[1, 2, 3, 4]", 4, 1 << 20);
      FAIL("not refused");
    } catch (const YamlRefused& refused) {
      CHECK(refused.message == "the config has more than 4 values");
      CHECK(refused.mark.column == 10);  // the fourth item: the list counts one
    }
  }
  SECTION("an alias") {
    try {
      (void)Tree::parse("a: &x [1, 2, 3]\nb: [*x, *x, *x]\n", 15, 1 << 20);
      FAIL("not refused");
    } catch (const YamlRefused& refused) {
      CHECK(refused.message == "this alias takes the config past 15 values (an alias repeats all that its anchor names)");
      CHECK(refused.mark.line == 1);
      CHECK(refused.mark.column == 8);
    }
  }
  SECTION("bytes") {
    try {
      (void)Tree::parse("a: &x " + std::string(1 << 20, 'x') + "\nb: [*x]\n", 100, 2 << 20);
      FAIL("not refused");
    } catch (const YamlRefused& refused) {
      CHECK(refused.message == "this alias takes the config past 2 MiB of text (an alias repeats all that its anchor names)");
    }
  }
  SECTION("within the bounds") {
    CHECK_NOTHROW(Tree::parse("a: &x [1, 2, 3]\nb: [*x, *x, *x]\n", 20, 1 << 20));
  }
  SECTION("a cycle") {
    CHECK_THROWS_AS(Tree::parse("a: &x [1, *x]\n", 100, 1 << 20), YamlRefused);
  }
  SECTION("a stray comma that stalls the parser") {
    CHECK_THROWS_AS(Tree::parse(" ,# a comment", 100, 1 << 20), YamlRefused);
  }
}

TEST_CASE("yaml tree: booleans are yaml-cpp's", "[config][yaml]") {
  const char* words[] = {"y",    "Y",     "yes",  "Yes", "YES",  "yEs", "true", "True", "TRUE", "tRUE", "on",
                         "On",   "ON",    "oN",   "n",   "N",    "no",  "No",   "NO",   "false", "False", "FALSE",
                         "off",  "Off",   "OFF",  "1",   "0",    "",    "yess", "t",    "f",     "nO",    "fALSE"};
  for (const char* word : words) {
    INFO(word);
    bool value = false;
    const bool theirs = YAML::convert<bool>::decode(YAML::Node(std::string(word)), value);
    const std::optional<bool> ours = outpost::yaml::parse_bool(word);
    REQUIRE(ours.has_value() == theirs);
    if (theirs) CHECK(*ours == value);
  }
}
