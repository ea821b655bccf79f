// Where a path breaks: compares a failure trace with the last good (baseline)
// trace toward the same target and names the network the path now dies in:
// inside the group's upstream carrier, in the target's own network, before
// the carrier, or at this vantage point. Pure: traces in, verdict out.
// Leaves to others: running the traces and probes (daemon), the ASN table (asn, through asn_of).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "records.hpp"  // Verdict
#include "traceroute.hpp"

namespace outpost {

struct VerdictInput {
  IpAddress target;
  const TraceResult* baseline = nullptr;  // the last trace that reached the target, if any
  const TraceResult* failure = nullptr;   // the trace taken when the target failed (none: vantage)
  // The origin AS of an address (empty: unknown, or no table).
  std::function<std::optional<std::uint32_t>(const IpAddress&)> asn_of;
  std::optional<std::uint32_t> upstream_asn;
  bool vantage_failing = false;           // the control targets fail too
  std::optional<bool> last_hop_alive;
};

Verdict judge(const VerdictInput& in);

// The last hop of a trace that answered and is not the target; nullptr if none.
const TraceHop* last_router(const TraceResult& trace);

}  // namespace outpost
