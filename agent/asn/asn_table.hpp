// Prefix-to-ASN table: loads CAIDA RouteViews prefix2as and pyasn text
// layouts (plain or gzip, IPv4 and IPv6), answers longest-prefix matches, and
// optionally names ASNs from a pyasn asnames.json file.
// Leaves to others: where the table comes from and what hops mean.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ip_address.hpp"

namespace outpost {

// Who originates a prefix: one ASN, several (multi-origin `A_B`), or an AS set (`A,B`).
struct AsnOrigin {
  std::vector<std::uint32_t> asns;
  bool as_set = false;
  // The first origin: what a hop is labelled with.
  std::uint32_t primary() const { return asns.empty() ? 0 : asns.front(); }
  // As written in the tables: "4837", "64500_64501", "64500,64501".
  std::string text() const;
  bool operator==(const AsnOrigin&) const = default;
};

struct AsnMatch {
  IpAddress prefix;
  int length = 0;
  AsnOrigin origin;
};

struct AsnLoadReport {
  std::size_t prefixes = 0;
  std::size_t skipped = 0;               // bad lines, each reported below (the first few)
  std::vector<std::string> problems;     // "FILE:LINE: message"
};

class AsnTable {
 public:
  // Reads a table file (gzip or plain); nullopt with *error when it cannot be read at all.
  static std::optional<AsnTable> load(const std::string& path, AsnLoadReport* report, std::string* error);
  // The same from text (tests); `name` stands for the file name in problems.
  static AsnTable parse(std::string_view text, const std::string& name, AsnLoadReport* report);

  // Reads a JSON object of ASN (as a string) to name; false with *error.
  bool load_names(const std::string& path, std::string* error);

  std::optional<AsnMatch> lookup(const IpAddress& address) const;
  // "CHINA169-BACKBONE CHINA UNICOM China169 Backbone, CN", or "" when unknown.
  std::string name_of(std::uint32_t asn) const;

  std::size_t size() const { return v4_.size() + v6_.size(); }
  std::size_t memory_bytes() const;

 private:
  struct V4Entry {
    std::uint32_t prefix;  // host order, masked
    std::uint8_t length;
    std::uint32_t origin;  // index into origins_
  };
  struct V6Entry {
    std::uint64_t hi, lo;  // masked
    std::uint8_t length;
    std::uint32_t origin;
  };
  void add_line(std::string_view line, const std::string& name, std::size_t number, AsnLoadReport& report);
  void add_text(std::string_view text, std::string& pending, const std::string& name, std::size_t& number,
                AsnLoadReport& report);
  std::uint32_t intern(AsnOrigin origin);
  void finish();

  // Sorted by (length, prefix): one binary search per length present, longest first.
  std::vector<V4Entry> v4_;
  std::vector<V6Entry> v6_;
  std::vector<std::pair<std::uint8_t, std::pair<std::size_t, std::size_t>>> v4_lengths_;  // length -> [begin, end)
  std::vector<std::pair<std::uint8_t, std::pair<std::size_t, std::size_t>>> v6_lengths_;
  std::vector<AsnOrigin> origins_;
  std::unordered_map<std::string, std::uint32_t> origin_index_;
  std::unordered_map<std::uint32_t, std::string> names_;
};

}  // namespace outpost
