// RawWire's route watch, in a network namespace of its own (a forked child:
// as root, a new network namespace; otherwise a new user namespace too, where
// the child is root of its own): a route is kept while nothing changes, and
// a route deleted or changed is forgotten once the watch is read. Only
// loopback inside the namespace; no packet is sent.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "clock.hpp"
#include "netns_child.hpp"
#include "wire.hpp"

using outpost::IpAddress;
using outpost::test::enter_namespace;
using outpost::test::run;
using outpost::test::run_in_child;

namespace {

// In the child: a namespace of its own whose loopback routes 198.51.100.0/24
// from 10.77.0.1, or "skip: why".
std::string enter_routed_namespace() {
  if (auto why = enter_namespace(); !why.empty()) return why;
  if (!run("ip link set lo up") || !run("ip addr add 10.77.0.1/32 dev lo") ||
      !run("ip route add 198.51.100.0/24 dev lo src 10.77.0.1"))
    return "skip: ip cannot set up the namespace's loopback";
  return "";
}

// The checks, in the child: "ok", "skip: why", or what failed.
std::string route_watch_checks() {
  if (auto why = enter_routed_namespace(); !why.empty()) return why;
  outpost::SystemClock clock;
  outpost::RawWireOptions options;
  options.interface = "";
  options.route_cache_watched = std::chrono::hours(1);
  outpost::RawWire wire(clock, options, outpost::FilterParams{0x1234});
  std::vector<int> watched;
  wire.set_fd_watcher([&](int fd) { watched.push_back(fd); });
  std::string error;
  if (!wire.open(&error)) return "skip: " + error;
  if (!wire.watching_routes()) return "no route watch after open()";
  if (watched.size() != 1) return "the route watch was not handed to the watcher";
  const int watch = watched[0];
  const IpAddress dst = *IpAddress::parse("198.51.100.7");
  auto source = [&] {
    std::string why;
    const IpAddress s = wire.prepare(dst, &why);
    return s ? s.to_string() : "none (" + why + ")";
  };
  if (auto s = source(); s != "10.77.0.1") return "first lookup: " + s;
  wire.on_readable(watch);  // whatever the capture's opening changed
  const auto changes = wire.route_changes();
  // Deleted, but the watch not read yet: the route is still the one kept.
  if (!run("ip route del 198.51.100.0/24")) return "ip route del failed";
  if (auto s = source(); s != "10.77.0.1") return "kept route: " + s;
  wire.on_readable(watch);
  if (wire.route_changes() != changes + 1) return "the deletion was not seen";
  if (auto s = source(); s.find("none (no route to 198.51.100.7") != 0) return "after the deletion: " + s;
  // A route back, from another source: found at the next lookup after the watch is read.
  if (!run("ip addr add 10.77.0.2/32 dev lo") || !run("ip route add 198.51.100.0/24 dev lo src 10.77.0.2"))
    return "ip route add failed";
  wire.on_readable(watch);
  if (auto s = source(); s != "10.77.0.2") return "after the new route: " + s;
  // Nothing changed since: nothing forgotten on a read of the watch.
  const auto settled = wire.route_changes();
  wire.on_readable(watch);
  if (wire.route_changes() != settled) return "a read with no change forgot the routes";
  return "ok";
}

// A command at the terminal's wire: no route watch, no IPv6 raw socket.
std::string unwatched_checks() {
  if (auto why = enter_routed_namespace(); !why.empty()) return why;
  outpost::SystemClock clock;
  outpost::RawWireOptions options;
  options.watch_routes = false;
  options.ipv6 = false;
  outpost::RawWire wire(clock, options, outpost::FilterParams{0x1234});
  std::vector<int> watched;
  wire.set_fd_watcher([&](int fd) { watched.push_back(fd); });
  std::string error;
  if (!wire.open(&error)) return "skip: " + error;
  if (wire.watching_routes()) return "a route watch with watch_routes false";
  if (!watched.empty()) return "a descriptor was handed to the watcher";
  std::string why;
  if (auto s = wire.prepare(*IpAddress::parse("198.51.100.7"), &why); s.to_string() != "10.77.0.1")
    return "IPv4 lookup: " + (s ? s.to_string() : why);
  // Kept route_cache (5 s) with nothing to say it changed.
  if (!run("ip route del 198.51.100.0/24")) return "ip route del failed";
  if (auto s = wire.prepare(*IpAddress::parse("198.51.100.7"), &why); s.to_string() != "10.77.0.1")
    return "kept route: " + (s ? s.to_string() : why);
  const std::uint8_t datagram[40] = {0x60};
  if (wire.send(*IpAddress::parse("::1"), datagram, &error)) return "an IPv6 datagram went out without ipv6";
  if (error != "no IPv6 raw socket on this host") return "IPv6 send: " + error;
  return "ok";
}

}  // namespace

TEST_CASE("raw wire: routes are kept until the kernel says they changed", "[route]") {
  run_in_child(route_watch_checks, "route watch test");
}

TEST_CASE("raw wire: a command at the terminal's wire watches no routes and opens no IPv6 socket", "[route]") {
  run_in_child(unwatched_checks, "unwatched wire test");
}
