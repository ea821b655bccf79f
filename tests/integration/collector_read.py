#!/usr/bin/python3
"""Reads outpost's series windows back from the collectors it pushes to, and
from its JSON Lines file, into one normal form, and compares them.
Leaves to others: starting the servers (collectors_lib.sh) and running the
agent (test_agent_collectors.sh). Standard library only.

The normal form of a window: (agent, target, method, af, port, window_start)
-> {sent, received, loss, rtt_*_ms}; window_start in epoch seconds (ms
resolution: every store keeps at least milliseconds), port "" unless tcp.

  collector_read.py jsonl FILE
  collector_read.py vm URL [--names influx|remote-write]
  collector_read.py prom URL
  collector_read.py influx URL DB
  collector_read.py nats URL STREAM [--messages]
  collector_read.py compare FILE STORE ARGS...   # STORE ARGS as above
  collector_read.py prove vm|prom|influx|nats URL [DB|STREAM]
  collector_read.py ready vm|prom|influx|nats URL

Reads print one JSON object per window found (a window found twice is
printed twice). `compare` checks that every series window of FILE is in the
store with equal values and none appears twice (for NATS also: no record of
any type twice, no two messages with the same Nats-Msg-Id), prints a summary
line `STORE: windows expected=N found=N missing=N differing=N duplicates=N
extra=N` and exits 1 on any miss. `prove` writes made-up windows into a
store itself (Influx line protocol, VictoriaMetrics import, remote write,
JetStream publish), reads them back with the readers here and checks that
`compare` finds them, and finds a missing, a changed and a doubled window.
Reads take --start/--end (epoch seconds; default the last 6 hours).
"""

import argparse
import base64
import json
import math
import os
import socket
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

RTT_FIELDS = ("min", "avg", "p50", "p95", "max", "stddev")
VALUE_FIELDS = ("sent", "received", "loss") + tuple(f"rtt_{f}_ms" for f in RTT_FIELDS)
KEY_FIELDS = ("agent", "target", "method", "af", "port", "window_start")
HTTP_TIMEOUT = 10


# ---------------------------------------------------------------- normal form

def make_key(agent, target, method, af, port, start_ms):
    af = "" if af in (None, "") else str(int(float(af)))
    port = "" if port in (None, "") or method != "tcp" else str(int(float(port)))
    return (str(agent), str(target), str(method), af, port, int(start_ms))


def key_text(key):
    a, t, m, af, port, ms = key
    when = datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    return f"{a}/{t}/{m}{':' + port if port else ''}/af{af}@{when}"


def rfc3339_ms(text):
    """Milliseconds since the epoch of an RFC 3339 UTC time (floor)."""
    s = text.rstrip("Z")
    whole, _, frac = s.partition(".")
    dt = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    us = int((frac + "000000")[:6]) if frac else 0
    return int(dt.timestamp()) * 1000 + us // 1000


def window_of_record(r):
    """(key, values) of a series record."""
    key = make_key(r.get("agent"), r.get("target"), r.get("method"), r.get("af"), r.get("port"),
                   rfc3339_ms(r["window_start"]))
    values = {f: r[f] for f in VALUE_FIELDS if isinstance(r.get(f), (int, float)) and not isinstance(r.get(f), bool)}
    return key, values


def add(windows, key, values):
    windows.setdefault(key, []).append(values)


def print_windows(windows):
    for key in sorted(windows):
        for values in windows[key]:
            row = dict(zip(KEY_FIELDS, key))
            row["window_start"] = key[5] / 1000
            row.update(values)
            print(json.dumps(row, sort_keys=True))


# ---------------------------------------------------------------- readers

def read_jsonl(path):
    """(records, numbers of the lines that are not JSON objects)."""
    records, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                if not isinstance(r, dict):
                    raise ValueError("not an object")
                records.append(r)
            except ValueError:
                bad.append(number)
    return records, bad


def windows_of_records(records):
    windows = {}
    for r in records:
        if r.get("type") == "series" and "window_start" in r:
            add(windows, *window_of_record(r))
    return windows


def http_get(url, params=None, data=None, headers=None, method=None):
    if params:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
        return resp.status, resp.read()


# Store metric name -> (normal field, factor) for each naming.
REMOTE_WRITE_NAMES = {"outpost_probes_sent": ("sent", 1), "outpost_probes_received": ("received", 1),
                      "outpost_loss_ratio": ("loss", 1)}
REMOTE_WRITE_NAMES.update({f"outpost_rtt_{f}_seconds": (f"rtt_{f}_ms", 1000) for f in RTT_FIELDS})
INFLUX_NAMES = {"outpost_series_sent": ("sent", 1), "outpost_series_received": ("received", 1),
                "outpost_series_loss": ("loss", 1)}
INFLUX_NAMES.update({f"outpost_series_rtt_{f}_ms": (f"rtt_{f}_ms", 1) for f in RTT_FIELDS})


def windows_of_samples(series, names):
    """series: [(labels, [(ts_ms, value)])] -> windows. A window seen twice in
    one metric (the same timestamp twice in a series, or two series that
    differ only in labels outside the key) counts as found twice."""
    seen = {}  # key -> {field: [values]}
    for labels, samples in series:
        name = labels.get("__name__")
        if name not in names:
            continue
        field, factor = names[name]
        for ts, value in samples:
            key = make_key(labels.get("agent"), labels.get("target"), labels.get("method"),
                           labels.get("af"), labels.get("port"), ts)
            seen.setdefault(key, {}).setdefault(field, []).append(float(value) * factor)
    windows = {}
    for key, fields in seen.items():
        copies = max(len(v) for v in fields.values())
        for i in range(copies):
            add(windows, key, {f: v[min(i, len(v) - 1)] for f, v in fields.items()})
    return windows


def read_vm(url, names, start, end):
    """VictoriaMetrics' raw samples (/api/v1/export), after a flush."""
    base = url.rstrip("/")
    try:
        http_get(base + "/internal/force_flush")
    except urllib.error.URLError:
        pass
    prefix = "outpost_series_" if names is INFLUX_NAMES else "outpost_(probes|loss|rtt)_"
    _, body = http_get(base + "/api/v1/export",
                       {"match[]": '{__name__=~"%s.+"}' % prefix, "start": int(start), "end": int(end) + 1})
    series = []
    for line in body.decode().splitlines():
        if line.strip():
            row = json.loads(line)
            series.append((row["metric"], list(zip(row["timestamps"], row["values"]))))
    return windows_of_samples(series, names)


def read_prom(url, start, end):
    """Prometheus' raw samples: an instant query of a range selector over the run."""
    span = max(1, int(math.ceil(end - start)))
    query = '{__name__=~"outpost_(probes_sent|probes_received|loss_ratio|rtt_[a-z0-9]+_seconds)"}[%ds]' % span
    _, body = http_get(url.rstrip("/") + "/api/v1/query", {"query": query, "time": f"{end:.3f}"})
    reply = json.loads(body)
    if reply.get("status") != "success":
        raise RuntimeError(f"prometheus: {reply}")
    series = []
    for row in reply["data"]["result"]:
        series.append((row["metric"], [(int(round(float(t) * 1000)), float(v)) for t, v in row["values"]]))
    return windows_of_samples(series, REMOTE_WRITE_NAMES)


def read_influx(url, db, start, end):
    """InfluxDB's points of outpost_series (a point written twice is one point there)."""
    q = f"SELECT * FROM outpost_series WHERE time >= {int(start)}s AND time <= {int(end) + 1}s"
    _, body = http_get(url.rstrip("/") + "/query", {"db": db, "q": q, "epoch": "ns"})
    reply = json.loads(body)
    windows = {}
    for result in reply.get("results", []):
        if "error" in result:
            raise RuntimeError(f"influx: {result['error']}")
        for s in result.get("series", []):
            cols = s["columns"]
            for row in s["values"]:
                p = dict(zip(cols, row))
                key = make_key(p.get("agent"), p.get("target"), p.get("method"), p.get("af"), p.get("port"),
                               int(p["time"]) // 1000000)
                add(windows, key, {f: float(p[f]) for f in VALUE_FIELDS if p.get(f) is not None})
    return windows


# ---------------------------------------------------------------- NATS

class Nats:
    """Just enough of the NATS text protocol for JetStream API requests."""

    def __init__(self, url, timeout=5.0):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 4222), timeout=timeout)
        self.buf = b""
        line = self._line()
        if not line.startswith(b"INFO "):
            raise RuntimeError(f"nats: no INFO: {line!r}")
        self.info = json.loads(line[5:])
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,'
                          b'"protocol":1,"lang":"outpost-test","version":"1"}\r\nPING\r\n')
        while True:
            line = self._line()
            if line == b"PONG":
                break
            if line.startswith(b"-ERR"):
                raise RuntimeError(f"nats: {line!r}")
        self.inbox = f"_INBOX.outpost_read_{os.getpid()}_{int(time.time() * 1000)}"
        self.sock.sendall(f"SUB {self.inbox}.* 1\r\n".encode())
        self.n = 0

    def close(self):
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("nats: connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _message(self):
        """(subject, headers bytes or None, payload) of the next MSG/HMSG."""
        while True:
            line = self._line()
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
                continue
            if line.startswith(b"-ERR"):
                raise RuntimeError(f"nats: {line!r}")
            parts = line.split()
            if parts and parts[0] == b"MSG":
                return parts[1].decode(), None, self._bytes(int(parts[-1]))
            if parts and parts[0] == b"HMSG":
                hlen, total = int(parts[-2]), int(parts[-1])
                data = self._bytes(total)
                return parts[1].decode(), data[:hlen], data[hlen:]

    def request(self, subject, payload=b"", headers=None):
        """The reply's (headers bytes or None, payload)."""
        self.n += 1
        reply = f"{self.inbox}.{self.n}"
        if headers:
            h = b"NATS/1.0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"
            self.sock.sendall(f"HPUB {subject} {reply} {len(h)} {len(h) + len(payload)}\r\n".encode()
                              + h + payload + b"\r\n")
        else:
            self.sock.sendall(f"PUB {subject} {reply} {len(payload)}\r\n".encode() + payload + b"\r\n")
        while True:
            subj, hdrs, data = self._message()
            if subj == reply:
                if hdrs and hdrs.split(b"\r\n", 1)[0].strip().startswith(b"NATS/1.0 503"):
                    raise RuntimeError(f"nats: no responders for {subject} (JetStream off?)")
                return hdrs, data

    def js(self, api, body=None):
        _, data = self.request("$JS.API." + api, json.dumps(body).encode() if body is not None else b"")
        return json.loads(data)


def parse_headers(raw):
    out = {}
    for line in raw.decode(errors="replace").split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def read_nats_messages(url, stream):
    """Every message of STREAM: [{seq, subject, msg_id, records, bad_lines}]."""
    nc = Nats(url)
    try:
        info = nc.js("STREAM.INFO." + stream)
        if "error" in info:
            raise RuntimeError(f"nats: stream {stream}: {info['error']}")
        state = info["state"]
        messages = []
        if state.get("messages", 0) == 0:
            return messages
        for seq in range(state["first_seq"], state["last_seq"] + 1):
            got = nc.js("STREAM.MSG.GET." + stream, {"seq": seq})
            if "error" in got:
                if got["error"].get("err_code") == 10037:  # deleted: not there any more
                    continue
                raise RuntimeError(f"nats: message {seq}: {got['error']}")
            m = got["message"]
            headers = parse_headers(base64.b64decode(m["hdrs"])) if m.get("hdrs") else {}
            data = base64.b64decode(m.get("data") or "")
            records, bad = [], 0
            for line in data.decode(errors="replace").splitlines():
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    if not isinstance(r, dict):
                        raise ValueError
                    records.append(r)
                except ValueError:
                    bad += 1
            ids = headers.get("Nats-Msg-Id", [])
            messages.append({"seq": seq, "subject": m.get("subject"), "msg_id": ids[0] if ids else None,
                             "records": records, "bad_lines": bad})
        return messages
    finally:
        nc.close()


def nats_problems(messages):
    """(records seen twice, msg ids seen twice, lines that are not JSON)."""
    seen, twice = {}, []
    ids, ids_twice = {}, []
    bad = sum(m["bad_lines"] for m in messages)
    for m in messages:
        if m["msg_id"] is not None:
            if m["msg_id"] in ids:
                ids_twice.append(m["msg_id"])
            ids[m["msg_id"]] = m["seq"]
        for r in m["records"]:
            c = json.dumps(r, sort_keys=True)
            if c in seen:
                twice.append(c)
            seen[c] = m["seq"]
    return twice, ids_twice, bad


# ---------------------------------------------------------------- compare

def close_enough(a, b):
    return abs(a - b) <= max(1e-4, 1e-5 * max(abs(a), abs(b)))


def compare_windows(expected, found):
    """Every expected window found once with equal values; found windows of
    other agents than the expected ones are ignored."""
    agents = {k[0] for k in expected}
    found = {k: v for k, v in found.items() if k[0] in agents}
    rep = {"expected": len(expected), "found": 0, "missing": [], "differing": [], "duplicates": [], "extra": []}
    for key, copies in sorted(expected.items()):
        want = copies[0]
        if len(copies) > 1:
            rep["duplicates"].append((key, "twice in the file"))
        got = found.get(key)
        if not got:
            rep["missing"].append(key)
            continue
        rep["found"] += 1
        if len(got) > 1:
            rep["duplicates"].append((key, f"{len(got)} times in the store"))
        for g in got:
            diffs = []
            for f in sorted(set(want) | set(g)):
                if f not in g or f not in want or not close_enough(float(want[f]), float(g[f])):
                    diffs.append(f"{f}: file {want.get(f)} store {g.get(f)}")
            if diffs:
                rep["differing"].append((key, "; ".join(diffs)))
                break
    rep["extra"] = sorted(k for k in found if k not in expected)
    return rep


def print_report(name, rep, limit=5):
    print(f"{name}: windows expected={rep['expected']} found={rep['found']} missing={len(rep['missing'])} "
          f"differing={len(rep['differing'])} duplicates={len(rep['duplicates'])} extra={len(rep['extra'])}")
    for k in rep["missing"][:limit]:
        print(f"  missing: {key_text(k)}")
    for k, d in rep["differing"][:limit]:
        print(f"  differing: {key_text(k)}: {d}")
    for k, d in rep["duplicates"][:limit]:
        print(f"  duplicate: {key_text(k)}: {d}")
    for k in rep["extra"][:limit]:
        print(f"  extra (not in the file): {key_text(k)}")


def report_ok(rep):
    return not rep["missing"] and not rep["differing"] and not rep["duplicates"]


# ---------------------------------------------------------------- stores by name

def read_store(store, args, start, end):
    """(windows, nats messages or None) of STORE with ARGS."""
    if store == "vm":
        names = INFLUX_NAMES if args.names == "influx" else REMOTE_WRITE_NAMES
        return read_vm(args.url, names, start, end), None
    if store == "prom":
        return read_prom(args.url, start, end), None
    if store == "influx":
        return read_influx(args.url, args.db, start, end), None
    if store == "nats":
        messages = read_nats_messages(args.url, args.stream)
        return windows_of_records([r for m in messages for r in m["records"]]), messages
    raise SystemExit(f"unknown store {store}")


def store_name(store, args):
    if store == "vm":
        return f"vm ({args.names})"
    return store


# ---------------------------------------------------------------- writers (prove)

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_len(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data


def snappy_literal(data):
    """Snappy block format, literals only (valid, not compressed)."""
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        else:
            out.append(61 << 2)
            out += struct.pack("<H", n)
        out += chunk
    return bytes(out)


def remote_write_body(series):
    """series: [(labels, [(ts_ms, value)])] -> snappy'd WriteRequest."""
    req = b""
    for labels, samples in series:
        ts = b""
        for name in sorted(labels):
            ts += pb_len(1, pb_len(1, name.encode()) + pb_len(2, str(labels[name]).encode()))
        for t, v in samples:
            ts += pb_len(2, b"\x09" + struct.pack("<d", v) + b"\x10" + varint(t))
        req += pb_len(1, ts)
    return snappy_literal(req)


def made_up_windows(agent, count=5):
    """Windows as the agent's file would hold them (2 s apart, ending 100 s ago)."""
    base = (int(time.time()) - 100) // 2 * 2 - 2 * count
    records = []
    for i in range(count):
        start = base + 2 * i
        for target, method, af, port in (("proof-a", "icmp", 4, None), ("proof-b", "tcp", 6, 443)):
            sent, received = 2, (2 if i % 3 else (0 if target == "proof-a" else 1))
            r = {"type": "series", "agent": agent, "group": "proof", "target": target, "method": method,
                 "af": af, "window_start": datetime.fromtimestamp(start, timezone.utc).strftime(
                     "%Y-%m-%dT%H:%M:%S.000000Z"), "window_s": 2, "sent": sent, "received": received,
                 "loss": 1 - received / sent}
            if port:
                r["port"] = port
            if received:
                rtt = 1.234567 + i * 0.5 + (0.25 if method == "tcp" else 0)
                r.update({"rtt_min_ms": rtt, "rtt_avg_ms": rtt + 0.1, "rtt_p50_ms": rtt + 0.05,
                          "rtt_p95_ms": rtt + 0.2, "rtt_max_ms": rtt + 0.3, "rtt_stddev_ms": 0.0123})
            records.append(r)
    return records


def influx_lines(records):
    lines = []
    for r in records:
        tags = {"af": r["af"], "agent": r["agent"], "group": r["group"], "method": r["method"], "target": r["target"]}
        if "port" in r:
            tags["port"] = r["port"]
        fields = [f"sent={r['sent']}i", f"received={r['received']}i", f"loss={r['loss']!r}", "window_s=2"]
        fields += [f"rtt_{f}_ms={r['rtt_' + f + '_ms']!r}" for f in RTT_FIELDS if f"rtt_{f}_ms" in r]
        ns = rfc3339_ms(r["window_start"]) * 1000000
        lines.append("outpost_series," + ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
                     + " " + ",".join(fields) + f" {ns}")
    return ("\n".join(lines) + "\n").encode()


def remote_write_series(records):
    series = []
    for r in records:
        labels = {"agent": r["agent"], "group": r["group"], "target": r["target"], "method": r["method"],
                  "af": str(r["af"])}
        if "port" in r:
            labels["port"] = str(r["port"])
        ts = rfc3339_ms(r["window_start"])
        values = {"outpost_probes_sent": r["sent"], "outpost_probes_received": r["received"],
                  "outpost_loss_ratio": r["loss"]}
        values.update({f"outpost_rtt_{f}_seconds": r[f"rtt_{f}_ms"] / 1000 for f in RTT_FIELDS if f"rtt_{f}_ms" in r})
        for name, v in values.items():
            series.append((dict(labels, __name__=name), [(ts, float(v))]))
    return series


def vm_import_lines(records):
    out = []
    for labels, samples in remote_write_series(records):
        out.append(json.dumps({"metric": labels, "values": [v for _, v in samples],
                               "timestamps": [t for t, _ in samples]}))
    return ("\n".join(out) + "\n").encode()


def prove(kind, url, extra):
    """Writes made-up windows into the store, reads them back; 0 when every check holds."""
    fails = 0

    def check(name, ok, detail=""):
        nonlocal fails
        print(("PASS: " if ok else "FAIL: ") + f"reader {kind}: {name}" + (f" ({detail})" if detail != "" else ""))
        fails += 0 if ok else 1

    agent = f"reader-proof-{kind}-{os.getpid()}"
    records = made_up_windows(agent)
    expected = windows_of_records(records)
    start, end = time.time() - 3600, time.time() + 60
    doubled = None  # a window the store should show twice, when it can
    messages = None
    base = url.rstrip("/")
    if kind == "influx":
        db = extra
        http_get(base + "/query", {"q": f'CREATE DATABASE "{db}"'}, data=b"", method="POST")
        status, _ = http_get(base + "/write", {"db": db}, data=influx_lines(records), method="POST")
        check("write accepted (line protocol)", status == 204, status)
        # The same point again: InfluxDB keeps one point per series and time.
        http_get(base + "/write", {"db": db}, data=influx_lines(records[:1]), method="POST")
        found = read_influx(base, db, start, end)
    elif kind == "vm":
        # The Influx names through /write, the remote write names through /api/v1/import.
        status, _ = http_get(base + "/write", {"db": "outpost"}, data=influx_lines(records), method="POST")
        check("/write accepted", status == 204, status)
        status, _ = http_get(base + "/api/v1/import", data=vm_import_lines(records), method="POST")
        check("/api/v1/import accepted", status == 204, status)
        # One window again through each: the export shows a sample written twice.
        http_get(base + "/write", {"db": "outpost"}, data=influx_lines(records[:1]), method="POST")
        http_get(base + "/api/v1/import", data=vm_import_lines(records[:1]), method="POST")
        doubled = window_of_record(records[0])[0]
        found_influx = read_vm(base, INFLUX_NAMES, start, end)
        rep = compare_windows(expected, found_influx)
        print_report("  vm (influx names)", rep)
        check("influx names: every window back once (but the doubled one) with equal values",
              not rep["missing"] and not rep["differing"] and [k for k, _ in rep["duplicates"]] == [doubled])
        found = read_vm(base, REMOTE_WRITE_NAMES, start, end)
    elif kind == "prom":
        body = remote_write_body(remote_write_series(records))
        status, _ = http_get(base + "/api/v1/write", data=body, method="POST",
                             headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                                      "X-Prometheus-Remote-Write-Version": "0.1.0"})
        check("remote write accepted", status in (200, 204), status)
        found = read_prom(base, start, end)
    elif kind == "nats":
        stream = extra
        nc = Nats(url)
        try:
            subject = f"proof{os.getpid()}"
            created = nc.js("STREAM.CREATE." + stream, {"name": stream, "subjects": [subject + ".>"],
                                                        "storage": "file", "duplicate_window": 120 * 10**9})
            check("stream created", "error" not in created, created.get("error", ""))
            payload = ("\n".join(json.dumps(r) for r in records) + "\n").encode()
            acks = [json.loads(nc.request(f"{subject}.{agent}.series", payload, {"Nats-Msg-Id": "proof-1"})[1])
                    for _ in range(2)]
            check("publish acked; the same Nats-Msg-Id again is acked as a duplicate",
                  "seq" in acks[0] and acks[1].get("duplicate") is True, acks)
            # One record again under another id: the reader must see it twice.
            again = json.loads(nc.request(f"{subject}.{agent}.series", (json.dumps(records[0]) + "\n").encode(),
                                          {"Nats-Msg-Id": "proof-2"})[1])
            check("a second batch id is stored", "seq" in again and not again.get("duplicate"), again)
        finally:
            nc.close()
        messages = read_nats_messages(url, stream)
        found = windows_of_records([r for m in messages for r in m["records"]])
        doubled = window_of_record(records[0])[0]
        twice, ids_twice, bad = nats_problems(messages)
        check("messages read back with their Nats-Msg-Id", [m["msg_id"] for m in messages] == ["proof-1", "proof-2"],
              [m["msg_id"] for m in messages])
        check("the record sent in two batches is seen twice, no id twice, no bad line",
              len(twice) == 1 and not ids_twice and bad == 0, (len(twice), ids_twice, bad))
    else:
        raise SystemExit(f"prove: unknown store {kind}")

    rep = compare_windows(expected, found)
    print_report(f"  {kind}", rep)
    dups = [k for k, _ in rep["duplicates"]]
    check("every window read back with equal values", not rep["missing"] and not rep["differing"],
          f"{rep['found']}/{rep['expected']}")
    if doubled is not None:
        check("the window written twice is found twice", dups == [doubled], [key_text(k) for k in dups])
    else:
        check("no window twice (this store keeps one sample per series and time)", not dups)
    # compare finds what is wrong: a window the store lacks, a value that differs.
    lacking = dict(expected)
    lacking[make_key(agent, "proof-absent", "icmp", 4, None, next(iter(expected))[5])] = [{"sent": 2}]
    rep = compare_windows(lacking, found)
    check("compare finds a missing window", len(rep["missing"]) == 1 and not report_ok(rep), len(rep["missing"]))
    changed = {k: [dict(v[0])] for k, v in expected.items()}
    k0 = sorted(changed)[-1]
    changed[k0][0]["sent"] += 1
    rep = compare_windows(changed, found)
    check("compare finds a changed value", [k for k, _ in rep["differing"]] == [k0], rep["differing"][:1])
    k1 = next(k for k in sorted(changed) if "rtt_p95_ms" in changed[k][0])
    changed = {k: [dict(v[0])] for k, v in expected.items()}
    changed[k1][0]["rtt_p95_ms"] += 0.01
    rep = compare_windows(changed, found)
    check("compare finds an RTT off by 10 us", [k for k, _ in rep["differing"]] == [k1])
    return 1 if fails else 0


# ---------------------------------------------------------------- ready

def ready(kind, url):
    try:
        if kind == "nats":
            nc = Nats(url, timeout=2)
            try:
                got = nc.js("INFO")
                return "error" not in got
            finally:
                nc.close()
        path = {"vm": "/health", "prom": "/-/ready", "influx": "/ping"}[kind]
        status, _ = http_get(url.rstrip("/") + path)
        return status in (200, 204)
    except (OSError, RuntimeError, ValueError, urllib.error.URLError):
        return False


# ---------------------------------------------------------------- main

def store_parser(sub, name):
    p = sub.add_parser(name)
    if name in ("vm", "prom", "influx", "nats"):
        p.add_argument("url")
    if name == "influx":
        p.add_argument("db")
    if name == "nats":
        p.add_argument("stream")
        p.add_argument("--messages", action="store_true", help="print the messages, not the windows")
    if name == "vm":
        p.add_argument("--names", choices=("influx", "remote-write"), default="remote-write")
    p.add_argument("--start", type=float)
    p.add_argument("--end", type=float)
    # The agent was killed (SIGKILL) at CRASH_AT (seconds since the epoch):
    # records still in a batch not yet closed into the spool die with it, so
    # a window or record of the file that is absent from the store and whose
    # time lies within CRASH_OPEN seconds before the kill is listed apart,
    # not counted missing.
    p.add_argument("--crash-at", type=float)
    p.add_argument("--crash-open", type=float, default=0.0)
    return p


def open_at_crash(sargs, when):
    """`when` (seconds since the epoch) lies within the open batches of the kill."""
    return sargs.crash_at is not None and sargs.crash_at - sargs.crash_open <= when <= sargs.crash_at


def record_time(r):
    try:
        return datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("jsonl").add_argument("file")
    for name in ("vm", "prom", "influx", "nats"):
        store_parser(sub, name)
    cp = sub.add_parser("compare")
    cp.add_argument("file")
    cp.add_argument("store", choices=("vm", "prom", "influx", "nats"))
    cp.add_argument("rest", nargs=argparse.REMAINDER)
    pp = sub.add_parser("prove")
    pp.add_argument("store", choices=("vm", "prom", "influx", "nats"))
    pp.add_argument("url")
    pp.add_argument("extra", nargs="?", default="")
    rp = sub.add_parser("ready")
    rp.add_argument("store", choices=("vm", "prom", "influx", "nats"))
    rp.add_argument("url")
    args = ap.parse_args()
    now = time.time()

    if args.cmd == "ready":
        return 0 if ready(args.store, args.url) else 1
    if args.cmd == "prove":
        return prove(args.store, args.url, args.extra)
    if args.cmd == "jsonl":
        records, bad = read_jsonl(args.file)
        if bad:
            print(f"lines that are not JSON objects: {bad[:10]}", file=sys.stderr)
        print_windows(windows_of_records(records))
        return 0
    if args.cmd == "compare":
        sargs = store_parser(argparse.ArgumentParser().add_subparsers(), args.store).parse_args(args.rest)
        records, bad = read_jsonl(args.file)
        expected = windows_of_records(records)
        if bad:
            print(f"{args.file}: lines that are not JSON objects: {bad[:10]}")
        starts = [k[5] / 1000 for k in expected] or [now]
        start = sargs.start if sargs.start is not None else min(starts) - 60
        end = sargs.end if sargs.end is not None else max(now, max(starts)) + 60
        found, messages = read_store(args.store, sargs, start, end)
        rep = compare_windows(expected, found)
        name = store_name(args.store, sargs)
        lost = [k for k in rep["missing"] if open_at_crash(sargs, k[5] / 1000)]
        rep["missing"] = [k for k in rep["missing"] if k not in lost]
        print_report(name, rep)
        for k in lost:
            print(f"  open at the kill (not in the spool yet): {key_text(k)}")
        ok = report_ok(rep) and rep["expected"] > 0
        if messages is not None:
            twice, ids_twice, badn = nats_problems(messages)
            have = {json.dumps(r, sort_keys=True) for m in messages for r in m["records"]}
            mine = [r for r in records if r.get("agent") in {k[0] for k in expected}]
            absent = [r for r in mine if json.dumps(r, sort_keys=True) not in have]
            lost = [r for r in absent if (t := record_time(r)) is not None and open_at_crash(sargs, t)]
            absent = [r for r in absent if r not in lost]
            for r in lost:
                print(f"  open at the kill (not in the spool yet): {json.dumps(r, sort_keys=True)[:300]}")
            print(f"{name}: messages={len(messages)} records={sum(len(m['records']) for m in messages)} "
                  f"records_twice={len(twice)} msg_ids_twice={len(ids_twice)} bad_lines={badn} "
                  f"file_records_absent={len(absent)}/{len(mine)}")
            for c in twice[:3]:
                print(f"  twice: {c[:200]}")
            for i in ids_twice[:3]:
                print(f"  Nats-Msg-Id twice: {i}")
            for r in absent[:3]:
                print(f"  absent: {json.dumps(r, sort_keys=True)[:300]}")
            ok = ok and not twice and not ids_twice and badn == 0 and not absent
        return 0 if ok else 1
    start = args.start if args.start is not None else now - 6 * 3600
    end = args.end if args.end is not None else now + 60
    if args.cmd == "nats" and args.messages:
        for m in read_nats_messages(args.url, args.stream):
            print(json.dumps(m, sort_keys=True))
        return 0
    found, _ = read_store(args.cmd, args, start, end)
    print_windows(found)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, RuntimeError, urllib.error.URLError) as e:
        print(f"collector_read: {e}", file=sys.stderr)
        sys.exit(2)
