#!/usr/bin/env bash
# The carrier outage of test_outage_carrier.sh over IPv6 (netlab up --ipv6):
# the same group and control hosts by their IPv6 addresses, the carrier
# dropping everything it forwards for ~12 s; group_down with verdict
# upstream at the carrier's IPv6 hop (2001:2:0:ff01::2, AS64500), group_up
# within one probe interval of the true outage, no vantage_down.
OUTAGE_IPV6=1 exec bash "$(dirname "${BASH_SOURCE[0]}")/test_outage_carrier.sh"
