# Shared steps of the outage tests (tests/integration/test_outage_*.sh), on
# top of lib.sh: the lab config they probe, the agent run around one fault,
# and the Python that loads and prints the events. Source after lib.sh.
#
#   outage_config ID [INTERVAL TIMEOUT SUSPECT CONTROL_PROBES]
#                         # $WORK/lab.yaml: the four nets' first hosts in group
#                         # lab (upstream_asn 64500, probes [icmp, tcp:80]) and
#                         # two control hosts (CONTROL_PROBES, default [icmp];
#                         # "" for the defaults'); checked with outpost check
#   outage_config_ipv6    # rewrites it with the hosts' IPv6 addresses
#   outage_start DURATION # the agent in the vp for DURATION (OUT, LOG), then
#                         # 6 s of good rounds and baseline traces
#   fault NETLAB-ARGS...  # applies a netlab fault (exits on failure)
#   now                   # the wall clock, seconds with microseconds
#   pause SECONDS         # a sleep that INT/TERM interrupt at once
#   outage_wait           # waits for the agent; checks it exits 0
#   Python (py_checks): records, events = outage_events(path, t_fault)

outage_config() {
  local id=$1 interval=${2:-1s} timeout=${3:-500ms} suspect=${4:-500ms} control_probes=${5-[icmp]}
  local control_line=""
  [[ -n $control_probes ]] && control_line="    probes: $control_probes"
  CFG=$WORK/lab.yaml
  cat >"$CFG" <<YAML
agent:
  id: $id
  max_pps: 200
defaults:
  interval: $interval
  timeout: $timeout
  probes: [icmp, tcp:80]
asn_table: $OUTPOST_SOURCE_DIR/tests/fixtures/netlab-pfx2as.txt
groups:
  - name: lab
    upstream_asn: 64500
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
      - { name: net2-h1, address: 198.18.1.1 }
      - { name: net3-h1, address: 198.18.2.1 }
      - { name: net4-h1, address: 198.18.3.1 }
  - name: control
    control: true
$control_line
    targets:
      - { name: anchor1, address: 198.18.100.1 }
      - { name: anchor2, address: 198.18.100.2 }
detect:
  down_after: 3
  up_after: 2
  suspect_interval: $suspect
traceroute:
  timeout: 300ms
report:
  window: 10s
YAML
  check "outpost check accepts the config" quiet "$OUTPOST" check -c "$CFG"
}

# outage_config_ipv6: the same targets by their IPv6 addresses (netlab up --ipv6).
outage_config_ipv6() {
  sed -i -E -e 's/address: 198\.18\.([0-3])\.1 /address: "2001:2:0:\1::1" /' \
    -e 's/address: 198\.18\.100\.([12]) /address: "2001:2:0:100::\1" /' "$CFG"
  check "the config names only IPv6 targets" bash -c "! grep -q 'address: 198' '$CFG' && grep -c 'address: \"2001:2:' '$CFG' | grep -qx 6"
  check "outpost check accepts the IPv6 config" quiet "$OUTPOST" check -c "$CFG"
}

now() { "$PY" -c 'import time; print(f"{time.time():.6f}")'; }

# The EXIT trap then stops the agent and removes the lab; the sleep itself is stopped by PID.
pause() {
  sleep "$1" &
  LIB_PIDS+=("$!")
  wait "$!"
}

outage_start() {
  OUT=$WORK/out.jsonl
  LOG=$WORK/agent.log
  AGENT_FOR=$1
  start_agent_or_exit "$CFG" "$OUT" "$LOG" --for "$AGENT_FOR"
  pause 6 # good rounds and baseline traces first
}

fault() { netlab "$@" || { echo "FAIL: netlab $*"; exit 1; }; }

outage_wait() {
  local rc
  wait_pid "$AGENT_PID" 60
  rc=$?
  check "outpost run --for $AGENT_FOR exits 0 (got $rc)" test "$rc" -eq 0
  if ((rc != 0)); then show_log "$LOG"; fi
}

LIB_PY_PRELUDE+='
def outage_events(path, t_fault):
    """The records (checked to be JSON with type, agent and time) and the events, printed."""
    records, bad = load_records(path)
    check("every line is a JSON object", not bad and records, f"{len(records)} records, bad lines {bad[:5]}")
    check("every record has type, agent and an RFC 3339 UTC time",
          all(r.get("type") and r.get("agent") and TIME_RE.match(str(r.get("time", ""))) for r in records))
    events = [r for r in records if r.get("type") == "event"]
    for e in events:
        print("  event at fault%+7.3f s: %s %s start=%s end=%s duration_s=%s where=%s" % (
            parse_time(e["time"]) - t_fault, e.get("kind"), e.get("target") or e.get("group") or "",
            e.get("start"), e.get("end"), e.get("duration_s"), (e.get("verdict") or {}).get("where")))
    return records, events
'
