# Real collectors for the output tests: VictoriaMetrics, Prometheus,
# InfluxDB 1.x and nats-server from Debian, each on 127.0.0.1 with a free
# port and its data in a directory of its own; start, wait until ready, stop
# (SIGTERM, then SIGKILL), and an outage (stop, wait, start again on the same
# data and port). Source it (after lib.sh when there is a lab); not a test.
# Leaves to others: what is pushed into the servers and how it is read back
# (collector_read.py).
#
#   COLLECTORS_EXEC=(CMD...)   # runs a command where the servers live: empty
#                              # (default) for this namespace, ("$NETLAB" exec vp)
#                              # for the lab's vantage point (its own loopback)
#   COLLECTORS_DIR=DIR         # parent of the data dirs (default: $WORK, else a temp dir)
#   collector_start NAME KIND  # KIND: vm | prom | influx | nats; returns once it
#                              # answers (1 and its log when it does not in 60 s)
#   collector_url NAME         # http://127.0.0.1:PORT (nats://... for nats)
#   collector_log NAME         # the server's log file
#   collector_stop NAME        # SIGTERM, SIGKILL 15 s later; waits for the exit
#   collectors_pause SECS NAME...  # an outage of every NAME at once: stop them,
#                              # SECS later start them again (same ports and data)
#   collectors_stop_all        # every server still running (an EXIT trap's step)
#   collector_exec CMD...      # CMD where the servers live (e.g. the reader)
#   forget_pid PID             # PID (stopped and reaped) leaves LIB_PIDS
#
# Every PID is also added to lib.sh's LIB_PIDS when that exists, so that
# lib.sh's EXIT trap stops the servers before it removes the lab.

COLLECTORS_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z ${PY:-} ]]; then
  if [[ -x /usr/bin/python3 ]]; then PY=/usr/bin/python3; else PY=python3; fi
fi
COLLECTOR_READ=$COLLECTORS_LIB_DIR/collector_read.py
[[ -n ${COLLECTORS_EXEC+x} ]] || COLLECTORS_EXEC=()
COLLECTORS_DIR=${COLLECTORS_DIR:-}
declare -A COLL_KIND=() COLL_PORT=() COLL_PID=() COLL_DIR=()

collector_exec() { "${COLLECTORS_EXEC[@]+"${COLLECTORS_EXEC[@]}"}" "$@"; }

# A TCP port nobody listens on where the servers live (the kernel picks it).
collector_free_port() {
  collector_exec "$PY" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

collector_url() {
  if [[ ${COLL_KIND[$1]} == nats ]]; then echo "nats://127.0.0.1:${COLL_PORT[$1]}"
  else echo "http://127.0.0.1:${COLL_PORT[$1]}"; fi
}

collector_log() { echo "${COLL_DIR[$1]}/server.log"; }

# collector_start NAME KIND: a new data dir and port, then the server.
collector_start() {
  local name=$1 kind=$2 base
  case $kind in
    vm) lib_need_tools_c victoria-metrics ;;
    prom) lib_need_tools_c prometheus ;;
    influx) lib_need_tools_c influxd ;;
    nats) lib_need_tools_c nats-server ;;
    *) echo "collector_start: unknown kind $kind"; return 1 ;;
  esac
  base=${COLLECTORS_DIR:-${WORK:-}}
  if [[ -z $base ]]; then
    base=$(mktemp -d /tmp/outpost-collectors.XXXXXX)
    COLLECTORS_DIR=$base
  fi
  COLL_KIND[$name]=$kind
  COLL_DIR[$name]=$base/collector-$name
  mkdir -p "${COLL_DIR[$name]}"
  COLL_PORT[$name]=$(collector_free_port) || { echo "collector_start $name: no free port"; return 1; }
  collector_launch "$name"
}

lib_need_tools_c() {
  if ! command -v "$1" >/dev/null; then
    echo "SKIP: needs $1 (run scripts/setup)"
    exit 77
  fi
}

# collector_launch NAME [--no-wait]: starts NAME's server on its port and
# data dir; waits until it is ready unless --no-wait.
collector_launch() {
  local name=$1 dir=${COLL_DIR[$1]} port=${COLL_PORT[$1]} rpc
  local -a cmd
  case ${COLL_KIND[$name]} in
    vm)
      cmd=(victoria-metrics -httpListenAddr="127.0.0.1:$port" -storageDataPath="$dir/data"
        -retentionPeriod=100y -search.latencyOffset=0s -search.disableCache -loggerLevel=WARN) ;;
    prom)
      printf 'global: {}\nscrape_configs: []\n' >"$dir/prometheus.yml"
      cmd=(prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data"
        --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver --log.level=warn) ;;
    influx)
      # Every listener but the HTTP API off or on loopback; the RPC
      # bind-address (8088 by default) gets a free port of its own.
      if [[ ! -f $dir/influxdb.conf ]]; then
        rpc=$(collector_free_port)
        cat >"$dir/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc"
[meta]
  dir = "$dir/meta"
  logging-enabled = false
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$port"
  log-enabled = false
  pprof-enabled = false
  unix-socket-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
EOF
      fi
      cmd=(influxd run -config "$dir/influxdb.conf") ;;
    nats)
      cmd=(nats-server -js -sd "$dir/jetstream" -a 127.0.0.1 -p "$port") ;;
  esac
  echo "=== start $(date -u +%T.%N | cut -c1-12): ${cmd[*]}" >>"$dir/server.log"
  # A simple command, not a function, so that $! is the server itself
  # (netlab exec and ip netns exec both exec).
  "${COLLECTORS_EXEC[@]+"${COLLECTORS_EXEC[@]}"}" "${cmd[@]}" >>"$dir/server.log" 2>&1 &
  COLL_PID[$name]=$!
  if declare -p LIB_PIDS >/dev/null 2>&1; then LIB_PIDS+=("${COLL_PID[$name]}"); fi
  [[ ${2:-} == --no-wait ]] && return 0
  collector_ready_or_say "$name"
}

# collector_ready_or_say NAME: 0 once NAME answers; 1 and its log after 60 s.
collector_ready_or_say() {
  collector_wait_ready "$1" 60 && return 0
  echo "collector $1 (${COLL_KIND[$1]}) did not get ready in 60 s; its log:"
  tail -n 20 "$(collector_log "$1")" | sed 's/^/  | /'
  return 1
}

# collector_wait_ready NAME SECONDS: 0 once the server answers as ready.
collector_wait_ready() {
  local name=$1 limit=$2 try url
  url=$(collector_url "$name")
  for ((try = 0; try < limit * 5; try++)); do
    kill -0 "${COLL_PID[$name]}" 2>/dev/null || return 1
    if collector_exec "$PY" "$COLLECTOR_READ" ready "${COLL_KIND[$name]}" "$url" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# collector_stop NAME: SIGTERM, then SIGKILL if it still runs 15 s later.
collector_stop() {
  local name=$1 pid=${COLL_PID[$1]:-} try
  [[ -n $pid ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for ((try = 0; try < 150; try++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "collector $name: still running 15 s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null
    fi
  fi
  wait "$pid" 2>/dev/null
  forget_pid "$pid"
  COLL_PID[$name]=""
  echo "=== stopped $(date -u +%T.%N | cut -c1-12)" >>"${COLL_DIR[$name]}/server.log"
  return 0
}

# collectors_pause SECONDS NAME...: every NAME stopped at once for SECONDS,
# then the same servers again on the same data dirs and ports.
collectors_pause() {
  local secs=$1 name rc=0
  shift
  for name in "$@"; do
    # In parallel, so that the outages start together; the PID stays known here.
    if kill -0 "${COLL_PID[$name]:-0}" 2>/dev/null; then kill -TERM "${COLL_PID[$name]}"; fi
  done
  for name in "$@"; do collector_stop "$name"; done
  sleep "$secs"
  for name in "$@"; do collector_launch "$name" --no-wait; done
  for name in "$@"; do collector_ready_or_say "$name" || rc=1; done
  return "$rc"
}

# forget_pid PID: a process that was stopped and reaped leaves lib.sh's
# LIB_PIDS, so that the EXIT trap never signals a later process with its number.
forget_pid() {
  declare -p LIB_PIDS >/dev/null 2>&1 || return 0
  local keep=() p
  for p in "${LIB_PIDS[@]+"${LIB_PIDS[@]}"}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  LIB_PIDS=("${keep[@]+"${keep[@]}"}")
}

collectors_stop_all() {
  local name
  for name in "${!COLL_PID[@]}"; do collector_stop "$name"; done
}
