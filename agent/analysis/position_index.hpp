// An index from keys to their positions in a vector the caller owns (targets
// by name, series by key): open addressing over 8-byte slots, each the key's
// 32-bit hash and its position, at most half full. The keys themselves stay
// in the caller's vector; a lookup compares the key only where the hash
// matches. At 100,000 targets this is 2 MiB where a std::unordered_map of
// strings was 7 MiB of nodes and buckets, and a copy of every key.
// A caller that removes from its vector moves its last element into the
// hole (erase, then relocate); one thread.
// Leaves to others: the keys, their hash and their comparison (the caller's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace outpost {

class PositionIndex {
 public:
  // A hash for string keys, folded to 32 bits.
  static std::uint32_t hash(std::string_view key) {
    std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, then a final mix
    for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return static_cast<std::uint32_t>(h);
  }

  // Room for this many keys without growing.
  void reserve(std::size_t keys) {
    if (2 * keys > slots_.size()) rebuild(capacity_for(keys));
  }
  void clear() {
    slots_.clear();
    slots_.shrink_to_fit();
    size_ = 0;
  }
  std::size_t size() const { return size_; }

  // The position of the key with this hash for which same(position) holds.
  template <class Same>
  std::optional<std::uint32_t> find(std::uint32_t key_hash, Same&& same) const {
    if (slots_.empty()) return std::nullopt;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = key_hash & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.position == kEmpty) return std::nullopt;
      if (s.hash == key_hash && same(s.position)) return s.position;
    }
  }

  // Adds a key that is not there yet (the caller looked first).
  void insert(std::uint32_t key_hash, std::uint32_t position) {
    if (2 * (size_ + 1) > slots_.size()) rebuild(capacity_for(size_ + 1));
    place(key_hash, position);
    ++size_;
  }

  // Removes the entry of this hash and position (nothing when there is none).
  void erase(std::uint32_t key_hash, std::uint32_t position) {
    auto at = slot_of(key_hash, position);
    if (!at) return;
    // Backward-shift deletion: the entries after the hole that may move
    // into it do, so that no lookup stops short at an empty slot.
    const std::size_t mask = slots_.size() - 1;
    std::size_t hole = *at;
    for (std::size_t j = (hole + 1) & mask; slots_[j].position != kEmpty; j = (j + 1) & mask) {
      const std::size_t home = slots_[j].hash & mask;
      const bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (between) continue;  // it is where it may be
      slots_[hole] = slots_[j];
      hole = j;
    }
    slots_[hole] = Slot{};
    --size_;
  }

  // The entry of this hash at position `from` is at `to` now.
  void relocate(std::uint32_t key_hash, std::uint32_t from, std::uint32_t to) {
    if (auto at = slot_of(key_hash, from)) slots_[*at].position = to;
  }

 private:
  struct Slot {
    std::uint32_t hash = 0;
    std::uint32_t position = kEmpty;
  };
  static constexpr std::uint32_t kEmpty = UINT32_MAX;

  std::optional<std::size_t> slot_of(std::uint32_t key_hash, std::uint32_t position) const {
    if (slots_.empty()) return std::nullopt;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = key_hash & mask;; i = (i + 1) & mask) {
      if (slots_[i].position == kEmpty) return std::nullopt;
      if (slots_[i].hash == key_hash && slots_[i].position == position) return i;
    }
  }
  static std::size_t capacity_for(std::size_t keys) {
    std::size_t n = 16;
    while (n < 2 * keys) n *= 2;
    return n;
  }
  void place(std::uint32_t key_hash, std::uint32_t position) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = key_hash & mask;
    while (slots_[i].position != kEmpty) i = (i + 1) & mask;
    slots_[i] = {key_hash, position};
  }
  void rebuild(std::size_t capacity) {
    std::vector<Slot> old(capacity);
    old.swap(slots_);
    for (const Slot& s : old)
      if (s.position != kEmpty) place(s.hash, s.position);
  }

  std::vector<Slot> slots_;  // a power of two long, or empty
  std::size_t size_ = 0;
};

}  // namespace outpost
