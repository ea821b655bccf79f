# Shared helpers for outpost's agent integration tests (tests/integration/
# test_agent_*.sh) and scripts/bench. Source it; it is not a test itself.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   lib_init TAG            # skip (77) unless root; OUTPOST, NETLAB, PY, WORK;
#                           # arms the EXIT trap that cleans everything up
#   lab_up [--hosts H]      # netlab under the prefix TAG<pid>, torn down on exit
#   in_vp CMD...            # run CMD in the lab's vantage-point namespace
#   run_agent CFG OUT LOG DURATION [ARGS...]     # outpost run in vp, foreground
#                                                # (stopped if still running 30 s late)
#   start_agent CFG OUT LOG [ARGS...]            # the same in the background:
#                                                # sets AGENT_PID, waits until it runs
#   start_agent_or_exit CFG OUT LOG [ARGS...]    # or the test fails there
#   wait_started PID LOG PATTERN                 # until LOG says PATTERN (10 s)
#   check NAME CMD...       # PASS/FAIL line; counts failures
#   quiet CMD...            # CMD without its output (for check)
#   py_checks ARGS... <<'EOF' ... EOF
#                           # python3 checks (see LIB_PY_PRELUDE: check(),
#                           # load_records(), ...); each failed check counts
#   finish                  # prints the verdict and exits 0 or 1
#
# Rules kept here for every test: packets go only to the lab's namespaces and
# loopback (the vp's resolver is pointed at 127.0.0.1, so a host name lookup
# never leaves the namespace); each run has its own netlab prefix; every
# process a test starts is stopped by PID, and the lab is removed on exit,
# also on failure or interruption.

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUTPOST_SOURCE_DIR=${OUTPOST_SOURCE_DIR:-$(cd "$LIB_DIR/../.." && pwd)}
OUTPOST=${OUTPOST:-$OUTPOST_SOURCE_DIR/build/outpost}
NETLAB=$OUTPOST_SOURCE_DIR/scripts/netlab
# Debian's python3 (only the standard library is used).
if [[ -x /usr/bin/python3 ]]; then PY=/usr/bin/python3; else PY=python3; fi

failures=0
# Every FAIL line, recapped by finish (a long log may be cut in the middle).
LIB_FAILED=/tmp/outpost-failed.$$
rm -f "$LIB_FAILED"
export LIB_FAILED
LIB_PIDS=()
LIB_LAB_UP=0
LIB_RESOLV_DIR=""
WORK=""

lib_need_tools() {
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "SKIP: needs $tool (run scripts/setup)"
      exit 77
    fi
  done
}

# lib_init TAG: TAG (a-z, 1-8 chars) names this test's netlab prefix TAG<pid>.
lib_init() {
  local tag=$1
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: needs root (netlab uses network namespaces; outpost needs CAP_NET_RAW)"
    exit 77
  fi
  lib_need_tools ip nft "$PY"
  if [[ ! -x $OUTPOST ]]; then
    echo "FAIL: no outpost binary at $OUTPOST (build it: scripts/build, or set OUTPOST)"
    exit 1
  fi
  export NETLAB_PREFIX="${tag}$$"
  WORK=$(mktemp -d "/tmp/outpost-${NETLAB_PREFIX}.XXXXXX")
  trap lib_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  echo "$(basename "$0"): outpost $OUTPOST, netlab prefix $NETLAB_PREFIX, work dir $WORK"
}

# Stops what this test started (by PID), removes the lab and the work dir.
lib_cleanup() {
  local rc=$? pid try
  trap - EXIT INT TERM
  rm -f "$LIB_FAILED"
  for pid in "${LIB_PIDS[@]+"${LIB_PIDS[@]}"}"; do
    kill -0 "$pid" 2>/dev/null || continue
    echo "cleanup: stopping process $pid"
    kill -TERM "$pid" 2>/dev/null
    for ((try = 0; try < 30; try++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if ((LIB_LAB_UP)); then "$NETLAB" down >/dev/null 2>&1 || echo "cleanup: netlab down failed (prefix $NETLAB_PREFIX)"; fi
  if [[ -n $LIB_RESOLV_DIR && -d $LIB_RESOLV_DIR ]]; then
    rm -rf "$LIB_RESOLV_DIR"
    rmdir /etc/netns 2>/dev/null || true
  fi
  if [[ -n $WORK && -d $WORK ]]; then
    if ((rc != 0)) && [[ -n ${OUTPOST_KEEP_WORK:-} ]]; then echo "cleanup: kept $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}

# lab_up [--hosts H]: builds the lab; the vp resolves names via 127.0.0.1
# (nothing listens there: every lookup fails at once and stays in the lab).
lab_up() {
  LIB_LAB_UP=1
  local out
  if ! out=$("$NETLAB" up "$@" 2>&1); then
    echo "$out"
    echo "FAIL: netlab up"
    exit 1
  fi
  # `ip netns exec NS` bind-mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf.
  # (Retried: a parallel test's cleanup may rmdir an empty /etc/netns meanwhile.)
  LIB_RESOLV_DIR=/etc/netns/$("$NETLAB" ns vp)
  local try
  for ((try = 0; try < 5; try++)); do
    mkdir -p "$LIB_RESOLV_DIR" 2>/dev/null &&
      printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$LIB_RESOLV_DIR/resolv.conf" 2>/dev/null &&
      break
    sleep 0.1
  done
  echo "$out"
}

netlab() { "$NETLAB" "$@" >/dev/null; }
in_vp() { "$NETLAB" exec vp "$@"; }

# vp_tx_packets: packets the vp has sent on its uplink so far.
vp_tx_packets() { in_vp cat /sys/class/net/up0/statistics/tx_packets; }

# run_agent CFG OUT LOG DURATION [ARGS...]: exit code of outpost run --for
# DURATION; an agent still running 30 s after that is stopped (TERM, then
# KILL 5 s later) and reported, so that a hang fails the test instead of
# blocking it.
run_agent() {
  local cfg=$1 out=$2 log=$3 dur=$4 limit=120 rc
  shift 4
  [[ $dur =~ ^([0-9]+)s$ ]] && limit=$((BASH_REMATCH[1] + 30))
  in_vp timeout -k 5 "$limit" "$OUTPOST" run -c "$cfg" --for "$dur" --output "$out" "$@" 2>"$log"
  rc=$?
  if ((rc == 124 || rc == 137)); then
    echo "  outpost run --for $dur had not exited after $limit s: stopped (exit $rc); the end of its log:"
    tail -n 3 "$log" | sed 's/^/  | /'
  fi
  return "$rc"
}

# wait_started PID LOG PATTERN: 0 once LOG shows PATTERN; 1 when PID exits
# first, or after 10 s.
wait_started() {
  local try
  for ((try = 0; try < 100; try++)); do
    grep -q "$3" "$2" 2>/dev/null && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# start_agent CFG OUT LOG [ARGS...]: outpost run in the background (AGENT_PID);
# returns once its log says it is running (1 if it does not within 10 s).
start_agent() {
  local cfg=$1 out=$2 log=$3
  shift 3
  # netlab exec and `ip netns exec` both exec: $! ends up being outpost itself.
  "$NETLAB" exec vp "$OUTPOST" run -c "$cfg" --output "$out" "$@" 2>"$log" &
  AGENT_PID=$!
  LIB_PIDS+=("$AGENT_PID")
  wait_started "$AGENT_PID" "$log" running
}

# start_agent_or_exit CFG OUT LOG [ARGS...]: start_agent, or the test fails
# here with the agent's log.
start_agent_or_exit() {
  start_agent "$@" && return 0
  echo "FAIL: the agent did not start"
  show_log "$3"
  exit 1
}

# wait_pid PID SECONDS: waits for PID to exit; its exit code, or 124 (and a
# KILL) when it does not exit in time.
wait_pid() {
  local pid=$1 limit=$2 try
  for ((try = 0; try < limit * 10; try++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 124
  fi
  wait "$pid"
}

quiet() { "$@" >/dev/null 2>&1; }

now_utc() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }

check() { # check NAME CMD...: run CMD, report PASS/FAIL
  local name=$1
  shift
  if "$@"; then
    echo "PASS: $name"
  else
    echo "FAIL: $name" | tee -a "$LIB_FAILED"
    failures=$((failures + 1))
  fi
}

# Python prelude for py_checks: check(name, ok, detail), load_records(path)
# (records, numbers of the lines that are not JSON objects), parse_time(),
# TIME_RE (RFC 3339, UTC, microseconds), by_target(records), binomial_band(),
# statuses(records), hops_of_text(path).
LIB_PY_PRELUDE='
import json, math, os, re, statistics, sys
from datetime import datetime, timezone
FAILS = 0
def check(name, ok, detail=""):
    global FAILS
    line = ("PASS: " if ok else "FAIL: ") + name + (" (" + str(detail) + ")" if detail != "" else "")
    print(line)
    if not ok:
        FAILS += 1
        if os.environ.get("LIB_FAILED"):
            with open(os.environ["LIB_FAILED"], "a") as f:
                f.write(line[:2000] + "\n")
    return ok
def load_records(path):
    records, bad = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                if not isinstance(r, dict):
                    raise ValueError("not an object")
                records.append(r)
            except ValueError:
                bad.append(number)
    return records, bad
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
def by_target(records):
    out = {}
    for r in records:
        if r.get("type") == "probe":
            out.setdefault(r.get("target"), []).append(r)
    return out
def binomial_band(n, p, sigmas=4.5):
    sd = math.sqrt(n * p * (1 - p))
    return max(0.0, n * p - sigmas * sd), min(float(n), n * p + sigmas * sd)
def statuses(records):
    out = {}
    for r in records:
        out[r.get("status")] = out.get(r.get("status"), 0) + 1
    return out
def hops_of_text(path):
    """The hop addresses of a traceroute(8) or scamper text output (None for *)."""
    hops = []
    for line in open(path):
        m = re.match(r"^\s*(\d+)\s+(\S+)", line)
        if m:
            hops.append(m.group(2) if m.group(2) != "*" else None)
    return hops
'

# py_checks ARGS... <<'EOF' ... EOF: runs the python checks on stdin with ARGS
# as sys.argv[1:]; adds the number of failed checks (or 1 on a crash).
py_checks() {
  local code rc before after
  code=$(cat)
  before=$(cat "$LIB_FAILED" 2>/dev/null | wc -l)
  "$PY" -c "$LIB_PY_PRELUDE
$code
sys.exit(min(FAILS, 100))" "$@"
  rc=$?
  after=$(cat "$LIB_FAILED" 2>/dev/null | wc -l)
  if ((rc != 0 && after == before)); then
    echo "FAIL: the Python checks stopped with exit $rc (see above)" | tee -a "$LIB_FAILED"
  fi
  failures=$((failures + rc))
}

# show_log FILE: the agent's log, indented (for a failure's context).
show_log() { sed 's/^/  | /' "$1"; }

finish() {
  if ((failures)); then
    echo "$failures check(s) FAILED:"
    sed 's/^/  /' "$LIB_FAILED" 2>/dev/null
    rm -f "$LIB_FAILED"
    exit 1
  fi
  rm -f "$LIB_FAILED"
  echo "all checks passed"
  exit 0
}
