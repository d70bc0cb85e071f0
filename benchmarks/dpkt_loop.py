#!/usr/bin/env python3
"""The baseline a user would write with dpkt: classify each frame as IPv4,
IPv6, 6in4 (IPv4 protocol 41) or Teredo (UDP port 3544), print the counts.

Deliberately plain: dpkt.pcap.Reader, dpkt.ethernet.Ethernet (which strips
802.1Q / QinQ tags itself), isinstance checks on ``.data``. It does not know
GRE, GTP-U, VXLAN, DS-Lite, extension headers or anything else in the
ipv6flow report: it is the lower bound of what a quick script does.

    python benchmarks/dpkt_loop.py FILE [--json]
"""

import json
import sys

import dpkt


def classify(path):
    counts = {"ipv4": 0, "ipv6": 0, "6in4": 0, "teredo": 0, "other": 0, "errors": 0}
    with open(path, "rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            try:
                eth = dpkt.ethernet.Ethernet(buf)
            except dpkt.UnpackError:
                counts["errors"] += 1
                continue
            ip = eth.data
            if isinstance(ip, dpkt.ip.IP):
                if ip.p == dpkt.ip.IP_PROTO_IP6:
                    counts["6in4"] += 1
                elif isinstance(ip.data, dpkt.udp.UDP) and 3544 in (ip.data.sport, ip.data.dport):
                    counts["teredo"] += 1
                else:
                    counts["ipv4"] += 1
            elif isinstance(ip, dpkt.ip6.IP6):
                counts["ipv6"] += 1
            else:
                counts["other"] += 1
    return counts


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    counts = classify(argv[0])
    counts["frames"] = sum(v for k, v in counts.items() if k != "frames")
    if "--json" in argv[1:]:
        print(json.dumps(counts))
    else:
        for k, v in counts.items():
            print(f"{k:8s} {v:>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
