// The position index: finds each key's position among many, through growth,
// with hashes that collide, and says "not there" for keys never added.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "position_index.hpp"

using namespace outpost;

TEST_CASE("position index: every key of 100,000 is found at its position, through growth", "[position_index]") {
  std::vector<std::string> keys;
  PositionIndex index;
  for (int i = 0; i < 100000; ++i) {
    keys.push_back("t" + std::to_string(i));
    index.insert(PositionIndex::hash(keys.back()), static_cast<std::uint32_t>(i));
  }
  CHECK(index.size() == 100000);
  auto find = [&](const std::string& key) {
    return index.find(PositionIndex::hash(key), [&](std::uint32_t i) { return keys[i] == key; });
  };
  int wrong = 0;
  for (int i = 0; i < 100000; ++i) {
    const auto at = find(keys[i]);
    if (!at || *at != static_cast<std::uint32_t>(i)) ++wrong;
  }
  CHECK(wrong == 0);
  CHECK_FALSE(find("t100000"));
  CHECK_FALSE(find(""));
  index.clear();
  CHECK(index.size() == 0);
  CHECK_FALSE(find("t1"));
}

TEST_CASE("position index: keys whose hashes are equal are told apart by the caller's comparison",
          "[position_index]") {
  const std::vector<std::string> keys{"a", "b", "c", "d"};
  PositionIndex index;
  index.reserve(4);
  for (std::uint32_t i = 0; i < keys.size(); ++i) index.insert(7, i);  // one hash for all
  for (std::uint32_t i = 0; i < keys.size(); ++i) {
    const auto at = index.find(7, [&](std::uint32_t p) { return keys[p] == keys[i]; });
    REQUIRE(at);
    CHECK(*at == i);
  }
  CHECK_FALSE(index.find(7, [](std::uint32_t) { return false; }));
  CHECK_FALSE(index.find(8, [](std::uint32_t) { return true; }));  // no key has that hash
}

TEST_CASE("position index: an empty index finds nothing", "[position_index]") {
  PositionIndex index;
  CHECK_FALSE(index.find(PositionIndex::hash("x"), [](std::uint32_t) { return true; }));
  CHECK(PositionIndex::hash("x") != PositionIndex::hash("y"));
}

TEST_CASE("position index: erase and relocate keep every other key findable, against a reference map",
          "[position_index]") {
  // A vector with swap-with-last removal, as the callers keep theirs; hashes
  // from a small range so that runs of colliding slots wrap and shift.
  std::vector<std::string> keys;
  PositionIndex index;
  std::uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245U + 12345U; };
  auto hash_of = [](const std::string& key) { return PositionIndex::hash(key) % 97; };
  auto find = [&](const std::string& key) {
    return index.find(hash_of(key), [&](std::uint32_t i) { return keys[i] == key; });
  };
  int wrong = 0;
  for (int step = 0; step < 20000; ++step) {
    const std::string key = "k" + std::to_string(next() % 500);
    const auto at = find(key);
    if (next() % 3 != 0) {
      if (!at) {
        index.insert(hash_of(key), static_cast<std::uint32_t>(keys.size()));
        keys.push_back(key);
      }
    } else if (at) {
      index.erase(hash_of(key), *at);
      const auto last = static_cast<std::uint32_t>(keys.size() - 1);
      if (*at != last) {
        index.relocate(hash_of(keys[last]), last, *at);
        keys[*at] = keys[last];
      }
      keys.pop_back();
      if (find(key)) ++wrong;  // gone
    }
    if (step % 1000 == 0)
      for (std::uint32_t i = 0; i < keys.size(); ++i)
        if (find(keys[i]) != std::optional<std::uint32_t>(i)) ++wrong;
  }
  CHECK(wrong == 0);
  CHECK(index.size() == keys.size());
  CHECK(keys.size() > 100);  // the walk did keep keys, not only remove them
}
