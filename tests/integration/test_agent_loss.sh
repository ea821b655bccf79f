#!/usr/bin/env bash
# Random loss: the border router drops 30% of what it forwards toward the
# nets (`netlab loss border 30`, nft numgen: independent per packet; replies
# are not dropped, they go to 198.19.0.1). The observed loss must fall in the
# binomial band n·p ± 4.5·sqrt(n·p·(1-p)) for p = 0.3, both for the agent
# (4 targets every 50 ms for 10 s, 800 probes) and for `outpost ping`
# (400 probes every 5 ms). A lost probe must be a timeout, never an error.
# Exit 77 (skip) when not root.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init al
lab_up --hosts 4
netlab loss border 30 || { echo "FAIL: netlab loss border 30"; exit 1; }

cfg=$WORK/loss.yaml
cat >"$cfg" <<EOF
agent:
  id: itest-loss
defaults:
  interval: 50ms
  timeout: 40ms
detect:
  suspect_interval: 50ms     # failing targets keep the configured interval: the test counts probes
groups:
  - name: nets
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
      - { name: net2-h1, address: 198.18.1.1 }
      - { name: net3-h1, address: 198.18.2.1 }
      - { name: net4-h1, address: 198.18.3.1 }
EOF

run_agent "$cfg" "$WORK/run.jsonl" "$WORK/agent.log" 10s
rc=$?
check "outpost run exits 0 (got $rc)" test "$rc" -eq 0
if ((rc != 0)); then show_log "$WORK/agent.log"; fi

in_vp "$OUTPOST" ping 198.18.2.3 -c 400 -i 5ms -W 500ms --json >"$WORK/ping.jsonl" 2>"$WORK/ping.log"
rc=$?
check "outpost ping exits 0 (some replies; got $rc)" test "$rc" -eq 0

py_checks "$WORK/run.jsonl" "$WORK/ping.jsonl" <<'EOF'
P = 0.3
for label, path, expect_n in (("agent", sys.argv[1], 800), ("ping", sys.argv[2], 400)):
    records, bad = load_records(path)
    probes = [r for r in records if r.get("type") == "probe"]
    check(f"{label}: every line is a JSON object", not bad and probes, f"{len(probes)} probes")
    st = statuses(probes)
    check(f"{label}: only reply and timeout", set(st) <= {"reply", "timeout"}, st)
    n = len(probes)
    check(f"{label}: about {expect_n} probes", abs(n - expect_n) <= 0.02 * expect_n + 4, n)
    lost = st.get("timeout", 0)
    lo, hi = binomial_band(n, P)
    check(f"{label}: loss {lost}/{n} = {100 * lost / max(n, 1):.1f}% within the binomial band "
          f"[{lo:.0f}, {hi:.0f}] ({100 * lo / max(n, 1):.1f}%..{100 * hi / max(n, 1):.1f}%)", n > 0 and lo <= lost <= hi)
    if label == "agent":
        for name, rs in sorted(by_target(probes).items()):
            k = sum(r.get("status") == "timeout" for r in rs)
            print(f"  {name}: {k}/{len(rs)} lost ({100 * k / len(rs):.1f}%)")
    rtts = [r["rtt_ms"] for r in probes if r.get("status") == "reply"]
    check(f"{label}: replies keep plausible RTTs (0 < rtt < 5 ms)", rtts and all(0 < x < 5 for x in rtts),
          f"median {statistics.median(rtts):.3f} ms" if rtts else "no replies")
EOF

finish
