// outpost-tins.so: the DNS queries built with libtins (tins_forge.hpp). Loaded by
// outpost on first use; linked whole into the tests and fuzzers.
#include <tins/tins.h>

#include <exception>
#include <string>

#include "tins_forge.hpp"

namespace outpost {
namespace {

std::vector<std::uint8_t> dns_query(std::uint16_t id, const DnsQuestion& question, std::string* error) {
  try {
    Tins::DNS dns;
    dns.id(id);
    dns.type(Tins::DNS::QUERY);
    dns.recursion_desired(1);
    dns.add_query(Tins::DNS::query(question.name, static_cast<Tins::DNS::QueryType>(question.type),
                                   static_cast<Tins::DNS::QueryClass>(question.qclass)));
    return dns.serialize();
  } catch (const std::exception& why) {
    *error = std::string("DNS query for ") + question.name + ": " + why.what();
    return {};
  } catch (...) {
    *error = "DNS query for " + question.name + ": libtins failed";
    return {};
  }
}

const TinsForge kTable{dns_query};

}  // namespace
}  // namespace outpost

extern "C" __attribute__((visibility("default"))) const outpost::TinsForge* outpost_tins_forge_table() {
  return &outpost::kTable;
}
