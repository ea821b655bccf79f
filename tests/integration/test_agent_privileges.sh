#!/usr/bin/env bash
# A privileged agent that leaves root. Started as root with `agent.user:
# nobody`, once its raw sockets and capture are open the agent runs as uid
# 65534 (real, effective, saved and file system), gid 65534, with CAP_NET_RAW
# alone (CapEff 0000000000002000) and no_new_privs, and still probes; the
# missing agent.state_dir was made for it. Its config is mode 0640
# root:nogroup, so reloads read it as nobody:
#   - SIGHUP with an invalid file keeps the old config and logs FILE:LINE:COL;
#   - SIGHUP with a file nobody cannot read (0600) keeps the old config and
#     says why (Permission denied, running as user nobody);
#   - SIGHUP with a valid file adds and removes targets and opens a new
#     output file as nobody; a kept target that is down stays down (one
#     target_down, not reported again).
# A failed drop is fatal and names the step: started without CAP_SETUID (or
# CAP_SETGID) in its bounding set, it exits 2 naming setuid (setgroups)
# before any probe. Started as nobody with CAP_NET_RAW (as systemd's
# AmbientCapabilities gives it), it only drops the rest; as nobody,
# `outpost ping` refuses an interval below 10 ms.
# Exit 77 (skip) when not root.
# ctest: parallel
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init priv
lib_need_tools setpriv stat
if ! getent passwd nobody >/dev/null || ! getent group nogroup >/dev/null; then
  echo "SKIP: needs user nobody and group nogroup"
  exit 77
fi
lab_up --hosts 2

# nobody reaches the work dir, reads the config through its group, writes
# outputs in out/; state/ is left to the agent to create.
chmod 0755 "$WORK"
ETC=$WORK/etc OUTD=$WORK/out STATE=$WORK/state
mkdir -m 0750 "$ETC" && chgrp nogroup "$ETC"
mkdir -m 0755 "$OUTD" && chown nobody:nogroup "$OUTD"
CFG=$ETC/agent.yaml
LOG=$WORK/agent.log
OUT=$OUTD/out.jsonl

# write_config TARGET-LINES [EXTRA]: the config, 0640 root:nogroup.
write_config() {
  local tmp=$ETC/.next.yaml
  cat >"$tmp" <<YAML
agent: { id: itest-privileges, max_pps: 200, user: nobody, state_dir: $STATE }
defaults: { interval: 500ms, timeout: 300ms, probes: [icmp] }
asn_table: $OUTPOST_SOURCE_DIR/tests/fixtures/netlab-pfx2as.txt
groups:
  - name: lab
    targets:
$1
  - name: control
    control: true
    targets:
      - { name: anchor1, address: 198.18.100.1 }
      - { name: anchor2, address: 198.18.100.2 }
detect: { down_after: 3, up_after: 2, suspect_interval: 250ms }
traceroute: { timeout: 300ms, max_ttl: 8 }
report:
  window: 10s
${2:-}
YAML
  chgrp nogroup "$tmp" && chmod 0640 "$tmp" && mv "$tmp" "$CFG"
}

# wait_for SECONDS CMD...: polls CMD every 0.2 s.
wait_for() {
  local limit=$1 try
  shift
  for ((try = 0; try < limit * 5; try++)); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}

targets_v1='      - { name: net1-h1, address: 198.18.0.1 }
      - { name: net2-h1, address: 198.18.1.1 }
      - { name: net3-h1, address: 198.18.2.1 }'
write_config "$targets_v1"
check "outpost check accepts it, as user nobody" quiet "$OUTPOST" check -c "$CFG"

start_agent_or_exit "$CFG" "$OUT" "$LOG" --for 60s
status=$(cat "/proc/$AGENT_PID/status")
field() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' <<<"$status"; }
echo "  /proc/$AGENT_PID/status: Uid $(field Uid) | Gid $(field Gid) | Groups $(field Groups) | CapEff $(field CapEff) | CapPrm $(field CapPrm) | CapBnd $(field CapBnd) | NoNewPrivs $(field NoNewPrivs)"
check "Uid: 65534 real, effective, saved and fs" test "$(field Uid)" = "65534 65534 65534 65534"
check "Gid: 65534 in all four" test "$(field Gid)" = "65534 65534 65534 65534"
check "Groups: only 65534" test "$(field Groups | tr -d ' \t')" = "65534"
check "CapEff 0000000000002000 (CAP_NET_RAW alone)" test "$(field CapEff)" = 0000000000002000
check "CapPrm 0000000000002000" test "$(field CapPrm)" = 0000000000002000
check "CapBnd 0000000000002000" test "$(field CapBnd)" = 0000000000002000
check "CapInh and CapAmb empty" test "$(field CapInh)$(field CapAmb)" = 00000000000000000000000000000000
check "NoNewPrivs 1" test "$(field NoNewPrivs)" = 1
check "the log says whom it switched to" grep -q "switched to user nobody (uid 65534), group nogroup" "$LOG"
check "agent.state_dir was created for nobody, mode 0750" test "$(stat -c '%U:%G %a' "$STATE")" = "nobody:nogroup 750"

# net2-h1 goes down and stays down to the end.
netlab hostdown net2
t_down=$(now_utc)
down_seen() { grep '"target_down"' "$OUT" 2>/dev/null | grep -q '"net2-h1"'; }
check "target_down for net2-h1 within 20 s" wait_for 20 down_seen

# An invalid file: refused with FILE:LINE:COL, the old config goes on.
sed -i 's/max_pps: 200/max_pps: fast/' "$CFG"
kill -HUP "$AGENT_PID"
t_invalid=$(now_utc)
check "invalid config: 'reload refused: FILE:LINE:COL: ...' logged" \
  wait_for 5 grep -qE "reload refused: $CFG:[0-9]+:[0-9]+: agent.max_pps: " "$LOG"
grep -E "reload refused: $CFG:" "$LOG" | sed 's/^/  | /'

# A file nobody cannot read: refused, saying why.
write_config "$targets_v1"
chmod 0600 "$CFG"
kill -HUP "$AGENT_PID"
check "unreadable config: refused, saying why" wait_for 5 grep -q \
  "reload refused: cannot read $CFG: Permission denied (running as user nobody, uid 65534); keeping the old config" "$LOG"
grep "reload refused: cannot read" "$LOG" | sed 's/^/  | /'
check "the agent is still running" kill -0 "$AGENT_PID"
sleep 1.5

# A valid file: net3-h1 goes, net1-h2 comes, and a second output file is
# opened (as nobody) beside --output.
write_config '      - { name: net1-h1, address: 198.18.0.1 }
      - { name: net2-h1, address: 198.18.1.1 }
      - { name: net1-h2, address: 198.18.0.2 }' "  outputs:
    - file: $OUTD/second.jsonl"
kill -HUP "$AGENT_PID"
t_reload=$(now_utc)
check "valid config: reloaded" wait_for 5 grep -q "reloaded $CFG" "$LOG"
sleep 5
kill -TERM "$AGENT_PID"
wait_pid "$AGENT_PID" 20
rc=$?
check "the agent stopped with exit 0 (got $rc)" test "$rc" -eq 0
check "the second output file belongs to nobody" test "$(stat -c %U "$OUTD/second.jsonl" 2>/dev/null)" = nobody
if ((failures)); then show_log "$LOG"; fi

py_checks "$OUT" "$OUTD/second.jsonl" "$t_down" "$t_invalid" "$t_reload" <<'PY'
out, second = sys.argv[1], sys.argv[2]
t_down, t_invalid, t_reload = (parse_time(t) for t in sys.argv[3:6])
records, bad = load_records(out)
check("every line is JSON", not bad, bad)
probes = by_target(records)
check("as nobody it still probes: net1-h1 replies", sum(r["status"] == "reply" for r in probes.get("net1-h1", [])) >= 10,
      statuses(probes.get("net1-h1", [])))
events = [r for r in records if r.get("type") == "event" and r.get("target") == "net2-h1"]
kinds = [e["kind"] for e in events]
print(f"  net2-h1 events: {kinds}")
check("net2-h1: exactly one target_down across the reloads (its state kept)", kinds.count("target_down") == 1, kinds)
check("net2-h1: no target_up (it stayed down)", "target_up" not in kinds, kinds)
net3 = [parse_time(r["time"]) for r in probes.get("net3-h1", [])]
check("net3-h1 still probed between the refused reloads and the valid one (old config kept)",
      any(t_invalid + 0.5 < t < t_reload for t in net3))
check("net3-h1 no longer probed a second after the reload", not [t for t in net3 if t > t_reload + 1], len(net3))
new = [r for r in probes.get("net1-h2", [])]
check("net1-h2 probed after the reload, with replies", sum(r["status"] == "reply" for r in new) >= 4 and
      all(parse_time(r["time"]) > t_reload - 0.5 for r in new), statuses(new))
second_records, bad2 = load_records(second)
check("the output opened by the reload got records", len(second_records) >= 10 and not bad2, len(second_records))
PY

# A state_dir left to root (say, by a run before agent.user was set):
# check refuses it, naming it, and so does run, right after the drop.
chown root:root "$STATE"
chmod 0755 "$STATE"
"$OUTPOST" check -c "$CFG" >"$WORK/check-state.out" 2>&1
rc=$?
sed 's/^/  | /' "$WORK/check-state.out"
check "check: a root-owned state_dir is refused (exit 1, got $rc)" \
  eval '[[ $rc -eq 1 ]] && grep -qE "^$CFG:1:[0-9]+: agent.state_dir: $STATE: not readable, writable and searchable by nobody" "$WORK/check-state.out"'
in_vp timeout -k 5 30 "$OUTPOST" run -c "$CFG" --for 5s --output "$OUTD/state.jsonl" >"$WORK/run-state.log" 2>&1
rc=$?
grep "state_dir" "$WORK/run-state.log" | sed 's/^/  | /'
check "run: a root-owned state_dir stops it after the drop (exit 1, got $rc)" \
  eval '[[ $rc -eq 1 ]] && grep -q "agent.state_dir $STATE: Permission denied (running as user nobody, uid 65534)" "$WORK/run-state.log"'
chown nobody:nogroup "$STATE"

# A failed drop is fatal, names the step, and nothing is probed: without
# CAP_SETUID the switch fails at setuid, without CAP_SETGID at setgroups.
for cap in setuid setgid; do
  step=$([[ $cap == setuid ]] && echo setuid || echo setgroups)
  fail_out=$OUTD/fail-$cap.jsonl
  in_vp setpriv --inh-caps=-$cap --bounding-set=-$cap -- \
    timeout -k 5 30 "$OUTPOST" run -c "$CFG" --for 5s --output "$fail_out" >"$WORK/fail-$cap.log" 2>&1
  rc=$?
  sed 's/^/  | /' "$WORK/fail-$cap.log"
  check "no CAP_${cap^^}: exit 2 (got $rc)" test "$rc" -eq 2
  check "no CAP_${cap^^}: the error names the step ($step)" \
    grep -q "dropping privileges to user nobody (uid 65534): $step: Operation not permitted" "$WORK/fail-$cap.log"
  check "no CAP_${cap^^}: no record written" test ! -s "$fail_out"
done

# Started as nobody with CAP_NET_RAW (systemd's User= and AmbientCapabilities=):
# nothing to switch, the rest is dropped, it probes.
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+net_raw --ambient-caps=+net_raw --)
write_config '      - { name: net1-h1, address: 198.18.0.1 }'
in_vp "${as_nobody[@]}" "$OUTPOST" run -c "$CFG" --for 2s --output "$OUTD/ambient.jsonl" 2>"$WORK/ambient.log"
rc=$?
check "as nobody with ambient CAP_NET_RAW: exit 0 (got $rc)" test "$rc" -eq 0
check "as nobody with ambient CAP_NET_RAW: replies recorded" grep -q '"status":"reply"' "$OUTD/ambient.jsonl"
if ((rc != 0)); then show_log "$WORK/ambient.log"; fi

# As nobody, ping refuses a flood's interval; 10 ms is allowed.
in_vp "${as_nobody[@]}" "$OUTPOST" ping 198.18.0.1 -c 2 -i 5ms >"$WORK/ping5.out" 2>&1
rc=$?
check "ping -i 5ms as nobody: refused, exit 64 (got $rc)" \
  eval '[[ $rc -eq 64 ]] && grep -q "below 10ms only root may ping" "$WORK/ping5.out"'
in_vp "${as_nobody[@]}" "$OUTPOST" ping 198.18.0.1 -c 2 -i 10ms >"$WORK/ping10.out" 2>&1
check "ping -i 10ms as nobody: answered" test $? -eq 0

finish
