// The packed last good traces: a trace comes back field for field (IPv4 and
// IPv6 hops, silent hops, MPLS labels, extreme values), a damaged packing is
// refused at every length rather than read past its end, and the store keeps
// one trace per key and visits them in key order.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "trace_store.hpp"

using namespace outpost;
using namespace std::chrono_literals;

namespace {

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

TraceResult sample() {
  TraceResult t;
  t.target = ip("198.18.3.7");
  t.spec.method = TraceMethod::tcp;
  t.spec.port = 443;
  t.spec.first_ttl = 2;
  t.spec.max_ttl = 40;
  t.spec.attempts = 3;
  t.spec.gap_limit = 6;
  t.spec.parallel = 12;
  t.spec.timeout = 1500ms;
  t.started = WallTime(Duration(1764547200123456789LL));
  t.reached = true;
  t.stop_reason = "reached";
  t.flow_id = 0xfffffffeU;
  TraceHop a;
  a.ttl = 2;
  a.addr = ip("198.19.0.2");
  a.rtt = 812345ns;
  a.icmp_type = 11;
  a.icmp_code = 0;
  a.quoted_ttl = 1;
  a.reply_ttl = 254;
  a.mpls = {{16001, 3, false, 1}, {0xfffff, 7, true, 255}};
  a.probes_sent = 1;
  TraceHop silent;
  silent.ttl = 3;
  silent.probes_sent = 3;
  TraceHop reused;  // taken from another path, not probed
  reused.ttl = 1;
  reused.addr = ip("198.19.0.1");
  reused.icmp_type = 11;
  reused.reused_from = WallTime(1700000000123456789ns);
  TraceHop b;
  b.ttl = 4;
  b.addr = ip("2001:db8::ff:1");
  b.rtt = Duration(-5);  // nonsense, but kept as it was
  b.icmp_type = 0;
  b.icmp_code = 255;
  b.reply_ttl = 60;
  b.probes_sent = 2;
  b.is_target = true;
  t.hops = {reused, a, silent, b};
  return t;
}

void check_same(const TraceResult& x, const TraceResult& y) {
  CHECK(x.target == y.target);
  CHECK(x.spec.method == y.spec.method);
  CHECK(x.spec.port == y.spec.port);
  CHECK(x.spec.first_ttl == y.spec.first_ttl);
  CHECK(x.spec.max_ttl == y.spec.max_ttl);
  CHECK(x.spec.attempts == y.spec.attempts);
  CHECK(x.spec.gap_limit == y.spec.gap_limit);
  CHECK(x.spec.parallel == y.spec.parallel);
  CHECK(x.spec.timeout == y.spec.timeout);
  CHECK(x.started == y.started);
  CHECK(x.reached == y.reached);
  CHECK(x.stop_reason == y.stop_reason);
  CHECK(x.flow_id == y.flow_id);
  CHECK(x.error == y.error);
  REQUIRE(x.hops.size() == y.hops.size());
  for (std::size_t i = 0; i < x.hops.size(); ++i) {
    const TraceHop& a = x.hops[i];
    const TraceHop& b = y.hops[i];
    CHECK(a.ttl == b.ttl);
    CHECK(a.addr == b.addr);
    CHECK(a.rtt == b.rtt);
    CHECK(a.icmp_type == b.icmp_type);
    CHECK(a.icmp_code == b.icmp_code);
    CHECK(a.quoted_ttl == b.quoted_ttl);
    CHECK(a.reply_ttl == b.reply_ttl);
    CHECK(a.mpls == b.mpls);
    CHECK(a.probes_sent == b.probes_sent);
    CHECK(a.is_target == b.is_target);
    CHECK(a.reused_from == b.reused_from);
  }
}

}  // namespace

TEST_CASE("trace store: a packed trace comes back field for field", "[trace_store]") {
  const TraceResult t = sample();
  const std::string packed = pack_trace(t);
  const auto back = unpack_trace(packed);
  REQUIRE(back);
  check_same(*back, t);
  // Much smaller than the structs it stands for.
  CHECK(packed.size() < 160);

  TraceResult empty;  // no target, no hops, an error
  empty.error = "no route to host";
  empty.stop_reason = "error";
  const auto back_empty = unpack_trace(pack_trace(empty));
  REQUIRE(back_empty);
  check_same(*back_empty, empty);
  CHECK_FALSE(back_empty->target);
}

TEST_CASE("trace store: a damaged packing is refused, never read past its end", "[trace_store]") {
  const std::string packed = pack_trace(sample());
  for (std::size_t n = 0; n < packed.size(); ++n) CHECK_FALSE(unpack_trace(packed.substr(0, n)));
  CHECK_FALSE(unpack_trace(packed + "x"));  // bytes after the end
  std::string other_version = packed;
  other_version[0] = 9;
  CHECK_FALSE(unpack_trace(other_version));
  std::string huge_count = packed.substr(0, 1) + std::string(12, '\xff');
  CHECK_FALSE(unpack_trace(huge_count));
}

TEST_CASE("trace store: one trace per key, replaced, erased, visited in key order", "[trace_store]") {
  TraceStore store;
  TraceResult t = sample();
  store.put("net2", t);
  t.target = ip("198.18.0.1");
  store.put("net1", t);
  t.flow_id = 7;
  store.put("net1", t);  // replaces
  CHECK(store.size() == 2);
  REQUIRE(store.get("net1"));
  CHECK(store.get("net1")->flow_id == 7);
  CHECK_FALSE(store.get("net3"));
  std::vector<std::string> order;
  store.for_each([&](const std::string& key, const TraceResult& trace) {
    order.push_back(key);
    CHECK(trace.hops.size() == 4);
  });
  CHECK(order == std::vector<std::string>{"net1", "net2"});
  CHECK(store.erase("net2"));
  CHECK_FALSE(store.erase("net2"));
  CHECK(store.size() == 1);
}

TEST_CASE("trace store: erasing any key leaves the others whole, whatever the order", "[trace_store]") {
  TraceStore store;
  TraceResult t = sample();
  const std::string long_key(300, 'x');  // a key length of two varint bytes
  for (int i = 0; i < 50; ++i) {
    t.flow_id = static_cast<std::uint32_t>(i);
    store.put(i == 7 ? long_key : "target-" + std::to_string(i), t);
  }
  for (int i = 0; i < 50; i += 3) CHECK(store.erase(i == 7 ? long_key : "target-" + std::to_string(i)));
  CHECK(store.size() == 33);
  int missing = 0, wrong = 0;
  for (int i = 0; i < 50; ++i) {
    const auto got = store.get(i == 7 ? long_key : "target-" + std::to_string(i));
    if (i % 3 == 0) {
      if (got) ++wrong;
    } else if (!got) {
      ++missing;
    } else if (got->flow_id != static_cast<std::uint32_t>(i)) {
      ++wrong;
    }
  }
  CHECK(missing == 0);
  CHECK(wrong == 0);
  REQUIRE(store.get(long_key));  // 7 is not a multiple of 3: kept
  CHECK(store.get(long_key)->flow_id == 7);
}
