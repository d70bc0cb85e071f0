#!/usr/bin/env python3
"""Write a deterministic organisation map (``--org-map``) for the benchmark.

    python benchmarks/orgmap.py [--rows 10000] [--out benchmarks/data/orgs-10k.csv]

Half the rows are IPv4, half IPv6, over many prefix lengths (every length
the lookup meets costs one search per address still unmatched, so many
lengths is the slow case), and they cover the benchmark capture's
subscriber space: 100.64.0.0/10 (the CGNAT subscribers of
benchmarks/generate.py) and 2a01:cb00::/32, plus unrelated networks.
Organisations own 5 rows each, in groups of 50 (a ministry and its
agencies, a province and its districts).

    python benchmarks/orgmap.py --around benchmarks/data/realmix-16.pcap \
        --out benchmarks/data/orgs-realmix-10k.csv

writes a map for a real capture instead: prefixes of every length around
the addresses its first frames carry (``--frames``, read by tshark; the
most frequent addresses first), so that most frames find an organisation,
often through nested prefixes.
"""

import argparse
import ipaddress
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))


def rows(n, seed=10000):
    rng = random.Random(seed)
    seen = set()
    out = []
    while len(out) < n:
        i = len(out)
        if i % 2 == 0:
            ln = rng.choice([10, 12, 16, 18, 20, 22, 24, 26, 28, 30, 32])
            base = (100 << 24) | (64 << 16) if rng.random() < 0.6 else rng.getrandbits(32)
            addr = base | rng.getrandbits(22) if base >> 22 == (100 << 2) | 1 else base
            net = ipaddress.ip_network((addr >> (32 - ln) << (32 - ln), ln))
        else:
            ln = rng.choice([32, 36, 40, 44, 48, 52, 56, 60, 64, 80, 96, 112, 128])
            top = 0x2A01CB00 if rng.random() < 0.6 else rng.getrandbits(32)
            addr = (top << 96) | rng.getrandbits(96)
            net = ipaddress.ip_network((addr >> (128 - ln) << (128 - ln), ln))
        if net in seen:
            continue
        seen.add(net)
        org = i // 5
        out.append(f"{net},Organisation {org:05d},Group {org // 50:03d},org{org}.example")
    return out


def rows_around(pcap, n, frames, seed=10000):
    """Rows of prefixes around the addresses of the first ``frames`` frames
    of ``pcap`` (tshark), the most frequent first."""
    import collections
    import subprocess
    out = subprocess.run(["tshark", "-r", pcap, "-c", str(frames), "-T", "fields",
                          "-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst"],
                         check=True, capture_output=True, text=True).stdout
    seen = collections.Counter()
    for line in out.splitlines():
        for cell in line.split("\t"):
            for a in cell.split(","):
                if a:
                    seen[ipaddress.ip_address(a)] += 1
    addrs = [a for a, _ in seen.most_common()]
    rng = random.Random(seed)
    nets, out = set(), []
    i = 0
    while len(out) < n and i < 40 * n:
        a = addrs[i % len(addrs)] if i < 4 * len(addrs) else rng.choice(addrs)
        i += 1
        if a.version == 4:
            ln = rng.randrange(8, 33)
        else:
            ln = rng.randrange(16, 129, 4)
        net = ipaddress.ip_network((int(a) >> (a.max_prefixlen - ln) << (a.max_prefixlen - ln),
                                    ln))
        if net in nets:
            continue
        nets.add(net)
        org = len(out) // 5
        out.append(f"{net},Organisation {org:05d},Group {org // 50:03d},org{org}.example")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--out", default=os.path.join(HERE, "data", "orgs-10k.csv"))
    ap.add_argument("--around", metavar="PCAP", help="prefixes around this capture's addresses")
    ap.add_argument("--frames", type=int, default=200_000,
                    help="with --around: the frames read for addresses")
    a = ap.parse_args()
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    got = rows_around(a.around, a.rows, a.frames) if a.around else rows(a.rows)
    with open(a.out, "w") as fh:
        fh.write("prefix,organisation,group,domain\n")
        fh.write("\n".join(got) + "\n")


if __name__ == "__main__":
    main()
