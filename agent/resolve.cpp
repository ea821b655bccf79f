#include "resolve.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <cstring>

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

}  // namespace outpost
