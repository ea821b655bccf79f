// The DNS message codec: query names for the wire, queries forged, answers (untrusted bytes) parsed to text.
// Leaves to others: sockets, timestamps, the TCP retry and what an answer means for a probe (dns.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outpost {

// Query types by name (A, AAAA, NS, SOA, TXT, CNAME, MX, PTR; any case) and back.
std::optional<std::uint16_t> dns_type_from_name(std::string_view name);
std::string dns_type_name(std::uint16_t type);  // "A", ..., or "TYPE65"
std::string dns_rcode_name(int rcode);          // "NOERROR", "NXDOMAIN", ..., or "RCODE12"

// A query name made ready for the wire: one final dot dropped, "." (the root)
// becomes "", each label 1..63 printable ASCII characters (no '\\'), 253 in all.
std::optional<std::string> normalize_dns_name(std::string_view name, std::string* error);

struct DnsQuestion {
  std::string name;  // normalized: dotted, no final dot; "" is the root
  std::uint16_t type = 1;
  std::uint16_t qclass = 1;  // IN
};

// A standard query (RD set, one question), without EDNS: an answer over
// 512 bytes comes back truncated. Pure; the name must be normalized.
// Throws std::runtime_error when the packet module cannot build it.
std::vector<std::uint8_t> forge_dns_query(std::uint16_t id, const DnsQuestion& question);

struct DnsRecord {
  std::string name;
  std::uint16_t type = 0;
  std::uint16_t rclass = 0;
  std::uint32_t ttl = 0;
  // As text: an address; a name; TXT strings joined; "PREF NAME" (MX);
  // "MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM" (SOA); RFC 3597's
  // "\# LEN HEX" for other types. Names end without a dot ("." is the root);
  // bytes outside printable ASCII are written \DDD, so the text is always ASCII.
  std::string data;
};

struct DnsResponse {
  std::uint16_t id = 0;
  int rcode = 0;
  bool truncated = false;  // TC
  bool authoritative = false;
  std::vector<DnsRecord> answers;     // the answer section's first records, up to the number asked to keep
  std::uint32_t answers_dropped = 0;  // the answer section's records past those: checked, then dropped
};

// The work one message may cost, so that a hostile answer costs time linear
// in its size. A step is one label read or one compression pointer followed.
// A name takes at most kDnsMaxNameSteps of them: its 255 bytes hold at most
// 128 labels, and a compressor needs no more pointers than labels. A message
// of n bytes takes at most kDnsStepsPerByte * n in all: a name's inline part
// costs a byte per step, and what pointers add is bounded by this.
inline constexpr std::size_t kDnsMaxNameSteps = 256;
inline constexpr std::size_t kDnsStepsPerByte = 8;
constexpr std::size_t dns_step_budget(std::size_t message_size) { return kDnsStepsPerByte * message_size; }

// What a probe record keeps of an answer section: the first 32 answers, each
// cut to at most 255 characters; the rest are only counted.
inline constexpr std::size_t kDnsMaxAnswersKept = 32;
inline constexpr std::size_t kDnsMaxAnswerText = 255;

// The text cut to at most max bytes, never inside an escape (\DDD, \X) nor
// inside a UTF-8 sequence; unchanged when it fits.
std::string cap_dns_text(std::string_view text, std::size_t max = kDnsMaxAnswerText);

enum class DnsParseError : std::uint8_t { none, malformed, not_a_response, wrong_id, wrong_question };

struct DnsParseResult {
  std::optional<DnsResponse> response;
  DnsParseError error = DnsParseError::none;
  std::string detail;     // what was wrong, when there is no response
  std::size_t steps = 0;  // labels read and pointers followed: at most dns_step_budget(size)
};

// Parses an answer to the query (expected_id, question). Accepts only a
// response (QR, opcode QUERY) with that id whose question is ours (names
// compared ignoring ASCII case), or, for an error rcode, one with no question.
// Every section is walked: a count larger than the data, a name or record
// running past the end, a compression pointer that does not point strictly
// backwards (loops) or into the header, a name over 255 bytes or of more
// than kDnsMaxNameSteps labels and pointers, a message that needs more than
// dns_step_budget steps, a record whose data does not fit its type:
// malformed. A truncated (TC) message may end early: its complete answers
// are kept. Of the answer section, the first keep_answers records are kept
// and the rest counted (answers_dropped), all of them checked alike. Never
// throws; time linear in the size.
DnsParseResult parse_dns_response(std::span<const std::uint8_t> message, std::uint16_t expected_id,
                                  const DnsQuestion& question,
                                  std::size_t keep_answers = std::numeric_limits<std::size_t>::max());

}  // namespace outpost
