// Where a path breaks: compares a failure trace with the last good (baseline)
// trace toward the same target and names the network the path now dies in:
// inside the group's upstream carrier, in the target's own network, before
// the carrier, or at this vantage point. Pure: traces in, verdict out.
// Leaves to others: running the traces and probes (agent), ASNs (asn_table).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "asn_table.hpp"
#include "traceroute.hpp"

namespace outpost {

enum class Where : std::uint8_t { upstream, target_network, before_upstream, vantage, unknown };
std::string_view to_string(Where where);

struct Verdict {
  Where where = Where::unknown;
  IpAddress last_hop;                                 // the last router (or host) that answered the failure trace
  std::optional<std::uint32_t> last_hop_asn;
  int last_ttl = 0;
  std::optional<std::uint32_t> baseline_reached_asn;  // the ASN the last good trace ended in
  std::optional<WallTime> trace;                      // the failure trace's time
  std::optional<bool> last_hop_alive;                 // answered direct probes after the trace
  bool have_baseline = false;
  std::string reason;                                 // one sentence for people
};

struct VerdictInput {
  IpAddress target;
  const TraceResult* baseline = nullptr;  // the last trace that reached the target, if any
  const TraceResult* failure = nullptr;   // the trace taken when the target failed (none: vantage)
  const AsnTable* asns = nullptr;
  std::optional<std::uint32_t> upstream_asn;
  bool vantage_failing = false;           // the control targets fail too
  std::optional<bool> last_hop_alive;
};

Verdict judge(const VerdictInput& in);
nlohmann::json verdict_json(const Verdict& v);

// The last hop of a trace that answered and is not the target; nullptr if none.
const TraceHop* last_router(const TraceResult& trace);

}  // namespace outpost
