#!/usr/bin/env bash
# An off-path attacker (README, "What can be forged"). net2's host is dead
# (`netlab hostdown net2`, as in test_outage_target_network.sh); a spoofer
# (offpath_spoofer.py, scapy) sits in net1 and sees every probe the agent
# sends to net1 (icmp, tcp:80, dns). From what it saw and what it can guess
# it forges, with the dead host's address as source: echo replies, SYN-ACKs,
# RSTs and DNS answers; ICMP errors quoting the seen probes rewritten toward
# the dead host; then a flood of ICMP errors (3,000 a second for 12 s,
# port unreachables sweeping the ephemeral ports of a DNS query toward the
# dead host among them). Its own DNS server answers the agent's queries to
# net1 with 64 KB pointer chains (chain.lab.test, net1-h1) and thousands of
# CNAMEs (storm.lab.test, net1-h2: TC over UDP, the whole storm over TCP).
# Expected:
#   - the routers do not filter spoofed sources (rp_filter off), and the
#     forged packets reach the vantage point (an nft counter there);
#   - every probe of net2-h1 after the fault is a timeout, with no reply_from:
#     no forged answer or error is taken for its; its DNS probes during the
#     flood count the forged port unreachables they ignored;
#   - target_down for net2-h1, verdict target_network at the border
#     198.19.0.10 (AS64510), its failure trace not reached; no target_up, no
#     other target down, no group_down, no vantage_down;
#   - the engine's counters at exit show what it rejected (stray + spoofed > 0);
#   - DNS records toward the spoofer are bounded: at most 32 answers of at
#     most 255 characters, answers_dropped for the storm, every line under
#     the 24 KiB record ceiling;
#   - the agent's stats line reports launch lateness (printed, not asserted);
#   - VmHWM (peak resident memory) under 256 MB while attacked (the ASan
#     build peaks near 125 MB here; the figure is printed);
#   - SIGTERM during the flood: exit 0, and every output line is JSON.
# Exit 77 (skip) when not root or without python3-scapy.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/outage_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/outage_lib.sh"
lib_init off
if ! /usr/bin/python3 -c 'import scapy.all' 2>/dev/null; then
  echo "SKIP: needs Debian's python3-scapy (run scripts/setup)"
  exit 77
fi
lab_up --hosts 2
fault serve web

VP=198.19.0.1
DEAD=198.18.1.1
BORDER=198.19.0.10
FLOOD_AFTER=12  # s after the spoofer starts
FLOOD_SECONDS=12
FLOOD_PPS=3000
MEMORY_BOUND_KB=$((256 * 1024))
EPHEMERAL=40000-40127

# Spoofed sources pass: no router (nor the vp) filters by reverse path.
for node in vp isp carrier border net1; do
  check "$node: rp_filter is not strict (all, default)" \
    bash -c "[[ \$('$NETLAB' exec $node sysctl -n net.ipv4.conf.all.rp_filter) != 1 &&
               \$('$NETLAB' exec $node sysctl -n net.ipv4.conf.default.rp_filter) != 1 ]]"
done
# What reaches the vp from the dead host's address (forged: it is down), and ICMP errors.
check "an nft counter in the vp" in_vp nft -f - <<EOF
table ip offpath_count {
  counter from_dead {}
  counter icmp_errors {}
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    ip saddr $DEAD counter name from_dead
    icmp type { destination-unreachable, time-exceeded } counter name icmp_errors
  }
}
EOF

check "the vp's ephemeral ports narrowed to $EPHEMERAL" quiet in_vp sysctl -w "net.ipv4.ip_local_port_range=${EPHEMERAL/-/ }"

CFG=$WORK/offpath.yaml
cat >"$CFG" <<YAML
agent:
  id: itest-offpath
  max_pps: 200
defaults:
  interval: 1s
  timeout: 500ms
  probes: [icmp, tcp:80]
asn_table: $OUTPOST_SOURCE_DIR/tests/fixtures/netlab-pfx2as.txt
groups:
  - name: lab
    upstream_asn: 64500
    targets:
      - { name: net1-h1, address: 198.18.0.1, probes: [icmp, tcp:80, dns], dns: { query: chain.lab.test, type: A } }
      - { name: net1-h2, address: 198.18.0.2, probes: [icmp, tcp:80, dns], dns: { query: storm.lab.test, type: A } }
      - { name: net2-h1, address: $DEAD, probes: [icmp, tcp:80, dns], dns: { query: www.lab.test, type: A } }
      - { name: net3-h1, address: 198.18.2.1 }
      - { name: net4-h1, address: 198.18.3.1 }
  - name: control
    control: true
    probes: [icmp]
    targets:
      - { name: anchor1, address: 198.18.100.1 }
      - { name: anchor2, address: 198.18.100.2 }
detect:
  down_after: 3
  up_after: 2
  suspect_interval: 500ms
traceroute:
  timeout: 300ms
report:
  window: 10s
YAML
check "outpost check accepts the config" quiet "$OUTPOST" check -c "$CFG"

OUT=$WORK/out.jsonl
LOG=$WORK/agent.log
start_agent_or_exit "$CFG" "$OUT" "$LOG" --for 120s
pause 6 # good rounds and baseline traces first
fault hostdown net2
t_fault=$(now)
echo "  $(date -u +%T.%N | cut -c1-12) net2 drops all input; the spoofer starts in net1"

STATS=$WORK/spoofer.json
"$NETLAB" exec net1 /usr/bin/python3 "$LIB_DIR/offpath_spoofer.py" --iface border --vp "$VP" \
  --own-prefix 198.18.0. --dead "$DEAD" --border "$BORDER" --dns 198.18.0.1 198.18.0.2 \
  --ephemeral "$EPHEMERAL" --flood-after "$FLOOD_AFTER" --flood-seconds "$FLOOD_SECONDS" --flood-pps "$FLOOD_PPS" --run-for 90 \
  --stats "$STATS" --ready "$WORK/spoofer.ready" 2>"$WORK/spoofer.log" &
SPOOFER_PID=$!
LIB_PIDS+=("$SPOOFER_PID")
for ((try = 0; try < 100; try++)); do
  [[ -e $WORK/spoofer.ready ]] && break
  kill -0 "$SPOOFER_PID" 2>/dev/null || break
  sleep 0.1
done
if ! check "the spoofer runs" test -e "$WORK/spoofer.ready"; then
  show_log "$WORK/spoofer.log"
  finish
fi

pause $((FLOOD_AFTER + 4)) # forgeries all along; the flood for its first 4 s
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$AGENT_PID/status" 2>/dev/null)
echo "  agent VmHWM ${hwm_kb:-?} kB during the flood (bound $MEMORY_BOUND_KB kB)"
t_term=$(now)
kill -TERM "$AGENT_PID"
wait_pid "$AGENT_PID" 60
rc=$?
t_exit=$(now)
echo "  $(date -u +%T.%N | cut -c1-12) SIGTERM during the flood: exit $rc after $("$PY" -c "print(f'{$t_exit - $t_term:.3f}')") s"
check "SIGTERM during the flood: the agent exits 0 (got $rc)" test "$rc" -eq 0
((rc == 0)) || show_log "$LOG" | tail -n 30
check "VmHWM read while attacked" test -n "$hwm_kb"
check "VmHWM ${hwm_kb:-?} kB within the bound of $MEMORY_BOUND_KB kB" test "${hwm_kb:-999999999}" -le "$MEMORY_BOUND_KB"

kill -TERM "$SPOOFER_PID"
wait_pid "$SPOOFER_PID" 10
check "the spoofer wrote its figures" test -s "$STATS"
from_dead=$(in_vp nft list counter ip offpath_count from_dead | awk '/packets/ {print $2}')
icmp_errors=$(in_vp nft list counter ip offpath_count icmp_errors | awk '/packets/ {print $2}')
echo "  arrived at the vp: ${from_dead:-?} packets from $DEAD (forged: it is down), ${icmp_errors:-?} ICMP errors"
check "forged packets reach the vp (${from_dead:-0} from the dead host)" test "${from_dead:-0}" -gt 0

engine_line=$(grep 'engine: launched=' "$LOG" | tail -n 1)
agent_line=$(grep 'agent: records=' "$LOG" | tail -n 1)
echo "  at exit: ${engine_line#*] }"
echo "  at exit: ${agent_line#*] }"
check "the stats line reports launch lateness" \
  grep -qE 'launch_late_max_ms=[0-9.]+ launches_late_10ms=[0-9]+ launches_late_100ms=[0-9]+ launches_late_1s=[0-9]+' <<<"$agent_line"

py_checks "$OUT" "$STATS" "$t_fault" "$t_term" "$engine_line" "$DEAD" "$BORDER" <<'EOF'
path, stats_path, t_fault, t_term, engine_line, dead, border = sys.argv[1:8]
t_fault, t_term = float(t_fault), float(t_term)
stats = json.load(open(stats_path))
sent, seen = stats["sent"], stats["seen"]
print("  spoofer saw toward net1: " + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))
print("  spoofer sent: " + ", ".join(f"{k} {v}" for k, v in sorted(sent.items()) if not k.startswith("flood_")))
flood_s = sent.get("flood_ended_s", 0) - sent.get("flood_started_s", 0)
if flood_s > 0:
    print(f"  flood: {sent.get('flood', 0)} ICMP errors in {flood_s:.1f} s ({sent.get('flood', 0) / flood_s:.0f}/s)")
check("the spoofer saw our echo, SYN and DNS probes to net1", all(seen.get(k, 0) > 0 for k in ("echo", "syn", "dns")), seen)
for kind in ("echo_reply", "syn_ack", "rst", "dns_answer", "icmp_quote", "flood", "dns_chain", "dns_storm", "dns_storm_tcp"):
    check(f"the spoofer sent {kind}", sent.get(kind, 0) > 0, sent.get(kind, 0))
check("SIGTERM came during the flood", sent.get("flood_started_s", 1e18) < t_term < sent.get("flood_ended_s", 0),
      f"{t_term - sent.get('flood_started_s', 0):+.3f} s after its start")

records, bad = load_records(path)
check("every line is a JSON object (complete records after SIGTERM)", not bad and records, f"{len(records)} records, bad lines {bad[:5]}")
sizes = [len(line.encode()) for line in open(path)]
check("every line under the 24 KiB record ceiling", max(sizes) < 24 * 1024, f"largest {max(sizes)} bytes")
probes = by_target(records)

after = [r for r in probes.get("net2-h1", []) if parse_time(r["time"]) > t_fault + 0.1]
by_method = {}
for r in after:
    by_method.setdefault(r.get("method"), []).append(r)
print("  net2-h1 after the fault: " + ", ".join(f"{m} {statuses(rs)}" for m, rs in sorted(by_method.items())))
check("net2-h1: probed by icmp, tcp and dns after the fault", set(by_method) >= {"icmp", "tcp", "dns"}, sorted(by_method))
forged = [r for r in after if r.get("status") != "timeout" or r.get("reply_from")]
check("net2-h1: every probe after the fault a timeout, no reply_from (no forged answer taken)", after and not forged, forged[:2])
in_flood = [r for r in after if r.get("method") == "dns"
            and sent.get("flood_started_s", 1e18) < parse_time(r["time"]) < sent.get("flood_ended_s", 0)]
ignored = sum(r.get("ignored", 0) for r in in_flood)
print(f"  net2-h1 dns probes during the flood: {len(in_flood)}, forged errors and answers they ignored: {ignored}"
      + (f" ({in_flood[-1].get('ignored_last')})" if in_flood else ""))
check("net2-h1: its dns probes during the flood were hit and ignored what hit them", in_flood and ignored > 0,
      [(r.get("status"), r.get("ignored")) for r in in_flood])

events = [r for r in records if r.get("type") == "event"]
for e in events:
    print("  event at fault%+7.3f s: %s %s where=%s last_hop=%s" % (parse_time(e["time"]) - t_fault, e.get("kind"),
          e.get("target") or e.get("group") or "", (e.get("verdict") or {}).get("where"), (e.get("verdict") or {}).get("last_hop")))
td = [e for e in events if e.get("kind") == "target_down" and e.get("target") == "net2-h1"]
check("exactly one target_down for net2-h1", len(td) == 1, len(td))
if td:
    v = td[0].get("verdict") or {}
    check("target_down: group lab", td[0].get("group") == "lab", td[0].get("group"))
    check("verdict.where == target_network", v.get("where") == "target_network", v.get("where"))
    check(f"verdict.last_hop == {border} (border), AS64510", v.get("last_hop") == border and v.get("last_hop_asn") == 64510,
          (v.get("last_hop"), v.get("last_hop_asn")))
failure = [r for r in records if r.get("type") == "trace" and r.get("reason") == "failure" and r.get("target") == "net2-h1"]
check("a failure trace toward net2-h1, not reached", failure and not any(r.get("reached") for r in failure),
      [(r.get("reached"), r.get("stop")) for r in failure])
check("no target_up for net2-h1", not any(e.get("kind") == "target_up" and e.get("target") == "net2-h1" for e in events))
others = [e.get("target") for e in events if e.get("kind") in ("target_down", "target_flapping") and e.get("target") != "net2-h1"]
check("no other target down", not others, others)
check("no group_down, no vantage_down", not any(e.get("kind") in ("group_down", "vantage_down") for e in events))

counters = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", engine_line)}
check("the engine counted what it rejected (stray + spoofed > 0)", counters.get("stray", 0) + counters.get("spoofed", 0) > 0,
      {k: counters.get(k) for k in ("stray", "spoofed", "late", "duplicate", "malformed", "foreign", "capture_dropped")})

for target, query in (("net1-h1", "chain"), ("net1-h2", "storm")):
    dns = [r for r in probes.get(target, []) if r.get("method") == "dns"]
    print(f"  {target} dns ({query}): {statuses(dns)}, transports "
          f"{sorted({r.get('transport') for r in dns if r.get('transport')})}, "
          f"ignored {sum(r.get('ignored', 0) for r in dns)}, answers_dropped max {max([r.get('answers_dropped', 0) for r in dns] or [0])}")
    check(f"{target}: dns probes recorded", dns, len(dns))
    check(f"{target}: at most 32 answers of at most 255 characters",
          all(len(r.get("answers", [])) <= 32 and all(len(a) <= 255 for a in r.get("answers", [])) for r in dns))
storm = [r for r in probes.get("net1-h2", []) if r.get("method") == "dns" and r.get("status") == "reply"]
check("net1-h2: the CNAME storm kept 32 answers and counted the rest as answers_dropped (over TCP at least once)",
      storm and all(r.get("answer_count") == 32 and r.get("answers_dropped", 0) > 0 for r in storm)
      and any(r.get("transport") == "tcp" for r in storm),
      [(r.get("transport"), r.get("answer_count"), r.get("answers_dropped"), r.get("tcp_error")) for r in storm[:3]])
EOF

if ((failures)); then
  show_log "$LOG" | tail -n 30
  show_log "$WORK/spoofer.log" | tail -n 10
fi
finish
