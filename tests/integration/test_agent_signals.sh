#!/usr/bin/env bash
# Signals during a slow start: outpost run installs its signal handling
# before it loads the config and looks names up, so a SIGHUP or SIGTERM that
# comes while the start blocks (here: host names behind a name server that
# never answers) is handled once the agent runs: SIGHUP reloads, SIGTERM
# stops it with exit 0, instead of killing the process (exit 129 or 143).
# Exit 77 (skip) when not root.
# ctest: parallel
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init sig
lab_up --hosts 1

# The vp's name server (127.0.0.1:53) takes queries and never answers: each
# lookup waits 3 s.
printf 'nameserver 127.0.0.1\noptions timeout:3 attempts:1\n' >"$LIB_RESOLV_DIR/resolv.conf"
"$NETLAB" exec vp "$PY" -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
time.sleep(120)' &
LIB_PIDS+=("$!")
sleep 0.3

cfg=$WORK/signals.yaml
printf '%s\n' \
  'agent: { id: itest-signals }' \
  'defaults: { interval: 500ms, timeout: 300ms }' \
  'groups:' \
  '  - name: named' \
  '    targets:' \
  '      - { name: slow1, host: slow1.lab.test }' \
  '      - { name: slow2, host: slow2.lab.test }' \
  '  - name: nets' \
  '    targets:' \
  '      - { name: net1-h1, address: 198.18.0.1 }' >"$cfg"

for sig in HUP TERM; do
  out=$WORK/out-$sig.jsonl
  log=$WORK/agent-$sig.log
  # netlab exec execs: $! is outpost itself.
  "$NETLAB" exec vp "$OUTPOST" run -c "$cfg" --for 20s --output "$out" 2>"$log" &
  pid=$!
  LIB_PIDS+=("$pid")
  # The signal goes to outpost once it holds SIGHUP and SIGTERM blocked for
  # its loop (netlab's own script may not have exec'd it yet on a busy
  # machine: a SIGTERM then kills the script, which says nothing of outpost).
  for ((i = 0; i < 100; i++)); do
    blk=$(awk '/^SigBlk:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
    [[ -n $blk ]] && (((16#$blk & 16#4001) == 16#4001)) && break
    sleep 0.05
  done
  sleep 0.5  # inside the 3 s lookups
  check "SIG$sig: still starting (no 'running' in the log yet)" bash -c "! grep -q 'running' '$log'"
  kill "-$sig" "$pid"
  if [[ $sig == HUP ]]; then
    sleep 5
    check "SIGHUP during the start did not kill it" kill -0 "$pid"
    check "SIGHUP during the start: the config was reloaded once running" grep -q 'reloaded' "$log"
    kill -TERM "$pid"
  fi
  wait_pid "$pid" 15
  rc=$?
  check "SIG$sig during the start: outpost exits 0 (got $rc)" test "$rc" -eq 0
  check "SIG$sig during the start: it stopped and said so" grep -q 'stopped:' "$log"
  if ((rc != 0)); then show_log "$log"; fi
done

finish
