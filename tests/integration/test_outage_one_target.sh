#!/usr/bin/env bash
# One target of four down: the border router answers everything toward net4
# with ICMP host-unreachable (`netlab unreachable border 198.18.3.0/24`) for
# ~12 s, then `reachable`. Expected (README, "How it decides"):
#   - target_down for net4-h1 (198.18.3.1) within 10 s, verdict where
#     "target_network" (the failure trace ends at the border, 198.19.0.10,
#     inside AS64510, the AS the last good trace ended in);
#   - no group_down (1 of 4 < group_fraction 0.5), no other target down, no
#     vantage_down;
#   - target_up for net4-h1 afterwards, duration_s within one probe interval
#     (1 s) of the true outage;
#   - every output line is JSON; the agent exits 0 after --for.
# 8 s into the fault, while net4-h1 is down, the config gains a fifth target
# and the agent is sent SIGHUP: the reload keeps net4-h1's open outage (no
# second target_down, and the target_up's duration still covers the whole
# outage) and the phase of every kept task (no baseline trace again for the
# kept targets: one per hour), and the new target is probed and traced from
# then on.
# Exit 77 (skip) when not root.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/outage_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/outage_lib.sh"
lib_init oot
lab_up --hosts 4
fault serve web

outage_config itest-outage-one-target

outage_start 30s
timed_fault t_fault unreachable border 198.18.3.0/24
echo "  $(date -u +%T.%N | cut -c1-12) border answers host-unreachable for 198.18.3.0/24"
pause 8
sed -i 's/^      - { name: net4-h1, address: 198.18.3.1 }$/&\n      - { name: net1-h2, address: 198.18.0.2 }/' "$CFG"
check "the config now has net1-h2" grep -q net1-h2 "$CFG"
kill -HUP "$AGENT_PID"
t_reload=$(now)
echo "  $(date -u +%T.%N | cut -c1-12) SIGHUP: the agent reloads with net1-h2 added"
pause 4
timed_fault t_heal reachable border 198.18.3.0/24
echo "  $(date -u +%T.%N | cut -c1-12) border forwards to 198.18.3.0/24 again"

outage_wait

check "the agent logged the reload" grep -q "reloaded $CFG" "$LOG"

py_checks "$OUT" "$t_fault_0" "$t_fault_1" "$t_heal_0" "$t_heal_1" "$t_reload" <<'EOF'
fault, heal = (float(sys.argv[2]), float(sys.argv[3])), (float(sys.argv[4]), float(sys.argv[5]))
path, t_fault, t_heal, t_reload = sys.argv[1], fault[1], heal[0], float(sys.argv[6])
INTERVAL = 1.0
TARGET = "net4-h1"
records, events = outage_events(path, t_fault)
probes = [r for r in by_target(records).get(TARGET, []) if t_fault + 0.1 < parse_time(r["time"]) < t_heal - 0.1]
print(f"  {TARGET} probes during the fault: {statuses(probes)}")
check(f"{TARGET}: every probe during the fault unreachable, from the border 198.19.0.10",
      probes and all(r.get("status") == "unreachable" and r.get("reply_from") == "198.19.0.10" for r in probes))

td = [e for e in events if e.get("kind") == "target_down" and e.get("target") == TARGET]
check(f"a target_down for {TARGET}", len(td) >= 1, f"{len(td)} found")
if td:
    e = td[0]
    v = e.get("verdict") or {}
    print(f"  verdict: {json.dumps(v, sort_keys=True)}")
    check("target_down: exactly one", len(td) == 1, len(td))
    check("target_down: group is lab", e.get("group") == "lab", e.get("group"))
    check("verdict.where == target_network", v.get("where") == "target_network", v.get("where"))
    check("verdict.last_hop == 198.19.0.10 (border)", v.get("last_hop") == "198.19.0.10", v.get("last_hop"))
    check("verdict.last_hop_asn == 64510", v.get("last_hop_asn") == 64510, v.get("last_hop_asn"))
    tu = [u for u in events if u.get("kind") == "target_up" and u.get("target") == TARGET
          and parse_time(u["time"]) >= parse_time(e["time"])]
    check(f"a target_up for {TARGET} after the target_down", len(tu) >= 1, f"{len(tu)} found")
    outage_timing(TARGET, e, tu[0] if tu else None, fault, heal, INTERVAL)
    check("target_down came before the reload (the outage was open across it)",
          parse_time(e["time"]) < t_reload, f"{parse_time(e['time']) - t_reload:+.3f} s")
added = [r for r in by_target(records).get("net1-h2", []) if r.get("type") == "probe"]
check("net1-h2, added by the reload, probed and answering after it",
      added and all(parse_time(r["time"]) > t_reload for r in added)
      and any(r.get("status") == "reply" for r in added), statuses(added))
def closest_gap(target):
    """The shortest time between two probes of one method of the target, around the reload."""
    times = {}
    for r in by_target(records).get(target, []):
        t = parse_time(r["time"])
        if abs(t - t_reload) < 5:
            times.setdefault((r.get("method"), r.get("port")), []).append(t)
    gaps = [b - a for ts in times.values() for a, b in zip(sorted(ts), sorted(ts)[1:])]
    return min(gaps) if gaps else None
steady = {t: closest_gap(t) for t in ("net1-h1", "net2-h1", "net3-h1", "anchor1", "anchor2")}
print("  shortest gap between probes of one method within 5 s of the reload: "
      + ", ".join(f"{t} {g:.3f} s" if g is not None else f"{t} none" for t, g in steady.items()))
check("kept targets keep their phase: no two probes of a method closer than 0.9 interval",
      all(g is not None and g >= 0.9 * INTERVAL for g in steady.values()), steady)
baselines = [r for r in records if r.get("type") == "trace" and r.get("reason") == "baseline"]
kept = ("net1-h1", "net2-h1", "net3-h1", "net4-h1", "anchor1", "anchor2")
again = [r["target"] for r in baselines if r.get("target") in kept and parse_time(r["time"]) > t_reload]
check("no baseline trace again for the targets the reload kept", not again, again)
check("every kept target had its baseline trace before the reload",
      all(any(r.get("target") == t for r in baselines) for t in kept), sorted({r.get("target") for r in baselines}))
check("a baseline trace for net1-h2 after the reload",
      any(r.get("target") == "net1-h2" and parse_time(r["time"]) > t_reload for r in baselines))
others = [e for e in events if e.get("kind") in ("target_down", "target_flapping") and e.get("target") != TARGET]
check("no other target down", not others, [e.get("target") for e in others])
check("no group_down (1 of 4 targets)", not any(e.get("kind") == "group_down" for e in events))
check("no vantage_down", not any(e.get("kind") == "vantage_down" for e in events))
EOF

if ((failures)); then show_log "$LOG" | tail -n 30; fi
# OUTAGE_SAVE=DIR keeps the records and the log (e.g. to look at a failure).
if [[ -n ${OUTAGE_SAVE:-} ]]; then mkdir -p "$OUTAGE_SAVE" && cp "$OUT" "$LOG" "$CFG" "$OUTAGE_SAVE/"; fi
finish
