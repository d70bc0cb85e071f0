#!/usr/bin/env python3
"""IPv4 as a service with known gateways, clients and figures (issue 17).

    python samples/translation/generate.py [--out DIR]

writes ``translation.pcap`` and ``translation.truth.json`` (default: next
to this script); ``build()`` returns the same as bytes and a dict, for the
tests. Ethernet frames, one-minute bins from 1700000040 (a bin boundary).

What is in it, every member from explicit parameters:

* NAT64 through the well-known prefix 64:ff9b::/96, a DNS64 resolver
  (2001:db8:53::53) answering AAAA (synthesized) and A queries:
  - handset H1 (2001:db8:100:1::/64), a CLAT: literal IPv4 destinations
    (no DNS), and its IPv4 side is on the capture too (192.0.0.4, RFC
    7335) with the same flows: CLAT suspect, evidence unexplained-ipv4 and
    rfc7335-flows, confidence high;
  - handset H2 (2001:db8:100:2::/64), a CLAT without DNS lookups: suspect,
    unexplained-ipv4, medium (the capture holds DNS64 answers);
  - handset H3 (2001:db8:100:3::/64) which looked one name up through DNS64
    and reached another destination by literal IPv4: suspect, medium;
  - client N1 (2001:db8:100:9::/64), only names from DNS64 answers: NOT a
    suspect (look-alike), but its traffic is NAT64 traffic.
* DS-Lite: three B4s (2001:db8:b4:N::2) tunnelling to the AFTR
  2001:db8:aaaa::1; hosts behind them on 10/8, 192.168/16 and 100.64/10,
  and B4 3's own traffic from 192.0.0.2.
* MAP-E: rule 2001:db8:e000::/40, 192.0.2.0/24, 16 EA bits (PSID 8 bits),
  PSID offset 6; CEs 192.0.2.10 PSID 0x12 and 192.0.2.11 PSID 0x34
  (interface identifier 0:IPv4:PSID), ports from their port sets, BR
  2001:db8:ffff::1.
* MAP-T: CE 192.0.2.20 PSID 0x05 of the same rule, translated IPv6 to the
  DMR prefix 2001:db8:ffff:1::/64 (IPv4 embedded as RFC 6052 /64).
* Look-alikes that must not be found: 4in6 between two routers with public
  inner addresses on both sides and no MAP form (unclassified 4in6);
  N1's NAT64 traffic explained by DNS64; plain IPv4 from 192.0.0.6 (RFC
  7335 space) to a host no NAT64 flow reaches; an outer interface
  identifier claiming PSID 0xffff for its inner IPv4 address, which no
  port set can hold (counted as a port mismatch, then unclassified 4in6).

Each flow is TCP with distinct ports (frames both ways), so distinct
flows, clients and IPv4 destinations per gateway and per bin are known by
construction; the truth is computed from the parameters and the frames
built, never by reading the capture back.
"""

import argparse
import ipaddress
import json
import os
import struct
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from packets import ipv4, ipv6, pcap, udp  # noqa: E402  (samples/packets.py)

HERE = os.path.dirname(os.path.abspath(__file__))
START = 1_700_000_040.0          # a multiple of 60
INTERVAL = 60.0
MAC_A, MAC_B = bytes.fromhex("00005e005301"), bytes.fromhex("00005e005302")
WKP = "64:ff9b::"
RESOLVER = "2001:db8:53::53"
AFTR = "2001:db8:aaaa::1"
BR = "2001:db8:ffff::1"
DMR = "2001:db8:ffff:1::"
MAP_RULE = "2001:db8:e000::/40,192.0.2.0/24,16,6"
PSID_BITS, PSID_OFFSET = 8, 6


def a6(text):
    return ipaddress.IPv6Address(text).packed


def a4(text):
    return ipaddress.IPv4Address(text).packed


def tcp(sport, dport, size):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x18, 65535, 0, 0) \
        + bytes(size)


def eth(ethertype, payload, up=True):
    macs = (MAC_B + MAC_A) if up else (MAC_A + MAC_B)
    return macs + struct.pack("!H", ethertype) + payload


def nat64_addr(v4):
    return a6(WKP)[:12] + a4(v4)


def dmr_addr(v4):
    """RFC 6052 at /64: u octet, the IPv4 address, zero bytes."""
    return a6(DMR)[:8] + b"\x00" + a4(v4) + b"\x00\x00\x00"


def map_addr(v4, psid):
    """A CE's MAP address under MAP_RULE: rule prefix (40 bits), EA bits
    (IPv4 suffix 8 bits, PSID 8 bits), subnet 0; interface identifier
    0:IPv4:PSID (RFC 7597 section 6)."""
    suffix = a4(v4)[3]
    pfx = int.from_bytes(a6("2001:db8:e000::")[:8], "big") | (suffix << 8 | psid) << 8
    return pfx.to_bytes(8, "big") + b"\x00\x00" + a4(v4) + struct.pack("!H", psid)


def map_port(psid, a_value, j=0):
    """A port of PSID ``psid``'s set: A (1 .. 63), PSID, j (RFC 7597 5.1)."""
    return (a_value << (16 - PSID_OFFSET)) | (psid << (16 - PSID_OFFSET - PSID_BITS)) | j


def dns_response(qid, name, qtype, rdata):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    head = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0)
    ans = struct.pack("!HHHIH", 0xC00C, qtype, 1, 300, len(rdata)) + rdata
    return head + q + struct.pack("!HH", qtype, 1) + ans


class Builder:
    def __init__(self):
        self.frames = []            # (ts, bytes)
        self.rows = []              # truth records of frames through a mechanism
        self.unclassified = [0, 0]
        self.mismatch = [0, 0]

    def add(self, t, data, rec=None):
        self.frames.append((t, data))
        if rec is not None:
            rec = dict(rec, t=t, wire=len(data))
            self.rows.append(rec)
        return len(data)


def build():
    """(pcap bytes, truth dict)."""
    b = Builder()
    explained = set()               # (prefix, v4) named by a AAAA answer
    names = defaultdict(set)        # v4 -> names of A answers
    native_aaaa = set()             # names with a native AAAA answer
    qid = [100]

    def dns(t, client6, cport, name, qtype, rdata):
        qid[0] += 1
        msg = dns_response(qid[0], name, qtype, rdata)
        b.add(t, eth(0x86DD, ipv6(a6(RESOLVER), client6, 17, udp(53, cport, msg)), up=False))
        if qtype == 1:
            names[str(ipaddress.IPv4Address(rdata))].add(name)
        elif rdata[:12] == a6(WKP)[:12]:
            explained.add(str(ipaddress.IPv4Address(rdata[12:])))
        else:
            native_aaaa.add(name)

    def nat64_flow(t, client6, cport, v4, sizes, client64):
        """TCP client6:cport <-> 64:ff9b::v4:443; sizes alternate up/down."""
        srv = nat64_addr(v4)
        for i, size in enumerate(sizes):
            up = i % 2 == 0
            src, dst = (client6, srv) if up else (srv, client6)
            sp, dp = (cport, 443) if up else (443, cport)
            b.add(t + 0.01 * i, eth(0x86DD, ipv6(src, dst, 6, tcp(sp, dp, size)), up),
                  {"mech": "nat64", "gateway": "64:ff9b::/96", "client": client64,
                   "remote": v4, "flow": ("6", client6, cport, srv, 443)})

    def clat_side(t, cport, v4, sizes):
        for i, size in enumerate(sizes):
            up = i % 2 == 0
            src, dst = (a4("192.0.0.4"), a4(v4)) if up else (a4(v4), a4("192.0.0.4"))
            sp, dp = (cport, 443) if up else (443, cport)
            b.add(t + 0.01 * i, eth(0x0800, ipv4(src, dst, 6, tcp(sp, dp, size)), up))

    def four_in_six(t, o_src, o_dst, i_src, i_dst, sp, dp, size, rec, up=True):
        inner = ipv4(a4(i_src), a4(i_dst), 6, tcp(sp, dp, size))
        return b.add(t, eth(0x86DD, ipv6(o_src, o_dst, 4, inner), up), rec)

    def softwire_flow(t, mech, gateway, client6, gw6, host4, hport, v4, sizes, client):
        for i, size in enumerate(sizes):
            up = i % 2 == 0
            rec = {"mech": mech, "gateway": gateway, "client": client, "remote": v4,
                   "flow": ("4", host4, hport, v4, 443)}
            if up:
                four_in_six(t + 0.01 * i, client6, gw6, host4, v4, hport, 443, size, rec)
            else:
                four_in_six(t + 0.01 * i, gw6, client6, v4, host4, 443, hport, size, rec,
                            up=False)

    def mapt_flow(t, ce6, psid, port, v4, sizes, client):
        srv = dmr_addr(v4)
        for i, size in enumerate(sizes):
            up = i % 2 == 0
            src, dst = (ce6, srv) if up else (srv, ce6)
            sp, dp = (port, 443) if up else (443, port)
            b.add(t + 0.01 * i, eth(0x86DD, ipv6(src, dst, 6, tcp(sp, dp, size)), up),
                  {"mech": "map-t", "gateway": "2001:db8:ffff:1::/64", "client": client,
                   "remote": v4, "flow": ("6", ce6, port, srv, 443)})

    T = START
    # --- NAT64 / 464XLAT ----------------------------------------------------
    h1, h2, h3, n1 = (a6(f"2001:db8:100:{k}::{k}1") for k in (1, 2, 3, 9))
    dns(T + 1.0, n1, 5301, "v4only.example", 28, nat64_addr("203.0.113.7"))
    dns(T + 1.1, n1, 5302, "v4only.example", 1, a4("203.0.113.7"))
    dns(T + 1.2, n1, 5303, "www2.example", 28, nat64_addr("203.0.113.11"))
    dns(T + 1.3, n1, 5304, "www2.example", 1, a4("203.0.113.11"))
    dns(T + 1.4, h3, 5305, "v4only.example", 28, nat64_addr("203.0.113.7"))
    dns(T + 1.5, n1, 5306, "legacy.example", 1, a4("198.51.100.20"))
    dns(T + 1.6, n1, 5307, "dual.example", 1, a4("198.51.100.30"))
    dns(T + 1.7, n1, 5308, "dual.example", 28, a6("2001:db8:cafe::30"))
    nat64_flow(T + 2, n1, 41001, "203.0.113.7", (200, 1200, 100, 1200), "2001:db8:100:9::/64")
    nat64_flow(T + 3, n1, 41002, "203.0.113.11", (150, 900), "2001:db8:100:9::/64")
    nat64_flow(T + 4, h3, 42001, "203.0.113.7", (120, 700), "2001:db8:100:3::/64")
    nat64_flow(T + 65, h3, 42002, "198.51.100.20", (300, 1300, 80), "2001:db8:100:3::/64")
    nat64_flow(T + 66, h1, 43001, "198.51.100.20", (100, 1400, 100, 1400), "2001:db8:100:1::/64")
    clat_side(T + 65.9, 43001, "198.51.100.20", (100, 1400))
    nat64_flow(T + 67, h1, 43002, "203.0.113.50", (60, 60), "2001:db8:100:1::/64")
    nat64_flow(T + 125, h2, 44001, "203.0.113.50", (90, 500, 90), "2001:db8:100:2::/64")
    # --- DS-Lite ------------------------------------------------------------------
    aftr = a6(AFTR)
    b4s = [a6(f"2001:db8:b4:{k}::2") for k in (1, 2, 3)]
    softwire_flow(T + 5, "ds-lite", AFTR, b4s[0], aftr, "10.0.0.5", 50001, "198.51.100.30",
                  (400, 1400, 1400, 300), "2001:db8:b4:1::2")
    softwire_flow(T + 70, "ds-lite", AFTR, b4s[0], aftr, "10.0.0.6", 50002, "198.51.100.20",
                  (300, 1300, 1300, 1300, 200), "2001:db8:b4:1::2")
    softwire_flow(T + 71, "ds-lite", AFTR, b4s[1], aftr, "192.168.1.20", 50003,
                  "198.51.100.30", (500, 1450, 1450), "2001:db8:b4:2::2")
    softwire_flow(T + 72, "ds-lite", AFTR, b4s[2], aftr, "100.64.7.9", 50004, "203.0.113.80",
                  (200, 600), "2001:db8:b4:3::2")
    softwire_flow(T + 130, "ds-lite", AFTR, b4s[2], aftr, "192.0.0.2", 50005, "203.0.113.81",
                  (120, 240), "2001:db8:b4:3::2")
    # --- MAP-E ------------------------------------------------------------------------
    br = a6(BR)
    ce1, ce2 = map_addr("192.0.2.10", 0x12), map_addr("192.0.2.11", 0x34)
    softwire_flow(T + 8, "map-e", BR, ce1, br, "192.0.2.10", map_port(0x12, 5, 1),
                  "203.0.113.90", (300, 1200, 1200), str(ipaddress.IPv6Address(ce1)))
    softwire_flow(T + 75, "map-e", BR, ce2, br, "192.0.2.11", map_port(0x34, 9, 3),
                  "203.0.113.91", (200, 800), str(ipaddress.IPv6Address(ce2)))
    softwire_flow(T + 76, "map-e", BR, ce1, br, "192.0.2.10", map_port(0x12, 6, 0),
                  "198.51.100.30", (250, 1250), str(ipaddress.IPv6Address(ce1)))
    # --- MAP-T ----------------------------------------------------------------------------
    ce3 = map_addr("192.0.2.20", 0x05)
    mapt_flow(T + 9, ce3, 0x05, map_port(0x05, 3, 2), "203.0.113.9", (100, 1000),
              str(ipaddress.IPv6Address(ce3)))
    mapt_flow(T + 131, ce3, 0x05, map_port(0x05, 4, 1), "203.0.113.10", (100, 600, 600),
              str(ipaddress.IPv6Address(ce3)))
    # --- look-alikes ------------------------------------------------------------------------
    r1, r2 = a6("2001:db8:7:1::1"), a6("2001:db8:7:2::1")
    for i in range(3):
        n = four_in_six(T + 10 + i, r1, r2, "198.51.100.77", "203.0.113.88", 30000, 443,
                        500 + 100 * i, None)
        b.unclassified[0] += 1
        b.unclassified[1] += n
    b.add(T + 12, eth(0x0800, ipv4(a4("192.0.0.6"), a4("198.51.100.99"), 6,
                                   tcp(40000, 80, 100))))
    bogus = a6("2001:db8:e0ff::")[:8] + b"\x00\x00" + a4("192.0.2.12") + b"\xff\xff"
    n = four_in_six(T + 13, bogus, br, "192.0.2.12", "203.0.113.95", 5000, 443, 200, None)
    b.mismatch = [1, n]
    b.unclassified[0] += 1
    b.unclassified[1] += n
    b.frames.sort(key=lambda f: f[0])
    return pcap(b.frames), _truth(b, explained, names, native_aaaa)


def _flow_key(f):
    fam, a, ap, z, zp = f
    return (fam,) + tuple(sorted(((a, ap), (z, zp))))


def _figures(rows):
    return {"packets": len(rows), "bytes": sum(r["wire"] for r in rows),
            "flows": len({_flow_key(r["flow"]) for r in rows}),
            "clients": len({r["client"] for r in rows}),
            "ipv4_destinations": len({r["remote"] for r in rows})}


def _truth(b, explained, names, native_aaaa):
    by_gw = defaultdict(list)
    for r in b.rows:
        by_gw[(r["mech"], r["gateway"])].append(r)
    gateways = []
    order = ("nat64", "ds-lite", "lw4o6", "map-e", "map-t")
    for (mech, gw), rows in sorted(by_gw.items(), key=lambda kv: order.index(kv[0][0])):
        bins = defaultdict(list)
        for r in rows:
            bins[int(r["t"] // INTERVAL)].append(r)
        bin_list = [dict(start=k * INTERVAL, **_figures(v)) for k, v in sorted(bins.items())]
        peak = max(bin_list, key=lambda x: (x["bytes"], -x["start"]))
        dests = defaultdict(lambda: [0, 0])
        for r in rows:
            dests[r["remote"]][0] += 1
            dests[r["remote"]][1] += r["wire"]
        dl = [{"address": v4, "packets": p, "bytes": nb, "names": sorted(names.get(v4, ())),
               "aaaa": any(n in native_aaaa for n in names.get(v4, ()))}
              for v4, (p, nb) in dests.items()]
        dl.sort(key=lambda d: (-d["bytes"], -d["packets"], int(ipaddress.IPv4Address(d["address"]))))
        gateways.append(dict(mechanism=mech, gateway=gw, **_figures(rows), peak=peak,
                             bins=bin_list, destinations=dl))
    # CLAT suspects: NAT64 client /64s with an unexplained destination or an
    # RFC 7335 flow (H1 only)
    suspects = []
    for client in sorted({r["client"] for r in b.rows if r["mech"] == "nat64"}):
        rows = [r for r in b.rows if r["mech"] == "nat64" and r["client"] == client]
        unexplained = sorted({r["remote"] for r in rows} - explained,
                             key=lambda v: int(ipaddress.IPv4Address(v)))
        clat = client == "2001:db8:100:1::/64"
        if not unexplained and not clat:
            continue
        suspects.append({
            "client": client, "gateway": "64:ff9b::/96",
            "evidence": (["unexplained-ipv4"] if unexplained else [])
            + (["rfc7335-flows"] if clat else []),
            "confidence": "high" if clat else "medium",
            "packets": len(rows), "bytes": sum(r["wire"] for r in rows),
            "unexplained_destinations": unexplained})
    return {
        "interval": INTERVAL,
        "frames": len(b.frames),
        "options": {"aftr": [AFTR], "map_rule": [MAP_RULE]},
        "gateways": gateways,
        "clat_suspects": suspects,
        "unclassified_4in6": {"packets": b.unclassified[0], "bytes": b.unclassified[1]},
        "map_port_mismatch": {"packets": b.mismatch[0], "bytes": b.mismatch[1]},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=HERE)
    a = ap.parse_args()
    data, truth = build()
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "translation.pcap"), "wb") as fh:
        fh.write(data)
    with open(os.path.join(a.out, "translation.truth.json"), "w") as fh:
        json.dump(truth, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"{truth['frames']} frames; {len(truth['gateways'])} gateways; "
          f"{len(truth['clat_suspects'])} CLAT suspects")


if __name__ == "__main__":
    main()
