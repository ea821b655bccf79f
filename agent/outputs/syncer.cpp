#include "syncer.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace outpost {

Syncer::Syncer()
    : thread_([this] {
        // Signals belong to the loop's signalfd: a process-directed signal
        // this thread took would kill the process (SIGUSR1, say).
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        run();
      }) {}

Syncer::~Syncer() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

namespace {

void warn_limited(std::mutex& mutex, LogLimiter& limiter, const std::string& what) {
  std::uint64_t held_back = 0;
  {
    std::lock_guard lock(mutex);
    if (!limiter.allow(std::chrono::steady_clock::now(), held_back)) return;
  }
  spdlog::warn("sync: {}", with_suppressed(what, held_back));
}

}  // namespace

void Syncer::sync(int fd) {
  const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) {
    ++failures_;
    warn_limited(mutex_, warn_, fmt::format("cannot duplicate descriptor {}: {}", fd, std::strerror(errno)));
    return;
  }
  struct stat st {};
  if (::fstat(dup, &st) != 0) {
    ++failures_;
    warn_limited(mutex_, warn_, fmt::format("fstat of descriptor {}: {}", fd, std::strerror(errno)));
    ::close(dup);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    for (const Request& r : queue_) {
      if (r.dev == st.st_dev && r.ino == st.st_ino) {
        ++folded_;
        ::close(dup);
        return;
      }
    }
    queue_.push_back({dup, static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)});
  }
  wake_.notify_one();
}

void Syncer::drain() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

void Syncer::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to sync
    const Request r = queue_.front();
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    int rc;
    do {
      rc = ::fdatasync(r.fd);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int err = errno;
      ++failures_;
      warn_limited(mutex_, warn_, fmt::format("fdatasync failed: {}", std::strerror(err)));
    } else {
      ++synced_;
    }
    ::close(r.fd);
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
}

}  // namespace outpost
