// The decoder outpost had while libtins parsed every captured datagram, kept
// here as the reference the hand decoder (probes/packet_decode.cpp) is held
// to on well-formed packets (decode_differential_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "packet_decode.hpp"

namespace tins_oracle {
std::optional<outpost::DecodedPacket> decode_ip(const std::uint8_t* data, std::size_t size, std::string* why);
}  // namespace tins_oracle
