#include "jsonl_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace outpost {

JsonlFile::JsonlFile(std::string path) : path_(std::move(path)) {
  if (is_stdout()) {
    fd_ = STDOUT_FILENO;
    return;
  }
  std::string error;
  fd_ = open_and_repair(&error);
  if (fd_ < 0) throw std::runtime_error("cannot open output " + path_ + ": " + error);
}

JsonlFile::~JsonlFile() {
  if (fd_ >= 0 && !is_stdout()) ::close(fd_);
}

int JsonlFile::open_and_repair(std::string* error) {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) {
    *error = errno == ELOOP ? "it is a symbolic link (refused)" : std::strerror(errno);
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    // A FIFO or a device: nothing to repair, and appends are what they are.
    return fd;
  }
  if (st.st_size == 0) return fd;
  // The last line must end in a newline; otherwise an earlier run died in
  // the middle of it. Find where it starts (reading back at most 1 MiB), say
  // so, and end it, so that the next record starts a line of its own.
  const int reader = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (reader < 0) return fd;
  char last = '\n';
  if (::pread(reader, &last, 1, st.st_size - 1) == 1 && last != '\n') {
    std::uint64_t torn = 0;
    char buffer[4096];
    off_t end = st.st_size;
    bool found = false;
    while (end > 0 && !found && torn < (1u << 20)) {
      const off_t start = end > static_cast<off_t>(sizeof buffer) ? end - static_cast<off_t>(sizeof buffer) : 0;
      const ssize_t n = ::pread(reader, buffer, static_cast<std::size_t>(end - start), start);
      if (n <= 0) break;
      for (ssize_t i = n - 1; i >= 0; --i) {
        if (buffer[i] == '\n') {
          found = true;
          break;
        }
        ++torn;
      }
      end = start;
    }
    if (::write(fd, "\n", 1) == 1) {
      ++torn_tails_;
      torn_bytes_ = torn;
      spdlog::warn(
          "{}: the last line ({}{} bytes) was cut short by an earlier run; ended it there, so it stays a line of its "
          "own that readers skip as malformed",
          path_, found ? "" : "at least ", torn);
    } else {
      spdlog::error("{}: cannot end the torn last line: {}", path_, std::strerror(errno));
    }
  }
  ::close(reader);
  return fd;
}

int JsonlFile::append(std::string_view lines) {
  if (lines.empty()) return 0;
  off_t before = -1;
  if (!is_stdout()) {
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) before = st.st_size;
  }
  std::size_t done = 0;
  while (done < lines.size()) {
    const ssize_t n = ::write(fd_, lines.data() + done, lines.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    const int error = n < 0 ? errno : EIO;
    // Take back what went in, so the file never ends in half a line of ours
    // and the whole piece can be written again later.
    if (done > 0 && before >= 0 && ::ftruncate(fd_, before) != 0)
      spdlog::error("{}: cannot take back a partial write: {}", path_, std::strerror(errno));
    return error;
  }
  return 0;
}

std::string JsonlFile::reopen() {
  if (is_stdout()) return {};
  std::string error;
  const int fd = open_and_repair(&error);
  if (fd < 0) return error;
  ::close(fd_);
  fd_ = fd;
  return {};
}

}  // namespace outpost
