#!/usr/bin/env bash
# outpost's RTTs against the wire and against iputils ping: 200 ICMP probes
# each to 198.18.0.1 every 10 ms, in four alternating batches of 50 (so a
# change of load on the machine hits both tools alike).
#
# The wire: tcpdump captures the batches on the vp's uplink, and each of
# outpost's probes (matched by ICMP sequence number) must read the captured
# time from its request to its reply, within 50 µs for the median of the
# differences and within 200 µs for 95% of the probes. outpost times from
# kernel stamps of the request's transmission and of the reply's arrival; the
# capture's stamp of the request is taken a little earlier, before the
# capture's own work on it, so outpost reads a few µs lower (7-10 µs on a
# 2-core VM; each further capture on the interface adds about 2.5 µs).
#
# ping: times from a user-space clock read before the send, so it reads
# higher than the wire by the cost of its send; outpost's median must not be
# above ping's by more than 50 µs (outpost adds nothing of its own to the
# RTT). How far it is below is printed, not checked: it is that cost, which
# varies from one machine to the next.
#
# One retry, since a busy shared machine can skew a single round. Exit 77
# (skip) when not root.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init ap
lib_need_tools ping tcpdump
lab_up --hosts 4

TARGET=198.18.0.1
TOLERANCE_US=50
PROBE_TOLERANCE_US=200

# capture_start FILE: tcpdump of the vp's ICMP with $TARGET into FILE
# (CAPTURE_PID); returns once it listens.
capture_start() {
  "$NETLAB" exec vp tcpdump -i up0 -n --time-stamp-precision=nano \
    -w "$1" "icmp and host $TARGET" 2>"$1.log" &
  CAPTURE_PID=$!
  LIB_PIDS+=("$CAPTURE_PID")
  wait_started "$CAPTURE_PID" "$1.log" 'listening on' && return 0
  echo "  tcpdump did not start:"
  show_log "$1.log"
  return 1
}

# capture_stop: stops tcpdump once it has read all it captured: without
# immediate mode the kernel hands the capture its packets in blocks, each at
# the latest 1 s after its first packet.
capture_stop() {
  sleep 1.5
  kill -INT "$CAPTURE_PID" 2>/dev/null
  wait_pid "$CAPTURE_PID" 10 >/dev/null
}

# round N: four alternating batches under one capture; leaves
# $WORK/outpost.N.jsonl, $WORK/ping.N.txt and $WORK/wire.N.pcap.
round() {
  local n=$1 _
  : >"$WORK/outpost.$n.jsonl"
  : >"$WORK/ping.$n.txt"
  capture_start "$WORK/wire.$n.pcap" || return 1
  for _ in 1 2 3 4; do
    in_vp "$OUTPOST" ping "$TARGET" -c 50 -i 10ms -W 1s --json >>"$WORK/outpost.$n.jsonl" 2>>"$WORK/outpost.log"
    in_vp ping -n -c 50 -i 0.01 -W 1 "$TARGET" >>"$WORK/ping.$n.txt" 2>&1
  done
  capture_stop
}

# compare N: exit 0 when outpost agrees with the wire and is not above ping;
# prints the figures.
compare() {
  PYTHONPATH="$(dirname "${BASH_SOURCE[0]}")" "$PY" - "$1" "$WORK" "$TOLERANCE_US" "$PROBE_TOLERANCE_US" <<'PYEOF'
import glob, json, re, statistics, sys
from pcap_icmp import echo_frames
n, work, tol, probe_tol = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])

def wire_rtts(path):
    """{ICMP seq: request-to-reply µs} of a nanosecond pcap of Ethernet frames;
    a seq seen in more than one exchange is left out."""
    sent, answered, seen_twice = {}, {}, set()
    try:
        for kind, ident, seq, stamp in echo_frames(path):
            book = sent if kind == 8 else answered
            if (ident, seq) in book:
                seen_twice.add(seq)
            book[(ident, seq)] = stamp
    except ValueError as e:
        raise SystemExit(f"  {e}")
    rtts = {}
    for key, t in sent.items():
        if key in answered:
            if key[1] in rtts:
                seen_twice.add(key[1])
            rtts[key[1]] = (answered[key] - t) / 1000.0
    return {s: r for s, r in rtts.items() if s not in seen_twice}

wire = {}
for path in sorted(glob.glob(f"{work}/wire.{n}.pcap")):
    for seq, rtt in wire_rtts(path).items():
        wire[seq] = None if seq in wire else rtt
o = [json.loads(l) for l in open(f"{work}/outpost.{n}.jsonl") if l.strip()]
o_rtt = [r["rtt_ms"] for r in o if r.get("status") == "reply"]
p_rtt = [float(x) for x in re.findall(r"time=([0-9.]+) ms", open(f"{work}/ping.{n}.txt").read())]
diffs = [r["rtt_ms"] * 1000 - wire[r["seq"]] for r in o
         if r.get("status") == "reply" and wire.get(r.get("seq")) is not None]
if len(o_rtt) < 190 or len(p_rtt) < 190 or len(diffs) < 190:
    print(f"  too few replies: outpost {len(o_rtt)}/200, ping {len(p_rtt)}/200, "
          f"outpost's matched in the capture {len(diffs)}")
    sys.exit(1)
q = lambda xs: "p10 %.1f  p50 %.1f  p90 %.1f" % tuple(statistics.quantiles(xs, n=10)[i] for i in (0, 4, 8))
mo, mp = statistics.median(o_rtt) * 1000, statistics.median(p_rtt) * 1000
md = statistics.median(diffs)
near = sum(abs(d) <= probe_tol for d in diffs)
print(f"  outpost: {len(o_rtt)} replies, median {mo:.1f} µs  ({q([x * 1000 for x in o_rtt])} µs)")
print(f"  outpost - wire, per probe: {len(diffs)} matched, median {md:+.1f} µs  ({q(diffs)} µs), "
      f"{near} within ±{probe_tol:.0f} µs")
print(f"  ping:    {len(p_rtt)} replies, median {mp:.1f} µs  ({q([x * 1000 for x in p_rtt])} µs)")
print(f"  outpost - ping = {mo - mp:+.1f} µs (must be at most +{tol:.0f} µs)")
ok = abs(md) <= tol and near >= 0.95 * len(diffs) and mo - mp <= tol
sys.exit(0 if ok else 1)
PYEOF
}

ok=1
for attempt in 1 2; do
  echo "round $attempt:"
  round "$attempt" || break
  if compare "$attempt"; then ok=0; break; fi
done
check "outpost's RTTs are the wire's (median within ${TOLERANCE_US} µs, 95% within ${PROBE_TOLERANCE_US} µs) and not above ping's" \
  test "$ok" -eq 0

py_checks "$WORK/outpost.1.jsonl" <<'PYEOF'
records, bad = load_records(sys.argv[1])
check("outpost ping --json: every line a probe record", not bad and all(r.get("type") == "probe" for r in records),
      f"{len(records)} lines")
check("outpost ping --json: records carry target, address, method, status, rtt_ms, seq",
      records and all(r.get("address") == "198.18.0.1" and r.get("method") == "icmp" and "rtt_ms" in r
                      and isinstance(r.get("seq"), int) and TIME_RE.match(r.get("time", "")) for r in records))
PYEOF

finish
