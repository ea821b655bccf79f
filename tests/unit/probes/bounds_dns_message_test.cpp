// The DNS codec's bounds against a hostile server: pointer chains cost steps
// counted against each name and the message (never more than
// dns_step_budget of its size), the answers kept are capped and the rest
// counted, and text is cut on whole escapes.

#include "test_bytes.hpp"
#include "dns_message.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

using outpost::DnsParseError;
using outpost::DnsQuestion;

namespace {

using namespace test_bytes;

constexpr std::uint16_t kId = 0x5151;
const DnsQuestion kA{"a", 1};
constexpr std::size_t kQuestionEnd = 12 + 3 + 4;  // "a" at offset 12, then type and class

void put16(Bytes& m, std::uint16_t v) {
  m.push_back(static_cast<std::uint8_t>(v >> 8));
  m.push_back(static_cast<std::uint8_t>(v));
}

void set16(Bytes& m, std::size_t at, std::uint16_t v) {
  m.at(at) = static_cast<std::uint8_t>(v >> 8);
  m.at(at + 1) = static_cast<std::uint8_t>(v);
}

void put_pointer(Bytes& m, std::size_t target) {
  REQUIRE(target < 0x4000);
  put16(m, static_cast<std::uint16_t>(0xC000 | target));
}

// A NOERROR response to "a A" with no records yet; the answer count is set by finish().
Bytes response_head() {
  Bytes m = {0x51, 0x51, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 1, 0, 1};
  REQUIRE(m.size() == kQuestionEnd);
  return m;
}

void put_record_head(Bytes& m, std::uint16_t type, std::uint16_t rdlength) {
  put16(m, type);
  put16(m, 1);  // IN
  put16(m, 0);
  put16(m, 60);  // TTL
  put16(m, rdlength);
}

void finish(Bytes& m, std::size_t answers) {
  REQUIRE(answers <= 0xFFFF);
  REQUIRE(m.size() <= 0xFFFF);
  set16(m, 6, static_cast<std::uint16_t>(answers));
}

// The attack: a first record of an unknown type whose data is a chain of
// `chain` pointers, each to the one before (the first to the question's
// name), then as many A records as fit in 64 KB, each named by a pointer to
// the chain's last link. Without a budget each of those names walks the
// whole chain again.
Bytes pointer_chain_message(std::size_t chain, std::size_t* answers) {
  Bytes m = response_head();
  put_pointer(m, 12);
  put_record_head(m, 0xFF00, static_cast<std::uint16_t>(2 * chain));
  const std::size_t base = m.size();
  put_pointer(m, 12);
  for (std::size_t j = 1; j < chain; ++j) put_pointer(m, base + 2 * (j - 1));
  const std::size_t last = base + 2 * (chain - 1);
  *answers = 1;
  while (m.size() + 16 <= 0xFFFF) {
    put_pointer(m, last);
    put_record_head(m, 1, 4);
    m.insert(m.end(), {198, 18, 0, 1});
    ++*answers;
  }
  finish(m, *answers);
  return m;
}

outpost::DnsParseResult parse(const Bytes& m, const DnsQuestion& q = kA,
                              std::size_t keep = outpost::kDnsMaxAnswersKept) {
  return outpost::parse_dns_response(m, kId, q, keep);
}

}  // namespace

TEST_CASE("dns bounds: a 64 KB message of pointer chains costs at most its step budget", "[dns][bounds]") {
  // 8,000 links: the longest chain pointers can reach (14-bit offsets), and
  // about 3,000 names walking it: 2.5e7 steps without a budget.
  std::size_t answers = 0;
  const Bytes m = pointer_chain_message(8000, &answers);
  INFO(m.size() << " bytes, " << answers << " answers");
  REQUIRE(m.size() > 65000);
  REQUIRE(answers > 3000);
  const auto r = parse(m);
  CHECK(r.steps <= outpost::dns_step_budget(m.size()));
  CHECK_FALSE(r.response);
  CHECK(r.error == DnsParseError::malformed);
  CHECK_THAT(r.detail, Catch::Contains("more than 256 labels and pointers"));
  // It is the first name into the chain that is refused: one name's worth of steps.
  CHECK(r.steps <= 2 * outpost::kDnsMaxNameSteps);
}

TEST_CASE("dns bounds: chains short enough for a name still meet the message's budget", "[dns][bounds]") {
  // 250 links: each name is within its own limit, but 4,000 names of 252
  // steps are more than 8 steps a byte.
  std::size_t answers = 0;
  const Bytes m = pointer_chain_message(250, &answers);
  const auto r = parse(m);
  CHECK(r.steps <= outpost::dns_step_budget(m.size()));
  CHECK_FALSE(r.response);
  CHECK_THAT(r.detail, Catch::Contains("more than 8 labels and pointers per byte"));
}

TEST_CASE("dns bounds: a chain within both budgets parses; the answers past 32 are counted", "[dns][bounds]") {
  std::size_t answers = 0;
  const Bytes m = pointer_chain_message(100, &answers);
  const auto r = parse(m);
  CHECK(r.steps <= outpost::dns_step_budget(m.size()));
  REQUIRE(r.response);
  CHECK(r.response->answers.size() == outpost::kDnsMaxAnswersKept);
  CHECK(r.response->answers_dropped == answers - outpost::kDnsMaxAnswersKept);
  CHECK(r.response->answers[1].name == "a");
  CHECK(r.response->answers[1].data == "198.18.0.1");
  // Keeping everything is still possible (and still within the budget).
  const auto all = parse(m, kA, answers);
  REQUIRE(all.response);
  CHECK(all.response->answers.size() == answers);
  CHECK(all.response->answers_dropped == 0);
  CHECK(all.steps == r.steps);
}

TEST_CASE("dns bounds: heavy but ordinary compression is far within the budget", "[dns][bounds]") {
  // A reverse IPv6 name (34 labels) and 40 PTR records whose names and data
  // both point back to it: 5 steps a byte here, 8 allowed.
  const DnsQuestion q{
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", 12};
  Bytes m = {0x51, 0x51, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0};
  const Bytes query = outpost::forge_dns_query(kId, q);
  m.insert(m.end(), query.begin() + 12, query.end());
  for (int i = 0; i < 40; ++i) {
    put_pointer(m, 12);
    put_record_head(m, 12, 2);
    put_pointer(m, 12);
  }
  finish(m, 40);
  const auto r = parse(m, q, 100);
  REQUIRE(r.response);
  CHECK(r.response->answers.size() == 40);
  CHECK(r.response->answers[39].data == q.name);
  CHECK(r.steps == 35 + 40 * 2 * 36);
  CHECK(r.steps <= outpost::dns_step_budget(m.size()));
}

TEST_CASE("dns bounds: a name of more than 256 labels and pointers is refused", "[dns][bounds]") {
  // An answer named by a pointer into a chain of 254 links that ends at the
  // question's name: 1 + 254 pointers, the label and the root make 257
  // steps, though the name itself is 3 bytes long.
  Bytes m = response_head();
  put_pointer(m, 12);
  put_record_head(m, 0xFF00, 2 * 254);
  const std::size_t base = m.size();
  put_pointer(m, 12);
  for (std::size_t j = 1; j < 254; ++j) put_pointer(m, base + 2 * (j - 1));
  const std::size_t second_name = m.size();
  put_pointer(m, base + 2 * 253);
  put_record_head(m, 1, 4);
  m.insert(m.end(), {198, 18, 0, 1});
  finish(m, 2);
  const auto r = parse(m);
  CHECK_FALSE(r.response);
  CHECK_THAT(r.detail, Catch::Contains("answer record 2 of 2: a name of more than 256 labels and pointers"));
  // Into the link before: 256 steps, accepted.
  set16(m, second_name, static_cast<std::uint16_t>(0xC000 | (base + 2 * 252)));
  const auto ok = parse(m);
  REQUIRE(ok.response);
  CHECK(ok.response->answers.size() == 2);
  CHECK(ok.response->answers[1].name == "a");
}

TEST_CASE("dns bounds: text is cut on whole escapes and characters", "[dns][bounds]") {
  using outpost::cap_dns_text;
  CHECK(cap_dns_text("www.lab.test") == "www.lab.test");
  CHECK(cap_dns_text(std::string(300, 'a')) == std::string(255, 'a'));
  CHECK(cap_dns_text(std::string(255, 'a')) == std::string(255, 'a'));
  // \DDD is four characters, \X two: never split.
  const std::string a253(253, 'a');
  CHECK(cap_dns_text(a253 + "\\255xyz") == a253);
  CHECK(cap_dns_text(a253 + "\\\\xyz") == a253 + "\\\\");
  CHECK(cap_dns_text(std::string(254, 'a') + "\\.xyz") == std::string(254, 'a'));
  CHECK(cap_dns_text(a253 + "\\.\\.") == a253 + "\\.");
  // A UTF-8 sequence is one unit too.
  CHECK(cap_dns_text(std::string(254, 'a') + "\xc3\xa9zz") == std::string(254, 'a'));
  CHECK(cap_dns_text("abcdef", 3) == "abc");
  for (std::size_t n = 0; n < 40; ++n) CHECK(cap_dns_text(std::string(300, 'x') + "\\001", n).size() == n);
}
