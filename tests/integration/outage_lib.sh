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
#   timed_fault NAME NETLAB-ARGS...
#                         # the same; NAME_0 and NAME_1 are the wall clock just
#                         # before and just after it: the fault took effect in
#                         # between (on a busy machine, that may be a second)
#   now                   # the wall clock, seconds with microseconds
#   pause SECONDS         # a sleep that INT/TERM interrupt at once
#   outage_wait           # waits for the agent; checks it exits 0
#   Python (py_checks): records, events = outage_events(path, t_fault)
#                         outage_timing(what, down, up, fault, heal, interval)
#                         # the timing checks of one outage's events against
#                         # the (before, after) pairs of timed_fault

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

now() { echo "${EPOCHREALTIME/,/.}"; }

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

timed_fault() {
  local name=$1
  shift
  printf -v "${name}_0" %s "$(now)"
  fault "$@"
  printf -v "${name}_1" %s "$(now)"
}

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
def outage_timing(what, down, up, fault, heal, interval, timeout=0.5):
    """Checks the down event (detected within 10 s, start within one interval
    of the fault) and the up event (within 10 s of the heal, duration_s within
    one interval of the true outage). fault and heal are the timed_fault
    (before, after) pairs: the change took effect somewhere in between."""
    (f0, f1), (h0, h1) = fault, heal
    delay = parse_time(down["time"]) - f1
    start = parse_time(down["start"]) if "start" in down else None
    print(f"  {what}: detected {delay:.3f} s after the fault (which took {f1 - f0:.3f} s to apply)")
    if start is not None:
        print(f"  {what}: start {start - f0:+.3f} s from the fault")
    check(f"{what}: detected within 10 s of the fault",
          f0 < parse_time(down["time"]) and delay <= 10, f"{delay:.3f} s")
    # The first probe after the fault fails: start is within one interval of
    # it (and a probe sent before the fault cannot fail by more than a timeout).
    check(f"{what}: start within one probe interval of the fault (-timeout <= error <= interval)",
          start is not None and f0 - timeout <= start <= f1 + interval + 0.1,
          f"{start - f0:+.3f} s" if start is not None else "no start")
    if up is None:
        return
    dur = up.get("duration_s")
    up_delay = parse_time(up["time"]) - h1
    lo, hi = h0 - f1, h1 - f0
    end_s = parse_time(up["end"]) - h0 if "end" in up else None
    end_text = f"end {end_s:+.3f} s from it" if end_s is not None else "no end"
    print(f"  {what}: up {up_delay:+.3f} s after the heal (which took {h1 - h0:.3f} s to apply); {end_text}")
    if isinstance(dur, (int, float)):
        print(f"  {what}: duration_s {dur:.3f} s vs true {lo:.3f}..{hi:.3f} s (interval {interval} s)")
    check(f"{what}: duration_s within one probe interval of the true outage",
          isinstance(dur, (int, float)) and lo - interval <= dur <= hi + interval, f"{dur} vs {lo:.3f}..{hi:.3f}")
    check(f"{what}: duration_s == end - start",
          isinstance(dur, (int, float)) and "end" in up and "start" in up
          and abs(dur - (parse_time(up["end"]) - parse_time(up["start"]))) < 0.01)
    check(f"{what}: up within 10 s of the heal", h0 < parse_time(up["time"]) and up_delay <= 10, f"{up_delay:.3f} s")
'
