#!/usr/bin/env bash
# IPv6 end to end, on the loopback of a namespace of its own: ICMPv6 echo,
# a TCP SYN to an open and to a closed port, and a trace to ::1.
# ctest: parallel
set -uo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: needs root (a network namespace of its own; outpost needs CAP_NET_RAW)"
  exit 77
fi
OUTPOST_SOURCE_DIR=${OUTPOST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
OUTPOST=${OUTPOST:-$OUTPOST_SOURCE_DIR/build/outpost}
NS=v6lo$$
WORK=$(mktemp -d)
SERVER=
cleanup() {
  [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
# A listener on [::1]:8080 (python3's standard library only).
ip netns exec "$NS" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::1", 8080)); s.listen(64)
time.sleep(60)' &
SERVER=$!
sleep 0.5

failures=0
check() { if eval "$2"; then echo "PASS: $1"; else echo "FAIL: $1"; failures=$((failures + 1)); fi; }
run() { ip netns exec "$NS" "$OUTPOST" "$@"; }

run ping ::1 -c 3 -i 50ms --json >"$WORK/icmp.jsonl"
check "icmp echo to ::1: 3 replies" '[[ $(grep -c "\"status\":\"reply\"" "$WORK/icmp.jsonl") == 3 ]]'
run ping ::1 --method tcp:8080 -c 2 -i 50ms --json >"$WORK/open.jsonl"
check "tcp SYN to [::1]:8080 (listening): reply" '[[ $(grep -c "\"status\":\"reply\"" "$WORK/open.jsonl") == 2 ]]'
run ping ::1 --method tcp:8081 -c 2 -i 50ms --json >"$WORK/closed.jsonl"
check "tcp SYN to [::1]:8081 (closed): refused" '[[ $(grep -c "\"status\":\"refused\"" "$WORK/closed.jsonl") == 2 ]]'
run trace ::1 --json >"$WORK/trace.json"
check "trace to ::1 reaches it at hop 1" 'python3 -c "
import json, sys
t = json.load(open(\"$WORK/trace.json\"))
sys.exit(0 if t[\"reached\"] and t[\"hops\"][0][\"addr\"] == \"::1\" and len(t[\"hops\"]) == 1 else 1)"'
cat "$WORK"/*.jsonl | head -2

if ((failures)); then
  echo "$failures check(s) FAILED"
  exit 1
fi
echo "all checks passed"
