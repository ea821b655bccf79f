// The TCP connect probe (IPv4 and IPv6), for hosts without raw sockets: a
// non-blocking connect() on an ordinary socket, its outcome as the status,
// and the kernel's own RTT sample of the handshake.
// Leaves to others: watching the socket and the timeout (engine, through ProbeContext).
#pragma once

#include <chrono>
#include <cstdint>

#include "probe.hpp"

namespace outpost {

// The status a finished connect() means: 0 reply, ECONNREFUSED refused,
// EHOSTUNREACH/ENETUNREACH unreachable, ETIMEDOUT timeout, anything else error.
ProbeStatus connect_status(int err);

class TcpConnectProbe final : public Probe {
 public:
  TcpConnectProbe(IpAddress target, std::uint16_t port, Duration timeout);
  ~TcpConnectProbe() override;
  TcpConnectProbe(const TcpConnectProbe&) = delete;
  TcpConnectProbe& operator=(const TcpConnectProbe&) = delete;

  void start(ProbeContext& ctx) override;
  void on_sent(WallTime) override {}
  bool on_packet(const DecodedPacket&, WallTime) override { return false; }
  void on_timeout() override;
  void on_ready(ProbeContext& ctx, int fd, std::uint32_t events) override;
  bool finished() const override { return finished_; }
  const ProbeResult& result() const override { return result_; }

 private:
  void finish(int err, bool answered);
  void fail(std::string error);
  bool read_icmp_error();

  std::uint16_t port_;
  Duration timeout_;
  int fd_ = -1;
  std::chrono::steady_clock::time_point started_{};
  ProbeResult result_;
  bool finished_ = false;
};

}  // namespace outpost
