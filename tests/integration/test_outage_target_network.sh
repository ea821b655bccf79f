#!/usr/bin/env bash
# Outage inside the target's own network: `netlab hostdown net1` (net1's
# namespace drops all input; border, carrier and the other nets stay healthy)
# for ~12 s, then `hostup net1`. Expected (README, "How it decides"):
#   - target_down for net1-h1 (198.18.0.1) within 10 s, verdict where
#     "target_network": the failure trace still reaches the target's network
#     (AS64510, the AS the last good trace ended in): last_hop 198.19.0.10
#     (border), last_hop_asn 64510;
#   - no other target down, no group_down (1 of 4 < group_fraction 0.5), no
#     vantage_down;
#   - target_up for net1-h1 afterwards, duration_s within one probe interval
#     (1 s) of the true outage;
#   - every output line is JSON; the agent exits 0 after --for.
# Exit 77 (skip) when not root.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/outage_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/outage_lib.sh"
lib_init otn
lab_up --hosts 4
fault serve web

outage_config itest-outage-target-net

outage_start 30s
timed_fault t_fault hostdown net1
echo "  $(date -u +%T.%N | cut -c1-12) net1 drops all input"
pause 12
timed_fault t_heal hostup net1
echo "  $(date -u +%T.%N | cut -c1-12) net1 answers again"

outage_wait

py_checks "$OUT" "$t_fault_0" "$t_fault_1" "$t_heal_0" "$t_heal_1" <<'EOF'
fault, heal = (float(sys.argv[2]), float(sys.argv[3])), (float(sys.argv[4]), float(sys.argv[5]))
INTERVAL = 1.0
records, events = outage_events(sys.argv[1], fault[1])

td = [e for e in events if e.get("kind") == "target_down" and e.get("target") == "net1-h1"]
check("a target_down for net1-h1", len(td) >= 1, f"{len(td)} found")
if td:
    e = td[0]
    v = e.get("verdict") or {}
    print(f"  verdict: {json.dumps(v, sort_keys=True)}")
    check("target_down: exactly one", len(td) == 1, len(td))
    check("target_down: group is lab", e.get("group") == "lab", e.get("group"))
    check("verdict.where == target_network", v.get("where") == "target_network", v.get("where"))
    check("verdict.last_hop == 198.19.0.10 (border)", v.get("last_hop") == "198.19.0.10", v.get("last_hop"))
    check("verdict.last_hop_asn == 64510", v.get("last_hop_asn") == 64510, v.get("last_hop_asn"))
    check("verdict.baseline_reached_asn == 64510", v.get("baseline_reached_asn") == 64510, v.get("baseline_reached_asn"))
    tu = [u for u in events if u.get("kind") == "target_up" and u.get("target") == "net1-h1"
          and parse_time(u["time"]) >= parse_time(e["time"])]
    check("a target_up for net1-h1 after the target_down", len(tu) >= 1, f"{len(tu)} found")
    outage_timing("net1-h1", e, tu[0] if tu else None, fault, heal, INTERVAL)
others = [e for e in events if e.get("kind") in ("target_down", "target_flapping") and e.get("target") != "net1-h1"]
check("no other target down", not others, [e.get("target") for e in others])
check("no group_down (1 of 4 targets)", not any(e.get("kind") == "group_down" for e in events))
check("no vantage_down", not any(e.get("kind") == "vantage_down" for e in events))
EOF

if ((failures)); then show_log "$LOG" | tail -n 30; fi
# OUTAGE_SAVE=DIR keeps the records and the log (e.g. to look at a failure).
if [[ -n ${OUTAGE_SAVE:-} ]]; then mkdir -p "$OUTAGE_SAVE" && cp "$OUT" "$LOG" "$CFG" "$OUTAGE_SAVE/"; fi
finish
