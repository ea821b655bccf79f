// libFuzzer target for the packet demux: the same bytes as a frame of each
// link type libpcap gives on Linux (decode_frame), as a bare IP datagram
// (decode_ip), and whatever decodes through classify() as the engine does.

#include <pcap/dlt.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "packet_decode.hpp"
#include "registry.hpp"

namespace {

const int kLinkTypes[] = {
    DLT_EN10MB,     DLT_RAW,  DLT_LINUX_SLL,
#ifdef DLT_IPV4
    DLT_IPV4,       DLT_IPV6,
#endif
#ifdef DLT_LINUX_SLL2
    DLT_LINUX_SLL2,
#endif
};

void classify(const std::optional<outpost::DecodedPacket>& packet, const std::string& why) {
  if (!packet) return;
  // The identifier from the packet itself, so that echo and probe matches are reached.
  outpost::FilterParams params;
  params.icmp_ident = packet->l4.icmp_id;
  outpost::classify(*packet, params);
  if (packet->quote) {
    params.icmp_ident = packet->quote->l4.icmp_id;
    outpost::classify(*packet, params);
  }
  outpost::describe_icmp_error(packet->l4.proto, packet->l4.icmp_type, packet->l4.icmp_code);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string why;
  for (int link_type : kLinkTypes) classify(outpost::decode_frame(link_type, data, size, &why), why);
  classify(outpost::decode_ip(data, size, &why), why);
  return 0;
}
