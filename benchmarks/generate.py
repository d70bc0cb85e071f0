#!/usr/bin/env python3
"""Write a large, realistic, deterministic pcap for benchmarking ipv6flow.

The capture looks like an ISP link: about half native IPv4, about a third
native IPv6 (TCP, UDP, ICMPv6; extension headers -- hop-by-hop, fragment,
destination options, routing type 4, ESP -- in a few percent of it),
tunnels (6in4, 6to4, ISATAP, Teredo, GRE, GTP-U, VXLAN, SRv6 6in6, DS-Lite
4in6), DNS over both families (with DNS64 answers and ipv4only.arpa), NAT64
traffic to 64:ff9b::/96, 802.1Q and QinQ tags on a share of the frames, and
a little non-IP (ARP, LLDP). Frames are a mix of small (ACKs, DNS) and
full-size (1500-byte IP) ones; the mean frame is about 650 bytes.

How it is fast: a few hundred template frames are built once with scapy.
Each chunk of records is then made with numpy: template ids drawn with a
seeded RNG, the templates gathered into a padded 2-D array, the varying
fields patched column-wise, and the rows compacted into one buffer written
in one call. Checksums are not valid. Frames belong to flows (heavy-tailed
long-lived flows plus short mice): host parts of addresses, ephemeral ports,
VLAN tagging and ID, GTP TEID and the TCP sequence base are hashes of the
flow; IPv4 ID, DNS ID and fragment ID are drawn per frame.

Deterministic: the same arguments give a byte-identical file. Chunks are
always drawn whole and cut afterwards, so a smaller file is a prefix of a
larger one with the same seed (bench-200k is the first 200k frames of
bench-2M).

A sidecar JSON (``<out>.json``) records the mix: frames and bytes per
template class and the counts expected by construction (carrier, payload,
tunnel), for sanity checks against ``ipv6flow analyze``.

    python benchmarks/generate.py                       # 2M frames, ~1.3 GB
    python benchmarks/generate.py --frames 200000       # benchmarks/data/bench-200k.pcap
    python benchmarks/generate.py --size-gb 2           # until the file reaches 2 GB (10**9)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
GENERATOR_VERSION = 2

CHUNK = 16384                 # records drawn per chunk (always whole)
T0_US = 1_709_294_400 * 1_000_000   # 2024-03-01 12:00:00 UTC
MEAN_GAP_US = 50              # gaps uniform in [1, 99] us: ~20k frames/s of capture time
EPH = 40000                   # placeholder for an ephemeral port (patched)

# Flows: each frame belongs to a flow of its class. Most frames (90%) go to
# one of FLOWS long-lived flows with a heavy-tailed popularity (flow =
# FLOWS * u**3: the busiest flow of a class gets 2.5% of its frames, the
# busiest 1% of the flows a fifth); the rest are mice, short flows whose ids
# advance along the capture (a new one every MICE_SPAN frames), so a longer
# capture has more flows. HOST_FLOWS consecutive flows share their host
# pair. Per-flow fields (host parts, ports, VLAN, GTP TEID, the VLAN tagging
# itself, the TCP sequence base) are hashes of the flow, so a flow keeps its
# 5-tuple as a real one does.
FLOWS = 1 << 13
MICE_SHARE = 0.05
MICE_SPAN = 32
MICE_BASE = 1 << 40
HOST_FLOWS = 8
TAG_CUM = (0.75, 0.97)        # untagged 75%, 802.1Q 22%, QinQ 3% (of flows)

# Patch kinds and their width in bytes.
K_NONE, K_HOST, K_PORT, K_U16, K_U32, K_VLAN, K_TEID, K_SEQ = range(8)
KIND_WIDTH = {K_HOST: 2, K_PORT: 2, K_U16: 2, K_U32: 4, K_VLAN: 2, K_TEID: 4, K_SEQ: 4}
PER_PACKET = (K_U16, K_U32)   # random per frame; the others come from the flow

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix64(z):
    """splitmix64 finalizer over a uint64 array (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _kind_value(kind, v, gidx=None):
    if kind == K_HOST:
        return np.uint64(1) + v % np.uint64(65534)        # host part, never 0 or ffff
    if kind == K_PORT:
        return np.uint64(32768) + v % np.uint64(28232)    # Linux ephemeral range: no tunnel port
    if kind == K_U16:
        return v & np.uint64(0xFFFF)
    if kind in (K_U32, K_TEID):
        return v & np.uint64(0xFFFFFFFF)
    if kind == K_SEQ:                                     # grows along the capture
        return (v + gidx.astype(np.uint64) * np.uint64(1448)) & np.uint64(0xFFFFFFFF)
    if kind == K_VLAN:
        return np.uint64(100) + v % np.uint64(48)          # PCP 0, a few dozen VLANs
    raise ValueError(kind)


def default_out(frames: int | None, size_gb: float | None) -> str:
    if size_gb is not None:
        return os.path.join(DATA, f"bench-{size_gb:g}GB.pcap")
    return os.path.join(DATA, f"bench-{frames_label(frames)}.pcap")


def frames_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# --------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------

TAG_NAMES = ("untagged", "dot1q", "qinq")


class Template:
    """One frame: class ``cls`` at one size (``base``) with one VLAN tagging."""
    __slots__ = ("cls", "carrier", "payload", "tunnel", "ext", "tag", "data",
                 "slots", "base", "base_weight")

    def __init__(self, cls, carrier, payload, tunnel, ext, tag, data, slots, base, base_weight):
        self.cls, self.carrier, self.payload, self.tunnel = cls, carrier, payload, tunnel
        self.ext, self.tag, self.data, self.slots = ext, tag, data, slots
        self.base, self.base_weight = base, base_weight


def build_templates(seed: int):
    """Every template frame, its patch slots and its probability weight."""
    warnings.filterwarnings("ignore")
    import logging
    logging.getLogger("scapy").setLevel(logging.ERROR)
    from scapy.all import (ARP, DNS, DNSQR, DNSRR, GRE, ICMP, IP, TCP, UDP, Ether, Raw)
    from scapy.contrib.gtp import GTP_U_Header
    from scapy.layers.inet6 import (ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6MLDMultAddrRec,
                                    ICMPv6MLReport2, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA,
                                    ICMPv6NDOptPREF64, ICMPv6NDOptPrefixInfo,
                                    ICMPv6NDOptSrcLLAddr, ICMPv6PacketTooBig, IPv6,
                                    IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                    IPv6ExtHdrSegmentRouting, PadN, RouterAlert)
    from scapy.layers.vxlan import VXLAN
    from scapy.packet import NoPayload

    prng = np.random.default_rng([seed, 0x7E47])   # payload bytes of the templates

    def rnd(n, first=None):
        b = bytearray(prng.integers(0, 256, n, dtype=np.uint8).tobytes())
        if first is not None and n:
            b[0] = first
        return bytes(b)

    def tls(n):
        if n < 5:
            return rnd(n)
        return b"\x17\x03\x03" + struct.pack(">H", max(0, n - 5)) + rnd(n - 5)

    def quic(n):
        # short header: 0b010xxxxx (never nibble 6: a datagram that merely starts
        # with nibble 6 is not Teredo, but keep the benchmark free of near-misses)
        return rnd(n, first=0x40 | int(prng.integers(0, 32)))

    R_MAC = "00:1b:21:3a:4f:01"     # ISP router
    C_MAC = "3c:fd:fe:12:34:56"     # CPE / subscriber side
    keep_addrs = {"ff02::1", "ff02::2", "ff02::16", "ff02::1:2", "fe80::1",
                  "198.51.100.53", "2001:4860:4860::8888", "2a01:cb00:ff::53",
                  "192.88.99.1", "10.255.0.1", "10.255.0.2"}

    def patch_slots(pkt):
        """Walk the layers: (offset, kind) for each varying field."""
        slots = []
        off = 0
        cur = pkt
        while cur is not None and not isinstance(cur, NoPayload):
            hl = len(bytes(cur)) - len(bytes(cur.payload))
            name = type(cur).__name__
            if name == "IP":
                slots.append((off + 4, K_U16))
                if cur.src not in keep_addrs:
                    slots.append((off + 14, K_HOST))
                if cur.dst not in keep_addrs:
                    slots.append((off + 18, K_HOST))
            elif name == "IPv6":
                if cur.src not in keep_addrs:
                    slots.append((off + 22, K_HOST))
                if cur.dst not in keep_addrs:
                    slots.append((off + 38, K_HOST))
            elif name in ("TCP", "UDP"):
                if cur.sport == EPH:
                    slots.append((off, K_PORT))
                if cur.dport == EPH:
                    slots.append((off + 2, K_PORT))
                if name == "TCP":
                    slots.append((off + 4, K_SEQ))
                    if cur.ack:
                        slots.append((off + 8, K_SEQ))
            elif name == "DNS":
                slots.append((off, K_U16))
            elif name == "IPv6ExtHdrFragment":
                slots.append((off + 4, K_U32))
            elif name == "GTP_U_Header":
                slots.append((off + 4, K_TEID))
            elif name == "ARP":
                slots.append((off + 16, K_HOST))
                slots.append((off + 26, K_HOST))
            elif name in ("Raw", "Padding"):
                break
            off += hl
            cur = cur.payload
        return slots

    out: list[Template] = []

    # Size mixes: ("pay", n) = n payload bytes; ("ip", n) = outermost IP total n.
    TCP_MIX = [(("pay", 0), 0.41), (("ip", 1500), 0.47), (("pay", 180), 0.06),
               (("pay", 700), 0.06)]
    QUIC_MIX = [(("pay", 35), 0.40), (("ip", 1280), 0.15), (("ip", 1350), 0.35),
                (("pay", 120), 0.10)]
    TUN_MIX = [(("pay", 0), 0.47), (("ip", 1500), 0.43), (("pay", 400), 0.10)]
    ONE = [(("pay", 0), 1.0)]

    nbase = [0]

    def add(cls, carrier, payload, tunnel, weight, build, mix=ONE, ext=False,
            tags=TAG_NAMES, pad_fn=None):
        """Templates of one class: a size mix (drawn per frame) times the VLAN
        taggings (drawn per flow)."""
        overhead = None
        for (kind, n), w_size in mix:
            if kind == "ip":
                if overhead is None:
                    overhead = len(bytes(build(b""))) - 14
                paylen = n - overhead
                assert paylen >= 0, (cls, n, overhead)
            else:
                paylen = n
            pay = (pad_fn or rnd)(paylen)
            pkt = build(pay)
            data = bytes(pkt)
            slots = patch_slots(pkt)
            if len(data) < 60:
                data += b"\x00" * (60 - len(data))
            base = nbase[0]
            nbase[0] += 1
            for tag in tags:
                d, sl = data, list(slots)
                if tag == "dot1q":
                    d = d[:12] + b"\x81\x00\x00\x64" + d[12:]
                    sl = [(o + 4 if o >= 12 else o, k) for o, k in sl] + [(14, K_VLAN)]
                elif tag == "qinq":
                    d = d[:12] + b"\x88\xa8\x00\x0a\x81\x00\x00\x64" + d[12:]
                    sl = [(o + 8 if o >= 12 else o, k) for o, k in sl] + [(18, K_VLAN)]
                out.append(Template(cls, carrier, payload, tunnel, ext, tag, d, sl,
                                    base, weight * w_size))

    E = lambda: Ether(src=R_MAC, dst=C_MAC)   # noqa: E731
    EU = lambda: Ether(src=C_MAC, dst=R_MAC)  # noqa: E731

    # ---------------- native IPv4 (about half) ----------------
    v4c, v4s = "100.64.12.34", "142.250.74.110"      # CGNAT subscriber, a CDN
    add("ipv4/tcp-https", "ipv4", "ipv4", "none", 27.0,
        lambda p: E() / IP(src=v4s, dst=v4c, flags="DF") / TCP(sport=443, dport=EPH, flags="A", seq=1, ack=1) / p,
        TCP_MIX, pad_fn=tls)
    add("ipv4/tcp-https-up", "ipv4", "ipv4", "none", 5.0,
        lambda p: EU() / IP(src=v4c, dst="157.240.20.35", flags="DF") / TCP(sport=EPH, dport=443, flags="PA", seq=1, ack=1) / p,
        [(("pay", 0), 0.7), (("pay", 517), 0.3)], pad_fn=tls)
    add("ipv4/tcp-http", "ipv4", "ipv4", "none", 2.5,
        lambda p: E() / IP(src="93.184.216.34", dst=v4c) / TCP(sport=80, dport=EPH, flags="A", seq=1, ack=1) / p,
        TCP_MIX)
    add("ipv4/tcp-other", "ipv4", "ipv4", "none", 1.0,
        lambda p: EU() / IP(src=v4c, dst="185.199.108.153") / TCP(sport=EPH, dport=22, flags="PA", seq=1, ack=1) / p,
        [(("pay", 36), 0.6), (("pay", 0), 0.4)])
    add("ipv4/tcp-syn", "ipv4", "ipv4", "none", 0.6,
        lambda p: EU() / IP(src=v4c, dst=v4s) / TCP(sport=EPH, dport=443, flags="S", seq=1,
                                                     options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]) / p)
    add("ipv4/udp-quic", "ipv4", "ipv4", "none", 6.0,
        lambda p: E() / IP(src=v4s, dst=v4c) / UDP(sport=443, dport=EPH) / p, QUIC_MIX, pad_fn=quic)
    add("ipv4/udp-ntp", "ipv4", "ipv4", "none", 0.3,
        lambda p: EU() / IP(src=v4c, dst="162.159.200.1") / UDP(sport=EPH, dport=123) / p,
        [(("pay", 48), 1.0)])
    add("ipv4/icmp-echo", "ipv4", "ipv4", "none", 0.4,
        lambda p: EU() / IP(src=v4c, dst="1.1.1.1") / ICMP(type=8, id=7, seq=1) / p,
        [(("pay", 56), 1.0)])
    add("ipv4/icmp-unreach", "ipv4", "ipv4", "none", 0.1,
        lambda p: E() / IP(src="10.255.0.1", dst=v4c) / ICMP(type=3, code=3) /
        IP(src=v4c, dst="10.255.0.1") / UDP(sport=EPH, dport=33434) / p, [(("pay", 32), 1.0)])
    add("ipv4/fragment-first", "ipv4", "ipv4", "none", 0.15,
        lambda p: E() / IP(src="203.0.113.7", dst=v4c, flags="MF", frag=0, id=4242) / UDP(sport=4500, dport=EPH) / p,
        [(("ip", 1500), 1.0)])
    add("ipv4/fragment-next", "ipv4", "ipv4", "none", 0.15,
        lambda p: E() / IP(src="203.0.113.7", dst=v4c, frag=185, proto=17, id=4242) / p,
        [(("pay", 520), 1.0)])
    add("ipv4/esp", "ipv4", "ipv4", "none", 0.3,
        lambda p: EU() / IP(src=v4c, dst="198.18.7.1", proto=50) / p,
        [(("pay", 120), 0.5), (("ip", 1440), 0.5)])

    # DNS over IPv4 (resolver 198.51.100.53 is kept fixed: one resolver)
    res4 = "198.51.100.53"
    dnsq = [("www.example-shop.net", "A"), ("www.example-shop.net", "AAAA"),
            ("cdn.video-host.example", "AAAA"), ("ipv4only.arpa", "AAAA"),
            ("mail.example.org", "A")]
    for name, qt in dnsq:
        add(f"ipv4/dns-query", "ipv4", "ipv4", "none", 0.4,
            lambda p, name=name, qt=qt: EU() / IP(src=v4c, dst=res4) / UDP(sport=EPH, dport=53) /
            DNS(id=1, rd=1, qd=DNSQR(qname=name, qtype=qt)))
    answers = [
        ("www.example-shop.net", [DNSRR(rrname="www.example-shop.net", type="A", ttl=300, rdata="203.0.113.10")]),
        ("www.example-shop.net", [DNSRR(rrname="www.example-shop.net", type="AAAA", ttl=300, rdata="64:ff9b::cb00:710a")]),
        ("cdn.video-host.example", [DNSRR(rrname="cdn.video-host.example", type="AAAA", ttl=60, rdata="2a00:1450:4007:80e::200e"),
                                    DNSRR(rrname="cdn.video-host.example", type="AAAA", ttl=60, rdata="2a00:1450:4007:80e::2003")]),
        ("ipv4only.arpa", [DNSRR(rrname="ipv4only.arpa", type="AAAA", ttl=86400, rdata="64:ff9b::c000:aa"),
                           DNSRR(rrname="ipv4only.arpa", type="AAAA", ttl=86400, rdata="64:ff9b::c000:ab")]),
        ("mail.example.org", [DNSRR(rrname="mail.example.org", type="A", ttl=3600, rdata="192.0.2.25")]),
    ]
    for name, an in answers:
        qt = an[0].type
        add("ipv4/dns-response", "ipv4", "ipv4", "none", 0.4,
            lambda p, name=name, an=an, qt=qt: E() / IP(src=res4, dst=v4c) / UDP(sport=53, dport=EPH) /
            DNS(id=1, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype=qt), an=an))

    # ---------------- native IPv6 (about a third) ----------------
    v6c, v6s = "2a01:cb00:1234:5600::1", "2a00:1450:4007:80e::200e"
    v6f = "2a03:2880:f12c:183:face:b00c::25de"
    add("ipv6/tcp-https", "ipv6", "ipv6", "none", 19.0,
        lambda p: E() / IPv6(src=v6s, dst=v6c) / TCP(sport=443, dport=EPH, flags="A", seq=1, ack=1) / p,
        TCP_MIX, pad_fn=tls)
    add("ipv6/tcp-https-up", "ipv6", "ipv6", "none", 3.0,
        lambda p: EU() / IPv6(src=v6c, dst=v6f) / TCP(sport=EPH, dport=443, flags="PA", seq=1, ack=1) / p,
        [(("pay", 0), 0.7), (("pay", 517), 0.3)], pad_fn=tls)
    add("ipv6/tcp-syn", "ipv6", "ipv6", "none", 0.4,
        lambda p: EU() / IPv6(src=v6c, dst=v6s) / TCP(sport=EPH, dport=443, flags="S", seq=1,
                                                       options=[("MSS", 1440), ("SAckOK", b""), ("WScale", 7)]) / p)
    add("ipv6/udp-quic", "ipv6", "ipv6", "none", 6.0,
        lambda p: E() / IPv6(src=v6s, dst=v6c) / UDP(sport=443, dport=EPH) / p, QUIC_MIX, pad_fn=quic)
    add("ipv6/nat64-tcp", "ipv6", "ipv6", "none", 1.2,
        lambda p: EU() / IPv6(src=v6c, dst="64:ff9b::cb00:710a") / TCP(sport=EPH, dport=443, flags="A", seq=1, ack=1) / p,
        TCP_MIX, pad_fn=tls)
    add("ipv6/icmpv6-echo", "ipv6", "ipv6", "none", 0.3,
        lambda p: EU() / IPv6(src=v6c, dst="2001:4860:4860::8844") / ICMPv6EchoRequest(id=7, seq=1, data=p),
        [(("pay", 56), 1.0)])
    add("ipv6/icmpv6-echo-reply", "ipv6", "ipv6", "none", 0.3,
        lambda p: E() / IPv6(src="2001:4860:4860::8844", dst=v6c) / ICMPv6EchoReply(id=7, seq=1, data=p),
        [(("pay", 56), 1.0)])
    add("ipv6/icmpv6-ns", "ipv6", "ipv6", "none", 0.35,
        lambda p: EU() / IPv6(src="fe80::3efd:feff:fe12:3456", dst="ff02::1:ff00:1", hlim=255) /
        ICMPv6ND_NS(tgt="fe80::1") / ICMPv6NDOptSrcLLAddr(lladdr=C_MAC))
    add("ipv6/icmpv6-na", "ipv6", "ipv6", "none", 0.35,
        lambda p: E() / IPv6(src="fe80::1", dst="fe80::3efd:feff:fe12:3456", hlim=255) /
        ICMPv6ND_NA(tgt="fe80::1", R=1, S=1))
    add("ipv6/icmpv6-ra", "ipv6", "ipv6", "none", 0.03,
        lambda p: E() / IPv6(src="fe80::1", dst="ff02::1", hlim=255) / ICMPv6ND_RA(routerlifetime=1800) /
        ICMPv6NDOptSrcLLAddr(lladdr=R_MAC) /
        ICMPv6NDOptPrefixInfo(prefix="2a01:cb00:1234:5600::", prefixlen=64) /
        ICMPv6NDOptPREF64(prefix="64:ff9b::", plc=0, scaledlifetime=225))
    add("ipv6/icmpv6-ptb", "ipv6", "ipv6", "none", 0.05,
        lambda p: E() / IPv6(src="2a01:cb00:ff::1", dst=v6s) / ICMPv6PacketTooBig(mtu=1480) /
        IPv6(src=v6s, dst=v6c) / TCP(sport=443, dport=EPH, flags="A", seq=1, ack=1) / p,
        [(("pay", 400), 1.0)])
    # DNS over IPv6 (one resolver, kept fixed)
    res6 = "2a01:cb00:ff::53"
    for name, qt in dnsq:
        add("ipv6/dns-query", "ipv6", "ipv6", "none", 0.4,
            lambda p, name=name, qt=qt: EU() / IPv6(src=v6c, dst=res6) / UDP(sport=EPH, dport=53) /
            DNS(id=1, rd=1, qd=DNSQR(qname=name, qtype=qt)))
    for name, an in answers:
        qt = an[0].type
        add("ipv6/dns-response", "ipv6", "ipv6", "none", 0.4,
            lambda p, name=name, an=an, qt=qt: E() / IPv6(src=res6, dst=v6c) / UDP(sport=53, dport=EPH) /
            DNS(id=1, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype=qt), an=an))

    # IPv6 extension headers (a few percent of IPv6)
    add("ipv6-ext/hbh-mld", "ipv6", "ipv6", "none", 0.15,
        lambda p: EU() / IPv6(src="fe80::3efd:feff:fe12:3456", dst="ff02::16", hlim=1) /
        IPv6ExtHdrHopByHop(options=[RouterAlert(value=0), PadN(optdata=b"")]) /
        ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(dst="ff02::1:ff12:3456")]), ext=True)
    add("ipv6-ext/frag-first", "ipv6", "ipv6", "none", 0.2,
        lambda p: E() / IPv6(src=res6, dst=v6c) / IPv6ExtHdrFragment(m=1, offset=0, id=1) /
        UDP(sport=53, dport=EPH) / p, [(("ip", 1280), 0.5), (("ip", 1500), 0.5)], ext=True)
    add("ipv6-ext/frag-next", "ipv6", "ipv6", "none", 0.2,
        lambda p: E() / IPv6(src=res6, dst=v6c) / IPv6ExtHdrFragment(nh=17, m=0, offset=154, id=1) / p,
        [(("pay", 300), 1.0)], ext=True)
    add("ipv6-ext/atomic-frag", "ipv6", "ipv6", "none", 0.02,
        lambda p: E() / IPv6(src=v6s, dst=v6c) / IPv6ExtHdrFragment(m=0, offset=0, id=1) /
        TCP(sport=443, dport=EPH, flags="A", seq=1, ack=1) / p, [(("pay", 0), 1.0)], ext=True)
    add("ipv6-ext/dstopt-tcp", "ipv6", "ipv6", "none", 0.15,
        lambda p: E() / IPv6(src=v6s, dst=v6c) / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 4)]) /
        TCP(sport=443, dport=EPH, flags="A", seq=1, ack=1) / p, TCP_MIX, ext=True)
    add("ipv6-ext/srh-udp", "ipv6", "ipv6", "none", 0.25,
        lambda p: E() / IPv6(src="2a01:cb00:ff::a1", dst="2a01:cb00:ff::b2") /
        IPv6ExtHdrSegmentRouting(addresses=["2a01:cb00:ff::c3", "2a01:cb00:ff::b2"], segleft=1) /
        UDP(sport=EPH, dport=443) / p, QUIC_MIX, ext=True, pad_fn=quic)
    add("ipv6-ext/hbh-dstopt-frag", "ipv6", "ipv6", "none", 0.02,
        lambda p: E() / IPv6(src=v6s, dst=v6c) / IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\x00" * 4)]) /
        IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 4)]) / IPv6ExtHdrFragment(m=1, offset=0, id=1) /
        UDP(sport=443, dport=EPH) / p, [(("ip", 1280), 1.0)], ext=True)
    add("ipv6-ext/esp", "ipv6", "ipv6", "none", 0.15,
        lambda p: EU() / IPv6(src=v6c, dst="2a01:cb00:ff::e5", nh=50) / p,
        [(("pay", 120), 0.5), (("ip", 1440), 0.5)], ext=True)

    # ---------------- tunnels ----------------
    he_c, he_s = "2001:470:1f0b:52::2", "2a00:1450:4007:80e::200e"
    add("tunnel/6in4", "ipv4", "ipv6", "6in4", 2.5,
        lambda p: E() / IP(src="216.66.80.30", dst="100.64.77.3") / IPv6(src=he_s, dst=he_c) /
        TCP(sport=443, dport=EPH, flags="A", seq=1, ack=1) / p, TUN_MIX, pad_fn=tls)
    add("tunnel/6to4", "ipv4", "ipv6", "6to4", 1.0,
        lambda p: EU() / IP(src="100.64.77.9", dst="192.88.99.1") /
        IPv6(src="2002:6440:4d09::1", dst=v6f) / TCP(sport=EPH, dport=443, flags="A", seq=1, ack=1) / p,
        TUN_MIX, pad_fn=tls)
    add("tunnel/isatap", "ipv4", "ipv6", "isatap", 0.05,
        lambda p: EU() / IP(src="10.20.0.5", dst="10.20.0.1") /
        IPv6(src="fe80::5efe:a14:5", dst="fe80::5efe:a14:1") / ICMPv6EchoRequest(id=3, seq=1, data=p),
        [(("pay", 32), 1.0)])
    tc = "2001:0:4136:e378:8000:63bf:3fff:fdd2"
    add("tunnel/teredo", "ipv4", "ipv6", "teredo", 1.2,
        lambda p: E() / IP(src="83.170.6.76", dst="100.64.12.34") / UDP(sport=3544, dport=EPH) /
        IPv6(src=v6s, dst=tc) / TCP(sport=443, dport=EPH, flags="A", seq=1, ack=1) / p,
        [(("pay", 0), 0.5), (("ip", 1308), 0.5)])
    add("tunnel/teredo-bubble", "ipv4", "ipv6", "teredo", 0.2,
        lambda p: EU() / IP(src="100.64.12.34", dst="83.170.6.76") / UDP(sport=EPH, dport=3544) /
        IPv6(src=tc, dst="2001:0:4136:e378:8000:1234:abcd:1", nh=59, plen=0))
    add("tunnel/gre-ipv6", "ipv4", "ipv6", "gre", 0.8,
        lambda p: E() / IP(src="10.255.0.1", dst="10.255.0.2") / GRE(proto=0x86DD) /
        IPv6(src=v6s, dst=v6c) / TCP(sport=443, dport=EPH, flags="A", seq=1, ack=1) / p, TUN_MIX)
    add("tunnel/gre-ipv4", "ipv4", "ipv4", "gre", 0.8,
        lambda p: E() / IP(src="10.255.0.1", dst="10.255.0.2") / GRE(proto=0x0800) /
        IP(src=v4s, dst=v4c) / TCP(sport=443, dport=EPH, flags="A", seq=1, ack=1) / p, TUN_MIX)
    add("tunnel/gtpu-ipv4", "ipv4", "ipv4", "gtpu", 2.0,
        lambda p: E() / IP(src="10.200.1.1", dst="10.200.2.1") / UDP(sport=2152, dport=2152) /
        GTP_U_Header(teid=0x1000, gtp_type=255) / IP(src=v4s, dst="100.72.3.4") /
        TCP(sport=443, dport=EPH, flags="A", seq=1, ack=1) / p, TUN_MIX)
    add("tunnel/gtpu-ipv6", "ipv4", "ipv6", "gtpu", 1.5,
        lambda p: E() / IP(src="10.200.1.1", dst="10.200.2.1") / UDP(sport=2152, dport=2152) /
        GTP_U_Header(teid=0x1000, gtp_type=255) / IPv6(src=v6s, dst="2a01:cb10:88::1") /
        UDP(sport=443, dport=EPH) / p, QUIC_MIX, pad_fn=quic)
    add("tunnel/vxlan-ipv4", "ipv4", "ipv4", "vxlan", 1.5,
        lambda p: E() / IP(src="10.100.0.11", dst="10.100.0.12") / UDP(sport=EPH, dport=4789) /
        VXLAN(vni=5001, flags=0x08) / Ether(src="02:42:ac:11:00:02", dst="02:42:ac:11:00:03") /
        IP(src="172.17.0.2", dst="172.17.0.3") / TCP(sport=EPH, dport=8080, flags="A", seq=1, ack=1) / p, TUN_MIX)
    add("tunnel/vxlan-ipv6", "ipv4", "ipv6", "vxlan", 1.0,
        lambda p: E() / IP(src="10.100.0.11", dst="10.100.0.12") / UDP(sport=EPH, dport=4789) /
        VXLAN(vni=5002, flags=0x08) / Ether(src="02:42:ac:11:00:02", dst="02:42:ac:11:00:03") /
        IPv6(src="fd00:17::2", dst="fd00:17::3") / TCP(sport=EPH, dport=8080, flags="A", seq=1, ack=1) / p, TUN_MIX)
    add("tunnel/ds-lite-4in6", "ipv6", "ipv4", "4in6", 0.8,
        lambda p: EU() / IPv6(src="2a01:cb00:1234:5600::2", dst="2a01:cb00:ff::aa", nh=4) /
        IP(src="192.0.0.2", dst=v4s) / TCP(sport=EPH, dport=443, flags="A", seq=1, ack=1) / p, TUN_MIX)
    add("tunnel/srv6-6in6", "ipv6", "ipv6", "6in6", 0.1,
        lambda p: E() / IPv6(src="2a01:cb00:ff::a1", dst="2a01:cb00:ff::b2") /
        IPv6ExtHdrSegmentRouting(addresses=["2a01:cb00:ff::c3", "2a01:cb00:ff::b2"], segleft=1, nh=41) /
        IPv6(src=v6s, dst=v6c) / TCP(sport=443, dport=EPH, flags="A", seq=1, ack=1) / p, TUN_MIX, ext=True)

    # ---------------- non-IP ----------------
    add("non-ip/arp", "non_ip", "non_ip", "none", 0.5,
        lambda p: Ether(src=R_MAC, dst="ff:ff:ff:ff:ff:ff") /
        ARP(op=1, hwsrc=R_MAC, psrc="100.64.0.1", pdst="100.64.12.34"))
    lldp = (b"\x02\x07\x04" + bytes.fromhex("001b213a4f01") +       # chassis id (MAC)
            b"\x04\x07\x03" + bytes.fromhex("001b213a4f01") +       # port id (MAC)
            b"\x06\x02\x00\x78" +                                    # TTL 120
            b"\x0a\x08edge-r01" + b"\x00\x00")                       # system name, end
    add("non-ip/lldp", "non_ip", "non_ip", "none", 0.05,
        lambda p: Ether(src=R_MAC, dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(lldp),
        tags=("untagged",))
    return out


# --------------------------------------------------------------------------
# Emission
# --------------------------------------------------------------------------

def generate(out_path: str, frames: int | None, size_gb: float | None, seed: int,
             quiet: bool = False) -> dict:
    t_start = time.perf_counter()
    templates = build_templates(seed)
    T = len(templates)
    lens = np.array([len(t.data) for t in templates], dtype=np.int64)
    W = 16 + int(lens.max())
    S = max(len(t.slots) for t in templates)
    padded = np.zeros((T, W), dtype=np.uint8)
    slot_off = np.zeros((T, S), dtype=np.int64)
    slot_kind = np.zeros((T, S), dtype=np.int8)
    for i, t in enumerate(templates):
        padded[i, 16:16 + len(t.data)] = np.frombuffer(t.data, dtype=np.uint8)
        for j, (o, k) in enumerate(t.slots):
            assert 12 <= o and o + KIND_WIDTH[k] <= len(t.data), (t.cls, o, k)
            slot_off[i, j] = 16 + o
            slot_kind[i, j] = k
    B = 1 + max(t.base for t in templates)
    base_w = np.zeros(B)
    base_tid = np.full((B, len(TAG_NAMES)), -1, dtype=np.int64)
    class_names = list(dict.fromkeys(t.cls for t in templates))
    base_class = np.zeros(B, dtype=np.uint64)
    for i, t in enumerate(templates):
        base_w[t.base] = t.base_weight
        base_tid[t.base, TAG_NAMES.index(t.tag)] = i
        base_class[t.base] = class_names.index(t.cls)
    for j in range(1, len(TAG_NAMES)):        # classes sent untagged only (LLDP)
        miss = base_tid[:, j] < 0
        base_tid[miss, j] = base_tid[miss, 0]
    probs = base_w / base_w.sum()
    salt = mix64(np.array([seed], dtype=np.uint64))[0]
    golden = np.uint64(0x9E3779B97F4A7C15)
    slot_salt = mix64(np.arange(1, S + 1, dtype=np.uint64) * golden)
    t_templates = time.perf_counter() - t_start

    rng = np.random.default_rng(seed)
    target_bytes = None if size_gb is None else int(size_gb * 1e9)
    counts = np.zeros(T, dtype=np.int64)
    col = np.arange(W, dtype=np.int64)
    rows_all = np.arange(CHUNK, dtype=np.int64)
    t_us = T0_US
    written_frames = 0
    written_bytes = 24
    sha = hashlib.sha256()

    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".part"
    with open(tmp, "wb", buffering=0) as fh:
        ghdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
        fh.write(ghdr)
        sha.update(ghdr)
        while True:
            if frames is not None and written_frames >= frames:
                break
            if target_bytes is not None and written_bytes >= target_bytes:
                break
            # Draws of a whole chunk, always in the same order (prefix property).
            base = rng.choice(B, size=CHUNK, p=probs)
            u = rng.random(CHUNK)
            gaps = rng.integers(1, 2 * MEAN_GAP_US, size=CHUNK, dtype=np.int64)
            vals = rng.integers(0, 1 << 32, size=(CHUNK, S), dtype=np.uint64)
            mice = rng.random(CHUNK) < MICE_SHARE
            flow = np.where(mice, MICE_BASE + (written_frames + rows_all) // MICE_SPAN,
                            (u * u * u * FLOWS).astype(np.int64)).astype(np.uint64)
            fkey = mix64(salt ^ (base_class[base] << np.uint64(40)) ^ flow)
            hkey = mix64(salt ^ np.uint64(0xB0575) ^ (flow // np.uint64(HOST_FLOWS)))
            tagu = (mix64(fkey ^ np.uint64(0x7A6)) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
            tag = np.searchsorted(np.array(TAG_CUM), tagu, side="right")
            tid = base_tid[base, tag]
            reclen = 16 + lens[tid]
            n = CHUNK
            if frames is not None:
                n = min(n, frames - written_frames)
            if target_bytes is not None:
                ends = written_bytes + np.cumsum(reclen)
                n = min(n, int(np.searchsorted(ends, target_bytes, side="left")) + 1)
            tid, gaps, vals, reclen = tid[:n], gaps[:n], vals[:n], reclen[:n]
            fkey, hkey = fkey[:n], hkey[:n]
            rows = rows_all[:n]
            gidx = written_frames + rows

            buf = padded[tid]                        # (n, W) copy
            ts = t_us + np.cumsum(gaps)
            t_us = int(ts[-1])
            hdr = np.empty((n, 4), dtype="<u4")
            hdr[:, 0] = ts // 1_000_000
            hdr[:, 1] = ts % 1_000_000
            hdr[:, 2] = reclen - 16
            hdr[:, 3] = reclen - 16
            buf[:, :16] = hdr.view(np.uint8).reshape(n, 16)
            for s in range(S):
                kinds = slot_kind[tid, s]
                if not kinds.any():
                    continue
                offs = slot_off[tid, s]
                for k, width in KIND_WIDTH.items():
                    m = kinds == k
                    if not m.any():
                        continue
                    r, o = rows[m], offs[m]
                    if k in PER_PACKET:
                        v = vals[m, s]
                    else:
                        v = mix64((hkey[m] if k == K_HOST else fkey[m]) + slot_salt[s])
                    v = _kind_value(k, v, gidx[m])
                    for b in range(width):
                        buf[r, o + b] = (v >> np.uint64(8 * (width - 1 - b))) & np.uint64(0xFF)
            data = buf[col[None, :] < reclen[:, None]]
            fh.write(memoryview(data))
            sha.update(memoryview(data))
            counts += np.bincount(tid, minlength=T)
            written_frames += n
            written_bytes += int(reclen.sum())
            if not quiet and written_frames % (CHUNK * 16) < CHUNK:
                el = time.perf_counter() - t_start
                print(f"  {written_frames:>10,} frames  {written_bytes / 1e9:6.2f} GB  {el:6.1f} s",
                      file=sys.stderr)
    os.replace(tmp, out_path)
    elapsed = time.perf_counter() - t_start

    # Sidecar: the mix by construction (deterministic: no timings in it).
    classes: dict[str, dict] = {}
    expected = {"carrier": {"ipv4": 0, "ipv6": 0, "non_ip": 0},
                "payload": {"ipv4": 0, "ipv6": 0, "non_ip": 0},
                "tunnels": {}, "vlan": {"untagged": 0, "dot1q": 0, "qinq": 0},
                "ext_header_frames": 0}
    wire = 0
    for t, c in zip(templates, counts.tolist()):
        b = c * len(t.data)
        wire += b
        e = classes.setdefault(t.cls, {"frames": 0, "bytes": 0, "carrier": t.carrier,
                                       "payload": t.payload, "tunnel": t.tunnel,
                                       "ext_headers": t.ext, "templates": 0})
        e["frames"] += c
        e["bytes"] += b
        e["templates"] += 1
        expected["carrier"][t.carrier] += c
        expected["payload"][t.payload] += c
        expected["tunnels"][t.tunnel] = expected["tunnels"].get(t.tunnel, 0) + c
        expected["vlan"][t.tag] += c
        expected["ext_header_frames"] += c if t.ext else 0
    side = {
        "generator": "benchmarks/generate.py", "generator_version": GENERATOR_VERSION,
        "seed": seed, "frames": written_frames, "file_bytes": written_bytes,
        "wire_bytes": wire, "mean_frame_bytes": round(wire / max(1, written_frames), 1),
        "sha256": sha.hexdigest(), "templates": T,
        "model": {"flows_per_class": FLOWS, "flow_popularity": "FLOWS * u**3",
                  "mice_share": MICE_SHARE, "mice_span_frames": MICE_SPAN,
                  "host_flows": HOST_FLOWS, "vlan_tagging_of_flows": {
                      "untagged": TAG_CUM[0], "dot1q": round(TAG_CUM[1] - TAG_CUM[0], 6),
                      "qinq": round(1 - TAG_CUM[1], 6)},
                  "mean_gap_us": MEAN_GAP_US},
        "time": {"first": T0_US / 1e6, "last": t_us / 1e6},
        "expected": expected,
        "classes": dict(sorted(classes.items())),
    }
    with open(sidecar_path(out_path), "w") as fh:
        json.dump(side, fh, indent=1)
        fh.write("\n")
    if not quiet:
        print(f"wrote {out_path}: {written_frames:,} frames, {written_bytes:,} bytes "
              f"({written_bytes / 1e9:.3f} GB), mean frame {side['mean_frame_bytes']} B, "
              f"{T} templates (built in {t_templates:.1f} s), {elapsed:.1f} s total, "
              f"sha256 {side['sha256'][:16]}", file=sys.stderr)
    side["elapsed_s"] = elapsed
    return side


def sidecar_path(pcap_path: str) -> str:
    return pcap_path + ".json"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--frames", type=int, default=None,
                   help="number of frames (default 2,000,000)")
    g.add_argument("--size-gb", type=float, default=None,
                   help="instead of --frames: write until the file reaches X GB (10**9 bytes)")
    ap.add_argument("--out", default=None,
                    help="output pcap (default benchmarks/data/bench-<2M|200k|XGB>.pcap)")
    ap.add_argument("--seed", type=int, default=6, help="RNG seed (default 6)")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.size_gb is None and a.frames is None:
        a.frames = 2_000_000
    if a.frames is not None and a.frames < 1:
        ap.error("--frames must be positive")
    if a.size_gb is not None and not a.size_gb > 0:
        ap.error("--size-gb must be positive")
    out = a.out or default_out(a.frames, a.size_gb)
    generate(out, a.frames, a.size_gb, a.seed, a.quiet)


if __name__ == "__main__":
    main()
