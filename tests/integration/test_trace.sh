#!/usr/bin/env bash
# Paris traceroute on the lab: every router hop in order with the lab's ASNs
# for icmp, udp and tcp:80, hop by hop the same as traceroute(8) and
# scamper; a router that sends no time-exceeded is a silent hop and the trace
# goes on; with the carrier dropping what it forwards the trace ends at the
# carrier (which still answers time-exceeded) and says it did not reach the
# target; traces and pings from the terminal open no capture (their answers
# come from a ring of their own, or from raw sockets while another socket
# holds receive stamps on) and time every answer from kernel stamps; and a
# baseline trace record from the agent.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init tr
lib_need_tools traceroute scamper
lab_up --hosts 2
netlab serve web
TABLE=$OUTPOST_SOURCE_DIR/tests/fixtures/netlab-pfx2as.txt
TARGET=198.18.2.1

for method in icmp udp tcp:80; do
  in_vp "$OUTPOST" trace "$TARGET" --method "$method" --asn-table "$TABLE" --json >"$WORK/trace-$method.json" 2>"$WORK/trace-$method.log"
  echo "outpost trace --method $method: exit $?"
done
# The same trace as text for a person at a terminal.
in_vp "$OUTPOST" trace "$TARGET" --asn-table "$TABLE" >"$WORK/trace-text.txt" 2>"$WORK/trace-text.log"
echo "outpost trace (text): exit $?"
in_vp traceroute -n -I -q 1 "$TARGET" >"$WORK/traceroute-icmp.txt" 2>&1
in_vp traceroute -n -q 1 "$TARGET" >"$WORK/traceroute-udp.txt" 2>&1
in_vp traceroute -n -T -p 80 -q 1 "$TARGET" >"$WORK/traceroute-tcp:80.txt" 2>&1
in_vp scamper -c "trace -P icmp-paris -q 1" -i "$TARGET" >"$WORK/scamper-icmp.txt" 2>&1
in_vp scamper -c "trace -P udp-paris -q 1" -i "$TARGET" >"$WORK/scamper-udp.txt" 2>&1
in_vp scamper -c "trace -P tcp -d 80 -q 1" -i "$TARGET" >"$WORK/scamper-tcp:80.txt" 2>&1

py_checks "$WORK" "$TARGET" <<'PY'
import re
work, target = sys.argv[1], sys.argv[2]
expected = ["198.19.0.2", "198.19.0.6", "198.19.0.10", target]
asns = [64496, 64500, 64510, 64510]
for method in ["icmp", "udp", "tcp:80"]:
    t = json.load(open(f"{work}/trace-{method}.json"))
    addrs = [h.get("addr") for h in t["hops"]]
    check(f"{method}: hops in order", addrs == expected, addrs)
    check(f"{method}: ASNs", [h.get("asn") for h in t["hops"]] == asns, [h.get("asn") for h in t["hops"]])
    check(f"{method}: reached, stop_reason reached", t["reached"] and t["stop_reason"] == "reached", t["stop_reason"])
    check(f"{method}: record fields", t["type"] == "trace" and t["reason"] == "manual" and TIME_RE.match(t["time"])
          and all("ttl" in h and "rtt_ms" in h for h in t["hops"]), t.get("reason"))
    check(f"{method}: time-exceeded from routers, quoted TTL 1",
          all(h["icmp_type"] == 11 and h["quoted_ttl"] == 1 for h in t["hops"][:3]))
    check(f"{method}: the last hop is the target", t["hops"][-1].get("target") is True)
    for tool in ["traceroute", "scamper"]:
        other = hops_of_text(f"{work}/{tool}-{method}.txt")
        check(f"{method}: agrees hop by hop with {tool}", other == addrs, other)
# The text: a header, a line per hop ("%3d  %-16s %-24s %8.3f ms", the
# destination marked), and how it ended.
lines = open(f"{work}/trace-text.txt").read().splitlines()
check("text: the header names the target, the method and the TTLs",
      lines[:1] == [f"trace to {target} ({target}), icmp paris, max 30 hops"], lines[:1])
hop = re.compile(r"^( {2}\d| \d\d|\d{3})  (\S+) +(AS\d+) +(\d+\.\d{3}) ms(  \[target\])?$")
parsed = [hop.match(l) for l in lines[1:-1]]
check("text: a line per hop, as %3d  %-16s %-24s %8.3f ms", len(parsed) == 4 and all(parsed) and
      all(len(l) >= 3 + 2 + 16 + 1 + 24 + 1 + 8 + 3 for l in lines[1:-1]), lines[1:-1])
if len(parsed) == 4 and all(parsed):
    check("text: the hops, their ASNs, the destination marked",
          [m.group(2) for m in parsed] == expected and [m.group(3) for m in parsed] == [f"AS{a}" for a in asns] and
          [bool(m.group(5)) for m in parsed] == [False, False, False, True], lines[1:-1])
check("text: how it ended", lines[-1:] == ["reached after 4 hops (reached)"], lines[-1:])
PY

# A router that sends no time-exceeded: a silent hop, and the trace goes on.
netlab silent carrier
in_vp "$OUTPOST" trace "$TARGET" --json --timeout 300ms --asn-table "$TABLE" >"$WORK/silent.json"
netlab unsilent carrier
# The carrier drops what it forwards: the trace ends at the carrier.
netlab drop carrier
in_vp "$OUTPOST" trace "$TARGET" --json --timeout 300ms --gap 3 --asn-table "$TABLE" >"$WORK/drop.json"
drop_rc=$?
netlab undrop carrier
py_checks "$WORK" "$TARGET" "$drop_rc" <<'PY'
work, target, drop_rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = json.load(open(f"{work}/silent.json"))
addrs = [h.get("addr") for h in s["hops"]]
check("silent carrier: hop 2 silent, the trace goes on to the target",
      addrs == ["198.19.0.2", None, "198.19.0.10", target] and s["reached"], addrs)
check("silent carrier: the silent hop was tried twice", s["hops"][1]["probes"] == 2, s["hops"][1]["probes"])
d = json.load(open(f"{work}/drop.json"))
addrs = [h.get("addr") for h in d["hops"]]
check("drop at carrier: ends at the carrier", addrs[:2] == ["198.19.0.2", "198.19.0.6"] and all(a is None for a in addrs[2:]), addrs)
check("drop at carrier: not reached, stopped by the gap limit", not d["reached"] and d["stop_reason"] == "gap" and len(addrs) == 5,
      (d["reached"], d["stop_reason"], len(addrs)))
check("drop at carrier: exit status 1 (not reached)", drop_rc == 1, drop_rc)
PY

# A trace or ping from the terminal to an IPv4 target reads its answers from
# a packet ring of its own (one SOCK_DGRAM packet socket for IPv4, 0800),
# its send times from the raw socket's error queue: no capture (a SOCK_RAW
# packet socket for every protocol). The agent still captures (the control
# that shows the check can fail). Every answer is timed from kernel stamps at both
# ends: no "user-space send time" on stderr.
for method in icmp udp tcp:80; do
  check "trace $method: every hop timed from kernel stamps (no fallback on stderr)" \
    bash -c "! grep -E 'user-space|not taken' '$WORK/trace-$method.log'"
done
# packet_sockets OUT TYPE PROTO ARGS...: the most packet sockets of TYPE
# (2: SOCK_DGRAM, 3: SOCK_RAW) and PROTO (hex, as /proc/net/packet shows
# it) `outpost ARGS...` held at once while it ran (its socket inodes and the
# vp's packet sockets, read together every 0.1 s until it ends), with what
# it printed in OUT.
packet_sockets() {
  local out=$1 type=$2 proto=$3
  shift 3
  in_vp "$OUTPOST" "$@" >"$out" 2>&1 &
  local runner=$! pid="" sockets packet n most=0
  for _ in $(seq 1 50); do
    pid=$(pgrep -n -x outpost) && break
    sleep 0.05
  done
  while [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; do
    sockets=$(find "/proc/$pid/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n')
    packet=$(in_vp awk -v t="$type" -v p="$proto" 'NR > 1 && $3 == t && $4 == p { print $9 }' /proc/net/packet)
    n=$(comm -12 <(sort <<<"$sockets") <(sort <<<"$packet") | grep -c . || true)
    ((n > most)) && most=$n
    sleep 0.1
  done
  wait "$runner"
  echo "$most"
}
cat >"$WORK/capture.yaml" <<YAML
agent: { id: capture-control, max_pps: 100 }
defaults: { interval: 200ms, timeout: 100ms, probes: [icmp] }
groups:
  - name: lab
    targets:
      - { name: net3, address: $TARGET }
YAML
icmp_packet=$(packet_sockets "$WORK/ping-icmp.txt" 3 0003 ping "$TARGET" --method icmp -c 10 -i 100ms)
tcp_packet=$(packet_sockets "$WORK/ping-tcp.txt" 3 0003 ping "$TARGET" --method tcp:80 -c 10 -i 100ms)
# stamps_held: whether some socket on the host holds the kernel's receive
# stamps on now: a datagram to itself on loopback, on a socket that only
# reports stamps (asking for none), comes stamped then and only then.
stamps_held() {
  in_vp "$PY" - <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 37, 1 << 4)  # SO_TIMESTAMPING: SOF_TIMESTAMPING_SOFTWARE, reporting only
s.settimeout(1)
s.bind(("127.0.0.1", 0))
s.sendto(b"x", s.getsockname())
_, ancillary, _, _ = s.recvmsg(1, 256)
sys.exit(0 if any(level == socket.SOL_SOCKET and kind == 37 and any(data[:16]) for level, kind, data in ancillary) else 1)
PY
}
held_elsewhere=0
stamps_held && held_elsewhere=1
icmp_ring=$(packet_sockets "$WORK/ping-icmp-ring.txt" 2 0800 ping "$TARGET" --method icmp -c 5 -i 100ms)
agent_packet=$(packet_sockets "$WORK/capture.log" 3 0003 run -c "$WORK/capture.yaml" --for 1s --output "$WORK/capture.jsonl")
echo "  captures held: ping icmp $icmp_packet, ping tcp:80 $tcp_packet, the agent $agent_packet; answer rings: ping icmp $icmp_ring"
check "ping icmp: no capture (answers from its ring)" test "$icmp_packet" -eq 0
check "ping tcp:80: no capture (answers from its ring)" test "$tcp_packet" -eq 0
if ((held_elsewhere)); then
  # Another program holds receive stamps on: raw sockets cost less then.
  echo "  receive stamps held on by another program: no answer ring expected"
  check "ping icmp: no answer ring (receive stamps held on elsewhere)" test "$icmp_ring" -eq 0
else
  check "ping icmp: one answer ring" test "$icmp_ring" -eq 1
fi
check "the agent: a packet socket (its capture), so the checks above can fail" test "$agent_packet" -ge 1
check "ping tcp:80: 10 replies" grep -q "^10 probes sent, 10 replies" "$WORK/ping-tcp.txt"
check "ping tcp:80: no clock fallback on stderr" bash -c "! grep -E 'user-space|not taken' '$WORK/ping-tcp.txt'"
check "ping icmp: 10 replies" grep -q "^10 probes sent, 10 replies" "$WORK/ping-icmp.txt"
check "ping icmp: no clock fallback on stderr" bash -c "! grep -E 'user-space|not taken' '$WORK/ping-icmp.txt'"

# While another socket on the host holds receive stamps on (as chrony's or
# another tool's may), a ping or trace reads its answers from raw sockets,
# whose stamps then cost no switch, rather than from a ring (whose setting
# and close wait for grace periods): no packet socket at all, every answer
# still timed from kernel stamps.
in_vp "$PY" -c 'import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, 35, 1); time.sleep(120)' &
holder=$!
LIB_PIDS+=("$holder")  # stopped on the way out too, should the script end before the kill below
for _ in $(seq 1 40); do stamps_held && break; sleep 0.05; done
check "a socket of the test holds receive stamps on" stamps_held
held_ring=$(packet_sockets "$WORK/ping-held.txt" 2 0800 ping "$TARGET" --method icmp -c 5 -i 100ms)
held_capture=$(packet_sockets "$WORK/ping-held-capture.txt" 3 0003 ping "$TARGET" --method icmp -c 5 -i 100ms)
for method in icmp udp tcp:80; do
  in_vp "$OUTPOST" trace "$TARGET" --method "$method" --json >"$WORK/trace-held-$method.json" 2>"$WORK/trace-held-$method.log"
  echo "outpost trace --method $method, stamps held on: exit $?"
done
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
echo "  stamps held on: answer rings $held_ring, captures $held_capture"
check "stamps held on: ping icmp opens no answer ring" test "$held_ring" -eq 0
check "stamps held on: ping icmp opens no capture" test "$held_capture" -eq 0
check "stamps held on: ping icmp: 5 replies" grep -q "^5 probes sent, 5 replies" "$WORK/ping-held.txt"
check "stamps held on: ping icmp: no clock fallback on stderr" bash -c "! grep -E 'user-space|not taken' '$WORK/ping-held.txt'"
for method in icmp udp tcp:80; do
  check "stamps held on: trace $method: no clock fallback on stderr" \
    bash -c "! grep -E 'user-space|not taken' '$WORK/trace-held-$method.log'"
done
py_checks "$WORK" "$TARGET" <<'PY'
work, target = sys.argv[1], sys.argv[2]
for method in ["icmp", "udp", "tcp:80"]:
    t = json.load(open(f"{work}/trace-held-{method}.json"))
    addrs = [h.get("addr") for h in t["hops"]]
    check(f"stamps held on: trace {method}: the lab's hops, reached",
          addrs == ["198.19.0.2", "198.19.0.6", "198.19.0.10", target] and t["reached"], addrs)
    rtts = [h.get("rtt_ms") for h in t["hops"]]
    check(f"stamps held on: trace {method}: every hop timed", all(isinstance(r, (int, float)) and r > 0 for r in rtts), rtts)
PY

# The agent's own baseline traces, with the ASN on every hop: one per
# target, the first hops of the paths after the first taken from it.
cat >"$WORK/agent.yaml" <<YAML
agent: { id: trace-test, max_pps: 200 }
defaults: { interval: 1s, timeout: 500ms, probes: [icmp] }
asn_table: $TABLE
traceroute: { method: udp, timeout: 300ms }
groups:
  - name: lab
    upstream_asn: 64500
    targets:
      - { name: net3, address: $TARGET }
      - { name: net1, address: 198.18.0.1 }
      - { name: net1-h2, address: 198.18.0.2 }
      - { name: net2, address: 198.18.1.1 }
      - { name: net3-h2, address: 198.18.2.2 }
      - { name: net4, address: 198.18.3.1 }
YAML
run_agent "$WORK/agent.yaml" "$WORK/agent.jsonl" "$WORK/agent.log" 3s
echo "outpost run: exit $?"
py_checks "$WORK" "$TARGET" <<'PY'
work, target = sys.argv[1], sys.argv[2]
records, bad = load_records(f"{work}/agent.jsonl")
traces = [r for r in records if r["type"] == "trace"]
check("agent: one baseline trace per target", sorted(t["target"] for t in traces) ==
      ["net1", "net1-h2", "net2", "net3", "net3-h2", "net4"] and all(t["reason"] == "baseline" for t in traces),
      [(t["target"], t["reason"]) for t in traces])
routers = ["198.19.0.2", "198.19.0.6", "198.19.0.10"]
for t in traces:
    check(f"agent: baseline of {t['target']} by udp reaches it with ASNs and the lab's routers",
          t["method"] == "udp" and t["reached"] and [h.get("asn") for h in t["hops"]] == [64496, 64500, 64510, 64510]
          and [h.get("addr") for h in t["hops"]][:3] == routers and t["hops"][3].get("target"),
          [(h.get("addr"), h.get("asn")) for h in t["hops"]])
    for h in t["hops"]:
        if "reused_from" in h:
            check(f"agent: {t['target']} hop {h['ttl']} taken from another path: no probe, no RTT, before the border",
                  h["probes"] == 0 and "rtt_ms" not in h and h["ttl"] < 3 and h["reused_from"] <= t["time"], h)
        else:
            check(f"agent: {t['target']} hop {h['ttl']} probed once, with its RTT", h["probes"] == 1 and "rtt_ms" in h, h)
reused = [t["target"] for t in traces if any("reused_from" in h for h in t["hops"])]
probes = sum(h["probes"] for t in traces for h in t["hops"])
print(f"info: {len(reused)} of {len(traces)} baselines took their first hops from another path; {probes} trace probes")
check("agent: the paths after the first stop at the border, known from it (2 probes each, not 4)",
      len(reused) >= len(traces) - 2 and probes <= 4 * len(traces) - 2 * len(reused), (reused, probes))
PY
finish
