#!/usr/bin/env python3
"""Generate the bundled sample captures of ipv6flow, deterministically.

    python samples/generate.py

writes, next to this script:

    mixed.pcap          Ethernet (DLT 1) pcap, about 3000 frames
    mixed.pcapng        the same records as pcapng (same timestamps, caplen, wirelen)
    mixed.pcap.gz       mixed.pcap gzip-compressed (mtime 0, no file name)
    mixed.truth.json    the expected report figures, written by construction

Every frame is built from explicit parameters (scapy for the ordinary
upper layers and their checksums, struct for the IP headers, the extension
headers and the tunnel headers), and the truth of each frame is recorded
from those same parameters as the frame is built.  Nothing in the truth
comes from dissecting the written files; the self-check at the end only
compares a few figures with an independent reading of mixed.pcap.

The rules used to classify the frames are listed in samples/README.md.
Randomness comes from one random.Random(SEED); timestamps start at
1700000000.000000 and advance 1-5 ms per frame.  Nothing depends on the wall
clock, on hash seeds or on set ordering, so two runs give identical bytes.
"""

import gzip
import hashlib
import io
import ipaddress
import json
import os
import random
import struct
from collections import Counter

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6MLDMultAddrRec,
    ICMPv6MLQuery, ICMPv6MLReport2, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA,
    ICMPv6ND_RS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr, ICMPv6PacketTooBig, ICMPv6ParamProblem,
    ICMPv6TimeExceeded, IPv6)
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20231114
START_US = 1_700_000_000 * 1_000_000
SIXRD_PREFIX = "2a01:e30::/28"
SNAPLEN = 65535

R = random.Random(SEED)

# ---------------------------------------------------------------------------
# Report vocabulary (REPORT.md sections 2-5)

TUNNEL_KINDS = ["none", "6in4", "6to4", "isatap", "6rd", "teredo", "ayiya", "gre",
                "gtpu", "l2tp", "vxlan", "geneve", "4in6", "6in6", "ipip"]
EXT_TYPES = ["hop_by_hop", "routing", "fragment", "destination_options", "ah", "esp",
             "mobility", "hip", "shim6", "experimental"]
EXT_NAME = {0: "hop_by_hop", 43: "routing", 44: "fragment", 60: "destination_options",
            51: "ah", 50: "esp", 135: "mobility", 139: "hip", 140: "shim6",
            253: "experimental", 254: "experimental"}
ANOMALIES = ["hbh_not_first", "repeated_header", "rh0", "atomic_fragment",
             "chain_not_in_first_fragment", "truncated_chain", "unknown_next_header"]
ADDR_CLASSES = ["unspecified", "loopback", "ipv4_mapped", "nat64_wkp", "nat64_local",
                "teredo", "documentation", "6to4", "link_local", "unique_local",
                "multicast", "global_unicast", "other"]
ADDR_RULES = [(name, ipaddress.IPv6Network(net)) for name, net in [
    ("unspecified", "::/128"), ("loopback", "::1/128"), ("ipv4_mapped", "::ffff:0:0/96"),
    ("nat64_wkp", "64:ff9b::/96"), ("nat64_local", "64:ff9b:1::/48"),
    ("teredo", "2001::/32"), ("documentation", "2001:db8::/32"),
    ("documentation", "3fff::/20"), ("6to4", "2002::/16"), ("link_local", "fe80::/10"),
    ("unique_local", "fc00::/7"), ("multicast", "ff00::/8"),
    ("global_unicast", "2000::/3")]]
T4 = {6: "tcp", 17: "udp", 1: "icmp"}
T6 = {6: "tcp", 17: "udp", 58: "icmpv6", 59: "no_next_header"}
# next-header values that end an IPv6 chain without being unknown
KNOWN6_UPPER = {6, 17, 58, 59, 4, 41, 47}
TUNNEL_UDP_PORTS = {3544, 5072, 2152, 1701, 4789, 6081}
SIXRD_NET = ipaddress.IPv6Network(SIXRD_PREFIX)


def addr_class(a):
    ip = ipaddress.IPv6Address(a)
    for name, net in ADDR_RULES:
        if ip in net:
            return name
    return "other"


def has_isatap_iid(a):
    iid_hi = (int(ipaddress.IPv6Address(a)) >> 32) & 0xFFFFFFFF
    return iid_hi in (0x00005EFE, 0x02005EFE)


def sixin4_kind(src, dst):
    """Sub-kind of IPv4 protocol 41, in the documented order."""
    s, d = ipaddress.IPv6Address(src), ipaddress.IPv6Address(dst)
    n2002 = ipaddress.IPv6Network("2002::/16")
    if s in n2002 or d in n2002:
        return "6to4"
    if has_isatap_iid(src) or has_isatap_iid(dst):
        return "isatap"
    if s in SIXRD_NET or d in SIXRD_NET:
        return "6rd"
    return "6in4"


# ---------------------------------------------------------------------------
# Byte helpers

def inet4(a):
    return ipaddress.IPv4Address(a).packed


def inet6(a):
    return ipaddress.IPv6Address(a).packed


def mac(s):
    return bytes.fromhex(s.replace(":", ""))


def csum16(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def pseudo6(src, dst, nh, length):
    return inet6(src) + inet6(dst) + struct.pack("!IxxxB", length, nh)


def rbytes(n):
    return bytes(R.getrandbits(8) for _ in range(n))


def l4(fam, src, dst, layer):
    """Upper-layer bytes with their checksum computed by scapy."""
    if fam == "ipv4":
        return bytes(IP(src=src, dst=dst) / layer)[20:]
    return bytes(IPv6(src=src, dst=dst) / layer)[40:]


def udp_seg(fam, src, dst, sp, dp, data=b""):
    return l4(fam, src, dst, UDP(sport=sp, dport=dp) / Raw(data))


def tcp_seg(fam, src, dst, sp, dp, seq, ack, flags, data=b"", win=64240, opts=None):
    layer = TCP(sport=sp, dport=dp, seq=seq, ack=ack, flags=flags, window=win,
                options=opts or [])
    if data:
        layer = layer / Raw(data)
    return l4(fam, src, dst, layer)


_ident = {}


def next_ident(src):
    if src not in _ident:
        _ident[src] = R.randrange(1, 0xFFFF)
    _ident[src] = (_ident[src] + R.choice((1, 1, 1, 2, 3))) & 0xFFFF
    return _ident[src]


def ipv4_header(src, dst, proto, plen, ttl=64, ident=None, df=True, mf=False, frag_off=0,
                tos=0, opts=b"", version=4, ihl=None, tlen=None):
    hl = 20 + len(opts)
    ihl_v = hl // 4 if ihl is None else ihl
    tl = hl + plen if tlen is None else tlen
    if ident is None:
        ident = 0 if (df and not mf and not frag_off) and R.random() < 0.3 else next_ident(src)
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | frag_off
    h = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl_v, tos, tl, ident, flags, ttl,
                    proto, 0, inet4(src), inet4(dst)) + opts
    return h[:10] + struct.pack("!H", csum16(h)) + h[12:]


def ipv6_header(src, dst, nh, plen, hlim=64, tc=0, fl=0, version=6):
    return struct.pack("!IHBB", (version << 28) | (tc << 20) | fl, plen, nh, hlim) + \
        inet6(src) + inet6(dst)


# ---------------------------------------------------------------------------
# What is known about a built IP packet (by construction)

class P:
    """An IP packet as built, with the truth that its construction implies."""

    def __init__(self, fam, raw, payload, tunnel, transport, addrs, ext, rtypes, anom,
                 chain, src, dst):
        self.fam = fam              # family of this (outer) header
        self.raw = raw
        self.payload = payload      # family of the innermost IP header
        self.tunnel = tunnel        # outermost encapsulation kind at/below this header
        self.transport = transport  # (family, name) of the innermost header's upper layer
        self.addrs = addrs          # (class, class) of the innermost IPv6 header
        self.ext = ext              # set of by_type names found anywhere
        self.rtypes = rtypes        # set of routing types found anywhere
        self.anom = anom            # set of anomaly keys
        self.chain = chain          # chain length of the outermost IPv6 header, or None
        self.src, self.dst = src, dst


def ip4(src, dst, proto, body, inner=None, kind=None, **kw):
    raw = ipv4_header(src, dst, proto, len(body), **kw) + body
    if inner is None:
        return P("ipv4", raw, "ipv4", kind, ("ipv4", T4.get(proto, "other")), None, set(),
                 set(), set(), None, src, dst)
    if kind in ("6in4", "6to4", "isatap", "6rd"):
        assert proto == 41 and inner.fam == "ipv6"
        assert sixin4_kind(inner.src, inner.dst) == kind, (kind, inner.src, inner.dst)
    return P("ipv4", raw, inner.payload, kind, inner.transport, inner.addrs, set(inner.ext),
             set(inner.rtypes), set(inner.anom), inner.chain, src, dst)


class Ext:
    """One IPv6 extension header; build(nxt) gives its bytes."""

    def __init__(self, code, build, rtype=None, frag=None):
        self.code, self.build, self.rtype, self.frag = code, build, rtype, frag
        self.name = EXT_NAME[code]


def _opts_hdr(nxt, opts):
    total = 2 + len(opts)
    pad = (-total) % 8
    if pad == 1:
        opts += b"\x00"
    elif pad:
        opts += bytes([1, pad - 2]) + b"\0" * (pad - 2)
    return bytes([nxt, (total + pad) // 8 - 1]) + opts


OPT_ROUTER_ALERT_MLD = b"\x05\x02\x00\x00"
OPT_TUNNEL_ENCAP_LIMIT = b"\x04\x01\x04"


def HBH(opts=OPT_ROUTER_ALERT_MLD):
    return Ext(0, lambda nxt: _opts_hdr(nxt, opts))


def DST(opts=b"\x01\x04\x00\x00\x00\x00"):
    return Ext(60, lambda nxt: _opts_hdr(nxt, opts))


def _rh(rtype, segleft, data):
    assert (4 + len(data)) % 8 == 0
    return Ext(43, lambda nxt: bytes([nxt, (4 + len(data)) // 8 - 1, rtype, segleft]) + data,
               rtype=rtype)


def RH0(addrs, segleft=None):
    return _rh(0, len(addrs) if segleft is None else segleft,
               b"\0" * 4 + b"".join(inet6(a) for a in addrs))


def RH2(hoa):
    return _rh(2, 1, b"\0" * 4 + inet6(hoa))


def RH3(addrs, segleft=None):
    # RFC 6554 with CmprI = CmprE = 8: each address carried as its last 8 octets
    data = bytes([0x88, 0x00, 0, 0]) + b"".join(inet6(a)[8:] for a in addrs)
    data += b"\0" * ((-(4 + len(data))) % 8)
    return _rh(3, len(addrs) if segleft is None else segleft, data)


def SRH(segments, segleft):
    # segments in path order; the SRH lists them in reverse (RFC 8754)
    segs = list(reversed(segments))
    data = bytes([len(segs) - 1, 0]) + b"\0\0" + b"".join(inet6(a) for a in segs)
    return _rh(4, segleft, data)


def FRAG(off, m, ident):
    return Ext(44, lambda nxt: struct.pack("!BBHI", nxt, 0, (off << 3) | m, ident),
               frag=(off, m))


def AH(spi, seq):
    icv = rbytes(12)
    return Ext(51, lambda nxt: struct.pack("!BBHII", nxt, 4, 0, spi, seq) + icv)


def ESP():
    spi, seq = R.getrandbits(32) | 0x100, R.randrange(1, 5000)
    body = rbytes(R.choice((48, 64, 80, 96, 120)))
    return Ext(50, lambda nxt: struct.pack("!II", spi, seq) + body)


def MOB(src, dst, mhtype, body):
    def build(nxt):
        total = 6 + len(body)
        pad = (-total) % 8
        b = body + (b"\x00" if pad == 1 else (bytes([1, pad - 2]) + b"\0" * (pad - 2) if pad else b""))
        h = bytes([nxt, (6 + len(b)) // 8 - 1, mhtype, 0]) + b"\0\0" + b
        c = csum16(pseudo6(src, dst, 135, len(h)) + h)
        return h[:4] + struct.pack("!H", c) + h[6:]
    return Ext(135, build)


def HIP(src, dst, shit, rhit):
    def build(nxt):
        h = bytes([nxt, 4, 0x01, 0x21]) + b"\0\0" + b"\0\0" + inet6(shit) + inet6(rhit)
        c = csum16(pseudo6(src, dst, 139, len(h)) + h)
        return h[:4] + struct.pack("!H", c) + h[6:]
    return Ext(139, build)


def SHIM6_PAYLOAD(ctx):
    return Ext(140, lambda nxt: bytes([nxt, 0]) + ((1 << 47) | ctx).to_bytes(6, "big"))


def SHIM6_I1(ctx, nonce):
    def build(nxt):
        h = bytes([nxt, 1, 0x01, 0x00]) + b"\0\0" + ctx.to_bytes(6, "big") + \
            struct.pack("!I", nonce)
        return h[:4] + struct.pack("!H", csum16(h)) + h[6:]
    return Ext(140, build)


def EXP(code):
    body = rbytes(6)
    return Ext(code, lambda nxt: bytes([nxt, 0]) + body)


def chain_anomalies(exts, nh):
    a = set()
    codes = [e.code for e in exts]
    if 0 in codes[1:]:
        a.add("hbh_not_first")
    cnt = Counter(EXT_NAME[c] if c not in (253, 254) else str(c) for c in codes)
    for name, n in cnt.items():
        if n > (2 if name == "destination_options" else 1):
            a.add("repeated_header")
    for e in exts:
        if e.rtype == 0:
            a.add("rh0")
        if e.frag == (0, 0):
            a.add("atomic_fragment")
    ends_in_esp = bool(exts) and exts[-1].code == 50
    nonfirst = bool(exts) and exts[-1].frag is not None and exts[-1].frag[0] > 0
    if not ends_in_esp and not nonfirst and nh not in KNOWN6_UPPER:
        a.add("unknown_next_header")
    return a


def ip6(src, dst, nh, body, exts=(), inner=None, kind=None, hlim=64, tc=0, fl=0,
        plen=None, extra_anom=()):
    exts = list(exts)
    codes = [e.code for e in exts]
    chain = b""
    for i, e in enumerate(exts):
        chain += e.build(codes[i + 1] if i + 1 < len(exts) else nh)
    first = codes[0] if exts else nh
    payload = chain + body
    raw = ipv6_header(src, dst, first, len(payload) if plen is None else plen, hlim, tc, fl)
    raw += payload
    ext = {e.name for e in exts}
    rtypes = {e.rtype for e in exts if e.rtype is not None}
    anom = chain_anomalies(exts, nh) | set(extra_anom)
    if inner is not None:
        return P("ipv6", raw, inner.payload, kind, inner.transport, inner.addrs,
                 ext | inner.ext, rtypes | inner.rtypes, anom | inner.anom, len(exts), src, dst)
    if exts and exts[-1].code == 50:
        tr = "other"
    else:
        tr = T6.get(nh, "other")
    return P("ipv6", raw, "ipv6", kind, ("ipv6", tr), (addr_class(src), addr_class(dst)),
             ext, rtypes, anom, len(exts), src, dst)


# ---------------------------------------------------------------------------
# Link layer and frames

FRAMES = []          # filled by add(); one group per list entry
ETYPE = {"ipv4": 0x0800, "ipv6": 0x86DD}


def eth_hdr(dst, src, etype):
    return mac(dst) + mac(src) + struct.pack("!H", etype)


def link_wrap(fam_or_etype, payload, link, macs, d):
    """Wrap a network-layer payload into an Ethernet frame with the given link stack."""
    src, dst = (macs[0], macs[1]) if d == 0 else (macs[1], macs[0])
    etype = ETYPE.get(fam_or_etype, fam_or_etype)
    kind = link[0]
    if kind == "eth":
        return eth_hdr(dst, src, etype) + payload
    if kind == "vlan":
        return eth_hdr(dst, src, 0x8100) + struct.pack("!HH", link[1], etype) + payload
    if kind == "qinq":
        return eth_hdr(dst, src, 0x88A8) + struct.pack("!HHHH", link[1], 0x8100, link[2],
                                                        etype) + payload
    if kind == "dot1q2":
        return eth_hdr(dst, src, 0x8100) + struct.pack("!HHHH", link[1], 0x8100, link[2],
                                                        etype) + payload
    if kind == "mpls":
        labels = link[1]
        stack = b""
        for i, lab in enumerate(labels):
            s = 1 if i == len(labels) - 1 else 0
            stack += struct.pack("!I", (lab << 12) | (s << 8) | 63)
        return eth_hdr(dst, src, 0x8847) + stack + payload
    if kind == "pppoe":
        proto = {0x0800: 0x0021, 0x86DD: 0x0057}[etype]
        return eth_hdr(dst, src, 0x8864) + struct.pack("!BBHHH", 0x11, 0, link[1],
                                                        len(payload) + 2, proto) + payload
    raise ValueError(link)


def truth_of(p):
    return {
        "carrier": p.fam, "payload": p.payload, "tunnel": p.tunnel or "none",
        "ext": sorted(p.ext), "routing_types": sorted(p.rtypes),
        "chain_length": p.chain, "anomalies": sorted(p.anom),
        "transport": p.transport[1], "addresses": list(p.addrs) if p.addrs else None,
        "decode": [],
    }


NONIP_TRUTH = {"carrier": "non_ip", "payload": "non_ip", "tunnel": "none", "ext": [],
               "routing_types": [], "chain_length": None, "anomalies": [],
               "transport": None, "addresses": None, "decode": []}


def frame_ip(p, link, macs, d, desc, pad=False, caplen=None, over=None):
    data = link_wrap(p.fam, p.raw, link, macs, d)
    if pad and len(data) < 60:
        data += b"\0" * (60 - len(data))
    t = truth_of(p)
    if over:
        t.update(over)
    t["desc"] = desc
    return (data, len(data) if caplen is None else caplen, t)


def frame_raw(data, desc, truth=None, caplen=None, pad=True):
    if pad and len(data) < 60:
        data += b"\0" * (60 - len(data))
    t = dict(NONIP_TRUTH if truth is None else truth)
    t["desc"] = desc
    return (data, len(data) if caplen is None else caplen, t)


def add(group):
    if group:
        FRAMES.append(list(group))


# ---------------------------------------------------------------------------
# Address pools

def rand_mac(local=False):
    b = [R.getrandbits(8) for _ in range(6)]
    b[0] = (b[0] & 0xFC) | (0x02 if local else 0)
    return ":".join("%02x" % x for x in b)


GW_MAC = "00:1b:21:3a:4f:10"
HOST_MACS = [rand_mac() for _ in range(24)]


def macs_pick():
    return (R.choice(HOST_MACS), GW_MAC)


def rand_iid():
    while True:
        iid = R.getrandbits(64)
        if (iid >> 32) not in (0x00005EFE, 0x02005EFE) and iid > 0xFFFF:
            return iid


def in_prefix(prefix, iid=None):
    net = ipaddress.IPv6Network(prefix)
    return str(ipaddress.IPv6Address(int(net.network_address) | (rand_iid() if iid is None else iid)))


V4_LAN = ["192.168.1.%d" % i for i in range(10, 60)]
V4_LAN2 = ["10.20.30.%d" % i for i in range(2, 40)]
V4_SERVERS = ["142.250.185.78", "151.101.1.140", "104.16.132.229", "93.184.216.34",
              "13.107.42.14", "185.199.108.153", "17.253.144.10", "31.13.92.36",
              "52.84.150.12", "20.190.160.3", "172.217.16.142", "23.45.67.89",
              "199.232.58.133", "140.82.121.4"]
V4_DNS = ["192.168.1.1", "8.8.8.8", "1.1.1.1", "9.9.9.9"]
V6_LAN_PREFIX = "2a02:8108:1c0:4e00::/64"
V6_LAN = [in_prefix(V6_LAN_PREFIX) for _ in range(30)]
V6_LAN2 = [in_prefix("2600:1700:5a40:1d0::/64") for _ in range(10)]
V6_SERVERS = ["2a00:1450:4001:80b::200e", "2606:4700::6810:84e5",
              "2a03:2880:f12f:83:face:b00c:0:25de", "2c0f:fb50:4003::8a",
              "2404:6800:4003:c00::64", "2a04:4e42::223",
              "2600:9000:2156:b400:1f:c1a4:5a40:93a1", "2a01:111:f100:3000::a83e:1a7b",
              "2620:1ec:c11::200", "2a02:26f0:fd::5c7a:a3e", "2c0f:f248:0:80::1",
              "2406:da14:ac:1a00:7b1c:33b2:c1e8:8d0e"]
V6_DNS = ["2001:4860:4860::8888", "2606:4700:4700::1111", "2620:fe::fe"]
ULA = ["fd12:3456:789a:1::%x" % i for i in (0x10, 0x11, 0x20, 0x21, 0x30)]
NAMES = ["www.example.com", "www.google.com", "cdn.jsdelivr.net", "api.github.com",
         "www.wikipedia.org", "ocsp.digicert.com", "update.microsoft.com",
         "connectivity-check.ubuntu.com", "time.cloudflare.com", "mail.example.org"]

for a in V6_LAN + V6_LAN2 + V6_SERVERS + V6_DNS:
    assert addr_class(a) == "global_unicast", a
    assert sixin4_kind(a, a) == "6in4", a


def eph():
    return R.randrange(49152, 65535)


# ---------------------------------------------------------------------------
# Flow builders: each returns a list of (P, direction) pairs (0 = client to server)

def mk_ip(fam, src, dst, proto, body, hop, **kw):
    if fam == "ipv4":
        return ip4(src, dst, proto, body, ttl=hop, **kw)
    return ip6(src, dst, proto, body, hlim=hop, **kw)


def http_req(host):
    path = R.choice(["/", "/index.html", "/api/v1/status", "/favicon.ico", "/static/app.js"])
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: curl/8.4.0\r\nAccept: */*\r\n\r\n"
            % (path, host)).encode()


def tls_record(n):
    if n < 6:
        return rbytes(n)
    return b"\x17\x03\x03" + struct.pack("!H", n - 5) + rbytes(n - 5)


def resp_size():
    x = R.random()
    if x < 0.7:
        return R.randrange(60, 400)
    if x < 0.95:
        return R.randrange(400, 1200)
    return R.randrange(1200, 2800)


def tcp_flow(fam, c, s, dport, *, resp=None, req=None, ttl_s=None, sport=None, rst=False,
             short=False):
    out = []
    sport = sport or eph()
    mss = 1460 if fam == "ipv4" else 1440
    seg_max = mss - 12
    ttl_c = 64
    ttl_s = ttl_s or R.choice((50, 52, 54, 56, 57, 58, 117, 118, 119, 120, 244))
    cseq, sseq = R.getrandbits(32), R.getrandbits(32)
    ts_c, ts_s = R.getrandbits(31), R.getrandbits(31)
    win_c, win_s = 502, R.choice((256, 501, 1024, 2048))

    def send(d, flags, data=b"", opts=None, win=None):
        nonlocal cseq, sseq, ts_c, ts_s
        src, dst = (c, s) if d == 0 else (s, c)
        sp, dp = (sport, dport) if d == 0 else (dport, sport)
        seq, ack = (cseq, sseq) if d == 0 else (sseq, cseq)
        if "A" not in flags:
            ack = 0
        if opts is None:
            ts_c += R.randrange(1, 30)
            ts_s += R.randrange(1, 30)
            opts = [("NOP", None), ("NOP", None),
                    ("Timestamp", (ts_c, ts_s) if d == 0 else (ts_s, ts_c))]
        seg = tcp_seg(fam, src, dst, sp, dp, seq, ack, flags, data,
                      win if win is not None else (win_c if d == 0 else win_s), opts)
        out.append((mk_ip(fam, src, dst, 6, seg, ttl_c if d == 0 else ttl_s), d))
        inc = len(data) + (1 if ("S" in flags or "F" in flags) else 0)
        if d == 0:
            cseq = (cseq + inc) & 0xFFFFFFFF
        else:
            sseq = (sseq + inc) & 0xFFFFFFFF

    send(0, "S", opts=[("MSS", mss), ("SAckOK", b""), ("Timestamp", (ts_c, 0)),
                       ("NOP", None), ("WScale", 7)], win=64240)
    send(1, "SA", opts=[("MSS", R.choice((1380, 1400, mss))), ("SAckOK", b""),
                        ("Timestamp", (ts_s, ts_c)), ("NOP", None), ("WScale", 9)],
         win=65160)
    send(0, "A")
    if req is None:
        req = http_req("example.com") if dport == 80 else tls_record(R.randrange(60, 300))
    send(0, "PA", req)
    if short:
        return out
    total = resp_size() if resp is None else resp
    n = 0
    if R.random() < 0.4:
        send(1, "A")
    while total > 0:
        k = min(total, seg_max)
        body = tls_record(k) if dport != 80 else (b"HTTP/1.1 200 OK\r\n" + rbytes(max(0, k - 17)))[:k]
        total -= k
        send(1, "PA" if total == 0 else "A", body)
        n += 1
        if n % 2 == 0 or total == 0:
            send(0, "A")
    if rst:
        send(0, "RA")
        return out
    send(0, "FA")
    send(1, "FA")
    send(0, "A")
    return out


def dns_id():
    return R.randrange(0x7000, 0xFFFF)


def dns_pair(fam, c, s, name=None, qtype=None, sport=None):
    name = name or R.choice(NAMES)
    qtype = qtype or R.choice(("A", "AAAA", "AAAA", "HTTPS"))
    sport = sport or eph()
    did = dns_id()
    q = DNS(id=did, rd=1, qd=DNSQR(qname=name, qtype=qtype))
    if qtype == "A":
        an = DNSRR(rrname=name, type="A", ttl=R.randrange(30, 3600),
                   rdata=R.choice(V4_SERVERS))
    elif qtype == "AAAA":
        an = DNSRR(rrname=name, type="AAAA", ttl=R.randrange(30, 3600),
                   rdata=R.choice(V6_SERVERS))
    else:
        an = None
    r = DNS(id=did, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype=qtype), an=an)
    hop = 64 if s.startswith("192.168.") or s.startswith("fe80") else R.choice((55, 57, 59, 118, 121))
    return [(mk_ip(fam, c, s, 17, udp_seg(fam, c, s, sport, 53, bytes(q)), 64), 0),
            (mk_ip(fam, s, c, 17, udp_seg(fam, s, c, 53, sport, bytes(r)), hop), 1)]


def quic_flow(fam, c, s, n):
    sport = eph()
    out = []
    hop = R.choice((56, 58, 118))
    for i in range(n):
        d = 0 if (i % 3 == 0) else 1
        first = 0x40 | R.getrandbits(5)  # short header
        if d == 1 and R.random() < 0.5:
            size = R.randrange(100, 600)
        else:
            size = R.randrange(30, 140)
        data = bytes([first]) + rbytes(size - 1)
        src, dst = (c, s) if d == 0 else (s, c)
        sp, dp = (sport, 443) if d == 0 else (443, sport)
        out.append((mk_ip(fam, src, dst, 17, udp_seg(fam, src, dst, sp, dp, data),
                          64 if d == 0 else hop), d))
    return out


def ntp_pair(fam, c, s):
    sport = R.choice((123, eph()))
    ts = 0xE8F3_9A00 + R.randrange(0, 1000)  # NTP era seconds around 2023-11
    q = struct.pack("!BBbb", 0x23, 0, 0, 0) + b"\0" * 8 + b"\0" * 4 + b"\0" * 24 + \
        struct.pack("!II", ts, R.getrandbits(32))
    r = struct.pack("!BBbbII", 0x24, 2, 0, -25, 0x100, 0x200) + inet4("17.253.34.125") + \
        struct.pack("!IIIIIIII", ts - 60, 0, ts, 0, ts, 1, ts, 2)
    hop = R.choice((55, 57, 119))
    return [(mk_ip(fam, c, s, 17, udp_seg(fam, c, s, sport, 123, q), 64), 0),
            (mk_ip(fam, s, c, 17, udp_seg(fam, s, c, 123, sport, r), hop), 1)]


def echo_pair(fam, c, s, n=1, size=56, hop_s=None):
    out = []
    ident = R.randrange(1, 0xFFFF)
    hop_s = hop_s or R.choice((55, 57, 118, 120, 245))
    payload = rbytes(size)
    for i in range(n):
        seq = i + 1
        if fam == "ipv4":
            out.append((ip4(c, s, 1, l4(fam, c, s, ICMP(type=8, id=ident, seq=seq) / Raw(payload)),
                            ttl=64), 0))
            out.append((ip4(s, c, 1, l4(fam, s, c, ICMP(type=0, id=ident, seq=seq) / Raw(payload)),
                            ttl=hop_s), 1))
        else:
            out.append((ip6(c, s, 58, l4(fam, c, s, ICMPv6EchoRequest(id=ident, seq=seq, data=payload)),
                            hlim=64), 0))
            out.append((ip6(s, c, 58, l4(fam, s, c, ICMPv6EchoReply(id=ident, seq=seq, data=payload)),
                            hlim=hop_s), 1))
    return out


def udp_misc(fam, c, s, dport, sizes, hop=64):
    sport = eph()
    out = []
    for i, n in enumerate(sizes):
        d = i % 2
        src, dst = (c, s) if d == 0 else (s, c)
        sp, dp = (sport, dport) if d == 0 else (dport, sport)
        data = bytes([R.choice((0x80, 0x90, 0xA1, 0x16, 0x30))]) + rbytes(n - 1)
        out.append((mk_ip(fam, src, dst, 17, udp_seg(fam, src, dst, sp, dp, data), hop), d))
    return out


# ---------------------------------------------------------------------------
# Emitting flows as frames

LINK_WEIGHTS = [(("eth",), 80), (("vlan", 100), 5), (("vlan", 20), 3),
                (("qinq", 3001, 100), 3), (("dot1q2", 200, 10), 1),
                (("mpls", [16021, 24005]), 3), (("mpls", [299808]), 1),
                (("pppoe", 0x1A2B), 4)]


def pick_link():
    x = R.randrange(sum(w for _, w in LINK_WEIGHTS))
    for link, w in LINK_WEIGHTS:
        if x < w:
            return link
        x -= w
    raise AssertionError


def emit(flow, desc, link=None, macs=None, encap=None, pad_small=True):
    link = link or pick_link()
    macs = macs or macs_pick()
    group = []
    for p, d in flow:
        if encap is not None:
            p = encap(p, d)
        pad = pad_small and R.random() < 0.5
        group.append(frame_ip(p, link, macs, d, desc, pad=pad))
    add(group)


# ---------------------------------------------------------------------------
# Tunnel header builders

def gre_hdr(proto, payload, key=None, csum=False, seq=None):
    flags = (0x8000 if csum else 0) | (0x2000 if key is not None else 0) | \
        (0x1000 if seq is not None else 0)
    h = struct.pack("!HH", flags, proto)
    if csum:
        h += b"\0\0\0\0"
    if key is not None:
        h += struct.pack("!I", key)
    if seq is not None:
        h += struct.pack("!I", seq)
    b = h + payload
    if csum:
        b = b[:4] + struct.pack("!H", csum16(b)) + b[6:]
    return b


def gtpu_hdr(teid, payload, seq=None, qfi=None, msgtype=0xFF):
    flags = 0x30
    opt = b""
    if seq is not None or qfi is not None:
        flags |= (0x02 if seq is not None else 0) | (0x04 if qfi is not None else 0)
        opt = struct.pack("!HBB", seq or 0, 0, 0x85 if qfi is not None else 0)
        if qfi is not None:
            opt += bytes([1, 0x10, qfi, 0])
    return struct.pack("!BBHI", flags, msgtype, len(opt) + len(payload), teid) + opt + payload


def l2tp_data(tid, sid, ppp_proto, payload, with_len=False, ns_nr=None):
    flags = 0x0002 | (0x4000 if with_len else 0) | (0x0800 if ns_nr else 0)
    body = struct.pack("!HH", tid, sid)
    if ns_nr:
        body += struct.pack("!HH", *ns_nr)
    ppp = b"\xff\x03" + struct.pack("!H", ppp_proto) + payload
    if with_len:
        return struct.pack("!HH", flags, 4 + len(body) + len(ppp)) + body + ppp
    return struct.pack("!H", flags) + body + ppp


def vxlan_hdr(vni, payload):
    return b"\x08\x00\x00\x00" + struct.pack("!I", vni << 8) + payload


def geneve_hdr(vni, proto, payload, opts=b""):
    assert len(opts) % 4 == 0
    return struct.pack("!BBH", len(opts) // 4, 0, proto) + struct.pack("!I", vni << 8) + \
        opts + payload


def ayiya_hdr(identity, epoch):
    # idlen 4 (16 octets) / idtype 1, siglen 5 (20 octets) / SHA-1, auth 1 / op 1 forward,
    # next header 41
    return bytes([0x41, 0x52, 0x11, 41]) + struct.pack("!I", epoch) + inet6(identity) + rbytes(20)


def inner_eth(p_raw, etype, smac, dmac):
    return eth_hdr(dmac, smac, etype) + p_raw


# ---------------------------------------------------------------------------
# Traffic

def gen_ipv4_native():
    # TCP sessions
    for _ in range(80):
        c, s = R.choice(V4_LAN + V4_LAN2), R.choice(V4_SERVERS)
        port = R.choice((443, 443, 443, 443, 80, 80, 22, 993, 8443))
        emit(tcp_flow("ipv4", c, s, port, rst=R.random() < 0.1), "ipv4 tcp")
    # short connections / scans
    for _ in range(10):
        c, s = R.choice(V4_LAN), R.choice(V4_SERVERS)
        emit(tcp_flow("ipv4", c, s, R.choice((443, 80)), short=True), "ipv4 tcp")
    for _ in range(105):
        c = R.choice(V4_LAN)
        emit(dns_pair("ipv4", c, R.choice(V4_DNS)), "ipv4 dns")
    for _ in range(11):
        emit(quic_flow("ipv4", R.choice(V4_LAN), R.choice(V4_SERVERS), R.randrange(6, 14)),
             "ipv4 udp quic")
    for _ in range(8):
        emit(ntp_pair("ipv4", R.choice(V4_LAN), R.choice(("162.159.200.1", "17.253.34.125"))),
             "ipv4 ntp")
    for _ in range(6):
        emit(udp_misc("ipv4", R.choice(V4_LAN), R.choice(V4_SERVERS),
                      R.choice((9987, 34197, 25565, 27015)), [R.randrange(40, 300) for _ in range(4)]),
             "ipv4 udp")
    for _ in range(20):
        emit(echo_pair("ipv4", R.choice(V4_LAN), R.choice(V4_SERVERS + V4_DNS),
                       n=R.choice((1, 2))), "ipv4 icmp echo")
    # ICMP errors (ordinary quotes)
    for _ in range(4):
        c, s = R.choice(V4_LAN), R.choice(V4_SERVERS)
        quote = ipv4_header(c, s, 17, 8 + 40, ttl=1) + udp_seg("ipv4", c, s, eph(), 33434, rbytes(40))[:8]
        p = ip4("192.168.1.1", c, 1, l4("ipv4", "192.168.1.1", c,
                                          ICMP(type=11, code=0) / Raw(quote)), ttl=64)
        emit([(p, 1)], "ipv4 icmp time exceeded")
    # IPv4 fragments of a UDP datagram (first, middle, last) x2
    for _ in range(2):
        c, s = R.choice(V4_LAN), R.choice(V4_SERVERS)
        dgram = udp_seg("ipv4", s, c, 5060, eph(), rbytes(R.randrange(2960, 3500)))
        ident = R.randrange(1, 0xFFFF)
        chunks = [dgram[i:i + 1480] for i in range(0, len(dgram), 1480)]
        flow = []
        for i, ch in enumerate(chunks):
            p = ip4(s, c, 17, ch, ttl=57, ident=ident, df=False, mf=i < len(chunks) - 1,
                    frag_off=i * 185)
            flow.append((p, 1))
        emit(flow, "ipv4 udp fragments")
    # other protocols
    for _ in range(10):
        c = R.choice(V4_LAN)
        grp = "239.255.255.%d" % R.choice((250, 251))
        igmp = struct.pack("!BBH4s", 0x16, 0, 0, inet4(grp))
        igmp = igmp[:2] + struct.pack("!H", csum16(igmp)) + igmp[4:]
        p = ip4(c, grp, 2, igmp, ttl=1, tos=0xC0, opts=b"\x94\x04\x00\x00")
        emit([(p, 0)], "ipv4 igmp", macs=(R.choice(HOST_MACS), "01:00:5e:7f:ff:fa"))
    for i in range(10):
        rid = "10.0.0.%d" % (1 + i % 2)
        hello = struct.pack("!BBH4s4sHH", 2, 1, 44, inet4(rid), inet4("0.0.0.0"), 0, 0) + \
            b"\0" * 8 + inet4("255.255.255.0") + struct.pack("!HBBI", 10, 0x02, 1, 40) + \
            inet4("10.0.0.1") + inet4("10.0.0.2") + inet4("10.0.0.%d" % (2 - i % 2))
        p = ip4(rid, "224.0.0.5", 89, hello, ttl=1, tos=0xC0)
        emit([(p, 0)], "ipv4 ospf", link=("eth",), macs=("00:00:0c:9f:f0:01", "01:00:5e:00:00:05"))
    for i in range(6):
        # PPTP control-less enhanced GRE (version 1, 0x880B, ack only): not a tunnel kind
        g = struct.pack("!BBHHHI", 0x20, 0x81, 0x880B, 0, 0x4A1C, 1000 + i)
        p = ip4("192.168.1.23", "203.0.113.45", 47, g, ttl=64)
        emit([(p, 0)], "ipv4 gre pptp ack (not a tunnel)", link=("eth",))
    flow = []
    for i in range(10):
        d = i % 2
        esp = struct.pack("!II", 0xC0FFEE01 + d, 500 + i // 2) + rbytes(R.choice((64, 96, 128)))
        a, b = "198.51.100.7", "203.0.113.9"
        flow.append((ip4(a if d == 0 else b, b if d == 0 else a, 50, esp, ttl=60), d))
    emit(flow, "ipv4 esp")
    for i in range(4):
        # SCTP HEARTBEAT with a 16-octet heartbeat info parameter, CRC32c checksum
        sctp = struct.pack("!HHII", 36412, 36412, 0x1234ABCD, 0) + \
            struct.pack("!BBHHH", 4, 0, 24, 1, 20) + rbytes(16)
        sctp = sctp[:8] + struct.pack("<I", crc32c(sctp)) + sctp[12:]
        p = ip4("10.40.0.1", "10.40.0.2", 132, sctp, ttl=64)
        emit([(p, 0)], "ipv4 sctp")
    for i in range(6):
        vrrp = bytes([0x21, 1, 100, 1, 0, 1]) + b"\0\0" + inet4("192.168.1.254") + b"\0" * 8
        vrrp = vrrp[:6] + struct.pack("!H", csum16(vrrp)) + vrrp[8:]
        p = ip4("192.168.1.2", "224.0.0.18", 112, vrrp, ttl=255)
        emit([(p, 0)], "ipv4 vrrp", link=("eth",), macs=("00:00:5e:00:01:01", "01:00:5e:00:00:12"))


def gen_ipv6_native():
    for _ in range(58):
        c, s = R.choice(V6_LAN + V6_LAN2), R.choice(V6_SERVERS)
        port = R.choice((443, 443, 443, 443, 80, 22, 993))
        emit(tcp_flow("ipv6", c, s, port, rst=R.random() < 0.1), "ipv6 tcp")
    for _ in range(6):
        emit(tcp_flow("ipv6", R.choice(V6_LAN), R.choice(V6_SERVERS), 443, short=True),
             "ipv6 tcp")
    for _ in range(3):
        a, b = R.sample(ULA, 2)
        emit(tcp_flow("ipv6", a, b, 445, resp=R.randrange(400, 1400)), "ipv6 tcp ula")
    for _ in range(95):
        c = R.choice(V6_LAN)
        emit(dns_pair("ipv6", c, R.choice(V6_DNS)), "ipv6 dns")
    for _ in range(8):
        emit(quic_flow("ipv6", R.choice(V6_LAN), R.choice(V6_SERVERS), R.randrange(6, 14)),
             "ipv6 udp quic")
    for _ in range(5):
        emit(ntp_pair("ipv6", R.choice(V6_LAN), "2606:4700:f1::123"), "ipv6 ntp")
    for _ in range(16):
        emit(echo_pair("ipv6", R.choice(V6_LAN), R.choice(V6_SERVERS + V6_DNS),
                       n=R.choice((1, 2))), "ipv6 icmpv6 echo")
    # mDNS from link-local to ff02::fb
    for _ in range(6):
        ll = "fe80::%x:%x:%x:%x" % tuple(R.getrandbits(16) for _ in range(4))
        q = DNS(id=0, qd=DNSQR(qname="_googlecast._tcp.local", qtype="PTR"))
        p = ip6(ll, "ff02::fb", 17, udp_seg("ipv6", ll, "ff02::fb", 5353, 5353, bytes(q)), hlim=255)
        emit([(p, 0)], "ipv6 mdns", link=("eth",), macs=(R.choice(HOST_MACS), "33:33:00:00:00:fb"))
    # DHCPv6 solicit/advertise
    for _ in range(3):
        ll = "fe80::%x:%x:%x:%x" % tuple(R.getrandbits(16) for _ in range(4))
        trid = R.getrandbits(24)
        duid = struct.pack("!HH", 3, 1) + mac(R.choice(HOST_MACS))
        sol = struct.pack("!I", (1 << 24) | trid) + struct.pack("!HH", 1, len(duid)) + duid + \
            struct.pack("!HHH", 8, 2, 0) + struct.pack("!HHIII", 25, 12, 1, 0, 0)
        adv = struct.pack("!I", (2 << 24) | trid) + struct.pack("!HH", 1, len(duid)) + duid + \
            struct.pack("!HH", 2, 10) + struct.pack("!HH", 3, 1) + mac(GW_MAC)
        p1 = ip6(ll, "ff02::1:2", 17, udp_seg("ipv6", ll, "ff02::1:2", 546, 547, sol), hlim=1)
        p2 = ip6("fe80::1", ll, 17, udp_seg("ipv6", "fe80::1", ll, 547, 546, adv), hlim=255)
        emit([(p1, 0), (p2, 1)], "ipv6 dhcpv6", link=("eth",))
    # Neighbour discovery
    for _ in range(18):
        a = R.choice(V6_LAN)
        tgt = R.choice(V6_LAN + ["fe80::1"])
        sn = "ff02::1:ff%02x:%04x" % (inet6(tgt)[13], struct.unpack("!H", inet6(tgt)[14:])[0])
        m = R.choice(HOST_MACS)
        ns = ICMPv6ND_NS(tgt=tgt) / ICMPv6NDOptSrcLLAddr(lladdr=m)
        na = ICMPv6ND_NA(tgt=tgt, R=tgt == "fe80::1", S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=GW_MAC)
        p1 = ip6(a, sn, 58, l4("ipv6", a, sn, ns), hlim=255)
        p2 = ip6(tgt, a, 58, l4("ipv6", tgt, a, na), hlim=255)
        emit([(p1, 0), (p2, 1)], "ipv6 nd ns/na", link=("eth",), macs=(m, GW_MAC))
    # DAD: unspecified source
    for _ in range(4):
        tgt = in_prefix(V6_LAN_PREFIX)
        sn = "ff02::1:ff%02x:%04x" % (inet6(tgt)[13], struct.unpack("!H", inet6(tgt)[14:])[0])
        p = ip6("::", sn, 58, l4("ipv6", "::", sn, ICMPv6ND_NS(tgt=tgt)), hlim=255)
        emit([(p, 0)], "ipv6 nd dad (src ::)", link=("eth",))
    # RS / RA
    for _ in range(5):
        ll = "fe80::%x:%x:%x:%x" % tuple(R.getrandbits(16) for _ in range(4))
        rs = ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=R.choice(HOST_MACS))
        ra = (ICMPv6ND_RA(chlim=64, M=0, O=1, routerlifetime=1800) /
              ICMPv6NDOptSrcLLAddr(lladdr=GW_MAC) / ICMPv6NDOptMTU(mtu=1500) /
              ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=1, validlifetime=86400,
                                    preferredlifetime=14400, prefix="2a02:8108:1c0:4e00::"))
        p1 = ip6(ll, "ff02::2", 58, l4("ipv6", ll, "ff02::2", rs), hlim=255)
        p2 = ip6("fe80::1", "ff02::1", 58, l4("ipv6", "fe80::1", "ff02::1", ra), hlim=255)
        emit([(p1, 0), (p2, 1)], "ipv6 nd rs/ra", link=("eth",))
    # ICMPv6 errors with ordinary quotes
    for _ in range(3):
        c, s = R.choice(V6_LAN), R.choice(V6_SERVERS)
        quote = ipv6_header(c, s, 17, 8 + 32, hlim=1) + udp_seg("ipv6", c, s, eph(), 33434, rbytes(32))
        rtr = "2a02:8108:1c0:4e00::1"
        p = ip6(rtr, c, 58, l4("ipv6", rtr, c, ICMPv6TimeExceeded(code=0) / Raw(quote)), hlim=64)
        emit([(p, 1)], "ipv6 icmpv6 time exceeded")
    for _ in range(2):
        c, s = R.choice(V6_LAN), R.choice(V6_SERVERS)
        seg = tcp_seg("ipv6", s, c, 443, eph(), R.getrandbits(32), R.getrandbits(32), "A",
                      rbytes(1380))
        quote = (ipv6_header(s, c, 6, len(seg), hlim=55) + seg)[:R.randrange(200, 600)]
        rtr = "2a02:8108:1c0:4e00::1"
        p = ip6(rtr, s, 58, l4("ipv6", rtr, s, ICMPv6PacketTooBig(mtu=1280) / Raw(quote)), hlim=64)
        emit([(p, 0)], "ipv6 icmpv6 packet too big")
    # No Next Header (59)
    for i in range(7):
        a, b = R.choice(V6_LAN), R.choice(V6_SERVERS)
        body = b"" if i < 5 else rbytes(8)
        p = ip6(a, b, 59, body, hlim=64)
        emit([(p, 0)], "ipv6 no next header")


def gen_address_classes():
    """Native IPv6 frames whose addresses exercise every class of REPORT.md section 5."""
    nat = lambda v4: str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) |
                                               int(ipaddress.IPv4Address(v4))))
    # NAT64 well-known prefix: a short TCP session and an echo pair
    c = V6_LAN[3]
    emit(tcp_flow("ipv6", c, nat("93.184.216.34"), 80, resp=600), "ipv6 tcp to nat64 wkp")
    emit(echo_pair("ipv6", c, nat("8.8.8.8")), "ipv6 echo to nat64 wkp")
    # NAT64 local-use prefix
    nl = "64:ff9b:1:a::c000:2a1"
    emit(dns_pair("ipv6", c, nl, name="www.example.com", qtype="AAAA"), "ipv6 dns to nat64 local")
    # loopback and mapped (martians on the wire)
    for src, dst, desc in [("::1", V6_SERVERS[0], "ipv6 spoofed src ::1"),
                           (V6_LAN[5], "::1", "ipv6 dst ::1"),
                           ("::ffff:192.0.2.33", V6_LAN[6], "ipv6 src ipv4-mapped"),
                           (V6_LAN[7], "::ffff:198.51.100.9", "ipv6 dst ipv4-mapped")]:
        seg = tcp_seg("ipv6", src, dst, eph(), 443, R.getrandbits(32), 0, "S",
                      opts=[("MSS", 1440)])
        emit([(ip6(src, dst, 6, seg, hlim=R.choice((50, 64))), 0)], desc)
    # documentation prefixes
    emit(echo_pair("ipv6", "2001:db8:1::10", "2001:db8:2::1"), "ipv6 echo documentation")
    emit(echo_pair("ipv6", "3fff:0:a::1", "3fff:abc::53"), "ipv6 echo documentation 3fff::/20")
    # edges just outside special prefixes: global unicast
    emit(echo_pair("ipv6", V6_LAN[8], "3fff:1000::1"), "ipv6 echo 3fff:1000::1 (global)")
    emit(echo_pair("ipv6", V6_LAN[9], "2001:db9::1"), "ipv6 echo 2001:db9::1 (global)")
    emit(dns_pair("ipv6", V6_LAN[10], "2001:1::53"), "ipv6 dns 2001:1::53 (global)")
    # other: outside 2000::/3 and every special prefix
    for src, dst in [("4000::1", V6_LAN[11]), (V6_LAN[12], "100::1"),
                     ("fec0::1", V6_LAN[13]), ("::c000:201", V6_LAN[14])]:
        data = rbytes(24)
        p = ip6(src, dst, 17, udp_seg("ipv6", src, dst, eph(), 9, data), hlim=60)
        emit([(p, 0)], "ipv6 udp class other")
    # native frames from a Teredo relay and a 6to4 relay (IPv6 side)
    t = teredo_addr("65.54.227.120", "198.51.100.77", 40000)
    emit(echo_pair("ipv6", t, V6_SERVERS[1]), "ipv6 native from teredo address")
    emit(echo_pair("ipv6", "2002:c633:6423::1", V6_SERVERS[2]), "ipv6 native from 6to4 address")


def ext_frames():
    """Native IPv6 frames with extension headers and the anomaly cases."""
    srv = V6_SERVERS
    lan = V6_LAN

    def udp6(src, dst, n=None, sp=None, dp=None, csum_dst=None):
        n = n or R.randrange(20, 200)
        return udp_seg("ipv6", src, csum_dst or dst, sp or eph(), dp or R.choice((5001, 9000, 19000)),
                       bytes([0x80]) + rbytes(n - 1))

    def tcp6(src, dst, flags="A", data=b"", csum_dst=None, dp=443):
        return tcp_seg("ipv6", src, csum_dst or dst, eph(), dp, R.getrandbits(32),
                       R.getrandbits(32), flags, data)

    # MLDv2 reports with Hop-by-Hop router alert
    for i in range(8):
        src = "::" if i == 0 else "fe80::%x:%x:%x:%x" % tuple(R.getrandbits(16) for _ in range(4))
        rec = ICMPv6MLDMultAddrRec(rtype=4, dst=R.choice(("ff02::fb", "ff02::1:3",
                                                          "ff05::c", "ff02::1:ff00:10")))
        rep = ICMPv6MLReport2(records=[rec])
        p = ip6(src, "ff02::16", 58, l4("ipv6", src, "ff02::16", rep), exts=[HBH()], hlim=1)
        emit([(p, 0)], "ipv6 hbh mldv2 report", link=("eth",), macs=(R.choice(HOST_MACS), "33:33:00:00:00:16"))
    for i in range(2):
        q = ICMPv6MLQuery(mrd=10000)
        p = ip6("fe80::1", "ff02::1", 58, l4("ipv6", "fe80::1", "ff02::1", q), exts=[HBH()], hlim=1)
        emit([(p, 0)], "ipv6 hbh mld query", link=("eth",), macs=(GW_MAC, "33:33:00:00:00:01"))
    # Routing type 2 (MIPv6: correspondent to care-of address, home address in RH2)
    for i in range(3):
        hoa, coa, cn = "2a02:8108:1c0:4e00::4a", "2600:1700:5a40:1d0::99", srv[i]
        seg = tcp6(cn, coa, "PA", rbytes(R.randrange(60, 300)), csum_dst=hoa)
        emit([(ip6(cn, coa, 6, seg, exts=[RH2(hoa)], hlim=55), 1)], "ipv6 routing type 2")
    # Routing type 3 (RPL source route) inside a 6LoWPAN border network
    for i in range(3):
        hops = ["fd00:6c6f:7761:6e00::%x" % (0x10 + k) for k in (1, 2, 3)]
        src = "fd00:6c6f:7761:6e00::1"
        seg = udp6(src, hops[-1], n=R.randrange(20, 60), dp=61631, csum_dst=hops[-1])
        p = ip6(src, hops[0], 17, seg, exts=[RH3(hops[1:], segleft=2)], hlim=64)
        emit([(p, 0)], "ipv6 routing type 3 (rpl)")
    # Routing type 4 (SRv6 SRH) with a UDP payload
    for i in range(4):
        sids = ["fcbb:bb00:%d::e000" % k for k in (1, 2)] + [srv[i]]
        src = lan[i]
        seg = udp6(src, sids[-1], csum_dst=sids[-1])
        p = ip6(src, sids[0], 17, seg, exts=[SRH(sids, segleft=2)], hlim=64)
        emit([(p, 0)], "ipv6 routing type 4 (srh)")
    # Routing type 0: anomaly rh0
    for i in range(2):
        src, via, dst = lan[20 + i], "2a00:1450:4001:80b::1", srv[3]
        seg = tcp6(src, dst, "S", csum_dst=dst)
        p = ip6(src, via, 6, seg, exts=[RH0([dst])], hlim=64)
        emit([(p, 0)], "ipv6 routing type 0 (rh0)")
    # Fragmented UDP datagrams: first, middle, last
    for i in range(2):
        s, c = V6_DNS[i], lan[15 + i]
        dgram = udp_seg("ipv6", s, c, 19000, eph(), rbytes(R.randrange(2600, 3300)))
        ident = R.getrandbits(32)
        step = 1232
        chunks = [dgram[k:k + step] for k in range(0, len(dgram), step)]
        assert len(chunks) == 3
        flow = []
        for k, ch in enumerate(chunks):
            fr = FRAG(k * step // 8, 1 if k < len(chunks) - 1 else 0, ident)
            flow.append((ip6(s, c, 17, ch, exts=[fr], hlim=57), 1))
        emit(flow, "ipv6 udp fragments")
    # Atomic fragments
    for i in range(3):
        s, c = srv[4 + i], lan[i]
        if i == 0:
            body, nh = l4("ipv6", s, c, ICMPv6EchoReply(id=7, seq=1, data=rbytes(32))), 58
        else:
            body, nh = tcp6(s, c, "A"), 6
        p = ip6(s, c, nh, body, exts=[FRAG(0, 0, R.getrandbits(32))], hlim=58)
        emit([(p, 1)], "ipv6 atomic fragment")
    # Destination Options
    for i in range(3):
        src, dst = lan[i + 3], srv[i + 5]
        p = ip6(src, dst, 17, udp6(src, dst), exts=[DST()], hlim=64)
        emit([(p, 0)], "ipv6 destination options")
    # AH then TCP
    for i in range(3):
        a, b = "2a02:8108:1c0:4e00::2", "2a02:8108:1c0:4e00::3"
        d = i % 2
        src, dst = (a, b) if d == 0 else (b, a)
        p = ip6(src, dst, 6, tcp6(src, dst, "PA", rbytes(80), dp=179), exts=[AH(0x1001, 20 + i)], hlim=1)
        emit([(p, d)], "ipv6 ah")
    # ESP: the walk ends there
    for i in range(5):
        a, b = lan[24], "2a01:111:f100:3000::1"
        d = i % 2
        src, dst = (a, b) if d == 0 else (b, a)
        p = ip6(src, dst, None, b"", exts=[ESP()], hlim=64)
        emit([(p, d)], "ipv6 esp")
    # Mobility: binding update (DestOpts home address + MH), binding ack
    for i in range(2):
        coa, ha, hoa = "2600:1700:5a40:1d0::99", "2a02:8108:1c0:4e00::100", "2a02:8108:1c0:4e00::4a"
        hao = b"\x01\x02\x00\x00" + b"\xc9\x10" + inet6(hoa)
        bu = struct.pack("!HHH", 40 + i, 0xC000, 0x0100)
        p = ip6(coa, ha, 59, b"", exts=[DST(hao), MOB(hoa, ha, 5, bu)], hlim=64)
        emit([(p, 0)], "ipv6 mobility binding update")
    ba = struct.pack("!BBHH", 0, 0, 41, 0x0100)
    p = ip6("2a02:8108:1c0:4e00::100", "2600:1700:5a40:1d0::99", 59, b"",
            exts=[RH2("2a02:8108:1c0:4e00::4a"),
                  MOB("2a02:8108:1c0:4e00::100", "2a02:8108:1c0:4e00::4a", 6, ba)], hlim=64)
    emit([(p, 1)], "ipv6 mobility binding ack")
    # HIP I1
    for i in range(2):
        a, b = lan[25], srv[7]
        p = ip6(a, b, 59, b"", exts=[HIP(a, b, "2001:27:d2a4:1b6e:5c3f:1e2a:9b11:c0de",
                                          "2001:27:48ef:c12:aa3:7e1:b3c2:1f01")], hlim=64)
        emit([(p, 0)], "ipv6 hip")
    # Shim6: payload extension header before TCP, and an I1 control message
    a, b = lan[26], srv[8]
    p = ip6(a, b, 6, tcp6(a, b, "PA", rbytes(120)), exts=[SHIM6_PAYLOAD(0x12345678)], hlim=64)
    emit([(p, 0)], "ipv6 shim6 payload")
    p = ip6(a, b, 59, b"", exts=[SHIM6_I1(0x3F00AA55, 0xDEADBEEF)], hlim=64)
    emit([(p, 0)], "ipv6 shim6 i1")
    # experimental 253 / 254
    a, b = lan[27], srv[9]
    emit([(ip6(a, b, 17, udp6(a, b), exts=[EXP(253)], hlim=64), 0)], "ipv6 experimental 253")
    emit([(ip6(a, b, 6, tcp6(a, b, "A"), exts=[EXP(254)], hlim=64), 0)], "ipv6 experimental 254")
    # A long legal chain: HBH, DestOpts, Routing (SRH), Fragment (first), DestOpts, UDP
    a, sid, b = lan[28], "fcbb:bb00:9::e000", srv[10]
    dg = udp6(a, b, n=200, csum_dst=b)
    p = ip6(a, sid, 17, dg, exts=[HBH(b"\x1e\x02\x00\x00"), DST(), SRH([sid, b], 1),
                                   FRAG(0, 1, R.getrandbits(32)), DST()], hlim=64)
    emit([(p, 0)], "ipv6 long legal chain (dst twice)")
    # --- anomalies ---
    # hbh_not_first: DestOpts then HBH
    for i in range(2):
        a, b = lan[i + 5], srv[i]
        p = ip6(a, b, 17, udp6(a, b), exts=[DST(), HBH(b"\x1e\x02\x00\x00")], hlim=64)
        emit([(p, 0)], "ipv6 anomaly hbh_not_first")
    # repeated_header: two Routing headers; three DestOpts
    for i in range(2):
        a, b = lan[i + 7], srv[i + 2]
        p = ip6(a, "fcbb:bb00:1::e000", 6, tcp6(a, b, "S", csum_dst=b),
                exts=[SRH(["fcbb:bb00:1::e000", b], 1), RH2(b)], hlim=64)
        emit([(p, 0)], "ipv6 anomaly repeated_header (two routing)")
    a, b = lan[9], srv[4]
    p = ip6(a, b, 17, udp6(a, b), exts=[DST(), DST(), DST()], hlim=64)
    emit([(p, 0)], "ipv6 anomaly repeated_header (three destopts)")
    # unknown next header 200 (directly and after a DestOpts)
    for i in range(2):
        a, b = lan[10 + i], srv[5 + i]
        p = ip6(a, b, 200, rbytes(R.randrange(16, 64)), hlim=64)
        emit([(p, 0)], "ipv6 anomaly unknown_next_header")
    a, b = lan[12], srv[7]
    p = ip6(a, b, 200, rbytes(24), exts=[DST()], hlim=64)
    emit([(p, 0)], "ipv6 anomaly unknown_next_header after destopts")
    # chain_not_in_first_fragment (RFC 7112): the first fragment (offset 0, M=1) ends
    # before the upper-layer header
    big_dst = DST(b"\x1e\x3e" + rbytes(62) + b"\x1e\x3e" + rbytes(62))   # 136 octets, 17 x 8
    for i in range(2):
        a, b = lan[13 + i], srv[8 + i]
        # the chain Fragment + DestOpts(136) fills the first fragment exactly; TCP is named
        # by the DestOpts next header but lies in the next fragment
        p = ip6(a, b, 6, b"", exts=[FRAG(0, 1, R.getrandbits(32)), big_dst], hlim=64,
                extra_anom=["chain_not_in_first_fragment"])
        emit([(p, 0)], "ipv6 anomaly chain_not_in_first_fragment (ends after destopts)")
    # the payload length cuts the DestOpts itself (a first fragment of 8 + 48 octets)
    a, b = lan[15], srv[11]
    dst_ext = DST(b"\x1e\x3e" + rbytes(62) + b"\x1e\x3e" + rbytes(62))
    full = ip6(a, b, 6, b"", exts=[FRAG(0, 1, R.getrandbits(32)), dst_ext, DST()], hlim=64)
    cut = full.raw[:40 + 8 + 48]
    cut = cut[:4] + struct.pack("!H", 56) + cut[6:]
    p = P("ipv6", cut, "ipv6", None, ("ipv6", "other"), (addr_class(a), addr_class(b)),
          {"fragment", "destination_options"}, set(), {"chain_not_in_first_fragment"}, 2, a, b)
    emit([(p, 0)], "ipv6 anomaly chain_not_in_first_fragment (payload length cuts destopts)")


def gen_truncated_and_malformed():
    """Snaplen-cut frames and frames with invalid header fields."""
    lan, srv = V6_LAN, V6_SERVERS
    tr = {"decode": ["truncated"]}
    macs = macs_pick()
    # --- truncated_chain (caplen < wirelen, cut in the extension header chain) ---
    a, b = lan[16], srv[0]
    p = ip6(a, b, 6, tcp_seg("ipv6", a, b, eph(), 443, 1, 1, "PA", rbytes(1200)),
            exts=[HBH(b"\x1e\x04\x00\x00\x00\x00")], hlim=64)
    f = frame_ip(p, ("eth",), macs, 0, "ipv6 truncated_chain: capture ends where HBH starts",
                 caplen=14 + 40,
                 over=dict(tr, transport="other", anomalies=["truncated_chain"]))
    add([f])
    a, b = lan[17], srv[1]
    p = ip6(a, "fcbb:bb00:3::e000", 6, tcp_seg("ipv6", a, b, eph(), 443, 1, 1, "PA", rbytes(900)),
            exts=[DST(), SRH(["fcbb:bb00:3::e000", b], 1), DST()], hlim=64)
    f = frame_ip(p, ("eth",), macs, 0, "ipv6 truncated_chain: capture ends 2 octets into routing",
                 caplen=14 + 40 + 8 + 2,
                 over=dict(tr, transport="other", anomalies=["truncated_chain"],
                           routing_types=[], chain_length=2))
    add([f])
    a, b = lan[18], srv[2]
    p = ip6(a, b, 17, udp_seg("ipv6", a, b, eph(), 443, rbytes(1100)),
            exts=[HBH(b"\x1e\x04\x00\x00\x00\x00"), FRAG(0, 1, R.getrandbits(32))], hlim=64)
    f = frame_ip(p, ("vlan", 100), macs, 0, "ipv6 truncated_chain: capture ends where Fragment starts",
                 caplen=18 + 40 + 8,
                 over=dict(tr, transport="other", anomalies=["truncated_chain"]))
    add([f])
    # inside 6in4: inner IPv6 fixed header captured, DestOpts cut after 5 octets
    inner = ip6("2001:470:1f0b:35a::2", srv[3], 6,
                tcp_seg("ipv6", "2001:470:1f0b:35a::2", srv[3], eph(), 443, 1, 1, "PA", rbytes(700)),
                exts=[DST(b"\x1e\x0c" + rbytes(12)), DST()], hlim=64)
    p = ip4("81.2.69.160", "216.66.80.26", 41, inner.raw, inner=inner, kind="6in4", ttl=64)
    f = frame_ip(p, ("eth",), macs, 0, "6in4 with truncated_chain: inner DestOpts cut",
                 caplen=14 + 20 + 40 + 5,
                 over=dict(tr, transport="other", anomalies=["truncated_chain"], chain_length=1))
    add([f])
    # --- cut inside a fixed IP header ---
    a, b = lan[19], srv[4]
    p = ip6(a, b, 6, tcp_seg("ipv6", a, b, eph(), 443, 1, 1, "PA", rbytes(1200)), hlim=64)
    data = link_wrap("ipv6", p.raw, ("eth",), macs, 0)
    add([frame_raw(data, "ipv6 header cut by snaplen (30 of 40 octets)",
                   truth=dict(NONIP_TRUTH, decode=["truncated"]), caplen=14 + 30)])
    p = ip4("192.168.1.44", "151.101.1.140", 17,
            udp_seg("ipv4", "192.168.1.44", "151.101.1.140", eph(), 443, rbytes(1000)), ttl=64)
    data = link_wrap("ipv4", p.raw, ("eth",), macs, 0)
    add([frame_raw(data, "ipv4 header cut by snaplen (12 of 20 octets)",
                   truth=dict(NONIP_TRUTH, decode=["truncated"]), caplen=14 + 12)])
    # 6in4 whose inner IPv6 header is cut: no tunnel, IPv4 proto 41 is the innermost
    inner = ip6("2001:470:1f0b:35a::2", srv[5], 6,
                tcp_seg("ipv6", "2001:470:1f0b:35a::2", srv[5], eph(), 443, 1, 1, "PA", rbytes(600)))
    p = ip4("81.2.69.160", "216.66.80.26", 41, inner.raw, ttl=64)
    add([frame_ip(p, ("eth",), macs, 0, "ipv4 proto 41 with inner IPv6 header cut (20 of 40)",
                  caplen=14 + 20 + 20, over=dict(tr))])
    # VLAN tag cut
    data = link_wrap("ipv4", p.raw, ("vlan", 100), macs, 0)
    add([frame_raw(data, "802.1Q tag cut by snaplen", truth=dict(NONIP_TRUTH, decode=["truncated"]),
                   caplen=16)])
    # --- malformed ---
    mal = {"decode": ["malformed"]}
    a, b = lan[20], srv[6]
    p = ip6(a, b, 17, udp_seg("ipv6", a, b, eph(), 443, rbytes(100)))
    raw = bytes([0x50 | (p.raw[0] & 0x0F)]) + p.raw[1:]
    add([frame_raw(link_wrap("ipv6", raw, ("eth",), macs, 0),
                   "ethertype 0x86DD with IP version 5", truth=dict(NONIP_TRUTH, **mal))])
    body = udp_seg("ipv4", "192.168.1.45", "8.8.8.8", eph(), 53, rbytes(40))
    raw = ipv4_header("192.168.1.45", "8.8.8.8", 17, len(body), ihl=3) + body
    add([frame_raw(link_wrap("ipv4", raw, ("eth",), macs, 0), "ipv4 with IHL 3",
                   truth=dict(NONIP_TRUTH, **mal))])
    raw = ipv4_header("192.168.1.46", "8.8.4.4", 17, len(body), tlen=16) + body
    add([frame_raw(link_wrap("ipv4", raw, ("eth",), macs, 0), "ipv4 with total length 16",
                   truth=dict(NONIP_TRUTH, **mal))])
    inner = ip6("2001:470:1f0b:35a::2", srv[7], 58,
                l4("ipv6", "2001:470:1f0b:35a::2", srv[7], ICMPv6EchoRequest(id=1, seq=1)))
    bad = bytes([0x00 | (inner.raw[0] & 0x0F)]) + inner.raw[1:]
    p = ip4("81.2.69.160", "216.66.80.26", 41, bad, ttl=64)
    add([frame_ip(p, ("eth",), macs, 0, "ipv4 proto 41 with inner version 0", over=dict(mal))])


def gen_nonip():
    for i in range(20):
        k = R.randrange(len(HOST_MACS))
        a, b, m = V4_LAN[k], "192.168.1.1", HOST_MACS[k]
        req = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=m) /
                    ARP(op=1, hwsrc=m, psrc=a, hwdst="00:00:00:00:00:00", pdst=b))
        rep = bytes(Ether(dst=m, src=GW_MAC) / ARP(op=2, hwsrc=GW_MAC, psrc=b, hwdst=m, pdst=a))
        add([frame_raw(req, "arp request", pad=R.random() < 0.7),
             frame_raw(rep, "arp reply", pad=True)])
    for i in range(10):
        sysname = b"sw-core-%d" % (i % 2 + 1)
        tlv = lambda t, v: struct.pack("!H", (t << 9) | len(v)) + v
        lldp = (tlv(1, b"\x04" + mac("00:1b:21:3a:4f:%02x" % (0x20 + i % 2))) +
                tlv(2, b"\x05" + b"Gi1/0/%d" % (1 + i % 8)) + tlv(3, struct.pack("!H", 120)) +
                tlv(5, sysname) + tlv(0, b""))
        add([frame_raw(eth_hdr("01:80:c2:00:00:0e", "00:1b:21:3a:4f:%02x" % (0x20 + i % 2), 0x88CC)
                       + lldp, "lldp")])
    for i in range(20):
        bpdu = struct.pack("!HBBB", 0, 0, 0, 0) + struct.pack("!H", 0x8000) + \
            mac("00:1b:21:3a:4f:20") + struct.pack("!I", 4) + struct.pack("!H", 0x8000) + \
            mac("00:1b:21:3a:4f:21") + struct.pack("!HHHHH", 0x8001, 0, 20 * 256, 2 * 256, 15 * 256)
        llc = b"\x42\x42\x03" + bpdu
        data = mac("01:80:c2:00:00:00") + mac("00:1b:21:3a:4f:21") + struct.pack("!H", len(llc)) + llc
        add([frame_raw(data, "stp (802.3 + llc)")])
    # PPPoE discovery (PADI) and an LCP echo in a PPPoE session: not IP
    for i in range(2):
        padi = struct.pack("!BBHH", 0x11, 0x09, 0, 4) + struct.pack("!HH", 0x0101, 0)
        add([frame_raw(eth_hdr("ff:ff:ff:ff:ff:ff", HOST_MACS[i], 0x8863) + padi, "pppoe padi")])
        lcp = struct.pack("!HBBHI", 0xC021, 9, i + 1, 8, 0x5A5A0000 + i)
        add([frame_raw(eth_hdr(GW_MAC, HOST_MACS[i], 0x8864) +
                       struct.pack("!BBHH", 0x11, 0, 0x1A2B, len(lcp)) + lcp, "pppoe lcp echo")])


# ---------------------------------------------------------------------------
# Tunnels

def teredo_addr(server4, client4, port, cone=True):
    b = struct.pack("!HH4sHH4s", 0x2001, 0, inet4(server4), 0x8000 if cone else 0,
                    port ^ 0xFFFF, bytes(x ^ 0xFF for x in inet4(client4)))
    return str(ipaddress.IPv6Address(b))


def sixrd_addr(v4, subnet, iid):
    net = ipaddress.IPv6Network(SIXRD_PREFIX)
    v = int(net.network_address) | (int(ipaddress.IPv4Address(v4)) << (128 - 28 - 32)) | \
        (subnet << 64) | iid
    return str(ipaddress.IPv6Address(v))


def e_ip4(a, b, proto, kind, ttl=64):
    def f(p, d):
        src, dst = (a, b) if d == 0 else (b, a)
        return ip4(src, dst, proto, p.raw, inner=p, kind=kind, ttl=ttl)
    return f


def gen_6in4_family():
    # 6in4: Hurricane Electric style tunnel broker
    c4, s4 = "81.2.69.160", "216.66.80.26"
    c6 = ["2001:470:1f0b:35a::%x" % i for i in (2, 0x10, 0x11, 0x22)]
    enc = e_ip4(c4, s4, 41, "6in4")
    for i in range(3):
        emit(tcp_flow("ipv6", R.choice(c6), V6_SERVERS[i], 443, resp=R.randrange(300, 1800)),
             "6in4 tcp", encap=enc)
    for i in range(3):
        emit(echo_pair("ipv6", c6[0], V6_SERVERS[3 + i]), "6in4 icmpv6 echo", encap=enc)
    for i in range(3):
        emit(dns_pair("ipv6", c6[1], V6_DNS[i]), "6in4 dns", encap=enc)
    # an inner IPv6 with a Hop-by-Hop header (MLD to the tunnel peer)
    rep = ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(rtype=4, dst="ff05::c")])
    inner = ip6("fe80::5102:45a0", "ff02::16", 58, l4("ipv6", "fe80::5102:45a0", "ff02::16", rep),
                exts=[HBH()], hlim=1)
    emit([(inner, 0)], "6in4 inner hbh mld", encap=enc)
    # IPv4-fragmented 6in4: the first fragment holds the inner IPv6 header, the second
    # does not (tunnel none, IPv4 protocol 41 is then the innermost header)
    a6, b6 = c6[0], V6_SERVERS[6]
    inner = ip6(b6, a6, 6, tcp_seg("ipv6", b6, a6, 443, eph(), 5, 6, "A", rbytes(1440)), hlim=55)
    ident = R.randrange(1, 0xFFFF)
    first = inner.raw[:1480]
    rest = inner.raw[1480:]
    p1 = ip4(s4, c4, 41, first, inner=inner, kind="6in4", ttl=60, ident=ident, df=False, mf=True)
    p2 = ip4(s4, c4, 41, rest, ttl=60, ident=ident, df=False, frag_off=185)
    emit([(p1, 1), (p2, 1)], "6in4 ipv4 fragments", link=("eth",))

    # 6to4: host 91.225.26.43 with 2002:5be1:1a2b::/48, relay anycast 192.88.99.1
    h4, relay = "91.225.26.43", "192.88.99.1"
    h6 = ["2002:5be1:1a2b::10", "2002:5be1:1a2b:1::20"]
    enc = e_ip4(h4, relay, 41, "6to4")
    for i in range(2):
        emit(tcp_flow("ipv6", h6[i], V6_SERVERS[7 + i], 443, resp=R.randrange(300, 1500)),
             "6to4 tcp", encap=enc)
    for i in range(3):
        emit(echo_pair("ipv6", h6[0], V6_SERVERS[i]), "6to4 icmpv6 echo", encap=enc)
    # 6to4 site to 6to4 site (direct), both addresses in 2002::/16
    emit(echo_pair("ipv6", h6[1], "2002:c633:6423::1"), "6to4 direct site to site",
         encap=e_ip4(h4, "198.51.100.35", 41, "6to4"))
    # order checks: 6to4 wins over isatap and 6rd
    emit(echo_pair("ipv6", h6[0], "2a02:8108:1c0:4f00:200:5efe:5be1:1a2c"),
         "6to4 (also isatap iid: 6to4 first)", encap=enc)
    emit(echo_pair("ipv6", h6[0], sixrd_addr("82.64.10.20", 1, 1)),
         "6to4 (also 6rd: 6to4 first)", encap=enc)

    # ISATAP: client 10.1.2.3, router 10.1.0.1
    c4, r4 = "10.1.2.3", "10.1.0.1"
    ll_c, ll_r = "fe80::5efe:a01:203", "fe80::5efe:a01:1"
    g_c = "2a02:8108:1c0:4f00:0:5efe:a01:203"
    enc = e_ip4(c4, r4, 41, "isatap")
    rs = ICMPv6ND_RS()
    ra = (ICMPv6ND_RA(chlim=64, routerlifetime=1800) /
          ICMPv6NDOptPrefixInfo(prefixlen=64, L=0, A=1, prefix="2a02:8108:1c0:4f00::"))
    for i in range(2):
        emit([(ip6(ll_c, ll_r, 58, l4("ipv6", ll_c, ll_r, rs), hlim=255), 0),
              (ip6(ll_r, ll_c, 58, l4("ipv6", ll_r, ll_c, ra), hlim=255), 1)],
             "isatap rs/ra", encap=enc)
    for i in range(2):
        emit(tcp_flow("ipv6", g_c, V6_SERVERS[3 + i], 443, resp=R.randrange(300, 1400)),
             "isatap tcp", encap=e_ip4(c4, r4, 41, "isatap"))
    emit(echo_pair("ipv6", g_c, V6_SERVERS[5], n=2), "isatap icmpv6 echo", encap=enc)
    # 0200:5efe (globally unique IPv4 embedded)
    g2 = "2a02:8108:1c0:4f00:200:5efe:5be1:1a2c"
    emit(echo_pair("ipv6", g2, V6_SERVERS[6]), "isatap 0200:5efe",
         encap=e_ip4("91.225.26.44", "91.225.26.1", 41, "isatap"))
    # order check: isatap wins over 6rd
    emit(echo_pair("ipv6", g_c, sixrd_addr("82.64.10.21", 0, 5)), "isatap (also 6rd: isatap first)",
         encap=enc)

    # 6rd: CE 82.64.10.20, border relay 212.27.38.253, prefix 2a01:e30::/28
    ce, br = "82.64.10.20", "212.27.38.253"
    hosts = [sixrd_addr(ce, 0, rand_iid()), sixrd_addr(ce, 1, rand_iid())]
    for h in hosts:
        assert ipaddress.IPv6Address(h) in SIXRD_NET and addr_class(h) == "global_unicast"
    enc = e_ip4(ce, br, 41, "6rd")
    for i in range(3):
        emit(tcp_flow("ipv6", R.choice(hosts), V6_SERVERS[i + 2], 443, resp=R.randrange(300, 1500)),
             "6rd tcp", encap=enc)
    for i in range(2):
        emit(dns_pair("ipv6", hosts[0], V6_DNS[i]), "6rd dns", encap=enc)
    emit(echo_pair("ipv6", hosts[1], V6_SERVERS[9], n=2), "6rd icmpv6 echo", encap=enc)


def gen_teredo():
    srv4 = "65.54.227.120"
    cl_priv, cl_pub, cl_port = "192.168.1.50", "198.51.100.77", 40000
    t_cl = teredo_addr(srv4, cl_pub, cl_port)
    local_port = 51413
    macs = (HOST_MACS[5], GW_MAC)

    def tpkt(src4, sp, dst4, dp, inner, prefix=b"", d=0, desc="teredo"):
        udp = udp_seg("ipv4", src4, dst4, sp, dp, prefix + inner.raw)
        assert sp == 3544 or dp == 3544 or "teredo" in (inner.addrs or ())
        return (ip4(src4, dst4, 17, udp, inner=inner, kind="teredo", ttl=64 if d == 0 else 113), d)

    def auth_hdr():
        return b"\x00\x01\x00\x00" + rbytes(8) + b"\x00"

    def origin(port, addr):
        return b"\x00\x00" + struct.pack("!H", port ^ 0xFFFF) + bytes(x ^ 0xFF for x in inet4(addr))

    # qualification: RS with auth header, RA with auth + origin indication
    ll_c = "fe80::8000:ffff:ffff:fffd"
    ll_s = "fe80::8000:f227:bec7:2c4"
    for i in range(3):
        rs = ip6(ll_c, "ff02::2", 58, l4("ipv6", ll_c, "ff02::2", ICMPv6ND_RS()), hlim=255)
        ra_l = (ICMPv6ND_RA(chlim=0, routerlifetime=1800) /
                ICMPv6NDOptPrefixInfo(prefixlen=64, L=0, A=1, prefix="2001:0:4136:e378::"))
        ra = ip6(ll_s, ll_c, 58, l4("ipv6", ll_s, ll_c, ra_l), hlim=255)
        emit([tpkt(cl_priv, local_port, srv4, 3544, rs, auth_hdr(), 0),
              tpkt(srv4, 3544, cl_priv, local_port, ra, auth_hdr() + origin(cl_port, cl_pub), 1)],
             "teredo qualification (auth, origin indication)", link=("eth",), macs=macs)
    # traffic through a relay (relay side uses port 3544)
    relay = "83.170.6.76"
    for i in range(2):
        flow = tcp_flow("ipv6", t_cl, V6_SERVERS[i], 443, resp=R.randrange(300, 1500))
        group = [tpkt(cl_priv, local_port, relay, 3544, p, b"", d) if d == 0 else
                 tpkt(relay, 3544, cl_priv, local_port, p, origin(3544, relay) if k == 1 else b"", d)
                 for k, (p, d) in enumerate(flow)]
        emit(group, "teredo via relay (port 3544)", link=("eth",), macs=macs)
    for i in range(2):
        flow = echo_pair("ipv6", t_cl, V6_SERVERS[2 + i])
        group = [tpkt(cl_priv, local_port, relay, 3544, p, b"", d) if d == 0 else
                 tpkt(relay, 3544, cl_priv, local_port, p, b"", d) for p, d in flow]
        emit(group, "teredo echo via relay", link=("eth",), macs=macs)
    # bubbles: IPv6 next header 59, payload length 0
    peer_pub, peer_port = "203.0.113.88", 61234
    t_peer = teredo_addr(srv4, peer_pub, peer_port)
    for i in range(3):
        b = ip6(t_cl, t_peer, 59, b"", hlim=255)
        emit([tpkt(cl_priv, local_port, peer_pub, peer_port, b, b"", 0)],
             "teredo bubble (direct, no port 3544)", link=("eth",), macs=macs)
    for i in range(3):
        b = ip6(t_cl, t_peer, 59, b"", hlim=255)
        emit([tpkt(cl_priv, local_port, srv4, 3544, b, b"", 0)], "teredo bubble via server",
             link=("eth",), macs=macs)
    # bubble relayed by the server to the peer side, with origin indication
    b = ip6(t_peer, t_cl, 59, b"", hlim=255)
    emit([tpkt(srv4, 3544, cl_priv, local_port, b, origin(peer_port, peer_pub), 1)],
         "teredo bubble with origin indication", link=("eth",), macs=macs)
    # direct client-to-client data on non-3544 ports (found by 2001::/32)
    for i in range(2):
        flow = udp_misc("ipv6", t_cl, t_peer, 6881, [R.randrange(60, 400) for _ in range(4)])
        group = [tpkt(cl_priv, local_port, peer_pub, peer_port, p, b"", d) if d == 0 else
                 tpkt(peer_pub, peer_port, cl_priv, local_port, p, b"", d) for p, d in flow]
        emit(group, "teredo direct (no port 3544)", link=("eth",), macs=macs)
    # negatives: UDP that merely starts with nibble 6 (not Teredo)
    for i in range(2):
        data = bytes([0x60 | R.getrandbits(4)]) + rbytes(R.randrange(60, 200))
        assert not teredo_like(data)
        p = ip4("192.168.1.51", "198.51.100.200", 17,
                udp_seg("ipv4", "192.168.1.51", "198.51.100.200", eph(), 27015, data))
        emit([(p, 0)], "ipv4 udp starting with nibble 6 (not teredo)", link=("eth",))
    # port 3544 with an IPv6-looking payload whose length does not fit: not Teredo
    inner = ip6(t_cl, V6_SERVERS[4], 59, b"", hlim=255)
    data = inner.raw[:4] + struct.pack("!H", 20) + inner.raw[6:]
    assert not teredo_like(data)
    p = ip4(cl_priv, srv4, 17, udp_seg("ipv4", cl_priv, srv4, local_port, 3544, data))
    emit([(p, 0)], "ipv4 udp 3544 with misfit ipv6 length (not teredo)", link=("eth",), macs=macs)
    # a well-formed IPv6 packet in UDP on other ports with no 2001::/32 address: not Teredo
    inner = ip6(V6_LAN[0], V6_SERVERS[5], 59, b"", hlim=64)
    p = ip4("192.168.1.52", "198.51.100.201", 17,
            udp_seg("ipv4", "192.168.1.52", "198.51.100.201", eph(), 40001, inner.raw))
    emit([(p, 0)], "ipv4 udp carrying ipv6 without port 3544 or 2001::/32 (not teredo)",
         link=("eth",))


def teredo_like(data):
    """True if a UDP payload would pass the Teredo length test (ports/addresses aside)."""
    i = 0
    if data[i:i + 2] == b"\x00\x01" and len(data) >= 4:
        i += 4 + data[2] + data[3] + 9
    if data[i:i + 2] == b"\x00\x00":
        i += 8
    rest = data[i:]
    return len(rest) >= 40 and rest[0] >> 4 == 6 and struct.unpack("!H", rest[4:6])[0] + 40 == len(rest)


def gen_udp_tunnels():
    # AYIYA (SixXS style)
    c4, pop = "81.2.69.170", "213.197.27.252"
    c6, pop6 = "2001:7b8:2ff:b4::2", "2001:7b8:2ff:b4::1"
    epoch = [1699999990]

    def ayiya(p, d):
        src, dst = (c4, pop) if d == 0 else (pop, c4)
        epoch[0] += 1
        hdr = ayiya_hdr(c6 if d == 0 else pop6, epoch[0])
        return ip4(src, dst, 17, udp_seg("ipv4", src, dst, 5072, 5072, hdr + p.raw),
                   inner=p, kind="ayiya", ttl=64 if d == 0 else 52)
    for i in range(2):
        emit(tcp_flow("ipv6", c6, V6_SERVERS[i], 443, resp=R.randrange(300, 1500)), "ayiya tcp",
             encap=ayiya)
    for i in range(3):
        emit(echo_pair("ipv6", c6, V6_SERVERS[4 + i]), "ayiya icmpv6 echo", encap=ayiya)
    emit(dns_pair("ipv6", c6, V6_DNS[0]), "ayiya dns", encap=ayiya)
    emit(dns_pair("ipv6", c6, V6_DNS[1]), "ayiya dns", encap=ayiya)
    emit(quic_flow("ipv6", c6, V6_SERVERS[7], 5), "ayiya udp quic", encap=ayiya)

    # GTP-U
    enb, sgw = "10.100.0.5", "10.200.0.9"
    ue6 = "2a01:598:8a81:4c2e:1d7a:90b3:52c1:7e04"
    ue4 = "100.72.14.9"
    teid = [0x1A2B3C01, 0x00C0FFEE]

    def gtp(v6=False, seq=None, qfi=None, outer6=None):
        def f(p, d):
            if outer6:
                src, dst = outer6 if d == 0 else outer6[::-1]
            else:
                src, dst = (enb, sgw) if d == 0 else (sgw, enb)
            g = gtpu_hdr(teid[d], p.raw, seq=seq, qfi=qfi)
            fam = "ipv6" if outer6 else "ipv4"
            u = udp_seg(fam, src, dst, 2152, 2152, g)
            if outer6:
                return ip6(src, dst, 17, u, inner=p, kind="gtpu", hlim=64)
            return ip4(src, dst, 17, u, inner=p, kind="gtpu", ttl=64)
        return f
    emit(tcp_flow("ipv6", ue6, V6_SERVERS[2], 443, resp=R.randrange(300, 1400)), "gtpu ipv6 tcp",
         encap=gtp(), link=("vlan", 20))
    emit(dns_pair("ipv6", ue6, V6_DNS[1]), "gtpu ipv6 dns (seq)", encap=gtp(seq=R.randrange(1, 999)),
         link=("vlan", 20))
    emit(echo_pair("ipv6", ue6, V6_SERVERS[3]), "gtpu ipv6 echo (pdu session container)",
         encap=gtp(qfi=9), link=("vlan", 20))
    emit(tcp_flow("ipv4", ue4, V4_SERVERS[0], 443, resp=R.randrange(300, 1400)), "gtpu ipv4 tcp",
         encap=gtp(), link=("vlan", 20))
    emit(dns_pair("ipv4", ue4, "8.8.8.8"), "gtpu ipv4 dns", encap=gtp(), link=("vlan", 20))
    emit(quic_flow("ipv6", ue6, V6_SERVERS[9], 7), "gtpu ipv6 udp quic (pdu session container)",
         encap=gtp(qfi=5), link=("vlan", 20))
    # inner IPv6 fragments (first and last) inside GTP-U
    dg = udp_seg("ipv6", V6_SERVERS[4], ue6, 443, eph(), rbytes(1900))
    ident = R.getrandbits(32)
    fr1 = ip6(V6_SERVERS[4], ue6, 17, dg[:1232], exts=[FRAG(0, 1, ident)], hlim=56)
    fr2 = ip6(V6_SERVERS[4], ue6, 17, dg[1232:], exts=[FRAG(154, 0, ident)], hlim=56)
    emit([(fr1, 1), (fr2, 1)], "gtpu inner ipv6 fragments", encap=gtp(), link=("vlan", 20))
    # GTP-U over IPv6 transport (carrier ipv6, payload ipv4)
    o6 = ("fd00:5:1::5", "fd00:5:2::9")
    emit(echo_pair("ipv4", ue4, V4_SERVERS[1]), "gtpu over ipv6 carrying ipv4",
         encap=gtp(outer6=o6), link=("vlan", 20))
    emit(dns_pair("ipv4", ue4, "1.1.1.1"), "gtpu over ipv6 carrying ipv4", encap=gtp(outer6=o6),
         link=("vlan", 20))
    # GTP-U echo request/response: not a T-PDU, no tunnel
    for d in (0, 1):
        src, dst = (enb, sgw) if d == 0 else (sgw, enb)
        g = struct.pack("!BBHIHBB", 0x32, 1 if d == 0 else 2, 4, 0, 77, 0, 0)
        if d == 1:
            g = struct.pack("!BBHIHBB", 0x32, 2, 6, 0, 77, 0, 0) + b"\x0e\x00"
        p = ip4(src, dst, 17, udp_seg("ipv4", src, dst, 2152, 2152, g), ttl=64)
        emit([(p, d)], "gtp-u echo (not a t-pdu, no tunnel)", link=("vlan", 20))

    # L2TPv2
    lac, lns = "10.5.0.1", "10.6.0.1"
    sub6, sub4 = "2a02:810d:4b3f:e100:8d1:33ff:fe21:9a0c", "100.70.33.12"
    tid, sid = 0x3E21, 0x0001

    def l2tp(with_len=False, seq=False):
        ns = [0]

        def f(p, d):
            src, dst = (lac, lns) if d == 0 else (lns, lac)
            ns[0] += 1
            proto = 0x0057 if p.fam == "ipv6" else 0x0021
            body = l2tp_data(tid, sid, proto, p.raw, with_len, (ns[0], ns[0]) if seq else None)
            return ip4(src, dst, 17, udp_seg("ipv4", src, dst, 1701, 1701, body), inner=p,
                       kind="l2tp", ttl=64)
        return f
    emit(tcp_flow("ipv6", sub6, V6_SERVERS[5], 443, resp=R.randrange(300, 1400)), "l2tp ppp ipv6 tcp",
         encap=l2tp())
    emit(echo_pair("ipv6", sub6, V6_SERVERS[6], n=2), "l2tp ppp ipv6 echo (length bit)",
         encap=l2tp(with_len=True))
    emit(dns_pair("ipv6", sub6, V6_DNS[2]), "l2tp ppp ipv6 dns (sequence)", encap=l2tp(seq=True))
    emit(tcp_flow("ipv4", sub4, V4_SERVERS[2], 80, resp=R.randrange(300, 1200)), "l2tp ppp ipv4 tcp",
         encap=l2tp(with_len=True))
    emit(dns_pair("ipv4", sub4, "9.9.9.9"), "l2tp ppp ipv4 dns", encap=l2tp())
    emit(quic_flow("ipv6", sub6, V6_SERVERS[8], 6), "l2tp ppp ipv6 udp quic", encap=l2tp())
    # L2TP control message and an LCP echo in a data message: no tunnel
    sccrq = struct.pack("!HHHHHH", 0xC802, 20, 0, 0, 0, 0) + struct.pack("!HHHH", 0x8008, 0, 0, 1)
    p = ip4(lac, lns, 17, udp_seg("ipv4", lac, lns, 1701, 1701, sccrq), ttl=64)
    emit([(p, 0)], "l2tp control sccrq (no tunnel)", link=("eth",))
    lcp = l2tp_data(tid, sid, 0xC021, struct.pack("!BBHI", 9, 3, 8, 0x11223344))
    p = ip4(lns, lac, 17, udp_seg("ipv4", lns, lac, 1701, 1701, lcp), ttl=64)
    emit([(p, 1)], "l2tp data with ppp lcp (no ip, no tunnel)", link=("eth",))

    # VXLAN
    vt1, vt2 = "10.10.0.1", "10.10.0.2"
    vm_m = ("02:42:ac:11:00:02", "02:42:ac:11:00:03")

    def vxlan(vni=5001, tag=None):
        sport = eph()

        def f(p, d):
            src, dst = (vt1, vt2) if d == 0 else (vt2, vt1)
            et = ETYPE[p.fam]
            sm, dm = vm_m if d == 0 else vm_m[::-1]
            if tag:
                inner = eth_hdr(dm, sm, 0x8100) + struct.pack("!HH", tag, et) + p.raw
            else:
                inner = inner_eth(p.raw, et, sm, dm)
            return ip4(src, dst, 17, udp_seg("ipv4", src, dst, sport, 4789, vxlan_hdr(vni, inner)),
                       inner=p, kind="vxlan", ttl=64)
        return f
    u1, u2 = "fd00:10:244:1::5", "fd00:10:244:2::9"
    emit(tcp_flow("ipv6", u1, u2, 8080, resp=R.randrange(300, 1400)), "vxlan ipv6 tcp", encap=vxlan())
    emit(tcp_flow("ipv6", u1, V6_SERVERS[7], 443, resp=R.randrange(300, 1400)), "vxlan ipv6 tcp",
         encap=vxlan())
    emit(echo_pair("ipv6", u1, u2, n=2), "vxlan ipv6 echo", encap=vxlan())
    emit(tcp_flow("ipv4", "172.17.0.2", "172.17.0.3", 5432, resp=R.randrange(300, 1400)),
         "vxlan ipv4 tcp", encap=vxlan(5002))
    emit(echo_pair("ipv6", u2, u1), "vxlan ipv6 echo (inner 802.1q)", encap=vxlan(5003, tag=300))
    # inner ARP: still the vxlan tunnel; payload stays the outer family
    arp = bytes(ARP(op=1, hwsrc=vm_m[0], psrc="172.17.0.2", pdst="172.17.0.3"))
    inner = eth_hdr("ff:ff:ff:ff:ff:ff", vm_m[0], 0x0806) + arp
    p = ip4(vt1, vt2, 17, udp_seg("ipv4", vt1, vt2, eph(), 4789, vxlan_hdr(5002, inner)), kind="vxlan")
    emit([(p, 0)], "vxlan inner arp")
    # nested: VXLAN carrying a Teredo packet (outermost wins: vxlan)
    srv4, cl4 = "65.54.227.120", "172.17.0.7"
    tcl = teredo_addr(srv4, "198.51.100.78", 40001)
    for k in range(2):
        inner6 = ip6(tcl, V6_SERVERS[8], 58, l4("ipv6", tcl, V6_SERVERS[8],
                                                 ICMPv6EchoRequest(id=3, seq=k + 1, data=rbytes(32))))
        ter = ip4(cl4, "83.170.6.76", 17, udp_seg("ipv4", cl4, "83.170.6.76", 51414, 3544, inner6.raw),
                  inner=inner6, kind="teredo")
        emit([(ter, 0)], "vxlan carrying teredo (nested)", encap=vxlan(5002))

    # Geneve
    g1, g2 = "10.11.0.1", "10.11.0.2"

    def geneve(mode, opt=False):
        sport = eph()

        def f(p, d):
            src, dst = (g1, g2) if d == 0 else (g2, g1)
            opts = struct.pack("!HBB", 0x0102, 0x80, 1) + struct.pack("!I", 0x000A0001) if opt else b""
            if mode == "eth":
                sm, dm = vm_m if d == 0 else vm_m[::-1]
                body = geneve_hdr(7001, 0x6558, inner_eth(p.raw, ETYPE[p.fam], sm, dm), opts)
            else:
                body = geneve_hdr(7002, ETYPE[p.fam], p.raw, opts)
            return ip4(src, dst, 17, udp_seg("ipv4", src, dst, sport, 6081, body), inner=p,
                       kind="geneve", ttl=64)
        return f
    emit(tcp_flow("ipv6", u1, u2, 8443, resp=R.randrange(300, 1400)), "geneve ethernet ipv6 tcp",
         encap=geneve("eth"))
    emit(echo_pair("ipv6", u1, V6_SERVERS[9], n=2), "geneve ethernet ipv6 echo (option)",
         encap=geneve("eth", opt=True))
    emit(tcp_flow("ipv6", u2, V6_SERVERS[10], 443, resp=R.randrange(300, 1400)),
         "geneve 0x86dd ipv6 tcp", encap=geneve("ip"))
    emit(dns_pair("ipv6", u2, V6_DNS[1]), "geneve 0x86dd ipv6 dns (option)", encap=geneve("ip", opt=True))
    emit(tcp_flow("ipv4", "172.18.0.4", "172.18.0.5", 6379, resp=R.randrange(200, 900)),
         "geneve ethernet ipv4 tcp", encap=geneve("eth"))
    emit(echo_pair("ipv4", "172.18.0.4", "172.18.0.6"), "geneve 0x0800 ipv4 echo", encap=geneve("ip"))


def gen_ip_tunnels():
    # GRE over IPv4
    r1, r2 = "198.51.100.1", "203.0.113.1"

    def gre(proto_fn=None, key=None, csum=False, seq=None, a=r1, b=r2, mode="ip"):
        s = [0]

        def f(p, d):
            src, dst = (a, b) if d == 0 else (b, a)
            s[0] += 1
            if mode == "eth":
                payload = inner_eth(p.raw, ETYPE[p.fam], "02:00:00:00:aa:01" if d == 0 else "02:00:00:00:aa:02",
                                    "02:00:00:00:aa:02" if d == 0 else "02:00:00:00:aa:01")
                proto = 0x6558
            else:
                payload, proto = p.raw, ETYPE[p.fam]
            g = gre_hdr(proto, payload, key=key, csum=csum, seq=s[0] if seq else None)
            return ip4(src, dst, 47, g, inner=p, kind="gre", ttl=255 if d else 254)
        return f
    gl, gr = "2a02:8108:1c0:4e10::5", "2a02:8108:1c0:4e20::7"
    emit(tcp_flow("ipv6", gl, V6_SERVERS[0], 443, resp=R.randrange(300, 1400)), "gre ipv6 tcp", encap=gre())
    emit(tcp_flow("ipv6", gr, V6_SERVERS[1], 443, resp=R.randrange(300, 1400)), "gre ipv6 tcp (key)",
         encap=gre(key=0x00001001))
    emit(echo_pair("ipv6", gl, V6_SERVERS[2], n=2), "gre ipv6 echo (checksum)", encap=gre(csum=True))
    emit(dns_pair("ipv6", gr, V6_DNS[0]), "gre ipv6 dns (seq)", encap=gre(seq=True))
    emit(tcp_flow("ipv4", "10.50.0.10", "10.60.0.20", 22, resp=R.randrange(200, 1000)), "gre ipv4 tcp",
         encap=gre())
    emit(echo_pair("ipv4", "10.50.0.10", "10.60.0.21", n=2), "gre ipv4 echo (key)", encap=gre(key=7))
    emit(echo_pair("ipv6", gl, gr, n=2), "gre ethernet (0x6558) ipv6 echo", encap=gre(mode="eth"))
    emit(dns_pair("ipv6", gl, V6_DNS[2]), "gre ethernet (0x6558) ipv6 dns", encap=gre(mode="eth"))
    # GRE carrying Ethernet with ARP: gre tunnel, payload = outer family
    arp = bytes(ARP(op=1, hwsrc="02:00:00:00:aa:01", psrc="10.70.0.1", pdst="10.70.0.2"))
    g = gre_hdr(0x6558, eth_hdr("ff:ff:ff:ff:ff:ff", "02:00:00:00:aa:01", 0x0806) + arp)
    emit([(ip4(r1, r2, 47, g, kind="gre", ttl=254), 0)], "gre ethernet carrying arp")
    # inner IPv6 atomic fragment inside GRE
    a6 = ip6(V6_SERVERS[3], gl, 6, tcp_seg("ipv6", V6_SERVERS[3], gl, 443, eph(), 9, 9, "A"),
             exts=[FRAG(0, 0, R.getrandbits(32))], hlim=55)
    emit([(a6, 1)], "gre ipv6 inner atomic fragment", encap=gre())
    # nested: GRE carrying IPv4 carrying 6in4 (outermost wins: gre)
    def nested(p, d):
        src, dst = ("81.2.69.160", "216.66.80.26") if d == 0 else ("216.66.80.26", "81.2.69.160")
        mid = ip4(src, dst, 41, p.raw, inner=p, kind="6in4", ttl=63)
        return gre()(mid, d)
    emit(echo_pair("ipv6", "2001:470:1f0b:35a::2", V6_SERVERS[4]), "gre carrying 6in4 (nested)",
         encap=nested)
    # GRE over IPv6 (IPv6 next header 47) carrying IPv4
    def gre6(p, d):
        a, b = "2a02:8108:1c0:4e10::5", "2a02:8108:1c0:4e20::7"
        src, dst = (a, b) if d == 0 else (b, a)
        return ip6(src, dst, 47, gre_hdr(0x0800, p.raw), inner=p, kind="gre", hlim=64)
    emit(echo_pair("ipv4", "10.50.0.10", "10.60.0.22"), "gre over ipv6 carrying ipv4", encap=gre6)
    # GRE seen behind MPLS
    emit(echo_pair("ipv6", gr, V6_SERVERS[5]), "gre ipv6 echo behind mpls", encap=gre(),
         link=("mpls", [16021, 24005]))

    # 4in6: DS-Lite (B4 -> AFTR)
    b4, aftr = "2a02:8108:1c0:4e00::b4", "2a02:8108:ffff:3::a"

    def dslite(tel=False):
        def f(p, d):
            src, dst = (b4, aftr) if d == 0 else (aftr, b4)
            return ip6(src, dst, 4, p.raw, exts=[DST(OPT_TUNNEL_ENCAP_LIMIT)] if tel else [],
                       inner=p, kind="4in6", hlim=64)
        return f
    for i in range(3):
        emit(tcp_flow("ipv4", "192.168.0.%d" % (10 + i), V4_SERVERS[i], 443, resp=R.randrange(300, 1400)),
             "4in6 ds-lite tcp", encap=dslite())
    for i in range(3):
        emit(dns_pair("ipv4", "192.168.0.10", V4_DNS[1 + i]), "4in6 ds-lite dns", encap=dslite())
    emit(echo_pair("ipv4", "192.168.0.11", V4_SERVERS[5], n=2), "4in6 with tunnel encap limit destopts",
         encap=dslite(tel=True))
    # SRv6 carrying IPv4 (SRH then next header 4)
    for k in range(2):
        inner = ip4("10.80.0.1", "10.90.0.1", 17, udp_seg("ipv4", "10.80.0.1", "10.90.0.1", eph(), 9000,
                                                         rbytes(R.randrange(60, 200))))
        sids = ["fcbb:bb00:1::e000", "fcbb:bb00:7::d4"]
        p = ip6("fcbb:bb00:100::1", sids[0], 4, inner.raw, exts=[SRH(sids, 1)], inner=inner,
                kind="4in6", hlim=64)
        emit([(p, 0)], "4in6 srv6 (srh then ipv4)")

    # 6in6
    t1, t2 = "2a00:1450:4001:8a0::11", "2a02:8108:ffff:3::b"

    def six6(tel=False):
        def f(p, d):
            src, dst = (t1, t2) if d == 0 else (t2, t1)
            return ip6(src, dst, 41, p.raw, exts=[DST(OPT_TUNNEL_ENCAP_LIMIT)] if tel else [],
                       inner=p, kind="6in6", hlim=64)
        return f
    emit(tcp_flow("ipv6", "2a02:8108:1c0:4e30::8", V6_SERVERS[6], 443, resp=R.randrange(300, 1400)),
         "6in6 tcp", encap=six6())
    emit(echo_pair("ipv6", "2a02:8108:1c0:4e30::8", V6_SERVERS[7], n=2), "6in6 echo (encap limit)",
         encap=six6(tel=True))
    emit(dns_pair("ipv6", "2a02:8108:1c0:4e30::9", V6_DNS[1]), "6in6 dns", encap=six6())
    emit(tcp_flow("ipv6", "2a02:8108:1c0:4e30::9", V6_SERVERS[11], 22, resp=R.randrange(300, 900)),
         "6in6 tcp", encap=six6())
    # SRv6 T.Encaps: outer IPv6 + SRH, then IPv6
    for k in range(3):
        a, b = V6_LAN[k], V6_SERVERS[k + 8]
        inner = ip6(a, b, 6, tcp_seg("ipv6", a, b, eph(), 443, R.getrandbits(32), R.getrandbits(32), "A"))
        sids = ["fcbb:bb00:2::e000", "fcbb:bb00:8::d6"]
        p = ip6("fcbb:bb00:100::1", sids[0], 41, inner.raw, exts=[SRH(sids, 1)], inner=inner,
                kind="6in6", hlim=64)
        emit([(p, 0)], "6in6 srv6 t.encaps (srh then ipv6)")
    # 6in6 whose inner IPv6 carries IPv4 (tunnel 6in6, payload ipv4)
    for k in range(2):
        i4 = ip4("192.0.0.2", V4_SERVERS[k], 1, l4("ipv4", "192.0.0.2", V4_SERVERS[k],
                                                     ICMP(type=8, id=5, seq=k + 1) / Raw(rbytes(32))))
        i6 = ip6(b4, aftr, 4, i4.raw, inner=i4, kind="4in6", hlim=64)
        p = six6()(i6, 0)
        emit([(p, 0)], "6in6 carrying 4in6 (nested)")

    # IPIP
    p1, p2 = "10.0.0.1", "10.0.0.2"

    def ipip(p, d):
        src, dst = (p1, p2) if d == 0 else (p2, p1)
        return ip4(src, dst, 4, p.raw, inner=p, kind="ipip", ttl=64)
    for i in range(2):
        emit(tcp_flow("ipv4", "172.16.5.%d" % (10 + i), V4_SERVERS[3 + i], 443, resp=R.randrange(300, 1400)),
             "ipip tcp", encap=ipip)
    emit(echo_pair("ipv4", "172.16.5.10", V4_SERVERS[7], n=2), "ipip echo", encap=ipip)
    emit(udp_misc("ipv4", "172.16.5.12", V4_SERVERS[8], 9987, [R.randrange(60, 200) for _ in range(3)]),
         "ipip udp", encap=ipip)
    emit(dns_pair("ipv4", "172.16.5.11", "8.8.8.8"), "ipip dns", encap=ipip)


def gen_icmp_quotes():
    """ICMP errors quoting tunnel packets: the quote is not a tunnel."""
    # ICMPv6 destination unreachable quoting IPv6 next header 41 (+ inner IPv6 header)
    for k in range(2):
        t1, t2 = "2a00:1450:4001:8a0::11", "2a02:8108:ffff:3::b"
        q_in = ipv6_header(V6_LAN[k], V6_SERVERS[k], 6, 20, hlim=63) + rbytes(8)
        quote = ipv6_header(t1, t2, 41, len(q_in), hlim=64) + q_in
        rtr = "2a02:8108:ffff:3::1"
        p = ip6(rtr, t1, 58, l4("ipv6", rtr, t1, ICMPv6DestUnreach(code=3) / Raw(quote)), hlim=62)
        emit([(p, 0)], "icmpv6 dest unreachable quoting 6in6 (not a tunnel)")
    # ICMPv6 packet too big quoting IPv6 next header 4 (DS-Lite)
    for k in range(2):
        b4, aftr = "2a02:8108:1c0:4e00::b4", "2a02:8108:ffff:3::a"
        seg = tcp_seg("ipv4", "192.168.0.10", V4_SERVERS[k], eph(), 443, R.getrandbits(32),
                      R.getrandbits(32), "A", rbytes(1400))
        q_in = ipv4_header("192.168.0.10", V4_SERVERS[k], 6, len(seg), ttl=63, ident=0) + seg
        quote = (ipv6_header(b4, aftr, 4, len(q_in), hlim=64) + q_in)[:R.randrange(160, 460)]
        rtr = "2a02:8108:1c0:4e00::1"
        p = ip6(rtr, b4, 58, l4("ipv6", rtr, b4, ICMPv6PacketTooBig(mtu=1452) / Raw(quote)), hlim=64)
        emit([(p, 1)], "icmpv6 packet too big quoting 4in6 (not a tunnel)")
    # ICMPv6 parameter problem (unrecognized next header) quoting next header 200
    a = V6_LAN[4]
    quote = ipv6_header(a, V6_SERVERS[3], 200, 16, hlim=64) + rbytes(16)
    p = ip6(V6_SERVERS[3], a, 58, l4("ipv6", V6_SERVERS[3], a,
                                      ICMPv6ParamProblem(code=1, ptr=6) / Raw(quote)), hlim=55)
    emit([(p, 1)], "icmpv6 parameter problem quoting next header 200 (not walked)")
    # ICMPv4 destination unreachable (frag needed) quoting IPv4 protocol 41 with its IPv6 header
    for k in range(2):
        c4, s4 = "81.2.69.160", "216.66.80.26"
        q6 = ipv6_header("2001:470:1f0b:35a::2", V6_SERVERS[k], 6, 1400, hlim=64) + rbytes(8)
        quote = ipv4_header(c4, s4, 41, 1440, ttl=63, ident=0) + q6
        rtr = "81.2.69.1"
        p = ip4(rtr, c4, 1, l4("ipv4", rtr, c4, ICMP(type=3, code=4, nexthopmtu=1400) / Raw(quote)), ttl=254)
        emit([(p, 1)], "icmp frag needed quoting 6in4 (not a tunnel)")
    # ICMPv4 time exceeded quoting IPv4 protocol 4 with its inner IPv4 header
    q4 = ipv4_header("172.16.5.10", V4_SERVERS[3], 6, 40, ttl=64) + rbytes(8)
    quote = ipv4_header("10.0.0.1", "10.0.0.2", 4, 60, ttl=1) + q4
    p = ip4("10.0.0.254", "10.0.0.1", 1, l4("ipv4", "10.0.0.254", "10.0.0.1",
                                            ICMP(type=11, code=0) / Raw(quote)), ttl=255)
    emit([(p, 1)], "icmp time exceeded quoting ipip (not a tunnel)")


# ---------------------------------------------------------------------------
# Assembly

def build_all():
    gen_ipv4_native()
    gen_ipv6_native()
    gen_address_classes()
    ext_frames()
    gen_truncated_and_malformed()
    gen_nonip()
    gen_6in4_family()
    gen_teredo()
    gen_udp_tunnels()
    gen_ip_tunnels()
    gen_icmp_quotes()
    # interleave the groups as a capture would see them: a few flows at a time
    groups = list(FRAMES)
    R.shuffle(groups)
    active, out = [], []
    gi = 0
    while gi < len(groups) or active:
        while len(active) < 6 and gi < len(groups):
            active.append(list(groups[gi]))
            gi += 1
        k = R.randrange(len(active))
        out.append(active[k].pop(0))
        if not active[k]:
            active.pop(k)
    ts = START_US
    recs = []
    for i, (data, caplen, t) in enumerate(out):
        if i:
            ts += R.randrange(1000, 5000)
        recs.append((ts, data, caplen, t))
    return recs


# ---------------------------------------------------------------------------
# Writers

def write_pcap(recs):
    b = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1))
    for ts, data, caplen, _ in recs:
        b += struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, caplen, len(data))
        b += data[:caplen]
    return bytes(b)


def _block(btype, body):
    body += b"\0" * ((-len(body)) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _opt(code, val):
    return struct.pack("<HH", code, len(val)) + val + b"\0" * ((-len(val)) % 4)


def write_pcapng(recs):
    shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + \
        _opt(4, b"ipv6flow samples/generate.py") + _opt(0, b"")
    idb = struct.pack("<HHI", 1, 0, SNAPLEN) + _opt(2, b"eth0") + _opt(9, b"\x06") + _opt(0, b"")
    out = bytearray(_block(0x0A0D0D0A, shb) + _block(1, idb))
    for ts, data, caplen, _ in recs:
        body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, caplen, len(data)) + data[:caplen]
        out += _block(6, body)
    return bytes(out)


def write_gzip(raw):
    bio = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=bio, mtime=0, compresslevel=9) as g:
        g.write(raw)
    return bio.getvalue()


# ---------------------------------------------------------------------------
# Truth

def pb():
    return {"packets": 0, "bytes": 0}


def aggregate(recs):
    carrier = {k: pb() for k in ("ipv4", "ipv6", "non_ip")}
    payload = {k: pb() for k in ("ipv4", "ipv6", "non_ip")}
    v6 = {k: pb() for k in ("native", "tunnelled")}
    tunnels = {k: pb() for k in TUNNEL_KINDS}
    by_type = {k: 0 for k in EXT_TYPES}
    rtypes, chain = Counter(), Counter()
    anom = {k: 0 for k in ANOMALIES}
    transport = {"ipv4": {"tcp": 0, "udp": 0, "icmp": 0, "other": 0},
                 "ipv6": {"tcp": 0, "udp": 0, "icmpv6": 0, "no_next_header": 0, "other": 0}}
    addrs = {k: 0 for k in ADDR_CLASSES}
    decode = {"malformed": 0, "truncated": 0, "unsupported_linktype": 0}
    totals = pb()
    frames = []
    any_ext = 0
    for ts, data, caplen, t in recs:
        n = len(data)

        def inc(d, k):
            d[k]["packets"] += 1
            d[k]["bytes"] += n
        totals["packets"] += 1
        totals["bytes"] += n
        inc(carrier, t["carrier"])
        inc(payload, t["payload"])
        if t["payload"] == "ipv6":
            inc(v6, "native" if t["carrier"] == "ipv6" else "tunnelled")
            assert t["carrier"] in ("ipv4", "ipv6")
        inc(tunnels, t["tunnel"])
        for e in t["ext"]:
            by_type[e] += 1
        if t["ext"]:
            any_ext += 1
        for r in t["routing_types"]:
            rtypes[str(r)] += 1
        if t["chain_length"] is not None:
            chain[str(t["chain_length"])] += 1
        for a in t["anomalies"]:
            anom[a] += 1
        if t["payload"] != "non_ip":
            transport[t["payload"]][t["transport"]] += 1
        else:
            assert t["transport"] is None
        if t["payload"] == "ipv6":
            assert t["addresses"] and len(t["addresses"]) == 2
            for c in t["addresses"]:
                addrs[c] += 1
        else:
            assert t["addresses"] is None
        for dflag in t["decode"]:
            decode[dflag] += 1
        assert (caplen < n) == ("truncated" in t["decode"] or "truncated_chain" in t["anomalies"]), t
        fr = {"carrier": t["carrier"], "payload": t["payload"], "tunnel": t["tunnel"],
              "ext": t["ext"], "anomalies": t["anomalies"], "transport": t["transport"],
              "bytes": n}
        # optional keys, present only when they differ from their default
        # (caplen: bytes; chain_length, addresses: null; routing_types, decode: [])
        if caplen != n:
            fr["caplen"] = caplen
        if t["chain_length"] is not None:
            fr["chain_length"] = t["chain_length"]
        if t["addresses"] is not None:
            fr["addresses"] = t["addresses"]
        if t["routing_types"]:
            fr["routing_types"] = t["routing_types"]
        if t["decode"]:
            fr["decode"] = t["decode"]
        fr["desc"] = t["desc"]
        frames.append(fr)

    def share(d):
        pk = d["ipv4"]["packets"] + d["ipv6"]["packets"]
        by = d["ipv4"]["bytes"] + d["ipv6"]["bytes"]
        return (d["ipv6"]["packets"] / pk if pk else None, d["ipv6"]["bytes"] / by if by else None)
    sp, sb = share(payload)
    cp, cb = share(carrier)
    for part in (carrier, payload, tunnels):
        assert sum(v["packets"] for v in part.values()) == totals["packets"]
        assert sum(v["bytes"] for v in part.values()) == totals["bytes"]
    return {
        "schema": "ipv6flow/truth/1",
        "generator": "samples/generate.py",
        "capture": "mixed.pcap (same frames in mixed.pcapng and mixed.pcap.gz)",
        "options": {"6rd_prefix": [SIXRD_PREFIX]},
        "time": {"first": recs[0][0] / 1e6, "last": recs[-1][0] / 1e6},
        "totals": totals,
        "carrier": carrier,
        "payload": payload,
        "ipv6": v6,
        "share": {"ipv6_packets": sp, "ipv6_bytes": sb,
                  "carrier_ipv6_packets": cp, "carrier_ipv6_bytes": cb},
        "tunnels": tunnels,
        "extension_headers": {
            "frames_with_any": any_ext,
            "by_type": by_type,
            "routing_types": dict(sorted(rtypes.items(), key=lambda kv: int(kv[0]))),
            "chain_length": dict(sorted(chain.items(), key=lambda kv: int(kv[0]))),
            "anomalies": anom,
        },
        "transport": transport,
        "addresses": {"ipv6": addrs},
        "decode": decode,
        "frames": frames,
    }


def dump_truth(truth):
    """JSON with one frame per line, so the file stays readable and diffable."""
    frames = truth["frames"]
    head = dict(truth)
    del head["frames"]
    s = json.dumps(head, indent=2)
    assert s.endswith("\n}")
    lines = [json.dumps(f, separators=(",", ":")) for f in frames]
    return s[:-2] + ',\n  "frames": [\n    ' + ",\n    ".join(lines) + "\n  ]\n}\n"


# ---------------------------------------------------------------------------
# Self-check: an independent, minimal reading of mixed.pcap (not the truth source)

def self_check(pcap_path, truth):
    import warnings
    warnings.filterwarnings("ignore", module="dpkt")
    import dpkt
    n_trunc = 0
    carrier = Counter()
    sixin4 = Counter()
    with open(pcap_path, "rb") as fh:
        rd = dpkt.pcap.Reader(fh)
        recs = []
        for ts, buf in rd:
            recs.append((ts, buf))
    # dpkt's Reader hides orig_len; read the record headers directly
    raw = open(pcap_path, "rb").read()
    off, lens = 24, []
    while off < len(raw):
        _, _, cl, ol = struct.unpack_from("<IIII", raw, off)
        lens.append((cl, ol))
        off += 16 + cl
    assert len(lens) == truth["totals"]["packets"] == len(recs)
    assert sum(ol for _, ol in lens) == truth["totals"]["bytes"]
    for (cl, ol), f in zip(lens, truth["frames"]):
        if cl < ol:
            n_trunc += 1
        assert ol == f["bytes"] and cl == f.get("caplen", f["bytes"])
    for (ts, buf), f in zip(recs, truth["frames"]):
        # outer IP family by walking the link layer by hand
        et, i = struct.unpack_from("!H", buf, 12)[0] if len(buf) >= 14 else 0, 14
        while et in (0x8100, 0x88A8) and len(buf) >= i + 4:
            et, i = struct.unpack_from("!H", buf, i + 2)[0], i + 4
        fam = None
        if et == 0x8847:
            while len(buf) >= i + 4:
                s = buf[i + 2] & 1
                i += 4
                if s:
                    break
            if len(buf) > i:
                fam = {4: "ipv4", 6: "ipv6"}.get(buf[i] >> 4)
        elif et == 0x8864 and len(buf) >= i + 8:
            fam = {0x0021: "ipv4", 0x0057: "ipv6"}.get(struct.unpack_from("!H", buf, i + 6)[0])
            i += 8
        elif et == 0x0800:
            fam = "ipv4"
        elif et == 0x86DD:
            fam = "ipv6"
        if fam == "ipv4":
            ok = len(buf) - i >= 20 and buf[i] >> 4 == 4 and buf[i] & 15 >= 5
            if ok:
                ip = dpkt.ip.IP(buf[i:])
                ok = ip.len >= 4 * ip.hl
            fam = fam if ok else "non_ip"
            if ok:
                hl = 4 * (buf[i] & 15)
                proto = buf[i + 9]
                first = not (struct.unpack_from("!H", buf, i + 6)[0] & 0x1FFF)
                data = bytes(buf[i + hl:i + ip.len])
                if proto == 41 and first and len(data) >= 40 and data[0] >> 4 == 6:
                    sixin4[sixin4_kind(str(ipaddress.IPv6Address(data[8:24])),
                                       str(ipaddress.IPv6Address(data[24:40])))] += 1
                if proto == 17 and first and len(data) >= 8:
                    sp, dp = struct.unpack_from("!HH", data)
                    u = data[8:]
                    is_t = False
                    if teredo_like(u):
                        j = 0
                        if u[:2] == b"\x00\x01":
                            j += 4 + u[2] + u[3] + 9
                        if u[j:j + 2] == b"\x00\x00":
                            j += 8
                        t_net = ipaddress.IPv6Network("2001::/32")
                        is_t = 3544 in (sp, dp) or any(
                            ipaddress.IPv6Address(u[j + o:j + o + 16]) in t_net for o in (8, 24))
                    assert is_t == (f["tunnel"] == "teredo"), f
        elif fam == "ipv6":
            fam = fam if (len(buf) - i >= 40 and buf[i] >> 4 == 6) else "non_ip"
        else:
            fam = "non_ip"
        carrier[fam] += 1
        assert fam == f["carrier"], (fam, f)
    for k in ("ipv4", "ipv6", "non_ip"):
        assert carrier[k] == truth["carrier"][k]["packets"], (k, carrier[k])
    # protocol-41 frames at the top level (not nested in GRE) per sub-kind
    for k in ("6to4", "isatap", "6rd"):
        assert sixin4[k] == truth["tunnels"][k]["packets"], (k, sixin4[k])
    # 6in4 also has the IPv4 fragment pair's first frame; the GRE-nested one is not top level
    assert sixin4["6in4"] == truth["tunnels"]["6in4"]["packets"], sixin4
    return n_trunc


def self_check_pcapng(ng_path, recs):
    from scapy.utils import PcapNgReader
    n = 0
    with PcapNgReader(ng_path) as rd:
        for pkt, (ts, data, caplen, _) in zip(rd, recs):
            assert bytes(pkt) == data[:caplen]
            assert pkt.wirelen == len(data)
            assert int(pkt.time * 1_000_000 + 0.5) == ts
            n += 1
    assert n == len(recs)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Write the bundled samples and their truth.")
    ap.add_argument("--out", default=HERE, help="output folder (default: beside this script)")
    out = ap.parse_args(argv).out
    for a, c in [("::", "unspecified"), ("::1", "loopback"), ("::ffff:192.0.2.1", "ipv4_mapped"),
                 ("64:ff9b::808:808", "nat64_wkp"), ("64:ff9b:1:a::1", "nat64_local"),
                 ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"),
                 ("2001:db8::1", "documentation"), ("3fff:fff:ffff::1", "documentation"),
                 ("3fff:1000::1", "global_unicast"), ("2002:c000:201::1", "6to4"),
                 ("fe80::1", "link_local"), ("febf::1", "link_local"), ("fec0::1", "other"),
                 ("fd00::1", "unique_local"), ("ff02::1", "multicast"),
                 ("2001:1::1", "global_unicast"), ("2001:db9::1", "global_unicast"),
                 ("2001:470::1", "global_unicast"), ("4000::1", "other"), ("100::1", "other"),
                 ("::c000:201", "other"), ("64:ff9b::1:0:0", "other")]:
        assert addr_class(a) == c, (a, addr_class(a), c)
    recs = build_all()
    pcap = write_pcap(recs)
    pcapng = write_pcapng(recs)
    gz = write_gzip(pcap)
    truth = aggregate(recs)
    outputs = {"mixed.pcap": pcap, "mixed.pcapng": pcapng, "mixed.pcap.gz": gz,
               "mixed.truth.json": dump_truth(truth).encode()}
    for name, data in outputs.items():
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(data)
    n_trunc = self_check(os.path.join(out, "mixed.pcap"), truth)
    self_check_pcapng(os.path.join(out, "mixed.pcapng"), recs)
    with gzip.open(os.path.join(out, "mixed.pcap.gz"), "rb") as g:
        assert g.read() == pcap
    for name, data in outputs.items():
        print("%-18s %8d bytes  sha256 %s" % (name, len(data), hashlib.sha256(data).hexdigest()))
    print("frames %d, bytes %d, snaplen-cut records %d" % (truth["totals"]["packets"],
                                                          truth["totals"]["bytes"], n_trunc))
    print("tunnels:", {k: v["packets"] for k, v in truth["tunnels"].items()})


if __name__ == "__main__":
    main()
