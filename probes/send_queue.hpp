// The sending thread: forged datagrams handed over by the loop through a
// ring of preallocated slots, put on the wire in batches (sendmmsg), so that
// the kernel's send path (and, on a host that routes, the forwarding it runs
// in the sender's context) takes a core of its own while the loop reads the
// capture, matches answers and writes records on the other.
// Leaves to others: forging, timing (the capture stamps each packet as it
// leaves), what a failure means for a probe (the engine).
#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "ip_address.hpp"

namespace outpost {

class SendQueue {
 public:
  // Our probes are at most 104 bytes; a larger datagram is not queued.
  static constexpr std::size_t kMaxDatagram = 128;
  static constexpr unsigned kMaxBatch = 64;
  // With the ring empty, the thread naps this long (up to kNapsBeforeSleep
  // times in a row) before it sleeps until woken: datagrams wait at most a
  // nap to leave, and at high rates leave in batches, not with a wake each.
  static constexpr std::chrono::microseconds kNap{250};
  static constexpr int kNapsBeforeSleep = 8;

  struct Failure {
    std::uint64_t token = 0;
    IpAddress dst;
    int error = 0;  // errno
  };

  // fd4 and fd6: the sockets the datagrams go out on (-1: none of that
  // family). The thread starts here: create the queue after the process has
  // dropped its privileges (capabilities are per thread).
  // port: written into each destination address (raw sockets ignore it; a
  // test sends over UDP).
  SendQueue(int fd4, int fd6, std::size_t capacity, std::uint16_t port = 0);
  ~SendQueue();  // stops the thread; what is still queued is not sent
  SendQueue(const SendQueue&) = delete;
  SendQueue& operator=(const SendQueue&) = delete;

  // Queues a datagram for dst: its ticket (1, 2, ...), or 0 when the ring is
  // full or the datagram too large (the caller sends it itself). token comes
  // back with a failure.
  std::uint64_t push(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::uint64_t token);
  // Whether the datagram of a ticket is still waiting for the thread.
  bool waiting(std::uint64_t ticket) const { return ticket > tail_.load(std::memory_order_acquire); }
  // Whether the thread sleeps until woken (idle for kNapsBeforeSleep naps).
  bool asleep() const { return sleeping_.load(std::memory_order_relaxed); }
  // Readable (an eventfd) when failures wait; take_failures() reads it.
  int event_fd() const { return event_fd_; }
  std::vector<Failure> take_failures();

  std::uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  std::uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }
  std::uint64_t wakes() const { return wakes_.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    sockaddr_storage sa;
    socklen_t sa_len = 0;
    std::uint16_t size = 0;
    bool v6 = false;
    std::uint64_t token = 0;
    IpAddress dst;
    std::array<std::uint8_t, kMaxDatagram> data;
  };
  Slot& slot(std::uint64_t n) { return slots_[n % slots_.size()]; }
  void run();
  void wake();
  // Sends slots [from, from + n), all of one family; the failed ones are reported.
  void send_batch(std::uint64_t from, unsigned n);
  void fail(const Slot& s, int error);

  int fd4_;
  int fd6_;
  std::uint16_t port_;
  std::vector<Slot> slots_;
  alignas(64) std::atomic<std::uint64_t> head_{0};  // next slot the loop fills
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // next slot the thread sends
  alignas(64) std::atomic<std::uint32_t> wake_{0};  // the futex the thread naps and sleeps on
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> wakes_{0};
  std::mutex failures_mutex_;
  std::vector<Failure> failures_;
  int event_fd_ = -1;
  std::thread thread_;
};

}  // namespace outpost
