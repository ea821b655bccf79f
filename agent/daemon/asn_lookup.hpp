// The ASN table as the records and the correlator ask it: a hop's origin AS
// (with its multi-origin text and name) and an address's primary origin.
// Leaves to others: loading the table (asn), using the answers (records, analysis).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "asn_table.hpp"
#include "records.hpp"

namespace outpost {

// Empty functions when there is no table.
AsnLookup hop_asn_lookup(std::shared_ptr<const AsnTable> table);
std::function<std::optional<std::uint32_t>(const IpAddress&)> origin_lookup(std::shared_ptr<const AsnTable> table);

}  // namespace outpost
