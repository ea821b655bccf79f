// Where records go: JSON Lines files (or standard output), buffered and
// flushed on a timer and at exit.
// Leaves to others: collectors and the spool (later outputs plug in here).
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "records.hpp"

namespace outpost {

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void write(const Record& record) = 0;
  virtual void flush() = 0;
};

class JsonlFile final : public RecordSink {
 public:
  // "-" is standard output. Throws std::runtime_error when the file cannot be opened.
  explicit JsonlFile(const std::string& path);
  ~JsonlFile() override;
  void write(const Record& record) override;
  void flush() override;
  std::uint64_t written() const { return written_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  bool owned_ = false;
  std::uint64_t written_ = 0;
  bool failed_ = false;
};

class Outputs {
 public:
  void add(std::unique_ptr<RecordSink> sink) { sinks_.push_back(std::move(sink)); }
  void write(const Record& record) {
    for (auto& s : sinks_) s->write(record);
  }
  void flush() {
    for (auto& s : sinks_) s->flush();
  }
  bool empty() const { return sinks_.empty(); }

 private:
  std::vector<std::unique_ptr<RecordSink>> sinks_;
};

}  // namespace outpost
