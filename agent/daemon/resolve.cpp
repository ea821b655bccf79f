#include "resolve.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

namespace outpost {

Resolved resolve_target(const std::string& name) {
  if (auto literal = IpAddress::parse(name)) return {*literal, {}};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* list = nullptr;
  const int rc = getaddrinfo(name.c_str(), nullptr, &hints, &list);
  if (rc != 0) return {{}, "cannot resolve host '" + name + "': " + gai_strerror(rc)};
  IpAddress v4, v6;
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    auto a = IpAddress::from_sockaddr(ss);
    if (!a) continue;
    if (a->is_v4() && !v4) v4 = *a;
    if (a->is_v6() && !v6) v6 = *a;
  }
  freeaddrinfo(list);
  if (v4) return {v4, {}};
  if (v6) return {v6, {}};
  return {{}, "host '" + name + "' has no IPv4 or IPv6 address"};
}

std::vector<Resolved> resolve_targets(const std::vector<std::string>& names, unsigned parallel) {
  std::vector<Resolved> out(names.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < names.size();) out[i] = resolve_target(names[i]);
  };
  const std::size_t threads = std::min<std::size_t>(std::max(1u, parallel), names.size());
  if (threads <= 1) {
    work();
    return out;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return out;
}

}  // namespace outpost
