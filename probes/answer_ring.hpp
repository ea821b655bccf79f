// A command at the terminal's answers, from a small packet ring
// (TPACKET_V2) of one IP version, on every interface or agent.interface's.
// The kernel stamps each frame as the ring takes it, where a capture would:
// whether or not the host's receive stamps are on. Asking for those (a raw socket's) makes the
// kernel patch its own code, about 0.8 ms of the asking CPU on the 2-core
// VM, which a one-probe command would otherwise wait for; the ring costs
// about 0.1 ms to open and close.
// It hands on what a raw ICMP (or ICMPv6) socket and a raw TCP one from
// tcp_first_port up would, but before the host's firewall, and not what
// the host itself sends. The kernel filter that keeps out the rest is
// compiled and attached (0.1-0.18 ms here, half the ring's cost) only once
// a datagram it would have kept out comes in (read, or seen waiting as a
// probe goes): a quiet host never pays it, a busy one after its first
// unrelated datagram. Until then read() checks each frame as the filter
// would (wanted()).
// Leaves to others: what the datagrams mean (engine), send stamps
// (socket_receive.hpp), routes and sending (wire).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "socket_receive.hpp"  // DatagramHandler

namespace outpost {

class AnswerRing {
 public:
  AnswerRing() = default;
  ~AnswerRing();
  AnswerRing(const AnswerRing&) = delete;
  AnswerRing& operator=(const AnswerRing&) = delete;

  // Opens the ring on `interface` (empty: every interface) for IPv4 (or, v6,
  // IPv6), taking ICMP (ICMPv6), and TCP to ports of tcp_first_port and
  // above (0: no TCP), with room for `frames` datagrams at least (frames():
  // whole blocks of kFramesPerBlock, at most kMaxBlocks of them); false
  // with *error.
  bool open(const std::string& interface, bool v6, std::uint16_t tcp_first_port, unsigned frames, std::string* error);
  int fd() const { return fd_; }
  // Hands on up to max datagrams (from the IP header on), each with the
  // ring's stamp. How many frames were taken.
  int read(int max, const DatagramHandler& handler);
  // Attaches the kernel filter at once when a frame waiting in the ring is
  // one it would keep out; takes nothing. Called before each probe goes: on
  // a busy host the filter is then on before the answers come, rather than
  // after unrelated datagrams filled the ring.
  void screen();
  // Frames the kernel dropped for want of room, since the ring opened.
  std::uint64_t dropped() const;
  // Frames read that the kernel filter would have kept out (they came in
  // before it was attached); none is handed on.
  std::uint64_t unwanted() const { return unwanted_; }
  // Whether the kernel filter is attached (after the first unwanted frame).
  bool filtering() const { return filtering_; }
  // Whether the filter passes this datagram (from its IP header on, `size`
  // bytes of it): ICMP (ICMPv6, also behind the fragment header of a first
  // fragment), and TCP to tcp_first_port and above (0: none); never a later
  // fragment, nor what is too short to tell.
  static bool wanted(const std::uint8_t* ip, std::size_t size, bool v6, std::uint16_t tcp_first_port);
  // The datagrams the ring holds (0 when it is not open).
  unsigned frames() const { return frames_; }

  // Frames of 512 bytes: each holds the first 432 bytes of a datagram, more
  // than a capture's snaplen (RawWireOptions). Blocks of a page: the kernel
  // allocates and zeroes each page when the ring is set, and each is
  // unmapped at the close, about 7 µs a page on the 2-core VM (16 pages took
  // 0.12-0.2 ms of a one-shot trace, 2 pages 0.04-0.07 ms).
  static constexpr unsigned kFrameSize = 512;
  static constexpr unsigned kBlockSize = 4096;
  static constexpr unsigned kFramesPerBlock = kBlockSize / kFrameSize;
  static constexpr unsigned kMaxBlocks = 256;  // 2,048 frames, 1 MiB

 private:
  int fd_ = -1;
  std::uint8_t* ring_ = nullptr;
  unsigned blocks_ = 0;
  unsigned frames_ = 0;
  unsigned next_ = 0;
  mutable std::uint64_t drops_ = 0;  // PACKET_STATISTICS resets on each read
  bool v6_ = false;
  std::uint16_t tcp_first_port_ = 0;
  bool filtering_ = false;
  bool filter_failed_ = false;  // read() goes on checking each frame
  std::uint64_t unwanted_ = 0;

  bool attach_filter();
  // Whether the frame at `at` (the kernel's) is one the filter keeps out.
  bool unwanted_frame(const std::uint8_t* frame) const;
};

}  // namespace outpost
