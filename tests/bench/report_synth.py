#!/usr/bin/env python3
"""Synthetic records for `outpost report`: series windows of TARGETS targets
over HOURS hours (one window every WINDOW seconds), one method, for one or more
agents, with a carrier outage of one group and a vantage outage of the last
agent, plus their events and traces. Writes one JSON Lines file per agent.

  report_synth.py OUT_PREFIX [--targets 100] [--hours 24] [--window 60] [--agents 1]
"""
import argparse
import datetime as dt
import json
import random


def ts(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--window", type=int, default=60)
    ap.add_argument("--agents", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(12)
    t0 = 1796083200  # 2026-12-01T00:00:00Z
    n = int(a.hours * 3600 / a.window)
    out_start, out_end = t0 + int(n * 0.4) * a.window + 17, t0 + int(n * 0.55) * a.window + 41
    van_start, van_end = t0 + int(n * 0.7) * a.window + 5, t0 + int(n * 0.72) * a.window + 9
    for k in range(a.agents):
        agent = f"synth-{k + 1}"
        lost_vantage = a.agents > 1 and k == a.agents - 1
        with open(f"{a.prefix}{agent}.jsonl", "w") as f:
            def put(r):
                f.write(json.dumps(r, separators=(",", ":")) + "\n")
            for i in range(a.targets):
                group = "kp" if i < 4 else f"g{i // 10}"
                base = 20 + (i % 17) * 9 + k * 3
                for w in range(n):
                    start = t0 + w * a.window
                    down = group == "kp" and out_start < start + a.window and start < out_end
                    down = down or (lost_vantage and van_start < start + a.window and start < van_end)
                    sent = a.window
                    received = 0 if down else sent - (1 if rng.random() < 0.05 else 0)
                    r = {"type": "series", "agent": agent, "time": ts(start), "target": f"t{i:03d}", "group": group,
                         "af": 4, "method": "icmp", "window_start": ts(start), "window_s": a.window, "sent": sent,
                         "received": received, "loss": (sent - received) / sent, "timeouts": sent - received,
                         "unreachable": 0, "errors": 0, "partial": False}
                    if received:
                        p50 = base + 5 * rng.random() + (30 if w % 240 < 20 else 0)
                        r.update(rtt_min_ms=p50 * 0.9, rtt_avg_ms=p50 * 1.05, rtt_p50_ms=p50, rtt_p95_ms=p50 * 1.4,
                                 rtt_max_ms=p50 * 1.9, rtt_stddev_ms=2.0)
                    put(r)
            hops = lambda reach: [{"ttl": h + 1, "addr": f"198.19.0.{2 * h + 2}", "asn": [64496, 64500, 64500, 64510][h],
                                   "rtt_ms": 1.0 + h, "probes": 1} for h in range(4 if reach else 3)]
            put({"type": "trace", "agent": agent, "time": ts(t0 + 30), "target": "t000", "group": "kp",
                 "address": "198.18.0.1", "method": "icmp", "reason": "baseline", "reached": True, "hops": hops(True)})
            put({"type": "trace", "agent": agent, "time": ts(out_start + 3), "target": "t000", "group": "kp",
                 "address": "198.18.0.1", "method": "icmp", "reason": "failure", "reached": False, "hops": hops(False)})
            verdict = {"where": "upstream", "last_hop": "198.19.0.6", "last_hop_asn": 64500, "last_ttl": 3,
                       "baseline_reached_asn": 64510, "trace": ts(out_start + 3), "reason": "dies inside the carrier"}
            put({"type": "event", "agent": agent, "time": ts(out_start + 5), "kind": "group_down", "group": "kp",
                 "targets": ["t000", "t001", "t002", "t003"], "start": ts(out_start), "verdict": verdict})
            put({"type": "event", "agent": agent, "time": ts(out_end + 2), "kind": "group_up", "group": "kp",
                 "targets": ["t000", "t001", "t002", "t003"], "start": ts(out_start), "end": ts(out_end),
                 "duration_s": out_end - out_start})
            if lost_vantage:
                put({"type": "event", "agent": agent, "time": ts(van_start + 4), "kind": "vantage_down", "group": "control",
                     "start": ts(van_start), "verdict": {"where": "vantage", "last_hop": None, "last_ttl": 0}})
                put({"type": "event", "agent": agent, "time": ts(van_end + 2), "kind": "vantage_up", "group": "control",
                     "start": ts(van_start), "end": ts(van_end), "duration_s": van_end - van_start})


if __name__ == "__main__":
    main()
