#!/usr/bin/env python3
"""Generate the NAT64/DNS64 scenario captures of ipv6flow, deterministically.

    python samples/nat64/generate.py [--out DIR]

writes, into DIR (default: this script's folder), one small Ethernet (DLT 1)
pcap per scenario and, next to it, ``<scenario>.truth.json`` with what a
correct report must say about it (REPORT.md section 6 plus the ``services``
view of issue 4).  The scenarios and the rules are in README.md here.

The truth is written *by construction*: every frame is built from explicit
parameters (which client, which NAT64 prefix, which embedded IPv4 address,
which DNS records and whether each AAAA record was synthesized), and the
figures are added up from those parameters.  Nothing comes from running
ipv6flow.  Two consistency checks guard the construction: (1) for every
frame, the addresses actually written must fall in exactly the suspect
prefixes the frame was tagged with, and (2) an independent dpkt reading of
each written pcap must give the same per-prefix packet and byte counts.

Frames are built with struct (checksums computed here), timestamps start at
1700000000.000000 and advance 0.15-4 ms per frame, randomness comes from one
random.Random per scenario with a fixed seed, so two runs give byte-identical
files.
"""

import argparse
import hashlib
import ipaddress
import json
import os
import random
import struct
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 6052_7050
T0_US = 1_700_000_000 * 1_000_000
LENGTHS = (32, 40, 48, 56, 64, 96)

IP4 = ipaddress.IPv4Address
IP6 = ipaddress.IPv6Address
NET6 = ipaddress.IPv6Network

WKP = NET6("64:ff9b::/96")
LOCAL = NET6("64:ff9b:1::/48")
RFC7050_V4 = ("192.0.0.170", "192.0.0.171")

# RFC 6052 section 2.2: octets of the IPv6 address holding the IPv4 octets,
# for each prefix length.  Octet 8 (bits 64-71, the "u" octet) is never used.
POSITIONS = {32: (4, 5, 6, 7), 40: (5, 6, 7, 9), 48: (6, 7, 9, 10),
             56: (7, 9, 10, 11), 64: (9, 10, 11, 12), 96: (12, 13, 14, 15)}

# Network-specific prefixes, one per length, per family of scenarios.
NSP_RFC7050 = {32: "2a02:cafe::/32", 40: "2a02:cafe:6400::/40", 48: "2a02:cafe:64::/48",
               56: "2a02:cafe:64:6400::/56", 64: "2a02:cafe:64:64::/64",
               96: "2a02:cafe:64:64:0:64::/96"}
NSP_DNS64 = {32: "2a0b:f4c0::/32", 40: "2a0b:f4c0:6400::/40", 48: "2a0b:f4c0:64::/48",
             56: "2a0b:f4c0:64:6400::/56", 64: "2a0b:f4c0:64:64::/64",
             96: "2a0b:f4c0:64:64:0:64::/96"}
# PREF64 (RFC 8781): PLC code -> prefix
PLC_LEN = {0: 96, 1: 64, 2: 56, 3: 48, 4: 40, 5: 32}
PREF64_PREFIX = {5: "2a10:6400::/32", 4: "2a10:6401:6400::/40", 3: "2a10:6402:64::/48",
                 2: "2a10:6403:64:6400::/56", 1: "2a10:6404:64:64::/64",
                 0: "2a10:6405:64:64:0:64::/96"}
PREF64_INVALID = "2a10:6406:64:64:0:64::"          # sent with PLC 7: must be ignored
CONFIGURED = ["2a03:b0c0:64::/48", "2a03:b0c0:ff64::/96"]
MALFORMED_NSP = "2a0b:f4c0:64:64::/64"

# Hosts
CLIENTS6 = ["2a02:8108:1a00:5e00::1a2b", "2a02:8108:1a00:5e00:5c1:7e2f:9a33:10",
            "2a02:8108:1a00:5e00:a8f3:62ff:fe10:c3", "2a02:8108:1a00:5e00:e11d:4b0:77c2:9"]
CLIENTS4 = ["192.168.1.20", "192.168.1.21", "192.168.1.34", "192.168.1.57"]
RESOLVER6 = "2001:4860:4860::6464"     # a DNS64 resolver
RESOLVER6_PLAIN = "2001:4860:4860::8888"
RESOLVER4 = "192.168.1.1"
ROUTER_LL = "fe80::1"
ROUTER_MAC = bytes.fromhex("001b213a4f10")
SERVERS6 = ["2a00:1450:4001:82b::200e", "2a03:2880:f10c:83:face:b00c:0:25de",
            "2620:1ec:bdf::10", "2a04:4e42:600::223"]
SERVERS4 = ["142.250.185.78", "157.240.20.35", "13.107.42.14", "17.253.144.10"]
# public IPv4 services reached through NAT64
V4 = ["93.184.216.34", "151.101.1.69", "151.101.65.69", "140.82.121.4",
      "185.199.108.153", "162.159.200.1", "45.33.32.156", "104.244.42.1"]


# ---------------------------------------------------------------------------
# RFC 6052

def check_nsp(net):
    net = NET6(net)
    assert net.prefixlen in POSITIONS, net
    if net.prefixlen == 96:
        assert net.network_address.packed[8] == 0, "bits 64-71 must be zero: %s" % net
    return net


def embed(net, v4):
    net = NET6(net)
    b = bytearray(net.network_address.packed)
    for i, o in zip(POSITIONS[net.prefixlen], IP4(v4).packed):
        b[i] = o
    return str(IP6(bytes(b)))


def extract(a6, length):
    b = IP6(a6).packed
    return str(IP4(bytes(b[i] for i in POSITIONS[length])))


def mask(a6, length):
    return str(NET6("%s/%d" % (a6, length), strict=False))


def in_net(a, net):
    try:
        return IP6(a) in NET6(net)
    except ValueError:
        return False


# ---------------------------------------------------------------------------
# Packet bytes

def csum16(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fam_of(a):
    return 4 if ":" not in a else 6


def pseudo(src, dst, proto, length):
    if fam_of(src) == 4:
        return IP4(src).packed + IP4(dst).packed + struct.pack("!BBH", 0, proto, length)
    return IP6(src).packed + IP6(dst).packed + struct.pack("!I3xB", length, proto)


def udp_bytes(src, dst, sp, dp, data):
    h = struct.pack("!HHHH", sp, dp, 8 + len(data), 0)
    c = csum16(pseudo(src, dst, 17, 8 + len(data)) + h + data) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + data


TCP_FLAGS = {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}


def tcp_bytes(src, dst, sp, dp, seq, ack, flags, data=b"", opts=b"", win=64240):
    fl = sum(TCP_FLAGS[f] for f in flags)
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", sp, dp, seq, ack, off << 4, fl, win, 0, 0) + opts
    c = csum16(pseudo(src, dst, 6, len(h) + len(data)) + h + data)
    return h[:16] + struct.pack("!H", c) + h[18:] + data


def icmp6_bytes(src, dst, typ, code, body):
    h = struct.pack("!BBH", typ, code, 0)
    c = csum16(pseudo(src, dst, 58, 4 + len(body)) + h + body)
    return struct.pack("!BBH", typ, code, c) + body


def ipv4(src, dst, proto, payload, ident, ttl=64):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, ttl, proto,
                    0, IP4(src).packed, IP4(dst).packed)
    return h[:10] + struct.pack("!H", csum16(h)) + h[12:] + payload


def ipv6(src, dst, nh, payload, hlim=64, flow=0):
    return struct.pack("!IHBB", (6 << 28) | flow, len(payload), nh, hlim) + \
        IP6(src).packed + IP6(dst).packed + payload


def host_mac(addr):
    return b"\x02" + hashlib.sha256(addr.encode()).digest()[:5]


def ether(src_mac, dst_mac, ethertype, payload):
    f = dst_mac + src_mac + struct.pack("!H", ethertype) + payload
    return f + b"\0" * max(0, 60 - len(f))


# ---------------------------------------------------------------------------
# DNS messages (own encoder: explicit, with name compression)

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "AAAA": 28}


class DnsWriter:
    def __init__(self):
        self.buf = bytearray()
        self.comp = {}

    def name(self, name):
        labels = name.rstrip(".").split(".") if name not in ("", ".") else []
        for i in range(len(labels)):
            suffix = ".".join(labels[i:]).lower()
            if suffix in self.comp:
                self.buf += struct.pack("!H", 0xC000 | self.comp[suffix])
                return
            if len(self.buf) < 0x3FFF:
                self.comp[suffix] = len(self.buf)
            lab = labels[i].encode()
            assert 0 < len(lab) < 64
            self.buf += bytes([len(lab)]) + lab
        self.buf += b"\0"

    def rr(self, owner, rtype, value, ttl=300):
        self.name(owner)
        self.buf += struct.pack("!HHI", TYPES[rtype], 1, ttl)
        at = len(self.buf)
        self.buf += b"\0\0"
        if rtype == "A":
            self.buf += IP4(value).packed
        elif rtype == "AAAA":
            self.buf += IP6(value).packed
        elif rtype == "CNAME":
            self.name(value)
        elif rtype == "SOA":
            mname, rname, serial = value
            self.name(mname)
            self.name(rname)
            self.buf += struct.pack("!IIIII", serial, 7200, 3600, 1209600, 3600)
        struct.pack_into("!H", self.buf, at, len(self.buf) - at - 2)


def dns_message(ident, flags, qname, qtype, answers=(), authority=(), rcode=0):
    w = DnsWriter()
    w.buf += struct.pack("!HHHHHH", ident, flags | rcode, 1, len(answers), len(authority), 0)
    w.name(qname)
    w.buf += struct.pack("!HH", TYPES[qtype], 1)
    for owner, rtype, value in answers:
        w.rr(owner, rtype, value)
    for owner, rtype, value in authority:
        w.rr(owner, rtype, value, ttl=3600)
    return bytes(w.buf)


def soa_for(zone):
    return (zone, "SOA", ("ns1." + zone, "hostmaster." + zone, 2023111401))


def zone_of(name):
    return ".".join(name.split(".")[-2:])


# ---------------------------------------------------------------------------
# One scenario capture

class Capture:
    def __init__(self, name, index, title):
        self.name = name
        self.title = title
        self.R = random.Random(SEED + index)
        self.t = T0_US
        self.frames = []
        self.dns = []           # one entry per DNS response (truth by construction)
        self.queried = []       # question names of the queries sent
        self.evidence = defaultdict(set)   # prefix -> non-traffic evidence
        self.options = []
        self.malformed = 0
        self.ident4 = {}

    # -- frames -----------------------------------------------------------

    def frame(self, local, outbound, ethertype, ip, v6, nat, desc):
        """One frame record.  v6: innermost IPv6 (src, dst) or None.  nat:
        list of (prefix, client or None, [embedded IPv4]) the frame counts for."""
        lm = host_mac(local)
        src, dst = (lm, ROUTER_MAC) if outbound else (ROUTER_MAC, lm)
        return {"data": ether(src, dst, ethertype, ip), "v6": v6, "nat": nat or [],
                "desc": desc}

    def ip(self, src, dst, proto, l4, hlim=64):
        if fam_of(src) == 4:
            if src not in self.ident4:
                self.ident4[src] = self.R.randrange(1, 0xFFFF)
            self.ident4[src] = (self.ident4[src] + 1) & 0xFFFF
            return 0x0800, ipv4(src, dst, proto, l4, self.ident4[src], ttl=hlim)
        return 0x86DD, ipv6(src, dst, proto, l4, hlim=hlim)

    def pkt(self, local, outbound, src, dst, proto, l4, nat, desc, hlim=None):
        if hlim is None:
            hlim = 64 if outbound else self.R.choice((52, 53, 55, 57, 118, 121))
        et, ip = self.ip(src, dst, proto, l4, hlim)
        v6 = (src, dst) if et == 0x86DD else None
        return self.frame(local, outbound, et, ip, v6, nat, desc)

    def run(self, *convs):
        """Interleave conversations (each keeps its order) and emit them."""
        convs = [list(c) for c in convs if c]
        while convs:
            i = self.R.randrange(len(convs))
            f = convs[i].pop(0)
            if not convs[i]:
                convs.pop(i)
            self.t += self.R.randint(150, 4000)
            f["ts"] = self.t
            self.frames.append(f)

    # -- conversations ----------------------------------------------------

    def tcp(self, c, s, dport, exchanges, nat=None, what="", close=True):
        """TCP session client c -> server s: handshake, exchanges of
        (request bytes, [response segment bytes]), close."""
        R = self.R
        cport = R.randint(32768, 60999)
        seq = {True: R.getrandbits(32), False: R.getrandbits(32)}
        out = []
        tag = "%s tcp %s -> [%s]:%d" % (what, c, s, dport)

        def seg(outbound, flags, data=b"", opts=b""):
            src, dst, sp, dp = (c, s, cport, dport) if outbound else (s, c, dport, cport)
            ack = seq[not outbound] if "A" in flags else 0
            l4 = tcp_bytes(src, dst, sp, dp, seq[outbound], ack, flags, data, opts)
            seq[outbound] = (seq[outbound] + len(data) + ("S" in flags) + ("F" in flags)) \
                & 0xFFFFFFFF
            out.append(self.pkt(c, outbound, src, dst, 6, l4, nat,
                                "%s %s %s" % (tag, "out" if outbound else "in", flags)))

        mss = struct.pack("!BBH", 2, 4, 1440 if fam_of(c) == 6 else 1460)
        seg(True, "S", opts=mss)
        seg(False, "SA", opts=mss)
        seg(True, "A")
        for req, resps in exchanges:
            seg(True, "PA", req)
            for r in resps:
                seg(False, "PA", r)
            seg(True, "A")
        if close:
            seg(True, "FA")
            seg(False, "FA")
            seg(True, "A")
        return out

    def udp(self, c, s, dport, exchanges, nat=None, what=""):
        R = self.R
        cport = R.randint(32768, 60999)
        out = []
        for req, resps in exchanges:
            for outbound, data in [(True, req)] + [(False, r) for r in resps]:
                src, dst, sp, dp = (c, s, cport, dport) if outbound else (s, c, dport, cport)
                out.append(self.pkt(c, outbound, src, dst, 17, udp_bytes(src, dst, sp, dp, data),
                                    nat, "%s udp %s -> [%s]:%d %s" % (
                                        what, c, s, dport, "out" if outbound else "in")))
        return out

    def echo6(self, c, s, n, nat=None, what=""):
        out = []
        ident = self.R.randrange(1, 0xFFFF)
        for i in range(n):
            body = struct.pack("!HH", ident, i + 1) + bytes(range(56))
            out.append(self.pkt(c, True, c, s, 58, icmp6_bytes(c, s, 128, 0, body), nat,
                                "%s echo request %s -> %s" % (what, c, s)))
            out.append(self.pkt(c, False, s, c, 58, icmp6_bytes(s, c, 129, 0, body), nat,
                                "%s echo reply %s -> %s" % (what, s, c)))
        return out

    def data(self, n):
        return self.R.randbytes(n)

    def web(self, c, s, nat=None, what="", port=443):
        return self.tcp(c, s, port, [(self.data(self.R.randint(150, 517)),
                                      [self.data(self.R.randint(200, 900))
                                       for _ in range(self.R.randint(1, 3))])],
                        nat=nat, what=what)

    def quic(self, c, s, nat=None, what=""):
        """QUIC-like: short-header packets (first octet 01xxxxxx)."""
        def short(n):
            return bytes([0x40 | self.R.randrange(64)]) + self.data(n - 1)
        return self.udp(c, s, 443, [(short(1200), [short(self.R.randint(200, 900)),
                                                   short(self.R.randint(100, 900))]),
                                    (short(60), [short(40)])], nat=nat, what=what)

    def ntp(self, c, s, nat=None, what=""):
        req = bytes([0x23]) + bytes(39) + self.data(8)
        return self.udp(c, s, 123, [(req, [bytes([0x24, 2]) + self.data(46)])], nat=nat,
                        what=what)

    # NAT64 conversations: tag every frame with (prefix, client, [IPv4])
    def nat_web(self, c, prefix, v4, quic=False):
        a = embed(prefix, v4)
        tag = [(prefix, c, [v4])]
        if quic:
            return self.quic(c, a, tag, "nat64 %s (%s)" % (prefix, v4))
        return self.web(c, a, tag, "nat64 %s (%s)" % (prefix, v4))

    def nat_ntp(self, c, prefix, v4):
        return self.ntp(c, embed(prefix, v4), [(prefix, c, [v4])], "nat64 %s (%s)" % (prefix, v4))

    def nat_echo(self, c, prefix, v4, n=2):
        return self.echo6(c, embed(prefix, v4), n, [(prefix, c, [v4])],
                          "nat64 %s (%s)" % (prefix, v4))

    def background(self, n=4):
        """Ordinary IPv4 and native IPv6 traffic, never NAT64."""
        R = self.R
        convs = []
        for i in range(n):
            k = R.randrange(5)
            if k == 0:
                convs.append(self.web(R.choice(CLIENTS4), R.choice(SERVERS4), what="v4"))
            elif k == 1:
                convs.append(self.quic(R.choice(CLIENTS4), R.choice(SERVERS4), what="v4"))
            elif k == 2:
                convs.append(self.web(R.choice(CLIENTS6), R.choice(SERVERS6), what="native6"))
            elif k == 3:
                convs.append(self.quic(R.choice(CLIENTS6), R.choice(SERVERS6), what="native6"))
            else:
                convs.append(self.neighbour())
        return convs

    def neighbour(self):
        """NS/NA between a client and the router (link-local / global)."""
        c = self.R.choice(CLIENTS6)
        tgt = ROUTER_LL
        sol = "ff02::1:ff00:1"
        ns = struct.pack("!I", 0) + IP6(tgt).packed + struct.pack("!BB", 1, 1) + host_mac(c)
        na = struct.pack("!I", 0x60000000) + IP6(tgt).packed + struct.pack("!BB", 2, 1) + \
            ROUTER_MAC
        f1 = self.frame(c, True, 0x86DD, ipv6(c, sol, 58, icmp6_bytes(c, sol, 135, 0, ns), 255),
                        (c, sol), None, "neighbour solicitation")
        f2 = self.frame(c, False, 0x86DD, ipv6(ROUTER_LL, c, 58,
                                               icmp6_bytes(ROUTER_LL, c, 136, 0, na), 255),
                        (ROUTER_LL, c), None, "neighbour advertisement")
        return [f1, f2]

    # -- DNS ----------------------------------------------------------------

    def dns_exchange(self, c, resolver, qname, qtype, answers=(), rcode=0, nodata=False,
                     tcp=False, more=()):
        """A query and its response over UDP (or TCP when tcp=True, with
        ``more`` further (qname, qtype, answers, rcode, nodata) on the same
        connection).  answers: (owner, type, value, tag) with tag
        ('synth', v4, L) for a synthesized AAAA, ('native',) otherwise."""
        items = [(qname, qtype, answers, rcode, nodata)] + list(more)
        exchanges = []
        for qn, qt, ans, rc, nd in items:
            ident = self.R.randrange(0, 0x10000)
            q = dns_message(ident, 0x0100, qn, qt)
            auth = [soa_for(zone_of(qn))] if (rc or nd or not ans) else []
            r = dns_message(ident, 0x8180, qn, qt, [(o, t, v) for o, t, v, _ in ans], auth, rc)
            self.queried.append(qn)
            self.dns.append({"qname": qn, "qtype": qt, "answers": list(ans),
                             "resolver": resolver, "malformed": False})
            exchanges.append((q, r))
        if tcp:
            return self.tcp(c, resolver, 53, [(struct.pack("!H", len(q)) + q,
                                               [struct.pack("!H", len(r)) + r])
                                              for q, r in exchanges], what="dns")
        out = []
        for q, r in exchanges:
            out += self.udp(c, resolver, 53, [(q, [r])], what="dns")
        return out

    def dns_raw(self, c, resolver, qname, qtype, raw_response, why, tcp_prefix=None):
        """A valid query and a deliberately malformed response (raw bytes).
        The response counts for nothing but ``dns.malformed_messages``."""
        ident = struct.unpack("!H", raw_response[:2])[0] if len(raw_response) >= 2 else 0
        q = dns_message(ident, 0x0100, qname, qtype)
        self.queried.append(qname)
        self.malformed += 1
        if tcp_prefix is not None:
            conv = self.tcp(c, resolver, 53, [(struct.pack("!H", len(q)) + q,
                                               [struct.pack("!H", tcp_prefix) + raw_response])],
                            what="dns malformed (%s)" % why)
        else:
            conv = self.udp(c, resolver, 53, [(q, [raw_response])],
                            what="dns malformed (%s)" % why)
        return conv

    def rfc7050(self, c, resolver, prefix, tcp=False):
        prefix = check_nsp(prefix)
        ans = [("ipv4only.arpa", "AAAA", embed(prefix, v4), ("rfc7050", v4, prefix.prefixlen))
               for v4 in RFC7050_V4]
        return self.dns_exchange(c, resolver, "ipv4only.arpa", "AAAA", ans, tcp=tcp)

    # -- RA with PREF64 -----------------------------------------------------

    def ra(self, plc, prefix96, lifetime=1800):
        """Router Advertisement with SLLA, MTU, PIO and one PREF64 option."""
        pio = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + \
            IP6("2a02:8108:1a00:5e00::").packed
        pref64 = struct.pack("!BBH", 38, 2, ((lifetime // 8) << 3) | plc) + \
            IP6(prefix96).packed[:12]
        body = struct.pack("!BBHII", 64, 0, 1800, 0, 0) + \
            struct.pack("!BB", 1, 1) + ROUTER_MAC + \
            struct.pack("!BBHI", 5, 1, 0, 1500) + pio + pref64
        dst = "ff02::1"
        ip = ipv6(ROUTER_LL, dst, 58, icmp6_bytes(ROUTER_LL, dst, 134, 0, body), 255)
        f = {"data": ether(ROUTER_MAC, bytes.fromhex("333300000001"), 0x86DD, ip),
             "v6": (ROUTER_LL, dst), "nat": [],
             "desc": "router advertisement, PREF64 PLC %d prefix %s" % (plc, prefix96)}
        if plc in PLC_LEN:
            net = check_nsp(mask(prefix96, PLC_LEN[plc]))
            assert str(net.network_address) == str(IP6(prefix96))
            self.evidence[str(net)].add("pref64")
        return [f]

    # -- the truth ----------------------------------------------------------

    def truth(self):
        # DNS: synthesized AAAA records, by construction, checked against the rule
        a_by_owner, a_by_q = defaultdict(set), defaultdict(set)
        for r in self.dns:
            for owner, t, v, _ in r["answers"]:
                if t == "A":
                    a_by_owner[owner].add(v)
                    a_by_q[r["qname"]].add(v)
        synthesized = 0
        resolvers = set()
        for r in self.dns:
            for owner, t, v, tag in r["answers"]:
                if t != "AAAA":
                    continue
                xs = a_by_owner[owner] | a_by_q[r["qname"]]
                hits = sorted((length, x) for length in LENGTHS for x in xs
                              if extract(v, length) == x)
                if tag[0] == "synth" and tag[1] in xs:
                    assert hits == [(tag[2], tag[1])], (r["qname"], v, hits)
                    synthesized += 1
                    resolvers.add(r["resolver"])
                    self.evidence[mask(v, tag[2])].add("dns64")
                else:
                    assert hits == [], (r["qname"], v, hits)   # no accidental synthesis
                if tag[0] == "rfc7050":
                    assert r["qname"] == "ipv4only.arpa" and r["qtype"] == "AAAA"
                    where = [length for length in LENGTHS if extract(v, length) in RFC7050_V4]
                    assert where == [tag[2]], (v, where)
                    self.evidence[mask(v, tag[2])].add("rfc7050")
        for p in self.options:
            self.evidence[p].add("configured")

        # NAT64 traffic, from the frame tags
        per = defaultdict(lambda: {"packets": 0, "bytes": 0, "clients": set(), "v4": set()})
        for f in self.frames:
            for prefix, client, v4s in f["nat"]:
                d = per[prefix]
                d["packets"] += 1
                d["bytes"] += len(f["data"])
                if client is not None:
                    d["clients"].add(client)
                d["v4"].update(v4s)
        prefixes = set(self.evidence) | set(per)
        for p in per:
            assert p in self.evidence or NET6(p) in (WKP, LOCAL), \
                "traffic to an undiscovered network-specific prefix %s" % p

        # consistency: tags agree with the addresses written in every frame
        for f in self.frames:
            tagged = {p: (cl, v4s) for p, cl, v4s in f["nat"]}
            for p in prefixes:
                inside = f["v6"] is not None and any(in_net(a, p) for a in f["v6"])
                assert inside == (p in tagged), (f["desc"], p)
                if inside:
                    src, dst = f["v6"]
                    s_in, d_in = in_net(src, p), in_net(dst, p)
                    client = None if (s_in and d_in) else (dst if s_in else src)
                    assert client == tagged[p][0], (f["desc"], p)
                    plen = NET6(p).prefixlen
                    emb = sorted({extract(a, plen) for a in (src, dst) if in_net(a, p)})
                    assert emb == sorted(tagged[p][1]), (f["desc"], p, emb)

        def kind(p):
            return {WKP: "well-known", LOCAL: "local-use"}.get(NET6(p), "network-specific")

        suspects = []
        for p in sorted(prefixes):
            d = per.get(p, {"packets": 0, "bytes": 0, "clients": set(), "v4": set()})
            ev = set(self.evidence.get(p, set()))
            if d["packets"]:
                ev.add("traffic")
            suspects.append({"prefix": p, "kind": kind(p), "evidence": sorted(ev),
                             "packets": d["packets"], "bytes": d["bytes"],
                             "ipv6_clients": len(d["clients"]),
                             "ipv4_destinations": len(d["v4"])})
        assert_order([s["prefix"] for s in suspects], NET6)

        # services: every queried name
        names = sorted(set(self.queried) | {r["qname"] for r in self.dns})
        services = []
        for n in names:
            a, native, synth = set(), set(), set()
            for r in self.dns:
                if r["qname"] != n:
                    continue
                for owner, t, v, tag in r["answers"]:
                    if t == "A":
                        a.add(v)
                    elif t == "AAAA":
                        if any(in_net(v, p) for p in prefixes):
                            synth.add(v)
                        else:
                            native.add(v)
            verdict = ("ipv6-ready" if native else "dns64-only" if synth
                       else "ipv4-only" if a else "no-answer")
            for lst, cls in ((a, IP4), (native, IP6), (synth, IP6)):
                assert_order(sorted(lst), cls)
            services.append({"name": n, "a": sorted(a), "aaaa_native": sorted(native),
                             "aaaa_synthesized": sorted(synth), "verdict": verdict})
        res = sorted(resolvers)
        assert_order(res, lambda x: (fam_of(x), ipaddress.ip_address(x)))

        return {
            "generator": "samples/nat64/generate.py",
            "capture": self.name + ".pcap",
            "description": self.title,
            "options": {"nat64_prefix": list(self.options)},
            "totals": {"packets": len(self.frames),
                       "bytes": sum(len(f["data"]) for f in self.frames)},
            "nat64": {"suspects": suspects,
                      "dns64": {"synthesized_answers": synthesized, "resolvers": res}},
            "services": services,
            "dns": {"malformed_messages": self.malformed},
            "frames": [{"time": "%d.%06d" % divmod(f["ts"], 1_000_000),
                        "bytes": len(f["data"]),
                        "nat64": [p for p, _, _ in f["nat"]],
                        "desc": f["desc"]} for f in self.frames],
        }

    def pcap(self):
        out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for f in self.frames:
            sec, usec = divmod(f["ts"], 1_000_000)
            out += struct.pack("<IIII", sec, usec, len(f["data"]), len(f["data"])) + f["data"]
        return bytes(out)


def assert_order(items, key):
    """String order must equal numeric order, so either reading sorts alike."""
    assert list(items) == sorted(items, key=key), items


# ---------------------------------------------------------------------------
# Scenarios

def chosen(cap, k, pool=V4):
    return cap.R.sample(pool, k)


def scn_rfc7050(length, index):
    prefix = str(check_nsp(NSP_RFC7050[length]))
    cap = Capture("nsp-rfc7050-%d" % length, index,
                  "network-specific prefix %s discovered by an RFC 7050 exchange; some "
                  "NAT64 traffic precedes the exchange" % prefix)
    R = cap.R
    c = CLIENTS6
    v4s = chosen(cap, 6)
    # before the discovery
    cap.run(cap.nat_web(c[0], prefix, v4s[0]), cap.nat_web(c[3], prefix, v4s[1], quic=True),
            *cap.background(3))
    # the RFC 7050 exchange, plus ordinary DNS (a dual-stack name, an IPv4-only name)
    cap.run(cap.rfc7050(c[1], RESOLVER6, prefix),
            cap.dns_exchange(c[2], RESOLVER6, "www.example.com", "A",
                             [("www.example.com", "A", "93.184.215.14", ("native",))]),
            cap.dns_exchange(c[2], RESOLVER6, "www.example.com", "AAAA",
                             [("www.example.com", "AAAA", "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
                               ("native",))]),
            cap.dns_exchange(R.choice(CLIENTS4), RESOLVER4, "legacy.example.org", "A",
                             [("legacy.example.org", "A", "198.51.100.20", ("native",))]),
            *cap.background(2))
    # after the discovery: several clients, TCP, UDP, ICMPv6
    cap.run(cap.nat_web(c[1], prefix, v4s[2]), cap.nat_web(c[2], prefix, v4s[3]),
            cap.nat_ntp(c[1], prefix, "162.159.200.1"), cap.nat_echo(c[3], prefix, v4s[4]),
            cap.nat_web(c[1], prefix, v4s[0], quic=True),
            cap.web(c[2], "2606:2800:21f:cb07:6820:80da:af6b:8b2c", what="native6"),
            *cap.background(3))
    # another client repeats the discovery; more traffic
    cap.run(cap.rfc7050(c[2], RESOLVER6, prefix), cap.nat_web(c[2], prefix, v4s[5]),
            *cap.background(2))
    return cap


def dns64_names(cap, prefix, resolver6):
    """DNS conversations of the DNS64 scenarios (and the list of services
    reached through NAT64 afterwards as (client, v4))."""
    p = prefix
    s = lambda v4: ("AAAA", embed(p, v4), ("synth", v4, NET6(p).prefixlen))  # noqa: E731
    c = CLIENTS6
    first, later = [], []
    # www.example.net -> CNAME edge.example.net, A and AAAA, over UDP
    first.append(cap.dns_exchange(c[0], resolver6, "www.example.net", "A", [
        ("www.example.net", "CNAME", "edge.example.net", ("native",)),
        ("edge.example.net", "A", "93.184.216.34", ("native",))]))
    first.append(cap.dns_exchange(c[0], resolver6, "www.example.net", "AAAA", [
        ("www.example.net", "CNAME", "edge.example.net", ("native",)),
        ("edge.example.net",) + s("93.184.216.34")]))
    # api.example.com: two A, two synthesized AAAA, DNS over TCP (one connection)
    first.append(cap.dns_exchange(c[1], resolver6, "api.example.com", "A", [
        ("api.example.com", "A", "151.101.1.69", ("native",)),
        ("api.example.com", "A", "151.101.65.69", ("native",))], tcp=True, more=[
        ("api.example.com", "AAAA", [("api.example.com",) + s("151.101.1.69"),
                                     ("api.example.com",) + s("151.101.65.69")], 0, False)]))
    # cdn.example.com: the A and the AAAA come through different CNAME targets
    first.append(cap.dns_exchange(c[2], resolver6, "cdn.example.com", "AAAA", [
        ("cdn.example.com", "CNAME", "a2.cdn-edge.example.com", ("native",)),
        ("a2.cdn-edge.example.com",) + s("185.199.108.153")]))
    first.append(cap.dns_exchange(c[2], resolver6, "cdn.example.com", "A", [
        ("cdn.example.com", "CNAME", "a1.cdn-edge.example.com", ("native",)),
        ("a1.cdn-edge.example.com", "A", "185.199.108.153", ("native",))]))
    # mail.example.org: asked over IPv4 to the IPv4 DNS64 resolver
    first.append(cap.dns_exchange(CLIENTS4[0], RESOLVER4, "mail.example.org", "A", [
        ("mail.example.org", "A", "140.82.121.4", ("native",))]))
    first.append(cap.dns_exchange(CLIENTS4[0], RESOLVER4, "mail.example.org", "AAAA", [
        ("mail.example.org",) + s("140.82.121.4")]))
    # real dual-stack names: not synthesis (one of them over TCP, CNAME chain)
    first.append(cap.dns_exchange(c[3], resolver6, "www.example.com", "A", [
        ("www.example.com", "A", "93.184.215.14", ("native",))]))
    first.append(cap.dns_exchange(c[3], resolver6, "www.example.com", "AAAA", [
        ("www.example.com", "AAAA", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", ("native",))]))
    first.append(cap.dns_exchange(c[1], resolver6, "shop.example.net", "AAAA", [
        ("shop.example.net", "CNAME", "shop.cdn.example.net", ("native",)),
        ("shop.cdn.example.net", "AAAA", "2a04:4e42:600::223", ("native",)),
        ("shop.cdn.example.net", "AAAA", "2a04:4e42:800::223", ("native",))], tcp=True, more=[
        ("shop.example.net", "A", [
            ("shop.example.net", "CNAME", "shop.cdn.example.net", ("native",)),
            ("shop.cdn.example.net", "A", "151.101.2.223", ("native",)),
            ("shop.cdn.example.net", "A", "151.101.66.223", ("native",))], 0, False)]))
    # IPv4-only: A only; A + empty AAAA from the plain resolver
    first.append(cap.dns_exchange(CLIENTS4[1], RESOLVER4, "legacy.example.org", "A", [
        ("legacy.example.org", "A", "198.51.100.20", ("native",))]))
    first.append(cap.dns_exchange(c[0], RESOLVER6_PLAIN, "intranet.example.org", "A", [
        ("intranet.example.org", "A", "198.51.100.80", ("native",))]))
    first.append(cap.dns_exchange(c[0], RESOLVER6_PLAIN, "intranet.example.org", "AAAA", [],
                                  nodata=True))
    # no answer: NXDOMAIN, and empty NOERROR for both types
    first.append(cap.dns_exchange(c[1], resolver6, "nx.example.com", "A", [], rcode=3))
    first.append(cap.dns_exchange(c[1], resolver6, "nx.example.com", "AAAA", [], rcode=3))
    first.append(cap.dns_exchange(c[2], resolver6, "txt-only.example.net", "A", [], nodata=True))
    first.append(cap.dns_exchange(c[2], resolver6, "txt-only.example.net", "AAAA", [],
                                  nodata=True))
    # ntp.example.org: the AAAA answer comes first, the A answer much later
    first.append(cap.dns_exchange(c[3], resolver6, "ntp.example.org", "AAAA", [
        ("ntp.example.org",) + s("162.159.200.1")]))
    later.append(cap.dns_exchange(c[3], resolver6, "ntp.example.org", "A", [
        ("ntp.example.org", "A", "162.159.200.1", ("native",))]))
    return first, later


def scn_dns64(length, index):
    prefix = str(check_nsp(NSP_DNS64[length]))
    cap = Capture("nsp-dns64-%d" % length, index,
                  "network-specific prefix %s discovered by DNS64 correlation (A + "
                  "synthesized AAAA, CNAME chains, DNS over TCP and over IPv4), with real "
                  "dual-stack, IPv4-only and unanswered names" % prefix)
    c = CLIENTS6
    # an already running flow before any DNS
    cap.run(cap.nat_web(c[1], prefix, "151.101.1.69"), *cap.background(2))
    first, later = dns64_names(cap, prefix, RESOLVER6)
    cap.run(*first, *cap.background(2))
    cap.run(cap.nat_web(c[0], prefix, "93.184.216.34"),
            cap.nat_web(c[1], prefix, "151.101.65.69", quic=True),
            cap.nat_web(c[2], prefix, "185.199.108.153"),
            cap.nat_ntp(c[3], prefix, "162.159.200.1"),
            cap.web(c[3], "2606:2800:21f:cb07:6820:80da:af6b:8b2c", what="native6"),
            cap.web(c[1], "2a04:4e42:600::223", what="native6"),
            cap.web(CLIENTS4[1], "198.51.100.20", what="v4"),
            cap.web(CLIENTS4[0], "140.82.121.4", what="v4 (dual-stack host, IPv4 path)"),
            *cap.background(2))
    cap.run(*later, cap.nat_echo(c[3], prefix, "162.159.200.1"), *cap.background(2))
    return cap


def scn_wkp(index):
    p = str(WKP)
    cap = Capture("wkp", index,
                  "well-known prefix 64:ff9b::/96: traffic without discovery (with a "
                  "traceroute answered by ICMPv6 errors from translated IPv4 routers and "
                  "a hairpin frame), then DNS64 answers in 64:ff9b::/96")
    c = CLIENTS6
    # part 1: traffic only
    aaaa_only = embed(p, "45.33.32.156")
    cap.run(cap.nat_web(c[0], p, "93.184.216.34"), cap.nat_web(c[1], p, "140.82.121.4"),
            cap.dns_exchange(c[2], RESOLVER6, "legacy-app.example.org", "AAAA", [
                ("legacy-app.example.org", "AAAA", aaaa_only, ("synth", "45.33.32.156", 96))]),
            *cap.background(3))
    cap.run(cap.nat_web(c[2], p, "45.33.32.156"), *cap.background(1))
    # traceroute to 64:ff9b::<93.184.216.34> with UDP probes
    dst = embed(p, "93.184.216.34")
    hops = [("2a02:8108:1a00:5e00::1", None), ("2a02:8100:0:2::1", None),
            (embed(p, "62.115.12.34"), "62.115.12.34"), (embed(p, "152.195.64.129"),
                                                         "152.195.64.129")]
    tr = []
    for hl, (hop, hop4) in enumerate(hops, start=1):
        sp = 33434 + hl
        probe = udp_bytes(c[0], dst, 54321, sp, bytes(24))
        tr.append(cap.frame(c[0], True, 0x86DD, ipv6(c[0], dst, 17, probe, hlim=hl),
                            (c[0], dst), [(p, c[0], ["93.184.216.34"])],
                            "traceroute probe hlim %d to %s" % (hl, dst)))
        quote = ipv6(c[0], dst, 17, probe, hlim=1)
        err = icmp6_bytes(hop, c[0], 3, 0, bytes(4) + quote)
        nat = [(p, c[0], [hop4])] if hop4 else []
        tr.append(cap.frame(c[0], False, 0x86DD, ipv6(hop, c[0], 58, err, hlim=60),
                            (hop, c[0]), nat, "time exceeded from %s" % hop))
    cap.run(tr, *cap.background(1))
    # a hairpin frame: both sides in the prefix, no client
    a1, a2 = embed(p, "151.101.1.69"), embed(p, "104.244.42.1")
    hp = icmp6_bytes(a1, a2, 128, 0, struct.pack("!HH", 7, 1) + bytes(32))
    cap.run([cap.frame(c[0], False, 0x86DD, ipv6(a1, a2, 58, hp, hlim=63), (a1, a2),
                       [(p, None, ["104.244.42.1", "151.101.1.69"])],
                       "hairpin echo request %s -> %s" % (a1, a2))])
    # part 2: DNS64 answers in the well-known prefix, then traffic
    s = lambda v4: ("AAAA", embed(p, v4), ("synth", v4, 96))  # noqa: E731
    cap.run(cap.dns_exchange(c[1], RESOLVER6, "status.example.net", "A", [
                ("status.example.net", "A", "185.199.108.153", ("native",))]),
            cap.dns_exchange(c[1], RESOLVER6, "status.example.net", "AAAA", [
                ("status.example.net",) + s("185.199.108.153")]),
            cap.dns_exchange(c[3], RESOLVER6, "www.example.net", "AAAA", [
                ("www.example.net", "CNAME", "edge.example.net", ("native",)),
                ("edge.example.net",) + s("93.184.216.34")], tcp=True, more=[
                ("www.example.net", "A", [
                    ("www.example.net", "CNAME", "edge.example.net", ("native",)),
                    ("edge.example.net", "A", "93.184.216.34", ("native",))], 0, False)]),
            cap.dns_exchange(c[3], RESOLVER6, "www.example.com", "AAAA", [
                ("www.example.com", "AAAA", "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
                 ("native",))]),
            cap.dns_exchange(c[3], RESOLVER6, "www.example.com", "A", [
                ("www.example.com", "A", "93.184.215.14", ("native",))]),
            *cap.background(2))
    cap.run(cap.nat_web(c[1], p, "185.199.108.153"), cap.nat_web(c[3], p, "93.184.216.34",
                                                                 quic=True),
            cap.web(c[3], "2606:2800:21f:cb07:6820:80da:af6b:8b2c", what="native6"),
            *cap.background(2))
    return cap


def scn_local(index):
    p = str(LOCAL)
    cap = Capture("local-use", index,
                  "local-use prefix 64:ff9b:1::/48 (RFC 8215) with IPv4 embedded at the /48 "
                  "position; two of the frames reach it inside 6in4 (innermost IPv6 counts)")
    c = CLIENTS6
    cap.run(cap.nat_web(c[0], p, "93.184.216.34"), cap.nat_web(c[1], p, "151.101.1.69"),
            *cap.background(3))
    cap.run(cap.nat_web(c[2], p, "140.82.121.4", quic=True), cap.nat_ntp(c[3], p, "162.159.200.1"),
            cap.nat_echo(c[0], p, "104.244.42.1", n=3), *cap.background(3))
    # 6in4 (IPv4 protocol 41) from a tunnel-broker client to the local-use prefix
    inner_c = "2001:470:1f0a:12::2"
    v4 = "185.199.108.153"
    a = embed(p, v4)
    outer_c, outer_s = CLIENTS4[2], "216.66.80.26"
    frames = []
    for outbound in (True, False):
        src, dst = (inner_c, a) if outbound else (a, inner_c)
        inner = ipv6(src, dst, 58, icmp6_bytes(src, dst, 128 if outbound else 129, 0,
                                               struct.pack("!HH", 99, 1) + bytes(48)))
        o_src, o_dst = (outer_c, outer_s) if outbound else (outer_s, outer_c)
        et, ip = cap.ip(o_src, o_dst, 41, inner)
        frames.append(cap.frame(outer_c, outbound, et, ip, (src, dst), [(p, inner_c, [v4])],
                                "6in4 echo %s -> %s" % (src, dst)))
    cap.run(frames, *cap.background(2))
    return cap


def scn_pref64(index):
    cap = Capture("pref64", index,
                  "Router Advertisements with a PREF64 option for every PLC code 0-5 "
                  "(one prefix each), traffic to some of them (one before its RA), and "
                  "an RA with the invalid PLC 7 whose prefix must be ignored")
    c = CLIENTS6
    pre = PREF64_PREFIX
    # traffic to the PLC 1 (/64) prefix before its RA is seen
    cap.run(cap.nat_web(c[0], pre[1], "93.184.216.34"), *cap.background(2))
    cap.run(cap.ra(0, pre[0].split("/")[0]), cap.ra(5, pre[5].split("/")[0]),
            cap.ra(3, pre[3].split("/")[0]), *cap.background(1))
    cap.run(cap.ra(2, pre[2].split("/")[0]), cap.ra(4, pre[4].split("/")[0]),
            cap.ra(7, PREF64_INVALID), *cap.background(1))
    cap.run(cap.nat_web(c[1], pre[0], "151.101.1.69"), cap.nat_web(c[2], pre[3], "140.82.121.4"),
            cap.nat_ntp(c[3], pre[5], "162.159.200.1"), cap.nat_web(c[0], pre[5], "45.33.32.156"),
            # traffic into the prefix of the invalid RA: ordinary native IPv6
            cap.web(c[1], embed(PREF64_INVALID + "/96", "104.244.42.1"),
                    what="native6 (prefix of the PLC 7 RA)"),
            *cap.background(2))
    cap.run(cap.ra(1, pre[1].split("/")[0]), cap.nat_web(c[2], pre[1], "185.199.108.153"),
            *cap.background(2))
    return cap


def scn_malformed(index):
    p = str(check_nsp(MALFORMED_NSP))
    cap = Capture("malformed-dns", index,
                  "malformed DNS responses (compression loops, a pointer out of range, "
                  "lying answer counts, truncated records, a label longer than the "
                  "packet, a short header, a short TCP message) interleaved with a valid "
                  "DNS64 exchange for %s" % p)
    R = cap.R
    c = CLIENTS6

    def hdr(ident, an, ns=0, qd=1):
        return struct.pack("!HHHHHH", ident, 0x8180, qd, an, ns, 0)

    def qsec(name, qtype):
        w = DnsWriter()
        w.buf += bytes(12)
        w.name(name)
        return bytes(w.buf[12:]) + struct.pack("!HH", TYPES[qtype], 1)

    def ident():
        return R.randrange(0, 0x10000)

    bad = []
    # Whatever a lenient parser could still take from a malformed response (the
    # records before the damage, or a record whose owner name is broken) only
    # repeats what a valid response for the same question gives, so the truth
    # is the same whether such records are salvaged or the message is dropped.
    # 1. answer name is a pointer to itself (the A record repeats a valid answer)
    q = qsec("loop.example.org", "A")
    off = 12 + len(q)
    bad.append(cap.dns_raw(c[0], RESOLVER6, "loop.example.org", "A",
                           hdr(ident(), 1) + q + struct.pack("!H", 0xC000 | off) +
                           struct.pack("!HHIH", 1, 1, 300, 4) + IP4("93.184.216.34").packed,
                           "self-pointer loop in answer name"))
    # 2. question name loops between two pointers
    #    question: "loop2" label, then pointer to X; at X: pointer back to the label
    msg = bytearray(hdr(ident(), 0))
    lab = len(msg)
    msg += b"\x05loop2"
    ptr_at = len(msg)
    msg += struct.pack("!H", 0xC000 | (ptr_at + 6)) + struct.pack("!HH", 28, 1)
    msg += struct.pack("!H", 0xC000 | lab)
    bad.append(cap.dns_raw(c[1], RESOLVER6, "loop2.example.org", "AAAA", bytes(msg),
                           "two-pointer loop in question name"))
    # 3. pointer beyond the end of the message (the A record repeats a valid answer)
    q = qsec("far.example.org", "A")
    bad.append(cap.dns_raw(c[2], RESOLVER6, "far.example.org", "A",
                           hdr(ident(), 1) + q + struct.pack("!H", 0xC000 | 0x3F00) +
                           struct.pack("!HHIH", 1, 1, 300, 4) + IP4("104.244.42.1").packed,
                           "compression pointer out of range"))
    # 4. ancount 3, one A record present (it repeats the valid answer below)
    q = qsec("liar.example.org", "A")
    bad.append(cap.dns_raw(c[3], RESOLVER6, "liar.example.org", "A",
                           hdr(ident(), 3) + q + struct.pack("!H", 0xC00C) +
                           struct.pack("!HHIH", 1, 1, 300, 4) + IP4("198.51.100.7").packed,
                           "ancount 3, one record present"))
    # 5. ancount 2, nscount 1, no records at all
    q = qsec("liar2.example.org", "AAAA")
    bad.append(cap.dns_raw(c[0], RESOLVER6, "liar2.example.org", "AAAA",
                           hdr(ident(), 2, ns=1) + q, "ancount 2, nscount 1, no records"))
    # 6. CNAME, then an AAAA record whose rdata is cut (rdlength 16, 7 octets)
    w = DnsWriter()
    w.buf += hdr(ident(), 2)
    w.name("trunc.example.org")
    w.buf += struct.pack("!HH", 28, 1)
    w.rr("trunc.example.org", "CNAME", "t.example.org")
    w.name("t.example.org")
    w.buf += struct.pack("!HHIH", 28, 1, 300, 16) + IP6(embed(p, "93.184.216.34")).packed[:7]
    bad.append(cap.dns_raw(c[1], RESOLVER6, "trunc.example.org", "AAAA", bytes(w.buf),
                           "truncated AAAA rdata"))
    # 7. a record header cut after the type
    q = qsec("cut.example.org", "A")
    bad.append(cap.dns_raw(c[2], RESOLVER6, "cut.example.org", "A",
                           hdr(ident(), 1) + q + struct.pack("!HH", 0xC00C, 1),
                           "record cut after its type"))
    # 8. question label of length 63 in a message that ends 9 octets later
    bad.append(cap.dns_raw(c[3], RESOLVER6, "longlabel.example.org", "A",
                           hdr(ident(), 1) + b"\x3f" + b"longlabel",
                           "label longer than the packet"))
    # 9. a header of 7 octets
    bad.append(cap.dns_raw(c[0], RESOLVER6, "short.example.org", "A",
                           struct.pack("!HHHB", ident(), 0x8180, 1, 0),
                           "message shorter than the header"))
    # 10. DNS over TCP: the length prefix says 300, 35 octets follow, the A rdata cut
    q = qsec("tcpcut.example.org", "A")
    raw = hdr(ident(), 1) + q + struct.pack("!HHHIH", 0xC00C, 1, 1, 300, 4) + b"\x5d"
    bad.append(cap.dns_raw(c[1], RESOLVER6, "tcpcut.example.org", "A", raw,
                           "TCP length prefix larger than the message", tcp_prefix=300))
    assert len(raw) < 300

    s = lambda v4: ("AAAA", embed(p, v4), ("synth", v4, 64))  # noqa: E731
    good = [
        cap.dns_exchange(c[0], RESOLVER6, "www.example.net", "A", [
            ("www.example.net", "CNAME", "edge.example.net", ("native",)),
            ("edge.example.net", "A", "93.184.216.34", ("native",))]),
        cap.dns_exchange(c[0], RESOLVER6, "www.example.net", "AAAA", [
            ("www.example.net", "CNAME", "edge.example.net", ("native",)),
            ("edge.example.net",) + s("93.184.216.34")]),
        cap.dns_exchange(c[2], RESOLVER6, "api.example.com", "AAAA", [
            ("api.example.com",) + s("151.101.1.69")], tcp=True, more=[
            ("api.example.com", "A", [("api.example.com", "A", "151.101.1.69", ("native",))],
             0, False)]),
        cap.dns_exchange(c[0], RESOLVER6, "loop.example.org", "A", [
            ("loop.example.org", "A", "93.184.216.34", ("native",))]),
        cap.dns_exchange(c[2], RESOLVER6, "far.example.org", "A", [
            ("far.example.org", "A", "104.244.42.1", ("native",))]),
        cap.dns_exchange(c[3], RESOLVER6, "liar.example.org", "A", [
            ("liar.example.org", "A", "198.51.100.7", ("native",))]),
        cap.dns_exchange(c[1], RESOLVER6, "trunc.example.org", "A", [
            ("trunc.example.org", "CNAME", "t.example.org", ("native",)),
            ("t.example.org", "A", "203.0.113.80", ("native",))]),
        cap.dns_exchange(c[2], RESOLVER6, "www.example.com", "AAAA", [
            ("www.example.com", "AAAA", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", ("native",))]),
    ]
    cap.run(*bad[:5], *good[:4], *cap.background(3))
    cap.run(*bad[5:], *good[4:], *cap.background(2))
    cap.run(cap.nat_web(c[0], p, "93.184.216.34"), cap.nat_web(c[2], p, "151.101.1.69"),
            *cap.background(2))
    return cap


def scn_not_nat64(index):
    cap = Capture("not-nat64", index,
                  "a dual-stack network without NAT64: A and native AAAA answers with "
                  "unrelated addresses, IPv4-only and unanswered names, an RFC 7050 query "
                  "answered with no AAAA, ordinary IPv4 and native IPv6 traffic")
    c = CLIENTS6
    r = RESOLVER6_PLAIN
    pairs = [("www.example.com", "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
             ("mail.example.net", "185.70.42.38", "2a02:8108:40:10::25"),
             ("git.example.org", "140.82.121.3", "2a0a:a440::2")]
    convs = []
    for i, (n, a4, a6) in enumerate(pairs):
        cl = c[i]
        convs.append(cap.dns_exchange(cl, r, n, "A", [(n, "A", a4, ("native",))]))
        convs.append(cap.dns_exchange(cl, r, n, "AAAA", [(n, "AAAA", a6, ("native",))],
                                      tcp=(i == 2)))
    convs.append(cap.dns_exchange(c[3], r, "static.example.net", "AAAA", [
        ("static.example.net", "CNAME", "static.cdn.example.net", ("native",)),
        ("static.cdn.example.net", "AAAA", "2a04:4e42:600::223", ("native",))]))
    convs.append(cap.dns_exchange(c[3], r, "static.example.net", "A", [
        ("static.example.net", "CNAME", "static.cdn.example.net", ("native",)),
        ("static.cdn.example.net", "A", "151.101.2.223", ("native",))]))
    convs.append(cap.dns_exchange(c[0], r, "ipv4only.arpa", "AAAA", [], nodata=True))
    convs.append(cap.dns_exchange(CLIENTS4[0], RESOLVER4, "legacy.example.org", "A", [
        ("legacy.example.org", "A", "198.51.100.20", ("native",))]))
    convs.append(cap.dns_exchange(c[1], r, "nx.example.com", "AAAA", [], rcode=3))
    cap.run(*convs, *cap.background(3))
    cap.run(cap.web(c[0], pairs[0][2], what="native6"),
            cap.web(c[1], pairs[1][2], what="native6", port=993),
            cap.web(c[2], pairs[2][2], what="native6", port=22),
            cap.web(CLIENTS4[0], "198.51.100.20", what="v4"),
            cap.echo6(c[3], "2a04:4e42:600::223", 2, what="native6"),
            *cap.background(4))
    return cap


def scn_configured(index):
    cap = Capture("configured", index,
                  "prefixes given with --nat64-prefix: 2a03:b0c0:64::/48 with traffic, "
                  "2a03:b0c0:ff64::/96 without")
    cap.options = list(CONFIGURED)
    for p in CONFIGURED:
        check_nsp(p)
    c = CLIENTS6
    p = CONFIGURED[0]
    cap.run(cap.nat_web(c[0], p, "93.184.216.34"), cap.nat_web(c[1], p, "151.101.1.69", quic=True),
            *cap.background(3))
    cap.run(cap.nat_web(c[2], p, "140.82.121.4"), cap.nat_echo(c[3], p, "104.244.42.1"),
            cap.nat_ntp(c[0], p, "162.159.200.1"), *cap.background(3))
    return cap


def scenarios():
    out = []
    i = 0
    for length in LENGTHS:
        out.append(scn_rfc7050(length, i))
        i += 1
    for length in LENGTHS:
        out.append(scn_dns64(length, i))
        i += 1
    for fn in (scn_wkp, scn_local, scn_pref64, scn_malformed, scn_not_nat64, scn_configured):
        out.append(fn(i))
        i += 1
    return out


# ---------------------------------------------------------------------------
# Independent read-back (dpkt): per-prefix packet and byte counts

def readback(path, truth):
    import dpkt
    prefixes = [s["prefix"] for s in truth["nat64"]["suspects"]]
    count = {p: [0, 0] for p in prefixes}
    n = 0
    with open(path, "rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            n += 1
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if isinstance(ip, dpkt.ip.IP) and ip.p == 41:
                ip = dpkt.ip6.IP6(bytes(ip.data)) if not isinstance(ip.data, dpkt.ip6.IP6) \
                    else ip.data
            if not isinstance(ip, dpkt.ip6.IP6):
                continue
            src, dst = IP6(ip.src), IP6(ip.dst)
            for p in prefixes:
                if src in NET6(p) or dst in NET6(p):
                    count[p][0] += 1
                    count[p][1] += len(buf)
    assert n == truth["totals"]["packets"], path
    for s in truth["nat64"]["suspects"]:
        assert count[s["prefix"]] == [s["packets"], s["bytes"]], (path, s, count[s["prefix"]])


def truth_text(truth):
    """JSON with an indent of 1, except one line per frame."""
    head = json.dumps({k: v for k, v in truth.items() if k != "frames"}, indent=1)
    frames = ",\n".join("  " + json.dumps(f) for f in truth["frames"])
    return head[:-2] + ',\n "frames": [\n' + frames + "\n ]\n}\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate the NAT64/DNS64 scenario captures.")
    ap.add_argument("--out", default=HERE, help="output folder (default: %(default)s)")
    ap.add_argument("--no-check", action="store_true", help="skip the dpkt read-back")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for cap in scenarios():
        truth = cap.truth()
        pcap_path = os.path.join(args.out, cap.name + ".pcap")
        data = cap.pcap()
        with open(pcap_path, "wb") as fh:
            fh.write(data)
        with open(os.path.join(args.out, cap.name + ".truth.json"), "w",
                  encoding="utf-8", newline="\n") as fh:
            fh.write(truth_text(truth))
        if not args.no_check:
            readback(pcap_path, truth)
        sus = "; ".join("%s %s %s p=%d b=%d c=%d v4=%d" % (
            s["prefix"], s["kind"], ",".join(s["evidence"]), s["packets"], s["bytes"],
            s["ipv6_clients"], s["ipv4_destinations"]) for s in truth["nat64"]["suspects"])
        d = truth["nat64"]["dns64"]
        print("%-22s %4d frames %7d B  %s  | synth=%d resolvers=%s  sha256=%s" % (
            cap.name + ".pcap", truth["totals"]["packets"], len(data), sus or "no suspects",
            d["synthesized_answers"], ",".join(d["resolvers"]) or "-",
            hashlib.sha256(data).hexdigest()[:16]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
