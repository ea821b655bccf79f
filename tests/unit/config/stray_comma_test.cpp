// A ',' outside a flow collection: yaml-cpp reads it as one empty document
// after another without moving on. The loader must refuse it at once with a
// syntax error at the comma, not after counting a million empty documents.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "outpost_config.hpp"

namespace {

std::vector<std::string> errors_of(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& e : outpost::load_config_string(text, "stray.yaml").errors) out.push_back(e.to_string());
  return out;
}

const std::string kStuck = "YAML syntax error: cannot read past this point (a ',' outside [] or {}?)";

}  // namespace

TEST_CASE("config: a ',' alone is a syntax error at the comma", "[config][load]") {
  CHECK(errors_of(",") == std::vector<std::string>{"stray.yaml:1:1: " + kStuck});
  CHECK(errors_of(" ,# a comment") == std::vector<std::string>{"stray.yaml:1:2: " + kStuck});
  CHECK(errors_of("# a comment\n\n ,\n") == std::vector<std::string>{"stray.yaml:3:2: " + kStuck});
}

TEST_CASE("config: several documents that each move on are still counted as such", "[config][load]") {
  const auto errors = errors_of("agent: {id: a}\n---\nagent: {id: b}\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "stray.yaml:3:1: expected one YAML document, found 2");
}
