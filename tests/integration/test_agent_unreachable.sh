#!/usr/bin/env bash
# The border router answers everything toward net2 with ICMP host-unreachable
# (`netlab unreachable border 198.18.1.0/24`, an nft reject): probes to
# 198.18.1.1 must be `unreachable` with reply_from 198.19.0.10, icmp_type 3,
# icmp_code 1 and an RTT, while the other nets still reply; `outpost ping`
# to it must say so and exit 1. Exit 77 (skip) when not root.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init au
lab_up --hosts 4
netlab unreachable border 198.18.1.0/24 || { echo "FAIL: netlab unreachable border"; exit 1; }

cfg=$WORK/unreachable.yaml
cat >"$cfg" <<EOF
agent:
  id: itest-unreach
defaults:
  interval: 250ms
  timeout: 200ms
detect:
  suspect_interval: 250ms     # failing targets keep the configured interval: the test counts probes
groups:
  - name: nets
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
      - { name: net2-h1, address: 198.18.1.1 }
      - { name: net3-h1, address: 198.18.2.1 }
      - { name: net4-h1, address: 198.18.3.1 }
EOF

run_agent "$cfg" "$WORK/out.jsonl" "$WORK/agent.log" 3s
rc=$?
check "outpost run exits 0 (got $rc)" test "$rc" -eq 0
if ((rc != 0)); then show_log "$WORK/agent.log"; fi

py_checks "$WORK/out.jsonl" <<'EOF'
records, bad = load_records(sys.argv[1])
check("every line is a JSON object", not bad and records, f"{len(records)} records")
targets = by_target(records)
for name, rs in sorted(targets.items()):
    print(f"  {name}: {len(rs)} probes {statuses(rs)}")
un = targets.get("net2-h1", [])
check("net2-h1: 12±1 probes, every one unreachable", abs(len(un) - 12) <= 1 and all(r.get("status") == "unreachable" for r in un),
      statuses(un))
check("net2-h1: reply_from 198.19.0.10 (border)", un and all(r.get("reply_from") == "198.19.0.10" for r in un),
      sorted(set(str(r.get("reply_from")) for r in un)))
check("net2-h1: icmp_type 3, icmp_code 1", un and all(r.get("icmp_type") == 3 and r.get("icmp_code") == 1 for r in un),
      sorted(set((r.get("icmp_type"), r.get("icmp_code")) for r in un)))
check("net2-h1: rtt_ms present and plausible (0 < rtt < 5 ms)",
      un and all(isinstance(r.get("rtt_ms"), (int, float)) and 0 < r["rtt_ms"] < 5 for r in un),
      f"median {statistics.median(r['rtt_ms'] for r in un if 'rtt_ms' in r):.3f} ms" if any('rtt_ms' in r for r in un) else "")
check("net2-h1: address is still the target's", un and all(r.get("address") == "198.18.1.1" for r in un))
if un:
    print(f"  e.g. {json.dumps(un[0], sort_keys=True)}")
for name in ("net1-h1", "net3-h1", "net4-h1"):
    rs = targets.get(name, [])
    check(f"{name}: 12±1 probes, every one a reply", abs(len(rs) - 12) <= 1 and all(r.get("status") == "reply" for r in rs),
          statuses(rs))
EOF

out=$(in_vp "$OUTPOST" ping 198.18.1.1 -c 3 -i 100ms -W 500ms 2>&1)
rc=$?
echo "$out" | sed 's/^/  | /'
check "outpost ping 198.18.1.1 exits 1 (no reply; got $rc)" test "$rc" -eq 1
check "outpost ping names the unreachable and its sender" grep -qi 'unreachable.*from 198\.19\.0\.10' <<<"$out"
check "outpost ping 198.18.3.1 still works" quiet in_vp "$OUTPOST" ping 198.18.3.1 -c 2 -i 100ms -W 500ms

finish
