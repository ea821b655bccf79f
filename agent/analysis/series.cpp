#include "series.hpp"

#include <algorithm>
#include <stdexcept>

namespace outpost {

WallTime window_start(WallTime t, Duration window) {
  const auto ns = t.time_since_epoch().count();
  const auto w = window.count();
  auto q = ns / w;
  if (ns % w != 0 && ns < 0) --q;  // floor, not truncation, before the epoch
  return WallTime(Duration(q * w));
}

SeriesAggregator::SeriesAggregator(Duration window, Duration grace, WallTime started)
    : window_(window), grace_(grace), started_(started) {
  if (window <= Duration::zero()) throw std::invalid_argument("series window must be positive");
  if (grace < Duration::zero()) throw std::invalid_argument("series grace must not be negative");
}

void SeriesAggregator::reserve(std::size_t keys) {
  keys_.reserve(keys);
  ids_.reserve(keys);
}

std::size_t SeriesAggregator::key_id(const SeriesKey& key) {
  std::uint32_t hash = PositionIndex::hash(key.target);
  for (std::uint32_t part : {PositionIndex::hash(key.group), PositionIndex::hash(key.method),
                             static_cast<std::uint32_t>(key.port) * 0x9e3779b1U + static_cast<std::uint32_t>(key.af)})
    hash = (hash ^ part) * 0x01000193U + (hash >> 15);
  const auto found = ids_.find(hash, [&](std::uint32_t id) { return same(keys_[id], key); });
  if (found) return *found;
  ids_.insert(hash, static_cast<std::uint32_t>(keys_.size()));
  keys_.push_back({key.target, label_id(key.group), label_id(key.method), key.port, key.af});
  return keys_.size() - 1;
}

std::uint32_t SeriesAggregator::label_id(const std::string& label) {
  const auto [it, added] = label_ids_.try_emplace(label, static_cast<std::uint32_t>(labels_.size()));
  if (added) labels_.push_back(label);
  return it->second;
}

bool SeriesAggregator::same(const StoredKey& stored, const SeriesKey& key) const {
  return stored.target == key.target && stored.port == key.port && stored.af == key.af &&
         labels_[stored.group] == key.group && labels_[stored.method] == key.method;
}

bool SeriesAggregator::add(std::size_t key_id, const ProbeResult& result) {
  if (key_id >= keys_.size()) {  // not from key_id(): a bug in the caller, but no exception at run time
    ++late_;
    return false;
  }
  const WallTime start = window_start(result.sent, window_);
  if (start < closed_until_) {
    ++late_;
    return false;
  }
  Counts& c = open_[{start, key_id}];
  ++c.sent;
  switch (result.status) {
    case ProbeStatus::reply:
    case ProbeStatus::refused:
      ++c.received;
      if (result.rtt) c.rtts.add(*result.rtt);
      break;
    case ProbeStatus::timeout:
      ++c.timeouts;
      break;
    case ProbeStatus::unreachable:
      ++c.unreachable;
      break;
    case ProbeStatus::error:
      ++c.errors;
      break;
  }
  return true;
}

SeriesWindow SeriesAggregator::finish(const OpenKey& at, Counts&& c) const {
  SeriesWindow w;
  const StoredKey& k = keys_[at.second];
  w.key = {k.target, labels_[k.group], labels_[k.method], k.port, k.af};
  w.start = at.first;
  w.length = window_;
  w.sent = c.sent;
  w.received = c.received;
  w.timeouts = c.timeouts;
  w.unreachable = c.unreachable;
  w.errors = c.errors;
  w.rtt = c.rtts.summary();
  w.partial = w.start < started_;
  return w;
}

bool SeriesAggregator::close_due(WallTime now, const std::function<void(SeriesWindow&&)>& emit, std::size_t limit) {
  // Window [S, S + window) is due when S + window + grace <= now, i.e. S <= now - grace - window.
  const WallTime first_open = window_start(now - grace_ - window_, window_) + window_;
  closed_until_ = std::max(closed_until_, first_open);
  for (std::size_t n = 0; !open_.empty() && open_.begin()->first.first < closed_until_; ++n) {
    if (n == limit) return true;
    auto node = open_.extract(open_.begin());
    emit(finish(node.key(), std::move(node.mapped())));
  }
  return false;
}

std::vector<SeriesWindow> SeriesAggregator::close_due(WallTime now) {
  std::vector<SeriesWindow> out;
  close_due(now, [&](SeriesWindow&& w) { out.push_back(std::move(w)); });
  return out;
}

std::vector<SeriesWindow> SeriesAggregator::close_all(WallTime now) {
  std::vector<SeriesWindow> out;
  out.reserve(open_.size());
  close_all(now, [&](SeriesWindow&& w) { out.push_back(std::move(w)); });
  return out;
}

void SeriesAggregator::close_all(WallTime now, const std::function<void(SeriesWindow&&)>& emit) {
  WallTime until = window_start(now, window_) + window_;
  while (!open_.empty()) {
    auto node = open_.extract(open_.begin());
    SeriesWindow w = finish(node.key(), std::move(node.mapped()));
    if (now < w.end()) w.partial = true;
    until = std::max(until, w.end());
    emit(std::move(w));
  }
  closed_until_ = std::max(closed_until_, until);
}

std::optional<WallTime> SeriesAggregator::next_close() const {
  if (open_.empty()) return std::nullopt;
  return open_.begin()->first.first + window_ + grace_;
}

}  // namespace outpost
