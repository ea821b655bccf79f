#include "resolve.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

namespace outpost {

namespace {

using Family = IpAddress::Family;

const char* family_name(Family family) { return family == Family::v4 ? "IPv4" : "IPv6"; }

// The families to answer for, in order; none stands for either (auto).
std::vector<Family> wanted(TargetFamily family) {
  switch (family) {
    case TargetFamily::automatic: return {Family::none};
    case TargetFamily::v4: return {Family::v4};
    case TargetFamily::v6: return {Family::v6};
    case TargetFamily::both: return {Family::v4, Family::v6};
  }
  return {Family::none};
}

// Every address getaddrinfo gives for a name, in its order; or its error.
std::vector<IpAddress> look_up(const std::string& name, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;  // both families, so that a missing one can be told from a failed lookup
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* list = nullptr;
  const int rc = getaddrinfo(name.c_str(), nullptr, &hints, &list);
  if (rc != 0) {
    error = "cannot resolve host '" + name + "': " + gai_strerror(rc);
    return {};
  }
  std::vector<IpAddress> addresses;
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, std::min<std::size_t>(ai->ai_addrlen, sizeof ss));
    if (auto a = IpAddress::from_sockaddr(ss)) addresses.push_back(*a);
  }
  freeaddrinfo(list);
  return addresses;
}

// Runs work(i) for i in [0, count) on up to `parallel` threads.
template <class Work>
void run_side_by_side(std::size_t count, unsigned parallel, Work work) {
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < count;) work(i);
  };
  const std::size_t threads = std::min<std::size_t>(std::max(1u, parallel), count);
  if (threads <= 1) {
    worker();
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
}

}  // namespace

std::vector<Resolved> choose_addresses(const std::string& name, const std::vector<IpAddress>& addresses,
                                       TargetFamily family) {
  // The first address of a family that can be a target; a name that
  // resolves only to what cannot (a filtering resolver's 0.0.0.0, a
  // multicast group) says so rather than "has no address".
  auto first = [&](Family f) {
    auto it = std::find_if(addresses.begin(), addresses.end(), [f](const IpAddress& a) {
      return a.family() == f && target_address_problem(a.bytes(), a.size()).empty();
    });
    return it == addresses.end() ? IpAddress{} : *it;
  };
  auto refused = [&](Family f) {
    auto it = std::find_if(addresses.begin(), addresses.end(),
                           [f](const IpAddress& a) { return f == Family::none || a.family() == f; });
    return it == addresses.end() ? std::string()
                                 : "host '" + name + "' resolves to " + it->to_string() + ", " +
                                       std::string(target_address_problem(it->bytes(), it->size()));
  };
  std::vector<Resolved> out;
  for (Family f : wanted(family)) {
    if (f == Family::none) {
      IpAddress a = first(Family::v4);
      if (!a) a = first(Family::v6);
      if (a) out.push_back({a, {}, f});
      else if (auto why = refused(f); !why.empty()) out.push_back({{}, why, f});
      else out.push_back({{}, "host '" + name + "' has no IPv4 or IPv6 address", f});
    } else if (IpAddress a = first(f)) {
      out.push_back({a, {}, f});
    } else if (auto why = refused(f); !why.empty()) {
      out.push_back({{}, why, f});
    } else {
      out.push_back({{}, "host '" + name + "' has no " + family_name(f) + " address", f});
    }
  }
  return out;
}

std::vector<Resolved> resolve_target(const std::string& name, TargetFamily family) {
  if (auto literal = IpAddress::parse(name)) {
    const std::string_view problem = target_address_problem(literal->bytes(), literal->size());
    std::vector<Resolved> out;
    for (Family f : wanted(family)) {
      if (!problem.empty()) out.push_back({{}, "'" + name + "' is " + std::string(problem), f});
      else if (f == Family::none || literal->family() == f) out.push_back({*literal, {}, f});
      else out.push_back({{}, "'" + name + "' is not an " + family_name(f) + " address", f});
    }
    return out;
  }
  std::string error;
  std::vector<IpAddress> addresses = look_up(name, error);
  if (!error.empty()) {
    std::vector<Resolved> out;
    for (Family f : wanted(family)) out.push_back({{}, error, f});
    return out;
  }
  return choose_addresses(name, addresses, family);
}

Resolved resolve_target(const std::string& name) { return resolve_target(name, TargetFamily::automatic).front(); }

std::vector<Resolved> resolve_targets(const std::vector<std::string>& names, unsigned parallel) {
  std::vector<Resolved> out(names.size());
  run_side_by_side(names.size(), parallel, [&](std::size_t i) { out[i] = resolve_target(names[i]); });
  return out;
}

std::vector<std::vector<Resolved>> resolve_targets(const std::vector<std::string>& names,
                                                   const std::vector<TargetFamily>& families, unsigned parallel) {
  std::vector<std::vector<Resolved>> out(names.size());
  run_side_by_side(names.size(), parallel, [&](std::size_t i) {
    out[i] = resolve_target(names[i], i < families.size() ? families[i] : TargetFamily::automatic);
  });
  return out;
}

}  // namespace outpost
