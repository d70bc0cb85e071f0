#!/usr/bin/env python3
"""A national IPv6 programme's capture, with its scorecard known by
construction.

    python samples/programme/generate.py [--out DIR]

writes ``programme.pcap``, ``orgs.csv`` and ``programme.truth.json``
(default: next to this script); ``build()`` returns the same for the
tests.

The organisations (``orgs.csv``): two ministries and two provinces, each
with IPv4 and IPv6 prefixes, and a provincial hospital whose /24 lies
inside its province's /16 (the longest prefix wins). Clients are given to
an organisation by the generator, each with its own MAC address:
IPv4-only, IPv6-only, dual-stack, a 6in4 user (tunnelled IPv6), an
IPv6-only user behind NAT64 (64:ff9b::/96), and unmapped clients (no
organisation).

Servers and their DNS (answers sent to a monitoring host before any
traffic): portals that are IPv6-ready (A and native AAAA), DNS64-only
(only a synthesized AAAA) and IPv4-only; a name asked without an answer;
a dual-stacked video service reached over both families; IPv4-only
services; and a server no DNS answer names.

Every flow is a TCP exchange with a distinct ephemeral port: SYN, SYN-ACK,
then one data segment each way whose sizes are drawn per flow. Each frame
is registered with what it is by construction (organisation, client,
families, NAT64, flow, server); the truth is summed from those records,
never by reading the capture back.
"""

import argparse
import ipaddress
import json
import os
import random
import struct
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from packets import ipv4, ipv6, pcap, udp  # noqa: E402  (samples/packets.py)

HERE = os.path.dirname(os.path.abspath(__file__))
START = 1_760_000_000.0
ROUTER_MAC = bytes.fromhex("00005e0053ff")

ORGS = [  # name, group, domain, prefixes
    ("Ministry of Finance", "ministry", "mof.gov.example",
     ["10.1.0.0/16", "2001:db8:100::/48"]),
    ("Ministry of Health", "ministry", "moh.gov.example",
     ["10.2.0.0/16", "2001:db8:200::/48"]),
    ("Province A", "province", "pra.gov.example", ["10.10.0.0/16", "2001:db8:a00::/40"]),
    ("Province A Hospital", "province", "", ["10.10.5.0/24", "2001:db8:a05::/48"]),
    ("Province B", "province", "prb.gov.example", ["100.64.0.0/16"]),
]

# name -> (A, native AAAA, synthesized AAAA); None: asked, no answer
DNS = {
    "portal.mof.gov.example": (["198.51.100.1"], ["2001:db8:5e::1"], []),
    "portal.moh.gov.example": (["198.51.100.2"], [], ["64:ff9b::c633:6402"]),
    "portal.prb.gov.example": (["198.51.100.3"], [], []),
    "mail.prb.gov.example": None,
    "www.pra.gov.example": (["198.51.100.4"], ["2001:db8:5e::4"], []),
    "video.example": (["203.0.113.10"], ["2001:db8:5e::10"], []),
    "legacy.example": (["203.0.113.20"], [], []),
    "old.example": (["203.0.113.30"], [], []),
    "alias.old.example": (["203.0.113.30"], [], []),
}
UNNAMED4 = "203.0.113.99"
MONITOR4, RESOLVER4 = "192.0.2.99", "192.0.2.53"


def a4(t):
    return bytes(int(x) for x in t.split("."))


def a6(t):
    return ipaddress.IPv6Address(t).packed


def tcp(sport, dport, flags, data=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0) + data


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def dns_name(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


def dns_response(qid, name, qtype, answers):
    q = dns_name(name) + struct.pack("!HH", qtype, 1)
    body = b""
    for rtype, rdata in answers:
        body += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata
    flags = 0x8180 if answers else 0x8183
    return struct.pack("!HHHHHH", qid, flags, 1, len(answers), 0, 0) + q + body


class Capture:
    def __init__(self):
        self.frames = []        # (ts, bytes)
        self.records = []       # what each frame is

    def emit(self, frame, **rec):
        ts = START + len(self.frames) * 0.01
        self.frames.append((ts, frame))
        rec["wire"] = len(frame)
        self.records.append(rec)

    def pcap(self):
        return pcap(self.frames)


class Client:
    def __init__(self, cid, org, mac, v4=None, v6=None, tunnel4=None):
        self.cid, self.org, self.mac, self.v4, self.v6, self.tunnel4 = \
            cid, org, mac, v4, v6, tunnel4


def flow(cap, rng, cl, server, port, route):
    """One TCP exchange of client ``cl`` with ``server`` (address text)
    over ``route``: ipv4, ipv6 (native or 6in4) or nat64."""
    sport = 20000 + len(cap.records) % 40000
    up, down = rng.randrange(40, 900), rng.randrange(200, 1400)
    fam = "ipv4" if route == "ipv4" else "ipv6"
    tunnelled = fam == "ipv6" and cl.tunnel4 is not None
    for direction, flags, size in (("up", 0x02, 0), ("down", 0x12, 0), ("up", 0x18, up),
                                   ("down", 0x18, down)):
        data = bytes(size)
        if fam == "ipv4":
            s, d = (a4(cl.v4), a4(server)) if direction == "up" else (a4(server), a4(cl.v4))
            seg = tcp(sport, port, flags, data) if direction == "up" else \
                tcp(port, sport, flags, data)
            ip = ipv4(s, d, 6, seg)
            etype = 0x0800
        else:
            s, d = (a6(cl.v6), a6(server)) if direction == "up" else (a6(server), a6(cl.v6))
            seg = tcp(sport, port, flags, data) if direction == "up" else \
                tcp(port, sport, flags, data)
            ip = ipv6(s, d, 6, seg)
            etype = 0x86DD
            if tunnelled:
                relay = a4("192.0.2.1")
                ip = ipv4(a4(cl.tunnel4), relay, 41, ip) if direction == "up" else \
                    ipv4(relay, a4(cl.tunnel4), 41, ip)
                etype = 0x0800
        frame = eth(ROUTER_MAC, cl.mac, etype, ip) if direction == "up" else \
            eth(cl.mac, ROUTER_MAC, etype, ip)
        cap.emit(frame, org=cl.org, client=cl.cid, fam=fam,
                 carrier="ipv4" if (fam == "ipv4" or tunnelled) else "ipv6",
                 nat64=route == "nat64", flow=(cl.cid, sport, server, fam),
                 syn=flags == 0x02, server=(route, server),
                 global6=fam == "ipv6")


def build(seed=16):
    rng = random.Random(seed)
    cap = Capture()
    mon_mac = bytes.fromhex("02000000fe01")
    # DNS first: responses to a monitor (a client of no organisation)
    qid = 1
    for name, ans in DNS.items():
        for qtype in (1, 28):
            if ans is None:
                answers = []
            elif qtype == 1:
                answers = [(1, a4(x)) for x in ans[0]]
            else:
                answers = [(28, a6(x)) for x in ans[1] + ans[2]]
            if ans is not None and not answers:
                continue            # no AAAA record: no AAAA response at all
            msg = dns_response(qid, name, qtype, answers)
            port = 30000 + qid
            qid += 1
            cap.emit(eth(mon_mac, ROUTER_MAC, 0x0800,
                         ipv4(a4(RESOLVER4), a4(MONITOR4), 17, udp(53, port, msg))),
                     org=None, client="monitor", fam="ipv4", carrier="ipv4", nat64=False,
                     flow=("monitor", port, RESOLVER4, "udp"), syn=False,
                     server=("ipv4", RESOLVER4), global6=False)
    clients = []
    n = 0

    def client(org, v4=None, v6=None, tunnel4=None):
        nonlocal n
        n += 1
        mac = bytes([2, 0, 0, 0, n >> 8, n & 0xFF])
        c = Client(f"c{n}", org, mac, v4, v6, tunnel4)
        clients.append(c)
        return c

    mof, moh, pra, hosp, prb = (o[0] for o in ORGS)
    plan = [
        # (client, [(server, port, route), ...])
        (client(mof, v4="10.1.0.10"), [("198.51.100.1", 443, "ipv4"), ("203.0.113.20", 443, "ipv4"),
                                       ("203.0.113.10", 443, "ipv4")]),
        (client(mof, v4="10.1.0.11", v6="2001:db8:100::11"),
         [("2001:db8:5e::1", 443, "ipv6"), ("2001:db8:5e::10", 443, "ipv6"),
          ("203.0.113.10", 443, "ipv4"), ("203.0.113.30", 80, "ipv4")]),
        (client(mof, v6="2001:db8:100::12"), [("2001:db8:5e::10", 443, "ipv6"),
                                              ("2001:db8:5e::4", 443, "ipv6")]),
        (client(moh, v6="2001:db8:200::5"),
         [("64:ff9b::c633:6402", 443, "nat64"), ("64:ff9b::cb00:7114", 443, "nat64"),
          ("64:ff9b::cb00:710a", 443, "nat64")]),
        (client(moh, v4="10.2.3.4"), [("198.51.100.2", 443, "ipv4"), (UNNAMED4, 8443, "ipv4"),
                                      ("203.0.113.20", 443, "ipv4")]),
        (client(pra, v4="10.10.1.5", v6="2001:db8:a00::5", tunnel4="10.10.1.5"),
         [("2001:db8:5e::10", 443, "ipv6"), ("198.51.100.4", 443, "ipv4")]),
        (client(pra, v4="10.10.2.6"), [("203.0.113.30", 443, "ipv4"), ("203.0.113.10", 443, "ipv4")]),
        (client(hosp, v4="10.10.5.7", v6="2001:db8:a05::7"),
         [("2001:db8:5e::4", 443, "ipv6"), ("203.0.113.20", 443, "ipv4")]),
        (client(prb, v4="100.64.1.1"), [("198.51.100.3", 443, "ipv4"), ("203.0.113.10", 80, "ipv4"),
                                        ("203.0.113.30", 443, "ipv4")]),
        (client(prb, v4="100.64.1.2"), [("198.51.100.3", 443, "ipv4")]),
        (client(None, v4="192.168.99.7"), [("203.0.113.20", 443, "ipv4")]),
        (client(None, v6="2001:db8:ffff::8"), [("2001:db8:5e::10", 443, "ipv6")]),
    ]
    # rounds: every client runs its flows, several times, interleaved
    for _ in range(3):
        for cl, flows in plan:
            for server, port, route in flows:
                flow(cap, rng, cl, server, port, route)
    return cap


def org_csv():
    lines = ["prefix,organisation,group,domain"]
    for name, group, domain, prefixes in ORGS:
        for p in prefixes:
            lines.append(f'{p},"{name}",{group},{domain}')
    return "\r\n".join(lines) + "\r\n"


# -- the truth, summed from the records ----------------------------------------

def _share(a, b):
    return a / b if b else None


def truth(cap):
    native6 = {x for v in DNS.values() if v for x in v[1]}
    dual = {n for n, v in DNS.items() if v and v[0] and v[1]}
    dual4 = {x for n in dual for x in DNS[n][0]}
    dual6 = {x for n in dual for x in DNS[n][1]}
    # a NAT64 address reaching a dual-stacked name's A (RFC 6052 /96)
    def nat_v4(addr):
        return str(ipaddress.IPv4Address(a6(addr)[12:]))
    names_of4 = defaultdict(set)
    for n, v in DNS.items():
        for x in (v[0] if v else ()):
            names_of4[x].add(n)
    has_native = {x: any(DNS[n][1] for n in names_of4[x]) for x in names_of4}
    groups = {name: g for name, g, *_ in ORGS}

    def fresh():
        return {"p4": 0, "b4": 0, "p6": 0, "b6": 0, "cp4": 0, "cb4": 0, "cp6": 0, "cb6": 0,
                "np": 0, "nb": 0, "tp": 0, "tb": 0, "xp": 0, "xb": 0,
                "clients": set(), "c4": set(), "c6": set(), "c6e": set(),
                "f4": set(), "f6": set(), "fx": set(), "pref": [0, 0, 0],
                "block": defaultdict(lambda: [0, 0])}

    acc = defaultdict(fresh)
    for r in cap.records:
        for key in (r["org"], "*"):
            a = acc[key]
            w, six = r["wire"], r["fam"] == "ipv6"
            a["p6" if six else "p4"] += 1
            a["b6" if six else "b4"] += w
            c6 = r["carrier"] == "ipv6"
            a["cp6" if c6 else "cp4"] += 1
            a["cb6" if c6 else "cb4"] += w
            if six:
                a["np" if c6 else "tp"] += 1
                a["nb" if c6 else "tb"] += w
            if r["nat64"]:
                a["xp"] += 1
                a["xb"] += w
            a["clients"].add(r["client"])
            (a["c6"] if six else a["c4"]).add(r["client"])
            if six and not r["nat64"]:
                a["c6e"].add(r["client"])
            (a["f6"] if six else a["f4"]).add(r["flow"])
            if r["nat64"]:
                a["fx"].add(r["flow"])
            route, addr = r["server"]
            if r["syn"]:
                if route == "ipv4" and addr in dual4:
                    a["pref"][0] += 1
                elif route == "ipv6" and addr in dual6:
                    a["pref"][1] += 1
                elif route == "nat64" and nat_v4(addr) in dual4:
                    a["pref"][2] += 1
            if route == "ipv4" and not has_native.get(addr, False):
                e = a["block"][addr]
                e[0] += w
                e[1] += 1

    def adoption(a):
        conns = sum(a["pref"])
        f4, f6, fx = len(a["f4"]), len(a["f6"]), len(a["fx"])
        return {
            "traffic_packets": {"on_the_wire": _share(a["p6"], a["p4"] + a["p6"]),
                                "end_to_end": _share(a["p6"] - a["xp"], a["p4"] + a["p6"])},
            "traffic_bytes": {"on_the_wire": _share(a["b6"], a["b4"] + a["b6"]),
                              "end_to_end": _share(a["b6"] - a["xb"], a["b4"] + a["b6"])},
            "flows": {"on_the_wire": _share(f6, f4 + f6), "end_to_end": _share(f6 - fx, f4 + f6)},
            "clients": {"on_the_wire": _share(len(a["c6"]), len(a["clients"])),
                        "end_to_end": _share(len(a["c6e"]), len(a["clients"]))},
            "ipv6_preferred": {"on_the_wire": _share(a["pref"][1] + a["pref"][2], conns),
                               "end_to_end": _share(a["pref"][1], conns)},
            "counts": {"flows": {"ipv4": f4, "ipv6": f6, "nat64": fx},
                       "clients": {"total": len(a["clients"]), "ipv6": len(a["c6"]),
                                   "ipv6_end_to_end": len(a["c6e"])},
                       "dual_stacked_connections": {"ipv4": a["pref"][0], "ipv6": a["pref"][1],
                                                    "nat64": a["pref"][2]}},
        }

    def blocking(a):
        entries = sorted(a["block"].items(),
                         key=lambda kv: (-kv[1][0], int(ipaddress.IPv4Address(kv[0]))))
        total = sum(e[0] for _, e in entries)
        out, cum = [], 0
        for addr, (b, p) in entries[:10]:
            cum += b
            out.append({"address": addr, "names": sorted(names_of4.get(addr, ())),
                        "names_total": len(names_of4.get(addr, ())), "packets": p, "bytes": b,
                        "share_of_ipv4_bytes": _share(b, a["b4"]),
                        "cumulative_share": _share(cum, a["b4"])})
        return {"ipv4_bytes": a["b4"], "blocking_bytes": total,
                "share_of_ipv4_bytes": _share(total, a["b4"]),
                "destinations_total": len(entries), "destinations": out,
                "ipv4_only_clients": len(a["c4"] - a["c6"]), "clients": len(a["clients"])}

    def readiness(domain):
        out = {"ipv6_ready": 0, "dns64_only": 0, "ipv4_only": 0, "no_answer": 0}
        if not domain:
            return out
        for n, v in DNS.items():
            if n == domain or n.endswith("." + domain):
                out["no_answer" if v is None else "ipv6_ready" if v[1] else
                    "dns64_only" if v[2] else "ipv4_only"] += 1
        return out

    rows, adopt, block = [], [], []
    domains = {name: d for name, _, d, _ in ORGS}
    for org in sorted(groups) + [None]:
        a = acc[org]
        rows.append({
            "organisation": org, "group": groups.get(org, ""),
            "domains": [domains[org]] if org and domains[org] else [],
            "payload": {"ipv4": {"packets": a["p4"], "bytes": a["b4"]},
                        "ipv6": {"packets": a["p6"], "bytes": a["b6"]}},
            "carrier": {"ipv4": {"packets": a["cp4"], "bytes": a["cb4"]},
                        "ipv6": {"packets": a["cp6"], "bytes": a["cb6"]}},
            "share": {"ipv6_packets": _share(a["p6"], a["p4"] + a["p6"]),
                      "ipv6_bytes": _share(a["b6"], a["b4"] + a["b6"]),
                      "carrier_ipv6_packets": _share(a["cp6"], a["cp4"] + a["cp6"]),
                      "carrier_ipv6_bytes": _share(a["cb6"], a["cb4"] + a["cb6"])},
            "ipv6": {"native": {"packets": a["np"], "bytes": a["nb"]},
                     "tunnelled": {"packets": a["tp"], "bytes": a["tb"]}},
            "nat64": {"packets": a["xp"], "bytes": a["xb"]},
            "clients": {"total": len(a["clients"]), "ipv6_capable": len(a["c6"]),
                        "ipv4_only": len(a["c4"] - a["c6"]),
                        "share_ipv6_capable": _share(len(a["c6"]), len(a["clients"]))},
            "names": readiness(domains.get(org, "")),
        })
        adopt.append({"organisation": org, **adoption(a)})
        block.append({"organisation": org, **blocking(a)})
    return {"organisations": {"rows": rows},
            "adoption": {"overall": adoption(acc["*"]), "by_organisation": adopt},
            "blocking": {"overall": blocking(acc["*"]), "by_organisation": block}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()
    cap = build()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "programme.pcap"), "wb") as fh:
        fh.write(cap.pcap())
    with open(os.path.join(args.out, "orgs.csv"), "w", newline="") as fh:
        fh.write(org_csv())
    with open(os.path.join(args.out, "programme.truth.json"), "w") as fh:
        json.dump(truth(cap), fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
