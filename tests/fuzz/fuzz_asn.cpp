// libFuzzer target for the ASN table (AsnTable::parse) and the AS names
// (AsnTable::parse_names). Byte 0 picks: even, a prefix table; odd, a names
// file; bit 1, the default bounds or small ones (so that every bound is
// reached). Beyond "no crash, no sanitizer report": a table stays within its
// bounds, a lookup's match covers the address looked up, and every name
// kept is terminal-safe and within its length bound.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "asn_table.hpp"

namespace {

using outpost::AsnLimits;
using outpost::AsnTable;
using outpost::IpAddress;

void require(bool ok) {
  if (!ok) std::abort();
}

AsnLimits small_limits() {
  AsnLimits l;
  l.max_line_bytes = 80;
  l.max_prefixes = 64;
  l.max_origin_asns = 96;
  l.max_text_bytes = 4096;
  l.max_names_bytes = 4096;
  l.max_names = 16;
  l.max_name_bytes = 24;
  return l;
}

// The address's first `length` bits are the prefix's.
bool covers(const IpAddress& prefix, int length, const IpAddress& address) {
  if (prefix.is_v4() != address.is_v4()) return false;
  const int bytes = address.is_v4() ? 4 : 16;
  if (length < 0 || length > bytes * 8) return false;
  for (int bit = 0; bit < bytes * 8; ++bit) {
    const int p = prefix.bytes()[bit / 8] >> (7 - bit % 8) & 1;
    const int a = address.bytes()[bit / 8] >> (7 - bit % 8) & 1;
    if (bit < length ? p != a : p != 0) return false;
  }
  return true;
}

void check_lookup(const AsnTable& table, const IpAddress& address) {
  const auto match = table.lookup(address);
  if (!match) return;
  require(covers(match->prefix, match->length, address));
  require(!match->origin.asns.empty() && !match->origin.text().empty());
}

void fuzz_table(std::string_view text, const AsnLimits& limits, const std::uint8_t* tail) {
  outpost::AsnLoadReport report;
  std::string error;
  const auto table = AsnTable::parse(text, "fuzz.txt", &report, &error, limits);
  if (!table) {
    require(!error.empty());
    return;
  }
  require(table->size() <= limits.max_prefixes && table->size() == report.prefixes);
  require(table->memory_bytes() >= table->size());
  // Addresses from the input's last bytes, and a few fixed ones.
  check_lookup(*table, IpAddress::v4_bytes(tail));
  check_lookup(*table, IpAddress::v6_bytes(tail));
  for (const char* a : {"10.1.2.3", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::", "198.18.0.1"})
    check_lookup(*table, *IpAddress::parse(a));
}

bool terminal_safe_text(const std::string& s) {
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

void fuzz_names(std::string_view text, const AsnLimits& limits) {
  AsnTable table;
  std::string error;
  if (!table.parse_names(text, "fuzz.json", &error, limits)) {
    require(!error.empty());
    return;
  }
  // The names of the numbers the text holds (keys among them).
  std::uint64_t n = 0;
  bool digits = false;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] >= '0' && text[i] <= '9' && n < (1ull << 40)) {
      n = n * 10 + static_cast<std::uint64_t>(text[i] - '0');
      digits = true;
      continue;
    }
    if (digits && n <= 0xffffffffu) {
      const std::string name = table.name_of(static_cast<std::uint32_t>(n));
      require(name.size() <= limits.max_name_bytes && terminal_safe_text(name));
    }
    n = 0;
    digits = false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const AsnLimits limits = data[0] & 2 ? small_limits() : AsnLimits{};
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::uint8_t tail[16] = {};
  for (std::size_t i = 0; i < 16 && i < size; ++i) tail[i] = data[size - 1 - i];
  if (data[0] & 1) fuzz_names(text, limits);
  else fuzz_table(text, limits, tail);
  return 0;
}
