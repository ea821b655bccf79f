// A command at the terminal's IPv4 answers, from a small packet ring
// (TPACKET_V2) on every interface, or agent.interface's. The kernel stamps
// each frame as the ring takes it, where a capture would: whether or not the
// host's receive stamps are on. Asking for those (a raw socket's) makes the
// kernel patch its own code, about 0.8 ms of the asking CPU on the 2-core
// VM, which a one-probe command would otherwise wait for; the ring costs
// about 0.15 ms to open and close.
// It takes what a raw ICMP socket and a raw TCP one from tcp_first_port up
// would (a kernel filter keeps out the rest), but before the host's
// firewall, and not what the host itself sends.
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

  // Opens the ring on `interface` (empty: every interface), taking ICMP, and
  // TCP to ports of tcp_first_port and above (0: no TCP); false with *error.
  bool open(const std::string& interface, std::uint16_t tcp_first_port, std::string* error);
  int fd() const { return fd_; }
  // Hands on up to max datagrams (IPv4, from the IP header on), each with
  // the ring's stamp. How many frames were taken.
  int read(int max, const DatagramHandler& handler);
  // Frames the kernel dropped for want of room, since the ring opened.
  std::uint64_t dropped() const;

  // 128 frames of 512 bytes, 64 KiB: each holds the first 432 bytes of a
  // datagram, more than a capture's snaplen (RawWireOptions), and a trace's
  // answers, all sent at once, while the loop is elsewhere. Small frames
  // touch few pages: a page touched the first time costs 12.5 µs on the
  // 2-core VM.
  static constexpr unsigned kFrameSize = 512;
  static constexpr unsigned kBlockSize = 4096;
  static constexpr unsigned kBlocks = 16;

 private:
  int fd_ = -1;
  std::uint8_t* ring_ = nullptr;
  unsigned frames_ = 0;
  unsigned next_ = 0;
  mutable std::uint64_t drops_ = 0;  // PACKET_STATISTICS resets on each read
};

}  // namespace outpost
