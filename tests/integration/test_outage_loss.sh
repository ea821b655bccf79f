#!/usr/bin/env bash
# Random loss is not an outage. The agent probes the four lab targets and the
# two control hosts every 300 ms (timeout 120 ms, suspect_interval 150 ms,
# down_after 3) with two methods each, under 10 % random loss, in two phases
# of ~30 s:
#   A. `netlab loss border 10`: 10 % of what the border forwards toward the
#      target nets is dropped (the controls, behind isp, see none);
#   B. `noloss border`, `netlab loss isp 10`: 10 % of everything toward
#      198.18.0.0/16 is dropped at isp, the control hosts included.
# (Not both at once: that would be 19 % toward the targets and a round would
# fail with 3.6 %, three in a row 4.7e-5 per round, a few % per run.)
# Replies are not dropped (they go to 198.19.0.1), so a probe is lost with
# p = 0.1. With two methods per target (icmp and tcp:80; the control hosts run
# no web server and answer tcp:80 with a RST, `refused`, which counts as
# answered) a round fails only when both are lost: 0.1^2 = 1 %, and
# down_after 3 needs three such rounds in a row: 1e-6. About 100 rounds per
# target and phase (30 s / 300 ms), 4 targets in A and 6 in B: ~1,000 rounds,
# so a false down in 1e-3 runs. Expected: no event at all; the observed
# per-probe loss in each phase within the binomial band of p = 0.1 (4.5
# sigma) to show the fault was real, and none toward the controls in phase A;
# every output line is JSON; the agent exits 0 after --for.
# Exit 77 (skip) when not root.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/outage_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/outage_lib.sh"
lib_init ol
lab_up --hosts 4
fault serve web

outage_config itest-outage-loss 300ms 120ms 150ms ""

outage_start 68s
timed_fault t_a loss border 10
echo "  $(date -u +%T.%N | cut -c1-12) phase A: border drops 10 % toward the target nets"
pause 30
# Each phase is counted from the moment its fault was surely on to the
# moment the next one may have begun (timed_fault's before/after).
timed_fault t_ab noloss border
timed_fault t_b loss isp 10
echo "  $(date -u +%T.%N | cut -c1-12) phase B: isp drops 10 % toward everything (controls too)"
pause 30
timed_fault t_end noloss isp
echo "  $(date -u +%T.%N | cut -c1-12) no loss"

outage_wait

py_checks "$OUT" "$t_a_1" "$t_ab_0" "$t_b_1" "$t_end_0" <<'EOF'
path, t_a, t_a_end, t_b, t_end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
P = 0.1
records, events = outage_events(path, t_a)
probes = [r for r in records if r.get("type") == "probe"]
st = statuses(probes)
print(f"  {len(probes)} probes: {st}")
check("probes end as reply, refused or timeout only", set(st) <= {"reply", "refused", "timeout"}, st)
LAB = {"net1-h1", "net2-h1", "net3-h1", "net4-h1"}
CTL = {"anchor1", "anchor2"}
def in_phase(r, lo, hi):  # leave half a second either side of each switch
    return lo + 0.5 < parse_time(r["time"]) < hi - 0.5
def loss_line(label, rs, p):
    n = len(rs)
    lost = sum(r.get("status") == "timeout" for r in rs)
    if p == 0:
        return check(f"{label}: no loss ({lost}/{n})", n > 0 and lost == 0)
    lo, hi = binomial_band(n, p)
    return check(f"{label}: loss {lost}/{n} = {100 * lost / max(n, 1):.1f}% within the binomial band "
                 f"[{lo:.0f}, {hi:.0f}] of p = {p}", n > 0 and lo <= lost <= hi)
a = [r for r in probes if in_phase(r, t_a, t_a_end)]
b = [r for r in probes if in_phase(r, t_b, t_end)]
loss_line("phase A (loss border 10), lab targets", [r for r in a if r.get("target") in LAB], P)
loss_line("phase A (loss border 10), control hosts", [r for r in a if r.get("target") in CTL], 0)
loss_line("phase B (loss isp 10), lab targets", [r for r in b if r.get("target") in LAB], P)
loss_line("phase B (loss isp 10), control hosts", [r for r in b if r.get("target") in CTL], P)
for label, rs in (("A", a), ("B", b)):
    for name, ts in sorted(by_target(rs).items()):
        per = {}
        for r in ts:
            m = r.get("method")
            k = per.setdefault(m, [0, 0])
            k[0] += r.get("status") == "timeout"
            k[1] += 1
        print(f"  phase {label} {name}: " + ", ".join(f"{m} {k[0]}/{k[1]} lost ({100 * k[0] / k[1]:.1f}%)"
                                                   for m, k in sorted(per.items())))
refused = [r for r in probes if r.get("target") in CTL and r.get("method") == "tcp"]
check("control hosts answer tcp:80 with a RST (refused): a second method for them",
      refused and any(r.get("status") == "refused" for r in refused), statuses(refused))
check("no event at all (no target, group or vantage down under 10 % loss)", not events,
      [(e.get("kind"), e.get("target") or e.get("group")) for e in events])
EOF

if ((failures)); then show_log "$LOG" | tail -n 30; fi
# OUTAGE_SAVE=DIR keeps the records and the log (e.g. to look at a failure).
if [[ -n ${OUTAGE_SAVE:-} ]]; then mkdir -p "$OUTAGE_SAVE" && cp "$OUT" "$LOG" "$CFG" "$OUTAGE_SAVE/"; fi
finish
