// libFuzzer target for the DNS message codec's answer parser (parse_dns_response):
// any bytes, against each question the fixtures answer. Beyond "no crash, no
// sanitizer report", it checks that whatever is accepted (names, record data,
// the rcode's and the types' names) is ASCII text, as the records need.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "dns_message.hpp"

namespace {

const outpost::DnsQuestion kQuestions[] = {
    {"www.lab.test", 1},  {"alias.lab.test", 1}, {"big.lab.test", 1}, {"nope.lab.test", 1},
    {"txt.lab.test", 16}, {"lab.test", 15},      {"lab.test", 6},     {"www.lab.test", 28},
};

bool printable(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> message(data, size);
  // The id the message carries, so that parsing goes past the header.
  const std::uint16_t id = size >= 2 ? static_cast<std::uint16_t>(data[0] << 8 | data[1]) : 0;
  for (const auto& question : kQuestions) {
    const auto parsed = outpost::parse_dns_response(message, id, question);
    if (!parsed.response) {
      if (parsed.error == outpost::DnsParseError::none || parsed.detail.empty()) std::abort();
      continue;
    }
    if (!printable(outpost::dns_rcode_name(parsed.response->rcode))) std::abort();
    for (const auto& rr : parsed.response->answers)
      if (!printable(rr.name) || !printable(rr.data) || !printable(outpost::dns_type_name(rr.type))) std::abort();
  }
  return 0;
}
