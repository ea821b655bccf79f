#include "spool.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "log_limiter.hpp"

namespace outpost {

namespace {

namespace fs = std::filesystem;

constexpr char kEntryMagic[4] = {'O', 'P', 'S', 'B'};
constexpr char kAckMagic[4] = {'O', 'P', 'A', 'K'};
constexpr std::size_t kHeader = 32;
constexpr std::size_t kAckSize = 16;
constexpr std::uint8_t kKindBatch = 1;
constexpr std::uint8_t kKindQuarantined = 2;
constexpr std::size_t kReadWindow = 1 << 20;
constexpr std::size_t kScanChunk = 64 << 10;

constexpr RecordClass kSendOrder[] = {RecordClass::event, RecordClass::series, RecordClass::probe};
constexpr RecordClass kEvictOrder[] = {RecordClass::probe, RecordClass::series, RecordClass::event};

const char* class_name(RecordClass c) {
  switch (c) {
    case RecordClass::probe: return "probe";
    case RecordClass::series: return "series";
    case RecordClass::event: return "event";
  }
  return "unknown";
}

void put16(char* p, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void put32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void put64(char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
std::uint64_t get_le(const char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::uint32_t crc_update(std::uint32_t crc, const char* data, std::size_t len) {
  return static_cast<std::uint32_t>(
      crc32_z(crc, reinterpret_cast<const Bytef*>(data), len));
}

struct Header {
  std::uint8_t kind = 0;
  RecordClass cls = RecordClass::probe;
  std::uint16_t id_len = 0;
  std::uint32_t records = 0;
  std::uint32_t payload_len = 0;
  std::int64_t created = 0;
  std::uint16_t note_len = 0;
  std::uint32_t crc = 0;
  std::uint64_t total() const { return kHeader + id_len + note_len + payload_len; }
};

// Checks what can be checked without the body; `why` says what is wrong.
bool decode_header(const char* p, Header& h, std::string& why) {
  if (std::memcmp(p, kEntryMagic, 4) != 0) {
    why = "bad magic";
    return false;
  }
  h.kind = static_cast<std::uint8_t>(p[4]);
  const auto cls = static_cast<std::uint8_t>(p[5]);
  h.id_len = static_cast<std::uint16_t>(get_le(p + 6, 2));
  h.records = static_cast<std::uint32_t>(get_le(p + 8, 4));
  h.payload_len = static_cast<std::uint32_t>(get_le(p + 12, 4));
  h.created = static_cast<std::int64_t>(get_le(p + 16, 8));
  h.note_len = static_cast<std::uint16_t>(get_le(p + 24, 2));
  const auto reserved = get_le(p + 26, 2);
  h.crc = static_cast<std::uint32_t>(get_le(p + 28, 4));
  if (h.kind != kKindBatch && h.kind != kKindQuarantined) {
    why = "unknown entry kind " + std::to_string(h.kind);
    return false;
  }
  if (cls >= kRecordClasses) {
    why = "unknown record class " + std::to_string(cls);
    return false;
  }
  h.cls = static_cast<RecordClass>(cls);
  if (h.id_len == 0 || h.id_len > Spool::kMaxId) {
    why = "impossible id length " + std::to_string(h.id_len);
    return false;
  }
  if (h.payload_len > Spool::kMaxPayload) {
    why = "impossible payload length " + std::to_string(h.payload_len);
    return false;
  }
  if (h.note_len > Spool::kMaxNote || (h.kind == kKindBatch && h.note_len != 0)) {
    why = "impossible note length " + std::to_string(h.note_len);
    return false;
  }
  if (reserved != 0) {
    why = "reserved field set";
    return false;
  }
  return true;
}

std::string encode_entry(std::uint8_t kind, const Batch& b, std::string_view note) {
  std::string out(kHeader + b.id.size() + note.size() + b.payload.size(), '\0');
  char* p = out.data();
  std::memcpy(p, kEntryMagic, 4);
  p[4] = static_cast<char>(kind);
  p[5] = static_cast<char>(b.cls);
  put16(p + 6, static_cast<std::uint16_t>(b.id.size()));
  put32(p + 8, b.records);
  put32(p + 12, static_cast<std::uint32_t>(b.payload.size()));
  put64(p + 16, static_cast<std::uint64_t>(b.created.time_since_epoch().count()));
  put16(p + 24, static_cast<std::uint16_t>(note.size()));
  char* body = p + kHeader;
  std::memcpy(body, b.id.data(), b.id.size());
  if (!note.empty()) std::memcpy(body + b.id.size(), note.data(), note.size());
  std::memcpy(body + b.id.size() + note.size(), b.payload.data(), b.payload.size());
  std::uint32_t crc = crc_update(0, p, 28);
  crc = crc_update(crc, body, out.size() - kHeader);
  put32(p + 28, crc);
  return out;
}

std::string encode_ack(std::uint64_t offset) {
  std::string out(kAckSize, '\0');
  std::memcpy(out.data(), kAckMagic, 4);
  put64(out.data() + 4, offset);
  put32(out.data() + 12, crc_update(0, out.data(), 12));
  return out;
}

std::string numbered(std::uint64_t n, const char* ext) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%016llu.%s", static_cast<unsigned long long>(n), ext);
  return buf;
}

// "0000000000000007.seg" -> 7; anything else -> nothing.
std::optional<std::uint64_t> parse_numbered(const std::string& name, std::string_view ext) {
  if (name.size() != 17 + ext.size() || name[16] != '.' || name.compare(17, ext.size(), ext) != 0) {
    return std::nullopt;
  }
  std::uint64_t n = 0;
  for (int i = 0; i < 16; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(name[i] - '0');
  }
  return n;
}

bool pread_all(int fd, char* out, std::size_t len, std::uint64_t off) {
  while (len > 0) {
    const ssize_t n = ::pread(fd, out, len, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    out += n;
    len -= static_cast<std::size_t>(n);
    off += static_cast<std::uint64_t>(n);
  }
  return true;
}

// Sequential reads of one file through a window, for the scan at open.
class Reader {
 public:
  Reader(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  std::uint64_t size() const { return size_; }
  // Copies [off, off + len); false past the end of the file or on a read error.
  bool read(std::uint64_t off, char* out, std::size_t len) {
    if (off > size_ || len > size_ - off) return false;
    if (off >= window_off_ && off + len <= window_off_ + window_.size()) {
      std::memcpy(out, window_.data() + (off - window_off_), len);
      return true;
    }
    if (len >= kReadWindow) return pread_all(fd_, out, len, off);
    window_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(kReadWindow, size_ - off)));
    window_off_ = off;
    if (!pread_all(fd_, window_.data(), window_.size(), off)) {
      window_.clear();
      return false;
    }
    std::memcpy(out, window_.data(), len);
    return true;
  }

 private:
  int fd_;
  std::uint64_t size_;
  std::string window_;
  std::uint64_t window_off_ = 0;
};

// Verifies the entry at `off`: its header, that it fits in the file, its
// checksum. Reads the body in chunks, so a bad length costs no allocation.
bool check_entry(Reader& r, std::uint64_t off, RecordClass cls, Header& h, std::string& id, std::string& why) {
  char head[kHeader];
  if (!r.read(off, head, kHeader)) {
    why = "header cut short";
    return false;
  }
  if (!decode_header(head, h, why)) return false;
  if (h.kind != kKindBatch) {
    why = "not a batch entry";
    return false;
  }
  if (h.cls != cls) {
    why = std::string("a ") + class_name(h.cls) + " entry among " + class_name(cls) + " ones";
    return false;
  }
  if (h.total() > r.size() - off) {
    why = "length " + std::to_string(h.total()) + " runs past the end of the file";
    return false;
  }
  std::uint32_t crc = crc_update(0, head, 28);
  id.resize(h.id_len);
  if (!r.read(off + kHeader, id.data(), id.size())) {
    why = "read error";
    return false;
  }
  crc = crc_update(crc, id.data(), id.size());
  char chunk[kScanChunk];
  std::uint64_t pos = off + kHeader + h.id_len;
  std::uint64_t left = h.payload_len;
  while (left > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, sizeof chunk));
    if (!r.read(pos, chunk, n)) {
      why = "read error";
      return false;
    }
    crc = crc_update(crc, chunk, n);
    pos += n;
    left -= n;
  }
  if (crc != h.crc) {
    why = "checksum mismatch";
    return false;
  }
  return true;
}

// The offset of the first valid entry at or after `from`, if any.
std::optional<std::uint64_t> find_next_entry(Reader& r, std::uint64_t from, RecordClass cls) {
  std::string buf;
  for (std::uint64_t pos = from; pos < r.size() && r.size() - pos >= kHeader; pos += kScanChunk) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kScanChunk + 3, r.size() - pos));
    buf.resize(n);
    if (!r.read(pos, buf.data(), n)) return std::nullopt;
    std::size_t i = 0;
    while (i + 4 <= n) {
      const void* hit = ::memmem(buf.data() + i, n - i, kEntryMagic, 4);
      if (!hit) break;
      const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(hit) - buf.data());
      if (at >= kScanChunk) break;  // the next chunk starts there
      Header h;
      std::string id, why;
      if (check_entry(r, pos + at, cls, h, id, why)) return pos + at;
      i = at + 1;
    }
  }
  return std::nullopt;
}

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

struct Spool::Impl {
  struct Segment {
    std::uint64_t size = 0;      // bytes in the file
    std::uint64_t ack_size = 0;  // bytes in its ack log
    std::size_t live = 0;        // entries still to send
    bool ack_broken = false;     // a failed ack write left the log unaligned: no more acks
    bool sealed = false;         // its tail was cut at open: appends go to a new segment
    std::vector<std::uint64_t> seqs;  // every entry it was given, in order
  };
  struct Entry {
    std::string id;
    std::uint32_t records = 0;
    std::uint64_t size = 0;     // encoded bytes
    std::uint64_t segment = 0;  // 0: kept in memory, in `held`
    std::uint64_t offset = 0;
    std::unique_ptr<Batch> held;
  };
  struct ClassLog {
    RecordClass cls = RecordClass::probe;
    std::string dir;
    std::map<std::uint64_t, Segment> segments;  // by number
    std::map<std::uint64_t, Entry> queue;       // by append order
    std::uint64_t next_number = 1;
    std::uint64_t active = 0;  // segment appended to; 0: none yet
    int write_fd = -1;
    bool data_dirty = false;
    int ack_fd = -1;
    std::uint64_t ack_segment = 0;
    bool ack_dirty = false;
    int read_fd = -1;
    std::uint64_t read_segment = 0;
  };

  std::string dir;
  std::uint64_t max_bytes;
  std::uint64_t segment_bytes;
  Syncer* syncer;
  std::function<ssize_t(int, const void*, std::size_t)> write_fn;
  int lock_fd = -1;
  ClassLog classes[kRecordClasses];
  std::unordered_multimap<std::string, std::pair<RecordClass, std::uint64_t>> ids;
  std::uint64_t next_seq = 1;
  std::uint64_t disk_bytes = 0;
  std::uint64_t memory_bytes = 0;
  std::size_t records = 0;
  bool dirs_dirty = false;
  SpoolStats stats;
  // The batch next() gave last, when read from disk; and the storage of a
  // memory batch evicted while it was given, kept until the next call.
  Batch cache;
  std::uint64_t cache_seq = 0;
  const Batch* given = nullptr;
  std::unique_ptr<Batch> retired;
  LogLimiter write_warn{std::chrono::minutes(1)};
  LogLimiter evict_warn{std::chrono::minutes(1)};
  std::uint64_t evicted_since_log[kRecordClasses] = {};

  Impl(std::string d, std::uint64_t max, Syncer* s, SpoolOptions options)
      : dir(std::move(d)), max_bytes(max), syncer(s), write_fn(std::move(options.write)) {
    segment_bytes = options.segment_bytes;
    if (segment_bytes == 0) {
      segment_bytes = std::clamp<std::uint64_t>(max_bytes / 16, 64 << 10, 16 << 20);
    }
    if (!write_fn) write_fn = [](int fd, const void* data, std::size_t len) { return ::write(fd, data, len); };
    for (int c = 0; c < kRecordClasses; ++c) {
      classes[c].cls = static_cast<RecordClass>(c);
      if (!dir.empty()) classes[c].dir = (fs::path(dir) / class_name(classes[c].cls)).string();
    }
    if (dir.empty()) return;
    open_dir();
    try {
      for (ClassLog& c : classes) replay(c);
    } catch (...) {
      ::close(lock_fd);  // no destructor runs for a constructor that throws
      throw;
    }
    if (stats.replayed > 0 || stats.corrupt > 0) {
      spdlog::info("spool {}: {} batches ({} records, {} bytes) to send{}", dir, stats.replayed, records, disk_bytes,
                   stats.corrupt > 0 ? fmt::format("; {} damaged parts skipped ({} bytes)", stats.corrupt,
                                                   stats.skipped_bytes)
                                     : "");
    }
  }

  ~Impl() {
    for (ClassLog& c : classes) {
      for (int* fd : {&c.write_fd, &c.ack_fd, &c.read_fd}) {
        if (*fd >= 0) ::close(*fd);
      }
    }
    if (lock_fd >= 0) ::close(lock_fd);
  }

  std::string label() const { return dir.empty() ? std::string("(memory)") : dir; }

  void open_dir() {
    try {
      for (const ClassLog& c : classes) fs::create_directories(c.dir);
    } catch (const fs::filesystem_error& e) {
      throw std::runtime_error("spool directory " + dir + " cannot be used: " + e.code().message());
    }
    const std::string lock_path = (fs::path(dir) / "lock").string();
    lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) {
      throw std::runtime_error("spool directory " + dir + " cannot be used: " + lock_path + ": " +
                               errno_text(errno));
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(lock_fd);
      lock_fd = -1;
      throw std::runtime_error("spool directory " + dir + " cannot be used: " +
                               (err == EWOULDBLOCK ? std::string("in use by another spool") : errno_text(err)));
    }
  }

  std::string seg_path(const ClassLog& c, std::uint64_t n) const { return c.dir + "/" + numbered(n, "seg"); }
  std::string ack_path(const ClassLog& c, std::uint64_t n) const { return c.dir + "/" + numbered(n, "ack"); }

  void damaged(std::uint64_t bytes) {
    ++stats.corrupt;
    stats.skipped_bytes += bytes;
  }

  // The offsets the ack log says are done with; a damaged record is skipped,
  // a torn tail truncated.
  std::set<std::uint64_t> read_acks(const std::string& path, std::uint64_t& size) {
    std::set<std::uint64_t> acked;
    size = 0;
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) spdlog::warn("spool: cannot open {}: {}", path, errno_text(errno));
      return acked;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return acked;
    }
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    Reader r(fd, file_size);
    std::uint64_t off = 0;
    char rec[kAckSize];
    for (; file_size - off >= kAckSize; off += kAckSize) {
      if (!r.read(off, rec, kAckSize)) break;
      if (std::memcmp(rec, kAckMagic, 4) != 0 || get_le(rec + 12, 4) != crc_update(0, rec, 12)) {
        spdlog::warn("spool: {}: damaged ack record at offset {}: skipped (its batch may be sent again)", path, off);
        damaged(kAckSize);
        continue;
      }
      acked.insert(get_le(rec + 4, 8));
    }
    if (off < file_size) {
      spdlog::warn("spool: {}: torn ack record at offset {} ({} bytes): truncated", path, off, file_size - off);
      damaged(file_size - off);
      if (::ftruncate(fd, static_cast<off_t>(off)) != 0) {
        spdlog::warn("spool: {}: cannot truncate: {}", path, errno_text(errno));
      }
    }
    size = off;
    ::close(fd);
    return acked;
  }

  void replay(ClassLog& c) {
    std::set<std::uint64_t> segs, acks;
    std::error_code ec;
    for (const fs::directory_entry& e : fs::directory_iterator(c.dir, ec)) {
      const std::string name = e.path().filename().string();
      if (auto n = parse_numbered(name, "seg")) segs.insert(*n);
      if (auto n = parse_numbered(name, "ack")) acks.insert(*n);
    }
    if (ec) throw std::runtime_error("spool directory " + c.dir + " cannot be read: " + ec.message());
    for (std::uint64_t n : acks) {
      c.next_number = std::max(c.next_number, n + 1);
      if (!segs.count(n)) ::unlink(ack_path(c, n).c_str());  // its segment was deleted before it
    }
    for (std::uint64_t n : segs) {
      c.next_number = std::max(c.next_number, n + 1);
      replay_segment(c, n);
    }
    // Appends continue in the last segment while it has room.
    if (!c.segments.empty() && !c.segments.rbegin()->second.sealed &&
        c.segments.rbegin()->second.size < segment_bytes) {
      c.active = c.segments.rbegin()->first;
    }
  }

  void replay_segment(ClassLog& c, std::uint64_t number) {
    const std::string path = seg_path(c, number);
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) {
      spdlog::warn("spool: cannot open {}: {}; left as it is", path, errno_text(errno));
      if (fd >= 0) ::close(fd);
      return;
    }
    std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    struct Found {
      std::uint64_t offset;
      Header header;
      std::string id;
    };
    std::vector<Found> found;
    bool cut = false;
    Reader r(fd, size);
    std::uint64_t off = 0;
    while (off < size) {
      Header h;
      std::string id, why;
      if (check_entry(r, off, c.cls, h, id, why)) {
        found.push_back({off, h, std::move(id)});
        off += h.total();
        continue;
      }
      if (auto next = find_next_entry(r, off + 1, c.cls)) {
        spdlog::warn("spool: {}: damaged entry at offset {} ({}): skipped {} bytes to the next entry", path, off, why,
                     *next - off);
        damaged(*next - off);
        off = *next;
        continue;
      }
      spdlog::warn("spool: {}: damaged or torn tail at offset {} ({}): {} bytes truncated", path, off, why,
                   size - off);
      damaged(size - off);
      cut = true;
      if (::ftruncate(fd, static_cast<off_t>(off)) != 0) {
        spdlog::warn("spool: {}: cannot truncate: {}", path, errno_text(errno));
      } else {
        size = off;
      }
      break;
    }
    ::close(fd);

    std::uint64_t ack_size = 0;
    const std::set<std::uint64_t> acked = read_acks(ack_path(c, number), ack_size);
    Segment seg;
    seg.size = size;
    seg.ack_size = ack_size;
    seg.sealed = cut;
    for (Found& f : found) {
      if (acked.count(f.offset)) continue;
      const std::uint64_t seq = next_seq++;
      Entry e;
      e.id = std::move(f.id);
      e.records = f.header.records;
      e.size = f.header.total();
      e.segment = number;
      e.offset = f.offset;
      ids.emplace(e.id, std::make_pair(c.cls, seq));
      records += e.records;
      c.queue.emplace(seq, std::move(e));
      seg.seqs.push_back(seq);
      ++seg.live;
      ++stats.replayed;
    }
    if (seg.live == 0) {
      ::unlink(path.c_str());
      ::unlink(ack_path(c, number).c_str());
      dirs_dirty = true;
      return;
    }
    disk_bytes += seg.size + seg.ack_size;
    c.segments.emplace(number, std::move(seg));
  }

  // ---- writing ----

  // Writes all of `data`; false with errno set when the file refused.
  bool write_all(int fd, const char* data, std::size_t len) {
    while (len > 0) {
      const ssize_t n = write_fn(fd, data, len);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return false;
      if (n == 0) {
        errno = EIO;
        return false;
      }
      data += n;
      len -= static_cast<std::size_t>(n);
    }
    return true;
  }

  void write_failed(const std::string& path, int err, const char* consequence) {
    ++stats.write_errors;
    write_warn.warn(std::chrono::steady_clock::now(),
                    fmt::format("spool: writing {}: {}; {}", path, errno_text(err), consequence));
  }

  void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  // Closes the segment being appended to (synced first when there is a syncer).
  void seal_active(ClassLog& c) {
    if (c.write_fd >= 0 && c.data_dirty && syncer) syncer->sync(c.write_fd);
    close_fd(c.write_fd);
    c.data_dirty = false;
    c.active = 0;
  }

  // Appends `data` to the class's active segment, rolling over when full.
  // On failure the file is put back as it was, and false is returned.
  bool write_entry(ClassLog& c, const std::string& data, std::uint64_t seq, std::uint64_t& number,
                   std::uint64_t& offset) {
    if (c.active != 0) {
      const Segment& s = c.segments.at(c.active);
      if (s.size > 0 && s.size + data.size() > segment_bytes) seal_active(c);
    }
    if (c.active == 0) {
      const std::uint64_t n = c.next_number++;
      const std::string path = seg_path(c, n);
      c.write_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
      if (c.write_fd < 0) {
        write_failed(path, errno, "batches are kept in memory for now");
        return false;
      }
      c.segments.emplace(n, Segment{});
      c.active = n;
      dirs_dirty = true;
    } else if (c.write_fd < 0) {
      const std::string path = seg_path(c, c.active);
      c.write_fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (c.write_fd < 0) {
        write_failed(path, errno, "batches are kept in memory for now");
        c.active = 0;
        return false;
      }
    }
    Segment& s = c.segments.at(c.active);
    if (!write_all(c.write_fd, data.data(), data.size())) {
      const int err = errno;
      const std::uint64_t failed_in = c.active;
      if (::ftruncate(c.write_fd, static_cast<off_t>(s.size)) != 0) {
        // Part of the entry may be there: no more appends after it. The
        // next open truncates the torn bytes.
        struct stat st {};
        if (::fstat(c.write_fd, &st) == 0 && static_cast<std::uint64_t>(st.st_size) > s.size) {
          disk_bytes += static_cast<std::uint64_t>(st.st_size) - s.size;
          s.size = static_cast<std::uint64_t>(st.st_size);
        }
        seal_active(c);
        if (s.live == 0) delete_segment(c, failed_in);
      }
      write_failed(seg_path(c, failed_in), err, "batches are kept in memory for now");
      return false;
    }
    number = c.active;
    offset = s.size;
    s.size += data.size();
    s.seqs.push_back(seq);
    ++s.live;
    disk_bytes += data.size();
    c.data_dirty = true;
    return true;
  }

  void write_ack(ClassLog& c, std::uint64_t number, Segment& s, std::uint64_t offset) {
    if (s.ack_broken) return;
    const std::string path = ack_path(c, number);
    if (c.ack_segment != number) {
      if (c.ack_fd >= 0 && c.ack_dirty && syncer) syncer->sync(c.ack_fd);
      close_fd(c.ack_fd);
      c.ack_dirty = false;
      c.ack_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (c.ack_fd < 0) {
        c.ack_segment = 0;
        write_failed(path, errno, "the batch may be sent again after a restart");
        return;
      }
      c.ack_segment = number;
      if (s.ack_size == 0) dirs_dirty = true;
    }
    const std::string rec = encode_ack(offset);
    if (!write_all(c.ack_fd, rec.data(), rec.size())) {
      const int err = errno;
      if (::ftruncate(c.ack_fd, static_cast<off_t>(s.ack_size)) != 0) s.ack_broken = true;
      write_failed(path, err, "the batch may be sent again after a restart");
      return;
    }
    s.ack_size += kAckSize;
    disk_bytes += kAckSize;
    c.ack_dirty = true;
  }

  void delete_segment(ClassLog& c, std::uint64_t number) {
    auto it = c.segments.find(number);
    if (it == c.segments.end()) return;
    if (c.active == number) {
      close_fd(c.write_fd);
      c.data_dirty = false;
      c.active = 0;
    }
    if (c.ack_segment == number) {
      close_fd(c.ack_fd);
      c.ack_dirty = false;
      c.ack_segment = 0;
    }
    if (c.read_segment == number) {
      close_fd(c.read_fd);
      c.read_segment = 0;
    }
    const std::string seg = seg_path(c, number);
    if (::unlink(seg.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("spool: cannot delete {}: {}", seg, errno_text(errno));
    }
    ::unlink(ack_path(c, number).c_str());
    disk_bytes -= it->second.size + it->second.ack_size;
    c.segments.erase(it);
    dirs_dirty = true;
  }

  // ---- the queue ----

  void forget_id(const std::string& id, std::uint64_t seq) {
    auto [first, last] = ids.equal_range(id);
    for (auto it = first; it != last; ++it) {
      if (it->second.second == seq) {
        ids.erase(it);
        return;
      }
    }
  }

  // Takes an entry out of the queue. `ack`: write that it is done with, or
  // delete its segment when it was the last one there.
  void remove_entry(ClassLog& c, std::uint64_t seq, bool ack) {
    auto it = c.queue.find(seq);
    if (it == c.queue.end()) return;
    Entry& e = it->second;
    records -= e.records;
    forget_id(e.id, seq);
    if (seq == cache_seq) cache_seq = 0;  // the batch itself stays in `cache` until the next call
    if (e.segment == 0) {
      memory_bytes -= e.size;
      if (e.held.get() == given) retired = std::move(e.held);
      c.queue.erase(it);
      return;
    }
    const std::uint64_t number = e.segment;
    const std::uint64_t offset = e.offset;
    c.queue.erase(it);
    auto sit = c.segments.find(number);
    if (sit == c.segments.end()) return;
    Segment& s = sit->second;
    if (--s.live == 0) {
      delete_segment(c, number);
    } else if (ack) {
      write_ack(c, number, s, offset);
    }
  }

  // Gives up the oldest data of the lowest class: a batch kept in memory, or
  // the whole oldest segment. False when there is nothing left to give up.
  bool evict_oldest() {
    for (RecordClass cls : kEvictOrder) {
      ClassLog& c = classes[static_cast<int>(cls)];
      if (c.queue.empty()) continue;
      auto& [seq, front] = *c.queue.begin();
      const int k = static_cast<int>(cls);
      if (front.segment == 0) {
        ++stats.evicted_batches[k];
        stats.evicted_records += front.records;
        ++evicted_since_log[k];
        remove_entry(c, seq, false);
        return true;
      }
      const std::uint64_t number = front.segment;
      const std::vector<std::uint64_t> seqs = c.segments.at(number).seqs;
      for (std::uint64_t s : seqs) {
        auto it = c.queue.find(s);
        if (it == c.queue.end()) continue;
        ++stats.evicted_batches[k];
        stats.evicted_records += it->second.records;
        ++evicted_since_log[k];
        remove_entry(c, s, false);
      }
      delete_segment(c, number);  // when removing its entries has not already
      return true;
    }
    return false;
  }

  void log_evictions() {
    std::uint64_t held_back = 0;  // the counts below already cover them
    if (!evict_warn.allow(std::chrono::steady_clock::now(), held_back)) return;
    spdlog::warn("spool {}: full ({} bytes): gave up {} probe, {} series and {} event batches, oldest first", label(),
                 max_bytes, evicted_since_log[0], evicted_since_log[1], evicted_since_log[2]);
    for (auto& n : evicted_since_log) n = 0;
  }

  void append(Batch batch) {
    const int k = static_cast<int>(batch.cls);
    if (k < 0 || k >= kRecordClasses || batch.id.empty() || batch.id.size() > kMaxId ||
        batch.payload.size() > kMaxPayload) {
      spdlog::warn("spool {}: batch {:.64} cannot be spooled (class {}, id of {} bytes, payload of {} bytes): dropped",
                   label(), batch.id, k, batch.id.size(), batch.payload.size());
      if (k >= 0 && k < kRecordClasses) ++stats.evicted_batches[k];
      stats.evicted_records += batch.records;
      return;
    }
    const std::uint64_t size = kHeader + batch.id.size() + batch.payload.size();
    if (size > max_bytes) {
      spdlog::warn("spool {}: batch {} ({} bytes) is larger than the whole spool ({} bytes): dropped", label(),
                   batch.id, size, max_bytes);
      ++stats.evicted_batches[k];
      stats.evicted_records += batch.records;
      return;
    }
    bool evicted = false;
    while (disk_bytes + memory_bytes + size > max_bytes && evict_oldest()) evicted = true;
    if (evicted) log_evictions();

    ClassLog& c = classes[k];
    const std::uint64_t seq = next_seq++;
    Entry e;
    e.id = batch.id;
    e.records = batch.records;
    e.size = size;
    if (!dir.empty()) {
      const std::string data = encode_entry(kKindBatch, batch, {});
      write_entry(c, data, seq, e.segment, e.offset);
    }
    if (e.segment == 0) {
      e.held = std::make_unique<Batch>(std::move(batch));
      memory_bytes += size;
    }
    ids.emplace(e.id, std::make_pair(c.cls, seq));
    records += e.records;
    c.queue.emplace(seq, std::move(e));
    ++stats.appended;
  }

  // Reads an entry back and checks it against the index.
  bool load(ClassLog& c, const Entry& e, Batch& out, std::string& why) {
    if (c.read_segment != e.segment) {
      close_fd(c.read_fd);
      c.read_segment = 0;
      c.read_fd = ::open(seg_path(c, e.segment).c_str(), O_RDONLY | O_CLOEXEC);
      if (c.read_fd < 0) {
        why = errno_text(errno);
        return false;
      }
      c.read_segment = e.segment;
    }
    std::string buf(e.size, '\0');
    if (!pread_all(c.read_fd, buf.data(), buf.size(), e.offset)) {
      why = "read error or file cut short";
      return false;
    }
    Header h;
    if (!decode_header(buf.data(), h, why)) return false;
    if (h.total() != e.size || h.kind != kKindBatch || h.cls != c.cls ||
        buf.compare(kHeader, h.id_len, e.id) != 0) {
      why = "entry differs from the one found at open";
      return false;
    }
    std::uint32_t crc = crc_update(0, buf.data(), 28);
    crc = crc_update(crc, buf.data() + kHeader, buf.size() - kHeader);
    if (crc != h.crc) {
      why = "checksum mismatch";
      return false;
    }
    out.id = e.id;
    out.cls = c.cls;
    out.records = h.records;
    out.created = WallTime(std::chrono::nanoseconds(h.created));
    out.payload.assign(buf, kHeader + h.id_len, h.payload_len);
    return true;
  }

  // Ends the life of the batch next() gave last.
  void release_given() {
    given = nullptr;
    retired.reset();
  }

  const Batch* next() {
    release_given();
    given = find_next();
    return given;
  }

  const Batch* find_next() {
    for (RecordClass cls : kSendOrder) {
      ClassLog& c = classes[static_cast<int>(cls)];
      while (!c.queue.empty()) {
        auto& [seq, e] = *c.queue.begin();
        if (e.segment == 0) return e.held.get();
        if (cache_seq == seq) return &cache;
        std::string why;
        if (load(c, e, cache, why)) {
          cache_seq = seq;
          return &cache;
        }
        cache_seq = 0;
        spdlog::warn("spool: {}: entry {} at offset {} can no longer be read ({}): dropped", seg_path(c, e.segment),
                     e.id, e.offset, why);
        damaged(e.size);
        remove_entry(c, seq, true);
      }
    }
    return nullptr;
  }

  std::optional<std::pair<RecordClass, std::uint64_t>> find(const std::string& id) const {
    auto [first, last] = ids.equal_range(id);
    std::optional<std::pair<RecordClass, std::uint64_t>> oldest;
    for (auto it = first; it != last; ++it) {
      if (!oldest || it->second.second < oldest->second) oldest = it->second;
    }
    return oldest;
  }

  void delivered(const std::string& id) {
    release_given();
    const auto where = find(id);
    if (!where) return;
    remove_entry(classes[static_cast<int>(where->first)], where->second, true);
    ++stats.delivered;
  }

  void quarantine(const std::string& id, const std::string& why) {
    release_given();
    const auto where = find(id);
    if (!where) return;
    ClassLog& c = classes[static_cast<int>(where->first)];
    const Entry& e = c.queue.at(where->second);
    // The output says so to people (rate-limited); this is the spool's own trace.
    spdlog::debug("spool {}: batch {} ({} {} records) refused for good, quarantined: {}", label(), id, e.records,
                 class_name(c.cls), why);
    if (!dir.empty()) {
      Batch copy;
      const Batch* b = e.held.get();
      std::string load_why;
      if (!b && cache_seq == where->second) b = &cache;
      if (!b && load(c, e, copy, load_why)) b = &copy;
      if (b) {
        write_quarantined(*b, std::string_view(why).substr(0, kMaxNote));
      } else {
        spdlog::warn("spool {}: batch {} cannot be read back for the quarantine file ({})", label(), id, load_why);
      }
    }
    remove_entry(c, where->second, true);
    ++stats.quarantined;
  }

  void write_quarantined(const Batch& b, std::string_view why) {
    const std::string path = (fs::path(dir) / "quarantine.seg").string();
    const std::string data = encode_entry(kKindQuarantined, b, why);
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && st.st_size > 0 &&
        static_cast<std::uint64_t>(st.st_size) + data.size() > segment_bytes) {
      const std::string old = (fs::path(dir) / "quarantine.old.seg").string();
      if (::rename(path.c_str(), old.c_str()) != 0) {
        spdlog::warn("spool: cannot rotate {}: {}", path, errno_text(errno));
      }
    }
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      write_failed(path, errno, "the quarantined batch is not kept");
      return;
    }
    if (!write_all(fd, data.data(), data.size())) {
      write_failed(path, errno, "the quarantined batch is not kept");
    } else if (syncer) {
      syncer->sync(fd);
    }
    ::close(fd);
    dirs_dirty = true;
  }

  void sync() {
    if (!syncer || dir.empty()) return;
    for (ClassLog& c : classes) {
      if (c.write_fd >= 0 && c.data_dirty) syncer->sync(c.write_fd);
      if (c.ack_fd >= 0 && c.ack_dirty) syncer->sync(c.ack_fd);
      c.data_dirty = c.ack_dirty = false;
    }
    if (!dirs_dirty) return;
    dirs_dirty = false;
    std::vector<std::string> dirs{dir};
    for (const ClassLog& c : classes) dirs.push_back(c.dir);
    for (const std::string& d : dirs) {
      const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) continue;
      syncer->sync(fd);
      ::close(fd);
    }
  }
};

Spool::Spool(std::string dir, std::uint64_t max_bytes, Syncer* syncer, SpoolOptions options)
    : impl_(std::make_unique<Impl>(std::move(dir), max_bytes, syncer, std::move(options))) {}

Spool::~Spool() = default;

void Spool::append(Batch batch) { impl_->append(std::move(batch)); }
const Batch* Spool::next() const { return impl_->next(); }
void Spool::delivered(const std::string& id) { impl_->delivered(id); }
void Spool::quarantine(const std::string& id, const std::string& why) { impl_->quarantine(id, why); }
void Spool::sync() { impl_->sync(); }
std::uint64_t Spool::bytes() const { return impl_->disk_bytes + impl_->memory_bytes; }
std::size_t Spool::pending() const {
  std::size_t n = 0;
  for (const auto& c : impl_->classes) n += c.queue.size();
  return n;
}
std::size_t Spool::pending_records() const { return impl_->records; }
const SpoolStats& Spool::stats() const { return impl_->stats; }
const std::string& Spool::dir() const { return impl_->dir; }

}  // namespace outpost
