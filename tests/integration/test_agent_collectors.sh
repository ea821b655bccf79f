#!/usr/bin/env bash
# The agent's pushes end to end, against real collectors in the vp namespace
# (its own loopback): one run with every collector output at once beside the
# file output — influx: to InfluxDB 1.x and to VictoriaMetrics /write,
# prometheus_remote_write: to Prometheus and to VictoriaMetrics
# /api/v1/write, nats: to nats-server (JetStream) — through an outage of
# every collector (20 s, then the same servers on the same data), in the
# middle of which the agent is killed with SIGKILL (its spools holding the
# backlog) and restarted on the same state_dir and file. Expected:
#   - the second run finds and sends what the first one spooled;
#   - every series window of the file is in every store with equal values
#     (sent, received, loss, rtt_*), none twice; NATS: every record of the
#     file in the stream, no record twice, no Nats-Msg-Id twice;
#   - a target down the whole time (behind an unreachable router) is
#     reported once over both runs: one target_down, no event twice;
#   - the outage is logged (`output NAME: send failed`) and nothing is left
#     pending at the graceful stop (the exit stats line of each output).
# The readers (collector_read.py) are first proven against each server with
# data the test writes itself. Prints a summary per store. ~60 s.
# Exit 77 (skip) when not root or a collector is not installed.
# ctest: parallel
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/collectors_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/collectors_lib.sh"
lib_init col
lib_need_tools victoria-metrics prometheus influxd nats-server curl
lab_up --hosts 1
netlab serve web || { echo "FAIL: netlab serve web"; exit 1; }
# net4 is dark the whole time: the border answers host-unreachable for it.
netlab unreachable border 198.18.3.0/24 || { echo "FAIL: netlab unreachable border"; exit 1; }

COLLECTORS_EXEC=("$NETLAB" exec vp)
STORES=(vm prom influx nats)
for s in "${STORES[@]}"; do
  collector_start "$s" "$s" || { echo "FAIL: collector $s did not start"; exit 1; }
done
VM=$(collector_url vm) PROM=$(collector_url prom) INFLUX=$(collector_url influx) NATS=$(collector_url nats)
echo "  collectors in the vp: vm $VM, prom $PROM, influx $INFLUX, nats $NATS"
read_store() { collector_exec "$PY" "$COLLECTOR_READ" "$@"; }

# The readers against each server, with windows the test writes itself.
check "reader proven against VictoriaMetrics" read_store prove vm "$VM"
check "reader proven against Prometheus" read_store prove prom "$PROM"
check "reader proven against InfluxDB" read_store prove influx "$INFLUX" readerproof
check "reader proven against nats-server" read_store prove nats "$NATS" READERPROOF
check "InfluxDB: database outpost created" \
  collector_exec curl -sf -XPOST "$INFLUX/query" --data-urlencode 'q=CREATE DATABASE "outpost"' -o /dev/null

STATE=$WORK/state
OUT=$WORK/results.jsonl
CFG=$WORK/collectors.yaml
# Batches close within 200 ms of their first record, and reach the spool
# then; the file's lines are written every second. A SIGKILL loses the
# batches still open: records of the last moments before it, which the file
# may hold (a record can come 200 ms before the file's write, and its batch
# close after it). The compares below list those apart: records and windows
# absent from a store whose time lies within 4 s before the kill (a 2 s
# window, written at its end, in a batch open 200 ms, and a slack).
opts="batch_age: 200ms, timeout: 2s, retry_min: 500ms, retry_max: 2s"
cat >"$CFG" <<EOF
agent: { id: itest-collectors, max_pps: 100, state_dir: $STATE }
defaults: { interval: 1s, timeout: 500ms, probes: [icmp, tcp:80] }
detect: { down_after: 3, up_after: 2, suspect_interval: 1s }
traceroute: { timeout: 300ms }
groups:
  - name: lab
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
  - name: dark
    targets:
      - { name: net4-h1, address: 198.18.3.1, probes: [icmp] }
report:
  window: 2s
  outputs:
    - file: $OUT
    - { influx: "$INFLUX/write?db=outpost", name: influx, $opts }
    - { influx: "$VM/write", name: vm_influx, gzip: true, $opts }
    - { prometheus_remote_write: "$PROM/api/v1/write", name: prom, $opts }
    - { prometheus_remote_write: "$VM/api/v1/write", name: vm_rw, $opts }
    - { nats: "$NATS", stream: OUTPOST, subject: outpost, name: js, $opts }
EOF
OUTPUTS=(influx vm_influx prom vm_rw js)
check "outpost check accepts the config" quiet "$OUTPOST" check -c "$CFG"

# agent_start LOG: outpost run in the vp with no --for (AGENT_PID); from the
# work dir, so that a relative path it might make stays inside it.
agent_start() {
  local log=$1
  (cd "$WORK" && exec "$NETLAB" exec vp "$OUTPOST" run -c "$CFG" 2>"$log") &
  AGENT_PID=$!
  LIB_PIDS+=("$AGENT_PID")
  wait_started "$AGENT_PID" "$log" running && return 0
  echo "FAIL: the agent did not start"
  show_log "$log"
  exit 1
}
stamp() { echo "  $(date -u +%T.%N | cut -c1-12) $*"; }

LOG1=$WORK/agent-1.log
LOG2=$WORK/agent-2.log
agent_start "$LOG1"
stamp "agent started (run 1, pid $AGENT_PID)"
sleep 6
# Every collector stops for 20 s; 10 s into it the agent is killed with
# SIGKILL, so its spools hold the outage's backlog, and restarted on the
# same state_dir: the second run must send what the first one spooled.
stamp "every collector stops"
for s in "${STORES[@]}"; do kill -TERM "${COLL_PID[$s]}" 2>/dev/null; done
for s in "${STORES[@]}"; do collector_stop "$s"; done
sleep 10
check "run 1 still running before its SIGKILL" kill -0 "$AGENT_PID"
KILLED_AT=$(date +%s.%N)
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
forget_pid "$AGENT_PID"
stamp "agent killed (SIGKILL) with the collectors away; restarted on the same state_dir and file"
agent_start "$LOG2"
sleep 10
for s in "${STORES[@]}"; do collector_launch "$s" --no-wait; done
for s in "${STORES[@]}"; do collector_ready_or_say "$s" || { echo "FAIL: collector $s did not come back"; exit 1; }; done
stamp "every collector is back"
sleep 10
kill -TERM "$AGENT_PID"
wait_pid "$AGENT_PID" 60
rc=$?
stamp "agent stopped (SIGTERM): exit $rc"
check "run 2 exits 0 after SIGTERM (got $rc)" test "$rc" -eq 0
if ((rc != 0)); then show_log "$LOG2" | tail -n 20; fi

# What run 1 spooled was found by run 2.
for o in "${OUTPUTS[@]}"; do
  check "run 2 found run 1's spooled batches for output $o" grep -qE "output $o: [0-9]+ batches .* from an earlier run wait in the spool" "$LOG2"
done
# The outage is logged for every output, and not at every retry (one line
# per output per 30 s; each run fails for about 10 s).
for o in "${OUTPUTS[@]}"; do
  n1=$(grep -c "output $o: send failed" "$LOG1")
  n2=$(grep -c "output $o: send failed" "$LOG2")
  check "the outage is logged once per run for output $o (run 1: $n1, run 2: $n2)" test "$n1" -eq 1 -a "$n2" -eq 1
done
# Nothing left undelivered at the graceful stop.
for o in "${OUTPUTS[@]}"; do
  line=$(grep -E "^.*output $o: delivered=" "$LOG2" | tail -n 1)
  echo "  exit stats: ${line:-none for $o}"
  check "run 2's exit stats for $o: pending=0 rejected=0 evicted_records=0" \
    bash -c "grep -qE 'pending=0 ' <<<'$line' && grep -qE 'rejected=0 ' <<<'$line' && grep -qE 'evicted_records=0 ' <<<'$line'"
done

py_checks "$OUT" <<'EOF'
records, bad = load_records(sys.argv[1])
series = [r for r in records if r.get("type") == "series"]
check("every line of the file is a JSON object (also across the SIGKILL)", not bad, f"bad lines {bad[:5]}")
check("the file holds series windows", len(series) >= 10, len(series))
events = [r for r in records if r.get("type") == "event"]
for e in events:
    print(f"  event: {e.get('time')} {e.get('kind')} {e.get('target') or e.get('group')} start={e.get('start')}")
down = [e for e in events if e.get("kind") == "target_down" and e.get("target") == "net4-h1"]
check("one target_down for the dark target over both runs", len(down) == 1, len(down))
gdown = [e for e in events if e.get("kind") == "group_down" and e.get("group") == "dark"]
check("at most one group_down for its group over both runs", len(gdown) <= 1, len(gdown))
keys = [(e.get("kind"), e.get("target"), e.get("group"), e.get("start")) for e in events]
check("no event twice", len(keys) == len(set(keys)), sorted(k for k in set(keys) if keys.count(k) > 1)[:3])
check("no target_up for the dark target", not any(e.get("kind") == "target_up" and e.get("target") == "net4-h1"
                                                   for e in events))
EOF

echo "  --- per store: every series window of the file, once, with equal values"
crash=(--crash-at "$KILLED_AT" --crash-open 4)
check "InfluxDB holds every window" read_store compare "$OUT" influx "$INFLUX" outpost "${crash[@]}"
check "VictoriaMetrics (influx /write) holds every window" read_store compare "$OUT" vm "$VM" --names influx "${crash[@]}"
check "VictoriaMetrics (remote write) holds every window" read_store compare "$OUT" vm "$VM" --names remote-write "${crash[@]}"
check "Prometheus holds every window" read_store compare "$OUT" prom "$PROM" "${crash[@]}"
check "NATS holds every window and every record, none twice" read_store compare "$OUT" nats "$NATS" OUTPOST "${crash[@]}"

if ((failures)); then
  echo "  --- run 1 log (end)"; tail -n 15 "$LOG1" | sed 's/^/  | /'
  echo "  --- run 2 log (end)"; tail -n 15 "$LOG2" | sed 's/^/  | /'
fi
# OUTPOST_SAVE=DIR keeps the file, the logs and the config.
if [[ -n ${OUTPOST_SAVE:-} ]]; then mkdir -p "$OUTPOST_SAVE" && cp "$OUT" "$LOG1" "$LOG2" "$CFG" "$OUTPOST_SAVE/"; fi
finish
