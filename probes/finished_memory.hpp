// What the engine remembers of probes already over, so that an answer coming
// after the end is told apart: late (the probe had timed out), duplicate (it
// had been answered) or stray (no such probe, or long ago).
//
// At the top probe rates this holds a million flows, so it is compact: each
// flow is a 31-bit fingerprint of its key, a flag and when to forget it (8
// bytes), in a ring in the order the probes ended (they are forgotten in that
// order), with an open-addressing index of ring positions (linear probing,
// backward-shift deletion, at most half full): about 16 bytes per flow, where
// a node map and an order queue took about 130. A fingerprint can collide
// (about one stray answer in 2^31 per flow it is compared with is then called
// late or duplicate): only a counter is at stake.
#pragma once

#include <cstdint>
#include <vector>

#include "clock.hpp"
#include "probe.hpp"

namespace outpost {

class FinishedMemory {
 public:
  enum class Kind : std::uint8_t { unknown, answered, timed_out };

  // Holds at most max_flows (the oldest go first when full); salt varies the
  // fingerprints from one run to the next.
  FinishedMemory(std::size_t max_flows, std::uint64_t salt);

  // Remembers the flow until forget_at. Entries are forgotten in the order
  // they came, so forget_at should not decrease from one call to the next
  // (the engine adds a constant to its clock). A flow remembered again
  // replaces its older entry.
  void remember(const FlowKey& key, bool timed_out, SteadyTime forget_at);
  // Forgets every flow whose forget_at is at or before now.
  void forget_until(SteadyTime now);
  // Makes room for `flows` (at most max_flows) at once, so that holding that
  // many never grows the ring and the index (a growth moves every entry).
  void reserve(std::size_t flows);
  Kind find(const FlowKey& key) const;

  std::size_t size() const { return count_; }
  // Bytes held by the ring and the index (their capacity, not their use).
  std::size_t bytes() const;

 private:
  struct Entry {
    std::uint32_t tag;        // fingerprint | timed_out (the fingerprint's lowest bit is 0)
    std::uint32_t forget_ms;  // since base_, wrapping (entries live minutes at most)
  };
  std::uint32_t fingerprint(const FlowKey& key) const;
  // The index slot a fingerprint starts its probe sequence at.
  std::size_t home(std::uint32_t fp) const;
  std::uint32_t to_ms(SteadyTime t);
  void erase_slot(std::size_t slot);
  void pop_oldest();
  void rebuild(std::size_t ring_capacity);
  void index_insert(std::uint32_t pos);
  const Entry& at(std::uint32_t pos) const { return ring_[pos]; }

  std::size_t max_flows_;
  std::uint64_t salt_;
  SteadyTime base_{};
  bool based_ = false;
  // The ring: ring_[(head_ + i) % ring_.size()] for i < count_, oldest first.
  std::vector<Entry> ring_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  // The index: ring position + 1, 0 for an empty slot; its size is a power
  // of two, at least twice the ring's.
  std::vector<std::uint32_t> index_;
  std::size_t mask_ = 0;
  int shift_ = 32;
};

}  // namespace outpost
