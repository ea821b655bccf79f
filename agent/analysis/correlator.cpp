#include "correlator.hpp"


namespace outpost {

const TraceHop* last_router(const TraceResult& trace) {
  const TraceHop* last = nullptr;
  for (const auto& h : trace.hops)
    if (h.addr && !h.is_target) last = &h;
  return last;
}

namespace {

using AsnOf = std::function<std::optional<std::uint32_t>(const IpAddress&)>;

std::optional<std::uint32_t> asn_of(const AsnOf& lookup, const IpAddress& addr) {
  if (!lookup || !addr) return std::nullopt;
  return lookup(addr);
}

std::string as_text(std::optional<std::uint32_t> asn) { return asn ? "AS" + std::to_string(*asn) : "an unknown AS"; }

// The TTL at which the baseline first entered `asn`, if it did.
std::optional<int> first_ttl_in(const TraceResult& trace, const AsnOf& asns, std::uint32_t asn) {
  for (const auto& h : trace.hops)
    if (asn_of(asns, h.addr) == asn) return h.ttl;
  return std::nullopt;
}

}  // namespace

Verdict judge(const VerdictInput& in) {
  Verdict v;
  v.have_baseline = in.baseline != nullptr;
  v.last_hop_alive = in.last_hop_alive;
  if (in.baseline) {
    const TraceHop* end = nullptr;
    for (const auto& h : in.baseline->hops)
      if (h.addr) end = &h;
    if (end) v.baseline_reached_asn = asn_of(in.asn_of, end->addr);
  }
  // The target's own network: where the baseline ended, else the target address's AS.
  const auto target_asn = in.baseline && in.baseline->reached ? v.baseline_reached_asn : asn_of(in.asn_of, in.target);

  if (in.vantage_failing) {
    v.where = Where::vantage;
    v.reason = "the control targets fail too: the problem is at this vantage point or its uplink";
    if (!in.failure) return v;
  }
  if (!in.failure) {
    v.reason = "no failure trace";
    return v;
  }
  const TraceResult& f = *in.failure;
  v.trace = f.started;
  const TraceHop* last = last_router(f);
  if (f.reached) {
    const TraceHop& t = f.hops.back();
    v.last_hop = t.addr;
    v.last_ttl = t.ttl;
    v.last_hop_asn = asn_of(in.asn_of, t.addr);
  } else if (last) {
    v.last_hop = last->addr;
    v.last_ttl = last->ttl;
    v.last_hop_asn = asn_of(in.asn_of, last->addr);
  }
  if (v.where == Where::vantage) return v;

  if (f.reached) {
    v.where = Where::target_network;
    v.reason = "the trace still reaches " + in.target.to_string() + ": the host answers, the probed service does not";
    return v;
  }
  if (!last) {
    v.where = Where::before_upstream;
    v.reason = "not even the first hop answers, while the control targets do";
    return v;
  }
  if (in.last_hop_alive && !*in.last_hop_alive) {
    v.where = Where::unknown;
    v.reason = "the last responding hop " + last->addr.to_string() +
               " does not answer direct probes: it may only be rate-limiting ICMP";
    return v;
  }
  const std::string dies = "the path now dies after hop " + std::to_string(last->ttl) + " (" +
                           last->addr.to_string() + ", " + as_text(v.last_hop_asn) + ")";
  if (v.last_hop_asn && target_asn && *v.last_hop_asn == *target_asn) {
    v.where = Where::target_network;
    v.reason = dies + ", inside the target's own network";
  } else if (v.last_hop_asn && in.upstream_asn && *v.last_hop_asn == *in.upstream_asn) {
    v.where = Where::upstream;
    v.reason = dies + ", inside the upstream carrier";
  } else if (in.baseline && in.upstream_asn) {
    const auto carrier_ttl = first_ttl_in(*in.baseline, in.asn_of, *in.upstream_asn);
    if (carrier_ttl && last->ttl < *carrier_ttl) {
      v.where = Where::before_upstream;
      v.reason = dies + ", before the upstream carrier " + as_text(in.upstream_asn) + " (hop " +
                 std::to_string(*carrier_ttl) + " in the last good trace)";
    } else {
      v.reason = dies + ", in neither the carrier nor the target's network";
    }
  } else {
    v.reason = dies + (in.baseline ? "" : "; there is no good trace to compare with");
  }
  return v;
}

}  // namespace outpost
