// A compact, read-only YAML document tree built straight from yaml-cpp's
// parser events, for the config loader.
//
// YAML::Load builds a graph of shared, reference-counted nodes: about 2.5 KB
// of heap for each value, so a list of 100,000 targets took 250 MB and four
// seconds before the loader saw it. Here a value is one 24-byte entry, every
// scalar lives in one text arena, and a collection's children are a slice of
// one index array: the same list takes a tenth of the memory and of the time.
//
// The builder also bounds what the text stands for once every alias is
// expanded (an alias shares its anchor's entry here, but the loader walks it
// again each time): at the first value or alias past kMaxValues or
// kMaxExpandedBytes, or at an alias inside the node it names, it throws
// YamlRefused with the mark and a message. YAML syntax errors come out as
// yaml-cpp's YAML::ParserException.
#pragma once

#include <yaml-cpp/mark.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outpost::yaml {

enum class Kind : std::uint8_t { null, scalar, sequence, map };

struct YamlRefused {
  YAML::Mark mark;
  std::string message;
};

class Tree;

// A YAML 1.1 boolean as yaml-cpp reads one: y, yes, true, on / n, no, false,
// off, in lower case, upper case or with a capital first letter.
std::optional<bool> parse_bool(std::string_view text);

// One value of a Tree (which must outlive it): a scalar, a list, a map or
// null. Cheap to copy.
class NodeRef {
 public:
  NodeRef() = default;
  NodeRef(const Tree* tree, std::uint32_t index) : tree_(tree), index_(index) {}

  Kind kind() const;
  bool IsNull() const { return kind() == Kind::null; }
  bool IsScalar() const { return kind() == Kind::scalar; }
  bool IsSequence() const { return kind() == Kind::sequence; }
  bool IsMap() const { return kind() == Kind::map; }
  // The scalar's text; empty for anything else.
  std::string_view Scalar() const;
  // Where the value starts (an alias: where its anchor's value starts).
  YAML::Mark Mark() const;
  // Items of a list, entries of a map, 0 otherwise.
  std::size_t size() const;
  // A list's item i, or a map's key i / value i (i < size()).
  NodeRef item(std::size_t i) const;
  NodeRef key(std::size_t i) const;
  NodeRef value(std::size_t i) const;

 private:
  const Tree* tree_ = nullptr;
  std::uint32_t index_ = 0;
};

class Tree {
 public:
  // Parses every document of `text`. Throws YAML::ParserException on a syntax
  // error and YamlRefused past a limit.
  static Tree parse(const std::string& text, std::size_t max_values, std::size_t max_expanded_bytes);

  // The documents' roots, in order (none for an empty text).
  std::vector<NodeRef> documents() const;

  std::size_t entry_count() const { return entries_.size(); }

 private:
  friend class NodeRef;
  friend class TreeBuilder;

  struct Entry {
    YAML::Mark mark;
    Kind kind = Kind::null;
    std::uint32_t first = 0;  // scalar: offset in text_; collection: offset in children_
    std::uint32_t count = 0;  // scalar: length; list: items; map: entries (2 children each)
  };

  std::vector<Entry> entries_;
  std::vector<std::uint32_t> children_;
  std::vector<std::uint32_t> documents_;
  std::string text_;
};

}  // namespace outpost::yaml
