// The durable JSON Lines file: whole lines appended with write(2) on an
// O_APPEND|O_CLOEXEC|O_NOFOLLOW descriptor, a torn last line (left by a crash)
// terminated and reported at open, reopened by path (after logrotate's mv),
// and a failed write taken back so the file never holds half a line of ours.
// Leaves to others: what to do with lines that could not be written (FileOutput spools them).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace outpost {

class JsonlFile {
 public:
  // "-" is standard output (no repair, no reopen). Throws std::runtime_error
  // naming the path when the file cannot be opened (a symbolic link, say).
  explicit JsonlFile(std::string path);
  ~JsonlFile();
  JsonlFile(const JsonlFile&) = delete;
  JsonlFile& operator=(const JsonlFile&) = delete;

  // Appends `lines` (complete lines) as one piece. Returns 0, or the errno of
  // a failed write (ENOSPC, EIO, EPIPE, ...): then nothing of `lines` stays in
  // the file (a partial write is truncated away).
  int append(std::string_view lines);
  // Opens the path again (the old file may have been renamed), repairing a
  // torn tail. Returns "" or why it failed (the old descriptor then stays).
  std::string reopen();

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  bool is_stdout() const { return path_ == "-"; }
  // Torn tails found and terminated since construction; the bytes of the last one.
  std::uint64_t torn_tails() const { return torn_tails_; }
  std::uint64_t torn_bytes() const { return torn_bytes_; }

 private:
  int open_and_repair(std::string* error);

  std::string path_;
  int fd_ = -1;
  std::uint64_t torn_tails_ = 0;
  std::uint64_t torn_bytes_ = 0;
};

}  // namespace outpost
