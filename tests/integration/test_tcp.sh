#!/usr/bin/env bash
# Integration test of the TCP probes in netlab, tcp:PORT (half-open SYN) and
# tcp_connect:PORT alike: an open port is `reply`, a closed one `refused`, a
# port a host or a router drops `timeout`, a net the border answers with ICMP
# host-unreachable `unreachable` -- through `outpost ping --json` and through
# `outpost run` with a config. Then many SYN probes, after which the target
# holds no connection state toward our probe ports. Builds a small lab under
# a prefix of its own and tears it down (also on failure, by trap).
# Exit 77 (skip) when not root.
set -uo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: needs root (netlab uses network namespaces; outpost needs CAP_NET_RAW)"
  exit 77
fi
for tool in ip nft ss python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: needs $tool (run scripts/setup)"
    exit 77
  fi
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=${OUTPOST_SOURCE_DIR:-$here/../..}
netlab=$source_dir/scripts/netlab
OUTPOST=${OUTPOST:-$source_dir/build/outpost}
if [[ ! -x $OUTPOST ]]; then
  echo "FAIL: no outpost binary at $OUTPOST (build it, or set OUTPOST)"
  exit 1
fi
OUTPOST=$(realpath "$OUTPOST")
export NETLAB_PREFIX="tcp$$"
P=$NETLAB_PREFIX
work=$(mktemp -d "/tmp/outpost-test-tcp.XXXXXX")
trap '"$netlab" down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failures=0
check() { # check NAME CMD...: run CMD, report PASS/FAIL
  local name=$1; shift
  if "$@"; then echo "PASS: $name"; else echo "FAIL: $name"; failures=$((failures + 1)); fi
}

in_vp() { "$netlab" exec vp "$@"; }
netlab_ok() { "$netlab" "$@" >/dev/null; }

# records_are WANT PORT < JSONL: every line a probe record of method tcp for
# PORT with status WANT, rtt_ms there exactly when answered; prints a summary.
records_are() {
  python3 -c '
import collections, json, sys
want, port = sys.argv[1], int(sys.argv[2])
records = [json.loads(l) for l in sys.stdin.read().splitlines() if l.strip()]
ok = bool(records)
for r in records:
    rtt = r.get("rtt_ms")
    answered = r.get("status") in ("reply", "refused", "unreachable")
    ok &= (r.get("type") == "probe" and r.get("method") == "tcp" and r.get("port") == port
           and r.get("status") == want and (rtt is not None) == answered and (rtt is None or 0 < rtt < 1000))
statuses = collections.Counter(r.get("status") for r in records)
rtts = sorted(r["rtt_ms"] for r in records if "rtt_ms" in r)
froms = sorted({r["reply_from"] for r in records if "reply_from" in r})
print("    %d record(s): %s; rtt_ms %s%s" % (len(records), ", ".join("%s x%d" % kv for kv in statuses.items()),
      "%.3f..%.3f" % (rtts[0], rtts[-1]) if rtts else "-", "; from " + " ".join(froms) if froms else ""))
sys.exit(0 if ok else 1)
' "$@"
}

# ping_is METHOD ADDR WANT: one probe by `outpost ping --json`, status WANT.
ping_is() {
  local method=$1 addr=$2 want=$3
  # ping exits 1 when nothing replied: only its records count here.
  in_vp "$OUTPOST" ping "$addr" --method "$method" --count 1 --timeout 1s --json >"$work/ping.jsonl" 2>"$work/ping.err"
  records_are "$want" "${method#*:}" <"$work/ping.jsonl" || { sed 's/^/    stderr: /' "$work/ping.err"; return 1; }
}

# ping_says METHOD ADDR PATTERN: the human line of one probe matches PATTERN.
ping_says() {
  local out; out=$(in_vp "$OUTPOST" ping "$1" --method "$2" --count 1 --timeout 1s 2>&1 | sed -n 2p)
  echo "    $out"
  [[ $out =~ $3 ]]
}

echo "TCP probe test, prefix $P, outpost $OUTPOST"
check "netlab up --hosts 2" netlab_ok up --hosts 2
check "netlab serve web" netlab_ok serve web
check "web server listens on 198.18.0.1:80 and :443" \
  bash -c "\"$netlab\" exec net1 ss -Hltn 'src 198.18.0.1' | grep -q ':80 ' && \"$netlab\" exec net1 ss -Hltn 'src 198.18.0.1' | grep -q ':443 '"
netlab_ok portdrop net1 443
netlab_ok unreachable border 198.18.1.0/24

# ---------------------------------------------------------------- ping
for m in tcp tcp_connect; do
  check "ping $m:80 198.18.0.1 (open): reply" ping_is "$m:80" 198.18.0.1 reply
  check "ping $m:81 198.18.0.1 (closed): refused" ping_is "$m:81" 198.18.0.1 refused
  check "ping $m:443 198.18.0.1 (portdrop net1 443): timeout" ping_is "$m:443" 198.18.0.1 timeout
  check "ping $m:80 198.18.1.1 (unreachable border): unreachable" ping_is "$m:80" 198.18.1.1 unreachable
  check "ping $m:80 human line: open" ping_says 198.18.0.1 "$m:80" '^open from 198\.18\.0\.1: port 80 seq=1 .*time=[0-9.]+ ms$'
  check "ping $m:81 human line: refused" ping_says 198.18.0.1 "$m:81" '^refused from 198\.18\.0\.1: port 81 closed seq=1 .*time=[0-9.]+ ms$'
done

netlab_ok portdrop border 80
for m in tcp tcp_connect; do
  check "ping $m:80 198.18.2.1 (portdrop border 80): timeout" ping_is "$m:80" 198.18.2.1 timeout
done
netlab_ok portundrop border 80
check "portundrop border 80: tcp:80 198.18.2.1 replies again" ping_is tcp:80 198.18.2.1 reply

# ----------------------------------------------------------------- run
cfg=$work/tcp.yaml
cat >"$cfg" <<EOF
agent:
  id: itest-tcp
  max_pps: 1000
defaults:
  interval: 500ms
  timeout: 300ms
groups:
  - name: syn
    targets:
      - { name: syn-net1, address: 198.18.0.1, probes: [tcp:80, tcp:81, tcp:443] }
      - { name: syn-net2, address: 198.18.1.1, probes: [tcp:80] }
  - name: connect
    targets:
      - { name: connect-net1, address: 198.18.0.1, probes: [tcp_connect:80, tcp_connect:81, tcp_connect:443] }
      - { name: connect-net2, address: 198.18.1.1, probes: [tcp_connect:80] }
EOF
check "outpost check accepts the config" "$OUTPOST" check -c "$cfg"
in_vp "$OUTPOST" run -c "$cfg" --for 3s --output "$work/run.jsonl" >"$work/run.log" 2>&1
rc=$?
check "outpost run --for 3s exits 0 (got $rc)" test "$rc" -eq 0
((rc == 0)) || sed 's/^/    log: /' "$work/run.log"

# run_records_are TARGET PORT WANT: at least 3 records of the run, all WANT.
run_records_are() {
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") == "probe" and r.get("target") == sys.argv[2] and r.get("port") == int(sys.argv[3]):
        print(line, end="")
' "$work/run.jsonl" "$1" "$2" >"$work/case.jsonl"
  records_are "$3" "$2" <"$work/case.jsonl" && (($(wc -l <"$work/case.jsonl") >= 3))
}
for m in syn connect; do
  check "run $m-net1 port 80 (open): reply" run_records_are "$m-net1" 80 reply
  check "run $m-net1 port 81 (closed): refused" run_records_are "$m-net1" 81 refused
  check "run $m-net1 port 443 (portdrop net1 443): timeout" run_records_are "$m-net1" 443 timeout
  check "run $m-net2 port 80 (unreachable border): unreachable" run_records_are "$m-net2" 80 unreachable
done

# ------------------------------------------------- no state left behind
netlab_ok heal
# counter NODE NAME: a kernel SNMP counter in NODE's namespace.
counter() { "$netlab" exec "$1" nstat -az "$2" | awk -v n="$2" '$1 == n {print $2}'; }
many=500
rsts_before=$(counter vp TcpOutRsts)
replies=$(in_vp "$OUTPOST" ping 198.18.0.1 --method tcp:80 --count "$many" --interval 1ms --timeout 1s --json 2>/dev/null |
  grep -c '"status":"reply"')
rsts=$(($(counter vp TcpOutRsts) - rsts_before))
check "$many SYN probes to 198.18.0.1:80: $replies replies" test "$replies" -eq "$many"
check "vp's kernel reset each SYN-ACK ($rsts RSTs sent)" test "$rsts" -ge "$many"
check "net1 kept a real SYN-RECV for each (no SYN cookies: $(counter net1 TcpExtSyncookiesSent) sent)" \
  test "$(counter net1 TcpExtSyncookiesSent)" -eq 0

# probe_port_states NODE: "STATE PEER" of every TCP socket in NODE's namespace
# whose peer port is one of the SYN probes' (61000-65535).
probe_port_states() {
  "$netlab" exec "$1" ss -Htan | awk '{ n = split($5, a, ":"); if (a[n] + 0 >= 61000) print $1, $5 }'
}
no_connection_state() {
  local states; states=$(probe_port_states net1)
  [[ -z $states ]] || { echo "$states" | sort | uniq -c | head | sed 's/^/    net1: /'; }
  ! grep -Eq '^(ESTAB|SYN-RECV)' <<<"$states"
}
check "net1 holds nothing ESTABLISHED or SYN-RECV toward our probe ports" no_connection_state
check "net1 holds no socket at all toward our probe ports (the kernel's RSTs cleaned up)" \
  test -z "$(probe_port_states net1)"
check "vp holds no socket on our probe ports" \
  test -z "$("$netlab" exec vp ss -Htan | awk '{ n = split($4, a, ":"); if (a[n] + 0 >= 61000) print }')"

check "netlab unserve web" netlab_ok unserve web
check "the web servers are gone" bash -c "! \"$netlab\" exec net1 ss -Hltn | grep -q ."
check "down" netlab_ok down
check "down removed every ${P}-* namespace" bash -c "! ip netns list | grep -q '^${P}-'"

if ((failures)); then echo "$failures check(s) FAILED"; exit 1; fi
echo "all checks passed"
