#include "async_worker.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace outpost {

AsyncWorker::AsyncWorker(EventLoop& loop) : loop_(loop) {
  eventfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (eventfd_ < 0) throw std::runtime_error(std::string("eventfd for the lookup worker: ") + std::strerror(errno));
  loop_.watch(eventfd_, [this] { deliver(); });
  // Signals belong to the loop's signalfd: the worker starts with every signal
  // blocked (a thread inherits the mask), or a SIGHUP could kill the process.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &saved);
  worker_ = std::thread([this] { work(); });
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

AsyncWorker::~AsyncWorker() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  worker_.join();
  loop_.unwatch(eventfd_);
  close(eventfd_);
}

void AsyncWorker::run(std::function<void()> work, std::function<void()> done) {
  {
    std::lock_guard lock(mutex_);
    requests_.push_back({std::move(work), std::move(done)});
  }
  wake_.notify_one();
}

void AsyncWorker::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return quit_ || !requests_.empty(); });
    if (quit_) return;
    Job job = std::move(requests_.front());
    requests_.pop_front();
    lock.unlock();
    job.work();  // may block for seconds: not on the loop
    lock.lock();
    answers_.push_back(std::move(job));
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(eventfd_, &one, sizeof one);
  }
}

void AsyncWorker::deliver() {
  std::uint64_t count;
  [[maybe_unused]] auto n = read(eventfd_, &count, sizeof count);
  std::deque<Job> ready;
  {
    std::lock_guard lock(mutex_);
    ready.swap(answers_);
  }
  for (auto& job : ready) job.done();
}

}  // namespace outpost
