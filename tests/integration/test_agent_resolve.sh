#!/usr/bin/env bash
# Targets given by host name, while their names change: the vp's /etc/hosts
# (the lab's /etc/netns/VP/hosts, which `ip netns exec` mounts over it) is
# rewritten while the agent runs, with agent.resolve_interval 1s.
#   - web.lab.test moves from 198.18.0.1 to 198.18.1.1: the agent probes the
#     new address from then on, traces it at once, and says so in its log;
#   - later.lab.test does not resolve at first (error records), then does:
#     its probes answer, and it gets its baseline trace;
#   - a reload (SIGHUP) keeps the names it has resolved and looks them up
#     again off the loop: when web.lab.test moves to 198.18.3.1 just before
#     it, the probes follow within a few seconds;
#   - a failed lookup of a name that resolved keeps the last address;
#   - while later.lab.test does not resolve, its target_down says so;
#   - sink.lab.test resolves to 0.0.0.0 at first (as a filtering resolver
#     answers a blocked name): error records that say so and no probe to
#     0.0.0.0, then 198.18.0.2, which is probed.
# Exit 77 (skip) when not root.
# ctest: parallel
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init res
lab_up --hosts 4
hosts=$LIB_RESOLV_DIR/hosts
# Rewritten in place (same inode): the bind mount inside the vp sees it.
set_hosts() { printf '%s\n' "127.0.0.1 localhost" "$@" >"$hosts"; }
set_hosts "198.18.0.1 web.lab.test" "0.0.0.0 sink.lab.test"
check "the vp resolves web.lab.test from the lab's hosts file" \
  bash -c "[[ \$('$NETLAB' exec vp getent hosts web.lab.test) == 198.18.0.1* ]]"

cfg=$WORK/resolve.yaml
cat >"$cfg" <<'EOF'
agent:
  id: itest-resolve
  resolve_interval: 1s
defaults:
  interval: 250ms
  timeout: 200ms
  probes: [icmp]
detect:
  suspect_interval: 250ms
traceroute:
  timeout: 300ms
groups:
  - name: names
    targets:
      - { name: web, host: web.lab.test }
      - { name: later, host: later.lab.test }
      - { name: sink, host: sink.lab.test }
EOF
check "outpost check accepts the config" quiet "$OUTPOST" check -c "$cfg"
out=$WORK/out.jsonl
log=$WORK/agent.log
start_agent_or_exit "$cfg" "$out" "$log"
sleep 2
set_hosts "198.18.1.1 web.lab.test" "198.18.2.1 later.lab.test" "198.18.0.2 sink.lab.test"
t_move=$(now_utc)
echo "  $t_move web.lab.test -> 198.18.1.1, later.lab.test -> 198.18.2.1, sink.lab.test 0.0.0.0 -> 198.18.0.2"
sleep 3
set_hosts "198.18.3.1 web.lab.test" "198.18.2.1 later.lab.test" "198.18.0.2 sink.lab.test"
t_reload=$(now_utc)
kill -HUP "$AGENT_PID"
echo "  $t_reload web.lab.test -> 198.18.3.1, then SIGHUP"
sleep 3
set_hosts # no names at all: lookups fail, the last addresses stay
t_gone=$(now_utc)
echo "  $t_gone the names are gone from the hosts file"
sleep 2.5
kill -TERM "$AGENT_PID"
wait_pid "$AGENT_PID" 10
rc=$?
check "SIGTERM: exit 0 (got $rc)" test "$rc" -eq 0
grep -E 'resolves|looking up|reload' "$log" | sed 's/^/  | /'
check "the log says web.lab.test resolves to 198.18.1.1 now, no longer 198.18.0.1" \
  grep -q 'web.lab.test resolves to 198.18.1.1 now, no longer 198.18.0.1' "$log"
check "the log says later.lab.test resolves to 198.18.2.1 now" grep -q 'later.lab.test resolves to 198.18.2.1 now' "$log"
check "the log says a failed lookup keeps the address" grep -q 'looking up web.lab.test again failed' "$log"

py_checks "$out" "$t_move" "$t_reload" "$t_gone" <<'EOF'
records, bad = load_records(sys.argv[1])
t_move, t_reload, t_gone = (parse_time(a) for a in sys.argv[2:5])
check("every line is a JSON object", not bad and records, bad[:5])
t = by_target(records)
web, later, sink = t.get("web", []), t.get("later", []), t.get("sink", [])
def phase(rs, lo, hi):
    return [r for r in rs if lo <= parse_time(r["time"]) < hi]
def addresses(rs):
    seen = []
    for r in rs:
        if not seen or seen[-1] != r.get("address"):
            seen.append(r.get("address"))
    return seen
print(f"  web: addresses in order {addresses(web)}; later: {addresses(later)}; sink: {addresses(sink)}")
check("web: before the move, every probe to 198.18.0.1 answered",
      phase(web, 0, t_move) and all(r["address"] == "198.18.0.1" and r["status"] == "reply"
                                    for r in phase(web, 0, t_move)), statuses(phase(web, 0, t_move)))
moved = phase(web, t_move + 2.0, t_reload)
check("web: from 2 s after the move until the reload, every probe to 198.18.1.1 answered",
      moved and all(r["address"] == "198.18.1.1" and r["status"] == "reply" for r in moved), addresses(moved))
after = phase(web, t_reload + 2.0, 1e12)
check("web: from 2 s after the reload on, every probe to 198.18.3.1 answered (also once the name was gone)",
      after and all(r["address"] == "198.18.3.1" and r["status"] == "reply" for r in after), addresses(after))
check("web: the addresses in order 198.18.0.1, 198.18.1.1, 198.18.3.1",
      addresses(web) == ["198.18.0.1", "198.18.1.1", "198.18.3.1"], addresses(web))
early = phase(later, 0, t_move)
check("later: before its name existed, error records naming it",
      early and all(r["status"] == "error" and "later.lab.test" in r.get("error", "") for r in early), statuses(early))
resolved = phase(later, t_move + 2.0, 1e12)
check("later: from 2 s after its name appeared, every probe to 198.18.2.1 answered",
      resolved and all(r["address"] == "198.18.2.1" and r["status"] == "reply" for r in resolved), statuses(resolved))
sunk = phase(sink, 0, t_move)
check("sink: while it resolved to 0.0.0.0, error records that say so",
      sunk and all(r["status"] == "error" and "sink.lab.test' resolves to 0.0.0.0, the unspecified address"
                   in r.get("error", "") for r in sunk), [(r["status"], r.get("error")) for r in sunk[:3]])
check("sink: no record of any kind with address 0.0.0.0",
      not [r for r in records if r.get("address") == "0.0.0.0"], [r for r in records if r.get("address") == "0.0.0.0"][:3])
fixed = phase(sink, t_move + 2.0, 1e12)
check("sink: from 2 s after it resolved to 198.18.0.2, every probe to it answered",
      fixed and all(r["address"] == "198.18.0.2" and r["status"] == "reply" for r in fixed), statuses(fixed))
web_traces = {r.get("address") for r in records if r.get("type") == "trace" and r.get("target") == "web"
              and r.get("reason") == "baseline" and r.get("reached")}
check("web: a baseline trace that reached each of its three addresses", web_traces ==
      {"198.18.0.1", "198.18.1.1", "198.18.3.1"}, sorted(web_traces))
traces = [r for r in records if r.get("type") == "trace" and r.get("target") == "later"]
check("later: a baseline trace once it resolved, reaching 198.18.2.1",
      any(r.get("reason") == "baseline" and r.get("reached") and r.get("address") == "198.18.2.1" for r in traces),
      [(r.get("reason"), r.get("address"), r.get("reached")) for r in traces])
downs = [r for r in records if r.get("type") == "event" and r.get("kind") == "target_down"]
web_downs = [e for e in downs if e.get("target") == "web"]
check("no target_down for web (it answered throughout)", not web_downs, web_downs)
check("later's target_down (before its name existed) says the name does not resolve",
      any(e.get("target") == "later" and (e.get("verdict") or {}).get("reason") ==
          "no failure trace: its host name later.lab.test does not resolve" for e in downs), downs)
EOF
finish
