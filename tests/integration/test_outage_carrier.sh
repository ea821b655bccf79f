#!/usr/bin/env bash
# Outage inside the upstream carrier: with the agent probing the lab's four
# target networks (group `lab`, upstream_asn 64500) and the control hosts,
# `netlab drop carrier` (the carrier drops everything it forwards, but still
# sends time-exceeded) for ~12 s, then `undrop carrier`. Expected (README,
# "How it decides"):
#   - group_down for `lab`, verdict where "upstream", last_hop 198.19.0.6
#     (the carrier's hop), last_hop_asn 64500, baseline_reached_asn 64510,
#     detected within 10 s of the fault;
#   - group_up afterwards, its duration_s within one probe interval (1 s) of
#     the true outage (undrop time - drop time);
#   - no vantage_down (the controls sit behind isp, not behind the carrier);
#   - every output line is JSON; the agent exits 0 after --for.
# Prints the detection delay (event time - fault), the start error (event
# start - fault) and the duration error. Exit 77 (skip) when not root.
# OUTAGE_IPV6=1 (test_outage_ipv6.sh): the same over IPv6 (netlab up --ipv6,
# the targets by their IPv6 addresses, the carrier's hop 2001:2:0:ff01::2).
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/outage_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/outage_lib.sh"
IPV6=${OUTAGE_IPV6:-0}
if ((IPV6)); then
  lib_init o6
  lab_up --hosts 4 --ipv6
  CARRIER_HOP=2001:2:0:ff01::2
else
  lib_init oc
  lab_up --hosts 4
  CARRIER_HOP=198.19.0.6
fi
fault serve web

outage_config itest-outage-carrier
if ((IPV6)); then outage_config_ipv6; fi

outage_start 30s
timed_fault t_fault drop carrier
echo "  $(date -u +%T.%N | cut -c1-12) carrier drops everything it forwards"
pause 12
timed_fault t_heal undrop carrier
echo "  $(date -u +%T.%N | cut -c1-12) carrier restored"

outage_wait

py_checks "$OUT" "$t_fault_0" "$t_fault_1" "$t_heal_0" "$t_heal_1" "$CARRIER_HOP" "$IPV6" <<'EOF'
fault, heal = (float(sys.argv[2]), float(sys.argv[3])), (float(sys.argv[4]), float(sys.argv[5]))
carrier_hop, ipv6 = sys.argv[6], sys.argv[7] == "1"
INTERVAL = 1.0
records, events = outage_events(sys.argv[1], fault[1])
probes = [r for r in records if r.get("type") == "probe"]
check("probes went to " + ("IPv6" if ipv6 else "IPv4") + " addresses only",
      probes and all((":" in r["address"]) == ipv6 for r in probes), len(probes))

gd = [e for e in events if e.get("kind") == "group_down" and e.get("group") == "lab"]
check("a group_down for group lab", len(gd) >= 1, f"{len(gd)} found")
if gd:
    e = gd[0]
    v = e.get("verdict") or {}
    print(f"  verdict: {json.dumps(v, sort_keys=True)}")
    check("group_down: exactly one", len(gd) == 1, len(gd))
    check("verdict.where == upstream", v.get("where") == "upstream", v.get("where"))
    check(f"verdict.last_hop == {carrier_hop} (carrier)", v.get("last_hop") == carrier_hop, v.get("last_hop"))
    check("verdict.last_hop_asn == 64500", v.get("last_hop_asn") == 64500, v.get("last_hop_asn"))
    check("verdict.baseline_reached_asn == 64510", v.get("baseline_reached_asn") == 64510, v.get("baseline_reached_asn"))
    gu = [u for u in events if u.get("kind") == "group_up" and u.get("group") == "lab"
          and parse_time(u["time"]) >= parse_time(e["time"])]
    check("a group_up for lab after the group_down", len(gu) >= 1, f"{len(gu)} found")
    outage_timing("group lab", e, gu[0] if gu else None, fault, heal, INTERVAL)
check("no vantage_down", not any(e.get("kind") == "vantage_down" for e in events))
EOF

if ((failures)); then show_log "$LOG" | tail -n 30; fi
# OUTAGE_SAVE=DIR keeps the records and the log (e.g. to look at a failure).
if [[ -n ${OUTAGE_SAVE:-} ]]; then mkdir -p "$OUTAGE_SAVE" && cp "$OUT" "$LOG" "$CFG" "$OUTAGE_SAVE/"; fi
finish
