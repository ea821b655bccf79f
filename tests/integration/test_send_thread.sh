#!/usr/bin/env bash
# The sending thread (agent.max_pps of 40,000 and more): 32 targets every
# 2 ms for 3 s (16,000 probes/s), ICMP, one of them refused by a firewall
# rule in the vp's own OUTPUT chain. The thread is there (named
# outpost-send), and like every other thread of the agent it holds
# CAP_NET_RAW alone; the probes it sends are answered; the refused target's
# probes end as local errors (status error, "Operation not permitted"),
# reported back from the thread, without holding up the others; the `send
# thread:` line counts what it sent. The same max_pps with 2 targets every
# 100 ms: the loop sends the scheduled probes in place, waking no thread.
# Exit 77 (skip) when not root.
# ctest: parallel
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init st
lab_up --hosts 8

REFUSED=198.18.3.8
cfg=$WORK/agent.yaml
{
  cat <<YAML
agent:
  id: itest-send-thread
  max_pps: 50000
defaults:
  interval: 2ms
  timeout: 500ms
  probes: [icmp]
groups:
YAML
  for n in 1 2 3 4; do
    echo "  - name: net$n"
    echo "    targets:"
    for h in 1 2 3 4 5 6 7 8; do echo "      - { name: net$n-h$h, address: 198.18.$((n - 1)).$h }"; done
  done
} >"$cfg"
# Locally sent packets that OUTPUT drops fail in sendmsg with EPERM.
in_vp nft -f - <<NFT
table inet itest_send_thread {
  chain out {
    type filter hook output priority 0;
    ip daddr $REFUSED icmp type echo-request drop
  }
}
NFT

start_agent_or_exit "$cfg" "$WORK/out.jsonl" "$WORK/agent.log"
sleep 3
tasks=$(ls "/proc/$AGENT_PID/task" 2>/dev/null)
names=$(for t in $tasks; do cat "/proc/$AGENT_PID/task/$t/comm" 2>/dev/null; done | sort | tr '\n' ' ')
caps=$(for t in $tasks; do awk '$1 == "CapEff:" || $1 == "CapPrm:" { print $2 }' "/proc/$AGENT_PID/task/$t/status"; done |
  sort -u | tr '\n' ' ')
echo "  threads: $names"
echo "  CapEff and CapPrm of every thread: $caps"
check "a thread named outpost-send runs" grep -qw outpost-send <<<"$names"
check "every thread holds CAP_NET_RAW alone (0000000000002000)" test "$caps" = "0000000000002000 "
kill -TERM "$AGENT_PID"
wait_pid "$AGENT_PID" 20
rc=$?
check "the agent exits 0 on TERM (got $rc)" test "$rc" -eq 0
if ((rc != 0)); then show_log "$WORK/agent.log"; fi

py_checks "$WORK/out.jsonl" "$WORK/agent.log" "$REFUSED" <<'PY'
path, log, refused = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
records, bad = load_records(path)
probes = [r for r in records if r.get("type") == "probe"]
others = [r for r in probes if r.get("address") != refused]
mine = [r for r in probes if r.get("address") == refused]
st = statuses(others)
check("the others' probes were sent and answered: all replies", others and set(st) == {"reply"}, st)
check("at least 31 targets x 500 probes went out", len(others) >= 31 * 500, len(others))
check("the refused target's probes are errors", mine and all(r.get("status") == "error" for r in mine),
      statuses(mine))
check("... saying the kernel refused the send", mine and all("Operation not permitted" in r.get("error", "") for r in mine),
      mine[0].get("error") if mine else "")
m = re.search(r"send thread: sent=(\d+) batches=(\d+) wakes=(\d+)", log)
e = re.search(r"engine: launched=(\d+) sent=(\d+) send_errors=(\d+)", log)
check("the log has the send thread's line", m, "")
check("the log has the engine's line", e, "")
if m and e:
    t_sent, batches = int(m.group(1)), int(m.group(2))
    launched, sent, errors = int(e.group(1)), int(e.group(2)), int(e.group(3))
    print(f"info: send thread sent={t_sent} batches={batches}; engine launched={launched} sent={sent} send_errors={errors}")
    check("most datagrams went from the thread (a few a millisecond go in place while it sleeps)",
          sent / 2 < t_sent <= sent, f"{t_sent} of {sent}")
    # (and the refused hop probes of its baseline trace besides)
    check("the engine counted every refusal as a send error", errors >= len(mine), f"{errors} vs {len(mine)}")
    check("at most as many batches as datagrams", 0 < batches <= t_sent + errors, f"{batches}")
PY

slow=$WORK/slow.yaml
cat >"$slow" <<YAML
agent:
  id: itest-send-thread-slow
  max_pps: 50000
defaults:
  interval: 100ms
  timeout: 500ms
  probes: [icmp]
groups:
  - name: net1
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
      - { name: net1-h2, address: 198.18.0.2 }
YAML
run_agent "$slow" "$WORK/slow.jsonl" "$WORK/slow.log" 2s
check "the slow agent exits 0" test $? -eq 0
py_checks "$WORK/slow.jsonl" "$WORK/slow.log" <<'PY'
records, bad = load_records(sys.argv[1])
log = open(sys.argv[2]).read()
probes = [r for r in records if r.get("type") == "probe"]
check("at 20 probes/s, replies", probes and all(r.get("status") == "reply" for r in probes), statuses(probes))
e = re.search(r"engine: launched=(\d+)", log)
m = re.search(r"send thread: sent=(\d+)", log)
launched, thread_sent = int(e.group(1)) if e else 0, int(m.group(1)) if m else 0
print(f"info: launched={launched}, probe records={len(probes)}, from the thread={thread_sent}")
# The scheduled probes go in place; only a baseline trace's burst of TTLs
# (more than 4 in a millisecond) may have woken the thread.
check("the scheduled probes went in place, not through the thread", e and thread_sent <= launched - len(probes),
      f"{thread_sent} from the thread, {launched - len(probes)} trace probes")
PY
finish
