// One output's unsent batches, kept on disk until the collector acknowledges
// them: appended, read back in class order, deleted on ack, replayed at start.
// Leaves to others: sending, retry timing and batching (the output above it); fdatasync (syncer).
#pragma once

// On disk, under the spool's directory:
//
//   lock                         flock()ed while a Spool uses the directory
//   probe/  series/  event/      one folder per record class, each holding
//     0000000000000007.seg       segments: append-only entries, numbered upwards
//     0000000000000007.ack       that segment's ack log: append-only ack records
//   quarantine.seg               batches refused for good (entries of kind 2),
//   quarantine.old.seg           rotated once at the segment size, never read back
//
// Entry (little-endian), 32 header bytes then id, note and payload:
//   0  "OPSB"            magic
//   4  u8  kind          1 = batch, 2 = quarantined batch (note = why)
//   5  u8  class         RecordClass: 0 probe, 1 series, 2 event
//   6  u16 id_len        1..1024
//   8  u32 records
//  12  u32 payload_len   at most 64 MiB
//  16  i64 created       ns since the Unix epoch
//  24  u16 note_len      0 for kind 1, at most 4096
//  26  u16 reserved      0
//  28  u32 crc           zlib crc32 of bytes 0..27, id, note and payload
//
// Ack record, 16 bytes: "OPAK", u64 offset of the entry in its segment,
// u32 crc32 of the first 12 bytes. An ack means "never send this entry again"
// (delivered or quarantined). A segment whose entries are all acked, or that
// is evicted whole, is deleted: the segment first, then its ack log (an ack
// log a crash left without its segment is deleted at open; numbers are never
// reused).
//
// At open every entry is verified. A damaged entry (bad magic, impossible
// length or field, bad checksum) is warned about with its file and offset,
// counted, and the segment is scanned forward for the next valid entry.
// When none follows, the damaged tail is truncated away and appends go to a
// new segment (never glued after garbage, never at an offset an old ack
// names). Damage in the middle stays in its file and is counted again at
// each open until the segment is deleted. Ack logs are verified the same
// way: a damaged ack record is dropped and its batch is sent again (at least
// once), a torn one truncated.
//
// A batch the disk refuses (ENOSPC, EIO, ...) is kept in memory in its place
// in the order; it does not survive a restart.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "batch.hpp"
#include "syncer.hpp"

namespace outpost {

struct SpoolStats {
  std::uint64_t appended = 0, delivered = 0, quarantined = 0;
  // Given up to stay under max_bytes, per RecordClass, and their records;
  // a batch larger than max_bytes alone is counted here too.
  std::uint64_t evicted_batches[kRecordClasses] = {}, evicted_records = 0;
  std::uint64_t corrupt = 0;        // entries, tails or ack records found damaged and skipped
  std::uint64_t skipped_bytes = 0;  // bytes of them
  std::uint64_t write_errors = 0;   // writes the disk refused (a batch is then kept in memory)
  std::uint64_t replayed = 0;       // batches found at open, still to send
};

struct SpoolOptions {
  // Segment roll-over size; 0: max_bytes / 16 clamped to [64 KiB, 16 MiB].
  std::uint64_t segment_bytes = 0;
  // How bytes reach a file, with write(2)'s contract. Tests replace it to play
  // a full or failing disk; empty: write(2).
  std::function<ssize_t(int fd, const void* data, std::size_t len)> write;
};

class Spool {
 public:
  static constexpr std::uint32_t kMaxPayload = 64u << 20;
  static constexpr std::size_t kMaxId = 1024;
  static constexpr std::size_t kMaxNote = 4096;

  // `dir` empty: memory only (nothing survives a restart). Otherwise creates
  // the directory (and parents), locks it and replays what is there. Throws
  // std::runtime_error naming the path when the directory cannot be used.
  Spool(std::string dir, std::uint64_t max_bytes, Syncer* syncer = nullptr, SpoolOptions options = {});
  // Closes the files; writes nothing (a crash and a clean stop look alike).
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Never loses the batch while it fits under max_bytes: older batches are
  // evicted first (probe, then series, then event), and a batch the disk
  // refuses is kept in memory.
  void append(Batch batch);
  // What to send next (event first, then series, then probe; oldest first
  // within a class), or nullptr when empty. The pointer stays valid until the
  // next call to next(), delivered() or quarantine(); append() never
  // invalidates it, even when it evicts that batch. Reads the payload back
  // from disk; an entry whose bytes no longer verify is dropped (counted as
  // corrupt) and the one after it is given.
  const Batch* next() const;
  // Acknowledged: deleted for good. An unknown id is ignored.
  void delivered(const std::string& id);
  // Refused for good: copied with `why` into the quarantine file, counted,
  // never sent again. An unknown id is ignored.
  void quarantine(const std::string& id, const std::string& why);
  // Asks the syncer to fdatasync what was written (a no-op without one).
  void sync();

  std::uint64_t bytes() const;  // disk + memory held (segments, ack logs, batches kept in memory)
  std::size_t pending() const;  // batches waiting
  std::size_t pending_records() const;
  const SpoolStats& stats() const;
  const std::string& dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost
