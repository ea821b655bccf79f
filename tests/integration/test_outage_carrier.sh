#!/usr/bin/env bash
# Outage inside the upstream carrier: with the agent probing the lab's four
# target networks (group `lab`, upstream_asn 64500) and the control hosts,
# `netlab drop carrier` (the carrier drops everything it forwards, but still
# sends time-exceeded) for ~12 s, then `undrop carrier`. Expected (README,
# "How it decides"):
#   - group_down for `lab`, verdict where "upstream", last_hop 198.19.0.6
#     (the carrier's hop), last_hop_asn 64500, baseline_reached_asn 64510,
#     detected within 10 s of the fault;
#   - group_up afterwards, its duration_s within one probe interval (1 s) of
#     the true outage (undrop time - drop time);
#   - no vantage_down (the controls sit behind isp, not behind the carrier);
#   - every output line is JSON; the agent exits 0 after --for.
# Prints the detection delay (event time - fault), the start error (event
# start - fault) and the duration error. Exit 77 (skip) when not root.
# OUTAGE_IPV6=1 (test_outage_ipv6.sh): the same over IPv6 (netlab up --ipv6,
# the targets by their IPv6 addresses, the carrier's hop 2001:2:0:ff01::2).
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/outage_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/outage_lib.sh"
IPV6=${OUTAGE_IPV6:-0}
if ((IPV6)); then
  lib_init o6
  lab_up --hosts 4 --ipv6
  CARRIER_HOP=2001:2:0:ff01::2
else
  lib_init oc
  lab_up --hosts 4
  CARRIER_HOP=198.19.0.6
fi
fault serve web

outage_config itest-outage-carrier
if ((IPV6)); then outage_config_ipv6; fi

outage_start 30s
fault drop carrier
t_fault=$(now)
echo "  $(date -u +%T.%N | cut -c1-12) carrier drops everything it forwards"
pause 12
fault undrop carrier
t_heal=$(now)
echo "  $(date -u +%T.%N | cut -c1-12) carrier restored"

outage_wait

py_checks "$OUT" "$t_fault" "$t_heal" "$CARRIER_HOP" "$IPV6" <<'EOF'
path, t_fault, t_heal, carrier_hop, ipv6 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
INTERVAL = 1.0
records, events = outage_events(path, t_fault)
true_s = t_heal - t_fault
print(f"  true outage (undrop - drop): {true_s:.3f} s")
probes = [r for r in records if r.get("type") == "probe"]
check("probes went to " + ("IPv6" if ipv6 else "IPv4") + " addresses only",
      probes and all((":" in r["address"]) == ipv6 for r in probes), len(probes))

gd = [e for e in events if e.get("kind") == "group_down" and e.get("group") == "lab"]
check("a group_down for group lab", len(gd) >= 1, f"{len(gd)} found")
if gd:
    e = gd[0]
    v = e.get("verdict") or {}
    print(f"  verdict: {json.dumps(v, sort_keys=True)}")
    check("group_down: exactly one", len(gd) == 1, len(gd))
    check("verdict.where == upstream", v.get("where") == "upstream", v.get("where"))
    check(f"verdict.last_hop == {carrier_hop} (carrier)", v.get("last_hop") == carrier_hop, v.get("last_hop"))
    check("verdict.last_hop_asn == 64500", v.get("last_hop_asn") == 64500, v.get("last_hop_asn"))
    check("verdict.baseline_reached_asn == 64510", v.get("baseline_reached_asn") == 64510, v.get("baseline_reached_asn"))
    delay = parse_time(e["time"]) - t_fault
    start_err = parse_time(e["start"]) - t_fault if "start" in e else None
    print(f"  detection delay (group_down time - fault): {delay:.3f} s")
    print(f"  start error (group_down start - fault): {start_err:+.3f} s" if start_err is not None else "  no start")
    check("detected within 10 s of the fault", 0 < delay <= 10, f"{delay:.3f} s")
    # The first probe after the fault fails: start is within one interval of
    # it (and a probe sent before the fault cannot fail by more than a timeout).
    check("group_down start within one probe interval of the fault (-timeout <= error <= interval)",
          start_err is not None and -0.5 <= start_err <= INTERVAL + 0.1, start_err)
    gu = [u for u in events if u.get("kind") == "group_up" and u.get("group") == "lab"
          and parse_time(u["time"]) >= parse_time(e["time"])]
    check("a group_up for lab after the group_down", len(gu) >= 1, f"{len(gu)} found")
    if gu:
        u = gu[0]
        dur = u.get("duration_s")
        up_delay = parse_time(u["time"]) - t_heal
        end_err = parse_time(u["end"]) - t_heal if "end" in u else None
        print(f"  group_up {up_delay:.3f} s after the undrop; end error (end - undrop): "
              + (f"{end_err:+.3f} s" if end_err is not None else "no end"))
        if isinstance(dur, (int, float)):
            print(f"  duration_s {dur:.3f} s vs true {true_s:.3f} s: error {dur - true_s:+.3f} s (interval {INTERVAL} s)")
        check("group_up: duration_s within one probe interval of the true outage",
              isinstance(dur, (int, float)) and abs(dur - true_s) <= INTERVAL, f"{dur} vs {true_s:.3f}")
        check("group_up: duration_s == end - start",
              isinstance(dur, (int, float)) and "end" in u and "start" in u
              and abs(dur - (parse_time(u["end"]) - parse_time(u["start"]))) < 0.01)
        check("group_up within 10 s of the undrop", 0 < up_delay <= 10, f"{up_delay:.3f} s")
check("no vantage_down", not any(e.get("kind") == "vantage_down" for e in events))
EOF

if ((failures)); then show_log "$LOG" | tail -n 30; fi
# OUTAGE_SAVE=DIR keeps the records and the log (e.g. to look at a failure).
if [[ -n ${OUTAGE_SAVE:-} ]]; then mkdir -p "$OUTAGE_SAVE" && cp "$OUT" "$LOG" "$CFG" "$OUTAGE_SAVE/"; fi
finish
