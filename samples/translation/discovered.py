#!/usr/bin/env python3
"""NAT64 gateways the capture itself reveals, sized in ``translation``
(issue 17): truth by construction.

    python samples/translation/discovered.py --out DIR [--wide]

writes ``discovered.pcap`` and ``discovered.truth.json``; ``build()``
returns the same as bytes and a dict, for the tests (which build it into
a temporary directory: nothing is kept in the repository).

* The network-specific prefix 2001:db8:64::/96 is known only from a DNS64
  answer (the AAAA of legacy.example embeds its A, 198.51.100.20) that
  comes at ``START + 70``, after NAT64 traffic through it: handsets C1
  (2001:db8:200:1::/64, to 198.51.100.20 and 192.0.2.99) and C2
  (2001:db8:200:2::/64, to 203.0.113.50) send before it, in its bin and
  after it; a second DNS64 answer at ``START + 150`` reveals it again (a
  capture cut between the two holds its evidence on both sides).
* Well-known prefix traffic (64:ff9b::/96, client C3) all along.
* Filler: plain IPv6 TCP inside 2001:db8::/32 (the /32 of the prefix, so
  the rows are candidates) that no NAT64 prefix holds, so that batches
  and parts fall between the NAT64 frames.
* ``wide``: a Router Advertisement at ``START + 100`` names 64:ff9b::/32
  (PREF64, RFC 8781), which holds the well-known prefix and sorts before
  it: every well-known frame, before and after the RA, belongs to the /32
  gateway (the translation rule: a frame goes to the first prefix in
  sorted order that holds one side), whose RFC 6052 /32 position (bytes
  4-7) reads 0.0.0.0 from these addresses.

Each flow is TCP with its own client port, frames both ways; the truth
gives per gateway packets, bytes, flows, clients (/64s), IPv4
destinations, every one-minute bin and the destinations, from the frames
built.
"""

import argparse
import importlib.util
import ipaddress
import json
import os
import struct
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from packets import ipv6, pcap, udp  # noqa: E402  (samples/packets.py)
# this directory's generate.py, by path (another ``generate`` may be loaded)
_spec = importlib.util.spec_from_file_location("xlat_generate", os.path.join(HERE, "generate.py"))
xlat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(xlat)
a4, a6, dns_response, tcp = xlat.a4, xlat.a6, xlat.dns_response, xlat.tcp

START = 1_700_000_040.0          # a multiple of 60
INTERVAL = 60.0
PREFIX = "2001:db8:64::/96"
WKP = "64:ff9b::/96"
WIDE = "64:ff9b::/32"
RESOLVER = "2001:db8:53::53"


def eth(payload, up=True):
    return xlat.eth(0x86DD, payload, up)


def embed96(prefix, v4):
    return a6(prefix.split("/")[0])[:12] + a4(v4)


def router_advertisement(prefix, plc):
    """An RA with one PREF64 option (RFC 8781), from a link-local router."""
    pref64 = struct.pack("!BBH", 38, 2, ((1800 // 8) << 3) | plc) + a6(prefix)[:12]
    body = struct.pack("!BBHII", 64, 0, 1800, 0, 0) + pref64
    icmp = struct.pack("!BBH", 134, 0, 0) + body
    return ipv6(a6("fe80::1"), a6("ff02::1"), 58, icmp)


def build(wide=False, filler=6, pad=0):
    """(pcap bytes, truth dict). ``filler``: plain frames after each NAT64
    one, ``pad`` bytes of TCP payload each (the tests make the file larger
    than one 8 MiB batch, so that the first pass learns of the prefix
    part-way)."""
    frames, rows = [], []
    qid = [0]
    port = [40000]

    def flow(t, client, prefix, v4, sizes, gateway):
        port[0] += 1
        srv = embed96(prefix, v4)
        c = a6(client)
        for i, size in enumerate(sizes):
            up = i % 2 == 0
            src, dst = (c, srv) if up else (srv, c)
            sp, dp = (port[0], 443) if up else (443, port[0])
            data = eth(ipv6(src, dst, 6, tcp(sp, dp, size)), up)
            ts = t + 0.01 * i
            frames.append((ts, data))
            # RFC 6052: a /32 gateway reads the IPv4 address from bytes 4-7
            remote = v4 if gateway.endswith("/96") else str(ipaddress.IPv4Address(srv[4:8]))
            rows.append({"gateway": gateway, "t": ts, "wire": len(data), "remote": remote,
                         "client": str(ipaddress.IPv6Network(client + "/64", strict=False)),
                         "flow": (client, port[0], v4)})
            for k in range(filler):
                frames.append((ts + 0.001 * (k + 1), eth(ipv6(
                    a6("2001:db8:1::1"), a6("2001:db8:2::2"), 6,
                    tcp(30000 + k % 1000, 80, pad + k % 40)))))

    def dns64(t, name, v4):
        for qtype, rdata in ((1, a4(v4)), (28, embed96(PREFIX, v4))):
            qid[0] += 1
            frames.append((t + 0.01 * qid[0], eth(ipv6(
                a6(RESOLVER), a6("2001:db8:200:1::11"), 17,
                udp(53, 5300 + qid[0], dns_response(qid[0], name, qtype, rdata))), up=False)))

    wkp_gw = WIDE if wide else WKP
    T = START
    for k in range(3):                          # bin 0, before the answer
        flow(T + 1 + k, "2001:db8:200:1::11", PREFIX, "198.51.100.20", (120, 900, 80), PREFIX)
        flow(T + 5 + k, "2001:db8:200:2::21", PREFIX, "203.0.113.50", (200, 1300), PREFIX)
        flow(T + 9 + k, "2001:db8:200:3::31", WKP, "198.51.100.77", (90, 700), wkp_gw)
    flow(T + 20, "2001:db8:200:1::11", PREFIX, "192.0.2.99", (60, 60), PREFIX)
    dns64(T + 70, "legacy.example", "198.51.100.20")
    for k in range(4):                          # bins 1 and 2, after it
        flow(T + 71 + 20 * k, "2001:db8:200:1::11", PREFIX, "198.51.100.20", (150, 1400),
             PREFIX)
        flow(T + 75 + 20 * k, "2001:db8:200:3::31", WKP, "198.51.100.78", (100, 500, 50), wkp_gw)
    if wide:
        frames.append((T + 100, eth(router_advertisement("64:ff9b::", 5), up=False)))
    dns64(T + 150, "legacy.example", "198.51.100.20")
    flow(T + 151, "2001:db8:200:2::21", PREFIX, "203.0.113.50", (400, 1000, 400), PREFIX)
    flow(T + 155, "2001:db8:200:4::41", PREFIX, "203.0.113.60", (100, 100), PREFIX)
    frames.sort(key=lambda f: f[0])
    return pcap(frames), _truth(rows, len(frames), wide)


def _figures(rows):
    return {"packets": len(rows), "bytes": sum(r["wire"] for r in rows),
            "flows": len({r["flow"] for r in rows}),
            "clients": len({r["client"] for r in rows}),
            "ipv4_destinations": len({r["remote"] for r in rows})}


def _truth(rows, nframes, wide):
    gateways = {}
    for gw in sorted({r["gateway"] for r in rows}):
        mine = [r for r in rows if r["gateway"] == gw]
        bins = defaultdict(list)
        for r in mine:
            bins[int(r["t"] // INTERVAL)].append(r)
        bin_list = [dict(start=k * INTERVAL, **_figures(v)) for k, v in sorted(bins.items())]
        dests = defaultdict(lambda: [0, 0])
        for r in mine:
            dests[r["remote"]][0] += 1
            dests[r["remote"]][1] += r["wire"]
        gateways[gw] = dict(_figures(mine), bins=bin_list,
                            peak=max(bin_list, key=lambda x: (x["bytes"], -x["start"])),
                            destinations={v: {"packets": p, "bytes": nb}
                                          for v, (p, nb) in dests.items()})
    # 464XLAT suspects through the found prefix: client /64s that reached
    # an IPv4 address no AAAA answer names (only 198.51.100.20 is named)
    suspects = {}
    for r in rows:
        if r["gateway"] == PREFIX and r["remote"] != "198.51.100.20":
            suspects.setdefault(r["client"], set()).add(r["remote"])
    return {"interval": INTERVAL, "frames": nframes, "wide": wide, "prefix": PREFIX,
            "answers_at": [START + 70, START + 150], "gateways": gateways,
            "clat_suspects": {c: sorted(v) for c, v in sorted(suspects.items())}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--wide", action="store_true", help="add the PREF64 64:ff9b::/32 RA")
    a = ap.parse_args()
    data, truth = build(a.wide)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "discovered.pcap"), "wb") as fh:
        fh.write(data)
    with open(os.path.join(a.out, "discovered.truth.json"), "w") as fh:
        json.dump(truth, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"{truth['frames']} frames; gateways {sorted(truth['gateways'])}")


if __name__ == "__main__":
    main()
