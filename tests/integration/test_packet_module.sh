#!/usr/bin/env bash
# The packet module (outpost-tins.so, probes/tins_forge.hpp): outpost loads it
# from beside its executable or from ../lib/outpost, only when it forges a
# TCP SYN, a UDP trace probe or a DNS query. A copy of outpost without the
# module still pings (ICMP) and traces with ICMP, and does not load libtins
# (nor libpcap's, libdbus's or libsystemd's shared libraries: linked in, or
# opened under systemd only);
# a UDP trace, a TCP ping or a run stops at start with a message naming the
# module, exit 1, before any probe; with the module in ../lib/outpost (the
# package's layout) all of them work.
# ctest: parallel
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init pm
lab_up --hosts 2
netlab serve web

module=$(dirname "$OUTPOST")/outpost-tins.so
check "the build has the module beside outpost ($module)" test -r "$module"
mkdir -p "$WORK/bin" "$WORK/lib/outpost"
cp "$OUTPOST" "$WORK/bin/outpost"
alone=$WORK/bin/outpost

# Without the module.
in_vp "$alone" ping -c 1 198.18.0.1 >"$WORK/ping.out" 2>&1
rc=$?
check "ping (ICMP) without the module: exit 0 (got $rc)" test "$rc" -eq 0
check "ping (ICMP) without the module: a reply" grep -q "1 replies" "$WORK/ping.out"
in_vp "$alone" trace 198.18.0.1 --method icmp >"$WORK/trace-icmp.out" 2>&1
rc=$?
check "trace --method icmp without the module: exit 0 (got $rc)" test "$rc" -eq 0
check "trace --method icmp without the module: the target reached" grep -q "reached after" "$WORK/trace-icmp.out"
# What a process maps: libtins never, for ICMP (the copy's maps, while it waits for a second echo).
in_vp "$alone" ping -c 2 -i 1s 198.18.0.1 >/dev/null 2>&1 &
job=$!
sleep 0.5
pid=$(pgrep -n -f "^$alone ping -c 2")
maps=$(cat "/proc/${pid:-0}/maps" 2>/dev/null)
wait "$job"
check "ping (ICMP) maps some library (the check can see maps)" grep -q "libstdc++" <<<"$maps"
check "ping (ICMP) does not map libtins or libcrypto" eval '! grep -qE "libtins|libcrypto" <<<"$maps"'
# libpcap and libdbus are linked in, and libsystemd opened only under systemd:
# none of their shared libraries, nor what libsystemd links.
check "ping (ICMP) maps no libpcap, libdbus, libsystemd or libgcrypt" \
  eval '! grep -qE "libpcap|libdbus|libsystemd|libgcrypt|liblzma|libzstd" <<<"$maps"'

for cmd in "trace 198.18.0.1 --method udp" "ping -c 1 --method tcp:80 198.18.0.1"; do
  # shellcheck disable=SC2086  # the words of the command
  in_vp "$alone" $cmd >"$WORK/missing.out" 2>&1
  rc=$?
  check "$cmd without the module: exit 1 (got $rc)" test "$rc" -eq 1
  check "$cmd without the module: the message names the module" grep -q "cannot find outpost-tins.so" "$WORK/missing.out"
  check "$cmd without the module: no probe went out" eval '! grep -qE "^ *1 |reply from|refused" "$WORK/missing.out"'
done
cat >"$WORK/run.yaml" <<EOF
agent:
  id: itest-module
groups:
  - name: nets
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
EOF
in_vp "$alone" run -c "$WORK/run.yaml" --for 2s --output "$WORK/run.jsonl" >"$WORK/run.log" 2>&1
rc=$?
check "run without the module: exit 1 (got $rc)" test "$rc" -eq 1
check "run without the module: the message names the module" grep -q "cannot find outpost-tins.so" "$WORK/run.log"
check "run without the module: no record written" eval '! test -s "$WORK/run.jsonl"'

# The package's layout: bin/outpost and lib/outpost/outpost-tins.so.
cp "$module" "$WORK/lib/outpost/"
in_vp "$alone" trace 198.18.0.1 --method udp >"$WORK/trace-udp.out" 2>&1
rc=$?
check "trace --method udp with ../lib/outpost/outpost-tins.so: exit 0 (got $rc)" test "$rc" -eq 0
check "trace --method udp with the module: the target reached" grep -q "reached after" "$WORK/trace-udp.out"
in_vp "$alone" ping -c 1 --method tcp:80 198.18.0.1 >"$WORK/tcp.out" 2>&1
rc=$?
check "ping --method tcp:80 with the module: exit 0 (got $rc)" test "$rc" -eq 0
check "ping --method tcp:80 with the module: an answer" grep -q "1 replies" "$WORK/tcp.out"

# A file there that is no module: refused with dlopen's reason.
echo "not a library" >"$WORK/lib/outpost/outpost-tins.so"
in_vp "$alone" trace 198.18.0.1 --method udp >"$WORK/bad.out" 2>&1
rc=$?
check "a broken module: exit 1 (got $rc)" test "$rc" -eq 1
check "a broken module: the message says it cannot be loaded" grep -q "cannot load .*outpost-tins.so" "$WORK/bad.out"

finish
