#include "answer_ring.hpp"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace outpost {

AnswerRing::~AnswerRing() {
  if (ring_) munmap(ring_, std::size_t{kBlockSize} * blocks_);
  if (fd_ >= 0) close(fd_);
}

bool AnswerRing::open(const std::string& interface, bool v6, std::uint16_t tcp_first_port, unsigned frames,
                      std::string* error) {
  auto fail = [&](const char* what) {
    const int saved = errno;  // the message's allocation may change errno
    *error = std::string("answer ring: ") + what + ": " + std::strerror(saved);
    if (ring_) munmap(ring_, std::size_t{kBlockSize} * blocks_);
    if (fd_ >= 0) close(fd_);
    ring_ = nullptr;
    fd_ = -1;
    frames_ = blocks_ = 0;
    return false;
  };
  unsigned ifindex = 0;
  if (!interface.empty() && (ifindex = if_nametoindex(interface.c_str())) == 0) return fail(interface.c_str());
  // Protocol 0: nothing comes in before the ring is set and bind() names
  // the protocol. No filter yet (read() attaches it when it is needed).
  fd_ = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return fail("socket");
  v6_ = v6;
  tcp_first_port_ = tcp_first_port;
  filtering_ = filter_failed_ = false;
  unwanted_ = 0;
  const int version = TPACKET_V2;
  tpacket_req req{};
  const unsigned blocks = std::clamp((frames + kFramesPerBlock - 1) / kFramesPerBlock, 1u, kMaxBlocks);
  req.tp_block_size = kBlockSize;
  req.tp_block_nr = blocks;
  req.tp_frame_size = kFrameSize;
  req.tp_frame_nr = kFramesPerBlock * blocks;
  if (setsockopt(fd_, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0) return fail("TPACKET_V2");
  if (setsockopt(fd_, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0) return fail("ring");
  void* ring = mmap(nullptr, std::size_t{kBlockSize} * blocks, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (ring == MAP_FAILED) return fail("mmap");
  ring_ = static_cast<std::uint8_t*>(ring);
  blocks_ = blocks;
  frames_ = req.tp_frame_nr;
  next_ = 0;
  // Bound to one protocol (IPv4 or IPv6) alone, the ring sees what comes
  // in, not what the host sends (only taps of every protocol do).
  sockaddr_ll at{};
  at.sll_family = AF_PACKET;
  at.sll_protocol = htons(v6 ? ETH_P_IPV6 : ETH_P_IP);
  at.sll_ifindex = static_cast<int>(ifindex);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) return fail("bind");
  return true;
}

// The kernel filter (classic BPF), which wanted() mirrors; it sees the IP
// header first.
bool AnswerRing::attach_filter() {
  // IPv4: it keeps whole datagrams and first fragments, ICMP, and TCP to
  // tcp_first_port_ and above (the IP header's length in the low nibble of
  // byte 0: BPF_MSH).
  const sock_filter no_tcp4{BPF_JMP | BPF_JA, 0, 0, 4};
  const sock_filter is_tcp4{BPF_JMP | BPF_JEQ | BPF_K, 0, 4, IPPROTO_TCP};
  const std::array<sock_filter, 10> filter4{{
      {BPF_LD | BPF_H | BPF_ABS, 0, 0, 6},
      {BPF_JMP | BPF_JSET | BPF_K, 7, 0, 0x1fff},
      {BPF_LD | BPF_B | BPF_ABS, 0, 0, 9},
      {BPF_JMP | BPF_JEQ | BPF_K, 4, 0, IPPROTO_ICMP},
      tcp_first_port_ ? is_tcp4 : no_tcp4,
      {BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0},
      {BPF_LD | BPF_H | BPF_IND, 0, 0, 2},
      {BPF_JMP | BPF_JGE | BPF_K, 0, 1, tcp_first_port_},
      {BPF_RET | BPF_K, 0, 0, 0xffff},
      {BPF_RET | BPF_K, 0, 0, 0},
  }};
  // IPv6: ICMPv6 right after the fixed header, or after a fragment header
  // of a first fragment; TCP to tcp_first_port_ and above right after the
  // fixed header. An answer with other extension headers before either
  // (rare) is not taken.
  const sock_filter no_tcp6{BPF_JMP | BPF_JA, 0, 0, 7};
  const sock_filter is_tcp6{BPF_JMP | BPF_JEQ | BPF_K, 0, 7, IPPROTO_TCP};
  const std::array<sock_filter, 12> filter6{{
      {BPF_LD | BPF_B | BPF_ABS, 0, 0, 6},                      // 0: next header
      {BPF_JMP | BPF_JEQ | BPF_K, 8, 0, IPPROTO_ICMPV6},        // 1: -> 10
      {BPF_JMP | BPF_JEQ | BPF_K, 3, 0, IPPROTO_FRAGMENT},      // 2: -> 6
      tcp_first_port_ ? is_tcp6 : no_tcp6,                       // 3: else -> 11
      {BPF_LD | BPF_H | BPF_ABS, 0, 0, 40 + 2},                 // 4: TCP's destination port
      {BPF_JMP | BPF_JGE | BPF_K, 4, 5, tcp_first_port_},        // 5: -> 10, 11
      {BPF_LD | BPF_H | BPF_ABS, 0, 0, 40 + 2},                 // 6: the fragment's offset
      {BPF_JMP | BPF_JSET | BPF_K, 3, 0, 0xfff8},               // 7: -> 11
      {BPF_LD | BPF_B | BPF_ABS, 0, 0, 40},                     // 8: its next header
      {BPF_JMP | BPF_JEQ | BPF_K, 0, 1, IPPROTO_ICMPV6},        // 9: -> 10, 11
      {BPF_RET | BPF_K, 0, 0, 0xffff},                          // 10
      {BPF_RET | BPF_K, 0, 0, 0},                               // 11
  }};
  sock_fprog program{};
  program.len = static_cast<unsigned short>(v6_ ? filter6.size() : filter4.size());
  program.filter = const_cast<sock_filter*>(v6_ ? filter6.data() : filter4.data());
  filtering_ = setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) == 0;
  filter_failed_ = !filtering_;
  return filtering_;
}

bool AnswerRing::wanted(const std::uint8_t* ip, std::size_t size, bool v6, std::uint16_t tcp_first_port) {
  auto u16 = [&](std::size_t at) { return static_cast<unsigned>(ip[at] << 8 | ip[at + 1]); };
  if (v6) {
    if (size < 40) return false;
    const unsigned next = ip[6];
    if (next == IPPROTO_ICMPV6) return true;
    if (next == IPPROTO_FRAGMENT) return size >= 44 && (u16(42) & 0xfff8) == 0 && ip[40] == IPPROTO_ICMPV6;
    return tcp_first_port && next == IPPROTO_TCP && size >= 44 && u16(42) >= tcp_first_port;
  }
  if (size < 10 || (u16(6) & 0x1fff) != 0) return false;
  if (ip[9] == IPPROTO_ICMP) return true;
  if (!tcp_first_port || ip[9] != IPPROTO_TCP) return false;
  const std::size_t header = std::size_t{ip[0] & 0x0fu} * 4;
  return size >= header + 4 && u16(header + 2) >= tcp_first_port;
}

bool AnswerRing::unwanted_frame(const std::uint8_t* frame) const {
  const auto* header = reinterpret_cast<const tpacket2_hdr*>(frame);
  const auto* from = reinterpret_cast<const sockaddr_ll*>(frame + TPACKET_ALIGN(sizeof(tpacket2_hdr)));
  if (from->sll_pkttype == PACKET_OUTGOING || header->tp_net >= kFrameSize) return false;  // never handed on anyway
  const std::size_t size = std::min<std::size_t>(header->tp_snaplen, kFrameSize - header->tp_net);
  return !wanted(frame + header->tp_net, size, v6_, tcp_first_port_);
}

void AnswerRing::screen() {
  if (!ring_ || filtering_ || filter_failed_) return;
  // The frames the kernel handed over lie from next_ on, in order.
  for (unsigned i = 0, at = next_; i < frames_; ++i, at = (at + 1) % frames_) {
    const std::uint8_t* frame = ring_ + std::size_t{at} * kFrameSize;
    const auto* header = reinterpret_cast<const tpacket2_hdr*>(frame);
    if (!(__atomic_load_n(&header->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) return;
    if (unwanted_frame(frame)) {
      attach_filter();
      return;
    }
  }
}

int AnswerRing::read(int max, const DatagramHandler& handler) {
  std::array<std::uint8_t, kFrameSize> copy;
  int n = 0;
  for (; n < max && ring_; ++n) {
    auto* frame = ring_ + std::size_t{next_} * kFrameSize;
    auto* header = reinterpret_cast<tpacket2_hdr*>(frame);
    if (!(__atomic_load_n(&header->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) break;
    const auto* from = reinterpret_cast<const sockaddr_ll*>(frame + TPACKET_ALIGN(sizeof(tpacket2_hdr)));
    bool answer = from->sll_pkttype != PACKET_OUTGOING && header->tp_net < kFrameSize;  // (never out)
    const std::size_t size = answer ? std::min<std::size_t>(header->tp_snaplen, kFrameSize - header->tp_net) : 0;
    if (answer && unwanted_frame(frame)) {
      answer = false;
      ++unwanted_;
      if (!filtering_ && !filter_failed_) attach_filter();  // what is still in the ring is checked here
    }
    if (answer) std::memcpy(copy.data(), frame + header->tp_net, size);
    const WallTime stamp{std::chrono::seconds(header->tp_sec) + std::chrono::nanoseconds(header->tp_nsec)};
    // The frame goes back to the kernel before the handler runs: a handler
    // that reads again (a probe sent from it, answered at once) starts at
    // the next one.
    __atomic_store_n(&header->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    next_ = (next_ + 1) % frames_;
    if (answer) handler(copy.data(), size, stamp);
  }
  return n;
}

std::uint64_t AnswerRing::dropped() const {
  tpacket_stats stats{};
  socklen_t len = sizeof stats;
  if (fd_ >= 0 && getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &stats, &len) == 0) drops_ += stats.tp_drops;
  return drops_;
}

}  // namespace outpost
