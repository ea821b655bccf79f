#!/usr/bin/env bash
# Collectors that misbehave: the agent runs ~20 s with five outputs that can
# never deliver, beside its file output, all on the vp's loopback:
#   prom_400     prometheus_remote_write: to a path that always answers 400
#                "out of bounds" (a batch the collector refuses: quarantined);
#   influx_500   influx: to a path that always answers 500;
#   http_slow    http: to a path that answers after longer than the output's timeout;
#   nats_closed  nats: to a loopback port nobody listens on;
#   https_badca  http: https:// to a server whose certificate its ca_file
#                does not vouch for.
# Expected: the probes keep their schedule (each closed series window holds
# the probes of its 2 s, ±1); each output has a log line naming it and its
# failure, and no more than one `send failed` line in the 20 s (one line per
# output per 30 s) while the servers saw many retries; the exit stats line of
# each output counts what happened (rejected for prom_400, failures for the
# others, nothing delivered). Exit 77 (skip) when not root.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init pbad
lib_need_tools openssl curl
lab_up --hosts 1

# A CA the agent trusts, another one that signed the server's certificate
# (valid for 127.0.0.1 otherwise).
TLS=$WORK/tls
mkdir -p "$TLS"
mk_tls() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=outpost-test-trusted-ca \
    -keyout "$TLS/trusted-ca.key" -out "$TLS/trusted-ca.pem" &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=outpost-test-other-ca \
      -keyout "$TLS/other-ca.key" -out "$TLS/other-ca.pem" &&
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$TLS/server.key" -out "$TLS/server.csr" &&
    printf 'subjectAltName=IP:127.0.0.1\n' >"$TLS/san.ext" &&
    openssl x509 -req -days 2 -in "$TLS/server.csr" -CA "$TLS/other-ca.pem" -CAkey "$TLS/other-ca.key" \
      -CAcreateserial -extfile "$TLS/san.ext" -out "$TLS/server.pem"
}
mk_tls >"$TLS/openssl.log" 2>&1 || { cat "$TLS/openssl.log"; echo "FAIL: openssl"; exit 1; }
echo "secret-token-for-the-test" >"$WORK/token"

# The test's own collector in the vp: /bad400, /err500, /slow on plain HTTP
# and /ingest on TLS; /stats (plain) counts the requests per path.
SERVER='
import http.server, json, socket, ssl, sys, threading, time
counts = {}
lock = threading.Lock()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        with lock:
            self.reply(200, json.dumps(counts))
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        with lock:
            counts[self.path.split("?")[0]] = counts.get(self.path.split("?")[0], 0) + 1
        if self.path.startswith("/bad400"):
            self.reply(400, "out of bounds")
        elif self.path.startswith("/err500"):
            self.reply(500, "internal error")
        elif self.path.startswith("/slow"):
            time.sleep(4)
            self.reply(204, "")
        else:
            self.reply(204, "")
class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
plain = Server(("127.0.0.1", 0), Handler)
tls = Server(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
closed = socket.socket()
closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
with open(sys.argv[3], "w") as f:
    f.write(f"{plain.server_address[1]} {tls.server_address[1]} {closed.getsockname()[1]}\n")
threading.Thread(target=tls.serve_forever, daemon=True).start()
plain.serve_forever()
'
"$NETLAB" exec vp "$PY" -c "$SERVER" "$TLS/server.pem" "$TLS/server.key" "$WORK/ports" 2>"$WORK/server.log" &
LIB_PIDS+=("$!")
for ((try = 0; try < 50; try++)); do [[ -s $WORK/ports ]] && break; sleep 0.1; done
read -r HTTP_PORT TLS_PORT CLOSED_PORT <"$WORK/ports" || { cat "$WORK/server.log"; echo "FAIL: the test server did not start"; exit 1; }
echo "  test server in the vp: http 127.0.0.1:$HTTP_PORT, https 127.0.0.1:$TLS_PORT, closed port $CLOSED_PORT"

# The test's servers do what they should (so that a failure below is the agent's).
in_curl() { in_vp curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }
check "test server: /bad400 answers 400" test "$(in_curl -d x "http://127.0.0.1:$HTTP_PORT/bad400")" = 400
check "test server: /err500 answers 500" test "$(in_curl -d x "http://127.0.0.1:$HTTP_PORT/err500")" = 500
check "test server: TLS with the CA that signed it works" \
  test "$(in_curl --cacert "$TLS/other-ca.pem" -d x "https://127.0.0.1:$TLS_PORT/ingest")" = 204
check "test server: TLS with the agent's ca_file fails verification" \
  bash -c "! '$NETLAB' exec vp curl -sf -o /dev/null --max-time 5 --cacert '$TLS/trusted-ca.pem' -d x 'https://127.0.0.1:$TLS_PORT/ingest'"
check "test server: the closed port refuses" \
  bash -c "! '$NETLAB' exec vp curl -sf -o /dev/null --max-time 5 -d x 'http://127.0.0.1:$CLOSED_PORT/'"
BEFORE=$(in_vp curl -s "http://127.0.0.1:$HTTP_PORT/stats")

OUT=$WORK/results.jsonl
LOG=$WORK/agent.log
CFG=$WORK/badinput.yaml
opts="batch_age: 1s, retry_min: 500ms, retry_max: 1s"
cat >"$CFG" <<EOF
agent: { id: itest-push-bad, state_dir: $WORK/state }
defaults: { interval: 1s, timeout: 500ms, probes: [icmp] }
groups:
  - name: lab
    targets:
      - { name: net1-h1, address: 198.18.0.1 }
report:
  window: 2s
  outputs:
    - file: $OUT
    - { prometheus_remote_write: "http://127.0.0.1:$HTTP_PORT/bad400", name: prom_400, timeout: 2s, $opts }
    - { influx: "http://127.0.0.1:$HTTP_PORT/err500", name: influx_500, timeout: 2s, $opts }
    - { http: "http://127.0.0.1:$HTTP_PORT/slow", name: http_slow, timeout: 1s, $opts }
    - { nats: "nats://127.0.0.1:$CLOSED_PORT", name: nats_closed, timeout: 1s, $opts }
    - { http: "https://127.0.0.1:$TLS_PORT/ingest", name: https_badca, ca_file: $TLS/trusted-ca.pem,
        token_file: $WORK/token, timeout: 2s, $opts }
EOF
OUTPUTS=(prom_400 influx_500 http_slow nats_closed https_badca)
check "outpost check accepts the config" quiet "$OUTPOST" check -c "$CFG"

(cd "$WORK" && exec "$NETLAB" exec vp timeout -k 5 60 "$OUTPOST" run -c "$CFG" --for 20s 2>"$LOG")
rc=$?
check "outpost run --for 20s exits 0 (got $rc)" test "$rc" -eq 0
AFTER=$(in_vp curl -s "http://127.0.0.1:$HTTP_PORT/stats")
echo "  requests per path before the run: $BEFORE; after: $AFTER"
check "the token is never logged" bash -c "! grep -q secret-token-for-the-test '$LOG'"

py_checks "$OUT" "$LOG" "$BEFORE" "$AFTER" "${OUTPUTS[@]}" <<'EOF'
path, log_path, before, after, outputs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3] or "{}"), \
    json.loads(sys.argv[4] or "{}"), sys.argv[5:]
records, bad = load_records(path)
check("every line is a JSON object", not bad and records, f"{len(records)} records")
series = [r for r in records if r.get("type") == "series"]
closed = [r for r in series if not r.get("partial")]
print("  sent per closed window: " + " ".join(str(r.get("sent")) for r in closed))
check("probing went on: at least 8 closed windows in 20 s", len(closed) >= 8, len(closed))
check("each closed window holds its 2 probes, within one", closed and all(abs(r.get("sent", 0) - 2) <= 1 for r in closed),
      [r.get("sent") for r in closed if abs(r.get("sent", 0) - 2) > 1])
probes = [r for r in records if r.get("type") == "probe"]
check("20 probes, within two", abs(len(probes) - 20) <= 2, len(probes))

log = open(log_path, errors="replace").read().splitlines()
def lines_of(name, what):
    return [l for l in log if f"output {name}: {what}" in l]
expect = {  # output -> (log line, words one of which names the failure)
    "prom_400": ("batch", ["rejected", "400", "out of bounds"]),
    "influx_500": ("send failed", ["500"]),
    "http_slow": ("send failed", ["timeout", "timed out", "time out"]),
    "nats_closed": ("send failed", ["refused", "no server", "connect", "unreachable"]),
    "https_badca": ("send failed", ["certificate", "ssl", "tls", "verify"]),
}
for name in outputs:
    what, words = expect[name]
    ls = lines_of(name, what)
    if name == "prom_400":
        ls = [l for l in ls if "rejected" in l]
    print(f"  {name}: {len(ls)} line(s); first: {ls[0] if ls else '-'}")
    check(f"{name}: a log line names the output and its failure",
          ls and any(w in ls[0].lower() for w in words), ls[:1])
    if name != "prom_400":
        check(f"{name}: 'send failed' logged once in 20 s (one line per 30 s)", len(ls) == 1, len(ls))
        check(f"{name}: the line says which batch and when it retries", ls and re.search(r"\(batch \S+, retry in [0-9.]+m?s\)", ls[0]),
              ls[:1])
    else:
        check("prom_400: the refused batch is quarantined", ls and "quarantined" in ls[0], ls[:1])
        check("prom_400: 'rejected' logged once in 20 s however many batches (one line per 30 s)", len(ls) == 1, len(ls))

def requests(p):
    return after.get(p, 0) - before.get(p, 0)
print(f"  requests seen: /bad400 {requests('/bad400')}, /err500 {requests('/err500')}, /slow {requests('/slow')}, "
      f"/ingest (TLS, handshake failed: none expected) {requests('/ingest')}")
check("influx_500 was retried many times (>= 5 requests) while logging once", requests("/err500") >= 5, requests("/err500"))
check("http_slow was retried (>= 3 requests)", requests("/slow") >= 3, requests("/slow"))
check("prom_400: its batches reached the server (>= 3)", requests("/bad400") >= 3, requests("/bad400"))
check("https_badca: no request got through the failed handshake", requests("/ingest") == 0, requests("/ingest"))

stats = {}
for l in log:
    m = re.search(r"output (\S+): (delivered=\d+(?: \w+=\d+)*)", l)
    if m:
        stats[m.group(1)] = {k: int(v) for k, v in (kv.split("=") for kv in m.group(2).split())}
for name in outputs:
    s = stats.get(name)
    print(f"  exit stats {name}: {s}")
    if not check(f"{name}: an exit stats line with every counter", s is not None and all(
            k in s for k in ("delivered", "delivered_records", "failures", "rejected", "rejected_records",
                             "evicted_records", "pending", "pending_records", "spool_bytes")), s):
        continue
    check(f"{name}: delivered=0", s["delivered"] == 0 and s["delivered_records"] == 0, s["delivered"])
    if name == "prom_400":
        check("prom_400: rejected >= 3 batches, their records counted", s["rejected"] >= 3 and s["rejected_records"] >= s["rejected"],
              (s["rejected"], s["rejected_records"]))
    else:
        check(f"{name}: failures counted (>= 3) and the batches still pending", s["failures"] >= 3 and s["pending"] >= 1
              and s["rejected"] == 0, (s["failures"], s["pending"], s["rejected"]))
EOF

if ((failures)); then echo "  --- agent log (end)"; tail -n 25 "$LOG" | sed 's/^/  | /'; fi
finish
