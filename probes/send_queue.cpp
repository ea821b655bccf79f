#include "send_queue.hpp"

#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace outpost {

SendQueue::SendQueue(int fd4, int fd6, std::size_t capacity, std::uint16_t port)
    : fd4_(fd4), fd6_(fd6), port_(port), slots_(std::max<std::size_t>(capacity, kMaxBatch)) {
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "outpost-send");  // in top -H, /proc/PID/task/*/comm
}

SendQueue::~SendQueue() {
  stop_.store(true, std::memory_order_seq_cst);
  wake();
  thread_.join();
  close(event_fd_);
}

std::uint64_t SendQueue::push(const IpAddress& dst, std::span<const std::uint8_t> datagram, std::uint64_t token) {
  if (datagram.size() > kMaxDatagram) return 0;
  const std::uint64_t head = head_.load(std::memory_order_relaxed);
  if (head - tail_.load(std::memory_order_acquire) >= slots_.size()) return 0;
  Slot& s = slot(head);
  s.sa_len = dst.to_sockaddr(s.sa, port_);
  s.v6 = dst.is_v6();
  s.dst = dst;
  s.token = token;
  s.size = static_cast<std::uint16_t>(datagram.size());
  std::memcpy(s.data.data(), datagram.data(), datagram.size());
  // seq_cst with the thread's `sleeping_` then `head_`: either it sees this
  // slot before it sleeps, or this sees it asleep and wakes it.
  head_.store(head + 1, std::memory_order_seq_cst);
  // Asleep: wake it. Napping: only once a batch's worth waits (its nap
  // ends soon enough for the rest).
  if (sleeping_.load(std::memory_order_seq_cst) ||
      head + 1 - tail_.load(std::memory_order_relaxed) == kMaxBatch / 2)
    wake();
  return head + 1;
}

std::vector<SendQueue::Failure> SendQueue::take_failures() {
  std::uint64_t count;
  while (read(event_fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  std::lock_guard lock(failures_mutex_);
  return std::exchange(failures_, {});
}

void SendQueue::fail(const Slot& s, int error) {
  {
    std::lock_guard lock(failures_mutex_);
    failures_.push_back({s.token, s.dst, error});
  }
  const std::uint64_t one = 1;
  while (write(event_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void SendQueue::send_batch(std::uint64_t from, unsigned n) {
  std::array<mmsghdr, kMaxBatch> msgs{};
  std::array<iovec, kMaxBatch> iovs{};
  for (unsigned i = 0; i < n; ++i) {
    Slot& s = slot(from + i);
    iovs[i] = {s.data.data(), s.size};
    msgs[i].msg_hdr.msg_name = &s.sa;
    msgs[i].msg_hdr.msg_namelen = s.sa_len;
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const int fd = slot(from).v6 ? fd6_ : fd4_;
  unsigned done = 0;
  while (done < n) {
    if (fd < 0) {
      fail(slot(from + done), EAFNOSUPPORT);
      ++done;
      continue;
    }
    const int r = sendmmsg(fd, msgs.data() + done, n - done, MSG_DONTWAIT);
    if (r > 0) {
      done += static_cast<unsigned>(r);
      sent_.fetch_add(static_cast<std::uint64_t>(r), std::memory_order_relaxed);
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if ((err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) && !stop_.load(std::memory_order_relaxed)) {
      // The socket's send buffer is full: wait for room rather than lose
      // the probe (the loop would have reported it as a send error).
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 10);
      continue;
    }
    // The first message of the rest failed (no route, a refused
    // destination): that probe fails, the others go.
    fail(slot(from + done), err);
    ++done;
  }
  batches_.fetch_add(1, std::memory_order_relaxed);
}

namespace {

// Waits while *word holds `seen`, at most `timeout` (nullptr: no limit).
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t seen, const timespec* timeout) {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, timeout, nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace

void SendQueue::wake() {
  wake_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(wake_);
}

void SendQueue::run() {
  int idle_naps = 0;
  for (;;) {
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    std::uint64_t head = head_.load(std::memory_order_acquire);
    if (tail == head) {
      if (stop_.load(std::memory_order_seq_cst)) return;
      const std::uint32_t seen = wake_.load(std::memory_order_seq_cst);
      if (idle_naps < kNapsBeforeSleep) {
        // Busy lately: a nap, then whatever came meanwhile goes in one
        // batch (the loop wakes it early only for a batch's worth), instead
        // of a wake per datagram.
        ++idle_naps;
        const timespec nap{0, static_cast<long>(std::chrono::nanoseconds(kNap).count())};
        futex_wait(wake_, seen, &nap);
      } else {
        // Idle: sleep until the loop pushes.
        sleeping_.store(true, std::memory_order_seq_cst);
        head = head_.load(std::memory_order_seq_cst);
        if (head == tail && !stop_.load(std::memory_order_seq_cst)) futex_wait(wake_, seen, nullptr);
        sleeping_.store(false, std::memory_order_seq_cst);
      }
      wakes_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    idle_naps = 0;
    // A run of one family, at most kMaxBatch.
    const bool v6 = slot(tail).v6;
    unsigned n = 0;
    while (n < kMaxBatch && tail + n < head && slot(tail + n).v6 == v6) ++n;
    send_batch(tail, n);
    tail_.store(tail + n, std::memory_order_release);
  }
}

}  // namespace outpost
