#!/usr/bin/env bash
# Outage of the vantage point itself: `netlab cut vp isp` takes the vp's own
# uplink down for ~12 s, then `uncut vp isp`. Every target fails, the control
# hosts (group `control`, control: true) too. Expected (README, "How it
# decides", "The vantage point"):
#   - vantage_down within 10 s of the cut, verdict where "vantage";
#   - NO target_down and NO group_down at all: it is us, not them;
#   - vantage_up afterwards, its duration_s within one probe interval (1 s)
#     of the true outage;
#   - every output line is JSON; the agent exits 0 after --for.
# Exit 77 (skip) when not root.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/outage_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/outage_lib.sh"
lib_init ov
lab_up --hosts 4
fault serve web

outage_config itest-outage-vantage

outage_start 30s
timed_fault t_fault cut vp isp
echo "  $(date -u +%T.%N | cut -c1-12) the vp's uplink is down"
pause 12
# The link may carry probes again before "fault uncut" returns (it also
# restores the routes): probes sent after t_heal_0 may be answered.
timed_fault t_heal uncut vp isp
echo "  $(date -u +%T.%N | cut -c1-12) the vp's uplink is up again"
check "the lab answers again after uncut (ping 198.18.100.1 from vp)" quiet in_vp ping -c 1 -W 2 198.18.100.1

outage_wait

py_checks "$OUT" "$t_fault_0" "$t_fault_1" "$t_heal_0" "$t_heal_1" <<'EOF'
fault, heal = (float(sys.argv[2]), float(sys.argv[3])), (float(sys.argv[4]), float(sys.argv[5]))
t_fault, t_heal = fault[1], heal[1]
INTERVAL = 1.0
records, events = outage_events(sys.argv[1], t_fault)
probes = [r for r in records if r.get("type") == "probe"]
during = [r for r in probes if t_fault + 0.1 < parse_time(r["time"]) < heal[0]]
print(f"  probes sent during the cut: {len(during)} {statuses(during)}")
check("no probe answered during the cut", during and not any(r.get("status") in ("reply", "refused") for r in during))

vd = [e for e in events if e.get("kind") == "vantage_down"]
check("a vantage_down", len(vd) >= 1, f"{len(vd)} found")
if vd:
    e = vd[0]
    v = e.get("verdict") or {}
    print(f"  vantage_down: {json.dumps(e, sort_keys=True)}")
    check("vantage_down: exactly one", len(vd) == 1, len(vd))
    check("verdict.where == vantage", v.get("where") == "vantage", v.get("where"))
    vu = [u for u in events if u.get("kind") == "vantage_up" and parse_time(u["time"]) >= parse_time(e["time"])]
    check("a vantage_up after the vantage_down", len(vu) >= 1, f"{len(vu)} found")
    outage_timing("vantage", e, vu[0] if vu else None, fault, heal, INTERVAL)
# The kernel routes again as soon as uncut returns (the ping above): a probe
# sent later that still fails to find a route is the agent's own stale state.
stale = [r for r in probes if parse_time(r["time"]) > t_heal + 0.2 and r.get("status") == "error"]
if stale:
    last = max(stale, key=lambda r: parse_time(r["time"]))
    print(f"  probes failing with an error after the uncut: {len(stale)}, the last "
          f"{parse_time(last['time']) - t_heal:+.3f} s after it: {last.get('error')}")
check("no probe sent after the uplink is back fails with an error", not stale, f"{len(stale)} did")
bad_kinds = [e for e in events if e.get("kind") in ("target_down", "group_down", "target_flapping")]
check("no target_down, group_down or target_flapping at all", not bad_kinds,
      [(e.get("kind"), e.get("target") or e.get("group")) for e in bad_kinds])
EOF

if ((failures)); then show_log "$LOG" | tail -n 30; fi
# OUTAGE_SAVE=DIR keeps the records and the log (e.g. to look at a failure).
if [[ -n ${OUTAGE_SAVE:-} ]]; then mkdir -p "$OUTAGE_SAVE" && cp "$OUT" "$LOG" "$CFG" "$OUTAGE_SAVE/"; fi
finish
