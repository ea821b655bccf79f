#!/usr/bin/env bash
# Bad input and signals:
#  (a) an invalid config: `outpost check` exits 1 with FILE:LINE:COL errors;
#      `outpost run` exits 1 the same way and sends nothing;
#  (b) no CAP_NET_RAW: `ping` and `run` exit 2 naming CAP_NET_RAW and send
#      nothing; with CAP_NET_RAW alone (as nobody) ping works;
#  (c) a target whose host name does not resolve: the agent keeps running and
#      writes an error record (naming the host) for each of its rounds, while
#      the other target replies;
#  (d) SIGHUP with a broken config on disk is refused (logged with its
#      FILE:LINE:COL) and probing goes on; SIGHUP with a good one applies it;
#      SIGTERM stops probing, flushes every record and exits 0;
#  (e) SIGINT does the same.
# Exit 77 (skip) when not root.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init ab
lib_need_tools setpriv
lab_up --hosts 4
testdata=$OUTPOST_SOURCE_DIR/config/testdata

# ---------------------------------------------------------------- (a)
echo "== (a) invalid configs"
# check_rejects FILE: `outpost check` exits 1 and every message is FILE:LINE:COL: ...
# shellcheck disable=SC2317  # run through check()
check_rejects() {
  local file=$1 out rc pattern
  out=$("$OUTPOST" check -c "$file" 2>&1)
  rc=$?
  if ((rc != 1)); then echo "  exit $rc, want 1; said: $out"; return 1; fi
  pattern="^$(sed 's/[][\\.*^$+?(){}|]/\\&/g' <<<"$file"):[0-9]+:[0-9]+: ."
  if ! grep -qE "$pattern" <<<"$out"; then echo "  no FILE:LINE:COL message; said: $out"; return 1; fi
  if grep -vE "$pattern" <<<"$out" | grep -q .; then
    echo "  lines that are not FILE:LINE:COL: message:"
    grep -vE "$pattern" <<<"$out" | sed 's/^/  | /'
    return 1
  fi
  echo "  $(wc -l <<<"$out") messages, e.g. $(head -1 <<<"$out")"
}
for f in invalid-yaml-syntax invalid-duration invalid-unknown-key invalid-address; do
  check "check -c $f.yaml: exit 1, FILE:LINE:COL messages" check_rejects "$testdata/$f.yaml"
done

# A broken config with lab addresses only: line 4 has a duration without a
# unit (column 13), line 10 a misspelt key.
broken=$WORK/broken.yaml
cat >"$broken" <<'EOF'
agent:
  id: itest-bad
defaults:
  interval: 100
  timeout: 50ms
groups:
  - name: nets
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
      - { name: net2-h1, adress: 198.18.1.1 }
EOF
check "check -c (lab) broken.yaml: exit 1, FILE:LINE:COL messages" check_rejects "$broken"

tx0=$(vp_tx_packets)
in_vp "$OUTPOST" run -c "$broken" --for 2s --output "$WORK/broken.jsonl" >"$WORK/broken.out" 2>&1
rc=$?
tx1=$(vp_tx_packets)
sed 's/^/  | /' "$WORK/broken.out"
check "run -c broken.yaml exits 1 (got $rc)" test "$rc" -eq 1
check "run -c broken.yaml names $broken:4:13" grep -qF "$broken:4:13:" "$WORK/broken.out"
check "run -c broken.yaml sent nothing (vp tx packets $tx0 -> $tx1)" test "$tx0" -eq "$tx1"
check "run -c broken.yaml wrote no records" test ! -s "$WORK/broken.jsonl"

# ---------------------------------------------------------------- (b)
echo "== (b) no CAP_NET_RAW"
good=$WORK/good.yaml
cat >"$good" <<'EOF'
agent:
  id: itest-bad
defaults:
  interval: 100ms
  timeout: 80ms
groups:
  - name: nets
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
EOF
nocap=(setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-net_raw --)
# refuses LABEL CMD...: CMD (in vp) exits 2, names CAP_NET_RAW, sends nothing.
refuses() {
  local label=$1 out rc t0 t1
  shift
  t0=$(vp_tx_packets)
  out=$(in_vp "$@" 2>&1)
  rc=$?
  t1=$(vp_tx_packets)
  echo "  $label: exit $rc: $(head -1 <<<"$out")"
  check "$label: exit 2" test "$rc" -eq 2
  check "$label: message names CAP_NET_RAW" grep -q CAP_NET_RAW <<<"$out"
  check "$label: sent nothing (vp tx packets $t0 -> $t1)" test "$t0" -eq "$t1"
}
refuses "root without net_raw: ping" "${nocap[@]}" "$OUTPOST" ping 198.18.0.1 -c 1
refuses "root without net_raw: run" "${nocap[@]}" "$OUTPOST" run -c "$good" --for 2s --output "$WORK/nocap.jsonl"
check "root without net_raw: run wrote no records" test ! -s "$WORK/nocap.jsonl"
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
if [[ -x $OUTPOST ]] && "${nobody[@]}" test -x "$OUTPOST"; then
  refuses "nobody, no capabilities: ping" "${nobody[@]}" --inh-caps=-all --ambient-caps=-all -- "$OUTPOST" ping 198.18.0.1 -c 1
  check "nobody with CAP_NET_RAW alone: ping works" quiet in_vp "${nobody[@]}" --inh-caps=+net_raw --ambient-caps=+net_raw -- \
    "$OUTPOST" ping 198.18.0.1 -c 2 -i 10ms
else
  echo "  (nobody cannot execute $OUTPOST: the unprivileged-user checks are left out)"
fi

# ---------------------------------------------------------------- (c)
echo "== (c) a host name that does not resolve"
unres=$WORK/unresolved.yaml
cat >"$unres" <<'EOF'
agent:
  id: itest-bad
defaults:
  interval: 250ms
  timeout: 200ms
detect:
  suspect_interval: 250ms    # failing targets keep the configured interval: the test counts records
groups:
  - name: nets
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
      - { name: nowhere, host: no-such-host.invalid }
EOF
# agent.interface naming no interface (a typo): a start-up error naming it, nothing sent.
badif=$WORK/badif.yaml
sed 's/^agent:$/agent:\n  interface: nosuchif0/' "$unres" >"$badif"
t0=$(vp_tx_packets)
out=$(in_vp "$OUTPOST" run -c "$badif" --for 2s --output "$WORK/badif.jsonl" 2>&1)
rc=$?
t1=$(vp_tx_packets)
check "run with agent.interface: nosuchif0 exits 1 (got $rc)" test "$rc" -eq 1
check "run with agent.interface: nosuchif0 names it" grep -q 'nosuchif0' <<<"$out"
check "run with agent.interface: nosuchif0 sent nothing (vp tx packets $t0 -> $t1)" test "$t0" -eq "$t1"
check "run with agent.interface: nosuchif0 wrote no records" test ! -s "$WORK/badif.jsonl"

check "check -c unresolved.yaml: valid (names are resolved when running)" quiet "$OUTPOST" check -c "$unres"
run_agent "$unres" "$WORK/unres.jsonl" "$WORK/unres.log" 3s
rc=$?
check "run with an unresolvable host exits 0 after --for 3s (got $rc)" test "$rc" -eq 0
grep -i 'no-such-host' "$WORK/unres.log" | sed 's/^/  | /'
check "the log warns about the host" grep -q 'no-such-host.invalid' "$WORK/unres.log"
py_checks "$WORK/unres.jsonl" <<'EOF'
records, bad = load_records(sys.argv[1])
check("every line is a JSON object", not bad and records, f"{len(records)} records")
t = by_target(records)
nw, ok = t.get("nowhere", []), t.get("net1-h1", [])
check("nowhere: 12±1 records (one per round), every one status error", abs(len(nw) - 12) <= 1 and
      all(r.get("status") == "error" for r in nw), f"{len(nw)} records {statuses(nw)}")
check("nowhere: error names the host", nw and all("no-such-host.invalid" in str(r.get("error")) for r in nw),
      nw[0].get("error") if nw else "")
check("nowhere: records carry type, agent, time, group, address, method; no rtt_ms",
      nw and all(r.get("type") == "probe" and r.get("agent") == "itest-bad" and TIME_RE.match(r.get("time", ""))
                 and r.get("group") == "nets" and r.get("address") and r.get("method") == "icmp" and "rtt_ms" not in r
                 for r in nw))
check("net1-h1: 12±1 probes, every one a reply", abs(len(ok) - 12) <= 1 and all(r.get("status") == "reply" for r in ok),
      f"{len(ok)} probes {statuses(ok)}")
EOF

# ---------------------------------------------------------------- (d)
echo "== (d) SIGHUP and SIGTERM"
live=$WORK/live.yaml
cp "$good" "$live"
# silent: no host has 198.18.0.5 (--hosts 4), so its probe (every 1 s, 900 ms
# timeout) is nearly always in flight; at SIGTERM it must still be recorded.
cat >>"$live" <<'EOF'
      - { name: net2-h1, address: 198.18.1.1 }
      - { name: silent, address: 198.18.0.5, interval: 1s, timeout: 900ms }
EOF
out=$WORK/live.jsonl
log=$WORK/live.log
start_agent_or_exit "$live" "$out" "$log"
sleep 1
# A broken config on disk: refused, the old one keeps running.
cp "$broken" "$live"
hup1=$(now_utc)
kill -HUP "$AGENT_PID"
sleep 1.5
check "SIGHUP with a broken config: the agent is still running" kill -0 "$AGENT_PID"
grep -E 'refused|reload' "$log" | sed 's/^/  | /'
check "SIGHUP with a broken config: the log says the reload is refused" grep -qi 'refused' "$log"
check "SIGHUP with a broken config: the log names $live:4:13" grep -qF "$live:4:13:" "$log"
# A good config: applied (net2-h1 leaves, net3-h1 comes).
cat >"$live" <<'EOF'
agent:
  id: itest-bad
defaults:
  interval: 100ms
  timeout: 80ms
groups:
  - name: nets
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
      - { name: net3-h1, address: 198.18.2.1 }
      - { name: silent, address: 198.18.0.5, interval: 1s, timeout: 900ms }
EOF
hup2=$(now_utc)
kill -HUP "$AGENT_PID"
sleep 1.5
term=$(now_utc)
t0=$(date +%s%N)
kill -TERM "$AGENT_PID"
wait_pid "$AGENT_PID" 10
rc=$?
stop_ms=$((($(date +%s%N) - t0) / 1000000))
check "SIGTERM: exit 0 (got $rc)" test "$rc" -eq 0
# The stated bound: the longest probe timeout (here 900 ms) for the probes in
# flight, plus up to 5 s for the outputs; a file output takes no wait.
echo "  SIGTERM to exit: $stop_ms ms (bound: longest timeout 900 ms + 5 s)"
check "SIGTERM: exit within the stated bound (${stop_ms} ms <= 5900 ms)" test "$stop_ms" -le 5900
check "SIGTERM: the process is gone" bash -c "! kill -0 $AGENT_PID 2>/dev/null"
tail -3 "$log" | sed 's/^/  | /'
written=$(sed -n 's/.*stopped: \([0-9]*\) records written.*/\1/p' "$log")
check "the output ends with a newline (no torn last line)" test "$(tail -c 1 "$out" | od -An -c | tr -d ' ')" = '\n'

py_checks "$out" "$hup1" "$hup2" "$term" "${written:--1}" <<'EOF'
path, hup1, hup2, term, written = sys.argv[1], parse_time(sys.argv[2]), parse_time(sys.argv[3]), parse_time(sys.argv[4]), int(sys.argv[5])
records, bad = load_records(path)
check("every line is a JSON object", not bad and records, f"{len(records)} records, bad lines {bad[:5]}")
if written >= 0:
    check("all records flushed: lines = 'records written' in the log", len(records) == written,
          f"{len(records)} lines, log says {written}")
else:
    print("info: the log gives no 'stopped: N records written' count to compare with")
t = by_target(records)
times = {n: [parse_time(r["time"]) for r in rs] for n, rs in t.items()}
def count(name, lo, hi):
    return sum(lo <= x < hi for x in times.get(name, []))
a, b = count("net1-h1", hup1, hup2), count("net2-h1", hup1, hup2)
check("after the refused reload both old targets keep probing (~15 each before the next reload)",
      a >= 10 and b >= 10, f"net1-h1 {a}, net2-h1 {b}")
eps = 0.05
check("after the good reload net3-h1 is probed", count("net3-h1", hup2, term) >= 10, count("net3-h1", hup2, term))
check("after the good reload net2-h1 is no longer probed", count("net2-h1", hup2 + eps, term + 10) == 0,
      count("net2-h1", hup2 + eps, term + 10))
check("net1-h1 probed throughout", count("net1-h1", hup2, term) >= 10, count("net1-h1", hup2, term))
last = max(max(v) for v in times.values())
check("probing went on until SIGTERM (a probe in its last 300 ms)", term - 0.3 <= last, f"last probe {1000 * (term - last):.0f} ms before SIGTERM")
check("no probe started after SIGTERM", last <= term + eps, f"last probe {1000 * (term - last):.0f} ms before SIGTERM")
sl = t.get("silent", [])
check("silent: every probe a timeout", sl and all(r.get("status") == "timeout" for r in sl), statuses(sl))
check("silent: its last probe (sent within 1 s of SIGTERM, maybe still in flight then) was recorded",
      any(term - 1.05 <= x <= term + eps for x in times.get("silent", [])),
      f"last silent probe {1000 * (term - max(times.get('silent', [0]))):.0f} ms before SIGTERM")
# The open windows were written at the stop, marked partial: the window
# running at SIGTERM, for each target probed until then, and none after it.
series = [r for r in records if r.get("type") == "series"]
window_s = series[0]["window_s"] if series else 60
running_start = term - term % window_s  # windows are aligned to the epoch
for name in ("net1-h1", "net3-h1"):
    partial = [r for r in series if r.get("target") == name and r.get("partial") is True]
    if term - running_start < 1.0:
        print(f"info: SIGTERM came in the first second of a window; {name}'s partial windows: {len(partial)}")
        continue
    running = [r for r in partial if abs(parse_time(r["time"]) - running_start) < 0.001]
    check(f"{name}: the window running at SIGTERM was written, partial",
          len(running) == 1 and running[0]["sent"] > 0, [{k: r.get(k) for k in ("time", "sent", "partial")} for r in partial])
check("no window starts after SIGTERM", all(parse_time(r["time"]) <= term + eps for r in series),
      max((r["time"] for r in series), default=None))
st = statuses([r for r in records if r.get("type") == "probe" and r.get("target") in ("net1-h1", "net2-h1", "net3-h1")])
check("every probe a reply", set(st) == {"reply"}, st)
EOF

# ---------------------------------------------------------------- (e)
echo "== (e) SIGINT"
if start_agent "$good" "$WORK/int.jsonl" "$WORK/int.log"; then
  sleep 1
  kill -INT "$AGENT_PID"
  wait_pid "$AGENT_PID" 10
  rc=$?
  check "SIGINT: exit 0 (got $rc)" test "$rc" -eq 0
  written=$(sed -n 's/.*stopped: \([0-9]*\) records written.*/\1/p' "$WORK/int.log")
  py_checks "$WORK/int.jsonl" "${written:--1}" <<'EOF'
records, bad = load_records(sys.argv[1])
written = int(sys.argv[2])
check("SIGINT: every record flushed and valid JSON", not bad and len(records) >= 5 and written in (-1, len(records)),
      f"{len(records)} lines, log says {written if written >= 0 else '?'}")
EOF
else
  check "SIGINT: the agent starts" false
  show_log "$WORK/int.log"
fi

finish
