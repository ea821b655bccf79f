#include "finished_memory.hpp"

#include <algorithm>
#include <bit>

namespace outpost {

namespace {

// The 64-bit finalizer of MurmurHash3: every input bit moves every output bit.
std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

constexpr std::size_t kMinRing = 64;
// Ring positions are stored + 1 in 32 bits.
constexpr std::size_t kMaxFlows = std::size_t{1} << 30;

}  // namespace

FinishedMemory::FinishedMemory(std::size_t max_flows, std::uint64_t salt)
    : max_flows_(std::clamp<std::size_t>(max_flows, 1, kMaxFlows)), salt_(salt) {}

std::uint32_t FinishedMemory::fingerprint(const FlowKey& key) const {
  return static_cast<std::uint32_t>(mix64(FlowKeyHash{}(key) ^ salt_) >> 32) & ~1u;
}

std::size_t FinishedMemory::home(std::uint32_t fp) const {
  // A multiplicative hash of the fingerprint, so that a slot can be found
  // again from the ring entry alone.
  return static_cast<std::uint32_t>(fp * 0x9E3779B1u) >> shift_;
}

std::uint32_t FinishedMemory::to_ms(SteadyTime t) {
  if (!based_) {
    base_ = t;
    based_ = true;
  }
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(t - base_).count());
}

void FinishedMemory::remember(const FlowKey& key, bool timed_out, SteadyTime forget_at) {
  if (count_ == ring_.size()) {
    if (ring_.size() < max_flows_) rebuild(std::min(max_flows_, std::max(kMinRing, 2 * ring_.size())));
    else pop_oldest();
  }
  const std::uint32_t fp = fingerprint(key);
  const auto pos = static_cast<std::uint32_t>((head_ + count_) % ring_.size());
  ring_[pos] = {fp | (timed_out ? 1u : 0u), to_ms(forget_at)};
  ++count_;
  // The same flow again (its numbers came round): the index points at the
  // newer entry; the older one is forgotten in its turn, finding no slot.
  for (std::size_t i = home(fp); index_[i]; i = (i + 1) & mask_) {
    if ((at(index_[i] - 1).tag & ~1u) == fp) {
      index_[i] = pos + 1;
      return;
    }
  }
  index_insert(pos);
}

void FinishedMemory::reserve(std::size_t flows) {
  flows = std::min(max_flows_, std::max(kMinRing, flows));
  if (flows > ring_.size()) rebuild(flows);
}

void FinishedMemory::forget_until(SteadyTime now) {
  if (!count_) return;
  const std::uint32_t now_ms = to_ms(now);
  while (count_ && static_cast<std::int32_t>(ring_[head_].forget_ms - now_ms) <= 0) pop_oldest();
}

FinishedMemory::Kind FinishedMemory::find(const FlowKey& key) const {
  if (!count_) return Kind::unknown;
  const std::uint32_t fp = fingerprint(key);
  for (std::size_t i = home(fp); index_[i]; i = (i + 1) & mask_) {
    const std::uint32_t tag = at(index_[i] - 1).tag;
    if ((tag & ~1u) == fp) return (tag & 1u) ? Kind::timed_out : Kind::answered;
  }
  return Kind::unknown;
}

std::size_t FinishedMemory::bytes() const {
  return ring_.capacity() * sizeof(Entry) + index_.capacity() * sizeof(std::uint32_t);
}

void FinishedMemory::pop_oldest() {
  const auto pos = static_cast<std::uint32_t>(head_);
  for (std::size_t i = home(ring_[pos].tag & ~1u); index_[i]; i = (i + 1) & mask_) {
    if (index_[i] == pos + 1) {
      erase_slot(i);
      break;
    }
  }
  head_ = (head_ + 1) % ring_.size();
  --count_;
}

// Backward-shift deletion: the entries after the hole that may sit in it
// (their home is not cyclically within (hole, their slot]) move up, so that
// no probe sequence is cut short and no tombstone is needed.
void FinishedMemory::erase_slot(std::size_t hole) {
  for (std::size_t j = (hole + 1) & mask_; index_[j]; j = (j + 1) & mask_) {
    const std::size_t k = home(at(index_[j] - 1).tag & ~1u);
    const bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
    if (!stays) {
      index_[hole] = index_[j];
      hole = j;
    }
  }
  index_[hole] = 0;
}

void FinishedMemory::index_insert(std::uint32_t pos) {
  std::size_t i = home(ring_[pos].tag & ~1u);
  while (index_[i]) i = (i + 1) & mask_;
  index_[i] = pos + 1;
}

void FinishedMemory::rebuild(std::size_t ring_capacity) {
  // The entries the index points at, by their place in the new ring (the
  // superseded ones keep their place but get no slot).
  std::vector<Entry> ring(ring_capacity);
  std::vector<std::uint32_t> live;
  live.reserve(count_);
  for (std::uint32_t v : index_) {
    if (v) live.push_back(static_cast<std::uint32_t>((v - 1 + ring_.size() - head_) % ring_.size()));
  }
  for (std::size_t i = 0; i < count_; ++i) ring[i] = ring_[(head_ + i) % ring_.size()];
  ring_ = std::move(ring);
  head_ = 0;
  const std::size_t slots = std::bit_ceil(2 * ring_capacity);
  index_.assign(slots, 0);
  index_.shrink_to_fit();
  mask_ = slots - 1;
  shift_ = 32 - std::countr_zero(slots);
  for (std::uint32_t pos : live) index_insert(pos);
}

}  // namespace outpost
