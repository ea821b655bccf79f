#!/usr/bin/env bash
# The dns probe against netlab's DNS servers (dnsmasq, zone lab.test, on each
# net's first host): a name that exists, one that does not (NXDOMAIN), a
# large answer (truncated over UDP, whole over TCP), a silent server
# (timeout), one that answers SERVFAIL, a host with no server (ICMP port
# unreachable), an expect: that is not met (error); through
# `outpost ping --method dns --json`, its human line, and `outpost run`.
# Exit 77 (skip) when not root.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init dns
lib_need_tools dnsmasq ss
lab_up --hosts 4
check "netlab serve dns" netlab serve dns

# ping_json ADDR NAME [ARGS...]: one dns probe's record (2 s timeout).
ping_json() {
  local addr=$1 name=$2
  shift 2
  in_vp "$OUTPOST" ping "$addr" --method dns --query "$name" --count 1 --timeout 2s --json "$@" 2>>"$WORK/ping.log"
}

ping_json 198.18.0.1 www.lab.test >"$WORK/www.json"
ping_json 198.18.0.1 WWW.lab.test. >"$WORK/www_case.json"
ping_json 198.18.0.1 nope.lab.test >"$WORK/nx.json"
ping_json 198.18.1.1 big.lab.test >"$WORK/big.json"
ping_json 198.18.0.1 txt.lab.test --qtype TXT >"$WORK/txt.json"
ping_json 198.18.0.1 lab.test --qtype mx >"$WORK/mx.json"
ping_json 198.18.0.1 alias.lab.test >"$WORK/alias.json"
ping_json 198.18.0.1 example.com >"$WORK/outside.json"
ping_json 198.18.0.2 www.lab.test >"$WORK/noserver.json"
netlab dnsdown net3
ping_json 198.18.2.1 www.lab.test >"$WORK/down.json"
netlab dnsservfail net4
ping_json 198.18.3.1 www.lab.test >"$WORK/servfail.json"
netlab dnsup net3
ping_json 198.18.2.1 www.lab.test >"$WORK/up.json"

human=$(in_vp "$OUTPOST" ping 198.18.0.1 --method dns --query www.lab.test --count 1 2>&1)
check "human line: reply from 198.18.0.1: NOERROR 1 answer [198.18.0.1] ... time=" \
  grep -qE '^reply from 198\.18\.0\.1: NOERROR 1 answer \[198\.18\.0\.1\] seq=1 time=[0-9.]+ ms$' <<<"$human"
[[ $human == *"reply from"* ]] || echo "$human" | sed 's/^/  | /'
check "ping --method dns without --query is a usage error" \
  bash -c "! '$NETLAB' exec vp '$OUTPOST' ping 198.18.0.1 --method dns --count 1 >/dev/null 2>&1"
check "ping --qtype ANY is refused" \
  bash -c "! '$NETLAB' exec vp '$OUTPOST' ping 198.18.0.1 --method dns --query x.lab.test --qtype ANY --count 1 >/dev/null 2>&1"

py_checks "$WORK" <<'EOF'
import os
checked = check
def check(name, ok, detail=""):  # the detail only when it failed
    return checked(name, ok, "" if ok else detail)
work = sys.argv[1]
def one(name):
    records, bad = load_records(os.path.join(work, name + ".json"))
    return records[0] if len(records) == 1 and not bad else {}
def answered(name, r, rcode):
    check(f"{name}: status reply, rcode {rcode}", r.get("status") == "reply" and r.get("rcode") == rcode, r)
    check(f"{name}: rtt from kernel stamps at both ends", r.get("rtt_ms", 0) > 0 and r.get("rtt_clock") == "kernel", r)
    check(f"{name}: answer_count matches answers", r.get("answer_count") == len(r.get("answers", [None])), r)

www = one("www")
answered("www.lab.test A", www, "NOERROR")
check("www.lab.test A: answers [198.18.0.1], over UDP, not truncated",
      www.get("answers") == ["198.18.0.1"] and www.get("transport") == "udp" and www.get("truncated") is False, www)
check("the record names method, query, qtype and who answered",
      www.get("method") == "dns" and www.get("query") == "www.lab.test" and www.get("qtype") == "A"
      and www.get("reply_from") == "198.18.0.1" and www.get("address") == "198.18.0.1", www)
check("nothing ignored on a clean exchange", "ignored" not in www, www)
check("WWW.lab.test. is asked as www.lab.test (case and final dot)", one("www_case").get("answers") == ["198.18.0.1"])

nx = one("nx")
answered("nope.lab.test", nx, "NXDOMAIN")
check("NXDOMAIN: no answers", nx.get("answers") == [] and nx.get("answer_count") == 0, nx)

big = one("big")
answered("big.lab.test", big, "NOERROR")
want = sorted(f"198.18.9.{i}" for i in range(1, 41))
# 40 answers came over TCP: the first 32 are kept, the other 8 counted.
got = big.get("answers", [])
check("big.lab.test: truncated over UDP, its 40 answers over TCP: 32 kept, 8 counted as dropped",
      big.get("truncated") is True and big.get("transport") == "tcp" and len(got) == 32
      and len(set(got)) == 32 and set(got) <= set(want) and big.get("answers_dropped") == 8, big)
check("big.lab.test: the TCP exchange timed (tcp_ms), no tcp_error",
      big.get("tcp_ms", 0) > 0 and "tcp_error" not in big, big)

check("TXT: [outpost lab]", one("txt").get("answers") == ["outpost lab"], one("txt"))
check("MX: [10 mail.lab.test]", one("mx").get("answers") == ["10 mail.lab.test"], one("mx"))
check("CNAME chain: [www.lab.test, 198.18.0.1]", one("alias").get("answers") == ["www.lab.test", "198.18.0.1"],
      one("alias"))
answered("a name outside the zone (never forwarded)", one("outside"), "REFUSED")

noserver = one("noserver")
check("no server on 198.18.0.2: unreachable (ICMP port unreachable from it)",
      noserver.get("status") == "unreachable" and noserver.get("detail") == "port unreachable"
      and noserver.get("reply_from") == "198.18.0.2" and noserver.get("icmp_type") == 3
      and noserver.get("icmp_code") == 3 and "rcode" not in noserver, noserver)
down = one("down")
check("dnsdown net3: timeout, no rcode, no rtt",
      down.get("status") == "timeout" and "rcode" not in down and "rtt_ms" not in down, down)
answered("dnsservfail net4", one("servfail"), "SERVFAIL")
check("dnsup net3: answers again", one("up").get("answers") == ["198.18.0.1"], one("up"))
EOF

# The servers log each query: none was forwarded anywhere.
dns_logs_clean() {
  local logs=(/run/netlab/"$NETLAB_PREFIX"/servers/dns-*.log)
  grep -q 'query\[A\] example.com' "${logs[@]}" && ! grep -q 'forwarded' "${logs[@]}"
}
check "dnsmasq logged the queries and forwarded none" dns_logs_clean

# ------------------------------------------------------------- outpost run

netlab dnsup net4
netlab dnsdown net3
cfg=$WORK/dns.yaml
cat >"$cfg" <<'EOF'
agent:
  id: itest-dns
defaults:
  interval: 500ms
  timeout: 400ms
  probes: [dns]
groups:
  - name: lab
    targets:
      - { name: www, address: 198.18.0.1, dns: { query: www.lab.test, type: A, expect: [198.18.0.1] } }
      - { name: nx, address: 198.18.0.1, dns: { query: nope.lab.test, type: A } }
      - { name: txt, address: 198.18.0.1, dns: { query: txt.lab.test, type: TXT } }
      - { name: miss, address: 198.18.0.1, dns: { query: www.lab.test, type: A, expect: [198.18.0.99] } }
      - { name: big, address: 198.18.1.1, dns: { query: big.lab.test, type: A } }
      - { name: down, address: 198.18.2.1, dns: { query: www.lab.test, type: A } }
EOF
check "outpost check accepts the dns config" quiet "$OUTPOST" check -c "$cfg"
run_agent "$cfg" "$WORK/run.jsonl" "$WORK/agent.log" 3s
rc=$?
check "outpost run --for 3s exits 0 (got $rc)" test "$rc" -eq 0
((rc == 0)) || show_log "$WORK/agent.log"

py_checks "$WORK/run.jsonl" <<'EOF'
checked = check
def check(name, ok, detail=""):  # the detail only when it failed
    return checked(name, ok, "" if ok else detail)
records, bad = load_records(sys.argv[1])
probes = by_target(records)
check("every line is a JSON object", not bad and records, bad[:5])
check("each target probed at least 4 times in 3 s",
      all(len(probes.get(t, [])) >= 4 for t in ("www", "nx", "txt", "miss", "big", "down")),
      {t: len(v) for t, v in probes.items()})
def every(target, ok):
    rs = probes.get(target, [])
    bad = [r for r in rs if not ok(r)]
    return bool(rs) and not bad, bad[:1]
check("www: reply, expect met", *every("www", lambda r: r["status"] == "reply" and r["answers"] == ["198.18.0.1"]))
check("nx: reply, NXDOMAIN", *every("nx", lambda r: r["status"] == "reply" and r["rcode"] == "NXDOMAIN"))
check("txt: [outpost lab]", *every("txt", lambda r: r["status"] == "reply" and r["answers"] == ["outpost lab"]))
check("miss: error naming what was expected and what came",
      *every("miss", lambda r: r["status"] == "error" and r["rcode"] == "NOERROR" and r["error"] ==
             "expected [198.18.0.99] among the answers, got NOERROR [198.18.0.1]"))
check("big: truncated, 40 answers over TCP (32 kept, 8 dropped)",
      *every("big", lambda r: r["status"] == "reply" and r["truncated"] and r["transport"] == "tcp"
             and r["answer_count"] == 32 and r.get("answers_dropped") == 8))
check("down: timeout", *every("down", lambda r: r["status"] == "timeout"))
check("dns records carry rcode, answers and truncated when answered",
      all(("rcode" in r) == (r["status"] in ("reply", "error")) and
          (("answers" in r and "truncated" in r) or r["status"] == "timeout")
          for t in probes for r in probes[t]))
EOF

check "netlab unserve dns" netlab unserve dns
check "no DNS server left running" bash -c "! ls /run/netlab/$NETLAB_PREFIX/servers/dns*.pid >/dev/null 2>&1 &&
  [[ -z \$(for n in net1 net2 net3 net4; do ip netns pids \$('$NETLAB' ns \$n); done) ]]"
finish
