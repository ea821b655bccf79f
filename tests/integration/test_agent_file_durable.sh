#!/usr/bin/env bash
# The JSON Lines file output survives what probe hosts do to it:
#  - a torn last line left by a crash is ended at start, reported, and the
#    next record starts a line of its own;
#  - logrotate's mv and a SIGHUP: the agent writes on in a new file at the
#    path, and no record is lost or written twice between the two files;
#  - a full file system (a small tmpfs): the records wait in the spool under
#    agent.state_dir and reach the file once space returns; the counters say
#    what reached it;
#  - `--output - | head -1`: the closed pipe is an output error, not a kill.
# Exit 77 (skip) when not root.
# ctest: parallel
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init fdur
lab_up --hosts 1

cfg() { # cfg NAME [STATE_DIR]
  printf '%s\n' \
    "agent: { id: itest-file${2:+, state_dir: $2} }" \
    'defaults: { interval: 200ms, timeout: 150ms }' \
    'report: { window: 1s }' \
    'groups:' \
    '  - name: nets' \
    '    targets:' \
    '      - { name: net1-h1, address: 198.18.0.1 }' >"$WORK/$1.yaml"
  echo "$WORK/$1.yaml"
}

# The probes of net1-h1 across FILES: no time twice, and no gap longer than
# a second (one is sent every 200 ms).
continuous() {
  py_checks "$@" <<'PY'
import json
times, bad = [], 0
for path in sys.argv[1:]:
    for line in open(path):
        try:
            r = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if r.get("type") == "probe":
            times.append(r["time"])
check("probes were written", len(times) > 10, len(times))
check("no probe written twice", len(times) == len(set(times)), len(times) - len(set(times)))
ts = sorted(times)
from datetime import datetime
def t(s): return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
gaps = [t(b) - t(a) for a, b in zip(ts, ts[1:])]
check("no probe missing (largest gap under 1 s)", max(gaps) < 1.0, max(gaps))
PY
}

# --- a torn tail -------------------------------------------------------------
out=$WORK/torn.jsonl
printf '{"type":"probe","agent":"old","time":"2014-12-22T16:15:00.000000Z"}\n{"type":"probe","agent":"old","ti' >"$out"
run_agent "$(cfg torn)" "$out" "$WORK/torn.log" 2s
check "torn tail: the agent ran (exit $?)" test $? -eq 0
check "torn tail: the log says the last line was cut short" grep -q 'cut short' "$WORK/torn.log"
py_checks "$out" <<'PY'
lines = open(sys.argv[1]).read().split("\n")
check("torn tail: the complete old line is intact", lines[0].startswith('{"type":"probe","agent":"old"'), lines[0])
check("torn tail: the torn piece stays a line of its own", lines[1] == '{"type":"probe","agent":"old","ti', lines[1])
import json
rest = [l for l in lines[2:] if l]
ok = all(json.loads(l)["agent"] == "itest-file" for l in rest)
check("torn tail: every later line is one whole record", ok and len(rest) > 5, len(rest))
PY

# --- logrotate -----------------------------------------------------------------
out=$WORK/rotate.jsonl
start_agent_or_exit "$(cfg rotate)" "$out" "$WORK/rotate.log"
sleep 2
mv "$out" "$out.1"
kill -HUP "$AGENT_PID"
sleep 2
kill -TERM "$AGENT_PID"
wait_pid "$AGENT_PID" 15
check "logrotate: the agent exits 0 (got $?)" test $? -eq 0
check "logrotate: the log says the file was reopened" grep -q 'reopened' "$WORK/rotate.log"
check "logrotate: records went on in a new file at the path" test -s "$out"
check "logrotate: the moved file kept its records" test -s "$out.1"
continuous "$out.1" "$out"

# --- a full file system ------------------------------------------------------------
full=$WORK/full
mkdir -p "$full"
mount -t tmpfs -o size=256k tmpfs "$full" || { echo "FAIL: cannot mount a tmpfs"; exit 1; }
umount_full() { umount "$full" 2>/dev/null; }
dd if=/dev/zero of="$full/filler" bs=4k 2>/dev/null  # until the tmpfs is full
out=$full/results.jsonl
start_agent_or_exit "$(cfg full "$WORK/state")" "$out" "$WORK/full.log"
sleep 3
check "full disk: the log says the file cannot be written" grep -q 'cannot write' "$WORK/full.log"
rm -f "$full/filler"
sleep 3
kill -TERM "$AGENT_PID"
wait_pid "$AGENT_PID" 20
check "full disk: the agent exits 0 (got $?)" test $? -eq 0
continuous "$out"
lines=$(wc -l <"$out")
py_checks "$WORK/full.log" "$lines" <<'PY'
import re
m = [l for l in open(sys.argv[1]) if "output output-option:" in l and "delivered_records=" in l]
check("full disk: the output's counters are logged at exit", len(m) == 1, len(m))
if m:
    n = int(re.search(r"delivered_records=(\d+)", m[0]).group(1))
    check("full disk: delivered_records is what the file holds", n == int(sys.argv[2]), (n, sys.argv[2]))
    f = int(re.search(r"failures=(\d+)", m[0]).group(1))
    check("full disk: the failed writes were counted", f >= 1, f)
PY
umount_full

# --- a closed pipe ---------------------------------------------------------------
in_vp "$OUTPOST" run -c "$(cfg pipe)" --for 3s --output - 2>"$WORK/pipe.log" | head -1 >"$WORK/pipe.out"
rc=${PIPESTATUS[0]}
check "closed pipe: not killed by SIGPIPE (exit $rc)" test "$rc" -ne 141
check "closed pipe: it stopped and said so" grep -q 'stopped:' "$WORK/pipe.log"
check "closed pipe: the first record came through" grep -q '"type"' "$WORK/pipe.out"
check "closed pipe: the failed writes are logged" grep -q 'cannot write' "$WORK/pipe.log"

finish
