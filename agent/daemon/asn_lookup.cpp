#include "asn_lookup.hpp"

namespace outpost {

AsnLookup hop_asn_lookup(std::shared_ptr<const AsnTable> table) {
  if (!table) return {};
  return [table = std::move(table)](const IpAddress& addr) -> std::optional<HopAsn> {
    auto m = table->lookup(addr);
    if (!m) return std::nullopt;
    HopAsn a;
    a.asn = m->origin.primary();
    if (m->origin.asns.size() > 1) a.origin = m->origin.text();
    a.name = table->name_of(a.asn);
    return a;
  };
}

std::function<std::optional<std::uint32_t>(const IpAddress&)> origin_lookup(std::shared_ptr<const AsnTable> table) {
  if (!table) return {};
  return [table = std::move(table)](const IpAddress& addr) -> std::optional<std::uint32_t> {
    auto m = table->lookup(addr);
    if (!m) return std::nullopt;
    return m->origin.primary();
  };
}

}  // namespace outpost
