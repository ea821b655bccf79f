#include "trace_store.hpp"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace outpost {

namespace {

constexpr std::uint8_t kVersion = 2;  // 2: a hop's flags byte, and when a reused hop was probed

class Packer {
 public:
  void byte(std::uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void uint(std::uint64_t v) {
    while (v >= 0x80) {
      byte(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    byte(static_cast<std::uint8_t>(v));
  }
  void sint(std::int64_t v) { uint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63)); }
  void text(const std::string& s) {
    uint(s.size());
    out_ += s;
  }
  void address(const IpAddress& a) {
    switch (a.family()) {
      case IpAddress::Family::none: byte(0); break;
      case IpAddress::Family::v4:
        byte(4);
        out_.append(reinterpret_cast<const char*>(a.bytes()), 4);
        break;
      case IpAddress::Family::v6:
        byte(6);
        out_.append(reinterpret_cast<const char*>(a.bytes()), 16);
        break;
    }
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Unpacker {
 public:
  explicit Unpacker(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  std::uint8_t byte() {
    if (at_ >= in_.size()) return fail();
    return static_cast<std::uint8_t>(in_[at_++]);
  }
  std::uint64_t uint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const std::uint8_t b = byte();
      if (!ok_) return 0;
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return fail();
  }
  std::int64_t sint() {
    const std::uint64_t u = uint();
    return static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  int small() { return static_cast<int>(sint()); }
  std::string text() { return std::string(view()); }
  // A length-prefixed text, as a view of the input.
  std::string_view view() {
    const std::uint64_t n = uint();
    if (!ok_ || n > in_.size() - at_) return fail(), std::string_view();
    const std::string_view s = in_.substr(at_, n);
    at_ += n;
    return s;
  }
  // What is left of the input.
  std::string_view rest() const { return in_.substr(at_); }
  IpAddress address() {
    const std::uint8_t family = byte();
    const std::size_t n = family == 4 ? 4 : family == 6 ? 16 : 0;
    if (!ok_ || (family != 0 && n == 0) || n > in_.size() - at_) return fail(), IpAddress();
    const auto* p = reinterpret_cast<const std::uint8_t*>(in_.data() + at_);
    at_ += n;
    return family == 4 ? IpAddress::v4_bytes(p) : family == 6 ? IpAddress::v6_bytes(p) : IpAddress();
  }
  bool at_end() const { return at_ == in_.size(); }

 private:
  std::uint8_t fail() {
    ok_ = false;
    at_ = in_.size();
    return 0;
  }
  std::string_view in_;
  std::size_t at_ = 0;
  bool ok_ = true;
};

}  // namespace

namespace {

void pack(Packer& p, const TraceResult& t) {
  p.byte(kVersion);
  p.address(t.target);
  p.byte(static_cast<std::uint8_t>(t.spec.method));
  p.uint(t.spec.port);
  p.sint(t.spec.first_ttl);
  p.sint(t.spec.max_ttl);
  p.sint(t.spec.attempts);
  p.sint(t.spec.gap_limit);
  p.sint(t.spec.parallel);
  p.sint(t.spec.timeout.count());
  p.sint(t.started.time_since_epoch().count());
  p.byte(t.reached ? 1 : 0);
  p.text(t.stop_reason);
  p.uint(t.flow_id);
  p.text(t.error);
  p.uint(t.hops.size());
  for (const TraceHop& h : t.hops) {
    p.sint(h.ttl);
    p.address(h.addr);
    p.byte(h.rtt ? 1 : 0);
    if (h.rtt) p.sint(h.rtt->count());
    p.sint(h.icmp_type);
    p.sint(h.icmp_code);
    p.sint(h.quoted_ttl);
    p.sint(h.reply_ttl);
    p.uint(h.mpls.size());
    for (const MplsEntry& m : h.mpls) {
      p.uint(m.label);
      p.byte(m.exp);
      p.byte(m.bottom ? 1 : 0);
      p.byte(m.ttl);
    }
    p.sint(h.probes_sent);
    p.byte(static_cast<std::uint8_t>((h.is_target ? 1 : 0) | (h.reused_from ? 2 : 0)));
    if (h.reused_from) p.sint(h.reused_from->time_since_epoch().count());
  }
}

// An entry of the store: its key (length-prefixed), then its packed trace.
std::pair<std::string_view, std::string_view> split(const std::string& entry) {
  Unpacker u(entry);
  const std::string_view key = u.view();
  return {key, u.rest()};
}

}  // namespace

std::string pack_trace(const TraceResult& t) {
  Packer p;
  pack(p, t);
  std::string out = p.take();
  out.shrink_to_fit();
  return out;
}

std::optional<TraceResult> unpack_trace(std::string_view bytes) {
  Unpacker u(bytes);
  if (u.byte() != kVersion) return std::nullopt;
  TraceResult t;
  t.target = u.address();
  const std::uint8_t method = u.byte();
  if (method > static_cast<std::uint8_t>(TraceMethod::tcp)) return std::nullopt;
  t.spec.method = static_cast<TraceMethod>(method);
  t.spec.port = static_cast<std::uint16_t>(u.uint());
  t.spec.first_ttl = u.small();
  t.spec.max_ttl = u.small();
  t.spec.attempts = u.small();
  t.spec.gap_limit = u.small();
  t.spec.parallel = u.small();
  t.spec.timeout = Duration(u.sint());
  t.started = WallTime(Duration(u.sint()));
  t.reached = u.byte() != 0;
  t.stop_reason = u.text();
  t.flow_id = static_cast<std::uint32_t>(u.uint());
  t.error = u.text();
  const std::uint64_t hops = u.uint();
  if (!u.ok() || hops > bytes.size()) return std::nullopt;  // each hop takes bytes: a count past them is corrupt
  t.hops.resize(hops);
  for (TraceHop& h : t.hops) {
    h.ttl = u.small();
    h.addr = u.address();
    if (u.byte()) h.rtt = Duration(u.sint());
    h.icmp_type = u.small();
    h.icmp_code = u.small();
    h.quoted_ttl = u.small();
    h.reply_ttl = u.small();
    const std::uint64_t labels = u.uint();
    if (!u.ok() || labels > bytes.size()) return std::nullopt;
    h.mpls.resize(labels);
    for (MplsEntry& m : h.mpls) {
      m.label = static_cast<std::uint32_t>(u.uint());
      m.exp = u.byte();
      m.bottom = u.byte() != 0;
      m.ttl = u.byte();
    }
    h.probes_sent = u.small();
    const std::uint8_t flags = u.byte();
    if (flags > 3) return std::nullopt;
    h.is_target = (flags & 1) != 0;
    if (flags & 2) h.reused_from = WallTime(Duration(u.sint()));
    if (!u.ok()) return std::nullopt;
  }
  if (!u.ok() || !u.at_end()) return std::nullopt;
  return t;
}

std::optional<std::uint32_t> TraceStore::find(std::string_view key) const {
  return index_.find(PositionIndex::hash(key), [&](std::uint32_t i) { return split(entries_[i]).first == key; });
}

void TraceStore::put(const std::string& key, const TraceResult& trace) {
  Packer p;
  p.text(key);
  pack(p, trace);
  std::string entry = p.take();
  entry.shrink_to_fit();
  if (const auto at = find(key)) {
    entries_[*at] = std::move(entry);
    return;
  }
  index_.insert(PositionIndex::hash(key), static_cast<std::uint32_t>(entries_.size()));
  entries_.push_back(std::move(entry));
}

bool TraceStore::erase(const std::string& key) {
  const auto at = find(key);
  if (!at) return false;
  index_.erase(PositionIndex::hash(key), *at);
  const auto last = static_cast<std::uint32_t>(entries_.size() - 1);
  if (*at != last) {
    index_.relocate(PositionIndex::hash(split(entries_[last]).first), last, *at);
    entries_[*at] = std::move(entries_[last]);
  }
  entries_.pop_back();
  return true;
}

std::optional<TraceResult> TraceStore::get(const std::string& key) const {
  const auto at = find(key);
  if (!at) return std::nullopt;
  return unpack_trace(split(entries_[*at]).second);
}

void TraceStore::for_each(const std::function<void(const std::string&, const TraceResult&)>& visit) const {
  std::vector<std::uint32_t> order(entries_.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::uint32_t a, std::uint32_t b) { return split(entries_[a]).first < split(entries_[b]).first; });
  for (std::uint32_t i : order) {
    const auto [key, packed] = split(entries_[i]);
    if (const auto t = unpack_trace(packed)) visit(std::string(key), *t);
  }
}

}  // namespace outpost
