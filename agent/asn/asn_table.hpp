// Prefix-to-ASN table: loads CAIDA RouteViews prefix2as and pyasn text
// layouts (plain or gzip, IPv4 and IPv6), answers longest-prefix matches, and
// optionally names ASNs from a pyasn asnames.json file, within stated bounds
// on what a downloaded file may cost.
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

// What a table file and a names file may cost. Past a bound the load stops
// with an error naming it, rather than exhausting memory or time. The
// defaults are far above real tables (CAIDA's prefix2as: about 1.3 million
// lines and 35 MB; pyasn's asnames.json: about 120,000 names and 5 MB).
struct AsnLimits {
  std::size_t max_line_bytes = 4096;             // a longer line: not a prefix table (say /dev/zero)
  std::size_t max_prefixes = 10'000'000;         // prefixes kept
  std::size_t max_origin_asns = 10'000'000;      // ASNs over all distinct origins
  std::uint64_t max_text_bytes = 1ull << 30;     // text read, after gunzip (a gzip bomb)
  std::uint64_t max_names_bytes = 32ull << 20;   // the names file
  std::size_t max_names = 1'000'000;             // names kept
  std::size_t max_name_bytes = 255;              // a longer name is cut, after escaping
};

class AsnTable {
 public:
  // Reads a table file (gzip or plain); nullopt with *error when it cannot be
  // read at all or passes a bound of `limits`.
  static std::optional<AsnTable> load(const std::string& path, AsnLoadReport* report, std::string* error,
                                      const AsnLimits& limits = {});
  // The same from text; `name` stands for the file name in problems.
  static std::optional<AsnTable> parse(std::string_view text, const std::string& name, AsnLoadReport* report,
                                       std::string* error, const AsnLimits& limits = {});
  // From text known to be within the bounds (tests): past one, what was read
  // before it, with the error among report's problems.
  static AsnTable parse(std::string_view text, const std::string& name, AsnLoadReport* report);

  // Reads a JSON object of ASN (as a string) to name; false with *error (the
  // names read so far are then dropped). Names are made terminal-safe
  // (terminal_text.hpp) and cut to limits.max_name_bytes as they are read.
  bool load_names(const std::string& path, std::string* error, const AsnLimits& limits = {});
  // The same from text; `name` stands for the file name in errors.
  bool parse_names(std::string_view text, const std::string& name, std::string* error, const AsnLimits& limits = {});

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
  // A load in progress: where it is, and what it has cost so far.
  struct Loading {
    Loading(const std::string& name, const AsnLimits& limits, AsnLoadReport& report)
        : name(name), limits(limits), report(report) {}
    const std::string& name;
    const AsnLimits& limits;
    AsnLoadReport& report;
    std::size_t number = 0;           // lines so far
    std::string pending;              // a line cut at a chunk's end
    std::uint64_t text_bytes = 0;
    std::size_t origin_asns = 0;
    std::string error;                // set when a bound is passed; the load stops
  };
  void add_line(std::string_view line, Loading& loading);
  // False once loading.error is set.
  bool add_text(std::string_view text, Loading& loading);
  bool add_last_line(Loading& loading);
  std::uint32_t intern(AsnOrigin origin, Loading& loading);
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
