#include "asn_table.hpp"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace outpost {
namespace {

constexpr std::size_t kProblemsKept = 10;

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

std::uint32_t AsnTable::intern(AsnOrigin origin) {
  auto [it, fresh] = origin_index_.try_emplace(origin.text(), static_cast<std::uint32_t>(origins_.size()));
  if (fresh) origins_.push_back(std::move(origin));
  return it->second;
}

void AsnTable::add_line(std::string_view line, const std::string& name, std::size_t number, AsnLoadReport& report) {
  const auto comment = line.find_first_of("#;");
  line = trim(line.substr(0, comment));
  if (line.empty()) return;
  auto problem = [&](const std::string& what) {
    ++report.skipped;
    if (report.problems.size() < kProblemsKept)
      report.problems.push_back(name + ":" + std::to_string(number) + ": " + what + ": '" + std::string(line) + "'");
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
  const std::uint32_t index = intern(std::move(*origin));
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

// Feeds complete lines to add_line; `pending` keeps a line cut at a chunk's end.
void AsnTable::add_text(std::string_view text, std::string& pending, const std::string& name, std::size_t& number,
                        AsnLoadReport& report) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    if (nl == std::string_view::npos) {
      pending.append(text);
      return;
    }
    if (pending.empty()) {
      add_line(text.substr(0, nl), name, ++number, report);
    } else {
      pending.append(text.substr(0, nl));
      add_line(pending, name, ++number, report);
      pending.clear();
    }
    text.remove_prefix(nl + 1);
  }
}

AsnTable AsnTable::parse(std::string_view text, const std::string& name, AsnLoadReport* report) {
  AsnTable table;
  AsnLoadReport local;
  AsnLoadReport& r = report ? *report : local;
  std::size_t number = 0;
  std::string pending;
  table.add_text(text, pending, name, number, r);
  if (!pending.empty()) table.add_line(pending, name, ++number, r);
  table.finish();
  return table;
}

std::optional<AsnTable> AsnTable::load(const std::string& path, AsnLoadReport* report, std::string* error) {
  // Streamed in chunks (gzip or plain: zlib reads both), never the whole text in memory.
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) {
    *error = "cannot open " + path;
    return std::nullopt;
  }
  gzbuffer(f, 1 << 17);
  AsnTable table;
  AsnLoadReport local;
  AsnLoadReport& r = report ? *report : local;
  std::size_t number = 0;
  std::string pending;
  std::vector<char> chunk(1 << 16);
  int n;
  while ((n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0)
    table.add_text({chunk.data(), static_cast<std::size_t>(n)}, pending, path, number, r);
  int errnum = 0;
  const char* msg = gzerror(f, &errnum);
  const std::string zmsg = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
    *error = "reading " + path + ": " + zmsg;
    return std::nullopt;
  }
  if (!pending.empty()) table.add_line(pending, path, ++number, r);
  table.finish();
  return table;
}

bool AsnTable::load_names(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot open " + path;
    return false;
  }
  const auto json = nlohmann::json::parse(in, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    *error = path + ": not a JSON object of ASN to name";
    return false;
  }
  for (const auto& [key, value] : json.items()) {
    auto asn = parse_u32(key);
    if (asn && value.is_string()) names_[*asn] = value.get<std::string>();
  }
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
