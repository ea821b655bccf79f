// outpost's addresses as libtins' (for the tests that build packets with
// libtins). Nothing else includes libtins' headers but the packet module
// (tins_forge_module.cpp): the agent loads libtins only with that module.
#pragma once

#include <tins/ip_address.h>
#include <tins/ipv6_address.h>

#include <cstdint>
#include <cstring>

#include "ip_address.hpp"

namespace outpost {

inline Tins::IPv4Address tins_v4(const IpAddress& a) {
  std::uint32_t network_order;
  std::memcpy(&network_order, a.bytes(), 4);
  return Tins::IPv4Address(network_order);
}

inline Tins::IPv6Address tins_v6(const IpAddress& a) { return Tins::IPv6Address(a.bytes()); }

}  // namespace outpost
