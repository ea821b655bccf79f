#include "asn_table.hpp"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "terminal_text.hpp"

namespace outpost {
namespace {

constexpr std::size_t kProblemsKept = 10;
constexpr std::size_t kProblemLineBytes = 200;  // of a bad line, quoted in its problem

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::optional<std::uint32_t> parse_u32(std::string_view s) {
  if (s.size() > 2 && (s.substr(0, 2) == "AS" || s.substr(0, 2) == "as")) s.remove_prefix(2);
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<AsnOrigin> parse_origin(std::string_view s) {
  AsnOrigin origin;
  const bool set = s.find(',') != std::string_view::npos;
  const char sep = set ? ',' : '_';
  origin.as_set = set;
  while (!s.empty()) {
    const auto cut = s.find(sep);
    auto asn = parse_u32(trim(s.substr(0, cut)));
    if (!asn) return std::nullopt;
    origin.asns.push_back(*asn);
    if (cut == std::string_view::npos) break;
    s.remove_prefix(cut + 1);
  }
  if (origin.asns.empty()) return std::nullopt;
  return origin;
}

// Splits on tabs or runs of spaces.
std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == '\t' || line[i] == ' ')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != '\t' && line[i] != ' ') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::uint64_t be64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

std::uint64_t mask64(int bits) { return bits <= 0 ? 0 : bits >= 64 ? ~0ull : ~0ull << (64 - bits); }

}  // namespace

std::string AsnOrigin::text() const {
  std::string s;
  for (std::size_t i = 0; i < asns.size(); ++i) {
    if (i) s += as_set ? "," : "_";
    s += std::to_string(asns[i]);
  }
  return s;
}

std::uint32_t AsnTable::intern(AsnOrigin origin, Loading& loading) {
  auto [it, fresh] = origin_index_.try_emplace(origin.text(), static_cast<std::uint32_t>(origins_.size()));
  if (fresh) {
    loading.origin_asns += origin.asns.size();
    origins_.push_back(std::move(origin));
  }
  return it->second;
}

void AsnTable::add_line(std::string_view line, Loading& loading) {
  AsnLoadReport& report = loading.report;
  const auto where = [&] { return loading.name + ":" + std::to_string(loading.number); };
  const auto comment = line.find_first_of("#;");
  line = trim(line.substr(0, comment));
  if (line.empty()) return;
  auto problem = [&](const std::string& what) {
    ++report.skipped;
    if (report.problems.size() < kProblemsKept)
      report.problems.push_back(where() + ": " + what + ": '" + terminal_safe(line, kProblemLineBytes) + "'");
  };
  const auto f = fields(line);
  std::string_view prefix_text, length_text, origin_text;
  if (f.size() == 3) {  // CAIDA: PREFIX LEN ASN
    prefix_text = f[0];
    length_text = f[1];
    origin_text = f[2];
  } else if (f.size() == 2 && f[0].find('/') != std::string_view::npos) {  // pyasn: PREFIX/LEN ASN
    const auto slash = f[0].find('/');
    prefix_text = f[0].substr(0, slash);
    length_text = f[0].substr(slash + 1);
    origin_text = f[1];
  } else {
    return problem("expected PREFIX<TAB>LEN<TAB>ASN or PREFIX/LEN<TAB>ASN");
  }
  const auto address = IpAddress::parse(prefix_text);
  if (!address) return problem("bad prefix");
  const auto length = parse_u32(length_text);
  const unsigned max_length = address->is_v4() ? 32 : 128;
  if (!length || *length > max_length) return problem("bad prefix length");
  auto origin = parse_origin(origin_text);
  if (!origin) return problem("bad ASN");
  if (v4_.size() + v6_.size() >= loading.limits.max_prefixes) {
    loading.error = where() + ": more than " + std::to_string(loading.limits.max_prefixes) + " prefixes";
    return;
  }
  const std::uint32_t index = intern(std::move(*origin), loading);
  if (loading.origin_asns > loading.limits.max_origin_asns) {
    loading.error =
        where() + ": more than " + std::to_string(loading.limits.max_origin_asns) + " ASNs over all distinct origins";
    return;
  }
  const int len = static_cast<int>(*length);
  if (address->is_v4()) {
    const std::uint32_t mask = len == 0 ? 0 : ~0u << (32 - len);
    v4_.push_back({address->v4_host_order() & mask, static_cast<std::uint8_t>(len), index});
  } else {
    v6_.push_back({be64(address->bytes()) & mask64(len), be64(address->bytes() + 8) & mask64(len - 64),
                   static_cast<std::uint8_t>(len), index});
  }
  ++report.prefixes;
}

void AsnTable::finish() {
  auto index_lengths = [](auto& entries, auto& lengths, auto key) {
    std::stable_sort(entries.begin(), entries.end(), [&](const auto& a, const auto& b) {
      return a.length != b.length ? a.length > b.length : key(a) < key(b);
    });
    // A later line for the same prefix wins, as when a table is updated.
    lengths.clear();
    for (std::size_t i = 0; i < entries.size();) {
      std::size_t j = i;
      while (j < entries.size() && entries[j].length == entries[i].length) ++j;
      lengths.push_back({entries[i].length, {i, j}});
      i = j;
    }
  };
  index_lengths(v4_, v4_lengths_, [](const V4Entry& e) { return e.prefix; });
  index_lengths(v6_, v6_lengths_, [](const V6Entry& e) { return std::pair{e.hi, e.lo}; });
  v4_.shrink_to_fit();
  v6_.shrink_to_fit();
  origin_index_.clear();  // only needed while loading
}

// Feeds complete lines to add_line; loading.pending keeps a line cut at a chunk's end.
bool AsnTable::add_text(std::string_view text, Loading& loading) {
  const AsnLimits& limits = loading.limits;
  loading.text_bytes += text.size();
  if (loading.text_bytes > limits.max_text_bytes) {
    loading.error = loading.name + ": more than " + std::to_string(limits.max_text_bytes >> 20) +
                    " MiB of text (after gunzip)";
    return false;
  }
  auto too_long = [&] {
    loading.error = loading.name + ":" + std::to_string(loading.number + 1) + ": a line longer than " +
                    std::to_string(limits.max_line_bytes) + " bytes: not a prefix table";
    return false;
  };
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::size_t piece = nl == std::string_view::npos ? text.size() : nl;
    if (loading.pending.size() + piece > limits.max_line_bytes) return too_long();
    if (nl == std::string_view::npos) {
      loading.pending.append(text);
      return true;
    }
    ++loading.number;
    if (loading.pending.empty()) {
      add_line(text.substr(0, nl), loading);
    } else {
      loading.pending.append(text.substr(0, nl));
      add_line(loading.pending, loading);
      loading.pending.clear();
    }
    if (!loading.error.empty()) return false;
    text.remove_prefix(nl + 1);
  }
  return true;
}

bool AsnTable::add_last_line(Loading& loading) {
  if (loading.pending.empty()) return true;
  ++loading.number;
  add_line(loading.pending, loading);
  loading.pending.clear();
  return loading.error.empty();
}

std::optional<AsnTable> AsnTable::parse(std::string_view text, const std::string& name, AsnLoadReport* report,
                                        std::string* error, const AsnLimits& limits) {
  AsnTable table;
  AsnLoadReport local;
  Loading loading{name, limits, report ? *report : local};
  if (!table.add_text(text, loading) || !table.add_last_line(loading)) {
    if (error) *error = loading.error;
    return std::nullopt;
  }
  table.finish();
  return table;
}

AsnTable AsnTable::parse(std::string_view text, const std::string& name, AsnLoadReport* report) {
  AsnTable table;
  AsnLoadReport local;
  const AsnLimits limits;
  Loading loading{name, limits, report ? *report : local};
  if (!table.add_text(text, loading) || !table.add_last_line(loading)) loading.report.problems.push_back(loading.error);
  table.finish();
  return table;
}

std::optional<AsnTable> AsnTable::load(const std::string& path, AsnLoadReport* report, std::string* error,
                                       const AsnLimits& limits) {
  // Streamed in chunks (gzip or plain: zlib reads both), never the whole text
  // in memory; the bounds stop /dev/zero and a gzip bomb early.
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) {
    *error = "cannot open " + path;
    return std::nullopt;
  }
  gzbuffer(f, 1 << 17);
  AsnTable table;
  AsnLoadReport local;
  Loading loading{path, limits, report ? *report : local};
  std::vector<char> chunk(1 << 16);
  int n = 0;
  bool within = true;
  while (within && (n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0)
    within = table.add_text({chunk.data(), static_cast<std::size_t>(n)}, loading);
  int errnum = 0;
  const char* msg = gzerror(f, &errnum);
  const std::string zmsg = msg ? msg : "";
  gzclose(f);
  if (!within) {
    *error = loading.error;
    return std::nullopt;
  }
  if (n < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
    *error = "reading " + path + ": " + zmsg;
    return std::nullopt;
  }
  if (!table.add_last_line(loading)) {
    *error = loading.error;
    return std::nullopt;
  }
  table.finish();
  return table;
}

namespace {

// Keeps the string values of a top-level JSON object whose keys are ASNs, as
// the parser meets them: nothing else of the document is held in memory.
class NameReader : public nlohmann::json::json_sax_t {
 public:
  using json = nlohmann::json;
  NameReader(std::unordered_map<std::uint32_t, std::string>& names, const AsnLimits& limits)
      : names_(names), limits_(limits) {}

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(json::number_integer_t) override { return value(); }
  bool number_unsigned(json::number_unsigned_t) override { return value(); }
  bool number_float(json::number_float_t, const json::string_t&) override { return value(); }
  bool binary(json::binary_t&) override { return value(); }
  bool string(json::string_t& text) override {
    if (depth_ == 1 && asn_) {
      if (names_.size() >= limits_.max_names && !names_.count(*asn_)) {
        error_ = "more than " + std::to_string(limits_.max_names) + " names";
        return false;
      }
      names_[*asn_] = terminal_safe(text, limits_.max_name_bytes);
    }
    return value();
  }
  bool start_object(std::size_t) override {
    if (depth_ == 0) top_is_object_ = true;
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return value();
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0) return false;  // not an object
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return value();
  }
  bool key(json::string_t& text) override {
    if (depth_ == 1) asn_ = parse_u32(text);
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) override {
    error_ = "not valid JSON (at byte " + std::to_string(position) + ")";
    return false;
  }

  const std::string& error() const { return error_; }
  bool top_is_object() const { return top_is_object_; }

 private:
  // A value ends: the key before it no longer names anything.
  bool value() {
    if (depth_ == 0 && !top_is_object_) return false;  // a scalar at the top
    if (depth_ == 1) asn_.reset();
    return true;
  }

  std::unordered_map<std::uint32_t, std::string>& names_;
  const AsnLimits& limits_;
  int depth_ = 0;
  bool top_is_object_ = false;
  std::optional<std::uint32_t> asn_;
  std::string error_;
};

}  // namespace

bool AsnTable::load_names(const std::string& path, std::string* error, const AsnLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot open " + path;
    return false;
  }
  // Read whole, up to one byte past the bound, so that /dev/zero is refused rather than read forever.
  std::string text;
  std::vector<char> chunk(1 << 16);
  while (text.size() <= limits.max_names_bytes && in) {
    in.read(chunk.data(), static_cast<std::streamsize>(
                              std::min<std::uint64_t>(chunk.size(), limits.max_names_bytes + 1 - text.size())));
    text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
  }
  return parse_names(text, path, error, limits);
}

bool AsnTable::parse_names(std::string_view text, const std::string& name, std::string* error,
                           const AsnLimits& limits) {
  if (text.size() > limits.max_names_bytes) {
    *error = name + ": larger than " + std::to_string(limits.max_names_bytes >> 20) + " MiB: not a names file";
    return false;
  }
  std::unordered_map<std::uint32_t, std::string> names;
  NameReader reader(names, limits);
  const bool parsed = nlohmann::json::sax_parse(text, &reader);
  if (!parsed || !reader.top_is_object()) {
    *error = name + ": not a JSON object of ASN to name" + (reader.error().empty() ? "" : ": " + reader.error());
    return false;
  }
  names_ = std::move(names);
  return true;
}

std::optional<AsnMatch> AsnTable::lookup(const IpAddress& address) const {
  if (address.is_v4()) {
    const std::uint32_t a = address.v4_host_order();
    for (const auto& [length, range] : v4_lengths_) {
      const std::uint32_t key = length == 0 ? 0 : a & (~0u << (32 - length));
      auto first = v4_.begin() + static_cast<std::ptrdiff_t>(range.first);
      auto last = v4_.begin() + static_cast<std::ptrdiff_t>(range.second);
      auto it = std::upper_bound(first, last, key, [](std::uint32_t k, const V4Entry& e) { return k < e.prefix; });
      if (it != first && (it - 1)->prefix == key)
        return AsnMatch{IpAddress::v4(key), length, origins_[(it - 1)->origin]};
    }
  } else if (address.is_v6()) {
    const std::uint64_t hi = be64(address.bytes()), lo = be64(address.bytes() + 8);
    for (const auto& [length, range] : v6_lengths_) {
      const std::pair key{hi & mask64(length), lo & mask64(length - 64)};
      auto first = v6_.begin() + static_cast<std::ptrdiff_t>(range.first);
      auto last = v6_.begin() + static_cast<std::ptrdiff_t>(range.second);
      auto it = std::upper_bound(first, last, key,
                                 [](const auto& k, const V6Entry& e) { return k < std::pair{e.hi, e.lo}; });
      if (it != first && std::pair{(it - 1)->hi, (it - 1)->lo} == key) {
        std::uint8_t bytes[16];
        for (int i = 0; i < 8; ++i) {
          bytes[i] = static_cast<std::uint8_t>(key.first >> (56 - 8 * i));
          bytes[8 + i] = static_cast<std::uint8_t>(key.second >> (56 - 8 * i));
        }
        return AsnMatch{IpAddress::v6_bytes(bytes), length, origins_[(it - 1)->origin]};
      }
    }
  }
  return std::nullopt;
}

std::string AsnTable::name_of(std::uint32_t asn) const {
  auto it = names_.find(asn);
  return it == names_.end() ? std::string() : it->second;
}

std::size_t AsnTable::memory_bytes() const {
  std::size_t n = v4_.capacity() * sizeof(V4Entry) + v6_.capacity() * sizeof(V6Entry);
  for (const auto& o : origins_) n += sizeof(AsnOrigin) + o.asns.capacity() * sizeof(std::uint32_t);
  for (const auto& [asn, name] : names_) n += sizeof(asn) + sizeof(name) + name.capacity() + 16;
  return n;
}

}  // namespace outpost
