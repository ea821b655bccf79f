#!/usr/bin/env bash
# Integration test of scripts/netlab: builds a small lab (--hosts 4) under a
# prefix of its own, checks reachability, hop order and each fault, and tears
# the lab down (also on failure, by trap). Exit 77 (skip) when not root.
set -uo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: needs root (netlab uses network namespaces)"
  exit 77
fi
for tool in ip nft ping traceroute; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: needs $tool (run scripts/setup)"
    exit 77
  fi
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
netlab=${OUTPOST_SOURCE_DIR:-$here/../..}/scripts/netlab
export NETLAB_PREFIX="t$$"
P=$NETLAB_PREFIX
trap '"$netlab" down >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failures=0
check() { # check NAME CMD...: run CMD, report PASS/FAIL
  local name=$1; shift
  if "$@"; then echo "PASS: $name"; else echo "FAIL: $name"; failures=$((failures + 1)); fi
}

in_vp() { "$netlab" exec vp "$@"; }
reaches() { in_vp ping -c 2 -W 1 "$1" >/dev/null 2>&1; }
unreached() { ! in_vp ping -c 2 -W 1 "$1" >/dev/null 2>&1; }
# hops DST: the hop addresses of an ICMP traceroute, one query per hop.
hops() { in_vp traceroute -n -I -q 1 -w 1 -m 6 "$1" 2>/dev/null | awk 'NR > 1 {printf "%s%s", sep, $2; sep = " "}'; }
hops_are() { # hops_are DST EXPECTED...
  local dst=$1 got; shift
  got=$(hops "$dst")
  [[ $got == "$*" ]] || { echo "  hops to $dst: got '$got', want '$*'"; return 1; }
}
netlab_ok() { "$netlab" "$@" >/dev/null; }
no_lab_namespaces() { ! ip netns list | grep -q "^${P}-"; }

host_unreachable_from_border() {
  local out; out=$(in_vp ping -c 1 -W 1 198.18.1.1 2>&1)
  grep -q 'From 198.19.0.10 .*Destination Host Unreachable' <<<"$out" || { echo "  ping said: $out"; return 1; }
}

partial_loss() {
  local out received
  out=$(in_vp ping -q -c 100 -i 0.01 -W 1 198.18.0.1 2>&1)
  received=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$out")
  echo "  loss border 50: ${received:-?}/100 replies"
  [[ -n $received ]] && ((received > 0 && received < 100))
}

no_faults_listed() { "$netlab" status | sed -n '/^faults:/,$p' | grep -q '(none)'; }

echo "netlab test, prefix $P"
check "up --hosts 4" netlab_ok up --hosts 4
check "up again is a no-op" netlab_ok up
check "ping 198.18.0.1" reaches 198.18.0.1
check "ping 198.18.3.4" reaches 198.18.3.4
check "ping 198.18.100.1 (ctl)" reaches 198.18.100.1
check "ping 198.19.0.26 (net4 link address)" reaches 198.19.0.26
check "--hosts 4: no 198.18.0.5" unreached 198.18.0.5
check "traceroute hop order" hops_are 198.18.0.1 198.19.0.2 198.19.0.6 198.19.0.10 198.18.0.1

netlab_ok drop carrier
check "drop carrier: ping fails" unreached 198.18.0.1
check "drop carrier: carrier still sends time-exceeded" hops_are 198.18.0.1 198.19.0.2 198.19.0.6 '*' '*' '*' '*'
netlab_ok undrop carrier
check "undrop carrier: ping works" reaches 198.18.0.1

netlab_ok cut isp carrier
check "cut isp carrier: ping fails" unreached 198.18.0.1
netlab_ok uncut isp carrier
check "uncut isp carrier: ping works" reaches 198.18.0.1

netlab_ok unreachable border 198.18.1.0/24
check "unreachable border 198.18.1.0/24: host unreachable from 198.19.0.10" host_unreachable_from_border
check "unreachable border: other nets unaffected" reaches 198.18.0.1
netlab_ok reachable border 198.18.1.0/24
check "reachable border: ping 198.18.1.1 works" reaches 198.18.1.1
check "unreachable with an IPv6 prefix: refused in a lab without --ipv6" \
  bash -c '! "$0" unreachable border 2001:2:0:1::/64 >/dev/null 2>&1' "$netlab"
check "unreachable with a bad prefix: refused" bash -c '! "$0" unreachable border 198.18.1.0/33 >/dev/null 2>&1' "$netlab"
check "refused prefixes leave no fault" no_faults_listed

netlab_ok loss border 50
check "loss border 50: some but not all lost" partial_loss
netlab_ok noloss border
check "noloss border: ping works" reaches 198.18.0.1

netlab_ok silent carrier
check "silent carrier: hop 2 is *" hops_are 198.18.0.1 198.19.0.2 '*' 198.19.0.10 198.18.0.1
netlab_ok unsilent carrier
check "unsilent carrier: hop 2 back" hops_are 198.18.0.1 198.19.0.2 198.19.0.6 198.19.0.10 198.18.0.1

netlab_ok hostdown net1
check "hostdown net1: ping fails" unreached 198.18.0.1
check "hostdown net1: net2 unaffected" reaches 198.18.1.1
netlab_ok hostup net1
check "hostup net1: ping works" reaches 198.18.0.1

netlab_ok drop border
netlab_ok cut carrier border
netlab_ok silent isp
netlab_ok ratelimit carrier on
check "ratelimit on: kernel defaults" \
  test "$("$netlab" exec carrier sysctl -n net.ipv4.icmp_ratelimit net.ipv4.icmp_msgs_per_sec | tr '\n' ' ')" = "1000 1000 "
netlab_ok heal
check "heal: hop order restored" hops_are 198.18.0.1 198.19.0.2 198.19.0.6 198.19.0.10 198.18.0.1
check "heal: ratelimit off" test "$("$netlab" exec carrier sysctl -n net.ipv4.icmp_ratelimit)" = 0
check "heal: no faults listed" no_faults_listed

check "down" netlab_ok down
check "down removed every ${P}-* namespace" no_lab_namespaces
check "down again is a no-op" netlab_ok down

if ((failures)); then echo "$failures check(s) FAILED"; exit 1; fi
echo "all checks passed"
