#include "output.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "json_lines.hpp"

namespace outpost {

RecordClass record_class(const Record& record) {
  return std::visit(
      [](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, ProbeRecord>) return RecordClass::probe;
        else if constexpr (std::is_same_v<T, SeriesRecord>) return RecordClass::series;
        else return RecordClass::event;  // events and traces
      },
      record);
}

std::string Output::stats_line() const {
  const Spool& s = spool();
  std::uint64_t evicted = s.stats().evicted_records;
  return "output " + name() + ": delivered=" + std::to_string(stats_.delivered) +
         " delivered_records=" + std::to_string(stats_.delivered_records) +
         " failures=" + std::to_string(stats_.failures) + " rejected=" + std::to_string(stats_.rejected) +
         " rejected_records=" + std::to_string(stats_.rejected_records) + " evicted_records=" + std::to_string(evicted) +
         " pending=" + std::to_string(s.pending()) + " pending_records=" + std::to_string(s.pending_records()) +
         " spool_bytes=" + std::to_string(s.bytes());
}

std::string batch_id_base(const std::string& agent, const std::string& output, WallTime start) {
  auto clean = [](const std::string& text) {
    std::string out;
    for (unsigned char c : text) out += std::isalnum(c) || c == '-' || c == '_' ? static_cast<char>(c) : '_';
    return out.substr(0, 64);
  };
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(start.time_since_epoch().count()));
  return clean(agent) + "-" + clean(output) + "-" + hex;
}

// --- FileOutput ---------------------------------------------------------------

FileOutput::FileOutput(Reactor& reactor, OutputSpec spec, std::unique_ptr<Spool> spool, Syncer* syncer)
    : Output(std::move(spec)),
      reactor_(reactor),
      file_(spec_.target),
      spool_(std::move(spool)),
      syncer_(syncer),
      id_base_(batch_id_base("file", spec_.name, reactor.clock().wall())) {
  // Lines an earlier run could not write wait in the spool: write them now.
  if (spool_->pending() > 0) arm();
}

FileOutput::~FileOutput() {
  if (timer_) reactor_.cancel(timer_);
}

void FileOutput::write(const Record& record) {
  if (retired_) return;
  pending_ += to_json_line(record);
  ++pending_records_;
  ++stats_.records;
  pending_class_ = std::max(pending_class_, record_class(record));
  // A window's close writes a series record per target and method at once
  // (30 MB with 100,000 targets): past a bound the lines go to the file now,
  // so the buffer stays small; the flush timer still syncs them.
  if (pending_.size() >= kEagerWriteBytes && eager_ && spool_->pending() == 0) {
    if (write_piece(pending_, pending_records_)) {
      pending_.clear();
      pending_records_ = 0;
      pending_class_ = RecordClass::probe;
    } else {
      eager_ = false;  // the timer's write spools them; no retry per record
    }
  }
  arm();
}

void FileOutput::arm() {
  if (timer_) return;
  timer_ = reactor_.after(spec_.flush_interval, [this] {
    timer_ = 0;
    write_out();
  });
}

bool FileOutput::write_piece(const std::string& lines, std::uint32_t records) {
  if (const int error = file_.append(lines); error != 0) {
    ++stats_.failures;
    log_.warn(reactor_.clock().now(), "output " + name() + ": cannot write " + file_.path() + ": " +
                                          std::strerror(error) + "; the records wait in the spool");
    return false;
  }
  ++stats_.delivered;
  stats_.delivered_records += records;
  unsynced_ = true;
  return true;
}

void FileOutput::write_out() {
  eager_ = true;
  // What waits in the spool goes first; while anything waits there, new
  // lines queue behind it.
  while (const Batch* waiting = spool_->next()) {
    if (!write_piece(waiting->payload, waiting->records)) break;
    const std::string id = waiting->id;
    spool_->delivered(id);
  }
  if (!pending_.empty()) {
    if (spool_->pending() > 0 || !write_piece(pending_, pending_records_)) {
      Batch batch;
      batch.id = id_base_ + "-" + std::to_string(++batch_seq_);
      batch.cls = pending_class_;
      batch.records = pending_records_;
      batch.payload = std::move(pending_);
      batch.created = reactor_.clock().wall();
      spool_->append(std::move(batch));
      spool_->sync();
    }
    pending_.clear();
    pending_records_ = 0;
    pending_class_ = RecordClass::probe;
  }
  if (unsynced_ && spec_.fsync && !file_.is_stdout()) {
    if (syncer_) syncer_->sync(file_.fd());
    else ::fdatasync(file_.fd());
    unsynced_ = false;
  }
  if (spool_->pending() > 0) arm();  // try again when the disk may have room
}

void FileOutput::flush() { write_out(); }

std::unique_ptr<Spool> FileOutput::take_spool() {
  write_out();
  if (timer_) reactor_.cancel(timer_);
  timer_ = 0;
  retired_ = true;
  return std::move(spool_);
}

void FileOutput::reopen() {
  write_out();
  if (auto error = file_.reopen(); !error.empty())
    spdlog::error("output {}: cannot reopen {}: {}; still writing to the old file", name(), file_.path(), error);
  else
    spdlog::info("output {}: reopened {}", name(), file_.path());
}

// --- CollectorOutput ------------------------------------------------------------

CollectorOutput::CollectorOutput(Reactor& reactor, OutputSpec spec, const std::string& agent,
                                 std::unique_ptr<Spool> spool, std::unique_ptr<Transport> transport, Encoder encoder)
    : Output(std::move(spec)),
      reactor_(reactor),
      spool_(std::move(spool)),
      transport_(std::move(transport)),
      encoder_(std::move(encoder)),
      id_base_(batch_id_base(agent, spec_.name, reactor.clock().wall())),
      random_(static_cast<std::uint64_t>(reactor.clock().wall().time_since_epoch().count())) {
  if (spool_->pending() > 0) {
    spdlog::info("output {}: {} batches ({} records) from an earlier run wait in the spool", name(),
                 spool_->pending(), spool_->pending_records());
    // Sent from the loop, not from inside the constructor.
    retry_timer_ = reactor_.after(Duration::zero(), [this] {
      retry_timer_ = 0;
      pump();
    });
  }
}

CollectorOutput::~CollectorOutput() {
  // The transport's callbacks point here: it goes first.
  if (transport_) transport_->cancel();
  transport_.reset();
  for (auto& o : open_)
    if (o.timer) reactor_.cancel(o.timer);
  if (retry_timer_) reactor_.cancel(retry_timer_);
  if (sync_timer_) reactor_.cancel(sync_timer_);
}

void CollectorOutput::write(const Record& record) {
  if (retired_) return;
  std::string encoded = encoder_(record);
  if (encoded.empty()) return;  // not carried by this format
  ++stats_.records;
  const RecordClass cls = record_class(record);
  // A batch stays within batch_bytes (a collector's request limit, NATS'
  // max_payload): one that this record would push over goes first.
  if (open_[static_cast<int>(cls)].payload.size() + encoded.size() > spec_.batch_bytes) close(cls);
  Open& open = open_[static_cast<int>(cls)];
  if (open.records == 0) {
    open.created = reactor_.clock().wall();
    open.timer = reactor_.after(spec_.batch_age, [this, cls] {
      open_[static_cast<int>(cls)].timer = 0;
      close(cls);
    });
  }
  open.payload += encoded;
  ++open.records;
  if (open.payload.size() >= spec_.batch_bytes) close(cls);  // full (or one record bigger than a batch)
}

void CollectorOutput::close(RecordClass cls) {
  Open& open = open_[static_cast<int>(cls)];
  if (open.timer) {
    reactor_.cancel(open.timer);
    open.timer = 0;
  }
  if (open.records == 0) return;
  Batch batch;
  batch.id = id_base_ + "-" + std::to_string(++batch_seq_);
  batch.cls = cls;
  batch.records = open.records;
  batch.payload = std::move(open.payload);
  batch.created = open.created;
  open = Open{};
  spool_->append(std::move(batch));
  if (!sync_timer_)
    sync_timer_ = reactor_.after(std::chrono::seconds(1), [this] {
      sync_timer_ = 0;
      spool_->sync();
    });
  pump();
}

void CollectorOutput::flush() {
  for (int c = kRecordClasses - 1; c >= 0; --c) close(static_cast<RecordClass>(c));
  spool_->sync();
}

bool CollectorOutput::drained() const {
  if (sending_ || spool_->pending() > 0) return false;
  return std::all_of(open_.begin(), open_.end(), [](const Open& o) { return o.records == 0; });
}

std::unique_ptr<Spool> CollectorOutput::take_spool() {
  flush();
  if (transport_) transport_->cancel();
  sending_ = false;
  retired_ = true;
  return std::move(spool_);
}

void CollectorOutput::pump() {
  if (sending_ || retry_timer_ || !spool_ || !transport_) return;
  const Batch* next = spool_->next();
  if (!next) return;
  current_ = *next;
  sending_ = true;
  transport_->send(current_, [this](SendResult result) { sent(std::move(result)); });
}

void CollectorOutput::sent(SendResult result) {
  sending_ = false;
  const Duration age = reactor_.clock().wall() - current_.created;
  // A store that keeps refusing old samples with a 5xx (Prometheus: "too old
  // sample") would be retried forever: after an hour such a batch is refused for good.
  if (result.outcome == SendOutcome::retry && result.status >= 500 &&
      spec_.kind == OutputSpec::Kind::prometheus_remote_write && age > std::chrono::hours(1))
    result.outcome = SendOutcome::rejected;
  switch (result.outcome) {
    case SendOutcome::delivered:
      ++stats_.delivered;
      stats_.delivered_records += current_.records;
      spool_->delivered(current_.id);
      backoff_ = Duration::zero();
      break;
    case SendOutcome::rejected:
      ++stats_.rejected;
      stats_.rejected_records += current_.records;
      reject_log_.warn(reactor_.clock().now(), "output " + name() + ": batch " + current_.id + " (" +
                                                   std::to_string(current_.records) + " " +
                                                   std::string(to_string(current_.cls)) +
                                                   " records) rejected: " + result.detail + "; quarantined");
      spool_->quarantine(current_.id, result.detail);
      backoff_ = Duration::zero();
      break;
    case SendOutcome::retry: {
      ++stats_.failures;
      backoff_ = backoff_ == Duration::zero() ? spec_.retry_min : std::min(spec_.retry_max, backoff_ * 2);
      // Full jitter over the upper half: agents that lost the same collector
      // do not come back in step.
      std::uniform_int_distribution<Duration::rep> jitter(backoff_.count() / 2, backoff_.count());
      const Duration delay(jitter(random_));
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%.1fs", std::chrono::duration<double>(delay).count());
      log_.warn(reactor_.clock().now(), "output " + name() + ": send failed: " + result.detail + " (batch " +
                                            current_.id + ", retry in " + seconds + ")");
      retry_timer_ = reactor_.after(delay, [this] {
        retry_timer_ = 0;
        pump();
      });
      return;
    }
  }
  pump();
}

}  // namespace outpost
