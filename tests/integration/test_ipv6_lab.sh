#!/usr/bin/env bash
# IPv6 through the lab's routers (netlab up --ipv6): ICMPv6 echo with the hop
# limit the three routers leave; a TCP SYN to a closed port is refused, to the
# web server answered; DNS over IPv6 (AAAA, A, NXDOMAIN); Paris
# traces by icmp, udp and tcp:80 show every router in order with the lab's
# ASNs, ICMPv6 time exceeded (type 3) from each, and agree hop by hop with
# traceroute -6; with the carrier dropping what it forwards, echoes time out
# and the trace ends at the carrier; with the border answering for net2's
# IPv6 prefix (`netlab unreachable border 2001:2:0:1::/64`), echoes to net2
# are unreachable (ICMPv6 address unreachable from the border) while net3
# still answers; a dual-stack name is pinged over IPv4 by default and over
# IPv6 with -6; and the agent probes and traces an IPv6 target by itself.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init v6
lib_need_tools traceroute
lab_up --hosts 2 --ipv6
netlab serve web
netlab serve dns
TABLE=$OUTPOST_SOURCE_DIR/tests/fixtures/netlab-pfx2as.txt
TARGET=2001:2:0:2::1
DNS6=2001:2::1

in_vp "$OUTPOST" ping "$TARGET" -c 5 -i 50ms --json >"$WORK/echo.jsonl" 2>"$WORK/echo.log"
echo "outpost ping (icmp): exit $?"
in_vp "$OUTPOST" ping "$TARGET" --method tcp:81 -c 3 -i 50ms --json >"$WORK/closed.jsonl" 2>"$WORK/closed.log"
echo "outpost ping (tcp:81): exit $?"
in_vp "$OUTPOST" ping "$TARGET" --method tcp:81 -c 2 -i 50ms >"$WORK/closed.txt" 2>&1
in_vp "$OUTPOST" ping "$TARGET" --method tcp:80 -c 2 -i 50ms --json >"$WORK/open.jsonl" 2>"$WORK/open.log"
in_vp "$OUTPOST" ping "$DNS6" --method dns --query www.lab.test --qtype AAAA -c 2 -i 50ms --json >"$WORK/dns-aaaa.jsonl" 2>"$WORK/dns.log"
in_vp "$OUTPOST" ping "$DNS6" --method dns --query www.lab.test --qtype A -c 1 --json >"$WORK/dns-a.jsonl" 2>>"$WORK/dns.log"
in_vp "$OUTPOST" ping "$DNS6" --method dns --query nope.lab.test -c 1 --json >"$WORK/dns-nx.jsonl" 2>>"$WORK/dns.log"
for method in icmp udp tcp:80; do
  in_vp "$OUTPOST" trace "$TARGET" --method "$method" --asn-table "$TABLE" --json >"$WORK/trace-$method.json" 2>"$WORK/trace-$method.log"
  echo "outpost trace --method $method: exit $?"
done
in_vp "$OUTPOST" trace "$TARGET" --asn-table "$TABLE" >"$WORK/trace.txt" 2>&1
in_vp traceroute -6 -n -I -q 1 "$TARGET" >"$WORK/traceroute-icmp.txt" 2>&1
in_vp traceroute -6 -n -q 1 "$TARGET" >"$WORK/traceroute-udp.txt" 2>&1
in_vp traceroute -6 -n -T -p 80 -q 1 "$TARGET" >"$WORK/traceroute-tcp:80.txt" 2>&1

py_checks "$WORK" "$TARGET" <<'PY'
import re
work, target = sys.argv[1], sys.argv[2]
echo, bad = load_records(f"{work}/echo.jsonl")
check("echo: 5 records, all JSON", len(echo) == 5 and not bad, (len(echo), bad))
check("echo: every probe answered", all(r["status"] == "reply" for r in echo), [r["status"] for r in echo])
check("echo: the target's address, as written", all(r["address"] == target and r.get("reply_from") == target for r in echo),
      [r.get("reply_from") for r in echo])
check("echo: hop limit 61 (64 less three routers)", all(r.get("reply_ttl") == 61 for r in echo), [r.get("reply_ttl") for r in echo])
check("echo: plausible RTTs (0 < rtt < 50 ms)", all(0 < r.get("rtt_ms", -1) < 50 for r in echo), [r.get("rtt_ms") for r in echo])
closed, bad = load_records(f"{work}/closed.jsonl")
check("tcp:81 (closed): refused, port 81", len(closed) == 3 and all(r["status"] == "refused" and r["port"] == 81 for r in closed),
      [(r["status"], r.get("port")) for r in closed])
opened, bad = load_records(f"{work}/open.jsonl")
check("tcp:80 (web server): reply", len(opened) == 2 and all(r["status"] == "reply" for r in opened), [r["status"] for r in opened])
aaaa, bad = load_records(f"{work}/dns-aaaa.jsonl")
check("dns over IPv6, www AAAA: reply NOERROR [2001:2::1], from the server, kernel-timed",
      len(aaaa) == 2 and all(r["status"] == "reply" and r.get("rcode") == "NOERROR" and r.get("answers") == ["2001:2::1"]
                             and r.get("reply_from") == "2001:2::1" and r.get("rtt_clock") == "kernel" for r in aaaa),
      [(r["status"], r.get("rcode"), r.get("answers"), r.get("rtt_clock"), r.get("error")) for r in aaaa])
a4, bad = load_records(f"{work}/dns-a.jsonl")
check("dns over IPv6, www A: [198.18.0.1]", len(a4) == 1 and a4[0].get("answers") == ["198.18.0.1"], [r.get("answers") for r in a4])
nx, bad = load_records(f"{work}/dns-nx.jsonl")
check("dns over IPv6, nope: NXDOMAIN", len(nx) == 1 and nx[0]["status"] == "reply" and nx[0].get("rcode") == "NXDOMAIN",
      [(r["status"], r.get("rcode")) for r in nx])
summary = open(f"{work}/closed.txt").read()
check("tcp:81 summary: refused probes are answers, not loss", "2 probes sent, 0 replies, 2 refused, 0.0% loss" in summary, summary)

expected = ["2001:2:0:ff00::2", "2001:2:0:ff01::2", "2001:2:0:ff02::2", target]
for method in ["icmp", "udp", "tcp:80"]:
    t = json.load(open(f"{work}/trace-{method}.json"))
    addrs = [h.get("addr") for h in t["hops"]]
    check(f"{method}: hops in order", addrs == expected, addrs)
    check(f"{method}: ASNs", [h.get("asn") for h in t["hops"]] == [64496, 64500, 64510, 64510], [h.get("asn") for h in t["hops"]])
    check(f"{method}: reached", t["reached"] and t["stop_reason"] == "reached", t["stop_reason"])
    check(f"{method}: ICMPv6 time exceeded (type 3, code 0) from the routers, quoted hop limit 1",
          all(h["icmp_type"] == 3 and h["icmp_code"] == 0 and h["quoted_ttl"] == 1 for h in t["hops"][:3]),
          [(h["icmp_type"], h["icmp_code"], h.get("quoted_ttl")) for h in t["hops"][:3]])
    check(f"{method}: the last hop is the target", t["hops"][-1].get("target") is True)
    other = hops_of_text(f"{work}/traceroute-{method}.txt")
    check(f"{method}: agrees hop by hop with traceroute -6", other == addrs, other)
text = open(f"{work}/trace.txt").read()
check("trace text: router hops carry no '!' (time exceeded is not unreachable)", "!" not in text, text)
PY

# The carrier drops what it forwards: echoes time out, the trace ends there.
netlab drop carrier
in_vp "$OUTPOST" ping "$TARGET" -c 3 -i 50ms --timeout 300ms --json >"$WORK/drop-echo.jsonl" 2>/dev/null
in_vp "$OUTPOST" trace "$TARGET" --json --timeout 300ms --gap 3 --asn-table "$TABLE" >"$WORK/drop.json"
drop_rc=$?
netlab undrop carrier
py_checks "$WORK" "$drop_rc" <<'PY'
work, drop_rc = sys.argv[1], int(sys.argv[2])
echo, bad = load_records(f"{work}/drop-echo.jsonl")
check("drop at carrier: every echo times out", len(echo) == 3 and all(r["status"] == "timeout" for r in echo),
      [r["status"] for r in echo])
d = json.load(open(f"{work}/drop.json"))
addrs = [h.get("addr") for h in d["hops"]]
check("drop at carrier: the trace ends at the carrier", addrs[:2] == ["2001:2:0:ff00::2", "2001:2:0:ff01::2"]
      and all(a is None for a in addrs[2:]) and d["hops"][1].get("asn") == 64500, addrs)
check("drop at carrier: not reached, exit status 1", not d["reached"] and drop_rc == 1, (d["reached"], drop_rc))
PY

# The border answers everything toward net2's IPv6 prefix with ICMPv6
# address unreachable; net3 is not affected.
netlab unreachable border 2001:2:0:1::/64
in_vp "$OUTPOST" ping 2001:2:0:1::1 -c 2 -i 50ms --timeout 300ms --json >"$WORK/unreach.jsonl" 2>/dev/null
in_vp "$OUTPOST" ping "$TARGET" -c 1 --timeout 300ms --json >"$WORK/unreach-other.jsonl" 2>/dev/null
netlab reachable border 2001:2:0:1::/64
in_vp "$OUTPOST" ping 2001:2:0:1::1 -c 1 --timeout 300ms --json >"$WORK/reachable.jsonl" 2>/dev/null
py_checks "$WORK" <<'PY'
work = sys.argv[1]
un, bad = load_records(f"{work}/unreach.jsonl")
check("unreachable border 2001:2:0:1::/64: echoes to net2 unreachable from the border (ICMPv6 type 1, code 3)",
      len(un) == 2 and all(r["status"] == "unreachable" and r.get("reply_from") == "2001:2:0:ff02::2"
                           and r.get("icmp_type") == 1 and r.get("icmp_code") == 3 for r in un),
      [(r["status"], r.get("reply_from"), r.get("icmp_type"), r.get("icmp_code")) for r in un])
other, bad = load_records(f"{work}/unreach-other.jsonl")
check("unreachable border 2001:2:0:1::/64: net3 still answers", len(other) == 1 and other[0]["status"] == "reply",
      [r["status"] for r in other])
back, bad = load_records(f"{work}/reachable.jsonl")
check("reachable border 2001:2:0:1::/64: net2 answers again", len(back) == 1 and back[0]["status"] == "reply",
      [r["status"] for r in back])
PY

# A dual-stack name (the vp's hosts file): IPv4 by default, -6 its IPv6
# address, -4 with an IPv6 literal refused before anything is sent.
printf '%s\n' "127.0.0.1 localhost" "198.18.2.1 dual.lab.test" "$TARGET dual.lab.test" >"$LIB_RESOLV_DIR/hosts"
in_vp "$OUTPOST" ping dual.lab.test -c 1 --json >"$WORK/dual.jsonl" 2>"$WORK/dual.log"
in_vp "$OUTPOST" ping -6 dual.lab.test -c 1 --json >"$WORK/dual6.jsonl" 2>>"$WORK/dual.log"
in_vp "$OUTPOST" trace -6 dual.lab.test --json >"$WORK/dual6-trace.json" 2>>"$WORK/dual.log"
in_vp "$OUTPOST" ping -4 "$TARGET" -c 1 >"$WORK/dual-refused.txt" 2>&1
echo "outpost ping -4 $TARGET: exit $?" >>"$WORK/dual-refused.txt"
py_checks "$WORK" "$TARGET" <<'PY'
import json
work, target = sys.argv[1], sys.argv[2]
plain, bad = load_records(f"{work}/dual.jsonl")
check("dual-stack name: IPv4 by default, answered", len(plain) == 1 and plain[0]["address"] == "198.18.2.1"
      and plain[0]["status"] == "reply", plain)
six, bad = load_records(f"{work}/dual6.jsonl")
check("dual-stack name, -6: its IPv6 address, answered", len(six) == 1 and six[0]["address"] == target
      and six[0]["af"] == 6 and six[0]["status"] == "reply", six)
trace = json.load(open(f"{work}/dual6-trace.json"))
check("dual-stack name, trace -6: over IPv6, reached in 4 hops", trace.get("address") == target and trace.get("reached")
      and len(trace.get("hops", [])) == 4, (trace.get("address"), trace.get("reached")))
refused = open(f"{work}/dual-refused.txt").read()
check("ping -4 with an IPv6 literal: refused, exit 1",
      f"outpost ping: '{target}' is not an IPv4 address" in refused and refused.strip().endswith("exit 1"), refused)
PY

# The agent, with an IPv6 group: probes answered, a baseline trace with ASNs.
cat >"$WORK/agent.yaml" <<YAML
agent: { id: v6-test, max_pps: 200 }
defaults: { interval: 500ms, timeout: 300ms, probes: [icmp, "tcp:81"] }
asn_table: $TABLE
traceroute: { method: icmp, timeout: 300ms }
groups:
  - name: lab6
    upstream_asn: 64500
    targets:
      - { name: net3-v6, address: "$TARGET" }
      - { name: net1-v6, address: "2001:2:0:0::2" }
YAML
run_agent "$WORK/agent.yaml" "$WORK/agent.jsonl" "$WORK/agent.log" 3s
echo "outpost run: exit $?"
py_checks "$WORK" <<'PY'
work = sys.argv[1]
records, bad = load_records(f"{work}/agent.jsonl")
probes = [r for r in records if r["type"] == "probe"]
icmp = [r for r in probes if r["method"] == "icmp"]
tcp = [r for r in probes if r["method"] == "tcp"]
check("agent: echoes to both targets, all answered", len(icmp) >= 8 and all(r["status"] == "reply" for r in icmp)
      and {r["target"] for r in icmp} == {"net3-v6", "net1-v6"}, (len(icmp), sorted({r["status"] for r in icmp})))
check("agent: tcp:81 refused on both", len(tcp) >= 8 and all(r["status"] == "refused" for r in tcp), sorted({r["status"] for r in tcp}))
traces = [r for r in records if r["type"] == "trace"]
check("agent: a baseline trace per target, each reaching it with ASNs", len(traces) == 2 and all(
      t["reason"] == "baseline" and t["reached"] and [h.get("asn") for h in t["hops"]] == [64496, 64500, 64510, 64510]
      for t in traces), [(t.get("target"), t.get("reached")) for t in traces])
events = [r for r in records if r["type"] == "event"]
check("agent: no events on a healthy lab", not events, events)
PY
finish
