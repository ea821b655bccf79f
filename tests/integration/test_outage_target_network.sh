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
fault hostdown net1
t_fault=$(now)
echo "  $(date -u +%T.%N | cut -c1-12) net1 drops all input"
pause 12
fault hostup net1
t_heal=$(now)
echo "  $(date -u +%T.%N | cut -c1-12) net1 answers again"

outage_wait

py_checks "$OUT" "$t_fault" "$t_heal" <<'EOF'
path, t_fault, t_heal = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
INTERVAL = 1.0
records, events = outage_events(path, t_fault)
true_s = t_heal - t_fault
print(f"  true outage (hostup - hostdown): {true_s:.3f} s")

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
    delay = parse_time(e["time"]) - t_fault
    start_err = parse_time(e["start"]) - t_fault if "start" in e else None
    print(f"  detection delay (target_down time - fault): {delay:.3f} s")
    print(f"  start error (target_down start - fault): {start_err:+.3f} s" if start_err is not None else "  no start")
    check("detected within 10 s of the fault", 0 < delay <= 10, f"{delay:.3f} s")
    # The first probe after the fault fails: start is within one interval of
    # it (and a probe sent before the fault cannot fail by more than a timeout).
    check("start within one probe interval of the fault (-timeout <= error <= interval)",
          start_err is not None and -0.5 <= start_err <= INTERVAL + 0.1, start_err)
    tu = [u for u in events if u.get("kind") == "target_up" and u.get("target") == "net1-h1"
          and parse_time(u["time"]) >= parse_time(e["time"])]
    check("a target_up for net1-h1 after the target_down", len(tu) >= 1, f"{len(tu)} found")
    if tu:
        u = tu[0]
        dur = u.get("duration_s")
        up_delay = parse_time(u["time"]) - t_heal
        print(f"  target_up {up_delay:.3f} s after the hostup")
        if isinstance(dur, (int, float)):
            print(f"  duration_s {dur:.3f} s vs true {true_s:.3f} s: error {dur - true_s:+.3f} s (interval {INTERVAL} s)")
        check("target_up: duration_s within one probe interval of the true outage",
              isinstance(dur, (int, float)) and abs(dur - true_s) <= INTERVAL, f"{dur} vs {true_s:.3f}")
        check("target_up within 10 s of the hostup", 0 < up_delay <= 10, f"{up_delay:.3f} s")
others = [e for e in events if e.get("kind") in ("target_down", "target_flapping") and e.get("target") != "net1-h1"]
check("no other target down", not others, [e.get("target") for e in others])
check("no group_down (1 of 4 targets)", not any(e.get("kind") == "group_down" for e in events))
check("no vantage_down", not any(e.get("kind") == "vantage_down" for e in events))
EOF

if ((failures)); then show_log "$LOG" | tail -n 30; fi
# OUTAGE_SAVE=DIR keeps the records and the log (e.g. to look at a failure).
if [[ -n ${OUTAGE_SAVE:-} ]]; then mkdir -p "$OUTAGE_SAVE" && cp "$OUT" "$LOG" "$CFG" "$OUTAGE_SAVE/"; fi
finish
