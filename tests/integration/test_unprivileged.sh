#!/usr/bin/env bash
# Without CAP_NET_RAW: a config of TCP and DNS probes runs on ordinary
# sockets (tcp:PORT as a connect()), `outpost ping --method tcp:PORT` too,
# while ICMP (and traces) still refuse with a message naming CAP_NET_RAW.
# ctest: parallel
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init up
lib_need_tools setpriv
lab_up --hosts 2
netlab serve web
netlab serve dns
nocap=(setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-net_raw --)

cat >"$WORK/tcp-dns.yaml" <<YAML
agent: { id: nocap, max_pps: 100 }
defaults: { interval: 300ms, timeout: 200ms }
groups:
  - name: lab
    targets:
      - { name: web-open, address: 198.18.0.1, probes: ["tcp:80"] }
      - { name: web-closed, address: 198.18.1.1, probes: ["tcp:81"] }
      - name: ns
        address: 198.18.2.1
        probes: [dns]
        dns: { query: www.lab.test, type: A }
YAML
in_vp "${nocap[@]}" "$OUTPOST" run -c "$WORK/tcp-dns.yaml" --for 2s --output "$WORK/run.jsonl" 2>"$WORK/run.log"
rc=$?
check "run without CAP_NET_RAW, tcp and dns only: exit 0" test "$rc" -eq 0
check "it says tcp:PORT uses connect()" grep -q "no CAP_NET_RAW" "$WORK/run.log"
in_vp "${nocap[@]}" "$OUTPOST" ping 198.18.0.1 --method tcp:80 -c 2 -i 50ms --json >"$WORK/ping.jsonl" 2>/dev/null
check "ping --method tcp:80 without CAP_NET_RAW: exit 0" test $? -eq 0
in_vp "${nocap[@]}" "$OUTPOST" ping 198.18.0.1 -c 1 >"$WORK/icmp.out" 2>&1
rc=$?
check "ping (icmp) without CAP_NET_RAW: exit 2 naming it" eval '[[ $rc -eq 2 ]] && grep -q CAP_NET_RAW "$WORK/icmp.out"'
in_vp "${nocap[@]}" "$OUTPOST" trace 198.18.0.1 >"$WORK/trace.out" 2>&1
rc=$?
check "trace without CAP_NET_RAW: exit 2 naming it" eval '[[ $rc -eq 2 ]] && grep -q CAP_NET_RAW "$WORK/trace.out"'

py_checks "$WORK" <<'PY'
work = sys.argv[1]
records, bad = load_records(f"{work}/run.jsonl")
check("every line is JSON", not bad, bad)
t = by_target(records)
check("tcp:80 open: replies (method tcp, port 80)",
      len(t.get("web-open", [])) >= 4 and all(r["status"] == "reply" and r["method"] == "tcp" and r["port"] == 80 for r in t["web-open"]),
      statuses(t.get("web-open", [])))
check("tcp:81 closed: refused", len(t.get("web-closed", [])) >= 4 and all(r["status"] == "refused" for r in t["web-closed"]),
      statuses(t.get("web-closed", [])))
check("dns: replies with the lab's address", len(t.get("ns", [])) >= 4 and all(r["status"] == "reply" and "198.18.0.1" in r["answers"] for r in t["ns"]),
      statuses(t.get("ns", [])))
check("no traces without raw sockets", not [r for r in records if r["type"] == "trace"])
pings, bad = load_records(f"{work}/ping.jsonl")
check("ping tcp:80: 2 replies", len(pings) == 2 and all(r["status"] == "reply" for r in pings), statuses(pings))
PY
finish
