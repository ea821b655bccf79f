#!/usr/bin/env bash
# outpost run while the carrier router drops everything it forwards
# (`netlab drop carrier`): every probe to the four nets must end as a timeout
# (no rtt_ms, no reply_from), while the control hosts, reached through isp
# and not through the carrier, keep replying. Exit 77 (skip) when not root.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init at
lab_up --hosts 4
netlab drop carrier || { echo "FAIL: netlab drop carrier"; exit 1; }

cfg=$WORK/timeout.yaml
cat >"$cfg" <<EOF
agent:
  id: itest-timeout
defaults:
  interval: 400ms
  timeout: 300ms
detect:
  suspect_interval: 400ms     # failing targets keep the configured interval: the test counts probes
groups:
  - name: nets
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
      - { name: net2-h1, address: 198.18.1.1 }
      - { name: net3-h1, address: 198.18.2.1 }
      - { name: net4-h1, address: 198.18.3.1 }
  - name: control
    control: true
    targets:
      - { name: ctl-1, address: 198.18.100.1 }
EOF

run_agent "$cfg" "$WORK/out.jsonl" "$WORK/agent.log" 4s
rc=$?
check "outpost run exits 0 (got $rc)" test "$rc" -eq 0
if ((rc != 0)); then show_log "$WORK/agent.log"; fi
engine_line=$(grep -o 'engine: .*' "$WORK/agent.log")
echo "  $engine_line"

py_checks "$WORK/out.jsonl" "$engine_line" <<'EOF'
records, bad = load_records(sys.argv[1])
check("every line is a JSON object", not bad and records, f"{len(records)} records")
targets = by_target(records)
nets = ["net1-h1", "net2-h1", "net3-h1", "net4-h1"]
for name in nets:
    rs = targets.get(name, [])
    check(f"{name}: 10±1 probes, every one a timeout", abs(len(rs) - 10) <= 1 and all(r.get("status") == "timeout" for r in rs),
          f"{len(rs)} probes, {statuses(rs)}")
    check(f"{name}: timeouts carry no rtt_ms, reply_from or error",
          all("rtt_ms" not in r and "reply_from" not in r and "error" not in r for r in rs))
    check(f"{name}: address and method as configured",
          all(r.get("address") == "198.18.%d.1" % (int(name[3]) - 1) and r.get("method") == "icmp" for r in rs))
ctl = targets.get("ctl-1", [])
check("ctl-1 (through isp, not the carrier) still replies", ctl and all(r.get("status") == "reply" for r in ctl),
      statuses(ctl))
fields = dict(kv.split("=") for kv in sys.argv[2].split()[1:] if "=" in kv)
n_timeouts = sum(len(targets.get(n, [])) for n in nets)
# (>=: a traceroute the agent may run toward a failing target counts its own timeouts)
check("engine counters: every timeout record counted by the engine", int(fields.get("timeouts", -1)) >= n_timeouts,
      f"engine timeouts={fields.get('timeouts')}, records {n_timeouts}")
check("engine counters: no send errors", fields.get("send_errors") == "0", fields.get("send_errors"))
EOF

finish
