#include "engine.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>

#include "raw_probe.hpp"

namespace outpost {

namespace {

// No sodium_init() here: libsodium's randombytes sets itself up at its first
// call, and the rest of what sodium_init() does (probing the CPU to pick the
// fastest ciphers and hashes) is for functions outpost does not use
// (crypto_shorthash is SipHash in portable C). A one-shot command saves the
// 40-60 µs of cold code that probing touches. The agent calls sodium_init()
// before it starts its threads (run_command), as libsodium asks of a
// threaded program.
std::uint64_t random_salt() {
  std::uint64_t salt = 0;
  randombytes_buf(&salt, sizeof salt);
  return salt;
}

}  // namespace

// What one probe sees of the engine: its own slot.
class Engine::SlotContext final : public ProbeContext {
 public:
  SlotContext(Engine& engine, std::uint32_t slot) : engine_(engine), slot_(slot) {}

  IpAddress source_for(const IpAddress& dst, std::string* error) override {
    IpAddress source = engine_.wire_.prepare(dst, error);
    if (!source) engine_.slots_[slot_].local_failure = true;
    return source;
  }
  std::uint16_t next_ip_id() override { return engine_.next_random(); }
  std::uint16_t next_icmp_ident() override { return engine_.next_random(); }
  std::uint16_t next_icmp_sequence() override { return engine_.next_random(); }
  std::uint16_t next_dns_id() override { return engine_.next_random(); }
  const FlowSecret& secret() const override { return engine_.secret_; }
  WallTime wall_now() override { return engine_.clock_.wall(); }
  bool expect(const FlowKey& key) override {
    if (!engine_.flows_.emplace(key, slot_).second) return false;
    engine_.slots_[slot_].keys.push_back(key);
    return true;
  }
  bool send(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::string* error) override {
    const std::uint64_t token = std::uint64_t{slot_} << 32 | engine_.slots_[slot_].generation;
    if (!engine_.wire_.send_queued(dst, datagram, token, &engine_.slots_[slot_].ticket, error)) {
      ++engine_.stats_.send_errors;
      engine_.slots_[slot_].local_failure = true;
      return false;
    }
    ++engine_.stats_.sent;
    // A datagram left to the sending thread has not left yet: its copy will
    // wake the loop when it does, and a read of the capture now would find
    // nothing (libpcap then polls, a system call for nothing).
    if (engine_.slots_[slot_].ticket == 0) engine_.sent_since_settle_ = true;
    return true;
  }
  bool watch(int fd, std::uint32_t events) override {
    if (!engine_.fd_service_.watch) return false;
    Slot& slot = engine_.slots_[slot_];
    slot.fds.push_back(fd);
    engine_.fd_service_.watch(fd, events, [&engine = engine_, idx = slot_, gen = slot.generation, fd](std::uint32_t ev) {
      engine.on_ready(idx, gen, fd, ev);
    });
    return true;
  }
  DnsSockets* dns_sockets(std::uint64_t* token) override {
    *token = std::uint64_t{slot_} << 32 | engine_.slots_[slot_].generation;
    return engine_.dns_sockets();
  }
  void count_socket_send(bool ok) override {
    ++(ok ? engine_.stats_.sent : engine_.stats_.send_errors);
    if (!ok) engine_.slots_[slot_].local_failure = true;
  }
  void arm_timeout(Duration d) override {
    Slot& slot = engine_.slots_[slot_];
    slot.timeout = d;
    const SteadyTime now = engine_.clock_.now();
    if (slot.armed == SteadyTime{}) slot.armed = now;
    slot.deadline = now + d;
    slot.wall_deadline = engine_.clock_.wall() + d;
    engine_.deadlines_.push({slot.deadline, slot_, slot.generation});
  }

 private:
  Engine& engine_;
  std::uint32_t slot_;
};

std::size_t finished_reserve(const EngineOptions& options) {
  const double flows = std::min(options.expected_pps * std::chrono::duration<double>(options.remember_finished).count(),
                                double(options.remember_finished_max));
  return flows > double(kGrowthFreeFlows) ? static_cast<std::size_t>(flows) : 0;
}

Engine::Engine(Clock& clock, Wire& wire, FilterParams params, EngineOptions options)
    : clock_(clock),
      wire_(wire),
      params_(params),
      options_(options),
      finished_(options.remember_finished_max, random_salt()) {
  if (const std::size_t flows = finished_reserve(options)) finished_.reserve(flows);
  // libsodium draws from getrandom(2), and aborts rather than hand out a weak key.
  randombytes_buf(secret_.data(), secret_.size());
  randombytes_buf(counter_key_.data(), counter_key_.size());
  wire_.set_frame_handler([this](int link_type, const std::uint8_t* data, std::size_t size, WallTime stamp) {
    on_frame(link_type, data, size, stamp);
  });
  wire_.set_send_failure_handler(
      [this](std::uint64_t token, const std::string& error) { on_send_failure(token, error); });
}

void Engine::on_send_failure(std::uint64_t token, const std::string& error) {
  // Counted as sent when it was queued: it was not.
  ++stats_.send_errors;
  if (stats_.sent > 0) --stats_.sent;
  const auto idx = static_cast<std::uint32_t>(token >> 32);
  if (idx >= slots_.size()) return;
  Slot& slot = slots_[idx];
  if (!slot.active || slot.generation != static_cast<std::uint32_t>(token)) return;  // over already
  slot.local_failure = true;
  slot.probe->on_send_error(error);
  if (slot.probe->finished()) complete(idx);
}

std::uint16_t Engine::next_random() {
  std::array<std::uint8_t, 8> block{};
  const std::uint64_t n = counter_++;
  for (int i = 0; i < 8; ++i) block[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
  return static_cast<std::uint16_t>(keyed_hash(counter_key_, block));
}

void Engine::launch(std::unique_ptr<Probe> probe, Done done) {
  std::uint32_t idx;
  if (!free_slots_.empty()) {
    idx = free_slots_.back();
    free_slots_.pop_back();
  } else {
    idx = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[idx];
  slot.probe = std::move(probe);
  slot.done = std::move(done);
  slot.active = true;
  ++stats_.launched;
  SlotContext ctx(*this, idx);
  Probe* p = slot.probe.get();
  p->start(ctx);
  if (p->finished()) complete(idx);
}

void Engine::complete(std::uint32_t idx) {
  Slot& slot = slots_[idx];
  const ProbeStatus status = slot.probe->result().status;
  for (const auto& key : slot.keys) {
    flows_.erase(key);
    finished_.remember(key, status == ProbeStatus::timeout, clock_.now() + options_.remember_finished);
  }
  if (status == ProbeStatus::timeout) ++stats_.timeouts;
  else if (status != ProbeStatus::error) ++stats_.answered;
  for (int fd : slot.fds) fd_service_.unwatch(fd);
  auto probe = std::move(slot.probe);
  auto done = std::move(slot.done);
  // Failed because of this host (a DNS query whose send found no route ends
  // as unreachable, from our own kernel): local, whatever the status says.
  const bool local = slot.local_failure && (status == ProbeStatus::error || status == ProbeStatus::unreachable);
  // Kernel stamps read the wall clock: one set (stepped) between the two
  // ends of an RTT makes it negative, or longer than the probe has been out
  // by the steady clock. Then that steady measure stands in (from the first
  // arm_timeout to now, an upper bound): a user-space clock, counted and
  // said on the record. The slack covers the two clocks' rates (NTP slews
  // the wall clock by at most 500 ppm) and is below any step NTP makes
  // (ntpd steps offsets over 128 ms; smaller ones it slews, as chrony does).
  std::optional<Duration> steady_rtt;
  if (const auto& rtt = probe->result().rtt; rtt && slot.armed != SteadyTime{}) {
    const Duration out = clock_.now() - slot.armed;
    if (*rtt < Duration::zero() || *rtt > out + out / 1000 + std::chrono::milliseconds(100)) {
      steady_rtt = out;
      ++stats_.clock_stepped;
    }
  }
  slot.armed = {};
  // The clock of an RTT timed from the wall clock at either end, for the record to say.
  const char* fallback = steady_rtt                                ? "user"
                         : !probe->result().rtt                      ? nullptr
                         : slot.tx_user_clock && slot.rx_user_clock ? "user"
                         : slot.tx_user_clock                       ? "kernel_rx"
                         : slot.rx_user_clock                       ? "kernel_tx"
                                                                    : nullptr;
  slot.tx_user_clock = false;
  slot.rx_user_clock = false;
  slot.keys.clear();
  slot.fds.clear();
  slot.active = false;
  slot.local_failure = false;
  slot.wall_deadline.reset();
  slot.deadline_from_send = false;
  slot.ticket = 0;
  ++slot.generation;
  free_slots_.push_back(idx);
  if (!done) return;
  // May launch more probes: the slot is no longer referenced.
  if (local || fallback) {
    ProbeResult result = probe->result();
    if (local) result.local_error = true;
    if (steady_rtt) result.rtt = steady_rtt;
    if (fallback) result.rtt_clock = fallback;
    done(result);
  } else {
    done(probe->result());
  }
}

DnsSockets* Engine::dns_sockets() {
  if (!dns_ && fd_service_.watch)
    dns_ = std::make_unique<DnsSockets>(
        clock_, fd_service_.watch, fd_service_.unwatch,
        [this](std::uint64_t token, const DnsSocketMessage& message) { on_dns_message(token, message); });
  return dns_.get();
}

void Engine::on_dns_message(std::uint64_t token, const DnsSocketMessage& message) {
  const auto idx = static_cast<std::uint32_t>(token >> 32);
  if (idx >= slots_.size()) return;
  Slot& slot = slots_[idx];
  if (!slot.active || slot.generation != static_cast<std::uint32_t>(token)) return;
  SlotContext ctx(*this, idx);
  slot.probe->on_dns_message(ctx, message);
  if (slot.probe->finished()) complete(idx);
}

void Engine::on_ready(std::uint32_t idx, std::uint32_t generation, int fd, std::uint32_t events) {
  Slot& slot = slots_[idx];
  if (!slot.active || slot.generation != generation) return;
  SlotContext ctx(*this, idx);
  slot.probe->on_ready(ctx, fd, events);
  if (slot.probe->finished()) complete(idx);
}

std::optional<SteadyTime> Engine::next_deadline() {
  while (!deadlines_.empty()) {
    const Deadline& d = deadlines_.top();
    const Slot& slot = slots_[d.slot];
    if (slot.active && slot.generation == d.generation && d.when == slot.deadline) return d.when;
    deadlines_.pop();  // answered (or ended) already, or moved later
  }
  return std::nullopt;
}

int Engine::settle_sends() {
  if (dns_) dns_->flush();
  if (!sent_since_settle_) return 0;
  sent_since_settle_ = false;
  return wire_.drain(kMaxFramesPerWake);
}

void Engine::expire(SteadyTime now) {
  bool drained = false;
  while (!deadlines_.empty() && deadlines_.top().when <= now) {
    const Deadline d = deadlines_.top();
    Slot& slot = slots_[d.slot];
    if (!slot.active || slot.generation != d.generation || d.when != slot.deadline) {  // answered, or moved later
      deadlines_.pop();
      continue;
    }
    if (!drained) {
      // Before the first timeout, the answers already in the capture: the
      // loop may be behind the wire. Bounded (kExpireDrainRounds times
      // kMaxFramesPerWake frames: 17 ms of a 120,000/s schedule's frames),
      // so that a flood of frames cannot hold the loop here long. Then the
      // top again (it may be answered).
      drained = true;
      for (int round = 0; round < kExpireDrainRounds && wire_.drain(kMaxFramesPerWake) >= kMaxFramesPerWake; ++round) {
      }
      continue;
    }
    deadlines_.pop();
    if (wire_.waiting(slot.ticket)) {
      // Its packet has not left yet (the sending thread is behind): its
      // wait has not begun. A whole timeout from now; the capture's stamp
      // of the packet leaving sets it right (count_from_send).
      slot.deadline = now + slot.timeout;
      slot.wall_deadline = clock_.wall() + slot.timeout;
      deadlines_.push({slot.deadline, d.slot, slot.generation});
      continue;
    }
    slot.probe->on_timeout();
    if (slot.probe->finished()) complete(d.slot);
  }
  finished_.forget_until(now);
}

void Engine::on_frame(int link_type, const std::uint8_t* data, std::size_t size, WallTime stamp) {
  ++stats_.captured;
  auto packet = decode_frame(link_type, data, size, nullptr);
  if (!packet) {
    ++stats_.malformed;
    return;
  }
  auto classified = classify(*packet, params_);
  if (!classified) {
    ++stats_.foreign;
    return;
  }
  if (auto it = flows_.find(classified->key); it != flows_.end()) {
    const std::uint32_t idx = it->second;
    Probe* probe = slots_[idx].probe.get();
    if (classified->outgoing) {
      probe->on_sent(stamp);
      count_from_send(idx, stamp);
    } else if (const auto& deadline = slots_[idx].wall_deadline;
               deadline && stamp > *deadline && clock_.now() > slots_[idx].deadline) {
      // It reached this host after the probe's deadline: the probe timed
      // out, whenever the loop gets round to reading the answer (after a
      // stall, perhaps long after). Before the steady deadline, a stamp
      // past the wall one means the wall clock was set forward since the
      // probe left: not late.
      ++stats_.late;
      probe->on_timeout();
      if (probe->finished()) complete(idx);
    } else if (probe->on_packet(*packet, stamp)) {
      Slot& slot = slots_[idx];
      slot.tx_user_clock = !probe->result().sent_kernel_stamp;
      slot.rx_user_clock = wire_.frame_from_user_clock();
      if (slot.tx_user_clock) ++stats_.tx_stamp_missing;
      if (slot.rx_user_clock) ++stats_.rx_stamp_missing;
      if (probe->finished()) complete(idx);
    } else {
      ++stats_.spoofed;
    }
    return;
  }
  if (classified->outgoing) return;  // our own packet of a probe already over (or of a peer engine)
  switch (finished_.find(classified->key)) {
    case FinishedMemory::Kind::timed_out: ++stats_.late; break;
    case FinishedMemory::Kind::answered: ++stats_.duplicate; break;
    case FinishedMemory::Kind::unknown: ++stats_.stray; break;
  }
}

void Engine::count_from_send(std::uint32_t idx, WallTime kernel_tx) {
  Slot& slot = slots_[idx];
  if (slot.deadline_from_send || !slot.wall_deadline) return;  // once: loopback shows a packet twice
  slot.deadline_from_send = true;
  // A delay of under 1/64 of the timeout is left as it is: it would cost
  // every probe a second entry in the heap for next to nothing.
  const Duration behind = kernel_tx - (*slot.wall_deadline - slot.timeout);
  if (behind <= slot.timeout / 64) return;
  slot.wall_deadline = *slot.wall_deadline + behind;
  // The packet left before it is read: never more than a timeout from now,
  // even when the wall clock was set forward (by years, at a first NTP
  // sync) between the launch and the stamp.
  slot.deadline = std::min(slot.deadline + behind, clock_.now() + slot.timeout);
  deadlines_.push({slot.deadline, idx, slot.generation});
}

EngineStats Engine::stats() const {
  EngineStats s = stats_;
  s.capture_dropped = wire_.dropped();
  if (dns_) s.stray += dns_->stray();
  return s;
}

}  // namespace outpost
