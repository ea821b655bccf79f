// libFuzzer target for frame -> probe matching through the Engine, on a fake
// wire and a fake clock: a handful of probes in flight (ICMP echo v4 and v6,
// TCP SYN v4 and v6, UDP and TCP trace probes, and two whole traces), then
// the input as a list of records, each one captured frame: raw bytes of any
// link type, or one built around a datagram the engine really sent (an echo
// reply, a SYN-ACK or RST, ICMP time-exceeded or unreachable errors quoting
// it whole or cut, with or without an RFC 4884 / 4950 MPLS extension, our
// own datagram leaving) with the input's bytes patched in, so that the
// matching code behind the flow key and the cookie is reached; or a step of
// the clock. Then the clock runs past every timeout, and the engine's books
// must balance: every probe ended once, answered + timeouts + errors ==
// launched, nothing left in flight, every frame counted as captured.
// libsodium's random source is replaced by a fixed stream, so that the same
// input meets the same keys, identifiers and cookies each time.
// OUTPOST_FUZZ_VERBOSE=1 prints the engine's counters for each input run
// (to see which inputs reach an answer: `fuzz_engine FILE...`).

#include <pcap/dlt.h>
#include <sodium.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "clock.hpp"
#include "engine.hpp"
#include "icmp_echo.hpp"
#include "tcp_syn.hpp"
#include "traceroute.hpp"
#include "wire.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;
using outpost::IpAddress;
using outpost::ProbeResult;
using outpost::ProbeStatus;
using namespace std::chrono_literals;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

// ------------------------------------------------------------ fixed randomness

std::uint64_t rng_state = 0;
std::uint64_t splitmix() {
  std::uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
const char* fixed_name() { return "fuzz-fixed"; }
std::uint32_t fixed_random() { return static_cast<std::uint32_t>(splitmix()); }
void fixed_buf(void* buf, std::size_t size) {
  auto* p = static_cast<std::uint8_t*>(buf);
  for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<std::uint8_t>(splitmix());
}
randombytes_implementation fixed_source = {fixed_name, fixed_random, nullptr, nullptr, fixed_buf, nullptr};

// ------------------------------------------------------------ the lab

IpAddress addr(const char* text) { return *IpAddress::parse(text); }
const IpAddress kUs = addr("198.19.0.1");
const IpAddress kTarget = addr("198.18.0.1");
const IpAddress kRouter = addr("198.18.0.254");
const IpAddress kOther = addr("203.0.113.9");
const IpAddress kUs6 = addr("2001:db8::1");
const IpAddress kTarget6 = addr("2001:db8:ffff::2");
const IpAddress kRouter6 = addr("2001:db8:ffff::fe");
const IpAddress kOther6 = addr("2001:db8:bad::9");

class FakeWire final : public outpost::Wire {
 public:
  std::vector<Bytes> sent;
  IpAddress prepare(const IpAddress& dst, std::string*) override { return dst.is_v6() ? kUs6 : kUs; }
  bool send(const IpAddress&, std::span<const std::uint8_t> datagram, std::string*) override {
    sent.emplace_back(datagram.begin(), datagram.end());
    return true;
  }
  void set_frame_handler(FrameHandler handler) override { handler_ = std::move(handler); }
  void capture(int link_type, const Bytes& frame, outpost::WallTime stamp) {
    handler_(link_type, frame.data(), frame.size(), stamp);
  }

 private:
  FrameHandler handler_;
};

// ------------------------------------------------------------ building frames

bool is_v6(const Bytes& d) { return !d.empty() && d[0] >> 4 == 6; }
std::size_t l4_offset(const Bytes& d) { return is_v6(d) ? 40 : static_cast<std::size_t>(d[0] & 0x0f) * 4; }
int proto_of(const Bytes& d) { return is_v6(d) ? d[6] : d[9]; }
IpAddress src_of(const Bytes& d) { return is_v6(d) ? IpAddress::v6_bytes(&d[8]) : IpAddress::v4_bytes(&d[12]); }
IpAddress dst_of(const Bytes& d) { return is_v6(d) ? IpAddress::v6_bytes(&d[24]) : IpAddress::v4_bytes(&d[16]); }

void put16(Bytes& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}

std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
  return sum;
}
std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// The IP header's and the transport's checksums, recomputed (where the
// datagram is whole enough to have them).
void fix_checksums(Bytes& d) {
  if (d.size() < 20) return;
  const bool v6 = is_v6(d);
  if (!v6 && (d[0] >> 4 != 4 || d.size() < l4_offset(d) || l4_offset(d) < 20)) return;
  if (v6 && d.size() < 40) return;
  const std::size_t l4 = l4_offset(d);
  if (!v6) {
    put16(d, 10, 0);
    put16(d, 10, fold(sum16(d.data(), l4)));
  }
  const int proto = proto_of(d);
  const std::size_t at = proto == 6 ? 16 : proto == 17 ? 6 : 2;
  if ((proto != 1 && proto != 58 && proto != 6 && proto != 17) || d.size() < l4 + at + 2) return;
  put16(d, l4 + at, 0);
  const std::size_t len = d.size() - l4;
  std::uint32_t sum = 0;
  if (proto != 1) {  // the pseudo-header
    sum = v6 ? sum16(&d[8], 32) : sum16(&d[12], 8);
    sum += static_cast<std::uint32_t>(proto) + static_cast<std::uint32_t>(len);
  }
  put16(d, l4 + at, fold(sum16(&d[l4], len, sum)));
}

// An IP datagram from `from` to `to` carrying `payload`.
Bytes ip_datagram(const IpAddress& from, const IpAddress& to, int proto, const Bytes& payload, int ttl = 57) {
  Bytes d;
  if (from.is_v6()) {
    d.assign(40, 0);
    d[0] = 0x60;
    put16(d, 4, static_cast<std::uint32_t>(payload.size()));
    d[6] = static_cast<std::uint8_t>(proto);
    d[7] = static_cast<std::uint8_t>(ttl);
    std::memcpy(&d[8], from.bytes(), 16);
    std::memcpy(&d[24], to.bytes(), 16);
  } else {
    d.assign(20, 0);
    d[0] = 0x45;
    put16(d, 2, static_cast<std::uint32_t>(20 + payload.size()));
    put16(d, 4, 0x4242);
    d[8] = static_cast<std::uint8_t>(ttl);
    d[9] = static_cast<std::uint8_t>(proto);
    std::memcpy(&d[12], from.bytes(), 4);
    std::memcpy(&d[16], to.bytes(), 4);
  }
  d.insert(d.end(), payload.begin(), payload.end());
  fix_checksums(d);
  return d;
}

// The destination's own answer to one of our datagrams: an echo reply, a
// SYN-ACK or RST-ACK, or (to UDP) a port unreachable.
Bytes answer_to(const Bytes& sent, bool rst);

// An ICMP error from `from` to us quoting `quote`, with an RFC 4884 length
// and an RFC 4950 MPLS label stack when `mpls` (the quote then padded or cut
// to 128 bytes).
Bytes icmp_error(const IpAddress& from, const IpAddress& us, int type, int code, Bytes quote, bool mpls) {
  const bool v6 = from.is_v6();
  Bytes icmp = {static_cast<std::uint8_t>(type), static_cast<std::uint8_t>(code), 0, 0, 0, 0, 0, 0};
  if (mpls) {
    quote.resize(128, 0);
    icmp[v6 ? 4 : 5] = static_cast<std::uint8_t>(128 / (v6 ? 8 : 4));
  }
  icmp.insert(icmp.end(), quote.begin(), quote.end());
  if (mpls) {
    const std::size_t ext = icmp.size();
    const std::uint32_t entries[] = {16004u << 12 | 1, 299792u << 12 | 5u << 9 | 1u << 8 | 254};
    icmp.insert(icmp.end(), {0x20, 0, 0, 0, 0, 12, 1, 1});
    for (std::uint32_t e : entries)
      icmp.insert(icmp.end(), {static_cast<std::uint8_t>(e >> 24), static_cast<std::uint8_t>(e >> 16),
                               static_cast<std::uint8_t>(e >> 8), static_cast<std::uint8_t>(e)});
    put16(icmp, ext + 2, fold(sum16(&icmp[ext], icmp.size() - ext)));
  }
  return ip_datagram(from, us, v6 ? 58 : 1, icmp, 250);
}

Bytes answer_to(const Bytes& sent, bool rst) {
  const std::size_t l4 = l4_offset(sent);
  const IpAddress us = src_of(sent), them = dst_of(sent);
  const bool v6 = is_v6(sent);
  switch (proto_of(sent)) {
    case 1:
    case 58: {
      Bytes icmp(sent.begin() + static_cast<std::ptrdiff_t>(l4), sent.end());
      if (icmp.size() < 4) return {};
      icmp[0] = v6 ? 129 : 0;
      icmp[1] = 0;
      return ip_datagram(them, us, v6 ? 58 : 1, icmp);
    }
    case 6: {
      if (sent.size() < l4 + 20) return {};
      Bytes tcp(20, 0);
      tcp[0] = sent[l4 + 2], tcp[1] = sent[l4 + 3], tcp[2] = sent[l4], tcp[3] = sent[l4 + 1];
      const std::uint32_t isn = static_cast<std::uint32_t>(sent[l4 + 4] << 24 | sent[l4 + 5] << 16 |
                                                           sent[l4 + 6] << 8 | sent[l4 + 7]);
      put16(tcp, 4, 0x5eed), put16(tcp, 6, 0x0001);
      put16(tcp, 8, (isn + 1) >> 16), put16(tcp, 10, (isn + 1) & 0xffff);
      tcp[12] = 0x50;
      tcp[13] = rst ? 0x14 : 0x12;
      put16(tcp, 14, 65535);
      return ip_datagram(them, us, 6, tcp);
    }
    default:
      return icmp_error(them, us, v6 ? 1 : 3, v6 ? 4 : 3, sent, false);
  }
}

// ------------------------------------------------------------ the run

const int kLinkTypes[] = {DLT_RAW, DLT_EN10MB, DLT_LINUX_SLL,
#ifdef DLT_IPV4
                          DLT_IPV4, DLT_IPV6,
#endif
#ifdef DLT_LINUX_SLL2
                          DLT_LINUX_SLL2,
#endif
};

// Reads the input a byte at a time; zeros past its end.
struct Reader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t at = 0;
  bool done() const { return at >= size; }
  std::uint8_t byte() { return at < size ? data[at++] : 0; }
  Bytes take(std::size_t n) {
    n = std::min(n, size - std::min(at, size));
    Bytes b(data + at, data + at + n);
    at += n;
    return b;
  }
};

struct Run {
  outpost::FakeClock clock;
  FakeWire wire;
  outpost::Engine engine{clock, wire, outpost::FilterParams{0x1234}};
  std::deque<std::vector<ProbeResult>> ends;  // per probe launched: the results it was given
  std::vector<outpost::TraceResult> traces;
  std::uint64_t frames = 0;

  outpost::Trace::Launch launcher() {
    return [this](std::unique_ptr<outpost::Probe> probe, outpost::Engine::Done done) {
      const std::size_t i = ends.size();
      ends.emplace_back();
      engine.launch(std::move(probe), [this, i, done = std::move(done)](const ProbeResult& r) {
        ends[i].push_back(r);
        if (done) done(r);
      });
    };
  }

  void start() {
    auto launch = launcher();
    launch(std::make_unique<outpost::IcmpEchoProbe>(kTarget, 1s), nullptr);
    launch(std::make_unique<outpost::IcmpEchoProbe>(kTarget6, 1s), nullptr);
    launch(std::make_unique<outpost::IcmpEchoProbe>(kTarget, 1s, 2, 56, 0xbeef), nullptr);
    launch(std::make_unique<outpost::TcpSynProbe>(kTarget, 443, 1s), nullptr);
    launch(std::make_unique<outpost::TcpSynProbe>(kTarget6, 80, 1s), nullptr);
    launch(std::make_unique<outpost::UdpTraceProbe>(kTarget, 1s, 3, 61001, 33434, 7), nullptr);
    launch(std::make_unique<outpost::UdpTraceProbe>(kTarget6, 1s, 1, 61002, 33434, 8), nullptr);
    launch(std::make_unique<outpost::TcpTraceProbe>(kTarget, 1s, 4, 61003, 443, 9), nullptr);
    launch(std::make_unique<outpost::TcpTraceProbe>(kTarget6, 1s, 2, 61004, 443, 10), nullptr);
    for (auto method : {outpost::TraceMethod::udp, outpost::TraceMethod::icmp}) {
      outpost::TraceSpec spec;
      spec.method = method;
      spec.max_ttl = 4;
      spec.attempts = 1;
      spec.gap_limit = 3;
      spec.parallel = 2;
      const IpAddress target = method == outpost::TraceMethod::udp ? kTarget : kTarget6;
      outpost::Trace::create(spec, target, 0x5eed, clock.wall(), launch,
                             [this](const outpost::TraceResult& r) { traces.push_back(r); })
          ->start();
    }
  }

  void capture(int link_type, const Bytes& frame) {
    ++frames;
    wire.capture(link_type, frame, clock.wall() + 1ms);
  }

  // One record of the input.
  void step(Reader& in) {
    const std::uint8_t op = in.byte(), which = in.byte(), offset = in.byte(), length = in.byte();
    Bytes patch = in.take(length);
    if (op % 10 == 0) {
      capture(kLinkTypes[which % std::size(kLinkTypes)], patch);
      return;
    }
    if (op % 10 == 8) {
      clock.advance(std::chrono::milliseconds(20) * which);
      engine.expire(clock.now());
      return;
    }
    if (wire.sent.empty()) return;
    const Bytes& sent = wire.sent[which % wire.sent.size()];
    if (sent.size() < 20 || sent.size() < l4_offset(sent)) return;
    const bool v6 = is_v6(sent);
    const IpAddress us = src_of(sent);
    const IpAddress senders[] = {v6 ? kRouter6 : kRouter, dst_of(sent), v6 ? kOther6 : kOther, us};
    const IpAddress& from = senders[which >> 4 & 3];
    const Bytes cut(sent.begin(), sent.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(
                                                     sent.size(), l4_offset(sent) + 8)));
    Bytes frame;
    switch (op % 10) {
      case 1: frame = answer_to(sent, which & 0x40); break;
      case 2: frame = icmp_error(from, us, v6 ? 3 : 11, 0, sent, false); break;
      case 3: frame = icmp_error(from, us, v6 ? 3 : 11, 0, cut, false); break;
      case 4: frame = icmp_error(from, us, v6 ? 1 : 3, offset & 0x0f, sent, false); break;
      case 5: frame = icmp_error(from, us, v6 ? 1 : 3, offset & 0x0f, sent, true); break;
      case 6: frame = icmp_error(from, us, v6 ? 3 : 11, 0, sent, true); break;
      case 7: frame = sent; break;
      default: frame = answer_to(sent, which & 0x40); frame.resize(offset % (frame.size() + 1)); break;
    }
    // The input's bytes over the frame from `offset` on (growing it if need be).
    if (!patch.empty()) {
      const std::size_t at = offset % (frame.size() + 1);
      if (frame.size() < at + patch.size()) frame.resize(at + patch.size());
      std::copy(patch.begin(), patch.end(), frame.begin() + static_cast<std::ptrdiff_t>(at));
      if (which & 0x80) fix_checksums(frame);
    }
    capture(DLT_RAW, frame);
  }

  void finish_and_check() {
    // Past every timeout: traces launch their next probes as others end.
    for (int i = 0; i < 64 && engine.next_deadline(); ++i) {
      clock.advance(2s);
      engine.expire(clock.now());
    }
    require(!engine.next_deadline() && engine.in_flight() == 0);
    std::uint64_t answered = 0, timeouts = 0, errors = 0;
    for (const auto& end : ends) {
      require(end.size() == 1);  // every probe ended, once
      const ProbeStatus s = end[0].status;
      if (s == ProbeStatus::timeout) ++timeouts;
      else if (s == ProbeStatus::error) ++errors;
      else ++answered;
    }
    const auto stats = engine.stats();
    require(stats.launched == ends.size());
    require(stats.answered == answered && stats.timeouts == timeouts);
    require(stats.answered + stats.timeouts + errors == stats.launched);
    require(stats.captured == frames);
    require(stats.malformed + stats.foreign + stats.stray + stats.late + stats.duplicate + stats.spoofed <= frames);
    if (std::getenv("OUTPOST_FUZZ_VERBOSE"))
      std::fprintf(stderr, "launched %llu answered %llu timeouts %llu errors %llu spoofed %llu stray %llu late %llu "
                   "duplicate %llu foreign %llu malformed %llu; traces reached %d %d\n",
                   (unsigned long long)stats.launched, (unsigned long long)stats.answered,
                   (unsigned long long)stats.timeouts, (unsigned long long)errors, (unsigned long long)stats.spoofed,
                   (unsigned long long)stats.stray, (unsigned long long)stats.late,
                   (unsigned long long)stats.duplicate, (unsigned long long)stats.foreign,
                   (unsigned long long)stats.malformed, traces.size() > 0 && traces[0].reached,
                   traces.size() > 1 && traces[1].reached);
    require(traces.size() == 2);
    for (const auto& t : traces) {
      require(!t.stop_reason.empty() && t.hops.size() <= 4);
      // A trace is reached only by the target's own answer.
      if (t.reached)
        require(std::any_of(t.hops.begin(), t.hops.end(),
                            [&](const outpost::TraceHop& h) { return h.is_target && h.addr == t.target; }));
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  randombytes_set_implementation(&fixed_source);
  return sodium_init() < 0 ? 1 : 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rng_state = 0x07705eedull;
  Run run;
  run.start();
  Reader in{data, size};
  for (int records = 0; !in.done() && records < 256; ++records) run.step(in);
  run.finish_and_check();
  return 0;
}
