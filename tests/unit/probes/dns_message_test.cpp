// The DNS message codec: forging a query against a byte fixture, parsing
// answers from fixtures (captured from dnsmasq, or built by
// tests/fixtures/dns_fixtures.py and cross-checked with dnspython) including
// truncated, malformed, wrong-id and compressed ones.

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

constexpr std::uint16_t kId = 0x4242;
const DnsQuestion kWwwA{"www.lab.test", 1};


outpost::DnsParseResult parse(const Bytes& m, const DnsQuestion& q = kWwwA, std::uint16_t id = kId) {
  return outpost::parse_dns_response(m, id, q);
}

outpost::DnsParseResult parse_fixture(const std::string& name, const DnsQuestion& q = kWwwA) {
  return parse(read_hex_fixture(name), q);
}

std::vector<std::string> answer_texts(const outpost::DnsResponse& r) {
  std::vector<std::string> out;
  for (const auto& a : r.answers) out.push_back(a.data);
  return out;
}


// A response to www.lab.test A (id kId, NOERROR) with one record of this type and data.
Bytes one_record_answer(std::uint16_t type, const Bytes& rdata) {
  Bytes m = {0x42, 0x42, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0};
  const Bytes question = outpost::forge_dns_query(kId, kWwwA);
  m.insert(m.end(), question.begin() + 12, question.end());
  const Bytes rr = {
      0xc0, 0x0c, static_cast<std::uint8_t>(type >> 8),         static_cast<std::uint8_t>(type),        0, 1, 0, 0,
      0,    60,   static_cast<std::uint8_t>(rdata.size() >> 8), static_cast<std::uint8_t>(rdata.size())};
  m.insert(m.end(), rr.begin(), rr.end());
  m.insert(m.end(), rdata.begin(), rdata.end());
  return m;
}

}  // namespace

TEST_CASE("dns: query types and rcodes by name", "[dns]") {
  CHECK(outpost::dns_type_from_name("A") == 1);
  CHECK(outpost::dns_type_from_name("aaaa") == 28);
  for (const char* t : {"A", "AAAA", "NS", "SOA", "TXT", "CNAME", "MX", "PTR"}) {
    INFO(t);
    auto type = outpost::dns_type_from_name(t);
    REQUIRE(type);
    CHECK(outpost::dns_type_name(*type) == t);
  }
  CHECK_FALSE(outpost::dns_type_from_name("ANY"));
  CHECK(outpost::dns_type_name(65) == "TYPE65");
  CHECK(outpost::dns_rcode_name(0) == "NOERROR");
  CHECK(outpost::dns_rcode_name(2) == "SERVFAIL");
  CHECK(outpost::dns_rcode_name(3) == "NXDOMAIN");
  CHECK(outpost::dns_rcode_name(5) == "REFUSED");
  CHECK(outpost::dns_rcode_name(12) == "RCODE12");
}

TEST_CASE("dns: query names are checked and normalized", "[dns]") {
  std::string error;
  CHECK(outpost::normalize_dns_name("www.lab.test", &error) == "www.lab.test");
  CHECK(outpost::normalize_dns_name("www.lab.test.", &error) == "www.lab.test");
  CHECK(outpost::normalize_dns_name(".", &error) == "");
  CHECK(outpost::normalize_dns_name(std::string(63, 'a') + ".test", &error));
  const std::vector<std::string> bad_names = {"",
                                              "a..b",
                                              "a.b..",
                                              ".a",
                                              "with space.test",
                                              "back\\slash.test",
                                              std::string(64, 'a') + ".test",
                                              std::string(254, 'a')};
  for (const auto& bad : bad_names) {
    INFO(bad);
    error.clear();
    CHECK_FALSE(outpost::normalize_dns_name(bad, &error));
    CHECK_THAT(error, Catch::Contains("bad query name"));
  }
}

TEST_CASE("dns: forge_dns_query matches the fixture byte for byte", "[dns]") {
  const Bytes q = outpost::forge_dns_query(kId, kWwwA);
  CHECK(q == read_hex_fixture("dns_query_www_a.hex"));
  CHECK(be16(q, 0) == kId);
  CHECK(be16(q, 2) == 0x0100);  // QR 0, opcode QUERY, RD: nothing else
  CHECK(be16(q, 4) == 1);       // QDCOUNT
  CHECK(be16(q, 6) == 0);
  CHECK(be16(q, 8) == 0);
  CHECK(be16(q, 10) == 0);  // ARCOUNT 0: no EDNS, so big answers truncate at 512 bytes
  const Bytes name = {3, 'w', 'w', 'w', 3, 'l', 'a', 'b', 4, 't', 'e', 's', 't', 0};
  CHECK(Bytes(q.begin() + 12, q.begin() + 12 + static_cast<long>(name.size())) == name);
  CHECK(be16(q, 26) == 1);  // QTYPE A
  CHECK(be16(q, 28) == 1);  // QCLASS IN
  CHECK(q.size() == 30);
}

TEST_CASE("dns: forging other types and the root", "[dns]") {
  const Bytes aaaa = outpost::forge_dns_query(7, {"lab.test", 28});
  CHECK(be16(aaaa, 0) == 7);
  CHECK(be16(aaaa, aaaa.size() - 4) == 28);
  const Bytes root = outpost::forge_dns_query(1, {"", 2});
  REQUIRE(root.size() == 17);
  CHECK(root[12] == 0);  // the root: one empty label
  CHECK(be16(root, 13) == 2);
}

TEST_CASE("dns: captured dnsmasq answers", "[dns]") {
  SECTION("www.lab.test A") {
    auto r = parse_fixture("dns_answer_www_a.hex");
    REQUIRE(r.response);
    CHECK(r.error == DnsParseError::none);
    CHECK(r.response->id == kId);
    CHECK(r.response->rcode == 0);
    CHECK(r.response->authoritative);
    CHECK_FALSE(r.response->truncated);
    REQUIRE(r.response->answers.size() == 1);
    const auto& a = r.response->answers[0];
    CHECK(a.name == "www.lab.test");  // the compressed owner name
    CHECK(a.type == 1);
    CHECK(a.rclass == 1);
    CHECK(a.data == "198.18.0.1");
  }
  SECTION("NXDOMAIN") {
    auto r = parse_fixture("dns_answer_nxdomain.hex", {"nope.lab.test", 1});
    REQUIRE(r.response);
    CHECK(outpost::dns_rcode_name(r.response->rcode) == "NXDOMAIN");
    CHECK(r.response->answers.empty());
  }
  SECTION("a CNAME chain, a name compressed into the CNAME's data") {
    auto r = parse_fixture("dns_answer_cname.hex", {"alias.lab.test", 1});
    REQUIRE(r.response);
    CHECK(answer_texts(*r.response) == std::vector<std::string>{"www.lab.test", "198.18.0.1"});
    CHECK(r.response->answers[0].name == "alias.lab.test");
    CHECK(r.response->answers[1].name == "www.lab.test");
  }
  SECTION("TXT") {
    auto r = parse_fixture("dns_answer_txt.hex", {"txt.lab.test", 16});
    REQUIRE(r.response);
    CHECK(answer_texts(*r.response) == std::vector<std::string>{"outpost lab"});
  }
  SECTION("MX") {
    auto r = parse_fixture("dns_answer_mx.hex", {"lab.test", 15});
    REQUIRE(r.response);
    CHECK(answer_texts(*r.response) == std::vector<std::string>{"10 mail.lab.test"});
  }
  SECTION("question names compare ignoring ASCII case") {
    CHECK(parse_fixture("dns_answer_www_a.hex", {"WWW.Lab.TEST", 1}).response);
  }
}

TEST_CASE("dns: SOA, AAAA and SERVFAIL", "[dns]") {
  auto soa = parse_fixture("dns_answer_soa.hex", {"lab.test", 6});
  REQUIRE(soa.response);
  CHECK(answer_texts(*soa.response) ==
        std::vector<std::string>{"ns1.lab.test hostmaster.lab.test 2024010101 3600 600 86400 60"});
  auto aaaa = parse_fixture("dns_answer_aaaa.hex", {"www.lab.test", 28});
  REQUIRE(aaaa.response);
  CHECK(answer_texts(*aaaa.response) == std::vector<std::string>{"2001:db8::80"});
  auto servfail = parse_fixture("dns_answer_servfail.hex");
  REQUIRE(servfail.response);
  CHECK(outpost::dns_rcode_name(servfail.response->rcode) == "SERVFAIL");
}

TEST_CASE("dns: a truncated UDP answer, then the whole one over TCP", "[dns]") {
  auto udp = parse_fixture("dns_answer_big_udp_tc.hex", {"big.lab.test", 1});
  REQUIRE(udp.response);
  CHECK(udp.response->truncated);
  CHECK(udp.response->answers.size() == 30);
  auto tcp = parse_fixture("dns_answer_big_tcp.hex", {"big.lab.test", 1});
  REQUIRE(tcp.response);
  CHECK_FALSE(tcp.response->truncated);
  REQUIRE(tcp.response->answers.size() == 40);
  CHECK(tcp.response->answers.front().data == "198.18.9.23");
  CHECK(tcp.response->answers.back().data == "198.18.9.6");

  // TC and cut in the middle of the third record: the two complete ones stay.
  auto cut = parse_fixture("dns_truncated_cut.hex", {"big.lab.test", 1});
  REQUIRE(cut.response);
  CHECK(cut.response->truncated);
  CHECK(answer_texts(*cut.response) == std::vector<std::string>{"198.18.9.6", "198.18.9.23"});
}

TEST_CASE("dns: answers that are not ours are told apart", "[dns]") {
  auto wrong_id = parse_fixture("dns_answer_wrong_id.hex");
  CHECK_FALSE(wrong_id.response);
  CHECK(wrong_id.error == DnsParseError::wrong_id);
  CHECK(wrong_id.detail == "id 0x4243, expected 0x4242");

  auto wrong_q = parse_fixture("dns_answer_wrong_question.hex");
  CHECK_FALSE(wrong_q.response);
  CHECK(wrong_q.error == DnsParseError::wrong_question);
  CHECK_THAT(wrong_q.detail, Catch::Contains("AAAA"));

  // Another name than asked.
  CHECK(parse_fixture("dns_answer_www_a.hex", {"ww.lab.test", 1}).error == DnsParseError::wrong_question);

  // Our own query looped back is not an answer.
  CHECK(parse_fixture("dns_query_www_a.hex").error == DnsParseError::not_a_response);

  // An error rcode may come without the question; NOERROR may not.
  Bytes bare = {0x42, 0x42, 0x81, 0x82, 0, 0, 0, 0, 0, 0, 0, 0};
  auto servfail = parse(bare);
  REQUIRE(servfail.response);
  CHECK(servfail.response->rcode == 2);
  bare[3] = 0x80;
  CHECK(parse(bare).error == DnsParseError::wrong_question);
}

TEST_CASE("dns: malformed answers are refused with a reason", "[dns]") {
  const std::pair<const char*, const char*> cases[] = {
      {"dns_malformed_header.hex", "shorter than a DNS header"},
      {"dns_malformed_cut.hex", "runs past the end"},
      {"dns_malformed_pointer_loop.hex", "does not point backwards"},
      {"dns_malformed_pointer_loop2.hex", "does not point backwards"},
      {"dns_malformed_pointer_range.hex", "does not point backwards"},
      {"dns_malformed_counts.hex", "answer record 2 of 5"},
      {"dns_malformed_rdlength.hex", "not 4 bytes"},
  };
  for (const auto& [file, why] : cases) {
    INFO(file);
    auto r = parse_fixture(file);
    CHECK_FALSE(r.response);
    CHECK(r.error == DnsParseError::malformed);
    CHECK_THAT(r.detail, Catch::Contains(why));
  }
}

TEST_CASE("dns: record data that does not fit its type", "[dns]") {
  CHECK(parse(one_record_answer(28, Bytes(4, 1))).error == DnsParseError::malformed);     // AAAA of 4 bytes
  CHECK(parse(one_record_answer(16, {})).error == DnsParseError::malformed);              // TXT, no string
  CHECK(parse(one_record_answer(16, {5, 'a', 'b'})).error == DnsParseError::malformed);   // TXT string too long
  CHECK(parse(one_record_answer(5, {1, 'a', 0, 0})).error == DnsParseError::malformed);   // name shorter than data
  CHECK(parse(one_record_answer(5, {3, 'a'})).error == DnsParseError::malformed);         // name longer than data
  CHECK(parse(one_record_answer(15, {0})).error == DnsParseError::malformed);             // MX without a name
  CHECK(parse(one_record_answer(6, {0, 0, 0, 0, 0})).error == DnsParseError::malformed);  // SOA without numbers
  CHECK(parse(one_record_answer(5, {0x40, 'a', 0})).error == DnsParseError::malformed);   // extended label type
  CHECK(parse(one_record_answer(5, {0xc0, 0x02})).error == DnsParseError::malformed);     // pointer into header
  // 130 one-byte labels: a name over 255 bytes.
  Bytes long_name;
  for (int i = 0; i < 130; ++i) long_name.insert(long_name.end(), {1, 'x'});
  long_name.push_back(0);
  auto too_long = parse(one_record_answer(5, long_name));
  CHECK(too_long.error == DnsParseError::malformed);
  CHECK_THAT(too_long.detail, Catch::Contains("longer than 255"));
}

TEST_CASE("dns: unusual bytes come out as printable text", "[dns]") {
  auto txt = parse(one_record_answer(16, {4, 'a', '\n', '\\', 0xff, 1, ' '}));
  REQUIRE(txt.response);
  CHECK(txt.response->answers[0].data == "a\\010\\\\\\255 ");
  auto name = parse(one_record_answer(5, {3, 'a', '.', 'b', 0}));  // a dot inside a label
  REQUIRE(name.response);
  CHECK(name.response->answers[0].data == "a\\.b");
  auto root = parse(one_record_answer(5, {0}));
  REQUIRE(root.response);
  CHECK(root.response->answers[0].data == ".");
  auto other = parse(one_record_answer(99, {0xab, 0xcd}));
  REQUIRE(other.response);
  CHECK(other.response->answers[0].data == "\\# 2 abcd");
  CHECK(other.response->answers[0].type == 99);
}

TEST_CASE("dns: every cut of every fixture parses or is refused, never more", "[dns]") {
  const std::pair<const char*, DnsQuestion> fixtures[] = {
      {"dns_answer_www_a.hex", kWwwA},         {"dns_answer_cname.hex", {"alias.lab.test", 1}},
      {"dns_answer_soa.hex", {"lab.test", 6}}, {"dns_answer_big_tcp.hex", {"big.lab.test", 1}},
      {"dns_answer_mx.hex", {"lab.test", 15}}, {"dns_answer_big_udp_tc.hex", {"big.lab.test", 1}},
  };
  for (const auto& [file, question] : fixtures) {
    const Bytes whole = read_hex_fixture(file);
    REQUIRE(parse(whole, question).response);
    for (std::size_t n = 0; n < whole.size(); ++n) {
      INFO(file << " cut to " << n << " bytes");
      auto r = parse(Bytes(whole.begin(), whole.begin() + static_cast<long>(n)), question);
      const bool tc = whole[2] & 0x02;
      if (!tc) CHECK(r.error == DnsParseError::malformed);
      if (r.response) CHECK(r.response->answers.size() <= 30);
    }
  }
}
