#include "async_resolver.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>

namespace outpost {

AsyncResolver::AsyncResolver(EventLoop& loop) : loop_(loop) {
  eventfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  loop_.watch(eventfd_, [this] { deliver(); });
  // Signals belong to the loop's signalfd: the worker starts with every signal
  // blocked (a thread inherits the mask), or a SIGHUP could kill the process.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &saved);
  worker_ = std::thread([this] { work(); });
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

AsyncResolver::~AsyncResolver() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  worker_.join();
  loop_.unwatch(eventfd_);
  close(eventfd_);
}

void AsyncResolver::resolve(const std::string& name, Done done) {
  {
    std::lock_guard lock(mutex_);
    requests_.push_back({name, std::move(done), {}});
  }
  wake_.notify_one();
}

void AsyncResolver::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return quit_ || !requests_.empty(); });
    if (quit_) return;
    Job job = std::move(requests_.front());
    requests_.pop_front();
    lock.unlock();
    job.result = resolve_target(job.name);  // may block for seconds: not on the loop
    lock.lock();
    answers_.push_back(std::move(job));
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(eventfd_, &one, sizeof one);
  }
}

void AsyncResolver::deliver() {
  std::uint64_t count;
  [[maybe_unused]] auto n = read(eventfd_, &count, sizeof count);
  std::deque<Job> ready;
  {
    std::lock_guard lock(mutex_);
    ready.swap(answers_);
  }
  for (auto& job : ready) job.done(job.result);
}

}  // namespace outpost
