#!/usr/bin/env bash
# The /metrics endpoint scraped by a real Prometheus (Debian's, started here
# in the vp namespace on its loopback, scrape_interval 1s) and checked
# against the records the agent wrote. The agent probes four lab targets
# for 14 s: web (icmp, tcp:80: answered), closed (tcp:81: refused), dns
# (big.lab.test: 40 answers, 8 past what a record keeps) and gone (its host
# drops all input: timeouts, then down). One SIGHUP with a broken config
# and one with the good one. Besides the file, an http output to a port
# where nothing listens: its batches fail and stay in the spool, so the
# stopping agent waits its 5 s for the outputs, serving the final counts
# (taken after the last record and the final flush) to several scrapes.
# Expected, from the last sample Prometheus kept of each series:
#   - per method: probes sent, answered, unreachable, timeouts and errors
#     equal the probe records of that method by status; records total, and
#     the file output's pushed records, equal the records in the file; DNS
#     answers dropped equal the records' answers_dropped;
#   - targets down 1 (gone), groups down 0, vantage down 0;
#   - spoofed 0; reloads 2, of which 1 refused;
#   - the dead output: push failures > 0, spool bytes > 0, records queued;
#   - build info 1 with the version; the agent exits 0.
# Then a second agent whose agent.metrics port is taken exits 1 naming it.
# Exit 77 (skip) when not root or prometheus is not installed. ~40 s.
# ctest: parallel
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/collectors_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/collectors_lib.sh"
lib_init met
lib_need_tools prometheus curl
lab_up --hosts 1
netlab serve web || { echo "FAIL: netlab serve web"; exit 1; }
netlab serve dns || { echo "FAIL: netlab serve dns"; exit 1; }
netlab hostdown net4 || { echo "FAIL: netlab hostdown net4"; exit 1; }

# Three distinct free ports on the vp's loopback: the agent's /metrics,
# Prometheus, and one where nothing listens (the dead output).
COLLECTORS_EXEC=("$NETLAB" exec vp)
ports=()
for ((try = 0; try < 20 && ${#ports[@]} < 3; try++)); do
  p=$(collector_free_port) || continue
  [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
done
((${#ports[@]} == 3)) || { echo "FAIL: no three free ports"; exit 1; }
MPORT=${ports[0]} PPORT=${ports[1]} DEAD=${ports[2]}

# Prometheus, scraping the agent every second (its own config, so not collector_start).
PROM_DIR=$WORK/prometheus
mkdir -p "$PROM_DIR"
cat >"$PROM_DIR/prometheus.yml" <<EOF
global: { scrape_interval: 1s, scrape_timeout: 900ms }
scrape_configs:
  - job_name: outpost
    static_configs: [{ targets: ["127.0.0.1:$MPORT"] }]
EOF
in_vp prometheus --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
  --web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$PROM_DIR/server.log" 2>&1 &
PROM_PID=$!
LIB_PIDS+=("$PROM_PID")
ready=0
for ((try = 0; try < 300; try++)); do
  kill -0 "$PROM_PID" 2>/dev/null || break
  if in_vp curl -sf "http://127.0.0.1:$PPORT/-/ready" -o /dev/null; then ready=1; break; fi
  sleep 0.2
done
if ((!ready)); then
  echo "FAIL: prometheus did not get ready; its log:"
  tail -n 20 "$PROM_DIR/server.log" | sed 's/^/  | /'
  exit 1
fi
echo "  prometheus in the vp on 127.0.0.1:$PPORT scrapes 127.0.0.1:$MPORT/metrics every 1 s"

OUT=$WORK/results.jsonl
LOG=$WORK/agent.log
CFG=$WORK/metrics.yaml
cat >"$CFG" <<EOF
agent: { id: itest-metrics, max_pps: 200, state_dir: $WORK/state, metrics: "127.0.0.1:$MPORT" }
defaults: { interval: 1s, timeout: 500ms, probes: [icmp] }
detect: { down_after: 3, up_after: 2, suspect_interval: 1s }
traceroute: { timeout: 300ms }
groups:
  - name: lab
    targets:
      - { name: web, address: 198.18.0.1, probes: [icmp, tcp:80] }
      - { name: closed, address: 198.18.1.1, probes: [tcp:81] }
      - { name: dns, address: 198.18.2.1, probes: [dns], dns: { query: big.lab.test } }
      - { name: gone, address: 198.18.3.1 }
report:
  window: 5s
  outputs:
    - { http: "http://127.0.0.1:$DEAD/ingest", name: dead, timeout: 1s, batch_age: 200ms, retry_min: 500ms, retry_max: 1s }
EOF
check "outpost check accepts the config" quiet "$OUTPOST" check -c "$CFG"
cp "$CFG" "$CFG.good"

start_agent_or_exit "$CFG" "$OUT" "$LOG" --for 14s
echo "  $(date -u +%T.%N | cut -c1-12) agent $AGENT_PID running for 14 s"
sleep 5
echo "agent: [" >"$CFG"  # broken: the reload is refused
kill -HUP "$AGENT_PID"
sleep 1
cp "$CFG.good" "$CFG"
kill -HUP "$AGENT_PID"
wait_pid "$AGENT_PID" 40
rc=$?
forget_pid "$AGENT_PID"
echo "  $(date -u +%T.%N | cut -c1-12) agent exited $rc"
check "the agent exits 0" test "$rc" -eq 0
check "the agent logged where /metrics is served" grep -q "metrics: serving http://127.0.0.1:$MPORT/metrics" "$LOG"
check "the agent waited for the dead output (the final counts were served meanwhile)" \
  grep -q "waiting up to 5s for the outputs" "$LOG"
sleep 1.5  # the last scrapes land in the head block

# The last sample of each series (range selectors skip the staleness markers
# written once the target went away), and how many scrapes succeeded.
in_vp "$PY" - "$PPORT" "$WORK/prom.json" <<'EOF'
import json, sys, urllib.parse, urllib.request
port, path = sys.argv[1], sys.argv[2]
exprs = {
    "last": 'last_over_time({__name__=~"outpost_.+", job="outpost"}[5m])',
    "scrapes": 'count_over_time(up{job="outpost"}[5m])',
    "up": 'sum_over_time(up{job="outpost"}[5m])',
}
out = {}
for key, expr in exprs.items():
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    out[key] = [{"metric": s["metric"], "value": float(s["value"][1])} for s in body["data"]["result"]]
json.dump(out, open(path, "w"))
EOF
check "Prometheus answered the queries" test -s "$WORK/prom.json"

py_checks "$OUT" "$WORK/prom.json" <<'EOF'
out_path, prom_path = sys.argv[1], sys.argv[2]
records, bad = load_records(out_path)
check("every line of the file is a JSON object", records and not bad, f"{len(records)} records, bad {bad[:5]}")
prom = json.load(open(prom_path))
def series(name, **labels):
    return [s for s in prom["last"] if s["metric"].get("__name__") == name
            and all(s["metric"].get(k) == v for k, v in labels.items())]
def last(name, **labels):
    found = series(name, **labels)
    return found[0]["value"] if len(found) == 1 else None
scrapes = sum(s["value"] for s in prom["scrapes"])
up = sum(s["value"] for s in prom["up"])
print(f"  scrapes of the agent: {up:.0f} successful of {scrapes:.0f}; {len(prom['last'])} outpost_ series")
check("Prometheus scraped the agent successfully at least 10 times", up >= 10, up)

probes = [r for r in records if r.get("type") == "probe"]
methods = sorted({r.get("method") for r in probes})
check("probe records of icmp, tcp and dns", methods == ["dns", "icmp", "tcp"], methods)
for m in methods:
    st = statuses([r for r in probes if r.get("method") == m])
    want = {
        "outpost_probes_sent_total": sum(v for k, v in st.items() if k != "error"),
        "outpost_probes_answered_total": st.get("reply", 0) + st.get("refused", 0),
        "outpost_probes_unreachable_total": st.get("unreachable", 0),
        "outpost_probe_timeouts_total": st.get("timeout", 0),
        "outpost_probe_errors_total": st.get("error", 0),
    }
    got = {name: last(name, method=m) for name in want}
    print(f"  {m}: records by status {st}; metrics {got}")
    check(f"{m}: sent, answered, unreachable, timeouts and errors equal the records", got == want,
          f"metrics {got} records {want}")
st_all = statuses(probes)
check("the lab gave replies, refusals and timeouts",
      st_all.get("reply", 0) > 0 and st_all.get("refused", 0) > 0 and st_all.get("timeout", 0) > 0, st_all)
dropped = sum(r.get("answers_dropped", 0) for r in probes if r.get("method") == "dns")
check("DNS answers dropped equal the records' answers_dropped (8 a query)",
      dropped > 0 and last("outpost_dns_answers_dropped_total") == dropped,
      f"metric {last('outpost_dns_answers_dropped_total')} records {dropped}")
check("records total equals the records in the file", last("outpost_records_total") == len(records),
      f"{last('outpost_records_total')} vs {len(records)}")
check("the file output pushed every record of the file",
      last("outpost_output_pushed_records_total", output="output-option", kind="file") == len(records),
      last("outpost_output_pushed_records_total", output="output-option", kind="file"))
check("one target down (gone), as the records say",
      last("outpost_targets_down") == 1
      and any(r.get("type") == "event" and r.get("kind") == "target_down" and r.get("target") == "gone"
              for r in records), last("outpost_targets_down"))
check("targets 4, groups 1, none down, the vantage point up",
      (last("outpost_targets"), last("outpost_groups"), last("outpost_groups_down"), last("outpost_vantage_down"))
      == (4, 1, 0, 0))
check("no spoofed reply", last("outpost_replies_unmatched_total", reason="spoofed") == 0,
      last("outpost_replies_unmatched_total", reason="spoofed"))
check("two reloads, one refused",
      (last("outpost_config_reloads_total"), last("outpost_config_reload_failures_total")) == (2, 1),
      (last("outpost_config_reloads_total"), last("outpost_config_reload_failures_total")))
dead = dict(output="dead", kind="http")
check("the dead output: sends failed, nothing pushed",
      (last("outpost_output_push_failures_total", **dead) or 0) > 0
      and last("outpost_output_pushes_total", **dead) == 0,
      (last("outpost_output_push_failures_total", **dead), last("outpost_output_pushes_total", **dead)))
check("the dead output: every record it took waits in its spool, which holds bytes",
      last("outpost_output_queue_records", **dead) == last("outpost_output_records_total", **dead) == len(records)
      and (last("outpost_output_queue_batches", **dead) or 0) > 0
      and (last("outpost_output_spool_bytes", **dead) or 0) > 0,
      (last("outpost_output_queue_records", **dead), last("outpost_output_records_total", **dead),
       last("outpost_output_spool_bytes", **dead)))
check("a failure trace for the outage", (last("outpost_investigations_total") or 0) >= 1,
      last("outpost_investigations_total"))
check("packets sent at least the probes sent (trace hops come on top)",
      last("outpost_packets_sent_total") >= sum(last("outpost_probes_sent_total", method=m) for m in methods),
      last("outpost_packets_sent_total"))
info = series("outpost_build_info")
check("build info 1, with a version", len(info) == 1 and info[0]["value"] == 1 and info[0]["metric"].get("version"),
      info)
EOF

# A port already taken (Prometheus's) is a start-up error that names it.
sed "s/metrics: \"127.0.0.1:$MPORT\"/metrics: \"127.0.0.1:$PPORT\"/" "$CFG.good" >"$WORK/taken.yaml"
in_vp timeout -k 5 20 "$OUTPOST" run -c "$WORK/taken.yaml" --for 2s --output "$WORK/taken.jsonl" 2>"$WORK/taken.log"
rc=$?
check "agent.metrics on a port in use: exit 1" test "$rc" -eq 1
check "... and the error names the address" grep -q "cannot listen on 127.0.0.1:$PPORT" "$WORK/taken.log"
if ((failures)); then tail -n 30 "$LOG" | sed 's/^/  | /'; fi

kill -TERM "$PROM_PID" 2>/dev/null
wait_pid "$PROM_PID" 15 >/dev/null
forget_pid "$PROM_PID"
finish
