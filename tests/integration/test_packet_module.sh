#!/usr/bin/env bash
# outpost's modules, loaded from beside its executable or from ../lib/outpost.
# The packet module (outpost-tins.so, probes/tins_forge.hpp), only when a
# command builds a DNS query: a copy of outpost without it still pings (ICMP
# and TCP SYN) and traces (ICMP, UDP and TCP), and maps no libtins (nor
# libpcap's, libdbus's or libsystemd's shared libraries: linked in, or opened
# under systemd only, nor prometheus-cpp, nor libspdlog: built in), nor does
# a run of ICMP and TCP probes; a DNS ping or a run with a DNS probe stops at
# start with a message naming the module, exit 1, before any probe, and a
# reload that adds one is refused; with the module in ../lib/outpost (the
# package's layout) all of them work. The metrics exposer
# (outpost-metrics.so), only for a run with agent.metrics: the same without
# it and with it.
# ctest: parallel
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init pm
lib_need_tools curl
lab_up --hosts 2
netlab serve web
netlab serve dns

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
for method in icmp udp tcp:80; do
  in_vp "$alone" trace 198.18.0.1 --method "$method" >"$WORK/trace-$method.out" 2>&1
  rc=$?
  check "trace --method $method without the module: exit 0 (got $rc)" test "$rc" -eq 0
  check "trace --method $method without the module: the target reached" grep -q "reached after" "$WORK/trace-$method.out"
done
in_vp "$alone" ping -c 1 --method tcp:80 198.18.0.1 >"$WORK/tcp.out" 2>&1
rc=$?
check "ping --method tcp:80 without the module: exit 0 (got $rc)" test "$rc" -eq 0
check "ping --method tcp:80 without the module: an answer" grep -q "1 replies" "$WORK/tcp.out"
# What a process maps: libtins never, for ICMP (the copy's maps, while it waits for a second echo).
in_vp "$alone" ping -c 2 -i 1s 198.18.0.1 >/dev/null 2>&1 &
job=$!
sleep 0.5
pid=$(pgrep -n -f "^$alone ping -c 2")
maps=$(cat "/proc/${pid:-0}/maps" 2>/dev/null)
wait "$job"
check "ping (ICMP) maps some library (the check can see maps)" grep -q "libc\.so" <<<"$maps"
check "ping (ICMP) does not map libtins or libcrypto" eval '! grep -qE "libtins|libcrypto" <<<"$maps"'
# libpcap and libdbus are linked in, and libsystemd opened only under systemd:
# none of their shared libraries, nor what libsystemd links.
check "ping (ICMP) maps no libpcap, libdbus, libsystemd or libgcrypt" \
  eval '! grep -qE "libpcap|libdbus|libsystemd|libgcrypt|liblzma|libzstd" <<<"$maps"'
# prometheus-cpp and civetweb come with the metrics module, which only a run
# with agent.metrics loads.
check "ping (ICMP) maps no prometheus-cpp or civetweb" eval '! grep -qE "prometheus|civetweb|outpost-metrics" <<<"$maps"'
# spdlog is compiled in (agent/loader/spdlog_library.cpp).
check "ping (ICMP) maps no libspdlog" eval '! grep -q "libspdlog" <<<"$maps"'

in_vp "$alone" ping -c 1 --method dns --query www.lab.test 198.18.0.1 >"$WORK/missing.out" 2>&1
rc=$?
check "ping --method dns without the module: exit 1 (got $rc)" test "$rc" -eq 1
check "ping --method dns without the module: the message names the module" grep -q "cannot find outpost-tins.so" "$WORK/missing.out"
check "ping --method dns without the module: no probe went out" eval '! grep -qE "reply from|replies" "$WORK/missing.out"'
cat >"$WORK/run.yaml" <<EOF
agent:
  id: itest-module
groups:
  - name: nets
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
EOF
# A run of ICMP echo and TCP SYN probes (and UDP traces) never loads the
# module: it runs without it. A reload that adds a DNS probe is refused while
# the module cannot be loaded (the run goes on with the old config), and
# taken once it can.
cat >"$WORK/reload.yaml" <<EOF
agent:
  id: itest-module
defaults:
  interval: 1s
traceroute:
  method: udp
groups:
  - name: nets
    targets:
      - { name: net1-h1, address: 198.18.0.1, probes: [icmp, "tcp:80"] }
EOF
in_vp "$alone" run -c "$WORK/reload.yaml" --for 8s --output "$WORK/run.jsonl" >"$WORK/run.log" 2>&1 &
job=$!
pid=""
for _ in $(seq 50); do
  sleep 0.1
  pid=$(pgrep -n -f "^$alone run -c $WORK/reload.yaml") && test -s "$WORK/run.jsonl" && break
done
maps=$(cat "/proc/${pid:-0}/maps" 2>/dev/null)
check "run (ICMP, TCP) without the module: records written" test -s "$WORK/run.jsonl"
check "run (ICMP, TCP) maps some library (the check can see maps)" grep -q "libc\.so" <<<"$maps"
check "run (ICMP, TCP) does not map the module, libtins or libcrypto" \
  eval '! grep -qE "outpost-tins|libtins|libcrypto" <<<"$maps"'
cat >>"$WORK/reload.yaml" <<EOF
      - { name: net1-h1-dns, address: 198.18.0.1, probes: [dns], dns: { query: www.lab.test, type: A } }
EOF
kill -HUP "${pid:-0}" 2>/dev/null
for _ in $(seq 30); do
  sleep 0.1
  grep -q "reload refused" "$WORK/run.log" && break
done
check "reload adding a DNS probe without the module: refused, naming it" \
  grep -q "reload refused: .*cannot find outpost-tins.so.*keeping the old config" "$WORK/run.log"
cp "$module" "$WORK/lib/outpost/"
kill -HUP "${pid:-0}" 2>/dev/null
wait "$job"
rc=$?
check "run across both reloads: exit 0 (got $rc)" test "$rc" -eq 0
check "reload with the module in ../lib/outpost: taken" grep -q "reloaded $WORK/reload.yaml" "$WORK/run.log"
check "before it, tcp:80 probe records answered" \
  eval 'grep "\"type\":\"probe\"" "$WORK/run.jsonl" | grep "\"target\":\"net1-h1\"" | grep "\"method\":\"tcp\",\"port\":80" | grep -q "\"status\":\"reply\""'
check "after it, DNS probe records answered" \
  eval 'grep "\"type\":\"probe\"" "$WORK/run.jsonl" | grep "\"target\":\"net1-h1-dns\"" | grep -q "\"status\":\"reply\""'
rm "$WORK/lib/outpost/outpost-tins.so"
# A run with a DNS probe stops at start without the module, before any probe.
in_vp "$alone" run -c "$WORK/reload.yaml" --for 2s --output "$WORK/dns-run.jsonl" >"$WORK/dns-run.log" 2>&1
rc=$?
check "run with a DNS probe without the module: exit 1 (got $rc)" test "$rc" -eq 1
check "run with a DNS probe without the module: the message names the module" \
  grep -q "cannot find outpost-tins.so" "$WORK/dns-run.log"
check "run with a DNS probe without the module: no record written" eval '! test -s "$WORK/dns-run.jsonl"'

# The package's layout: bin/outpost and lib/outpost/outpost-tins.so.
cp "$module" "$WORK/lib/outpost/"
in_vp "$alone" ping -c 1 --method dns --query www.lab.test 198.18.0.1 >"$WORK/dns.out" 2>&1
rc=$?
check "ping --method dns with ../lib/outpost/outpost-tins.so: exit 0 (got $rc)" test "$rc" -eq 0
check "ping --method dns with the module: an answer" grep -q "1 replies" "$WORK/dns.out"

# The metrics exposer (outpost-metrics.so, agent/metrics/metrics_exposer.hpp):
# a run with agent.metrics stops at start without it, naming it; with it in
# ../lib/outpost the endpoint serves the run's metrics.
sed 's/^  id: itest-module$/  id: itest-module\n  metrics: "127.0.0.1:19464"/' "$WORK/run.yaml" >"$WORK/metrics.yaml"
in_vp "$alone" run -c "$WORK/metrics.yaml" --for 2s --output "$WORK/metrics-missing.jsonl" >"$WORK/metrics-missing.log" 2>&1
rc=$?
check "run with agent.metrics without outpost-metrics.so: exit 1 (got $rc)" test "$rc" -eq 1
check "run with agent.metrics without it: the message names the module" \
  grep -q "cannot find outpost-metrics.so" "$WORK/metrics-missing.log"
check "run with agent.metrics without it: no record written" eval '! test -s "$WORK/metrics-missing.jsonl"'
cp "$(dirname "$OUTPOST")/outpost-metrics.so" "$WORK/lib/outpost/"
in_vp "$alone" run -c "$WORK/metrics.yaml" --for 3s --output "$WORK/metrics.jsonl" >"$WORK/metrics.log" 2>&1 &
job=$!
scraped=""
for _ in $(seq 50); do
  sleep 0.1
  scraped=$(in_vp curl -sf "http://127.0.0.1:19464/metrics" 2>/dev/null) && [[ $scraped == *outpost_build_info* ]] && break
done
wait "$job"
rc=$?
check "run with ../lib/outpost/outpost-metrics.so: exit 0 (got $rc)" test "$rc" -eq 0
check "run with the module: /metrics serves the build info" grep -q "^outpost_build_info{" <<<"$scraped"
check "run with the module: probe records written" test -s "$WORK/metrics.jsonl"

# A file there that is no module: refused with dlopen's reason.
echo "not a library" >"$WORK/lib/outpost/outpost-tins.so"
in_vp "$alone" ping -c 1 --method dns --query www.lab.test 198.18.0.1 >"$WORK/bad.out" 2>&1
rc=$?
check "a broken module: exit 1 (got $rc)" test "$rc" -eq 1
check "a broken module: the message says it cannot be loaded" grep -q "cannot load .*outpost-tins.so" "$WORK/bad.out"

finish
