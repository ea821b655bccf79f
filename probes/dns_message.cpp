#include "dns_message.hpp"


#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

#include "ip_address.hpp"
#include "tins_forge.hpp"

namespace outpost {
namespace {

using Bytes = std::span<const std::uint8_t>;

constexpr std::size_t kHeaderSize = 12;
constexpr std::size_t kMaxNameWire = 255;

struct TypeName {
  std::uint16_t type;
  std::string_view name;
};
constexpr TypeName kTypes[] = {{1, "A"},    {2, "NS"},  {5, "CNAME"}, {6, "SOA"},
                               {12, "PTR"}, {15, "MX"}, {16, "TXT"},  {28, "AAAA"}};
enum : std::uint16_t { kA = 1, kNS = 2, kCNAME = 5, kSOA = 6, kPTR = 12, kMX = 15, kTXT = 16, kAAAA = 28 };

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Appends one byte of a label (in_name) or of TXT text, so that the result is printable ASCII.
void append_escaped(std::string& out, std::uint8_t c, bool in_name) {
  if (c == '\\' || (in_name && c == '.')) {
    out += '\\';
    out += static_cast<char>(c);
  } else if ((c > 0x20 && c < 0x7f) || (!in_name && c == ' ')) {
    out += static_cast<char>(c);
  } else {  // \DDD, without snprintf: a hostile answer may hold 64 KB of such bytes
    const char digits[4] = {'\\', static_cast<char>('0' + c / 100), static_cast<char>('0' + c / 10 % 10),
                            static_cast<char>('0' + c % 10)};
    out.append(digits, sizeof digits);
  }
}

// Bounds-checked reads from one message. Each returns false after noting why;
// `ran_out` tells a message that ends too early from one that is wrong.
class MessageReader {
 public:
  explicit MessageReader(Bytes m) : m_(m), budget_(dns_step_budget(m.size())) {}

  std::size_t size() const { return m_.size(); }
  const std::uint8_t* at(std::size_t pos) const { return m_.data() + pos; }
  const std::string& why() const { return why_; }
  bool ran_out() const { return ran_out_; }
  std::size_t steps() const { return steps_; }
  // Whether names and data are written out as text, or only checked (records
  // that are not kept: their text would cost up to 255 bytes a pointer).
  bool keep_text() const { return keep_text_; }
  void set_keep_text(bool keep) { keep_text_ = keep; }

  bool bad(std::string why, bool ran_out = false) {
    why_ = std::move(why);
    ran_out_ = ran_out;
    return false;
  }
  bool need(std::size_t pos, std::size_t n, std::size_t end, const char* what) {
    if (pos <= end && n <= end - pos) return true;
    return bad(std::string(what) + " runs past the end", end == m_.size());
  }
  bool u16(std::size_t& pos, std::size_t end, std::uint16_t& v) {
    if (!need(pos, 2, end, "a 16-bit field")) return false;
    v = static_cast<std::uint16_t>(m_[pos] << 8 | m_[pos + 1]);
    pos += 2;
    return true;
  }
  bool u32(std::size_t& pos, std::size_t end, std::uint32_t& v) {
    if (!need(pos, 4, end, "a 32-bit field")) return false;
    v = static_cast<std::uint32_t>(m_[pos]) << 24 | m_[pos + 1] << 16 | m_[pos + 2] << 8 | m_[pos + 3];
    pos += 4;
    return true;
  }

  // The (possibly compressed) name at pos; pos moves past its inline part.
  // Every pointer must point strictly before the previous jump's target (the
  // name's own start for the first): the targets decrease, so no loop. Each
  // label and each pointer is a step, counted against the name's and the
  // message's budgets, so that pointer chains cannot multiply the work.
  bool name(std::size_t& pos, std::string& out) {
    out.clear();
    std::size_t cur = pos, floor = pos, wire = 0, name_steps = 0;
    bool jumped = false;
    for (;;) {
      if (name_steps++ == kDnsMaxNameSteps)
        return bad("a name of more than " + std::to_string(kDnsMaxNameSteps) + " labels and pointers");
      if (steps_ == budget_)
        return bad("more than " + std::to_string(kDnsStepsPerByte) + " labels and pointers per byte of the message");
      ++steps_;
      if (cur >= m_.size()) return bad("a name runs past the end", true);
      const std::uint8_t len = m_[cur];
      if ((len & 0xC0) == 0xC0) {
        if (cur + 1 >= m_.size()) return bad("a compression pointer runs past the end", true);
        const std::size_t target = static_cast<std::size_t>(len & 0x3F) << 8 | m_[cur + 1];
        if (!jumped) pos = cur + 2;
        jumped = true;
        if (target < kHeaderSize) return bad("a compression pointer into the header");
        if (target >= floor) return bad("a compression pointer that does not point backwards");
        cur = floor = target;
        continue;
      }
      if (len & 0xC0) return bad("an unsupported label type");
      wire += 1 + static_cast<std::size_t>(len);
      if (wire > kMaxNameWire) return bad("a name longer than 255 bytes");
      if (len == 0) break;
      if (len > m_.size() - cur - 1) return bad("a label runs past the end", true);
      if (keep_text_) {
        if (!out.empty()) out += '.';
        for (std::size_t i = 1; i <= len; ++i) append_escaped(out, m_[cur + i], true);
      }
      cur += 1 + static_cast<std::size_t>(len);
    }
    if (!jumped) pos = cur + 1;
    if (out.empty() && keep_text_) out = ".";
    return true;
  }

  // A name inside record data that ends at `end`.
  bool name_to(std::size_t& pos, std::size_t end, std::string& out) {
    if (!name(pos, out)) return false;
    return pos <= end || bad("a name runs past its record's data");
  }

 private:
  Bytes m_;
  std::size_t budget_;
  std::size_t steps_ = 0;
  bool keep_text_ = true;
  std::string why_;
  bool ran_out_ = false;
};

// The record data [pos, end) of a record of this type, as text.
bool format_rdata(MessageReader& r, std::uint16_t type, std::size_t pos, std::size_t end, std::string& out) {
  const std::size_t size = end - pos;
  switch (type) {
    case kA:
      if (size != 4) return r.bad("an A record's data is not 4 bytes");
      out = IpAddress::v4_bytes(r.at(pos)).to_string();
      return true;
    case kAAAA:
      if (size != 16) return r.bad("an AAAA record's data is not 16 bytes");
      out = IpAddress::v6_bytes(r.at(pos)).to_string();
      return true;
    case kNS:
    case kCNAME:
    case kPTR:
      if (!r.name_to(pos, end, out)) return false;
      break;
    case kMX: {
      std::uint16_t preference = 0;
      std::string exchange;
      if (!r.u16(pos, end, preference) || !r.name_to(pos, end, exchange)) return false;
      out = std::to_string(preference) + " " + exchange;
      break;
    }
    case kSOA: {
      std::string mname, rname;
      if (!r.name_to(pos, end, mname) || !r.name_to(pos, end, rname)) return false;
      out = mname + " " + rname;
      for (int i = 0; i < 5; ++i) {  // serial refresh retry expire minimum
        std::uint32_t v = 0;
        if (!r.u32(pos, end, v)) return false;
        out += " " + std::to_string(v);
      }
      break;
    }
    case kTXT:
      if (size == 0) return r.bad("a TXT record without a string");
      out.clear();
      while (pos < end) {
        const std::size_t len = *r.at(pos++);
        if (!r.need(pos, len, end, "a TXT string")) return false;
        if (r.keep_text())
          for (std::size_t i = 0; i < len; ++i) append_escaped(out, *r.at(pos + i), false);
        pos += len;
      }
      break;
    default: {  // RFC 3597
      out = "\\# " + std::to_string(size);
      if (!r.keep_text()) return true;
      if (size) out += ' ';
      static constexpr char kHex[] = "0123456789abcdef";
      out.reserve(out.size() + 2 * size);
      for (; pos < end; ++pos) {
        out += kHex[*r.at(pos) >> 4];
        out += kHex[*r.at(pos) & 0xF];
      }
      return true;
    }
  }
  return pos == end || r.bad("record data longer than its contents");
}

bool read_record(MessageReader& r, std::size_t& pos, DnsRecord& rec) {
  std::uint16_t rdlength = 0;
  const std::size_t end = r.size();
  if (!r.name(pos, rec.name) || !r.u16(pos, end, rec.type) || !r.u16(pos, end, rec.rclass) ||
      !r.u32(pos, end, rec.ttl) || !r.u16(pos, end, rdlength) || !r.need(pos, rdlength, end, "record data"))
    return false;
  // Data that does not fit its type is wrong, even where it ends the message.
  if (!format_rdata(r, rec.type, pos, pos + rdlength, rec.data)) return r.bad(r.why());
  pos += rdlength;
  return true;
}

bool same_name(std::string_view parsed, std::string_view asked) {
  return iequals(parsed == "." ? std::string_view() : parsed, asked);
}

}  // namespace

std::optional<std::uint16_t> dns_type_from_name(std::string_view name) {
  for (const auto& t : kTypes)
    if (iequals(t.name, name)) return t.type;
  return std::nullopt;
}

std::string dns_type_name(std::uint16_t type) {
  for (const auto& t : kTypes)
    if (t.type == type) return std::string(t.name);
  return "TYPE" + std::to_string(type);
}

std::string dns_rcode_name(int rcode) {
  static constexpr std::string_view names[] = {"NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                                               "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE"};
  if (rcode >= 0 && rcode < static_cast<int>(std::size(names))) return std::string(names[rcode]);
  return "RCODE" + std::to_string(rcode);
}

std::optional<std::string> normalize_dns_name(std::string_view name, std::string* error) {
  if (name == ".") return std::string();
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  auto fail = [&](std::string why) -> std::optional<std::string> {
    *error = "bad query name '" + std::string(name) + "': " + why;
    return std::nullopt;
  };
  if (name.empty()) return fail("empty");
  if (name.size() > 253) return fail("longer than 253 characters");
  std::size_t label = 0;
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '.') {
      if (label == 0) return fail("an empty label");
      label = 0;
    } else if (c < 0x21 || c > 0x7e || c == '\\') {
      return fail("only printable ASCII without spaces or backslashes");
    } else if (++label > 63) {
      return fail("a label longer than 63 characters");
    }
  }
  if (label == 0) return fail("an empty label");
  return std::string(name);
}

std::vector<std::uint8_t> forge_dns_query(std::uint16_t id, const DnsQuestion& question) {
  std::string error;
  auto query = tins_forge().dns_query(id, question, &error);
  if (!error.empty()) throw std::runtime_error(error);
  return query;
}

std::string cap_dns_text(std::string_view text, std::size_t max) {
  if (text.size() <= max) return std::string(text);
  // Whole units only: an escape (\DDD or \X), a UTF-8 sequence, or a byte.
  std::size_t end = 0;
  while (end < text.size()) {
    std::size_t unit = 1;
    const auto c = static_cast<unsigned char>(text[end]);
    if (c == '\\' && end + 1 < text.size()) {
      unit = std::isdigit(static_cast<unsigned char>(text[end + 1])) ? 4 : 2;
    } else if (c >= 0xC0) {
      while (end + unit < text.size() && (static_cast<unsigned char>(text[end + unit]) & 0xC0) == 0x80) ++unit;
    }
    if (end + unit > max) break;
    end += unit;
  }
  return std::string(text.substr(0, end));
}

DnsParseResult parse_dns_response(Bytes m, std::uint16_t expected_id, const DnsQuestion& question,
                                  std::size_t keep_answers) {
  if (m.size() < kHeaderSize)
    return {std::nullopt, DnsParseError::malformed,
            "shorter than a DNS header (" + std::to_string(m.size()) + " bytes)", 0};
  MessageReader r(m);
  auto fail = [&r](DnsParseError e, std::string detail) {
    return DnsParseResult{std::nullopt, e, std::move(detail), r.steps()};
  };
  auto done = [&r](DnsResponse resp) { return DnsParseResult{std::move(resp), DnsParseError::none, {}, r.steps()}; };
  std::size_t pos = 0;
  std::uint16_t flags = 0;
  std::array<std::uint16_t, 4> counts{};  // question, answer, authority, additional
  DnsResponse resp;
  r.u16(pos, m.size(), resp.id);
  r.u16(pos, m.size(), flags);
  for (auto& c : counts) r.u16(pos, m.size(), c);
  if (resp.id != expected_id) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "id 0x%04x, expected 0x%04x", resp.id, expected_id);
    return fail(DnsParseError::wrong_id, buf);
  }
  if (!(flags & 0x8000)) return fail(DnsParseError::not_a_response, "a query, not a response");
  if (const int opcode = flags >> 11 & 0xF; opcode != 0)
    return fail(DnsParseError::not_a_response, "opcode " + std::to_string(opcode) + ", not QUERY");
  resp.authoritative = flags & 0x0400;
  resp.truncated = flags & 0x0200;
  resp.rcode = flags & 0xF;

  if (counts[0] > 1) return fail(DnsParseError::malformed, std::to_string(counts[0]) + " questions");
  if (counts[0] == 0 && resp.rcode == 0) return fail(DnsParseError::wrong_question, "no question in a NOERROR answer");
  if (counts[0] == 1) {
    std::string name;
    std::uint16_t type = 0, qclass = 0;
    if (!r.name(pos, name) || !r.u16(pos, m.size(), type) || !r.u16(pos, m.size(), qclass))
      return fail(DnsParseError::malformed, "question: " + r.why());
    if (!same_name(name, question.name) || type != question.type || qclass != question.qclass)
      return fail(DnsParseError::wrong_question,
                  "question " + name + " " + dns_type_name(type) + " class " + std::to_string(qclass) + ", expected " +
                      (question.name.empty() ? "." : question.name) + " " + dns_type_name(question.type));
  }
  static constexpr const char* sections[] = {"answer", "authority", "additional"};
  for (int s = 0; s < 3; ++s) {
    for (unsigned i = 0; i < counts[s + 1]; ++i) {
      DnsRecord rec;
      const bool keep = s == 0 && resp.answers.size() < keep_answers;
      r.set_keep_text(keep);
      if (!read_record(r, pos, rec)) {
        if (resp.truncated && r.ran_out()) return done(std::move(resp));
        return fail(DnsParseError::malformed, std::string(sections[s]) + " record " + std::to_string(i + 1) + " of " +
                                                  std::to_string(counts[s + 1]) + ": " + r.why());
      }
      if (keep)
        resp.answers.push_back(std::move(rec));
      else if (s == 0)
        ++resp.answers_dropped;
    }
  }
  return done(std::move(resp));
}

}  // namespace outpost
