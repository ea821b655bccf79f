#include "probe_factory.hpp"

#include "dns.hpp"
#include "icmp_echo.hpp"
#include "tcp_connect.hpp"
#include "tcp_syn.hpp"

namespace outpost {
namespace {

std::unique_ptr<Probe> make_dns_probe(const IpAddress& server, Duration timeout, const DnsQuery* dns,
                                      std::string* error) {
  if (!dns) {
    *error = "probe method dns needs a dns block with a query";
    return nullptr;
  }
  DnsProbeSpec spec;
  auto type = dns_type_from_name(dns->type);
  auto name = normalize_dns_name(dns->query, error);
  if (!type) *error = "unknown dns query type '" + dns->type + "'";
  if (!type || !name) return nullptr;
  spec.question = {*name, *type};
  spec.expect = dns->expect;
  return std::make_unique<DnsProbe>(server, std::move(spec), timeout);
}

}  // namespace

bool needs_raw_socket(const ProbeMethod& method) {
  return method.kind == ProbeMethod::Kind::icmp || method.kind == ProbeMethod::Kind::tcp;
}

ProbeMethod without_raw_socket(ProbeMethod method) {
  if (method.kind == ProbeMethod::Kind::tcp) method.kind = ProbeMethod::Kind::tcp_connect;
  return method;
}

std::unique_ptr<Probe> make_probe(const ProbeMethod& method, const IpAddress& address, Duration timeout,
                                  const DnsQuery* dns, std::string* error) {
  switch (method.kind) {
    case ProbeMethod::Kind::icmp:
      return std::make_unique<IcmpEchoProbe>(address, timeout);
    case ProbeMethod::Kind::tcp:
      return std::make_unique<TcpSynProbe>(address, method.port, timeout);
    case ProbeMethod::Kind::tcp_connect:
      return std::make_unique<TcpConnectProbe>(address, method.port, timeout);
    case ProbeMethod::Kind::dns:
      return make_dns_probe(address, timeout, dns, error);
  }
  *error = "unknown probe method " + method.text();
  return nullptr;
}

}  // namespace outpost
