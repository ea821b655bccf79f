#!/usr/bin/env bash
# The systemd unit and the Debian package. The unit verifies
# (systemd-analyze verify) and rates "OK" or better (systemd-analyze
# security --offline). The optimised binary it packs has the functions its
# one-shot commands run side by side (agent/cli/startup.order, at least 9 in
# 10 of them still there). The .deb (scripts/package) has no lintian errors; it
# installs with dpkg -i: `outpost --version`, a TCP ping of loopback, a DNS
# ping of loopback (its packet module found in /usr/lib/outpost), a run
# serving agent.metrics (its metrics module found there), and `outpost
# check` on the installed example as the user outpost, pass; the user, its state directory
# and the unit are there and the installed unit verifies; dpkg -r keeps the
# conffile, dpkg --purge removes the binary, the unit, /etc/outpost,
# /var/lib/outpost and the user. The package never stays installed: it is
# purged on every exit, and the test skips on a machine where outpost is
# installed or the user outpost exists apart from it.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: needs root (installs the package on this machine and removes it)"
  exit 77
fi
lib_need_tools dpkg dpkg-deb lintian systemd-analyze flock setpriv getent

# One run of this test at a time on the machine (it installs into /).
exec 8>>/run/lock/outpost-package-test.lock
flock -w 1800 8 || { echo "FAIL: another package test holds the lock"; exit 1; }

installed() { dpkg-query -W -f='${Status}' outpost 2>/dev/null | grep -qv '^unknown\|not-installed'; }
if installed || getent passwd outpost >/dev/null || getent group outpost >/dev/null; then
  echo "SKIP: the outpost package or the user outpost is already on this machine; this test would remove it"
  exit 77
fi

WORK=$(mktemp -d /tmp/outpost-package.XXXXXX)
OURS=0  # set once dpkg -i has run: from then on the exit purges
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((OURS)) && installed; then
    echo "cleanup: purging the outpost package"
    dpkg --purge outpost >/dev/null 2>&1 || echo "cleanup: dpkg --purge outpost failed"
  fi
  if ((OURS)) && getent passwd outpost >/dev/null; then
    deluser --system --quiet outpost >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
unit=$OUTPOST_SOURCE_DIR/deploy/systemd/outpost.service
echo "$(basename "$0"): source $OUTPOST_SOURCE_DIR, work dir $WORK"

# --- the unit, before any install: ExecStart names the built binary, and
# the man page it names is found through MANPATH.
mkdir -p "$WORK/man/man1"
cp "$OUTPOST_SOURCE_DIR/deploy/man/outpost.1" "$WORK/man/man1/"
sed "s#^ExecStart=/usr/bin/outpost #ExecStart=$OUTPOST #" "$unit" >"$WORK/outpost.service"
MANPATH=$WORK/man systemd-analyze verify "$WORK/outpost.service" >"$WORK/verify.out" 2>&1
rc=$?
cat "$WORK/verify.out"
check "the unit verifies (systemd-analyze verify: exit 0, no complaint)" eval '[[ $rc -eq 0 && ! -s $WORK/verify.out ]]'
check "the unit is Type=notify with a watchdog, CAP_NET_RAW alone, as the user outpost" eval \
  'grep -qx "Type=notify" "$unit" && grep -q "^WatchdogSec=" "$unit" && grep -qx "AmbientCapabilities=CAP_NET_RAW" "$unit" &&
   grep -qx "CapabilityBoundingSet=CAP_NET_RAW" "$unit" && grep -qx "User=outpost" "$unit"'
systemd-analyze security --offline=true "$unit" >"$WORK/security.out" 2>&1
score=$(grep -o 'Overall exposure level for outpost.service: .*' "$WORK/security.out")
echo "security: $score"
check "systemd-analyze security rates the unit OK or better" eval '[[ $score =~ :\ [0-9.]+\ (OK|SAFE) ]]'

# --- the agent under a stand-in for systemd: a unix datagram socket as
# NOTIFY_SOCKET, a 1 s watchdog, standard error as the "journal's stream".
# One target on loopback (tcp_connect to a closed port: no privilege, no
# packet leaves the host); a SIGHUP once READY came.
cat >"$WORK/lo.yaml" <<'YAML'
agent: { id: notify-test, max_pps: 20 }
defaults: { interval: 500ms, timeout: 300ms, probes: ["tcp_connect:9"] }
groups:
  - name: lo
    targets:
      - { name: lo1, address: 127.0.0.1 }
YAML
py_checks "$OUTPOST" "$WORK" <<'PY'
import os, signal, socket, subprocess, time
outpost, work = sys.argv[1], sys.argv[2]
path = work + "/notify"
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.settimeout(0.2)
log = open(work + "/notify-run.log", "w+")
st = os.fstat(log.fileno())
env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000", JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
# WATCHDOG_PID names the agent itself: the shell execs it.
agent = subprocess.Popen(["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"', outpost, "run", "-c", work + "/lo.yaml",
                          "--for", "4s", "-o", work + "/notify.jsonl"], env=env, stdout=subprocess.DEVNULL, stderr=log)
messages, hup_sent, deadline = [], False, time.time() + 60
while time.time() < deadline:
    try:
        messages.append(sock.recv(4096).decode())
    except socket.timeout:
        if agent.poll() is not None:
            break
        continue
    if not hup_sent and messages[-1].startswith("READY=1"):
        agent.send_signal(signal.SIGHUP)
        hup_sent = True
if agent.poll() is None:
    agent.kill()
rc = agent.wait()
print("notify messages:", [m.replace("\n", "|") for m in messages])
check("outpost run under NOTIFY_SOCKET: exit 0", rc == 0, rc)
ready = [i for i, m in enumerate(messages) if m.startswith("READY=1\nSTATUS=")]
check("READY=1 with STATUS= once it runs", bool(ready) and "probing 1 targets (0 down), 1 outputs" in messages[ready[0]],
      messages[ready[0]] if ready else "none")
reloading = [i for i, m in enumerate(messages) if m.startswith("RELOADING=1\nMONOTONIC_USEC=")]
check("SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again", bool(reloading) and len(ready) >= 2 and
      ready[0] < reloading[0] < ready[1], (ready, reloading))
check("WATCHDOG=1 pings (every 0.5 s of a 1 s watchdog over 4 s)", messages.count("WATCHDOG=1") >= 4,
      messages.count("WATCHDOG=1"))
check("STOPPING=1 at the end, once", messages.count("STOPPING=1") == 1 and
      messages.index("STOPPING=1") > max(ready + reloading), messages[-3:])
log.seek(0)
lines = log.read().splitlines()
check("on the journal's stream each line is <N>message: no time stamp, no colour",
      bool(lines) and all(re.match(r"^<[2-7]>[^\x1b]*$", l) for l in lines) and
      any(l.startswith("<6>outpost agent notify-test running") for l in lines), lines[:3])
os.unlink(path)
PY

# Log levels: agent.log_level, and --log-level over it.
sed 's/max_pps: 20 }/max_pps: 20, log_level: warn }/' "$WORK/lo.yaml" >"$WORK/lo-warn.yaml"
"$OUTPOST" run -c "$WORK/lo-warn.yaml" --for 1s -o "$WORK/warn.jsonl" 2>"$WORK/warn.log"
rc=$?
check "agent.log_level: warn leaves out the info lines" eval '[[ $rc -eq 0 ]] && ! grep -q " info " "$WORK/warn.log"'
"$OUTPOST" run -c "$WORK/lo-warn.yaml" --for 1s -o "$WORK/warn.jsonl" --log-level info 2>"$WORK/info.log"
check "--log-level info wins over agent.log_level: warn" grep -q " info outpost agent notify-test running" "$WORK/info.log"
"$OUTPOST" run -c "$WORK/lo-warn.yaml" --log-level loud 2>"$WORK/loud.log"
rc=$?
check "--log-level loud: exit 64 naming the levels" eval \
  '[[ $rc -eq 64 ]] && grep -q "expected debug, info, warn or error" "$WORK/loud.log"'

# --- the package
deb=$("$OUTPOST_SOURCE_DIR/scripts/package" 2>"$WORK/package.log" | tail -n 1)
if [[ ! -f $deb ]]; then
  tail -n 40 "$WORK/package.log"
  check "scripts/package made a .deb" false
  finish
fi
echo "package: $deb"
dpkg-deb -f "$deb" Package Version Architecture Depends
dpkg-deb -c "$deb" | awk '{print $1, $2, $NF}' >"$WORK/contents"
has() { grep -q " \./$1\$" "$WORK/contents"; }
check "it holds the binary, the unit, the config, the man page, README and copyright" eval \
  'has usr/bin/outpost && has lib/systemd/system/outpost.service && has etc/outpost/outpost.yaml &&
   has usr/share/man/man1/outpost.1.gz && has usr/share/doc/outpost/README.md && has usr/share/doc/outpost/copyright'
check "it holds the fleet's Prometheus rules" eval 'has usr/share/outpost/prometheus/outpost.rules.yml'
check "it holds the packet module, /usr/lib/outpost/outpost-tins.so" eval 'has usr/lib/outpost/outpost-tins.so'
check "it holds the metrics module, /usr/lib/outpost/outpost-metrics.so" eval 'has usr/lib/outpost/outpost-metrics.so'
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$WORK/conffiles" 2>/dev/null
check "/etc/outpost/outpost.yaml is a conffile" grep -qx /etc/outpost/outpost.yaml "$WORK/conffiles"
depends=$(dpkg-deb -f "$deb" Depends)
# libsystemd0 is opened at run time (named by package.cmake); libpcap is
# linked in (its lintian override says why), so its package is not named.
check "Depends names the shared libraries and adduser, and not libpcap" eval \
  '[[ $depends == *libtins* && $depends == *libsystemd0* && $depends == *libstdc++6* && $depends == *adduser* &&
     $depends != *libpcap* ]]'
check "it holds the lintian overrides of the embedded libpcap and zlib" eval 'has usr/share/lintian/overrides/outpost'

# The start-up order (agent/cli/CMakeLists.txt): in the optimised binary,
# the functions the one-shot commands run lie side by side. Without the
# order they spread over the whole code (about 3 MB), in pages of their own.
layout=$(nm -S --defined-only "$OUTPOST_SOURCE_DIR/build/outpost" |
  python3 -c '
import sys
names = [l.strip() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
syms = {}
for line in sys.stdin:
    f = line.split()
    if len(f) == 4 and f[2] in "tTwW":
        syms.setdefault(f[3], (int(f[0], 16), int(f[1], 16)))
found = [syms[n] for n in names if n in syms]
span = max(a + z for a, z in found) - min(a for a, z in found) if found else 0
print(len(names), len(found), span, sum(z for a, z in found), max(a + z for a, z in syms.values()) - min(a for a, z in syms.values()))
' "$OUTPOST_SOURCE_DIR/agent/cli/startup.order")
read -r listed found span size code <<<"${layout:-0 0 0 0 0}"
echo "start-up order: $found of $listed functions found, $size bytes of them within $span bytes, of $code of code"
check "the listed start-up functions are in the binary (at least 9 in 10: the list is not stale)" \
  test $((found * 10)) -ge $((listed * 9))
check "they lie together (within twice their size; lld read the order)" \
  eval '((found > 0 && span <= 2 * size && 4 * span < code))'

lintian --tag-display-limit 0 "$deb" >"$WORK/lintian.out" 2>&1
echo "lintian: $(grep -c '^E:' "$WORK/lintian.out") errors, $(grep -c '^W:' "$WORK/lintian.out") warnings"
cat "$WORK/lintian.out"
check "lintian reports no errors" eval '! grep -q "^E:" "$WORK/lintian.out"'

# --- install
OURS=1
dpkg -i "$deb" >"$WORK/install.log" 2>&1
rc=$?
cat "$WORK/install.log"
check "dpkg -i installs it" test "$rc" -eq 0
version=$(/usr/bin/outpost --version 2>&1)
check "outpost --version: $version" eval '[[ $version == *"$(dpkg-deb -f "$deb" Version)"* ]]'
# A TCP SYN to a closed port on loopback (forged by hand: no module).
timeout 10 /usr/bin/outpost ping -c 1 --method tcp:1 127.0.0.1 >"$WORK/syn.out" 2>&1
rc=$?
cat "$WORK/syn.out"
check "the installed outpost forges a TCP SYN (ping --method tcp:1 127.0.0.1: refused)" eval \
  '[[ $rc -eq 0 ]] && grep -q "1 refused" "$WORK/syn.out"'
# A DNS query to loopback: built by the packet module, which the installed
# binary finds in ../lib/outpost. The query goes out whether or not this host
# serves DNS on 127.0.0.1 (port unreachable, or an answer).
timeout 10 /usr/bin/outpost ping -c 1 --method dns --query outpost.test 127.0.0.1 >"$WORK/module.out" 2>&1
cat "$WORK/module.out"
check "the installed outpost loads its packet module (ping --method dns 127.0.0.1: the query sent)" eval \
  'grep -q "^1 probes sent" "$WORK/module.out" && ! grep -q "outpost-tins" "$WORK/module.out"'
# libstdc++ comes from its archive (spdlog and fmt are built in), the
# modules bring the shared one: the two meet in the modules' tables. zlib
# and libgcc's unwinder come from their archives too (no exception crosses
# a module's edge), and libm is not needed at all: a library fewer is
# 0.2 ms fewer of every start.
needed=$(readelf -d /usr/bin/outpost 2>&1 | grep NEEDED)
echo "$needed"
check "the installed outpost needs libc, and no libstdc++, libgcc_s, libfmt, libspdlog, libm or libz" eval \
  '[[ $needed == *libc.so* && $needed != *libstdc++* && $needed != *libgcc_s* && $needed != *libfmt* &&
     $needed != *libspdlog* && $needed != *libm.so* && $needed != *libz.so* ]]'
# A run with agent.metrics on loopback: the exposer comes from the metrics
# module in ../lib/outpost (no probe leaves the host: tcp_connect to a closed port).
printf '%s\n' 'agent: { id: pkg-metrics, metrics: "127.0.0.1:19465" }' \
  'defaults: { interval: 500ms, timeout: 300ms, probes: ["tcp_connect:9"] }' \
  'groups: [ { name: lo, targets: [ { name: lo1, address: 127.0.0.1 } ] } ]' >"$WORK/metrics.yaml"
timeout 20 /usr/bin/outpost run -c "$WORK/metrics.yaml" --for 1s -o "$WORK/metrics.jsonl" >"$WORK/metrics.log" 2>&1
rc=$?
check "the installed outpost loads its metrics module (run with agent.metrics: exit 0, serving)" eval \
  '[[ $rc -eq 0 ]] && grep -q "metrics: serving http://127.0.0.1:19465/metrics" "$WORK/metrics.log"'
# The module's exception (the port is taken) reaches the executable's handler.
python3 -c 'import socket, time; s = socket.socket(); s.bind(("127.0.0.1", 19466)); s.listen(); time.sleep(30)' &
holder=$!
for _ in $(seq 50); do ss -ltn 'sport = :19466' | grep -q 19466 && break; sleep 0.1; done
sed 's/19465/19466/' "$WORK/metrics.yaml" >"$WORK/metrics-taken.yaml"
timeout 20 /usr/bin/outpost run -c "$WORK/metrics-taken.yaml" --for 1s -o "$WORK/metrics-taken.jsonl" \
  >"$WORK/metrics-taken.log" 2>&1
rc=$?
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
cat "$WORK/metrics-taken.log"
check "agent.metrics on a taken port: exit 1 with the module's reason (got $rc)" eval \
  '[[ $rc -eq 1 ]] && grep -q "agent.metrics: cannot listen on 127.0.0.1:19466" "$WORK/metrics-taken.log"'
check "the user outpost is a system user without a login" eval \
  'entry=$(getent passwd outpost) && uid=$(cut -d: -f3 <<<"$entry") && ((uid < 1000)) && [[ $entry == *nologin* ]]'
check "/var/lib/outpost belongs to outpost, mode 750" eval '[[ $(stat -c "%U:%G %a" /var/lib/outpost) == "outpost:outpost 750" ]]'
setpriv --reuid outpost --regid outpost --clear-groups /usr/bin/outpost check -c /etc/outpost/outpost.yaml >"$WORK/check.out" 2>&1
rc=$?
cat "$WORK/check.out"
check "outpost check on the installed example, as the user outpost: exit 0" eval '[[ $rc -eq 0 ]] && grep -q ": ok:" "$WORK/check.out"'
systemd-analyze verify /lib/systemd/system/outpost.service >"$WORK/verify-installed.out" 2>&1
rc=$?
cat "$WORK/verify-installed.out"
check "the installed unit verifies" eval '[[ $rc -eq 0 && ! -s $WORK/verify-installed.out ]]'

# --- remove, then purge
dpkg -r outpost >"$WORK/remove.log" 2>&1
check "dpkg -r removes the binary and the unit, keeps the config and the user" eval \
  '[[ ! -e /usr/bin/outpost && ! -e /lib/systemd/system/outpost.service && -f /etc/outpost/outpost.yaml ]] && getent passwd outpost >/dev/null'
dpkg --purge outpost >"$WORK/purge.log" 2>&1
rc=$?
cat "$WORK/purge.log"
check "dpkg --purge: exit 0, nothing of outpost left" eval \
  '[[ $rc -eq 0 && ! -e /etc/outpost && ! -e /var/lib/outpost && ! -e /usr/share/doc/outpost ]] && ! installed &&
   ! getent passwd outpost >/dev/null && ! getent group outpost >/dev/null'
finish
