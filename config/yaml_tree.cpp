#include "yaml_tree.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <cctype>
#include <optional>
#include <sstream>
#include <unordered_map>

namespace outpost::yaml {

std::optional<bool> parse_bool(std::string_view text) {
  if (text.empty()) return std::nullopt;
  auto all = [](std::string_view s, int (*test)(int)) {
    for (char c : s)
      if (!test(static_cast<unsigned char>(c))) return false;
    return true;
  };
  const bool flexible = all(text, ::islower) || (std::isupper(static_cast<unsigned char>(text[0])) &&
                                                  (all(text.substr(1), ::islower) || all(text.substr(1), ::isupper)));
  if (!flexible) return std::nullopt;
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view yes : {"y", "yes", "true", "on"})
    if (lower == yes) return true;
  for (std::string_view no : {"n", "no", "false", "off"})
    if (lower == no) return false;
  return std::nullopt;
}

Kind NodeRef::kind() const { return tree_ ? tree_->entries_[index_].kind : Kind::null; }

std::string_view NodeRef::Scalar() const {
  if (!IsScalar()) return {};
  const Tree::Entry& entry = tree_->entries_[index_];
  return std::string_view(tree_->text_).substr(entry.first, entry.count);
}

YAML::Mark NodeRef::Mark() const { return tree_ ? tree_->entries_[index_].mark : YAML::Mark::null_mark(); }

std::size_t NodeRef::size() const {
  const Kind k = kind();
  return k == Kind::sequence || k == Kind::map ? tree_->entries_[index_].count : 0;
}

NodeRef NodeRef::item(std::size_t i) const {
  return {tree_, tree_->children_[tree_->entries_[index_].first + i]};
}

NodeRef NodeRef::key(std::size_t i) const { return item(2 * i); }

NodeRef NodeRef::value(std::size_t i) const { return item(2 * i + 1); }

std::vector<NodeRef> Tree::documents() const {
  std::vector<NodeRef> roots;
  roots.reserve(documents_.size());
  for (std::uint32_t index : documents_) roots.emplace_back(this, index);
  return roots;
}

// Builds a Tree from the parser's events, counting as it goes what the
// document stands for with every alias expanded.
class TreeBuilder : public YAML::EventHandler {
 public:
  TreeBuilder(Tree& tree, std::size_t max_values, std::size_t max_bytes)
      : tree_(tree), max_values_(max_values), max_bytes_(max_bytes) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    // yaml-cpp 0.7 reads a ',' outside a flow collection as an empty
    // document, again and again without moving on: a parser that does not
    // advance is stopped here (it would loop for ever).
    if (document_at_ && *document_at_ == mark.pos)
      throw YamlRefused{mark, "YAML syntax error: cannot read past this point (a ',' outside [] or {}?)"};
    document_at_ = mark.pos;
    anchored_.clear();
    open_.clear();
    pending_.clear();
    root_.reset();
  }

  void OnDocumentEnd() override {
    // A document always holds one node; yaml-cpp gives a null for an empty one.
    tree_.documents_.push_back(root_ ? *root_ : new_entry(YAML::Mark::null_mark(), Kind::null));
  }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    count(mark, {1, 0}, false);
    const std::uint32_t index = new_entry(mark, Kind::null);
    remember(anchor, index, {1, 0});
    place(index);
  }

  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string& value) override {
    count(mark, {1, value.size()}, false);
    const std::uint32_t index = new_entry(mark, Kind::scalar);
    Tree::Entry& entry = tree_.entries_[index];
    entry.first = static_cast<std::uint32_t>(tree_.text_.size());
    entry.count = static_cast<std::uint32_t>(value.size());
    tree_.text_ += value;
    remember(anchor, index, {1, value.size()});
    place(index);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchored_.find(anchor);
    if (it == anchored_.end()) throw YamlRefused{mark, "an alias inside the node it names (a cycle) is not allowed"};
    count(mark, it->second.size, true);
    place(it->second.index);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, Kind::sequence);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor, Kind::map);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Size {
    std::size_t values = 0;
    std::size_t bytes = 0;
  };
  struct Anchored {
    std::uint32_t index;
    Size size;
  };
  struct Open {
    std::uint32_t index;
    YAML::anchor_t anchor;
    std::size_t pending_from;  // where its children start in pending_
    Size size;
  };

  std::uint32_t new_entry(const YAML::Mark& mark, Kind kind) {
    tree_.entries_.push_back({mark, kind, 0, 0});
    return static_cast<std::uint32_t>(tree_.entries_.size() - 1);
  }

  // Counts `size` in the document and in the innermost open collection.
  // Neither total passes its bound (it throws first), so no sum overflows.
  void count(const YAML::Mark& mark, Size size, bool alias, bool in_parent = true) {
    total_.values += size.values;
    total_.bytes += size.bytes;
    if (total_.values > max_values_ || total_.bytes > max_bytes_) {
      const std::string bound = total_.values > max_values_ ? std::to_string(max_values_) + " values"
                                                            : std::to_string(max_bytes_ >> 20) + " MiB of text";
      throw YamlRefused{mark, alias ? "this alias takes the config past " + bound +
                                          " (an alias repeats all that its anchor names)"
                                    : "the config has more than " + bound};
    }
    if (in_parent && !open_.empty()) {
      open_.back().size.values += size.values;
      open_.back().size.bytes += size.bytes;
    }
  }

  void remember(YAML::anchor_t anchor, std::uint32_t index, Size size) {
    if (anchor != YAML::NullAnchor) anchored_[anchor] = {index, size};
  }

  // A finished node goes to the open collection, or is the document's root.
  void place(std::uint32_t index) {
    if (open_.empty()) {
      root_ = index;
    } else {
      pending_.push_back(index);
    }
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor, Kind kind) {
    count(mark, {1, 0}, false, false);
    open_.push_back({new_entry(mark, kind), anchor, pending_.size(), {1, 0}});
  }

  void close() {
    if (open_.empty()) return;
    const Open node = open_.back();
    open_.pop_back();
    std::size_t children = pending_.size() - node.pending_from;
    Tree::Entry& entry = tree_.entries_[node.index];
    if (entry.kind == Kind::map && children % 2 != 0) {  // a key without a value: give it a null
      pending_.push_back(new_entry(entry.mark, Kind::null));
      ++children;
    }
    Tree::Entry& filled = tree_.entries_[node.index];  // new_entry may have moved the entries
    filled.first = static_cast<std::uint32_t>(tree_.children_.size());
    filled.count = static_cast<std::uint32_t>(filled.kind == Kind::map ? children / 2 : children);
    tree_.children_.insert(tree_.children_.end(), pending_.begin() + static_cast<std::ptrdiff_t>(node.pending_from),
                           pending_.end());
    pending_.resize(node.pending_from);
    if (!open_.empty()) {
      open_.back().size.values += node.size.values;
      open_.back().size.bytes += node.size.bytes;
    }
    remember(node.anchor, node.index, node.size);
    place(node.index);
  }

  Tree& tree_;
  const std::size_t max_values_;
  const std::size_t max_bytes_;
  Size total_;
  std::optional<int> document_at_;  // where the last document started
  std::optional<std::uint32_t> root_;
  std::vector<Open> open_;
  std::vector<std::uint32_t> pending_;  // children of the open collections, innermost last
  std::unordered_map<YAML::anchor_t, Anchored> anchored_;
};

Tree Tree::parse(const std::string& text, std::size_t max_values, std::size_t max_expanded_bytes) {
  Tree tree;
  tree.text_.reserve(text.size());
  std::istringstream in(text);
  YAML::Parser parser(in);
  TreeBuilder builder(tree, max_values, max_expanded_bytes);
  while (parser.HandleNextDocument(builder)) {
  }
  tree.text_.shrink_to_fit();
  tree.entries_.shrink_to_fit();
  tree.children_.shrink_to_fit();
  return tree;
}

}  // namespace outpost::yaml
