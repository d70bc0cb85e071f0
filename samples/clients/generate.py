#!/usr/bin/env python3
"""Captures with known client populations, for the clients and flows figures.

    python samples/clients/generate.py [--out DIR] [--v4 N] [--v6 N] [--dual N]
                                       [--teredo N] [--ll N] [--flows N] [--raw]

writes ``population.pcap`` and ``population.truth.json`` (default: next to
this script). ``build(...)`` returns the same as bytes and a dict, for the
tests.

The population, every member built from explicit parameters:

* IPv4-only clients, IPv6-only clients and dual-stack clients, each behind
  its own MAC address. IPv6 clients live in their own /64 of 2001:db8::/32;
  every fourth is an EUI-64 host (its interface identifier made from its
  MAC), the others use privacy addresses: ``rotations`` random interface
  identifiers in their /64, one per flow in turn;
* Teredo clients (IPv4 behind a NAT, IPv6 over UDP 3544), which also make
  IPv4 flows: dual-stack by MAC and by IPv4 address;
* link-local-only hosts: neighbour solicitations from fe80:: to a
  solicited-node multicast group, nothing else;
* servers with known interface identifiers (2001:db8:ffff::443 a port,
  2001:db8:ffff::10 low-byte, 2001:db8:fffe::c633:6401 an embedded IPv4
  address) and IPv4 servers;
* two NTP servers talking 123 <-> 123, which have no client side.

Each flow is a TCP exchange client -> server (SYN) and server -> client
(SYN-ACK) with a distinct ephemeral port, so the distinct bidirectional
5-tuples are known by construction. The truth is written for each client
key (mac, ipv4, ipv6-64) from the members' parameters, never by reading the
capture back. Random interface identifiers are drawn until none of the
classification rules of analysis/population.py other than "random" could
apply (explicit constraints, checked by the tests' own classifier).
"""

import argparse
import json
import os
import random
import struct
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from packets import ipv4, ipv6, pcap, udp  # noqa: E402  (samples/packets.py)

HERE = os.path.dirname(os.path.abspath(__file__))
START = 1_700_000_000.0
ROUTER_MAC = bytes.fromhex("00005e0053ff")
NTP_MACS = (bytes.fromhex("00005e005301"), bytes.fromhex("00005e005302"))
SERVERS6 = (bytes.fromhex("20010db8ffff00000000000000000443"),      # port (0x443)
            bytes.fromhex("20010db8ffff00000000000000000010"),      # low_byte
            bytes.fromhex("20010db8fffe000000000000c6336401"))      # embedded_ipv4
SERVER6_CLASSES = ("embedded_port", "low_byte", "embedded_ipv4")
SERVERS4 = (bytes([198, 51, 100, 10]), bytes([198, 51, 100, 20]))
TEREDO_SERVER4 = bytes([192, 0, 2, 53])
TEREDO_RELAY4 = bytes([192, 0, 2, 54])
NTP4 = (bytes([203, 0, 113, 1]), bytes([203, 0, 113, 2]))


def tcp(sport, dport, flags):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def eui64_iid(mac: bytes) -> bytes:
    return bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:6]


def random_iid(rng) -> bytes:
    """64 random bits that no other interface-identifier class claims."""
    while True:
        iid = rng.getrandbits(64).to_bytes(8, "big")
        words = struct.unpack("!4H", iid)
        if (iid[3:5] == b"\xff\xfe" or iid[:4] in (b"\x00\x00\x5e\xfe", b"\x02\x00\x5e\xfe")
                or iid[:4] == b"\x00\x00\x00\x00" or all(w <= 0x255 for w in words)
                or iid.count(0) > 2):
            continue
        return iid


def teredo_address(client4: bytes, port: int) -> bytes:
    return (bytes.fromhex("20010000") + TEREDO_SERVER4 + b"\x80\x00"
            + struct.pack("!H", port ^ 0xFFFF) + bytes(b ^ 0xFF for b in client4))


class Builder:
    """Frames and what each one is, recorded as it is built."""

    def __init__(self, raw: bool, interval: float):
        self.raw = raw
        self.interval = interval
        self.frames = []                     # (ts, bytes)
        self.t = START
        self.flows = {"ipv4": set(), "ipv6": set()}
        self.by_tunnel = defaultdict(set)
        self.bin_flows = defaultdict(lambda: {"ipv4": set(), "ipv6": set()})
        self.keyed = {"mac": 0, "ipv4": 0, "ipv6-64": 0, "auto": 0}
        self.frames_ip = 0

    def frame(self, l3, ethertype, macs, flow, fam, tunnel, keys):
        """``keys``: the client-key modes under which this frame has a client."""
        self.t += 0.0005
        if self.raw:
            data = l3
        else:
            data = eth(macs[0], macs[1], ethertype, l3)
        self.frames.append((self.t, data))
        self.frames_ip += 1
        self.flows[fam].add(flow)
        self.by_tunnel[tunnel].add(flow)
        self.bin_flows[int(self.t // self.interval)][fam].add(flow)
        if self.raw:      # auto: IPv6 payloads by /64, IPv4 payloads by address
            auto = ("ipv6-64" if fam == "ipv6" else "ipv4") in keys
        else:             # auto: by MAC on Ethernet
            auto = "mac" in keys
        for k in keys + (("auto",) if auto else ()):
            self.keyed[k] += 1


def build(v4=6, v6=5, dual=7, teredo=3, ll=2, flows=3, rotations=3, raw=False, seed=8,
          interval=1.0):
    """(pcap bytes, truth dict) of one population."""
    rng = random.Random(seed)
    b = Builder(raw, interval)
    mac_ok = () if raw else ("mac",)
    clients = {"mac": {}, "ipv4": {}, "ipv6-64": {}}     # key -> set of families
    iid_addr = defaultdict(set)
    iid_p64 = defaultdict(set)

    def seen(mode, key, family):
        clients[mode].setdefault(key, set()).add(family)

    def source6(addr, cls):
        iid_addr[cls].add(addr)
        iid_p64[cls].add(addr[:8])

    def flow(fam, mac, client, server, port):
        """One TCP flow client -> server:443 (SYN) and back (SYN-ACK)."""
        v6 = fam == "ipv6"
        srv = SERVERS6[server % 3] if v6 else SERVERS4[server % 2]
        key = (fam, 6, min((client, port), (srv, 443)), max((client, port), (srv, 443)))
        for direction in (0, 1):
            src, dst, sp, dp = ((client, srv, port, 443) if direction == 0
                                else (srv, client, 443, port))
            macs = (ROUTER_MAC, mac) if direction == 0 else (mac, ROUTER_MAC)
            l3 = (ipv6 if v6 else ipv4)(src, dst, 6, tcp(sp, dp, 0x12 if direction else 0x02))
            b.frame(l3, 0x86DD if v6 else 0x0800, macs, key, fam, "none",
                    mac_ok + (("ipv6-64",) if v6 else ("ipv4",)))
        if v6:
            source6(srv, SERVER6_CLASSES[server % 3])

    n = 0

    def member():
        nonlocal n
        n += 1
        return bytes([0x00, 0x16, 0x3E, n >> 16 & 0xFF, n >> 8 & 0xFF, n & 0xFF])

    def six_addresses(mac, i):
        prefix = bytes.fromhex("20010db8") + struct.pack("!HH", 0x1000 + i // 65536, i % 65536)
        if i % 4 == 0:
            addrs = [prefix + eui64_iid(mac)]
            cls = "eui64"
        else:
            addrs = [prefix + random_iid(rng) for _ in range(rotations)]
            cls = "random"
        for a in addrs:
            source6(a, cls)
        return prefix, addrs

    six_index = 0
    for kind, count in (("v4", v4), ("v6", v6), ("dual", dual)):
        for _ in range(count):
            mac = member()
            port = 49152
            if kind in ("v4", "dual"):
                c4 = bytes([10, n >> 16 & 0xFF, n >> 8 & 0xFF, n & 0xFF])
                for f in range(flows):
                    flow("ipv4", mac, c4, f, port)
                    port += 1
                seen("mac", mac, "ipv4")
                seen("ipv4", c4, "ipv4")
            if kind in ("v6", "dual"):
                prefix, addrs = six_addresses(mac, six_index)
                six_index += 1
                for f in range(flows):
                    flow("ipv6", mac, addrs[f % len(addrs)], f, port)
                    port += 1
                seen("mac", mac, "ipv6")
                seen("ipv6-64", prefix, "ipv6")
    for _ in range(teredo):
        mac = member()
        c4 = bytes([100, 64, n >> 8 & 0xFF, n & 0xFF])
        port = 40000
        for f in range(flows):
            flow("ipv4", mac, c4, f, port)
            port += 1
        nat_port = 3544 + n
        t6 = teredo_address(c4, nat_port)
        s6 = SERVERS6[0]
        for f in range(flows):
            key = ("ipv6", 6, min((t6, port), (s6, 443)), max((t6, port), (s6, 443)))
            for direction in (0, 1):
                if direction == 0:
                    inner = ipv6(t6, s6, 6, tcp(port, 443, 0x02))
                    l3 = ipv4(c4, TEREDO_RELAY4, 17, udp(nat_port, 3544, inner))
                    macs = (ROUTER_MAC, mac)
                else:
                    inner = ipv6(s6, t6, 6, tcp(443, port, 0x12))
                    l3 = ipv4(TEREDO_RELAY4, c4, 17, udp(3544, nat_port, inner))
                    macs = (mac, ROUTER_MAC)
                b.frame(l3, 0x0800, macs, key, "ipv6", "teredo", mac_ok + ("ipv4", "ipv6-64"))
            port += 1
        source6(s6, SERVER6_CLASSES[0])
        for k, fam in (("mac", "ipv4"), ("mac", "ipv6"), ("ipv4", "ipv4"), ("ipv4", "ipv6")):
            seen(k, mac if k == "mac" else c4, fam)
        seen("ipv6-64", t6[:8], "ipv6")
    for _ in range(ll):
        mac = member()
        src = bytes.fromhex("fe800000000000000000000000000000")[:8] + eui64_iid(mac)
        target = bytes.fromhex("20010db8ffff00000000000000000001")
        group = bytes.fromhex("ff0200000000000000000001ff") + target[13:]
        ns = struct.pack("!BBHI", 135, 0, 0, 0) + target
        key = ("ipv6", 58, min((src, 0), (group, 0)), max((src, 0), (group, 0)))
        for _ in range(2):
            b.frame(ipv6(src, group, 58, ns), 0x86DD,
                    (b"\x33\x33\xff" + target[13:], mac), key, "ipv6", "none", mac_ok)
        seen("mac", mac, "link_local")
    # servers with no client side: NTP 123 <-> 123
    key = ("ipv4", 17, (NTP4[0], 123), (NTP4[1], 123))
    for direction in (0, 1):
        src, dst = NTP4[direction], NTP4[1 - direction]
        b.frame(ipv4(src, dst, 17, udp(123, 123, b"\x23" + b"\x00" * 47)), 0x0800,
                (NTP_MACS[1 - direction], NTP_MACS[direction]), key, "ipv4", "none", ())
    truth = _truth(b, clients, iid_addr, iid_p64, raw)
    return pcap(b.frames, 101 if raw else 1), truth


def _figures(table):
    fams = list(table.values())
    v4 = sum(1 for f in fams if "ipv4" in f and "ipv6" not in f)
    v6 = sum(1 for f in fams if "ipv6" in f and "ipv4" not in f)
    dual = sum(1 for f in fams if {"ipv4", "ipv6"} <= f)
    return {"total": len(fams), "ipv4_only": v4, "ipv6_only": v6, "dual_stack": dual,
            "link_local_only": len(fams) - v4 - v6 - dual, "ipv6_capable": v6 + dual}


def _truth(b, clients, iid_addr, iid_p64, raw):
    keys = {}
    for mode in ("mac", "ipv4", "ipv6-64"):
        if raw and mode == "mac":
            continue
        fig = _figures(clients[mode])
        fig["frames"] = {"attributed": b.keyed[mode],
                         "unattributed": b.frames_ip - b.keyed[mode]}
        keys[mode] = fig
    # auto: mac on Ethernet; on a raw link IPv6 payloads by /64 and IPv4
    # payloads by address (Teredo frames are IPv6 payloads: by /64)
    if raw:
        both = {("6", k): v for k, v in clients["ipv6-64"].items()}
        both.update({("4", k): {"ipv4"} for k in clients["ipv4"]})
        keys["auto"] = _figures(both)
    else:
        keys["auto"] = dict(keys["mac"])
    keys["auto"]["frames"] = {"attributed": b.keyed["auto"],
                              "unattributed": b.frames_ip - b.keyed["auto"]}
    classes = ("eui64", "isatap", "embedded_ipv4", "embedded_port", "low_byte", "pattern_bytes",
               "random")
    return {
        "frames": len(b.frames),
        "clients": keys,
        "interface_ids": {
            "sources": {"addresses": sum(len(v) for v in iid_addr.values()),
                        "prefixes64": len(set().union(*iid_p64.values()) if iid_p64 else set())},
            "addresses": {c: len(iid_addr.get(c, ())) for c in classes},
            "prefixes64": {c: len(iid_p64.get(c, ())) for c in classes},
        },
        "flows": {"ipv4": len(b.flows["ipv4"]), "ipv6": len(b.flows["ipv6"]),
                  "by_tunnel": {k: len(v) for k, v in b.by_tunnel.items()}},
        "interval": b.interval,
        "bins": {str(k * b.interval): {f: len(s) for f, s in v.items()}
                 for k, v in sorted(b.bin_flows.items())},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=HERE)
    for name, default in (("v4", 6), ("v6", 5), ("dual", 7), ("teredo", 3), ("ll", 2),
                          ("flows", 3)):
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--raw", action="store_true", help="raw IP link (no Ethernet, no MACs)")
    a = ap.parse_args()
    data, truth = build(a.v4, a.v6, a.dual, a.teredo, a.ll, a.flows, raw=a.raw)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "population.pcap"), "wb") as fh:
        fh.write(data)
    with open(os.path.join(a.out, "population.truth.json"), "w") as fh:
        json.dump(truth, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"{truth['frames']} frames; clients (auto key): {truth['clients']['auto']['total']}")


if __name__ == "__main__":
    main()
