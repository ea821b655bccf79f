// One configured output: a durable JSON Lines file, or a collector fed
// batches through a spool (HTTP, Influx, Prometheus remote write, NATS
// JetStream), with retries, quarantine, counters and log lines that do not
// repeat themselves.
// Leaves to others: encodings (records/), the wire (transports), the spool's format (spool.hpp).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "batch.hpp"
#include "jsonl_file.hpp"
#include "log_limiter.hpp"
#include "outpost_config.hpp"
#include "reactor.hpp"
#include "records.hpp"
#include "spool.hpp"
#include "syncer.hpp"
#include "transport.hpp"

namespace outpost {

// Where a record goes when a spool is full: probes first, events last.
RecordClass record_class(const Record& record);

// A receiver of records: the outputs of the config, or a test's own sink.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void write(const Record& record) = 0;
  // Everything taken so far goes on its way now (the agent is stopping).
  virtual void flush() = 0;
};

struct OutputStats {
  std::uint64_t records = 0;            // records taken in
  std::uint64_t delivered = 0;          // batches acknowledged (collectors) or written (file)
  std::uint64_t delivered_records = 0;  // records in them: what reached the collector or the disk
  std::uint64_t failures = 0;           // sends or writes that failed and will be tried again
  std::uint64_t rejected = 0;           // batches refused for good, quarantined
  std::uint64_t rejected_records = 0;
};

class Output : public RecordSink {
 public:
  explicit Output(OutputSpec spec) : spec_(std::move(spec)) {}
  const OutputSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  const OutputStats& stats() const { return stats_; }
  virtual const Spool& spool() const = 0;
  // The file outputs open their path again (SIGHUP, after logrotate).
  virtual void reopen() {}
  // Nothing open, nothing waiting, nothing in flight.
  virtual bool drained() const = 0;
  // Batches wait in its spool or one is in flight (the loop then keeps its
  // wakes prompt: a spool a collector's outage filled goes out at network
  // speed, not at one round trip per coalesced wake).
  virtual bool sending() const { return false; }
  // Takes no more records; what it holds still goes out.
  void retire() { retired_ = true; }
  // Hands the spool (and its directory) to the output that replaces this
  // one, after closing what is open; this one is then only destroyed.
  virtual std::unique_ptr<Spool> take_spool() = 0;
  bool retired() const { return retired_; }
  // "output NAME: delivered=... spool_bytes=..."
  std::string stats_line() const;

 protected:
  OutputSpec spec_;
  OutputStats stats_;
  bool retired_ = false;
};

// Records appended to a file as JSON Lines, written every flush_interval and
// fsynced (off the loop). A write the disk refuses leaves its lines in the
// spool, to be written when space returns.
class FileOutput final : public Output {
 public:
  FileOutput(Reactor& reactor, OutputSpec spec, std::unique_ptr<Spool> spool, Syncer* syncer);
  ~FileOutput() override;
  void write(const Record& record) override;
  void flush() override;
  void reopen() override;
  bool drained() const override { return pending_.empty() && spool_->pending() == 0; }
  const Spool& spool() const override { return *spool_; }
  std::unique_ptr<Spool> take_spool() override;
  const JsonlFile& file() const { return file_; }

 private:
  void arm();
  void write_out();
  bool write_piece(const std::string& lines, std::uint32_t records);

  Reactor& reactor_;
  JsonlFile file_;
  std::unique_ptr<Spool> spool_;
  Syncer* syncer_;
  std::string pending_;
  std::uint32_t pending_records_ = 0;
  RecordClass pending_class_ = RecordClass::probe;
  static constexpr std::size_t kEagerWriteBytes = 1 << 20;
  bool eager_ = true;  // false after an eager write failed, until the next timed one
  std::uint64_t batch_seq_ = 0;
  std::string id_base_;
  Reactor::TimerId timer_ = 0;
  bool unsynced_ = false;
  LogLimiter log_;  // failed writes
};

// Batches per record class, closed by size or age, spooled, then sent one at
// a time; a failed send is retried with exponential backoff and jitter, a
// refused batch is quarantined.
class CollectorOutput final : public Output {
 public:
  using Encoder = std::function<std::string(const Record&)>;  // "" when the format does not carry it
  CollectorOutput(Reactor& reactor, OutputSpec spec, const std::string& agent, std::unique_ptr<Spool> spool,
                  std::unique_ptr<Transport> transport, Encoder encoder);
  ~CollectorOutput() override;
  void write(const Record& record) override;
  void flush() override;
  bool drained() const override;
  bool sending() const override { return sending_ || spool_->pending() > 0; }
  const Spool& spool() const override { return *spool_; }
  std::unique_ptr<Spool> take_spool() override;

 private:
  struct Open {
    std::string payload;
    std::uint32_t records = 0;
    WallTime created{};
    Reactor::TimerId timer = 0;
  };
  void close(RecordClass cls);
  void pump();
  void sent(SendResult result);

  Reactor& reactor_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Transport> transport_;
  Encoder encoder_;
  std::array<Open, kRecordClasses> open_;
  std::string id_base_;
  std::uint64_t batch_seq_ = 0;
  bool sending_ = false;
  Batch current_;
  Duration backoff_{};
  Reactor::TimerId retry_timer_ = 0;
  Reactor::TimerId sync_timer_ = 0;
  std::mt19937_64 random_;
  LogLimiter log_;         // failed sends
  LogLimiter reject_log_;  // refused batches
};

// A batch id: AGENT-NAME-START-SEQ in letters, digits, '-' and '_' (START:
// when this output was made, in hex nanoseconds, so ids never repeat across runs).
std::string batch_id_base(const std::string& agent, const std::string& output, WallTime start);

}  // namespace outpost
