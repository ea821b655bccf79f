#!/usr/bin/env bash
# The sending thread (agent.max_pps of 40,000 and more): 32 targets every
# 10 ms for 3 s, ICMP, one of them refused by a firewall rule in the vp's
# own OUTPUT chain. The thread is there (named outpost-send), and like every
# other thread of the agent it holds CAP_NET_RAW alone; the probes it sends
# are answered; the refused target's probes end as local errors (status
# error, "Operation not permitted"), reported back from the thread, without
# holding up the others; the `send thread:` line counts what it sent.
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
  interval: 10ms
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
check("at least 31 targets x 100 probes went out", len(others) >= 31 * 100, len(others))
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
    check("the thread's datagrams are the engine's sent ones (none went from the loop at this rate)", t_sent == sent,
          f"{t_sent} vs {sent}")
    # (and the refused hop probes of its baseline trace besides)
    check("the engine counted every refusal as a send error", errors >= len(mine), f"{errors} vs {len(mine)}")
    check("at most as many batches as datagrams", 0 < batches <= t_sent + errors, f"{batches}")
PY
finish
